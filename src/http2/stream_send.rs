//! Sending a stream's body under flow control: held bytes as DATA frames,
//! file pieces asked of the driver, a source pulled only when there is window
//! for what it gives, and the end (END_STREAM or trailers).

use super::*;

impl Stream {
    /// The most body bytes the windows allow now.
    fn allowance(&self, cx: &StepCx<'_, '_>) -> usize {
        self.send_window.min(*cx.conn_window).max(0) as usize
    }

    fn blocked(&mut self, now: Instant) -> Progress {
        self.blocked_since.get_or_insert(now);
        Progress::Wait
    }

    /// Sends what the windows allow: held bytes, a file piece, or the next
    /// piece pulled from the source; ends the body when all is out.
    pub(super) fn send(&mut self, cx: &mut StepCx<'_, '_>) -> Progress {
        if self.held_rest() > 0 {
            let n = self.held_rest().min(self.allowance(cx)).min(cx.max_frame);
            if n == 0 {
                return self.blocked(cx.env.now);
            }
            self.blocked_since = None;
            let last = n == self.held_rest() && self.file.is_none() && self.ends_after_data();
            let from = self.held_pos;
            frame::data(cx.out, self.id, &self.held[from..from + n], last);
            self.held_pos += n;
            self.spent(n, cx);
            if self.held_pos == self.held.len() {
                self.held_pos = 0;
                let mut b = std::mem::take(&mut self.held);
                b.clear();
                if let Out::Source(_, s) = &mut self.out {
                    let _ = catch_unwind(AssertUnwindSafe(|| s.recycle(b)));
                } else {
                    self.held = b;
                }
            }
            if last {
                self.finish_local(cx.env);
            }
            return Progress::More;
        }
        if let Some(f) = &self.file {
            if self.reading {
                return Progress::Wait;
            }
            let n = (f.len.min(PIECE as u64) as usize).min(self.allowance(cx));
            if n == 0 {
                return self.blocked(cx.env.now);
            }
            self.blocked_since = None;
            self.reading = true;
            // The windows are taken now: other streams' reads may be in
            // flight beside this one.
            self.send_window -= n as i64;
            *cx.conn_window -= n as i64;
            self.reserved = n;
            return Progress::Read(FileRead {
                file: f.file.clone(),
                offset: f.offset,
                len: n,
                tag: self.id,
            });
        }
        if matches!(self.out, Out::Body) || self.end_due {
            // Everything is out: END_STREAM on an empty DATA, or trailers.
            self.end(cx);
            return Progress::More;
        }
        self.pull(cx)
    }

    fn ends_after_data(&self) -> bool {
        self.end_due && self.trailers.is_empty()
    }

    fn spent(&mut self, n: usize, cx: &mut StepCx<'_, '_>) {
        self.send_window -= n as i64;
        *cx.conn_window -= n as i64;
        self.sent += n as u64;
    }

    fn end(&mut self, cx: &mut StepCx<'_, '_>) {
        if self.trailers.is_empty() {
            frame::data(cx.out, self.id, &[], true);
        } else {
            let mut block = Vec::new();
            cx.enc.begin(&mut block);
            for (n, v) in std::mem::take(&mut self.trailers) {
                if !is_connection_specific(&n) {
                    cx.enc.field(&mut block, n.as_bytes(), v.as_bytes());
                }
            }
            frame::headers(cx.out, self.id, &block, true, cx.max_frame);
        }
        self.finish_local(cx.env);
    }

    fn pull(&mut self, cx: &mut StepCx<'_, '_>) -> Progress {
        let allowance = self.allowance(cx);
        let Out::Source(head, source) = &mut self.out else {
            return Progress::Wait;
        };
        // Nothing is pulled without window to send it (backpressure),
        // except to learn the head.
        if allowance == 0 && head.is_none() {
            return self.blocked(cx.env.now);
        }
        let env = &mut *cx.env;
        let mut io = Io::with_upstreams(env.now, env.waker, env.upstreams.as_deref_mut());
        let body = &mut self.body;
        let max = allowance.clamp(1024, PIECE);
        let polled = catch_unwind(AssertUnwindSafe(|| source.poll_chunk(&mut io, body, max)));
        let wake = io.wake();
        if let Some(n) = io.take_upstream() {
            self.upstream = Some(n);
        }
        let chunk = match polled {
            Ok(c) => c,
            Err(_) if head.is_some() => {
                self.cancel();
                self.out = Out::Reply(Some(Reply::Ready(Response::error(500, None))));
                return Progress::More;
            }
            Err(_) => return Progress::Reset(Code::Internal),
        };
        if let Some(h) = head.take() {
            match chunk {
                Chunk::Pending if !self.body.is_complete() => {
                    *head = Some(h);
                    self.wake = wake;
                    return Progress::Wait;
                }
                Chunk::Failed(_) => {
                    self.cancel();
                    self.out = Out::Reply(Some(Reply::Ready(Response::error(500, None))));
                    return Progress::More;
                }
                _ => {
                    let len = match &self.out {
                        Out::Source(_, s) => s.content_length(),
                        _ => None,
                    };
                    self.write_head(&h, len, false, cx);
                }
            }
        }
        let over = |s: &Stream, n: u64| {
            s.promised
                .is_some_and(|p| s.sent + s.held_rest() as u64 + n > p)
        };
        match chunk {
            Chunk::Bytes(b) => {
                if over(self, b.len() as u64) {
                    return Progress::Reset(Code::Internal);
                }
                let old = std::mem::replace(&mut self.held, b);
                self.held_pos = 0;
                if let Out::Source(_, s) = &mut self.out
                    && old.capacity() > 0
                {
                    let _ = catch_unwind(AssertUnwindSafe(|| s.recycle(old)));
                }
                Progress::More
            }
            Chunk::Static(b) => {
                if over(self, b.len() as u64) {
                    return Progress::Reset(Code::Internal);
                }
                self.hold(b);
                Progress::More
            }
            Chunk::File(f) => {
                if over(self, f.len) {
                    return Progress::Reset(Code::Internal);
                }
                if f.len > 0 {
                    self.file = Some(f);
                }
                Progress::More
            }
            Chunk::Pending => {
                self.wake = wake;
                Progress::Wait
            }
            Chunk::End => {
                if self.promised.is_some_and(|p| p != self.sent) {
                    return Progress::Reset(Code::Internal);
                }
                if let Out::Source(_, s) = &mut self.out {
                    self.trailers =
                        catch_unwind(AssertUnwindSafe(|| s.trailers())).unwrap_or_default();
                    let _ = catch_unwind(AssertUnwindSafe(|| s.stop()));
                }
                self.end_due = true;
                self.out = Out::Body;
                self.wake = None;
                Progress::More
            }
            Chunk::Failed(_) => Progress::Reset(Code::Internal),
        }
    }

    /// A file piece was read: it goes out as DATA (the windows were
    /// checked when it was asked for).
    pub(in crate::http2) fn on_file_data(&mut self, data: &[u8], cx: &mut StepCx<'_, '_>) {
        self.reading = false;
        let reserved = std::mem::take(&mut self.reserved);
        let Some(flen) = self.file.as_ref().map(|f| f.len) else {
            return;
        };
        let n = data.len().min(flen as usize).min(reserved);
        // A short read gives back the window it did not use.
        self.send_window += (reserved - n) as i64;
        *cx.conn_window += (reserved - n) as i64;
        let Some(f) = self.file.as_mut() else { return };
        f.offset += n as u64;
        f.len -= n as u64;
        let file_done = f.len == 0;
        if file_done {
            self.file = None;
        }
        let mut rest = &data[..n];
        while !rest.is_empty() {
            let k = rest.len().min(cx.max_frame);
            let last = k == rest.len()
                && file_done
                && self.held_rest() == 0
                && self.ends_after_data()
                && matches!(self.out, Out::Body);
            frame::data(cx.out, self.id, &rest[..k], last);
            self.sent += k as u64;
            rest = &rest[k..];
            if last {
                self.finish_local(cx.env);
            }
        }
    }
}
