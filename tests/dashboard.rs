//! The admin dashboard: loaded in headless Chromium against a live server, its
//! rendered numbers must match `/status`; with an admin token the data
//! endpoints refuse requests without it and the page offers a token form.

mod common;

use std::io::Write;
use std::net::TcpStream;
use std::time::{Duration, Instant};

use common::chromium::{chromium, rendered_dom};
use common::*;
use serde_json::Value;

const TOKEN: &str = "0123456789abcdefXYZ";

/// The text of the element with `id` (which holds text only).
fn text_of<'a>(dom: &'a str, id: &str) -> &'a str {
    let key = format!("id=\"{id}\"");
    let at = dom
        .find(&key)
        .unwrap_or_else(|| panic!("no element with id {id:?} in the rendered page"));
    let open = at + dom[at..].find('>').expect("end of start tag") + 1;
    let close = open + dom[open..].find('<').expect("end of element text");
    &dom[open..close]
}

/// The value of the body's `data-updated` attribute, if set.
fn data_updated(dom: &str) -> Option<&str> {
    let body = &dom[dom.find("<body")?..];
    let tag = &body[..body.find('>')?];
    let rest = &tag[tag.find("data-updated=\"")? + "data-updated=\"".len()..];
    Some(&rest[..rest.find('"')?])
}

fn int(dom: &str, id: &str) -> u64 {
    let t = text_of(dom, id);
    t.parse()
        .unwrap_or_else(|_| panic!("#{id} should hold a plain integer, holds {t:?}"))
}

fn float(dom: &str, id: &str) -> f64 {
    let t = text_of(dom, id);
    t.parse()
        .unwrap_or_else(|_| panic!("#{id} should hold a plain number, holds {t:?}"))
}

/// A GET to the admin listener with extra header lines.
fn admin_request(server: &Server, path: &str, headers: &str) -> Resp {
    let mut s = TcpStream::connect(server.admin.expect("admin listener on")).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    s.write_all(
        format!("GET {path} HTTP/1.1\r\nHost: localhost\r\n{headers}Connection: close\r\n\r\n")
            .as_bytes(),
    )
    .unwrap();
    read_response(&mut s, false).unwrap()
}

fn status_json(server: &Server) -> Value {
    let r = server.admin_get("/status");
    assert_eq!(r.status, 200, "{}", r.text());
    serde_json::from_slice(&r.body).expect("/status is JSON")
}

/// Polls `/status` until `ready` holds (snapshots are published once a second).
fn wait_status(server: &Server, ready: impl Fn(&Value) -> bool) -> Value {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let v = status_json(server);
        if ready(&v) {
            return v;
        }
        assert!(
            Instant::now() < deadline,
            "/status did not reach the expected state: {v:#}"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[test]
fn dashboard_renders_the_status_numbers() {
    chromium();
    let server = Server::start(&["--builtins", "--workers", "2"]);
    for _ in 0..30 {
        assert_eq!(get(&server, "/plaintext").status, 200);
    }
    for _ in 0..5 {
        assert_eq!(get(&server, "/no-such-page").status, 404);
    }
    std::thread::sleep(Duration::from_millis(1500));
    wait_status(&server, |v| {
        v["totals"]["requests"] == 35 && v["totals"]["connections"]["active"] == 0
    });

    let url = format!("http://{}/", server.admin.unwrap());
    let mut dom = rendered_dom(&url);
    if data_updated(&dom).is_none() {
        // One more try, in case the machine was too busy for the first.
        dom = rendered_dom(&url);
    }
    let v = status_json(&server);
    let t = &v["totals"];

    let updated = data_updated(&dom)
        .unwrap_or_else(|| panic!("the page never rendered /status (no data-updated):\n{dom}"));
    let updated: f64 = updated.parse().expect("data-updated is a number");
    let snap = v["snapshot_unix"].as_f64().unwrap();
    // The same instant may print with one more digit in the page (its
    // arithmetic on the number): a microsecond of slack, no more.
    assert!(
        updated > 0.0 && updated <= snap + 1e-6,
        "data-updated {updated} vs snapshot_unix {snap}"
    );

    assert_eq!(int(&dom, "total-requests"), 35);
    assert_eq!(int(&dom, "total-requests"), t["requests"].as_u64().unwrap());
    assert_eq!(int(&dom, "status-2xx"), 30);
    assert_eq!(
        int(&dom, "status-2xx"),
        t["status"]["2xx"].as_u64().unwrap()
    );
    assert_eq!(int(&dom, "status-4xx"), 5);
    assert_eq!(
        int(&dom, "status-4xx"),
        t["status"]["4xx"].as_u64().unwrap()
    );
    assert_eq!(
        int(&dom, "active-connections"),
        t["connections"]["active"].as_u64().unwrap()
    );
    assert_eq!(
        int(&dom, "conn-h2"),
        t["connections"]["http2"].as_u64().unwrap()
    );
    assert_eq!(
        int(&dom, "h2-responses"),
        t["http2_responses"].as_u64().unwrap()
    );
    assert_eq!(int(&dom, "worker-count"), 2);
    assert_eq!(int(&dom, "worker-count"), t["workers"].as_u64().unwrap());
    assert_eq!(int(&dom, "generation"), 1);
    assert_eq!(int(&dom, "generation"), v["generation"].as_u64().unwrap());

    let lat = &t["latency_ms"];
    assert!(lat["count"].as_u64().unwrap() >= 35, "{lat}");
    assert_eq!(float(&dom, "p99"), lat["p99"].as_f64().unwrap());
    assert_eq!(float(&dom, "p50"), lat["p50"].as_f64().unwrap());
    assert_eq!(float(&dom, "max-latency"), lat["max"].as_f64().unwrap());

    let workers = v["workers"].as_array().unwrap();
    assert_eq!(workers.len(), 2);
    let mut sum = 0;
    for w in workers {
        let n = w["worker"].as_u64().unwrap();
        let shown = int(&dom, &format!("worker-{n}-requests"));
        assert_eq!(shown, w["requests"].as_u64().unwrap(), "worker {n}");
        sum += shown;
    }
    assert_eq!(sum, 35);

    // The flat configuration is one site, `default`, which answered all 35.
    assert_eq!(text_of(&dom, "site-0-name"), "default");
    assert_eq!(int(&dom, "site-0-requests"), 35);
    assert_eq!(
        int(&dom, "site-0-requests"),
        v["sites"]["default"]["requests"].as_u64().unwrap()
    );
    assert_eq!(int(&dom, "site-0-4xx"), 5);
    // No upstreams: no upstream table.
    let at = dom.find("id=\"upstreams-card\"").expect("upstream card");
    let tag = &dom[dom[..at].rfind('<').unwrap()..at + dom[at..].find('>').unwrap()];
    assert!(tag.contains("hidden"), "upstream card shown: {tag}");
}

#[test]
fn dashboard_shows_the_upstreams_with_their_health() {
    chromium();
    let up = Server::start(&["--builtins"]);
    let (_dead, dead_addr) = common::refusing_addr();
    let config = format!(
        "[[upstream]]\nname = \"app\"\nservers = [\"{}\", \"{dead_addr}\"]\n\
         [[site]]\nname = \"front\"\nhosts = [\"localhost\"]\ndefault = true\n\
         [[site.route]]\npath = \"/\"\nhandler = \"proxy\"\nupstream = \"app\"\n\
         [[site.route]]\npath = \"/c\"\nhandler = \"respond\"\nbody = \"cached\"\n\
         cache = {{ ttl = {{ any = \"1m\" }} }}\n",
        up.addr
    );
    let server = Server::with_config(&config, &["--workers", "1"]);
    for _ in 0..4 {
        assert_eq!(get(&server, "/plaintext").status, 200);
        assert_eq!(get(&server, "/c").status, 200);
    }
    // The dead server got one request (then sent on) and is out.
    let v = wait_status(&server, |v| {
        let s = &v["upstreams"][0]["servers"];
        s[0]["requests"] == 4 && s[1]["health"] == "down" && v["cache"]["hits"] == 3
    });
    let dom = rendered_dom(&format!("http://{}/", server.admin.unwrap()));
    assert!(data_updated(&dom).is_some(), "never rendered /status");
    assert_eq!(text_of(&dom, "upstream-0-name"), "app");
    let servers = v["upstreams"][0]["servers"].as_array().unwrap();
    for (j, s) in servers.iter().enumerate() {
        let id = |k: &str| format!("upstream-0-{j}-{k}");
        assert_eq!(
            text_of(&dom, &id("address")),
            s["address"].as_str().unwrap()
        );
        assert_eq!(text_of(&dom, &id("health")), s["health"].as_str().unwrap());
        for k in ["requests", "failed"] {
            assert_eq!(int(&dom, &id(k)), s[k].as_u64().unwrap(), "{}", id(k));
        }
        assert_eq!(
            int(&dom, &id("2xx")),
            s["responses"]["2xx"].as_u64().unwrap()
        );
        assert_eq!(
            int(&dom, &id("open")),
            s["connections"]["open"].as_u64().unwrap()
        );
    }
    // One miss, then three hits.
    assert_eq!(v["cache"]["hit_ratio"], 0.75);
    assert_eq!(text_of(&dom, "cache-hit-ratio"), "75.0%");
    assert_eq!(int(&dom, "cache-hits"), 3);
    assert_eq!(int(&dom, "cache-misses"), 1);
    assert_eq!(text_of(&dom, "upstream-0-0-health"), "up");
    assert_eq!(int(&dom, "upstream-0-0-2xx"), 4);
    assert_eq!(text_of(&dom, "upstream-0-1-health"), "down");
    assert_eq!(int(&dom, "upstream-0-1-failed"), 1);
}

#[test]
fn token_protects_the_data_but_not_the_page() {
    let server = Server::with_config(
        &format!("builtins = true\n[admin]\ntoken = \"{TOKEN}\"\n"),
        &[],
    );
    let r = server.admin_get("/status");
    assert_eq!(r.status, 401, "{}", r.text());
    let r = admin_request(
        &server,
        "/status",
        "Authorization: Bearer wrong-token-0123456\r\n",
    );
    assert_eq!(r.status, 401);
    let r = admin_request(
        &server,
        "/status",
        &format!("Authorization: Bearer {TOKEN}\r\n"),
    );
    assert_eq!(r.status, 200, "{}", r.text());
    let v: Value = serde_json::from_slice(&r.body).unwrap();
    assert!(v["totals"]["requests"].is_u64(), "{v:#}");

    let page = server.admin_get("/");
    assert_eq!(page.status, 200);
    assert!(
        page.header("content-type")
            .unwrap()
            .starts_with("text/html"),
        "{}",
        page.head
    );
    let html = page.text();
    assert!(html.contains("id=\"token-form\""), "no token form");
    assert!(html.contains("type=\"password\""), "no token field");
    assert!(html.contains("sessionStorage"), "token not kept per tab");
    assert!(
        html.contains("\"Bearer \""),
        "token not sent as a bearer token"
    );
    // Self-contained: nothing fetched from elsewhere.
    for outside in ["http://", "https://", "//cdn", "<link", "src=\""] {
        assert!(!html.contains(outside), "page refers to {outside:?}");
    }
}

#[test]
fn dashboard_asks_for_the_token_in_chromium() {
    chromium();
    let server = Server::with_config(
        &format!("builtins = true\n[admin]\ntoken = \"{TOKEN}\"\n"),
        &[],
    );
    let dom = rendered_dom(&format!("http://{}/", server.admin.unwrap()));
    let at = dom
        .find("id=\"token-form\"")
        .expect("token form in the page");
    let start = dom[..at].rfind('<').unwrap();
    let tag = &dom[start..at + dom[at..].find('>').unwrap()];
    assert!(!tag.contains("hidden"), "token form still hidden: {tag}");
    assert!(
        data_updated(&dom).is_none(),
        "rendered data without a token"
    );
    assert_eq!(text_of(&dom, "total-requests"), "—");
}

/// Sends `req` to the admin listener and reads one response; the connection
/// is returned for looking at what follows.
fn admin_raw(server: &Server, req: &str) -> (Resp, TcpStream) {
    let mut s = TcpStream::connect(server.admin.expect("admin listener on")).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    s.write_all(req.as_bytes()).unwrap();
    let r = read_response(&mut s, false).unwrap();
    (r, s)
}

#[test]
fn unauthorised_admin_request_is_answered_401_and_closed() {
    let server = Server::with_config(&format!("[admin]\ntoken = \"{TOKEN}\"\n"), &[]);
    // Keep-alive asked for; the refusal closes anyway.
    let (r, mut s) = admin_raw(
        &server,
        "GET /metrics HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer wrong\r\n\r\n",
    );
    assert_eq!(r.status, 401, "{}", r.text());
    assert_eq!(
        r.header("www-authenticate").as_deref(),
        Some("Bearer realm=\"peregrine-admin\"")
    );
    assert_eq!(
        r.header("connection").as_deref(),
        Some("close"),
        "{}",
        r.head
    );
    assert!(closed(&mut s), "connection left open after 401");
    // With the token the connection stays open for the next request.
    let ok = format!(
        "GET /metrics HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer {TOKEN}\r\n\r\n"
    );
    let (r, mut s) = admin_raw(&server, &ok);
    assert_eq!(r.status, 200);
    s.write_all(ok.as_bytes()).unwrap();
    assert_eq!(read_response(&mut s, false).unwrap().status, 200);
}

#[test]
fn bearer_scheme_is_case_insensitive() {
    let server = Server::with_config(&format!("[admin]\ntoken = \"{TOKEN}\"\n"), &[]);
    for (auth, want) in [
        (format!("bearer {TOKEN}"), 200),
        (format!("BEARER {TOKEN}"), 200),
        (format!("BeArEr   {TOKEN}"), 200),
        (format!("Basic {TOKEN}"), 401),
        (format!("Bearer{TOKEN}"), 401),
        (format!("bearer {TOKEN}x"), 401),
    ] {
        let r = admin_request(&server, "/status", &format!("Authorization: {auth}\r\n"));
        assert_eq!(r.status, want, "{auth:?}: {}", r.text());
    }
}

#[test]
fn admin_answers_only_its_own_hosts() {
    let server = Server::with_config("[admin]\nhosts = [\"ops.example.com\"]\n", &[]);
    let port = server.admin.unwrap().port();
    for host in [
        "evil.example".to_string(),
        format!("evil.example:{port}"),
        format!("127.0.0.1.evil.example:{port}"),
        "sub.ops.example.com".to_string(),
    ] {
        for path in ["/status", "/", "/nope"] {
            let (r, mut s) = admin_raw(
                &server,
                &format!("GET {path} HTTP/1.1\r\nHost: {host}\r\n\r\n"),
            );
            assert_eq!(r.status, 421, "{host} {path}: {}", r.text());
            assert!(r.text().contains("admin.hosts"), "{}", r.text());
            assert!(closed(&mut s), "connection left open after 421");
        }
    }
    // The absolute-form target names the host, whatever Host says.
    let (r, _) = admin_raw(
        &server,
        "GET http://evil.example/status HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n",
    );
    assert_eq!(r.status, 421);
    for host in [
        format!("127.0.0.1:{port}"),
        "127.0.0.1".to_string(),
        format!("[::1]:{port}"),
        format!("localhost:{port}"),
        "ops.example.com".to_string(),
        format!("OPS.Example.COM:{port}"),
    ] {
        let (r, _) = admin_raw(
            &server,
            &format!("GET /status HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n"),
        );
        assert_eq!(r.status, 200, "{host}: {}", r.text());
    }
    // HTTP/1.0 may leave Host out (browsers never do).
    let (r, _) = admin_raw(&server, "GET /status HTTP/1.0\r\n\r\n");
    assert_eq!(r.status, 200, "{}", r.text());
}

#[test]
fn idle_connections_cannot_lock_the_operator_out() {
    let server = Server::with_config(&format!("[admin]\ntoken = \"{TOKEN}\"\n"), &[]);
    let admin = server.admin.expect("admin listener on");
    // 300 connections that say nothing, past the admin listener's 256.
    let silent: Vec<TcpStream> = (0..300)
        .map(|_| TcpStream::connect(admin).unwrap())
        .collect();
    // Let the server accept them all.
    std::thread::sleep(Duration::from_millis(300));
    // The operator still gets in: the longest-idle connection makes room.
    let r = admin_request(
        &server,
        "/status",
        &format!("Authorization: Bearer {TOKEN}\r\n"),
    );
    assert_eq!(r.status, 200, "{}", r.text());
    // The oldest silent connections were the ones closed.
    let mut first = silent.into_iter().next().unwrap();
    assert!(
        closed(&mut first),
        "the longest-idle connection is still open"
    );
}
