//! The owned, protocol-neutral head of a request.

use std::net::SocketAddr;
use std::ops::Range;
use std::rc::Rc;

use crate::http::request::within;
use crate::http::{Method, TlsInfo, Version};

/// A request head, owned: it outlives the receive buffer it was parsed from,
/// so a handler that answers later can keep it, and HTTP/2 can build one from
/// decoded header blocks. The target and header fields live in one buffer,
/// indexed by ranges; reusing a head for the next request keeps its capacity.
#[derive(Clone, Debug)]
pub struct RequestHead {
    /// The method.
    pub method: Method,
    /// The protocol version.
    pub version: Version,
    /// Whether the connection stays open after this exchange (before the
    /// response has its say).
    pub keep_alive: bool,
    /// The peer's address, when known.
    pub peer: Option<SocketAddr>,
    /// The local address the request arrived on, when known.
    pub local: Option<SocketAddr>,
    /// Index of the listener the connection was accepted on, in the order
    /// the server bound them (what a site's bindings are keyed by).
    pub listener: u16,
    /// The TLS session the request came over, when it did.
    pub tls: Option<Rc<TlsInfo>>,
    /// The client's address when a trusted proxy in front names it (see
    /// [`RequestHead::client_ip`]).
    pub client: Option<std::net::IpAddr>,
    /// The target (text, so reading it needs no validation), and anything
    /// added to it (a path that is not a slice of it).
    text: String,
    /// Header names and values (values may be any octets): the header section
    /// as received, copied whole, and fields added one by one after it.
    buf: Vec<u8>,
    /// Ranges in `text`.
    target: Range<u32>,
    path: Range<u32>,
    query: Option<Range<u32>>,
    /// In `text` for an absolute-form authority, else in `buf`.
    host: Option<(bool, Range<u32>)>,
    /// Name and value ranges (in `buf`) of each header field, in the order
    /// received.
    fields: Vec<(Range<u32>, Range<u32>)>,
}

impl Default for RequestHead {
    fn default() -> Self {
        RequestHead::new(Method::Get, "/")
    }
}

impl RequestHead {
    /// A head for `method` and `target` with no header fields (for handlers'
    /// tests and for protocols that build heads field by field).
    pub fn new(method: Method, target: &str) -> RequestHead {
        let mut h = RequestHead {
            method,
            version: Version::Http11,
            keep_alive: true,
            peer: None,
            local: None,
            listener: 0,
            tls: None,
            client: None,
            text: String::new(),
            buf: Vec::new(),
            target: 0..0,
            path: 0..0,
            query: None,
            host: None,
            fields: Vec::new(),
        };
        h.set_target(target);
        h
    }

    /// Empties the head for reuse, keeping its capacity.
    pub(crate) fn clear(&mut self) {
        self.text.clear();
        self.buf.clear();
        self.fields.clear();
        self.target = 0..0;
        self.path = 0..0;
        self.query = None;
        self.host = None;
        self.tls = None;
        self.client = None;
    }

    /// Sets the raw target and splits its path and query at the first `?`
    /// (the codec splits absolute-form targets itself).
    pub fn set_target(&mut self, target: &str) {
        let t = self.push_text(target);
        self.target = t.clone();
        match target.find('?') {
            Some(q) => {
                self.path = t.start..t.start + q as u32;
                self.query = Some(t.start + q as u32 + 1..t.end);
            }
            None => {
                self.path = t;
                self.query = None;
            }
        }
    }

    /// Sets target, path, query and host from a parsed request line. `path`,
    /// `query` and `host` that are slices of `target` share its bytes.
    pub(crate) fn set_parts(
        &mut self,
        target: &str,
        path: &str,
        query: Option<&str>,
        host: Option<&[u8]>,
    ) {
        let t = self.push_text(target);
        self.target = t.clone();
        self.path = self.within(target, path, &t);
        self.query = query.map(|q| self.within(target, q, &t));
        self.host = host.map(|h| match offset_in(target, h) {
            Some(off) => (true, t.start + off..t.start + off + h.len() as u32),
            None => (false, self.push(h)),
        });
    }

    /// The range of `part` in the text: inside the target when it is a slice
    /// of it, else appended.
    fn within(&mut self, target: &str, part: &str, t: &Range<u32>) -> Range<u32> {
        match offset_in(target, part.as_bytes()) {
            Some(off) => t.start + off..t.start + off + part.len() as u32,
            None => self.push_text(part),
        }
    }

    /// Adds a header field.
    pub fn push_header(&mut self, name: &str, value: &[u8]) {
        self.push_field(name.as_bytes(), value);
    }

    /// Keeps only the header fields whose name `keep` accepts.
    pub fn retain_headers(&mut self, mut keep: impl FnMut(&str) -> bool) {
        let buf = &self.buf;
        self.fields.retain(|(n, _)| {
            keep(std::str::from_utf8(&buf[n.start as usize..n.end as usize]).unwrap_or(""))
        });
    }

    /// Adds a header field whose name is known to be a token (so text).
    pub(crate) fn push_field(&mut self, name: &[u8], value: &[u8]) {
        debug_assert!(std::str::from_utf8(name).is_ok());
        let n = self.push(name);
        let v = self.push(value);
        self.fields.push((n, v));
    }

    /// Adds the fields of a header section at once: `section` is copied
    /// whole, and each `(name, value)`, slices of `section` (names valid
    /// UTF-8), becomes a field indexing into the copy. `host`, when it is one
    /// of the values, becomes the host.
    pub(crate) fn set_fields<'a>(
        &mut self,
        section: &'a [u8],
        fields: impl Iterator<Item = (&'a [u8], &'a [u8])>,
        host: Option<&'a [u8]>,
    ) {
        let base = self.buf.len();
        self.buf.extend_from_slice(section);
        let at = |part: &[u8]| {
            let start = (part.as_ptr() as usize - section.as_ptr() as usize + base) as u32;
            start..start + part.len() as u32
        };
        for (name, value) in fields {
            debug_assert!(within(name, section) && within(value, section));
            if host.is_some_and(|h| h.as_ptr() == value.as_ptr() && h.len() == value.len()) {
                self.host = Some((false, at(value)));
            }
            self.fields.push((at(name), at(value)));
        }
    }

    /// Sets the host the request is for (the `Host` field or the authority).
    pub fn set_host(&mut self, host: &[u8]) {
        self.host = Some((false, self.push(host)));
    }

    fn push(&mut self, b: &[u8]) -> Range<u32> {
        let start = self.buf.len() as u32;
        self.buf.extend_from_slice(b);
        start..self.buf.len() as u32
    }

    fn push_text(&mut self, t: &str) -> Range<u32> {
        let start = self.text.len() as u32;
        self.text.push_str(t);
        start..self.text.len() as u32
    }

    fn text(&self, r: &Range<u32>) -> &str {
        &self.text[r.start as usize..r.end as usize]
    }

    fn bytes(&self, r: &Range<u32>) -> &[u8] {
        &self.buf[r.start as usize..r.end as usize]
    }

    /// The raw request target as sent (`/a%20b?x=1`, `http://host/p`, `*`).
    pub fn target(&self) -> &str {
        self.text(&self.target)
    }

    /// The path component of the target, still percent-encoded.
    pub fn path(&self) -> &str {
        self.text(&self.path)
    }

    /// The query string after `?`, if any, still percent-encoded.
    pub fn query(&self) -> Option<&str> {
        self.query.as_ref().map(|r| self.text(r))
    }

    /// The host the request is for: the absolute-form authority, else the
    /// `Host` header.
    pub fn host(&self) -> Option<&str> {
        match &self.host {
            Some((true, r)) => Some(self.text(r)),
            Some((false, r)) => std::str::from_utf8(self.bytes(r)).ok(),
            None => None,
        }
    }

    /// The first value of header `name` (case-insensitive).
    pub fn header(&self, name: &str) -> Option<&[u8]> {
        self.fields
            .iter()
            .find(|(n, _)| self.bytes(n).eq_ignore_ascii_case(name.as_bytes()))
            .map(|(_, v)| self.bytes(v))
    }

    /// The first value of header `name` as text, if it is valid UTF-8.
    pub fn header_str(&self, name: &str) -> Option<&str> {
        self.header(name).and_then(|v| std::str::from_utf8(v).ok())
    }

    /// All header fields in the order received.
    pub fn headers(&self) -> impl Iterator<Item = (&str, &[u8])> + '_ {
        self.fields
            .iter()
            // Names are added from text only, so they read as text.
            .map(|(n, v)| {
                (
                    std::str::from_utf8(self.bytes(n)).unwrap_or(""),
                    self.bytes(v),
                )
            })
    }

    /// The protocol an HTTP/1.1 request asks to switch to (RFC 9110
    /// §7.8): its `Upgrade` value, when `Connection` lists `upgrade`.
    pub fn upgrade_requested(&self) -> Option<&[u8]> {
        if self.version != Version::Http11 {
            return None;
        }
        // Most requests have no Upgrade field: one pass, then done.
        let value = self.header("upgrade")?.trim_ascii();
        let listed = self
            .headers()
            .filter(|(n, _)| n.eq_ignore_ascii_case("connection"))
            .flat_map(|(_, v)| v.split(|b| *b == b','))
            .any(|t| t.trim_ascii().eq_ignore_ascii_case(b"upgrade"));
        (listed && !value.is_empty()).then_some(value)
    }

    /// The TLS session facts, when the request came over TLS.
    pub fn tls(&self) -> Option<&TlsInfo> {
        self.tls.as_deref()
    }

    /// The client's address: the one a trusted proxy named
    /// (`[server.client_ip]`), else the peer's.
    pub fn client_ip(&self) -> Option<std::net::IpAddr> {
        self.client.or(self.peer.map(|p| p.ip()))
    }
}

/// Where `part` starts inside `whole`, when it is a slice of it.
fn offset_in(whole: &str, part: &[u8]) -> Option<u32> {
    let base = whole.as_ptr() as usize;
    let p = part.as_ptr() as usize;
    (p >= base && p + part.len() <= base + whole.len()).then(|| (p - base) as u32)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn target_parts_and_headers() {
        let mut h = RequestHead::new(Method::Get, "/a/b?x=1");
        h.push_header("Host", b"example.com");
        h.push_header("X-Bin", b"\xff");
        assert_eq!(h.path(), "/a/b");
        assert_eq!(h.query(), Some("x=1"));
        assert_eq!(h.header_str("host"), Some("example.com"));
        assert_eq!(h.header("x-bin"), Some(&b"\xff"[..]));
        assert_eq!(h.header_str("x-bin"), None);
        assert_eq!(h.headers().count(), 2);
        h.clear();
        assert_eq!(h.headers().count(), 0);
        assert_eq!(h.path(), "");
    }

    #[test]
    fn parts_share_the_target() {
        let mut h = RequestHead::new(Method::Get, "/");
        h.clear();
        let target = "http://example.com/p?q";
        h.set_parts(
            target,
            &target[18..20],
            Some(&target[21..]),
            Some(b"example.com"),
        );
        assert_eq!(h.target(), target);
        assert_eq!(h.path(), "/p");
        assert_eq!(h.query(), Some("q"));
        assert_eq!(h.host(), Some("example.com"));
        // A path that is not part of the target ("/" for "http://h") is stored.
        let target = "http://h";
        h.clear();
        h.set_parts(target, "/", None, None);
        assert_eq!(h.path(), "/");
    }
}
