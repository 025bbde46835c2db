//! Request parsing: a small GET, a browser-sized GET, a pipelined batch.

use std::hint::black_box;
use std::time::Instant;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use peregrine::exchange::{Io, Reply, RequestHead};
use peregrine::http::conn::{Conn, Env, NoObserver, Service};
use peregrine::http::parse::{header_buf, parse_head};
use peregrine::http::{Body, Limits, Methods, Response};

const SMALL: &[u8] = b"GET /plaintext HTTP/1.1\r\nHost: localhost:8080\r\n\r\n";
const BROWSER: &[u8] = b"GET /static/app/main.js?v=1234 HTTP/1.1\r\n\
Host: www.example.com\r\n\
User-Agent: Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0 Safari/537.36\r\n\
Accept: text/html,application/xhtml+xml,application/xml;q=0.9,image/avif,image/webp,*/*;q=0.8\r\n\
Accept-Language: en-US,en;q=0.9\r\n\
Accept-Encoding: gzip, deflate, br\r\n\
Referer: https://www.example.com/index.html\r\n\
Cookie: session=0123456789abcdef0123456789abcdef; theme=dark; consent=yes\r\n\
Connection: keep-alive\r\n\
Upgrade-Insecure-Requests: 1\r\n\
Sec-Fetch-Dest: script\r\n\
Sec-Fetch-Mode: no-cors\r\n\
Sec-Fetch-Site: same-origin\r\n\
Cache-Control: max-age=0\r\n\
If-None-Match: \"65f2a1b3-4d2\"\r\n\
DNT: 1\r\n\r\n";

struct Plain;

impl Service for Plain {
    fn call(&mut self, _req: &RequestHead, _io: &mut Io) -> Reply {
        Response::new(200)
            .content_type("text/plain")
            .body(Body::Static(b"Hello, World!"))
            .into()
    }
    fn methods(&self) -> Methods {
        Methods::GET_HEAD
    }
}

fn parse(c: &mut Criterion) {
    let limits = Limits::default();
    let mut g = c.benchmark_group("parse_head");
    for (name, req) in [("small_get", SMALL), ("browser_get_15_headers", BROWSER)] {
        g.throughput(Throughput::Bytes(req.len() as u64));
        g.bench_function(name, |b| {
            b.iter(|| {
                let mut storage = header_buf();
                let head = parse_head(black_box(req), &mut storage, &limits)
                    .unwrap()
                    .unwrap();
                black_box(head.len)
            })
        });
    }
    g.finish();

    let batch = SMALL.repeat(16);
    let mut g = c.benchmark_group("conn_feed");
    g.throughput(Throughput::Elements(16));
    g.bench_function("pipelined_16_plaintext", |b| {
        let mut svc = Plain;
        let date = *b"Sun, 06 Nov 1994 08:49:37 GMT";
        let mut out = Vec::with_capacity(64 * 1024);
        let mut conn = Conn::new();
        let mut pool = peregrine::http::conn::ExchangePool::new();
        b.iter(|| {
            out.clear();
            let mut obs = NoObserver;
            let mut env = Env {
                limits: &limits,
                now: Instant::now(),
                date: &date,
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
            let _ = conn.feed(black_box(&batch), &mut svc, &mut env, &mut out);
            black_box(out.len())
        })
    });
    g.finish();
}

criterion_group!(benches, parse);
criterion_main!(benches);
