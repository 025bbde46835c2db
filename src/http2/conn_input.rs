//! The input side of an HTTP/2 connection: each frame type checked and
//! applied (RFC 9113 §6), header blocks decoded into new streams, and the
//! budgets that stop floods.

use super::*;

impl H2Conn {
    /// Processes `input` after what is held; keeps what is left of a
    /// partial frame (the input is parsed in place when nothing is held).
    pub(super) fn process<S: Service + ?Sized>(
        &mut self,
        input: &[u8],
        svc: &mut S,
        env: &mut Env<'_>,
        out: &mut Vec<u8>,
    ) -> Result<(), (Code, &'static str)> {
        let mut pos = 0;
        let held = !self.rbuf.is_empty();
        let r = if held {
            self.rbuf.extend_from_slice(input);
            let buf = std::mem::take(&mut self.rbuf);
            let r = self.frames(&buf, &mut pos, svc, env, out);
            let mut buf = buf;
            buf.drain(..pos.min(buf.len()));
            if r.is_ok() && !buf.is_empty() {
                self.rbuf = buf;
            } else if buf.capacity() <= 16 * 1024 {
                buf.clear();
                self.rbuf = buf;
            }
            r
        } else {
            let r = self.frames(input, &mut pos, svc, env, out);
            if r.is_ok() && pos < input.len() && self.phase != Phase::Closed {
                self.rbuf.extend_from_slice(&input[pos..]);
            }
            r
        };
        // A partial frame or header block is timed from when the last
        // whole frame was taken.
        let partial = !self.rbuf.is_empty() || self.block.is_some();
        if !partial {
            self.partial_since = None;
        } else if pos > 0 || self.partial_since.is_none() {
            self.partial_since = Some(env.now);
        }
        r
    }

    fn frames<S: Service + ?Sized>(
        &mut self,
        buf: &[u8],
        pos: &mut usize,
        svc: &mut S,
        env: &mut Env<'_>,
        out: &mut Vec<u8>,
    ) -> Result<(), (Code, &'static str)> {
        if self.phase == Phase::Preface {
            let have = &buf[*pos..];
            let n = have.len().min(frame::PREFACE.len());
            if have[..n] != frame::PREFACE[..n] {
                return Err((Code::Protocol, "not an HTTP/2 connection preface"));
            }
            if n < frame::PREFACE.len() {
                return Ok(());
            }
            *pos += n;
            self.phase = Phase::FirstSettings;
        }
        while self.phase != Phase::Closed {
            // Output waits for the client to read: stop taking requests.
            if out.len() >= OUT_HIGH_WATER {
                return Ok(());
            }
            let Some(h) = Head::parse(&buf[*pos..]) else {
                return Ok(());
            };
            if h.len > self.cfg.max_frame_size {
                return Err((
                    Code::FrameSize,
                    "a frame larger than SETTINGS_MAX_FRAME_SIZE",
                ));
            }
            let end = *pos + frame::HEADER_LEN + h.len as usize;
            if end > buf.len() {
                return Ok(());
            }
            let payload = &buf[*pos + frame::HEADER_LEN..end];
            *pos = end;
            if self.phase == Phase::FirstSettings {
                if h.kind != kind::SETTINGS || h.has(flag::ACK) {
                    return Err((Code::Protocol, "the first frame is not SETTINGS"));
                }
                self.phase = Phase::Open;
            }
            self.frame(h, payload, svc, env, out)?;
        }
        Ok(())
    }

    pub(super) fn control(&mut self, now: Instant) -> Result<(), (Code, &'static str)> {
        self.roll_budget(now);
        self.budget.control += 1;
        if self.budget.control > self.cfg.max_control_frames_per_second {
            return Err((Code::EnhanceYourCalm, "too many control frames"));
        }
        Ok(())
    }

    fn roll_budget(&mut self, now: Instant) {
        if now.duration_since(self.budget.since) >= Duration::from_secs(1) {
            self.budget = Budget {
                since: now,
                resets: 0,
                control: 0,
            };
        }
    }

    pub(super) fn frame<S: Service + ?Sized>(
        &mut self,
        h: Head,
        p: &[u8],
        svc: &mut S,
        env: &mut Env<'_>,
        out: &mut Vec<u8>,
    ) -> Result<(), (Code, &'static str)> {
        if let Some(b) = &self.block
            && (h.kind != kind::CONTINUATION || h.stream != b.stream)
        {
            return Err((Code::Protocol, "a header block interrupted"));
        }
        match h.kind {
            kind::DATA => self.on_data(h, p, env, out),
            kind::HEADERS => self.on_headers(h, p, svc, env, out),
            kind::CONTINUATION => {
                let Some(b) = self.block.as_mut() else {
                    return Err((Code::Protocol, "CONTINUATION without HEADERS"));
                };
                b.frames += 1;
                b.buf.extend_from_slice(p);
                if b.frames > MAX_BLOCK_FRAMES || b.buf.len() > self.block_limit() {
                    return Err((Code::EnhanceYourCalm, "a header block too large"));
                }
                if h.has(flag::END_HEADERS) {
                    let b = self.block.take().expect("block");
                    self.on_block(b.stream, &b.buf, b.end_stream, svc, env, out)?;
                }
                Ok(())
            }
            kind::PRIORITY => {
                if h.stream == 0 {
                    return Err((Code::Protocol, "PRIORITY on stream 0"));
                }
                if p.len() != 5 {
                    self.reset(h.stream, Code::FrameSize, env, out);
                    return Ok(());
                }
                if dependency(p) == h.stream {
                    self.reset(h.stream, Code::Protocol, env, out);
                    return Ok(());
                }
                self.control(env.now)
            }
            kind::RST_STREAM => {
                if h.stream == 0 {
                    return Err((Code::Protocol, "RST_STREAM on stream 0"));
                }
                if p.len() != 4 {
                    return Err((Code::FrameSize, "RST_STREAM of a bad size"));
                }
                if h.stream > self.last_stream {
                    return Err((Code::Protocol, "RST_STREAM on an idle stream"));
                }
                if let Some(i) = self.find(h.stream) {
                    let mut s = self.streams.remove(i);
                    remember(&mut self.closed_recent, s.id);
                    s.abandon(env.obs);
                    self.recv_unacked += s.body.available() as i64;
                    self.recycle(s);
                    self.roll_budget(env.now);
                    self.budget.resets += 1;
                    if self.budget.resets > self.cfg.max_resets_per_second {
                        return Err((Code::EnhanceYourCalm, "too many streams reset"));
                    }
                }
                Ok(())
            }
            kind::SETTINGS => self.on_settings(h, p, env, out),
            kind::PUSH_PROMISE => Err((Code::Protocol, "PUSH_PROMISE from a client")),
            kind::PING => {
                if h.stream != 0 {
                    return Err((Code::Protocol, "PING on a stream"));
                }
                if p.len() != 8 {
                    return Err((Code::FrameSize, "PING of a bad size"));
                }
                if !h.has(flag::ACK) {
                    self.control(env.now)?;
                    frame::ping_ack(out, p.try_into().expect("8 bytes"));
                }
                Ok(())
            }
            kind::GOAWAY => {
                if h.stream != 0 {
                    return Err((Code::Protocol, "GOAWAY on a stream"));
                }
                if p.len() < 8 {
                    return Err((Code::FrameSize, "GOAWAY too short"));
                }
                // No new streams will come; the connection stays until the
                // client closes it (or goes idle), so it can still be pinged.
                self.peer_goaway = true;
                Ok(())
            }
            kind::WINDOW_UPDATE => self.on_window_update(h, p, env, out),
            // Unknown types are ignored (§4.1), at a cost.
            _ => self.control(env.now),
        }
    }

    fn block_limit(&self) -> usize {
        (self.cfg.max_header_list_size as usize * 2).max(16 * 1024)
    }

    pub(super) fn find(&self, id: u32) -> Option<usize> {
        self.streams.iter().position(|s| s.id == id)
    }

    /// Resets a stream (a stream error): RST_STREAM, and the stream ends.
    pub(super) fn reset(&mut self, id: u32, code: Code, env: &mut Env<'_>, out: &mut Vec<u8>) {
        frame::rst_stream(out, id, code);
        if let Some(i) = self.find(id) {
            let mut s = self.streams.remove(i);
            s.abandon(env.obs);
            self.recv_unacked += s.body.available() as i64;
            self.recycle(s);
        }
        remember(&mut self.reset_recent, id);
    }

    fn on_data(
        &mut self,
        h: Head,
        p: &[u8],
        env: &mut Env<'_>,
        out: &mut Vec<u8>,
    ) -> Result<(), (Code, &'static str)> {
        if h.stream == 0 {
            return Err((Code::Protocol, "DATA on stream 0"));
        }
        let data = unpad(h, p)?;
        let len = p.len() as i64;
        self.recv_window -= len;
        if self.recv_window < 0 {
            return Err((Code::FlowControl, "DATA beyond the connection window"));
        }
        if h.stream > self.last_stream {
            return Err((Code::Protocol, "DATA on an idle stream"));
        }
        if p.is_empty() && !h.has(flag::END_STREAM) {
            self.control(env.now)?;
        }
        let Some(i) = self.find(h.stream) else {
            self.recv_unacked += len;
            if !self.reset_recent.contains(&h.stream) {
                self.reset(h.stream, Code::StreamClosed, env, out);
            }
            return Ok(());
        };
        let s = &mut self.streams[i];
        if s.remote_done {
            self.recv_unacked += len;
            self.reset(h.stream, Code::StreamClosed, env, out);
            return Ok(());
        }
        s.recv_window -= len;
        if s.recv_window < 0 {
            self.recv_unacked += len;
            self.reset(h.stream, Code::FlowControl, env, out);
            return Ok(());
        }
        s.last_data = env.now;
        s.received += data.len() as u64;
        let over_declared = s.declared.is_some_and(|d| s.received > d);
        let short = h.has(flag::END_STREAM) && s.declared.is_some_and(|d| s.received != d);
        if over_declared || short {
            self.recv_unacked += len;
            self.reset(h.stream, Code::Protocol, env, out);
            return Ok(());
        }
        let max = s
            .guarded
            .max_body
            .map_or(env.limits.max_request_body_size, |m| {
                m.min(env.limits.max_request_body_size)
            });
        if s.received > max {
            self.recv_unacked += len;
            if s.answerable() {
                s.refuse(Response::error(413, None));
                s.keep_body = false;
                s.body.discard();
            } else {
                self.reset(h.stream, Code::Cancel, env, out);
                return Ok(());
            }
        } else {
            // Padding is credited at once; the body when it is taken.
            let pad = len - data.len() as i64;
            self.recv_unacked += pad;
            s.uncredited += pad;
            if s.keep_body {
                s.body.sink().extend_from_slice(data);
            } else {
                self.recv_unacked += data.len() as i64;
                s.uncredited += data.len() as i64;
            }
        }
        if h.has(flag::END_STREAM) {
            s.remote_done = true;
            s.body.finish();
        } else if s.local_done
            && s.status >= 400
            && s.received > self.cfg.initial_stream_window as u64
        {
            // A refused body that keeps coming: enough of it.
            let id = s.id;
            let s = self.streams.remove(i);
            self.recv_unacked += s.body.available() as i64;
            frame::rst_stream(out, id, Code::NoError);
            remember(&mut self.reset_recent, id);
            self.recycle(s);
        }
        Ok(())
    }

    fn on_headers<S: Service + ?Sized>(
        &mut self,
        h: Head,
        p: &[u8],
        svc: &mut S,
        env: &mut Env<'_>,
        out: &mut Vec<u8>,
    ) -> Result<(), (Code, &'static str)> {
        if h.stream == 0 {
            return Err((Code::Protocol, "HEADERS on stream 0"));
        }
        let mut frag = unpad(h, p)?;
        if h.has(flag::PRIORITY) {
            if frag.len() < 5 {
                return Err((Code::FrameSize, "HEADERS too short for its priority"));
            }
            if dependency(frag) == h.stream {
                // Decode anyway to keep the compression context.
                self.block = None;
                let block = Block {
                    stream: h.stream,
                    end_stream: true,
                    buf: frag[5..].to_vec(),
                    frames: 1,
                };
                if h.has(flag::END_HEADERS) {
                    self.decode(&block.buf)?;
                    self.last_stream = self.last_stream.max(h.stream);
                    self.reset(h.stream, Code::Protocol, env, out);
                }
                return Ok(());
            }
            frag = &frag[5..];
        }
        if h.has(flag::END_HEADERS) {
            return self.on_block(h.stream, frag, h.has(flag::END_STREAM), svc, env, out);
        }
        if frag.len() > self.block_limit() {
            return Err((Code::EnhanceYourCalm, "a header block too large"));
        }
        self.block = Some(Block {
            stream: h.stream,
            end_stream: h.has(flag::END_STREAM),
            buf: frag.to_vec(),
            frames: 1,
        });
        Ok(())
    }

    /// Decodes a block into `self.fields`; `Ok(false)`: the list is larger
    /// than allowed.
    fn decode(&mut self, block: &[u8]) -> Result<bool, (Code, &'static str)> {
        self.fields.clear();
        let max = self.cfg.max_header_list_size as usize;
        let fields = &mut self.fields;
        let size = self
            .dec
            .decode(block, max, |n, v| fields.push(n, v))
            .map_err(|_| (Code::Compression, "a header block that cannot be decoded"))?;
        Ok(size <= max)
    }

    fn on_block<S: Service + ?Sized>(
        &mut self,
        id: u32,
        block: &[u8],
        end_stream: bool,
        svc: &mut S,
        env: &mut Env<'_>,
        out: &mut Vec<u8>,
    ) -> Result<(), (Code, &'static str)> {
        let fits =
            self.decode(block)? && self.fields.len() <= env.limits.max_request_header_count + 4;
        // A stream above the last one is new; only others can be open.
        if let Some(i) = (id <= self.last_stream).then(|| self.find(id)).flatten() {
            // Trailers: they end the stream.
            let s = &mut self.streams[i];
            if s.remote_done {
                self.reset(id, Code::StreamClosed, env, out);
            } else if !end_stream || self.fields.iter().any(|(n, _)| n.starts_with(b":")) {
                self.reset(id, Code::Protocol, env, out);
            } else {
                s.remote_done = true;
                if s.declared.is_some_and(|d| d != s.received) {
                    self.reset(id, Code::Protocol, env, out);
                } else {
                    s.body.finish();
                }
            }
            return Ok(());
        }
        if id.is_multiple_of(2) {
            return Err((Code::Protocol, "a client stream with an even number"));
        }
        if id <= self.last_stream {
            if self.closed_recent.contains(&id) || self.reset_recent.contains(&id) {
                return Err((Code::StreamClosed, "HEADERS on a closed stream"));
            }
            return Err((
                Code::Protocol,
                "a stream number lower than one already used",
            ));
        }
        self.last_stream = id;
        if self.goaway_sent || self.peer_goaway {
            return Ok(());
        }
        if self.streams.len() >= self.cfg.max_concurrent_streams as usize {
            self.reset(id, Code::RefusedStream, env, out);
            return Ok(());
        }
        let mut s = self.new_stream(id, env.now);
        s.remote_done = end_stream;
        let checked = match build(&self.fields, &mut s.head) {
            Ok(c) => c,
            Err(_) => {
                self.reset(id, Code::Protocol, env, out);
                return Ok(());
            }
        };
        s.head.peer = env.peer;
        s.head.listener = env.listener;
        s.head.tls = env.tls.cloned();
        svc.prepare(&mut s.head);
        s.head_only = s.head.method == Method::Head;
        s.declared = checked.content_length;
        if end_stream && s.declared.is_some_and(|d| d > 0) {
            self.reset(id, Code::Protocol, env, out);
            return Ok(());
        }
        s.body = if end_stream {
            RequestBody::empty()
        } else {
            RequestBody::new(s.declared)
        };
        let reply = if !fits {
            Reply::Ready(Response::error(431, None))
        } else if checked.method.is_none() {
            Reply::Ready(Response::error(501, None))
        } else if s.head.method == Method::Options && s.head.target() == "*" {
            let allow = svc.methods().with(Method::Options).allow_header();
            Reply::Ready(Response::new(200).header("Allow", allow))
        } else if s.head.method == Method::Connect {
            // (Tunnels are HTTP/1.1's here: RFC 9113 §8.5 is not served.)
            let allow = svc
                .methods()
                .intersect(crate::http::Methods::ANY)
                .allow_header();
            Reply::Ready(
                Response::error(405, Some("CONNECT is not supported")).header("Allow", allow),
            )
        } else if s
            .declared
            .is_some_and(|d| d > env.limits.max_request_body_size)
        {
            Reply::Ready(Response::error(413, None))
        } else {
            let mut io = Io::with_upstreams(env.now, env.waker, env.upstreams.as_deref_mut())
                .with_guarded(std::mem::take(&mut s.guarded));
            let admit = if end_stream {
                Admit::Read
            } else {
                svc.check(&s.head, &mut io)
            };
            let reply = match admit {
                Admit::Answer(resp) => Reply::Ready(resp),
                admit => {
                    s.keep_body = matches!(admit, Admit::Read) && !end_stream;
                    call(svc, &s.head, &mut io)
                }
            };
            if io.http1_required() || io.aborted() {
                // Whatever the reply would do is stopped the usual way.
                s.out = Out::Reply(Some(reply));
                s.abandon(env.obs);
                self.recycle(s);
                let code = if io.aborted() {
                    Code::Cancel
                } else {
                    Code::Http11Required
                };
                self.reset(id, code, env, out);
                return Ok(());
            }
            s.wake = io.wake();
            s.site = io.site();
            s.upstream = io.take_upstream();
            s.guarded = io.take_guarded();
            reply
        };
        s.out = Out::Reply(Some(reply));
        self.streams.push(s);
        Ok(())
    }
}
