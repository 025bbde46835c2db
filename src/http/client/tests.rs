//! The response reader against a table of responses, fed whole, split at
//! every byte position and in random pieces; and against the server role's
//! own encoder.

use super::*;
use crate::http::Version;
use crate::http::encode::{Framing, Persist, encode_head};
use crate::http::mutate::{Rng, mutate as super_mutate, pipeline};
use crate::http::response::Response;

/// What the reader made of one response (or how it stopped).
#[derive(Clone, Debug, PartialEq, Eq)]
enum Got {
    Resp {
        status: u16,
        version: Version,
        reason: String,
        headers: Vec<(String, Vec<u8>)>,
        body: Vec<u8>,
        reuse: bool,
    },
    Upgraded(u16),
    Err(ClientError),
}

/// Feeds `pieces` in order, then the end of the connection.
fn run(limits: ResponseLimits, head_request: bool, pieces: &[&[u8]]) -> Vec<Got> {
    let mut r = ResponseReader::new(limits);
    r.set_head_request(head_request);
    let mut got = Vec::new();
    let mut body = Vec::new();
    let snapshot = |r: &ResponseReader, body: &mut Vec<u8>, reuse| Got::Resp {
        status: r.head().status,
        version: r.head().version,
        reason: r.head().reason().to_string(),
        headers: r
            .head()
            .headers()
            .map(|(n, v)| (n.to_string(), v.to_vec()))
            .collect(),
        body: std::mem::take(body),
        reuse,
    };
    for piece in pieces {
        let mut rest = *piece;
        loop {
            let p = match r.feed(rest) {
                Ok(p) => p,
                Err(e) => {
                    got.push(Got::Err(e));
                    assert_eq!(r.feed(b"more"), Err(e), "errors stick");
                    return got;
                }
            };
            assert!(p.consumed <= rest.len());
            match p.event {
                Event::NeedInput => {
                    assert_eq!(p.consumed, rest.len(), "NeedInput uses everything");
                    break;
                }
                Event::Head => body.clear(),
                Event::Body(range) => {
                    assert!(!range.is_empty() && range.end <= p.consumed);
                    body.extend_from_slice(&rest[range]);
                }
                Event::Complete { reuse } => got.push(snapshot(&r, &mut body, reuse)),
                Event::Upgraded => {
                    let again = r.feed(&rest[p.consumed..]).unwrap();
                    assert_eq!((again.consumed, again.event), (0, Event::Upgraded));
                    got.push(Got::Upgraded(r.head().status));
                    return got;
                }
            }
            rest = &rest[p.consumed..];
        }
    }
    match r.eof() {
        Ok(true) => got.push(snapshot(&r, &mut body, false)),
        Ok(false) => {}
        Err(e) => got.push(Got::Err(e)),
    }
    assert!(r.is_idle(), "eof resets");
    got
}

fn whole(head_request: bool, input: &[u8]) -> Vec<Got> {
    run(ResponseLimits::default(), head_request, &[input])
}

/// A short summary of a result: status, body and reuse of each response.
#[derive(Debug, PartialEq, Eq)]
enum Exp {
    R(u16, Vec<u8>, bool),
    Up(u16),
    E(ClientError),
}

/// A response with `status`, `body`, and whether the connection is reusable.
fn resp(status: u16, body: &[u8], reuse: bool) -> Exp {
    Exp::R(status, body.to_vec(), reuse)
}

fn summary(got: &[Got]) -> Vec<Exp> {
    got.iter()
        .map(|g| match g {
            Got::Resp {
                status,
                body,
                reuse,
                ..
            } => Exp::R(*status, body.clone(), *reuse),
            Got::Upgraded(s) => Exp::Up(*s),
            Got::Err(e) => Exp::E(*e),
        })
        .collect()
}

use ClientError::*;
use Exp::{E, Up};

/// (input, the request was HEAD, expected).
fn table() -> Vec<(&'static [u8], bool, Vec<Exp>)> {
    vec![
        (
            b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhello",
            false,
            vec![resp(200, b"hello", true)],
        ),
        (
            b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n",
            false,
            vec![resp(200, b"", true)],
        ),
        (
            b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n4;name=val\r\nWiki\r\n5 ; x\r\npedia\r\nE\r\n in\r\n\r\nchunks.\r\n0\r\nX-T: 1\r\nY: 2\r\n\r\n",
            false,
            vec![resp(200, b"Wikipedia in\r\n\r\nchunks.", true)],
        ),
        (
            b"HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip, Chunked\r\n\r\n2\r\n\x1f\x8b\r\n0\r\n\r\n",
            false,
            vec![resp(200, b"\x1f\x8b", true)],
        ),
        (
            b"HTTP/1.0 200 OK\r\n\r\nuntil the close",
            false,
            vec![resp(200, b"until the close", false)],
        ),
        (
            b"HTTP/1.1 500 Oops\r\nContent-Type: text/plain\r\n\r\nbody\r\n\r\nHTTP/1.1 200 OK",
            false,
            vec![resp(500, b"body\r\n\r\nHTTP/1.1 200 OK", false)],
        ),
        (
            b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked, gzip\r\n\r\nraw",
            false,
            vec![resp(200, b"raw", false)],
        ),
        (
            b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 103 Early Hints\r\nLink: </s.css>\r\n\r\nHTTP/1.1 201 Created\r\nContent-Length: 2\r\n\r\nok",
            false,
            vec![resp(201, b"ok", true)],
        ),
        (
            b"HTTP/1.1 204 No Content\r\nContent-Length: 5\r\n\r\nHTTP/1.1 304 Not Modified\r\nContent-Length: 10\r\nTransfer-Encoding: chunked\r\n\r\nHTTP/1.1 200 OK\r\nContent-Length: 1\r\n\r\nx",
            false,
            vec![resp(204, b"", true), resp(304, b"", true), resp(200, b"x", true)],
        ),
        (
            b"HTTP/1.1 200 OK\r\nContent-Length: 13\r\n\r\nHTTP/1.1 404 Not Found\r\nTransfer-Encoding: chunked\r\n\r\n",
            true,
            vec![resp(200, b"", true), resp(404, b"", true)],
        ),
        (
            b"HTTP/1.0 200 OK\r\nConnection: keep-alive\r\nContent-Length: 2\r\n\r\nokHTTP/1.0 200 OK\r\nContent-Length: 2\r\n\r\nok",
            false,
            vec![resp(200, b"ok", true), resp(200, b"ok", false)],
        ),
        (
            b"HTTP/1.1 200 OK\r\nConnection: Keep-Alive, Close\r\nContent-Length: 1\r\n\r\n1",
            false,
            vec![resp(200, b"1", false)],
        ),
        (
            b"HTTP/1.1 200 OK\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n1\r\nA\r\n0\r\n\r\n",
            false,
            vec![resp(200, b"A", false)],
        ),
        (
            b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nContent-Length: 2, 2\r\n\r\nokHTTP/1.1 200\r\nContent-Length: 0\r\n\r\n",
            false,
            vec![resp(200, b"ok", true), resp(200, b"", true)],
        ),
        (
            b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n\x81\x05hello",
            false,
            vec![Up(101)],
        ),
        // Pipelined: everything in one buffer.
        (
            b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhello\
HTTP/1.1 404 Not Found\r\ncontent-length: 0\r\n\r\n\
HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3;x=y\r\nabc\r\n10\r\n0123456789abcdef\r\n0\r\nX-T: 1\r\n\r\n\
HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 204 No Content\r\n\r\n\
HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: 2\r\n\r\nok",
            false,
            vec![
                resp(200, b"hello", true),
                resp(404, b"", true),
                resp(200, b"abc0123456789abcdef", true),
                resp(204, b"", true),
                resp(200, b"ok", false),
            ],
        ),
        // Errors.
        (b"HTTX/1.1 200 OK\r\n\r\n", false, vec![E(BadStatusLine)]),
        (b"SMTP ready\r\n\r\n", false, vec![E(BadStatusLine)]),
        (b"HTTP/1.1 20 OK\r\n\r\n", false, vec![E(BadStatusLine)]),
        (b"HTTP/1.1 099 Low\r\n\r\n", false, vec![E(BadStatusLine)]),
        (b"HTTP/2.0 200 OK\r\n\r\n", false, vec![E(BadStatusLine)]),
        (
            b"HTTP/1.1 200 OK\r\nBad Name: x\r\n\r\n",
            false,
            vec![E(BadHeader)],
        ),
        (
            b"HTTP/1.1 200 OK\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\nab",
            false,
            vec![E(BadContentLength)],
        ),
        (
            b"HTTP/1.1 200 OK\r\nContent-Length: 3, 4\r\n\r\nabcd",
            false,
            vec![E(BadContentLength)],
        ),
        (
            b"HTTP/1.1 200 OK\r\nContent-Length: -1\r\n\r\n",
            false,
            vec![E(BadContentLength)],
        ),
        (
            b"HTTP/1.1 200 OK\r\nContent-Length: 99999999999999999999\r\n\r\n",
            false,
            vec![E(BadContentLength)],
        ),
        (
            b"HTTP/1.0 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
            false,
            vec![E(EncodingOnHttp10)],
        ),
        (
            b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n",
            false,
            vec![E(BadChunk)],
        ),
        (
            b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n1\r\nab\r\n",
            false,
            vec![E(BadChunk)],
        ),
        (
            b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nabc",
            false,
            vec![E(Truncated)],
        ),
        (b"HTTP/1.1 200 OK\r\nX-Cut: ", false, vec![E(Truncated)]),
        (
            b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n",
            false,
            vec![E(Truncated)],
        ),
    ]
}

#[test]
fn table_of_responses() {
    for (input, head, want) in table() {
        assert_eq!(
            summary(&whole(head, input)),
            want,
            "{:?}",
            String::from_utf8_lossy(input)
        );
    }
}

#[test]
fn split_at_every_byte_gives_the_same_result() {
    for (input, head, _) in table() {
        let want = whole(head, input);
        for cut in 0..=input.len() {
            let (a, b) = input.split_at(cut);
            let got = run(ResponseLimits::default(), head, &[a, b]);
            assert_eq!(
                got,
                want,
                "cut at {cut}: {:?}",
                String::from_utf8_lossy(input)
            );
        }
        let bytes: Vec<&[u8]> = input.chunks(1).collect();
        assert_eq!(run(ResponseLimits::default(), head, &bytes), want);
    }
}

#[test]
fn heads_are_owned_and_complete() {
    let got = whole(
        false,
        b"HTTP/1.0 404 Not Found\r\nServer: x\r\nX-Multi: a\r\nx-multi: b\r\nConnection: keep-alive\r\nContent-Length: 0\r\n\r\n",
    );
    let Got::Resp {
        status,
        version,
        reason,
        headers,
        reuse,
        ..
    } = &got[0]
    else {
        panic!("{got:?}");
    };
    assert_eq!(
        (*status, *version, reason.as_str()),
        (404, Version::Http10, "Not Found")
    );
    assert!(*reuse);
    let names: Vec<&str> = headers.iter().map(|(n, _)| n.as_str()).collect();
    assert_eq!(
        names,
        [
            "Server",
            "X-Multi",
            "x-multi",
            "Connection",
            "Content-Length"
        ]
    );
    let mut r = ResponseReader::default();
    let p = r
        .feed(b"HTTP/1.1 200 OK\r\nX-Multi: a\r\nX-Multi: b\r\n\r\n")
        .unwrap();
    assert_eq!(p.event, Event::Head);
    assert_eq!(r.head().header("x-multi"), Some(&b"a"[..]));
    assert_eq!(r.head().header_str("X-MULTI"), Some("a"));
    assert!(!r.is_idle());
}

#[test]
fn mixed_head_and_get_pipeline() {
    let input = b"HTTP/1.1 200 OK\r\nContent-Length: 4\r\n\r\nHTTP/1.1 200 OK\r\nContent-Length: 4\r\n\r\nbody";
    let mut r = ResponseReader::default();
    r.set_head_request(true);
    let mut rest = &input[..];
    let mut events = Vec::new();
    loop {
        let p = r.feed(rest).unwrap();
        if let Event::Complete { .. } = p.event {
            r.set_head_request(false);
        }
        if p.event == Event::NeedInput {
            break;
        }
        events.push(p.event.clone());
        rest = &rest[p.consumed..];
    }
    assert_eq!(
        events,
        [
            Event::Head,
            Event::Complete { reuse: true },
            Event::Head,
            Event::Body(0..4),
            Event::Complete { reuse: true },
        ]
    );
}

#[test]
fn a_2xx_to_connect_switches() {
    let mut r = ResponseReader::default();
    r.set_connect_request(true);
    // Its framing fields say nothing: the bytes after the head are the
    // tunnel's.
    let input = b"HTTP/1.1 200 Connection Established\r\nContent-Length: 5\r\n\r\ntunnel bytes";
    let p = r.feed(input).unwrap();
    assert_eq!(p.event, Event::Upgraded);
    assert_eq!(r.head().status, 200);
    r.tunnel();
    let p = r.feed(&input[p.consumed..]).unwrap();
    assert_eq!(p.event, Event::Body(0..12));
    assert_eq!(r.eof(), Ok(true));
    // Any other answer is an ordinary response.
    let mut r = ResponseReader::default();
    r.set_connect_request(true);
    let input = b"HTTP/1.1 403 Forbidden\r\nContent-Length: 2\r\n\r\nno";
    let p = r.feed(input).unwrap();
    assert_eq!(p.event, Event::Head);
    let p = r.feed(&input[p.consumed..]).unwrap();
    assert_eq!(p.event, Event::Body(0..2));
}

#[test]
fn limits() {
    let small = ResponseLimits {
        max_head_size: 64,
        max_header_count: 2,
    };
    let fits = b"HTTP/1.1 200 OK\r\nA: 1\r\nB: 2\r\nContent-Length: 0\r\n\r\n";
    let three = ResponseLimits {
        max_header_count: 3,
        ..small
    };
    assert_eq!(summary(&run(three, false, &[fits])), [resp(200, b"", true)]);
    assert_eq!(summary(&run(small, false, &[fits])), [E(TooManyHeaders)]);
    let long = format!("HTTP/1.1 200 OK\r\nX: {}\r\n\r\n", "a".repeat(64));
    for pieces in [vec![long.as_bytes()], long.as_bytes().chunks(7).collect()] {
        assert_eq!(summary(&run(three, false, &pieces)), [E(HeadTooLarge)]);
    }
    // Exactly at the limit is fine, one more byte is not.
    let head = |n: usize| format!("HTTP/1.1 204 No Content\r\nX: {}\r\n\r\n", "a".repeat(n));
    let at = 64 - head(0).len();
    assert_eq!(head(at).len(), 64);
    assert_eq!(
        summary(&run(three, false, &[head(at).as_bytes()])),
        [resp(204, b"", true)]
    );
    assert_eq!(
        summary(&run(three, false, &[head(at + 1).as_bytes()])),
        [E(HeadTooLarge)]
    );
    // The default: 64 KiB.
    let big = format!("HTTP/1.1 200 OK\r\nX: {}\r\n\r\n", "a".repeat(64 * 1024));
    let got = run(
        ResponseLimits::default(),
        false,
        &big.as_bytes().chunks(1000).collect::<Vec<_>>(),
    );
    assert_eq!(summary(&got), [E(HeadTooLarge)]);
    // Trailers share the head limit.
    let trailers = format!(
        "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n0\r\nT: {}\r\n\r\n",
        "t".repeat(80)
    );
    assert_eq!(
        summary(&run(three, false, &[trailers.as_bytes()])),
        [E(TrailersTooLarge)]
    );
    // More header slots than the stack's small array.
    let many: String = (0..150).map(|i| format!("H{i}: v\r\n")).collect();
    let many = format!("HTTP/1.1 200 OK\r\n{many}Content-Length: 0\r\n\r\n");
    let wide = ResponseLimits {
        max_head_size: 64 * 1024,
        max_header_count: 200,
    };
    assert_eq!(
        summary(&run(wide, false, &[many.as_bytes()])),
        [resp(200, b"", true)]
    );
    assert_eq!(whole(false, many.as_bytes()), [Got::Err(TooManyHeaders)]);
}

#[test]
fn eof_and_reset() {
    let mut r = ResponseReader::default();
    assert_eq!(r.eof(), Ok(false), "nothing read");
    let p = r
        .feed(b"HTTP/1.1 200 OK\r\nContent-Length: 3\r\n\r\nab")
        .unwrap();
    assert_eq!(p.event, Event::Head);
    r.reset();
    assert!(r.is_idle());
    // A new connection starts with a head, not the rest of the old body.
    let input = b"HTTP/1.1 200 OK\r\nContent-Length: 1\r\n\r\nz";
    let p = r.feed(input).unwrap();
    assert_eq!(p.event, Event::Head);
    let p = r.feed(&input[p.consumed..]).unwrap();
    assert_eq!((p.consumed, p.event), (1, Event::Body(0..1)));
    // An error sticks until the end of the connection resets the reader.
    r.reset();
    assert_eq!(r.feed(b"XTTP/1.1 200 OK\r\n"), Err(BadStatusLine));
    assert_eq!(r.feed(b"HTTP/1.1 200 OK\r\n\r\n"), Err(BadStatusLine));
    assert_eq!(r.eof(), Err(BadStatusLine));
    assert!(r.is_idle());
    // A body that ends exactly with the input is complete before the close.
    let p = r
        .feed(b"HTTP/1.1 200 OK\r\nContent-Length: 1\r\n\r\nz")
        .unwrap();
    assert_eq!(p.event, Event::Head);
    assert_eq!(r.eof(), Err(Truncated));
}

#[test]
fn reads_what_the_server_role_writes() {
    const DATE: &[u8] = b"Sun, 06 Nov 1994 08:49:37 GMT";
    let mut out = Vec::new();
    let ok = Response::new(200).header("X-A", "1");
    encode_head(
        &mut out,
        &ok,
        DATE,
        b"",
        Persist::KeepAlive,
        Framing::Chunked,
    );
    chunk(&mut out, b"hello, ");
    chunk(&mut out, b"world");
    last_chunk(&mut out, &[("X-Sum".into(), "12".into())]);
    encode_head(
        &mut out,
        &Response::new(404),
        DATE,
        b"",
        Persist::Close,
        Framing::Length(0),
    );
    let got = whole(false, &out);
    let [
        Got::Resp {
            status: 200,
            headers,
            body,
            reuse: true,
            ..
        },
        Got::Resp {
            status: 404,
            reuse: false,
            ..
        },
    ] = &got[..]
    else {
        panic!("{got:?}");
    };
    assert_eq!(body, b"hello, world");
    assert!(headers.iter().any(|(n, v)| n == "X-A" && v == b"1"));
    assert!(headers.iter().any(|(n, _)| n == "Date"));
    let mut out = Vec::new();
    encode_head(
        &mut out,
        &Response::new(200),
        DATE,
        b"",
        Persist::Close,
        Framing::Close,
    );
    out.extend_from_slice(b"to the end");
    assert_eq!(
        summary(&whole(false, &out)),
        [resp(200, b"to the end", false)]
    );
}

const SEEDS: &[&[u8]] = &[
    b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhello",
    b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3;e=1\r\nabc\r\n0\r\nT: v\r\n\r\n",
    b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 204 No Content\r\n\r\n",
    b"HTTP/1.0 200 OK\r\nConnection: keep-alive\r\nContent-Length: 2\r\n\r\nok",
    b"HTTP/1.1 304 Not Modified\r\nContent-Length: 9\r\n\r\n",
    b"HTTP/1.1 404 Not Found\r\nConnection: close\r\n\r\nuntil close",
];

fn mutate(rng: &mut Rng, input: &mut Vec<u8>) {
    const BYTES: &[u8] = b" \r\n:;,0123456789abcdefABCDEF\t\x00\xff-";
    super_mutate(rng, input, BYTES, b'H');
}

#[test]
fn random_pieces_give_the_same_result() {
    let mut rng = Rng(0x9E37_79B9_7F4A_7C15);
    for round in 0..4000 {
        // A few pipelined, possibly mutated, responses.
        let input = pipeline(&mut rng, SEEDS, mutate);
        let head = rng.below(4) == 0;
        let limits = ResponseLimits {
            max_head_size: 40 + rng.below(80),
            max_header_count: 1 + rng.below(4),
        };
        let want = run(limits, head, &[&input]);
        let mut pieces = Vec::new();
        let mut rest = &input[..];
        while !rest.is_empty() {
            let n = if rng.below(4) == 0 {
                1
            } else {
                1 + rng.below(rest.len())
            };
            let (a, b) = rest.split_at(n.min(rest.len()));
            pieces.push(a);
            rest = b;
        }
        assert_eq!(
            run(limits, head, &pieces),
            want,
            "round {round}: {:?}",
            String::from_utf8_lossy(&input)
        );
    }
}
