//! HTTP/2 under a server connection: choosing it (ALPN `h2` on TLS, the
//! connection preface on a plain listener), and its file reads, whose
//! pieces go out as DATA frames.

use super::proto::Proto;
use super::server::{Cx, ServerConn, env};
use crate::http::{Env, Step};
use crate::http2::H2Conn;
use crate::http2::frame::PREFACE;

/// What an HTTP/2 connection's sealed output is sized for: a send's worth
/// of frames (file pieces are read until `OUT_HIGH_WATER` is queued), the
/// pieces of the reads still in flight then, and the records' overhead.
/// (Under glibc's threshold for a mapping of its own, which would be
/// mapped and unmapped each time.)
const H2_TLS_OUT: usize = 96 * 1024;

impl ServerConn {
    /// Whether the connection speaks HTTP/2.
    pub fn is_h2(&self) -> bool {
        self.http.is_h2()
    }

    /// The streams open, when the connection speaks HTTP/2 (and is not
    /// closing).
    pub fn http2_streams(&self) -> Option<usize> {
        match &self.http {
            super::proto::Proto::H2(c) if self.is_open() => Some(c.open_streams()),
            _ => None,
        }
    }

    /// Switches to HTTP/2 (before any request was read).
    fn become_h2(&mut self, cx: &Cx<'_>) {
        self.http = Proto::H2(Box::new(H2Conn::new(&cx.limits.http2, cx.now)));
    }

    /// The TLS handshake is done: ALPN says which protocol follows.
    pub(super) fn choose_by_alpn(&mut self, alpn: Option<&str>, cx: &Cx<'_>) {
        if self.decided {
            return;
        }
        self.decided = true;
        if alpn == Some("h2") {
            self.become_h2(cx);
        }
    }

    /// The first bytes on a plain connection: the HTTP/2 preface (when h2c
    /// is on) makes it HTTP/2, anything else HTTP/1. Bytes that may still
    /// become the preface are held; being its first bytes, their count is
    /// all that needs keeping.
    pub(super) fn sniff_h2c(&mut self, data: &[u8], cx: &mut Cx<'_>) {
        let held = usize::from(self.sniffed);
        let n = data.len().min(PREFACE.len() - held);
        let h2 = cx.limits.http2.h2c && data[..n] == PREFACE[held..held + n];
        if h2 && held + n < PREFACE.len() {
            self.sniffed = (held + n) as u8;
            return;
        }
        self.decided = true;
        self.sniffed = 0;
        if h2 {
            self.become_h2(cx);
        }
        if held == 0 {
            self.feed_plain(data, cx);
        } else {
            let mut joined = PREFACE[..held].to_vec();
            joined.extend_from_slice(data);
            self.feed_plain(&joined, cx);
        }
    }

    /// An HTTP/2 file read finished: `buf` holds the bytes (or `n` ≤ 0
    /// says why not).
    pub(super) fn h2_on_read(&mut self, buf: Vec<u8>, n: i32, tag: u32, cx: &mut Cx<'_>) {
        if !self.is_open() {
            self.reading = false;
            cx.bufs.put(buf);
            return;
        }
        if n <= 0 {
            self.reading = false;
            cx.bufs.put(buf);
            self.file_failed(n, "read", cx);
            return;
        }
        let start = buf.len() - n as usize;
        self.h2_step(cx, |http, svc, env, out| {
            http.file_data(tag, &buf[start..], svc, env, out)
        });
        // Other streams' reads may still be out.
        self.reading = self.http.reads_in_flight();
        cx.bufs.put(buf);
        self.settle();
    }

    /// Records for a send's worth of HTTP/2 frames are sealed into one
    /// buffer: when it must grow for `plain` bytes of file pieces, it grows
    /// to hold a send's worth at once, instead of doubling (and copying) on
    /// the way. (Small answers, sealed as their requests are read, grow it
    /// as usual.)
    pub(super) fn reserve_h2_records(&mut self, plain: usize) {
        let need = crate::tls::sealed_len(plain);
        if self.http.is_h2() && self.out.capacity() - self.out.len() < need {
            let len = self.out.len();
            self.out.reserve(need.max(H2_TLS_OUT.saturating_sub(len)));
        }
    }

    /// Runs one protocol call whose output is sealed over TLS.
    fn h2_step(
        &mut self,
        cx: &mut Cx<'_>,
        f: impl FnOnce(&mut Proto, &mut dyn crate::http::Service, &mut Env<'_>, &mut Vec<u8>) -> Step,
    ) {
        if self.out.capacity() == 0 {
            self.out = cx.bufs.get();
        }
        let step = match self.tls.as_deref_mut() {
            Some(t) => {
                let info = t.session.info().cloned();
                let mut plain = cx.bufs.get();
                let step = {
                    let mut env: Env<'_> = env!(cx, info.as_ref());
                    f(&mut self.http, &mut *cx.svc, &mut env, &mut plain)
                };
                if !plain.is_empty() {
                    self.responded = true;
                    self.reserve_h2_records(plain.len());
                    let t = self.tls.as_deref_mut().expect("tls");
                    t.session.seal(&plain, &mut self.out);
                }
                cx.bufs.put(plain);
                step
            }
            None => {
                let before = self.out.len();
                let mut env = env!(cx);
                let step = f(&mut self.http, &mut *cx.svc, &mut env, &mut self.out);
                if self.out.len() > before {
                    self.responded = true;
                }
                step
            }
        };
        self.after_step(step, cx);
    }
}
