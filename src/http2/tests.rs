//! The HTTP/2 connection against an in-memory client, in simulated time.

use std::cell::Cell;
use std::rc::Rc;
use std::time::{Duration, Instant};

use super::H2Conn;
use super::frame::{self, Code, Head, flag, kind, setting};
use crate::exchange::{BodySource, Chunk, Io, Reply, RequestBody, RequestHead, Task};
use crate::http::conn::ExchangePool;
use crate::http::{
    Body, Env, Limits, Method, Methods, Observer, Response, Served, Service, Step, Ticket, Waiting,
};

const DATE: &[u8] = b"Sun, 06 Nov 1994 08:49:37 GMT";

struct Svc {
    cancelled: Rc<Cell<usize>>,
}

impl Service for Svc {
    fn check(&mut self, req: &RequestHead, _io: &mut Io) -> crate::http::Admit {
        match req.path() {
            "/refuse" => crate::http::Admit::Answer(Response::error(405, None)),
            _ => crate::http::Admit::Read,
        }
    }

    fn call(&mut self, req: &RequestHead, io: &mut Io) -> Reply {
        match req.path() {
            "/echo" => Reply::Stream(Response::new(200), Box::new(Echo)),
            "/big" => Response::new(200)
                .body(Body::Bytes(vec![b'x'; 100_000]))
                .into(),
            "/delay" => Reply::Pending(Box::new(Later {
                at: io.now() + Duration::from_millis(100),
                cancelled: self.cancelled.clone(),
            })),
            "/file" => {
                let f = std::fs::File::open("Cargo.toml").unwrap();
                let len = f.metadata().unwrap().len();
                Response::new(200)
                    .body(Body::File(crate::http::FileBody {
                        file: Rc::new(f),
                        offset: 0,
                        len,
                    }))
                    .into()
            }
            p => Response::new(200)
                .header("X-Host", req.host().unwrap_or("").to_string())
                .body(Body::Bytes(p.as_bytes().to_vec()))
                .into(),
        }
    }

    fn methods(&self) -> Methods {
        Methods::GET_HEAD.with(Method::Post)
    }
}

struct Echo;

impl BodySource for Echo {
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

struct Later {
    at: Instant,
    cancelled: Rc<Cell<usize>>,
}

impl Task for Later {
    fn poll(&mut self, io: &mut Io, _b: &mut RequestBody) -> Option<Reply> {
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

#[derive(Default)]
struct Rec {
    served: Vec<u16>,
    done: Vec<u64>,
}

impl Observer for Rec {
    fn served(&mut self, ev: &Served<'_>) -> Ticket {
        self.served.push(ev.status);
        Ticket(1)
    }
    fn stream_done(&mut self, _t: Ticket, _s: Instant, bytes: u64) {
        self.done.push(bytes);
    }
}

/// A decoded frame from the server.
#[derive(Debug)]
struct Got {
    head: Head,
    payload: Vec<u8>,
}

struct H {
    conn: H2Conn,
    svc: Svc,
    limits: Limits,
    now: Instant,
    out: Vec<u8>,
    obs: Rec,
    pool: ExchangePool,
    draining: bool,
    enc: loona_hpack::Encoder<'static>,
    dec: loona_hpack::Decoder<'static>,
}

macro_rules! env {
    ($h:expr) => {
        Env {
            limits: &$h.limits,
            now: $h.now,
            date: DATE,
            draining: $h.draining,
            obs: &mut $h.obs,
            tls: None,
            extra_headers: b"Strict-Transport-Security: max-age=1\r\n",
            peer: None,
            listener: 0,
            waker: None,
            upstreams: None,
            pool: &mut $h.pool,
        }
    };
}

impl H {
    fn new() -> H {
        H::with(Limits::default())
    }

    fn with(limits: Limits) -> H {
        let now = Instant::now();
        H {
            conn: H2Conn::new(&limits.http2, now),
            svc: Svc {
                cancelled: Rc::default(),
            },
            limits,
            now,
            out: Vec::new(),
            obs: Rec::default(),
            pool: ExchangePool::new(),
            draining: false,
            enc: loona_hpack::Encoder::new(),
            dec: loona_hpack::Decoder::new(),
        }
    }

    fn feed(&mut self, input: &[u8]) -> Step {
        let mut env = env!(self);
        self.conn
            .feed(input, &mut self.svc, &mut env, &mut self.out)
    }

    fn file_data(&mut self, data: &[u8]) -> Step {
        let mut env = env!(self);
        self.conn
            .file_data(1, data, &mut self.svc, &mut env, &mut self.out)
    }

    /// Preface, an empty SETTINGS (plus `extra`).
    fn open(&mut self, settings: &[(u16, u32)]) -> Vec<Got> {
        let mut b = frame::PREFACE.to_vec();
        frame::settings(&mut b, settings);
        let _ = self.feed(&b);
        self.frames()
    }

    fn block(&mut self, method: &str, path: &str, extra: &[(&str, &str)]) -> Vec<u8> {
        let mut list: Vec<(&[u8], &[u8])> = vec![
            (b":method", method.as_bytes()),
            (b":scheme", b"https"),
            (b":path", path.as_bytes()),
            (b":authority", b"example.com"),
        ];
        for (n, v) in extra {
            list.push((n.as_bytes(), v.as_bytes()));
        }
        self.enc.encode(list)
    }

    fn request(&mut self, id: u32, method: &str, path: &str, end: bool) -> Vec<u8> {
        let block = self.block(method, path, &[]);
        let mut b = Vec::new();
        let flags = flag::END_HEADERS | if end { flag::END_STREAM } else { 0 };
        frame::head(&mut b, block.len(), kind::HEADERS, flags, id);
        b.extend_from_slice(&block);
        b
    }

    fn frames(&mut self) -> Vec<Got> {
        let out = std::mem::take(&mut self.out);
        let mut v = Vec::new();
        let mut p = 0;
        while let Some(h) = Head::parse(&out[p..]) {
            let end = p + 9 + h.len as usize;
            v.push(Got {
                head: h,
                payload: out[p + 9..end].to_vec(),
            });
            p = end;
        }
        assert_eq!(p, out.len(), "whole frames");
        v
    }

    fn fields(&mut self, g: &Got) -> Vec<(String, String)> {
        self.dec
            .decode(&g.payload)
            .unwrap()
            .into_iter()
            .map(|(n, v)| (String::from_utf8(n).unwrap(), String::from_utf8(v).unwrap()))
            .collect()
    }
}

/// `block` as one HEADERS frame on stream `id` with `flags`.
fn headers_frame(id: u32, block: &[u8], flags: u8) -> Vec<u8> {
    let mut b = Vec::new();
    frame::head(&mut b, block.len(), kind::HEADERS, flags, id);
    b.extend_from_slice(block);
    b
}

fn status(fields: &[(String, String)]) -> &str {
    &fields.iter().find(|(n, _)| n == ":status").unwrap().1
}

fn data_of(frames: &[Got], id: u32) -> Vec<u8> {
    frames
        .iter()
        .filter(|g| g.head.kind == kind::DATA && g.head.stream == id)
        .flat_map(|g| g.payload.clone())
        .collect()
}

fn goaway_code(frames: &[Got]) -> Option<u32> {
    frames
        .iter()
        .find(|g| g.head.kind == kind::GOAWAY)
        .map(|g| u32::from_be_bytes(g.payload[4..8].try_into().unwrap()))
}

fn rst_code(frames: &[Got], id: u32) -> Option<u32> {
    frames
        .iter()
        .find(|g| g.head.kind == kind::RST_STREAM && g.head.stream == id)
        .map(|g| u32::from_be_bytes(g.payload[..4].try_into().unwrap()))
}

#[test]
fn settings_then_a_response() {
    let mut h = H::new();
    let f = h.open(&[]);
    // Our SETTINGS, the connection window, then the acknowledgement.
    assert_eq!(f[0].head.kind, kind::SETTINGS);
    assert_eq!(f[1].head.kind, kind::WINDOW_UPDATE);
    assert!(
        f.iter()
            .any(|g| g.head.kind == kind::SETTINGS && g.head.has(flag::ACK))
    );
    let req = h.request(1, "GET", "/hello", true);
    assert!(matches!(h.feed(&req), Step::NeedInput));
    let f = h.frames();
    assert_eq!(f[0].head.kind, kind::HEADERS);
    let fields = h.fields(&f[0]);
    assert_eq!(status(&fields), "200");
    assert!(fields.contains(&("x-host".into(), "example.com".into())));
    assert!(fields.contains(&("content-length".into(), "6".into())));
    assert!(fields.contains(&("strict-transport-security".into(), "max-age=1".into())));
    assert!(fields.iter().any(|(n, _)| n == "server"));
    assert_eq!(data_of(&f, 1), b"/hello");
    assert!(f.last().unwrap().head.has(flag::END_STREAM));
    assert_eq!(h.conn.waiting(), Waiting::Idle);
    assert_eq!(h.obs.served, [200]);
}

#[test]
fn a_bad_preface_ends_the_connection() {
    let mut h = H::new();
    assert!(matches!(h.feed(b"GET / HTTP/1.1\r\n\r\n"), Step::Close));
    assert!(h.conn.is_closed());
    // A partial preface waits.
    let mut h = H::new();
    assert!(matches!(h.feed(&frame::PREFACE[..10]), Step::NeedInput));
    assert!(!h.conn.is_closed());
    // The first frame must be SETTINGS.
    let mut h = H::new();
    let mut b = frame::PREFACE.to_vec();
    frame::window_update(&mut b, 0, 10);
    assert!(matches!(h.feed(&b), Step::Close));
    assert_eq!(goaway_code(&h.frames()), Some(Code::Protocol as u32));
}

#[test]
fn streams_are_multiplexed() {
    let mut h = H::new();
    h.open(&[]);
    let mut b = h.request(1, "GET", "/delay", true);
    b.extend(h.request(3, "GET", "/a", true));
    b.extend(h.request(5, "HEAD", "/b", true));
    let _ = h.feed(&b);
    let f = h.frames();
    // /a and /b answer at once; /delay later.
    assert_eq!(data_of(&f, 3), b"/a");
    assert!(data_of(&f, 5).is_empty());
    let head5 = f.iter().find(|g| g.head.stream == 5).unwrap();
    assert!(head5.head.has(flag::END_STREAM));
    assert_eq!(h.conn.open_streams(), 1);
    assert_eq!(h.conn.waiting(), Waiting::Handler);
    let wake = h.conn.wake_at().expect("a wake-up");
    h.now = wake;
    let _ = h.feed(&[]);
    let f = h.frames();
    assert_eq!(data_of(&f, 1), b"late");
    assert_eq!(h.conn.open_streams(), 0);
}

#[test]
fn flow_control_holds_and_releases_a_body() {
    let mut h = H::new();
    h.open(&[(setting::INITIAL_WINDOW_SIZE, 1000)]);
    let req = h.request(1, "GET", "/big", true);
    let _ = h.feed(&req);
    let f = h.frames();
    assert_eq!(data_of(&f, 1).len(), 1000);
    assert!(matches!(h.conn.waiting(), Waiting::Stalled(_)));
    // More window on the stream; the connection's 65,535 bounds it next.
    let mut b = Vec::new();
    frame::window_update(&mut b, 1, 200_000);
    let _ = h.feed(&b);
    let f = h.frames();
    assert_eq!(data_of(&f, 1).len(), 65_535 - 1000);
    let mut b = Vec::new();
    frame::window_update(&mut b, 0, 100_000);
    let _ = h.feed(&b);
    let f = h.frames();
    assert_eq!(data_of(&f, 1).len(), 100_000 - 65_535);
    assert!(f.last().unwrap().head.has(flag::END_STREAM));
    // Every DATA frame fits the default largest frame.
    assert!(f.iter().all(|g| g.head.len <= frame::DEFAULT_MAX_FRAME));
    assert_eq!(h.obs.done, [100_000]);
}

#[test]
fn a_streamed_echo_credits_what_it_takes() {
    let mut h = H::new();
    h.open(&[]);
    let mut b = h.request(1, "POST", "/echo", false);
    frame::data(&mut b, 1, &[b'a'; 10_000], false);
    for _ in 0..20 {
        frame::data(&mut b, 1, &[b'b'; 10_000], false);
    }
    let step = h.feed(&b);
    let f = h.frames();
    let kinds: Vec<_> = f
        .iter()
        .map(|g| (g.head.kind, g.head.stream, g.head.len))
        .collect();
    assert_eq!(
        data_of(&f, 1).len(),
        65_535,
        "the connection window to us {step:?} {kinds:?}"
    );
    let mut b = Vec::new();
    frame::window_update(&mut b, 0, 1 << 20);
    frame::window_update(&mut b, 1, 1 << 20);
    let mut step = h.feed(&b);
    let mut f = h.frames();
    while matches!(step, Step::Flush) {
        step = h.feed(&[]);
        f.extend(h.frames());
    }
    assert_eq!(data_of(&f, 1).len(), 210_000 - 65_535);
    // What the handler took was credited back to the client.
    let credited: u32 = f
        .iter()
        .filter(|g| g.head.kind == kind::WINDOW_UPDATE && g.head.stream == 1)
        .map(|g| u32::from_be_bytes(g.payload[..4].try_into().unwrap()))
        .sum();
    assert!(credited >= 128 * 1024, "{credited}");
    let mut b = Vec::new();
    frame::data(&mut b, 1, b"end", true);
    let _ = h.feed(&b);
    let f = h.frames();
    assert_eq!(data_of(&f, 1), b"end");
    assert!(f.last().unwrap().head.has(flag::END_STREAM));
    assert_eq!(h.conn.open_streams(), 0);
}

#[test]
fn a_client_reset_cancels_the_handler() {
    let mut h = H::new();
    h.open(&[]);
    let mut b = h.request(1, "GET", "/delay", true);
    frame::rst_stream(&mut b, 1, Code::Cancel);
    let _ = h.feed(&b);
    assert_eq!(h.svc.cancelled.get(), 1);
    assert_eq!(h.conn.open_streams(), 0);
    assert_eq!(h.conn.wake_at(), None);
}

#[test]
fn draining_says_goaway_and_finishes_streams() {
    let mut h = H::new();
    h.open(&[]);
    let b = h.request(1, "GET", "/delay", true);
    let _ = h.feed(&b);
    h.draining = true;
    assert!(matches!(h.feed(&[]), Step::NeedInput));
    let f = h.frames();
    assert_eq!(goaway_code(&f), Some(0));
    // A new stream after GOAWAY is not answered.
    let b = h.request(3, "GET", "/x", true);
    let _ = h.feed(&b);
    assert!(h.frames().is_empty());
    h.now += Duration::from_millis(200);
    assert!(matches!(h.feed(&[]), Step::Close));
    assert_eq!(data_of(&h.frames(), 1), b"late");
}

#[test]
fn file_bodies_are_read_in_pieces() {
    let mut h = H::new();
    h.open(&[]);
    let b = h.request(1, "GET", "/file", true);
    let Step::ReadFile(r) = h.feed(&b) else {
        panic!("a read")
    };
    let whole = std::fs::read("Cargo.toml").unwrap();
    assert_eq!(r.len, whole.len());
    assert!(matches!(h.file_data(&whole), Step::NeedInput));
    let f = h.frames();
    assert_eq!(data_of(&f, 1), whole);
    assert!(f.last().unwrap().head.has(flag::END_STREAM));
    assert_eq!(h.conn.open_streams(), 0);
}

#[test]
fn a_refused_body_is_still_checked() {
    let mut h = H::new();
    h.open(&[]);
    let block = h.block("POST", "/refuse", &[("content-length", "10")]);
    let mut b = Vec::new();
    frame::head(&mut b, block.len(), kind::HEADERS, flag::END_HEADERS, 1);
    b.extend_from_slice(&block);
    let _ = h.feed(&b);
    let f = h.frames();
    assert!(f.iter().any(|g| g.head.kind == kind::HEADERS));
    assert_eq!(rst_code(&f, 1), None);
    let mut b = Vec::new();
    frame::data(&mut b, 1, b"test", true);
    let _ = h.feed(&b);
    assert_eq!(rst_code(&h.frames(), 1), Some(Code::Protocol as u32));
}

#[test]
fn several_streams_read_files_at_once() {
    let mut h = H::new();
    h.open(&[]);
    let mut b = Vec::new();
    for id in [1, 3, 5] {
        b.extend(h.request(id, "GET", "/file", true));
    }
    let Step::ReadFile(first) = h.feed(&b) else {
        panic!("a read")
    };
    let mut reads = vec![first];
    while let Some(r) = h.conn.take_wanted_read() {
        reads.push(r);
    }
    let mut tags: Vec<u32> = reads.iter().map(|r| r.tag).collect();
    tags.sort_unstable();
    assert_eq!(tags, [1, 3, 5]);
    let whole = std::fs::read("Cargo.toml").unwrap();
    // They come back in any order.
    for r in reads.iter().rev() {
        let mut env = env!(h);
        let _ = h
            .conn
            .file_data(r.tag, &whole, &mut h.svc, &mut env, &mut h.out);
    }
    let f = h.frames();
    for id in [1, 3, 5] {
        assert_eq!(data_of(&f, id), whole, "stream {id}");
    }
    assert_eq!(h.conn.open_streams(), 0);
}

#[path = "tests_defences.rs"]
mod defences;
