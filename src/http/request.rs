//! The parser's view of a request head, borrowed from the connection's input;
//! copied into an owned [`RequestHead`] for the exchange.

use super::method::Method;
use crate::exchange::RequestHead;

/// Protocol version of a request.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Version {
    /// HTTP/1.0
    Http10,
    /// HTTP/1.1
    Http11,
    /// HTTP/2
    Http2,
}

/// One parsed request. Everything borrows from the connection's input buffer; a
/// handler copies what it wants to keep.
#[derive(Debug)]
#[non_exhaustive]
pub struct Request<'a> {
    /// The method.
    pub method: Method,
    /// The raw request target as sent (`/a%20b?x=1`, `http://host/p`, `*`).
    pub target: &'a str,
    /// The path component of the target, still percent-encoded.
    pub path: &'a str,
    /// The query string after `?`, if any, still percent-encoded.
    pub query: Option<&'a str>,
    /// The protocol version.
    pub version: Version,
    /// Whether the connection stays open after this request (before the
    /// response has its say).
    pub keep_alive: bool,
    pub(crate) headers: &'a [httparse::Header<'a>],
    /// The absolute-form authority, else `Host` (validated as ASCII).
    pub(crate) host: Option<&'a [u8]>,
    /// The header section as received: every header name and value is a
    /// slice of it.
    pub(crate) section: &'a [u8],
}

/// What a handler may want to know about the TLS session of a request.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TlsInfo {
    /// `TLSv1.2` or `TLSv1.3`.
    pub version: &'static str,
    /// The cipher suite, e.g. `TLS13_AES_256_GCM_SHA384`.
    pub cipher: &'static str,
    /// The SNI name the client asked for.
    pub server_name: Option<String>,
    /// The ALPN protocol agreed on.
    pub alpn: Option<String>,
    /// The verified client certificate's subject, with client authentication.
    pub client_subject: Option<String>,
    /// Whether the session was resumed.
    pub resumed: bool,
}

impl<'a> Request<'a> {
    /// The host the request is for: the absolute-form authority, else the
    /// `Host` header.
    pub fn host(&self) -> Option<&'a str> {
        self.host.and_then(|h| std::str::from_utf8(h).ok())
    }

    /// The first value of header `name` (case-insensitive).
    pub fn header(&self, name: &str) -> Option<&'a [u8]> {
        self.headers
            .iter()
            .find(|h| h.name.eq_ignore_ascii_case(name))
            .map(|h| h.value)
    }

    /// The first value of header `name` as text, if it is valid UTF-8.
    pub fn header_str(&self, name: &str) -> Option<&'a str> {
        self.header(name).and_then(|v| std::str::from_utf8(v).ok())
    }

    /// All header fields in the order received.
    pub fn headers(&self) -> impl Iterator<Item = (&'a str, &'a [u8])> + '_ {
        self.headers.iter().map(|h| (h.name, h.value))
    }

    /// Copies the head into `dst`, reusing its buffers (peer, local address
    /// and TLS facts are the caller's to set). The header section is copied
    /// whole, once; the fields index into the copy.
    pub fn fill(&self, dst: &mut RequestHead) {
        dst.clear();
        dst.method = self.method;
        dst.version = self.version;
        dst.keep_alive = self.keep_alive;
        // The host is the absolute-form authority (inside the target) or the
        // `Host` field's value (shared with that field, not copied again).
        let authority = self.host.filter(|h| within(h, self.target.as_bytes()));
        dst.set_parts(self.target, self.path, self.query, authority);
        let host = self.host.filter(|_| authority.is_none());
        dst.set_fields(
            self.section,
            self.headers.iter().map(|h| (h.name.as_bytes(), h.value)),
            host,
        );
    }

    /// An owned copy of the head.
    pub fn to_head(&self) -> RequestHead {
        let mut h = RequestHead::default();
        self.fill(&mut h);
        h
    }
}

/// Whether `part` is a slice of `whole`.
pub(crate) fn within(part: &[u8], whole: &[u8]) -> bool {
    let (p, w) = (part.as_ptr() as usize, whole.as_ptr() as usize);
    p >= w && p + part.len() <= w + whole.len()
}
