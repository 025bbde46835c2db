//! Protocol limits and timeouts, named after Kestrel's options where one exists.

use std::time::{Duration, Instant};

/// Largest header count a configuration may ask for (the parser's stack array).
pub const HARD_MAX_HEADER_COUNT: usize = 1024;

/// Size limits a request must respect.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Limits {
    /// Longest request line, CRLF included (Kestrel `MaxRequestLineSize`, 8 KiB).
    /// Longer lines are answered 414.
    pub max_request_line_size: usize,
    /// Largest total size of the header lines after the request line (Kestrel
    /// `MaxRequestHeadersTotalSize`, 32 KiB). Larger heads are answered 431.
    pub max_request_headers_total_size: usize,
    /// Most header fields in one request (Kestrel `MaxRequestHeaderCount`, 100).
    /// More are answered 431.
    pub max_request_header_count: usize,
    /// Largest request body in bytes (Kestrel `MaxRequestBodySize`, 30,000,000).
    /// Larger declared bodies are answered 413 before they are read; a chunked body
    /// that grows past it is answered 413 when it does.
    pub max_request_body_size: u64,
    /// Kestrel `MinRequestBodyDataRate` (240 bytes/s after a 5 s grace): a
    /// request body that arrives slower is answered 408 and the connection
    /// closed. Time the handler has not taken what arrived does not count.
    pub min_request_body_data_rate: MinRate,
    /// Kestrel `MinResponseDataRate` (240 bytes/s after a 5 s grace): a
    /// client that reads a response slower is disconnected.
    pub min_response_data_rate: MinRate,
    /// HTTP/2: whether it is offered, and its connection settings.
    pub http2: crate::http2::Settings,
}

/// A minimum data rate (Kestrel's `MinDataRate`): while a transfer is under
/// way (a request body being read, a response waiting for the client), every
/// window of `grace` (at least 1 s) must move `bytes_per_second × grace`
/// bytes; the first window is the grace period. A burst cannot buy credit
/// for a trickle later.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct MinRate {
    /// Bytes per second; 0 turns the check off.
    pub bytes_per_second: u64,
    /// How long a transfer may run before the rate is checked.
    pub grace: Duration,
}

impl MinRate {
    /// Kestrel's default: 240 bytes/s after a 5 s grace period.
    pub const KESTREL: MinRate = MinRate {
        bytes_per_second: 240,
        grace: Duration::from_secs(5),
    };

    /// No minimum.
    pub const OFF: MinRate = MinRate {
        bytes_per_second: 0,
        grace: Duration::ZERO,
    };

    /// The measuring window: the grace period, at least a second.
    pub fn window(&self) -> Duration {
        self.grace.max(Duration::from_secs(1))
    }

    /// When the window of a transfer measured since `since` ends, and it must
    /// have moved [`MinRate::quota`] bytes (`None`: the check is off).
    pub fn due(&self, since: Instant) -> Option<Instant> {
        (self.bytes_per_second > 0).then(|| since + self.window())
    }

    /// Bytes a window must move.
    pub fn quota(&self) -> u64 {
        (self.bytes_per_second as f64 * self.window().as_secs_f64()).ceil() as u64
    }
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_request_line_size: 8 * 1024,
            max_request_headers_total_size: 32 * 1024,
            max_request_header_count: 100,
            max_request_body_size: 30_000_000,
            min_request_body_data_rate: MinRate::KESTREL,
            min_response_data_rate: MinRate::KESTREL,
            http2: crate::http2::Settings::default(),
        }
    }
}

/// Deadlines a connection must meet.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Timeouts {
    /// How long an idle keep-alive connection is kept open (Kestrel
    /// `KeepAliveTimeout`, 130 s).
    pub keep_alive_timeout: Duration,
    /// How long a client may take to send a whole request head, counted from its
    /// first byte, or from accept for a new connection (Kestrel
    /// `RequestHeadersTimeout`, 30 s). Expiry mid-head is answered 408.
    pub request_headers_timeout: Duration,
    /// Longest pause between two pieces of a request body (nginx
    /// `client_body_timeout`, 60 s; Kestrel uses a minimum data rate instead).
    pub request_body_timeout: Duration,
    /// Longest time a response write may make no progress before the connection is
    /// dropped (nginx `send_timeout`, 60 s).
    pub send_timeout: Duration,
    /// How long to keep reading (and discarding) after a response that closes the
    /// connection, so the client sees the response instead of a reset (nginx
    /// `lingering_timeout`, 5 s).
    pub lingering_timeout: Duration,
    /// How long a graceful stop waits for in-flight requests (Kestrel
    /// `ShutdownTimeout`, 30 s here; Kestrel's host default is 30 s too).
    pub shutdown_timeout: Duration,
    /// How long a stopping server keeps serving while `/readyz` answers 503,
    /// before it closes its listeners and drains, so load balancers stop
    /// sending it new connections first (Kubernetes `preStop` sleep, Kestrel
    /// has none; 0 s: close at once).
    pub shutdown_delay: Duration,
}

impl Default for Timeouts {
    fn default() -> Self {
        Timeouts {
            keep_alive_timeout: Duration::from_secs(130),
            request_headers_timeout: Duration::from_secs(30),
            request_body_timeout: Duration::from_secs(60),
            send_timeout: Duration::from_secs(60),
            lingering_timeout: Duration::from_secs(5),
            shutdown_timeout: Duration::from_secs(30),
            shutdown_delay: Duration::ZERO,
        }
    }
}
