//! Exchanges that answer later or stream, over real sockets: `/delay`,
//! `/stream`, `/sse`, the streaming `/echo`, and cancellation.

mod common;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

use common::{Server, get, read_chunk, read_head, read_response};

fn status_json(s: &Server) -> serde_json::Value {
    let r = s.admin_get("/status");
    serde_json::from_slice(&r.body).unwrap()
}

/// Raises the open-file soft limit to the hard limit (the test opens
/// thousands of connections).
fn raise_nofile() {
    let mut l = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit and setrlimit read and write the struct passed.
    unsafe {
        libc::getrlimit(libc::RLIMIT_NOFILE, &mut l);
        l.rlim_cur = l.rlim_max.min(65536);
        libc::setrlimit(libc::RLIMIT_NOFILE, &l);
    }
}

#[test]
fn delays_do_not_block_the_worker() {
    raise_nofile();
    let s = Server::start(&["--builtins", "--workers", "1"]);
    let n = 2000;
    let t0 = Instant::now();
    let mut conns: Vec<TcpStream> = (0..n)
        .map(|_| {
            let mut c = s.connect();
            c.write_all(b"GET /delay?ms=1000 HTTP/1.1\r\nHost: t\r\n\r\n")
                .unwrap();
            c
        })
        .collect();
    // While all of them wait, the same worker answers at once.
    let p0 = Instant::now();
    let r = get(&s, "/plaintext");
    let plaintext = p0.elapsed();
    assert_eq!(r.status, 200);
    let answered_before = t0.elapsed();
    for c in &mut conns {
        c.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
        let r = read_response(c, false).unwrap();
        assert_eq!(r.status, 200);
        assert_eq!(r.text(), "delayed 1000 ms\n");
    }
    let all = t0.elapsed();
    // Logical, not timing: /plaintext was answered before the first delay
    // could end, and no delay ended early.
    assert!(
        answered_before < Duration::from_millis(1000),
        "{answered_before:?}"
    );
    assert!(all >= Duration::from_millis(1000));
    eprintln!("{n} delays of 1000 ms done in {all:?}; /plaintext meanwhile in {plaintext:?}");
    // Bad values are refused, not clamped.
    assert_eq!(get(&s, "/delay?ms=60001").status, 400);
    assert_eq!(get(&s, "/delay?ms=abc").status, 400);
}

#[test]
fn stream_flushes_each_chunk_as_it_is_made() {
    let s = Server::start(&["--builtins", "--workers", "1"]);
    let mut c = s.connect();
    c.write_all(b"GET /stream?chunks=3&size=7&interval_ms=1000 HTTP/1.1\r\nHost: t\r\n\r\n")
        .unwrap();
    c.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let head = read_head(&mut c).unwrap();
    assert_eq!(head.status, 200);
    assert_eq!(head.header("transfer-encoding").as_deref(), Some("chunked"));
    assert_eq!(head.header("content-length"), None);
    let first = read_chunk(&mut c).unwrap().unwrap();
    assert_eq!(first, b"chunk 1");
    // The second chunk is not made yet: nothing more arrives for a while.
    c.set_read_timeout(Some(Duration::from_millis(300)))
        .unwrap();
    let mut byte = [0u8; 1];
    let early = c.read(&mut byte);
    assert!(early.is_err(), "data before its interval: {early:?}");
    c.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    assert_eq!(read_chunk(&mut c).unwrap().unwrap(), b"chunk 2");
    assert_eq!(read_chunk(&mut c).unwrap().unwrap(), b"chunk 3");
    assert_eq!(read_chunk(&mut c).unwrap(), None);
    // The connection is kept for the next request.
    c.write_all(b"GET /plaintext HTTP/1.1\r\nHost: t\r\n\r\n")
        .unwrap();
    assert_eq!(
        read_response(&mut c, false).unwrap().text(),
        "Hello, World!"
    );

    // HTTP/1.0 has no chunked coding: the body ends with the connection.
    let mut c = s.connect();
    c.write_all(b"GET /stream?chunks=2&size=3&interval_ms=10 HTTP/1.0\r\n\r\n")
        .unwrap();
    let r = read_response(&mut c, false).unwrap();
    assert_eq!(r.header("transfer-encoding"), None);
    assert_eq!(r.text(), "chuchu");

    // With curl, a real client: the body comes through whole.
    let out = std::process::Command::new("curl")
        .args([
            "-sS",
            "--no-buffer",
            &s.url("/stream?chunks=4&size=8&interval_ms=20"),
        ])
        .output()
        .unwrap();
    assert!(out.status.success());
    assert_eq!(
        String::from_utf8_lossy(&out.stdout),
        "chunk 1\nchunk 2\nchunk 3\nchunk 4\n"
    );
}

#[test]
fn server_sent_events() {
    let s = Server::start(&["--builtins", "--workers", "1"]);
    let mut c = s.connect();
    c.write_all(b"GET /sse?events=3&interval_ms=50 HTTP/1.1\r\nHost: t\r\nAccept: text/event-stream\r\n\r\n")
        .unwrap();
    let r = read_response(&mut c, false).unwrap();
    assert_eq!(
        r.header("content-type").as_deref(),
        Some("text/event-stream")
    );
    assert_eq!(r.header("cache-control").as_deref(), Some("no-store"));
    let text = r.text();
    let events: Vec<&str> = text.split("\n\n").filter(|e| !e.is_empty()).collect();
    assert_eq!(events.len(), 3, "{text}");
    assert_eq!(events[2], "id: 3\nevent: tick\ndata: {\"n\":3}");
}

/// Peak resident memory of a process (VmHWM), in KiB.
fn peak_rss_kib(pid: i32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap()
}

#[test]
fn echo_streams_a_large_upload_in_bounded_memory() {
    let s = Server::with_config(
        "builtins = true\nworkers = 1\n[limits]\nmax_request_body_size = 2000000000\n",
        &[],
    );
    // Warm up, so the baseline holds the worker's buffers.
    let r = common::exchange(
        &s,
        b"POST /echo HTTP/1.1\r\nHost: t\r\nContent-Length: 5\r\nConnection: close\r\n\r\nhello",
    );
    assert_eq!(r.text(), "hello");
    let before = peak_rss_kib(s.pid());
    let total: u64 = 1 << 30;
    let mut c = s.connect();
    c.write_all(
        format!("POST /echo HTTP/1.1\r\nHost: t\r\nContent-Type: application/x-test\r\nContent-Length: {total}\r\n\r\n")
            .as_bytes(),
    )
    .unwrap();
    let mut reader = c.try_clone().unwrap();
    let read = std::thread::spawn(move || {
        let head = read_head(&mut reader).unwrap();
        assert_eq!(head.status, 200);
        assert_eq!(head.header("content-length"), Some(total.to_string()));
        assert_eq!(
            head.header("content-type").as_deref(),
            Some("application/x-test")
        );
        let mut buf = vec![0u8; 256 * 1024];
        let mut got: u64 = 0;
        let mut sum: u64 = 0;
        while got < total {
            let n = reader.read(&mut buf).unwrap();
            assert!(n > 0, "eof after {got} bytes");
            sum = buf[..n]
                .iter()
                .fold(sum, |a, b| a.wrapping_mul(31).wrapping_add(u64::from(*b)));
            got += n as u64;
        }
        sum
    });
    let piece: Vec<u8> = (0..1024 * 1024).map(|i| (i % 251) as u8).collect();
    let mut sum: u64 = 0;
    for _ in 0..(total / piece.len() as u64) {
        c.write_all(&piece).unwrap();
        sum = piece
            .iter()
            .fold(sum, |a, b| a.wrapping_mul(31).wrapping_add(u64::from(*b)));
    }
    assert_eq!(read.join().unwrap(), sum, "the echo is byte for byte");
    let grown = peak_rss_kib(s.pid()).saturating_sub(before);
    eprintln!("1 GiB echoed; peak RSS grew {grown} KiB");
    assert!(grown <= 16 * 1024, "peak RSS grew {grown} KiB");
}

#[test]
fn pending_exchange_is_cancelled_when_its_client_leaves() {
    let s = Server::start(&["--builtins", "--workers", "1"]);
    let mut conns = Vec::new();
    for _ in 0..20 {
        let mut c = s.connect();
        c.write_all(b"GET /delay?ms=60000 HTTP/1.1\r\nHost: t\r\n\r\n")
            .unwrap();
        conns.push(c);
    }
    let wait_active = |want: u64| {
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let v = status_json(&s);
            let active = v["totals"]["connections"]["active"].as_u64().unwrap();
            if active == want {
                return v;
            }
            assert!(
                Instant::now() < deadline,
                "active stays {active}, want {want}"
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    };
    let v = wait_active(20);
    assert_eq!(v["totals"]["connections"]["writing"].as_u64(), Some(20));
    drop(conns);
    // Every waiting exchange is dropped with its connection, long before its
    // minute is up, and the worker keeps serving.
    wait_active(0);
    assert_eq!(get(&s, "/plaintext").status, 200);
}
