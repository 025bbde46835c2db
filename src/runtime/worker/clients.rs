//! Outgoing connections on the worker's ring and slab: what the executor
//! offers their owner ([`ClientIo`]), the owner that runs on a worker of its
//! own ([`ClientApp`], the load generator), connect completions, and the
//! drivers' events handed to the owner.
//!
//! An owner never touches a slot: it names a connection by its [`ConnId`],
//! queues requests on it, and reads its [`ClientEvent`]s, each with the key it
//! gave when connecting. Requests queued during one call go out together when
//! the call returns (one send for a pipelined batch).

use std::io;
use std::net::SocketAddr;
use std::os::fd::OwnedFd;
use std::time::Instant;

use socket2::{Domain, Protocol, Socket, Type};

use super::Worker;
use super::slot::{Driver, Outgoing, Role, Slot};
use crate::driver::{ClientConn, ClientEvent, ClientSettings, ClientTls, Request};
use crate::http::Service;
use crate::runtime::ring::Cqe;
use crate::runtime::token::{Token, next_gen};
use crate::tls::Connector;
use crate::upstream::spec::Address;

/// Where an outgoing connection goes: an address, and the TLS session to
/// run over it, if any.
#[derive(Clone, Debug)]
pub struct Target {
    /// The peer: TCP or a Unix-domain socket.
    pub addr: Address,
    /// TLS over the connection (`None`: plain).
    pub tls: Option<Connector>,
}

impl From<SocketAddr> for Target {
    fn from(a: SocketAddr) -> Target {
        Target {
            addr: Address::Tcp(a),
            tls: None,
        }
    }
}

/// An outgoing connection: its slot and the generation of its occupant, so a
/// name kept after the connection ended never reaches the next one.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct ConnId {
    slot: u32,
    generation: u32,
}

impl ConnId {
    /// The slot and generation.
    pub(super) fn parts(self) -> (usize, u32) {
        (self.slot as usize, self.generation)
    }

    /// A name for unit tests of owners.
    #[cfg(test)]
    pub fn for_tests(slot: u32) -> ConnId {
        ConnId {
            slot,
            generation: 0,
        }
    }
}

/// What the executor offers the owner of outgoing connections.
pub trait ClientIo {
    /// The worker's loop time (taken once per loop tick).
    fn now(&self) -> Instant;

    /// Opens a connection to `to`; its events come back with `key`, the
    /// last of them `Closed` (a TLS connection's `Connected` comes once its
    /// handshake is done). Fails at once only when no socket or session can
    /// be made (out of descriptors, for instance).
    fn connect(&mut self, to: Target, key: u64, settings: ClientSettings) -> io::Result<ConnId>;

    /// Queues a request (its encoded bytes) on a connection; it goes out once
    /// the connection is open. False, and nothing queued, when the connection
    /// has ended.
    fn request(&mut self, conn: ConnId, bytes: &[u8], req: Request) -> bool;

    /// Ends a connection; its `Closed` event follows.
    fn close(&mut self, conn: ConnId);
}

/// When a [`ClientApp`] wants to be polled again.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Next {
    /// At this time (or earlier, when events come).
    At(Instant),
    /// Only when events come.
    Idle,
    /// Finished: the worker closes the connections left and stops.
    Done,
}

/// The owner of a worker with outgoing connections only: it opens them,
/// queues requests, and reads what happens. Polled once per loop tick,
/// after the events of that tick, and the worker waits no longer than the
/// time it asks for.
pub trait ClientApp {
    /// Does what is due now; says when to be polled next.
    fn poll(&mut self, io: &mut dyn ClientIo) -> Next;

    /// Something happened on the connection opened with `key`.
    fn on_event(&mut self, io: &mut dyn ClientIo, conn: ConnId, key: u64, event: ClientEvent);
}

impl<S: Service> ClientIo for Worker<S> {
    fn now(&self) -> Instant {
        self.now
    }

    fn connect(&mut self, to: Target, key: u64, settings: ClientSettings) -> io::Result<ConnId> {
        let sock = match &to.addr {
            Address::Tcp(a) => {
                let s = Socket::new(Domain::for_address(*a), Type::STREAM, Some(Protocol::TCP))?;
                s.set_tcp_nodelay(true)?;
                s
            }
            Address::Unix(_) => Socket::new(Domain::UNIX, Type::STREAM, None)?,
        };
        let tls = match &to.tls {
            Some(c) => Some(Box::new(ClientTls::new(c).map_err(io::Error::other)?)),
            None => None,
        };
        let fd = OwnedFd::from(sock);
        self.generation = next_gen(self.generation);
        let driver = ClientConn::new(to.addr, key, settings, self.now);
        let generation = self.generation;
        let slot = self.conns.insert(Slot::new(
            fd,
            generation,
            (Role::Plain, u16::MAX),
            Driver::Client(Box::new(Outgoing {
                conn: driver,
                connect: None,
                tls,
            })),
        ));
        self.touched.push((slot, generation));
        Ok(ConnId {
            slot: slot as u32,
            generation,
        })
    }

    fn request(&mut self, conn: ConnId, bytes: &[u8], req: Request) -> bool {
        let now = self.now;
        let Some(d) = self.client(conn) else {
            return false;
        };
        let queued = d.request(bytes, req, now);
        self.touched.push((conn.slot as usize, conn.generation));
        queued
    }

    fn close(&mut self, conn: ConnId) {
        if let Some(d) = self.client(conn) {
            d.close();
            self.touched.push((conn.slot as usize, conn.generation));
        }
    }
}

impl<S: Service> Worker<S> {
    /// The driver of a live outgoing connection.
    fn client(&mut self, conn: ConnId) -> Option<&mut ClientConn> {
        match self.conns.get_mut(conn.slot as usize) {
            Some(c) if c.generation == conn.generation && !c.closing => match &mut c.driver {
                Driver::Client(d) => Some(&mut d.conn),
                Driver::Server(_) => None,
            },
            _ => None,
        }
    }

    pub(super) fn on_connect(&mut self, t: Token, cqe: Cqe) {
        let Some(slot) = self.slot_of(t) else { return };
        let Driver::Client(o) = &mut self.conns[slot].driver else {
            return;
        };
        let Some(connect) = o.connect.take() else {
            return;
        };
        o.on_connected(connect.complete(cqe.res));
        self.drive(slot);
    }

    /// Moves a client driver's events to the queue for its owner.
    pub(super) fn take_events(&mut self, slot: usize) {
        let c = &mut self.conns[slot];
        let Driver::Client(o) = &mut c.driver else {
            return;
        };
        let d = &mut o.conn;
        let id = ConnId {
            slot: slot as u32,
            generation: c.generation,
        };
        while let Some(e) = d.poll_event() {
            if !self.clients_done {
                self.client_events.push((id, d.owner(), e));
            }
        }
    }

    /// Carries out what the owner's calls asked for on its connections.
    pub(super) fn drive_touched(&mut self) {
        while let Some((slot, generation)) = self.touched.pop() {
            if self
                .conns
                .get(slot)
                .is_some_and(|c| c.generation == generation)
            {
                self.drive(slot);
            }
        }
    }

    /// Hands the owner its events (and those its handling causes), then
    /// polls it; a finished owner's connections are closed and the worker
    /// drains.
    pub(super) fn run_app(&mut self, app: &mut dyn ClientApp) {
        self.drive_touched();
        while !self.client_events.is_empty() {
            let mut events = std::mem::take(&mut self.client_events);
            for (id, key, e) in events.drain(..) {
                app.on_event(self, id, key, e);
            }
            // Keep the queue's allocation for the next tick.
            events.append(&mut self.client_events);
            self.client_events = events;
            self.drive_touched();
        }
        match app.poll(self) {
            Next::At(t) => self.app_due = Some(t),
            Next::Idle => self.app_due = None,
            Next::Done => {
                self.clients_done = true;
                self.app_due = None;
                self.close_clients();
                self.begin_drain();
            }
        }
        self.drive_touched();
    }

    /// Closes every outgoing connection still open.
    fn close_clients(&mut self) {
        let open: Vec<usize> = self
            .conns
            .iter()
            .filter(|(_, c)| !c.closing && matches!(c.driver, Driver::Client(_)))
            .map(|(k, _)| k)
            .collect();
        for slot in open {
            if let Driver::Client(o) = &mut self.conns[slot].driver {
                o.conn.close();
            }
            self.drive(slot);
        }
    }
}

#[cfg(test)]
mod tests {
    //! Client slots over real sockets: a connect, a request and its
    //! response, a refused connect, and a close that cancels a receive.

    use std::io::{Read, Write};
    use std::net::TcpListener;

    use super::*;
    use crate::driver::ClientEnd;
    use crate::runtime::worker::{Control, Spec};

    fn worker() -> Worker<crate::handler::Router> {
        let spec = Spec {
            id: 1,
            listeners: Vec::new(),
            limits: crate::http::Limits::default(),
            settings: crate::driver::Settings::default(),
            shutdown_timeout: std::time::Duration::from_secs(1),
            engine: crate::runtime::Engine {
                ring_entries: 64,
                buffer_count: 64,
                ..crate::runtime::Engine::default()
            },
            control: Control::new().unwrap(),
            metrics: None,
            sites: None,
            tls: None,
            tls_headers: String::new(),
        };
        Worker::new(spec, crate::handler::Router::new(), None).unwrap()
    }

    /// Connects to each address in turn, sends one request, and records
    /// what happens; closes its connection on `Connected` when `hang_up`.
    struct App {
        addrs: Vec<SocketAddr>,
        hang_up: bool,
        started: bool,
        events: Vec<(u64, ClientEvent)>,
    }

    impl ClientApp for App {
        fn poll(&mut self, io: &mut dyn ClientIo) -> Next {
            if !self.started {
                self.started = true;
                for (key, a) in self.addrs.iter().enumerate() {
                    let id = io
                        .connect((*a).into(), key as u64, ClientSettings::default())
                        .unwrap();
                    let req = Request {
                        tag: 9,
                        head: false,
                        upgrade: false,
                        connect: false,
                    };
                    assert!(io.request(id, b"GET / HTTP/1.1\r\nHost: x\r\n\r\n", req));
                }
            }
            let closed = self
                .events
                .iter()
                .filter(|(_, e)| matches!(e, ClientEvent::Closed { .. }))
                .count();
            if closed == self.addrs.len() {
                Next::Done
            } else {
                Next::At(io.now() + std::time::Duration::from_secs(5))
            }
        }

        fn on_event(&mut self, io: &mut dyn ClientIo, conn: ConnId, key: u64, e: ClientEvent) {
            if e == ClientEvent::Connected && self.hang_up {
                io.close(conn);
            }
            if let ClientEvent::Response(_) = e {
                io.close(conn);
            }
            self.events.push((key, e));
        }
    }

    fn run(addrs: Vec<SocketAddr>, hang_up: bool) -> Vec<(u64, ClientEvent)> {
        let mut app = App {
            addrs,
            hang_up,
            started: false,
            events: Vec::new(),
        };
        worker().run_clients(&mut app).unwrap();
        app.events
    }

    #[test]
    fn request_response_and_a_refused_connect() {
        if crate::runtime::ring::check_available().is_err() {
            return;
        }
        let l = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = l.local_addr().unwrap();
        let server = std::thread::spawn(move || {
            let (mut s, _) = l.accept().unwrap();
            let mut buf = [0u8; 27];
            s.read_exact(&mut buf).unwrap();
            assert_eq!(&buf, b"GET / HTTP/1.1\r\nHost: x\r\n\r\n");
            s.write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhello")
                .unwrap();
            let _ = s.read(&mut [0u8; 1]);
        });
        let refused = TcpListener::bind("127.0.0.1:0").unwrap();
        let refused_addr = refused.local_addr().unwrap();
        drop(refused);
        let events = run(vec![addr, refused_addr], false);
        server.join().unwrap();
        let of = |k| {
            events
                .iter()
                .filter(move |(key, _)| *key == k)
                .map(|(_, e)| *e)
        };
        let first: Vec<ClientEvent> = of(0).collect();
        assert_eq!(first[0], ClientEvent::Connected, "{first:?}");
        let r = first.iter().find_map(|e| match e {
            ClientEvent::Response(r) => Some(*r),
            _ => None,
        });
        let r = r.expect("a response");
        assert_eq!((r.tag, r.status, r.body_len), (9, 200, 5));
        assert_eq!(
            first.last(),
            Some(&ClientEvent::Closed {
                why: ClientEnd::Local,
                lost: 0
            })
        );
        let second: Vec<ClientEvent> = of(1).collect();
        assert_eq!(
            second,
            [ClientEvent::Closed {
                why: ClientEnd::ConnectFailed(libc::ECONNREFUSED),
                lost: 1
            }]
        );
    }

    #[test]
    fn a_close_cancels_the_receive_in_flight() {
        if crate::runtime::ring::check_available().is_err() {
            return;
        }
        // A listener that never answers: the receive stays armed until the
        // close cancels it, and the worker still ends.
        let l = TcpListener::bind("127.0.0.1:0").unwrap();
        let events = run(vec![l.local_addr().unwrap()], true);
        assert_eq!(
            events.iter().map(|(_, e)| *e).collect::<Vec<_>>(),
            [
                ClientEvent::Connected,
                ClientEvent::Closed {
                    why: ClientEnd::Local,
                    lost: 1
                }
            ]
        );
    }
}
