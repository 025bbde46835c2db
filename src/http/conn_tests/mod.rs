//! Unit tests of the connection state machine with an in-memory service and
//! simulated time.

use super::*;
use crate::exchange::{BodySource, Chunk, Task};
use crate::http::Body;
use crate::http::Ticket;
use crate::http::{Limits, Methods};
use std::time::Duration;

const DATE: &[u8] = b"Sun, 06 Nov 1994 08:49:37 GMT";

/// A service with `/echo` (POST, streams the body back), `/collect` (POST,
/// answers later with the whole body), `/nopost` (GET only, refuses bodies in
/// `check`), `/delay` (answers 100 ms later), `/stream` (three chunks 10 ms
/// apart, length unknown), `/short` (promises 10 bytes, sends 5), `/panic`,
/// and everything else answered with the path. With `connect`, it takes
/// CONNECT: to `ok:1` a 200 and an echo, to `up:1` a 101, to others a 403.
struct Echo {
    connect: bool,
    calls: usize,
    cancelled: std::rc::Rc<std::cell::Cell<usize>>,
}

impl Service for Echo {
    fn check(&mut self, req: &RequestHead, _io: &mut Io) -> Admit {
        match req.path() {
            "/nopost" => Admit::Answer(Response::new(405).header("Allow", "GET")),
            "/drop" => Admit::Drop,
            _ => Admit::Read,
        }
    }

    fn call(&mut self, req: &RequestHead, io: &mut Io) -> Reply {
        self.calls += 1;
        if req.method == Method::Connect {
            let status = match req.target() {
                "ok:1" => 200,
                "up:1" => 101,
                _ => return Response::error(403, None).into(),
            };
            return Reply::Stream(Response::new(status), Box::new(EchoBody { len: None }));
        }
        match req.path() {
            "/echo" => {
                let len = req
                    .header_str("content-length")
                    .and_then(|v| v.parse().ok());
                Reply::Stream(Response::new(200), Box::new(EchoBody { len }))
            }
            "/collect" => Reply::Pending(Box::new(Collect(Vec::new()))),
            "/switch" => Reply::Stream(
                Response::new(101)
                    .header("Upgrade", "echo")
                    .header("Connection", "upgrade"),
                Box::new(EchoBody { len: None }),
            ),
            "/delay" => Reply::Pending(Box::new(Later {
                at: io.now() + Duration::from_millis(100),
                cancelled: self.cancelled.clone(),
            })),
            "/stream" => Reply::Stream(
                Response::new(200),
                Box::new(Ticks {
                    left: 3,
                    next: io.now(),
                    len: None,
                }),
            ),
            "/short" => Reply::Stream(
                Response::new(200),
                Box::new(Ticks {
                    left: 1,
                    next: io.now(),
                    len: Some(10),
                }),
            ),
            "/panic" => panic!("handler bug"),
            p => Response::new(200)
                .body(Body::Bytes(p.as_bytes().to_vec()))
                .into(),
        }
    }

    fn methods(&self) -> Methods {
        let m = Methods::GET_HEAD.with(Method::Post);
        if self.connect {
            m.with(Method::Connect)
        } else {
            m
        }
    }
}

struct EchoBody {
    len: Option<u64>,
}

impl BodySource for EchoBody {
    fn content_length(&self) -> Option<u64> {
        self.len
    }

    fn poll_chunk(&mut self, _io: &mut Io, body: &mut RequestBody, max: usize) -> Chunk {
        let mut b = Vec::new();
        if body.take_into(&mut b, max) > 0 {
            Chunk::Bytes(b)
        } else if body.is_complete() {
            Chunk::End
        } else {
            Chunk::Pending
        }
    }
}

struct Collect(Vec<u8>);

impl Task for Collect {
    fn poll(&mut self, _io: &mut Io, body: &mut RequestBody) -> Option<Reply> {
        body.take_into(&mut self.0, usize::MAX);
        body.is_finished().then(|| {
            Reply::Ready(Response::new(200).body(Body::Bytes(std::mem::take(&mut self.0))))
        })
    }
}

struct Later {
    at: Instant,
    cancelled: std::rc::Rc<std::cell::Cell<usize>>,
}

impl Task for Later {
    fn poll(&mut self, io: &mut Io, _body: &mut RequestBody) -> Option<Reply> {
        if io.now() < self.at {
            io.wake_at(self.at);
            return None;
        }
        Some(Response::new(200).body(Body::Static(b"late")).into())
    }

    fn cancel(&mut self) {
        self.cancelled.set(self.cancelled.get() + 1);
    }
}

/// `left` pieces of 5 bytes, 10 ms apart.
struct Ticks {
    left: u32,
    next: Instant,
    len: Option<u64>,
}

impl BodySource for Ticks {
    fn content_length(&self) -> Option<u64> {
        self.len
    }

    fn poll_chunk(&mut self, io: &mut Io, _body: &mut RequestBody, _max: usize) -> Chunk {
        if self.left == 0 {
            return Chunk::End;
        }
        if io.now() < self.next {
            io.wake_at(self.next);
            return Chunk::Pending;
        }
        self.left -= 1;
        self.next += Duration::from_millis(10);
        Chunk::Static(b"tick\n")
    }
}

/// Records what the connection reports.
#[derive(Default)]
struct Recorder {
    served: Vec<(u16, Option<Error>, bool)>,
    streams: Vec<(Ticket, u64)>,
}

impl Observer for Recorder {
    fn served(&mut self, ev: &Served<'_>) -> Ticket {
        self.served.push((ev.status, ev.error, ev.file));
        Ticket(ev.stream as u32)
    }

    fn stream_done(&mut self, ticket: Ticket, _started: Instant, bytes: u64) {
        self.streams.push((ticket, bytes));
    }
}

/// The harness's environment, from disjoint fields so the connection and the
/// service can be borrowed beside it.
macro_rules! harness_env {
    ($h:expr) => {
        Env {
            limits: &$h.limits,
            now: $h.now,
            date: DATE,
            draining: $h.draining,
            obs: &mut $h.obs,
            tls: None,
            extra_headers: b"",
            peer: None,
            listener: 0,
            waker: None,
            upstreams: None,
            pool: &mut $h.pool,
        }
    };
}

struct Harness {
    conn: Conn,
    svc: Echo,
    limits: Limits,
    now: Instant,
    out: Vec<u8>,
    obs: Recorder,
    draining: bool,
    pool: ExchangePool,
}

impl Harness {
    fn new() -> Harness {
        Harness {
            conn: Conn::new(),
            svc: Echo {
                connect: false,
                calls: 0,
                cancelled: Default::default(),
            },
            limits: Limits::default(),
            now: Instant::now(),
            out: Vec::new(),
            obs: Recorder::default(),
            draining: false,
            pool: ExchangePool::new(),
        }
    }

    fn feed(&mut self, input: &[u8]) -> Step {
        let mut env = harness_env!(self);
        self.conn
            .feed(input, &mut self.svc, &mut env, &mut self.out)
    }

    fn timeout(&mut self) -> Step {
        let mut env = harness_env!(self);
        self.conn.timeout(&mut env, &mut self.out)
    }

    fn take(&mut self) -> String {
        String::from_utf8(std::mem::take(&mut self.out)).unwrap()
    }
}

/// Splits a response stream into (status, body) pairs.
fn responses(s: &str) -> Vec<(u16, String)> {
    let mut out = Vec::new();
    let mut rest = s;
    while !rest.is_empty() {
        let end = rest.find("\r\n\r\n").expect("head end") + 4;
        let head = &rest[..end];
        let status: u16 = head[9..12].parse().unwrap();
        let len = head
            .lines()
            .find_map(|l| l.strip_prefix("Content-Length: "))
            .map_or(0, |v| v.trim().parse().unwrap());
        let len = if status == 100 { 0 } else { len };
        if head.contains("Transfer-Encoding: chunked\r\n") {
            let (body, used) = dechunk(&rest[end..]);
            out.push((status, body));
            rest = &rest[end + used..];
            continue;
        }
        out.push((status, rest[end..end + len].to_string()));
        rest = &rest[end + len..];
    }
    out
}

/// Decodes a chunked body at the start of `s`: (body, bytes used).
fn dechunk(s: &str) -> (String, usize) {
    let mut body = String::new();
    let mut pos = 0;
    loop {
        let line_end = pos + s[pos..].find("\r\n").expect("chunk line");
        let size = usize::from_str_radix(&s[pos..line_end], 16).unwrap();
        pos = line_end + 2;
        if size == 0 {
            let end = pos + s[pos..].find("\r\n").expect("trailer end") + 2;
            return (body, end);
        }
        body.push_str(&s[pos..pos + size]);
        pos += size + 2;
    }
}

#[test]
fn single_request() {
    let mut h = Harness::new();
    assert!(matches!(
        h.feed(b"GET /a HTTP/1.1\r\nHost: x\r\n\r\n"),
        Step::NeedInput
    ));
    assert_eq!(responses(&h.take()), vec![(200, "/a".into())]);
    assert_eq!(h.conn.waiting(), Waiting::Idle);
    assert_eq!(h.conn.buffered(), 0);
}

#[test]
fn pipelined_requests_answer_in_order() {
    let mut h = Harness::new();
    let input = "GET /1 HTTP/1.1\r\nHost: x\r\n\r\nPOST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\n\r\nabcGET /3 HTTP/1.1\r\nHost: x\r\n\r\n";
    assert!(matches!(h.feed(input.as_bytes()), Step::NeedInput));
    assert_eq!(
        responses(&h.take()),
        vec![(200, "/1".into()), (200, "abc".into()), (200, "/3".into())]
    );
}

#[test]
fn byte_at_a_time() {
    let mut h = Harness::new();
    let input = b"POST /echo HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n5;ext=1\r\nhello\r\n0\r\nTrailer: t\r\n\r\nGET /z HTTP/1.1\r\nHost: x\r\n\r\n";
    for b in input.iter() {
        assert!(matches!(h.feed(std::slice::from_ref(b)), Step::NeedInput));
    }
    assert_eq!(
        responses(&h.take()),
        vec![(200, "hello".into()), (200, "/z".into())]
    );
    assert_eq!(h.conn.buffered(), 0);
}

#[test]
fn head_timer_starts_at_first_byte() {
    let mut h = Harness::new();
    let t0 = h.now;
    let _ = h.feed(b"GET / HT");
    assert_eq!(h.conn.waiting(), Waiting::Head(t0));
    h.now += Duration::from_secs(5);
    let _ = h.feed(b"TP/1.1\r\n");
    // Trickling more bytes does not restart the clock.
    assert_eq!(h.conn.waiting(), Waiting::Head(t0));
    assert!(matches!(h.timeout(), Step::Close));
    assert_eq!(responses(&h.take())[0].0, 408);
    assert!(h.conn.is_closed());
}

#[test]
fn idle_timeout_closes_silently() {
    let mut h = Harness::new();
    assert!(matches!(h.timeout(), Step::Close));
    assert!(h.out.is_empty());
}

#[test]
fn errors_close_with_status() {
    for (input, status) in [
        ("GET / HTTP/1.1\r\n\r\n", 400),
        ("GET / HTTP/3.0\r\nHost: x\r\n\r\n", 505),
        ("FOO / HTTP/1.1\r\nHost: x\r\n\r\n", 501),
        (
            "POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 99999999999\r\n\r\n",
            413,
        ),
        (
            "POST /echo HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n",
            400,
        ),
        (
            "POST /echo HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nabc\r\n",
            400,
        ),
    ] {
        let mut h = Harness::new();
        assert!(matches!(h.feed(input.as_bytes()), Step::Close), "{input}");
        let s = h.take();
        assert_eq!(responses(&s)[0].0, status, "{input}");
        assert!(s.contains("Connection: close\r\n"), "{input}");
        // Anything after is ignored.
        assert!(matches!(
            h.feed(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n"),
            Step::Close
        ));
        assert!(h.out.is_empty());
    }
}

#[test]
fn long_request_line_refused_before_its_end() {
    let mut h = Harness::new();
    let step = h.feed(format!("GET /{}", "a".repeat(9000)).as_bytes());
    assert!(matches!(step, Step::Close));
    assert_eq!(responses(&h.take())[0].0, 414);
}

#[test]
fn chunked_body_over_limit_is_413() {
    let mut h = Harness::new();
    h.limits.max_request_body_size = 4;
    let step = h.feed(b"POST /echo HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n");
    assert!(matches!(step, Step::Close));
    assert_eq!(responses(&h.take())[0].0, 413);
}

#[test]
fn expect_continue() {
    let mut h = Harness::new();
    let _ = h.feed(
        b"POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\nExpect: 100-continue\r\n\r\n",
    );
    assert_eq!(h.take(), "HTTP/1.1 100 Continue\r\n\r\n");
    let _ = h.feed(b"hi");
    assert_eq!(responses(&h.take()), vec![(200, "hi".into())]);
}

#[test]
fn expect_continue_refused_closes() {
    let mut h = Harness::new();
    let step = h.feed(
        b"POST /nopost HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\nExpect: 100-continue\r\n\r\n",
    );
    assert!(matches!(step, Step::Close));
    let s = h.take();
    assert!(s.starts_with("HTTP/1.1 405"));
    assert!(!s.contains("100 Continue"));
}

#[test]
fn refused_body_is_discarded_and_connection_kept() {
    let mut h = Harness::new();
    let step = h.feed(b"POST /nopost HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n\r\nhelloGET /after HTTP/1.1\r\nHost: x\r\n\r\n");
    assert!(matches!(step, Step::NeedInput));
    assert_eq!(
        responses(&h.take()),
        vec![(405, String::new()), (200, "/after".into())]
    );
    assert_eq!(h.svc.calls, 1);
}

#[test]
fn head_has_no_body() {
    let mut h = Harness::new();
    let _ = h.feed(b"HEAD /abc HTTP/1.1\r\nHost: x\r\n\r\n");
    let s = h.take();
    assert!(s.ends_with("Content-Length: 4\r\n\r\n"), "{s}");
}

#[test]
fn http10_keep_alive() {
    let mut h = Harness::new();
    let _ = h.feed(b"GET /a HTTP/1.0\r\nConnection: keep-alive\r\n\r\n");
    assert!(h.take().contains("Connection: keep-alive\r\n"));
    assert!(matches!(h.feed(b"GET /b HTTP/1.0\r\n\r\n"), Step::Close));
    assert!(h.take().contains("Connection: close\r\n"));
}

#[test]
fn connection_close_request() {
    let mut h = Harness::new();
    let step = h.feed(b"GET /a HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\nGET /b HTTP/1.1\r\nHost: x\r\n\r\n");
    assert!(matches!(step, Step::Close));
    assert_eq!(responses(&h.take()).len(), 1);
}

#[test]
fn options_star_and_connect() {
    let mut h = Harness::new();
    let _ = h.feed(b"OPTIONS * HTTP/1.1\r\nHost: x\r\n\r\n");
    let s = h.take();
    assert!(s.starts_with("HTTP/1.1 200 OK\r\n"));
    assert!(s.contains("Allow: GET, HEAD, POST, OPTIONS\r\n"));
    let step = h.feed(b"CONNECT example.com:443 HTTP/1.1\r\nHost: example.com:443\r\n\r\n");
    assert!(matches!(step, Step::Close));
    assert!(h.take().starts_with("HTTP/1.1 405"));
}

#[test]
fn panicking_handler_gets_500() {
    let mut h = Harness::new();
    let prev = std::panic::take_hook();
    std::panic::set_hook(Box::new(|_| {}));
    let step = h.feed(b"GET /panic HTTP/1.1\r\nHost: x\r\n\r\n");
    std::panic::set_hook(prev);
    assert!(matches!(step, Step::Close));
    assert_eq!(responses(&h.take())[0].0, 500);
}

#[test]
fn flushes_at_high_water() {
    let mut h = Harness::new();
    let big = format!("/{}", "x".repeat(1000));
    let one = format!("GET {big} HTTP/1.1\r\nHost: x\r\n\r\n");
    let input = one.repeat(100);
    let mut steps = 0;
    let mut step = h.feed(input.as_bytes());
    while matches!(step, Step::Flush) {
        assert!(h.out.len() >= OUT_HIGH_WATER && h.out.len() < OUT_HIGH_WATER + 2000);
        h.out.clear();
        steps += 1;
        step = h.feed(b"");
    }
    assert!(matches!(step, Step::NeedInput));
    assert!(steps >= 1);
    assert_eq!(h.svc.calls, 100);
}

#[test]
fn draining_closes_after_response() {
    let mut h = Harness::new();
    h.draining = true;
    let step = h.feed(
        b"GET /a HTTP/1.1
Host: x

",
    );
    assert!(matches!(step, Step::Close));
    assert!(h.take().contains("Connection: close"));
}

#[test]
fn buffered_input_waits_for_resume() {
    let mut h = Harness::new();
    assert_eq!(h.conn.buffer(b"GET /q HTTP/1.1\r\nHost: x\r\n\r\n"), 28);
    assert_eq!(h.svc.calls, 0);
    let _ = h.feed(b"");
    assert_eq!(responses(&h.take()), vec![(200, "/q".into())]);
}

#[test]
fn dropped_body_reaches_handler_empty() {
    let mut h = Harness::new();
    let _ = h.feed(b"POST /drop HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n\r\nhello");
    assert_eq!(responses(&h.take()), vec![(200, "/drop".into())]);
    assert_eq!(h.svc.calls, 1);
}

#[test]
fn observer_sees_every_response() {
    let mut h = Harness::new();
    let _ = h.feed(b"GET /a HTTP/1.1\r\nHost: x\r\n\r\nPOST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 1\r\n\r\nzGET / HTTP/1.1\r\n\r\n");
    assert_eq!(
        h.obs.served,
        vec![
            (200, None, false),
            (200, None, false),
            (400, Some(Error::MissingHost), false)
        ]
    );
}

mod exchanges;
mod tunnel;
