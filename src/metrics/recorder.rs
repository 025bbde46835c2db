//! The worker's side of measurement: one histogram record per response on
//! the request path; the published latency, time-to-first-byte and interval
//! histograms are derived from these once per publishing interval.

use std::time::Duration;

use hdrhistogram::Histogram;

use super::{Counters, Stats, new_histogram};

/// What a worker records as it serves.
#[derive(Debug, Clone)]
pub struct Recorder {
    /// Responses whose last byte went out with their first: latency and time
    /// to first byte are one figure, µs.
    whole: Histogram<u64>,
    /// Responses whose body went out after their head (files, streams): time
    /// to first byte, µs.
    first: Histogram<u64>,
    /// The same responses' latency, µs.
    last: Histogram<u64>,
    /// Published latency (`whole` + `last`) at the previous publish: the
    /// interval histogram is what was added since.
    published: Histogram<u64>,
    /// Counters.
    pub counters: Counters,
}

impl Default for Recorder {
    fn default() -> Self {
        Recorder {
            whole: new_histogram(),
            first: new_histogram(),
            last: new_histogram(),
            published: new_histogram(),
            counters: Counters::default(),
        }
    }
}

fn micros(d: Duration) -> u64 {
    (d.as_micros() as u64).max(1)
}

impl Recorder {
    /// A response sent whole, `d` after its request began.
    pub fn whole(&mut self, d: Duration) {
        let us = micros(d);
        self.whole.saturating_record(us);
        self.counters.latency_sum_us += us;
        self.counters.ttfb_sum_us += us;
    }

    /// The first byte of a response whose body follows later.
    pub fn first(&mut self, d: Duration) {
        let us = micros(d);
        self.first.saturating_record(us);
        self.counters.ttfb_sum_us += us;
    }

    /// The last byte of a response whose first went out before.
    pub fn last(&mut self, d: Duration) {
        let us = micros(d);
        self.last.saturating_record(us);
        self.counters.latency_sum_us += us;
    }

    /// Writes the published figures into `out`, reusing its histograms:
    /// latency, time to first byte, the interval since the previous publish,
    /// and the counters.
    pub fn publish(&mut self, out: &mut Stats) {
        out.counters = self.counters.clone();
        sum(&mut out.latency, &self.whole, &self.last);
        sum(&mut out.ttfb, &self.whole, &self.first);
        copy(&mut out.recent, &out.latency);
        // Counts only grow, so the previous totals are a subset of these.
        let _ = out.recent.subtract(&self.published);
        copy(&mut self.published, &out.latency);
    }
}

/// `dst` = `a` + `b`.
fn sum(dst: &mut Histogram<u64>, a: &Histogram<u64>, b: &Histogram<u64>) {
    copy(dst, a);
    // Same bounds: adding cannot fail.
    let _ = dst.add(b);
}

/// `dst` = `src`, without reallocating when their bounds match.
fn copy(dst: &mut Histogram<u64>, src: &Histogram<u64>) {
    if dst.set_to(src).is_err() {
        *dst = src.clone();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn published_figures_combine_the_kinds_of_response() {
        let mut r = Recorder::default();
        let mut out = Stats::default();
        r.whole(Duration::from_micros(100));
        r.first(Duration::from_micros(50));
        r.last(Duration::from_millis(2));
        r.publish(&mut out);
        assert_eq!(out.latency.len(), 2);
        assert_eq!(out.ttfb.len(), 2);
        assert_eq!(out.recent.len(), 2);
        assert!(out.ttfb.equivalent(out.ttfb.min(), 50));
        assert!(out.latency.equivalent(out.latency.max(), 2000));
        assert_eq!(out.counters.latency_sum_us, 2100);
        assert_eq!(out.counters.ttfb_sum_us, 150);
        // The interval holds only what came after the previous publish.
        r.whole(Duration::from_micros(7));
        r.publish(&mut out);
        assert_eq!(out.latency.len(), 3);
        assert_eq!(out.recent.len(), 1);
        assert!(out.recent.equivalent(out.recent.max(), 7));
        r.publish(&mut out);
        assert_eq!(out.recent.len(), 0);
        assert_eq!(out.latency.len(), 3);
    }
}
