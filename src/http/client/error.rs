//! The client role's error type.

use std::fmt;

/// Why a request could not be encoded or a response could not be read.
/// After a read error the connection's framing is lost: the reader returns
/// the same error until it is reset, and the connection should be closed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum ClientError {
    /// A request part that cannot be sent as given: a method or header name
    /// that is not a token, a target with spaces or control characters, a
    /// header value with control characters, or a `Content-Length` or
    /// `Transfer-Encoding` header (the encoder writes the framing itself).
    /// The text names the part.
    InvalidRequest(&'static str),
    /// The status line is malformed: not `HTTP/1.x`, a status code that is
    /// not three digits from 100 up, or a bad reason phrase.
    BadStatusLine,
    /// A header line is malformed (bad name, bad value, bare CR, obs-fold).
    BadHeader,
    /// More header fields than the reader's `max_header_count`.
    TooManyHeaders,
    /// A response head (status line and header section) larger than the
    /// reader's `max_head_size`.
    HeadTooLarge,
    /// A `Content-Length` that is not a decimal number, or several with
    /// different values.
    BadContentLength,
    /// `Transfer-Encoding` on an HTTP/1.0 response: its framing cannot be
    /// trusted (RFC 9112 §6.1).
    EncodingOnHttp10,
    /// A bad chunk-size line, a missing CRLF after chunk data, or a malformed
    /// trailer section.
    BadChunk,
    /// A trailer section larger than the reader's `max_head_size`.
    TrailersTooLarge,
    /// The connection ended inside a response.
    Truncated,
    /// A FastCGI responder broke the protocol (the text says how).
    FastCgi(&'static str),
}

impl fmt::Display for ClientError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ClientError::InvalidRequest(what) => write!(f, "cannot send the request: {what}"),
            ClientError::BadStatusLine => f.write_str("malformed status line"),
            ClientError::BadHeader => f.write_str("malformed response header field"),
            ClientError::TooManyHeaders => f.write_str("too many response headers"),
            ClientError::HeadTooLarge => f.write_str("response head too large"),
            ClientError::BadContentLength => f.write_str("invalid content-length"),
            ClientError::EncodingOnHttp10 => {
                f.write_str("transfer-encoding on an http/1.0 response")
            }
            ClientError::BadChunk => f.write_str("malformed chunked body"),
            ClientError::TrailersTooLarge => f.write_str("response trailers too large"),
            ClientError::Truncated => f.write_str("connection closed inside a response"),
            ClientError::FastCgi(what) => write!(f, "invalid FastCGI response: {what}"),
        }
    }
}

impl std::error::Error for ClientError {}
