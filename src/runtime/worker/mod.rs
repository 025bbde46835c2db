//! One worker: a pinned thread with its own ring, listeners, connection slab,
//! timers, `Date` cache, measurements and access-log buffer. The loop: reap
//! completions → drive connections → queue operations → one submit.
//!
//! The slab holds accepted connections and outgoing ones side by side (a
//! slot's `Driver` is a server or a client driver). A worker
//! with no listeners can be run by a [`ClientApp`] that opens outgoing
//! connections only: `peregrine load` runs its threads that way.

mod act;
mod clients;
mod conn;
mod listeners;
mod logs;
mod proxied;
mod reload;
mod slot;
mod spec;
mod time;
mod upstream;

use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use io_uring::types;
use slab::Slab;

use super::bufring::BufRing;
use super::logfile::LogFile;
use super::observe::Observe;
use super::op;
use super::ring::{Cqe, Ring};
use super::sys;
use super::timer::{Entry, Wheel};
use super::token::{Op, Token};
use super::{Engine, log};
use crate::driver::{BufPool, Settings};
use crate::http::conn::ExchangePool;
use crate::http::date::DateCache;
use crate::http::{Limits, Service};
use crate::metrics::Slot as MetricsSlot;

pub use clients::{ClientApp, ClientIo, ConnId, Next, Target};
use listeners::Listener;
use reload::Staged;
pub use reload::{Bind, Order, Rebuild, Update};
pub use slot::Role;
use slot::Slot;
pub use spec::{Control, Spec};

/// Milliseconds per timer-wheel tick.
const TICK_MS: u64 = 100;
/// Pause after an accept failure for lack of descriptors or memory.
const ACCEPT_BACKOFF_MS: u64 = 200;
/// How often a worker publishes its measurements.
const PUBLISH_MS: u64 = 1000;
/// Pipes kept for splicing file bodies.
const PIPE_POOL_MAX: usize = 32;
/// Capacity asked for each splice pipe (the system may cap it).
const PIPE_SIZE: usize = 1 << 20;
/// TLS handshake steps a worker runs per loop tick; more wait for the next
/// tick, so a burst of handshakes cannot stall the connections already served.
const HANDSHAKE_BUDGET: u32 = 32;
/// Receive buffers for outgoing connections: count and size (4 MiB of
/// address space, touched only as responses arrive).
const UP_BUFFER_COUNT: u16 = 128;
const UP_BUFFER_SIZE: u32 = 32 * 1024;

/// The worker's event loop state: an executor that maps completions to
/// connection drivers and their actions to ring operations.
pub struct Worker<S: Service> {
    // Field order matters: the ring is dropped (and its operations cancelled)
    // before the buffer memory it points at.
    ring: Ring,
    bufs: BufRing,
    /// Receive buffers of outgoing connections: larger, since what comes
    /// back from an upstream is mostly response bodies.
    upbufs: BufRing,
    conns: Slab<Slot>,
    /// Slots closing (their operations being cancelled): not counted against
    /// the connection limit.
    closing: usize,
    listeners: Vec<Listener>,
    /// Listeners a reload removed whose accept has not completed yet.
    retired: Vec<Listener>,
    /// The last key given to a listener.
    listener_keys: u32,
    /// Builds the service for a new configuration (none: no reloads).
    rebuild: Option<Rebuild<S>>,
    /// A prepared reload waiting for its commit.
    staged: Option<Staged<S>>,
    /// Answered when the commit in progress is complete.
    commit_ack: Option<std::sync::mpsc::Sender<()>>,
    wheel: Wheel,
    due: Vec<Entry>,
    svc: S,
    /// The service behind plain listeners that redirect to HTTPS.
    redirect: Option<Box<dyn Service>>,
    limits: Limits,
    settings: Settings,
    shutdown_timeout: Duration,
    engine: Engine,
    date: DateCache,
    obs: Observe,
    /// Access-log files, by output index of `obs` (see `bind_sites`).
    logfiles: Vec<LogFile>,
    slot: Option<MetricsSlot>,
    tls_config: Option<Arc<rustls::ServerConfig>>,
    tls_headers: Vec<u8>,
    /// Connections waiting for the next tick's handshake budget.
    deferred: Vec<(usize, u32)>,
    handshakes_left: u32,
    pipes: Vec<super::sys::Pipe>,
    outbufs: BufPool,
    exchanges: ExchangePool,
    /// Wake-ups exchanges asked for, earliest first: (when, slot, generation).
    /// Stale entries are recognized against the connection and skipped.
    wakes: BinaryHeap<Reverse<(Instant, usize, u32)>>,
    start: Instant,
    now: Instant,
    now_ms: u64,
    published_ms: u64,
    cqes: Vec<Cqe>,
    starved: Vec<(usize, u32)>,
    /// Outgoing connections the owner's calls touched, to drive when they return.
    touched: Vec<(usize, u32)>,
    /// Events of outgoing connections for their owner: (connection, key, event).
    client_events: Vec<(ConnId, u64, crate::driver::ClientEvent)>,
    /// When the client application asked to be polled next.
    app_due: Option<Instant>,
    /// The upstream engine: proxied exchanges and their connections.
    hub: crate::upstream::Hub,
    /// The client application is finished: its connections' events are dropped.
    clients_done: bool,
    control: Arc<Control>,
    wake_buf: Box<u64>,
    timer_ts: Box<types::Timespec>,
    /// The worker's own operations in flight (tick, wake-up read, log write).
    own_ops: u32,
    generation: u32,
    id: usize,
    draining: bool,
    drain_deadline: u64,
    multishot_recv: bool,
    multishot_accept: bool,
    accept_error_logged: bool,
    /// The guards of the configuration in effect (addresses refused at
    /// accept, PROXY protocol listeners).
    guards: Option<Arc<crate::guard::Guards>>,
    /// Connections whose PROXY protocol header has not all arrived, by
    /// slot, with what of it has.
    proxy_parts: std::collections::HashMap<usize, Vec<u8>>,
}

impl<S: Service> Worker<S> {
    /// Sets up the ring, buffers and log file. Errors here are startup errors.
    /// `redirect` answers on listeners whose role is [`Role::Redirect`].
    pub fn new(
        spec: Spec,
        svc: S,
        redirect: Option<Box<dyn Service>>,
    ) -> std::io::Result<Worker<S>> {
        let ring = Ring::new(spec.engine.ring_entries, spec.engine.defer_taskrun)?;
        if spec.id == 0 && !spec.listeners.is_empty() {
            log(&format!("io_uring setup: {}", ring.setup().describe()));
        }
        // Work the kernel hands to io-wq threads (splices, blocking file reads)
        // stays on this worker's CPU and is bounded.
        if let Some(set) = sys::current_affinity() {
            let _ = ring.inner().submitter().register_iowq_aff(&set);
        }
        let _ = ring
            .inner()
            .submitter()
            .register_iowq_max_workers(&mut [4, 4]);
        let bufs = BufRing::new(&ring, 0, spec.engine.buffer_count, spec.engine.buffer_size).map_err(|e| {
            std::io::Error::new(
                e.kind(),
                format!("cannot register a provided buffer ring (needs Linux 5.19+, kernel {}): {e}", sys::kernel_release()),
            )
        })?;
        let upbufs = BufRing::new(&ring, 1, UP_BUFFER_COUNT, UP_BUFFER_SIZE)?;
        let now = Instant::now();
        let listeners = spec
            .listeners
            .into_iter()
            .enumerate()
            .map(|(i, (addr, s, role))| Listener::new(addr, i as u32 + 1, Some(s), role))
            .collect::<Vec<_>>();
        let mut w = Worker {
            ring,
            bufs,
            upbufs,
            conns: Slab::with_capacity(1024),
            closing: 0,
            listener_keys: listeners.len() as u32,
            listeners,
            retired: Vec::new(),
            rebuild: None,
            staged: None,
            commit_ack: None,
            wheel: Wheel::new(),
            due: Vec::new(),
            svc,
            limits: spec.limits,
            settings: spec.settings,
            shutdown_timeout: spec.shutdown_timeout,
            multishot_recv: spec.engine.multishot,
            multishot_accept: spec.engine.multishot,
            engine: spec.engine,
            date: DateCache::new(SystemTime::now()),
            obs: Observe::new(spec.metrics.is_some()),
            logfiles: Vec::new(),
            slot: spec.metrics,
            tls_config: spec.tls,
            tls_headers: spec.tls_headers.into_bytes(),
            redirect,
            wakes: BinaryHeap::new(),
            exchanges: ExchangePool::new(),
            outbufs: BufPool::new(),
            deferred: Vec::new(),
            handshakes_left: HANDSHAKE_BUDGET,
            pipes: Vec::new(),
            start: now,
            now,
            now_ms: 0,
            published_ms: 0,
            cqes: Vec::with_capacity(1024),
            starved: Vec::new(),
            touched: Vec::new(),
            client_events: Vec::new(),
            app_due: None,
            hub: crate::upstream::Hub::new(spec.id),
            clients_done: false,
            control: spec.control,
            wake_buf: Box::new(0),
            timer_ts: Box::new(types::Timespec::from(Duration::from_millis(TICK_MS))),
            own_ops: 0,
            generation: 0,
            id: spec.id,
            draining: false,
            drain_deadline: 0,
            accept_error_logged: false,
            guards: None,
            proxy_parts: std::collections::HashMap::new(),
        };
        if let Some(g) = &spec.sites {
            w.bind_sites(g)?;
        }
        Ok(w)
    }

    /// Lets the worker take new configurations: `rebuild` makes its service
    /// for each (see [`Order`]).
    pub fn reloads_with(mut self, rebuild: Rebuild<S>) -> Worker<S> {
        self.rebuild = Some(rebuild);
        self
    }

    /// Runs until a graceful stop completes.
    pub fn run(self) -> std::io::Result<()> {
        self.run_loop(None)
    }

    /// Runs `app`'s outgoing connections (besides any listeners) until it is
    /// done and they are closed, or a graceful stop completes.
    pub fn run_clients(self, app: &mut dyn ClientApp) -> std::io::Result<()> {
        self.run_loop(Some(app))
    }

    fn run_loop(mut self, mut app: Option<&mut dyn ClientApp>) -> std::io::Result<()> {
        for i in 0..self.listeners.len() {
            self.arm_accept(i);
        }
        self.arm_timer();
        self.arm_wake();
        self.tick_clock();
        if let Some(a) = app.as_deref_mut() {
            self.run_app(a);
        }
        loop {
            if self.obs.active() {
                self.obs.end_tick();
                if self.obs.flush_due {
                    self.flush_log();
                }
            }
            // Deferred handshakes mean work is waiting: poll instead of sleeping.
            // A wake-up an exchange asked for bounds the sleep.
            // A client application's next due time too.
            let wait = if self.deferred.is_empty() {
                let wake = self.wakes.peek().map(|Reverse((t, _, _))| *t);
                let due = [wake, self.app_due, self.hub_due(), self.cache_due()]
                    .into_iter()
                    .flatten()
                    .min();
                due.map(|t| t.saturating_duration_since(Instant::now()))
            } else {
                Some(Duration::ZERO)
            };
            self.ring.submit_and_wait(wait)?;
            self.tick_clock();
            self.handshakes_left = HANDSHAKE_BUDGET;
            self.run_deferred();
            self.run_wakes();
            let mut cqes = std::mem::take(&mut self.cqes);
            cqes.clear();
            self.ring.reap(&mut cqes);
            for c in &cqes {
                self.dispatch(*c);
            }
            self.cqes = cqes;
            self.run_hub();
            self.rearm_starved();
            if let Some(a) = app.as_deref_mut()
                && !self.clients_done
            {
                self.run_app(a);
            }
            if self.draining && self.finished() {
                self.obs.end_tick();
                self.publish();
                self.quiesce();
                return Ok(());
            }
        }
    }

    /// Whether a draining worker has nothing left: no connections, listeners,
    /// or log lines unwritten.
    fn finished(&mut self) -> bool {
        if !self.conns.is_empty()
            || !self.retired.is_empty()
            || self.listeners.iter().any(|l| l.sock.is_some())
        {
            return false;
        }
        self.logs_written()
    }

    fn tick_clock(&mut self) {
        self.now = Instant::now();
        self.now_ms = self.ms(self.now);
        let wall = SystemTime::now();
        self.date.update(wall);
        self.obs.unix_secs = wall
            .duration_since(SystemTime::UNIX_EPOCH)
            .map_or(0, |d| d.as_secs());
    }

    fn ms(&self, t: Instant) -> u64 {
        let d = t.saturating_duration_since(self.start);
        d.as_secs() * 1000 + u64::from(d.subsec_millis())
    }

    fn dispatch(&mut self, cqe: Cqe) {
        let Some(t) = Token::unpack(cqe.user_data) else {
            return;
        };
        match t.op {
            Op::Accept => self.on_accept(t, cqe),
            Op::Recv | Op::RecvUp => self.on_recv(t, cqe),
            Op::Send => self.on_send(t, cqe),
            Op::Read => self.on_read(t, cqe),
            Op::SpliceIn => self.on_splice_in(t, cqe),
            Op::SpliceOut => self.on_splice_out(t, cqe),
            Op::PollOut => self.on_poll_out(t, cqe),
            Op::Connect => self.on_connect(t, cqe),
            Op::Cancel => self.on_cancel_done(t),
            Op::Timer => {
                self.own_ops -= 1;
                self.on_timer();
            }
            Op::Wake => {
                self.own_ops -= 1;
                self.on_wake();
            }
            Op::Log => {
                self.own_ops -= 1;
                self.on_log_written(t, cqe.res);
            }
        }
    }

    // ---- submission helpers -------------------------------------------------

    fn push(&mut self, e: io_uring::squeue::Entry) {
        // SAFETY: every entry built by this worker points only at memory that
        // outlives its operation: buffers owned by the operation objects held
        // in a connection's slot (`InFlight`: a slot is freed only when no
        // operation is left on it), the provided buffer ring (dropped after
        // the ring), the log file's in-flight buffer (held until its
        // completion), and boxed fields of the worker (`wake_buf`,
        // `timer_ts`), which are not freed before `quiesce` has reaped their
        // operations. Fds stay open until every operation on them has
        // completed (a slot's `OwnedFd` drops with the slot).
        unsafe { self.ring.push(e) }
    }

    /// Cancels one operation; `slot` counts the cancel's own completion.
    fn cancel(&mut self, target: u64, slot: Option<usize>) {
        let (s, g) = match slot {
            Some(s) => {
                let c = &mut self.conns[s];
                c.ops.cancels += 1;
                (s, c.generation)
            }
            None => (u32::MAX as usize, 0),
        };
        let e = op::cancel::entry(target, Token::new(Op::Cancel, s, g).pack());
        self.push(e);
    }

    fn on_cancel_done(&mut self, t: Token) {
        let slot = t.slot as usize;
        if let Some(c) = self
            .conns
            .get_mut(slot)
            .filter(|c| c.generation == t.generation && c.ops.cancels > 0)
        {
            c.ops.cancels -= 1;
            self.maybe_free(slot);
        }
    }

    fn arm_timer(&mut self) {
        let e = op::timeout::entry(&self.timer_ts, Token::new(Op::Timer, 0, 0).pack());
        self.own_ops += 1;
        self.push(e);
    }

    fn arm_wake(&mut self) {
        let ptr: *mut u64 = &mut *self.wake_buf;
        let e = io_uring::opcode::Read::new(types::Fd(self.control.wake.raw()), ptr.cast(), 8)
            .build()
            .user_data(Token::new(Op::Wake, 0, 0).pack());
        self.own_ops += 1;
        self.push(e);
    }

    /// Before the worker's memory goes: cancels its own operations (tick,
    /// wake-up read) and reaps until none is left, so the kernel writes into
    /// nothing that is freed (bounded: a second at most).
    fn quiesce(&mut self) {
        self.cancel(Token::new(Op::Timer, 0, 0).pack(), None);
        self.cancel(Token::new(Op::Wake, 0, 0).pack(), None);
        let until = Instant::now() + Duration::from_secs(1);
        while self.own_ops > 0 && Instant::now() < until {
            if self
                .ring
                .submit_and_wait(Some(Duration::from_millis(50)))
                .is_err()
            {
                break;
            }
            let mut cqes = std::mem::take(&mut self.cqes);
            cqes.clear();
            self.ring.reap(&mut cqes);
            for c in &cqes {
                if let Some(Op::Timer | Op::Wake | Op::Log) =
                    Token::unpack(c.user_data).map(|t| t.op)
                {
                    self.own_ops -= 1;
                }
            }
            self.cqes = cqes;
        }
    }
}

impl<S: Service> Drop for Worker<S> {
    fn drop(&mut self) {
        // A worker that ends early (an error) may still have operations in
        // flight: wait for its own, and leak connection slots that still have
        // some rather than free memory the kernel may write.
        if self.own_ops > 0 {
            self.quiesce();
        }
        for (_, c) in std::mem::take(&mut self.conns) {
            if c.busy() {
                std::mem::forget(c);
            }
        }
    }
}
