//! One proxied request as the hub sees it: which server and connection
//! carry it, the request bytes on their way up, the response on its way
//! down, and how it failed.

use std::cell::RefCell;
use std::fmt;
use std::rc::Rc;
use std::time::Instant;

use crate::exchange::Waker;
use crate::http::client::ResponseHead;

/// Why a proxied request got no (complete) answer from upstream.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Failure {
    /// No server of the group is usable (503).
    NoServer,
    /// The connect failed (502), with its errno.
    Connect(i32),
    /// The TLS handshake failed (502; counted as a connect error).
    Tls(crate::tls::TlsFailure),
    /// The connect timed out (504).
    ConnectTimeout,
    /// No response head within the timeout (504).
    HeadTimeout,
    /// The response body stalled past the read timeout (cut).
    ReadTimeout,
    /// The connection was closed or reset before the response ended (502,
    /// or a cut body).
    Closed,
    /// The upstream sent something that is not an HTTP/1.1 response (502).
    Invalid,
    /// Sending the request failed (502).
    Send,
    /// The upstream switched protocols where none was asked for (502).
    Upgraded,
}

impl Failure {
    /// The status answered to the client when nothing was sent yet.
    pub fn status(self) -> u16 {
        match self {
            Failure::NoServer => 503,
            Failure::ConnectTimeout | Failure::HeadTimeout | Failure::ReadTimeout => 504,
            _ => 502,
        }
    }

    /// A short name for logs and metrics.
    pub fn name(self) -> &'static str {
        match self {
            Failure::NoServer => "no_server",
            Failure::Connect(_) | Failure::Tls(_) => "connect_error",
            Failure::ConnectTimeout => "connect_timeout",
            Failure::HeadTimeout => "head_timeout",
            Failure::ReadTimeout => "read_timeout",
            Failure::Closed => "closed",
            Failure::Invalid => "invalid_response",
            Failure::Send => "send_error",
            Failure::Upgraded => "unexpected_upgrade",
        }
    }

    /// Whether it is a timeout (for the retry rules).
    pub fn is_timeout(self) -> bool {
        matches!(
            self,
            Failure::ConnectTimeout | Failure::HeadTimeout | Failure::ReadTimeout
        )
    }
}

impl fmt::Display for Failure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Failure::NoServer => f.write_str("no upstream server is available"),
            Failure::Connect(e) => write!(
                f,
                "cannot connect to the upstream server: {}",
                std::io::Error::from_raw_os_error(*e)
            ),
            Failure::Tls(t) => write!(f, "cannot connect to the upstream server: {t}"),
            Failure::ConnectTimeout => f.write_str("the upstream server did not accept in time"),
            Failure::HeadTimeout => f.write_str("the upstream server did not answer in time"),
            Failure::ReadTimeout => f.write_str("the upstream response stalled"),
            Failure::Closed => f.write_str("the upstream server closed the connection"),
            Failure::Invalid => f.write_str("the upstream server sent an invalid response"),
            Failure::Send => f.write_str("cannot send the request to the upstream server"),
            Failure::Upgraded => f.write_str("the upstream server switched protocols"),
        }
    }
}

/// A proxied exchange's name in its hub.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct ExchangeId {
    pub(super) index: u32,
    pub(super) generation: u32,
}

/// Names of exchanges whose handler side went away, for the hub to clean
/// up (the handler side cannot reach the hub when it is dropped).
pub type Dropped = Rc<RefCell<Vec<ExchangeId>>>;

/// The handler side's hold on an exchange: dropping it (whatever the path:
/// done, cancelled, panicked) tells the hub.
#[derive(Debug)]
pub struct Ticket {
    /// The exchange.
    pub id: ExchangeId,
    dropped: Dropped,
}

impl Ticket {
    pub(super) fn new(id: ExchangeId, dropped: Dropped) -> Ticket {
        Ticket { id, dropped }
    }
}

impl Drop for Ticket {
    fn drop(&mut self) {
        if let Ok(mut q) = self.dropped.try_borrow_mut() {
            q.push(self.id);
        }
    }
}

/// How the request body goes up.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum UpBody {
    /// No body.
    None,
    /// `Content-Length` bytes, passed through.
    Length,
    /// Re-chunked as it arrives.
    Chunked,
    /// The request asks to switch protocols: after a `101`, what the client
    /// sends goes through as it is.
    Tunnel,
    /// A `CONNECT`: after a 2xx, what the client sends goes through as it
    /// is.
    Connect,
    /// `Content-Length` bytes in FastCGI `STDIN` records, the empty one
    /// after the last.
    Fcgi,
}

impl UpBody {
    /// Whether the request may switch the connection to a tunnel.
    pub fn switches(self) -> bool {
        matches!(self, UpBody::Tunnel | UpBody::Connect)
    }
}

/// Where the exchange is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Phase {
    /// Waiting for a connection (connecting, or the request not handed over).
    Waiting,
    /// The request is on the connection; no head yet.
    Sent,
    /// The head arrived; the body streams.
    Body,
    /// The response is complete (body bytes may still wait in `body`).
    Done,
    /// It failed.
    Failed(Failure),
}

/// One proxied exchange.
#[derive(Debug)]
pub(super) struct Exchange {
    pub generation: u32,
    pub group: usize,
    pub server: usize,
    /// The hub connection carrying it.
    pub conn: Option<usize>,
    pub waker: Option<Waker>,
    pub phase: Phase,
    /// The encoded request head, kept while a retry may need it.
    pub head: Vec<u8>,
    pub head_request: bool,
    pub idempotent: bool,
    pub up_body: UpBody,
    /// Request bytes not yet handed to the connection.
    pub up_queue: Vec<u8>,
    /// The request has been handed to a connection (its head at least).
    pub handed: bool,
    /// Request body bytes have gone up (no retry can resend them).
    pub body_started: bool,
    /// The whole request body is queued.
    pub body_done: bool,
    /// The response head, until the handler takes it.
    pub resp: Option<Box<ResponseHead>>,
    /// Response body bytes for the handler.
    pub body: Vec<u8>,
    /// Response body bytes that came behind `body` before the handler took
    /// it (the connection was released with them): handed out next.
    /// INVARIANT: empty while `body` is.
    pub rest: Vec<u8>,
    /// Attempts made, the first included.
    pub attempts: u32,
    /// Servers tried.
    pub tried: Vec<usize>,
    /// A retry on a fresh connection after a pooled one turned out closed
    /// was used.
    pub stale_retry: bool,
    /// When its current attempt started.
    pub attempt_at: Instant,
    /// How far ahead of the client the response is read.
    pub window: usize,
    /// The client address, for hash policies on retry.
    pub client_ip: Option<std::net::IpAddr>,
}

impl Exchange {
    /// Takes the body bytes a connection holds for this exchange, without
    /// copying them unless two buffers are already waiting.
    pub fn keep_body(&mut self, d: &mut crate::driver::ClientConn) {
        if self.body.is_empty() {
            d.take_body(&mut self.body);
        } else {
            d.take_body(&mut self.rest);
        }
    }
}
