//! How a server connection ends: a lingering close after the final
//! response (so the peer reads it rather than a reset), or a close now; the
//! observer hears of whatever was still in progress.

use super::server::{Cx, Phase, ServerConn};
use crate::metrics::CloseReason;

impl ServerConn {
    /// After a final response: shut our side and read until the peer closes,
    /// so it sees the response rather than a reset.
    pub(super) fn linger(&mut self, cx: &mut Cx<'_>) {
        self.http.abandon(&mut *cx.obs);
        self.http.finish();
        // A clean end — the last request read whole, nothing after it, no
        // error — needs no lingering: the client sends nothing more, so a
        // plain close cannot reset the response away (nginx does the same).
        let pending = self.tls.as_deref().is_some_and(|t| !t.pending.is_empty());
        if self.peer_eof || cx.draining || !(self.http.needs_linger() || pending) {
            let why = self.why;
            self.close(why, None);
            return;
        }
        self.phase = Phase::Lingering {
            until: cx.now + cx.settings.lingering_timeout,
        };
        self.shutdown_due = true;
        cx.bufs.put(std::mem::take(&mut self.out));
        self.sent = 0;
        self.recv_paused = false;
    }

    /// Closes with the observer at hand (a file in progress is reported).
    pub(super) fn close_with(&mut self, why: CloseReason, note: Option<String>, cx: &mut Cx<'_>) {
        if self.phase == Phase::Closed {
            return;
        }
        self.http.abandon(&mut *cx.obs);
        if let Some(f) = self.file.take() {
            f.report(&mut *cx.obs);
        }
        self.close(why, note);
    }

    /// Closes: the executor cancels what is in flight. `why` is counted unless
    /// a reason was set earlier.
    pub(super) fn close(&mut self, why: CloseReason, note: Option<String>) {
        if self.phase == Phase::Closed {
            return;
        }
        if self.phase == Phase::Open && self.why == CloseReason::Normal {
            self.why = why;
        }
        self.phase = Phase::Closed;
        self.http.finish();
        self.next_io = None;
        self.shutdown_due = false;
        self.close_due = Some((self.why, note.map(String::into_boxed_str)));
    }
}
