//! A connection slot: the socket, its driver, and the ring operations in
//! flight on it, each holding what the kernel uses.

use std::net::SocketAddr;
use std::os::fd::OwnedFd;
use std::time::Instant;

use crate::driver::ServerConn;
use crate::runtime::op::read::Read;
use crate::runtime::op::send::Send;
use crate::runtime::op::splice::SpliceIn;
use crate::runtime::sys::Pipe;

/// What kind of listener a connection came from.
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

/// The operations in flight on a slot. The slot is freed, and its socket
/// closed, only when none is left.
#[derive(Debug)]
pub struct InFlight {
    /// The receive.
    pub recv: Recv,
    /// A send, owning its buffer.
    pub send: Option<Send>,
    /// A file read, owning its buffer and file.
    pub read: Option<Box<Read>>,
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
    pub driver: ServerConn,
    /// What the kernel is doing for it.
    pub ops: InFlight,
    /// The splice pipe, while a file body is spliced.
    pub pipe: Option<Box<Pipe>>,
    /// The peer's address, looked up on the first request.
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

impl Slot {
    /// A freshly accepted connection.
    pub fn new(
        fd: OwnedFd,
        generation: u32,
        (role, listener): (Role, u16),
        driver: ServerConn,
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn idle_slot_is_small() {
        // Every slab entry is this large, idle or not: it is what an idle
        // keep-alive connection costs (its buffers are pooled per worker).
        let size = std::mem::size_of::<Slot>();
        assert!(size <= 400, "Slot is {size} bytes");
    }
}
