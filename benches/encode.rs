//! Response-head encoding, the Date cache and router lookup.

use std::hint::black_box;
use std::time::{Duration, SystemTime};

use criterion::{Criterion, criterion_group, criterion_main};
use peregrine::exchange::{Io, Reply, RequestHead};
use peregrine::handler::{Json, Plaintext, Router};
use peregrine::http::date::DateCache;
use peregrine::http::encode::{Persist, encode};
use peregrine::http::parse::{header_buf, parse_head};
use peregrine::http::{Body, Limits, Response, Service};

fn bench(c: &mut Criterion) {
    let date = *b"Sun, 06 Nov 1994 08:49:37 GMT";
    let mut out = Vec::with_capacity(4096);
    c.bench_function("encode/plaintext_head_and_body", |b| {
        b.iter(|| {
            out.clear();
            let r = Response::new(200)
                .content_type("text/plain")
                .body(Body::Static(b"Hello, World!"));
            encode(
                &mut out,
                black_box(&r),
                &date,
                b"",
                Persist::KeepAlive,
                false,
            );
            black_box(out.len())
        })
    });
    c.bench_function("encode/static_file_head", |b| {
        b.iter(|| {
            out.clear();
            let r = Response::new(200)
                .content_type("text/html; charset=utf-8")
                .header(
                    "Last-Modified",
                    String::from("Sun, 06 Nov 1994 08:49:37 GMT"),
                )
                .header("ETag", String::from("\"2ebc6f81-1000\""))
                .header("Accept-Ranges", "bytes");
            encode(
                &mut out,
                black_box(&r),
                &date,
                b"",
                Persist::KeepAlive,
                true,
            );
            black_box(out.len())
        })
    });

    let mut cache = DateCache::new(SystemTime::now());
    let base = SystemTime::now();
    let mut i = 0u64;
    c.bench_function("date_cache/update_same_second", |b| {
        b.iter(|| {
            cache.update(black_box(base));
            black_box(cache.get()[0])
        })
    });
    c.bench_function("date_cache/update_new_second", |b| {
        b.iter(|| {
            i += 1;
            cache.update(black_box(base + Duration::from_secs(i)));
            black_box(cache.get()[0])
        })
    });

    let mut router = Router::new()
        .route("/plaintext", Plaintext)
        .route("/json", Json)
        .route("/api/v1/users", Plaintext)
        .route("/api/v1/orders", Plaintext)
        .route("/static", Plaintext);
    let limits = Limits::default();
    let req = b"GET /api/v1/orders/42 HTTP/1.1\r\nHost: a\r\n\r\n";
    let mut head = RequestHead::default();
    let now = std::time::Instant::now();
    c.bench_function("router/lookup_and_call", |b| {
        b.iter(|| {
            let mut storage = header_buf();
            let parsed = parse_head(req, &mut storage, &limits).unwrap().unwrap();
            parsed.req.fill(&mut head);
            let mut io = Io::new(now);
            match router.call(black_box(&head), &mut io) {
                Reply::Ready(r) => black_box(r.status()),
                _ => 0,
            }
        })
    });
}

criterion_group!(benches, bench);
criterion_main!(benches);
