use super::super::record::{END_REQUEST, STDERR, STDOUT, stream};
use super::*;

fn end(out: &mut Vec<u8>, protocol_status: u8) {
    out.extend_from_slice(&[
        1,
        END_REQUEST,
        0,
        1,
        0,
        8,
        0,
        0,
        0,
        0,
        0,
        0,
        protocol_status,
        0,
        0,
        0,
    ]);
}

fn records(stdout: &[&[u8]], stderr: &[u8]) -> Vec<u8> {
    let mut b = Vec::new();
    if !stderr.is_empty() {
        stream(&mut b, STDERR, stderr);
    }
    for s in stdout {
        stream(&mut b, STDOUT, s);
    }
    stream(&mut b, STDOUT, &[]);
    end(&mut b, 0);
    b
}

/// `input` fed in pieces of `step` bytes.
fn http(input: &[u8], step: usize, head_request: bool) -> Result<String, FcgiError> {
    let mut r = Inbound::new(false);
    r.start(head_request);
    let mut out = Vec::new();
    for piece in input.chunks(step.max(1)) {
        r.feed(piece, &mut out)?;
    }
    Ok(String::from_utf8(out).unwrap())
}

fn got_head(input: &[u8]) -> String {
    let whole = http(input, 1000, false).unwrap();
    whole.split_once("\r\n\r\n").unwrap().0.to_string()
}

/// A chunked body's data (sizes in hex, no extensions).
fn dechunk(mut b: &str) -> String {
    let mut out = String::new();
    loop {
        let (size, rest) = b.split_once("\r\n").unwrap();
        let n = usize::from_str_radix(size, 16).unwrap();
        if n == 0 {
            assert_eq!(rest, "\r\n");
            return out;
        }
        out.push_str(&rest[..n]);
        b = &rest[n + 2..];
    }
}

#[test]
fn responses_become_http() {
    let input = records(
        &[
            b"Status: 404 Not Found\r\nContent-Type: text/html\r\nX-A: 1\r\n\r\nhello",
            b" world",
        ],
        b"",
    );
    let got = http(&input, 1000, false).unwrap();
    assert_eq!(
        got,
        "HTTP/1.1 404 Not Found\r\nContent-Type: text/html\r\nX-A: 1\r\nTransfer-Encoding: chunked\r\n\r\n\
         5\r\nhello\r\n6\r\n world\r\n0\r\n\r\n"
    );
    // Fed a byte or a few at a time, the same head and body (in more chunks).
    for step in [1, 3, 7] {
        let got = http(&input, step, false).unwrap();
        let (head, body) = got.split_once("\r\n\r\n").unwrap();
        assert_eq!(head, got_head(&input));
        assert_eq!(dechunk(body), "hello world", "step {step}");
    }
    // LF-only lines, no Status: 200; a Location alone: 302.
    let got = http(
        &records(&[b"Content-Type: text/plain\n\nok"], b""),
        5,
        false,
    )
    .unwrap();
    assert!(
        got.starts_with("HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\n"),
        "{got}"
    );
    let got = http(&records(&[b"Location: /x\r\n\r\n"], b""), 2, false).unwrap();
    assert!(
        got.starts_with("HTTP/1.1 302 Found\r\nLocation: /x\r\n"),
        "{got}"
    );
    // The responder's framing fields are dropped; HEAD and 304 carry no body.
    let got = http(
        &records(
            &[b"Content-Length: 99\r\nTransfer-Encoding: x\r\n\r\nbody"],
            b"",
        ),
        4,
        true,
    )
    .unwrap();
    assert_eq!(got, "HTTP/1.1 200 OK\r\n\r\n");
    let got = http(&records(&[b"Status: 304\r\n\r\nbody"], b""), 4, false).unwrap();
    assert_eq!(got, "HTTP/1.1 304 Status\r\nContent-Length: 0\r\n\r\n");
    // Without KEEP_CONN the response says the connection closes.
    let mut r = Inbound::new(true);
    r.start(false);
    let mut out = Vec::new();
    r.feed(&records(&[b"\r\n\r\nx"], b""), &mut out).unwrap();
    assert!(
        String::from_utf8(out)
            .unwrap()
            .contains("Connection: close\r\n")
    );
}

#[test]
fn stderr_is_kept_and_errors_are_errors() {
    let mut r = Inbound::new(false);
    r.start(false);
    let mut out = Vec::new();
    r.feed(&records(&[b"\r\n\r\n"], b"PHP Warning: x"), &mut out)
        .unwrap();
    assert_eq!(r.take_stderr(), b"PHP Warning: x");
    assert!(r.take_stderr().is_empty());
    // Bad header lines and statuses.
    for bad in [
        &b"no colon\r\n\r\n"[..],
        b"Status: abc\r\n\r\n",
        b"Status: 2000\r\n\r\n",
        b"Bad Name: x\r\n\r\n",
        b"X: a\x01b\r\n\r\n",
    ] {
        assert_eq!(
            http(&records(&[bad], b""), 100, false),
            Err(FcgiError::BadHeader),
            "{bad:?}"
        );
    }
    // A record of another request, a bad version, a type a responder never sends.
    let mut b = records(&[b"\r\n\r\n"], b"");
    b[3] = 2;
    assert_eq!(http(&b, 100, false), Err(FcgiError::BadRecord));
    let mut b = records(&[b"\r\n\r\n"], b"");
    b[0] = 2;
    assert_eq!(http(&b, 100, false), Err(FcgiError::BadRecord));
    let mut b = Vec::new();
    stream(&mut b, 5, b"stdin?");
    assert_eq!(http(&b, 100, false), Err(FcgiError::BadRecord));
    // END_REQUEST with no header section; refused; records after the end.
    let mut b = Vec::new();
    end(&mut b, 0);
    assert_eq!(http(&b, 100, false), Err(FcgiError::Incomplete));
    let mut b = Vec::new();
    end(&mut b, 2);
    assert_eq!(http(&b, 100, false), Err(FcgiError::Refused));
    let mut b = records(&[b"\r\n\r\n"], b"");
    stream(&mut b, STDOUT, b"late");
    assert_eq!(http(&b, 100, false), Err(FcgiError::Incomplete));
    // An endless header section.
    let big = vec![b'a'; MAX_HEAD + 10];
    let mut b = Vec::new();
    stream(&mut b, STDOUT, b"X: ");
    stream(&mut b, STDOUT, &big);
    assert_eq!(http(&b, 70_000, false), Err(FcgiError::HeadTooLarge));
    // Errors stick.
    let mut r = Inbound::new(false);
    r.start(false);
    let mut out = Vec::new();
    assert!(r.feed(&[9; 8], &mut out).is_err());
    assert!(r.feed(&records(&[b"\r\n\r\n"], b""), &mut out).is_err());
    // Nothing may come before a request.
    let mut r = Inbound::new(false);
    assert_eq!(
        r.feed(&records(&[b"\r\n\r\n"], b""), &mut out),
        Err(FcgiError::Incomplete)
    );
}

#[test]
fn one_connection_answers_requests_in_turn() {
    let mut r = Inbound::new(false);
    let mut out = Vec::new();
    for i in 0..3 {
        r.start(false);
        let body = format!("n={i}");
        r.feed(
            &records(&[format!("\r\n\r\n{body}").as_bytes()], b""),
            &mut out,
        )
        .unwrap();
    }
    let text = String::from_utf8(out).unwrap();
    assert_eq!(text.matches("HTTP/1.1 200 OK").count(), 3);
    assert!(text.contains("3\r\nn=2\r\n0\r\n\r\n"));
}
