//! Reloading: a new configuration generation handed to a worker in two
//! steps through its [`super::Control`]. `Prepare` builds the worker's
//! handlers for it (on this thread: they keep per-core state) and sets them
//! aside; `Commit` puts them in effect between two events of the loop;
//! `Abort` drops what was prepared.
//!
//! A request is dispatched to the service once, when its head is complete,
//! and what it answers with owns what it needs (a pending task or a body
//! source), so a request in flight finishes on the generation it started
//! with, and a keep-alive connection's next request meets the new one.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::mpsc::Sender;
use std::time::Duration;

use socket2::Socket;

use super::Worker;
use super::conn::with_driver;
use super::listeners::Listener;
use super::slot::{Driver, RETIRED, Role};
use crate::driver::Settings;
use crate::http::{Limits, Service};
use crate::runtime::log;
use crate::site::Generation;

/// One listener of a new generation, in the plan's order.
#[derive(Debug)]
pub struct Bind {
    /// The address as configured: a worker keeps the socket it has for it.
    pub addr: SocketAddr,
    /// This worker's socket for an address it does not listen on yet
    /// (bound before the update is sent).
    pub socket: Option<Socket>,
    /// What it serves.
    pub role: Role,
}

/// A new configuration for one worker.
#[derive(Debug)]
pub struct Update {
    /// The generation's number.
    pub number: u64,
    /// Sites, routes and the TLS context.
    pub generation: Arc<Generation>,
    /// Every listener of the generation, in the plan's order (a request's
    /// listener index is its position here).
    pub listeners: Vec<Bind>,
    /// Size limits.
    pub limits: Limits,
    /// Timeouts and minimum data rates of connections.
    pub settings: Settings,
    /// How long a graceful stop waits for requests in flight.
    pub shutdown_timeout: Duration,
    /// Header lines added to HTTPS responses (HSTS).
    pub tls_headers: String,
    /// The HTTPS port plain listeners redirect to, when they do.
    pub redirect_port: Option<u16>,
}

/// A step of a reload.
#[derive(Debug)]
pub enum Order {
    /// Build the handlers of this update and keep them aside; answer whether
    /// that worked.
    Prepare(Box<Update>, Sender<Result<(), String>>),
    /// Put the prepared update in effect; answer once it is, and the
    /// listeners it removed are closed.
    Commit(Sender<()>),
    /// Drop the prepared update.
    Abort,
    /// Remove stored responses from the worker's cache; answer how many.
    Purge(crate::cache::Purge, Sender<usize>),
}

/// Builds a worker's service (and the service of plain listeners that
/// redirect to HTTPS) for an update, on the worker's thread.
pub type Rebuild<S> = Box<dyn FnMut(&Update) -> Result<(S, Option<Box<dyn Service>>), String>>;

/// An update prepared and waiting for its commit.
pub(super) struct Staged<S> {
    update: Box<Update>,
    svc: S,
    redirect: Option<Box<dyn Service>>,
}

impl<S: Service> Worker<S> {
    /// Carries out the reload steps the controlling thread has queued.
    pub(super) fn run_orders(&mut self) {
        let orders = std::mem::take(
            &mut *self
                .control
                .orders
                .lock()
                .unwrap_or_else(|p| p.into_inner()),
        );
        for o in orders {
            match o {
                Order::Prepare(u, ack) => {
                    let r = self.prepare(u);
                    let _ = ack.send(r);
                }
                Order::Commit(ack) => self.commit(ack),
                Order::Abort => self.staged = None,
                Order::Purge(p, ack) => {
                    let n = crate::cache::local().borrow_mut().purge(&p);
                    let _ = ack.send(n);
                }
            }
        }
    }

    fn prepare(&mut self, update: Box<Update>) -> Result<(), String> {
        let Some(rebuild) = self.rebuild.as_mut() else {
            return Err(format!("worker {} cannot reload", self.id));
        };
        let (svc, redirect) = rebuild(&update)?;
        self.staged = Some(Staged {
            update,
            svc,
            redirect,
        });
        Ok(())
    }

    fn commit(&mut self, ack: Sender<()>) {
        if let Some(earlier) = self.commit_ack.replace(ack) {
            let _ = earlier.send(());
        }
        let Some(Staged {
            update,
            svc,
            redirect,
        }) = self.staged.take()
        else {
            self.ack_commit();
            return;
        };
        let u = *update;
        self.svc = svc;
        self.redirect = redirect;
        self.tls_config = u.generation.tls.clone();
        // The new sites' names label the counters from now on, and their
        // access logs open (a file that cannot be opened keeps its lines in
        // the logs they went to before).
        if let Err(e) = self.bind_sites(&u.generation) {
            log(&format!("worker {}: {e}", self.id));
        }
        self.tls_headers = u.tls_headers.into_bytes();
        self.limits = u.limits;
        self.settings = u.settings;
        self.shutdown_timeout = u.shutdown_timeout;
        let remap = self.replace_listeners(u.listeners);
        self.move_connections(&remap);
        self.ack_commit();
    }

    /// Puts the new listeners in place, in the plan's order: kept addresses
    /// keep their sockets (and accept queues), new ones start accepting,
    /// removed ones are retired. Returns, per old listener index, its new
    /// index and role.
    fn replace_listeners(&mut self, binds: Vec<Bind>) -> Vec<Option<(u16, Role)>> {
        let mut old: Vec<Option<Listener>> = std::mem::take(&mut self.listeners)
            .into_iter()
            .map(Some)
            .collect();
        let mut remap = vec![None; old.len()];
        let mut new = Vec::with_capacity(binds.len());
        for (i, b) in binds.into_iter().enumerate() {
            let kept = old
                .iter()
                .position(|l| l.as_ref().is_some_and(|l| l.addr == b.addr));
            let l = match (kept, b.socket) {
                (Some(j), _) => {
                    let mut l = old[j].take().expect("found above");
                    remap[j] = Some((i as u16, b.role));
                    l.role = b.role;
                    l
                }
                (None, Some(sock)) => Listener::new(b.addr, self.next_key(), Some(sock), b.role),
                (None, None) => {
                    // Nothing to listen with: the index stays in line with
                    // the plan, and nothing arrives on it.
                    crate::runtime::log(&format!(
                        "worker {}: no socket for {}; not listening there",
                        self.id, b.addr
                    ));
                    Listener::new(b.addr, self.next_key(), None, b.role)
                }
            };
            new.push(l);
        }
        self.listeners = new;
        for l in old.into_iter().flatten() {
            self.retire(l);
        }
        for i in 0..self.listeners.len() {
            if self.draining {
                if !self.listeners[i].armed {
                    self.listeners[i].sock = None;
                }
            } else {
                self.arm_accept(i);
            }
        }
        remap
    }

    /// Points open connections at their listener's new index; those whose
    /// listener went away (or changed between plain and HTTPS) finish what
    /// is in flight and close.
    fn move_connections(&mut self, remap: &[Option<(u16, Role)>]) {
        let mut ending = Vec::new();
        for (k, c) in self.conns.iter_mut() {
            if c.closing || c.listener == RETIRED || !matches!(c.driver, Driver::Server(_)) {
                continue;
            }
            let tls = c.role == Role::Tls;
            match remap.get(usize::from(c.listener)).copied().flatten() {
                Some((i, role)) if (role == Role::Tls) == tls => {
                    c.listener = i;
                    c.role = role;
                }
                _ => {
                    c.listener = RETIRED;
                    ending.push(k);
                }
            }
        }
        for slot in ending {
            with_driver!(self, slot, |d, cx| d.drain(&mut cx));
        }
    }

    /// Answers the commit once no retired listener is left open.
    pub(super) fn ack_commit(&mut self) {
        if self.retired.is_empty()
            && let Some(a) = self.commit_ack.take()
        {
            let _ = a.send(());
        }
    }
}
