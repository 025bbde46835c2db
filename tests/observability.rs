//! Metrics, status, histograms and access logs, checked from the outside.

mod common;
use common::*;
use std::io::Write;
use std::process::{Command, Stdio};
use std::time::Duration;

/// Waits past the workers' once-a-second snapshot.
fn settle() {
    std::thread::sleep(Duration::from_millis(1300));
}

fn traffic(s: &Server, ok: usize, missing: usize) -> std::net::TcpStream {
    let mut c = s.connect();
    for _ in 0..ok {
        c.write_all(b"GET /plaintext HTTP/1.1\r\nHost: a\r\n\r\n")
            .unwrap();
        assert_eq!(read_response(&mut c, false).unwrap().status, 200);
    }
    for _ in 0..missing {
        c.write_all(b"GET /nope HTTP/1.1\r\nHost: a\r\n\r\n")
            .unwrap();
        assert_eq!(read_response(&mut c, false).unwrap().status, 404);
    }
    c
}

fn metric(text: &str, series: &str) -> f64 {
    text.lines()
        .filter(|l| l.starts_with(series))
        .map(|l| l.rsplit(' ').next().unwrap().parse::<f64>().unwrap())
        .sum()
}

#[test]
fn prometheus_metrics_count_requests_and_pass_promtool() {
    let s = Server::start(&["--builtins", "--workers", "2", "--access-log", "off"]);
    let _c = traffic(&s, 25, 4);
    refused_request(&s);
    settle();
    let r = s.admin_get("/metrics");
    assert_eq!(r.status, 200);
    assert_eq!(
        r.header("content-type").as_deref(),
        Some("text/plain; version=0.0.4; charset=utf-8")
    );
    let text = r.text();
    assert_eq!(
        metric(
            &text,
            "peregrine_http_requests_total{worker=\"0\",code=\"2xx\"}"
        ) + metric(
            &text,
            "peregrine_http_requests_total{worker=\"1\",code=\"2xx\"}"
        ),
        25.0
    );
    assert_eq!(
        metric(
            &text,
            "peregrine_http_requests_total{worker=\"0\",code=\"4xx\"}"
        ) + metric(
            &text,
            "peregrine_http_requests_total{worker=\"1\",code=\"4xx\"}"
        ),
        5.0
    );
    assert_eq!(
        metric(&text, "peregrine_http_request_duration_seconds_count"),
        30.0
    );
    assert_eq!(
        metric(&text, "peregrine_http_time_to_first_byte_seconds_count"),
        30.0
    );
    assert_eq!(
        metric(
            &text,
            "peregrine_http_parse_errors_total{worker=\"0\",kind=\"missing_host\"}"
        ) + metric(
            &text,
            "peregrine_http_parse_errors_total{worker=\"1\",kind=\"missing_host\"}"
        ),
        1.0
    );
    assert!(metric(&text, "peregrine_connections_accepted_total") >= 2.0);
    assert!(metric(&text, "peregrine_http_received_bytes_total") > 0.0);
    assert!(text.contains("le=\"+Inf\""));

    promtool_check(&text);
}

fn refused_request(s: &Server) {
    let r = exchange(s, b"GET /plaintext HTTP/1.1\r\n\r\n");
    assert_eq!(r.status, 400);
}

#[test]
fn status_json_totals_and_workers() {
    let dir = tempdir("status");
    let cfg = dir.join("p.toml");
    std::fs::write(
        &cfg,
        "builtins = true\nworkers = 2\n[access_log]\nenabled = false\n",
    )
    .unwrap();
    let s = Server::start(&["--config", cfg.to_str().unwrap()]);
    let keep = traffic(&s, 12, 3);
    let idle = s.connect();
    let mut partial = s.connect();
    partial.write_all(b"GET /plaintext HTTP/1.1\r\nHo").unwrap();
    settle();
    let r = s.admin_get("/status");
    assert_eq!(r.status, 200);
    let v: serde_json::Value = serde_json::from_slice(&r.body).unwrap();
    assert_eq!(v["version"], env!("CARGO_PKG_VERSION"));
    assert_eq!(v["config"], cfg.to_str().unwrap());
    assert_eq!(v["totals"]["requests"], 15);
    assert_eq!(v["totals"]["status"]["2xx"], 12);
    assert_eq!(v["totals"]["status"]["4xx"], 3);
    assert_eq!(v["totals"]["workers"], 2);
    assert_eq!(v["workers"].as_array().unwrap().len(), 2);
    let per_worker: u64 = v["workers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|w| w["requests"].as_u64().unwrap())
        .sum();
    assert_eq!(per_worker, 15);
    // `keep` is idle keep-alive, `idle` never sent a byte (both waiting, as in
    // nginx's stub_status), `partial` is mid-head (reading).
    assert_eq!(v["totals"]["connections"]["active"], 3);
    assert_eq!(v["totals"]["connections"]["waiting"], 2);
    assert_eq!(v["totals"]["connections"]["reading"], 1);
    // The last publishing interval's window holds at most what was sent.
    assert!(v["totals"]["recent_latency_ms"]["count"].as_u64().unwrap() <= 15);
    let lat = &v["totals"]["latency_ms"];
    assert_eq!(lat["count"], 15);
    assert!(lat["p50"].as_f64().unwrap() <= lat["p99"].as_f64().unwrap());
    assert!(lat["p99"].as_f64().unwrap() <= lat["max"].as_f64().unwrap());
    assert!(v["uptime_seconds"].as_f64().unwrap() > 1.0);
    assert_eq!(v["percentiles"].as_array().unwrap().len(), 14);
    drop((idle, keep, partial));
}

#[test]
fn histogram_exports() {
    let s = Server::start(&["--builtins", "--workers", "1", "--access-log", "off"]);
    let _c = traffic(&s, 40, 0);
    settle();
    let r = s.admin_get("/histogram?worker=0");
    assert_eq!(r.status, 200);
    let t = r.text();
    assert!(
        t.starts_with("       Value     Percentile TotalCount 1/(1-Percentile)"),
        "{t}"
    );
    assert!(t.contains("Total count    =           40]"), "{t}");
    let v2 = s.admin_get("/histogram?worker=all&format=v2").text();
    assert!(v2.starts_with("HISTF"), "{v2}");
    let ttfb = s.admin_get("/histogram?metric=ttfb").text();
    assert!(ttfb.contains("Total count    =           40]"), "{ttfb}");
    assert_eq!(s.admin_get("/histogram?worker=9").status, 400);
    assert_eq!(s.admin_get("/histogram?format=png").status, 400);
    assert_eq!(s.admin_get("/nothing").status, 404);
}

#[test]
fn access_log_combined_on_stdout() {
    let s = Server::start(&["--builtins", "--workers", "1"]);
    let mut c = s.connect();
    c.write_all(b"GET /plaintext?x=1 HTTP/1.1\r\nHost: a\r\nUser-Agent: test-agent/1\r\nReferer: http://ref/\r\n\r\n")
        .unwrap();
    read_response(&mut c, false).unwrap();
    drop(c);
    refused_request(&s);
    // A streamed body's size is known only at its end: the line has it.
    let streamed = get(&s, "/stream?chunks=3&size=100&interval_ms=0");
    assert_eq!(streamed.body.len(), 300);
    let mut lines = Vec::new();
    for _ in 0..50 {
        lines = s.stdout_text().lines().map(str::to_string).collect();
        if lines.len() >= 3 {
            break;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    assert_eq!(lines.len(), 3, "{lines:?}");
    assert!(
        lines[2].contains("\"GET /stream?chunks=3&size=100&interval_ms=0 HTTP/1.1\" 200 300 "),
        "{}",
        lines[2]
    );
    let l = &lines[0];
    assert!(l.starts_with("127.0.0.1 - - ["), "{l}");
    assert!(
        l.contains("] \"GET /plaintext?x=1 HTTP/1.1\" 200 13 \"http://ref/\" \"test-agent/1\" "),
        "{l}"
    );
    let latency: u64 = l.rsplit(' ').next().unwrap().parse().unwrap();
    assert!(latency < 5_000_000);
    assert!(lines[1].contains("\"-\" 400 "), "{}", lines[1]);
}

#[test]
fn access_log_json_file_reopen_and_nothing_lost_at_stop() {
    let dir = tempdir("alog");
    let log = dir.join("access.log");
    let cfg = dir.join("p.toml");
    std::fs::write(
        &cfg,
        format!(
            "builtins = true\nworkers = 2\n[access_log]\npath = {:?}\nformat = \"json\"\n",
            log.to_str().unwrap()
        ),
    )
    .unwrap();
    let mut s = Server::start(&["--config", cfg.to_str().unwrap()]);
    drop(traffic(&s, 10, 0));
    // Rotate: move the file away, then ask for a reopen.
    let rotated = dir.join("access.log.1");
    std::thread::sleep(Duration::from_millis(300));
    std::fs::rename(&log, &rotated).unwrap();
    s.signal("USR1");
    std::thread::sleep(Duration::from_millis(300));
    // Many requests, then an immediate graceful stop: every line must land.
    let mut clients = Vec::new();
    for _ in 0..4 {
        let addr = s.addr;
        clients.push(std::thread::spawn(move || {
            let mut c = std::net::TcpStream::connect(addr).unwrap();
            for i in 0..250 {
                c.write_all(format!("GET /json?n={i} HTTP/1.1\r\nHost: a\r\n\r\n").as_bytes())
                    .unwrap();
                read_response(&mut c, false).unwrap();
            }
        }));
    }
    for c in clients {
        c.join().unwrap();
    }
    // A stream its client leaves half-way is logged too, with what went out.
    let mut c = std::net::TcpStream::connect(s.addr).unwrap();
    c.write_all(b"GET /sse?events=50&interval_ms=100 HTTP/1.1\r\nHost: a\r\n\r\n")
        .unwrap();
    let mut got = Vec::new();
    while !String::from_utf8_lossy(&got).contains("data:") {
        let mut b = [0u8; 512];
        let n = std::io::Read::read(&mut c, &mut b).unwrap();
        assert!(n > 0, "closed before the first event");
        got.extend_from_slice(&b[..n]);
    }
    drop(c);
    std::thread::sleep(Duration::from_millis(300));
    s.signal("TERM");
    assert_eq!(s.wait_exit(Duration::from_secs(10)), Some(0));
    let before = std::fs::read_to_string(&rotated).unwrap();
    let after = std::fs::read_to_string(&log).unwrap();
    assert_eq!(before.lines().count(), 10, "{before}");
    let (sse, after): (Vec<&str>, Vec<&str>) = after.lines().partition(|l| l.contains("/sse?"));
    assert_eq!(sse.len(), 1, "the stream's line");
    let v: serde_json::Value = serde_json::from_str(sse[0]).unwrap();
    assert_eq!(v["status"], 200);
    assert!(v["body_bytes"].as_u64().unwrap() > 0, "{}", sse[0]);
    assert_eq!(after.len(), 1000);
    for line in after {
        let v: serde_json::Value =
            serde_json::from_str(line).unwrap_or_else(|e| panic!("{e}: {line}"));
        assert_eq!(v["status"], 200);
        assert_eq!(v["method"], "GET");
        assert!(v["latency_us"].is_u64());
        assert!(v["target"].as_str().unwrap().starts_with("/json?n="));
    }
}

#[test]
fn admin_off_loopback_needs_a_token() {
    let out = Command::new(bin())
        .args(["serve", "--listen", "127.0.0.1:0", "--admin", "0.0.0.0:0"])
        .stdout(Stdio::null())
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("admin.token: listening on 0.0.0.0:0 (not loopback) needs admin.token"),
        "{err}"
    );
}

#[test]
fn metrics_can_be_turned_off() {
    let s = Server::with_config(
        "builtins = true\n[metrics]\nenabled = false\n[access_log]\nenabled = false\n",
        &[],
    );
    let _c = traffic(&s, 5, 0);
    settle();
    let text = s.admin_get("/metrics").text();
    assert_eq!(
        metric(&text, "peregrine_http_request_duration_seconds_count"),
        0.0
    );
}
