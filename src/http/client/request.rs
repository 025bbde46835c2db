//! Request-head encoding.

use super::ClientError;
use crate::http::encode::line;

/// How a request body is delimited.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RequestBody {
    /// No body and no framing header.
    None,
    /// `Content-Length: n`; the caller appends the `n` body bytes.
    Length(u64),
    /// `Transfer-Encoding: chunked`; the caller appends the body with
    /// [`chunk`](super::chunk) and ends it with [`last_chunk`](super::last_chunk).
    Chunked,
}

/// Encodes the head of one HTTP/1.1 request: request line, `Host`, the
/// caller's header fields, the body framing and `Connection: close` when
/// asked for. Everything is checked before anything is written, so a value
/// cannot smuggle in a header line.
///
/// ```
/// use peregrine::http::client::{RequestBody, RequestEncoder};
/// let mut out = Vec::new();
/// RequestEncoder::new("POST", "/submit", "example.com")
///     .headers(&[("Accept", "*/*")])
///     .body(RequestBody::Length(2))
///     .encode(&mut out)
///     .unwrap();
/// out.extend_from_slice(b"hi");
/// assert_eq!(
///     out,
///     b"POST /submit HTTP/1.1\r\nHost: example.com\r\nAccept: */*\r\nContent-Length: 2\r\n\r\nhi"
/// );
/// ```
#[derive(Clone, Copy, Debug)]
pub struct RequestEncoder<'a> {
    method: &'a str,
    target: &'a str,
    host: &'a str,
    headers: &'a [(&'a str, &'a str)],
    body: RequestBody,
    close: bool,
}

impl<'a> RequestEncoder<'a> {
    /// A request for `target` (origin-form `/path?query`, or absolute-form
    /// for a proxy) with `Host: host`, no other fields and no body.
    pub fn new(method: &'a str, target: &'a str, host: &'a str) -> RequestEncoder<'a> {
        RequestEncoder {
            method,
            target,
            host,
            headers: &[],
            body: RequestBody::None,
            close: false,
        }
    }

    /// Header fields, written in order after `Host`. A `Host` field among
    /// them replaces the one given to [`RequestEncoder::new`].
    pub fn headers(mut self, headers: &'a [(&'a str, &'a str)]) -> Self {
        self.headers = headers;
        self
    }

    /// How the body that follows the head is delimited.
    pub fn body(mut self, body: RequestBody) -> Self {
        self.body = body;
        self
    }

    /// Whether to ask the server to close the connection after its response.
    pub fn close(mut self, close: bool) -> Self {
        self.close = close;
        self
    }

    /// Checks the request and appends its head to `out` (nothing is
    /// appended when a part is refused).
    pub fn encode(&self, out: &mut Vec<u8>) -> Result<(), ClientError> {
        self.check()?;
        out.extend_from_slice(self.method.as_bytes());
        out.push(b' ');
        out.extend_from_slice(self.target.as_bytes());
        out.extend_from_slice(b" HTTP/1.1\r\n");
        if !self
            .headers
            .iter()
            .any(|(n, _)| n.eq_ignore_ascii_case("host"))
        {
            line(out, "Host", self.host);
        }
        for (n, v) in self.headers {
            line(out, n, v);
        }
        match self.body {
            RequestBody::None => {}
            RequestBody::Length(n) => {
                out.extend_from_slice(b"Content-Length: ");
                out.extend_from_slice(itoa::Buffer::new().format(n).as_bytes());
                out.extend_from_slice(b"\r\n");
            }
            RequestBody::Chunked => out.extend_from_slice(b"Transfer-Encoding: chunked\r\n"),
        }
        if self.close {
            out.extend_from_slice(b"Connection: close\r\n");
        }
        out.extend_from_slice(b"\r\n");
        Ok(())
    }

    fn check(&self) -> Result<(), ClientError> {
        if !is_token(self.method) {
            return Err(ClientError::InvalidRequest("the method is not a token"));
        }
        if self.target.is_empty() || !self.target.bytes().all(|b| b.is_ascii_graphic()) {
            return Err(ClientError::InvalidRequest(
                "the target is empty or has spaces, control or non-ASCII characters",
            ));
        }
        if !valid_value(self.host) {
            return Err(ClientError::InvalidRequest(
                "the host has control characters",
            ));
        }
        for (n, v) in self.headers {
            if !is_token(n) {
                return Err(ClientError::InvalidRequest("a header name is not a token"));
            }
            if !valid_value(v) {
                return Err(ClientError::InvalidRequest(
                    "a header value has control characters",
                ));
            }
            if n.eq_ignore_ascii_case("content-length")
                || n.eq_ignore_ascii_case("transfer-encoding")
            {
                return Err(ClientError::InvalidRequest(
                    "Content-Length and Transfer-Encoding come from the body framing",
                ));
            }
        }
        Ok(())
    }
}

/// Whether `s` is an HTTP token (a method or a field name).
pub fn is_token(s: &str) -> bool {
    !s.is_empty()
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b))
}

/// A field value: no control characters but horizontal tab.
fn valid_value(v: &str) -> bool {
    !v.bytes().any(|b| b < 0x20 && b != b'\t' || b == 0x7f)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::http::client::{chunk, last_chunk};
    use crate::http::parse::{Framing, header_buf, parse_head};
    use crate::http::{Limits, Method};

    fn enc(e: RequestEncoder<'_>) -> Result<Vec<u8>, ClientError> {
        let mut out = Vec::new();
        e.encode(&mut out).map(|()| out)
    }

    #[test]
    fn heads() {
        assert_eq!(
            enc(RequestEncoder::new("GET", "/p?q", "h:81")).unwrap(),
            b"GET /p?q HTTP/1.1\r\nHost: h:81\r\n\r\n"
        );
        assert_eq!(
            enc(RequestEncoder::new("GET", "/", "h")
                .headers(&[("host", "other"), ("X", "1")])
                .close(true))
            .unwrap(),
            b"GET / HTTP/1.1\r\nhost: other\r\nX: 1\r\nConnection: close\r\n\r\n"
        );
        let mut out =
            enc(RequestEncoder::new("PUT", "/up", "h").body(RequestBody::Chunked)).unwrap();
        chunk(&mut out, b"abc");
        last_chunk(&mut out, &[("X-Sum".into(), "7".into())]);
        assert_eq!(
            out,
            b"PUT /up HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\nX-Sum: 7\r\n\r\n"
        );
        assert!(
            enc(RequestEncoder::new("POST", "/", "h").body(RequestBody::Length(0)))
                .unwrap()
                .ends_with(b"\r\nContent-Length: 0\r\n\r\n")
        );
    }

    #[test]
    fn refuses_what_would_break_the_framing() {
        let bad = [
            RequestEncoder::new("G ET", "/", "h"),
            RequestEncoder::new("", "/", "h"),
            RequestEncoder::new("GET", "/a b", "h"),
            RequestEncoder::new("GET", "", "h"),
            RequestEncoder::new("GET", "/\u{e9}", "h"),
            RequestEncoder::new("GET", "/", "h\r\nX: y"),
            RequestEncoder::new("GET", "/", "h").headers(&[("Bad Name", "x")]),
            RequestEncoder::new("GET", "/", "h").headers(&[("X", "a\nb")]),
            RequestEncoder::new("GET", "/", "h").headers(&[("content-length", "5")]),
            RequestEncoder::new("GET", "/", "h").headers(&[("Transfer-Encoding", "chunked")]),
        ];
        for e in bad {
            let mut out = b"kept".to_vec();
            let err = e.encode(&mut out).unwrap_err();
            assert!(matches!(err, ClientError::InvalidRequest(_)), "{e:?}");
            assert!(err.to_string().starts_with("cannot send the request: "));
            assert_eq!(out, b"kept", "nothing written for {e:?}");
        }
        assert!(enc(RequestEncoder::new("GET", "/", "h").headers(&[("X", "a\tb")])).is_ok());
    }

    #[test]
    fn the_server_role_reads_what_the_client_role_writes() {
        let fields = [("Accept", "*/*"), ("Connection", "keep-alive")];
        let mut out = enc(RequestEncoder::new("POST", "/x?y=1", "example.com:8080")
            .headers(&fields)
            .body(RequestBody::Length(5)))
        .unwrap();
        out.extend_from_slice(b"hello");
        let mut storage = header_buf();
        let head = parse_head(&out, &mut storage, &Limits::default())
            .unwrap()
            .expect("complete head");
        assert_eq!(head.req.method, Method::Post);
        assert_eq!(head.req.path, "/x");
        assert_eq!(head.req.query, Some("y=1"));
        assert_eq!(head.req.host, Some(&b"example.com:8080"[..]));
        assert_eq!(head.framing, Framing::Length(5));
        assert_eq!(&out[head.len..], b"hello");
        let out = enc(RequestEncoder::new("POST", "/", "h").body(RequestBody::Chunked)).unwrap();
        let mut storage = header_buf();
        let head = parse_head(&out, &mut storage, &Limits::default())
            .unwrap()
            .expect("complete head");
        assert_eq!(head.framing, Framing::Chunked);
    }
}
