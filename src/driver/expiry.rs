//! A server connection's deadlines: which one is next, and what happens when
//! it passes.

use std::time::Instant;

use super::deadline::{Reason, Settings};
use super::server::{Cx, Phase, ServerConn, env};
use super::state::State;
use crate::http::Env;
use crate::metrics::CloseReason;

impl ServerConn {
    /// The next deadline and what it is for.
    pub fn deadline(&self, s: &Settings) -> Option<(Instant, Reason)> {
        match self.state() {
            State::Closed | State::Handler => None,
            State::Lingering { until } => Some((until, Reason::Linger)),
            State::Writing | State::StreamingFile => {
                let stall = (self.send_progress + s.send_timeout, Reason::Send);
                match s.min_response_rate.due(self.send_meter.since) {
                    Some(at) if at < stall.0 => Some((at, Reason::SendRate)),
                    _ => Some(stall),
                }
            }
            // The first request's head must be complete this long after
            // accept (the TLS handshake included); a later one's after its
            // first byte, ciphertext included.
            State::Handshaking | State::AwaitingFirst => {
                Some((self.accepted + s.request_headers_timeout, Reason::Headers))
            }
            State::ExpectRequest { since } => {
                Some((since + s.request_headers_timeout, Reason::Headers))
            }
            State::Stalled { since } => Some((since + s.send_timeout, Reason::Send)),
            State::Idle { since } => Some((since + s.keep_alive_timeout, Reason::Idle)),
            State::ReadingBody { last } => {
                let stall = (last + s.request_body_timeout, Reason::Body);
                match self
                    .body_meter
                    .and_then(|m| s.min_request_body_rate.due(m.since))
                {
                    Some(at) if at < stall.0 => Some((at, Reason::BodyRate)),
                    _ => Some(stall),
                }
            }
            State::Closing => Some((self.idle_since + s.lingering_timeout, Reason::Linger)),
        }
    }

    /// A deadline passed.
    pub(super) fn expire(&mut self, why: Reason, cx: &mut Cx<'_>) {
        // A rate window that met its quota starts the next one.
        match why {
            Reason::SendRate if self.send_meter.roll(&cx.settings.min_response_rate, cx.now) => {
                return;
            }
            Reason::BodyRate
                if self
                    .body_meter
                    .as_mut()
                    .is_some_and(|m| m.roll(&cx.settings.min_request_body_rate, cx.now)) =>
            {
                return;
            }
            _ => {}
        }
        match self.phase {
            Phase::Closed => {}
            Phase::Lingering { .. } => {
                let why = self.why;
                self.close(why, None);
            }
            Phase::Open if self.writing() => self.close_with(CloseReason::Timeout, None, cx),
            Phase::Open => {
                let _ = why;
                self.why = CloseReason::Timeout;
                if self.out.capacity() == 0 {
                    self.out = cx.bufs.get();
                }
                let step = match self.tls.as_deref_mut() {
                    Some(t) => {
                        let mut plain = cx.bufs.get();
                        let mut env = env!(cx);
                        let step = self.http.timeout(&mut env, &mut plain);
                        // A handshake that never finished gets no HTTP answer.
                        if !t.session.is_handshaking() {
                            t.session.seal(&plain, &mut self.out);
                        }
                        cx.bufs.put(plain);
                        step
                    }
                    None => {
                        let mut env = env!(cx);
                        self.http.timeout(&mut env, &mut self.out)
                    }
                };
                self.after_step(step, cx);
            }
        }
    }
}
