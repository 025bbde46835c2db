//! Request filtering, IP restrictions and limits end to end: one server with
//! two workers, asked over real sockets (raw HTTP/1.1 from chosen loopback
//! source addresses, IPv6 on `[::1]`, HTTP/2 through curl), checking the
//! status, the access log's sub-status and the metrics of every rule kind.

mod common;
use common::*;
use std::io::{Read, Write};
use std::net::SocketAddr;
use std::time::{Duration, Instant};

struct Setup {
    server: Server,
    /// The `[::1]` listener.
    v6: SocketAddr,
}

fn setup() -> Setup {
    let dir = tempdir("security");
    let root = dir.join("root");
    for (rel, body) in [
        ("index.html", "home\n"),
        ("a.bak", "backup\n"),
        (".git/config", "[core]\n"),
        ("bin/tool", "tool\n"),
        ("x.php", "php\n"),
        ("page.html", "page\n"),
        (".well-known/acme-challenge/tok..en", "token\n"),
    ] {
        let p = root.join(rel);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(p, body).unwrap();
    }
    let toml = format!(
        r#"
workers = 2
[access_log]
format = "json"

[server.client_ip]
trusted_proxies = ["127.0.0.2"]
headers = ["X-Forwarded-For"]

[[limit.zone]]
name = "by_key"
key = "header:X-Key"
size = 1000

[[limit.zone]]
name = "per_ip"
key = "client_ip"

[[limit.zone]]
name = "tiny"
key = "header:X-Tiny"
size = 8

[[site]]
name = "main"
default = true
root = "{root}"

[site.request_filtering]
file_extensions = {{ allow_unlisted = true, deny = [".bak"] }}
verbs = {{ allow_unlisted = true, deny = ["TRACE", "DELETE"] }}
hidden_segments = [".git", "bin"]
deny_url_sequences = ["..", "//"]
deny_query_string_sequences = ["<script"]
always_allowed_urls = ["/.well-known/acme-challenge/"]
allow_high_bit_characters = false
request_limits = {{ max_allowed_content_length = 1000, max_url = 200, max_query_string = 100, max_url_segments = 8, header_limits = {{ "x-small" = 10, "x-never" = 0 }} }}

[[site.request_filtering.rule]]
name = "sqli"
scan_query_string = true
scan_headers = ["User-Agent"]
applies_to = [".php"]
deny_strings = ["union select"]

[site.ip_security]
deny_action = "forbidden"
rules = [{{ allow = "203.0.113.7" }}, {{ deny = "203.0.113.0/24" }}, {{ deny = "198.51.100.0/24" }}]

[[site.route]]
path = "/limited"
handler = "respond"
body = "ok\n"
[[site.route.limit_req]]
zone = "by_key"
rate = "1r/s"
burst = 2
nodelay = true
status = 429

[[site.route]]
path = "/tiny"
handler = "respond"
body = "ok\n"
[[site.route.limit_req]]
zone = "tiny"
rate = "1r/m"

[[site.route]]
path = "/dry"
handler = "respond"
body = "ok\n"
[[site.route.limit_req]]
zone = "by_key"
rate = "1r/m"
dry_run = true

[[site.route]]
path = "/paced"
handler = "respond"
body = "ok\n"
[[site.route.limit_req]]
zone = "by_key"
rate = "4r/s"
burst = 5

[[site.route]]
path = "/c"
handler = "builtins"
[[site.route.limit_conn]]
zone = "per_ip"
max = 1

[[site.route]]
path = "/dyn"
handler = "respond"
body = "ok\n"
[site.route.dynamic_ip_security]
deny_by_rate = {{ max_requests = 3, interval = "600ms" }}
ban_for = "1s"
deny_action = "not_found"

[[site.route]]
path = "/abort"
handler = "respond"
[site.route.ip_security]
deny_action = "abort"
rules = [{{ deny = "127.0.0.0/8" }}]

[[site.route]]
path = "/members"
handler = "respond"
[site.route.ip_security]
allow_unlisted = false
deny_action = "unauthorized"
rules = [{{ allow = "::1" }}]

[[site.route]]
path = "/open"
handler = "files"
root = "{root}"
[site.route.request_filtering]
verbs = {{ allow_unlisted = true }}
"#,
        root = root.display()
    );
    let server = Server::with_config(&toml, &["--listen", "[::1]:0"]);
    let v6 = *server
        .addrs
        .iter()
        .find(|a| a.is_ipv6())
        .expect("[::1] listener");
    Setup { server, v6 }
}

thread_local! {
    /// The User-Agent of this thread's last request, which finds its log line.
    static LAST_UA: std::cell::RefCell<String> = const { std::cell::RefCell::new(String::new()) };
}

/// A User-Agent no other request has.
fn mark() -> String {
    static N: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    let ua = format!("t{}", N.fetch_add(1, std::sync::atomic::Ordering::Relaxed));
    LAST_UA.with(|l| *l.borrow_mut() = ua.clone());
    ua
}

/// One request from `from` with `extra` header lines; the response. It is
/// marked by a User-Agent of its own unless `extra` has one.
fn ask_from(from: &str, to: SocketAddr, method: &str, target: &str, extra: &str) -> Resp {
    let mut s = connect_from(from, to);
    let ua = match extra.lines().find_map(|l| l.strip_prefix("User-Agent: ")) {
        Some(v) => {
            LAST_UA.with(|l| *l.borrow_mut() = v.trim().to_string());
            String::new()
        }
        None => format!("User-Agent: {}\r\n", mark()),
    };
    let req =
        format!("{method} {target} HTTP/1.1\r\nHost: t\r\nConnection: close\r\n{ua}{extra}\r\n");
    s.write_all(req.as_bytes()).unwrap();
    read_response(&mut s, method == "HEAD").unwrap()
}

fn ask(t: &Setup, method: &str, target: &str, extra: &str) -> Resp {
    ask_from("127.0.0.1", t.server.addr, method, target, extra)
}

/// Runs `f` (one request for `target`) and returns the access-log line of
/// its request (found by its User-Agent: workers flush their lines in
/// their own time, so order says nothing).
fn logged<R>(t: &Setup, target: &str, f: impl FnOnce() -> R) -> (R, serde_json::Value) {
    let r = f();
    let ua = LAST_UA.with(|l| l.borrow().clone());
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let found = t.server.stdout_text().lines().find_map(|l| {
            let v: serde_json::Value = serde_json::from_str(l).ok()?;
            (v["target"] == target && v["user_agent"] == ua.as_str()).then_some(v)
        });
        if let Some(v) = found {
            return (r, v);
        }
        assert!(Instant::now() < deadline, "no log line for {target} ({ua})");
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Each filter rule answers 404 with IIS's sub-status in the log.
fn filter_rules_and_substatus(t: &Setup) {
    let cases: &[(&str, &str, &str, u16, &str, &str)] = &[
        ("GET", "/a.bak", "", 404, "404.7", "extension"),
        ("GET", "/A.BAK", "", 404, "404.7", "extension"),
        ("TRACE", "/index.html", "", 404, "404.6", "verb"),
        ("DELETE", "/index.html", "", 404, "404.6", "verb"),
        ("GET", "/.git/config", "", 404, "404.8", "hidden_segment"),
        ("GET", "/BIN/tool", "", 404, "404.8", "hidden_segment"),
        ("GET", "/x/..%2fpage.html", "", 404, "404.5", "url_sequence"),
        ("GET", "/x//page.html", "", 404, "404.5", "url_sequence"),
        (
            "GET",
            "/page.html?q=%3Cscript%3E",
            "",
            404,
            "404.18",
            "query_sequence",
        ),
        (
            "GET",
            "/x.php?id=1%20UNION%20SELECT%202",
            "",
            404,
            "404.19",
            "rule",
        ),
        (
            "GET",
            "/x.php",
            "User-Agent: x union select y\r\n",
            404,
            "404.19",
            "rule",
        ),
        (
            "GET",
            "/page.html%25252e",
            "",
            404,
            "404.11",
            "double_escape",
        ),
        ("GET", "/caf%C3%A9.html", "", 404, "404.12", "high_bit"),
        (
            "GET",
            "/a/b/c/d/e/f/g/h/i/j",
            "",
            404,
            "404.20",
            "too_many_segments",
        ),
        (
            "GET",
            "/page.html",
            "X-Small: 12345678901\r\n",
            431,
            "431",
            "header",
        ),
        ("GET", "/page.html", "X-Never: 1\r\n", 431, "431", "header"),
        (
            "POST",
            "/page.html",
            "Content-Length: 5000\r\n",
            413,
            "413.1",
            "content_length",
        ),
    ];
    for &(method, target, extra, status, code, by) in cases {
        let (r, l) = logged(t, target, || ask(t, method, target, extra));
        assert_eq!(r.status, status, "{method} {target}: {}", r.text());
        assert_eq!(l["refused"], code, "{method} {target}: {l}");
        assert_eq!(l["refused_by"], by, "{method} {target}: {l}");
    }
    let long = format!("/{}", "a".repeat(250));
    let (r, l) = logged(t, &long, || ask(t, "GET", &long, ""));
    assert_eq!((r.status, l["refused"].as_str()), (404, Some("404.14")));
    let q = format!("/page.html?{}", "q".repeat(150));
    let (r, l) = logged(t, &q, || ask(t, "GET", &q, ""));
    assert_eq!((r.status, l["refused"].as_str()), (404, Some("404.15")));
    // Allowed: the same names elsewhere, and always-allowed URLs.
    assert_eq!(ask(t, "GET", "/page.html", "").status, 200);
    assert_eq!(ask(t, "GET", "/x.php?id=1", "").status, 200);
    let acme = ask(t, "GET", "/.well-known/acme-challenge/tok..en", "");
    assert_eq!(acme.status, 200, "{}", acme.text());
    // A route's filtering replaces the site's: DELETE is not denied there
    // (its files handler answers 405 itself).
    assert_eq!(ask(t, "DELETE", "/open/page.html", "").status, 405);
    assert_eq!(ask(t, "GET", "/open/a.bak", "").status, 200);
}

/// A chunked body that grows past max_allowed_content_length is cut.
fn chunked_body_past_the_limit_is_cut(t: &Setup) {
    let mut s = t.server.connect();
    s.write_all(b"POST /c/echo HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n")
        .unwrap();
    let piece = format!("{:x}\r\n{}\r\n", 600, "x".repeat(600));
    s.write_all(piece.as_bytes()).unwrap();
    let _ = s.write_all(piece.as_bytes());
    let mut got = Vec::new();
    let _ = s.read_to_end(&mut got);
    let text = String::from_utf8_lossy(&got);
    assert!(!text.contains("\r\n0\r\n\r\n"), "a complete echo: {text}");
}

/// Addresses: rules by the client IP; a trusted proxy's X-Forwarded-For
/// names the client, an untrusted peer's is ignored.
fn ip_rules_and_client_ip(t: &Setup) {
    let a = t.server.addr;
    let xff = |ip: &str| format!("X-Forwarded-For: {ip}\r\n");
    // From the trusted proxy 127.0.0.2: the header decides.
    let (r, l) = logged(t, "/page.html", || {
        ask_from("127.0.0.2", a, "GET", "/page.html", &xff("203.0.113.9"))
    });
    assert_eq!(r.status, 403);
    assert_eq!(l["remote_addr"], "203.0.113.9");
    assert_eq!(l["refused_by"], "ip_security");
    // First match wins: .7 is allowed before the /24 is denied.
    let r = ask_from("127.0.0.2", a, "GET", "/page.html", &xff("203.0.113.7"));
    assert_eq!(r.status, 200);
    // Right to left, skipping trusted hops.
    let chain = xff("198.51.100.1, 10.1.1.1, 127.0.0.2");
    let (r, l) = logged(t, "/index.html", || {
        ask_from("127.0.0.2", a, "GET", "/index.html", &chain)
    });
    assert_eq!(r.status, 200, "10.1.1.1 is the client, not denied");
    assert_eq!(l["remote_addr"], "10.1.1.1");
    // Spoofed from an untrusted peer: ignored.
    let (r, l) = logged(t, "/page.html?spoof", || {
        ask_from(
            "127.0.0.1",
            a,
            "GET",
            "/page.html?spoof",
            &xff("203.0.113.9"),
        )
    });
    assert_eq!(r.status, 200);
    assert_eq!(l["remote_addr"], "127.0.0.1");
    // Deny actions: abort closes without an answer (logged as 444).
    let (buf, l) = logged(t, "/abort", || {
        let mut s = connect_from("127.0.0.1", a);
        let req = format!(
            "GET /abort HTTP/1.1\r\nHost: t\r\nUser-Agent: {}\r\n\r\n",
            mark()
        );
        s.write_all(req.as_bytes()).unwrap();
        let mut buf = Vec::new();
        let _ = s.read_to_end(&mut buf);
        buf
    });
    assert!(buf.is_empty(), "{:?}", String::from_utf8_lossy(&buf));
    assert_eq!(l["status"], 444);
    // unauthorized; IPv6 rules on [::1].
    assert_eq!(ask(t, "GET", "/members", "").status, 401);
    assert_eq!(ask_from("::1", t.v6, "GET", "/members", "").status, 200);
    assert_eq!(ask_from("::1", t.v6, "GET", "/page.html", "").status, 200);
}

/// limit_req: burst then refusals with Retry-After; dry run only logs;
/// without nodelay the excess waits.
fn rate_limits(t: &Setup) {
    let key = "X-Key: k1\r\n";
    let statuses: Vec<u16> = (0..6)
        .map(|_| ask(t, "GET", "/limited", key).status)
        .collect();
    assert_eq!(&statuses[..3], &[200, 200, 200], "{statuses:?}");
    assert!(statuses[3..].iter().all(|s| *s == 429), "{statuses:?}");
    let (r, l) = logged(t, "/limited", || ask(t, "GET", "/limited", key));
    let retry: u64 = r
        .header("retry-after")
        .expect("Retry-After")
        .parse()
        .unwrap();
    assert!((1..=2).contains(&retry), "{retry}");
    assert_eq!(l["refused_by"], "limit_req");
    // Another key has its own budget; no key, no limit.
    assert_eq!(ask(t, "GET", "/limited", "X-Key: k2\r\n").status, 200);
    assert_eq!(ask(t, "GET", "/limited", "").status, 200);
    // A full zone evicts its least recently used key to make room: the
    // first key's budget is new again once twenty others have passed.
    for i in 0..20 {
        let h = format!("X-Tiny: t{i}\r\n");
        assert_eq!(ask(t, "GET", "/tiny", &h).status, 200);
    }
    assert_eq!(ask(t, "GET", "/tiny", "X-Tiny: t19\r\n").status, 503);
    assert_eq!(ask(t, "GET", "/tiny", "X-Tiny: t0\r\n").status, 200);
    // Dry run.
    for _ in 0..2 {
        assert_eq!(ask(t, "GET", "/dry", "X-Key: d\r\n").status, 200);
    }
    let (r, l) = logged(t, "/dry", || ask(t, "GET", "/dry", "X-Key: d\r\n"));
    assert_eq!(r.status, 200);
    assert_eq!(l["dry_run"], true, "{l}");
    assert_eq!(l["status"], 200);
    // Delayed: 4 r/s with burst 5, six at once: the last ones wait.
    let started = Instant::now();
    let handles: Vec<_> = (0..6)
        .map(|_| {
            let a = t.server.addr;
            std::thread::spawn(move || {
                let r = ask_from("127.0.0.1", a, "GET", "/paced", "X-Key: p\r\n");
                (r.status, started.elapsed())
            })
        })
        .collect();
    let mut took: Vec<(u16, Duration)> = handles.into_iter().map(|h| h.join().unwrap()).collect();
    took.sort_by_key(|(_, d)| *d);
    assert!(took.iter().all(|(s, _)| *s == 200), "{took:?}");
    // 0, 250, 500 … 1250 ms.
    assert!(took[0].1 < Duration::from_millis(200), "{took:?}");
    assert!(took[5].1 >= Duration::from_millis(1200), "{took:?}");
    assert!(took[5].1 < Duration::from_secs(5), "{took:?}");
}

/// limit_conn: one request in progress per client; the second is refused
/// until the first ends.
fn concurrency_limit(t: &Setup) {
    let mut first = t.server.connect();
    first
        .write_all(b"POST /c/echo HTTP/1.1\r\nHost: t\r\nContent-Length: 10\r\n\r\n12345")
        .unwrap();
    std::thread::sleep(Duration::from_millis(200));
    let (r, l) = logged(t, "/c/plaintext", || ask(t, "GET", "/c/plaintext", ""));
    assert_eq!(r.status, 503);
    assert_eq!(l["refused_by"], "limit_conn");
    first.write_all(b"67890").unwrap();
    let r = read_response(&mut first, false).unwrap();
    assert_eq!(r.text(), "1234567890");
    drop(first);
    std::thread::sleep(Duration::from_millis(100));
    assert_eq!(ask(t, "GET", "/c/plaintext", "").status, 200);
}

/// dynamic_ip_security: past the rate the client is banned, then let in
/// again once the ban ends.
fn dynamic_ban_and_expiry(t: &Setup) {
    let from = "127.0.0.9";
    let a = t.server.addr;
    let s: Vec<u16> = (0..5)
        .map(|_| ask_from(from, a, "GET", "/dyn", "").status)
        .collect();
    assert_eq!(s, vec![200, 200, 200, 404, 404]);
    assert_eq!(ask_from("127.0.0.10", a, "GET", "/dyn", "").status, 200);
    std::thread::sleep(Duration::from_millis(1300));
    assert_eq!(ask_from(from, a, "GET", "/dyn", "").status, 200);
}

/// HTTP/2 requests are judged the same way.
fn over_http2(t: &Setup) {
    let url = format!("http://{}/a.bak", t.server.addr);
    let (_, code) = curl(&["--http2-prior-knowledge", &url]);
    assert_eq!(code, "404");
    let url = format!("http://{}/limited", t.server.addr);
    let mut codes = Vec::new();
    for _ in 0..5 {
        let (_, c) = curl(&["--http2-prior-knowledge", "-H", "X-Key: h2", &url]);
        codes.push(c);
    }
    assert_eq!(&codes[..3], &["200", "200", "200"], "{codes:?}");
    assert!(codes[3..].iter().all(|c| c == "429"), "{codes:?}");
}

/// The refusals are counted in /metrics and /status.
fn metrics(t: &Setup) {
    // Workers publish their counts about once a second.
    std::thread::sleep(Duration::from_millis(1200));
    let m = t.server.admin_get("/metrics").text();
    promtool_check(&m);
    let value = |line: &str| -> u64 {
        m.lines()
            .find(|l| l.starts_with(line))
            .unwrap_or_else(|| panic!("no {line} in {m}"))
            .rsplit(' ')
            .next()
            .unwrap()
            .parse()
            .unwrap()
    };
    assert!(value("peregrine_filtered_requests_total{reason=\"extension\"}") >= 2);
    assert!(value("peregrine_filtered_requests_total{reason=\"rule\"}") >= 2);
    assert!(value("peregrine_ip_denied_total{kind=\"ip_security\",dry_run=\"false\"}") >= 1);
    assert!(
        value(
            "peregrine_limit_refusals_total{zone=\"by_key\",kind=\"limit_req\",dry_run=\"false\"}"
        ) >= 3
    );
    assert!(
        value(
            "peregrine_limit_refusals_total{zone=\"by_key\",kind=\"limit_req\",dry_run=\"true\"}"
        ) >= 2
    );
    assert!(
        value(
            "peregrine_limit_refusals_total{zone=\"per_ip\",kind=\"limit_conn\",dry_run=\"false\"}"
        ) >= 1
    );
    // The tiny zone's table: eight slots, all taken, thirteen evictions (or
    // more: other checks share the server, not this zone).
    assert_eq!(value("peregrine_limit_zone_capacity{zone=\"tiny\"}"), 8);
    assert_eq!(value("peregrine_limit_zone_keys{zone=\"tiny\"}"), 8);
    assert_eq!(
        value("peregrine_limit_zone_evictions_total{zone=\"tiny\"}"),
        13
    );
    assert_eq!(
        value("peregrine_limit_zone_untracked_total{zone=\"tiny\"}"),
        0
    );
    assert!(value("peregrine_limit_zone_keys{zone=\"per_ip\"}") >= 1);
    let s: serde_json::Value = serde_json::from_slice(&t.server.admin_get("/status").body).unwrap();
    assert_eq!(
        s["guards"]["zones"]["tiny"]["evictions"], 13,
        "{}",
        s["guards"]
    );
    assert!(
        s["guards"]["filtered_total"].as_u64().unwrap() >= 15,
        "{}",
        s["guards"]
    );
    assert!(
        s["guards"]["banned"].as_u64().unwrap() >= 2,
        "{}",
        s["guards"]
    );
}

#[test]
fn filtering_ip_restrictions_and_limits() {
    let t = setup();
    run_checks(
        &t,
        &[
            ("filter rules and sub-status", filter_rules_and_substatus),
            (
                "chunked body past the limit is cut",
                chunked_body_past_the_limit_is_cut,
            ),
            ("ip rules and client ip", ip_rules_and_client_ip),
            ("rate limits", rate_limits),
            ("concurrency limit", concurrency_limit),
            ("dynamic ban and expiry", dynamic_ban_and_expiry),
            ("over http2", over_http2),
            ("metrics", metrics),
        ],
    );
}
