//! The TLS transport under a server connection: ciphertext in through the
//! rustls session, plaintext to HTTP, responses sealed into the output.

use super::server::{Cx, ServerConn, env};
use crate::http::{Env, Step};
use crate::metrics::CloseReason;
use crate::tls::{TlsError, TlsSession};

/// The clear-text answer to a plain HTTP request on an HTTPS port.
pub const PLAIN_HTTP_TO_TLS: &[u8] = b"HTTP/1.1 400 Bad Request\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Length: 59\r\nConnection: close\r\n\r\n400 Bad Request: plain HTTP request was sent to HTTPS port\n";

/// A connection's TLS session and the ciphertext waiting for it.
#[derive(Debug)]
pub struct TlsState {
    /// The session.
    pub session: TlsSession,
    /// Ciphertext received but not yet fed (a response is being written, or
    /// the handshake budget for this tick is spent).
    pub pending: Vec<u8>,
}

impl TlsState {
    pub(super) fn new(session: TlsSession) -> TlsState {
        TlsState {
            session,
            pending: Vec::new(),
        }
    }
}

impl ServerConn {
    /// Feeds pending ciphertext through the session, and the plaintext
    /// through HTTP; responses are sealed into the output.
    pub(super) fn tls_input(&mut self, cx: &mut Cx<'_>) {
        if self.writing() || !self.is_open() {
            return;
        }
        let Some(t) = self.tls.as_deref_mut() else {
            return;
        };
        if !t.pending.is_empty() && t.session.is_handshaking() {
            if *cx.handshakes_left == 0 {
                self.deferred = true;
                return;
            }
            *cx.handshakes_left -= 1;
        }
        if self.out.capacity() == 0 {
            self.out = cx.bufs.get();
        }
        let mut plain_in = cx.bufs.get();
        let mut cipher = std::mem::take(&mut t.pending);
        let fed = if cipher.is_empty() {
            Ok(Default::default())
        } else {
            t.session.feed(&cipher, &mut plain_in, &mut self.out)
        };
        cipher.clear();
        t.pending = if cipher.capacity() > 64 * 1024 {
            Vec::new()
        } else {
            cipher
        };
        let fed = match fed {
            Ok(f) => f,
            Err(e) => {
                if matches!(e, TlsError::PlainHttp) {
                    self.out.clear();
                    self.out.extend_from_slice(PLAIN_HTTP_TO_TLS);
                }
                // A fatal alert (if any) is queued in the output; nothing
                // follows it.
                cx.bufs.put(plain_in);
                self.tls = None;
                self.http.finish();
                self.why = CloseReason::Error;
                self.after_step(Step::Close, cx);
                return;
            }
        };
        if fed.closed {
            // close_notify: finish what is buffered, then close.
            self.peer_eof = true;
        }
        let t = self.tls.as_deref_mut().expect("tls");
        let info = t.session.info().cloned();
        if let Some(i) = info.as_deref() {
            self.choose_by_alpn(i.alpn.as_deref(), cx);
        }
        let mut plain_out = cx.bufs.get();
        let was_body = matches!(self.http.waiting(), crate::http::Waiting::Body(_));
        let step = if info.is_some() || !plain_in.is_empty() {
            let mut env: Env<'_> = env!(cx, info.as_ref());
            let step = self
                .http
                .feed(&plain_in, &mut *cx.svc, &mut env, &mut plain_out);
            self.track_body(was_body, plain_in.len(), cx.now);
            step
        } else {
            Step::NeedInput
        };
        if !plain_out.is_empty() {
            self.responded = true;
            let t = self.tls.as_deref_mut().expect("tls");
            t.session.seal(&plain_out, &mut self.out);
        }
        cx.bufs.put(plain_in);
        cx.bufs.put(plain_out);
        self.after_step(step, cx);
    }
}
