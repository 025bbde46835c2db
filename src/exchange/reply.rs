//! What a handler answers: a response now, a streamed body, or a task that
//! answers later; and the worker facade they use to ask for time.

use std::time::{Duration, Instant};

use super::body::RequestBody;
use crate::guard::Guarded;
use crate::http::response::Text;
use crate::http::{FileBody, Response};
use crate::upstream::Hub;

/// A handler's answer to an exchange.
#[non_exhaustive]
pub enum Reply {
    /// A complete response (its body is in memory or a file range).
    Ready(Response),
    /// A response head and a body pulled piece by piece. The head's own body
    /// is ignored; `Content-Length` is sent when [`BodySource::content_length`] knows it,
    /// else the body is chunked (HTTP/1.1) or delimited by closing (HTTP/1.0).
    Stream(Response, Box<dyn BodySource>),
    /// The answer comes later: the connection polls the task again when the
    /// time it asked for through [`Io`] has come or request body bytes arrive.
    Pending(Box<dyn Task>),
}

impl std::fmt::Debug for Reply {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Reply::Ready(r) => f.debug_tuple("Ready").field(r).finish(),
            Reply::Stream(r, _) => f.debug_tuple("Stream").field(r).finish(),
            Reply::Pending(_) => f.write_str("Pending"),
        }
    }
}

impl From<Response> for Reply {
    fn from(r: Response) -> Reply {
        Reply::Ready(r)
    }
}

/// One piece of a streamed body.
#[derive(Debug)]
#[non_exhaustive]
pub enum Chunk {
    /// Owned bytes.
    Bytes(Vec<u8>),
    /// Bytes that live for the whole program.
    Static(&'static [u8]),
    /// A file range, read (or spliced) through the ring.
    File(FileBody),
    /// Nothing yet: the source asked for a wake-up through [`Io`], or waits
    /// for request body bytes.
    Pending,
    /// The body is complete.
    End,
    /// The source failed: the connection is cut (a body that promised more
    /// is never silently short).
    Failed(String),
}

/// A body produced piece by piece, pulled by the connection when the socket
/// has room (h2o's generator: `proceed` is [`BodySource::poll_chunk`], `stop`
/// is [`BodySource::stop`]).
pub trait BodySource {
    /// The body's length, when known before it is produced.
    fn content_length(&self) -> Option<u64> {
        None
    }

    /// The next piece, at most about `max` bytes. `body` is the exchange's
    /// request body (for sources that answer from it, such as an echo).
    fn poll_chunk(&mut self, io: &mut Io, body: &mut RequestBody, max: usize) -> Chunk;

    /// Trailer fields sent after the last chunk of a chunked body.
    fn trailers(&mut self) -> Vec<(Text, Text)> {
        Vec::new()
    }

    /// The exchange ended before the body did (the client went away): release
    /// what is held.
    fn stop(&mut self) {}

    /// The buffer of a [`Chunk::Bytes`], handed back emptied once its bytes
    /// are framed, for the source to fill again (no reallocation per piece).
    fn recycle(&mut self, _buf: Vec<u8>) {}
}

/// An answer that comes later ([`Reply::Pending`]).
pub trait Task {
    /// Called once right after the handler returns it, then whenever the
    /// wake-up it asked for is due or request body bytes arrive. `None`: not
    /// yet (ask for a wake-up through `io`, or wait for body bytes).
    fn poll(&mut self, io: &mut Io, body: &mut RequestBody) -> Option<Reply>;

    /// The connection closed before the task answered: release what is held.
    fn cancel(&mut self) {}
}

/// Names the connection an exchange runs on, so that something happening
/// elsewhere on the worker (an upstream response arriving) can have the
/// exchange polled again. Made by the executor; a stale one (the connection
/// ended) wakes nothing.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Waker {
    /// The connection's slot.
    pub slot: u32,
    /// The generation of its occupant.
    pub generation: u32,
}

/// What the access log says about a proxied exchange: the server that
/// answered (as configured) and the failure that ended it, if one did.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct UpstreamNote {
    /// The server's address as the configuration writes it.
    pub server: Option<std::rc::Rc<str>>,
    /// The failure's name (`connect_error`, `head_timeout`, …).
    pub failure: Option<&'static str>,
}

/// The worker facade handlers and sources use: the current time, a wake-up
/// at a later time on the worker's own ring, and the worker's upstream
/// connections. Nothing blocks.
#[derive(Debug)]
pub struct Io<'a> {
    now: Instant,
    wake: Option<Instant>,
    site: Option<u16>,
    upstream: Option<UpstreamNote>,
    waker: Option<Waker>,
    upstreams: Option<&'a mut Hub>,
    http1: bool,
    abort: bool,
    guarded: Guarded,
}

impl Io<'static> {
    /// A facade at `now` with no wake-up asked for and no upstreams.
    pub fn new(now: Instant) -> Io<'static> {
        Io {
            now,
            wake: None,
            site: None,
            upstream: None,
            waker: None,
            upstreams: None,
            http1: false,
            abort: false,
            guarded: Guarded::default(),
        }
    }
}

impl<'a> Io<'a> {
    /// A facade for the exchange on the connection `waker` names, with the
    /// worker's upstream connections.
    pub fn with_upstreams(now: Instant, waker: Option<Waker>, hub: Option<&'a mut Hub>) -> Io<'a> {
        Io {
            now,
            wake: None,
            site: None,
            upstream: None,
            waker,
            upstreams: hub,
            http1: false,
            abort: false,
            guarded: Guarded::default(),
        }
    }

    /// The facade with `g` to fill (a cleared one an exchange kept, so its
    /// room is reused: [`Io::take_guarded`] gives it back).
    pub fn with_guarded(mut self, g: Guarded) -> Io<'a> {
        self.guarded = g;
        self
    }

    /// The current time (the worker's loop time).
    pub fn now(&self) -> Instant {
        self.now
    }

    /// Asks to be polled again at `at` (the earliest of several asks wins).
    pub fn wake_at(&mut self, at: Instant) {
        self.wake = Some(self.wake.map_or(at, |w| w.min(at)));
    }

    /// Asks to be polled again after `d`.
    pub fn wake_after(&mut self, d: Duration) {
        self.wake_at(self.now + d);
    }

    /// The wake-up asked for, if any.
    pub fn wake(&self) -> Option<Instant> {
        self.wake
    }

    /// Says which site (its index in the configuration generation) answers
    /// the exchange; the observer counts and logs the response under it.
    pub fn set_site(&mut self, index: u16) {
        self.site = Some(index);
    }

    /// The site named by [`Io::set_site`], if any.
    pub fn site(&self) -> Option<u16> {
        self.site
    }

    /// Says which upstream server answered (or why none did), for the
    /// access log.
    pub fn set_upstream(&mut self, note: UpstreamNote) {
        self.upstream = Some(note);
    }

    /// The note of [`Io::set_upstream`], if any (taken).
    pub fn take_upstream(&mut self) -> Option<UpstreamNote> {
        self.upstream.take()
    }

    /// Says the request must be made again over HTTP/1.1: over HTTP/2 the
    /// stream is reset with `HTTP_1_1_REQUIRED` instead of answered (over
    /// HTTP/1 the reply goes out as it is).
    pub fn require_http1(&mut self) {
        self.http1 = true;
    }

    /// Whether [`Io::require_http1`] was called.
    pub fn http1_required(&self) -> bool {
        self.http1
    }

    /// Says the exchange is not answered: over HTTP/1 the connection is
    /// closed, over HTTP/2 the stream is reset.
    pub fn abort(&mut self) {
        self.abort = true;
    }

    /// Whether [`Io::abort`] was called.
    pub fn aborted(&self) -> bool {
        self.abort
    }

    /// What the guards leave with the exchange.
    pub fn guarded(&mut self) -> &mut Guarded {
        &mut self.guarded
    }

    /// What the guards left (taken).
    pub fn take_guarded(&mut self) -> Guarded {
        std::mem::take(&mut self.guarded)
    }

    /// The exchange's connection, for wake-ups from elsewhere on the worker.
    pub fn waker(&self) -> Option<Waker> {
        self.waker
    }

    /// The worker's upstream connections (none in unit tests and on workers
    /// without them).
    pub fn upstreams(&mut self) -> Option<&mut Hub> {
        self.upstreams.as_deref_mut()
    }
}
