//! Time: the periodic tick, connection deadlines and wake-ups, publishing
//! measurements, draining, and requests from the controlling thread.

use std::sync::atomic::Ordering;
use std::time::SystemTime;

use super::conn::with_driver;
use super::slot::Driver;
use super::{PUBLISH_MS, TICK_MS, Worker};
use crate::driver::Gauge;
use crate::http::Service;
use crate::metrics::{CloseReason, Gauges};

impl<S: Service> Worker<S> {
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
                .filter(|c| c.generation == e.generation)
            else {
                continue;
            };
            c.tick = 0;
            if let Driver::Client(o) = &mut c.driver {
                o.conn.on_timer(self.now);
                self.drive(slot);
                continue;
            }
            with_driver!(self, slot, |d, cx| d.on_timer(&mut cx));
        }
        self.due = due;
        self.resume_paused();
        if self.draining && self.now_ms >= self.drain_deadline {
            for slot in self.open_slots() {
                if let Driver::Client(o) = &mut self.conns[slot].driver {
                    o.conn.close();
                }
                with_driver!(self, slot, |d, cx| d.abort(CloseReason::Shutdown, &mut cx));
            }
        }
        if self.now_ms >= self.published_ms + PUBLISH_MS {
            self.publish();
            if self.conns.is_empty() {
                self.wheel.shrink();
            }
        }
        self.flush_log();
    }

    /// Polls the exchanges whose wake-ups are due. Only the entries queued
    /// before the call are looked at: a connection that cannot act on its
    /// wake-up yet (a send in flight) queues the same due time again, and is
    /// polled on the next turn of the loop, after the completions are reaped,
    /// rather than again and again here.
    pub(super) fn run_wakes(&mut self) {
        let mut left = self.wakes.len();
        while let Some(std::cmp::Reverse((at, slot, generation))) = self.wakes.peek().copied() {
            if at > self.now || left == 0 {
                break;
            }
            left -= 1;
            self.wakes.pop();
            let Some(c) = self
                .conns
                .get_mut(slot)
                .filter(|c| c.generation == generation && !c.closing)
            else {
                continue;
            };
            // A wake-up that moved or went away is stale.
            if c.wake != Some(at) {
                continue;
            }
            c.wake = None;
            with_driver!(self, slot, |d, cx| d.on_timer(&mut cx));
        }
        if self.wakes.is_empty() && self.wakes.capacity() > 1024 {
            self.wakes.shrink_to(64);
        }
    }

    /// TLS input held back by the per-tick handshake budget.
    pub(super) fn run_deferred(&mut self) {
        if self.deferred.is_empty() {
            return;
        }
        let list = std::mem::take(&mut self.deferred);
        for (slot, generation) in list {
            let Some(c) = self
                .conns
                .get_mut(slot)
                .filter(|c| c.generation == generation && !c.closing)
            else {
                continue;
            };
            c.deferred = false;
            with_driver!(self, slot, |d, cx| d.retry(&mut cx));
        }
        self.deferred.shrink_to(64);
    }

    pub(super) fn rearm_starved(&mut self) {
        let starved = std::mem::take(&mut self.starved);
        for (slot, generation) in starved.iter().copied() {
            if self
                .conns
                .get(slot)
                .is_some_and(|c| c.generation == generation && !c.closing)
            {
                self.drive(slot);
            }
        }
        self.starved = starved;
        self.starved.clear();
    }

    pub(super) fn on_wake(&mut self) {
        if self.control.reopen.swap(false, Ordering::AcqRel) {
            self.reopen_logs();
        }
        self.run_orders();
        if self.control.stop.load(Ordering::Acquire) && !self.draining {
            self.begin_drain();
        }
        self.arm_wake();
    }

    pub(super) fn begin_drain(&mut self) {
        self.draining = true;
        self.drain_deadline = self.now_ms + self.shutdown_timeout.as_millis() as u64;
        self.close_listeners();
        self.hub.drain();
        for slot in self.open_slots() {
            with_driver!(self, slot, |d, cx| d.drain(&mut cx));
        }
    }

    /// The slots of connections not closing yet.
    fn open_slots(&self) -> Vec<usize> {
        self.conns
            .iter()
            .filter(|(_, c)| !c.closing)
            .map(|(k, _)| k)
            .collect()
    }

    /// Copies measurements, connection states and the upstream engine's
    /// figures into the shared slot.
    pub(super) fn publish(&mut self) {
        self.published_ms = self.now_ms;
        let Some(slot) = &self.slot else { return };
        let mut g = Gauges::default();
        for (_, c) in self.conns.iter() {
            if let Some(n) = c.driver.server().and_then(|d| d.http2_streams()) {
                g.http2 += 1;
                g.http2_streams += n as u64;
            }
            match c.driver.server().map_or(Gauge::Ending, |d| d.gauge()) {
                Gauge::Ending => continue,
                Gauge::Writing => g.writing += 1,
                Gauge::Reading => g.reading += 1,
                Gauge::Waiting => g.waiting += 1,
            }
            g.active += 1;
        }
        let mut snap = slot.lock().unwrap_or_else(|p| p.into_inner());
        snap.taken = SystemTime::now();
        snap.gauges = g;
        self.obs.stats.publish(&mut snap.stats);
        self.hub.report(self.now, &mut snap.upstreams);
        snap.cache = crate::cache::local().borrow().stats();
    }
}
