//! The worker's side of measurement: turns [`Served`] events into histogram
//! records, status counters (in total and for the site that answered) and
//! access-log lines, each into the buffer of its site's log output.

use std::time::Instant;

use crate::accesslog::{Format, Formatter, Pending};
use crate::http::Ticket;
use crate::http::conn::{Observer, Served};
use crate::metrics::Recorder;
use crate::runtime::logfile::FLUSH_AT;
use crate::site::Generation;

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

/// One access-log output of a worker: its formatter and the lines waiting
/// to be written (by the worker, through its ring, to the matching file).
#[derive(Debug)]
pub struct LogOut {
    /// Formats this output's lines.
    pub fmt: Formatter,
    /// Finished lines waiting to be written.
    pub buf: Vec<u8>,
}

/// Per-worker observer state.
#[derive(Debug)]
pub struct Observe {
    /// Whether histograms and counters are kept.
    pub metrics: bool,
    /// The worker's measurements.
    pub stats: Recorder,
    /// Access-log outputs, by the worker's log-file index.
    pub logs: Vec<LogOut>,
    /// Some output holds [`FLUSH_AT`] bytes or more: time to write.
    pub flush_due: bool,
    /// Current wall-clock second.
    pub unix_secs: u64,
    /// The output of each site's lines, by site index; `None`: not logged.
    site_out: Vec<Option<u16>>,
    /// The output of answers given before a site was chosen, and of an
    /// index `site_out` does not have.
    global_out: Option<u16>,
    /// Responses handed to the kernel at the end of this tick, by request start.
    done: Vec<(Instant, Mark)>,
    /// Access-log lines of file and streamed responses in progress (with
    /// their output), by ticket - 1.
    pending: Vec<Option<(u16, Pending)>>,
    /// Free entries of `pending`.
    free: Vec<u32>,
}

impl Observe {
    /// An observer with no log outputs yet (see [`Observe::add_output`] and
    /// [`Observe::bind`]).
    pub fn new(metrics: bool) -> Observe {
        Observe {
            metrics,
            stats: Recorder::default(),
            logs: Vec::new(),
            flush_due: false,
            unix_secs: 0,
            site_out: Vec::new(),
            global_out: None,
            done: Vec::new(),
            pending: Vec::new(),
            free: Vec::new(),
        }
    }

    /// Adds an output writing `format`; returns its index.
    pub fn add_output(&mut self, format: Format) -> u16 {
        self.logs.push(LogOut {
            fmt: Formatter::new(format),
            buf: Vec::new(),
        });
        (self.logs.len() - 1) as u16
    }

    /// Takes the sites of `g`: their names label the counters (a name seen
    /// before keeps its counts), and output `i` of `g`'s log plan is this
    /// observer's output `outputs[i]` (`None`: dropped).
    pub fn bind(&mut self, g: &Generation, outputs: &[Option<u16>]) {
        let out = |o: Option<u16>| o.and_then(|i| outputs.get(usize::from(i)).copied().flatten());
        self.site_out = g.logs.sites.iter().map(|o| out(*o)).collect();
        self.global_out = out(g.logs.global);
        if self.metrics {
            self.stats
                .set_sites(g.plan.sites.iter().map(|s| s.name.as_str()));
            self.stats.guards.set_zones(g.guards.zones.named());
        }
    }

    /// Whether per-request work is needed at all.
    pub fn active(&self) -> bool {
        self.metrics || !self.logs.is_empty()
    }

    /// The output of a response of `site`.
    #[inline]
    fn output(&self, site: Option<u16>) -> Option<u16> {
        match site {
            Some(i) => self
                .site_out
                .get(usize::from(i))
                .copied()
                .unwrap_or(self.global_out),
            None => self.global_out,
        }
    }

    /// Records every response handed to the kernel this tick; call just before
    /// the submit.
    pub fn end_tick(&mut self) {
        if self.done.is_empty() {
            return;
        }
        let now = Instant::now();
        // Pipelined requests share their start (the receive that brought
        // them), so a run of equal entries is recorded at once.
        for run in self.done.chunk_by(|a, b| a == b) {
            record(&mut self.stats, now, run[0], run.len() as u64);
        }
        self.done.clear();
    }

    fn keep(&mut self, out: u16, line: Pending) -> Ticket {
        let i = match self.free.pop() {
            Some(i) => {
                self.pending[i as usize] = Some((out, line));
                i
            }
            None => {
                self.pending.push(Some((out, line)));
                self.pending.len() as u32 - 1
            }
        };
        Ticket(i + 1)
    }
}

/// Records `n` responses that began at `start` and reached `mark` at `now`.
fn record(stats: &mut Recorder, now: Instant, (start, mark): (Instant, Mark), n: u64) {
    let d = now.saturating_duration_since(start);
    match mark {
        Mark::Whole => stats.whole(d, n),
        Mark::First => stats.first(d, n),
        Mark::Last => stats.last(d, n),
    }
}

impl Observer for Observe {
    fn served(&mut self, ev: &Served<'_>) -> Ticket {
        let later = ev.file || ev.stream;
        if self.metrics {
            self.stats.counters.status(ev.status);
            if ev
                .req
                .is_some_and(|r| r.version == crate::http::Version::Http2)
            {
                self.stats.counters.http2_responses += 1;
            }
            if let Some(site) = ev.site {
                self.stats.site_status(site, ev.status);
            }
            if let Some(e) = ev.error {
                self.stats.counters.parse_error(e);
            }
            if let Some(r) = ev.refused {
                self.stats.guards.count(r);
            }
            // A file or streamed body's latency is recorded when its last byte
            // goes out; its first byte goes out with this tick.
            self.done
                .push((ev.started, if later { Mark::First } else { Mark::Whole }));
        }
        let Some(o) = self.output(ev.site) else {
            return Ticket::NONE;
        };
        let secs = self.unix_secs;
        let log = &mut self.logs[usize::from(o)];
        if later {
            let line = log.fmt.start(ev, ev.peer, secs);
            return self.keep(o, line);
        }
        log.fmt
            .line(ev, ev.peer, secs, ev.started.elapsed(), &mut log.buf);
        if log.buf.len() >= FLUSH_AT {
            self.flush_due = true;
        }
        Ticket::NONE
    }

    fn stream_failed(&mut self, ticket: Ticket, reason: &'static str) {
        if ticket == Ticket::NONE {
            return;
        }
        let i = (ticket.0 - 1) as usize;
        if let Some(Some((_, line))) = self.pending.get_mut(i) {
            line.fail(reason);
        }
    }

    fn stream_done(&mut self, ticket: Ticket, started: Instant, bytes: u64) {
        if self.metrics {
            self.done.push((started, Mark::Last));
        }
        if ticket == Ticket::NONE {
            return;
        }
        let i = ticket.0 - 1;
        if let Some((o, line)) = self.pending.get_mut(i as usize).and_then(Option::take) {
            self.free.push(i);
            let log = &mut self.logs[usize::from(o)];
            log.fmt.finish(line, bytes, started.elapsed(), &mut log.buf);
            if log.buf.len() >= FLUSH_AT {
                self.flush_due = true;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::exchange::RequestHead;
    use crate::http::{Error, Method};

    /// Three sites: `shop` with its own log, `blog` on the global log, `quiet`
    /// not logged; the global log is output 0, shop's output 1.
    fn observer() -> Observe {
        let text = r#"
[access_log]
path = "/l/all.log"
[[site]]
name = "shop"
hosts = ["shop.test"]
access_log = { path = "/l/shop.log", format = "json" }
[[site]]
name = "blog"
hosts = ["blog.test"]
[[site]]
name = "quiet"
hosts = ["quiet.test"]
access_log = "off"
"#;
        let c = crate::config::parse(text, None).unwrap();
        let g = Generation::build(&c, &[]).unwrap();
        let mut o = Observe::new(true);
        let outs: Vec<Option<u16>> = g
            .logs
            .outputs
            .iter()
            .map(|c| Some(o.add_output(c.format)))
            .collect();
        o.bind(&g, &outs);
        o
    }

    fn serve(o: &mut Observe, site: Option<u16>, status: u16, target: &str) {
        let req = RequestHead::new(Method::Get, target);
        let ev = Served {
            req: site.map(|_| &req),
            peer: None,
            status,
            body_len: 3,
            started: Instant::now(),
            error: site.is_none().then_some(Error::MissingHost),
            file: false,
            stream: false,
            site,
            upstream: None,
            refused: None,
        };
        o.served(&ev);
    }

    fn lines(o: &Observe, i: usize) -> Vec<String> {
        String::from_utf8(o.logs[i].buf.clone())
            .unwrap()
            .lines()
            .map(String::from)
            .collect()
    }

    #[test]
    fn a_tick_records_every_response_and_runs_of_one_start_at_once() {
        let mut o = Observe::new(true);
        let t0 = Instant::now() - std::time::Duration::from_millis(30);
        let t1 = Instant::now() - std::time::Duration::from_millis(10);
        for e in [
            (t0, Mark::Whole),
            (t0, Mark::Whole),
            (t0, Mark::First),
            (t0, Mark::Whole),
            (t1, Mark::Whole),
            (t1, Mark::Last),
        ] {
            o.done.push(e);
        }
        o.end_tick();
        assert!(o.done.is_empty());
        let mut out = crate::metrics::Stats::default();
        o.stats.publish(&mut out);
        // Whole and last make up the latency, whole and first the time to
        // first byte.
        assert_eq!(out.latency.len(), 5);
        assert_eq!(out.ttfb.len(), 5);
        assert_eq!(out.latency.count_between(25_000, 40_000), 3);
        assert_eq!(out.latency.count_between(5_000, 20_000), 2);
        let sum = out.counters.latency_sum_us;
        assert!(
            (3 * 30_000 + 2 * 10_000..3 * 40_000 + 2 * 20_000).contains(&sum),
            "{sum}"
        );
    }

    #[test]
    fn lines_go_to_the_site_output_and_counts_to_the_site() {
        let mut o = observer();
        assert_eq!(o.logs.len(), 2);
        serve(&mut o, Some(0), 200, "/cart");
        serve(&mut o, Some(1), 404, "/post");
        serve(&mut o, Some(2), 200, "/hush");
        serve(&mut o, None, 400, "/");
        let global = lines(&o, 0);
        assert_eq!(global.len(), 2, "{global:?}");
        assert!(
            global[0].contains("\"GET /post HTTP/1.1\" 404 3"),
            "{global:?}"
        );
        assert!(global[1].contains("\"-\" 400 3"), "{global:?}");
        let shop = lines(&o, 1);
        assert_eq!(shop.len(), 1);
        let v: serde_json::Value = serde_json::from_str(&shop[0]).unwrap();
        assert_eq!(v["target"], "/cart");
        let mut out = crate::metrics::Stats::default();
        o.stats.publish(&mut out);
        assert_eq!(out.counters.requests(), 4);
        let by_site: Vec<(&str, u64)> =
            out.sites.iter().map(|s| (&*s.name, s.requests())).collect();
        assert_eq!(by_site, [("shop", 1), ("blog", 1), ("quiet", 1)]);
        assert_eq!(out.sites[1].status[3], 1);
    }

    #[test]
    fn a_streamed_line_finishes_in_its_site_output() {
        let mut o = observer();
        let req = RequestHead::new(Method::Get, "/big");
        let started = Instant::now();
        let t = o.served(&Served {
            req: Some(&req),
            peer: None,
            status: 200,
            body_len: 0,
            started,
            error: None,
            file: true,
            stream: false,
            site: Some(0),
            upstream: None,
            refused: None,
        });
        assert_ne!(t, Ticket::NONE);
        assert!(o.logs[1].buf.is_empty());
        // The upstream cut the body short: the line says why.
        o.stream_failed(t, "read_timeout");
        o.stream_done(t, started, 1234);
        let shop = lines(&o, 1);
        let v: serde_json::Value = serde_json::from_str(&shop[0]).unwrap();
        assert_eq!(v["body_bytes"], 1234);
        assert_eq!(v["upstream_error"], "read_timeout");
        assert!(o.logs[0].buf.is_empty());
    }

    #[test]
    fn a_full_buffer_asks_for_a_write() {
        let mut o = observer();
        let long = format!("/{}", "x".repeat(1000));
        while o.logs[1].buf.len() < FLUSH_AT {
            assert!(!o.flush_due);
            serve(&mut o, Some(0), 200, &long);
        }
        assert!(o.flush_due);
    }
}
