//! A responder's records read back as an HTTP/1.1 response: `STDOUT`
//! carries a CGI response (RFC 3875 §6: header fields, a blank line, the
//! body), which becomes a status line (from `Status:`, or 302 for a
//! `Location:` alone, else 200), the same fields, chunked framing and the
//! body's chunks; `END_REQUEST` ends it. `STDERR` is kept for the error
//! log. Anything that does not follow the protocol is an error, and the
//! connection is closed: a client never gets a corrupt response.

use super::record::{END_REQUEST, REQUEST_ID, STDERR, STDOUT, UNKNOWN_TYPE, VERSION};

/// Why a responder's records cannot be read.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FcgiError {
    /// Not version 1, another request's id, or a record type a responder
    /// does not send.
    BadRecord,
    /// The CGI header section is malformed (a line that is not `Name:
    /// value`, a bad `Status`).
    BadHeader,
    /// The CGI header section is larger than the limit.
    HeadTooLarge,
    /// `END_REQUEST` before any header section, or records after it.
    Incomplete,
    /// The responder refused the request (`END_REQUEST` with a protocol
    /// status other than complete: overloaded, unknown role, …).
    Refused,
}

impl FcgiError {
    /// What it says in a log line.
    pub fn as_str(self) -> &'static str {
        match self {
            FcgiError::BadRecord => "malformed FastCGI record",
            FcgiError::BadHeader => "malformed CGI response header",
            FcgiError::HeadTooLarge => "CGI response header too large",
            FcgiError::Incomplete => "FastCGI request ended without a response",
            FcgiError::Refused => "the FastCGI application refused the request",
        }
    }
}

/// Where the reader is in a record.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Part {
    /// Reading the 8-byte header (this many bytes of it so far).
    Header(usize),
    /// Reading content: bytes left, padding after it.
    Content { kind: u8, left: usize, pad: usize },
    /// Skipping padding.
    Padding(usize),
}

/// Where the response is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Phase {
    /// No request sent (or the last one ended): nothing may arrive.
    Idle,
    /// Reading the CGI header section.
    Head,
    /// Passing the body on.
    Body,
    /// `END_REQUEST` came.
    Ended,
}

/// The largest CGI header section read.
pub const MAX_HEAD: usize = 64 * 1024;
/// The most error-stream bytes kept between two takes.
const MAX_STDERR: usize = 16 * 1024;

/// Turns a responder's records into HTTP/1.1 response bytes.
#[derive(Debug)]
pub struct Inbound {
    part: Part,
    header: [u8; 8],
    phase: Phase,
    /// The CGI header section so far.
    head: Vec<u8>,
    /// The response carries no body (HEAD, 204, 304): body bytes are dropped.
    bodiless: bool,
    head_request: bool,
    /// `Connection: close` goes in the head (the responder closes after the
    /// request).
    closes: bool,
    stderr: Vec<u8>,
    failed: Option<FcgiError>,
}

impl Inbound {
    /// A reader; `closes`: the requests are sent without `KEEP_CONN`.
    pub fn new(closes: bool) -> Inbound {
        Inbound {
            part: Part::Header(0),
            header: [0; 8],
            phase: Phase::Idle,
            head: Vec::new(),
            bodiless: false,
            head_request: false,
            closes,
            stderr: Vec::new(),
            failed: None,
        }
    }

    /// A request went out (a HEAD: its response's body is dropped).
    pub fn start(&mut self, head_request: bool) {
        self.phase = Phase::Head;
        self.head.clear();
        self.head_request = head_request;
        self.bodiless = head_request;
    }

    /// What the error stream said since the last take.
    pub fn take_stderr(&mut self) -> Vec<u8> {
        std::mem::take(&mut self.stderr)
    }

    /// Reads `data`, appending the HTTP bytes it makes to `out`.
    pub fn feed(&mut self, mut data: &[u8], out: &mut Vec<u8>) -> Result<(), FcgiError> {
        if let Some(e) = self.failed {
            return Err(e);
        }
        while !data.is_empty() {
            let r = self.step(&mut data, out);
            if let Err(e) = r {
                self.failed = Some(e);
                return Err(e);
            }
        }
        Ok(())
    }

    fn step(&mut self, data: &mut &[u8], out: &mut Vec<u8>) -> Result<(), FcgiError> {
        match self.part {
            Part::Header(have) => {
                let n = (8 - have).min(data.len());
                self.header[have..have + n].copy_from_slice(&data[..n]);
                *data = &data[n..];
                if have + n < 8 {
                    self.part = Part::Header(have + n);
                    return Ok(());
                }
                let h = self.header;
                let id = u16::from_be_bytes([h[2], h[3]]);
                let len = usize::from(u16::from_be_bytes([h[4], h[5]]));
                let pad = usize::from(h[6]);
                if h[0] != VERSION || id != REQUEST_ID && h[1] != UNKNOWN_TYPE {
                    return Err(FcgiError::BadRecord);
                }
                if !matches!(h[1], STDOUT | STDERR | END_REQUEST | UNKNOWN_TYPE) {
                    return Err(FcgiError::BadRecord);
                }
                if matches!(self.phase, Phase::Idle | Phase::Ended) && h[1] != UNKNOWN_TYPE {
                    return Err(FcgiError::Incomplete);
                }
                if h[1] == END_REQUEST && len < 8 {
                    return Err(FcgiError::BadRecord);
                }
                self.part = Part::Content {
                    kind: h[1],
                    left: len,
                    pad,
                };
                if len == 0 {
                    self.content(h[1], &[], true, out)?;
                    self.part = if pad > 0 {
                        Part::Padding(pad)
                    } else {
                        Part::Header(0)
                    };
                }
                Ok(())
            }
            Part::Content { kind, left, pad } => {
                let n = left.min(data.len());
                let (piece, rest) = data.split_at(n);
                *data = rest;
                let last = n == left;
                self.content(kind, piece, last, out)?;
                self.part = match (last, pad) {
                    (false, _) => Part::Content {
                        kind,
                        left: left - n,
                        pad,
                    },
                    (true, 0) => Part::Header(0),
                    (true, p) => Part::Padding(p),
                };
                Ok(())
            }
            Part::Padding(left) => {
                let n = left.min(data.len());
                *data = &data[n..];
                self.part = if n == left {
                    Part::Header(0)
                } else {
                    Part::Padding(left - n)
                };
                Ok(())
            }
        }
    }

    /// A piece of a record's content (`last`: the record's end).
    fn content(
        &mut self,
        kind: u8,
        piece: &[u8],
        last: bool,
        out: &mut Vec<u8>,
    ) -> Result<(), FcgiError> {
        match kind {
            STDOUT => self.stdout(piece, out),
            STDERR => {
                let room = MAX_STDERR.saturating_sub(self.stderr.len());
                self.stderr
                    .extend_from_slice(&piece[..piece.len().min(room)]);
                Ok(())
            }
            END_REQUEST => {
                // The body is 8 bytes: appStatus (4), protocolStatus (1), 3
                // reserved. Only the first piece holds protocolStatus; keep
                // it simple by reading it when the record is whole.
                self.head.extend_from_slice(piece);
                if !last {
                    return Ok(());
                }
                let body = std::mem::take(&mut self.head);
                let protocol_status = body.get(body.len().saturating_sub(4)).copied();
                if self.phase == Phase::Head {
                    return Err(if protocol_status.is_some_and(|s| s != 0) {
                        FcgiError::Refused
                    } else {
                        FcgiError::Incomplete
                    });
                }
                if !self.bodiless {
                    out.extend_from_slice(b"0\r\n\r\n");
                }
                self.phase = Phase::Ended;
                Ok(())
            }
            _ => Ok(()), // UNKNOWN_TYPE: the peer's answer to a record of ours
        }
    }

    fn stdout(&mut self, piece: &[u8], out: &mut Vec<u8>) -> Result<(), FcgiError> {
        match self.phase {
            Phase::Head => {
                let before = self.head.len();
                self.head.extend_from_slice(piece);
                // The blank line may straddle pieces: search from a little
                // before the new bytes.
                let from = before.saturating_sub(3);
                let end = find_blank(&self.head[from..]).map(|(at, len)| (from + at, len));
                let Some((at, sep)) = end else {
                    if self.head.len() > MAX_HEAD {
                        return Err(FcgiError::HeadTooLarge);
                    }
                    return Ok(());
                };
                if at > MAX_HEAD {
                    return Err(FcgiError::HeadTooLarge);
                }
                let head = std::mem::take(&mut self.head);
                self.write_head(&head[..at], out)?;
                self.phase = Phase::Body;
                self.body(&head[at + sep..], out);
                Ok(())
            }
            Phase::Body => {
                self.body(piece, out);
                Ok(())
            }
            Phase::Idle | Phase::Ended => Err(FcgiError::Incomplete),
        }
    }

    fn body(&self, b: &[u8], out: &mut Vec<u8>) {
        if b.is_empty() || self.bodiless {
            return;
        }
        out.extend_from_slice(format!("{:x}\r\n", b.len()).as_bytes());
        out.extend_from_slice(b);
        out.extend_from_slice(b"\r\n");
    }

    /// The status line and fields of the CGI header section `head`.
    fn write_head(&mut self, head: &[u8], out: &mut Vec<u8>) -> Result<(), FcgiError> {
        let mut status: Option<(u16, Vec<u8>)> = None;
        let mut location = false;
        let mut fields: Vec<(&[u8], &[u8])> = Vec::new();
        for line in head.split(|b| *b == b'\n') {
            let line = line.strip_suffix(b"\r").unwrap_or(line);
            if line.is_empty() {
                continue;
            }
            let colon = line
                .iter()
                .position(|b| *b == b':')
                .ok_or(FcgiError::BadHeader)?;
            let (name, value) = (&line[..colon], line[colon + 1..].trim_ascii());
            if !std::str::from_utf8(name).is_ok_and(crate::http::client::is_token) {
                return Err(FcgiError::BadHeader);
            }
            if value
                .iter()
                .any(|b| (*b < 0x20 && *b != b'\t') || *b == 0x7f)
            {
                return Err(FcgiError::BadHeader);
            }
            if name.eq_ignore_ascii_case(b"status") {
                let code = value.get(..3).ok_or(FcgiError::BadHeader)?;
                let code: u16 = std::str::from_utf8(code)
                    .ok()
                    .and_then(|c| c.parse().ok())
                    .filter(|c| (100..=999).contains(c))
                    .ok_or(FcgiError::BadHeader)?;
                if value.get(3).is_some_and(|b| *b != b' ') {
                    return Err(FcgiError::BadHeader);
                }
                let reason = value.get(4..).unwrap_or(&[]).to_vec();
                status = Some((code, reason));
                continue;
            }
            // The responder's framing is this reader's to decide.
            if name.eq_ignore_ascii_case(b"transfer-encoding")
                || name.eq_ignore_ascii_case(b"content-length")
                || name.eq_ignore_ascii_case(b"connection")
            {
                continue;
            }
            location |= name.eq_ignore_ascii_case(b"location");
            fields.push((name, value));
        }
        let (code, reason) = status.unwrap_or(if location {
            (302, b"Found".to_vec())
        } else {
            (200, b"OK".to_vec())
        });
        self.bodiless |= matches!(code, 100..=199 | 204 | 304);
        out.extend_from_slice(format!("HTTP/1.1 {code} ").as_bytes());
        if reason.is_empty() {
            out.extend_from_slice(b"Status");
        } else {
            out.extend_from_slice(&reason);
        }
        out.extend_from_slice(b"\r\n");
        for (n, v) in fields {
            out.extend_from_slice(n);
            out.extend_from_slice(b": ");
            out.extend_from_slice(v);
            out.extend_from_slice(b"\r\n");
        }
        if !self.bodiless {
            out.extend_from_slice(b"Transfer-Encoding: chunked\r\n");
        } else if !self.head_request {
            out.extend_from_slice(b"Content-Length: 0\r\n");
        }
        if self.closes {
            out.extend_from_slice(b"Connection: close\r\n");
        }
        out.extend_from_slice(b"\r\n");
        Ok(())
    }
}

/// The first blank line: its offset and length (`\r\n\r\n` or `\n\n`).
fn find_blank(b: &[u8]) -> Option<(usize, usize)> {
    let crlf = b.windows(4).position(|w| w == b"\r\n\r\n").map(|i| (i, 4));
    let lf = b.windows(2).position(|w| w == b"\n\n").map(|i| (i, 2));
    match (crlf, lf) {
        (Some(a), Some(b)) => Some(if a.0 <= b.0 { a } else { b }),
        (a, b) => a.or(b),
    }
}

#[cfg(test)]
#[path = "inbound_tests.rs"]
mod tests;
