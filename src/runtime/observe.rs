//! The worker's side of measurement: turns [`Served`] events into histogram
//! records, status counters and access-log lines.

use std::net::SocketAddr;
use std::time::Instant;

use crate::accesslog::{Formatter, Pending};
use crate::http::Ticket;
use crate::http::conn::{Observer, Served};
use crate::metrics::Stats;

/// What reaching the kernel means for a response.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Mark {
    /// Its first and last bytes: the whole response.
    Whole,
    /// Its first byte (a file body follows).
    First,
    /// Its last byte (the end of a file body).
    Last,
}

/// Per-worker observer state.
#[derive(Debug)]
pub struct Observe {
    /// Whether histograms and counters are kept.
    pub metrics: bool,
    /// The worker's measurements.
    pub stats: Stats,
    /// Access-log formatter, when logging.
    pub log: Option<Formatter>,
    /// Finished access-log lines waiting to be written.
    pub log_buf: Vec<u8>,
    /// Peer address of the connection being fed (for the access log).
    pub peer: Option<SocketAddr>,
    /// Current wall-clock second.
    pub unix_secs: u64,
    /// Responses handed to the kernel at the end of this tick, by request start.
    done: Vec<(Instant, Mark)>,
    /// Start of the most recent response (kept for a file body that follows).
    pub last_start: Option<Instant>,
    /// The access-log line of the most recent file response, finished when the
    /// file has been sent.
    pub last_pending: Option<Pending>,
    /// Access-log lines of streamed responses in progress, by ticket - 1.
    streams: Vec<Option<Pending>>,
    /// Free entries of `streams`.
    free: Vec<u32>,
}

impl Observe {
    /// An observer; `log` is the access-log formatter when logging is on.
    pub fn new(metrics: bool, log: Option<Formatter>) -> Observe {
        Observe {
            metrics,
            stats: Stats::default(),
            log,
            log_buf: Vec::new(),
            peer: None,
            unix_secs: 0,
            done: Vec::new(),
            last_start: None,
            last_pending: None,
            streams: Vec::new(),
            free: Vec::new(),
        }
    }

    /// Whether per-request work is needed at all.
    pub fn active(&self) -> bool {
        self.metrics || self.log.is_some()
    }

    /// Whether access logging is on.
    pub fn logging(&self) -> bool {
        self.log.is_some()
    }

    /// A file body that started at `start` has been handed to the kernel in full.
    pub fn file_done(&mut self, start: Option<Instant>, pending: Option<Pending>) {
        if let Some(s) = start
            && self.metrics
        {
            self.done.push((s, Mark::Last));
        }
        if let (Some(p), Some(f)) = (pending, &self.log) {
            let latency = start.map(|s| s.elapsed()).unwrap_or_default();
            f.finish(p, latency, &mut self.log_buf);
        }
    }

    /// Records every response handed to the kernel this tick; call just before
    /// the submit.
    pub fn end_tick(&mut self) {
        if self.done.is_empty() {
            return;
        }
        let now = Instant::now();
        for (start, mark) in self.done.drain(..) {
            let d = now.saturating_duration_since(start);
            if mark != Mark::Last {
                self.stats.ttfb(d);
            }
            if mark != Mark::First {
                self.stats.latency(d);
            }
        }
    }
}

impl Observer for Observe {
    fn served(&mut self, ev: &Served<'_>) -> Ticket {
        let later = ev.file || ev.stream;
        if self.metrics {
            self.stats.status(ev.status);
            if let Some(e) = ev.error {
                self.stats.parse_error(e);
            }
            // A file or streamed body's latency is recorded when its last byte
            // goes out; its first byte goes out with this tick.
            self.done
                .push((ev.started, if later { Mark::First } else { Mark::Whole }));
        }
        self.last_start = ev.file.then_some(ev.started);
        let mut ticket = Ticket::NONE;
        if let Some(f) = &mut self.log {
            if ev.stream {
                let line = Some(f.start(ev, self.peer, self.unix_secs));
                let i = match self.free.pop() {
                    Some(i) => {
                        self.streams[i as usize] = line;
                        i
                    }
                    None => {
                        self.streams.push(line);
                        self.streams.len() as u32 - 1
                    }
                };
                ticket = Ticket(i + 1);
            } else if ev.file {
                self.last_pending = Some(f.start(ev, self.peer, self.unix_secs));
            } else {
                f.line(
                    ev,
                    self.peer,
                    self.unix_secs,
                    ev.started.elapsed(),
                    &mut self.log_buf,
                );
            }
        }
        ticket
    }

    fn stream_done(&mut self, ticket: Ticket, started: Instant, _bytes: u64) {
        if self.metrics {
            self.done.push((started, Mark::Last));
        }
        if ticket == Ticket::NONE {
            return;
        }
        let i = ticket.0 - 1;
        if let Some(line) = self.streams.get_mut(i as usize).and_then(Option::take) {
            self.free.push(i);
            if let Some(f) = &self.log {
                f.finish(line, started.elapsed(), &mut self.log_buf);
            }
        }
    }
}
