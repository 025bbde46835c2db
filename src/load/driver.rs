//! One load thread: its share of the connections on its own ring, the
//! open-loop schedule (or back-to-back requests in a closed loop), timeouts,
//! reconnects, and its own statistics.
//!
//! Times are nanoseconds since a process-wide epoch. The loop: send what is
//! due → every 10 ms check timeouts, reconnects, progress and the end → wait
//! on the ring until a completion, the next due request or the next check.
#![forbid(unsafe_code)]

use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Barrier, OnceLock, mpsc};
use std::time::{Duration, Instant};

use crate::runtime::client::{Client, Completion, Event};

use super::args::Options;
use super::conn::{Conn, Link, Response};
use super::schedule::{Schedule, share};
use super::stats::{ErrorKind, Stats, Tick};

/// How often timeouts, reconnects, progress and the end are checked.
const HOUSEKEEPING_NS: u64 = 10_000_000;
/// Receive buffer per connection.
const RECV_BUF: usize = 32 * 1024;
const SECOND_NS: u64 = 1_000_000_000;
/// Shortest final partial second worth a progress line.
const MIN_PARTIAL_TICK_NS: u64 = 100_000_000;
/// Longest wait for connections before the clock starts.
const CONNECT_WAIT_NS: u64 = 1_000_000_000;

/// What all threads share: the options, the start line and the stop flag.
#[derive(Debug)]
pub struct Shared {
    /// Validated options.
    pub opts: Options,
    /// The resolved target address.
    pub addr: SocketAddr,
    /// The zero of every thread's clock.
    pub epoch: Instant,
    /// Threads wait here once their connections are up, then start together.
    pub barrier: Barrier,
    /// The start, in nanoseconds after `epoch`, set by the first thread past
    /// the barrier.
    pub start_ns: OnceLock<u64>,
    /// Set to end the run early (a signal, or a thread that failed).
    pub stop: AtomicBool,
    /// Whether a connect error or a parse error has been reported already.
    pub connect_logged: AtomicBool,
    /// As above, for parse errors.
    pub parse_logged: AtomicBool,
}

/// A message from a thread to the progress printer.
#[derive(Debug)]
pub enum Msg {
    /// One second of one thread's progress.
    Tick(Tick),
    /// The thread has finished.
    Done,
}

/// One thread's assignment.
#[derive(Debug)]
pub struct Spec {
    /// The first of its connections, in the global numbering.
    pub first: usize,
    /// How many connections it runs.
    pub count: usize,
    /// Shared state.
    pub shared: Arc<Shared>,
    /// Where progress goes.
    pub progress: mpsc::Sender<Msg>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Phase {
    Connecting,
    Running,
    Draining,
}

struct Driver {
    client: Client,
    conns: Vec<Conn>,
    shared: Arc<Shared>,
    schedule: Option<Schedule>,
    /// The request repeated `pipeline` times.
    batch: Vec<u8>,
    req_len: usize,
    pipeline: usize,
    timeout_ns: u64,
    start_ns: u64,
    end_ns: u64,
    phase: Phase,
    stats: Stats,
    /// This second's share of the results.
    tick: Stats,
    tick_second: u64,
    progress: mpsc::Sender<Msg>,
    responses: Vec<Response>,
    events: Vec<Completion>,
    touched: Vec<usize>,
    /// Open loop: requests queued on all connections together.
    queued: u64,
    /// Closed loop with a request budget: requests left to send.
    budget_left: Option<u64>,
}

/// Runs one thread's part of the load and returns what it measured.
pub fn run(spec: Spec) -> Result<Stats, String> {
    let shared = spec.shared.clone();
    let d = match Driver::new(spec) {
        Ok(d) => d,
        Err(e) => {
            // The others must not wait for this thread at the barrier.
            shared.stop.store(true, Ordering::Release);
            shared.barrier.wait();
            return Err(e);
        }
    };
    d.run()
}

impl Driver {
    fn new(spec: Spec) -> Result<Driver, String> {
        let o = &spec.shared.opts;
        let client = Client::new(spec.shared.addr, spec.count, RECV_BUF)
            .map_err(|e| format!("cannot set up an io_uring: {e}"))?;
        let budget = |i: usize| match (o.rate, o.requests) {
            (None, Some(n)) => Some(share(n, o.connections as u64, (spec.first + i) as u64)),
            _ => None,
        };
        let conns = (0..spec.count)
            .map(|i| Conn::new(o.head, budget(i)))
            .collect();
        let schedule = o.rate.map(|rate| {
            Schedule::new(
                rate,
                o.connections,
                spec.first,
                spec.count,
                o.duration.as_nanos() as u64,
                o.requests,
            )
        });
        Ok(Driver {
            client,
            conns,
            schedule,
            batch: o.request.repeat(o.pipeline),
            req_len: o.request.len(),
            pipeline: o.pipeline,
            timeout_ns: o.timeout.as_nanos() as u64,
            start_ns: 0,
            end_ns: 0,
            phase: Phase::Connecting,
            stats: Stats::default(),
            tick: Stats::default(),
            tick_second: 0,
            progress: spec.progress,
            responses: Vec::new(),
            events: Vec::new(),
            touched: Vec::new(),
            queued: 0,
            budget_left: (0..spec.count).map(budget).sum(),
            shared: spec.shared,
        })
    }

    fn now(&self) -> u64 {
        self.shared.epoch.elapsed().as_nanos() as u64
    }

    fn stopped(&self) -> bool {
        self.shared.stop.load(Ordering::Acquire)
    }

    fn run(mut self) -> Result<Stats, String> {
        let r = self.connect_phase();
        self.shared.barrier.wait();
        r?;
        let now = self.now();
        self.start_ns = *self.shared.start_ns.get_or_init(|| now);
        self.end_ns = self.start_ns + self.shared.opts.duration.as_nanos() as u64;
        self.phase = Phase::Running;
        for i in 0..self.conns.len() {
            self.try_send(i, now);
        }
        let mut next_check = 0;
        loop {
            let now = self.now();
            if self.phase == Phase::Running {
                self.send_due(now);
                if now >= self.end_ns || self.work_done() {
                    self.phase = Phase::Draining;
                }
            }
            if now >= next_check {
                self.housekeeping(now);
                next_check = now + HOUSEKEEPING_NS;
            }
            if self.phase == Phase::Draining && self.conns.iter().all(|c| c.outstanding.is_empty())
            {
                break;
            }
            let mut wake = next_check;
            if self.phase == Phase::Running {
                wake = wake.min(self.end_ns);
                if let Some((_, at)) = self.schedule.as_ref().and_then(Schedule::peek) {
                    wake = wake.min(self.start_ns + at);
                }
            }
            self.poll(Duration::from_nanos(wake.saturating_sub(now)))?;
        }
        let now = self.now();
        self.flush_ticks(now);
        let partial = now.saturating_sub(self.start_ns + self.tick_second * SECOND_NS);
        if partial >= MIN_PARTIAL_TICK_NS {
            self.send_tick(partial);
        }
        self.stats.elapsed_ns = now.saturating_sub(self.start_ns);
        self.stats.unsent = self.conns.iter().map(|c| c.queued.len() as u64).sum();
        let _ = self.progress.send(Msg::Done);
        Ok(self.stats)
    }

    /// Opens every connection and waits until each is up or has failed once,
    /// so the schedule does not start with connects; waits no longer than
    /// [`CONNECT_WAIT_NS`] or the timeout. Slower connections go on
    /// connecting after the start.
    fn connect_phase(&mut self) -> Result<(), String> {
        let now = self.now();
        for i in 0..self.conns.len() {
            self.connect(i, now);
        }
        let deadline = now + self.timeout_ns.min(CONNECT_WAIT_NS);
        loop {
            let now = self.now();
            let waiting = self
                .conns
                .iter()
                .any(|c| matches!(c.link, Link::Connecting { .. }));
            if !waiting || now >= deadline || self.stopped() {
                return Ok(());
            }
            self.poll(Duration::from_nanos((deadline - now).min(HOUSEKEEPING_NS)))?;
        }
    }

    fn poll(&mut self, timeout: Duration) -> Result<(), String> {
        let mut events = std::mem::take(&mut self.events);
        events.clear();
        self.client
            .poll(Some(timeout), &mut events)
            .map_err(|e| format!("io_uring wait failed: {e}"))?;
        let now = self.now();
        for c in &events {
            self.on_event(*c, now);
        }
        self.events = events;
        Ok(())
    }

    fn connect(&mut self, i: usize, now: u64) {
        match self.client.connect(i) {
            Ok(()) => self.conns[i].link = Link::Connecting { since: now },
            Err(e) => self.connect_failed(i, now, &e.to_string()),
        }
    }

    fn connect_failed(&mut self, i: usize, now: u64, why: &str) {
        self.stats.errors.add(ErrorKind::Connect, 1);
        let c = &mut self.conns[i];
        c.failures += 1;
        c.link = Link::Down {
            retry_at: c.retry_at(now),
        };
        if !self.shared.connect_logged.swap(true, Ordering::Relaxed) {
            super::warn(&format!(
                "cannot connect to {}: {why} (retrying; counted as connect errors)",
                self.shared.addr
            ));
        }
    }

    fn on_event(&mut self, c: Completion, now: u64) {
        let i = c.conn;
        if self.conns[i].link == Link::Closing && c.event != Event::Closed {
            return; // the rest of a connection already given up
        }
        match c.event {
            Event::Connected => {
                let c = &mut self.conns[i];
                c.link = Link::Open;
                c.failures = 0;
                c.close_after = false;
                c.reset_reader();
                self.try_send(i, now);
            }
            Event::ConnectFailed(errno) => {
                let why = std::io::Error::from_raw_os_error(errno).to_string();
                self.connect_failed(i, now, &why);
            }
            Event::Data(n) => self.on_data(i, n, now),
            Event::Eof => self.on_eof(i, now),
            Event::RecvFailed(_) => self.close(i, Some(ErrorKind::Read)),
            Event::SendFailed(_) => self.close(i, Some(ErrorKind::Write)),
            Event::Closed => {
                let c = &mut self.conns[i];
                let retry_at = c.retry_at(now);
                c.link = Link::Down { retry_at };
                if self.phase == Phase::Running && retry_at <= now {
                    self.connect(i, now);
                }
            }
        }
    }

    fn record(&mut self, i: usize, resp: Response, now: u64) -> bool {
        let Some(sent) = self.conns[i].outstanding.pop_front() else {
            return false;
        };
        let latency = now.saturating_sub(sent.origin);
        self.flush_ticks(now);
        self.stats.response(latency, resp.status, resp.body_len);
        self.tick.response(latency, resp.status, resp.body_len);
        if resp.close {
            self.conns[i].close_after = true;
        }
        true
    }

    fn on_data(&mut self, i: usize, n: usize, now: u64) {
        self.stats.bytes += n as u64;
        let mut responses = std::mem::take(&mut self.responses);
        responses.clear();
        let parsed = self.conns[i].read(self.client.received(i), &mut responses);
        let mut unsolicited = false;
        for r in responses.drain(..) {
            unsolicited |= !self.record(i, r, now);
        }
        self.responses = responses;
        if let Err(e) = parsed {
            self.parse_error(i, &e.to_string());
        } else if unsolicited {
            self.parse_error(i, "a response to no request");
        } else if self.conns[i].close_after {
            let lost = !self.conns[i].outstanding.is_empty();
            self.close(i, lost.then_some(ErrorKind::Read));
        } else {
            self.try_send(i, now);
        }
    }

    fn parse_error(&mut self, i: usize, why: &str) {
        if !self.shared.parse_logged.swap(true, Ordering::Relaxed) {
            super::warn(&format!("bad response: {why} (counted as parse errors)"));
        }
        self.close(i, Some(ErrorKind::Parse));
    }

    fn on_eof(&mut self, i: usize, now: u64) {
        let kind = match self.conns[i].read_eof() {
            Ok(Some(r)) => {
                if !self.record(i, r, now) {
                    return self.parse_error(i, "a response to no request");
                }
                None
            }
            Ok(None) => None,
            Err(_) => Some(ErrorKind::Read),
        };
        let lost = !self.conns[i].outstanding.is_empty();
        self.close(i, kind.or(lost.then_some(ErrorKind::Read)));
    }

    /// Gives a connection up: every unanswered request on it counts as one
    /// error of `kind` (at least one error when `kind` is given). Open-loop
    /// requests not yet written stay queued for the next connection.
    fn close(&mut self, i: usize, kind: Option<ErrorKind>) {
        let lost = self.conns[i].give_up();
        if let Some(kind) = kind {
            self.stats.errors.add(kind, lost.max(1));
        }
        self.client.close(i);
    }

    fn send_due(&mut self, now: u64) {
        let Some(s) = self.schedule.as_mut() else {
            return;
        };
        let rel = now.saturating_sub(self.start_ns);
        while let Some((i, at)) = s.next_due(rel) {
            self.conns[i].queued.push_back(self.start_ns + at);
            self.queued += 1;
            self.touched.push(i);
        }
        let mut touched = std::mem::take(&mut self.touched);
        for &i in &touched {
            self.try_send(i, now);
        }
        touched.clear();
        self.touched = touched;
    }

    /// Writes what this connection may send now (see [`Conn::sendable`]).
    fn try_send(&mut self, i: usize, now: u64) {
        if self.phase != Phase::Running {
            return;
        }
        let open_loop = self.schedule.is_some();
        let c = &mut self.conns[i];
        let n = c.sendable(self.pipeline, open_loop);
        if n == 0 {
            return;
        }
        c.take(n, now, open_loop);
        if open_loop {
            self.queued -= n as u64;
        }
        if let Some(b) = self.budget_left.as_mut() {
            *b -= n as u64;
        }
        self.client.send(i, &self.batch[..n * self.req_len]);
    }

    /// Whether every request this thread was to send has been written.
    fn work_done(&self) -> bool {
        match &self.schedule {
            Some(s) => self.queued == 0 && s.peek().is_none(),
            None => self.budget_left == Some(0),
        }
    }

    fn housekeeping(&mut self, now: u64) {
        if self.phase == Phase::Running && self.stopped() {
            self.phase = Phase::Draining;
        }
        for i in 0..self.conns.len() {
            match self.conns[i].link {
                Link::Open if self.conns[i].timed_out(now, self.timeout_ns) => {
                    self.close(i, Some(ErrorKind::Timeout));
                }
                Link::Connecting { since } if now.saturating_sub(since) >= self.timeout_ns => {
                    self.stats.errors.add(ErrorKind::Connect, 1);
                    self.conns[i].failures += 1;
                    self.close(i, None);
                }
                Link::Down { retry_at } if self.phase == Phase::Running && now >= retry_at => {
                    self.connect(i, now);
                }
                _ => {}
            }
        }
        self.flush_ticks(now);
    }

    /// Reports every second of the run that has ended by `now`.
    fn flush_ticks(&mut self, now: u64) {
        while now >= self.start_ns + (self.tick_second + 1) * SECOND_NS {
            self.send_tick(SECOND_NS);
        }
    }

    /// Reports the current second, `len_ns` of it (less than a second for
    /// the last, partial one).
    fn send_tick(&mut self, len_ns: u64) {
        let tick = std::mem::take(&mut self.tick);
        let _ = self.progress.send(Msg::Tick(Tick {
            second: self.tick_second,
            secs: len_ns as f64 / 1e9,
            completed: tick.completed,
            errors: self.stats.errors.total(),
            latency: tick.latency,
        }));
        self.tick_second += 1;
    }
}
