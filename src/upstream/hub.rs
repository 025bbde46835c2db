//! One worker's upstream engine: its groups (balancer, idle pool, health
//! view), its upstream connections and the proxied exchanges on them.
//!
//! Sans-IO like the drivers: the proxy handler starts exchanges and takes
//! their responses through [`Hub`] methods; the executor carries out the
//! [`Cmd`]s the hub queues (connect, drive, close) and hands it every event
//! of its connections with the connection's driver ([`Hub::on_event`],
//! [`Hub::sync`]); the hub names the server connections to poll again
//! ([`Hub::take_wakes`]). Nothing here is shared with other cores but the
//! health cells an active check publishes.

use std::sync::Arc;
use std::time::{Duration, Instant};

use slab::Slab;

use super::balance::Balancer;
use super::exchange::{Dropped, Exchange, Failure, Phase, UpBody};
use super::health::Checker;
use super::spec::{Address, RetryOn};
use super::stats::ServerStats;
use crate::driver::{ClientConn, ClientEnd, ClientEvent, ClientSettings, Request};
use crate::exchange::Waker;
use crate::runtime::worker::ConnId;

#[path = "checks.rs"]
mod checks;
#[path = "fastcgi.rs"]
mod fastcgi;
#[path = "pooled.rs"]
mod pooled;
#[path = "proxied.rs"]
mod proxied;
#[path = "report.rs"]
mod report;
#[path = "retry.rs"]
mod retry;

pub use proxied::{BodyPoll, HeadPoll, Start};

/// Keys of hub connections carry this bit (the executor routes their
/// events to the hub).
pub const HUB_KEY: u64 = 1 << 63;
/// Keys of health-check connections carry this bit too.
const CHECK_KEY: u64 = 1 << 62;
/// Request bytes queued on an upstream connection before the request body
/// is no longer taken from the client.
const UP_WINDOW: usize = 64 * 1024;
/// How many times `keepalive.idle` connections a burst may leave idle until
/// the next sweep.
const IDLE_BURST: usize = 4;
/// How often idle connections are looked at.
const SWEEP: Duration = Duration::from_secs(1);
/// Most of a health check's response body looked at.
const CHECK_BODY: usize = 64 * 1024;

pub use super::shared::Upstream;

/// What the hub asks the executor to do.
#[derive(Debug)]
pub enum Cmd {
    /// Open a connection; its events come back with `key`. Answer with
    /// [`Hub::bound`] (or [`Hub::connect_failed`]).
    Connect {
        /// The hub's key for it.
        key: u64,
        /// Where to.
        addr: Address,
        /// TLS over it, when the group has `tls = true`.
        tls: Option<crate::tls::Connector>,
        /// Its timeouts and limits.
        settings: ClientSettings,
    },
    /// Drive the connection: [`Hub::sync`] has something to move.
    Touch(ConnId),
    /// Close the connection.
    Close(ConnId),
}

/// One upstream connection of the hub.
#[derive(Debug)]
struct UpConn {
    generation: u32,
    id: Option<ConnId>,
    group: usize,
    server: usize,
    exchange: Option<usize>,
    /// Requests it has carried.
    uses: u32,
    born: Instant,
    /// In the idle pool since.
    idle_since: Option<Instant>,
    /// The connect completed.
    open: bool,
    /// A health check's connection.
    check: bool,
    /// (Checks) the request has been handed over.
    handed: bool,
    /// To be closed as soon as the executor names it.
    doomed: bool,
}

/// A server's active-check state, on the core that checks it.
#[derive(Debug)]
struct Check {
    checker: Checker,
    next: Instant,
    conn: Option<usize>,
    body: Vec<u8>,
}

/// One server of a group, on this core.
#[derive(Debug)]
pub(super) struct Server {
    pub addr: Address,
    /// Its address as configured, for access-log lines.
    pub label: std::rc::Rc<str>,
    /// Connections open (idle included).
    pub open: u32,
    /// The last active verdict applied to the balancer, and the count of
    /// changes it was read with.
    seen: (Option<bool>, u32),
    check: Option<Check>,
    pub stats: ServerStats,
    /// (Pools) The lane as last taken in.
    lane: Option<crate::pool::cells::LaneView>,
}

/// One group on this core.
#[derive(Debug)]
pub(super) struct Group {
    pub shared: Arc<Upstream>,
    pub balancer: Balancer,
    /// Idle connections, most recently used last.
    idle: Vec<usize>,
    pub servers: Vec<Server>,
    /// Part of the current generation.
    pub live: bool,
    /// (Pools) Exchanges waiting for an instance, with their deadline.
    queued: Vec<(usize, Instant)>,
}

/// One worker's upstream engine.
#[derive(Debug)]
pub struct Hub {
    pub(super) groups: Vec<Group>,
    conns: Slab<UpConn>,
    exchanges: Slab<Exchange>,
    cmds: Vec<Cmd>,
    wakes: Vec<Waker>,
    dropped: Dropped,
    worker: usize,
    workers: usize,
    next_gen: u32,
    next_sweep: Option<Instant>,
    /// When waiting exchanges look for an instance again.
    queue_at: Option<Instant>,
    /// The worker is stopping: no checks, no connection kept idle.
    draining: bool,
}

impl Hub {
    /// The engine of worker `worker`.
    pub fn new(worker: usize) -> Hub {
        Hub {
            groups: Vec::new(),
            conns: Slab::new(),
            exchanges: Slab::new(),
            cmds: Vec::new(),
            wakes: Vec::new(),
            dropped: Dropped::default(),
            worker,
            workers: 1,
            next_gen: 0,
            next_sweep: None,
            queue_at: None,
            draining: false,
        }
    }

    /// The worker is stopping: checks end and idle connections close now,
    /// busy ones when their exchange ends, so nothing keeps the worker up.
    pub fn drain(&mut self) {
        self.draining = true;
        for gi in 0..self.groups.len() {
            self.retire(gi);
        }
    }

    /// A group stops checking and closes its idle connections.
    fn retire(&mut self, gi: usize) {
        for s in &mut self.groups[gi].servers {
            s.check = None;
        }
        for c in std::mem::take(&mut self.groups[gi].idle) {
            self.close(c);
        }
    }

    /// Takes the groups of a new generation: a group whose settings did not
    /// change keeps its pool, balancer and checks; others start afresh, and
    /// the old ones finish what they carry.
    pub fn install(&mut self, upstreams: &[Arc<Upstream>], workers: usize, now: Instant) {
        self.workers = workers.max(1);
        for g in &mut self.groups {
            g.live = false;
        }
        for u in upstreams {
            if let Some(g) = self
                .groups
                .iter_mut()
                .find(|g| Arc::ptr_eq(&g.shared, u) || g.shared.spec == u.spec)
            {
                g.shared = u.clone();
                g.live = true;
                continue;
            }
            let position = self.groups.len();
            let servers = u
                .spec
                .servers
                .iter()
                .enumerate()
                .map(|(i, s)| {
                    let addr = s.address.clone();
                    let checks_here = u.spec.health.uri.is_some()
                        && (u.position + i) % self.workers == self.worker % self.workers;
                    Server {
                        addr,
                        label: s.name.as_str().into(),
                        open: 0,
                        seen: (None, 0),
                        check: checks_here.then(|| Check {
                            checker: Checker::new(&u.spec.health),
                            next: now,
                            conn: None,
                            body: Vec::new(),
                        }),
                        stats: ServerStats::default(),
                        lane: None,
                    }
                })
                .collect();
            let seed = (self.worker as u64) << 32 | position as u64;
            self.groups.push(Group {
                shared: u.clone(),
                balancer: Balancer::new(&u.spec, seed ^ 0x9e37_79b9_7f4a_7c15),
                idle: Vec::new(),
                servers,
                live: true,
                queued: Vec::new(),
            });
            let gi = self.groups.len() - 1;
            self.apply_pool(gi, now);
        }
        // Groups no longer configured stop checking and keep no idle
        // connections.
        for gi in 0..self.groups.len() {
            if !self.groups[gi].live || self.draining {
                self.retire(gi);
            }
        }
        self.next_sweep.get_or_insert(now + SWEEP);
    }

    /// The index of the group `u` is, on this worker.
    pub fn group_of(&self, u: &Arc<Upstream>) -> Option<usize> {
        self.groups
            .iter()
            .position(|g| g.live && Arc::ptr_eq(&g.shared, u))
    }

    // ---- the executor's side -----------------------------------------------

    /// Takes the commands queued.
    pub fn take_cmds(&mut self, into: &mut Vec<Cmd>) {
        into.append(&mut self.cmds);
    }

    /// Takes the server connections to poll again.
    pub fn take_wakes(&mut self, into: &mut Vec<Waker>) {
        into.append(&mut self.wakes);
    }

    /// Whether anything waits for the executor.
    pub fn has_work(&self) -> bool {
        !self.cmds.is_empty()
            || !self.wakes.is_empty()
            || self.dropped.try_borrow().is_ok_and(|d| !d.is_empty())
    }

    fn conn_key(&self, c: usize) -> u64 {
        let u = &self.conns[c];
        let check = if u.check { CHECK_KEY } else { 0 };
        HUB_KEY | check | (u64::from(u.generation & 0x3fff_ffff) << 32) | c as u64
    }

    fn conn_of(&self, key: u64) -> Option<usize> {
        let c = (key & 0xffff_ffff) as usize;
        let generation = ((key >> 32) & 0x3fff_ffff) as u32;
        self.conns
            .get(c)
            .filter(|u| u.generation & 0x3fff_ffff == generation)
            .map(|_| c)
    }

    /// The executor opened the connection for `key`.
    pub fn bound(&mut self, key: u64, id: ConnId) {
        if let Some(c) = self.conn_of(key) {
            self.conns[c].id = Some(id);
            if self.conns[c].doomed {
                self.cmds.push(Cmd::Close(id));
            }
        }
    }

    /// The executor could not even make a socket for `key`.
    pub fn connect_failed(&mut self, key: u64, errno: i32, now: Instant) {
        match self.conn_of(key) {
            Some(c) if self.conns[c].check => self.check_unconnected(c, now),
            Some(c) => self.ended(c, ClientEnd::ConnectFailed(errno), now),
            None => {}
        }
    }

    /// An event of a hub connection, with its driver.
    pub fn on_event(&mut self, key: u64, d: &mut ClientConn, ev: ClientEvent, now: Instant) {
        let Some(c) = self.conn_of(key) else { return };
        if self.conns[c].check {
            return self.on_check_event(c, d, ev, now);
        }
        self.log_stderr(c, d);
        match ev {
            ClientEvent::Connected => self.conns[c].open = true,
            ClientEvent::Received(_) => {}
            ClientEvent::Head => self.on_head(c, d, now),
            ClientEvent::Response(r) => self.on_response(c, d, r.last, now),
            ClientEvent::Closed { why, .. } => {
                if let Some(e) = self.conns[c].exchange {
                    self.exchanges[e].keep_body(d);
                }
                self.ended(c, why, now);
            }
        }
    }

    /// Moves what waits between a hub connection's driver and its exchange:
    /// request bytes up (within the send window), response bytes down (when
    /// the handler took the last ones).
    pub fn sync(&mut self, key: u64, d: &mut ClientConn, now: Instant) {
        let Some(c) = self.conn_of(key) else { return };
        if self.conns[c].check {
            return self.sync_check(c, d, now);
        }
        let Some(ei) = self.conns[c].exchange else {
            return;
        };
        let e = &mut self.exchanges[ei];
        let mut wake = false;
        if !e.up_queue.is_empty() && d.is_open() && d.unsent() < UP_WINDOW {
            if e.handed {
                d.send_more(&e.up_queue, now);
                e.body_started = true;
            } else {
                let req = Request {
                    tag: ei as u64,
                    head: e.head_request,
                    upgrade: e.up_body.switches(),
                    connect: e.up_body == UpBody::Connect,
                };
                d.request(&e.up_queue, req, now);
                e.handed = true;
                e.body_started = e.up_queue.len() > e.head.len();
                if e.phase == Phase::Waiting {
                    e.phase = Phase::Sent;
                }
            }
            e.up_queue.clear();
            wake = !e.body_done;
        }
        d.set_deliver(e.window);
        if e.body.is_empty() && d.body_waiting() > 0 {
            d.take_body(&mut e.body);
            wake = true;
        }
        if wake {
            self.wake(ei);
        }
    }

    fn wake(&mut self, ei: usize) {
        if let Some(w) = self.exchanges[ei].waker {
            self.wakes.push(w);
        }
    }

    fn on_head(&mut self, c: usize, d: &mut ClientConn, now: Instant) {
        let Some(ei) = self.conns[c].exchange else {
            return;
        };
        let status = d.head().status;
        let (gi, server) = (self.conns[c].group, self.conns[c].server);
        let spec = &self.groups[gi].shared.spec;
        let unhealthy = spec.passive.unhealthy_status.contains(&status);
        let retry_kind = match status {
            502 => Some(RetryOn::Http502),
            503 => Some(RetryOn::Http503),
            504 => Some(RetryOn::Http504),
            _ => None,
        };
        let retryable = retry_kind.is_some_and(|k| spec.retry.on.contains(&k));
        if unhealthy {
            self.groups[gi].balancer.failed(server, now);
        }
        let e = &mut self.exchanges[ei];
        let head_time = now.saturating_duration_since(e.attempt_at);
        self.groups[gi].servers[server].stats.head_time(head_time);
        if retryable && self.may_retry(ei, false) {
            // This answer is dropped; the connection with it.
            let e = &mut self.exchanges[ei];
            e.conn = None;
            self.conns[c].exchange = None;
            self.finished(gi, server, Some(head_time));
            self.close(c);
            self.retry(ei, false, Failure::Closed, now);
            return;
        }
        let e = &mut self.exchanges[ei];
        e.resp = Some(Box::new(d.head().clone()));
        e.phase = Phase::Body;
        e.keep_body(d);
        self.wake(ei);
    }

    fn on_response(&mut self, c: usize, d: &mut ClientConn, last: bool, now: Instant) {
        let Some(ei) = self.conns[c].exchange.take() else {
            return;
        };
        let (gi, server) = (self.conns[c].group, self.conns[c].server);
        let e = &mut self.exchanges[ei];
        e.keep_body(d);
        e.phase = Phase::Done;
        e.conn = None;
        let reusable = !last && e.body_done && e.up_queue.is_empty() && d.unsent() == 0;
        let status = d.head().status;
        let head_time = now.saturating_duration_since(e.attempt_at);
        self.groups[gi].servers[server].stats.response(status);
        self.finished(gi, server, Some(head_time));
        self.wake(ei);
        self.release(c, reusable, now);
        // A request waiting for a free server takes the one just released.
        self.serve_queue(gi, now);
    }

    /// Puts a connection whose exchange ended back in the pool, or closes it.
    fn release(&mut self, c: usize, reusable: bool, now: Instant) {
        let u = &mut self.conns[c];
        u.uses += 1;
        let gi = u.group;
        let g = &self.groups[gi];
        let k = &g.shared.spec.keepalive;
        let max_idle = k.idle;
        let keep = reusable
            && g.live
            && !self.draining
            && k.idle > 0
            && u.uses < k.max_requests
            && now.saturating_duration_since(u.born) < k.lifetime;
        if !keep || self.fastcgi_waits(c, now) {
            return self.close(c);
        }
        let u = &mut self.conns[c];
        u.idle_since = Some(now);
        let g = &mut self.groups[gi];
        g.idle.push(c);
        // Past the idle limit, connections left by a burst stay until the
        // sweep finds them unused (closing them at once would make the next
        // burst connect again); past IDLE_BURST times it, the oldest goes now.
        if g.idle.len() > max_idle.saturating_mul(IDLE_BURST) {
            let oldest = g.idle.remove(0);
            self.close(oldest);
        }
    }

    /// Asks the executor to close a connection (its `Closed` event follows).
    fn close(&mut self, c: usize) {
        let u = &mut self.conns[c];
        match u.id {
            Some(id) => self.cmds.push(Cmd::Close(id)),
            None => u.doomed = true,
        }
        let gi = u.group;
        self.groups[gi].idle.retain(|&i| i != c);
    }

    /// Puts an exchange on a connection to `server`: an idle one unless
    /// `fresh`, else a new one.
    fn assign(&mut self, ei: usize, server: usize, fresh: bool, now: Instant) {
        let gi = self.exchanges[ei].group;
        self.groups[gi].balancer.started(server);
        self.groups[gi].servers[server].stats.requests += 1;
        let idle = if fresh {
            None
        } else {
            let g = &self.groups[gi];
            g.idle.iter().rposition(|&c| self.conns[c].server == server)
        };
        let c = match idle {
            Some(pos) => {
                let c = self.groups[gi].idle.remove(pos);
                self.conns[c].idle_since = None;
                if let Some(id) = self.conns[c].id {
                    self.cmds.push(Cmd::Touch(id));
                }
                c
            }
            None => self.open(gi, server, false, now),
        };
        self.conns[c].exchange = Some(ei);
        self.exchanges[ei].conn = Some(c);
    }

    /// A new connection to a server (a check's when `check`).
    fn open(&mut self, gi: usize, server: usize, check: bool, now: Instant) -> usize {
        self.next_gen = self.next_gen.wrapping_add(1);
        let spec = &self.groups[gi].shared.spec;
        let settings = if check {
            ClientSettings {
                connect_timeout: spec.health.timeout,
                response_timeout: spec.health.timeout,
                read_idle: spec.health.timeout,
                deliver: CHECK_BODY,
                fastcgi: spec.fastcgi.as_ref().map(|_| false),
                ..ClientSettings::default()
            }
        } else {
            ClientSettings {
                connect_timeout: spec.timeouts.connect,
                response_timeout: spec.timeouts.response_head,
                read_idle: spec.timeouts.read_idle,
                send_idle: spec.timeouts.send_idle,
                tunnel_idle: spec.timeouts.tunnel_idle,
                deliver: 64 * 1024,
                fastcgi: spec.fastcgi.as_ref().map(|a| a.keep_conn),
                ..ClientSettings::default()
            }
        };
        let c = self.conns.insert(UpConn {
            generation: self.next_gen,
            id: None,
            group: gi,
            server,
            exchange: None,
            uses: 0,
            born: now,
            idle_since: None,
            open: false,
            check,
            handed: false,
            doomed: false,
        });
        // The generation's: a reload's trust roots serve the next connection.
        let tls = self.groups[gi].shared.spec.connector(server);
        let s = &mut self.groups[gi].servers[server];
        s.open += 1;
        let addr = s.addr.clone();
        let key = self.conn_key(c);
        self.cmds.push(Cmd::Connect {
            key,
            addr,
            tls,
            settings,
        });
        c
    }
}
