//! Completions for sockets and files: accept, receive, send, file reads, and
//! what a connection's protocol step asks for next.

use std::os::fd::RawFd;

use io_uring::cqueue;

use super::{
    ACCEPT_BACKOFF_MS, Busy, HANDSHAKE_BUDGET, MAX_BUFFERED, PIPE_POOL_MAX, PIPE_SIZE,
    POOL_BUF_SIZE, Worker, http_env,
};
use crate::conn::{After, Conn, FileSend, Role, State};
use crate::http::{Error, Service, Step, Waiting};
use crate::metrics::CloseReason;
use crate::runtime::observe::Observe;
use crate::runtime::ring::Cqe;
use crate::runtime::sys::Pipe;
use crate::runtime::token::{Op, Token, next_gen};
use crate::runtime::{log, sys};
use crate::tls::{TlsError, TlsSession};

impl<S: Service> Worker<S> {
    pub(super) fn on_accept(&mut self, idx: usize, cqe: Cqe) {
        if !cqueue::more(cqe.flags) {
            self.listeners[idx].armed = false;
        }
        if cqe.res >= 0 {
            self.accept_error_logged = false;
            let role = self.listeners[idx].role;
            self.new_conn(cqe.res, role);
        } else {
            let err = -cqe.res;
            match err {
                libc::EMFILE | libc::ENFILE | libc::ENOBUFS | libc::ENOMEM => {
                    if !self.accept_error_logged {
                        self.accept_error_logged = true;
                        log(&format!(
                            "worker {}: accept failed: {}; pausing accepts for {ACCEPT_BACKOFF_MS} ms, existing connections are still served",
                            self.id,
                            std::io::Error::from_raw_os_error(err)
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

    fn new_conn(&mut self, fd: RawFd, role: Role) {
        let per_worker = self.engine.max_connections;
        if self.draining || (per_worker > 0 && self.conns.len() >= per_worker) {
            sys::close(fd);
            if self.obs.metrics {
                self.obs.stats.counters.accepted += 1;
                self.obs.stats.closed(if self.draining {
                    CloseReason::Shutdown
                } else {
                    CloseReason::Limit
                });
            }
            return;
        }
        if self.obs.metrics {
            self.obs.stats.counters.accepted += 1;
        }
        let tls = match (role, &self.tls_config) {
            (Role::Tls, Some(cfg)) => match TlsSession::new(cfg.clone()) {
                Ok(t) => Some(t),
                Err(e) => {
                    log(&format!(
                        "worker {}: cannot start a TLS session: {e}",
                        self.id
                    ));
                    sys::close(fd);
                    return;
                }
            },
            _ => None,
        };
        self.generation = next_gen(self.generation);
        let slot = self.conns.insert(Conn::new(fd, self.generation, role, tls));
        self.arm_recv(slot);
        self.refresh_deadline(slot);
    }

    /// Bookkeeping for the completion of a send, read or splice: clears the
    /// busy flag and the in-flight count, and frees a closing connection.
    /// Returns the connection when it is still open.
    fn op_done(&mut self, t: Token, busy: Busy) -> Option<&mut Conn> {
        let slot = t.slot as usize;
        let c = self.conn_mut(t)?;
        match busy {
            Busy::Reading => c.reading = false,
            Busy::Sending => c.sending = false,
        }
        c.inflight -= 1;
        if c.state == State::Closing {
            self.maybe_free(slot);
            return None;
        }
        self.conns.get_mut(slot)
    }

    fn conn_mut(&mut self, t: Token) -> Option<&mut Conn> {
        self.conns
            .get_mut(t.slot as usize)
            .filter(|c| c.generation == t.generation)
    }

    pub(super) fn on_recv(&mut self, t: Token, cqe: Cqe) {
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
            if self.obs.metrics {
                self.obs.stats.counters.bytes_in += cqe.res as u64;
            }
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
                _ => self.abort(slot, CloseReason::Reset),
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
        let writing = c.writing();
        if let Some(t) = c.tls.as_deref_mut() {
            // Ciphertext always queues in the session; it is fed when the
            // connection is not writing and the handshake budget allows.
            t.pending.extend_from_slice(data);
            if writing {
                if t.pending.len() > MAX_BUFFERED && c.recv_armed && !c.recv_paused {
                    c.recv_paused = true;
                    let tok = Token::new(Op::Recv, slot, c.generation).pack();
                    self.cancel(tok);
                }
                return;
            }
            self.tls_input(slot);
            return;
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
        note_peer(&mut self.obs, c.fd, &mut c.peer);
        let peer = c.peer.as_deref().copied();
        let step = match (c.role, self.redirect.as_deref_mut()) {
            (Role::Redirect(_), Some(r)) => {
                c.http
                    .feed(data, r, &mut http_env!(self, peer peer), &mut c.out)
            }
            _ => c.http.feed(
                data,
                &mut self.svc,
                &mut http_env!(self, peer peer),
                &mut c.out,
            ),
        };
        self.after_step(slot, step);
    }

    /// Feeds a TLS connection's pending ciphertext through its session, and the
    /// plaintext through HTTP; responses are sealed into the output buffer.
    pub(super) fn tls_input(&mut self, slot: usize) {
        let c = &mut self.conns[slot];
        if c.writing() || c.state != State::Open {
            return;
        }
        let Some(t) = c.tls.as_deref_mut() else {
            return;
        };
        if !t.pending.is_empty() && t.session.is_handshaking() {
            if self.handshakes >= HANDSHAKE_BUDGET {
                if !t.deferred {
                    t.deferred = true;
                    self.deferred.push((slot, c.generation));
                }
                return;
            }
            self.handshakes += 1;
        }
        if c.out.capacity() == 0 {
            c.out = self
                .pool
                .pop()
                .unwrap_or_else(|| Vec::with_capacity(POOL_BUF_SIZE));
        }
        self.plain_in.clear();
        let mut cipher = std::mem::take(&mut t.pending);
        let fed = if cipher.is_empty() {
            Ok(Default::default())
        } else {
            t.session.feed(&cipher, &mut self.plain_in, &mut c.out)
        };
        cipher.clear();
        t.pending = cipher;
        let fed = match fed {
            Ok(f) => f,
            Err(e) => {
                if matches!(e, TlsError::PlainHttp) {
                    c.out.clear();
                    c.out.extend_from_slice(PLAIN_HTTP_TO_TLS);
                }
                // A fatal alert (if any) is queued in `out`; nothing follows it.
                c.tls = None;
                c.http.finish();
                c.why = CloseReason::Error;
                self.after_step(slot, Step::Close);
                return;
            }
        };
        if fed.closed {
            // close_notify: finish what is buffered, then close.
            c.peer_eof = true;
        }
        note_peer(&mut self.obs, c.fd, &mut c.peer);
        let peer = c.peer.as_deref().copied();
        self.plain_out.clear();
        let info = t.session.info();
        let step = if info.is_some() || !self.plain_in.is_empty() {
            c.http.feed(
                &self.plain_in,
                &mut self.svc,
                &mut http_env!(self, info, peer),
                &mut self.plain_out,
            )
        } else {
            Step::NeedInput
        };
        if !self.plain_out.is_empty() {
            c.served = true;
            t.session.seal(&self.plain_out, &mut c.out);
        }
        self.after_step(slot, step);
    }

    /// Handshakes held back by the per-tick budget.
    pub(super) fn run_deferred(&mut self) {
        if self.deferred.is_empty() {
            return;
        }
        let mut list = std::mem::take(&mut self.deferred);
        let mut rest = Vec::new();
        for (slot, generation) in list.drain(..) {
            let Some(c) = self
                .conns
                .get_mut(slot)
                .filter(|c| c.generation == generation)
            else {
                continue;
            };
            let Some(t) = c.tls.as_deref_mut() else {
                continue;
            };
            if self.handshakes >= HANDSHAKE_BUDGET {
                rest.push((slot, generation));
                continue;
            }
            t.deferred = false;
            self.tls_input(slot);
        }
        rest.append(&mut self.deferred);
        self.deferred = rest;
        self.deferred.shrink_to(64);
    }

    fn on_eof(&mut self, slot: usize) {
        let c = &mut self.conns[slot];
        c.peer_eof = true;
        match c.state {
            State::Closing => self.maybe_free(slot),
            State::Lingering => self.abort(slot, CloseReason::Normal),
            // A response in progress is finished first; buffered requests too.
            State::Open if c.writing() => {}
            State::Open => self.abort(slot, CloseReason::Normal),
        }
    }

    pub(super) fn after_step(&mut self, slot: usize, step: Step) {
        let c = &mut self.conns[slot];
        if !c.out.is_empty() {
            c.served = true;
        }
        // An exchange that answers later asked to be polled at this time.
        if let Some(at) = c.http.wake_at() {
            self.wakes.push(std::cmp::Reverse((at, slot, c.generation)));
        }
        // Input the protocol has not consumed (a body its handler has not
        // taken, requests behind an exchange) pauses receiving past a bound.
        let buffered = c.http.buffered();
        if buffered > MAX_BUFFERED && c.recv_armed && !c.recv_paused {
            c.recv_paused = true;
            let tok = Token::new(Op::Recv, slot, c.generation).pack();
            self.cancel(tok);
        } else if c.recv_paused && !c.recv_armed && buffered <= MAX_BUFFERED / 2 {
            self.arm_recv(slot);
        }
        let c = &mut self.conns[slot];
        match step {
            Step::NeedInput | Step::Flush => {
                c.after = After::Resume;
                if !c.out.is_empty() {
                    self.arm_send(slot);
                } else {
                    self.release_out(slot);
                    let c = &self.conns[slot];
                    // Idle now: a closed peer or a stopping server ends it.
                    if c.peer_eof {
                        self.abort(slot, CloseReason::Normal);
                        return;
                    }
                    if self.draining && c.http.waiting() == Waiting::Idle {
                        self.abort(slot, CloseReason::Shutdown);
                        return;
                    }
                    if c.recv_paused && !c.recv_armed {
                        self.arm_recv(slot);
                    }
                }
            }
            Step::File(f) => {
                c.after = After::Resume;
                let min = self.engine.splice_min_size;
                c.file = Some(Box::new(FileSend {
                    file: f.file,
                    offset: f.offset,
                    remaining: f.len,
                    started: self.obs.last_start.take(),
                    log: self.obs.last_pending.take(),
                    splice: c.tls.is_none() && min > 0 && f.len >= min as u64,
                    pipe: None,
                    in_pipe: 0,
                }));
                self.file_next(slot);
            }
            Step::Close => {
                c.after = After::Close;
                if let Some(t) = c.tls.as_deref_mut() {
                    if c.out.capacity() == 0 {
                        c.out = self
                            .pool
                            .pop()
                            .unwrap_or_else(|| Vec::with_capacity(POOL_BUF_SIZE));
                    }
                    t.session.close(&mut c.out);
                }
                if c.why == CloseReason::Normal {
                    c.why = match c.http.error() {
                        Some(
                            Error::BodyTooLarge
                            | Error::RequestLineTooLong
                            | Error::HeadersTooLarge
                            | Error::TooManyHeaders,
                        ) => CloseReason::Limit,
                        Some(Error::HeadersTimeout | Error::BodyTimeout) => CloseReason::Timeout,
                        Some(_) => CloseReason::Error,
                        None if self.draining => CloseReason::Shutdown,
                        None => CloseReason::Normal,
                    };
                }
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
        let (remaining, in_pipe) = c.file.as_ref().map_or((0, 0), |f| (f.remaining, f.in_pipe));
        if remaining == 0 && in_pipe == 0 {
            if let Some(mut f) = c.file.take() {
                if let Some(p) = f.pipe.take()
                    && self.pipes.len() < PIPE_POOL_MAX
                    && p.is_empty()
                {
                    self.pipes.push(p);
                }
                self.obs.file_done(f.started, f.log);
            }
            self.resume(slot);
            return;
        }
        if c.file.as_ref().is_some_and(|f| f.splice) {
            // Zero-copy: the head (and any earlier responses) go first, then
            // file pages move through the pipe to the socket.
            if !c.out.is_empty() {
                self.arm_send(slot);
                return;
            }
            let f = c.file.as_mut().expect("file body");
            if f.pipe.is_none() {
                match self.pipes.pop().map_or_else(|| Pipe::new(PIPE_SIZE), Ok) {
                    Ok(p) => f.pipe = Some(p),
                    Err(e) => {
                        log(&format!(
                            "worker {}: cannot make a pipe, copying instead: {e}",
                            self.id
                        ));
                        f.splice = false;
                        return self.file_next(slot);
                    }
                }
            }
            if in_pipe > 0 {
                self.arm_splice_out(slot);
            } else {
                self.arm_splice_in(slot);
            }
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

    /// File pages arrived in the pipe.
    pub(super) fn on_splice_in(&mut self, t: Token, cqe: Cqe) {
        let slot = t.slot as usize;
        // Count what reached the pipe first, even on a connection that is
        // closing (the splice may have finished before its cancel landed), so
        // a pipe with bytes in it is never pooled.
        if cqe.res > 0
            && let Some(f) = self.conn_mut(t).and_then(|c| c.file.as_mut())
        {
            f.in_pipe += cqe.res as usize;
        }
        let Some(c) = self.op_done(t, Busy::Reading) else {
            return;
        };
        if cqe.res <= 0 {
            self.file_failed(slot, cqe.res, "splice");
            return;
        }
        let f = c.file.as_mut().expect("file body");
        let n = cqe.res as usize;
        f.offset += n as u64;
        f.remaining -= n as u64;
        self.arm_splice_out(slot);
        self.refresh_deadline(slot);
    }

    /// Pipe contents went (partly) out to the socket.
    pub(super) fn on_splice_out(&mut self, t: Token, cqe: Cqe) {
        let slot = t.slot as usize;
        let Some(c) = self.op_done(t, Busy::Sending) else {
            return;
        };
        if cqe.res == -libc::EAGAIN {
            // The socket is full: wait until it takes more.
            self.arm_poll_out(slot);
            return;
        }
        if cqe.res <= 0 {
            self.abort(slot, CloseReason::Reset);
            return;
        }
        let f = c.file.as_mut().expect("file body");
        f.in_pipe -= cqe.res as usize;
        if self.obs.metrics {
            self.obs.stats.counters.bytes_out += cqe.res as u64;
        }
        self.file_next(slot);
        self.refresh_deadline(slot);
    }

    /// A full socket can take more: go on splicing.
    pub(super) fn on_poll_out(&mut self, t: Token, cqe: Cqe) {
        let slot = t.slot as usize;
        if self.op_done(t, Busy::Sending).is_none() {
            return;
        }
        if cqe.res < 0 {
            self.abort(slot, CloseReason::Reset);
            return;
        }
        self.file_next(slot);
    }

    /// A file body read or splice returned `res` ≤ 0: an error, or a file that
    /// shrank. The promised length cannot be sent, so the connection ends.
    fn file_failed(&mut self, slot: usize, res: i32, what: &str) {
        let why = if res == 0 {
            "file shrank while being sent".to_string()
        } else {
            std::io::Error::from_raw_os_error(-res).to_string()
        };
        log(&format!(
            "worker {}: file body {what} failed: {why}",
            self.id
        ));
        self.abort(slot, CloseReason::Error);
    }

    pub(super) fn on_read(&mut self, t: Token, cqe: Cqe) {
        let slot = t.slot as usize;
        let Some(c) = self.op_done(t, Busy::Reading) else {
            return;
        };
        if cqe.res <= 0 {
            self.file_failed(slot, cqe.res, "read");
            return;
        }
        let n = cqe.res as usize;
        let f = c.file.as_mut().expect("file body");
        f.offset += n as u64;
        f.remaining -= n as u64;
        // HTTPS reads land in the session's plaintext buffer, then are sealed.
        let buf = match c.tls.as_deref_mut() {
            Some(t) => &mut t.session.file_buf,
            None => &mut c.out,
        };
        let len = buf.len();
        debug_assert!(len + n <= buf.capacity());
        // SAFETY: the read was given the spare capacity starting at `len` and the
        // kernel reports it wrote `n` bytes there, so `len + n` bytes are now
        // initialized and within capacity.
        unsafe { buf.set_len(len + n) };
        if let Some(t) = c.tls.as_deref_mut() {
            let mut plain = std::mem::take(&mut t.session.file_buf);
            t.session.seal(&plain, &mut c.out);
            plain.clear();
            t.session.file_buf = plain;
        }
        self.arm_send(slot);
        self.refresh_deadline(slot);
    }

    pub(super) fn on_send(&mut self, t: Token, cqe: Cqe) {
        let slot = t.slot as usize;
        if self.op_done(t, Busy::Sending).is_none() {
            return;
        }
        if cqe.res < 0 {
            self.abort(slot, CloseReason::Reset);
            return;
        }
        if self.obs.metrics {
            self.obs.stats.counters.bytes_out += cqe.res as u64;
        }
        let c = &mut self.conns[slot];
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
    pub(super) fn resume(&mut self, slot: usize) {
        if self.conns[slot].tls.is_some() {
            self.tls_input(slot);
            return;
        }
        let c = &mut self.conns[slot];
        if c.out.capacity() == 0 {
            c.out = self
                .pool
                .pop()
                .unwrap_or_else(|| Vec::with_capacity(POOL_BUF_SIZE));
        }
        note_peer(&mut self.obs, c.fd, &mut c.peer);
        let peer = c.peer.as_deref().copied();
        let step = match (c.role, self.redirect.as_deref_mut()) {
            (Role::Redirect(_), Some(r)) => {
                c.http
                    .feed(&[], r, &mut http_env!(self, peer peer), &mut c.out)
            }
            _ => c.http.feed(
                &[],
                &mut self.svc,
                &mut http_env!(self, peer peer),
                &mut c.out,
            ),
        };
        self.after_step(slot, step);
    }
}

/// Looks up the peer's address once per connection (requests carry it to
/// handlers) and tells the access log whose requests are about to be answered.
fn note_peer(obs: &mut Observe, fd: RawFd, peer: &mut Option<Box<std::net::SocketAddr>>) {
    if peer.is_none() {
        *peer = sys::peer_addr(fd).map(Box::new);
    }
    if obs.logging() {
        obs.peer = peer.as_deref().copied();
    }
}

/// The clear-text answer to a plain HTTP request on an HTTPS port.
const PLAIN_HTTP_TO_TLS: &[u8] = b"HTTP/1.1 400 Bad Request\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Length: 59\r\nConnection: close\r\n\r\n400 Bad Request: plain HTTP request was sent to HTTPS port\n";
