//! Request-head parsing on top of `httparse`, with the checks `httparse` leaves to
//! its caller: limits, framing headers, `Host`, target form.

use std::mem::MaybeUninit;

use super::error::Error;
use super::limits::Limits;
use super::method::Method;
use super::request::{Request, Version};

/// Uninitialized header storage for one parse; lives on the caller's stack.
pub type HeaderBuf<'b> = [MaybeUninit<httparse::Header<'b>>; super::limits::HARD_MAX_HEADER_COUNT];

/// A fresh header buffer (no initialization cost).
pub fn header_buf<'b>() -> HeaderBuf<'b> {
    [const { MaybeUninit::uninit() }; super::limits::HARD_MAX_HEADER_COUNT]
}

/// How the body of a request is delimited.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Framing {
    /// No body.
    None,
    /// `Content-Length: n` with n > 0.
    Length(u64),
    /// `Transfer-Encoding: chunked`.
    Chunked,
}

/// A complete request head.
#[derive(Debug)]
pub struct Head<'a> {
    /// The request (its body is empty until the body is read).
    pub req: Request<'a>,
    /// Bytes of input the head took, blank lines before it included.
    pub len: usize,
    /// How the body is delimited.
    pub framing: Framing,
    /// `Expect: 100-continue` was sent on an HTTP/1.1 request.
    pub expect_continue: bool,
}

/// Parses a request head from the start of `buf`.
///
/// `Ok(None)` means the head is incomplete and within limits so far.
pub fn parse_head<'h, 'b: 'h>(
    buf: &'b [u8],
    storage: &'h mut [MaybeUninit<httparse::Header<'b>>],
    limits: &Limits,
) -> Result<Option<Head<'h>>, Error> {
    let count = limits.max_request_header_count.min(storage.len());
    let mut raw = httparse::Request::new(&mut []);
    let n = match raw.parse_with_uninit_headers(buf, &mut storage[..count]) {
        Ok(httparse::Status::Complete(n)) => n,
        Ok(httparse::Status::Partial) => {
            check_partial(buf, limits)?;
            return Ok(None);
        }
        Err(e) => {
            // A limit overrun reads as a syntax error when the cut falls mid-token.
            check_partial(buf, limits)?;
            // "HTTP/1.7" may yet become "HTTP/1.71": whether the version is
            // unsupported (505) or malformed (400) shows once the line ends.
            if e == httparse::Error::Version
                && memchr(b'\n', &buf[skip_blank_lines(buf)..]).is_none()
            {
                return Ok(None);
            }
            return Err(map_httparse(e, buf));
        }
    };
    let httparse::Request {
        method,
        path: target,
        version,
        headers,
    } = raw;
    // httparse allows single spaces only: "METHOD SP target SP HTTP/x.y CRLF".
    let line_len = method.map_or(0, str::len) + target.map_or(0, str::len) + 12;
    if line_len > limits.max_request_line_size {
        return Err(Error::RequestLineTooLong);
    }
    let target = target.ok_or(Error::BadRequestLine)?;
    // The header section as sent, whitespace around values included, up to
    // the empty line that ends the head: the count `check_partial` applies to
    // an incomplete head, so that cutting the input cannot change the answer.
    // The request line ends after the target, " HTTP/1.x" and CRLF or LF.
    let mut line_end = target.as_ptr() as usize - buf.as_ptr() as usize + target.len() + 9;
    line_end += if buf.get(line_end) == Some(&b'\r') {
        2
    } else {
        1
    };
    let empty_line = if buf[..n].ends_with(b"\r\n") { 2 } else { 1 };
    let section = buf.get(line_end..n - empty_line).unwrap_or_default();
    if section.len() > limits.max_request_headers_total_size {
        return Err(Error::HeadersTooLarge);
    }
    let method = Method::parse(method.ok_or(Error::BadRequestLine)?).ok_or(Error::UnknownMethod)?;
    let version = match version {
        Some(0) => Version::Http10,
        Some(1) => Version::Http11,
        _ => return Err(Error::UnsupportedVersion),
    };
    let headers: &'h [httparse::Header<'b>] = headers;

    let (path, query, authority) = split_target(method, target)?;
    let fields = scan_headers(headers, version, limits)?;
    let host = match (authority, fields.host) {
        (_, HostField::Many) => return Err(Error::MultipleHost),
        (None, HostField::Missing) if version == Version::Http11 => {
            return Err(Error::MissingHost);
        }
        (Some(a), _) => Some(a.as_bytes()),
        (None, HostField::One(h)) => Some(h),
        (None, HostField::Missing) => None,
    };
    let keep_alive = match version {
        Version::Http11 | Version::Http2 => !fields.close,
        Version::Http10 => fields.keep_alive && !fields.close,
    };
    Ok(Some(Head {
        req: Request {
            method,
            target,
            path,
            query,
            version,
            host,
            keep_alive,
            headers,
            section,
        },
        len: n,
        framing: fields.framing,
        expect_continue: fields.expect_continue && version == Version::Http11,
    }))
}

fn skip_blank_lines(buf: &[u8]) -> usize {
    let mut i = 0;
    loop {
        if buf[i..].starts_with(b"\r\n") {
            i += 2;
        } else if buf[i..].starts_with(b"\n") {
            i += 1;
        } else {
            return i;
        }
    }
}

/// Enforces the line and header-section limits on a head that is not complete yet.
pub(crate) fn check_partial(buf: &[u8], limits: &Limits) -> Result<(), Error> {
    let start = skip_blank_lines(buf);
    let rest = &buf[start..];
    match memchr(b'\n', rest) {
        None if rest.len() > limits.max_request_line_size => Err(Error::RequestLineTooLong),
        None => Ok(()),
        Some(i) if i + 1 > limits.max_request_line_size => Err(Error::RequestLineTooLong),
        // The empty line that ends the head (2 bytes) is not counted.
        Some(i) if rest.len() - (i + 1) > limits.max_request_headers_total_size + 2 => {
            Err(Error::HeadersTooLarge)
        }
        Some(_) => Ok(()),
    }
}

fn map_httparse(e: httparse::Error, buf: &[u8]) -> Error {
    match e {
        httparse::Error::TooManyHeaders => Error::TooManyHeaders,
        httparse::Error::HeaderName | httparse::Error::HeaderValue => Error::BadHeader,
        httparse::Error::Version => {
            if looks_like_http_version(buf) {
                Error::UnsupportedVersion
            } else {
                Error::BadRequestLine
            }
        }
        httparse::Error::NewLine if request_line_complete(buf) => Error::BadHeader,
        _ => Error::BadRequestLine,
    }
}

/// Whether `buf` starts with a CRLF-terminated line of three space-separated parts,
/// so that a later syntax error belongs to a header.
fn request_line_complete(buf: &[u8]) -> bool {
    let start = skip_blank_lines(buf);
    match memchr(b'\n', &buf[start..]) {
        Some(i) if i > 0 && buf[start + i - 1] == b'\r' => {
            let line = &buf[start..start + i - 1];
            let parts: Vec<&[u8]> = line.split(|b| *b == b' ').collect();
            !line.contains(&b'\r')
                && parts.len() == 3
                && parts[2].len() == 8
                && parts[2].starts_with(b"HTTP/")
                && parts[2][5].is_ascii_digit()
                && parts[2][6] == b'.'
                && parts[2][7].is_ascii_digit()
        }
        _ => false,
    }
}

/// Whether the request line ends in a well-formed `HTTP/d.d` that httparse refused.
fn looks_like_http_version(buf: &[u8]) -> bool {
    let start = skip_blank_lines(buf);
    let line = &buf[start..];
    let end = memchr(b'\n', line).unwrap_or(line.len());
    let line = line[..end].strip_suffix(b"\r").unwrap_or(&line[..end]);
    let parts: Vec<&[u8]> = line.split(|b| *b == b' ').collect();
    let [method, target, v] = parts.as_slice() else {
        return false;
    };
    if method.is_empty() || target.is_empty() {
        return false;
    }
    v.len() == 8
        && v.starts_with(b"HTTP/")
        && v[5].is_ascii_digit()
        && v[6] == b'.'
        && v[7].is_ascii_digit()
}

type Target<'a> = (&'a str, Option<&'a str>, Option<&'a str>);

/// Splits a target into path, query and (absolute-form) authority.
fn split_target(method: Method, target: &str) -> Result<Target<'_>, Error> {
    if target == "*" {
        return if method == Method::Options {
            Ok(("*", None, None))
        } else {
            Err(Error::BadTarget)
        };
    }
    if method == Method::Connect {
        // authority-form; answered 405 by the connection.
        return if !valid_connect_authority(target.as_bytes()) {
            Err(Error::BadTarget)
        } else {
            Ok((target, None, Some(target)))
        };
    }
    let (authority, rest) = if target.starts_with('/') {
        (None, target)
    } else {
        let lower = target.get(..8).unwrap_or(target).to_ascii_lowercase();
        let after = if lower.starts_with("http://") {
            &target[7..]
        } else if lower.starts_with("https://") {
            &target[8..]
        } else {
            return Err(Error::BadTarget);
        };
        let end = after.find(['/', '?']).unwrap_or(after.len());
        let authority = &after[..end];
        if !valid_authority(authority.as_bytes()) {
            return Err(Error::BadTarget);
        }
        let rest = &after[end..];
        (Some(authority), if rest.is_empty() { "/" } else { rest })
    };
    let mut query_at = None;
    for (i, b) in rest.bytes().enumerate() {
        match b {
            b'#' => return Err(Error::BadTarget),
            b'?' if query_at.is_none() => query_at = Some(i),
            _ => {}
        }
    }
    let (path, query) = match query_at {
        Some(q) => (&rest[..q], Some(&rest[q + 1..])),
        None => (rest, None),
    };
    // "http://host?x" has an empty path: it means "/".
    let path = if path.is_empty() { "/" } else { path };
    Ok((path, query, authority))
}

enum HostField<'a> {
    Missing,
    One(&'a [u8]),
    Many,
}

struct Fields<'a> {
    host: HostField<'a>,
    framing: Framing,
    close: bool,
    keep_alive: bool,
    expect_continue: bool,
}

fn scan_headers<'a>(
    headers: &'a [httparse::Header<'a>],
    version: Version,
    limits: &Limits,
) -> Result<Fields<'a>, Error> {
    let mut f = Fields {
        host: HostField::Missing,
        framing: Framing::None,
        close: false,
        keep_alive: false,
        expect_continue: false,
    };
    let mut length: Option<u64> = None;
    let mut te_seen = false;
    let mut chunked_last = false;
    for h in headers {
        let name = h.name.as_bytes();
        match name.len() {
            4 if name.eq_ignore_ascii_case(b"host") => {
                f.host = match f.host {
                    HostField::Missing => {
                        if !valid_host(h.value) {
                            return Err(Error::BadHost);
                        }
                        HostField::One(h.value)
                    }
                    _ => HostField::Many,
                };
            }
            10 if name.eq_ignore_ascii_case(b"connection") => {
                for token in tokens(h.value) {
                    if token.eq_ignore_ascii_case(b"close") {
                        f.close = true;
                    } else if token.eq_ignore_ascii_case(b"keep-alive") {
                        f.keep_alive = true;
                    }
                }
            }
            14 if name.eq_ignore_ascii_case(b"content-length") => {
                if length.is_some() {
                    return Err(Error::BadContentLength);
                }
                length = Some(parse_length(h.value)?);
            }
            17 if name.eq_ignore_ascii_case(b"transfer-encoding") => {
                te_seen = true;
                for coding in tokens(h.value) {
                    if chunked_last {
                        // chunked must be the final coding, applied once.
                        return Err(Error::BadTransferEncoding);
                    }
                    if coding.eq_ignore_ascii_case(b"chunked") {
                        chunked_last = true;
                    } else if coding.eq_ignore_ascii_case(b"identity") || coding.is_empty() {
                        return Err(Error::BadTransferEncoding);
                    } else {
                        return Err(Error::UnsupportedTransferEncoding);
                    }
                }
            }
            6 if name.eq_ignore_ascii_case(b"expect") => {
                if h.value.eq_ignore_ascii_case(b"100-continue") {
                    f.expect_continue = true;
                } else {
                    return Err(Error::BadExpectation);
                }
            }
            _ => {}
        }
    }
    if te_seen {
        if length.is_some() {
            return Err(Error::LengthAndEncoding);
        }
        if version == Version::Http10 {
            return Err(Error::EncodingOnHttp10);
        }
        if !chunked_last {
            return Err(Error::BadTransferEncoding);
        }
        f.framing = Framing::Chunked;
    } else if let Some(n) = length {
        if n > limits.max_request_body_size {
            return Err(Error::BodyTooLarge);
        }
        if n > 0 {
            f.framing = Framing::Length(n);
        }
    }
    Ok(f)
}

/// Comma-separated list elements, trimmed of optional whitespace.
fn tokens(value: &[u8]) -> impl Iterator<Item = &[u8]> {
    value.split(|b| *b == b',').map(|t| t.trim_ascii())
}

fn parse_length(value: &[u8]) -> Result<u64, Error> {
    if value.is_empty() || value.len() > 18 || !value.iter().all(u8::is_ascii_digit) {
        return Err(Error::BadContentLength);
    }
    Ok(value.iter().fold(0u64, |n, d| n * 10 + u64::from(d - b'0')))
}

/// A `Host` value: `uri-host [ ":" port ]`, possibly empty (RFC 9112 §3.2).
fn valid_host(v: &[u8]) -> bool {
    super::host::parse(v).is_some()
}

/// An absolute-form authority: `uri-host [ ":" port ]` with a host, since an
/// `http` URI with an empty host is invalid (RFC 9110 §4.2.1). Userinfo is
/// refused.
fn valid_authority(v: &[u8]) -> bool {
    super::host::parse(v).is_some_and(|a| !a.host.is_empty())
}

/// A CONNECT target (authority-form): `uri-host ":" port`, neither empty.
fn valid_connect_authority(v: &[u8]) -> bool {
    super::host::parse(v)
        .is_some_and(|a| !a.host.is_empty() && a.port.is_some_and(|p| !p.is_empty()))
}

/// Index of the first `needle` in `hay`.
pub(crate) fn memchr(needle: u8, hay: &[u8]) -> Option<usize> {
    hay.iter().position(|b| *b == needle)
}

#[cfg(test)]
#[path = "parse_tests.rs"]
mod tests;
