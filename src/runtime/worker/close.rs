//! Ending connections: lingering close, abort, freeing slots, draining.

use super::{POOL_BUF_MAX, POOL_MAX, Worker};
use crate::conn::State;
use crate::http::{Service, Waiting};
use crate::metrics::CloseReason;
use crate::runtime::sys;
use crate::runtime::token::{Op, Token};

impl<S: Service> Worker<S> {
    /// After a final response: shut our side and read until the peer closes, so
    /// it sees the response rather than a reset.
    pub(super) fn linger(&mut self, slot: usize) {
        let c = &mut self.conns[slot];
        c.http.abandon(&mut self.obs);
        c.http.finish();
        if c.peer_eof || self.draining {
            let why = c.why;
            self.abort(slot, why);
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
    /// completion arrives. `why` is counted unless a reason was set earlier.
    pub(super) fn abort(&mut self, slot: usize, why: CloseReason) {
        let c = &mut self.conns[slot];
        if c.state == State::Closing {
            return;
        }
        if c.state == State::Open && c.why == CloseReason::Normal {
            c.why = why;
        }
        c.state = State::Closing;
        c.http.abandon(&mut self.obs);
        c.http.finish();
        let (generation, recv, send, read) = (c.generation, c.recv_armed, c.sending, c.reading);
        if recv {
            self.cancel(Token::new(Op::Recv, slot, generation).pack());
        }
        // Sends and splices out share `sending`; reads and splices in share
        // `reading`: cancel both kinds (a miss is harmless).
        if send {
            self.cancel(Token::new(Op::Send, slot, generation).pack());
            self.cancel(Token::new(Op::SpliceOut, slot, generation).pack());
            self.cancel(Token::new(Op::PollOut, slot, generation).pack());
        }
        if read {
            self.cancel(Token::new(Op::Read, slot, generation).pack());
            self.cancel(Token::new(Op::SpliceIn, slot, generation).pack());
        }
        self.maybe_free(slot);
    }

    pub(super) fn maybe_free(&mut self, slot: usize) {
        let c = &self.conns[slot];
        if c.state != State::Closing || c.inflight > 0 {
            return;
        }
        let mut c = self.conns.remove(slot);
        sys::close(c.fd);
        if self.obs.metrics {
            self.obs.stats.closed(c.why);
        }
        // A file response cut short still gets its access-log line.
        if let Some(mut f) = c.file.take() {
            // A splice that finished after the cancel may have filled the
            // pipe behind our count: only a pipe that is really empty is reused.
            if let Some(p) = f.pipe.take()
                && f.in_pipe == 0
                && self.pipes.len() < super::PIPE_POOL_MAX
                && p.is_empty()
            {
                self.pipes.push(p);
            }
            self.obs.file_done(f.started, f.log);
        }
        self.recycle_buf(c.out);
    }

    pub(super) fn release_out(&mut self, slot: usize) {
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

    pub(super) fn begin_drain(&mut self) {
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
            self.abort(slot, CloseReason::Shutdown);
        }
    }

    pub(super) fn rearm_starved(&mut self) {
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
}
