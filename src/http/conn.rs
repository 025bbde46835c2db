//! The HTTP/1.1 server codec, sans-IO: bytes and `now` in, response bytes and
//! steps out. No sockets, no clock reads.
//!
//! The codec never answers a request itself: each complete head becomes an
//! exchange (an owned [`RequestHead`] plus a streaming [`RequestBody`]) handed
//! to the [`Service`], and the codec frames the [`Reply`] that comes back —
//! now, streamed, or later (see [`crate::exchange`]). Reading and writing are
//! separate states: a request body can still be arriving while its response
//! streams out (a streaming echo), and a pipelined request waits until the
//! exchange before it has finished.

use std::time::Instant;

use super::body::Decoder;
use super::encode::{CONTINUE, Persist, encode};
use super::error::Error;
use super::method::Method;
use super::parse::{Framing, Head, check_partial, header_buf, parse_head};
pub use super::pool::ExchangePool;
use super::produce::{Drive, FileStep, Producing};
use super::request::Request;
use super::response::Response;
pub use super::service::{Admit, Env, NoObserver, Observer, Served, Service};
use crate::exchange::{Io, Reply, RequestBody, RequestHead};

/// Output is handed to the caller to send once this much is queued, so a client
/// pipelining without reading cannot grow the buffer without bound.
pub const OUT_HIGH_WATER: usize = 64 * 1024;

/// Partial heads up to this size are parsed again whenever input arrives.
const RESCAN_FREE: usize = 2048;

/// What the caller must do after a step.
#[derive(Debug)]
#[must_use]
pub enum Step {
    /// Send what is in `out`, then read more input (and call [`Conn::feed`]
    /// again when [`Conn::wake_at`] is due).
    NeedInput,
    /// `out` is full: send it, then call [`Conn::feed`] with no new input.
    Flush,
    /// Send `out`, then this file range, then call [`Conn::feed`] with no input.
    File(FileStep),
    /// Send `out`, then this body piece, then call [`Conn::feed`] with no
    /// input (only with [`Conn::send_apart`]).
    Send(Vec<u8>),
    /// Send `out`, then read this file piece and hand it back
    /// (HTTP/2: [`crate::http2::H2Conn::file_data`]).
    ReadFile(crate::http2::FileRead),
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
    /// The handler: an answer that comes later, a streamed body that waits
    /// for its source, or a request body the handler has not taken yet. The
    /// client is not at fault, so no client deadline runs.
    Handler,
    /// A response has bytes to send but the client's flow-control window
    /// is closed (HTTP/2) since this time: the send deadline runs.
    Stalled(Instant),
    /// Nothing: the connection is finished.
    Done,
}

/// The read side, named for what it expects.
#[derive(Debug, Default)]
enum Reading {
    /// A request head; `since` is when its first byte arrived.
    ExpectHead { since: Option<Instant> },
    /// A request body.
    Body(Box<BodyRead>),
    /// After `101 Switching Protocols`: every byte goes through to the
    /// exchange's handler until the connection ends.
    Tunnel,
    /// Finished: input is ignored.
    #[default]
    Closed,
}

#[derive(Debug)]
struct BodyRead {
    decoder: Decoder,
    /// When the last body bytes arrived.
    last: Instant,
    /// When the request's first byte arrived.
    started: Instant,
    /// The bytes go to the exchange's handler; otherwise they are dropped.
    keep: bool,
}

/// The exchange in progress: its head, body and what produces its response
/// (opaque outside the codec; pooled by [`ExchangePool`]).
pub struct Exchange {
    pub(super) head: RequestHead,
    pub(super) body: RequestBody,
    pub(super) started: Instant,
    pub(super) persist: Persist,
    pub(super) head_only: bool,
    pub(super) producing: Producing,
    /// When the task or source asked to be polled again.
    pub(super) wake: Option<Instant>,
    /// The site that answers, as the service said (see [`Io::set_site`]).
    pub(super) site: Option<u16>,
    /// The response switched protocols: input goes to the handler as it is.
    pub(super) tunnel: bool,
    /// Which upstream server answered, for the access log.
    pub(super) upstream: Option<crate::exchange::UpstreamNote>,
    /// What the guards noted and hold (left when the exchange ends).
    pub(super) guarded: crate::guard::Guarded,
}

/// Where a parsed head came from.
struct Arrival {
    /// Whether more input follows it in the same buffer.
    more_input: bool,
    /// When its first byte arrived.
    started: Instant,
}

/// One HTTP/1.1 connection's protocol state.
#[derive(Default)]
pub struct Conn {
    read: Reading,
    ex: Option<Box<Exchange>>,
    /// Input not consumed yet: a partial head, or input behind an exchange.
    rbuf: Vec<u8>,
    /// Length of a partial head already scanned without finding its end; new
    /// input is parsed only when it brings a line end.
    scanned: usize,
    error: Option<Error>,
    /// The connection ended with input unread: a request body not read to
    /// its end, or bytes after the last request.
    unread: bool,
    /// Streamed body pieces at least this large are handed out with
    /// [`Step::Send`] instead of being copied into `out` (0: never).
    send_apart: u32,
}

impl std::fmt::Debug for Conn {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Conn")
            .field("read", &self.read)
            .field("exchange", &self.ex.is_some())
            .field("buffered", &self.rbuf.len())
            .finish_non_exhaustive()
    }
}

impl Conn {
    /// A connection waiting for its first request.
    pub fn new() -> Conn {
        Conn {
            read: Reading::ExpectHead { since: None },
            ..Conn::default()
        }
    }

    /// Hands streamed body pieces of at least `min` bytes to the caller with
    /// [`Step::Send`] (sent after `out` without being copied into it).
    pub fn send_apart(mut self, min: u32) -> Conn {
        self.send_apart = min;
        self
    }

    /// Feeds input and answers every complete request in it, appending response
    /// bytes to `out`. Incomplete input is kept for the next call. Also the
    /// call that goes on after a send, a file, or a due wake-up (no input).
    pub fn feed<S: Service + ?Sized>(
        &mut self,
        input: &[u8],
        svc: &mut S,
        env: &mut Env<'_>,
        out: &mut Vec<u8>,
    ) -> Step {
        if self.is_closed() {
            return Step::Close;
        }
        if self.rbuf.is_empty() {
            let (used, step) = self.process(input, svc, env, out);
            if used < input.len() && !self.is_closed() {
                self.rbuf.extend_from_slice(&input[used..]);
            }
            step
        } else {
            self.rbuf.extend_from_slice(input);
            let mut buf = std::mem::take(&mut self.rbuf);
            let (used, step) = self.process(&buf, svc, env, out);
            if used < buf.len() && !self.is_closed() {
                buf.drain(..used);
                self.rbuf = buf;
            } else if buf.capacity() <= 4096 {
                buf.clear();
                self.rbuf = buf;
            }
            step
        }
    }

    /// Keeps input for later, without processing it (while a response is being
    /// sent). Returns how many bytes are now buffered.
    pub fn buffer(&mut self, input: &[u8]) -> usize {
        if !self.is_closed() {
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
        match (&self.read, &self.ex) {
            (Reading::Body(r), Some(ex)) if r.keep && ex.body.room() == 0 => Waiting::Handler,
            (Reading::Body(r), _) => Waiting::Body(r.last),
            (Reading::Tunnel, _) => Waiting::Handler,
            (_, Some(_)) => Waiting::Handler,
            (Reading::ExpectHead { since: None }, None) => Waiting::Idle,
            (Reading::ExpectHead { since: Some(t) }, None) => Waiting::Head(*t),
            (Reading::Closed, None) => Waiting::Done,
        }
    }

    /// When the exchange in progress asked to be polled again (call
    /// [`Conn::feed`] with no input then).
    pub fn wake_at(&self) -> Option<Instant> {
        self.ex.as_ref().and_then(|e| e.wake)
    }

    /// Whether the connection will take no more requests and has nothing left
    /// to produce.
    pub fn is_closed(&self) -> bool {
        matches!(self.read, Reading::Closed) && self.ex.is_none()
    }

    /// Whether the connection switched protocols and now carries bytes
    /// through to a handler.
    pub fn is_tunnel(&self) -> bool {
        matches!(self.read, Reading::Tunnel)
    }

    /// The protocol error that ended the connection, if one did.
    pub fn error(&self) -> Option<Error> {
        self.error
    }

    /// The caller's deadline for what the connection waits for has passed:
    /// answers 408 if a request was under way (and no response is), and
    /// finishes the connection.
    pub fn timeout(&mut self, env: &mut Env<'_>, out: &mut Vec<u8>) -> Step {
        let answered = self.ex.as_ref().is_some_and(|e| e.producing.started());
        match &self.read {
            Reading::ExpectHead { since: Some(t) } if self.ex.is_none() => {
                let t = *t;
                self.fail(Error::HeadersTimeout, t, env, out);
            }
            Reading::Body(r) if !answered => {
                let t = r.started;
                self.fail(Error::BodyTimeout, t, env, out);
            }
            Reading::Body(_) => self.error = Some(Error::BodyTimeout),
            _ => {}
        }
        self.abandon(env.obs);
        self.finish();
        Step::Close
    }

    /// Whether closing needs a lingering close: the connection ended on an
    /// error, or with input the client sent that was not read (closing with
    /// unread input makes the kernel reset the connection, which can destroy
    /// the response before the client reads it).
    pub fn needs_linger(&self) -> bool {
        self.error.is_some() || self.unread || !self.rbuf.is_empty()
    }

    /// Stops taking requests (the caller closes the connection).
    pub fn finish(&mut self) {
        if matches!(self.read, Reading::Body(_)) || !self.rbuf.is_empty() {
            self.unread = true;
        }
        self.read = Reading::Closed;
        self.rbuf = Vec::new();
        if let Some(mut ex) = self.ex.take() {
            ex.producing.cancel();
        }
    }

    /// The connection is going away: a streamed response still in progress
    /// is reported to `obs` as ended, and its task or source is stopped.
    pub fn abandon(&mut self, obs: &mut dyn Observer) {
        if let Some(ex) = self.ex.as_mut() {
            let failure = ex.upstream.as_ref().and_then(|u| u.failure);
            ex.producing.abandon(obs, ex.started, failure);
        }
    }

    fn process<S: Service + ?Sized>(
        &mut self,
        buf: &[u8],
        svc: &mut S,
        env: &mut Env<'_>,
        out: &mut Vec<u8>,
    ) -> (usize, Step) {
        let mut pos = 0;
        loop {
            // An exchange whose response is complete ends once its request
            // body has been read; a body nobody wants any more is dropped.
            if let Some(ex) = self.ex.as_mut()
                && ex.producing.is_done()
            {
                // A response that closes the connection ends it at once,
                // whatever of the request body is still unread.
                if ex.persist == Persist::Close {
                    let ex = self.ex.take().expect("exchange");
                    env.pool.put(ex);
                    self.unread |= pos < buf.len();
                    self.finish();
                    return (buf.len(), Step::Close);
                }
                match &mut self.read {
                    Reading::Body(r) if r.keep => {
                        r.keep = false;
                        ex.body.discard();
                    }
                    Reading::Body(_) => {}
                    _ => {
                        let ex = self.ex.take().expect("exchange");
                        env.pool.put(ex);
                    }
                }
            }
            if out.len() >= OUT_HIGH_WATER {
                return (pos, Step::Flush);
            }
            if self.ex.is_some() {
                match self.drive(env, out) {
                    Drive::More => continue,
                    Drive::File(f) => return (pos, Step::File(f)),
                    Drive::Send(b) => return (pos, Step::Send(b)),
                    Drive::Close => {
                        self.abandon(env.obs);
                        self.unread |= pos < buf.len();
                        self.finish();
                        return (buf.len(), Step::Close);
                    }
                    Drive::Wait => {}
                }
            }
            if self.ex.as_ref().is_some_and(|e| e.tunnel) && !self.is_tunnel() {
                self.read = Reading::Tunnel;
            }
            match &mut self.read {
                Reading::Tunnel => {
                    let Some(ex) = self.ex.as_mut() else {
                        self.read = Reading::Closed;
                        continue;
                    };
                    let room = ex.body.room();
                    if room == 0 || pos == buf.len() {
                        return (pos, Step::NeedInput);
                    }
                    let n = room.min(buf.len() - pos);
                    ex.body.sink().extend_from_slice(&buf[pos..pos + n]);
                    pos += n;
                }
                Reading::Closed => {
                    return if self.ex.is_some() {
                        (buf.len(), Step::NeedInput)
                    } else {
                        (buf.len(), Step::Close)
                    };
                }
                Reading::ExpectHead { since } => {
                    // A pipelined request waits for the exchange before it.
                    if self.ex.is_some() || pos == buf.len() {
                        return (pos, Step::NeedInput);
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
                            let file = self.on_head(
                                head,
                                Arrival {
                                    more_input,
                                    started,
                                },
                                svc,
                                env,
                                out,
                            );
                            pos += len;
                            if let Some(f) = file {
                                return (pos, Step::File(f));
                            }
                        }
                    }
                }
                Reading::Body(read) => {
                    let ex = self.ex.as_mut().filter(|_| read.keep);
                    let room = ex.as_ref().map_or(usize::MAX, |e| e.body.room());
                    // Backpressure: the handler has not taken what arrived.
                    if room == 0 || pos == buf.len() {
                        return (pos, Step::NeedInput);
                    }
                    let end = pos + room.min(buf.len() - pos);
                    let decoded = match read
                        .decoder
                        .decode(&buf[pos..end], ex.map(|e| e.body.sink()))
                    {
                        Ok(d) => d,
                        Err(e) => {
                            let started = read.started;
                            let answered = self.ex.as_ref().is_some_and(|e| e.producing.started());
                            if answered {
                                self.error = Some(e);
                                self.abandon(env.obs);
                                self.finish();
                            } else {
                                self.fail(e, started, env, out);
                            }
                            return (buf.len(), Step::Close);
                        }
                    };
                    if decoded.consumed > 0 {
                        read.last = env.now;
                    }
                    pos += decoded.consumed;
                    if decoded.done {
                        self.read = Reading::ExpectHead { since: None };
                        if let Some(ex) = self.ex.as_mut() {
                            ex.body.finish();
                        }
                    }
                }
            }
        }
    }

    /// Starts producing `reply` for the exchange in progress.
    /// A ready response is encoded at once (its file body, if any, is the
    /// caller's next step); a stream or task is driven by the loop.
    fn start(&mut self, reply: Reply, env: &mut Env<'_>, out: &mut Vec<u8>) -> Option<FileStep> {
        let ex = self.ex.as_mut().expect("exchange");
        match super::produce::begin(ex, reply, env, out) {
            Drive::File(f) => Some(f),
            Drive::More | Drive::Wait | Drive::Close | Drive::Send(_) => None,
        }
    }

    fn drive(&mut self, env: &mut Env<'_>, out: &mut Vec<u8>) -> Drive {
        let ex = self.ex.as_mut().expect("exchange");
        super::produce::drive(ex, env, out, self.send_apart as usize)
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
            peer: env.peer,
            status: e.status(),
            body_len: resp.body.len(),
            started,
            error: Some(e),
            file: false,
            stream: false,
            site: None,
            upstream: None,
            refused: None,
        });
        self.abandon(env.obs);
        self.finish();
    }
}

#[path = "conn_head.rs"]
mod head;

#[cfg(test)]
#[path = "conn_tests/mod.rs"]
mod tests;
