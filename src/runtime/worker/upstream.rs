//! The worker's side of its upstream engine ([`Hub`]): carrying out the
//! hub's commands on the ring, handing it the events of its connections with
//! their drivers, and polling again the server connections it names.

use std::time::Instant;

use super::Worker;
use super::clients::{ClientIo, Target};
use super::conn::with_driver;
use super::slot::Driver;
use crate::driver::ClientEvent;
use crate::exchange::Waker;
use crate::http::Service;
use crate::upstream::{Cmd, HUB_KEY};

impl<S: Service> Worker<S> {
    /// Runs the hub until it has nothing left for the executor: commands,
    /// connections to drive, exchanges to poll again.
    pub(super) fn run_hub(&mut self) {
        if self.hub.due().is_some_and(|t| t <= self.now) {
            self.hub.tick(self.now);
        }
        let mut cmds = Vec::new();
        let mut wakes: Vec<Waker> = Vec::new();
        let store = crate::cache::local();
        for _ in 0..64 {
            self.hub.collect();
            let cache_work = {
                let s = store.borrow();
                s.has_wakes() || s.jobs_due().is_some_and(|t| t <= self.now)
            };
            if !self.hub.has_work() && !cache_work {
                break;
            }
            if cache_work {
                self.run_cache(&store, &mut wakes);
            }
            self.hub.take_cmds(&mut cmds);
            for c in cmds.drain(..) {
                match c {
                    Cmd::Connect {
                        key,
                        addr,
                        tls,
                        settings,
                    } => match self.connect(Target { addr, tls }, key, settings) {
                        Ok(id) => self.hub.bound(key, id),
                        Err(e) => {
                            let errno = e.raw_os_error().unwrap_or(libc::EMFILE);
                            self.hub.connect_failed(key, errno, self.now);
                        }
                    },
                    Cmd::Touch(id) => self.touch(id),
                    Cmd::Close(id) => self.close(id),
                }
            }
            self.drive_touched();
            self.hub.take_wakes(&mut wakes);
            for w in wakes.drain(..) {
                if w == crate::cache::BACKGROUND {
                    store.borrow_mut().wake_jobs(self.now);
                    continue;
                }
                self.wake_conn(w);
            }
        }
    }

    /// Polls again the server connection `w` names, if it is still that one.
    fn wake_conn(&mut self, w: Waker) {
        let slot = w.slot as usize;
        let live = self
            .conns
            .get(slot)
            .is_some_and(|c| c.generation == w.generation && !c.closing);
        if live && matches!(self.conns[slot].driver, Driver::Server(_)) {
            with_driver!(self, slot, |d, cx| d.on_wake(&mut cx));
        }
    }

    /// Polls again the exchanges the response store names (a fill they
    /// waited for ended), and runs its background jobs that are due.
    fn run_cache(
        &mut self,
        store: &std::rc::Rc<std::cell::RefCell<crate::cache::Store>>,
        wakes: &mut Vec<Waker>,
    ) {
        store.borrow_mut().take_wakes(wakes);
        for w in wakes.drain(..) {
            self.wake_conn(w);
        }
        if store.borrow().jobs_due().is_none_or(|t| t > self.now) {
            return;
        }
        let jobs = store.borrow_mut().take_jobs();
        let mut kept = Vec::with_capacity(jobs.len());
        let mut due: Option<Instant> = None;
        for mut j in jobs {
            let mut io = crate::exchange::Io::with_upstreams(
                self.now,
                Some(crate::cache::BACKGROUND),
                Some(&mut self.hub),
            );
            if !j.poll(&mut io) {
                if let Some(t) = io.wake() {
                    due = Some(due.map_or(t, |d| d.min(t)));
                }
                kept.push(j);
            }
        }
        store.borrow_mut().put_jobs(kept, due);
    }

    /// When the response store's background jobs want to be polled.
    pub(super) fn cache_due(&self) -> Option<Instant> {
        crate::cache::local().borrow().jobs_due()
    }

    /// When the hub wants its next tick.
    pub(super) fn hub_due(&self) -> Option<Instant> {
        self.hub.due()
    }

    /// Hands a hub connection's events to the hub, then lets it move what
    /// waits between the driver and the exchange.
    pub(super) fn hub_events(&mut self, slot: usize) {
        let now = self.now;
        let c = &mut self.conns[slot];
        let Driver::Client(o) = &mut c.driver else {
            return;
        };
        let d = &mut o.conn;
        let key = d.owner();
        while let Some(e) = d.poll_event() {
            let closed = matches!(e, ClientEvent::Closed { .. });
            self.hub.on_event(key, d, e, now);
            if closed {
                return;
            }
        }
        self.hub.sync(key, d, now);
    }

    /// Has a hub connection driven when the commands of this turn are done.
    fn touch(&mut self, id: crate::runtime::worker::ConnId) {
        self.touched.push(id.parts());
    }

    /// Whether the connection's events belong to the hub.
    pub(super) fn is_hub_conn(&self, slot: usize) -> bool {
        match &self.conns[slot].driver {
            Driver::Client(o) => o.conn.owner() & HUB_KEY != 0,
            Driver::Server(_) => false,
        }
    }
}
