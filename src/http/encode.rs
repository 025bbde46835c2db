//! Response-head encoding into a connection's output buffer.

use super::response::{Body, Response};

/// The interim response to `Expect: 100-continue`.
pub const CONTINUE: &[u8] = b"HTTP/1.1 100 Continue\r\n\r\n";

/// The `Server` header value.
pub const SERVER: &str = concat!("peregrine/", env!("CARGO_PKG_VERSION"));

/// The `Server` field and the start of the `Date` field, written together.
const SERVER_DATE: &str = concat!(
    "Server: peregrine/",
    env!("CARGO_PKG_VERSION"),
    "\r\nDate: "
);

/// The status line of a 200, then [`SERVER_DATE`].
const OK_SERVER_DATE: &str = concat!(
    "HTTP/1.1 200 OK\r\nServer: peregrine/",
    env!("CARGO_PKG_VERSION"),
    "\r\nDate: "
);

/// What the `Connection` header must say.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Persist {
    /// HTTP/1.1 keep-alive: nothing to say.
    KeepAlive,
    /// HTTP/1.0 keep-alive: `Connection: keep-alive`.
    KeepAlive10,
    /// `Connection: close`.
    Close,
}

/// The standard reason phrase for `status`.
pub fn reason(status: u16) -> &'static str {
    match status {
        100 => "Continue",
        101 => "Switching Protocols",
        102 => "Processing",
        103 => "Early Hints",
        200 => "OK",
        201 => "Created",
        202 => "Accepted",
        203 => "Non-Authoritative Information",
        204 => "No Content",
        205 => "Reset Content",
        206 => "Partial Content",
        207 => "Multi-Status",
        208 => "Already Reported",
        226 => "IM Used",
        300 => "Multiple Choices",
        301 => "Moved Permanently",
        302 => "Found",
        303 => "See Other",
        304 => "Not Modified",
        305 => "Use Proxy",
        307 => "Temporary Redirect",
        308 => "Permanent Redirect",
        400 => "Bad Request",
        401 => "Unauthorized",
        402 => "Payment Required",
        403 => "Forbidden",
        404 => "Not Found",
        405 => "Method Not Allowed",
        406 => "Not Acceptable",
        407 => "Proxy Authentication Required",
        408 => "Request Timeout",
        409 => "Conflict",
        410 => "Gone",
        411 => "Length Required",
        412 => "Precondition Failed",
        413 => "Content Too Large",
        414 => "URI Too Long",
        415 => "Unsupported Media Type",
        416 => "Range Not Satisfiable",
        417 => "Expectation Failed",
        421 => "Misdirected Request",
        422 => "Unprocessable Content",
        423 => "Locked",
        424 => "Failed Dependency",
        425 => "Too Early",
        426 => "Upgrade Required",
        428 => "Precondition Required",
        429 => "Too Many Requests",
        431 => "Request Header Fields Too Large",
        451 => "Unavailable For Legal Reasons",
        500 => "Internal Server Error",
        501 => "Not Implemented",
        502 => "Bad Gateway",
        503 => "Service Unavailable",
        504 => "Gateway Timeout",
        505 => "HTTP Version Not Supported",
        506 => "Variant Also Negotiates",
        507 => "Insufficient Storage",
        508 => "Loop Detected",
        511 => "Network Authentication Required",
        // An unregistered code has no reason phrase (RFC 9112 §4 allows
        // none).
        _ => "",
    }
}

/// Whether a response with `status` may carry a body and `Content-Length`.
pub fn allows_body(status: u16) -> bool {
    !(status < 200 || status == 204 || status == 304)
}

/// How a response body is delimited on the wire.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Framing {
    /// `Content-Length: n`.
    Length(u64),
    /// `Transfer-Encoding: chunked` (HTTP/1.1, length unknown).
    Chunked,
    /// Neither: the body ends when the connection closes (HTTP/1.0, length
    /// unknown).
    Close,
    /// After `101 Switching Protocols`: the bytes that follow belong to the
    /// new protocol, both ways, until either side closes.
    Tunnel,
}

/// Appends the head of `resp` to `out`, then its in-memory body unless
/// `head_only`. File bodies are left to the caller.
/// `extra` holds whole header lines (CRLF-terminated) added to every response,
/// such as `Strict-Transport-Security`.
pub fn encode(
    out: &mut Vec<u8>,
    resp: &Response,
    date: &[u8],
    extra: &[u8],
    persist: Persist,
    head_only: bool,
) {
    let status = resp.status;
    encode_head(
        out,
        resp,
        date,
        extra,
        persist,
        Framing::Length(resp.body.len()),
    );
    if head_only || !allows_body(status) {
        return;
    }
    match &resp.body {
        Body::Static(b) => out.extend_from_slice(b),
        Body::Bytes(b) => out.extend_from_slice(b),
        Body::Shared(b) => out.extend_from_slice(b),
        Body::Empty | Body::File(_) => {}
    }
}

/// Appends the head of `resp` to `out` with the body delimited by `framing`
/// (nothing is said of the body where the status allows none).
pub fn encode_head(
    out: &mut Vec<u8>,
    resp: &Response,
    date: &[u8],
    extra: &[u8],
    persist: Persist,
    framing: Framing,
) {
    let status = resp.status;
    match status {
        200 => out.extend_from_slice(OK_SERVER_DATE.as_bytes()),
        _ => {
            out.extend_from_slice(b"HTTP/1.1 ");
            out.extend_from_slice(itoa::Buffer::new().format(status).as_bytes());
            out.push(b' ');
            out.extend_from_slice(reason(status).as_bytes());
            out.extend_from_slice(b"\r\n");
            out.extend_from_slice(SERVER_DATE.as_bytes());
        }
    }
    out.extend_from_slice(date);
    out.extend_from_slice(b"\r\n");
    if let Some(ct) = &resp.content_type {
        line(out, "Content-Type", ct);
    }
    for (n, v) in &resp.headers {
        line(out, n, v);
    }
    out.extend_from_slice(extra);
    if allows_body(status) {
        match framing {
            Framing::Length(n) => {
                out.extend_from_slice(b"Content-Length: ");
                out.extend_from_slice(itoa::Buffer::new().format(n).as_bytes());
                out.extend_from_slice(b"\r\n");
            }
            Framing::Chunked => out.extend_from_slice(b"Transfer-Encoding: chunked\r\n"),
            Framing::Close | Framing::Tunnel => {}
        }
    }
    // A switch says `Connection: upgrade` among the handler's headers.
    if framing == Framing::Tunnel {
        out.extend_from_slice(b"\r\n");
        return;
    }
    match persist {
        Persist::KeepAlive => {}
        Persist::KeepAlive10 => out.extend_from_slice(b"Connection: keep-alive\r\n"),
        Persist::Close => out.extend_from_slice(b"Connection: close\r\n"),
    }
    out.extend_from_slice(b"\r\n");
}

/// Appends one chunk of a chunked body: size line, data, CRLF.
pub fn chunk(out: &mut Vec<u8>, data: &[u8]) {
    if data.is_empty() {
        return;
    }
    chunk_size(out, data.len() as u64);
    out.extend_from_slice(data);
    out.extend_from_slice(b"\r\n");
}

/// Appends a chunk-size line for `n` bytes of data that follow.
pub fn chunk_size(out: &mut Vec<u8>, n: u64) {
    let mut digits = [0u8; 16];
    let mut i = digits.len();
    let mut v = n;
    loop {
        i -= 1;
        digits[i] = b"0123456789abcdef"[(v & 15) as usize];
        v >>= 4;
        if v == 0 {
            break;
        }
    }
    out.extend_from_slice(&digits[i..]);
    out.extend_from_slice(b"\r\n");
}

/// Appends the last chunk and the trailer section of a chunked body.
pub fn last_chunk(out: &mut Vec<u8>, trailers: &[(super::response::Text, super::response::Text)]) {
    out.extend_from_slice(b"0\r\n");
    for (n, v) in trailers {
        line(out, n, v);
    }
    out.extend_from_slice(b"\r\n");
}

/// Appends one `name: value` field line.
pub(crate) fn line(out: &mut Vec<u8>, name: &str, value: &str) {
    out.extend_from_slice(name.as_bytes());
    out.extend_from_slice(b": ");
    out.extend_from_slice(value.as_bytes());
    out.extend_from_slice(b"\r\n");
}

#[cfg(test)]
mod tests {
    use super::*;

    const DATE: &[u8] = b"Sun, 06 Nov 1994 08:49:37 GMT";

    fn enc(resp: &Response, persist: Persist, head_only: bool) -> String {
        let mut out = Vec::new();
        encode(&mut out, resp, DATE, b"", persist, head_only);
        String::from_utf8(out).unwrap()
    }

    #[test]
    fn plaintext() {
        let r = Response::new(200)
            .content_type("text/plain")
            .body(Body::Static(b"Hello, World!"));
        assert_eq!(
            enc(&r, Persist::KeepAlive, false),
            format!(
                "HTTP/1.1 200 OK\r\nServer: {SERVER}\r\nDate: Sun, 06 Nov 1994 08:49:37 GMT\r\nContent-Type: text/plain\r\nContent-Length: 13\r\n\r\nHello, World!"
            )
        );
    }

    #[test]
    fn head_and_close() {
        let r = Response::new(404).body(Body::Static(b"gone"));
        let s = enc(&r, Persist::Close, true);
        assert!(s.starts_with("HTTP/1.1 404 Not Found\r\n"));
        assert!(s.ends_with("Content-Length: 4\r\nConnection: close\r\n\r\n"));
    }

    #[test]
    fn chunked_framing() {
        let mut out = Vec::new();
        encode_head(
            &mut out,
            &Response::new(200),
            DATE,
            b"",
            Persist::KeepAlive,
            Framing::Chunked,
        );
        let s = String::from_utf8(out).unwrap();
        assert!(s.ends_with("Transfer-Encoding: chunked\r\n\r\n"));
        assert!(!s.contains("Content-Length"));
        let mut out = Vec::new();
        chunk(&mut out, &[b'x'; 300]);
        assert!(out.starts_with(b"12c\r\nxxx"));
        assert!(out.ends_with(b"x\r\n"));
        let mut out = Vec::new();
        chunk(&mut out, b"");
        assert!(out.is_empty());
        last_chunk(&mut out, &[("X-Sum".into(), "1".into())]);
        assert_eq!(out, b"0\r\nX-Sum: 1\r\n\r\n");
        let mut out = Vec::new();
        chunk_size(&mut out, 0);
        assert_eq!(out, b"0\r\n");
    }

    #[test]
    fn not_modified_has_no_length() {
        let r = Response::new(304).header("ETag", "\"x\"");
        let s = enc(&r, Persist::KeepAlive10, false);
        assert!(!s.contains("Content-Length"));
        assert!(s.contains("ETag: \"x\"\r\nConnection: keep-alive\r\n\r\n"));
    }
}
