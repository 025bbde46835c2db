//! HTTP/2 frames (RFC 9113 §4, §6): the 9-byte header, the frame types,
//! flags, error codes and settings, and writers for every frame a server
//! sends. Parsing a frame's payload is left to the connection, which knows
//! the stream it is for.

/// The client connection preface (RFC 9113 §3.4).
pub const PREFACE: &[u8; 24] = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";

/// Length of a frame header.
pub const HEADER_LEN: usize = 9;

/// The smallest (and initial) largest frame payload (§4.2).
pub const DEFAULT_MAX_FRAME: u32 = 16_384;

/// The initial flow-control window of every stream and the connection (§6.9.2).
pub const DEFAULT_WINDOW: u32 = 65_535;

/// The largest flow-control window (§6.9.1).
pub const MAX_WINDOW: i64 = (1 << 31) - 1;

/// Frame types (§6).
pub mod kind {
    /// DATA
    pub const DATA: u8 = 0x0;
    /// HEADERS
    pub const HEADERS: u8 = 0x1;
    /// PRIORITY
    pub const PRIORITY: u8 = 0x2;
    /// RST_STREAM
    pub const RST_STREAM: u8 = 0x3;
    /// SETTINGS
    pub const SETTINGS: u8 = 0x4;
    /// PUSH_PROMISE
    pub const PUSH_PROMISE: u8 = 0x5;
    /// PING
    pub const PING: u8 = 0x6;
    /// GOAWAY
    pub const GOAWAY: u8 = 0x7;
    /// WINDOW_UPDATE
    pub const WINDOW_UPDATE: u8 = 0x8;
    /// CONTINUATION
    pub const CONTINUATION: u8 = 0x9;
}

/// Frame flags (§6).
pub mod flag {
    /// END_STREAM (DATA, HEADERS).
    pub const END_STREAM: u8 = 0x1;
    /// ACK (SETTINGS, PING).
    pub const ACK: u8 = 0x1;
    /// END_HEADERS (HEADERS, CONTINUATION).
    pub const END_HEADERS: u8 = 0x4;
    /// PADDED (DATA, HEADERS).
    pub const PADDED: u8 = 0x8;
    /// PRIORITY (HEADERS).
    pub const PRIORITY: u8 = 0x20;
}

/// Error codes (§7).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u32)]
pub enum Code {
    /// Graceful shutdown, or no error.
    NoError = 0x0,
    /// A protocol error.
    Protocol = 0x1,
    /// An implementation fault.
    Internal = 0x2,
    /// Flow-control limits exceeded.
    FlowControl = 0x3,
    /// Settings not acknowledged in time.
    SettingsTimeout = 0x4,
    /// A frame on a half-closed or closed stream.
    StreamClosed = 0x5,
    /// A frame of the wrong size.
    FrameSize = 0x6,
    /// The stream was refused before any processing.
    RefusedStream = 0x7,
    /// The stream is no longer needed.
    Cancel = 0x8,
    /// The header compression context cannot be kept.
    Compression = 0x9,
    /// A CONNECT tunnel failed.
    Connect = 0xa,
    /// The peer behaves in a way that may be abusive.
    EnhanceYourCalm = 0xb,
    /// The transport does not meet the security requirements.
    InadequateSecurity = 0xc,
    /// HTTP/1.1 is required for the request.
    Http11Required = 0xd,
}

/// Settings identifiers (§6.5.2).
pub mod setting {
    /// SETTINGS_HEADER_TABLE_SIZE
    pub const HEADER_TABLE_SIZE: u16 = 0x1;
    /// SETTINGS_ENABLE_PUSH
    pub const ENABLE_PUSH: u16 = 0x2;
    /// SETTINGS_MAX_CONCURRENT_STREAMS
    pub const MAX_CONCURRENT_STREAMS: u16 = 0x3;
    /// SETTINGS_INITIAL_WINDOW_SIZE
    pub const INITIAL_WINDOW_SIZE: u16 = 0x4;
    /// SETTINGS_MAX_FRAME_SIZE
    pub const MAX_FRAME_SIZE: u16 = 0x5;
    /// SETTINGS_MAX_HEADER_LIST_SIZE
    pub const MAX_HEADER_LIST_SIZE: u16 = 0x6;
}

/// A frame header.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Head {
    /// Payload length.
    pub len: u32,
    /// Frame type.
    pub kind: u8,
    /// Flags.
    pub flags: u8,
    /// Stream identifier (the reserved bit cleared).
    pub stream: u32,
}

impl Head {
    /// Parses a frame header from the first 9 bytes of `b`, if there are 9.
    pub fn parse(b: &[u8]) -> Option<Head> {
        let b: &[u8; HEADER_LEN] = b.get(..HEADER_LEN)?.try_into().ok()?;
        Some(Head {
            len: u32::from_be_bytes([0, b[0], b[1], b[2]]),
            kind: b[3],
            flags: b[4],
            stream: u32::from_be_bytes([b[5], b[6], b[7], b[8]]) & 0x7fff_ffff,
        })
    }

    /// Whether `f` is set.
    pub fn has(&self, f: u8) -> bool {
        self.flags & f != 0
    }
}

/// Appends a frame header.
pub fn head(out: &mut Vec<u8>, len: usize, kind: u8, flags: u8, stream: u32) {
    debug_assert!(len < 1 << 24);
    let l = (len as u32).to_be_bytes();
    out.extend_from_slice(&[l[1], l[2], l[3], kind, flags]);
    out.extend_from_slice(&(stream & 0x7fff_ffff).to_be_bytes());
}

/// Appends a SETTINGS frame with `pairs`.
pub fn settings(out: &mut Vec<u8>, pairs: &[(u16, u32)]) {
    head(out, pairs.len() * 6, kind::SETTINGS, 0, 0);
    for (id, v) in pairs {
        out.extend_from_slice(&id.to_be_bytes());
        out.extend_from_slice(&v.to_be_bytes());
    }
}

/// Appends a SETTINGS acknowledgement.
pub fn settings_ack(out: &mut Vec<u8>) {
    head(out, 0, kind::SETTINGS, flag::ACK, 0);
}

/// Appends a PING acknowledgement carrying `data`.
pub fn ping_ack(out: &mut Vec<u8>, data: &[u8; 8]) {
    head(out, 8, kind::PING, flag::ACK, 0);
    out.extend_from_slice(data);
}

/// Appends a WINDOW_UPDATE of `n` (1..2^31) for `stream` (0: the connection).
pub fn window_update(out: &mut Vec<u8>, stream: u32, n: u32) {
    head(out, 4, kind::WINDOW_UPDATE, 0, stream);
    out.extend_from_slice(&(n & 0x7fff_ffff).to_be_bytes());
}

/// Appends an RST_STREAM.
pub fn rst_stream(out: &mut Vec<u8>, stream: u32, code: Code) {
    head(out, 4, kind::RST_STREAM, 0, stream);
    out.extend_from_slice(&(code as u32).to_be_bytes());
}

/// Appends a GOAWAY naming the last stream processed, with a debug text.
pub fn goaway(out: &mut Vec<u8>, last: u32, code: Code, debug: &[u8]) {
    head(out, 8 + debug.len(), kind::GOAWAY, 0, 0);
    out.extend_from_slice(&(last & 0x7fff_ffff).to_be_bytes());
    out.extend_from_slice(&(code as u32).to_be_bytes());
    out.extend_from_slice(debug);
}

/// Appends one DATA frame.
pub fn data(out: &mut Vec<u8>, stream: u32, bytes: &[u8], end: bool) {
    let flags = if end { flag::END_STREAM } else { 0 };
    head(out, bytes.len(), kind::DATA, flags, stream);
    out.extend_from_slice(bytes);
}

/// Appends a header block as HEADERS and as many CONTINUATION frames as
/// `max_frame` requires.
pub fn headers(out: &mut Vec<u8>, stream: u32, block: &[u8], end_stream: bool, max_frame: usize) {
    let mut pieces = block.chunks(max_frame.max(1));
    let first = pieces.next().unwrap_or(&[]);
    let rest = block.len() > first.len();
    let mut flags = if end_stream { flag::END_STREAM } else { 0 };
    if !rest {
        flags |= flag::END_HEADERS;
    }
    head(out, first.len(), kind::HEADERS, flags, stream);
    out.extend_from_slice(first);
    let mut pieces = pieces.peekable();
    while let Some(p) = pieces.next() {
        let flags = if pieces.peek().is_none() {
            flag::END_HEADERS
        } else {
            0
        };
        head(out, p.len(), kind::CONTINUATION, flags, stream);
        out.extend_from_slice(p);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn header_round_trip() {
        let mut out = Vec::new();
        head(
            &mut out,
            0x01_02_03,
            kind::HEADERS,
            flag::END_HEADERS,
            0x8000_0005,
        );
        let h = Head::parse(&out).unwrap();
        assert_eq!(h.len, 0x01_02_03);
        assert_eq!(h.kind, kind::HEADERS);
        assert!(h.has(flag::END_HEADERS));
        assert!(!h.has(flag::END_STREAM));
        // The reserved bit is ignored on receipt and never sent.
        assert_eq!(h.stream, 5);
        assert_eq!(Head::parse(&out[..8]), None);
    }

    #[test]
    fn headers_split_into_continuations() {
        let mut out = Vec::new();
        headers(&mut out, 1, &[7u8; 10], true, 4);
        // HEADERS(4) + CONTINUATION(4) + CONTINUATION(2, END_HEADERS)
        assert_eq!(out.len(), 3 * HEADER_LEN + 10);
        let h = Head::parse(&out).unwrap();
        assert_eq!(
            (h.kind, h.len, h.flags),
            (kind::HEADERS, 4, flag::END_STREAM)
        );
        let h = Head::parse(&out[13..]).unwrap();
        assert_eq!((h.kind, h.len, h.flags), (kind::CONTINUATION, 4, 0));
        let h = Head::parse(&out[26..]).unwrap();
        assert_eq!(
            (h.kind, h.len, h.flags),
            (kind::CONTINUATION, 2, flag::END_HEADERS)
        );
        let mut one = Vec::new();
        headers(&mut one, 3, b"ab", false, 16_384);
        let h = Head::parse(&one).unwrap();
        assert_eq!(
            (h.kind, h.len, h.flags),
            (kind::HEADERS, 2, flag::END_HEADERS)
        );
    }

    #[test]
    fn control_frames() {
        let mut out = Vec::new();
        settings(&mut out, &[(setting::MAX_CONCURRENT_STREAMS, 128)]);
        assert_eq!(&out[9..], &[0, 3, 0, 0, 0, 128]);
        out.clear();
        goaway(&mut out, 7, Code::EnhanceYourCalm, b"x");
        assert_eq!(&out[9..], &[0, 0, 0, 7, 0, 0, 0, 0xb, b'x']);
        out.clear();
        window_update(&mut out, 0, 1 << 20);
        assert_eq!(Head::parse(&out).unwrap().kind, kind::WINDOW_UPDATE);
        assert_eq!(&out[9..], &(1u32 << 20).to_be_bytes());
    }
}
