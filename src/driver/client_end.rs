//! Why an outgoing connection ended, in the owner's terms and in the
//! server's close counters.

use std::fmt;

use crate::http::client::ClientError;
use crate::metrics::CloseReason;
use crate::tls::TlsFailure;

/// Why an outgoing connection ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum ClientEnd {
    /// The connect failed with this errno.
    ConnectFailed(i32),
    /// The TLS handshake failed (counted as a failed connect).
    Tls(TlsFailure),
    /// The connect did not complete within the connect timeout.
    ConnectTimeout,
    /// The peer closed between responses (or after the last one).
    PeerClosed,
    /// A response said the connection ends after it.
    NotReusable,
    /// The peer closed inside a response.
    Truncated,
    /// Receiving failed (a reset).
    RecvFailed,
    /// Sending failed with this errno.
    SendFailed(i32),
    /// The oldest request was not answered within the response timeout.
    ResponseTimeout,
    /// The bytes received are not an HTTP/1.1 response.
    Malformed(ClientError),
    /// `101 Switching Protocols`: only HTTP/1.1 is spoken here.
    Upgraded,
    /// A response arrived with no request waiting for it.
    Unsolicited,
    /// The owner closed it.
    Local,
}

impl ClientEnd {
    /// The reason in the server's close counters.
    pub fn close_reason(self) -> CloseReason {
        match self {
            ClientEnd::ConnectFailed(_) | ClientEnd::RecvFailed | ClientEnd::SendFailed(_) => {
                CloseReason::Reset
            }
            ClientEnd::ConnectTimeout | ClientEnd::ResponseTimeout => CloseReason::Timeout,
            ClientEnd::Truncated
            | ClientEnd::Tls(_)
            | ClientEnd::Malformed(_)
            | ClientEnd::Upgraded
            | ClientEnd::Unsolicited => CloseReason::Error,
            ClientEnd::PeerClosed | ClientEnd::NotReusable | ClientEnd::Local => {
                CloseReason::Normal
            }
        }
    }
}

impl fmt::Display for ClientEnd {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let os = |e: i32| std::io::Error::from_raw_os_error(e);
        match self {
            ClientEnd::ConnectFailed(e) => os(*e).fmt(f),
            ClientEnd::Tls(t) => t.fmt(f),
            ClientEnd::ConnectTimeout => f.write_str("connect timed out"),
            ClientEnd::PeerClosed => f.write_str("closed by the peer"),
            ClientEnd::NotReusable => f.write_str("the response ended the connection"),
            ClientEnd::Truncated => ClientError::Truncated.fmt(f),
            ClientEnd::RecvFailed => f.write_str("receive failed"),
            ClientEnd::SendFailed(e) => write!(f, "send failed: {}", os(*e)),
            ClientEnd::ResponseTimeout => f.write_str("no response within the timeout"),
            ClientEnd::Malformed(e) => e.fmt(f),
            ClientEnd::Upgraded => f.write_str("unexpected 101 Switching Protocols"),
            ClientEnd::Unsolicited => f.write_str("a response to no request"),
            ClientEnd::Local => f.write_str("closed"),
        }
    }
}
