//! A connection slot: the socket, its driver, and the ring operations in
//! flight on it, each holding what the kernel uses.

use std::net::SocketAddr;
use std::os::fd::OwnedFd;
use std::time::Instant;

use crate::driver::{Action, BufPool, ClientConn, ClientTls, ServerConn, Settings};
use crate::runtime::op::connect::Connect;
use crate::runtime::op::read::Read;
use crate::runtime::op::send::Send;
use crate::runtime::op::splice::SpliceIn;
use crate::runtime::sys::Pipe;

/// What kind of listener a connection came from (`Plain` for an outgoing
/// connection, which has none).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Role {
    /// Plain HTTP, served by the router.
    Plain,
    /// Plain HTTP, answered with a redirect to HTTPS on this port.
    Redirect(u16),
    /// HTTPS.
    Tls,
}

/// The state of a connection's receive operation.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Recv {
    /// None in flight.
    Idle,
    /// Armed (a multishot receive stays armed across completions).
    Armed,
    /// A cancel was sent; its final completion is awaited.
    Cancelling,
}

/// Most file reads in flight on one connection.
pub const MAX_READS: usize = 8;

/// A connection's file reads in flight, by their token's `sub`.
#[derive(Debug, Default)]
pub struct Reads(pub [Option<(Read, u32)>; MAX_READS]);

impl Reads {
    /// A free place, if any.
    pub fn free(&self) -> Option<usize> {
        self.0.iter().position(Option::is_none)
    }
}

/// The operations in flight on a slot. The slot is freed, and its socket
/// closed, only when none is left.
#[derive(Debug)]
pub struct InFlight {
    /// The receive.
    pub recv: Recv,
    /// A send, owning its buffer.
    pub send: Option<Send>,
    /// File reads (with their driver's tags), owning their buffers and
    /// files; the box goes when the last completes.
    pub read: Option<Box<Reads>>,
    /// A splice into the pipe, owning its file.
    pub splice_in: Option<SpliceIn>,
    /// A splice out of the pipe.
    pub splice_out: bool,
    /// A wait for the socket to take more.
    pub poll: bool,
    /// Cancels sent whose completions are awaited.
    pub cancels: u8,
}

impl InFlight {
    const NONE: InFlight = InFlight {
        recv: Recv::Idle,
        send: None,
        read: None,
        splice_in: None,
        splice_out: false,
        poll: false,
        cancels: 0,
    };

    /// Whether any operation is still in flight.
    pub fn any(&self) -> bool {
        self.recv != Recv::Idle
            || self.send.is_some()
            || self.read.is_some()
            || self.splice_in.is_some()
            || self.splice_out
            || self.poll
            || self.cancels > 0
    }
}

/// One connection.
#[derive(Debug)]
pub struct Slot {
    /// The socket; closed when the slot is dropped, after its last operation.
    pub fd: OwnedFd,
    /// Generation of this occupant of the slot.
    pub generation: u32,
    /// The listener kind.
    pub role: Role,
    /// Index of the listener it was accepted on (in the server's bind order).
    pub listener: u16,
    /// All lifecycle policy.
    pub driver: Driver,
    /// What the kernel is doing for it.
    pub ops: InFlight,
    /// The splice pipe, while a file body is spliced.
    pub pipe: Option<Box<Pipe>>,
    /// The peer's address, looked up on the first request (or named by a
    /// PROXY protocol header).
    pub peer: Option<Box<SocketAddr>>,
    /// The wheel tick of its deadline (0: none), to skip unchanged updates.
    pub tick: u64,
    /// The wake-up last queued for it.
    pub wake: Option<Instant>,
    /// Queued for the next tick's handshake budget.
    pub deferred: bool,
    /// The driver said to close; operations are being cancelled.
    pub closing: bool,
}

/// The listener index of a connection whose listener a reload removed: it
/// finishes what is in flight, then closes.
pub const RETIRED: u16 = u16::MAX;

impl Slot {
    /// Whether any operation is still in flight on it.
    pub fn busy(&self) -> bool {
        self.ops.any() || matches!(&self.driver, Driver::Client(o) if o.connect.is_some())
    }

    /// A freshly accepted connection (with its listener's kind and index),
    /// or an outgoing one.
    pub fn new(
        fd: OwnedFd,
        generation: u32,
        (role, listener): (Role, u16),
        driver: Driver,
    ) -> Slot {
        Slot {
            fd,
            generation,
            role,
            listener,
            driver,
            ops: InFlight::NONE,
            pipe: None,
            peer: None,
            tick: 0,
            wake: None,
            deferred: false,
            closing: false,
        }
    }
}

/// The driver of a slot: an accepted connection's, or an outgoing one's
/// (boxed: it is the rarer kind, and the slab's entries stay small).
#[derive(Debug)]
#[expect(
    clippy::large_enum_variant,
    reason = "the server driver stays inline: accepting a connection allocates no driver"
)]
pub enum Driver {
    /// An accepted connection.
    Server(ServerConn),
    /// An outgoing connection.
    Client(Box<Outgoing>),
}

/// An outgoing connection's driver, beside the operation only such a slot
/// has (kept here, so the slots of accepted connections do not grow).
#[derive(Debug)]
pub struct Outgoing {
    /// All lifecycle policy.
    pub conn: ClientConn,
    /// The connect in flight, owning the address the kernel reads.
    pub connect: Option<Connect>,
    /// The TLS transport under `conn`, when the upstream is reached over
    /// TLS; what the socket does goes through it.
    pub tls: Option<Box<ClientTls>>,
}

impl Outgoing {
    /// The socket's connect completed.
    pub fn on_connected(&mut self, res: Result<(), i32>) {
        match &mut self.tls {
            Some(t) => t.on_connected(&mut self.conn, res),
            None => self.conn.on_connected(res),
        }
    }

    /// Bytes arrived on the socket.
    pub fn on_recv(&mut self, data: &[u8], now: Instant) {
        match &mut self.tls {
            Some(t) => t.on_recv(&mut self.conn, data, now),
            None => self.conn.on_recv(data, now),
        }
    }

    /// A send of `buf` moved `n` bytes.
    pub fn on_sent(&mut self, buf: Vec<u8>, n: usize, now: Instant) {
        match &mut self.tls {
            Some(t) => t.on_sent(&mut self.conn, buf, n, now),
            None => self.conn.on_sent(buf, n, now),
        }
    }

    /// The peer shut its side, or the connection reset.
    pub fn on_eof(&mut self, reset: bool, now: Instant) {
        match &mut self.tls {
            Some(t) => t.on_eof(&mut self.conn, reset, now),
            None => self.conn.on_eof(reset, now),
        }
    }

    fn poll_action(&mut self) -> Option<Action> {
        match &mut self.tls {
            Some(t) => t.poll_action(&mut self.conn),
            None => self.conn.poll_action(),
        }
    }

    fn wants_recv(&self) -> bool {
        match &self.tls {
            Some(t) => t.wants_recv(&self.conn),
            None => self.conn.wants_recv(),
        }
    }
}

impl Driver {
    /// The next thing for the executor to do, if any.
    #[inline]
    pub fn poll_action(&mut self) -> Option<Action> {
        match self {
            Driver::Server(d) => d.poll_action(),
            Driver::Client(d) => d.poll_action(),
        }
    }

    /// Whether the driver has ended.
    #[inline]
    pub fn is_closed(&self) -> bool {
        match self {
            Driver::Server(d) => d.is_closed(),
            Driver::Client(d) => d.conn.is_closed(),
        }
    }

    /// Whether a receive should be armed.
    #[inline]
    pub fn wants_recv(&self) -> bool {
        match self {
            Driver::Server(d) => d.wants_recv(),
            Driver::Client(d) => d.wants_recv(),
        }
    }

    /// The next deadline (server connections keep to `settings`).
    #[inline]
    pub fn deadline(&self, settings: &Settings) -> Option<Instant> {
        match self {
            Driver::Server(d) => d.deadline(settings).map(|(at, _)| at),
            Driver::Client(d) => d.conn.deadline(),
        }
    }

    /// Hands buffers back to the pools when the slot is freed.
    pub fn release(&mut self, bufs: &mut BufPool) {
        if let Driver::Server(d) = self {
            d.release(bufs);
        }
    }

    /// The server driver, if this is an accepted connection.
    #[inline]
    pub fn server(&self) -> Option<&ServerConn> {
        match self {
            Driver::Server(d) => Some(d),
            Driver::Client(_) => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn idle_slot_is_small() {
        // Every slab entry is this large, idle or not: it is what an idle
        // keep-alive connection costs (its buffers are pooled per worker).
        let size = std::mem::size_of::<Slot>();
        assert!(size <= 408, "Slot is {size} bytes");
    }
}
