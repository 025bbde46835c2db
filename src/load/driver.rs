//! One load thread: a worker with no listeners, whose client application is
//! this file — its share of the connections, the open-loop schedule (or
//! back-to-back requests in a closed loop), reconnects, and its own
//! statistics. The worker's client drivers read the responses, pair them
//! with their requests and time them out.
//!
//! Times are nanoseconds since a process-wide epoch. Each loop tick the
//! worker hands over what happened, then polls: send what is due → every
//! 10 ms check the stop flag, reconnects and progress → say when the next
//! request, the end or the next check is due, which bounds the worker's wait.
#![forbid(unsafe_code)]

use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Barrier, OnceLock, mpsc};
use std::time::{Duration, Instant};

use super::args::Options;
use super::conn::{Conn, Link};
use super::schedule::{Schedule, share};
use super::stats::{ErrorKind, Stats, Tick};
use crate::driver::{ClientEnd, ClientEvent, ClientSettings, Request, Response};
use crate::runtime::Engine;
use crate::runtime::worker::{
    ClientApp, ClientIo, ConnId, Control, Next, Spec as WorkerSpec, Worker,
};

/// How often the stop flag, reconnects and progress are checked.
const HOUSEKEEPING_NS: u64 = 10_000_000;
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
    /// Connections are being opened; the clock has not started.
    Connecting {
        until: u64,
    },
    Running,
    /// The end came: waiting for the answers still due.
    Draining,
    /// Finished: the results are in.
    Done,
}

struct Driver {
    conns: Vec<Conn>,
    shared: Arc<Shared>,
    schedule: Option<Schedule>,
    settings: ClientSettings,
    head: bool,
    pipeline: usize,
    start_ns: u64,
    end_ns: u64,
    next_check: u64,
    phase: Phase,
    /// Passed the start barrier (every thread must, even a failing one).
    started: bool,
    stats: Stats,
    /// This second's share of the results.
    tick: Stats,
    tick_second: u64,
    progress: mpsc::Sender<Msg>,
    touched: Vec<usize>,
    /// Open loop: requests queued on all connections together.
    queued: u64,
    /// Closed loop with a request budget: requests left to send.
    budget_left: Option<u64>,
}

/// Runs one thread's part of the load and returns what it measured.
pub fn run(spec: Spec) -> Result<Stats, String> {
    let shared = spec.shared.clone();
    let worker = match worker(spec.count) {
        Ok(w) => w,
        Err(e) => {
            // The others must not wait for this thread at the barrier.
            shared.stop.store(true, Ordering::Release);
            shared.barrier.wait();
            return Err(format!("cannot set up an io_uring: {e}"));
        }
    };
    let mut d = Driver::new(spec);
    let r = worker.run_clients(&mut d);
    if !d.started {
        shared.stop.store(true, Ordering::Release);
        shared.barrier.wait();
    }
    r.map_err(|e| format!("io_uring wait failed: {e}"))?;
    if d.phase != Phase::Done {
        return Err("the load thread ended early".to_string());
    }
    Ok(d.stats)
}

/// A worker for `conns` outgoing connections and nothing else.
fn worker(conns: usize) -> std::io::Result<Worker<crate::handler::Router>> {
    let engine = Engine {
        ring_entries: (conns * 2 + 16).next_power_of_two().clamp(64, 4096) as u32,
        buffer_count: (conns * 2).next_power_of_two().clamp(64, 4096) as u16,
        buffer_size: 16 * 1024,
        ..Engine::default()
    };
    let spec = WorkerSpec {
        id: 0,
        listeners: Vec::new(),
        limits: crate::http::Limits::default(),
        settings: crate::driver::Settings::default(),
        shutdown_timeout: Duration::from_secs(1),
        engine,
        control: Control::new()?,
        metrics: None,
        sites: None,
        tls: None,
        tls_headers: String::new(),
    };
    Worker::new(spec, crate::handler::Router::new(), None)
}

impl Driver {
    fn new(spec: Spec) -> Driver {
        let o = &spec.shared.opts;
        let budget = |i: usize| match (o.rate, o.requests) {
            (None, Some(n)) => Some(share(n, o.connections as u64, (spec.first + i) as u64)),
            _ => None,
        };
        let conns = (0..spec.count).map(|i| Conn::new(budget(i))).collect();
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
        Driver {
            conns,
            schedule,
            settings: ClientSettings {
                connect_timeout: o.timeout,
                response_timeout: o.timeout,
                ..ClientSettings::default()
            },
            head: o.head,
            pipeline: o.pipeline,
            start_ns: 0,
            end_ns: 0,
            next_check: 0,
            phase: Phase::Connecting { until: 0 },
            started: false,
            stats: Stats::default(),
            tick: Stats::default(),
            tick_second: 0,
            progress: spec.progress,
            touched: Vec::new(),
            queued: 0,
            budget_left: (0..spec.count).map(budget).sum(),
            shared: spec.shared,
        }
    }

    fn ns(&self, t: Instant) -> u64 {
        t.saturating_duration_since(self.shared.epoch).as_nanos() as u64
    }

    fn at(&self, ns: u64) -> Instant {
        self.shared.epoch + Duration::from_nanos(ns)
    }

    fn stopped(&self) -> bool {
        self.shared.stop.load(Ordering::Acquire)
    }

    /// Opens every connection and waits until each is up or has failed once,
    /// so the schedule does not start with connects; waits no longer than
    /// [`CONNECT_WAIT_NS`] or the timeout. Slower connections go on
    /// connecting after the start. Then every thread starts together.
    fn connect_phase(&mut self, io: &mut dyn ClientIo, now: u64, until: u64) -> Option<Next> {
        if until == 0 {
            for i in 0..self.conns.len() {
                self.connect(io, i, now);
            }
            let timeout = self.settings.connect_timeout.as_nanos() as u64;
            self.phase = Phase::Connecting {
                until: now + timeout.min(CONNECT_WAIT_NS),
            };
            return self.connect_phase(io, now, now + timeout.min(CONNECT_WAIT_NS));
        }
        let waiting = self
            .conns
            .iter()
            .any(|c| matches!(c.link, Link::Connecting(_)));
        if waiting && now < until && !self.stopped() {
            return Some(Next::At(self.at(until.min(now + HOUSEKEEPING_NS))));
        }
        self.shared.barrier.wait();
        self.started = true;
        let now = self.ns(Instant::now());
        self.start_ns = *self.shared.start_ns.get_or_init(|| now);
        self.end_ns = self.start_ns + self.shared.opts.duration.as_nanos() as u64;
        self.phase = Phase::Running;
        for i in 0..self.conns.len() {
            self.try_send(io, i, now);
        }
        None
    }

    fn connect(&mut self, io: &mut dyn ClientIo, i: usize, now: u64) {
        match io.connect(self.shared.addr.into(), i as u64, self.settings.clone()) {
            Ok(id) => self.conns[i].link = Link::Connecting(id),
            Err(e) => {
                self.connect_failed(i, &e.to_string());
                self.conns[i].ended(now);
            }
        }
    }

    fn connect_failed(&mut self, i: usize, why: &str) {
        self.stats.errors.add(ErrorKind::Connect, 1);
        self.conns[i].failures += 1;
        if !self.shared.connect_logged.swap(true, Ordering::Relaxed) {
            super::warn(&format!(
                "cannot connect to {}: {why} (retrying; counted as connect errors)",
                self.shared.addr
            ));
        }
    }

    fn record(&mut self, r: &Response) {
        let latency = self.ns(r.done).saturating_sub(r.tag);
        self.flush_ticks(self.ns(r.done));
        self.stats.response(latency, r.status, r.body_len);
        self.tick.response(latency, r.status, r.body_len);
    }

    /// A connection ended: every unanswered request on it counts as one
    /// error of the kind its end says (at least one error for a failure).
    fn closed(&mut self, io: &mut dyn ClientIo, i: usize, why: ClientEnd, lost: u64, now: u64) {
        let failure = match why {
            ClientEnd::ConnectFailed(_) | ClientEnd::Tls(_) => {
                self.connect_failed(i, &why.to_string());
                None
            }
            ClientEnd::ConnectTimeout => {
                self.stats.errors.add(ErrorKind::Connect, 1);
                self.conns[i].failures += 1;
                None
            }
            ClientEnd::ResponseTimeout => Some(ErrorKind::Timeout),
            ClientEnd::RecvFailed | ClientEnd::Truncated => Some(ErrorKind::Read),
            ClientEnd::SendFailed(_) => Some(ErrorKind::Write),
            ClientEnd::Malformed(_) | ClientEnd::Upgraded | ClientEnd::Unsolicited => {
                if !self.shared.parse_logged.swap(true, Ordering::Relaxed) {
                    super::warn(&format!("bad response: {why} (counted as parse errors)"));
                }
                Some(ErrorKind::Parse)
            }
            // A clean end that still leaves requests unanswered loses them.
            _ => {
                if lost > 0 {
                    self.stats.errors.add(ErrorKind::Read, lost);
                }
                None
            }
        };
        if let Some(kind) = failure {
            self.stats.errors.add(kind, lost.max(1));
        }
        let c = &mut self.conns[i];
        c.ended(now);
        if self.phase == Phase::Running && c.retry_at(now) <= now {
            self.connect(io, i, now);
        }
    }

    fn send_due(&mut self, io: &mut dyn ClientIo, now: u64) {
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
            self.try_send(io, i, now);
        }
        touched.clear();
        self.touched = touched;
    }

    /// Writes what this connection may send now (see [`Conn::sendable`]).
    fn try_send(&mut self, io: &mut dyn ClientIo, i: usize, now: u64) {
        if self.phase != Phase::Running {
            return;
        }
        let open_loop = self.schedule.is_some();
        let c = &mut self.conns[i];
        let Link::Open(id) = c.link else { return };
        let mut n = 0;
        for _ in 0..c.sendable(self.pipeline, open_loop) {
            let tag = c.take(now, open_loop);
            let req = Request {
                tag,
                head: self.head,
                upgrade: false,
                connect: false,
            };
            if !io.request(id, &self.shared.opts.request, req) {
                // The connection ended this tick; its end is reported next.
                c.untake(tag, open_loop);
                break;
            }
            n += 1;
        }
        if open_loop {
            self.queued -= n as u64;
        }
        if let Some(b) = self.budget_left.as_mut() {
            *b -= n as u64;
        }
    }

    /// Whether every request this thread was to send has been written.
    fn work_done(&self) -> bool {
        match &self.schedule {
            Some(s) => self.queued == 0 && s.peek().is_none(),
            None => self.budget_left == Some(0),
        }
    }

    fn housekeeping(&mut self, io: &mut dyn ClientIo, now: u64) {
        if self.phase == Phase::Running && self.stopped() {
            self.phase = Phase::Draining;
        }
        for i in 0..self.conns.len() {
            if let Link::Down { retry_at } = self.conns[i].link
                && self.phase == Phase::Running
                && now >= retry_at
            {
                self.connect(io, i, now);
            }
        }
        self.flush_ticks(now);
    }

    /// The run is over: the last ticks, the elapsed time and what was never
    /// sent.
    fn finish(&mut self) {
        let now = self.ns(Instant::now());
        self.flush_ticks(now);
        let partial = now.saturating_sub(self.start_ns + self.tick_second * SECOND_NS);
        if partial >= MIN_PARTIAL_TICK_NS {
            self.send_tick(partial);
        }
        self.stats.elapsed_ns = now.saturating_sub(self.start_ns);
        self.stats.unsent = self.conns.iter().map(|c| c.queued.len() as u64).sum();
        self.phase = Phase::Done;
        let _ = self.progress.send(Msg::Done);
    }

    /// Reports every second of the run that has ended by `now`.
    fn flush_ticks(&mut self, now: u64) {
        if self.phase == Phase::Done {
            return;
        }
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

impl ClientApp for Driver {
    fn poll(&mut self, io: &mut dyn ClientIo) -> Next {
        let mut now = self.ns(io.now());
        if let Phase::Connecting { until } = self.phase {
            if let Some(next) = self.connect_phase(io, now, until) {
                return next;
            }
            now = self.ns(Instant::now());
        }
        if self.phase == Phase::Running {
            self.send_due(io, now);
            if now >= self.end_ns || self.work_done() {
                self.phase = Phase::Draining;
            }
        }
        if now >= self.next_check {
            self.housekeeping(io, now);
            self.next_check = now + HOUSEKEEPING_NS;
        }
        if self.phase == Phase::Draining && self.conns.iter().all(|c| c.unanswered == 0) {
            self.finish();
        }
        if self.phase == Phase::Done {
            return Next::Done;
        }
        let mut wake = self.next_check;
        if self.phase == Phase::Running {
            wake = wake.min(self.end_ns);
            if let Some((_, at)) = self.schedule.as_ref().and_then(Schedule::peek) {
                wake = wake.min(self.start_ns + at);
            }
        }
        Next::At(self.at(wake))
    }

    fn on_event(&mut self, io: &mut dyn ClientIo, conn: ConnId, key: u64, event: ClientEvent) {
        let i = key as usize;
        if self.phase == Phase::Done || self.conns[i].id() != Some(conn) {
            return;
        }
        let now = self.ns(io.now());
        match event {
            ClientEvent::Connected => {
                let c = &mut self.conns[i];
                c.link = Link::Open(conn);
                c.failures = 0;
                c.close_after = false;
                self.try_send(io, i, now);
            }
            ClientEvent::Received(n) => self.stats.bytes += n as u64,
            ClientEvent::Head => {}
            ClientEvent::Response(r) => {
                self.record(&r);
                let c = &mut self.conns[i];
                c.unanswered = c.unanswered.saturating_sub(1);
                if r.last {
                    // The driver ends the connection next.
                    c.close_after = true;
                } else {
                    self.try_send(io, i, now);
                }
            }
            ClientEvent::Closed { why, lost } => self.closed(io, i, why, lost, now),
        }
    }
}
