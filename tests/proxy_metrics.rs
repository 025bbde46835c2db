//! Per-upstream figures end to end: a Peregrine upstream and a dead address
//! behind a Peregrine proxy; what was sent must show in `/metrics` (which
//! promtool accepts) and in `/status`.

mod common;

use std::time::{Duration, Instant};

use common::Server;
use serde_json::Value;

/// GETs sent through the proxy that the upstream answers 200.
const OK: u64 = 7;

/// The value of the series `name{labels}` in a `/metrics` text.
fn sample(text: &str, series: &str) -> Option<f64> {
    text.lines()
        .find_map(|l| l.strip_prefix(series)?.strip_prefix(' '))
        .map(|v| v.parse().expect("a number"))
}

/// Polls `/metrics` until `ready` holds (workers publish once a second).
fn wait_metrics(px: &Server, ready: impl Fn(&str) -> bool) -> String {
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        let r = px.admin_get("/metrics");
        assert_eq!(r.status, 200);
        let text = r.text();
        if ready(&text) {
            return text;
        }
        assert!(
            Instant::now() < deadline,
            "/metrics did not reach the expected state:\n{text}"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

fn status(px: &Server) -> Value {
    let r = px.admin_get("/status");
    assert_eq!(r.status, 200);
    serde_json::from_slice(&r.body).expect("/status is JSON")
}

#[test]
fn upstream_servers_are_counted_in_metrics_and_status() {
    let up = Server::start(&["--builtins"]);
    let (_dead, dead_addr) = common::refusing_addr();
    let config = format!(
        r#"
[[upstream]]
name = "app"
servers = ["{up}", "{dead_addr}"]
[[upstream]]
name = "checked"
servers = ["{up}", {{ address = "{dead_addr}", weight = 3, backup = true }}]
lb_policy = "first"
health = {{ uri = "/plaintext", interval = "100ms", timeout = "1s", passes = 1, fails = 1 }}
[[site]]
name = "front"
hosts = ["localhost"]
default = true
[[site.route]]
path = "/checked"
handler = "proxy"
upstream = "checked"
[[site.route]]
path = "/"
handler = "proxy"
upstream = "app"
"#,
        up = up.addr
    );
    // One worker: one balancer, so which server sees what is known.
    let px = Server::with_config(&config, &["--workers", "1"]);
    for _ in 0..OK {
        let r = common::get(&px, "/plaintext");
        assert_eq!((r.status, r.text().as_str()), (200, "Hello, World!"));
    }
    assert_eq!(common::get(&px, "/no-such-page").status, 404);

    // Round robin sends one request to the dead server: its connect is
    // refused, the request is sent again to the live one, and the dead one
    // is out for `fail_timeout` (10 s): every request ends on the live one.
    let sent = OK + 1;
    let app = |s: &str| format!("upstream=\"app\",server=\"{s}\"");
    let (live, gone) = (app(&up.addr.to_string()), app(&dead_addr.to_string()));
    let chk = |s: &str| format!("upstream=\"checked\",server=\"{s}\"");
    let (chk_live, chk_gone) = (chk(&up.addr.to_string()), chk(&dead_addr.to_string()));
    let text = wait_metrics(&px, |t| {
        let n = |s: String| sample(t, &s).unwrap_or(0.0);
        n(format!("peregrine_upstream_requests_total{{{live}}}")) == sent as f64
            && n(format!("peregrine_upstream_requests_total{{{gone}}}")) == 1.0
            && n(format!(
                "peregrine_upstream_checks_total{{{chk_live},result=\"pass\"}}"
            )) >= 1.0
            && n(format!(
                "peregrine_upstream_checks_total{{{chk_gone},result=\"fail\"}}"
            )) >= 1.0
    });
    common::promtool_check(&text);
    let v =
        |s: String| sample(&text, &s).unwrap_or_else(|| panic!("no series {s} in\n{text}")) as u64;
    for (name, kind) in [
        ("peregrine_upstream_requests_total", "counter"),
        ("peregrine_upstream_responses_total", "counter"),
        ("peregrine_upstream_failures_total", "counter"),
        ("peregrine_upstream_health", "gauge"),
        ("peregrine_upstream_connections", "gauge"),
        ("peregrine_upstream_checks_total", "counter"),
        ("peregrine_upstream_head_seconds", "histogram"),
    ] {
        assert!(text.contains(&format!("# HELP {name} ")), "{name}");
        assert!(text.contains(&format!("# TYPE {name} {kind}\n")), "{name}");
    }
    let responses = |l: &str, c: &str| {
        v(format!(
            "peregrine_upstream_responses_total{{{l},class=\"{c}\"}}"
        ))
    };
    assert_eq!(responses(&live, "2xx"), OK);
    assert_eq!(responses(&live, "4xx"), 1);
    assert_eq!(responses(&live, "5xx"), 0);
    assert_eq!(responses(&gone, "2xx"), 0);
    let failures = |l: &str, k: &str| {
        v(format!(
            "peregrine_upstream_failures_total{{{l},kind=\"{k}\"}}"
        ))
    };
    assert_eq!(failures(&gone, "connect_error"), 1);
    assert_eq!(failures(&gone, "connect_timeout"), 0);
    assert_eq!(failures(&live, "connect_error"), 0);
    assert_eq!(failures(&live, "closed"), 0);
    assert_eq!(v(format!("peregrine_upstream_health{{{live}}}")), 1);
    assert_eq!(v(format!("peregrine_upstream_health{{{gone}}}")), 0);
    assert_eq!(v(format!("peregrine_upstream_health{{{chk_live}}}")), 1);
    assert_eq!(v(format!("peregrine_upstream_health{{{chk_gone}}}")), 0);
    // The requests went one after another: one pooled connection, idle now.
    let conns = |l: &str, s: &str| {
        v(format!(
            "peregrine_upstream_connections{{{l},state=\"{s}\"}}"
        ))
    };
    assert_eq!((conns(&live, "open"), conns(&live, "idle")), (1, 1));
    assert_eq!((conns(&gone, "open"), conns(&gone, "idle")), (0, 0));
    assert_eq!(
        v(format!(
            "peregrine_upstream_checks_total{{{live},result=\"pass\"}}"
        )),
        0,
        "app has no active checks"
    );
    let h = "peregrine_upstream_head_seconds";
    assert_eq!(v(format!("{h}_count{{{live}}}")), sent);
    assert_eq!(v(format!("{h}_bucket{{{live},le=\"+Inf\"}}")), sent);
    assert_eq!(v(format!("{h}_bucket{{{live},le=\"60\"}}")), sent);
    assert!(sample(&text, &format!("{h}_sum{{{live}}}")).unwrap() > 0.0);
    assert_eq!(v(format!("{h}_count{{{gone}}}")), 0);

    // /status: the same figures, per group and server.
    let s = status(&px);
    let groups = s["upstreams"].as_array().expect("an upstreams array");
    assert_eq!(groups.len(), 2, "{s:#}");
    let g = &groups[0];
    assert_eq!(
        (&g["name"], &g["policy"]),
        (&"app".into(), &"round_robin".into())
    );
    let a = &g["servers"][0];
    assert_eq!(a["address"], up.addr.to_string());
    assert_eq!((&a["weight"], &a["backup"]), (&1.into(), &false.into()));
    assert_eq!(a["health"], "up");
    assert_eq!(a["requests"], sent);
    assert_eq!(a["responses"]["2xx"], OK);
    assert_eq!(a["responses"]["4xx"], 1);
    assert_eq!(a["failed"], 0);
    assert_eq!(a["connections"]["open"], 1);
    assert_eq!(a["connections"]["idle"], 1);
    assert_eq!(a["heads"], sent);
    assert!(a["head_mean_ms"].as_f64().unwrap() > 0.0, "{a}");
    let d = &g["servers"][1];
    assert_eq!(d["address"], dead_addr.to_string());
    assert_eq!(d["health"], "down");
    assert_eq!(d["requests"], 1);
    assert_eq!(d["failed"], 1);
    assert_eq!(d["failures"]["connect_error"], 1);
    assert_eq!(d["connections"]["open"], 0);
    assert_eq!(d["head_mean_ms"], 0.0);
    let c = &groups[1];
    assert_eq!(
        (&c["name"], &c["policy"]),
        (&"checked".into(), &"first".into())
    );
    assert_eq!(c["servers"][0]["health"], "up");
    assert!(c["servers"][0]["checks"]["pass"].as_u64().unwrap() >= 1);
    assert_eq!(c["servers"][0]["checks"]["fail"], 0);
    let b = &c["servers"][1];
    assert_eq!((&b["weight"], &b["backup"]), (&3.into(), &true.into()));
    assert_eq!(b["health"], "down");
    assert!(b["checks"]["fail"].as_u64().unwrap() >= 1);
    assert_eq!(b["requests"], 0, "checks are not requests");
}

#[test]
fn no_upstreams_no_upstream_series() {
    let px = Server::start(&["--builtins"]);
    let text = px.admin_get("/metrics").text();
    assert!(text.contains("peregrine_http_requests_total"));
    assert!(!text.contains("peregrine_upstream_"), "{text}");
    assert_eq!(status(&px)["upstreams"], serde_json::json!([]));
}
