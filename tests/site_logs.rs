//! Per-site access logs and per-site figures, end to end: one server with
//! four sites (one with its own JSON log, one on the global log and the
//! default, one not logged, one with its own combined log in a
//! subdirectory), asked over real sockets; its files are rotated with
//! SIGUSR1, a reload gives the unlogged site a file of its own, and it is
//! stopped under load; every line must be in the file
//! of its site. `/metrics` (checked with promtool) and `/status` count each
//! site's responses.

mod common;
use common::*;
use std::collections::HashMap;
use std::io::Write;
use std::net::{SocketAddr, TcpStream};
use std::path::Path;

use std::time::Duration;

const CONFIG: &str = r#"workers = 2
[access_log]
path = "global.log"
format = "json"

[[site]]
name = "shop"
hosts = ["shop.test"]
access_log = { path = "shop.log", format = "json" }

[[site.route]]
path = "/missing"
handler = "respond"
status = 404

[[site.route]]
path = "/"
handler = "respond"
body = "shop\n"

[[site]]
name = "blog"
hosts = ["blog.test"]
default = true

[[site.route]]
path = "/"
handler = "respond"
body = "blog\n"

[[site]]
name = "quiet"
hosts = ["quiet.test"]
access_log = "off"

[[site.route]]
path = "/"
handler = "respond"
body = "quiet\n"

[[site]]
name = "api"
hosts = ["api.test"]
access_log = { path = "logs/api.log" }

[[site.route]]
path = "/"
handler = "respond"
status = 201
body = "api\n"
"#;

/// `n` requests for `target` with `Host: host` on one connection; each
/// answer must have `status`.
fn send(addr: SocketAddr, host: &str, target: &str, n: usize, status: u16) {
    let mut c = TcpStream::connect(addr).unwrap();
    c.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    for _ in 0..n {
        c.write_all(format!("GET {target} HTTP/1.1\r\nHost: {host}\r\n\r\n").as_bytes())
            .unwrap();
        assert_eq!(read_response(&mut c, false).unwrap().status, status);
    }
}

fn lines(p: &Path) -> Vec<String> {
    std::fs::read_to_string(p)
        .unwrap_or_else(|e| panic!("{}: {e}", p.display()))
        .lines()
        .map(String::from)
        .collect()
}

fn json(line: &str) -> serde_json::Value {
    serde_json::from_str(line).unwrap_or_else(|e| panic!("{e}: {line}"))
}

/// How many JSON lines have each `host` (`-`: none, a refusal).
fn by_host(lines: &[String]) -> HashMap<String, usize> {
    let mut m = HashMap::new();
    for l in lines {
        let v = json(l);
        let h = v["host"].as_str().unwrap_or("-").to_string();
        *m.entry(h).or_insert(0) += 1;
    }
    m
}

fn metric(text: &str, series: &str) -> f64 {
    text.lines()
        .find(|l| l.starts_with(series))
        .unwrap_or_else(|| panic!("no {series} in\n{text}"))
        .rsplit(' ')
        .next()
        .unwrap()
        .parse()
        .unwrap()
}

fn check_metrics(s: &Server) {
    let text = s.admin_get("/metrics").text();
    let site = |name: &str, code: &str| {
        metric(
            &text,
            &format!("peregrine_site_requests_total{{site=\"{name}\",code=\"{code}\"}} "),
        )
    };
    assert_eq!(site("shop", "2xx"), 5.0);
    assert_eq!(site("shop", "4xx"), 1.0);
    assert_eq!(site("blog", "2xx"), 5.0);
    assert_eq!(site("quiet", "2xx"), 4.0);
    assert_eq!(site("api", "2xx"), 3.0);
    assert_eq!(site("api", "5xx"), 0.0);
    // The refusal is in the totals only.
    let total: f64 = (0..2)
        .map(|w| {
            metric(
                &text,
                &format!("peregrine_http_requests_total{{worker=\"{w}\",code=\"4xx\"}} "),
            )
        })
        .sum();
    assert_eq!(total, 2.0);
    promtool_check(&text);
}

fn check_status(s: &Server) {
    let v: serde_json::Value = serde_json::from_slice(&s.admin_get("/status").body).unwrap();
    let sites = &v["sites"];
    assert_eq!(sites.as_object().unwrap().len(), 4, "{sites}");
    assert_eq!(sites["shop"]["requests"], 6);
    assert_eq!(sites["shop"]["status"]["4xx"], 1);
    assert_eq!(sites["blog"]["requests"], 5);
    assert_eq!(sites["quiet"]["requests"], 4);
    assert_eq!(sites["api"]["requests"], 3);
    assert_eq!(sites["api"]["status"]["2xx"], 3);
    assert_eq!(v["totals"]["requests"], 19);
}

#[test]
fn each_site_logs_to_its_file_and_is_counted_under_its_name() {
    let dir = tempdir("site-logs");
    std::fs::create_dir(dir.join("logs")).unwrap();
    let cfg = dir.join("p.toml");
    std::fs::write(&cfg, CONFIG).unwrap();
    let mut s = Server::start(&["--config", cfg.to_str().unwrap()]);
    let a = s.addr;
    send(a, "shop.test", "/cart", 5, 200);
    send(a, "shop.test", "/missing", 1, 404);
    send(a, "blog.test", "/post", 3, 200);
    // No site names this host: the default site (blog) answers.
    send(a, "elsewhere.test", "/post", 2, 200);
    send(a, "quiet.test", "/hush", 4, 200);
    send(a, "api.test", "/v1", 3, 201);
    // Refused before any site is chosen: the global log.
    assert_eq!(exchange(&s, b"GET / HTTP/1.1\r\n\r\n").status, 400);
    std::thread::sleep(Duration::from_millis(1300));
    check_metrics(&s);
    check_status(&s);

    // Rotate the shop's file, then ask for a reopen.
    let (shop, shop_old) = (dir.join("shop.log"), dir.join("shop.log.1"));
    std::fs::rename(&shop, &shop_old).unwrap();
    s.signal("USR1");
    std::thread::sleep(Duration::from_millis(300));

    // A reload gives the quiet site a log of its own: its lines from now on
    // land there.
    let quiet = dir.join("quiet.log");
    let logged = CONFIG.replace(
        "access_log = \"off\"",
        "access_log = { path = \"quiet.log\", format = \"json\" }",
    );
    std::fs::write(&cfg, logged).unwrap();
    s.signal("HUP");
    let mut reloaded = false;
    for _ in 0..100 {
        if s.stderr_text()
            .contains("reloaded the configuration: generation 2")
        {
            reloaded = true;
            break;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    assert!(reloaded, "{}", s.stderr_text());

    // Load on three sites, then an immediate graceful stop: every line lands.
    let mut clients = Vec::new();
    for (i, host) in ["shop.test", "blog.test", "api.test", "quiet.test"]
        .iter()
        .enumerate()
    {
        let status = if i == 2 { 201 } else { 200 };
        clients.push(std::thread::spawn(move || {
            send(a, host, "/load", 300, status)
        }));
    }
    for c in clients {
        c.join().unwrap();
    }
    s.signal("TERM");
    assert_eq!(s.wait_exit(Duration::from_secs(10)), Some(0));

    let before = lines(&shop_old);
    assert_eq!(before.len(), 6, "{before:?}");
    assert_eq!(by_host(&before), HashMap::from([("shop.test".into(), 6)]));
    assert_eq!(
        before
            .iter()
            .filter(|l| l.contains("\"status\":404"))
            .count(),
        1
    );
    let after = lines(&shop);
    assert_eq!(by_host(&after), HashMap::from([("shop.test".into(), 300)]));
    for l in &after {
        assert_eq!(json(l)["target"], "/load");
    }

    let global = lines(&dir.join("global.log"));
    assert_eq!(
        by_host(&global),
        HashMap::from([
            ("blog.test".into(), 303),
            ("elsewhere.test".into(), 2),
            ("-".into(), 1),
        ])
    );
    assert!(
        global
            .iter()
            .any(|l| json(l)["error"] == "missing host header")
    );

    // Combined format, its own file in a subdirectory.
    let api = lines(&dir.join("logs/api.log"));
    assert_eq!(api.len(), 303, "{:?}", &api[..3.min(api.len())]);
    assert!(
        api.iter().all(|l| l.contains("\" 201 4 \"-\" \"-\" ")),
        "{}",
        api[0]
    );
    assert_eq!(
        api.iter()
            .filter(|l| l.contains("\"GET /v1 HTTP/1.1\""))
            .count(),
        3
    );

    // After the reload, the quiet site's own file has its lines.
    let q = lines(&quiet);
    assert_eq!(by_host(&q), HashMap::from([("quiet.test".into(), 300)]));

    // Its lines from before the reload are nowhere.
    for f in [
        &shop_old,
        &shop,
        &dir.join("global.log"),
        &dir.join("logs/api.log"),
    ] {
        let t = std::fs::read_to_string(f).unwrap();
        assert!(
            !t.contains("quiet.test") && !t.contains("/hush"),
            "{}",
            f.display()
        );
    }
    assert!(!s.stdout_text().contains("/hush"));
}
