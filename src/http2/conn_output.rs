//! The output side of an HTTP/2 connection: streams take turns producing
//! frames, handlers' takings are credited back as WINDOW_UPDATEs, and
//! finished streams leave.

use super::*;

impl H2Conn {
    pub(super) fn drive(
        &mut self,
        env: &mut Env<'_>,
        out: &mut Vec<u8>,
    ) -> Option<crate::http2::FileRead> {
        let mut resets = Vec::new();
        let mut read = None;
        'rounds: loop {
            let n = self.streams.len();
            if n == 0 {
                break;
            }
            let mut progressed = false;
            for k in 0..n {
                if out.len() >= OUT_HIGH_WATER {
                    break 'rounds;
                }
                let i = (self.rr + k) % n;
                let s = &mut self.streams[i];
                let mut cx = StepCx {
                    env: &mut *env,
                    enc: &mut self.enc,
                    out: &mut *out,
                    conn_window: &mut self.send_window,
                    max_frame: self.peer_max_frame,
                    extra: &self.extra,
                    block: &mut self.block_buf,
                };
                // A few steps per turn: a state change and one frame.
                for _ in 0..4 {
                    match s.step(&mut cx) {
                        Progress::More => progressed = true,
                        Progress::Wait => break,
                        Progress::Read(r) => {
                            self.reading.push(s.id);
                            match read {
                                None => read = Some(r),
                                Some(_) => self.wanted.push(r),
                            }
                            if self.reading.len() >= Self::MAX_READS {
                                self.rr = (i + 1) % n;
                                break 'rounds;
                            }
                            break;
                        }
                        Progress::Reset(code) => {
                            resets.push((s.id, code));
                            break;
                        }
                    }
                    if s.local_done {
                        break;
                    }
                }
            }
            self.rr = (self.rr + 1) % n;
            if !progressed || !resets.is_empty() {
                break;
            }
        }
        for (id, code) in resets {
            self.reset(id, code, env, out);
        }
        read
    }

    /// WINDOW_UPDATEs for what handlers took.
    pub(super) fn credit(&mut self, out: &mut Vec<u8>) {
        let half = self.cfg.initial_stream_window as i64 / 2;
        for s in &mut self.streams {
            if s.remote_done {
                continue;
            }
            let taken = s.body.taken();
            let fresh = (taken - s.credited) as i64;
            if fresh > 0 && s.keep_body {
                self.recv_unacked += fresh;
                s.credited = taken;
                s.uncredited += fresh;
            }
            if s.uncredited >= half.max(1)
                || (s.uncredited > 0 && s.body.available() == 0 && s.recv_window < half)
            {
                frame::window_update(out, s.id, s.uncredited as u32);
                s.recv_window += s.uncredited;
                s.uncredited = 0;
            }
        }
        let target = self
            .cfg
            .initial_connection_window
            .max(frame::DEFAULT_WINDOW) as i64;
        if self.recv_unacked > 0
            && (self.recv_unacked >= target / 2 || self.recv_window < target / 2)
        {
            frame::window_update(out, 0, self.recv_unacked as u32);
            self.recv_window += self.recv_unacked;
            self.recv_unacked = 0;
        }
    }

    /// Streams whose response is complete leave once the request is in
    /// too. A large request body still coming after a refusal (a 4xx or
    /// 5xx: more than a stream window declared, or that much received) is
    /// stopped with RST_STREAM NO_ERROR (RFC 9113 §8.1); any other is read
    /// (and dropped) to its end, so its framing is still checked.
    pub(super) fn retire(&mut self, env: &mut Env<'_>, out: &mut Vec<u8>) {
        let _ = &env;
        let mut i = 0;
        while i < self.streams.len() {
            let s = &mut self.streams[i];
            if !s.local_done || self.reading.contains(&s.id) {
                i += 1;
                continue;
            }
            let window = self.cfg.initial_stream_window as u64;
            let owed = s.declared.map(|d| d.saturating_sub(s.received));
            if !s.remote_done && (s.status < 400 || owed.is_none_or(|o| o <= window)) {
                if s.keep_body {
                    s.keep_body = false;
                    let held = s.body.available() as i64;
                    s.body.discard();
                    self.recv_unacked += held;
                    s.uncredited += held;
                }
                i += 1;
                continue;
            }
            let s = self.streams.remove(i);
            self.recv_unacked += s.body.available() as i64;
            if s.remote_done {
                remember(&mut self.closed_recent, s.id);
            } else {
                frame::rst_stream(out, s.id, Code::NoError);
                remember(&mut self.reset_recent, s.id);
            }
            self.recycle(s);
        }
    }
}
