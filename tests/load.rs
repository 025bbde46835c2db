//! `peregrine load` end to end: request budgets against a live server, the
//! open-loop rate, timeouts against a server that never answers, argument
//! checks, histogram outputs, and chunked or close-delimited responses from a
//! small test server. Loopback only; every run is bounded.

mod common;
use common::*;

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::process::Command;
use std::time::{Duration, Instant};

struct Out {
    code: i32,
    stdout: String,
    stderr: String,
    took: Duration,
}

fn load(args: &[&str]) -> Out {
    let t = Instant::now();
    let out = Command::new(bin())
        .arg("load")
        .args(args)
        .output()
        .expect("run peregrine load");
    Out {
        code: out.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        took: t.elapsed(),
    }
}

/// The number after `key` in the summary, e.g. `num(s, "requests:")`.
fn num(text: &str, key: &str) -> f64 {
    let rest = text
        .split(key)
        .nth(1)
        .unwrap_or_else(|| panic!("no {key:?} in:\n{text}"));
    let n: String = rest
        .trim_start()
        .chars()
        .take_while(|c| c.is_ascii_digit() || *c == '.')
        .collect();
    n.parse()
        .unwrap_or_else(|_| panic!("no number after {key:?} in:\n{text}"))
}

fn count(text: &str, key: &str) -> u64 {
    num(text, key) as u64
}

/// A body-size check: the summary's "(N body bytes)".
fn body_bytes(text: &str) -> u64 {
    let line = text
        .lines()
        .find(|l| l.starts_with("received:"))
        .expect("received line");
    count(line, "(")
}

/// The summary's "N unsent".
fn unsent(text: &str) -> u64 {
    let line = text
        .lines()
        .find(|l| l.starts_with("requests:"))
        .expect("requests line");
    let before = line.split(" unsent").next().unwrap();
    before.rsplit(' ').next().unwrap().parse().unwrap()
}

#[test]
fn request_budget_matches_what_the_server_served() {
    let server = Server::start(&["--builtins", "--workers", "1"]);
    let url = server.url("/plaintext");
    let body = get(&server, "/plaintext").body.len() as u64;
    assert_eq!(body, 13);
    for args in [
        &["--requests", "1000", "-c", "4"][..],
        &["--requests", "1001", "-c", "3", "--pipeline", "4"],
        &["--requests", "500", "-c", "5", "--rate", "5000"],
        &[
            "--requests",
            "301",
            "-c",
            "2",
            "-t",
            "2",
            "--pipeline",
            "3",
            "--rate",
            "3000",
        ],
    ] {
        let mut all = vec![url.as_str(), "--duration", "10s"];
        all.extend_from_slice(args);
        let o = load(&all);
        assert_eq!(o.code, 0, "{args:?}: {}{}", o.stdout, o.stderr);
        let n: u64 = args[1].parse().unwrap();
        assert!(
            o.stdout
                .contains(&format!("requests:    {n} completed ({n} 2xx), 0 unsent")),
            "{args:?}:\n{}",
            o.stdout
        );
        assert_eq!(body_bytes(&o.stdout), n * body, "{}", o.stdout);
        assert_eq!(count(&o.stdout, "errors:"), 0, "{}", o.stdout);
        assert!(
            o.took < Duration::from_secs(8),
            "{args:?} took {:?}",
            o.took
        );
    }
}

#[test]
fn open_loop_holds_the_target_rate() {
    let server = Server::start(&["--builtins", "--workers", "1"]);
    let o = load(&[
        &server.url("/plaintext"),
        "--rate",
        "2000",
        "--duration",
        "3s",
        "-c",
        "8",
    ]);
    assert_eq!(o.code, 0, "{}{}", o.stdout, o.stderr);
    let rate = num(&o.stdout, "throughput:");
    assert!(
        (1900.0..=2100.0).contains(&rate),
        "{rate} req/s:\n{}",
        o.stdout
    );
    let done = count(&o.stdout, "requests:");
    assert!(
        (5940..=6000).contains(&done),
        "{done} completed:\n{}",
        o.stdout
    );
    assert_eq!(count(&o.stdout, "errors:"), 0, "{}", o.stdout);
    assert!(o.stdout.contains("open loop at 2000 req/s"), "{}", o.stdout);
    assert!(o.stdout.contains("from each request's intended send time"));
    for p in ["p50", "p75", "p90", "p99", "p99.9", "p99.99", "max"] {
        assert!(o.stdout.contains(&format!("\n  {p} ")), "{p}: {}", o.stdout);
    }
    // One progress line a second on stderr.
    assert!(o.stderr.contains("[   1s] "), "{}", o.stderr);
    assert!(o.stderr.contains("[   2s] "), "{}", o.stderr);
    assert!(o.took < Duration::from_secs(8), "took {:?}", o.took);
}

/// Accepts connections and holds them without ever answering.
fn silent_server() -> SocketAddr {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = l.local_addr().unwrap();
    std::thread::spawn(move || {
        let mut held = Vec::new();
        for s in l.incoming() {
            match s {
                Ok(s) => held.push(s),
                Err(_) => return,
            }
        }
    });
    addr
}

#[test]
fn a_server_that_never_answers_shows_timeouts() {
    let addr = silent_server();
    let url = format!("http://{addr}/");
    let o = load(&[
        &url,
        "--rate",
        "100",
        "--duration",
        "2s",
        "--timeout",
        "500ms",
        "-c",
        "2",
    ]);
    assert_eq!(o.code, 0, "{}{}", o.stdout, o.stderr);
    assert!(o.took < Duration::from_secs(5), "took {:?}", o.took);
    assert!(count(&o.stdout, "timeout ") >= 4, "{}", o.stdout);
    assert_eq!(count(&o.stdout, "requests:"), 0, "{}", o.stdout);
    assert!(unsent(&o.stdout) > 0, "{}", o.stdout);
    // Closed loop too: no hang, only timeouts.
    let o = load(&[&url, "--duration", "1s", "--timeout", "300ms", "-c", "3"]);
    assert_eq!(o.code, 0, "{}{}", o.stdout, o.stderr);
    assert!(o.took < Duration::from_secs(4), "took {:?}", o.took);
    assert!(count(&o.stdout, "timeout ") >= 3, "{}", o.stdout);
}

#[test]
fn bad_arguments_exit_2_naming_the_problem() {
    let u = "http://127.0.0.1:9/";
    for (args, says) in [
        (&[u, "--rate", "0"][..], "rate must be greater than 0"),
        (&[u, "--rate", "-5"], "rate must be greater than 0"),
        (&[u, "--connections", "0"], "--connections"),
        (&[u, "--duration", "0s"], "must be greater than zero"),
        (&[u, "--duration", "10x"], "is not a duration"),
        (&[u, "--timeout", "soon"], "is not a duration"),
        (&[u, "--pipeline", "0"], "--pipeline"),
        (&[u, "--header", "NoColon"], "expected 'Name: value'"),
        (&[u, "--header", "Bad Name: x"], "is not a header name"),
        (
            &[u, "-c", "1", "--threads", "2"],
            "--threads (2) must not exceed --connections (1)",
        ),
        (
            &[u, "--body", "a", "--body-file", "/etc/hostname"],
            "cannot be used with",
        ),
        (
            &[u, "--body-file", "/nonexistent/body"],
            "--body-file /nonexistent/body: cannot read",
        ),
        (&["https://127.0.0.1/"], "https is not supported"),
        (&["ftp://127.0.0.1/"], "unsupported URL scheme"),
        (&["http://127.0.0.1:99999/"], "bad port"),
        (&["http:///path"], "no host"),
        (&["127.0.0.1:8080"], "is not a URL"),
        (&[], "<URL>"),
    ] {
        let o = load(args);
        assert_eq!(o.code, 2, "{args:?}: {}", o.stderr);
        assert!(o.stderr.contains(says), "{args:?}: {}", o.stderr);
        assert!(!o.stderr.contains("panicked"), "{}", o.stderr);
    }
}

#[test]
fn histogram_files_are_written_and_parse() {
    let server = Server::start(&["--builtins", "--workers", "1"]);
    let dir = tempdir("load");
    let hgrm = dir.join("lat.hgrm");
    let v2 = dir.join("lat.hist");
    let o = load(&[
        &server.url("/json"),
        "--rate",
        "1000",
        "--requests",
        "400",
        "--hgrm",
        hgrm.to_str().unwrap(),
        "--histogram",
        v2.to_str().unwrap(),
    ]);
    assert_eq!(o.code, 0, "{}{}", o.stdout, o.stderr);
    let text = std::fs::read_to_string(&hgrm).unwrap();
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(
        lines[0],
        "       Value     Percentile TotalCount 1/(1-Percentile)"
    );
    assert_eq!(lines[1], "");
    let n = lines.len();
    assert!(lines[n - 3].starts_with("#[Mean    = "), "{text}");
    assert!(lines[n - 2].starts_with("#[Max     = "), "{text}");
    assert!(
        lines[n - 2].ends_with("Total count    =          400]"),
        "{text}"
    );
    assert!(lines[n - 1].starts_with("#[Buckets = "), "{text}");
    // Table rows: value, percentile, running count (and 1/(1-p) but last).
    let rows = &lines[2..n - 3];
    assert!(rows.len() > 10, "{text}");
    let mut last = 0u64;
    for r in rows {
        let f: Vec<&str> = r.split_whitespace().collect();
        assert!(f.len() == 4 || f.len() == 3, "{r}");
        let _: f64 = f[0].parse().unwrap();
        let q: f64 = f[1].parse().unwrap();
        assert!((0.0..=1.0).contains(&q));
        let c: u64 = f[2].parse().unwrap();
        assert!(c >= last);
        last = c;
    }
    assert_eq!(last, 400);
    assert!(rows.last().unwrap().contains(" 1.000000000000 "));

    let encoded = std::fs::read_to_string(&v2).unwrap();
    use base64::Engine;
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(encoded.trim())
        .unwrap();
    let h: hdrhistogram::Histogram<u64> = hdrhistogram::serialization::Deserializer::new()
        .deserialize(&mut std::io::Cursor::new(bytes))
        .unwrap();
    assert_eq!(h.len(), 400);
    assert!(h.max() > 0);
}

/// A small server: reads requests (heads only) and answers each with
/// `response`; with `close`, closes after the first.
fn scripted_server(response: &'static [u8], close: bool) -> SocketAddr {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = l.local_addr().unwrap();
    std::thread::spawn(move || {
        for s in l.incoming() {
            let Ok(s) = s else { return };
            std::thread::spawn(move || serve_scripted(s, response, close));
        }
    });
    addr
}

fn serve_scripted(mut s: TcpStream, response: &[u8], close: bool) {
    let mut pending = Vec::new();
    let mut buf = [0u8; 4096];
    loop {
        let n = match s.read(&mut buf) {
            Ok(0) | Err(_) => return,
            Ok(n) => n,
        };
        pending.extend_from_slice(&buf[..n]);
        while let Some(end) = pending.windows(4).position(|w| w == b"\r\n\r\n") {
            pending.drain(..end + 4);
            if s.write_all(response).is_err() || close {
                return;
            }
        }
    }
}

#[test]
fn chunked_and_close_delimited_responses() {
    let chunked = scripted_server(
        b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nHello\r\n7;ext=1\r\n, World\r\n0\r\n\r\n",
        false,
    );
    let o = load(&[
        &format!("http://{chunked}/"),
        "--requests",
        "200",
        "-c",
        "2",
        "--pipeline",
        "2",
    ]);
    assert_eq!(o.code, 0, "{}{}", o.stdout, o.stderr);
    assert!(
        o.stdout.contains("requests:    200 completed (200 2xx)"),
        "{}",
        o.stdout
    );
    assert_eq!(body_bytes(&o.stdout), 200 * 12, "{}", o.stdout);

    // HTTP/1.0 style: no length, the body ends when the server closes; the
    // load generator reconnects for every request.
    let closing = scripted_server(b"HTTP/1.0 503 Busy\r\n\r\nlater", true);
    let o = load(&[&format!("http://{closing}/"), "--requests", "50", "-c", "2"]);
    assert_eq!(o.code, 0, "{}{}", o.stdout, o.stderr);
    assert!(
        o.stdout.contains("requests:    50 completed (0 2xx)"),
        "{}",
        o.stdout
    );
    assert!(o.stdout.contains("status 5xx 50"), "{}", o.stdout);
    assert_eq!(body_bytes(&o.stdout), 50 * 5, "{}", o.stdout);

    // Garbage is a parse error, not a hang.
    let garbage = scripted_server(b"SMTP ready\r\n\r\n", false);
    let o = load(&[&format!("http://{garbage}/"), "--requests", "5", "-c", "1"]);
    assert_eq!(o.code, 0, "{}{}", o.stdout, o.stderr);
    assert_eq!(count(&o.stdout, "parse "), 5, "{}", o.stdout);
    assert!(o.stderr.contains("bad response"), "{}", o.stderr);
}

#[test]
fn connection_refused_counts_connect_errors() {
    let (_refusing, addr) = common::refusing_addr();
    let o = load(&[&format!("http://{addr}/"), "--duration", "1s", "-c", "2"]);
    assert_eq!(o.code, 0, "{}{}", o.stdout, o.stderr);
    assert!(count(&o.stdout, "connect ") >= 2, "{}", o.stdout);
    assert!(o.stderr.contains("cannot connect to"), "{}", o.stderr);
    assert!(o.took < Duration::from_secs(4), "took {:?}", o.took);
}

#[test]
fn completed_count_matches_the_servers_own_count() {
    // A timed, closed-loop run: what load reports completed is what the
    // server's metrics say it answered.
    let server = Server::start(&["--builtins", "--workers", "2", "--access-log", "off"]);
    let o = load(&[&server.url("/plaintext"), "-c", "8", "--duration", "2s"]);
    assert_eq!(o.code, 0, "{}{}", o.stdout, o.stderr);
    let done = count(&o.stdout, "requests:");
    assert!(done > 100, "{}", o.stdout);
    std::thread::sleep(Duration::from_millis(1300));
    let status: serde_json::Value =
        serde_json::from_slice(&server.admin_get("/status").body).unwrap();
    assert_eq!(
        status["totals"]["requests"].as_u64(),
        Some(done),
        "{}",
        o.stdout
    );
    assert_eq!(status["totals"]["status"]["2xx"].as_u64(), Some(done));
}
