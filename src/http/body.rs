//! Body decoding: Content-Length and chunked (with extensions and trailers).
//! The server role decodes request bodies with it, the client role response
//! bodies.

use std::ops::Range;

use super::error::Error;

/// Longest chunk-size line (size, extensions, CRLF) accepted.
const MAX_CHUNK_LINE: u32 = 4096;

/// Decodes one message body from a byte stream, bytes in, body bytes out.
#[derive(Clone, Debug)]
pub struct Decoder {
    kind: Kind,
    /// Body bytes produced so far.
    total: u64,
    /// Most body bytes allowed (`max_request_body_size`).
    limit: u64,
    /// Most trailer-section bytes allowed (`max_request_headers_total_size`).
    trailer_limit: u32,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Kind {
    Length { remaining: u64 },
    Chunked(Chunk),
    Done,
}

/// Where a chunked decoder is, by what it waits for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Chunk {
    /// Hex digits of a chunk size (`digits` seen so far).
    Size { size: u64, digits: u8, line: u32 },
    /// Whitespace or extensions after the size, up to CR.
    Ext { size: u64, line: u32 },
    /// The LF after the size line's CR.
    SizeLf { size: u64 },
    /// Chunk data.
    Data { remaining: u64 },
    /// The CR after chunk data.
    DataCr,
    /// The LF after chunk data.
    DataLf,
    /// Start of a trailer line (or the final empty line).
    TrailerStart { used: u32 },
    /// Inside a trailer field line.
    Trailer { used: u32 },
    /// The LF of a trailer line.
    TrailerLf { used: u32, empty: bool },
}

/// What one call to [`Decoder::decode`] did.
#[derive(Debug, PartialEq, Eq)]
pub struct Decoded {
    /// Input bytes used.
    pub consumed: usize,
    /// Whether the body is complete.
    pub done: bool,
}

/// What one call to [`Decoder::decode_span`] did.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Span {
    /// Input bytes used.
    pub consumed: usize,
    /// Where the body bytes found lie in the input (empty when none were).
    pub data: Range<usize>,
    /// Whether the body is complete.
    pub done: bool,
}

impl Decoder {
    /// A decoder for a body of exactly `len` bytes.
    pub fn length(len: u64) -> Decoder {
        Decoder {
            kind: if len == 0 {
                Kind::Done
            } else {
                Kind::Length { remaining: len }
            },
            total: 0,
            limit: u64::MAX,
            trailer_limit: 0,
        }
    }

    /// A decoder for a chunked body of at most `limit` bytes and a trailer section
    /// of at most `trailer_limit` bytes.
    pub fn chunked(limit: u64, trailer_limit: usize) -> Decoder {
        Decoder {
            kind: Kind::Chunked(Chunk::Size {
                size: 0,
                digits: 0,
                line: 0,
            }),
            total: 0,
            limit,
            trailer_limit: u32::try_from(trailer_limit).unwrap_or(u32::MAX),
        }
    }

    /// Lowers the largest body accepted to `max` (a body growing past it
    /// fails as one over the server's limit does).
    pub fn limit(&mut self, max: u64) {
        self.limit = self.limit.min(max);
    }

    /// Whether the whole body has been decoded.
    pub fn is_done(&self) -> bool {
        self.kind == Kind::Done
    }

    /// Body bytes still expected, when known (Content-Length framing).
    pub fn remaining_hint(&self) -> Option<u64> {
        match self.kind {
            Kind::Length { remaining } => Some(remaining),
            _ => None,
        }
    }

    /// Decodes from `input`, appending body bytes to `sink` (or dropping them when
    /// `sink` is `None`). Stops at the end of the body; bytes after it are left.
    pub fn decode(
        &mut self,
        input: &[u8],
        mut sink: Option<&mut Vec<u8>>,
    ) -> Result<Decoded, Error> {
        let mut pos = 0;
        loop {
            match self.kind {
                Kind::Done => {
                    return Ok(Decoded {
                        consumed: pos,
                        done: true,
                    });
                }
                Kind::Length { remaining } => {
                    let take = remaining.min((input.len() - pos) as u64) as usize;
                    if let Some(s) = sink.as_deref_mut() {
                        s.extend_from_slice(&input[pos..pos + take]);
                    }
                    pos += take;
                    self.total += take as u64;
                    let remaining = remaining - take as u64;
                    self.kind = if remaining == 0 {
                        Kind::Done
                    } else {
                        Kind::Length { remaining }
                    };
                    return Ok(Decoded {
                        consumed: pos,
                        done: remaining == 0,
                    });
                }
                Kind::Chunked(Chunk::Data { remaining }) => {
                    if pos == input.len() {
                        return Ok(Decoded {
                            consumed: pos,
                            done: false,
                        });
                    }
                    let take = remaining.min((input.len() - pos) as u64) as usize;
                    if let Some(s) = sink.as_deref_mut() {
                        s.extend_from_slice(&input[pos..pos + take]);
                    }
                    pos += take;
                    let remaining = remaining - take as u64;
                    self.kind = Kind::Chunked(if remaining == 0 {
                        Chunk::DataCr
                    } else {
                        Chunk::Data { remaining }
                    });
                }
                Kind::Chunked(state) => {
                    let Some(&b) = input.get(pos) else {
                        return Ok(Decoded {
                            consumed: pos,
                            done: false,
                        });
                    };
                    pos += 1;
                    self.kind = self.step(state, b)?;
                }
            }
        }
    }

    /// Decodes from `input` without copying: framing is consumed up to and
    /// including the first run of body bytes, and `data` says where that run
    /// lies in `input`. Call again with `&input[consumed..]` for the rest.
    /// Stops at the end of the body; bytes after it are left.
    pub fn decode_span(&mut self, input: &[u8]) -> Result<Span, Error> {
        let mut pos = 0;
        loop {
            match self.kind {
                Kind::Done => {
                    return Ok(Span {
                        consumed: pos,
                        data: pos..pos,
                        done: true,
                    });
                }
                Kind::Length { remaining } => {
                    let take = remaining.min((input.len() - pos) as u64);
                    self.total += take;
                    let remaining = remaining - take;
                    self.kind = if remaining == 0 {
                        Kind::Done
                    } else {
                        Kind::Length { remaining }
                    };
                    let end = pos + take as usize;
                    return Ok(Span {
                        consumed: end,
                        data: pos..end,
                        done: remaining == 0,
                    });
                }
                Kind::Chunked(Chunk::Data { remaining }) => {
                    let take = remaining.min((input.len() - pos) as u64);
                    if take == 0 {
                        return Ok(Span {
                            consumed: pos,
                            data: pos..pos,
                            done: false,
                        });
                    }
                    let remaining = remaining - take;
                    self.kind = Kind::Chunked(if remaining == 0 {
                        Chunk::DataCr
                    } else {
                        Chunk::Data { remaining }
                    });
                    let end = pos + take as usize;
                    return Ok(Span {
                        consumed: end,
                        data: pos..end,
                        done: false,
                    });
                }
                Kind::Chunked(state) => {
                    let Some(&b) = input.get(pos) else {
                        return Ok(Span {
                            consumed: pos,
                            data: pos..pos,
                            done: false,
                        });
                    };
                    pos += 1;
                    self.kind = self.step(state, b)?;
                }
            }
        }
    }

    /// Advances the chunked framing by one byte outside chunk data.
    fn step(&mut self, state: Chunk, b: u8) -> Result<Kind, Error> {
        use Chunk::*;
        let next = match state {
            Size { size, digits, line } => {
                let line = bump(line)?;
                if let Some(d) = hex(b) {
                    if digits == 16 {
                        return Err(Error::BadChunk);
                    }
                    Size {
                        size: size << 4 | u64::from(d),
                        digits: digits + 1,
                        line,
                    }
                } else if digits == 0 {
                    return Err(Error::BadChunk);
                } else {
                    self.start_chunk(size)?;
                    match b {
                        b'\r' => SizeLf { size },
                        b';' | b' ' | b'\t' => Ext { size, line },
                        _ => return Err(Error::BadChunk),
                    }
                }
            }
            Ext { size, line } => match b {
                b'\r' => SizeLf { size },
                b'\t' | b' '..=b'~' | 0x80..=0xff => Ext {
                    size,
                    line: bump(line)?,
                },
                _ => return Err(Error::BadChunk),
            },
            SizeLf { size } => match b {
                b'\n' if size == 0 => TrailerStart { used: 0 },
                b'\n' => Data { remaining: size },
                _ => return Err(Error::BadChunk),
            },
            DataCr => match b {
                b'\r' => DataLf,
                _ => return Err(Error::BadChunk),
            },
            DataLf => match b {
                b'\n' => Size {
                    size: 0,
                    digits: 0,
                    line: 0,
                },
                _ => return Err(Error::BadChunk),
            },
            TrailerStart { used } => match b {
                b'\r' => TrailerLf { used, empty: true },
                b'\n' => return Err(Error::BadChunk),
                _ => Trailer {
                    used: self.trailer_byte(used)?,
                },
            },
            Trailer { used } => match b {
                b'\r' => TrailerLf { used, empty: false },
                b'\n' | 0 => return Err(Error::BadChunk),
                _ => Trailer {
                    used: self.trailer_byte(used)?,
                },
            },
            TrailerLf { used, empty } => match b {
                b'\n' if empty => return Ok(Kind::Done),
                b'\n' => TrailerStart { used },
                _ => return Err(Error::BadChunk),
            },
            Data { .. } => unreachable!("chunk data is copied in bulk"),
        };
        Ok(Kind::Chunked(next))
    }

    fn start_chunk(&mut self, size: u64) -> Result<(), Error> {
        self.total = self.total.checked_add(size).ok_or(Error::BodyTooLarge)?;
        if self.total > self.limit {
            return Err(Error::BodyTooLarge);
        }
        Ok(())
    }

    fn trailer_byte(&self, used: u32) -> Result<u32, Error> {
        if used >= self.trailer_limit {
            Err(Error::HeadersTooLarge)
        } else {
            Ok(used + 1)
        }
    }
}

fn bump(line: u32) -> Result<u32, Error> {
    if line >= MAX_CHUNK_LINE {
        Err(Error::BadChunk)
    } else {
        Ok(line + 1)
    }
}

fn hex(b: u8) -> Option<u8> {
    match b {
        b'0'..=b'9' => Some(b - b'0'),
        b'a'..=b'f' => Some(b - b'a' + 10),
        b'A'..=b'F' => Some(b - b'A' + 10),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn decode_all(input: &[u8]) -> Result<(Vec<u8>, usize), Error> {
        let mut d = Decoder::chunked(1 << 20, 1024);
        let mut out = Vec::new();
        let r = d.decode(input, Some(&mut out))?;
        assert!(r.done, "not done");
        Ok((out, r.consumed))
    }

    #[test]
    fn chunked_with_extensions_and_trailers() {
        let body = b"4;name=val\r\nWiki\r\n5 ; x\r\npedia\r\nE\r\n in\r\n\r\nchunks.\r\n0\r\nX-T: 1\r\nY: 2\r\n\r\nNEXT";
        let (out, used) = decode_all(body).unwrap();
        assert_eq!(out, b"Wikipedia in\r\n\r\nchunks.");
        assert_eq!(&body[used..], b"NEXT");
    }

    #[test]
    fn chunked_byte_at_a_time() {
        let body = b"3\r\nabc\r\n10\r\n0123456789abcdef\r\n0\r\n\r\n";
        let mut d = Decoder::chunked(1 << 20, 1024);
        let mut out = Vec::new();
        for (i, b) in body.iter().enumerate() {
            let r = d.decode(std::slice::from_ref(b), Some(&mut out)).unwrap();
            assert_eq!(r.consumed, 1);
            assert_eq!(r.done, i == body.len() - 1);
        }
        assert_eq!(out, b"abc0123456789abcdef");
    }

    #[test]
    fn chunked_errors() {
        assert_eq!(decode_all(b"x\r\n").unwrap_err(), Error::BadChunk);
        assert_eq!(decode_all(b"\r\n").unwrap_err(), Error::BadChunk);
        assert_eq!(decode_all(b"3\r\nabcX\r\n").unwrap_err(), Error::BadChunk);
        assert_eq!(decode_all(b"3\nabc\r\n").unwrap_err(), Error::BadChunk);
        assert_eq!(
            decode_all(b"11111111111111111\r\n").unwrap_err(),
            Error::BadChunk
        );
        assert_eq!(decode_all(b"0\r\nX: y\n\r\n").unwrap_err(), Error::BadChunk);
        let mut d = Decoder::chunked(4, 1024);
        assert_eq!(
            d.decode(b"5\r\nhello\r\n0\r\n\r\n", None).unwrap_err(),
            Error::BodyTooLarge
        );
        let mut d = Decoder::chunked(100, 4);
        assert_eq!(
            d.decode(b"0\r\nLong: trailer\r\n\r\n", None).unwrap_err(),
            Error::HeadersTooLarge
        );
    }

    #[test]
    fn spans_point_at_the_same_bytes_decode_copies() {
        let body = b"4;name=val\r\nWiki\r\n5 ; x\r\npedia\r\n0\r\nX-T: 1\r\n\r\nNEXT";
        for piece in [1, 3, body.len()] {
            let mut d = Decoder::chunked(1 << 20, 1024);
            let mut out = Vec::new();
            let mut spans = 0;
            let mut at = 0;
            let mut done = false;
            while !done {
                let input = &body[at..(at + piece).min(body.len())];
                let s = d.decode_span(input).unwrap();
                assert!(s.data.end <= s.consumed);
                if !s.data.is_empty() {
                    spans += 1;
                }
                out.extend_from_slice(&input[s.data]);
                at += s.consumed;
                done = s.done;
            }
            assert_eq!(out, b"Wikipedia", "pieces of {piece}");
            assert_eq!(&body[at..], b"NEXT");
            assert!(spans >= 2, "one span per chunk at least");
        }
        let mut d = Decoder::length(3);
        assert_eq!(
            d.decode_span(b"ab").unwrap(),
            Span {
                consumed: 2,
                data: 0..2,
                done: false
            }
        );
        assert_eq!(
            d.decode_span(b"cdef").unwrap(),
            Span {
                consumed: 1,
                data: 0..1,
                done: true
            }
        );
        assert_eq!(d.decode_span(b"ef").unwrap().consumed, 0);
    }

    #[test]
    fn length_decoder_stops_at_end() {
        let mut d = Decoder::length(3);
        let mut out = Vec::new();
        assert_eq!(
            d.decode(b"ab", Some(&mut out)).unwrap(),
            Decoded {
                consumed: 2,
                done: false
            }
        );
        assert_eq!(
            d.decode(b"cdef", Some(&mut out)).unwrap(),
            Decoded {
                consumed: 1,
                done: true
            }
        );
        assert_eq!(out, b"abc");
        assert!(d.is_done());
    }
}
