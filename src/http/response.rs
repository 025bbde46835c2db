//! The response a handler returns: status, headers and a body plan.

use std::borrow::Cow;
use std::fs::File;
use std::rc::Rc;

/// A response header value or name.
pub type Text = Cow<'static, str>;

/// What follows the response head.
#[derive(Debug, Default)]
#[non_exhaustive]
pub enum Body {
    /// No body (`Content-Length: 0` where a body is allowed).
    #[default]
    Empty,
    /// Bytes that live for the whole program.
    Static(&'static [u8]),
    /// Owned bytes.
    Bytes(Vec<u8>),
    /// Bytes shared by many responses (a configured body, built once).
    Shared(Rc<[u8]>),
    /// A byte range of an open file, read through the ring in bounded chunks.
    File(FileBody),
}

impl Body {
    /// Length of the body in bytes.
    pub fn len(&self) -> u64 {
        match self {
            Body::Empty => 0,
            Body::Static(b) => b.len() as u64,
            Body::Bytes(b) => b.len() as u64,
            Body::Shared(b) => b.len() as u64,
            Body::File(f) => f.len,
        }
    }

    /// Whether the body has no bytes.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// A range of a file to send as a body.
#[derive(Clone, Debug)]
pub struct FileBody {
    /// The open file (shared with the worker's open-file cache).
    pub file: Rc<File>,
    /// First byte to send.
    pub offset: u64,
    /// Number of bytes to send.
    pub len: u64,
}

/// An HTTP response under construction.
#[derive(Debug)]
pub struct Response {
    pub(crate) status: u16,
    pub(crate) content_type: Option<Text>,
    pub(crate) headers: Vec<(Text, Text)>,
    pub(crate) body: Body,
    pub(crate) close: bool,
}

impl Response {
    /// A response with `status`, no headers and no body.
    pub fn new(status: u16) -> Response {
        assert!(
            (100..=999).contains(&status),
            "status code {status} is not three digits"
        );
        Response {
            status,
            content_type: None,
            headers: Vec::new(),
            body: Body::Empty,
            close: false,
        }
    }

    /// A plain-text response: `"<status> <reason>\n"` plus `detail` when given.
    pub fn error(status: u16, detail: Option<&str>) -> Response {
        let mut text = match super::encode::reason(status) {
            "" => status.to_string(),
            r => format!("{status} {r}"),
        };
        if let Some(d) = detail {
            text.push_str(": ");
            text.push_str(d);
        }
        text.push('\n');
        Response::new(status)
            .content_type("text/plain; charset=utf-8")
            .body(Body::Bytes(text.into_bytes()))
    }

    /// Sets `Content-Type`.
    pub fn content_type(mut self, value: impl Into<Text>) -> Response {
        let value = value.into();
        assert_valid_value(&value);
        self.content_type = Some(value);
        self
    }

    /// Adds a header. The server adds `Date`, `Server`, `Content-Length` and
    /// `Connection` itself.
    ///
    /// # Panics
    /// When the name is not a token or the value holds CR, LF or NUL (header
    /// injection). A panicking handler is answered 500.
    pub fn header(mut self, name: impl Into<Text>, value: impl Into<Text>) -> Response {
        let (name, value) = (name.into(), value.into());
        assert!(
            !name.is_empty() && name.bytes().all(is_token_byte),
            "invalid header name {name:?}"
        );
        assert_valid_value(&value);
        self.headers.push((name, value));
        self
    }

    /// Replaces every value of header `name` (case-insensitive) with `value`;
    /// `Content-Type` is the response's content type.
    ///
    /// # Panics
    /// As [`Response::header`].
    pub fn set_header(mut self, name: impl Into<Text>, value: impl Into<Text>) -> Response {
        let name = name.into();
        if name.eq_ignore_ascii_case("content-type") {
            return self.content_type(value);
        }
        self.headers.retain(|(n, _)| !n.eq_ignore_ascii_case(&name));
        self.header(name, value)
    }

    /// Removes every value of header `name` (case-insensitive), `Content-Type`
    /// included.
    pub fn remove_header(mut self, name: &str) -> Response {
        if name.eq_ignore_ascii_case("content-type") {
            self.content_type = None;
        }
        self.headers.retain(|(n, _)| !n.eq_ignore_ascii_case(name));
        self
    }

    /// Sets the body.
    pub fn body(mut self, body: Body) -> Response {
        self.body = body;
        self
    }

    /// Closes the connection after this response.
    pub fn close(mut self) -> Response {
        self.close = true;
        self
    }

    /// The status code.
    pub fn status(&self) -> u16 {
        self.status
    }

    /// The body plan.
    pub fn body_ref(&self) -> &Body {
        &self.body
    }

    /// The first value of header `name` (case-insensitive), `Content-Type` included.
    pub fn header_value(&self, name: &str) -> Option<&str> {
        if name.eq_ignore_ascii_case("content-type") {
            return self.content_type.as_deref();
        }
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_ref())
    }
}

fn assert_valid_value(v: &str) {
    // Bytes above CR are all fine (one compare each, no early exit); only a
    // value with a low control byte is looked at closely.
    if v.bytes().fold(true, |ok, b| ok & (b > b'\r')) {
        return;
    }
    assert!(
        !v.bytes().any(|b| b == b'\r' || b == b'\n' || b == 0),
        "invalid header value {v:?}"
    );
}

fn is_token_byte(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn builder() {
        let r = Response::new(200)
            .content_type("text/plain")
            .header("X-A", "1")
            .body(Body::Static(b"hi"));
        assert_eq!(r.status(), 200);
        assert_eq!(r.header_value("x-a"), Some("1"));
        assert_eq!(r.header_value("Content-Type"), Some("text/plain"));
        assert_eq!(r.body_ref().len(), 2);
    }

    #[test]
    #[should_panic(expected = "invalid header value")]
    fn refuses_header_injection() {
        let _ = Response::new(200).header("X", "a\r\nSet-Cookie: x");
    }

    #[test]
    fn set_and_remove_headers() {
        let r = Response::new(200)
            .header("X-A", "1")
            .header("x-a", "2")
            .header("X-B", "3")
            .set_header("X-A", "9")
            .set_header("Content-Type", "text/html")
            .remove_header("X-B");
        assert_eq!(r.headers.len(), 1);
        assert_eq!(r.header_value("x-a"), Some("9"));
        assert_eq!(r.header_value("content-type"), Some("text/html"));
        assert_eq!(
            r.remove_header("content-type").header_value("content-type"),
            None
        );
    }

    #[test]
    fn error_has_reason() {
        let r = Response::error(404, Some("no such file"));
        match r.body_ref() {
            Body::Bytes(b) => assert_eq!(b, b"404 Not Found: no such file\n"),
            other => panic!("{other:?}"),
        }
        let r = Response::error(421, None);
        assert!(matches!(r.body_ref(), Body::Bytes(b) if b == b"421 Misdirected Request\n"));
        // An unregistered code has no phrase.
        let r = Response::error(599, Some("odd"));
        assert!(matches!(r.body_ref(), Body::Bytes(b) if b == b"599: odd\n"));
        let mut out = Vec::new();
        crate::http::encode::encode_head(
            &mut out,
            &Response::new(599),
            b"d",
            b"",
            crate::http::encode::Persist::KeepAlive,
            crate::http::encode::Framing::Length(0),
        );
        assert!(out.starts_with(b"HTTP/1.1 599 \r\n"));
    }
}
