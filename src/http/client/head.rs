//! The owned head of a response.

use std::ops::Range;

use crate::http::Version;

/// A response head, owned: it outlives the bytes it was read from. The reason
/// phrase and the header fields live in one buffer, indexed by ranges; a
/// reader reuses one head for every response, keeping its capacity.
#[derive(Clone, Debug)]
pub struct ResponseHead {
    /// The status code (100 to 999).
    pub status: u16,
    /// The protocol version.
    pub version: Version,
    /// Reason phrase, then each header name and value, back to back.
    buf: Vec<u8>,
    reason: Range<u32>,
    /// Name and value ranges of each header field, in the order received.
    fields: Vec<(Range<u32>, Range<u32>)>,
}

impl Default for ResponseHead {
    fn default() -> Self {
        ResponseHead::new(Version::Http11, 200, "")
    }
}

impl ResponseHead {
    /// A head with no header fields.
    pub fn new(version: Version, status: u16, reason: &str) -> ResponseHead {
        let mut h = ResponseHead {
            status,
            version,
            buf: Vec::new(),
            reason: 0..0,
            fields: Vec::new(),
        };
        h.reason = h.push(reason.as_bytes());
        h
    }

    /// Empties the head and sets its status line, keeping the capacity.
    pub(crate) fn reset(&mut self, version: Version, status: u16, reason: &str) {
        self.buf.clear();
        self.fields.clear();
        self.status = status;
        self.version = version;
        self.reason = self.push(reason.as_bytes());
    }

    /// Adds a header field.
    pub fn push_header(&mut self, name: &str, value: &[u8]) {
        let n = self.push(name.as_bytes());
        let v = self.push(value);
        self.fields.push((n, v));
    }

    fn push(&mut self, b: &[u8]) -> Range<u32> {
        let start = self.buf.len() as u32;
        self.buf.extend_from_slice(b);
        start..self.buf.len() as u32
    }

    fn bytes(&self, r: &Range<u32>) -> &[u8] {
        &self.buf[r.start as usize..r.end as usize]
    }

    fn text(&self, r: &Range<u32>) -> &str {
        // Names are tokens and reasons text (checked by the parser); anything
        // else reads as empty rather than panicking.
        std::str::from_utf8(self.bytes(r)).unwrap_or("")
    }

    /// The reason phrase (empty when the server sent none, or one that is not
    /// UTF-8).
    pub fn reason(&self) -> &str {
        self.text(&self.reason)
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
            .map(|(n, v)| (self.text(n), self.bytes(v)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fields_and_reuse() {
        let mut h = ResponseHead::new(Version::Http10, 404, "Not Found");
        h.push_header("Content-Type", b"text/plain");
        h.push_header("X-A", b"1");
        h.push_header("x-a", b"\xff");
        assert_eq!(h.reason(), "Not Found");
        assert_eq!(h.header("content-type"), Some(&b"text/plain"[..]));
        assert_eq!(h.header_str("X-A"), Some("1"));
        assert_eq!(h.header("missing"), None);
        let all: Vec<_> = h.headers().collect();
        assert_eq!(all.len(), 3);
        assert_eq!(all[2], ("x-a", &b"\xff"[..]));
        h.reset(Version::Http11, 200, "OK");
        assert_eq!(
            (h.status, h.version, h.reason()),
            (200, Version::Http11, "OK")
        );
        assert_eq!(h.headers().count(), 0);
    }
}
