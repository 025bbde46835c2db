//! The HTTP/1.1 connection state machine, sans-IO: bytes and `now` in, response
//! bytes and actions out. No sockets, no clock reads.

use std::panic::{AssertUnwindSafe, catch_unwind};
use std::time::Instant;

use super::body::Decoder;
use super::encode::{Persist, allows_body, encode};
use super::error::Error;
use super::limits::Limits;
use super::method::{Method, Methods};
use super::parse::{Framing, Head, check_partial, header_buf, parse_head};
use super::request::{Request, TlsInfo, Version};
use super::response::{Body, FileBody, Response};

/// Output is handed to the caller to send once this much is queued, so a client
/// pipelining without reading cannot grow the buffer without bound.
pub const OUT_HIGH_WATER: usize = 64 * 1024;

const CONTINUE: &[u8] = b"HTTP/1.1 100 Continue\r\n\r\n";

/// Partial heads up to this size are parsed again whenever input arrives.
const RESCAN_FREE: usize = 2048;

/// What to do with a request body, decided from the head before it is read.
#[derive(Debug)]
pub enum Admit {
    /// Read the body and hand it to [`Service::call`].
    Read,
    /// Read the body and drop it; [`Service::call`] sees an empty body.
    Drop,
    /// Answer now with this response; the body is read and dropped (or, when the
    /// client waits for `100 Continue`, the connection is closed).
    Answer(Response),
}

/// What answers requests: a router, or a test double.
pub trait Service {
    /// Looks at the head of a request that has a body, before the body is read.
    fn check(&mut self, req: &Request<'_>) -> Admit {
        let _ = req;
        Admit::Read
    }

    /// Answers a complete request.
    fn call(&mut self, req: &Request<'_>) -> Response;

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
    pub tls: Option<&'a TlsInfo>,
    /// Header lines added to every response (e.g. HSTS), CRLF-terminated.
    pub extra_headers: &'a [u8],
}

impl std::fmt::Debug for Env<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Env")
            .field("now", &self.now)
            .field("draining", &self.draining)
            .finish_non_exhaustive()
    }
}

/// One response, as reported to an [`Observer`] when it has been encoded.
#[derive(Debug)]
pub struct Served<'a> {
    /// The request, or `None` for a protocol refusal (see `error`).
    pub req: Option<&'a Request<'a>>,
    /// The response status.
    pub status: u16,
    /// Body bytes the response carries (0 for HEAD, 304, …).
    pub body_len: u64,
    /// When the request's first byte was seen.
    pub started: Instant,
    /// The protocol error answered, for refusals.
    pub error: Option<Error>,
    /// The body is a file that streams after this step ([`Step::File`]).
    pub file: bool,
}

/// Watches responses as they are produced: metrics, access logs.
pub trait Observer {
    /// A response was encoded into the output.
    fn served(&mut self, ev: &Served<'_>);
}

/// An observer that ignores everything.
#[derive(Clone, Copy, Debug, Default)]
pub struct NoObserver;

impl Observer for NoObserver {
    fn served(&mut self, _ev: &Served<'_>) {}
}

/// What the caller must do after a step.
#[derive(Debug)]
#[must_use]
pub enum Step {
    /// Send what is in `out`, then read more input.
    NeedInput,
    /// `out` is full: send it, then call [`Conn::feed`] with no new input.
    Flush,
    /// Send `out`, then this file range, then call [`Conn::feed`] with no input.
    File(FileBody),
    /// Send `out`, then close the connection.
    Close,
}

/// What the connection waits for, for the caller's timers.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Waiting {
    /// Between requests.
    Idle,
    /// A request head whose first byte came at this time.
    Head(Instant),
    /// More of a request body; the last piece came at this time.
    Body(Instant),
    /// Nothing: the connection is finished.
    Done,
}

/// One HTTP/1.1 connection's protocol state.
#[derive(Debug, Default)]
pub struct Conn {
    phase: Phase,
    /// Input not consumed yet: a partial head, or requests queued behind a pause.
    rbuf: Vec<u8>,
    /// Length of a partial head already scanned without finding its end; new
    /// input is parsed only when it brings a line end.
    scanned: usize,
    error: Option<Error>,
}

#[derive(Debug, Default)]
enum Phase {
    /// Waiting for a request head; `since` is when its first byte arrived.
    Head { since: Option<Instant> },
    /// Reading a request body.
    Body(Box<BodyRead>),
    /// Finished: input is ignored.
    #[default]
    Closed,
}

#[derive(Debug)]
struct BodyRead {
    /// A copy of the raw head, parsed again when the body is complete.
    head: Vec<u8>,
    body: Vec<u8>,
    decoder: Decoder,
    /// When the last body bytes arrived.
    last: Instant,
    /// When the request's first byte arrived.
    started: Instant,
    use_: BodyUse,
}

#[derive(Debug, PartialEq, Eq)]
enum BodyUse {
    /// Kept for the handler.
    Keep,
    /// Dropped; the handler is called with an empty body.
    Drop,
    /// Dropped; the request was answered already.
    Answered,
}

/// Where a parsed head came from.
struct Arrival<'a> {
    /// Its raw bytes.
    raw: &'a [u8],
    /// Whether more input follows it in the same buffer.
    more_input: bool,
    /// When its first byte arrived.
    started: Instant,
}

enum Next {
    Continue,
    Stop(Step),
}

impl Conn {
    /// A connection waiting for its first request.
    pub fn new() -> Conn {
        Conn {
            phase: Phase::Head { since: None },
            ..Conn::default()
        }
    }

    /// Feeds input and answers every complete request in it, appending response
    /// bytes to `out`. Incomplete input is kept for the next call.
    pub fn feed<S: Service>(
        &mut self,
        input: &[u8],
        svc: &mut S,
        env: &mut Env<'_>,
        out: &mut Vec<u8>,
    ) -> Step {
        if matches!(self.phase, Phase::Closed) {
            return Step::Close;
        }
        if self.rbuf.is_empty() {
            let (used, step) = self.process(input, svc, env, out);
            if used < input.len() && !matches!(self.phase, Phase::Closed) {
                self.rbuf.extend_from_slice(&input[used..]);
            }
            step
        } else {
            self.rbuf.extend_from_slice(input);
            let mut buf = std::mem::take(&mut self.rbuf);
            let (used, step) = self.process(&buf, svc, env, out);
            if used < buf.len() && !matches!(self.phase, Phase::Closed) {
                buf.drain(..used);
                self.rbuf = buf;
            }
            step
        }
    }

    /// Keeps input for later, without processing it (while a response is being
    /// sent). Returns how many bytes are now buffered.
    pub fn buffer(&mut self, input: &[u8]) -> usize {
        if !matches!(self.phase, Phase::Closed) {
            self.rbuf.extend_from_slice(input);
        }
        self.rbuf.len()
    }

    /// Bytes of input held for later.
    pub fn buffered(&self) -> usize {
        self.rbuf.len()
    }

    /// What the connection waits for.
    pub fn waiting(&self) -> Waiting {
        match &self.phase {
            Phase::Head { since: None } => Waiting::Idle,
            Phase::Head { since: Some(t) } => Waiting::Head(*t),
            Phase::Body(r) => Waiting::Body(r.last),
            Phase::Closed => Waiting::Done,
        }
    }

    /// Whether the connection will take no more requests.
    pub fn is_closed(&self) -> bool {
        matches!(self.phase, Phase::Closed)
    }

    /// The protocol error that ended the connection, if one did.
    pub fn error(&self) -> Option<Error> {
        self.error
    }

    /// The caller's deadline for what the connection waits for has passed:
    /// answers 408 if a request was under way, and finishes the connection.
    pub fn timeout(&mut self, env: &mut Env<'_>, out: &mut Vec<u8>) -> Step {
        match &self.phase {
            Phase::Head { since: Some(t) } => {
                let t = *t;
                self.fail(Error::HeadersTimeout, t, env, out);
            }
            Phase::Body(r) => {
                let t = r.started;
                self.fail(Error::BodyTimeout, t, env, out);
            }
            Phase::Head { since: None } | Phase::Closed => self.finish(),
        }
        Step::Close
    }

    /// Stops taking requests (the caller closes the connection).
    pub fn finish(&mut self) {
        self.phase = Phase::Closed;
        self.rbuf = Vec::new();
    }

    fn process<S: Service>(
        &mut self,
        buf: &[u8],
        svc: &mut S,
        env: &mut Env<'_>,
        out: &mut Vec<u8>,
    ) -> (usize, Step) {
        let mut pos = 0;
        loop {
            match &mut self.phase {
                Phase::Closed => return (buf.len(), Step::Close),
                Phase::Head { since } => {
                    if pos == buf.len() {
                        return (pos, Step::NeedInput);
                    }
                    if out.len() >= OUT_HIGH_WATER {
                        return (pos, Step::Flush);
                    }
                    let started = *since.get_or_insert(env.now);
                    let rest = &buf[pos..];
                    // A partial head is complete only once new input brings a line
                    // end. Parsing a long head again for every small piece would
                    // cost quadratic time against a trickling client, so past
                    // RESCAN_FREE bytes the head is parsed again only when the new
                    // input holds a CR or LF (other syntax errors in it are then
                    // found at the next line end, or by the headers timeout).
                    if pos == 0
                        && self.scanned > RESCAN_FREE
                        && self.scanned < rest.len()
                        && !rest[self.scanned..]
                            .iter()
                            .any(|b| *b == b'\n' || *b == b'\r')
                    {
                        if let Err(e) = check_partial(rest, env.limits) {
                            self.fail(e, started, env, out);
                            return (buf.len(), Step::Close);
                        }
                        self.scanned = rest.len();
                        return (pos, Step::NeedInput);
                    }
                    let mut storage = header_buf();
                    match parse_head(rest, &mut storage, env.limits) {
                        Ok(None) => {
                            self.scanned = rest.len();
                            return (pos, Step::NeedInput);
                        }
                        Err(e) => {
                            self.fail(e, started, env, out);
                            return (buf.len(), Step::Close);
                        }
                        Ok(Some(head)) => {
                            self.scanned = 0;
                            let len = head.len;
                            let more_input = pos + len < buf.len();
                            if let Next::Stop(step) = self.on_head(
                                head,
                                Arrival {
                                    raw: &rest[..len],
                                    more_input,
                                    started,
                                },
                                svc,
                                env,
                                out,
                            ) {
                                return (pos + len, step);
                            }
                            pos += len;
                        }
                    }
                }
                Phase::Body(read) => {
                    let sink = if read.use_ == BodyUse::Keep {
                        Some(&mut read.body)
                    } else {
                        None
                    };
                    let decoded = match read.decoder.decode(&buf[pos..], sink) {
                        Ok(d) => d,
                        Err(e) => {
                            let started = read.started;
                            self.fail(e, started, env, out);
                            return (buf.len(), Step::Close);
                        }
                    };
                    if decoded.consumed > 0 {
                        read.last = env.now;
                    }
                    pos += decoded.consumed;
                    if !decoded.done {
                        return (pos, Step::NeedInput);
                    }
                    let Phase::Body(read) =
                        std::mem::replace(&mut self.phase, Phase::Head { since: None })
                    else {
                        unreachable!()
                    };
                    if read.use_ == BodyUse::Answered {
                        continue;
                    }
                    if let Next::Stop(step) = self.on_body(&read, svc, env, out) {
                        return (pos, step);
                    }
                }
            }
        }
    }

    fn on_head<S: Service>(
        &mut self,
        head: Head<'_>,
        at: Arrival<'_>,
        svc: &mut S,
        env: &mut Env<'_>,
        out: &mut Vec<u8>,
    ) -> Next {
        let Arrival {
            raw,
            more_input,
            started,
        } = at;
        let req = &Request {
            tls: env.tls,
            ..head.req
        };
        if req.method == Method::Options && req.target == "*" {
            let allow = svc.methods().with(Method::Options).allow_header();
            let resp = Response::new(200).header("Allow", allow);
            self.phase = Phase::Head { since: None };
            return self.respond(req, resp, started, env, out);
        }
        if req.method == Method::Connect {
            let allow = svc.methods().allow_header();
            let resp =
                Response::error(405, Some("CONNECT is not supported")).header("Allow", allow);
            return self.respond(req, resp.close(), started, env, out);
        }
        let decoder = match head.framing {
            Framing::None => {
                self.phase = Phase::Head { since: None };
                let resp = call(svc, req);
                return self.respond(req, resp, started, env, out);
            }
            Framing::Length(n) => Decoder::length(n),
            Framing::Chunked => Decoder::chunked(
                env.limits.max_request_body_size,
                env.limits.max_request_headers_total_size,
            ),
        };
        let use_ = match svc.check(req) {
            Admit::Read => BodyUse::Keep,
            Admit::Drop => BodyUse::Drop,
            Admit::Answer(resp) => {
                // A client waiting for 100 Continue will not send the body; others
                // will, and it is read and dropped.
                let resp = if head.expect_continue && !more_input {
                    resp.close()
                } else {
                    resp
                };
                self.phase = Phase::Body(Box::new(BodyRead {
                    head: Vec::new(),
                    body: Vec::new(),
                    decoder,
                    last: env.now,
                    started,
                    use_: BodyUse::Answered,
                }));
                return self.respond(req, resp, started, env, out);
            }
        };
        if head.expect_continue && !more_input {
            out.extend_from_slice(CONTINUE);
        }
        let capacity = match use_ {
            BodyUse::Keep => decoder.remaining_hint().unwrap_or(0).min(64 * 1024) as usize,
            _ => 0,
        };
        self.phase = Phase::Body(Box::new(BodyRead {
            head: raw.to_vec(),
            body: Vec::with_capacity(capacity),
            decoder,
            last: env.now,
            started,
            use_,
        }));
        Next::Continue
    }

    fn on_body<S: Service>(
        &mut self,
        read: &BodyRead,
        svc: &mut S,
        env: &mut Env<'_>,
        out: &mut Vec<u8>,
    ) -> Next {
        let mut storage = header_buf();
        match parse_head(&read.head, &mut storage, env.limits) {
            Ok(Some(head)) => {
                let req = Request {
                    body: &read.body,
                    tls: env.tls,
                    ..head.req
                };
                let resp = call(svc, &req);
                self.respond(&req, resp, read.started, env, out)
            }
            // The same bytes parsed before; this cannot happen.
            _ => {
                self.phase = Phase::Closed;
                encode(
                    out,
                    &Response::error(500, None),
                    env.date,
                    env.extra_headers,
                    Persist::Close,
                    false,
                );
                Next::Stop(Step::Close)
            }
        }
    }

    fn respond(
        &mut self,
        req: &Request<'_>,
        resp: Response,
        started: Instant,
        env: &mut Env<'_>,
        out: &mut Vec<u8>,
    ) -> Next {
        let keep = req.keep_alive && !resp.close && !env.draining;
        let persist = match (keep, req.version) {
            (false, _) => Persist::Close,
            (true, Version::Http10) => Persist::KeepAlive10,
            (true, Version::Http11) => Persist::KeepAlive,
        };
        let head_only = req.method == Method::Head;
        encode(out, &resp, env.date, env.extra_headers, persist, head_only);
        if !keep {
            self.phase = Phase::Closed;
        }
        let sends_body = !head_only && allows_body(resp.status);
        env.obs.served(&Served {
            req: Some(req),
            status: resp.status,
            body_len: if sends_body { resp.body.len() } else { 0 },
            started,
            error: None,
            file: sends_body && matches!(&resp.body, Body::File(f) if f.len > 0),
        });
        match resp.body {
            Body::File(f) if sends_body && f.len > 0 => Next::Stop(Step::File(f)),
            _ if !keep => Next::Stop(Step::Close),
            _ => Next::Continue,
        }
    }

    fn fail(&mut self, e: Error, started: Instant, env: &mut Env<'_>, out: &mut Vec<u8>) {
        self.error = Some(e);
        let resp = Response::error(e.status(), Some(&e.to_string()));
        encode(
            out,
            &resp,
            env.date,
            env.extra_headers,
            Persist::Close,
            false,
        );
        env.obs.served(&Served {
            req: None,
            status: e.status(),
            body_len: resp.body.len(),
            started,
            error: Some(e),
            file: false,
        });
        self.finish();
    }
}

/// Calls the service, answering 500 if it panics.
fn call<S: Service>(svc: &mut S, req: &Request<'_>) -> Response {
    match catch_unwind(AssertUnwindSafe(|| svc.call(req))) {
        Ok(r) => r,
        Err(_) => Response::error(500, None).close(),
    }
}

#[cfg(test)]
#[path = "conn_tests.rs"]
mod tests;
