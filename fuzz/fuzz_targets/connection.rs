//! The HTTP/1.1 connection state machine (`Conn`) fed the same bytes whole,
//! cut at points taken from the input, and (for short inputs) one byte at a
//! time.
//!
//! The test service answers by the first path segment, so that every kind of
//! exchange is reached:
//!
//! | path       | answer                                                        |
//! |------------|---------------------------------------------------------------|
//! | `/ready`   | `Reply::Ready` at once; the status is the query (`?204`)      |
//! | `/pending` | `Reply::Pending`: a task that echoes the body once complete   |
//! | `/delay`   | `Reply::Pending`: a task that answers after a 5 ms wake-up    |
//! | `/stream`  | `Reply::Stream` echoing the body as it arrives                |
//! | `/chunks`  | `Reply::Stream` of three pieces 1 ms apart, with a trailer    |
//! | `/short`   | `Reply::Stream` that ends before its `Content-Length`         |
//! | `/long`    | `Reply::Stream` that goes past its `Content-Length`           |
//! | `/refuse`  | `Admit::Answer(413)` for a request with a body                |
//! | `/drop`    | `Admit::Drop`, then `Reply::Ready`                            |
//! | otherwise  | `Reply::Ready(404)`                                           |
//!
//! Time only moves when the connection asks for a wake-up: the harness then
//! sets `now` to that instant and calls `feed` with no input, the same way in
//! every run. Sends are simulated by moving the output buffer away after each
//! step.
//!
//! Input layout: byte 0 holds flags (bit 0: small limits, bit 1: draining,
//! bit 2: an extra response header line); byte 1 is the number of cut points
//! (mod 32), two bytes each after it, as offsets into the stream. The rest
//! is the byte stream.
//!
//! Properties:
//! - it never panics;
//! - the bytes written, whether and with which error the connection ended,
//!   the responses reported to the observer and what is left buffered are the
//!   same for every way of cutting the stream (`comparable` lists the two
//!   places where the cut may change the answer, and how they are
//!   compared);
//! - every streamed response reported to the observer is reported ended
//!   exactly once;
//! - the output is a sequence of HTTP/1.1 responses (it starts with a
//!   status line).
#![no_main]

use std::time::{Duration, Instant};

use libfuzzer_sys::fuzz_target;
use peregrine::exchange::{BodySource, Chunk, Io, Reply, RequestBody, RequestHead, Task};
use peregrine::http::conn::{Admit, Conn, Env, ExchangePool, Observer, Served, Service, Step};
use peregrine::http::encode::{CONTINUE, Persist, encode};
use peregrine::http::response::Text;
use peregrine::http::{Body, Error, Limits, Method, Methods, Response, Ticket, Waiting};

const DATE: &[u8] = b"Sun, 06 Nov 1994 08:49:37 GMT";

#[derive(Clone, Copy, PartialEq, Eq)]
enum Route {
    Ready,
    Pending,
    Delay,
    Stream,
    Chunks,
    Short,
    Long,
    Refuse,
    Drop,
    Other,
}

fn route(req: &RequestHead) -> Route {
    let first = req.path().split('/').nth(1).unwrap_or("");
    match first {
        "ready" => Route::Ready,
        "pending" => Route::Pending,
        "delay" => Route::Delay,
        "stream" => Route::Stream,
        "chunks" => Route::Chunks,
        "short" => Route::Short,
        "long" => Route::Long,
        "refuse" => Route::Refuse,
        "drop" => Route::Drop,
        _ => Route::Other,
    }
}

fn text(status: u16, body: Vec<u8>) -> Response {
    Response::new(status)
        .content_type("text/plain")
        .body(Body::Bytes(body))
}

#[derive(Default)]
struct Svc {
    /// A body was refused (`Admit::Answer`) on a request that carried
    /// `Expect`: whether that response closes depends on where the input
    /// was cut (see `comparable`).
    refused_expecting: bool,
}

impl Service for Svc {
    fn check(&mut self, req: &RequestHead, _io: &mut Io) -> Admit {
        match route(req) {
            Route::Refuse => {
                if req.header("expect").is_some() {
                    self.refused_expecting = true;
                }
                Admit::Answer(Response::error(413, Some("refused")))
            }
            Route::Drop => Admit::Drop,
            _ => Admit::Read,
        }
    }

    fn call(&mut self, req: &RequestHead, io: &mut Io) -> Reply {
        let line = format!("{} {}\n", req.method.as_str(), req.target()).into_bytes();
        match route(req) {
            Route::Ready | Route::Drop | Route::Refuse => {
                let status = req
                    .query()
                    .and_then(|q| q.parse::<u16>().ok())
                    .filter(|s| (200..=599).contains(s))
                    .unwrap_or(200);
                Reply::Ready(text(status, line))
            }
            Route::Pending => Reply::Pending(Box::new(Collect(line))),
            Route::Delay => Reply::Pending(Box::new(Delay {
                until: io.now() + Duration::from_millis(5),
                line,
            })),
            Route::Stream => {
                // The parser validated it; absent for chunked bodies.
                let declared = req
                    .header_str("content-length")
                    .and_then(|v| v.parse::<u64>().ok());
                Reply::Stream(
                    Response::new(200).header("X-Echo", "1"),
                    Box::new(EchoSource { declared }),
                )
            }
            Route::Chunks => Reply::Stream(
                Response::new(200),
                Box::new(Pieces {
                    left: 3,
                    next: io.now(),
                }),
            ),
            Route::Short => Reply::Stream(Response::new(200), Box::new(Fixed(10, b"four"))),
            Route::Long => Reply::Stream(Response::new(200), Box::new(Fixed(2, b"four"))),
            Route::Other => Reply::Ready(text(404, line)),
        }
    }

    fn methods(&self) -> Methods {
        Methods::GET_HEAD.with(Method::Post).with(Method::Put)
    }
}

/// Answers with its line and the whole body once the body is complete.
struct Collect(Vec<u8>);

impl Task for Collect {
    fn poll(&mut self, _io: &mut Io, body: &mut RequestBody) -> Option<Reply> {
        body.take_into(&mut self.0, usize::MAX);
        body.is_finished()
            .then(|| Reply::Ready(text(200, std::mem::take(&mut self.0))))
    }
}

/// Answers once `until` has come (the body is dropped).
struct Delay {
    until: Instant,
    line: Vec<u8>,
}

impl Task for Delay {
    fn poll(&mut self, io: &mut Io, _body: &mut RequestBody) -> Option<Reply> {
        if io.now() < self.until {
            io.wake_at(self.until);
            return None;
        }
        Some(Reply::Ready(text(200, std::mem::take(&mut self.line))))
    }
}

/// Echoes the request body. With a declared length it is passed on as it
/// arrives (`Content-Length` framing, so the bytes do not depend on how it
/// arrived); otherwise it goes out in chunks of exactly 1 KiB and a last,
/// shorter one once the body is complete, for the same reason.
struct EchoSource {
    declared: Option<u64>,
}

const PIECE: usize = 1024;

impl BodySource for EchoSource {
    fn content_length(&self) -> Option<u64> {
        self.declared
    }

    fn poll_chunk(&mut self, _io: &mut Io, body: &mut RequestBody, max: usize) -> Chunk {
        let want = match self.declared {
            Some(_) => body.available().min(max),
            None if body.available() >= PIECE => PIECE,
            None if body.is_complete() => body.available(),
            None => 0,
        };
        if want > 0 {
            let mut b = Vec::with_capacity(want);
            body.take_into(&mut b, want);
            Chunk::Bytes(b)
        } else if body.is_finished() {
            Chunk::End
        } else {
            Chunk::Pending
        }
    }
}

/// Three static pieces, 1 ms apart, then a trailer.
struct Pieces {
    left: u32,
    next: Instant,
}

impl BodySource for Pieces {
    fn poll_chunk(&mut self, io: &mut Io, _body: &mut RequestBody, _max: usize) -> Chunk {
        if self.left == 0 {
            return Chunk::End;
        }
        if io.now() < self.next {
            io.wake_at(self.next);
            return Chunk::Pending;
        }
        self.left -= 1;
        self.next = io.now() + Duration::from_millis(1);
        Chunk::Static(b"piece\n")
    }

    fn trailers(&mut self) -> Vec<(Text, Text)> {
        vec![("X-Pieces".into(), "3".into())]
    }
}

/// Declares one length and produces `bytes` (a body that is too short or
/// too long for it).
struct Fixed(u64, &'static [u8]);

impl BodySource for Fixed {
    fn content_length(&self) -> Option<u64> {
        Some(self.0)
    }

    fn poll_chunk(&mut self, _io: &mut Io, _body: &mut RequestBody, _max: usize) -> Chunk {
        match std::mem::take(&mut self.1) {
            b"" => Chunk::End,
            b => Chunk::Static(b),
        }
    }
}

/// Records the responses and checks that streams are ended once each.
#[derive(Default)]
struct Log {
    served: Vec<(u16, u64, Option<Error>, bool)>,
    open: Vec<u32>,
    next: u32,
}

impl Observer for Log {
    fn served(&mut self, ev: &Served<'_>) -> Ticket {
        self.served
            .push((ev.status, ev.body_len, ev.error, ev.stream));
        assert!(!ev.file, "no file bodies here");
        if ev.stream {
            self.next += 1;
            self.open.push(self.next);
            Ticket(self.next)
        } else {
            Ticket::NONE
        }
    }

    fn stream_done(&mut self, ticket: Ticket, _started: Instant, _bytes: u64) {
        let at = self.open.iter().position(|t| *t == ticket.0);
        let at = at.unwrap_or_else(|| panic!("stream {ticket:?} ended twice or never began"));
        self.open.remove(at);
    }
}

#[derive(Clone, Copy)]
struct Cfg {
    small: bool,
    draining: bool,
    extra: bool,
}

/// The header lines added to every response.
fn extra(cfg: Cfg) -> &'static [u8] {
    if cfg.extra { b"X-Extra: 1\r\n" } else { b"" }
}

/// What one run produced.
#[derive(Debug, PartialEq, Eq)]
struct Outcome {
    sent: Vec<u8>,
    closed: bool,
    error: Option<Error>,
    served: Vec<(u16, u64, Option<Error>, bool)>,
    buffered: usize,
    waiting: &'static str,
}

struct Harness {
    conn: Conn,
    svc: Svc,
    log: Log,
    limits: Limits,
    now: Instant,
    cfg: Cfg,
    out: Vec<u8>,
    sent: Vec<u8>,
    pool: ExchangePool,
}

impl Harness {
    /// Runs `f` with the connection, the service and an `Env` for the
    /// current time; then the output is "sent".
    fn with<R>(
        &mut self,
        f: impl FnOnce(&mut Conn, &mut Svc, &mut Env<'_>, &mut Vec<u8>) -> R,
    ) -> R {
        let Harness {
            conn,
            svc,
            log,
            limits,
            now,
            cfg,
            out,
            sent,
            pool,
        } = self;
        let mut env = Env {
            limits: &*limits,
            now: *now,
            date: DATE,
            draining: cfg.draining,
            obs: log,
            tls: None,
            extra_headers: extra(*cfg),
            peer: None,
            listener: 0,
            pool,
            waker: None,
            upstreams: None,
        };
        let r = f(conn, svc, &mut env, out);
        sent.append(out);
        r
    }

    fn feed(&mut self, input: &[u8]) -> Step {
        self.with(|conn, svc, env, out| conn.feed(input, svc, env, out))
    }

    /// Feeds one piece and whatever follows from it without new input:
    /// flushes and due wake-ups. Returns whether the connection ended.
    fn piece(&mut self, input: &[u8]) -> bool {
        let mut step = self.feed(input);
        for _ in 0..10_000 {
            match step {
                Step::Flush => step = self.feed(&[]),
                Step::File(_) => panic!("no file bodies here"),
                Step::Send(piece) => {
                    // It follows what the step put in the output (sent).
                    self.sent.extend_from_slice(&piece);
                    step = self.feed(&[]);
                }
                Step::ReadFile(_) => panic!("file reads are HTTP/2's"),
                Step::Close => return true,
                Step::NeedInput => match self.conn.wake_at() {
                    Some(t) => {
                        self.now = self.now.max(t);
                        step = self.feed(&[]);
                    }
                    None => return false,
                },
            }
        }
        panic!("no progress after 10,000 steps without input");
    }
}

fn run(pieces: &[&[u8]], cfg: Cfg, base: Instant) -> (Outcome, bool) {
    let limits = if cfg.small {
        Limits {
            max_request_line_size: 256,
            max_request_headers_total_size: 512,
            max_request_header_count: 8,
            max_request_body_size: 2000,
            ..Limits::default()
        }
    } else {
        Limits::default()
    };
    let mut h = Harness {
        // Echoed pieces of 512 bytes or more are handed out apart.
        conn: Conn::new().send_apart(512),
        svc: Svc::default(),
        log: Log::default(),
        limits,
        now: base,
        cfg,
        out: Vec::new(),
        sent: Vec::new(),
        pool: ExchangePool::new(),
    };
    let mut closed = false;
    for p in pieces {
        if h.piece(p) {
            closed = true;
            break;
        }
    }
    let waiting = match h.conn.waiting() {
        Waiting::Idle => "idle",
        Waiting::Head(_) => "head",
        Waiting::Body(_) => "body",
        Waiting::Handler => "handler",
        Waiting::Stalled(_) => "stalled",
        Waiting::Done => "done",
    };
    let buffered = h.conn.buffered();
    // The client goes quiet: the deadline for what the connection waits for
    // passes.
    if !closed {
        let _ = h.with(|conn, _, env, out| conn.timeout(env, out));
    }
    assert!(h.conn.is_closed());
    assert!(
        h.log.open.is_empty(),
        "streams never reported ended: {:?}",
        h.log.open
    );
    (
        Outcome {
            sent: h.sent,
            closed,
            error: h.conn.error(),
            served: h.log.served,
            buffered,
            waiting,
        },
        h.svc.refused_expecting,
    )
}

fn contains_ignore_case(hay: &[u8], needle: &[u8]) -> bool {
    hay.windows(needle.len())
        .any(|w| w.eq_ignore_ascii_case(needle))
}

fn strip(sent: &mut Vec<u8>, what: &[u8]) {
    let mut out = Vec::with_capacity(sent.len());
    let mut i = 0;
    while i < sent.len() {
        if sent[i..].starts_with(what) {
            i += what.len();
        } else {
            out.push(sent[i]);
            i += 1;
        }
    }
    *sent = out;
}

/// The bytes `Conn` writes to refuse a request for a protocol error.
fn refusal(e: Error, cfg: Cfg) -> Vec<u8> {
    let mut out = Vec::new();
    let resp = Response::error(e.status(), Some(&e.to_string()));
    encode(&mut out, &resp, DATE, extra(cfg), Persist::Close, false);
    out
}

/// A limit that a partial head can already overrun.
fn limit_error(e: Error) -> bool {
    matches!(e, Error::RequestLineTooLong | Error::HeadersTooLarge)
}

/// An error httparse reports at the byte where it stops: a syntax error,
/// or one header field too many.
fn httparse_error(e: Error) -> bool {
    matches!(
        e,
        Error::BadRequestLine
            | Error::BadHeader
            | Error::UnsupportedVersion
            | Error::TooManyHeaders
    )
}

/// Where cutting the input legitimately changes the answer, both outcomes
/// are brought to a form that no longer shows the difference; `false` when
/// they cannot be compared at all.
///
/// - `100 Continue` is sent only when nothing follows the head in the same
///   read (a client that sent the body already does not need it): the
///   interim responses are left out. A refused body on such a request
///   closes the connection only then: such runs are not compared.
/// - A head that is both over a size limit and malformed (or over the
///   header count) is refused for the size when the bytes past the limit
///   arrived with the byte httparse stops at (size limits are checked
///   first, on all the input at hand), and for what httparse found when
///   that byte came alone: 414 / 431 against 400, 505 or 431 (count). The
///   last refusal is left out when the two differ that way.
fn comparable(input: &[u8], cfg: Cfg, a: &mut (Outcome, bool), b: &mut (Outcome, bool)) -> bool {
    if contains_ignore_case(input, b"100-continue") {
        if a.1 || b.1 {
            return false;
        }
        strip(&mut a.0.sent, CONTINUE);
        strip(&mut b.0.sent, CONTINUE);
    }
    if let (Some(x), Some(y)) = (a.0.error, b.0.error)
        && x != y
        && ((limit_error(x) && httparse_error(y)) || (httparse_error(x) && limit_error(y)))
    {
        for (o, e) in [(&mut a.0, x), (&mut b.0, y)] {
            let tail = refusal(e, cfg);
            if o.sent.ends_with(&tail) && o.served.last().is_some_and(|s| s.2 == Some(e)) {
                o.sent.truncate(o.sent.len() - tail.len());
                o.served.pop();
                o.error = None;
            }
        }
    }
    true
}

fuzz_target!(|data: &[u8]| {
    if data.len() < 2 {
        return;
    }
    let cfg = Cfg {
        small: data[0] & 1 == 1,
        draining: data[0] & 2 == 2,
        extra: data[0] & 4 == 4,
    };
    let cuts = usize::from(data[1] % 32);
    let rest = &data[2..];
    let (cut_bytes, stream) = rest.split_at((cuts * 2).min(rest.len()));
    let mut at: Vec<usize> = cut_bytes
        .chunks(2)
        .map(|c| usize::from(u16::from_le_bytes([c[0], *c.get(1).unwrap_or(&0)])))
        .map(|c| c % (stream.len() + 1))
        .collect();
    at.sort_unstable();
    let mut pieces = Vec::new();
    let mut from = 0;
    for cut in at.into_iter().chain([stream.len()]) {
        pieces.push(&stream[from..cut]);
        from = cut;
    }

    let base = Instant::now();
    let mut whole = run(&[stream], cfg, base);
    if !whole.0.sent.is_empty() {
        assert!(
            whole.0.sent.starts_with(b"HTTP/1.1 "),
            "{:?}",
            String::from_utf8_lossy(&whole.0.sent)
        );
    }
    let mut split = run(&pieces, cfg, base);
    if comparable(stream, cfg, &mut whole, &mut split) {
        assert_eq!(whole.0, split.0, "cut into {} pieces", pieces.len());
    }
    if stream.len() <= 1024 {
        let bytes: Vec<&[u8]> = stream.chunks(1).collect();
        let mut single = run(&bytes, cfg, base);
        let mut whole = run(&[stream], cfg, base);
        if comparable(stream, cfg, &mut whole, &mut single) {
            assert_eq!(whole.0, single.0, "one byte at a time");
        }
    }
});
