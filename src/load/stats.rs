//! What one thread measured: a latency histogram in microseconds, counters,
//! and errors by kind. Threads keep their own and merge at the end.
#![forbid(unsafe_code)]

use hdrhistogram::Histogram;

/// Highest latency tracked, in microseconds (one hour); larger values are
/// recorded as this.
pub const MAX_LATENCY_US: u64 = 3_600_000_000;

/// An empty latency histogram: 1 µs to one hour, 3 significant digits.
pub fn histogram() -> Histogram<u64> {
    Histogram::new_with_bounds(1, MAX_LATENCY_US, 3).expect("valid histogram bounds")
}

/// Kinds of failure.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ErrorKind {
    /// A connection could not be established (refused, unreachable, or not
    /// within the timeout).
    Connect,
    /// Receiving failed, or the connection closed before a response ended.
    Read,
    /// Sending failed.
    Write,
    /// No complete response within the timeout.
    Timeout,
    /// The response could not be parsed.
    Parse,
}

/// Error counts.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Errors {
    /// Failed connection attempts.
    pub connect: u64,
    /// Requests lost to receive failures or early closes.
    pub read: u64,
    /// Requests lost to send failures.
    pub write: u64,
    /// Requests with no response within the timeout.
    pub timeout: u64,
    /// Requests whose response was malformed.
    pub parse: u64,
    /// 3xx responses.
    pub status_3xx: u64,
    /// 4xx responses.
    pub status_4xx: u64,
    /// 5xx responses.
    pub status_5xx: u64,
    /// Status codes outside 200–599.
    pub status_other: u64,
}

impl Errors {
    /// All errors together.
    pub fn total(&self) -> u64 {
        self.connect
            + self.read
            + self.write
            + self.timeout
            + self.parse
            + self.status_3xx
            + self.status_4xx
            + self.status_5xx
            + self.status_other
    }

    /// Adds `n` errors of `kind`.
    pub fn add(&mut self, kind: ErrorKind, n: u64) {
        let c = match kind {
            ErrorKind::Connect => &mut self.connect,
            ErrorKind::Read => &mut self.read,
            ErrorKind::Write => &mut self.write,
            ErrorKind::Timeout => &mut self.timeout,
            ErrorKind::Parse => &mut self.parse,
        };
        *c += n;
    }

    /// Counts a response status that is not 2xx; returns whether it was 2xx.
    pub fn status(&mut self, status: u16) -> bool {
        match status {
            200..=299 => return true,
            300..=399 => self.status_3xx += 1,
            400..=499 => self.status_4xx += 1,
            500..=599 => self.status_5xx += 1,
            _ => self.status_other += 1,
        }
        false
    }

    fn merge(&mut self, o: &Errors) {
        self.connect += o.connect;
        self.read += o.read;
        self.write += o.write;
        self.timeout += o.timeout;
        self.parse += o.parse;
        self.status_3xx += o.status_3xx;
        self.status_4xx += o.status_4xx;
        self.status_5xx += o.status_5xx;
        self.status_other += o.status_other;
    }
}

/// One thread's results (or all threads', merged).
#[derive(Clone, Debug)]
pub struct Stats {
    /// Latency of every complete response, in microseconds.
    pub latency: Histogram<u64>,
    /// Complete responses, whatever their status.
    pub completed: u64,
    /// Responses with a 2xx status.
    pub ok: u64,
    /// Bytes received, heads included.
    pub bytes: u64,
    /// Body bytes received (decoded, for chunked bodies).
    pub body_bytes: u64,
    /// Open loop: requests that came due but were never sent before the end.
    pub unsent: u64,
    /// Errors by kind.
    pub errors: Errors,
    /// Time from the start to the last response, in nanoseconds.
    pub elapsed_ns: u64,
}

impl Default for Stats {
    fn default() -> Self {
        Stats {
            latency: histogram(),
            completed: 0,
            ok: 0,
            bytes: 0,
            body_bytes: 0,
            unsent: 0,
            errors: Errors::default(),
            elapsed_ns: 0,
        }
    }
}

impl Stats {
    /// Records a complete response `latency_ns` after its origin.
    pub fn response(&mut self, latency_ns: u64, status: u16, body_len: u64) {
        self.latency.saturating_record(latency_ns.div_ceil(1000));
        self.completed += 1;
        self.body_bytes += body_len;
        if self.errors.status(status) {
            self.ok += 1;
        }
    }

    /// Adds another thread's results; the elapsed time is the longer one.
    pub fn merge(&mut self, o: &Stats) {
        self.latency
            .add(&o.latency)
            .expect("histograms with the same bounds");
        self.completed += o.completed;
        self.ok += o.ok;
        self.bytes += o.bytes;
        self.body_bytes += o.body_bytes;
        self.unsent += o.unsent;
        self.errors.merge(&o.errors);
        self.elapsed_ns = self.elapsed_ns.max(o.elapsed_ns);
    }
}

/// One thread's progress over one second of the run.
#[derive(Debug)]
pub struct Tick {
    /// Which second (0 = the first).
    pub second: u64,
    /// Its length in seconds: 1, or less for the last, partial one.
    pub secs: f64,
    /// Responses completed in that second.
    pub completed: u64,
    /// Errors since the start.
    pub errors: u64,
    /// Latencies recorded in that second, in microseconds.
    pub latency: Histogram<u64>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn records_and_merges() {
        let mut a = Stats::default();
        a.response(1_500, 200, 13);
        a.response(2_000_000, 503, 0);
        a.errors.add(ErrorKind::Timeout, 2);
        let mut b = Stats::default();
        b.response(10, 404, 9);
        b.elapsed_ns = 5;
        a.merge(&b);
        assert_eq!((a.completed, a.ok, a.body_bytes), (3, 1, 22));
        assert_eq!(a.errors.status_5xx, 1);
        assert_eq!(a.errors.status_4xx, 1);
        assert_eq!(a.errors.total(), 4);
        assert_eq!(a.latency.len(), 3);
        assert_eq!(a.latency.min(), 1, "10 ns rounds up to 1 µs");
        assert!(a.latency.equivalent(a.latency.max(), 2_000));
        assert_eq!(a.elapsed_ns, 5);
    }
}
