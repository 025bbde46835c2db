//! What a driver says to its executor ([`Action`]), what the executor hands
//! a server driver for each call ([`Cx`]), and how it is counted ([`Gauge`]).

use std::fs::File;
use std::net::SocketAddr;
use std::rc::Rc;
use std::time::Instant;

use super::deadline::Settings;
use super::pool::BufPool;
use crate::http::conn::{ExchangePool, Observer};
use crate::http::{Limits, Service};
use crate::metrics::CloseReason;

/// What the executor must do for a connection.
#[derive(Debug)]
#[must_use]
pub enum Action {
    /// Connect the connection's socket to `addr` (an outgoing connection's
    /// first action); the result comes back with
    /// [`super::ClientConn::on_connected`].
    Connect {
        /// The peer.
        addr: crate::upstream::spec::Address,
    },
    /// Send `buf[from..]`; the buffer comes back with `on_sent`.
    Send {
        /// The output buffer (owned by the operation while in flight).
        buf: Vec<u8>,
        /// First byte to send.
        from: usize,
    },
    /// Send `buf[from..]` and then all of `tail` in one gather send; both
    /// come back with [`super::ServerConn::on_sent_gather`].
    SendGather {
        /// The output buffer (owned by the operation while in flight).
        buf: Vec<u8>,
        /// First byte of `buf` to send.
        from: usize,
        /// A body piece that follows it.
        tail: Vec<u8>,
    },
    /// Read `len` bytes of `file` at `offset` into the spare capacity of `buf`
    /// (after its length); it comes back with [`super::ServerConn::on_read`].
    ReadFile {
        /// The file.
        file: Rc<File>,
        /// Where to read.
        offset: u64,
        /// How much to read.
        len: usize,
        /// Where the bytes go (its spare capacity holds at least `len`).
        buf: Vec<u8>,
        /// Handed back with the completion (several reads may be in flight:
        /// HTTP/2 names the stream).
        tag: u32,
    },
    /// Splice up to `len` bytes of `file` at `offset` into the connection's
    /// pipe (the executor's; it may move fewer when the pipe is smaller).
    SpliceIn {
        /// The file.
        file: Rc<File>,
        /// Where to read.
        offset: u64,
        /// Most bytes to move.
        len: usize,
        /// Link a splice of the same length out to the socket behind it: its
        /// completion comes to [`super::ServerConn::on_spliced_out`] (`-ECANCELED`
        /// when the splice in moved less).
        then_out: bool,
    },
    /// Splice `len` bytes from the pipe to the socket, without blocking.
    SpliceOut {
        /// Bytes in the pipe.
        len: usize,
    },
    /// Wait until the socket takes more (a splice out found it full).
    PollOut,
    /// Shut our sending side (the final response is out; lingering).
    ShutdownWrite,
    /// Close: cancel what is in flight, then free the connection.
    Close {
        /// Why, for the metrics.
        why: CloseReason,
        /// A message for the error log, if something went wrong.
        note: Option<String>,
    },
}

/// What a driver needs from its worker for one call.
pub struct Cx<'a> {
    /// The current time.
    pub now: Instant,
    /// The current `Date` header value.
    pub date: &'a [u8],
    /// The server is stopping.
    pub draining: bool,
    /// What answers requests on this connection.
    pub svc: &'a mut dyn Service,
    /// Metrics and access log.
    pub obs: &'a mut dyn Observer,
    /// The worker's finished exchanges.
    pub exchanges: &'a mut ExchangePool,
    /// The worker's output buffers.
    pub bufs: &'a mut BufPool,
    /// Size limits.
    pub limits: &'a Limits,
    /// Timeouts and rates.
    pub settings: &'a Settings,
    /// Header lines added to responses over TLS (HSTS).
    pub tls_headers: &'a [u8],
    /// File bodies at least this large are spliced (plain HTTP; 0: never).
    pub splice_min: u64,
    /// Largest piece of a file read per operation.
    pub file_chunk: usize,
    /// TLS handshake steps left for this loop tick; at 0 the connection
    /// waits ([`super::ServerConn::deferred`]) and is retried next tick.
    pub handshakes_left: &'a mut u32,
    /// The peer's address.
    pub peer: Option<SocketAddr>,
    /// Index of the listener the connection was accepted on.
    pub listener: u16,
    /// The connection, for wake-ups from the worker's upstream engine.
    pub waker: Option<crate::exchange::Waker>,
    /// The worker's upstream engine.
    pub upstreams: Option<&'a mut crate::upstream::Hub>,
}

impl std::fmt::Debug for Cx<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Cx")
            .field("now", &self.now)
            .field("draining", &self.draining)
            .finish_non_exhaustive()
    }
}

/// What a connection is doing, for the status gauges.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Gauge {
    /// Reading a request.
    Reading,
    /// Writing a response (or its handler has the turn).
    Writing,
    /// Idle between requests.
    Waiting,
    /// Lingering or closing: not counted as active.
    Ending,
}
