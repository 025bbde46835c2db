//! `peregrine load`: an HTTP/1.1 load generator on the same io_uring engine
//! as the server.
//!
//! With `--rate` it runs an *open loop*: request `n` is meant to be sent at
//! `start + n / rate`, round-robin over the connections, and its latency is
//! measured from that intended time to the last byte of its response. A busy
//! connection or a slow server makes requests late, and the lateness counts,
//! so stalls are not hidden by the generator slowing down with the server
//! (no coordinated omission). Without `--rate` it runs a *closed loop* like
//! wrk: each connection sends its next request when the previous response
//! arrives, and latency is measured from the actual send.
//!
//! ```text
//!   mod.rs      CLI entry, threads, progress printer, outputs
//!   args        options and their checks              url       http:// URLs
//!   request     the request bytes (http::client)      schedule  open-loop send times
//!   driver      one pinned thread: the client application of a worker with no
//!               listeners (driver::ClientConn reads the responses, times them out)
//!   conn        one connection's link, queue, unanswered count, pipelining rules
//!                                                     stats     histograms, counters
//!   report      progress line and summary             hgrm      .hgrm and V2 exports
//! ```
#![forbid(unsafe_code)]

pub mod args;
pub mod conn;
pub mod driver;
use crate::metrics::hgrm;
pub mod report;
pub mod request;
pub mod schedule;
pub mod stats;
pub mod url;

use std::collections::BTreeMap;
use std::io::Write;
use std::net::SocketAddr;
use std::process::ExitCode;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Barrier, OnceLock, mpsc};
use std::time::Instant;

pub use args::{LoadArgs, Options};
use driver::{Msg, Shared, Spec};
use hdrhistogram::Histogram;
use stats::Stats;

use crate::runtime::{ring, sys};

/// Runs `peregrine load` from parsed arguments: progress on stderr, the
/// summary on stdout. Exit code 2 for bad arguments (a host that does not
/// resolve included), 1 when the run cannot start or an output cannot be
/// written.
pub fn main(args: LoadArgs) -> ExitCode {
    let opts = match args.validate() {
        Ok(o) => o,
        Err(e) => {
            warn(&e);
            return ExitCode::from(2);
        }
    };
    if let Err(e) = ring::check_available() {
        warn(&e);
        return ExitCode::from(1);
    }
    // A host that names nothing is a bad URL: a usage error too.
    let addr = match opts.target.resolve() {
        Ok(a) => a,
        Err(e) => {
            warn(&e);
            return ExitCode::from(2);
        }
    };
    let stop = Arc::new(AtomicBool::new(false));
    watch_signals(stop.clone());
    let setup = report::Setup {
        url: opts.target.url(),
        addr,
        rate: opts.rate,
        connections: opts.connections,
        threads: opts.threads,
        pipeline: opts.pipeline,
    };
    let (hgrm_path, v2_path) = (opts.hgrm.clone(), opts.histogram.clone());
    let stats = match run(opts, addr, stop, |line| {
        let _ = writeln!(std::io::stderr(), "{line}");
    }) {
        Ok(s) => s,
        Err(e) => {
            warn(&e);
            return ExitCode::from(1);
        }
    };
    let _ = std::io::stdout().write_all(report::summary(&setup, &stats).as_bytes());
    let mut code = ExitCode::SUCCESS;
    if let Some(p) = hgrm_path
        && let Err(e) = std::fs::write(&p, hgrm::percentiles_text(&stats.latency))
    {
        warn(&format!("cannot write {}: {e}", p.display()));
        code = ExitCode::from(1);
    }
    if let Some(p) = v2_path {
        let written = hgrm::v2_base64(&stats.latency)
            .and_then(|t| std::fs::write(&p, t + "\n").map_err(|e| e.to_string()));
        if let Err(e) = written {
            warn(&format!("cannot write {}: {e}", p.display()));
            code = ExitCode::from(1);
        }
    }
    code
}

/// Writes `peregrine load: <msg>` to standard error; a closed stderr is
/// ignored, never a panic.
pub fn warn(msg: &str) {
    let _ = writeln!(std::io::stderr(), "peregrine load: {msg}");
}

/// SIGINT, SIGTERM or SIGQUIT end the run early (the summary still prints); a
/// second one exits at once.
fn watch_signals(stop: Arc<AtomicBool>) {
    sys::block_signals();
    let _ = std::thread::Builder::new()
        .name("peregrine-signals".into())
        .spawn(move || {
            loop {
                let sig = sys::wait_signal();
                if matches!(sig, libc::SIGINT | libc::SIGTERM | libc::SIGQUIT) {
                    if stop.swap(true, Ordering::AcqRel) {
                        std::process::exit(130);
                    }
                    warn("stopping (again to quit at once)");
                }
            }
        });
}

/// Runs the load described by `opts` against `addr` (the target, resolved)
/// until its duration or request budget is spent, or `stop` is set. Calls
/// `progress` with one line per second of the run; returns every thread's
/// results merged.
pub fn run(
    opts: Options,
    addr: SocketAddr,
    stop: Arc<AtomicBool>,
    mut progress: impl FnMut(&str),
) -> Result<Stats, String> {
    ring::check_available()?;
    sys::raise_nofile_limit();
    let threads = opts.threads;
    let connections = opts.connections as u64;
    let cores = core_affinity::get_core_ids().unwrap_or_default();
    let shared = Arc::new(Shared {
        opts,
        addr,
        epoch: Instant::now(),
        barrier: Barrier::new(threads),
        start_ns: OnceLock::new(),
        stop: AtomicBool::new(false),
        connect_logged: AtomicBool::new(false),
        parse_logged: AtomicBool::new(false),
    });
    let (tx, rx) = mpsc::channel();
    let mut handles = Vec::new();
    for id in 0..threads {
        let spec = Spec {
            first: schedule::share_start(connections, threads as u64, id as u64) as usize,
            count: schedule::share(connections, threads as u64, id as u64) as usize,
            shared: shared.clone(),
            progress: tx.clone(),
        };
        let core = (!cores.is_empty()).then(|| cores[id % cores.len()]);
        let h = std::thread::Builder::new()
            .name(format!("peregrine-load{id}"))
            .spawn(move || {
                if let Some(core) = core {
                    core_affinity::set_for_current(core);
                }
                driver::run(spec)
            })
            .map_err(|e| format!("cannot start a thread: {e}"))?;
        handles.push(h);
    }
    drop(tx);
    print_progress(&rx, threads, &stop, &shared, &mut progress);
    let mut total = Stats::default();
    let mut failure = None;
    for h in handles {
        match h.join() {
            Ok(Ok(s)) => total.merge(&s),
            Ok(Err(e)) => failure = failure.or(Some(e)),
            Err(_) => failure = failure.or(Some("a load thread panicked".to_string())),
        }
    }
    match failure {
        Some(e) => Err(e),
        None => Ok(total),
    }
}

/// One second of the run, as reported so far.
struct Second {
    reports: usize,
    secs: f64,
    completed: u64,
    errors: u64,
    latency: Histogram<u64>,
}

/// Prints each second once every running thread has reported it, until all
/// threads are done; passes a stop request on to them.
fn print_progress(
    rx: &mpsc::Receiver<Msg>,
    threads: usize,
    stop: &AtomicBool,
    shared: &Shared,
    progress: &mut impl FnMut(&str),
) {
    let mut active = threads;
    let mut seconds: BTreeMap<u64, Second> = BTreeMap::new();
    let mut next = 0u64;
    while active > 0 {
        let msg = match rx.recv_timeout(std::time::Duration::from_millis(50)) {
            Ok(m) => m,
            Err(mpsc::RecvTimeoutError::Timeout) => {
                if stop.load(Ordering::Acquire) {
                    shared.stop.store(true, Ordering::Release);
                }
                continue;
            }
            Err(mpsc::RecvTimeoutError::Disconnected) => break,
        };
        match msg {
            Msg::Done => active -= 1,
            Msg::Tick(t) => {
                let s = seconds.entry(t.second).or_insert_with(|| Second {
                    reports: 0,
                    secs: 0.0,
                    completed: 0,
                    errors: 0,
                    latency: stats::histogram(),
                });
                s.reports += 1;
                s.secs = s.secs.max(t.secs);
                s.completed += t.completed;
                s.errors += t.errors;
                let _ = s.latency.add(&t.latency);
            }
        }
        while let Some(s) = seconds.get(&next) {
            if active > 0 && s.reports < active {
                break;
            }
            let rate = s.completed as f64 / s.secs.max(1e-3);
            progress(&report::progress_line(next, rate, s.errors, &s.latency));
            seconds.remove(&next);
            next += 1;
        }
    }
}
