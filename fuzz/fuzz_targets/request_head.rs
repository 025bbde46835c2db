//! `parse_head` on arbitrary bytes, with the default limits and with small
//! ones (so that the limit checks are reached with short inputs).
//!
//! Properties:
//! - it never panics;
//! - a complete head took `0 < len <= buf.len()` bytes, and parsing
//!   `buf[..len]` alone gives the same head;
//! - every proper prefix of a complete head is incomplete (`Ok(None)`), so
//!   the answer never depends on where the bytes were cut.
#![no_main]

use libfuzzer_sys::fuzz_target;
use peregrine::http::parse::{Framing, Head, header_buf, parse_head};
use peregrine::http::{Error, Limits, Method, Version};

/// Everything a caller sees of a parsed head.
#[derive(Clone, Debug, PartialEq, Eq)]
struct Summary {
    len: usize,
    method: Method,
    target: String,
    path: String,
    query: Option<String>,
    version: Version,
    keep_alive: bool,
    host: Option<String>,
    framing: Framing,
    expect_continue: bool,
    headers: Vec<(String, Vec<u8>)>,
}

fn summary(h: &Head<'_>) -> Summary {
    Summary {
        len: h.len,
        method: h.req.method,
        target: h.req.target.to_string(),
        path: h.req.path.to_string(),
        query: h.req.query.map(str::to_string),
        version: h.req.version,
        keep_alive: h.req.keep_alive,
        host: h.req.host().map(str::to_string),
        framing: h.framing,
        expect_continue: h.expect_continue,
        headers: h
            .req
            .headers()
            .map(|(n, v)| (n.to_string(), v.to_vec()))
            .collect(),
    }
}

fn parse(buf: &[u8], limits: &Limits) -> Result<Option<Summary>, Error> {
    let mut storage = header_buf();
    parse_head(buf, &mut storage, limits).map(|h| h.as_ref().map(summary))
}

fn check(buf: &[u8], limits: &Limits) {
    let Ok(Some(head)) = parse(buf, limits) else {
        return;
    };
    assert!(head.len > 0 && head.len <= buf.len(), "len {}", head.len);
    assert_eq!(parse(&buf[..head.len], limits), Ok(Some(head.clone())));
    assert!(head.path.starts_with('/') || head.path == "*" || head.method == Method::Connect);
    if let Framing::Length(n) = head.framing {
        assert!(n > 0 && n <= limits.max_request_body_size);
    }
    // Proper prefixes: all of them for short heads, a spread for long ones.
    let step = (head.len / 256).max(1);
    for k in (0..head.len).step_by(step).chain([head.len - 1]) {
        assert_eq!(
            parse(&buf[..k], limits),
            Ok(None),
            "prefix of {k} bytes of a {}-byte head",
            head.len
        );
    }
}

fuzz_target!(|data: &[u8]| {
    check(data, &Limits::default());
    check(
        data,
        &Limits {
            max_request_line_size: 64,
            max_request_headers_total_size: 128,
            max_request_header_count: 4,
            max_request_body_size: 1000,
            ..Limits::default()
        },
    );
});
