//! The worker's side of measurement: one histogram record per response on
//! the request path; the published latency, time-to-first-byte and interval
//! histograms are derived from these once per publishing interval.

use std::time::Duration;

use hdrhistogram::Histogram;

use super::{Counters, SiteCounts, Stats, class, new_histogram};

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
    /// Responses by site: the current generation's sites first, by index,
    /// then sites an earlier generation had (their counts stay, and grow
    /// again if a later generation brings the name back).
    sites: Vec<SiteCounts>,
    /// How many of `sites` are the current generation's.
    current: usize,
    /// What the guards refused.
    pub guards: super::guards::GuardCounts,
}

impl Default for Recorder {
    fn default() -> Self {
        Recorder {
            whole: new_histogram(),
            first: new_histogram(),
            last: new_histogram(),
            published: new_histogram(),
            counters: Counters::default(),
            sites: Vec::new(),
            current: 0,
            guards: Default::default(),
        }
    }
}

fn micros(d: Duration) -> u64 {
    (d.as_micros() as u64).max(1)
}

impl Recorder {
    /// `n` responses sent whole, each `d` after its request began.
    pub fn whole(&mut self, d: Duration, n: u64) {
        let us = micros(d);
        self.whole.saturating_record_n(us, n);
        self.counters.latency_sum_us += us * n;
        self.counters.ttfb_sum_us += us * n;
    }

    /// The first byte of `n` responses whose bodies follow later.
    pub fn first(&mut self, d: Duration, n: u64) {
        let us = micros(d);
        self.first.saturating_record_n(us, n);
        self.counters.ttfb_sum_us += us * n;
    }

    /// The last byte of `n` responses whose first went out before.
    pub fn last(&mut self, d: Duration, n: u64) {
        let us = micros(d);
        self.last.saturating_record_n(us, n);
        self.counters.latency_sum_us += us * n;
    }

    /// Counts one response of site `site` (an index in the current
    /// generation) with status `status`.
    #[inline]
    pub fn site_status(&mut self, site: u16, status: u16) {
        let i = usize::from(site);
        if i < self.current {
            self.sites[i].status[class(status)] += 1;
        }
    }

    /// Makes `names` the current sites, by index: a name seen before keeps
    /// its counts; sites no longer named keep theirs but stop counting.
    pub fn set_sites<'a>(&mut self, names: impl IntoIterator<Item = &'a str>) {
        let mut old = std::mem::take(&mut self.sites);
        for n in names {
            let s = match old.iter().position(|s| &*s.name == n) {
                Some(i) => old.remove(i),
                None => SiteCounts::new(n),
            };
            self.sites.push(s);
        }
        self.current = self.sites.len();
        self.sites.append(&mut old);
    }

    /// Writes the published figures into `out`, reusing its histograms:
    /// latency, time to first byte, the interval since the previous publish,
    /// and the counters.
    pub fn publish(&mut self, out: &mut Stats) {
        out.counters = self.counters.clone();
        out.sites.clone_from(&self.sites);
        out.guards.clone_from(&self.guards);
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

    fn counts(out: &Stats) -> Vec<(&str, [u64; 5])> {
        out.sites.iter().map(|s| (&*s.name, s.status)).collect()
    }

    #[test]
    fn sites_count_by_index_and_keep_their_counts_by_name_across_generations() {
        let mut r = Recorder::default();
        let mut out = Stats::default();
        r.set_sites(["shop", "blog"]);
        r.site_status(0, 200);
        r.site_status(0, 404);
        r.site_status(1, 301);
        // An index the generation does not have is not counted.
        r.site_status(2, 200);
        r.publish(&mut out);
        assert_eq!(
            counts(&out),
            [("shop", [0, 1, 0, 1, 0]), ("blog", [0, 0, 1, 0, 0])]
        );
        // A new generation: blog moves to index 0, shop is gone, api is new.
        r.set_sites(["blog", "api"]);
        r.site_status(0, 200);
        r.site_status(1, 503);
        r.publish(&mut out);
        assert_eq!(
            counts(&out),
            [
                ("blog", [0, 1, 1, 0, 0]),
                ("api", [0, 0, 0, 0, 1]),
                ("shop", [0, 1, 0, 1, 0])
            ]
        );
        // shop comes back with its counts.
        r.set_sites(["shop"]);
        r.site_status(0, 200);
        r.publish(&mut out);
        assert_eq!(out.sites[0].status, [0, 2, 0, 1, 0]);
        assert_eq!(out.sites.len(), 3);
    }

    #[test]
    fn published_figures_combine_the_kinds_of_response() {
        let mut r = Recorder::default();
        let mut out = Stats::default();
        r.whole(Duration::from_micros(100), 1);
        r.first(Duration::from_micros(50), 1);
        r.last(Duration::from_millis(2), 1);
        r.publish(&mut out);
        assert_eq!(out.latency.len(), 2);
        assert_eq!(out.ttfb.len(), 2);
        assert_eq!(out.recent.len(), 2);
        assert!(out.ttfb.equivalent(out.ttfb.min(), 50));
        assert!(out.latency.equivalent(out.latency.max(), 2000));
        assert_eq!(out.counters.latency_sum_us, 2100);
        assert_eq!(out.counters.ttfb_sum_us, 150);
        // The interval holds only what came after the previous publish.
        r.whole(Duration::from_micros(7), 1);
        r.publish(&mut out);
        assert_eq!(out.latency.len(), 3);
        assert_eq!(out.recent.len(), 1);
        assert!(out.recent.equivalent(out.recent.max(), 7));
        r.publish(&mut out);
        assert_eq!(out.recent.len(), 0);
        assert_eq!(out.latency.len(), 3);
    }
}
