//! Every protocol refusal, over a real socket: the right status, then close.

mod common;
use common::*;
use std::io::Write;

fn refused(server: &Server, req: &[u8], status: u16) {
    let mut s = server.connect();
    s.write_all(req).unwrap();
    let r = read_response(&mut s, false)
        .unwrap_or_else(|e| panic!("{e} for {:?}", String::from_utf8_lossy(req)));
    assert_eq!(
        r.status,
        status,
        "for {:?}: {}",
        String::from_utf8_lossy(req),
        r.head
    );
    assert_eq!(
        r.header("connection").as_deref(),
        Some("close"),
        "{}",
        r.head
    );
    assert!(closed(&mut s), "connection left open after {status}");
}

fn server() -> Server {
    Server::start(&["--builtins", "--workers", "1"])
}

#[test]
fn malformed_request_line_is_400() {
    let s = server();
    refused(&s, b"GET\r\n\r\n", 400);
    refused(&s, b"GET /  HTTP/1.1\r\nHost: x\r\n\r\n", 400);
    refused(&s, b"GET / HTXP/1.1\r\nHost: x\r\n\r\n", 400);
    refused(&s, b"GET nopath HTTP/1.1\r\nHost: x\r\n\r\n", 400);
}

#[test]
fn malformed_header_is_400() {
    let s = server();
    refused(
        &s,
        b"GET / HTTP/1.1\r\nHost: x\r\nBad Header: y\r\n\r\n",
        400,
    );
    refused(&s, b"GET / HTTP/1.1\r\nHost: x\r\n: novalue\r\n\r\n", 400);
}

#[test]
fn missing_host_is_400() {
    refused(&server(), b"GET /plaintext HTTP/1.1\r\n\r\n", 400);
}

#[test]
fn two_hosts_is_400() {
    refused(
        &server(),
        b"GET /plaintext HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n",
        400,
    );
}

#[test]
fn invalid_host_is_400() {
    let s = server();
    for host in [
        "a b",
        "a:abc",
        "a:80:80",
        "a::80",
        "a:123456",
        "[::1",
        "a]",
        "[::1]x",
        "[::1]:x",
        "[]",
        "[1.2.3.4]",
        "u@a",
        "a%zz",
        "a/b",
    ] {
        refused(
            &s,
            format!("GET /plaintext HTTP/1.1\r\nHost: {host}\r\n\r\n").as_bytes(),
            400,
        );
    }
    // The absolute-form authority is checked the same way; userinfo is refused.
    for target in [
        "http://a:abc/plaintext",
        "http://a:80:80/plaintext",
        "http://[::1/plaintext",
        "http://a]/plaintext",
        "http://user@a/plaintext",
        "http://user:pw@a:80/plaintext",
        "http://:80/plaintext",
    ] {
        refused(
            &s,
            format!("GET {target} HTTP/1.1\r\nHost: a\r\n\r\n").as_bytes(),
            400,
        );
    }
    // Valid forms, including an empty port, are served.
    for host in ["[::1]:8080", "a:", "127.0.0.1:80", "[v1.x]"] {
        let r = exchange(
            &s,
            format!("GET /plaintext HTTP/1.1\r\nHost: {host}\r\n\r\n").as_bytes(),
        );
        assert_eq!(r.status, 200, "Host: {host}: {}", r.head);
    }
    let r = exchange(
        &s,
        b"GET http://[::1]:1/plaintext HTTP/1.1\r\nHost: a\r\n\r\n",
    );
    assert_eq!(r.status, 200, "{}", r.head);
}

#[test]
fn content_length_with_transfer_encoding_is_400() {
    refused(
        &server(),
        b"POST /echo HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
        400,
    );
}

#[test]
fn bad_content_length_is_400() {
    let s = server();
    refused(
        &s,
        b"POST /echo HTTP/1.1\r\nHost: a\r\nContent-Length: 3\r\nContent-Length: 3\r\n\r\nabc",
        400,
    );
    refused(
        &s,
        b"POST /echo HTTP/1.1\r\nHost: a\r\nContent-Length: 3\r\nContent-Length: 4\r\n\r\nabcd",
        400,
    );
    refused(
        &s,
        b"POST /echo HTTP/1.1\r\nHost: a\r\nContent-Length: 3, 3\r\n\r\nabc",
        400,
    );
    refused(
        &s,
        b"POST /echo HTTP/1.1\r\nHost: a\r\nContent-Length: -1\r\n\r\n",
        400,
    );
    refused(
        &s,
        b"POST /echo HTTP/1.1\r\nHost: a\r\nContent-Length: 1e3\r\n\r\n",
        400,
    );
}

#[test]
fn transfer_encoding_not_ending_in_chunked_is_refused() {
    let s = server();
    refused(
        &s,
        b"POST /echo HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked, identity\r\n\r\n",
        400,
    );
    refused(
        &s,
        b"POST /echo HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: gzip\r\n\r\n",
        501,
    );
}

#[test]
fn transfer_encoding_on_http10_is_400() {
    refused(
        &server(),
        b"POST /echo HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
        400,
    );
}

#[test]
fn bad_chunk_size_is_400() {
    refused(&server(), b"POST /echo HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\nxyz\r\nabc\r\n0\r\n\r\n", 400);
}

#[test]
fn missing_chunk_crlf_is_400() {
    refused(&server(), b"POST /echo HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabcd\r\n0\r\n\r\n", 400);
}

#[test]
fn obs_fold_is_400() {
    refused(
        &server(),
        b"GET /plaintext HTTP/1.1\r\nHost: a\r\nX-Long: one\r\n two\r\n\r\n",
        400,
    );
}

#[test]
fn whitespace_before_colon_is_400() {
    refused(
        &server(),
        b"GET /plaintext HTTP/1.1\r\nHost : a\r\n\r\n",
        400,
    );
}

#[test]
fn long_request_line_is_414() {
    let s = server();
    let req = format!("GET /{} HTTP/1.1\r\nHost: a\r\n\r\n", "a".repeat(9 * 1024));
    refused(&s, req.as_bytes(), 414);
}

#[test]
fn too_many_headers_is_431() {
    let s = server();
    let headers: String = (0..101).map(|i| format!("X-{i}: v\r\n")).collect();
    let req = format!("GET /plaintext HTTP/1.1\r\nHost: a\r\n{headers}\r\n");
    refused(&s, req.as_bytes(), 431);
}

#[test]
fn headers_too_large_is_431() {
    let s = server();
    let req = format!(
        "GET /plaintext HTTP/1.1\r\nHost: a\r\nX-Big: {}\r\n\r\n",
        "b".repeat(33 * 1024)
    );
    refused(&s, req.as_bytes(), 431);
}

#[test]
fn body_over_limit_is_413_before_reading_it() {
    let s = server();
    // The declared length is refused at once; the body is never sent.
    refused(
        &s,
        b"POST /echo HTTP/1.1\r\nHost: a\r\nContent-Length: 30000001\r\n\r\n",
        413,
    );
}

#[test]
fn chunked_body_over_configured_limit_is_413() {
    let s = Server::with_config(
        "builtins = true\n[limits]\nmax_request_body_size = 10\n",
        &[],
    );
    refused(&s, b"POST /echo HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n8\r\n12345678\r\n8\r\n12345678\r\n0\r\n\r\n", 413);
}

#[test]
fn unsupported_version_is_505() {
    let s = server();
    refused(&s, b"GET /plaintext HTTP/2.0\r\nHost: a\r\n\r\n", 505);
    refused(&s, b"GET /plaintext HTTP/1.2\r\nHost: a\r\n\r\n", 505);
}

#[test]
fn unknown_method_is_501() {
    refused(
        &server(),
        b"BREW /plaintext HTTP/1.1\r\nHost: a\r\n\r\n",
        501,
    );
}

#[test]
fn unsupported_method_is_405_with_allow() {
    let s = server();
    let r = exchange(&s, b"DELETE /plaintext HTTP/1.1\r\nHost: a\r\n\r\n");
    assert_eq!(r.status, 405);
    assert_eq!(r.header("allow").as_deref(), Some("GET, HEAD, OPTIONS"));
    let r = exchange(&s, b"GET /echo HTTP/1.1\r\nHost: a\r\n\r\n");
    assert_eq!(r.status, 405);
    assert_eq!(r.header("allow").as_deref(), Some("POST, PUT, OPTIONS"));
    // A 405 for a request with a body keeps the connection usable.
    let mut c = s.connect();
    c.write_all(b"POST /plaintext HTTP/1.1\r\nHost: a\r\nContent-Length: 4\r\n\r\nbodyGET /plaintext HTTP/1.1\r\nHost: a\r\n\r\n")
        .unwrap();
    assert_eq!(read_response(&mut c, false).unwrap().status, 405);
    let r = read_response(&mut c, false).unwrap();
    assert_eq!((r.status, r.text().as_str()), (200, "Hello, World!"));
}

#[test]
fn unsupported_expectation_is_417() {
    refused(
        &server(),
        b"POST /echo HTTP/1.1\r\nHost: a\r\nExpect: something\r\nContent-Length: 1\r\n\r\nx",
        417,
    );
}
