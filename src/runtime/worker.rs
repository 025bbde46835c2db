//! One worker: a pinned thread with its own ring, listeners, connection slab,
//! timers and `Date` cache. The loop: reap completions → drive connections →
//! queue operations → one submit.

use std::io;
use std::os::fd::{AsRawFd, RawFd};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant, SystemTime};

use io_uring::{cqueue, opcode, squeue, types};
use slab::Slab;
use socket2::Socket;

use super::bufring::BufRing;
use super::ring::{Cqe, Ring};
use super::sys::{self, EventFd};
use super::timer::{Entry, Wheel};
use super::token::{Op, Token, next_gen};
use super::{Engine, log};
use crate::conn::{After, Conn, FileSend, State};
use crate::http::date::DateCache;
use crate::http::{Env, Limits, Service, Step, Timeouts, Waiting};

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

/// A request to a worker from the thread that started it.
#[derive(Debug)]
pub struct Control {
    stop: AtomicBool,
    wake: EventFd,
}

impl Control {
    /// A control block with its wake-up eventfd.
    pub fn new() -> io::Result<Arc<Control>> {
        Ok(Arc::new(Control {
            stop: AtomicBool::new(false),
            wake: EventFd::new()?,
        }))
    }

    /// Asks the worker to stop gracefully.
    pub fn stop(&self) {
        self.stop.store(true, Ordering::Release);
        self.wake.wake();
    }
}

/// What a worker needs to start.
pub struct Spec {
    /// Worker index (for logs).
    pub id: usize,
    /// Listening sockets owned by this worker.
    pub listeners: Vec<Socket>,
    /// Limits, timeouts and engine settings.
    pub limits: Limits,
    /// Timeouts.
    pub timeouts: Timeouts,
    /// Engine settings.
    pub engine: Engine,
    /// Stop requests.
    pub control: Arc<Control>,
}

struct Listener {
    sock: Option<Socket>,
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
    start: Instant,
    now: Instant,
    now_ms: u64,
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

impl<S: Service> Worker<S> {
    /// Sets up the ring and buffers. Errors here are startup errors.
    pub fn new(spec: Spec, svc: S) -> io::Result<Worker<S>> {
        let ring = Ring::new(spec.engine.ring_entries, spec.engine.defer_taskrun)?;
        if spec.id == 0 {
            log(&format!("io_uring setup: {}", ring.setup().describe()));
        }
        let bufs = BufRing::new(&ring, 0, spec.engine.buffer_count, spec.engine.buffer_size).map_err(|e| {
            io::Error::new(
                e.kind(),
                format!("cannot register a provided buffer ring (needs Linux 5.19+, kernel {}): {e}", sys::kernel_release()),
            )
        })?;
        let now = Instant::now();
        let listeners = spec
            .listeners
            .into_iter()
            .map(|s| Listener {
                sock: Some(s),
                armed: false,
                paused_until: None,
            })
            .collect();
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
            start: now,
            now,
            now_ms: 0,
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
    pub fn run(mut self) -> io::Result<()> {
        for i in 0..self.listeners.len() {
            self.arm_accept(i);
        }
        self.arm_timer();
        self.arm_wake();
        loop {
            self.ring.submit_and_wait(None)?;
            self.tick_clock();
            let mut cqes = std::mem::take(&mut self.cqes);
            cqes.clear();
            self.ring.reap(&mut cqes);
            for c in &cqes {
                self.dispatch(*c);
            }
            self.cqes = cqes;
            self.rearm_starved();
            if self.draining
                && self.conns.is_empty()
                && self.listeners.iter().all(|l| l.sock.is_none())
            {
                return Ok(());
            }
        }
    }

    fn tick_clock(&mut self) {
        self.now = Instant::now();
        self.now_ms = self.ms(self.now);
        self.date.update(SystemTime::now());
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
            Op::Cancel => {}
        }
    }

    // ---- submission helpers -------------------------------------------------

    fn push(&mut self, e: squeue::Entry) {
        // SAFETY: every entry built in this file points only at memory that
        // outlives its operation: connection output buffers (heap memory that is
        // neither moved nor freed while `sending`/`reading` is set, and whose slot
        // is not freed while `inflight > 0`), the provided buffer ring (dropped
        // after the ring), and boxed fields of the worker (`wake_buf`,
        // `timer_ts`), which live until the ring is dropped. Fds stay open until
        // every operation on them has completed.
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
                .flags(libc::SOCK_CLOEXEC)
                .build()
        } else {
            opcode::Accept::new(fd, std::ptr::null_mut(), std::ptr::null_mut())
                .flags(libc::SOCK_CLOEXEC)
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
        c.sending = true;
        c.inflight += 1;
        self.push(e);
    }

    fn arm_read(&mut self, slot: usize, len: usize) {
        let c = &mut self.conns[slot];
        let f = c.file.as_ref().expect("file body");
        c.out.reserve(len);
        let spare = c.out.spare_capacity_mut();
        let e = opcode::Read::new(
            types::Fd(f.file.as_raw_fd()),
            spare.as_mut_ptr().cast(),
            len as u32,
        )
        .offset(f.offset)
        .build()
        .user_data(Token::new(Op::Read, slot, c.generation).pack());
        c.reading = true;
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

    // ---- completions ----------------------------------------------------------

    fn on_accept(&mut self, idx: usize, cqe: Cqe) {
        if !cqueue::more(cqe.flags) {
            self.listeners[idx].armed = false;
        }
        if cqe.res >= 0 {
            self.accept_error_logged = false;
            self.new_conn(cqe.res);
        } else {
            let err = -cqe.res;
            match err {
                libc::EMFILE | libc::ENFILE | libc::ENOBUFS | libc::ENOMEM => {
                    if !self.accept_error_logged {
                        self.accept_error_logged = true;
                        log(&format!(
                            "worker {}: accept failed: {}; pausing accepts for {ACCEPT_BACKOFF_MS} ms, existing connections are still served",
                            self.id,
                            io::Error::from_raw_os_error(err)
                        ));
                    }
                    let l = &mut self.listeners[idx];
                    l.paused_until = Some(self.now_ms + ACCEPT_BACKOFF_MS);
                    if l.armed {
                        self.cancel(Token::new(Op::Accept, idx, 0).pack());
                    }
                }
                libc::EINVAL if self.multishot_accept => {
                    log(
                        "multishot accept is not supported by this kernel; using single-shot accepts",
                    );
                    self.multishot_accept = false;
                }
                _ => {}
            }
        }
        let l = &mut self.listeners[idx];
        if self.draining {
            if !l.armed {
                l.sock = None;
            }
        } else if !l.armed {
            self.arm_accept(idx);
        }
    }

    fn new_conn(&mut self, fd: RawFd) {
        let per_worker = self.engine.max_connections;
        if self.draining || (per_worker > 0 && self.conns.len() >= per_worker) {
            sys::close(fd);
            return;
        }
        self.generation = next_gen(self.generation);
        let slot = self.conns.insert(Conn::new(fd, self.generation));
        self.arm_recv(slot);
        self.refresh_deadline(slot);
    }

    fn conn_mut(&mut self, t: Token) -> Option<&mut Conn> {
        self.conns
            .get_mut(t.slot as usize)
            .filter(|c| c.generation == t.generation)
    }

    fn on_recv(&mut self, t: Token, cqe: Cqe) {
        let slot = t.slot as usize;
        let more = cqueue::more(cqe.flags);
        let bid = cqueue::buffer_select(cqe.flags);
        let Some(c) = self.conn_mut(t) else {
            if let Some(bid) = bid {
                self.bufs.recycle(bid);
            }
            return;
        };
        if !more {
            c.recv_armed = false;
            c.inflight -= 1;
        }
        if cqe.res > 0 {
            let bid = bid.expect("a receive with data names its buffer");
            self.on_data(slot, bid, cqe.res as usize);
            self.bufs.recycle(bid);
        } else if cqe.res == 0 {
            self.on_eof(slot);
            return;
        } else {
            match -cqe.res {
                libc::ENOBUFS => self.starved.push((slot, t.generation)),
                libc::ECANCELED => {}
                libc::EINVAL if self.multishot_recv => {
                    log(
                        "multishot receive is not supported by this kernel; using single-shot receives",
                    );
                    self.multishot_recv = false;
                    self.starved.push((slot, t.generation));
                }
                _ => self.abort(slot),
            }
        }
        // Handling the data may have closed and freed the slot.
        let Some(c) = self
            .conns
            .get(slot)
            .filter(|c| c.generation == t.generation)
        else {
            return;
        };
        if c.state == State::Closing {
            self.maybe_free(slot);
        } else if !c.recv_armed && !c.recv_paused && cqe.res > 0 {
            self.arm_recv(slot);
        }
    }

    fn on_data(&mut self, slot: usize, bid: u16, len: usize) {
        let data = self.bufs.get(bid, len);
        let c = &mut self.conns[slot];
        if c.state != State::Open || c.http.is_closed() {
            return; // lingering: input is read and dropped
        }
        if c.writing() {
            if c.http.buffer(data) > MAX_BUFFERED && c.recv_armed && !c.recv_paused {
                c.recv_paused = true;
                let tok = Token::new(Op::Recv, slot, c.generation).pack();
                self.cancel(tok);
            }
            return;
        }
        if c.out.capacity() == 0 {
            c.out = self
                .pool
                .pop()
                .unwrap_or_else(|| Vec::with_capacity(POOL_BUF_SIZE));
        }
        let env = Env {
            limits: &self.limits,
            now: self.now,
            date: self.date.get(),
            draining: self.draining,
        };
        let step = c.http.feed(data, &mut self.svc, &env, &mut c.out);
        self.after_step(slot, step);
    }

    fn on_eof(&mut self, slot: usize) {
        let c = &mut self.conns[slot];
        c.peer_eof = true;
        match c.state {
            State::Closing => self.maybe_free(slot),
            State::Lingering => self.abort(slot),
            // A response in progress is finished first; buffered requests too.
            State::Open if c.writing() => {}
            State::Open => self.abort(slot),
        }
    }

    fn after_step(&mut self, slot: usize, step: Step) {
        let c = &mut self.conns[slot];
        if !c.out.is_empty() {
            c.served = true;
        }
        match step {
            Step::NeedInput | Step::Flush => {
                c.after = After::Resume;
                if !c.out.is_empty() {
                    self.arm_send(slot);
                } else {
                    self.release_out(slot);
                    let c = &self.conns[slot];
                    // Idle now: a closed peer or a stopping server ends it.
                    if c.peer_eof || (self.draining && c.http.waiting() == Waiting::Idle) {
                        self.abort(slot);
                        return;
                    }
                    if c.recv_paused && !c.recv_armed {
                        self.arm_recv(slot);
                    }
                }
            }
            Step::File(f) => {
                c.after = After::Resume;
                c.file = Some(Box::new(FileSend {
                    file: f.file,
                    offset: f.offset,
                    remaining: f.len,
                }));
                self.file_next(slot);
            }
            Step::Close => {
                c.after = After::Close;
                if c.out.is_empty() {
                    self.linger(slot);
                    return;
                }
                self.arm_send(slot);
            }
        }
        self.refresh_deadline(slot);
    }

    /// Reads the next piece of a file body into the output buffer, or sends
    /// what is buffered first when it is nearly full.
    fn file_next(&mut self, slot: usize) {
        let chunk = self.engine.file_chunk_size;
        let c = &mut self.conns[slot];
        let remaining = c.file.as_ref().map_or(0, |f| f.remaining);
        if remaining == 0 {
            c.file = None;
            self.resume(slot);
            return;
        }
        let room = chunk.saturating_sub(c.out.len());
        if room < 4096 && !c.out.is_empty() {
            self.arm_send(slot);
            return;
        }
        let len = (remaining.min(room.max(4096) as u64)) as usize;
        self.arm_read(slot, len);
    }

    fn on_read(&mut self, t: Token, cqe: Cqe) {
        let slot = t.slot as usize;
        let Some(c) = self.conn_mut(t) else { return };
        c.reading = false;
        c.inflight -= 1;
        if c.state == State::Closing {
            self.maybe_free(slot);
            return;
        }
        if cqe.res <= 0 {
            // A read error or a file that shrank: the promised length cannot be
            // sent, so the connection must end.
            let why = if cqe.res == 0 {
                "file shrank while being sent".to_string()
            } else {
                io::Error::from_raw_os_error(-cqe.res).to_string()
            };
            log(&format!("worker {}: file body read failed: {why}", self.id));
            self.abort(slot);
            return;
        }
        let n = cqe.res as usize;
        let f = c.file.as_mut().expect("file body");
        f.offset += n as u64;
        f.remaining -= n as u64;
        let len = c.out.len();
        debug_assert!(len + n <= c.out.capacity());
        // SAFETY: the read was given the spare capacity starting at `len` and the
        // kernel reports it wrote `n` bytes there, so `len + n` bytes are now
        // initialized and within capacity.
        unsafe { c.out.set_len(len + n) };
        self.arm_send(slot);
        self.refresh_deadline(slot);
    }

    fn on_send(&mut self, t: Token, cqe: Cqe) {
        let slot = t.slot as usize;
        let Some(c) = self.conn_mut(t) else { return };
        c.sending = false;
        c.inflight -= 1;
        if c.state == State::Closing {
            self.maybe_free(slot);
            return;
        }
        if cqe.res < 0 {
            self.abort(slot);
            return;
        }
        c.sent += cqe.res as usize;
        if c.sent < c.out.len() {
            self.arm_send(slot);
            self.refresh_deadline(slot);
            return;
        }
        c.out.clear();
        c.sent = 0;
        if c.file.is_some() {
            self.file_next(slot);
            self.refresh_deadline(slot);
            return;
        }
        match c.after {
            After::Close => self.linger(slot),
            After::Resume => self.resume(slot),
        }
    }

    /// Goes on with input buffered while a response was being written.
    fn resume(&mut self, slot: usize) {
        let c = &mut self.conns[slot];
        if c.out.capacity() == 0 {
            c.out = self
                .pool
                .pop()
                .unwrap_or_else(|| Vec::with_capacity(POOL_BUF_SIZE));
        }
        let env = Env {
            limits: &self.limits,
            now: self.now,
            date: self.date.get(),
            draining: self.draining,
        };
        let step = c.http.feed(&[], &mut self.svc, &env, &mut c.out);
        self.after_step(slot, step);
    }

    fn on_timer(&mut self) {
        self.arm_timer();
        let now_tick = self.now_ms / TICK_MS;
        let mut due = std::mem::take(&mut self.due);
        self.wheel.expire(now_tick, &mut due);
        for e in due.drain(..) {
            let slot = e.slot as usize;
            let Some(c) = self
                .conns
                .get_mut(slot)
                .filter(|c| c.generation == e.generation && c.timer_at == e.at)
            else {
                continue;
            };
            c.timer_at = 0;
            if c.deadline > self.now_ms {
                let at = c.deadline.div_ceil(TICK_MS).max(1);
                c.timer_at = at;
                self.wheel.schedule(e.slot, e.generation, at);
            } else {
                self.expire(slot);
            }
        }
        self.due = due;
        for i in 0..self.listeners.len() {
            if self.listeners[i]
                .paused_until
                .is_some_and(|t| t <= self.now_ms)
            {
                self.listeners[i].paused_until = None;
                if !self.draining {
                    self.arm_accept(i);
                }
            }
        }
        if self.draining && self.now_ms >= self.drain_deadline {
            let open: Vec<usize> = self
                .conns
                .iter()
                .filter(|(_, c)| c.state != State::Closing)
                .map(|(k, _)| k)
                .collect();
            for slot in open {
                self.abort(slot);
            }
        }
    }

    fn expire(&mut self, slot: usize) {
        let c = &mut self.conns[slot];
        match c.state {
            State::Closing => {}
            State::Lingering => self.abort(slot),
            State::Open if c.writing() => self.abort(slot),
            State::Open => {
                if c.out.capacity() == 0 {
                    c.out = self
                        .pool
                        .pop()
                        .unwrap_or_else(|| Vec::with_capacity(POOL_BUF_SIZE));
                }
                let env = Env {
                    limits: &self.limits,
                    now: self.now,
                    date: self.date.get(),
                    draining: self.draining,
                };
                let step = c.http.timeout(&env, &mut c.out);
                self.after_step(slot, step);
            }
        }
    }

    fn on_wake(&mut self) {
        if self.control.stop.load(Ordering::Acquire) && !self.draining {
            self.begin_drain();
        }
        if !self.draining {
            self.arm_wake();
        }
    }

    fn begin_drain(&mut self) {
        self.draining = true;
        self.drain_deadline = self.now_ms + self.timeouts.shutdown_timeout.as_millis() as u64;
        for i in 0..self.listeners.len() {
            if self.listeners[i].armed {
                self.cancel(Token::new(Op::Accept, i, 0).pack());
            } else {
                self.listeners[i].sock = None;
            }
        }
        let idle: Vec<usize> = self
            .conns
            .iter()
            .filter(|(_, c)| {
                c.state == State::Lingering
                    || (c.state == State::Open && !c.writing() && c.http.waiting() == Waiting::Idle)
            })
            .map(|(k, _)| k)
            .collect();
        for slot in idle {
            self.abort(slot);
        }
    }

    fn rearm_starved(&mut self) {
        let mut starved = std::mem::take(&mut self.starved);
        for (slot, generation) in starved.drain(..) {
            if self
                .conns
                .get(slot)
                .is_some_and(|c| c.generation == generation && c.state != State::Closing)
            {
                self.arm_recv(slot);
            }
        }
        self.starved = starved;
    }

    // ---- closing --------------------------------------------------------------

    /// After a final response: shut our side and read until the peer closes, so
    /// it sees the response rather than a reset.
    fn linger(&mut self, slot: usize) {
        let c = &mut self.conns[slot];
        c.http.finish();
        if c.peer_eof || self.draining {
            self.abort(slot);
            return;
        }
        sys::shutdown_write(c.fd);
        c.state = State::Lingering;
        c.deadline = self.now_ms + self.timeouts.lingering_timeout.as_millis() as u64;
        self.schedule(slot);
        self.release_out(slot);
        self.arm_recv(slot);
    }

    /// Closes now: cancels what is in flight; the slot is freed when the last
    /// completion arrives.
    fn abort(&mut self, slot: usize) {
        let c = &mut self.conns[slot];
        if c.state == State::Closing {
            return;
        }
        c.state = State::Closing;
        c.http.finish();
        let (generation, recv, send, read) = (c.generation, c.recv_armed, c.sending, c.reading);
        if recv {
            self.cancel(Token::new(Op::Recv, slot, generation).pack());
        }
        if send {
            self.cancel(Token::new(Op::Send, slot, generation).pack());
        }
        if read {
            self.cancel(Token::new(Op::Read, slot, generation).pack());
        }
        self.maybe_free(slot);
    }

    fn maybe_free(&mut self, slot: usize) {
        let c = &self.conns[slot];
        if c.state != State::Closing || c.inflight > 0 {
            return;
        }
        let c = self.conns.remove(slot);
        sys::close(c.fd);
        self.recycle_buf(c.out);
    }

    fn release_out(&mut self, slot: usize) {
        let out = std::mem::take(&mut self.conns[slot].out);
        self.conns[slot].sent = 0;
        self.recycle_buf(out);
    }

    fn recycle_buf(&mut self, mut out: Vec<u8>) {
        if out.capacity() > 0 && out.capacity() <= POOL_BUF_MAX && self.pool.len() < POOL_MAX {
            out.clear();
            self.pool.push(out);
        }
    }

    // ---- deadlines --------------------------------------------------------------

    fn refresh_deadline(&mut self, slot: usize) {
        let t = &self.timeouts;
        let now = self.now_ms;
        // The slot may have been freed by what just happened to it.
        let Some(c) = self.conns.get(slot) else {
            return;
        };
        if c.state != State::Open {
            return;
        }
        let ms = |d: Duration| d.as_millis() as u64;
        let deadline = if c.writing() {
            now + ms(t.send_timeout)
        } else {
            match c.http.waiting() {
                Waiting::Idle if c.served => now + ms(t.keep_alive_timeout),
                Waiting::Idle => now + ms(t.request_headers_timeout),
                Waiting::Head(since) => self.ms(since) + ms(t.request_headers_timeout),
                Waiting::Body(last) => self.ms(last) + ms(t.request_body_timeout),
                Waiting::Done => now + ms(t.lingering_timeout),
            }
        };
        self.conns[slot].deadline = deadline;
        self.schedule(slot);
    }

    fn schedule(&mut self, slot: usize) {
        let c = &mut self.conns[slot];
        let at = c.deadline.div_ceil(TICK_MS).max(1);
        if c.timer_at == 0 || at < c.timer_at {
            c.timer_at = at;
            self.wheel.schedule(slot as u32, c.generation, at);
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
