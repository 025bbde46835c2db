//! Listening sockets of one worker: arming accepts, accepted connections,
//! pauses for descriptor shortage, and listeners retired by a reload.
//!
//! An accept's `user_data` names its listener by a key that stays the same
//! while the listener lives, not by its position: a reload may reorder the
//! listeners (they follow the plan's order) while a multishot accept stays
//! armed, and a retired listener's last completions must still find it.

use std::net::SocketAddr;
use std::os::fd::{AsFd, FromRawFd, OwnedFd};

use socket2::Socket;

use super::slot::Role;
use super::{ACCEPT_BACKOFF_MS, Worker};
use crate::http::Service;
use crate::runtime::log;
use crate::runtime::op::{self, accept::Accepted};
use crate::runtime::ring::Cqe;
use crate::runtime::token::{Op, Token};

/// One listening socket of this worker.
pub(super) struct Listener {
    /// The address as configured (port 0 stays 0): what reloads compare.
    pub addr: SocketAddr,
    /// Names the listener in its accepts' `user_data`.
    pub key: u32,
    /// The socket; `None` once closed (stopping).
    pub sock: Option<Socket>,
    pub role: Role,
    /// An accept is in flight on it.
    pub armed: bool,
    /// Accepting is paused until this worker millisecond (descriptor shortage).
    pub paused_until: Option<u64>,
}

impl Listener {
    /// A listener not yet accepting.
    pub fn new(addr: SocketAddr, key: u32, sock: Option<Socket>, role: Role) -> Listener {
        Listener {
            addr,
            key,
            sock,
            role,
            armed: false,
            paused_until: None,
        }
    }

    /// The `user_data` of its accepts.
    pub fn token(&self) -> u64 {
        Token::new(Op::Accept, self.key as usize, 0).pack()
    }
}

/// Where an accept completion's listener is.
enum Found {
    /// Serving, at this index.
    Live(usize),
    /// Retired by a reload, at this index of the retired list.
    Retired(usize),
    Gone,
}

impl<S: Service> Worker<S> {
    fn find_listener(&self, key: u32) -> Found {
        if let Some(i) = self.listeners.iter().position(|l| l.key == key) {
            return Found::Live(i);
        }
        match self.retired.iter().position(|l| l.key == key) {
            Some(i) => Found::Retired(i),
            None => Found::Gone,
        }
    }

    pub(super) fn arm_accept(&mut self, idx: usize) {
        let l = &mut self.listeners[idx];
        let Some(sock) = &l.sock else { return };
        if l.armed || l.paused_until.is_some() {
            return;
        }
        let e = op::accept::entry(sock.as_fd(), self.multishot_accept, l.token());
        l.armed = true;
        self.push(e);
    }

    pub(super) fn on_accept(&mut self, t: Token, cqe: Cqe) {
        let more = io_uring::cqueue::more(cqe.flags);
        let idx = match self.find_listener(t.slot) {
            Found::Live(i) => i,
            Found::Retired(i) => {
                // Accepted while its listener was being retired: the
                // address is no longer served.
                if let Accepted::Conn(fd) = op::accept::complete(cqe.res, self.multishot_accept) {
                    // SAFETY: the kernel just handed us this descriptor in
                    // the completion; nothing else owns it.
                    drop(unsafe { OwnedFd::from_raw_fd(fd) });
                }
                if !more {
                    // Its last completion: the socket closes now.
                    self.retired.swap_remove(i);
                    self.ack_commit();
                }
                return;
            }
            Found::Gone => return,
        };
        if !more {
            self.listeners[idx].armed = false;
        }
        match op::accept::complete(cqe.res, self.multishot_accept) {
            Accepted::Conn(fd) => {
                self.accept_error_logged = false;
                // SAFETY: the kernel just handed us this descriptor in the
                // completion; nothing else owns it.
                let fd = unsafe { OwnedFd::from_raw_fd(fd) };
                let role = self.listeners[idx].role;
                self.new_conn(fd, role, idx as u16);
            }
            Accepted::Starved(err) => {
                if !self.accept_error_logged {
                    self.accept_error_logged = true;
                    log(&format!(
                        "worker {}: accept failed: {}; pausing accepts for {ACCEPT_BACKOFF_MS} ms, existing connections are still served",
                        self.id,
                        std::io::Error::from_raw_os_error(err)
                    ));
                }
                let l = &mut self.listeners[idx];
                l.paused_until = Some(self.now_ms + ACCEPT_BACKOFF_MS);
                if l.armed {
                    let tok = l.token();
                    self.cancel(tok, None);
                }
            }
            Accepted::NoMultishot => {
                log("multishot accept is not supported by this kernel; using single-shot accepts");
                self.multishot_accept = false;
            }
            Accepted::Other(_) => {}
        }
        let l = &mut self.listeners[idx];
        if self.draining {
            if !l.armed {
                l.sock = None;
            }
        } else if !l.armed {
            self.arm_accept(idx);
        }
    }

    /// Re-arms listeners whose pause for descriptor shortage is over.
    pub(super) fn resume_paused(&mut self) {
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
    }

    /// Stops accepting on every listener (stopping): an armed one closes
    /// when its accept's last completion arrives, the others now.
    pub(super) fn close_listeners(&mut self) {
        for i in 0..self.listeners.len() {
            if self.listeners[i].armed {
                let tok = self.listeners[i].token();
                self.cancel(tok, None);
            } else {
                self.listeners[i].sock = None;
            }
        }
    }

    /// Takes `l` out of service after a reload removed its address: its
    /// accept is cancelled and the socket closes with the last completion
    /// (at once when none is in flight).
    pub(super) fn retire(&mut self, l: Listener) {
        if l.armed {
            self.cancel(l.token(), None);
            self.retired.push(l);
        }
    }

    /// A key for a new listener.
    pub(super) fn next_key(&mut self) -> u32 {
        self.listener_keys = self.listener_keys.wrapping_add(1);
        self.listener_keys
    }
}
