//! The HTTP layer's error type and its one mapping to status codes.

use std::fmt;

/// Why a request was refused by the protocol layer. Every variant ends the
/// connection after its response.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Error {
    /// The request line is malformed (bad method token, target or layout).
    BadRequestLine,
    /// The request target is not origin-form, absolute-form, or `*` for OPTIONS.
    BadTarget,
    /// A header line is malformed: bad name, whitespace before the colon, obs-fold.
    BadHeader,
    /// HTTP/1.1 request without a `Host` header.
    MissingHost,
    /// More than one `Host` header.
    MultipleHost,
    /// A `Host` value that is not a valid authority.
    BadHost,
    /// Both `Content-Length` and `Transfer-Encoding`.
    LengthAndEncoding,
    /// Repeated, conflicting or non-decimal `Content-Length`.
    BadContentLength,
    /// `Transfer-Encoding` whose final coding is not `chunked`, or repeats it.
    BadTransferEncoding,
    /// `Transfer-Encoding` naming a coding this server cannot decode.
    UnsupportedTransferEncoding,
    /// `Transfer-Encoding` on an HTTP/1.0 request.
    EncodingOnHttp10,
    /// A bad chunk-size line, a missing CRLF after chunk data, or bad trailers.
    BadChunk,
    /// The request line is longer than `max_request_line_size`.
    RequestLineTooLong,
    /// The header section is larger than `max_request_headers_total_size`.
    HeadersTooLarge,
    /// More header fields than `max_request_header_count`.
    TooManyHeaders,
    /// The body is larger than `max_request_body_size`.
    BodyTooLarge,
    /// An `HTTP/x.y` version other than 1.0 and 1.1.
    UnsupportedVersion,
    /// A method token this server does not know.
    UnknownMethod,
    /// An `Expect` value other than `100-continue`.
    BadExpectation,
    /// The request head did not arrive within `request_headers_timeout`.
    HeadersTimeout,
    /// The request body stalled for longer than `request_body_timeout`.
    BodyTimeout,
    /// An HTTP/2 connection error (a frame that breaks RFC 9113).
    Http2Protocol,
    /// An HTTP/2 client that floods: resets, control frames or header
    /// blocks past their limits (`ENHANCE_YOUR_CALM`).
    Http2Flood,
}

impl Error {
    /// The status code that answers this error.
    pub fn status(self) -> u16 {
        match self {
            Error::BadRequestLine
            | Error::BadTarget
            | Error::BadHeader
            | Error::MissingHost
            | Error::MultipleHost
            | Error::BadHost
            | Error::LengthAndEncoding
            | Error::BadContentLength
            | Error::BadTransferEncoding
            | Error::EncodingOnHttp10
            | Error::BadChunk
            | Error::Http2Protocol
            | Error::Http2Flood => 400,
            Error::RequestLineTooLong => 414,
            Error::HeadersTooLarge | Error::TooManyHeaders => 431,
            Error::BodyTooLarge => 413,
            Error::UnsupportedVersion => 505,
            Error::UnknownMethod | Error::UnsupportedTransferEncoding => 501,
            Error::BadExpectation => 417,
            Error::HeadersTimeout | Error::BodyTimeout => 408,
        }
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Error::BadRequestLine => "malformed request line",
            Error::BadTarget => "invalid request target",
            Error::BadHeader => "malformed header field",
            Error::MissingHost => "missing host header",
            Error::MultipleHost => "more than one host header",
            Error::BadHost => "invalid host header",
            Error::LengthAndEncoding => "content-length together with transfer-encoding",
            Error::BadContentLength => "invalid content-length",
            Error::BadTransferEncoding => "transfer-encoding does not end in chunked",
            Error::UnsupportedTransferEncoding => "unsupported transfer-coding",
            Error::EncodingOnHttp10 => "transfer-encoding on an http/1.0 request",
            Error::BadChunk => "malformed chunked body",
            Error::RequestLineTooLong => "request line too long",
            Error::HeadersTooLarge => "request headers too large",
            Error::TooManyHeaders => "too many request headers",
            Error::BodyTooLarge => "request body too large",
            Error::UnsupportedVersion => "unsupported http version",
            Error::UnknownMethod => "unknown method",
            Error::BadExpectation => "unsupported expectation",
            Error::HeadersTimeout => "request headers timed out",
            Error::BodyTimeout => "request body timed out",
            Error::Http2Protocol => "http/2 protocol error",
            Error::Http2Flood => "http/2 flood",
        })
    }
}

impl std::error::Error for Error {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statuses() {
        assert_eq!(Error::RequestLineTooLong.status(), 414);
        assert_eq!(Error::TooManyHeaders.status(), 431);
        assert_eq!(Error::UnknownMethod.status(), 501);
        assert_eq!(Error::UnsupportedVersion.status(), 505);
        assert_eq!(Error::BodyTooLarge.status(), 413);
        assert_eq!(Error::MissingHost.to_string(), "missing host header");
    }
}
