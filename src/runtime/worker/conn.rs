//! Connections: accepting, completions of their operations handed to the
//! driver, the driver's actions carried out (see `act.rs`), and freeing.

use std::os::fd::{AsFd, OwnedFd};

use super::act::recv_op;
use super::slot::{Driver, Recv, Role, Slot};
use super::{PIPE_POOL_MAX, Worker};
use crate::driver::ServerConn;
use crate::http::Service;
use crate::metrics::CloseReason;
use crate::runtime::log;
use crate::runtime::op::{self, recv::Received};
use crate::runtime::ring::Cqe;
use crate::runtime::sys;
use crate::runtime::token::{Op, Token, next_gen};
use crate::tls::TlsSession;

/// Builds a driver [`crate::driver::Cx`] from disjoint worker fields, so the
/// slot's driver can be borrowed beside it.
macro_rules! cx {
    ($w:expr, $role:expr, $listener:expr, $peer:expr, $slot:expr, $gen:expr) => {
        crate::driver::Cx {
            now: $w.now,
            date: $w.date.get(),
            // A connection whose listener is gone ends as if stopping.
            draining: $w.draining || $listener == crate::runtime::worker::slot::RETIRED,
            svc: match ($role, $w.redirect.as_deref_mut()) {
                (crate::runtime::worker::Role::Redirect(_), Some(r)) => r,
                _ => &mut $w.svc,
            },
            obs: &mut $w.obs,
            exchanges: &mut $w.exchanges,
            bufs: &mut $w.outbufs,
            limits: &$w.limits,
            settings: &$w.settings,
            tls_headers: &$w.tls_headers,
            splice_min: $w.engine.splice_min_size as u64,
            file_chunk: $w.engine.file_chunk_size,
            handshakes_left: &mut $w.handshakes_left,
            peer: $peer,
            listener: $listener,
            waker: Some(crate::exchange::Waker {
                slot: $slot as u32,
                generation: $gen,
            }),
            upstreams: Some(&mut $w.hub),
        }
    };
}
pub(super) use cx;

/// Runs `$call` on slot `$slot`'s server driver with a fresh `Cx`, then
/// carries out what it asks for.
macro_rules! with_driver {
    ($w:expr, $slot:expr, |$d:ident, $cx:ident| $call:expr) => {{
        let c = &mut $w.conns[$slot];
        let (role, listener, peer) = (c.role, c.listener, c.peer.as_deref().copied());
        let generation = c.generation;
        if let super::slot::Driver::Server($d) = &mut c.driver {
            let mut $cx = super::conn::cx!($w, role, listener, peer, $slot, generation);
            $call;
        }
        $w.drive($slot);
    }};
}
pub(super) use with_driver;

impl<S: Service> Worker<S> {
    pub(super) fn new_conn(&mut self, fd: OwnedFd, role: Role, listener: u16) {
        let per_worker = self.engine.max_connections;
        let full = per_worker > 0 && self.conns.len() - self.closing >= per_worker;
        // Room may be made by closing an idle connection (its slot is freed
        // once its operations end).
        let made_room =
            full && !self.draining && self.engine.evict_idle_at_limit && self.evict_one();
        if self.draining || (full && !made_room) {
            drop(fd);
            if self.obs.metrics {
                self.obs.stats.counters.accepted += 1;
                self.obs.stats.counters.closed(if self.draining {
                    CloseReason::Shutdown
                } else {
                    CloseReason::Limit
                });
            }
            return;
        }
        if self.obs.metrics {
            self.obs.stats.counters.accepted += 1;
        }
        let guards = self.guards.as_deref();
        let proxy = guards.is_some_and(|g| g.proxy_protocol(usize::from(listener)));
        let mut peer = None;
        if !proxy && let Some(g) = guards.filter(|g| g.checks_at_accept(usize::from(listener))) {
            peer = sys::peer_addr(fd.as_fd());
            if peer.is_some_and(|p| g.refuse_at_accept(usize::from(listener), p.ip())) {
                // Refused before anything is read (or a TLS handshake done).
                drop(fd);
                if self.obs.metrics {
                    self.obs.stats.counters.closed(CloseReason::Denied);
                }
                return;
            }
        }
        let tls = match (role, &self.tls_config) {
            (Role::Tls, Some(cfg)) => match TlsSession::new(cfg.clone()) {
                Ok(t) => Some(t),
                Err(e) => {
                    log(&format!(
                        "worker {}: cannot start a TLS session: {e}",
                        self.id
                    ));
                    return;
                }
            },
            _ => None,
        };
        self.generation = next_gen(self.generation);
        let driver = Driver::Server(ServerConn::new(tls, self.now));
        let slot = self
            .conns
            .insert(Slot::new(fd, self.generation, (role, listener), driver));
        let c = &mut self.conns[slot];
        c.peer = peer.map(Box::new);
        if proxy {
            self.proxy_parts.insert(slot, Vec::new());
        } else if !self.proxy_parts.is_empty() {
            // What a connection that left before its header had.
            self.proxy_parts.remove(&slot);
        }
        self.drive(slot);
    }

    /// Closes the longest-held connection with no request in progress, if
    /// there is one.
    fn evict_one(&mut self) -> bool {
        let victim = self
            .conns
            .iter()
            .filter(|(_, c)| !c.closing && c.driver.server().is_some_and(|d| d.evictable()))
            .min_by_key(|(_, c)| c.driver.server().map(|d| d.accepted()))
            .map(|(k, _)| k);
        let Some(slot) = victim else { return false };
        with_driver!(self, slot, |d, cx| d.abort(CloseReason::Limit, &mut cx));
        true
    }

    /// The slot for a completion, if it is still the one the operation was
    /// issued for.
    pub(super) fn slot_of(&mut self, t: Token) -> Option<usize> {
        let s = t.slot as usize;
        self.conns
            .get(s)
            .filter(|c| c.generation == t.generation)
            .map(|_| s)
    }

    pub(super) fn on_recv(&mut self, t: Token, cqe: Cqe) {
        let (r, more) = op::recv::complete(cqe.res, cqe.flags, self.multishot_recv);
        let up = t.op == Op::RecvUp;
        let Some(slot) = self.slot_of(t) else {
            if let Some(h) = op::recv::buffer(cqe.flags) {
                if up {
                    self.upbufs.recycle(h);
                } else {
                    self.bufs.recycle(h);
                }
            }
            return;
        };
        if !more {
            self.conns[slot].ops.recv = Recv::Idle;
        }
        match r {
            Received::Data(h) => {
                if self.obs.metrics {
                    self.obs.stats.counters.bytes_in += h.len() as u64;
                }
                let data = if up {
                    self.upbufs.get(&h)
                } else {
                    self.bufs.get(&h)
                };
                let c = &mut self.conns[slot];
                let mut refused = false;
                match &mut c.driver {
                    Driver::Server(d) => {
                        if c.peer.is_none() {
                            c.peer = sys::peer_addr(c.fd.as_fd()).map(Box::new);
                        }
                        let input = super::proxied::input(
                            &mut self.proxy_parts,
                            self.guards.as_deref(),
                            (slot, c.listener, &mut c.peer),
                            data,
                        );
                        refused = input.is_err();
                        if let Ok(Some(input)) = input {
                            let (role, listener, peer) =
                                (c.role, c.listener, c.peer.as_deref().copied());
                            let generation = c.generation;
                            let mut cx = cx!(self, role, listener, peer, slot, generation);
                            d.on_recv(&input, &mut cx);
                        }
                    }
                    Driver::Client(o) => {
                        o.conn.stock_body(&mut self.outbufs);
                        o.on_recv(data, self.now)
                    }
                }
                if up {
                    self.upbufs.recycle(h);
                } else {
                    self.bufs.recycle(h);
                }
                if refused {
                    with_driver!(self, slot, |d, cx| d.abort(CloseReason::Denied, &mut cx));
                } else {
                    self.drive(slot);
                }
            }
            Received::Eof => self.on_eof(slot, false),
            Received::Starved => {
                self.starved.push((slot, t.generation));
                self.maybe_free(slot);
            }
            Received::Cancelled => self.drive(slot),
            Received::NoMultishot => {
                log(
                    "multishot receive is not supported by this kernel; using single-shot receives",
                );
                self.multishot_recv = false;
                self.drive(slot);
            }
            Received::Failed(_) => self.on_eof(slot, true),
        }
    }

    /// The peer of slot `slot` shut its side, or the connection reset.
    fn on_eof(&mut self, slot: usize, reset: bool) {
        if let Driver::Client(d) = &mut self.conns[slot].driver {
            d.on_eof(reset, self.now);
            self.drive(slot);
        } else {
            with_driver!(self, slot, |d, cx| d.on_eof(reset, &mut cx));
        }
    }

    pub(super) fn on_send(&mut self, t: Token, cqe: Cqe) {
        let Some(slot) = self.slot_of(t) else { return };
        let Some(send) = self.conns[slot].ops.send.take() else {
            return;
        };
        let (buf, tail, r) = send.complete(cqe.res);
        match r {
            Ok(n) => {
                if self.obs.metrics {
                    self.obs.stats.counters.bytes_out += n as u64;
                }
                if let Driver::Client(o) = &mut self.conns[slot].driver {
                    o.on_sent(buf, n, self.now);
                    self.drive(slot);
                } else if let Some(tail) = tail {
                    with_driver!(self, slot, |d, cx| d.on_sent_gather(buf, tail, n, &mut cx));
                } else {
                    with_driver!(self, slot, |d, cx| d.on_sent(buf, n, &mut cx));
                }
            }
            Err(errno) => {
                self.outbufs.put(buf);
                if let Some(t) = tail {
                    self.outbufs.put(t);
                }
                if let Driver::Client(d) = &mut self.conns[slot].driver {
                    d.conn.on_send_failed(errno);
                    self.drive(slot);
                } else {
                    with_driver!(self, slot, |d, cx| d.on_send_failed(&mut cx));
                }
            }
        }
    }

    pub(super) fn on_read(&mut self, t: Token, cqe: Cqe) {
        let Some(slot) = self.slot_of(t) else { return };
        let ops = &mut self.conns[slot].ops;
        let Some((read, tag)) = ops
            .read
            .as_mut()
            .and_then(|r| r.0.get_mut(usize::from(t.sub))?.take())
        else {
            return;
        };
        if ops
            .read
            .as_ref()
            .is_some_and(|r| r.0.iter().all(Option::is_none))
        {
            ops.read = None;
        }
        let (buf, res) = read.complete(cqe.res);
        with_driver!(self, slot, |d, cx| d.on_read(buf, res, tag, &mut cx));
    }

    pub(super) fn on_splice_in(&mut self, t: Token, cqe: Cqe) {
        let Some(slot) = self.slot_of(t) else { return };
        self.conns[slot].ops.splice_in = None;
        with_driver!(self, slot, |d, cx| d.on_spliced_in(cqe.res, &mut cx));
    }

    pub(super) fn on_splice_out(&mut self, t: Token, cqe: Cqe) {
        let Some(slot) = self.slot_of(t) else { return };
        self.conns[slot].ops.splice_out = false;
        if cqe.res > 0 && self.obs.metrics {
            self.obs.stats.counters.bytes_out += cqe.res as u64;
        }
        with_driver!(self, slot, |d, cx| d.on_spliced_out(cqe.res, &mut cx));
    }

    pub(super) fn on_poll_out(&mut self, t: Token, cqe: Cqe) {
        let Some(slot) = self.slot_of(t) else { return };
        self.conns[slot].ops.poll = false;
        with_driver!(self, slot, |d, cx| d.on_poll_out(cqe.res, &mut cx));
    }

    /// Carries out what a slot's driver asks for: its actions, its receive,
    /// its deadline and wake-up; frees the slot once it is closed and idle.
    pub(super) fn drive(&mut self, slot: usize) {
        while let Some(a) = self.conns[slot].driver.poll_action() {
            self.act(slot, a);
        }
        if let Driver::Client(_) = self.conns[slot].driver {
            if self.is_hub_conn(slot) {
                self.hub_events(slot);
                // What the hub moved may call for a send.
                while let Some(a) = self.conns[slot].driver.poll_action() {
                    self.act(slot, a);
                }
            } else {
                self.take_events(slot);
            }
        }
        let c = &mut self.conns[slot];
        if c.closing || c.driver.is_closed() {
            self.maybe_free(slot);
            return;
        }
        let wants = c.driver.wants_recv();
        match c.ops.recv {
            Recv::Idle if wants => self.arm_recv(slot),
            Recv::Armed if !wants => {
                let tok = Token::new(recv_op(&c.driver), slot, c.generation).pack();
                c.ops.recv = Recv::Cancelling;
                self.cancel(tok, Some(slot));
            }
            _ => {}
        }
        let start = self.start;
        let c = &mut self.conns[slot];
        let tick = c.driver.deadline(&self.settings).map_or(0, |at| {
            let d = at.saturating_duration_since(start);
            let ms = d.as_secs() * 1000 + u64::from(d.subsec_millis());
            ms.div_ceil(super::TICK_MS).max(1)
        });
        // Lazy: an entry is moved only earlier. One that fires before the
        // driver's deadline finds nothing due and is set again then, so a
        // deadline that moves later on every request costs nothing here.
        if tick != 0 && (c.tick == 0 || tick < c.tick) {
            c.tick = tick;
            self.wheel.set(slot as u32, c.generation, tick);
        }
        let (wake, deferred) = match &c.driver {
            Driver::Server(d) => (d.wake_at(), d.deferred()),
            Driver::Client(_) => (None, false),
        };
        if wake != c.wake {
            c.wake = wake;
            if let Some(at) = wake {
                self.wakes.push(std::cmp::Reverse((at, slot, c.generation)));
            }
        }
        if deferred && !c.deferred {
            c.deferred = true;
            self.deferred.push((slot, c.generation));
        }
    }

    /// Frees a closed slot once no operation is left on it: the socket is
    /// closed (its `OwnedFd` drops) and an empty pipe is pooled.
    pub(super) fn maybe_free(&mut self, slot: usize) {
        let c = &self.conns[slot];
        if !(c.closing || c.driver.is_closed()) || c.busy() {
            return;
        }
        if !c.closing {
            // Closed without its Close action carried out (cannot happen:
            // drive takes every action first); count it once here.
            return;
        }
        let mut c = self.conns.remove(slot);
        self.closing -= 1;
        self.wheel.clear(slot as u32);
        c.driver.release(&mut self.outbufs);
        // A splice that finished after the cancel may have filled the pipe
        // behind the driver's count: only a pipe that is really empty is reused.
        if let Some(p) = c.pipe.take()
            && self.pipes.len() < PIPE_POOL_MAX
            && p.is_empty()
        {
            self.pipes.push(*p);
        }
    }
}
