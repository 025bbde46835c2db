//! The server driver in simulated time: an in-memory executor, a test
//! service, and a real rustls client for the TLS transport.

use std::io::{Read, Write};
use std::sync::Arc;
use std::time::{Duration, Instant};

use super::*;
use crate::exchange::{Io, Reply, RequestHead};
use crate::http::conn::{ExchangePool, NoObserver};
use crate::http::{Body, Limits, Method, Methods, Response, Service};
use crate::metrics::CloseReason;
use crate::tls::TlsSession;

/// `/` answers "ok"; `/big` answers 300 KiB; `/sink` takes a body and never
/// reads it (its task waits forever); `/collect` answers once the whole body
/// is in; `/pieces` streams three 40 KiB pieces of a declared length, and
/// `/pieces-chunked` the same pieces chunked.
struct Svc;

/// Three 40 KiB pieces, of `a`, `b` and `c`.
pub(super) struct Pieces {
    next: u8,
    length: bool,
}

pub(super) const PIECE: usize = 40 * 1024;

impl crate::exchange::BodySource for Pieces {
    fn content_length(&self) -> Option<u64> {
        self.length.then_some(3 * PIECE as u64)
    }

    fn poll_chunk(
        &mut self,
        _io: &mut Io,
        _body: &mut crate::exchange::RequestBody,
        _max: usize,
    ) -> crate::exchange::Chunk {
        if self.next == 3 {
            return crate::exchange::Chunk::End;
        }
        self.next += 1;
        crate::exchange::Chunk::Bytes(vec![b'`' + self.next; PIECE])
    }
}

struct Collect;

impl crate::exchange::Task for Collect {
    fn poll(&mut self, _io: &mut Io, body: &mut crate::exchange::RequestBody) -> Option<Reply> {
        body.consume(body.available());
        body.is_finished()
            .then(|| Response::new(200).body(Body::Static(b"all")).into())
    }
}

struct Never;

impl crate::exchange::Task for Never {
    fn poll(&mut self, _io: &mut Io, _body: &mut crate::exchange::RequestBody) -> Option<Reply> {
        None
    }
}

impl Service for Svc {
    fn call(&mut self, req: &RequestHead, _io: &mut Io) -> Reply {
        match req.path() {
            "/big" => Response::new(200)
                .body(Body::Bytes(vec![b'x'; 300 * 1024]))
                .into(),
            "/sink" => Reply::Pending(Box::new(Never)),
            "/collect" => Reply::Pending(Box::new(Collect)),
            "/pieces" | "/pieces-chunked" => Reply::Stream(
                Response::new(200),
                Box::new(Pieces {
                    next: 0,
                    length: req.path() == "/pieces",
                }),
            ),
            _ => Response::new(200).body(Body::Static(b"ok")).into(),
        }
    }

    fn methods(&self) -> Methods {
        Methods::GET_HEAD.with(Method::Post)
    }
}

/// The executor's side, in memory: what the driver asked for, and the time.
struct Harness {
    conn: ServerConn,
    now: Instant,
    t0: Instant,
    svc: Svc,
    obs: NoObserver,
    exchanges: ExchangePool,
    bufs: BufPool,
    limits: Limits,
    settings: Settings,
    budget: u32,
    /// Bytes the driver sent, in order.
    wire: Vec<u8>,
    /// The send in flight (with a gather send's tail), held as the kernel
    /// would.
    inflight: Option<(Vec<u8>, usize, Option<Vec<u8>>)>,
    /// Most bytes one send moves (a socket with less room takes less).
    cap: usize,
    /// Gather sends asked for.
    gathers: usize,
    closed: Option<CloseReason>,
    shut: bool,
}

macro_rules! cx {
    ($h:expr) => {
        Cx {
            now: $h.now,
            date: b"Sun, 06 Nov 1994 08:49:37 GMT",
            draining: false,
            svc: &mut $h.svc,
            obs: &mut $h.obs,
            exchanges: &mut $h.exchanges,
            bufs: &mut $h.bufs,
            limits: &$h.limits,
            settings: &$h.settings,
            tls_headers: b"",
            splice_min: 0,
            file_chunk: 128 * 1024,
            handshakes_left: &mut $h.budget,
            peer: None,
            listener: 0,
            waker: None,
            upstreams: None,
        }
    };
}

impl Harness {
    fn new(tls: Option<TlsSession>) -> Harness {
        let now = Instant::now();
        Harness {
            conn: ServerConn::new(tls, now),
            now,
            t0: now,
            svc: Svc,
            obs: NoObserver,
            exchanges: ExchangePool::new(),
            bufs: BufPool::new(),
            limits: Limits::default(),
            settings: Settings {
                request_headers_timeout: Duration::from_secs(5),
                ..Settings::default()
            },
            budget: 32,
            wire: Vec::new(),
            inflight: None,
            cap: usize::MAX,
            gathers: 0,
            closed: None,
            shut: false,
        }
    }

    /// Takes the driver's actions; sends complete at once unless `hold`.
    fn pump(&mut self, hold: bool) {
        loop {
            if self.inflight.is_some() && !hold {
                let (buf, from, tail) = self.inflight.take().unwrap();
                let mut bytes = buf[from..].to_vec();
                bytes.extend_from_slice(tail.as_deref().unwrap_or_default());
                let n = bytes.len().min(self.cap);
                self.wire.extend_from_slice(&bytes[..n]);
                let mut cx = cx!(self);
                match tail {
                    None => self.conn.on_sent(buf, n, &mut cx),
                    Some(t) => self.conn.on_sent_gather(buf, t, n, &mut cx),
                }
            }
            match self.conn.poll_action() {
                Some(Action::Send { buf, from }) => self.inflight = Some((buf, from, None)),
                Some(Action::SendGather { buf, from, tail }) => {
                    self.gathers += 1;
                    self.inflight = Some((buf, from, Some(tail)));
                }
                Some(Action::ShutdownWrite) => self.shut = true,
                Some(Action::Close { why, .. }) => self.closed = Some(why),
                Some(a) => panic!("unexpected {a:?}"),
                None if self.inflight.is_some() && !hold => continue,
                None => return,
            }
        }
    }

    fn recv(&mut self, data: &[u8]) {
        let mut cx = cx!(self);
        self.conn.on_recv(data, &mut cx);
        self.pump(false);
    }

    /// The peer shut its side.
    fn eof(&mut self) {
        let mut cx = cx!(self);
        self.conn.on_eof(false, &mut cx);
    }

    /// Advances time to `at` (relative to accept) and fires the timer.
    fn at(&mut self, secs: f64) {
        self.now = self.t0 + Duration::from_secs_f64(secs);
        let mut cx = cx!(self);
        self.conn.on_timer(&mut cx);
        self.pump(false);
    }

    fn deadline(&self) -> Option<(f64, Reason)> {
        self.conn
            .deadline(&self.settings)
            .map(|(t, r)| ((t - self.t0).as_secs_f64(), r))
    }

    fn text(&self) -> String {
        String::from_utf8_lossy(&self.wire).into_owned()
    }
}

#[test]
fn request_answer_then_keep_alive_deadline() {
    let mut h = Harness::new(None);
    assert_eq!(h.deadline(), Some((5.0, Reason::Headers)));
    h.now += Duration::from_secs(1);
    h.recv(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n");
    assert!(h.text().starts_with("HTTP/1.1 200 OK\r\n"));
    assert!(h.text().ends_with("\r\n\r\nok"));
    // Idle after a response: the keep-alive timeout, from the response.
    assert_eq!(h.deadline(), Some((131.0, Reason::Idle)));
    assert!(h.conn.wants_recv());
    assert_eq!(h.conn.gauge(), Gauge::Waiting);
}

/// The stages a plain connection goes through, each with its deadline.
#[test]
fn states_of_a_plain_connection() {
    let mut h = Harness::new(None);
    assert_eq!(h.conn.state(), State::AwaitingFirst);
    assert!(h.conn.evictable());
    h.now = h.t0 + Duration::from_secs(1);
    h.recv(b"GET / HT");
    assert_eq!(h.conn.state(), State::ExpectRequest { since: h.t0 });
    assert_eq!(h.conn.gauge(), Gauge::Reading);
    h.recv(b"TP/1.1\r\nHost: x\r\n\r\n");
    let idle = h.now;
    assert_eq!(h.conn.state(), State::Idle { since: idle });
    assert_eq!(h.conn.gauge(), Gauge::Waiting);
    // A body is read: its clock is the last piece's arrival.
    h.now = h.t0 + Duration::from_secs(3);
    h.recv(b"POST /collect HTTP/1.1\r\nHost: x\r\nContent-Length: 4\r\n\r\nab");
    assert_eq!(h.conn.state(), State::ReadingBody { last: h.now });
    assert!(!h.conn.evictable());
    assert!(matches!(
        h.deadline().map(|d| d.1),
        Some(Reason::Body | Reason::BodyRate)
    ));
    // A handler that waits: no client deadline.
    h.recv(b"cd");
    h.recv(b"POST /sink HTTP/1.1\r\nHost: x\r\nContent-Length: 1\r\n\r\nx");
    assert_eq!(h.conn.state(), State::Handler);
    assert_eq!(h.deadline(), None);
    assert_eq!(h.conn.gauge(), Gauge::Writing);
}

/// A response the client does not take: writing, then cut by the send
/// deadline; an error answer lingers.
#[test]
fn states_while_writing_and_lingering() {
    let mut h = Harness::new(None);
    let mut cx = cx!(h);
    h.conn
        .on_recv(b"GET /big HTTP/1.1\r\nHost: x\r\n\r\n", &mut cx);
    h.pump(true);
    assert_eq!(h.conn.state(), State::Writing);
    assert_eq!(h.deadline().map(|d| d.1), Some(Reason::SendRate));
    let mut h = Harness::new(None);
    h.recv(b"BAD\r\n\r\n");
    assert!(
        matches!(h.conn.state(), State::Lingering { .. }),
        "{:?}",
        h.conn.state()
    );
    assert_eq!(h.conn.gauge(), Gauge::Ending);
    h.eof();
    h.pump(false);
    assert_eq!(h.conn.state(), State::Closed);
}

#[test]
fn first_head_is_timed_from_accept_however_it_trickles() {
    let mut h = Harness::new(None);
    for i in 0..4 {
        h.now = h.t0 + Duration::from_secs(i);
        h.recv(b"G");
        assert_eq!(h.deadline(), Some((5.0, Reason::Headers)), "byte {i}");
    }
    h.at(5.0);
    assert!(h.text().starts_with("HTTP/1.1 408"), "{}", h.text());
    // Lingering after the 408, then closed by the peer's EOF.
    assert!(h.shut);
    h.eof();
    h.pump(false);
    assert_eq!(h.closed, Some(CloseReason::Timeout));
}

#[test]
fn later_heads_are_timed_from_their_first_byte() {
    let mut h = Harness::new(None);
    h.recv(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n");
    h.now = h.t0 + Duration::from_secs(50);
    h.recv(b"GET / HT");
    assert_eq!(h.deadline(), Some((55.0, Reason::Headers)));
    h.now = h.t0 + Duration::from_secs(54);
    h.recv(b"TP/1.1\r\n");
    assert_eq!(h.deadline(), Some((55.0, Reason::Headers)));
}

#[test]
fn slow_body_is_cut_by_the_minimum_rate() {
    let mut h = Harness::new(None);
    h.recv(b"POST /collect HTTP/1.1\r\nHost: x\r\nContent-Length: 100000\r\n\r\n");
    // 100 bytes a second: under 240 B/s once the 5 s grace is over.
    for s in 1..=4 {
        h.now = h.t0 + Duration::from_secs(s);
        h.recv(&[b'a'; 100]);
        let (at, why) = h.deadline().unwrap();
        assert_eq!(why, Reason::BodyRate);
        assert!(at <= 5.0 + 1e-9, "{at}");
    }
    h.at(5.0);
    assert!(h.closed.is_some() || h.shut, "{:?}", h.text());
    assert!(h.text().contains("408"), "{}", h.text());
}

#[test]
fn fast_body_is_not_cut() {
    let mut h = Harness::new(None);
    h.recv(b"POST /collect HTTP/1.1\r\nHost: x\r\nContent-Length: 20000\r\n\r\n");
    for s in 1..=10 {
        h.now = h.t0 + Duration::from_secs(s);
        h.recv(&[b'a'; 2000]);
        // Each window that met its quota starts the next one.
        h.at(s as f64);
        assert!(h.closed.is_none() && !h.shut, "cut at second {s}");
    }
    assert!(h.closed.is_none());
    assert!(h.text().ends_with("all"), "{}", h.text());
}

#[test]
fn a_burst_buys_no_credit_for_a_trickle() {
    let mut h = Harness::new(None);
    h.recv(b"POST /collect HTTP/1.1\r\nHost: x\r\nContent-Length: 100000\r\n\r\n");
    h.recv(&[b'a'; 50_000]);
    h.at(5.0);
    assert!(
        h.closed.is_none() && !h.shut,
        "the first window met its quota"
    );
    h.now = h.t0 + Duration::from_secs(7);
    h.recv(&[b'a'; 100]);
    h.at(10.0);
    assert!(h.text().contains("408"), "{}", h.text());
}

#[test]
fn slow_reader_is_cut_by_the_minimum_rate() {
    let mut h = Harness::new(None);
    let mut cx = cx!(h);
    h.conn
        .on_recv(b"GET /big HTTP/1.1\r\nHost: x\r\n\r\n", &mut cx);
    h.pump(true);
    // The client takes 100 bytes a second of a 300 KiB answer.
    for s in 1..=4 {
        let (buf, _from, _) = h.inflight.take().unwrap();
        h.now = h.t0 + Duration::from_secs(s);
        let mut cx = cx!(h);
        h.conn.on_sent(buf, 100, &mut cx);
        h.pump(true);
        assert_eq!(h.deadline().unwrap().1, Reason::SendRate);
    }
    h.at(5.0);
    assert_eq!(h.closed, Some(CloseReason::Timeout));
}

#[test]
fn unread_body_pauses_receiving() {
    let mut h = Harness::new(None);
    h.recv(b"POST /sink HTTP/1.1\r\nHost: x\r\nContent-Length: 10000000\r\n\r\n");
    let piece = vec![b'a'; 64 * 1024];
    let mut n = 0;
    while h.conn.wants_recv() {
        h.recv(&piece);
        n += 1;
        assert!(n < 100, "never paused");
    }
    // The handler holds the body window; the rest is held up to the bound.
    assert_eq!(h.conn.gauge(), Gauge::Writing);
    // Its deadline is not the client's fault: no body deadline runs.
    assert_eq!(h.deadline(), None);
}

#[test]
fn clean_close_request_closes_at_once() {
    let mut h = Harness::new(None);
    h.recv(b"GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
    assert!(h.text().contains("Connection: close"));
    // Nothing unread and no error: no lingering, no shutdown first.
    assert!(!h.shut);
    assert_eq!(h.closed, Some(CloseReason::Normal));
}

#[test]
fn error_close_lingers_then_closes() {
    let mut h = Harness::new(None);
    h.recv(b"POST /collect HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n");
    assert!(h.text().starts_with("HTTP/1.1 400"), "{}", h.text());
    // The client may still be sending: read and drop, then close.
    assert!(h.shut);
    assert!(h.closed.is_none());
    assert_eq!(h.deadline(), Some((5.0, Reason::Linger)));
    h.recv(b"more body the server ignores");
    h.at(5.0);
    assert_eq!(h.closed, Some(CloseReason::Error));
}

#[test]
fn close_with_unread_input_lingers() {
    let mut h = Harness::new(None);
    // A pipelined request after one that closes is never answered or read.
    h.recv(b"GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\nGET / HTTP/1.1\r\n");
    assert!(h.shut);
    assert!(h.closed.is_none());
    h.eof();
    h.pump(false);
    assert_eq!(h.closed, Some(CloseReason::Normal));
}

mod client;
mod files;
mod gather;
mod h2;
mod tls;
