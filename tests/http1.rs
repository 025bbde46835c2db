//! HTTP/1.1 behaviour over real sockets: keep-alive, pipelining, split input,
//! HEAD, 100-continue, OPTIONS *, absolute-form targets, request bodies.

mod common;
use common::*;
use std::io::{Read, Write};
use std::time::Duration;

fn server() -> Server {
    Server::start(&["--builtins", "--workers", "2"])
}

#[test]
fn builtins_answer() {
    let s = server();
    let r = get(&s, "/plaintext");
    assert_eq!((r.status, r.text().as_str()), (200, "Hello, World!"));
    assert_eq!(r.header("content-type").as_deref(), Some("text/plain"));
    assert!(r.header("server").unwrap().starts_with("peregrine/"));
    let date = r.header("date").unwrap();
    assert!(httpdate::parse_http_date(&date).is_ok(), "{date}");
    let r = get(&s, "/json");
    assert_eq!(r.text(), r#"{"message":"Hello, World!"}"#);
    assert_eq!(
        r.header("content-type").as_deref(),
        Some("application/json")
    );
    let r = exchange(&s, b"POST /echo HTTP/1.1\r\nHost: a\r\nContent-Type: text/x-test\r\nContent-Length: 5\r\n\r\nhello");
    assert_eq!((r.status, r.text().as_str()), (200, "hello"));
    assert_eq!(r.header("content-type").as_deref(), Some("text/x-test"));
}

#[test]
fn keep_alive_over_many_requests() {
    let s = server();
    let mut c = s.connect();
    for i in 0..500 {
        let path = if i % 2 == 0 { "/plaintext" } else { "/json" };
        c.write_all(format!("GET {path} HTTP/1.1\r\nHost: a\r\n\r\n").as_bytes())
            .unwrap();
        let r = read_response(&mut c, false).unwrap();
        assert_eq!(r.status, 200);
        assert!(r.header("connection").is_none());
    }
}

#[test]
fn pipelined_responses_come_in_order() {
    let s = server();
    let mut c = s.connect();
    let mut batch = Vec::new();
    for i in 0..50 {
        match i % 3 {
            0 => batch.extend_from_slice(b"GET /plaintext HTTP/1.1\r\nHost: a\r\n\r\n"),
            1 => batch.extend_from_slice(
                format!(
                    "POST /echo HTTP/1.1\r\nHost: a\r\nContent-Length: {}\r\n\r\nbody-{i}",
                    5 + i.to_string().len()
                )
                .as_bytes(),
            ),
            _ => batch.extend_from_slice(b"GET /json HTTP/1.1\r\nHost: a\r\n\r\n"),
        }
    }
    c.write_all(&batch).unwrap();
    for i in 0..50 {
        let r = read_response(&mut c, false).unwrap();
        let want = match i % 3 {
            0 => "Hello, World!".to_string(),
            1 => format!("body-{i}"),
            _ => r#"{"message":"Hello, World!"}"#.to_string(),
        };
        assert_eq!(r.text(), want, "response {i}");
    }
}

#[test]
fn request_split_one_byte_at_a_time() {
    let s = server();
    let mut c = s.connect();
    let req = b"POST /echo HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n4;x=y\r\nabcd\r\n3\r\nefg\r\n0\r\nX-Trailer: 1\r\n\r\nGET /plaintext HTTP/1.1\r\nHost: a\r\n\r\n";
    for b in req.iter() {
        c.write_all(std::slice::from_ref(b)).unwrap();
        c.flush().unwrap();
    }
    assert_eq!(read_response(&mut c, false).unwrap().text(), "abcdefg");
    assert_eq!(
        read_response(&mut c, false).unwrap().text(),
        "Hello, World!"
    );
}

#[test]
fn head_has_headers_but_no_body() {
    let s = server();
    let mut c = s.connect();
    c.write_all(
        b"HEAD /plaintext HTTP/1.1\r\nHost: a\r\n\r\nGET /json HTTP/1.1\r\nHost: a\r\n\r\n",
    )
    .unwrap();
    let r = read_response(&mut c, true).unwrap();
    assert_eq!(r.header("content-length").as_deref(), Some("13"));
    // The next response starts right after the head: nothing in between.
    let r = read_response(&mut c, false).unwrap();
    assert_eq!(r.text(), r#"{"message":"Hello, World!"}"#);
}

#[test]
fn expect_100_continue() {
    let s = server();
    let mut c = s.connect();
    c.write_all(
        b"POST /echo HTTP/1.1\r\nHost: a\r\nContent-Length: 4\r\nExpect: 100-continue\r\n\r\n",
    )
    .unwrap();
    let interim = read_response(&mut c, false).unwrap();
    assert_eq!(interim.status, 100);
    c.write_all(b"data").unwrap();
    assert_eq!(read_response(&mut c, false).unwrap().text(), "data");
}

#[test]
fn options_star() {
    let r = exchange(&server(), b"OPTIONS * HTTP/1.1\r\nHost: a\r\n\r\n");
    assert_eq!(r.status, 200);
    assert_eq!(
        r.header("allow").as_deref(),
        Some("GET, HEAD, POST, PUT, OPTIONS")
    );
}

#[test]
fn absolute_form_target() {
    let r = exchange(
        &server(),
        b"GET http://example.com/plaintext HTTP/1.1\r\nHost: example.com\r\n\r\n",
    );
    assert_eq!((r.status, r.text().as_str()), (200, "Hello, World!"));
}

#[test]
fn http10_closes_unless_keep_alive() {
    let s = server();
    let mut c = s.connect();
    c.write_all(b"GET /plaintext HTTP/1.0\r\nConnection: keep-alive\r\n\r\n")
        .unwrap();
    let r = read_response(&mut c, false).unwrap();
    assert_eq!(r.header("connection").as_deref(), Some("keep-alive"));
    c.write_all(b"GET /plaintext HTTP/1.0\r\n\r\n").unwrap();
    let r = read_response(&mut c, false).unwrap();
    assert_eq!(r.header("connection").as_deref(), Some("close"));
    assert!(closed(&mut c));
}

#[test]
fn connection_close_is_honoured() {
    let s = server();
    let mut c = s.connect();
    c.write_all(b"GET /plaintext HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n")
        .unwrap();
    let mut all = Vec::new();
    c.read_to_end(&mut all).unwrap();
    let text = String::from_utf8(all).unwrap();
    assert!(
        text.contains("Connection: close\r\n") && text.ends_with("Hello, World!"),
        "{text}"
    );
}

#[test]
fn large_chunked_echo() {
    let s = server();
    let mut c = s.connect();
    let body: Vec<u8> = (0..300_000u32).map(|i| (i % 251) as u8).collect();
    let mut req = b"POST /echo HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n".to_vec();
    for chunk in body.chunks(7000) {
        req.extend_from_slice(format!("{:x}\r\n", chunk.len()).as_bytes());
        req.extend_from_slice(chunk);
        req.extend_from_slice(b"\r\n");
    }
    req.extend_from_slice(b"0\r\n\r\n");
    let writer = {
        let mut w = c.try_clone().unwrap();
        std::thread::spawn(move || w.write_all(&req).unwrap())
    };
    let r = read_response(&mut c, false).unwrap();
    writer.join().unwrap();
    assert_eq!(r.body, body);
}

#[test]
fn curl_client() {
    let s = server();
    let out = std::process::Command::new("curl")
        .args([
            "-sS",
            "--http1.1",
            "-o",
            "-",
            "-w",
            "\n%{http_code} %{num_connects}",
            &s.url("/plaintext"),
            &s.url("/json"),
        ])
        .output()
        .expect("curl is installed");
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{text} {}",
        String::from_utf8_lossy(&out.stderr)
    );
    // Both requests on one connection (keep-alive): the second reports 0 new connects.
    assert!(text.starts_with("Hello, World!\n200 1"), "{text}");
    assert!(
        text.ends_with("{\"message\":\"Hello, World!\"}\n200 0"),
        "{text}"
    );
    let out = std::process::Command::new("curl")
        .args([
            "-sS",
            "-d",
            "@-",
            "-H",
            "Expect: 100-continue",
            &s.url("/echo"),
        ])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .and_then(|mut ch| {
            ch.stdin.take().unwrap().write_all(b"posted by curl")?;
            ch.wait_with_output()
        })
        .unwrap();
    assert_eq!(String::from_utf8_lossy(&out.stdout), "posted by curl");
}

#[test]
fn date_header_advances() {
    let s = server();
    let d1 = httpdate::parse_http_date(&get(&s, "/plaintext").header("date").unwrap()).unwrap();
    std::thread::sleep(Duration::from_millis(2100));
    let d2 = httpdate::parse_http_date(&get(&s, "/plaintext").header("date").unwrap()).unwrap();
    assert!(d2.duration_since(d1).unwrap() >= Duration::from_secs(1));
}

#[test]
fn single_shot_fallbacks_serve_the_same() {
    // The path taken on kernels without multishot operations or DEFER_TASKRUN.
    starved_buffers_serve_the_same(false);
}

#[test]
fn starved_multishot_receives_rearm() {
    starved_buffers_serve_the_same(true);
}

fn starved_buffers_serve_the_same(multishot: bool) {
    let root = tempdir("fallback");
    let big = write_random(&root.join("big.bin"), 3 * 1024 * 1024 + 7);
    let s = Server::with_config(
        &format!(
            "builtins = true\nroot = {:?}\n[engine]\nmultishot = {multishot}\ndefer_taskrun = {multishot}\nbuffer_count = 16\nbuffer_size = 512\n",
            root.to_str().unwrap()
        ),
        &[],
    );
    let mut c = s.connect();
    c.write_all(&b"GET /plaintext HTTP/1.1\r\nHost: a\r\n\r\n".repeat(40))
        .unwrap();
    for _ in 0..40 {
        assert_eq!(
            read_response(&mut c, false).unwrap().text(),
            "Hello, World!"
        );
    }
    c.write_all(b"GET /big.bin HTTP/1.1\r\nHost: a\r\n\r\n")
        .unwrap();
    assert!(read_response(&mut c, false).unwrap().body == big);
    let body = vec![b'z'; 100_000];
    let mut req = format!(
        "POST /echo HTTP/1.1\r\nHost: a\r\nContent-Length: {}\r\n\r\n",
        body.len()
    )
    .into_bytes();
    req.extend_from_slice(&body);
    c.write_all(&req).unwrap();
    assert!(read_response(&mut c, false).unwrap().body == body);
    // Many connections at once with only 16 receive buffers: starved receives re-arm.
    let mut conns: Vec<_> = (0..64).map(|_| s.connect()).collect();
    for c in &mut conns {
        c.write_all(b"GET /json HTTP/1.1\r\nHost: a\r\n\r\n")
            .unwrap();
    }
    for c in &mut conns {
        assert_eq!(read_response(c, false).unwrap().status, 200);
    }
}
