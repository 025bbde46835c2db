//! Sans-IO HTTP/1.1 response reader: heads with httparse, bodies framed by
//! `Content-Length`, chunked transfer coding, or the end of the connection.
//! Responses may arrive split anywhere or several in one read (pipelining).
#![forbid(unsafe_code)]

use std::fmt;

/// Largest response head accepted.
pub const MAX_HEAD: usize = 64 * 1024;
/// Most header fields in one response head.
const MAX_HEADERS: usize = 100;
/// Longest chunk-size line or trailer field.
const MAX_LINE: usize = 8 * 1024;

/// One complete response.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Response {
    /// Status code.
    pub status: u16,
    /// Body bytes (decoded, for a chunked body).
    pub body_len: u64,
    /// The server closes the connection after this response.
    pub close: bool,
}

/// Why a response could not be read.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ParseError {
    /// The head is malformed.
    Head(String),
    /// The head is longer than [`MAX_HEAD`].
    HeadTooLarge,
    /// A bad `Content-Length`.
    ContentLength,
    /// A malformed chunk.
    Chunk(&'static str),
    /// `101 Switching Protocols`: the load generator speaks HTTP/1.1 only.
    Upgrade,
    /// The connection ended inside a response.
    Truncated,
}

impl fmt::Display for ParseError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ParseError::Head(e) => write!(f, "malformed response head: {e}"),
            ParseError::HeadTooLarge => write!(f, "response head larger than {MAX_HEAD} bytes"),
            ParseError::ContentLength => write!(f, "bad Content-Length"),
            ParseError::Chunk(e) => write!(f, "bad chunked body: {e}"),
            ParseError::Upgrade => write!(f, "unexpected 101 Switching Protocols"),
            ParseError::Truncated => write!(f, "connection closed inside a response"),
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Chunk {
    /// Reading the size line: value so far, digits seen, inside an extension.
    Size {
        value: u64,
        digits: u8,
        ext: bool,
    },
    /// Size line ended with CR; LF expected.
    SizeLf {
        value: u64,
        digits: u8,
    },
    /// Chunk data still to come.
    Data(u64),
    /// CRLF after chunk data.
    DataCr,
    DataLf,
    /// Trailer section: length of the current line.
    Trailer(usize),
    TrailerLf(usize),
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Body {
    Length(u64),
    Chunked(Chunk),
    UntilClose,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum State {
    Head,
    Body { resp: Response, body: Body },
}

/// Reads the responses of one connection.
#[derive(Debug)]
pub struct Parser {
    head_request: bool,
    state: State,
    /// An incomplete head carried over between reads.
    buf: Vec<u8>,
}

fn has_token(value: &[u8], token: &str) -> bool {
    value
        .split(|&b| b == b',')
        .any(|t| t.trim_ascii().eq_ignore_ascii_case(token.as_bytes()))
}

impl Parser {
    /// A parser for responses to `HEAD` requests (no bodies) or to others.
    pub fn new(head_request: bool) -> Parser {
        Parser {
            head_request,
            state: State::Head,
            buf: Vec::new(),
        }
    }

    /// Forgets any partial response (for a new connection).
    pub fn reset(&mut self) {
        self.state = State::Head;
        self.buf.clear();
    }

    /// Whether a response has started but not ended.
    pub fn in_response(&self) -> bool {
        self.state != State::Head || !self.buf.is_empty()
    }

    /// Consumes bytes, appending each complete response to `out`. After an
    /// error the connection cannot be read further.
    pub fn feed(&mut self, data: &[u8], out: &mut Vec<Response>) -> Result<(), ParseError> {
        if self.buf.is_empty() {
            return self.consume(data, out);
        }
        let mut joined = std::mem::take(&mut self.buf);
        joined.extend_from_slice(data);
        let r = self.consume(&joined, out);
        if self.buf.is_empty() {
            joined.clear();
            self.buf = joined;
        }
        r
    }

    /// The connection ended: completes a response delimited by the close, or
    /// reports one cut short.
    pub fn eof(&mut self) -> Result<Option<Response>, ParseError> {
        let r = match self.state {
            State::Head if self.buf.is_empty() => Ok(None),
            State::Body {
                resp,
                body: Body::UntilClose,
            } => Ok(Some(resp)),
            _ => Err(ParseError::Truncated),
        };
        self.reset();
        r
    }

    fn consume(&mut self, mut data: &[u8], out: &mut Vec<Response>) -> Result<(), ParseError> {
        while !data.is_empty() {
            match self.state {
                State::Head => match self.head(data, out)? {
                    Some(n) => data = &data[n..],
                    None => {
                        if self.buf.len() + data.len() > MAX_HEAD {
                            return Err(ParseError::HeadTooLarge);
                        }
                        self.buf.extend_from_slice(data);
                        return Ok(());
                    }
                },
                State::Body { mut resp, body } => {
                    let (used, next) = match body {
                        Body::Length(rem) => {
                            let n = rem.min(data.len() as u64);
                            resp.body_len += n;
                            (n as usize, (rem > n).then_some(Body::Length(rem - n)))
                        }
                        Body::UntilClose => {
                            resp.body_len += data.len() as u64;
                            (data.len(), Some(Body::UntilClose))
                        }
                        Body::Chunked(c) => {
                            let (used, next) = chunked(c, data, &mut resp.body_len)?;
                            (used, next.map(Body::Chunked))
                        }
                    };
                    data = &data[used..];
                    self.state = match next {
                        Some(body) => State::Body { resp, body },
                        None => {
                            out.push(resp);
                            State::Head
                        }
                    };
                }
            }
        }
        Ok(())
    }

    /// Parses a head at the start of `data`: `Some(length)` when complete
    /// (the state moves on, and a bodiless response is pushed), `None` when
    /// more bytes are needed.
    fn head(&mut self, data: &[u8], out: &mut Vec<Response>) -> Result<Option<usize>, ParseError> {
        let mut headers = [httparse::EMPTY_HEADER; MAX_HEADERS];
        let mut r = httparse::Response::new(&mut headers);
        let n = match r.parse(data) {
            Ok(httparse::Status::Complete(n)) => n,
            Ok(httparse::Status::Partial) => return Ok(None),
            Err(e) => return Err(ParseError::Head(e.to_string())),
        };
        let status = r.code.unwrap_or(0);
        if status == 101 {
            return Err(ParseError::Upgrade);
        }
        if (100..200).contains(&status) {
            // An interim response; the final one follows.
            return Ok(Some(n));
        }
        let mut close = r.version == Some(0);
        let mut length: Option<u64> = None;
        let mut chunked_te = None;
        for h in r.headers.iter() {
            if h.name.eq_ignore_ascii_case("connection") {
                if has_token(h.value, "close") {
                    close = true;
                } else if has_token(h.value, "keep-alive") {
                    close = false;
                }
            } else if h.name.eq_ignore_ascii_case("content-length") {
                let v = std::str::from_utf8(h.value.trim_ascii())
                    .ok()
                    .filter(|s| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit()))
                    .and_then(|s| s.parse::<u64>().ok())
                    .ok_or(ParseError::ContentLength)?;
                if length.is_some_and(|l| l != v) {
                    return Err(ParseError::ContentLength);
                }
                length = Some(v);
            } else if h.name.eq_ignore_ascii_case("transfer-encoding") {
                let last = h.value.rsplit(|&b| b == b',').next().unwrap_or_default();
                chunked_te = Some(last.trim_ascii().eq_ignore_ascii_case(b"chunked"));
            }
        }
        let resp = Response {
            status,
            body_len: 0,
            close,
        };
        let body = if self.head_request || status == 204 || status == 304 {
            None
        } else {
            match (chunked_te, length) {
                (Some(true), _) => Some(Body::Chunked(Chunk::Size {
                    value: 0,
                    digits: 0,
                    ext: false,
                })),
                (Some(false), _) | (None, None) => Some(Body::UntilClose),
                (None, Some(0)) => None,
                (None, Some(l)) => Some(Body::Length(l)),
            }
        };
        match body {
            Some(body) => self.state = State::Body { resp, body },
            None => out.push(resp),
        }
        Ok(Some(n))
    }
}

/// Decodes chunked framing from `data`: bytes used, and the next state, or
/// `None` when the body (trailers included) is complete.
fn chunked(
    mut c: Chunk,
    data: &[u8],
    body: &mut u64,
) -> Result<(usize, Option<Chunk>), ParseError> {
    let mut i = 0;
    while i < data.len() {
        let b = data[i];
        c = match c {
            Chunk::Data(rem) => {
                let n = rem.min((data.len() - i) as u64);
                *body += n;
                i += n as usize;
                if rem > n {
                    return Ok((i, Some(Chunk::Data(rem - n))));
                }
                Chunk::DataCr
            }
            Chunk::Size { value, digits, ext } => {
                i += 1;
                match b {
                    b'\r' => Chunk::SizeLf { value, digits },
                    b'\n' => start_chunk(value, digits)?,
                    _ if ext => Chunk::Size { value, digits, ext },
                    b';' | b' ' | b'\t' => Chunk::Size {
                        value,
                        digits,
                        ext: true,
                    },
                    _ => {
                        let d = (b as char)
                            .to_digit(16)
                            .ok_or(ParseError::Chunk("bad size"))?;
                        if digits >= 15 {
                            return Err(ParseError::Chunk("size too large"));
                        }
                        Chunk::Size {
                            value: value * 16 + u64::from(d),
                            digits: digits + 1,
                            ext,
                        }
                    }
                }
            }
            Chunk::SizeLf { value, digits } => {
                i += 1;
                if b != b'\n' {
                    return Err(ParseError::Chunk("expected LF after size"));
                }
                start_chunk(value, digits)?
            }
            Chunk::DataCr => {
                i += 1;
                match b {
                    b'\r' => Chunk::DataLf,
                    b'\n' => new_size(),
                    _ => return Err(ParseError::Chunk("expected CRLF after data")),
                }
            }
            Chunk::DataLf => {
                i += 1;
                if b != b'\n' {
                    return Err(ParseError::Chunk("expected LF after data"));
                }
                new_size()
            }
            Chunk::Trailer(len) => {
                i += 1;
                match b {
                    b'\r' => Chunk::TrailerLf(len),
                    b'\n' if len == 0 => return Ok((i, None)),
                    b'\n' => Chunk::Trailer(0),
                    _ if len >= MAX_LINE => return Err(ParseError::Chunk("trailer too long")),
                    _ => Chunk::Trailer(len + 1),
                }
            }
            Chunk::TrailerLf(len) => {
                i += 1;
                match b {
                    b'\n' if len == 0 => return Ok((i, None)),
                    b'\n' => Chunk::Trailer(0),
                    _ => return Err(ParseError::Chunk("expected LF in trailers")),
                }
            }
        };
    }
    Ok((i, Some(c)))
}

fn new_size() -> Chunk {
    Chunk::Size {
        value: 0,
        digits: 0,
        ext: false,
    }
}

fn start_chunk(value: u64, digits: u8) -> Result<Chunk, ParseError> {
    match (digits, value) {
        (0, _) => Err(ParseError::Chunk("missing size")),
        (_, 0) => Ok(Chunk::Trailer(0)),
        (_, v) => Ok(Chunk::Data(v)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn all(p: &mut Parser, data: &[u8]) -> Vec<Response> {
        let mut out = Vec::new();
        p.feed(data, &mut out).unwrap();
        out
    }

    fn resp(status: u16, body_len: u64) -> Response {
        Response {
            status,
            body_len,
            close: false,
        }
    }

    const PIPELINED: &[u8] = b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhello\
HTTP/1.1 404 Not Found\r\ncontent-length: 0\r\n\r\n\
HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3;x=y\r\nabc\r\n10\r\n0123456789abcdef\r\n0\r\nX-T: 1\r\n\r\n\
HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 204 No Content\r\n\r\n\
HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: 2\r\n\r\nok";

    fn expected() -> Vec<Response> {
        vec![
            resp(200, 5),
            resp(404, 0),
            resp(200, 19),
            resp(204, 0),
            Response {
                status: 200,
                body_len: 2,
                close: true,
            },
        ]
    }

    #[test]
    fn pipelined_in_one_read() {
        let mut p = Parser::new(false);
        assert_eq!(all(&mut p, PIPELINED), expected());
        assert!(!p.in_response());
    }

    #[test]
    fn every_split_point_and_byte_at_a_time() {
        for cut in 0..PIPELINED.len() {
            let mut p = Parser::new(false);
            let mut got = all(&mut p, &PIPELINED[..cut]);
            got.extend(all(&mut p, &PIPELINED[cut..]));
            assert_eq!(got, expected(), "split at {cut}");
        }
        let mut p = Parser::new(false);
        let got: Vec<Response> = PIPELINED.iter().flat_map(|b| all(&mut p, &[*b])).collect();
        assert_eq!(got, expected());
    }

    #[test]
    fn close_delimited_and_head() {
        let mut p = Parser::new(false);
        assert!(all(&mut p, b"HTTP/1.0 200 OK\r\n\r\nsome").is_empty());
        assert!(all(&mut p, b" body").is_empty());
        assert_eq!(
            p.eof(),
            Ok(Some(Response {
                status: 200,
                body_len: 9,
                close: true
            }))
        );
        let mut p = Parser::new(true);
        assert_eq!(
            all(&mut p, b"HTTP/1.1 200 OK\r\nContent-Length: 13\r\n\r\n"),
            vec![resp(200, 0)]
        );
        assert_eq!(p.eof(), Ok(None));
    }

    #[test]
    fn errors() {
        let mut out = Vec::new();
        for (bad, want) in [
            (
                &b"HTTP/1.1 200 OK\r\nContent-Length: x\r\n\r\n"[..],
                ParseError::ContentLength,
            ),
            (
                b"HTTP/1.1 200 OK\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n",
                ParseError::ContentLength,
            ),
            (b"HTTP/1.1 101 Switching\r\n\r\n", ParseError::Upgrade),
            (
                b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n",
                ParseError::Chunk("bad size"),
            ),
            (
                b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n\r\n",
                ParseError::Chunk("missing size"),
            ),
            (
                b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n1\r\nab",
                ParseError::Chunk("expected CRLF after data"),
            ),
        ] {
            let mut p = Parser::new(false);
            assert_eq!(
                p.feed(bad, &mut out),
                Err(want),
                "{}",
                String::from_utf8_lossy(bad)
            );
        }
        let mut p = Parser::new(false);
        assert!(matches!(
            p.feed(b"HTTX/1.1 200\r\n\r\n", &mut out),
            Err(ParseError::Head(_))
        ));
        let mut p = Parser::new(false);
        let big = vec![b'a'; MAX_HEAD + 1];
        assert_eq!(p.feed(b"HTTP/1.1 200 OK\r\nX: ", &mut out), Ok(()));
        assert_eq!(p.feed(&big, &mut out), Err(ParseError::HeadTooLarge));
        let mut p = Parser::new(false);
        p.feed(
            b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nabc",
            &mut out,
        )
        .unwrap();
        assert!(p.in_response());
        assert_eq!(p.eof(), Err(ParseError::Truncated));
        assert!(out.is_empty());
    }
}
