//! Per-server counters of one core, published with the worker's metrics.

use std::time::Duration;

use super::exchange::Failure;

/// Failure kinds counted, in [`Failure::name`] order of [`FAILURE_NAMES`].
pub const FAILURE_NAMES: [&str; 8] = [
    "connect_error",
    "connect_timeout",
    "head_timeout",
    "read_timeout",
    "closed",
    "invalid_response",
    "send_error",
    "unexpected_upgrade",
];

/// What one core counted for one upstream server.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ServerStats {
    /// Requests sent (retries included).
    pub requests: u64,
    /// Responses by class: 1xx to 5xx.
    pub responses: [u64; 5],
    /// Failures by kind ([`FAILURE_NAMES`]).
    pub failures: [u64; 8],
    /// Active checks passed and failed.
    pub checks: [u64; 2],
    /// Response heads received, and the sum of their times (µs).
    pub heads: u64,
    /// Sum of times to the response head, in microseconds.
    pub head_us: u64,
}

impl ServerStats {
    /// A complete response.
    pub fn response(&mut self, status: u16) {
        let class = usize::from(status / 100).clamp(1, 5) - 1;
        self.responses[class] += 1;
    }

    /// A failure.
    pub fn failure(&mut self, f: Failure) {
        if let Some(i) = FAILURE_NAMES.iter().position(|n| *n == f.name()) {
            self.failures[i] += 1;
        }
    }

    /// A response head after `d`.
    pub fn head_time(&mut self, d: Duration) {
        self.heads += 1;
        self.head_us += d.as_micros() as u64;
    }

    /// An active check's verdict.
    pub fn checks(&mut self, pass: bool) {
        self.checks[usize::from(!pass)] += 1;
    }

    /// Adds another core's counts.
    pub fn add(&mut self, o: &ServerStats) {
        self.requests += o.requests;
        for (a, b) in self.responses.iter_mut().zip(o.responses) {
            *a += b;
        }
        for (a, b) in self.failures.iter_mut().zip(o.failures) {
            *a += b;
        }
        for (a, b) in self.checks.iter_mut().zip(o.checks) {
            *a += b;
        }
        self.heads += o.heads;
        self.head_us += o.head_us;
    }
}
