//! Response reading: heads with httparse, framing by RFC 9112 §6.3, bodies
//! with the shared [`Decoder`].

use std::ops::Range;

use super::{ClientError, ResponseHead};
use crate::http::Version;
use crate::http::body::Decoder;
use crate::http::error::Error;
use crate::http::limits::HARD_MAX_HEADER_COUNT;

/// Header slots on the stack for an ordinary head; larger limits take the
/// server's hard maximum.
const SMALL_HEADER_SLOTS: usize = 100;

/// What a response head may hold.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ResponseLimits {
    /// Largest head (status line, header section and final CRLF), and largest
    /// trailer section of a chunked body. 64 KiB by default.
    pub max_head_size: usize,
    /// Most header fields in one head: 100 by default, at most
    /// [`HARD_MAX_HEADER_COUNT`].
    pub max_header_count: usize,
}

impl Default for ResponseLimits {
    fn default() -> Self {
        ResponseLimits {
            max_head_size: 64 * 1024,
            max_header_count: 100,
        }
    }
}

/// What one call to [`ResponseReader::feed`] did.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Progress {
    /// Input bytes used; the next call takes `&input[consumed..]` (and any
    /// bytes that arrive after them).
    pub consumed: usize,
    /// What happened.
    pub event: Event,
}

/// What the reader found.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Event {
    /// Every input byte was used; more are needed.
    NeedInput,
    /// The head of a final response was read: see [`ResponseReader::head`].
    /// Interim (1xx) responses before it are skipped, all but 101.
    Head,
    /// Body bytes, framing removed: `input[range]` of the slice given to
    /// this call. A body arrives as any number of these.
    Body(Range<usize>),
    /// The response is complete; `reuse` says whether the connection may
    /// carry another exchange. The head stays readable until the next one.
    Complete {
        /// HTTP/1.1 without `Connection: close`, or HTTP/1.0 with
        /// `Connection: keep-alive`, and a body not delimited by the close
        /// nor framed by both `Transfer-Encoding` and `Content-Length`.
        reuse: bool,
    },
    /// The head of a `101 Switching Protocols` was read (see
    /// [`ResponseReader::head`]): the bytes after it belong to the new
    /// protocol. Every later call answers this again, using nothing.
    Upgraded,
}

/// Where the reader is.
#[derive(Clone, Debug)]
enum State {
    /// Before or inside a head (a partial one is in `partial`).
    Head,
    /// Inside a body framed by `Content-Length` or chunked coding.
    Body(Decoder),
    /// Inside a body that ends when the connection does.
    UntilClose,
    /// The body ended; `Complete` is reported next.
    Ended,
    /// After a 101.
    Upgraded,
    /// After an error, which is reported again.
    Failed(ClientError),
}

/// What a complete head turned out to be.
enum Parsed {
    /// A 1xx other than 101: skipped.
    Interim,
    /// 101 Switching Protocols.
    Switching,
    /// A final response whose body starts next.
    Final(State),
}

/// Reads the responses of one connection, in order, from bytes fed in as
/// they arrive: split anywhere, several in one buffer (pipelining), or a
/// byte at a time give the same events. Body bytes are handed out as ranges
/// of the input, never buffered; only a head cut across reads is copied
/// (into a buffer kept for the next).
///
/// Use: call [`feed`](ResponseReader::feed) with the bytes received,
/// then again with `&input[consumed..]` until it answers
/// [`Event::NeedInput`] (which uses all input), acting on each event. When
/// the connection ends, call [`eof`](ResponseReader::eof).
#[derive(Clone, Debug)]
pub struct ResponseReader {
    limits: ResponseLimits,
    head_request: bool,
    connect_request: bool,
    state: State,
    /// A head cut across reads.
    partial: Vec<u8>,
    head: ResponseHead,
    /// Whether the current response leaves the connection reusable.
    reuse: bool,
}

impl Default for ResponseReader {
    fn default() -> Self {
        ResponseReader::new(ResponseLimits::default())
    }
}

impl ResponseReader {
    /// A reader for responses to requests other than HEAD.
    pub fn new(limits: ResponseLimits) -> ResponseReader {
        ResponseReader {
            limits,
            head_request: false,
            connect_request: false,
            state: State::Head,
            partial: Vec::new(),
            head: ResponseHead::default(),
            reuse: false,
        }
    }

    /// Whether the responses from the next head on answer HEAD requests:
    /// they have no body, whatever their framing headers say. Stays set until
    /// changed; with mixed methods in a pipeline, set it after each
    /// `Complete` for the request the next response answers.
    pub fn set_head_request(&mut self, head: bool) {
        self.head_request = head;
    }

    /// Whether the responses from the next head on answer `CONNECT`
    /// requests: a 2xx then switches the connection to a tunnel as a 101
    /// does ([`Event::Upgraded`]; RFC 9110 §9.3.6: its framing fields say
    /// nothing). Stays set until changed, as [`Self::set_head_request`].
    pub fn set_connect_request(&mut self, connect: bool) {
        self.connect_request = connect;
    }

    /// The head of the current (or last) response.
    pub fn head(&self) -> &ResponseHead {
        &self.head
    }

    /// Whether no part of a response has been read since the last one ended.
    pub fn is_idle(&self) -> bool {
        matches!(self.state, State::Head) && self.partial.is_empty()
    }

    /// Forgets any partial response and error, for a new connection.
    pub fn reset(&mut self) {
        self.state = State::Head;
        self.partial.clear();
        self.reuse = false;
    }

    /// After [`Event::Upgraded`]: the bytes that follow are read as a body
    /// that ends with the connection (a tunnel's), reported as `Body` and,
    /// at [`ResponseReader::eof`], as a complete response.
    pub fn tunnel(&mut self) {
        if matches!(self.state, State::Upgraded) {
            self.state = State::UntilClose;
        }
    }

    /// Reads from `input` up to the next event (see [`Event`]).
    pub fn feed(&mut self, input: &[u8]) -> Result<Progress, ClientError> {
        let r = self.step(input);
        if let Err(e) = r {
            self.state = State::Failed(e);
        }
        r
    }

    /// The connection ended. `Ok(true)`: a response ends with it (one
    /// delimited by the close, or one whose end was read but not yet
    /// reported); `Ok(false)`: it ended between responses (or after a 101).
    /// The reader is reset either way.
    pub fn eof(&mut self) -> Result<bool, ClientError> {
        let r = match &self.state {
            State::Head if self.partial.is_empty() => Ok(false),
            State::Upgraded => Ok(false),
            State::UntilClose | State::Ended => Ok(true),
            State::Failed(e) => Err(*e),
            State::Head | State::Body(_) => Err(ClientError::Truncated),
        };
        self.reset();
        r
    }

    fn step(&mut self, input: &[u8]) -> Result<Progress, ClientError> {
        let (consumed, event) = match &mut self.state {
            State::Head => return self.read_head(input),
            State::Body(d) => {
                let s = d.decode_span(input).map_err(body_error)?;
                if !s.data.is_empty() {
                    if s.done {
                        self.state = State::Ended;
                    }
                    (s.consumed, Event::Body(s.data))
                } else if s.done {
                    self.state = State::Head;
                    (s.consumed, Event::Complete { reuse: self.reuse })
                } else {
                    (s.consumed, Event::NeedInput)
                }
            }
            State::UntilClose if input.is_empty() => (0, Event::NeedInput),
            State::UntilClose => (input.len(), Event::Body(0..input.len())),
            State::Ended => {
                self.state = State::Head;
                (0, Event::Complete { reuse: self.reuse })
            }
            State::Upgraded => (0, Event::Upgraded),
            State::Failed(e) => return Err(*e),
        };
        Ok(Progress { consumed, event })
    }

    /// Reads heads from `input` until a final one (or 101) or the end of the
    /// input, carrying a partial head over in `partial`.
    fn read_head(&mut self, input: &[u8]) -> Result<Progress, ClientError> {
        let max = self.limits.max_head_size;
        let mut pos = 0;
        loop {
            let rest = &input[pos..];
            let (used, parsed) = if self.partial.is_empty() {
                // Nothing beyond the limit is looked at, so an error past it
                // reads as too large however the input is split.
                let window = &rest[..rest.len().min(max)];
                match self.parse(window)? {
                    Some(p) => p,
                    None if window.len() == max => return Err(ClientError::HeadTooLarge),
                    None => {
                        self.partial.extend_from_slice(rest);
                        return Ok(need_input(input));
                    }
                }
            } else {
                let old = self.partial.len();
                let take = rest.len().min(max.saturating_sub(old));
                let mut buf = std::mem::take(&mut self.partial);
                buf.extend_from_slice(&rest[..take]);
                let r = self.parse(&buf);
                let full = buf.len() >= max;
                self.partial = buf;
                match r? {
                    Some((n, p)) => {
                        self.partial.clear();
                        (n - old, p)
                    }
                    None if full => return Err(ClientError::HeadTooLarge),
                    None => return Ok(need_input(input)),
                }
            };
            pos += used;
            let event = match parsed {
                Parsed::Interim => continue,
                Parsed::Switching => {
                    self.state = State::Upgraded;
                    Event::Upgraded
                }
                Parsed::Final(next) => {
                    self.state = next;
                    Event::Head
                }
            };
            return Ok(Progress {
                consumed: pos,
                event,
            });
        }
    }

    /// Parses one head at the start of `buf`: its length and kind when
    /// complete (a final head is copied into `self.head`), `None` when more
    /// bytes are needed.
    fn parse(&mut self, buf: &[u8]) -> Result<Option<(usize, Parsed)>, ClientError> {
        let count = self.limits.max_header_count.min(HARD_MAX_HEADER_COUNT);
        if count <= SMALL_HEADER_SLOTS {
            let mut slots = [httparse::EMPTY_HEADER; SMALL_HEADER_SLOTS];
            self.parse_in(buf, &mut slots[..count])
        } else {
            let mut slots = [httparse::EMPTY_HEADER; HARD_MAX_HEADER_COUNT];
            self.parse_in(buf, &mut slots[..count])
        }
    }

    fn parse_in<'b>(
        &mut self,
        buf: &'b [u8],
        slots: &mut [httparse::Header<'b>],
    ) -> Result<Option<(usize, Parsed)>, ClientError> {
        let mut r = httparse::Response::new(slots);
        let n = match r.parse(buf) {
            Ok(httparse::Status::Complete(n)) => n,
            Ok(httparse::Status::Partial) => return Ok(None),
            Err(e) => return Err(head_error(e)),
        };
        let status = r.code.unwrap_or(0);
        let version = match r.version {
            Some(0) => Version::Http10,
            Some(1) => Version::Http11,
            _ => return Err(ClientError::BadStatusLine),
        };
        if status < 100 {
            return Err(ClientError::BadStatusLine);
        }
        if status < 200 && status != 101 {
            return Ok(Some((n, Parsed::Interim)));
        }
        self.head.reset(version, status, r.reason.unwrap_or(""));
        for h in r.headers.iter() {
            self.head.push_header(h.name, h.value);
        }
        if self.connect_request && (200..300).contains(&status) {
            self.reuse = false;
            return Ok(Some((n, Parsed::Switching)));
        }
        let framing = framing(r.headers, version, status, self.head_request)?;
        self.reuse = framing.reuse;
        if status == 101 {
            self.reuse = false;
            return Ok(Some((n, Parsed::Switching)));
        }
        let next = match framing.body {
            Body::None => State::Ended,
            Body::Length(len) => State::Body(Decoder::length(len)),
            Body::Chunked => State::Body(Decoder::chunked(u64::MAX, self.limits.max_head_size)),
            Body::UntilClose => State::UntilClose,
        };
        Ok(Some((n, Parsed::Final(next))))
    }
}

fn need_input(input: &[u8]) -> Progress {
    Progress {
        consumed: input.len(),
        event: Event::NeedInput,
    }
}

/// How a response body is delimited.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Body {
    None,
    Length(u64),
    Chunked,
    UntilClose,
}

struct Framing {
    body: Body,
    reuse: bool,
}

/// The body framing and persistence of a response (RFC 9112 §6.3, §9.3):
/// no body for HEAD, 1xx, 204 and 304; chunked when it is the final
/// transfer coding, else until the close when there is a `Transfer-Encoding`;
/// `Content-Length`; else until the close.
fn framing(
    headers: &[httparse::Header<'_>],
    version: Version,
    status: u16,
    head_request: bool,
) -> Result<Framing, ClientError> {
    let mut close = false;
    let mut keep_alive = false;
    let mut length: Option<u64> = None;
    let mut length_seen = false;
    let mut encoding = false;
    let mut chunked = false;
    let bodiless = head_request || status < 200 || status == 204 || status == 304;
    for h in headers {
        let name = h.name.as_bytes();
        if name.eq_ignore_ascii_case(b"connection") {
            for token in tokens(h.value) {
                close |= token.eq_ignore_ascii_case(b"close");
                keep_alive |= token.eq_ignore_ascii_case(b"keep-alive");
            }
        } else if bodiless {
            // Framing fields say nothing here (a 304 may carry the length
            // of the representation).
        } else if name.eq_ignore_ascii_case(b"content-length") {
            length_seen = true;
            for v in tokens(h.value) {
                let n = parse_length(v)?;
                if length.is_some_and(|l| l != n) {
                    return Err(ClientError::BadContentLength);
                }
                length = Some(n);
            }
        } else if name.eq_ignore_ascii_case(b"transfer-encoding") {
            encoding = true;
            // The final coding of the last field decides.
            chunked = tokens(h.value)
                .filter(|t| !t.is_empty())
                .last()
                .is_some_and(|t| t.eq_ignore_ascii_case(b"chunked"));
        }
    }
    let mut reuse = match version {
        Version::Http11 | Version::Http2 => !close,
        Version::Http10 => keep_alive && !close,
    };
    let body = if bodiless {
        Body::None
    } else if encoding {
        if version == Version::Http10 {
            return Err(ClientError::EncodingOnHttp10);
        }
        // Both framings hint at smuggling: read this one, then close.
        reuse &= !length_seen;
        if chunked {
            Body::Chunked
        } else {
            reuse = false;
            Body::UntilClose
        }
    } else if let Some(n) = length {
        if n == 0 { Body::None } else { Body::Length(n) }
    } else {
        reuse = false;
        Body::UntilClose
    };
    Ok(Framing { body, reuse })
}

/// Comma-separated list elements, trimmed of optional whitespace.
fn tokens(value: &[u8]) -> impl Iterator<Item = &[u8]> {
    value.split(|b| *b == b',').map(|t| t.trim_ascii())
}

fn parse_length(v: &[u8]) -> Result<u64, ClientError> {
    if v.is_empty() || !v.iter().all(u8::is_ascii_digit) {
        return Err(ClientError::BadContentLength);
    }
    v.iter()
        .try_fold(0u64, |n, d| {
            n.checked_mul(10)?.checked_add(u64::from(d - b'0'))
        })
        .ok_or(ClientError::BadContentLength)
}

fn head_error(e: httparse::Error) -> ClientError {
    match e {
        httparse::Error::HeaderName | httparse::Error::HeaderValue | httparse::Error::NewLine => {
            ClientError::BadHeader
        }
        httparse::Error::TooManyHeaders => ClientError::TooManyHeaders,
        _ => ClientError::BadStatusLine,
    }
}

fn body_error(e: Error) -> ClientError {
    match e {
        Error::HeadersTooLarge => ClientError::TrailersTooLarge,
        _ => ClientError::BadChunk,
    }
}
