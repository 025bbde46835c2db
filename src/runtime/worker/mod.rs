//! One worker: a pinned thread with its own ring, listeners, connection slab,
//! timers, `Date` cache, measurements and access-log buffer. The loop: reap
//! completions → drive connections → queue operations → one submit.

mod close;
mod io;
mod timers;

use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::os::fd::AsRawFd;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime};

use io_uring::{opcode, squeue, types};
use slab::Slab;
use socket2::Socket;

use super::bufring::BufRing;
use super::logfile::LogFile;
use super::observe::Observe;
use super::ring::{Cqe, Ring};
use super::sys::{self, EventFd};
use super::timer::{Entry, Wheel};
use super::token::{Op, Token};
use super::{Engine, log};
use crate::accesslog::{self, Formatter};
use crate::conn::{Conn, Role, State};
use crate::http::date::DateCache;
use crate::http::{Limits, Service, Timeouts};
use crate::metrics::Slot;

/// Milliseconds per timer-wheel tick.
const TICK_MS: u64 = 100;
/// Input buffered behind a response in progress before receiving pauses.
const MAX_BUFFERED: usize = 256 * 1024;
/// Output buffers larger than this are not kept in the pool.
const POOL_BUF_MAX: usize = 64 * 1024;
/// Capacity of a fresh output buffer.
const POOL_BUF_SIZE: usize = 2048;
/// Output buffers kept for reuse.
const POOL_MAX: usize = 64;
/// Pause after an accept failure for lack of descriptors or memory.
const ACCEPT_BACKOFF_MS: u64 = 200;
/// How often a worker publishes its measurements.
const PUBLISH_MS: u64 = 1000;
/// Pipes kept for splicing file bodies.
const PIPE_POOL_MAX: usize = 32;
/// Capacity asked for each splice pipe (the system may cap it).
const PIPE_SIZE: usize = 1 << 20;
/// TLS handshake steps a worker runs per loop tick; more wait for the next
/// tick, so a burst of handshakes cannot stall the connections already served.
const HANDSHAKE_BUDGET: u32 = 32;

/// The shared, replaceable TLS configuration (swapped on certificate reload).
pub type TlsSlot = Arc<Mutex<Arc<rustls::ServerConfig>>>;

/// Requests to a worker from the thread that started it.
#[derive(Debug)]
pub struct Control {
    stop: AtomicBool,
    reopen: AtomicBool,
    reload: AtomicBool,
    wake: EventFd,
}

impl Control {
    /// A control block with its wake-up eventfd.
    pub fn new() -> std::io::Result<Arc<Control>> {
        Ok(Arc::new(Control {
            stop: AtomicBool::new(false),
            reopen: AtomicBool::new(false),
            reload: AtomicBool::new(false),
            wake: EventFd::new()?,
        }))
    }

    /// Asks the worker to stop gracefully.
    pub fn stop(&self) {
        self.stop.store(true, Ordering::Release);
        self.wake.wake();
    }

    /// Asks the worker to reopen its log files.
    pub fn reopen_logs(&self) {
        self.reopen.store(true, Ordering::Release);
        self.wake.wake();
    }

    /// Tells the worker a new TLS configuration is in its slot.
    pub fn reload_tls(&self) {
        self.reload.store(true, Ordering::Release);
        self.wake.wake();
    }
}

/// What a worker needs to start.
pub struct Spec {
    /// Worker index (for logs and metric labels).
    pub id: usize,
    /// Listening sockets owned by this worker, with what they serve.
    pub listeners: Vec<(Socket, Role)>,
    /// Size limits.
    pub limits: Limits,
    /// Timeouts.
    pub timeouts: Timeouts,
    /// Engine settings.
    pub engine: Engine,
    /// Stop and reopen requests.
    pub control: Arc<Control>,
    /// Where to publish measurements (none: the worker keeps none).
    pub metrics: Option<Slot>,
    /// The access log, if any.
    pub access_log: Option<accesslog::Config>,
    /// The TLS configuration, for HTTPS listeners.
    pub tls: Option<TlsSlot>,
    /// Header lines added to HTTPS responses (HSTS).
    pub tls_headers: String,
}

struct Listener {
    sock: Option<Socket>,
    role: Role,
    armed: bool,
    /// Accepting is paused until this worker millisecond (descriptor shortage).
    paused_until: Option<u64>,
}

/// The worker's event loop state.
pub struct Worker<S: Service> {
    // Field order matters: the ring is dropped (and its operations cancelled)
    // before the buffer memory it points at.
    ring: Ring,
    bufs: BufRing,
    conns: Slab<Conn>,
    listeners: Vec<Listener>,
    wheel: Wheel,
    due: Vec<Entry>,
    svc: S,
    limits: Limits,
    timeouts: Timeouts,
    engine: Engine,
    date: DateCache,
    obs: Observe,
    logfile: Option<LogFile>,
    slot: Option<Slot>,
    tls_slot: Option<TlsSlot>,
    tls_config: Option<Arc<rustls::ServerConfig>>,
    tls_headers: Vec<u8>,
    /// The service behind plain listeners that redirect to HTTPS.
    redirect: Option<Box<dyn Service>>,
    /// Wake-ups exchanges asked for, earliest first: (when, slot, generation).
    /// Stale entries are recognized against the connection and skipped.
    wakes: BinaryHeap<Reverse<(Instant, usize, u32)>>,
    exchanges: crate::http::conn::ExchangePool,
    plain_in: Vec<u8>,
    plain_out: Vec<u8>,
    deferred: Vec<(usize, u32)>,
    handshakes: u32,
    pipes: Vec<super::sys::Pipe>,
    start: Instant,
    now: Instant,
    now_ms: u64,
    published_ms: u64,
    pool: Vec<Vec<u8>>,
    cqes: Vec<Cqe>,
    starved: Vec<(usize, u32)>,
    control: Arc<Control>,
    wake_buf: Box<u64>,
    timer_ts: Box<types::Timespec>,
    generation: u32,
    id: usize,
    draining: bool,
    drain_deadline: u64,
    multishot_recv: bool,
    multishot_accept: bool,
    accept_error_logged: bool,
}

/// Which busy flag an operation sets while in flight (and its completion
/// clears).
#[derive(Clone, Copy)]
enum Busy {
    /// A file read or a splice into the pipe.
    Reading,
    /// A send, a splice out of the pipe, or a wait for a full socket.
    Sending,
}

/// Builds an [`crate::http::Env`] from disjoint worker fields, so that a
/// connection and the service can be borrowed alongside it.
macro_rules! http_env {
    ($w:expr) => {
        crate::http::Env {
            limits: &$w.limits,
            now: $w.now,
            date: $w.date.get(),
            draining: $w.draining,
            obs: &mut $w.obs,
            tls: None,
            extra_headers: b"",
            peer: None,
            pool: &mut $w.exchanges,
        }
    };
    ($w:expr, peer $peer:expr) => {
        crate::http::Env {
            limits: &$w.limits,
            now: $w.now,
            date: $w.date.get(),
            draining: $w.draining,
            obs: &mut $w.obs,
            tls: None,
            extra_headers: b"",
            peer: $peer,
            pool: &mut $w.exchanges,
        }
    };
    ($w:expr, $tls:expr, $peer:expr) => {
        crate::http::Env {
            limits: &$w.limits,
            now: $w.now,
            date: $w.date.get(),
            draining: $w.draining,
            obs: &mut $w.obs,
            tls: $tls,
            extra_headers: &$w.tls_headers,
            peer: $peer,
            pool: &mut $w.exchanges,
        }
    };
}
use http_env;

impl<S: Service> Worker<S> {
    /// Sets up the ring, buffers and log file. Errors here are startup errors.
    /// `redirect` answers on listeners whose role is [`Role::Redirect`].
    pub fn new(
        spec: Spec,
        svc: S,
        redirect: Option<Box<dyn Service>>,
    ) -> std::io::Result<Worker<S>> {
        let ring = Ring::new(spec.engine.ring_entries, spec.engine.defer_taskrun)?;
        if spec.id == 0 {
            log(&format!("io_uring setup: {}", ring.setup().describe()));
        }
        // Work the kernel hands to io-wq threads (splices, blocking file reads)
        // stays on this worker's CPU and is bounded.
        if let Some(set) = sys::current_affinity() {
            let _ = ring.inner().submitter().register_iowq_aff(&set);
        }
        let _ = ring
            .inner()
            .submitter()
            .register_iowq_max_workers(&mut [4, 4]);
        let bufs = BufRing::new(&ring, 0, spec.engine.buffer_count, spec.engine.buffer_size).map_err(|e| {
            std::io::Error::new(
                e.kind(),
                format!("cannot register a provided buffer ring (needs Linux 5.19+, kernel {}): {e}", sys::kernel_release()),
            )
        })?;
        let logfile = match &spec.access_log {
            Some(c) => Some(LogFile::open(c.path.as_deref()).map_err(|e| {
                let to = c
                    .path
                    .as_ref()
                    .map_or_else(|| "standard output".into(), |p| p.display().to_string());
                std::io::Error::new(e.kind(), format!("cannot open access log {to}: {e}"))
            })?),
            None => None,
        };
        let formatter = spec.access_log.as_ref().map(|c| Formatter::new(c.format));
        let now = Instant::now();
        let listeners = spec
            .listeners
            .into_iter()
            .map(|(s, role)| Listener {
                sock: Some(s),
                role,
                armed: false,
                paused_until: None,
            })
            .collect::<Vec<_>>();
        let tls_config = spec
            .tls
            .as_ref()
            .map(|s| s.lock().unwrap_or_else(|p| p.into_inner()).clone());
        Ok(Worker {
            ring,
            bufs,
            conns: Slab::with_capacity(1024),
            listeners,
            wheel: Wheel::new(),
            due: Vec::new(),
            svc,
            limits: spec.limits,
            timeouts: spec.timeouts,
            multishot_recv: spec.engine.multishot,
            multishot_accept: spec.engine.multishot,
            engine: spec.engine,
            date: DateCache::new(SystemTime::now()),
            obs: Observe::new(spec.metrics.is_some(), formatter),
            logfile,
            slot: spec.metrics,
            tls_slot: spec.tls,
            tls_config,
            tls_headers: spec.tls_headers.into_bytes(),
            redirect,
            wakes: BinaryHeap::new(),
            exchanges: crate::http::conn::ExchangePool::new(),
            plain_in: Vec::new(),
            plain_out: Vec::new(),
            deferred: Vec::new(),
            handshakes: 0,
            pipes: Vec::new(),
            start: now,
            now,
            now_ms: 0,
            published_ms: 0,
            pool: Vec::new(),
            cqes: Vec::with_capacity(1024),
            starved: Vec::new(),
            control: spec.control,
            wake_buf: Box::new(0),
            timer_ts: Box::new(types::Timespec::from(Duration::from_millis(TICK_MS))),
            generation: 0,
            id: spec.id,
            draining: false,
            drain_deadline: 0,
            accept_error_logged: false,
        })
    }

    /// Runs until a graceful stop completes.
    pub fn run(mut self) -> std::io::Result<()> {
        for i in 0..self.listeners.len() {
            self.arm_accept(i);
        }
        self.arm_timer();
        self.arm_wake();
        self.tick_clock();
        loop {
            if self.obs.active() {
                self.obs.end_tick();
                if self.obs.log_buf.len() >= super::logfile::FLUSH_AT {
                    self.flush_log();
                }
            }
            // Deferred handshakes mean work is waiting: poll instead of sleeping.
            // A wake-up an exchange asked for bounds the sleep.
            let wait = if self.deferred.is_empty() {
                self.wakes
                    .peek()
                    .map(|Reverse((t, _, _))| t.saturating_duration_since(Instant::now()))
            } else {
                Some(Duration::ZERO)
            };
            self.ring.submit_and_wait(wait)?;
            self.tick_clock();
            self.handshakes = 0;
            self.run_deferred();
            self.run_wakes();
            let mut cqes = std::mem::take(&mut self.cqes);
            cqes.clear();
            self.ring.reap(&mut cqes);
            for c in &cqes {
                self.dispatch(*c);
            }
            self.cqes = cqes;
            self.rearm_starved();
            if self.draining && self.finished() {
                self.obs.end_tick();
                self.publish();
                return Ok(());
            }
        }
    }

    /// Whether a draining worker has nothing left: no connections, listeners,
    /// or log lines unwritten.
    fn finished(&mut self) -> bool {
        if !self.conns.is_empty() || self.listeners.iter().any(|l| l.sock.is_some()) {
            return false;
        }
        match &self.logfile {
            Some(f) if !f.idle() => false,
            Some(_) if !self.obs.log_buf.is_empty() => {
                self.flush_log();
                false
            }
            _ => true,
        }
    }

    fn tick_clock(&mut self) {
        self.now = Instant::now();
        self.now_ms = self.ms(self.now);
        let wall = SystemTime::now();
        self.date.update(wall);
        self.obs.unix_secs = wall
            .duration_since(SystemTime::UNIX_EPOCH)
            .map_or(0, |d| d.as_secs());
    }

    fn ms(&self, t: Instant) -> u64 {
        t.saturating_duration_since(self.start).as_millis() as u64
    }

    fn dispatch(&mut self, cqe: Cqe) {
        let Some(t) = Token::unpack(cqe.user_data) else {
            return;
        };
        match t.op {
            Op::Accept => self.on_accept(t.slot as usize, cqe),
            Op::Recv => self.on_recv(t, cqe),
            Op::Send => self.on_send(t, cqe),
            Op::Read => self.on_read(t, cqe),
            Op::Timer => self.on_timer(),
            Op::Wake => self.on_wake(),
            Op::Log => self.on_log_written(cqe.res),
            Op::SpliceIn => self.on_splice_in(t, cqe),
            Op::SpliceOut => self.on_splice_out(t, cqe),
            Op::PollOut => self.on_poll_out(t, cqe),
            Op::Cancel => {}
        }
    }

    // ---- submission helpers -------------------------------------------------

    fn push(&mut self, e: squeue::Entry) {
        // SAFETY: every entry built by this worker points only at memory that
        // outlives its operation: connection output buffers (heap memory that is
        // neither moved nor freed while `sending`/`reading` is set, and whose slot
        // is not freed while `inflight > 0`), the provided buffer ring (dropped
        // after the ring), the log file's in-flight buffer (held until its
        // completion), and boxed fields of the worker (`wake_buf`, `timer_ts`),
        // which live until the ring is dropped. Fds stay open until every
        // operation on them has completed.
        unsafe { self.ring.push(e) }
    }

    fn arm_accept(&mut self, idx: usize) {
        let l = &mut self.listeners[idx];
        let Some(sock) = &l.sock else { return };
        if l.armed || l.paused_until.is_some() {
            return;
        }
        let fd = types::Fd(sock.as_raw_fd());
        let tok = Token::new(Op::Accept, idx, 0).pack();
        let e = if self.multishot_accept {
            opcode::AcceptMulti::new(fd)
                .flags(libc::SOCK_CLOEXEC | libc::SOCK_NONBLOCK)
                .build()
        } else {
            opcode::Accept::new(fd, std::ptr::null_mut(), std::ptr::null_mut())
                .flags(libc::SOCK_CLOEXEC | libc::SOCK_NONBLOCK)
                .build()
        };
        l.armed = true;
        self.push(e.user_data(tok));
    }

    fn arm_recv(&mut self, slot: usize) {
        let c = &mut self.conns[slot];
        if c.recv_armed || c.state == State::Closing || c.peer_eof {
            return;
        }
        let tok = Token::new(Op::Recv, slot, c.generation).pack();
        let fd = types::Fd(c.fd);
        let e = if self.multishot_recv {
            opcode::RecvMulti::new(fd, self.bufs.bgid()).build()
        } else {
            opcode::Recv::new(fd, std::ptr::null_mut(), self.bufs.buf_size())
                .buf_group(self.bufs.bgid())
                .build()
                .flags(squeue::Flags::BUFFER_SELECT)
        };
        c.recv_armed = true;
        c.recv_paused = false;
        c.inflight += 1;
        self.push(e.user_data(tok));
    }

    fn arm_send(&mut self, slot: usize) {
        let c = &mut self.conns[slot];
        debug_assert!(!c.sending && c.sent < c.out.len());
        let buf = &c.out[c.sent..];
        let e = opcode::Send::new(
            types::Fd(c.fd),
            buf.as_ptr(),
            buf.len().min(u32::MAX as usize) as u32,
        )
        .flags(libc::MSG_NOSIGNAL)
        .build()
        .user_data(Token::new(Op::Send, slot, c.generation).pack());
        self.start_op(slot, Busy::Sending, e);
    }

    fn arm_read(&mut self, slot: usize, len: usize) {
        let c = &mut self.conns[slot];
        let f = c.file.as_ref().expect("file body");
        // HTTPS: read plaintext into the session's buffer; it is sealed after.
        let buf = match c.tls.as_deref_mut() {
            Some(t) => &mut t.session.file_buf,
            None => &mut c.out,
        };
        buf.reserve(len);
        let spare = buf.spare_capacity_mut();
        let e = opcode::Read::new(
            types::Fd(f.file.as_raw_fd()),
            spare.as_mut_ptr().cast(),
            len as u32,
        )
        .offset(f.offset)
        .build()
        .user_data(Token::new(Op::Read, slot, c.generation).pack());
        self.start_op(slot, Busy::Reading, e);
    }

    fn arm_splice_in(&mut self, slot: usize) {
        let c = &mut self.conns[slot];
        let f = c.file.as_ref().expect("file body");
        let p = f.pipe.as_ref().expect("splice pipe");
        let len = f.remaining.min(p.cap as u64) as u32;
        let e = opcode::Splice::new(
            types::Fd(f.file.as_raw_fd()),
            f.offset as i64,
            types::Fd(p.wr.as_raw_fd()),
            -1,
            len,
        )
        .build()
        .user_data(Token::new(Op::SpliceIn, slot, c.generation).pack());
        self.start_op(slot, Busy::Reading, e);
    }

    fn arm_splice_out(&mut self, slot: usize) {
        let c = &mut self.conns[slot];
        let f = c.file.as_ref().expect("file body");
        let p = f.pipe.as_ref().expect("splice pipe");
        // The socket is non-blocking: a full socket answers EAGAIN instead of
        // parking a kernel worker thread (see on_splice_out).
        let e = opcode::Splice::new(
            types::Fd(p.rd.as_raw_fd()),
            -1,
            types::Fd(c.fd),
            -1,
            f.in_pipe as u32,
        )
        .flags(libc::SPLICE_F_NONBLOCK)
        .build()
        .user_data(Token::new(Op::SpliceOut, slot, c.generation).pack());
        self.start_op(slot, Busy::Sending, e);
    }

    fn arm_poll_out(&mut self, slot: usize) {
        let c = &mut self.conns[slot];
        let e = opcode::PollAdd::new(types::Fd(c.fd), libc::POLLOUT as u32)
            .build()
            .user_data(Token::new(Op::PollOut, slot, c.generation).pack());
        self.start_op(slot, Busy::Sending, e);
    }

    /// Marks a connection busy with one more operation and queues it.
    fn start_op(&mut self, slot: usize, busy: Busy, e: squeue::Entry) {
        let c = &mut self.conns[slot];
        match busy {
            Busy::Reading => c.reading = true,
            Busy::Sending => c.sending = true,
        }
        c.inflight += 1;
        self.push(e);
    }

    fn cancel(&mut self, target: u64) {
        let e = opcode::AsyncCancel::new(target)
            .build()
            .user_data(Token::new(Op::Cancel, 0, 0).pack());
        self.push(e);
    }

    fn arm_timer(&mut self) {
        let e = opcode::Timeout::new(&*self.timer_ts)
            .build()
            .user_data(Token::new(Op::Timer, 0, 0).pack());
        self.push(e);
    }

    fn arm_wake(&mut self) {
        let ptr: *mut u64 = &mut *self.wake_buf;
        let e = opcode::Read::new(types::Fd(self.control.wake.raw()), ptr.cast(), 8)
            .build()
            .user_data(Token::new(Op::Wake, 0, 0).pack());
        self.push(e);
    }

    /// Starts writing buffered access-log lines, if none are in flight.
    fn flush_log(&mut self) {
        let tok = Token::new(Op::Log, 0, 0).pack();
        if let Some(f) = &mut self.logfile
            && let Some(e) = f.start(&mut self.obs.log_buf, tok)
        {
            self.push(e);
        }
    }

    fn on_log_written(&mut self, res: i32) {
        let tok = Token::new(Op::Log, 0, 0).pack();
        let id = self.id;
        let next = self
            .logfile
            .as_mut()
            .and_then(|f| f.complete(res, tok, |m| log(&format!("worker {id}: {m}"))));
        if let Some(e) = next {
            self.push(e);
        }
    }
}

impl<S: Service> Drop for Worker<S> {
    fn drop(&mut self) {
        for (_, c) in self.conns.iter() {
            sys::close(c.fd);
        }
    }
}
