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

/// Upper bounds of the buckets of the time to the response head, in
/// microseconds (100 µs to a minute, the default `response_head` timeout);
/// a last bucket takes everything above.
pub const HEAD_BUCKETS_US: [u64; 18] = [
    100, 250, 500, 1_000, 2_500, 5_000, 10_000, 25_000, 50_000, 100_000, 250_000, 500_000,
    1_000_000, 2_500_000, 5_000_000, 10_000_000, 30_000_000, 60_000_000,
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
    /// Response heads received.
    pub heads: u64,
    /// Sum of times to the response head, in microseconds.
    pub head_us: u64,
    /// Response heads by time to the head: `head_buckets[i]` counts those
    /// above `HEAD_BUCKETS_US[i - 1]` and at most `HEAD_BUCKETS_US[i]`; the
    /// last, those above every bound. Not cumulative.
    pub head_buckets: [u64; HEAD_BUCKETS_US.len() + 1],
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
        let us = d.as_micros() as u64;
        self.heads += 1;
        self.head_us += us;
        let i = HEAD_BUCKETS_US.partition_point(|&le| le < us);
        self.head_buckets[i] += 1;
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
        for (a, b) in self.head_buckets.iter_mut().zip(o.head_buckets) {
            *a += b;
        }
        self.heads += o.heads;
        self.head_us += o.head_us;
    }

    /// Failures of every kind.
    pub fn failed(&self) -> u64 {
        self.failures.iter().sum()
    }

    /// The mean time to the response head, in microseconds (0 without one).
    pub fn head_mean_us(&self) -> u64 {
        self.head_us.checked_div(self.heads).unwrap_or(0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn failure_names_line_up() {
        let mut s = ServerStats::default();
        for f in [
            Failure::Connect(111),
            Failure::ConnectTimeout,
            Failure::HeadTimeout,
            Failure::ReadTimeout,
            Failure::Closed,
            Failure::Invalid,
            Failure::Send,
            Failure::Upgraded,
        ] {
            let before = s.failures;
            s.failure(f);
            let i = FAILURE_NAMES.iter().position(|n| *n == f.name()).unwrap();
            assert_eq!(s.failures[i], before[i] + 1, "{}", f.name());
        }
        assert_eq!(s.failures, [1; 8]);
        s.failure(Failure::NoServer);
        assert_eq!(s.failed(), 8, "no server is no server's failure");
    }

    #[test]
    fn head_times_fall_in_their_buckets() {
        let mut s = ServerStats::default();
        assert_eq!(s.head_mean_us(), 0);
        s.head_time(Duration::from_micros(40));
        s.head_time(Duration::from_micros(100));
        s.head_time(Duration::from_micros(101));
        s.head_time(Duration::from_millis(3));
        s.head_time(Duration::from_secs(90));
        assert_eq!(s.heads, 5);
        assert_eq!(s.head_us, 40 + 100 + 101 + 3_000 + 90_000_000);
        assert_eq!(s.head_buckets[0], 2, "at most the bound is in its bucket");
        assert_eq!(s.head_buckets[1], 1);
        assert_eq!(s.head_buckets[5], 1, "3 ms is in the 5 ms bucket");
        assert_eq!(s.head_buckets[HEAD_BUCKETS_US.len()], 1, "above a minute");
        assert_eq!(s.head_buckets.iter().sum::<u64>(), s.heads);
        assert_eq!(s.head_mean_us(), s.head_us / 5);
    }

    #[test]
    fn add_sums_everything() {
        let mut a = ServerStats {
            requests: 3,
            ..ServerStats::default()
        };
        a.response(200);
        a.response(503);
        a.checks(true);
        a.head_time(Duration::from_millis(1));
        let mut b = a.clone();
        b.failure(Failure::Connect(111));
        b.checks(false);
        b.response(99);
        a.add(&b);
        assert_eq!(a.requests, 6);
        assert_eq!(a.responses, [1, 2, 0, 0, 2]);
        assert_eq!(a.failures[0], 1);
        assert_eq!(a.checks, [2, 1]);
        assert_eq!((a.heads, a.head_us), (2, 2_000));
        assert_eq!(a.head_buckets[3], 2);
    }
}
