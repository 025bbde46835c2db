//! The server side of one connection: transport and HTTP/1 under one state
//! machine, with every lifecycle decision (deadlines, pausing, lingering,
//! closing) made here.

use std::time::Instant;

pub use super::action::{Action, Cx, Gauge};
use super::deadline::Meter;
use super::file::{FileIo, FileSend};
use super::pool::BufPool;
use super::tls::TlsState;
use crate::http::{Env, Error, Step, Waiting};
use crate::metrics::CloseReason;
use crate::tls::TlsSession;

/// The protocol's environment from a driver's [`Cx`]: plain, or with the TLS
/// session's facts and headers.
macro_rules! env {
    ($cx:expr) => {
        env!(@ $cx, None, b"")
    };
    ($cx:expr, $info:expr) => {
        env!(@ $cx, $info, $cx.tls_headers)
    };
    (@ $cx:expr, $info:expr, $extra:expr) => {
        Env {
            limits: $cx.limits,
            now: $cx.now,
            date: $cx.date,
            draining: $cx.draining,
            obs: &mut *$cx.obs,
            tls: $info,
            extra_headers: $extra,
            peer: $cx.peer,
            listener: $cx.listener,
            pool: &mut *$cx.exchanges,
            waker: $cx.waker,
            upstreams: $cx.upstreams.as_deref_mut(),
        }
    };
}
pub(super) use env;

/// Input held behind a response in progress (or not taken by a handler)
/// before receiving pauses; it resumes below half of it.
pub const MAX_BUFFERED: usize = 256 * 1024;

/// Where the connection is in its life.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Phase {
    /// Serving requests.
    Open,
    /// The final response is out and our side is shut; input is read and
    /// dropped until the peer closes or `until` passes.
    Lingering { until: Instant },
    /// Closed: the executor cancels what is in flight and frees the slot.
    Closed,
}

/// What follows once the output is sent.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Then {
    /// Go on with buffered input.
    Resume,
    /// Linger, then close.
    Close,
}

/// One accepted connection, sans-IO.
pub struct ServerConn {
    pub(super) phase: Phase,
    pub(super) http: super::proto::Proto,
    pub(super) tls: Option<Box<TlsState>>,
    /// Output not yet handed to a send (empty with no capacity when idle).
    pub(super) out: Vec<u8>,
    /// Bytes of `out` already sent.
    pub(super) sent: usize,
    /// A body piece sent right after `out`, in the same gather send (boxed:
    /// an idle connection holds a pointer's worth).
    /// INVARIANT: some only while `out` has unsent bytes.
    #[allow(clippy::box_collection)] // one word in every slot, not three
    pub(super) tail: Option<Box<Vec<u8>>>,
    /// A send of `out` (or a splice out, or a poll) is in flight.
    pub(super) sending: bool,
    /// A file read or splice in is in flight.
    pub(super) reading: bool,
    /// A file body being sent after `out`.
    pub(super) file: Option<Box<FileSend>>,
    /// The I/O step a file body asked for, handed out by `poll_action`.
    pub(super) next_io: Option<FileIo>,
    pub(super) then: Then,
    /// The peer shut its sending side.
    pub(super) peer_eof: bool,
    /// At least one response has been finished.
    pub(super) served: bool,
    /// A response was produced and has not been followed by idleness yet.
    pub(super) responded: bool,
    /// Receiving is paused (too much input held).
    pub(super) recv_paused: bool,
    /// Our sending side is to be shut.
    pub(super) shutdown_due: bool,
    /// The close to report, with a note for the error log.
    pub(super) close_due: Option<(CloseReason, Option<Box<str>>)>,
    pub(super) why: CloseReason,
    /// When the connection was accepted.
    pub(super) accepted: Instant,
    /// When the connection last became idle after a response.
    pub(super) idle_since: Instant,
    /// When the first byte after becoming idle arrived (ciphertext included).
    pub(super) first_byte: Option<Instant>,
    /// The last progress of a response write.
    pub(super) send_progress: Instant,
    /// The response bytes moved since the client last had all it was sent.
    pub(super) send_meter: Meter,
    /// The request body's transfer, while one is read.
    pub(super) body_meter: Option<Meter>,
    /// Waiting for the next tick's handshake budget.
    pub(super) deferred: bool,
    /// The protocol is settled (HTTP/1, or HTTP/2 by ALPN or preface).
    pub(super) decided: bool,
    /// How many first bytes of a plain connection were held because they
    /// may still become the HTTP/2 preface (they are its first bytes).
    pub(super) sniffed: u8,
}

impl std::fmt::Debug for ServerConn {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ServerConn")
            .field("phase", &self.phase)
            .field("http", &self.http)
            .field("sending", &self.sending)
            .field("reading", &self.reading)
            .finish_non_exhaustive()
    }
}

impl ServerConn {
    /// A connection accepted at `now`; `tls` is its session on an HTTPS
    /// listener.
    pub fn new(tls: Option<TlsSession>, now: Instant) -> ServerConn {
        ServerConn {
            phase: Phase::Open,
            http: super::proto::Proto::h1(),
            tls: tls.map(|s| Box::new(TlsState::new(s))),
            out: Vec::new(),
            sent: 0,
            tail: None,
            sending: false,
            reading: false,
            file: None,
            next_io: None,
            then: Then::Resume,
            peer_eof: false,
            served: false,
            responded: false,
            recv_paused: false,
            shutdown_due: false,
            close_due: None,
            why: CloseReason::Normal,
            accepted: now,
            idle_since: now,
            first_byte: None,
            send_progress: now,
            send_meter: Meter::start(now),
            body_meter: None,
            deferred: false,
            decided: false,
            sniffed: 0,
        }
    }

    // ---- inputs ------------------------------------------------------------

    /// Bytes arrived.
    pub fn on_recv(&mut self, data: &[u8], cx: &mut Cx<'_>) {
        if self.phase != Phase::Open || self.http.is_closed() {
            return; // lingering: input is read and dropped
        }
        // (HTTP/2 times a partial frame itself; a whole control frame on an
        // idle connection starts no request.)
        if self.first_byte.is_none() && !self.http.is_h2() && self.http.waiting() == Waiting::Idle {
            self.first_byte = Some(cx.now);
        }
        let busy = self.writing();
        if let Some(t) = self.tls.as_deref_mut() {
            // Ciphertext always queues in the session; it is fed when the
            // connection is not writing and the handshake budget allows.
            t.pending.extend_from_slice(data);
            if !busy {
                self.tls_input(cx);
            }
        } else if busy {
            let _ = self.http.buffer(data);
        } else {
            self.feed(data, cx);
        }
        self.settle();
    }

    /// The peer shut its sending side (or the connection reset: `reset`).
    /// Whatever streams is reported to the observer as it ends (a tunnel,
    /// or a body a handler still produces).
    pub fn on_eof(&mut self, reset: bool, cx: &mut Cx<'_>) {
        self.peer_eof = true;
        match self.phase {
            Phase::Closed => {}
            _ if reset => self.close_with(CloseReason::Reset, None, cx),
            Phase::Lingering { .. } => self.close(CloseReason::Normal, None),
            // A response in progress is finished first, buffered requests too.
            Phase::Open if self.writing() => {}
            Phase::Open => self.close_with(CloseReason::Normal, None, cx),
        }
    }

    /// Time passed: a deadline or a handler's wake-up may be due.
    pub fn on_timer(&mut self, cx: &mut Cx<'_>) {
        if let Some((at, why)) = self.deadline(cx.settings)
            && at <= cx.now
        {
            self.expire(why, cx);
        } else if self.phase == Phase::Open
            && !self.writing()
            && self.http.wake_at().is_some_and(|w| w <= cx.now)
        {
            self.resume(cx);
        }
        self.settle();
    }

    /// Something the exchange waits for happened elsewhere on the worker
    /// (an upstream response arrived): poll it again, unless a write is in
    /// flight (it is polled when that completes).
    pub fn on_wake(&mut self, cx: &mut Cx<'_>) {
        if self.phase == Phase::Open && !self.writing() {
            self.resume(cx);
        }
        self.settle();
    }

    /// Runs TLS input held back by the handshake budget.
    pub fn retry(&mut self, cx: &mut Cx<'_>) {
        self.deferred = false;
        if self.phase == Phase::Open && !self.writing() {
            self.tls_input(cx);
        }
        self.settle();
    }

    /// The server is stopping: an idle connection closes now; one with a
    /// request in progress finishes it first (then closes).
    pub fn drain(&mut self, cx: &mut Cx<'_>) {
        match self.phase {
            Phase::Lingering { .. } => self.close(CloseReason::Shutdown, None),
            // HTTP/2 says GOAWAY first; streams in flight finish.
            Phase::Open if self.http.is_h2() && !self.writing() => {
                self.resume(cx);
                self.settle();
            }
            Phase::Open if !self.writing() && self.http.waiting() == Waiting::Idle => {
                self.close(CloseReason::Shutdown, None)
            }
            _ => {}
        }
    }

    /// Closes now, whatever is in progress (the stop's deadline passed, or
    /// the worker is full).
    pub fn abort(&mut self, why: CloseReason, cx: &mut Cx<'_>) {
        self.close_with(why, None, cx);
    }

    // ---- outputs -----------------------------------------------------------

    /// When the exchange in progress asked to be polled again.
    pub fn wake_at(&self) -> Option<Instant> {
        match self.phase {
            Phase::Open => self.http.wake_at(),
            _ => None,
        }
    }

    /// Whether the executor should keep a receive armed.
    pub fn wants_recv(&self) -> bool {
        self.phase != Phase::Closed && !self.peer_eof && !self.recv_paused
    }

    /// Whether the connection waits for the next tick's handshake budget.
    pub fn deferred(&self) -> bool {
        self.deferred
    }

    /// Whether the driver is finished: the executor frees the slot once its
    /// operations have completed.
    pub fn is_closed(&self) -> bool {
        self.phase == Phase::Closed
    }

    /// When the connection was accepted.
    pub fn accepted(&self) -> Instant {
        self.accepted
    }

    /// Whether the connection is on an HTTPS listener.
    pub fn is_tls(&self) -> bool {
        self.tls.is_some()
    }

    /// Hands back buffers to the pools when the slot is freed.
    pub fn release(&mut self, bufs: &mut BufPool) {
        bufs.put(std::mem::take(&mut self.out));
        if let Some(t) = self.tail.take() {
            bufs.put(*t);
        }
    }

    // ---- internals ---------------------------------------------------------

    pub(super) fn is_open(&self) -> bool {
        self.phase == Phase::Open
    }

    pub(super) fn writing(&self) -> bool {
        self.sending
            || self.reading
            || self.tail.is_some()
            || self.file.is_some()
            || self.http.read_staged()
    }

    /// Response bytes moved: the send deadlines start again.
    pub(super) fn progress(&mut self, n: usize, now: Instant) {
        if n > 0 {
            self.send_progress = now;
        }
        self.send_meter.bytes += n as u64;
    }

    /// Receiving pauses while too much input is held, and resumes below half.
    pub(super) fn settle(&mut self) {
        let held = match self.tls.as_deref() {
            Some(t) => t.pending.len() + self.http.buffered(),
            None => self.http.buffered(),
        };
        if held > MAX_BUFFERED {
            self.recv_paused = true;
        } else if held <= MAX_BUFFERED / 2 {
            self.recv_paused = false;
        }
    }

    /// Feeds plain-HTTP input (none: go on after a send, a file or a wake-up).
    fn feed(&mut self, data: &[u8], cx: &mut Cx<'_>) {
        if !self.decided && !data.is_empty() {
            self.sniff_h2c(data, cx);
            return;
        }
        self.feed_plain(data, cx);
    }

    /// Feeds plain input to the protocol chosen.
    pub(super) fn feed_plain(&mut self, data: &[u8], cx: &mut Cx<'_>) {
        if self.out.capacity() == 0 {
            self.out = cx.bufs.get();
        }
        let was_body = matches!(self.http.waiting(), Waiting::Body(_));
        let mut env = env!(cx);
        let before = self.out.len();
        let step = self.http.feed(data, &mut *cx.svc, &mut env, &mut self.out);
        if self.out.len() > before {
            self.responded = true;
        }
        self.track_body(was_body, data.len(), cx.now);
        self.after_step(step, cx);
    }

    /// Keeps the request body's rate meter: started when a body begins,
    /// counting what arrives, dropped when the body is complete.
    pub(super) fn track_body(&mut self, was_body: bool, arrived: usize, now: Instant) {
        match self.http.waiting() {
            Waiting::Body(_) => {
                let m = self.body_meter.get_or_insert(Meter::start(now));
                if was_body {
                    m.bytes += arrived as u64;
                }
            }
            // The handler has not taken what arrived: the client is not slow.
            Waiting::Handler if self.body_meter.is_some() => {
                self.body_meter = Some(Meter::start(now));
            }
            _ => self.body_meter = None,
        }
    }

    /// Goes on with input buffered while a response was being written.
    pub(super) fn resume(&mut self, cx: &mut Cx<'_>) {
        if self.tls.is_some() {
            self.tls_input(cx);
        } else {
            self.feed(&[], cx);
        }
    }

    pub(super) fn after_step(&mut self, step: Step, cx: &mut Cx<'_>) {
        match step {
            Step::NeedInput | Step::Flush => {
                self.then = Then::Resume;
                if self.out.is_empty() {
                    cx.bufs.put(std::mem::take(&mut self.out));
                    self.sent = 0;
                    self.became_idle(cx.now);
                    // Idle now: a closed peer or a stopping server ends it.
                    if self.peer_eof {
                        self.close(CloseReason::Normal, None);
                    } else if cx.draining && self.http.waiting() == Waiting::Idle {
                        self.close(CloseReason::Shutdown, None);
                    }
                } else {
                    self.start_send(cx.now);
                }
            }
            Step::ReadFile(r) => {
                self.then = Then::Resume;
                self.start_send(cx.now);
                let mut next = Some(r);
                while let Some(r) = next {
                    let mut buf = cx.bufs.get();
                    buf.clear();
                    buf.reserve(r.len);
                    self.http.stage_read(r, buf);
                    next = self.http.take_wanted_read();
                }
            }
            Step::Send(body) => {
                self.then = Then::Resume;
                self.responded = true;
                if let Some(t) = self.tls.as_deref_mut() {
                    if self.out.capacity() == 0 {
                        self.out = cx.bufs.get();
                    }
                    t.session.seal(&body, &mut self.out);
                    cx.bufs.put(body);
                } else if self.sent == self.out.len() {
                    // Nothing before it: the piece is the output.
                    cx.bufs.put(std::mem::replace(&mut self.out, body));
                    self.sent = 0;
                } else {
                    self.tail = Some(Box::new(body));
                }
                self.start_send(cx.now);
            }
            Step::File(f) => {
                self.then = Then::Resume;
                let splice = self.tls.is_none() && cx.splice_min > 0 && f.body.len >= cx.splice_min;
                self.file = Some(Box::new(FileSend::new(f, splice)));
                self.start_send(cx.now);
                self.file_next(cx);
            }
            Step::Close => {
                self.then = Then::Close;
                if let Some(t) = self.tls.as_deref_mut() {
                    if self.out.capacity() == 0 {
                        self.out = cx.bufs.get();
                    }
                    t.session.close(&mut self.out);
                }
                if self.why == CloseReason::Normal {
                    self.why = match self.http.error() {
                        Some(
                            Error::BodyTooLarge
                            | Error::RequestLineTooLong
                            | Error::HeadersTooLarge
                            | Error::TooManyHeaders,
                        ) => CloseReason::Limit,
                        Some(Error::HeadersTimeout | Error::BodyTimeout) => CloseReason::Timeout,
                        Some(_) => CloseReason::Error,
                        None if cx.draining => CloseReason::Shutdown,
                        None => CloseReason::Normal,
                    };
                }
                if self.out.is_empty() {
                    self.linger(cx);
                } else {
                    self.start_send(cx.now);
                }
            }
        }
    }

    /// A response starts going out: its send deadlines start now unless a
    /// write was already in progress.
    fn start_send(&mut self, now: Instant) {
        if !self.writing() {
            self.send_progress = now;
            self.send_meter = Meter::start(now);
        }
    }

    /// Nothing is being written and the next request has not started.
    fn became_idle(&mut self, now: Instant) {
        if self.responded && self.http.waiting() == Waiting::Idle && self.http.buffered() == 0 {
            self.responded = false;
            self.served = true;
            self.idle_since = now;
            self.first_byte = None;
        }
    }
}
