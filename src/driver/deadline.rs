//! Connection deadlines, one per reason, and the minimum data rates.

use std::time::{Duration, Instant};

pub use crate::http::MinRate;

/// Why a connection's deadline is set: what it waits for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Reason {
    /// A request head (from accept for the first request, handshake
    /// included; from its first byte for later ones).
    Headers,
    /// More of a request body.
    Body,
    /// The request body arrives slower than the minimum rate.
    BodyRate,
    /// The next request on a kept-alive connection.
    Idle,
    /// Progress on a response the client does not read.
    Send,
    /// The response is read slower than the minimum rate.
    SendRate,
    /// The peer's close after our final response.
    Linger,
}

/// The timeouts and rates a server connection keeps to.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Settings {
    /// A request head must be complete this long after its first byte (after
    /// accept, for the first request).
    pub request_headers_timeout: Duration,
    /// A request body may stall this long between pieces.
    pub request_body_timeout: Duration,
    /// A kept-alive connection may idle this long between requests.
    pub keep_alive_timeout: Duration,
    /// A response write may make no progress this long.
    pub send_timeout: Duration,
    /// Input is read and dropped this long after the final response.
    pub lingering_timeout: Duration,
    /// Kestrel's `MinRequestBodyDataRate`.
    pub min_request_body_rate: MinRate,
    /// Kestrel's `MinResponseDataRate`.
    pub min_response_rate: MinRate,
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            request_headers_timeout: Duration::from_secs(30),
            request_body_timeout: Duration::from_secs(60),
            keep_alive_timeout: Duration::from_secs(130),
            send_timeout: Duration::from_secs(60),
            lingering_timeout: Duration::from_secs(5),
            min_request_body_rate: MinRate::KESTREL,
            min_response_rate: MinRate::KESTREL,
        }
    }
}

/// A transfer measured against a [`MinRate`]: when its current window began
/// and how much has moved in it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Meter {
    /// When the current window began (the transfer started, resumed after a
    /// pause that was not the peer's doing, or the last window met its quota).
    pub since: Instant,
    /// Bytes moved in this window.
    pub bytes: u64,
}

impl Meter {
    /// A transfer starting now.
    pub fn start(now: Instant) -> Meter {
        Meter {
            since: now,
            bytes: 0,
        }
    }

    /// The window ended at `now`: whether it met the rate's quota (and the
    /// next window starts), or the transfer is too slow.
    pub fn roll(&mut self, rate: &MinRate, now: Instant) -> bool {
        if self.bytes >= rate.quota() {
            *self = Meter::start(now);
            true
        } else {
            false
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn min_rate_windows() {
        let t0 = Instant::now();
        let r = MinRate::KESTREL;
        assert_eq!(r.due(t0), Some(t0 + Duration::from_secs(5)));
        assert_eq!(r.quota(), 1200);
        assert_eq!(MinRate::OFF.due(t0), None);
        let short = MinRate {
            bytes_per_second: 100,
            grace: Duration::ZERO,
        };
        assert_eq!(short.window(), Duration::from_secs(1));
        assert_eq!(short.quota(), 100);
    }
}
