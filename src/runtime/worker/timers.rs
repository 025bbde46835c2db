//! Time: the periodic tick, connection deadlines, publishing measurements,
//! and requests from the controlling thread.

use std::sync::atomic::Ordering;
use std::time::{Duration, SystemTime};

use super::{POOL_BUF_SIZE, PUBLISH_MS, TICK_MS, Worker, http_env};
use crate::conn::State;
use crate::http::{Service, Waiting};
use crate::metrics::{CloseReason, Gauges};
use crate::runtime::log;

/// How often a connection whose handler has the turn is looked at again.
const HANDLER_RECHECK_MS: u64 = 3_600_000;

impl<S: Service> Worker<S> {
    /// Polls the exchanges whose wake-ups are due.
    pub(super) fn run_wakes(&mut self) {
        while let Some(std::cmp::Reverse((at, slot, generation))) = self.wakes.peek().copied() {
            if at > self.now {
                break;
            }
            self.wakes.pop();
            let Some(c) = self
                .conns
                .get(slot)
                .filter(|c| c.generation == generation && c.state == State::Open)
            else {
                continue;
            };
            // A send in flight goes on by itself when it completes; a wake-up
            // that moved or went away is stale.
            if c.writing() || c.http.wake_at().is_none_or(|w| w > self.now) {
                continue;
            }
            self.resume(slot);
        }
        if self.wakes.is_empty() && self.wakes.capacity() > 1024 {
            self.wakes.shrink_to(64);
        }
    }

    pub(super) fn on_timer(&mut self) {
        self.arm_timer();
        let now_tick = self.now_ms / TICK_MS;
        let mut due = std::mem::take(&mut self.due);
        self.wheel.expire(now_tick, &mut due);
        for e in due.drain(..) {
            let slot = e.slot as usize;
            let Some(c) = self
                .conns
                .get_mut(slot)
                .filter(|c| c.generation == e.generation && c.timer_at == e.at)
            else {
                continue;
            };
            c.timer_at = 0;
            if c.deadline > self.now_ms {
                let at = c.deadline.div_ceil(TICK_MS).max(1);
                c.timer_at = at;
                self.wheel.schedule(e.slot, e.generation, at);
            } else {
                self.expire(slot);
            }
        }
        self.due = due;
        for i in 0..self.listeners.len() {
            if self.listeners[i]
                .paused_until
                .is_some_and(|t| t <= self.now_ms)
            {
                self.listeners[i].paused_until = None;
                if !self.draining {
                    self.arm_accept(i);
                }
            }
        }
        if self.draining && self.now_ms >= self.drain_deadline {
            let open: Vec<usize> = self
                .conns
                .iter()
                .filter(|(_, c)| c.state != State::Closing)
                .map(|(k, _)| k)
                .collect();
            for slot in open {
                self.abort(slot, CloseReason::Shutdown);
            }
        }
        if self.now_ms >= self.published_ms + PUBLISH_MS {
            self.publish();
        }
        self.flush_log();
    }

    fn expire(&mut self, slot: usize) {
        let c = &mut self.conns[slot];
        match c.state {
            State::Closing => {}
            State::Lingering => {
                let why = c.why;
                self.abort(slot, why);
            }
            State::Open if c.writing() => self.abort(slot, CloseReason::Timeout),
            State::Open => {
                c.why = CloseReason::Timeout;
                if c.out.capacity() == 0 {
                    c.out = self
                        .pool
                        .pop()
                        .unwrap_or_else(|| Vec::with_capacity(POOL_BUF_SIZE));
                }
                let step = match c.tls.as_deref_mut() {
                    Some(t) => {
                        self.plain_out.clear();
                        let step = c
                            .http
                            .timeout(&mut http_env!(self, None, None), &mut self.plain_out);
                        // A handshake that never finished gets no HTTP answer.
                        if !t.session.is_handshaking() {
                            t.session.seal(&self.plain_out, &mut c.out);
                        }
                        step
                    }
                    None => c.http.timeout(&mut http_env!(self), &mut c.out),
                };
                self.after_step(slot, step);
            }
        }
    }

    pub(super) fn on_wake(&mut self) {
        if self.control.reopen.swap(false, Ordering::AcqRel)
            && let Some(f) = &mut self.logfile
            && let Err(e) = f.reopen()
        {
            log(&format!(
                "worker {}: cannot reopen the access log, keeping the old file: {e}",
                self.id
            ));
        }
        if self.control.reload.swap(false, Ordering::AcqRel)
            && let Some(slot) = &self.tls_slot
        {
            self.tls_config = Some(slot.lock().unwrap_or_else(|p| p.into_inner()).clone());
        }
        if self.control.stop.load(Ordering::Acquire) && !self.draining {
            self.begin_drain();
        }
        self.arm_wake();
    }

    /// Copies measurements and connection states into the shared slot.
    pub(super) fn publish(&mut self) {
        self.published_ms = self.now_ms;
        let Some(slot) = &self.slot else { return };
        let mut g = Gauges::default();
        for (_, c) in self.conns.iter() {
            if c.state != State::Open {
                continue;
            }
            g.active += 1;
            if c.writing() {
                g.writing += 1;
            } else {
                match c.http.waiting() {
                    Waiting::Idle => g.waiting += 1,
                    Waiting::Head(_) | Waiting::Body(_) => g.reading += 1,
                    Waiting::Handler | Waiting::Done => g.writing += 1,
                }
            }
        }
        let mut snap = slot.lock().unwrap_or_else(|p| p.into_inner());
        snap.taken = SystemTime::now();
        snap.gauges = g;
        snap.stats.counters = self.obs.stats.counters.clone();
        // Same bounds on both sides: set_to copies counts without reallocating.
        if snap.stats.latency.set_to(&self.obs.stats.latency).is_err() {
            snap.stats.latency = self.obs.stats.latency.clone();
        }
        if snap.stats.ttfb.set_to(&self.obs.stats.ttfb).is_err() {
            snap.stats.ttfb = self.obs.stats.ttfb.clone();
        }
        // The interval histogram moves to the snapshot and starts again.
        if snap.stats.recent.set_to(&self.obs.stats.recent).is_err() {
            snap.stats.recent = self.obs.stats.recent.clone();
        }
        self.obs.stats.recent.reset();
    }

    pub(super) fn refresh_deadline(&mut self, slot: usize) {
        let t = &self.timeouts;
        let now = self.now_ms;
        // The slot may have been freed by what just happened to it.
        let Some(c) = self.conns.get(slot) else {
            return;
        };
        if c.state != State::Open {
            return;
        }
        let ms = |d: Duration| d.as_millis() as u64;
        let deadline = if c.writing() {
            now + ms(t.send_timeout)
        } else {
            match c.http.waiting() {
                Waiting::Idle if c.served => now + ms(t.keep_alive_timeout),
                Waiting::Idle => now + ms(t.request_headers_timeout),
                Waiting::Head(since) => self.ms(since) + ms(t.request_headers_timeout),
                Waiting::Body(last) => self.ms(last) + ms(t.request_body_timeout),
                // The handler has the turn: no client deadline runs (the
                // entry is checked again each wheel lap).
                Waiting::Handler => now + HANDLER_RECHECK_MS,
                Waiting::Done => now + ms(t.lingering_timeout),
            }
        };
        self.conns[slot].deadline = deadline;
        self.schedule(slot);
    }

    pub(super) fn schedule(&mut self, slot: usize) {
        let c = &mut self.conns[slot];
        let at = c.deadline.div_ceil(TICK_MS).max(1);
        if c.timer_at == 0 || at < c.timer_at {
            c.timer_at = at;
            self.wheel.schedule(slot as u32, c.generation, at);
        }
    }
}
