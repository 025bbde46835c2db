//! What the HTTP/1 codec needs from the code around it: a [`Service`] that
//! answers exchanges, the [`Env`] of each call, and an [`Observer`] told about
//! every response.

use std::net::SocketAddr;
use std::rc::Rc;
use std::time::Instant;

use super::error::Error;
use super::limits::Limits;
use super::method::Methods;
use super::pool::ExchangePool;
use super::produce::Ticket;
use super::request::TlsInfo;
use super::response::Response;
use crate::exchange::{Io, Reply, RequestHead};

/// What to do with a request body, decided from the head before it is read.
#[derive(Debug)]
pub enum Admit {
    /// Stream the body to the handler as it arrives.
    Read,
    /// Read the body and drop it; the handler sees an empty one.
    Drop,
    /// Answer now with this response, without reading a byte of the body for
    /// the handler (it is read and dropped, or, when the client waits for
    /// `100 Continue`, the connection is closed).
    Answer(Response),
}

/// What answers requests: a router, or a test double.
pub trait Service {
    /// Completes a head before anything else looks at it (the client's
    /// address behind trusted proxies); called once per request.
    fn prepare(&mut self, req: &mut RequestHead) {
        let _ = req;
    }

    /// Looks at the head of a request that has a body, before the body is read.
    fn check(&mut self, req: &RequestHead, io: &mut Io) -> Admit {
        let _ = (req, io);
        Admit::Read
    }

    /// Answers an exchange whose head is complete (its body, if admitted,
    /// streams to the reply's task or source).
    fn call(&mut self, req: &RequestHead, io: &mut Io) -> Reply;

    /// Every method some resource supports, for `OPTIONS *` and `CONNECT`.
    fn methods(&self) -> Methods;
}

/// What a connection needs from its worker for one step.
pub struct Env<'a> {
    /// Size limits.
    pub limits: &'a Limits,
    /// The current time.
    pub now: Instant,
    /// The current `Date` header value.
    pub date: &'a [u8],
    /// The server is stopping: answer what is in flight, then close.
    pub draining: bool,
    /// Told about every response produced.
    pub obs: &'a mut dyn Observer,
    /// The connection's TLS session, handed to handlers with each request.
    pub tls: Option<&'a Rc<TlsInfo>>,
    /// Header lines added to every response (e.g. HSTS), CRLF-terminated.
    pub extra_headers: &'a [u8],
    /// The peer's address, when known.
    pub peer: Option<SocketAddr>,
    /// Index of the listener the connection was accepted on (the server's
    /// bind order), handed to handlers with each request.
    pub listener: u16,
    /// Finished exchanges kept for their buffers, shared by a worker's
    /// connections (an idle connection holds none).
    pub pool: &'a mut ExchangePool,
    /// The connection, for wake-ups from the worker's upstream engine.
    pub waker: Option<crate::exchange::Waker>,
    /// The worker's upstream engine.
    pub upstreams: Option<&'a mut crate::upstream::Hub>,
}

impl std::fmt::Debug for Env<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Env")
            .field("now", &self.now)
            .field("draining", &self.draining)
            .finish_non_exhaustive()
    }
}

/// One response, as reported to an [`Observer`] when its head has been encoded.
#[derive(Debug)]
pub struct Served<'a> {
    /// The request, or `None` for a protocol refusal (see `error`).
    pub req: Option<&'a RequestHead>,
    /// The peer's address, when known.
    pub peer: Option<SocketAddr>,
    /// The response status.
    pub status: u16,
    /// Body bytes the response carries (0 for HEAD, 304, …; for a streamed
    /// body, its length when known, else 0).
    pub body_len: u64,
    /// When the request's first byte was seen.
    pub started: Instant,
    /// The protocol error answered, for refusals.
    pub error: Option<Error>,
    /// The body is a file that streams after this step ([`super::conn::Step::File`]);
    /// [`Observer::stream_done`] follows with the returned ticket.
    pub file: bool,
    /// The body is streamed from a source; [`Observer::stream_done`] follows.
    pub stream: bool,
    /// The site that answered (its index in the configuration generation),
    /// as the service said through [`Io::set_site`]; `None` for answers
    /// given before a site was chosen (protocol refusals, `OPTIONS *`).
    pub site: Option<u16>,
    /// For a proxied exchange: the upstream server and failure.
    pub upstream: Option<&'a crate::exchange::UpstreamNote>,
    /// What a guard refused (or would have, in a dry run).
    pub refused: Option<&'a crate::guard::Refused>,
}

/// Watches responses as they are produced: metrics, access logs.
pub trait Observer {
    /// A response head was encoded into the output. For a file or streamed
    /// body the returned ticket is handed back to [`Observer::stream_done`].
    fn served(&mut self, ev: &Served<'_>) -> Ticket;

    /// A file or streamed body ended (completely or not) after `bytes` body
    /// bytes.
    fn stream_done(&mut self, ticket: Ticket, started: Instant, bytes: u64) {
        let _ = (ticket, started, bytes);
    }

    /// A streamed body was cut short by its upstream, for `reason`
    /// (`closed`, `read_timeout`, …): said before [`Observer::stream_done`].
    fn stream_failed(&mut self, ticket: Ticket, reason: &'static str) {
        let _ = (ticket, reason);
    }
}

/// An observer that ignores everything.
#[derive(Clone, Copy, Debug, Default)]
pub struct NoObserver;

impl Observer for NoObserver {
    fn served(&mut self, _ev: &Served<'_>) -> Ticket {
        Ticket::NONE
    }
}
