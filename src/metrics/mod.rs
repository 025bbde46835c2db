//! Per-worker measurement: latency histograms and counters owned by one
//! worker, copied into a shared snapshot on the worker's own schedule (once a
//! second) and merged by readers. Nothing here is touched by two workers.
#![forbid(unsafe_code)]

pub mod cache;
pub mod guards;
pub mod hgrm;
pub mod prometheus;
mod recorder;
pub mod status;
pub mod upstream;

pub use recorder::Recorder;

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime};

use hdrhistogram::Histogram;

use crate::http::Error;

/// Highest latency a histogram tracks, in microseconds (larger values are
/// clamped to it).
pub const MAX_LATENCY_US: u64 = 3_600_000_000;

/// A latency histogram in microseconds, 3 significant digits.
pub fn new_histogram() -> Histogram<u64> {
    Histogram::new_with_bounds(1, MAX_LATENCY_US, 3).expect("valid histogram bounds")
}

/// Why a connection was closed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CloseReason {
    /// The peer closed, or a `Connection: close` exchange ended.
    Normal,
    /// A header, body, keep-alive, send or lingering timeout.
    Timeout,
    /// The peer reset the connection or the socket failed.
    Reset,
    /// Refused for a limit: `max_connections`, or a 413/414/431 refusal.
    Limit,
    /// A protocol error (4xx/5xx refusal) or a server-side failure.
    Error,
    /// The server was stopping.
    Shutdown,
    /// Closed on accept by IP restrictions, or for a bad PROXY header.
    Denied,
}

impl CloseReason {
    /// Every reason, in exposition order.
    pub const ALL: [CloseReason; 7] = [
        CloseReason::Normal,
        CloseReason::Timeout,
        CloseReason::Reset,
        CloseReason::Limit,
        CloseReason::Error,
        CloseReason::Shutdown,
        CloseReason::Denied,
    ];

    /// The label value.
    pub fn as_str(self) -> &'static str {
        match self {
            CloseReason::Normal => "normal",
            CloseReason::Timeout => "timeout",
            CloseReason::Reset => "reset",
            CloseReason::Limit => "limit",
            CloseReason::Error => "error",
            CloseReason::Shutdown => "shutdown",
            CloseReason::Denied => "denied",
        }
    }
}

/// Protocol error kinds, as label values, indexed like [`parse_error_index`].
pub const PARSE_ERROR_KINDS: [&str; 23] = [
    "bad_request_line",
    "bad_target",
    "bad_header",
    "missing_host",
    "multiple_host",
    "bad_host",
    "length_and_encoding",
    "bad_content_length",
    "bad_transfer_encoding",
    "unsupported_transfer_encoding",
    "encoding_on_http10",
    "bad_chunk",
    "request_line_too_long",
    "headers_too_large",
    "too_many_headers",
    "body_too_large",
    "unsupported_version",
    "unknown_method",
    "bad_expectation",
    "headers_timeout",
    "body_timeout",
    "http2_protocol",
    "http2_flood",
];

/// The slot of `e` in [`PARSE_ERROR_KINDS`].
pub fn parse_error_index(e: Error) -> usize {
    match e {
        Error::BadRequestLine => 0,
        Error::BadTarget => 1,
        Error::BadHeader => 2,
        Error::MissingHost => 3,
        Error::MultipleHost => 4,
        Error::BadHost => 5,
        Error::LengthAndEncoding => 6,
        Error::BadContentLength => 7,
        Error::BadTransferEncoding => 8,
        Error::UnsupportedTransferEncoding => 9,
        Error::EncodingOnHttp10 => 10,
        Error::BadChunk => 11,
        Error::RequestLineTooLong => 12,
        Error::HeadersTooLarge => 13,
        Error::TooManyHeaders => 14,
        Error::BodyTooLarge => 15,
        Error::UnsupportedVersion => 16,
        Error::UnknownMethod => 17,
        Error::BadExpectation => 18,
        Error::HeadersTimeout => 19,
        Error::BodyTimeout => 20,
        Error::Http2Protocol => 21,
        Error::Http2Flood => 22,
    }
}

/// Counters one worker keeps.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Counters {
    /// Responses by status class: index 0 = 1xx … 4 = 5xx.
    pub status: [u64; 5],
    /// Request bytes received (TCP payload).
    pub bytes_in: u64,
    /// Response bytes handed to the kernel.
    pub bytes_out: u64,
    /// Connections accepted.
    pub accepted: u64,
    /// Connections closed, by [`CloseReason`] (in `CloseReason::ALL` order).
    pub closed: [u64; CloseReason::ALL.len()],
    /// Protocol errors by kind (in [`PARSE_ERROR_KINDS`] order).
    pub parse_errors: [u64; PARSE_ERROR_KINDS.len()],
    /// Sum of request latencies in microseconds (for the histogram's `_sum`).
    pub latency_sum_us: u64,
    /// Sum of time-to-first-byte in microseconds.
    pub ttfb_sum_us: u64,
    /// Responses sent over HTTP/2 (one per stream answered).
    pub http2_responses: u64,
}

impl Counters {
    /// Adds `other` into `self`.
    pub fn add(&mut self, other: &Counters) {
        for (a, b) in self.status.iter_mut().zip(other.status) {
            *a += b;
        }
        for (a, b) in self.closed.iter_mut().zip(other.closed) {
            *a += b;
        }
        for (a, b) in self.parse_errors.iter_mut().zip(other.parse_errors) {
            *a += b;
        }
        self.bytes_in += other.bytes_in;
        self.bytes_out += other.bytes_out;
        self.accepted += other.accepted;
        self.latency_sum_us += other.latency_sum_us;
        self.ttfb_sum_us += other.ttfb_sum_us;
        self.http2_responses += other.http2_responses;
    }

    /// Total responses.
    pub fn requests(&self) -> u64 {
        self.status.iter().sum()
    }

    /// Counts one response with status `status`.
    pub fn status(&mut self, status: u16) {
        self.status[class(status)] += 1;
    }

    /// Counts a closed connection.
    pub fn closed(&mut self, why: CloseReason) {
        let i = CloseReason::ALL.iter().position(|r| *r == why).unwrap_or(0);
        self.closed[i] += 1;
    }

    /// Counts a protocol error.
    pub fn parse_error(&mut self, e: Error) {
        self.parse_errors[parse_error_index(e)] += 1;
    }
}

/// The index of `status`'s class in [`Counters::status`] (0 = 1xx … 4 = 5xx).
pub fn class(status: u16) -> usize {
    usize::from(status / 100).clamp(1, 5) - 1
}

/// One site's responses, by status class.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SiteCounts {
    /// The site's name (its label in `/metrics` and key in `/status`).
    pub name: Arc<str>,
    /// Responses by status class: index 0 = 1xx … 4 = 5xx.
    pub status: [u64; 5],
}

impl SiteCounts {
    /// A site that has answered nothing yet.
    pub fn new(name: &str) -> SiteCounts {
        SiteCounts {
            name: name.into(),
            status: [0; 5],
        }
    }

    /// Total responses.
    pub fn requests(&self) -> u64 {
        self.status.iter().sum()
    }
}

/// Adds `from` into `into`, site by site by name (a site new to `into` is
/// appended).
pub fn add_sites(into: &mut Vec<SiteCounts>, from: &[SiteCounts]) {
    for s in from {
        match into.iter_mut().find(|t| t.name == s.name) {
            Some(t) => {
                for (a, b) in t.status.iter_mut().zip(s.status) {
                    *a += b;
                }
            }
            None => into.push(s.clone()),
        }
    }
}

/// Connection states at snapshot time (nginx `stub_status` fields).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Gauges {
    /// Open connections.
    pub active: u64,
    /// Reading a request head or body.
    pub reading: u64,
    /// Writing a response.
    pub writing: u64,
    /// Idle keep-alive connections.
    pub waiting: u64,
    /// Open connections speaking HTTP/2.
    pub http2: u64,
    /// Streams open on them.
    pub http2_streams: u64,
}

impl Gauges {
    /// Adds `other` into `self`.
    pub fn add(&mut self, o: &Gauges) {
        self.active += o.active;
        self.reading += o.reading;
        self.writing += o.writing;
        self.waiting += o.waiting;
        self.http2 += o.http2;
        self.http2_streams += o.http2_streams;
    }
}

/// What one worker measures; owned by that worker alone.
#[derive(Debug, Clone)]
pub struct Stats {
    /// Request latency: first byte of the request seen → last byte of the
    /// response handed to the kernel, in µs.
    pub latency: Histogram<u64>,
    /// The same, for the current publishing interval only (about a second):
    /// reset each time the worker publishes.
    pub recent: Histogram<u64>,
    /// Time to first response byte handed to the kernel, in µs.
    pub ttfb: Histogram<u64>,
    /// Counters.
    pub counters: Counters,
    /// Responses by site (answers given before a site was chosen count in
    /// `counters` only).
    pub sites: Vec<SiteCounts>,
    /// What the guards refused.
    pub guards: guards::GuardCounts,
}

impl Default for Stats {
    fn default() -> Self {
        Stats {
            latency: new_histogram(),
            recent: new_histogram(),
            ttfb: new_histogram(),
            counters: Counters::default(),
            sites: Vec::new(),
            guards: Default::default(),
        }
    }
}

impl Stats {
    /// Counts one response with status `status`.
    pub fn status(&mut self, status: u16) {
        self.counters.status(status);
    }

    /// Records a request's latency.
    pub fn latency(&mut self, d: Duration) {
        let us = (d.as_micros() as u64).max(1);
        self.latency.saturating_record(us);
        self.recent.saturating_record(us);
        self.counters.latency_sum_us += us;
    }

    /// Records a request's time to first byte.
    pub fn ttfb(&mut self, d: Duration) {
        let us = (d.as_micros() as u64).max(1);
        self.ttfb.saturating_record(us);
        self.counters.ttfb_sum_us += us;
    }

    /// Counts a closed connection.
    pub fn closed(&mut self, why: CloseReason) {
        self.counters.closed(why);
    }

    /// Counts a protocol error.
    pub fn parse_error(&mut self, e: Error) {
        self.counters.parse_error(e);
    }
}

/// One worker's published state.
#[derive(Debug, Clone)]
pub struct Snapshot {
    /// Worker index.
    pub worker: usize,
    /// When it was taken.
    pub taken: SystemTime,
    /// Histograms and counters so far.
    pub stats: Stats,
    /// Connection states.
    pub gauges: Gauges,
    /// The worker's upstream groups and servers.
    pub upstreams: Vec<upstream::UpstreamReport>,
    /// The worker's response cache.
    pub cache: crate::cache::CacheStats,
}

/// Where one worker publishes snapshots and readers pick them up.
pub type Slot = Arc<Mutex<Snapshot>>;

/// The server's configuration and readiness, written by the thread that
/// starts, reloads and stops it (never by a worker, never per request).
#[derive(Debug, Default)]
pub struct Lifecycle {
    /// The number of the configuration generation in effect (1 at start).
    pub generation: AtomicU64,
    /// Reloads that took effect.
    pub reloads_ok: AtomicU64,
    /// Reloads refused (the configuration in effect stayed).
    pub reloads_error: AtomicU64,
    /// Every worker is up.
    pub started: AtomicBool,
    /// The server is stopping (its shutdown delay, then the drain).
    pub draining: AtomicBool,
}

impl Lifecycle {
    /// Whether a load balancer should send traffic: started, not stopping.
    pub fn ready(&self) -> bool {
        self.started.load(Ordering::Acquire) && !self.draining.load(Ordering::Acquire)
    }

    /// The generation in effect.
    pub fn generation(&self) -> u64 {
        self.generation.load(Ordering::Acquire)
    }

    /// Counts a reload: `Some(number)` when generation `number` took effect.
    pub fn reloaded(&self, outcome: Option<u64>) {
        match outcome {
            Some(n) => {
                self.generation.store(n, Ordering::Release);
                self.reloads_ok.fetch_add(1, Ordering::AcqRel);
            }
            None => {
                self.reloads_error.fetch_add(1, Ordering::AcqRel);
            }
        }
    }
}

/// Everything readers need: every worker's slot plus server facts.
#[derive(Debug, Clone)]
pub struct Registry {
    /// One slot per worker, by index.
    pub workers: Vec<Slot>,
    /// When the server started.
    pub started: Instant,
    /// Wall-clock start time.
    pub started_wall: SystemTime,
    /// The configuration file, if any.
    pub config_path: Option<String>,
    /// Generation, reloads and readiness.
    pub life: Arc<Lifecycle>,
    /// The application pools, as their supervisor last saw them.
    pub pools: crate::pool::status::Board,
}

impl Registry {
    /// A registry with an empty slot for each of `workers` workers.
    pub fn new(workers: usize, config_path: Option<String>) -> Registry {
        let now = SystemTime::now();
        Registry {
            workers: (0..workers)
                .map(|i| {
                    Arc::new(Mutex::new(Snapshot {
                        worker: i,
                        taken: now,
                        stats: Stats::default(),
                        gauges: Gauges::default(),
                        upstreams: Vec::new(),
                        cache: Default::default(),
                    }))
                })
                .collect(),
            started: Instant::now(),
            started_wall: now,
            config_path,
            life: Arc::new(Lifecycle {
                generation: AtomicU64::new(1),
                ..Lifecycle::default()
            }),
            pools: Default::default(),
        }
    }

    /// Copies of every worker's latest snapshot.
    pub fn snapshots(&self) -> Vec<Snapshot> {
        self.workers
            .iter()
            .map(|s| s.lock().unwrap_or_else(|p| p.into_inner()).clone())
            .collect()
    }
}

/// The sum of several workers' snapshots (worker index is meaningless).
pub fn merge(snaps: &[Snapshot]) -> Snapshot {
    let mut total = Snapshot {
        worker: usize::MAX,
        taken: snaps
            .iter()
            .map(|s| s.taken)
            .max()
            .unwrap_or_else(SystemTime::now),
        stats: Stats::default(),
        gauges: Gauges::default(),
        upstreams: Vec::new(),
        cache: Default::default(),
    };
    for s in snaps {
        total.cache.add(&s.cache);
        let _ = total.stats.latency.add(&s.stats.latency);
        let _ = total.stats.recent.add(&s.stats.recent);
        let _ = total.stats.ttfb.add(&s.stats.ttfb);
        total.stats.counters.add(&s.stats.counters);
        add_sites(&mut total.stats.sites, &s.stats.sites);
        total.stats.guards.add(&s.stats.guards);
        total.gauges.add(&s.gauges);
        upstream::add_upstreams(&mut total.upstreams, &s.upstreams);
    }
    total
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn merge_adds_everything() {
        let mut a = Stats::default();
        a.status(200);
        a.status(404);
        a.latency(Duration::from_micros(100));
        a.closed(CloseReason::Timeout);
        a.parse_error(Error::MissingHost);
        let mut b = Stats::default();
        b.status(503);
        b.latency(Duration::from_millis(2));
        let snap = |w, stats| Snapshot {
            worker: w,
            taken: SystemTime::now(),
            stats,
            gauges: Gauges {
                active: 2,
                reading: 1,
                writing: 0,
                waiting: 1,
                http2: 1,
                http2_streams: 3,
            },
            upstreams: Vec::new(),
            cache: Default::default(),
        };
        a.sites = vec![SiteCounts::new("shop"), SiteCounts::new("blog")];
        a.sites[0].status = [0, 3, 0, 1, 0];
        b.sites = vec![SiteCounts::new("blog"), SiteCounts::new("shop")];
        b.sites[0].status = [0, 2, 0, 0, 0];
        b.sites[1].status = [0, 1, 0, 0, 1];
        let m = merge(&[snap(0, a), snap(1, b)]);
        assert_eq!(m.stats.sites.len(), 2);
        assert_eq!(&*m.stats.sites[0].name, "shop");
        assert_eq!(m.stats.sites[0].status, [0, 4, 0, 1, 1]);
        assert_eq!(m.stats.sites[1].requests(), 2);
        assert_eq!(m.stats.counters.status, [0, 1, 0, 1, 1]);
        assert_eq!(m.stats.counters.requests(), 3);
        assert_eq!(m.stats.latency.len(), 2);
        assert_eq!(m.stats.counters.latency_sum_us, 2100);
        assert_eq!(m.stats.counters.closed[1], 1);
        assert_eq!(m.stats.counters.parse_errors[3], 1);
        assert_eq!(m.gauges.active, 4);
    }

    #[test]
    fn error_kinds_line_up() {
        assert_eq!(
            PARSE_ERROR_KINDS[parse_error_index(Error::BodyTimeout)],
            "body_timeout"
        );
        assert_eq!(
            PARSE_ERROR_KINDS[parse_error_index(Error::UnknownMethod)],
            "unknown_method"
        );
    }
}
