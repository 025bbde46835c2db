//! Connection slots: what a worker keeps per accepted socket. Plain data; the
//! worker in `runtime/` drives it.
#![forbid(unsafe_code)]

use std::fs::File;
use std::net::SocketAddr;
use std::os::fd::RawFd;
use std::rc::Rc;
use std::time::Instant;

use crate::accesslog::Pending;
use crate::http;
use crate::metrics::CloseReason;
use crate::tls::TlsSession;

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

/// Where a connection is in its life.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum State {
    /// Serving requests.
    Open,
    /// The last response is sent and our side is shut; reading and dropping
    /// input until the peer closes or `lingering_timeout` passes.
    Lingering,
    /// Closing: waiting for in-flight operations to complete before the fd is
    /// closed and the slot freed.
    Closing,
}

/// What to do when the output buffer has been sent.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum After {
    /// Go on with buffered input.
    Resume,
    /// Close the connection.
    Close,
}

/// A file body being streamed.
#[derive(Debug)]
pub struct FileSend {
    /// The open file.
    pub file: Rc<File>,
    /// Next byte to read.
    pub offset: u64,
    /// Bytes still to read.
    pub remaining: u64,
    /// When the request's first byte was seen (for its latency).
    pub started: Option<Instant>,
    /// Its access-log line, finished when the last byte is handed over.
    pub log: Option<Pending>,
    /// Send by splicing file pages through a pipe instead of copying.
    pub splice: bool,
    /// The pipe, while splicing.
    pub pipe: Option<crate::runtime::sys::Pipe>,
    /// Bytes spliced into the pipe and not yet out to the socket.
    pub in_pipe: usize,
}

/// One connection slot.
#[derive(Debug)]
pub struct Conn {
    /// The socket.
    pub fd: RawFd,
    /// Generation of this occupant of the slot.
    pub generation: u32,
    /// Operations submitted and not yet completed (a multishot receive counts
    /// once until its final completion).
    pub inflight: u8,
    /// Life stage.
    pub state: State,
    /// A receive is armed.
    pub recv_armed: bool,
    /// Receiving is paused because too much input is buffered.
    pub recv_paused: bool,
    /// A send is in flight.
    pub sending: bool,
    /// A file read is in flight.
    pub reading: bool,
    /// The peer has shut its sending side (EOF seen).
    pub peer_eof: bool,
    /// At least one response has been produced.
    pub served: bool,
    /// What follows a completed send.
    pub after: After,
    /// Protocol state.
    pub http: http::Conn,
    /// Output waiting to be sent; empty with no capacity when idle.
    pub out: Vec<u8>,
    /// Bytes of `out` already sent.
    pub sent: usize,
    /// A file body being streamed after `out`.
    pub file: Option<Box<FileSend>>,
    /// When the connection times out, in worker milliseconds.
    pub deadline: u64,
    /// The wheel tick of this connection's live timer entry (0: none).
    pub timer_at: u64,
    /// Why the connection is ending (counted when its slot is freed).
    pub why: CloseReason,
    /// The peer's address, looked up once when the access log needs it.
    pub peer: Option<Box<SocketAddr>>,
    /// The listener kind.
    pub role: Role,
    /// The TLS session, on HTTPS connections.
    pub tls: Option<Box<TlsState>>,
}

/// A connection's TLS session and the ciphertext waiting for it.
#[derive(Debug)]
pub struct TlsState {
    /// The session.
    pub session: TlsSession,
    /// Ciphertext received but not yet fed (a response is being written, or
    /// the worker's handshake budget for this tick is spent).
    pub pending: Vec<u8>,
    /// Queued for the next tick's handshake work.
    pub deferred: bool,
}

impl Conn {
    /// A freshly accepted connection.
    pub fn new(fd: RawFd, generation: u32, role: Role, tls: Option<TlsSession>) -> Conn {
        Conn {
            fd,
            generation,
            inflight: 0,
            state: State::Open,
            recv_armed: false,
            recv_paused: false,
            sending: false,
            reading: false,
            peer_eof: false,
            served: false,
            after: After::Resume,
            http: http::Conn::new(),
            out: Vec::new(),
            sent: 0,
            file: None,
            deadline: 0,
            timer_at: 0,
            why: CloseReason::Normal,
            peer: None,
            role,
            tls: tls.map(|session| {
                Box::new(TlsState {
                    session,
                    pending: Vec::new(),
                    deferred: false,
                })
            }),
        }
    }

    /// Whether a response is being written (bytes or file).
    pub fn writing(&self) -> bool {
        self.sending || self.reading || self.file.is_some()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn idle_slot_is_small() {
        // An idle keep-alive connection must cost little: the slot holds no
        // buffer of its own, only bookkeeping.
        let size = std::mem::size_of::<Conn>();
        assert!(size <= 192, "Conn is {size} bytes");
        let c = Conn::new(3, 1, Role::Plain, None);
        assert_eq!(c.out.capacity(), 0);
        assert!(!c.writing());
    }
}
