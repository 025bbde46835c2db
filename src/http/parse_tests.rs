//! Request-head parser tests: acceptance, refusals, limits, framing.

use super::*;

/// Framing, keep-alive, path and host of a parsed head.
type Summary = (Framing, bool, String, Option<String>);

fn parse(input: &str) -> Result<Option<Summary>, Error> {
    let limits = Limits::default();
    let mut storage = header_buf();
    let buf = input.as_bytes();
    parse_head(buf, &mut storage, &limits).map(|h| {
        h.map(|h| {
            (
                h.framing,
                h.req.keep_alive,
                h.req.path.to_string(),
                h.req.host().map(str::to_string),
            )
        })
    })
}

fn err(input: &str) -> Error {
    parse(input).expect_err(input)
}

#[test]
fn simple_get() {
    let (framing, ka, path, host) = parse("GET /a?b HTTP/1.1\r\nHost: x\r\n\r\n")
        .unwrap()
        .unwrap();
    assert_eq!(
        (framing, ka, path.as_str(), host.as_deref()),
        (Framing::None, true, "/a", Some("x"))
    );
}

#[test]
fn partial_is_none() {
    assert_eq!(parse("GET / HTTP/1.1\r\nHost: x\r\n").unwrap(), None);
    assert_eq!(parse("GE").unwrap(), None);
}

#[test]
fn blank_lines_before_request_are_skipped() {
    assert!(
        parse("\r\n\r\nGET / HTTP/1.1\r\nHost: x\r\n\r\n")
            .unwrap()
            .is_some()
    );
}

#[test]
fn keep_alive_rules() {
    assert!(!parse("GET / HTTP/1.0\r\n\r\n").unwrap().unwrap().1);
    assert!(
        parse("GET / HTTP/1.0\r\nConnection: keep-alive\r\n\r\n")
            .unwrap()
            .unwrap()
            .1
    );
    assert!(
        !parse("GET / HTTP/1.1\r\nHost: x\r\nConnection: foo, close\r\n\r\n")
            .unwrap()
            .unwrap()
            .1
    );
}

#[test]
fn refusals() {
    assert_eq!(err("GET / HTTP/1.1\r\n\r\n"), Error::MissingHost);
    assert_eq!(
        err("GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n"),
        Error::MultipleHost
    );
    assert_eq!(err("GET / HTTP/1.1\r\nHost: a b\r\n\r\n"), Error::BadHost);
    assert_eq!(
        err(
            "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 1\r\nTransfer-Encoding: chunked\r\n\r\n"
        ),
        Error::LengthAndEncoding
    );
    assert_eq!(
        err("POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 1\r\nContent-Length: 1\r\n\r\n"),
        Error::BadContentLength
    );
    assert_eq!(
        err("POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 1, 1\r\n\r\n"),
        Error::BadContentLength
    );
    assert_eq!(
        err("POST / HTTP/1.1\r\nHost: a\r\nContent-Length: +1\r\n\r\n"),
        Error::BadContentLength
    );
    assert_eq!(
        err("POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 0x10\r\n\r\n"),
        Error::BadContentLength
    );
    assert_eq!(
        err("POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked, gzip\r\n\r\n"),
        Error::BadTransferEncoding
    );
    assert_eq!(
        err("POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: gzip, chunked\r\n\r\n"),
        Error::UnsupportedTransferEncoding
    );
    assert_eq!(
        err(
            "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n\r\n"
        ),
        Error::BadTransferEncoding
    );
    assert_eq!(
        err("POST / HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n"),
        Error::EncodingOnHttp10
    );
    assert_eq!(
        err("GET / HTTP/1.1\r\nHost: a\r\nX: a\r\n b\r\n\r\n"),
        Error::BadHeader
    );
    assert_eq!(err("GET / HTTP/1.1\r\nHost : a\r\n\r\n"), Error::BadHeader);
    assert_eq!(
        err("GET / HTTP/2.0\r\nHost: a\r\n\r\n"),
        Error::UnsupportedVersion
    );
    assert_eq!(
        err("GET / HTTP/1.2\r\nHost: a\r\n\r\n"),
        Error::UnsupportedVersion
    );
    assert_eq!(
        err("GET / HTXP/1.1\r\nHost: a\r\n\r\n"),
        Error::BadRequestLine
    );
    assert_eq!(
        err("BREW / HTTP/1.1\r\nHost: a\r\n\r\n"),
        Error::UnknownMethod
    );
    assert_eq!(err("GET foo HTTP/1.1\r\nHost: a\r\n\r\n"), Error::BadTarget);
    assert_eq!(err("GET * HTTP/1.1\r\nHost: a\r\n\r\n"), Error::BadTarget);
    assert_eq!(
        err("GET / HTTP/1.1\r\nHost: a\r\nExpect: teapot\r\n\r\n"),
        Error::BadExpectation
    );
    assert_eq!(
        err("GET  / HTTP/1.1\r\nHost: a\r\n\r\n"),
        Error::BadRequestLine
    );
}

#[test]
fn limits() {
    let long = format!("GET /{} HTTP/1.1\r\nHost: a\r\n\r\n", "a".repeat(9000));
    assert_eq!(err(&long), Error::RequestLineTooLong);
    let partial = format!("GET /{}", "a".repeat(9000));
    assert_eq!(err(&partial), Error::RequestLineTooLong);
    let big = format!(
        "GET / HTTP/1.1\r\nHost: a\r\nX: {}\r\n\r\n",
        "b".repeat(33 * 1024)
    );
    assert_eq!(err(&big), Error::HeadersTooLarge);
    let many: String = (0..101).map(|i| format!("X{i}: y\r\n")).collect();
    assert_eq!(
        err(&format!("GET / HTTP/1.1\r\nHost: a\r\n{many}\r\n")),
        Error::TooManyHeaders
    );
    assert_eq!(
        err("POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 30000001\r\n\r\n"),
        Error::BodyTooLarge
    );
}

/// The header-section limit counts the bytes sent, whitespace around
/// values included: a head that is refused while incomplete is refused
/// complete too, so the answer does not depend on where a read ends.
#[test]
fn header_limit_does_not_depend_on_where_input_is_cut() {
    let limits = Limits {
        max_request_headers_total_size: 64,
        ..Limits::default()
    };
    let at = |input: &[u8]| {
        let mut storage = header_buf();
        parse_head(input, &mut storage, &limits).map(|h| h.map(|h| h.len))
    };
    // "Host: a\r\n" (9 bytes) and "X:" + spaces + "v\r\n": 64 bytes in all
    // with 50 spaces.
    let head = |spaces: usize| {
        format!(
            "GET / HTTP/1.1\r\nHost: a\r\nX:{}v\r\n\r\n",
            " ".repeat(spaces)
        )
    };
    let fits = head(50);
    assert_eq!(at(fits.as_bytes()), Ok(Some(fits.len())));
    for k in 0..fits.len() {
        assert_eq!(at(&fits.as_bytes()[..k]), Ok(None), "prefix of {k}");
    }
    for spaces in [51, 53, 100] {
        let over = head(spaces);
        assert_eq!(at(over.as_bytes()), Err(Error::HeadersTooLarge), "{spaces}");
        for k in 0..over.len() {
            assert!(
                matches!(
                    at(&over.as_bytes()[..k]),
                    Ok(None) | Err(Error::HeadersTooLarge)
                ),
                "prefix of {k}"
            );
        }
    }
    // Line ends without CR count as sent, too.
    let lf = |spaces: usize| format!("GET / HTTP/1.1\nHost: a\nX:{}v\n\n", " ".repeat(spaces));
    assert_eq!(at(lf(52).as_bytes()), Ok(Some(lf(52).len())));
    assert_eq!(at(lf(53).as_bytes()), Err(Error::HeadersTooLarge));
}

#[test]
fn absolute_form_sets_host_and_path() {
    let (_, _, path, host) =
        parse("GET http://example.com:8080/x/y?q HTTP/1.1\r\nHost: other\r\n\r\n")
            .unwrap()
            .unwrap();
    assert_eq!(path, "/x/y");
    assert_eq!(host.as_deref(), Some("example.com:8080"));
    let (_, _, path, _) = parse("GET http://example.com HTTP/1.1\r\nHost: e\r\n\r\n")
        .unwrap()
        .unwrap();
    assert_eq!(path, "/");
}

#[test]
fn framing() {
    let f = |s: &str| parse(s).unwrap().unwrap().0;
    assert_eq!(
        f("POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\n\r\n"),
        Framing::Length(5)
    );
    assert_eq!(
        f("POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 0\r\n\r\n"),
        Framing::None
    );
    assert_eq!(
        f("POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: Chunked\r\n\r\n"),
        Framing::Chunked
    );
}
