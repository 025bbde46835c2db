//! Randomized checks of the connection state machine: mutated requests fed
//! whole and in random pieces must give the same bytes out and never panic
//! (a stable-toolchain stand-in for a fuzz target).

use super::conn::{Conn, Env, NoObserver, Service, Step};
use super::{Body, Limits, Method, Methods, Response};
use crate::exchange::{Io, Reply, RequestBody, RequestHead, Task};
use crate::http::mutate::{Rng, mutate as super_mutate, pipeline};
use std::time::Instant;

struct Echo;

/// Answers with the path and the whole body once it has arrived.
struct Collect(Vec<u8>);

impl Task for Collect {
    fn poll(&mut self, _io: &mut Io, body: &mut RequestBody) -> Option<Reply> {
        body.take_into(&mut self.0, usize::MAX);
        body.is_finished().then(|| {
            Reply::Ready(Response::new(200).body(Body::Bytes(std::mem::take(&mut self.0))))
        })
    }
}

impl Service for Echo {
    fn call(&mut self, req: &RequestHead, _io: &mut Io) -> Reply {
        Reply::Pending(Box::new(Collect(req.path().as_bytes().to_vec())))
    }

    fn methods(&self) -> Methods {
        Methods::GET_HEAD.with(Method::Post)
    }
}

const SEEDS: &[&[u8]] = &[
    b"GET /a?b=c HTTP/1.1\r\nHost: x\r\n\r\n",
    b"POST /p HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n\r\nhello",
    b"POST /c HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n3;e=1\r\nabc\r\n0\r\nT: v\r\n\r\n",
    b"GET http://h/x HTTP/1.0\r\nConnection: keep-alive\r\n\r\n",
    b"OPTIONS * HTTP/1.1\r\nHost: x\r\n\r\n",
    b"HEAD / HTTP/1.1\r\nHost: x\r\nExpect: 100-continue\r\n\r\n",
];

fn mutate(rng: &mut Rng, input: &mut Vec<u8>) {
    const BYTES: &[u8] = b" \r\n:;0123456789abcdefABCDEF/?%\t\x00\xff-,";
    super_mutate(rng, input, BYTES, b'G');
}

/// Feeds `chunks` to a fresh connection; returns everything written and
/// whether the connection ended.
fn run(chunks: &[&[u8]]) -> (Vec<u8>, bool) {
    let limits = Limits {
        max_request_body_size: 1000,
        ..Limits::default()
    };
    let mut conn = Conn::new();
    let mut out = Vec::new();
    let mut obs = NoObserver;
    let now = Instant::now();
    let mut closed = false;
    let mut pool = super::conn::ExchangePool::new();
    for c in chunks {
        let mut env = Env {
            limits: &limits,
            now,
            date: b"Sun, 06 Nov 1994 08:49:37 GMT",
            draining: false,
            obs: &mut obs,
            tls: None,
            extra_headers: b"",
            peer: None,
            listener: 0,
            waker: None,
            upstreams: None,
            pool: &mut pool,
        };
        let mut step = conn.feed(c, &mut Echo, &mut env, &mut out);
        while matches!(step, Step::Flush) {
            step = conn.feed(&[], &mut Echo, &mut env, &mut out);
        }
        if matches!(step, Step::Close) {
            closed = true;
            break;
        }
    }
    (out, closed)
}

#[test]
fn split_input_gives_the_same_answers() {
    let mut rng = Rng(0x9E37_79B9_7F4A_7C15);
    for round in 0..4000 {
        // A few pipelined, possibly mutated, requests.
        let input = pipeline(&mut rng, SEEDS, mutate);
        let whole = run(&[&input]);
        // The same bytes in random pieces, some of them one byte long.
        let mut pieces = Vec::new();
        let mut rest = &input[..];
        while !rest.is_empty() {
            let n = if rng.below(4) == 0 {
                1
            } else {
                1 + rng.below(rest.len())
            };
            let (a, b) = rest.split_at(n.min(rest.len()));
            pieces.push(a);
            rest = b;
        }
        let split = run(&pieces);
        assert_eq!(
            whole,
            split,
            "round {round}: {:?}",
            String::from_utf8_lossy(&input)
        );
    }
}
