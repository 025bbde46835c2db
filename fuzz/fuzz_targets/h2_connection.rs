//! The HTTP/2 connection (`peregrine::http2::H2Conn`) fed the client preface
//! and SETTINGS, then arbitrary bytes, whole or cut at points taken from
//! the input, with a test service that answers at once, later, streamed, or
//! from a file.
//!
//! Input layout: byte 0 holds flags (bit 0: small limits, bit 1: drain
//! after the input, bit 2: the header block is built from the input:
//! literal fields of an HPACK block for stream 1); byte 1 is the number of
//! cut points (mod 16), two bytes each after it. The rest is the stream.
//!
//! Properties:
//! - it never panics, whatever the frames;
//! - the output is always a sequence of whole frames, none larger than the
//!   default largest frame (the fuzz client never raises it) except
//!   SETTINGS, and the first is our SETTINGS;
//! - every streamed response reported to the observer is reported ended
//!   exactly once by the time the connection is abandoned;
//! - a connection error is a GOAWAY and the end: nothing follows it.
#![no_main]

use std::time::{Duration, Instant};

use libfuzzer_sys::fuzz_target;
use peregrine::exchange::{BodySource, Chunk, Io, Reply, RequestBody, RequestHead, Task};
use peregrine::http::conn::{Env, ExchangePool, Observer, Served, Service, Step};
use peregrine::http::{Body, Limits, Methods, Response, Ticket};
use peregrine::http2::H2Conn;
use peregrine::http2::frame::{self, Head, kind};

const DATE: &[u8] = b"Sun, 06 Nov 1994 08:49:37 GMT";

struct Svc;

struct Later(Instant);

impl Task for Later {
    fn poll(&mut self, io: &mut Io, body: &mut RequestBody) -> Option<Reply> {
        let mut sink = Vec::new();
        body.take_into(&mut sink, usize::MAX);
        if io.now() < self.0 {
            io.wake_at(self.0);
            return None;
        }
        Some(Response::new(200).body(Body::Static(b"late")).into())
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

impl Service for Svc {
    fn call(&mut self, req: &RequestHead, io: &mut Io) -> Reply {
        match req.path() {
            "/later" => Reply::Pending(Box::new(Later(io.now() + Duration::from_millis(5)))),
            "/echo" => Reply::Stream(Response::new(200), Box::new(Echo)),
            "/big" => Response::new(200).body(Body::Bytes(vec![7; 70_000])).into(),
            p => Response::new(404)
                .body(Body::Bytes(p.as_bytes().to_vec()))
                .into(),
        }
    }

    fn methods(&self) -> Methods {
        Methods::GET_HEAD
    }
}

#[derive(Default)]
struct Obs {
    open: i64,
}

impl Observer for Obs {
    fn served(&mut self, ev: &Served<'_>) -> Ticket {
        if ev.stream {
            self.open += 1;
            Ticket(1)
        } else {
            Ticket::NONE
        }
    }
    fn stream_done(&mut self, t: Ticket, _s: Instant, _b: u64) {
        if t == Ticket(1) {
            self.open -= 1;
            assert!(self.open >= 0, "a stream reported ended twice");
        }
    }
}

fn check_frames(out: &[u8], first: bool) -> bool {
    let mut p = 0;
    let mut goaway = false;
    while p < out.len() {
        let h = Head::parse(&out[p..]).expect("a whole frame header");
        assert!(!goaway || h.kind == kind::GOAWAY, "a frame after GOAWAY");
        if h.kind != kind::SETTINGS {
            assert!(h.len <= frame::DEFAULT_MAX_FRAME, "a frame too large");
        }
        if first && p == 0 {
            assert_eq!(h.kind, kind::SETTINGS, "our SETTINGS first");
        }
        goaway |= h.kind == kind::GOAWAY;
        p += 9 + h.len as usize;
        assert!(p <= out.len(), "a whole frame payload");
    }
    goaway
}

fuzz_target!(|data: &[u8]| {
    if data.len() < 2 {
        return;
    }
    let flags = data[0];
    let ncuts = usize::from(data[1] % 16);
    let body_at = 2 + ncuts * 2;
    if data.len() < body_at {
        return;
    }
    let mut cuts: Vec<usize> = data[2..body_at]
        .chunks(2)
        .map(|c| usize::from(u16::from_le_bytes([c[0], c[1]])))
        .collect();
    let mut stream = frame::PREFACE.to_vec();
    frame::settings(&mut stream, &[]);
    let rest = &data[body_at..];
    if flags & 4 != 0 {
        // The rest is one header block on stream 1.
        frame::head(&mut stream, rest.len().min(16_384), kind::HEADERS, 0x5, 1);
        stream.extend_from_slice(&rest[..rest.len().min(16_384)]);
    } else {
        stream.extend_from_slice(rest);
    }
    cuts.retain(|c| *c < stream.len());
    cuts.sort_unstable();
    cuts.dedup();

    let mut limits = Limits::default();
    if flags & 1 != 0 {
        limits.max_request_header_count = 4;
        limits.max_request_body_size = 100;
        limits.http2.max_concurrent_streams = 2;
        limits.http2.max_header_list_size = 200;
        limits.http2.max_resets_per_second = 3;
        limits.http2.max_control_frames_per_second = 10;
    }
    let mut now = Instant::now();
    let mut conn = H2Conn::new(&limits.http2, now);
    let mut obs = Obs::default();
    let mut pool = ExchangePool::new();
    let mut svc = Svc;
    let mut first = true;
    let mut ended = false;
    let mut last = 0;
    let mut pieces: Vec<&[u8]> = Vec::new();
    for c in cuts.iter().copied().chain(std::iter::once(stream.len())) {
        pieces.push(&stream[last..c]);
        last = c;
    }
    let mut draining = false;
    for (i, piece) in pieces.iter().enumerate() {
        let mut input: &[u8] = piece;
        for _ in 0..64 {
            if ended {
                break;
            }
            let mut out = Vec::new();
            let mut env = Env {
                limits: &limits,
                now,
                date: DATE,
                draining,
                obs: &mut obs,
                tls: None,
                extra_headers: b"",
                peer: None,
                listener: 0,
                pool: &mut pool,
                waker: None,
                upstreams: None,
            };
            let step = conn.feed(input, &mut svc, &mut env, &mut out);
            input = &[];
            let step = match step {
                Step::ReadFile(r) => {
                    // Every read asked for comes back, the last asked first.
                    let mut reads = vec![r];
                    while let Some(r) = conn.take_wanted_read() {
                        reads.push(r);
                    }
                    let mut step = Step::NeedInput;
                    for r in reads.into_iter().rev() {
                        let data = vec![1u8; r.len];
                        step = conn.file_data(r.tag, &data, &mut svc, &mut env, &mut out);
                    }
                    step
                }
                s => s,
            };
            let goaway = check_frames(&out, first);
            first = false;
            match step {
                Step::Close => {
                    ended = true;
                    assert!(conn.is_closed());
                }
                _ => assert!(!goaway || draining, "GOAWAY without an end"),
            }
            match step {
                Step::Flush => continue,
                _ => {}
            }
            match conn.wake_at() {
                Some(w) => now = now.max(w),
                None => break,
            }
        }
        if i + 1 == pieces.len() && flags & 2 != 0 {
            draining = true;
        }
    }
    conn.abandon(&mut obs);
    assert_eq!(obs.open, 0, "every streamed response reported ended");
});
