//! The response cache end to end: one Peregrine (one worker) in front of
//! the Python upstream of `tests/upstream.py`, which counts how often each
//! path is asked for. Every rule of the cache is a check: what is stored
//! and what is not, variants, keys, revalidation, stale answers, coalesced
//! misses, HEAD from GET, conditional and range requests answered from the
//! store, purges through the admin API, invalidation by unsafe methods,
//! size limits and the metrics. A second server with two workers shows the
//! per-worker stores and a purge reaching both.

mod common;
use common::upstreams::{Py, wait_for};
use common::*;
use std::io::Write;
use std::net::TcpStream;
use std::time::Duration;

struct Setup {
    server: Server,
    up: Py,
}

fn config(up: u16) -> String {
    format!(
        r#"workers = 1
[cache]
max_size = "8MiB"
max_object_size = "64KiB"
[[upstream]]
name = "app"
servers = ["127.0.0.1:{up}"]
[[site]]
name = "front"
default = true
[site.compression]
encodings = ["br", "gzip"]
[[site.route]]
path = "/"
handler = "proxy"
upstream = "app"
cache = {{ ttl = {{ "200" = "10m", "404" = "1m" }}, bypass_if = ["header:X-Debug", "cookie:session"] }}
[[site.route]]
path = "/swr"
handler = "proxy"
upstream = "app"
strip_prefix = "/swr"
cache = {{ stale_while_revalidate = "30s" }}
[[site.route]]
path = "/sie"
handler = "proxy"
upstream = "app"
strip_prefix = "/sie"
cache = {{ stale_if_error = "1h" }}
[[site.route]]
path = "/sc"
handler = "proxy"
upstream = "app"
strip_prefix = "/sc"
cache = {{ store_set_cookie = true }}
[[site.route]]
path = "/q"
handler = "proxy"
upstream = "app"
strip_prefix = "/q"
cache = {{ vary_by_query = ["v"] }}
[[site.route]]
path = "/nolock"
handler = "proxy"
upstream = "app"
strip_prefix = "/nolock"
cache = {{ lock = false }}
[[site.route]]
path = "/fixed"
handler = "respond"
body = "fixed answer"
cache = {{ ttl = {{ "any" = "1m" }} }}
"#,
        up = up
    )
}

fn setup() -> Setup {
    let up = Py::start("up", &[]);
    let server = Server::with_config(&config(up.addr.port()), &[]);
    Setup { server, up }
}

fn get(s: &Server, path: &str) -> Resp {
    request(s, "GET", path, &[])
}

/// How often the upstream was asked for `path` (its path after any prefix).
fn asked(st: &Setup, path: &str) -> u64 {
    let mut c = TcpStream::connect(st.up.addr).unwrap();
    c.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    write!(
        c,
        "GET /counts?path={path} HTTP/1.1\r\nHost: u\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    let r = read_response(&mut c, false).unwrap();
    r.text().trim().parse().unwrap()
}

fn status_of(r: &Resp) -> String {
    r.header("cache-status").unwrap_or_default()
}

fn stored_then_hit(st: &Setup) {
    let a = get(&st.server, "/cache/hit?cc=max-age%3D60");
    assert_eq!(a.status, 200);
    let s = status_of(&a);
    assert!(s.contains("fwd=uri-miss") && s.contains("stored"), "{s}");
    let b = get(&st.server, "/cache/hit?cc=max-age%3D60");
    let s = status_of(&b);
    assert!(s.starts_with("peregrine; hit; ttl="), "{s}");
    assert_eq!(a.body, b.body);
    assert!(b.header("age").is_some());
    assert_eq!(b.header("x-upstream").as_deref(), Some("up"));
    assert_eq!(asked(st, "/cache/hit"), 1);
    // Expires gives a lifetime too.
    get(&st.server, "/cache/exp?expires=60");
    assert!(status_of(&get(&st.server, "/cache/exp?expires=60")).contains("hit"));
    assert_eq!(asked(st, "/cache/exp"), 1);
}

fn ttl_by_status(st: &Setup) {
    for _ in 0..2 {
        get(&st.server, "/cache/t200");
        assert_eq!(get(&st.server, "/cache/t404?status=404").status, 404);
        assert_eq!(get(&st.server, "/cache/t500?status=500").status, 500);
    }
    assert_eq!(asked(st, "/cache/t200"), 1);
    assert_eq!(asked(st, "/cache/t404"), 1);
    assert_eq!(asked(st, "/cache/t500"), 2, "no lifetime for a 500");
    // A route without a ttl stores only what gives its own lifetime.
    get(&st.server, "/swr/cache/nottl");
    let r = get(&st.server, "/swr/cache/nottl");
    assert!(
        status_of(&r).contains("detail=no-lifetime"),
        "{}",
        status_of(&r)
    );
    assert_eq!(asked(st, "/cache/nottl"), 2);
}

fn not_stored(st: &Setup) {
    for (q, why) in [
        ("cc=no-store", "no-store"),
        ("cc=private%2C%20max-age%3D60", "private"),
        ("cookie=a%3D1", "set-cookie"),
        ("vary=%2A", "vary"),
    ] {
        let path = format!("/cache/ns-{why}?{q}");
        for _ in 0..2 {
            let r = get(&st.server, &path);
            assert!(
                status_of(&r).contains(&format!("detail={why}")),
                "{why}: {}",
                status_of(&r)
            );
        }
        assert_eq!(asked(st, &format!("/cache/ns-{why}")), 2, "{why}");
    }
    // With store_set_cookie the response is stored without its cookie.
    let a = get(&st.server, "/sc/cache/cookie?cookie=id%3D7&cc=max-age%3D60");
    assert_eq!(a.header("set-cookie").as_deref(), Some("id=7"));
    let b = get(&st.server, "/sc/cache/cookie?cookie=id%3D7&cc=max-age%3D60");
    assert!(status_of(&b).contains("hit"));
    assert_eq!(
        b.header("set-cookie"),
        None,
        "a stored cookie is never handed out"
    );
}

fn authorization_and_bypass(st: &Setup) {
    let auth = [("Authorization", "Bearer x")];
    request(&st.server, "GET", "/cache/auth?cc=max-age%3D60", &auth);
    let r = request(&st.server, "GET", "/cache/auth?cc=max-age%3D60", &auth);
    assert!(
        status_of(&r).contains("detail=authorization"),
        "{}",
        status_of(&r)
    );
    assert_eq!(asked(st, "/cache/auth"), 2);
    // `public` lets an authenticated answer be shared.
    request(
        &st.server,
        "GET",
        "/cache/pub?cc=public%2C%20max-age%3D60",
        &auth,
    );
    let r = get(&st.server, "/cache/pub?cc=public%2C%20max-age%3D60");
    assert!(status_of(&r).contains("hit"), "{}", status_of(&r));
    assert_eq!(asked(st, "/cache/pub"), 1);
    get(&st.server, "/cache/by?cc=max-age%3D60");
    let r = request(
        &st.server,
        "GET",
        "/cache/by?cc=max-age%3D60",
        &[("X-Debug", "1")],
    );
    assert_eq!(status_of(&r), "peregrine; fwd=bypass");
    let r = request(
        &st.server,
        "GET",
        "/cache/by?cc=max-age%3D60",
        &[("Cookie", "a=1; session=9")],
    );
    assert_eq!(status_of(&r), "peregrine; fwd=bypass");
    let r = request(
        &st.server,
        "GET",
        "/cache/by?cc=max-age%3D60",
        &[("Cookie", "sessionx=9")],
    );
    assert!(status_of(&r).contains("hit"));
    assert_eq!(asked(st, "/cache/by"), 3);
}

fn variants(st: &Setup) {
    let p = "/cache/lang?cc=max-age%3D60&vary=Accept-Language";
    let en = [("Accept-Language", "en")];
    let a = request(&st.server, "GET", p, &en);
    let de = request(&st.server, "GET", p, &[("Accept-Language", "de")]);
    assert!(
        status_of(&de).contains("fwd=vary-miss"),
        "{}",
        status_of(&de)
    );
    let b = request(&st.server, "GET", p, &en);
    assert!(status_of(&b).contains("hit"));
    assert_eq!(a.body, b.body);
    assert_ne!(a.body, de.body);
    assert_eq!(asked(st, "/cache/lang"), 2);
    // Compression's variants: lists that negotiate alike share one.
    let p = "/cache/ae?cc=max-age%3D60&size=8000";
    let x = request(
        &st.server,
        "GET",
        p,
        &[("Accept-Encoding", "gzip, deflate, br")],
    );
    assert_eq!(x.header("content-encoding").as_deref(), Some("br"));
    let y = request(&st.server, "GET", p, &[("Accept-Encoding", "br;q=1, gzip")]);
    assert!(status_of(&y).contains("hit"), "{}", status_of(&y));
    assert_eq!(x.body, y.body);
    let g = request(&st.server, "GET", p, &[("Accept-Encoding", "gzip")]);
    assert_eq!(g.header("content-encoding").as_deref(), Some("gzip"));
    let plain = get(&st.server, p);
    assert_eq!(plain.header("content-encoding"), None);
    assert_eq!(plain.body.len(), 8000);
    assert!(
        get(&st.server, p)
            .header("vary")
            .unwrap()
            .contains("Accept-Encoding")
    );
    assert_eq!(asked(st, "/cache/ae"), 3);
    // vary_by_query: only `v` makes the key.
    get(&st.server, "/q/cache/vq?v=1&utm=a&cc=max-age%3D60");
    let r = get(&st.server, "/q/cache/vq?utm=b&v=1");
    assert!(status_of(&r).contains("hit"), "{}", status_of(&r));
    get(&st.server, "/q/cache/vq?v=2&cc=max-age%3D60");
    assert_eq!(asked(st, "/cache/vq"), 2);
}

fn coalesced_misses(st: &Setup) {
    let run = |path: &'static str| {
        let addr = st.server.addr;
        let threads: Vec<_> = (0..16)
            .map(|_| {
                std::thread::spawn(move || {
                    let mut c = TcpStream::connect(addr).unwrap();
                    c.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
                    write!(
                        c,
                        "GET {path} HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n"
                    )
                    .unwrap();
                    read_response(&mut c, false).unwrap()
                })
            })
            .collect();
        threads
            .into_iter()
            .map(|t| t.join().unwrap())
            .collect::<Vec<_>>()
    };
    let all = run("/cache/lock?cc=max-age%3D60&ms=300");
    assert!(all.iter().all(|r| r.status == 200 && r.body == all[0].body));
    assert_eq!(asked(st, "/cache/lock"), 1, "one request went up");
    assert!(all.iter().any(|r| status_of(r).contains("collapsed")));
    let all = run("/nolock/cache/nolock?cc=max-age%3D60&ms=300");
    assert!(all.iter().all(|r| r.status == 200));
    assert!(
        asked(st, "/cache/nolock") > 1,
        "lock = false: each miss goes up"
    );
}

fn head_conditional_range(st: &Setup) {
    let p = "/cache/hd?cc=max-age%3D60&etag=%22h1%22&size=1000";
    let h = request(&st.server, "HEAD", p, &[]);
    assert_eq!(h.status, 200);
    assert!(!status_of(&h).contains("stored"), "a HEAD is not stored");
    get(&st.server, p);
    let h = request(&st.server, "HEAD", p, &[]);
    assert!(status_of(&h).contains("hit"), "HEAD from the stored GET");
    assert_eq!(h.header("content-length").as_deref(), Some("1000"));
    assert!(h.body.is_empty());
    let c = request(&st.server, "GET", p, &[("If-None-Match", "\"h1\"")]);
    assert_eq!(c.status, 304);
    assert_eq!(c.header("etag").as_deref(), Some("\"h1\""));
    assert!(status_of(&c).contains("hit"));
    let r = request(&st.server, "GET", p, &[("Range", "bytes=0-3")]);
    assert_eq!(r.status, 206);
    assert_eq!(r.header("content-range").as_deref(), Some("bytes 0-3/1000"));
    assert_eq!(r.body, b"up n");
    let r = request(&st.server, "GET", p, &[("Range", "bytes=5000-")]);
    assert_eq!(r.status, 416);
    assert_eq!(asked(st, "/cache/hd"), 2, "the HEAD and one GET");
}

fn purge_and_invalidation(st: &Setup) {
    for p in ["/cache/pa", "/cache/pp/a", "/cache/pp/b"] {
        get(&st.server, p);
        assert!(status_of(&get(&st.server, p)).contains("hit"));
    }
    let r = st.server.admin_post("/cache/purge?key=t%2Fcache%2Fpa");
    assert_eq!(r.status, 200, "{}", r.text());
    assert!(r.text().contains("\"purged\": 1"), "{}", r.text());
    assert!(status_of(&get(&st.server, "/cache/pa")).contains("miss"));
    let r = st.server.admin_post("/cache/purge?prefix=t/cache/pp/");
    assert!(r.text().contains("\"purged\": 2"), "{}", r.text());
    assert!(status_of(&get(&st.server, "/cache/pp/b")).contains("miss"));
    assert_eq!(st.server.admin_post("/cache/purge").status, 400);
    assert_eq!(st.server.admin_post("/cache/purge?key=%zz").status, 400);
    // A successful POST invalidates its target.
    get(&st.server, "/cache/inv");
    assert!(status_of(&get(&st.server, "/cache/inv")).contains("hit"));
    let r = request(&st.server, "POST", "/cache/inv", &[]);
    assert_eq!(status_of(&r), "peregrine; fwd=method");
    assert!(status_of(&get(&st.server, "/cache/inv")).contains("miss"));
    assert_eq!(asked(st, "/cache/inv"), 3);
}

fn sizes_and_streams(st: &Setup) {
    // Over max_object_size (64 KiB): forwarded every time.
    for _ in 0..2 {
        let r = get(&st.server, "/cache/big?cc=max-age%3D60&size=100000");
        assert_eq!(r.body.len(), 100_000);
    }
    assert_eq!(asked(st, "/cache/big"), 2);
    // A chunked one over the limit is found out as it streams.
    for _ in 0..2 {
        let r = get(
            &st.server,
            "/cache/bigc?cc=max-age%3D60&size=100000&chunked=1",
        );
        assert_eq!(r.body.len(), 100_000);
    }
    assert_eq!(asked(st, "/cache/bigc"), 2);
    // A small chunked one is stored and served with its length.
    let a = get(
        &st.server,
        "/cache/smallc?cc=max-age%3D60&size=3000&chunked=1",
    );
    let b = get(
        &st.server,
        "/cache/smallc?cc=max-age%3D60&size=3000&chunked=1",
    );
    assert_eq!(a.body, b.body);
    assert_eq!(b.header("content-length").as_deref(), Some("3000"));
    assert_eq!(asked(st, "/cache/smallc"), 1);
    // A handler's own answer (not proxied) is cached too.
    get(&st.server, "/fixed");
    let r = get(&st.server, "/fixed");
    assert_eq!(r.text(), "fixed answer");
    assert!(status_of(&r).contains("hit"));
}

fn stale_answers(st: &Setup) {
    // Revalidation (no stale_while_revalidate on `/`).
    let rv = "/cache/rv?cc=max-age%3D1&etag=%22r1%22";
    let first = get(&st.server, rv);
    // stale_while_revalidate.
    let sw = "/swr/cache/sw?cc=max-age%3D1&etag=%22s1%22";
    get(&st.server, sw);
    // stale_if_error, and `/` where none is allowed.
    let se = "/sie/cache/se?cc=max-age%3D1";
    get(&st.server, se);
    get(&st.server, "/cache/se2?cc=max-age%3D1");
    for p in ["/cache/se", "/cache/se2"] {
        let mut c = TcpStream::connect(st.up.addr).unwrap();
        write!(
            c,
            "GET /fail?path={p} HTTP/1.1\r\nHost: u\r\nConnection: close\r\n\r\n"
        )
        .unwrap();
        read_response(&mut c, false).unwrap();
    }
    // Revalidated by date; no-cache: revalidated every time; and
    // must-revalidate: never stale, not even on an error.
    let lm = "/cache/lm?cc=max-age%3D1&lm=Tue%2C%2001%20Dec%202026%2010%3A00%3A00%20GMT";
    get(&st.server, lm);
    let nc = "/cache/nc?cc=no-cache&etag=%22n1%22";
    get(&st.server, nc);
    let r = get(&st.server, nc);
    assert!(
        status_of(&r).contains("fwd=stale; fwd-status=304"),
        "{}",
        status_of(&r)
    );
    assert_eq!(asked(st, "/cache/nc"), 2);
    let mr = "/sie/cache/mr?cc=max-age%3D1%2C%20must-revalidate";
    get(&st.server, mr);
    let mut c = TcpStream::connect(st.up.addr).unwrap();
    write!(
        c,
        "GET /fail?path=/cache/mr HTTP/1.1\r\nHost: u\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    read_response(&mut c, false).unwrap();
    std::thread::sleep(Duration::from_millis(2100));
    let r = get(&st.server, lm);
    assert!(
        status_of(&r).contains("fwd=stale; fwd-status=304"),
        "{}",
        status_of(&r)
    );
    assert_eq!(asked(st, "/cache/lm"), 2);
    assert_eq!(
        get(&st.server, mr).status,
        503,
        "must-revalidate: no stale answer"
    );
    let again = get(&st.server, rv);
    assert!(
        status_of(&again).contains("fwd=stale; fwd-status=304"),
        "{}",
        status_of(&again)
    );
    assert_eq!(first.body, again.body);
    assert_eq!(asked(st, "/cache/rv"), 2);
    let r = get(&st.server, sw);
    assert!(
        status_of(&r).contains("detail=stale-while-revalidate"),
        "{}",
        status_of(&r)
    );
    assert!(
        wait_for(Duration::from_secs(5), || asked(st, "/cache/sw") == 2),
        "revalidated in the background"
    );
    let r = get(&st.server, sw);
    assert!(
        status_of(&r).starts_with("peregrine; hit; ttl="),
        "{}",
        status_of(&r)
    );
    assert!(
        !status_of(&r).contains("ttl=-"),
        "fresh again: {}",
        status_of(&r)
    );
    let r = get(&st.server, se);
    assert_eq!(r.status, 200);
    assert!(
        status_of(&r).contains("fwd-status=503") && status_of(&r).contains("detail=stale-if-error")
    );
    let r = get(&st.server, "/cache/se2?cc=max-age%3D1");
    assert_eq!(r.status, 503, "no stale_if_error on this route");
}

/// The cache answers HTTP/2 streams as it answers HTTP/1.1 requests.
fn over_http2(st: &Setup) {
    let url = st.server.url("/cache/h2?cc=max-age%3D60");
    let run = || {
        let (head, _) = curl(&[
            "-s",
            "--http2-prior-knowledge",
            "-D",
            "-",
            "-o",
            "/dev/null",
            &url,
        ]);
        head
    };
    let first = run();
    assert!(first.starts_with("HTTP/2 200"), "{first}");
    let second = run();
    assert!(
        second
            .to_ascii_lowercase()
            .contains("cache-status: peregrine; hit;"),
        "{second}"
    );
    assert_eq!(asked(st, "/cache/h2"), 1);
}

fn metrics(st: &Setup) {
    // Workers publish their counts every so often.
    let published = wait_for(Duration::from_secs(5), || {
        st.server
            .admin_get("/metrics")
            .text()
            .contains("peregrine_cache_stale_total{worker=\"0\"} 2")
    });
    assert!(published);
    let m = st.server.admin_get("/metrics").text();
    let value = |name: &str| -> u64 {
        m.lines()
            .find(|l| l.starts_with(&format!("{name}{{worker=\"0\"}}")))
            .and_then(|l| l.rsplit(' ').next()?.parse().ok())
            .unwrap_or_else(|| panic!("{name} missing"))
    };
    assert!(value("peregrine_cache_hits_total") > 10);
    assert!(value("peregrine_cache_misses_total") > 10);
    assert_eq!(value("peregrine_cache_stale_total"), 2);
    assert!(value("peregrine_cache_revalidated_total") >= 4);
    assert!(value("peregrine_cache_bytes") > 0);
    assert!(value("peregrine_cache_purged_total") >= 3);
    assert_eq!(value("peregrine_cache_capacity_bytes"), 8 << 20);
    promtool_check(&m);
    let s: serde_json::Value =
        serde_json::from_slice(&st.server.admin_get("/status").body).unwrap();
    let ratio = s["cache"]["hit_ratio"].as_f64().unwrap();
    assert!(ratio > 0.1 && ratio < 1.0, "{ratio}");
}

#[test]
fn cache_rules() {
    let st = setup();
    run_checks(
        &st,
        &[
            ("stored_then_hit", stored_then_hit),
            ("ttl_by_status", ttl_by_status),
            ("not_stored", not_stored),
            ("authorization_and_bypass", authorization_and_bypass),
            ("variants", variants),
            ("coalesced_misses", coalesced_misses),
            ("head_conditional_range", head_conditional_range),
            ("purge_and_invalidation", purge_and_invalidation),
            ("sizes_and_streams", sizes_and_streams),
            ("stale_answers", stale_answers),
            ("over_http2", over_http2),
            ("metrics", metrics),
        ],
    );
}

/// Two workers keep a store each; a purge empties both.
#[test]
fn per_worker_stores() {
    let up = Py::start("up", &[]);
    let cfg = config(up.addr.port()).replace("workers = 1", "workers = 2");
    let server = Server::with_config(&cfg, &[]);
    let objects = |server: &Server| -> Vec<u64> {
        let m = server.admin_get("/metrics").text();
        m.lines()
            .filter(|l| l.starts_with("peregrine_cache_objects{"))
            .map(|l| l.rsplit(' ').next().unwrap().parse().unwrap())
            .collect()
    };
    // New connections spread over both workers' listeners.
    let filled = wait_for(Duration::from_secs(10), || {
        for _ in 0..8 {
            get(&server, "/cache/both?cc=max-age%3D60");
        }
        let o = objects(&server);
        o.len() == 2 && o.iter().all(|n| *n == 1)
    });
    assert!(
        filled,
        "each worker stored its copy: {:?}",
        objects(&server)
    );
    let m = server.admin_get("/metrics").text();
    assert!(
        m.contains("peregrine_cache_capacity_bytes{worker=\"1\"} 4194304"),
        "each has half of max_size"
    );
    let r = server.admin_post("/cache/purge?prefix=");
    assert!(
        r.text().contains("\"purged\": 2") && r.text().contains("\"workers\": 2"),
        "{}",
        r.text()
    );
    assert!(wait_for(Duration::from_secs(3), || objects(&server)
        .iter()
        .all(|n| *n == 0)));
}
