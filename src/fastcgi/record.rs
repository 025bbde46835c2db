//! Encoding the records of one request: `BEGIN_REQUEST`, the `PARAMS`
//! stream (name-value pairs), the `STDIN` stream.

/// The version this codec speaks.
pub const VERSION: u8 = 1;
/// Record types.
pub const BEGIN_REQUEST: u8 = 1;
/// The responder ended the request.
pub const END_REQUEST: u8 = 3;
/// Name-value pairs of the request.
pub const PARAMS: u8 = 4;
/// The request body.
pub const STDIN: u8 = 5;
/// The response.
pub const STDOUT: u8 = 6;
/// The responder's error stream.
pub const STDERR: u8 = 7;
/// A record type the peer did not know.
pub const UNKNOWN_TYPE: u8 = 11;
/// The responder role.
pub const RESPONDER: u16 = 1;
/// `BEGIN_REQUEST` flag: keep the connection open after the request.
pub const KEEP_CONN: u8 = 1;
/// The one request id a connection carries at a time.
pub const REQUEST_ID: u16 = 1;
/// The most content one record holds.
pub const MAX_CONTENT: usize = 65_535;

/// Appends a record header for `len` bytes of content (padded to 8).
fn header(out: &mut Vec<u8>, kind: u8, len: usize) -> usize {
    debug_assert!(len <= MAX_CONTENT);
    let pad = (8 - len % 8) % 8;
    out.extend_from_slice(&[
        VERSION,
        kind,
        (REQUEST_ID >> 8) as u8,
        REQUEST_ID as u8,
        (len >> 8) as u8,
        len as u8,
        pad as u8,
        0,
    ]);
    pad
}

/// Appends `content` as records of `kind` (as many as it takes); an empty
/// `content` appends the one empty record that ends a stream.
pub fn stream(out: &mut Vec<u8>, kind: u8, content: &[u8]) {
    if content.is_empty() {
        header(out, kind, 0);
        return;
    }
    for piece in content.chunks(MAX_CONTENT) {
        let pad = header(out, kind, piece.len());
        out.extend_from_slice(piece);
        out.extend(std::iter::repeat_n(0, pad));
    }
}

/// Appends `BEGIN_REQUEST` for the responder role.
pub fn begin(out: &mut Vec<u8>, keep_conn: bool) {
    header(out, BEGIN_REQUEST, 8);
    let flags = if keep_conn { KEEP_CONN } else { 0 };
    out.extend_from_slice(&[
        (RESPONDER >> 8) as u8,
        RESPONDER as u8,
        flags,
        0,
        0,
        0,
        0,
        0,
    ]);
}

/// A length as a name-value pair writes it: one byte below 128, else four
/// with the high bit set.
fn length(out: &mut Vec<u8>, n: usize) {
    if n < 128 {
        out.push(n as u8);
    } else {
        out.extend_from_slice(&((n as u32) | 0x8000_0000).to_be_bytes());
    }
}

/// Name-value pairs, gathered and then written as `PARAMS` records.
#[derive(Debug, Default)]
pub struct Params {
    buf: Vec<u8>,
}

impl Params {
    /// No pairs yet.
    pub fn new() -> Params {
        Params::default()
    }

    /// Adds a pair (a name or value over 2^31 bytes cannot be sent: the
    /// request head limits keep them far below).
    pub fn add(&mut self, name: &str, value: &[u8]) {
        length(&mut self.buf, name.len());
        length(&mut self.buf, value.len());
        self.buf.extend_from_slice(name.as_bytes());
        self.buf.extend_from_slice(value);
    }

    /// The pairs' encoded bytes.
    pub fn bytes(&self) -> &[u8] {
        &self.buf
    }

    /// Appends the `PARAMS` stream, its end included.
    pub fn write(&self, out: &mut Vec<u8>) {
        stream(out, PARAMS, &self.buf);
        stream(out, PARAMS, &[]);
    }
}

/// Reads name-value pairs (for tests and the fuzz target: what a responder
/// would read).
pub fn read_pairs(mut b: &[u8]) -> Option<Vec<(Vec<u8>, Vec<u8>)>> {
    fn len(b: &mut &[u8]) -> Option<usize> {
        let first = *b.first()?;
        if first < 128 {
            *b = &b[1..];
            Some(first as usize)
        } else {
            let v = u32::from_be_bytes(b.get(..4)?.try_into().ok()?) & 0x7fff_ffff;
            *b = &b[4..];
            Some(v as usize)
        }
    }
    let mut out = Vec::new();
    while !b.is_empty() {
        let n = len(&mut b)?;
        let v = len(&mut b)?;
        let name = b.get(..n)?.to_vec();
        let value = b.get(n..n + v)?.to_vec();
        b = &b[n + v..];
        out.push((name, value));
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn records() {
        let mut out = Vec::new();
        begin(&mut out, true);
        assert_eq!(out, [1, 1, 0, 1, 0, 8, 0, 0, 0, 1, 1, 0, 0, 0, 0, 0]);
        let mut p = Params::new();
        p.add("SCRIPT_FILENAME", b"/srv/index.php");
        let long = vec![b'x'; 300];
        p.add("HTTP_COOKIE", &long);
        let pairs = read_pairs(p.bytes()).unwrap();
        assert_eq!(
            pairs[0],
            (b"SCRIPT_FILENAME".to_vec(), b"/srv/index.php".to_vec())
        );
        assert_eq!(pairs[1].1.len(), 300);
        let mut out = Vec::new();
        p.write(&mut out);
        let len = p.bytes().len();
        assert_eq!(out[1], PARAMS);
        assert_eq!(usize::from(out[4]) << 8 | usize::from(out[5]), len);
        let padded = 8 + len + (8 - len % 8) % 8;
        assert_eq!(
            &out[padded..],
            &[1, PARAMS, 0, 1, 0, 0, 0, 0],
            "the end of the stream"
        );
        // A long body takes several records.
        let mut out = Vec::new();
        stream(&mut out, STDIN, &vec![7u8; 70_000]);
        assert_eq!(out[1], STDIN);
        assert_eq!(usize::from(out[4]) << 8 | usize::from(out[5]), MAX_CONTENT);
        let second = 8 + MAX_CONTENT + 1;
        assert_eq!(out[second + 1], STDIN);
        assert_eq!(
            usize::from(out[second + 4]) << 8 | usize::from(out[second + 5]),
            70_000 - MAX_CONTENT
        );
        assert_eq!(read_pairs(&[5, 0, b'a']), None, "truncated");
    }
}
