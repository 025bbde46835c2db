//! The protocol under a server connection: HTTP/1.1, or HTTP/2 once ALPN or
//! the cleartext preface chose it. One interface over both, so the
//! connection's lifecycle code does not care which.

use std::time::Instant;

use crate::http::{Env, Error, Observer, Service, Step, Waiting};
use crate::http2::H2Conn;

/// Streamed body pieces this large go out behind the head (or a chunk size)
/// in a gather send instead of being copied behind it.
const SEND_APART: u32 = 16 * 1024;

/// A server connection's protocol.
#[derive(Debug)]
pub enum Proto {
    /// HTTP/1.x.
    H1(crate::http::Conn),
    /// HTTP/2.
    H2(Box<H2Conn>),
}

macro_rules! both {
    ($self:ident, $c:ident => $e:expr) => {
        match $self {
            Proto::H1($c) => $e,
            Proto::H2($c) => $e,
        }
    };
}

impl Proto {
    /// A connection waiting for its first HTTP/1 request.
    pub fn h1() -> Proto {
        Proto::H1(crate::http::Conn::new().send_apart(SEND_APART))
    }

    /// Whether this is HTTP/2.
    pub fn is_h2(&self) -> bool {
        matches!(self, Proto::H2(_))
    }

    /// See [`crate::http::Conn::feed`].
    pub fn feed<S: Service + ?Sized>(
        &mut self,
        input: &[u8],
        svc: &mut S,
        env: &mut Env<'_>,
        out: &mut Vec<u8>,
    ) -> Step {
        both!(self, c => c.feed(input, svc, env, out))
    }

    /// A file piece for HTTP/2 stream `tag` was read.
    pub fn file_data<S: Service + ?Sized>(
        &mut self,
        tag: u32,
        data: &[u8],
        svc: &mut S,
        env: &mut Env<'_>,
        out: &mut Vec<u8>,
    ) -> Step {
        match self {
            Proto::H1(c) => c.feed(&[], svc, env, out),
            Proto::H2(c) => c.file_data(tag, data, svc, env, out),
        }
    }

    /// Keeps an HTTP/2 file read and its buffer until the driver starts it.
    pub fn stage_read(&mut self, r: crate::http2::FileRead, buf: Vec<u8>) {
        if let Proto::H2(c) = self {
            c.stage_read(r, buf);
        }
    }

    /// Another read the last step asked for.
    pub fn take_wanted_read(&mut self) -> Option<crate::http2::FileRead> {
        match self {
            Proto::H2(c) => c.take_wanted_read(),
            Proto::H1(_) => None,
        }
    }

    /// Whether a file read waits to be started.
    pub fn read_staged(&self) -> bool {
        matches!(self, Proto::H2(c) if !c.staged.is_empty())
    }

    /// The file read to start, with its buffer.
    pub fn take_staged_read(&mut self) -> Option<(crate::http2::FileRead, Vec<u8>)> {
        match self {
            Proto::H2(c) => c.start_staged_read(),
            Proto::H1(_) => None,
        }
    }

    /// Whether HTTP/2 file reads are in flight.
    pub fn reads_in_flight(&self) -> bool {
        matches!(self, Proto::H2(c) if c.reads_in_flight())
    }

    /// Keeps input for later.
    pub fn buffer(&mut self, input: &[u8]) -> usize {
        both!(self, c => c.buffer(input))
    }

    /// Input held for later.
    pub fn buffered(&self) -> usize {
        both!(self, c => c.buffered())
    }

    /// What the connection waits for.
    pub fn waiting(&self) -> Waiting {
        both!(self, c => c.waiting())
    }

    /// When an exchange asked to be polled again.
    pub fn wake_at(&self) -> Option<Instant> {
        both!(self, c => c.wake_at())
    }

    /// Whether the protocol is finished.
    pub fn is_closed(&self) -> bool {
        both!(self, c => c.is_closed())
    }

    /// The protocol error that ended the connection.
    pub fn error(&self) -> Option<Error> {
        both!(self, c => c.error())
    }

    /// A deadline passed.
    pub fn timeout(&mut self, env: &mut Env<'_>, out: &mut Vec<u8>) -> Step {
        both!(self, c => c.timeout(env, out))
    }

    /// Whether closing needs lingering.
    pub fn needs_linger(&self) -> bool {
        both!(self, c => c.needs_linger())
    }

    /// Stops taking requests.
    pub fn finish(&mut self) {
        both!(self, c => c.finish())
    }

    /// Reports and stops what is in progress.
    pub fn abandon(&mut self, obs: &mut dyn Observer) {
        both!(self, c => c.abandon(obs))
    }
}
