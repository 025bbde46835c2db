//! The worker's side of measurement: turns [`Served`] events into histogram
//! records, status counters and access-log lines.

use std::time::Instant;

use crate::accesslog::{Formatter, Pending};
use crate::http::Ticket;
use crate::http::conn::{Observer, Served};
use crate::metrics::Recorder;

/// What reaching the kernel means for a response.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Mark {
    /// Its first and last bytes: the whole response.
    Whole,
    /// Its first byte (a file or streamed body follows).
    First,
    /// Its last byte (the end of a file or streamed body).
    Last,
}

/// Per-worker observer state.
#[derive(Debug)]
pub struct Observe {
    /// Whether histograms and counters are kept.
    pub metrics: bool,
    /// The worker's measurements.
    pub stats: Recorder,
    /// Access-log formatter, when logging.
    pub log: Option<Formatter>,
    /// Finished access-log lines waiting to be written.
    pub log_buf: Vec<u8>,
    /// Current wall-clock second.
    pub unix_secs: u64,
    /// Responses handed to the kernel at the end of this tick, by request start.
    done: Vec<(Instant, Mark)>,
    /// Access-log lines of file and streamed responses in progress, by
    /// ticket - 1.
    pending: Vec<Option<Pending>>,
    /// Free entries of `pending`.
    free: Vec<u32>,
}

impl Observe {
    /// An observer; `log` is the access-log formatter when logging.
    pub fn new(metrics: bool, log: Option<Formatter>) -> Observe {
        Observe {
            metrics,
            stats: Recorder::default(),
            log,
            log_buf: Vec::new(),
            unix_secs: 0,
            done: Vec::new(),
            pending: Vec::new(),
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

    /// Records every response handed to the kernel this tick; call just before
    /// the submit.
    pub fn end_tick(&mut self) {
        if self.done.is_empty() {
            return;
        }
        let now = Instant::now();
        for (start, mark) in self.done.drain(..) {
            let d = now.saturating_duration_since(start);
            match mark {
                Mark::Whole => self.stats.whole(d),
                Mark::First => self.stats.first(d),
                Mark::Last => self.stats.last(d),
            }
        }
    }

    fn keep(&mut self, line: Pending) -> Ticket {
        let i = match self.free.pop() {
            Some(i) => {
                self.pending[i as usize] = Some(line);
                i
            }
            None => {
                self.pending.push(Some(line));
                self.pending.len() as u32 - 1
            }
        };
        Ticket(i + 1)
    }
}

impl Observer for Observe {
    fn served(&mut self, ev: &Served<'_>) -> Ticket {
        let later = ev.file || ev.stream;
        if self.metrics {
            self.stats.counters.status(ev.status);
            if let Some(e) = ev.error {
                self.stats.counters.parse_error(e);
            }
            // A file or streamed body's latency is recorded when its last byte
            // goes out; its first byte goes out with this tick.
            self.done
                .push((ev.started, if later { Mark::First } else { Mark::Whole }));
        }
        let Some(f) = &mut self.log else {
            return Ticket::NONE;
        };
        if later {
            let line = f.start(ev, ev.peer, self.unix_secs);
            return self.keep(line);
        }
        f.line(
            ev,
            ev.peer,
            self.unix_secs,
            ev.started.elapsed(),
            &mut self.log_buf,
        );
        Ticket::NONE
    }

    fn stream_done(&mut self, ticket: Ticket, started: Instant, bytes: u64) {
        if self.metrics {
            self.done.push((started, Mark::Last));
        }
        if ticket == Ticket::NONE {
            return;
        }
        let i = ticket.0 - 1;
        if let Some(line) = self.pending.get_mut(i as usize).and_then(Option::take) {
            self.free.push(i);
            if let Some(f) = &self.log {
                f.finish(line, bytes, started.elapsed(), &mut self.log_buf);
            }
        }
    }
}
