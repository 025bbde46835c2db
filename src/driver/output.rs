//! A server connection's output: what it asks the executor to do next,
//! and what a send's completion moves on (a gather send's tail becoming the
//! output, a file body, lingering, the next request).

use super::file::FileIo;
use super::server::{Action, Cx, Phase, ServerConn, Then};
use crate::metrics::CloseReason;

impl ServerConn {
    /// The next thing for the executor to do, if any.
    pub fn poll_action(&mut self) -> Option<Action> {
        if let Some((why, note)) = self.close_due.take() {
            return Some(Action::Close {
                why,
                note: note.map(String::from),
            });
        }
        if self.phase == Phase::Closed {
            return None;
        }
        // File I/O first: a plain read appends to the output buffer, so it
        // must take the buffer before a send would.
        if let Some(io) = self.next_io.take() {
            let tls = self.tls.is_some();
            let f = self.file.as_deref_mut()?;
            return Some(match io {
                FileIo::Read(len) => {
                    self.reading = true;
                    f.read_action(len, &mut self.out, tls)
                }
                FileIo::SpliceIn(len) => {
                    self.reading = true;
                    self.sending = true;
                    f.splice_action(len)
                }
                FileIo::SpliceOut(len) => {
                    self.sending = true;
                    Action::SpliceOut { len }
                }
                FileIo::PollOut => {
                    self.sending = true;
                    Action::PollOut
                }
            });
        }
        // An HTTP/2 file piece is read before what is queued goes out,
        // until a send's worth is queued: many streams' pieces go in one send.
        if !self.sending
            && self.out.len() - self.sent < crate::http::conn::OUT_HIGH_WATER
            && self.http.read_staged()
        {
            let (r, buf) = self.http.take_staged_read()?;
            self.reading = true;
            return Some(Action::ReadFile {
                file: r.file,
                offset: r.offset,
                len: r.len,
                buf,
                tag: r.tag,
            });
        }
        // A read in flight appends to the output (or seals into it): the
        // send waits for it. A body piece behind the output goes with it.
        if !self.sending && !self.reading && self.sent < self.out.len() {
            self.sending = true;
            let (buf, from) = (std::mem::take(&mut self.out), self.sent);
            return Some(match self.tail.take() {
                Some(tail) => Action::SendGather {
                    buf,
                    from,
                    tail: *tail,
                },
                None => Action::Send { buf, from },
            });
        }
        if self.shutdown_due && !self.sending {
            self.shutdown_due = false;
            return Some(Action::ShutdownWrite);
        }
        None
    }

    /// A send of `buf[..]` moved `n` more bytes (the buffer comes back).
    pub fn on_sent(&mut self, buf: Vec<u8>, n: usize, cx: &mut Cx<'_>) {
        self.sending = false;
        self.out = buf;
        if self.phase == Phase::Closed {
            cx.bufs.put(std::mem::take(&mut self.out));
            return;
        }
        self.sent += n;
        self.progress(n, cx.now);
        if self.sent < self.out.len() {
            return; // the rest goes with the next Send
        }
        self.out.clear();
        self.sent = 0;
        self.after_output(cx);
        self.settle();
    }

    /// A gather send of `buf[sent..]` and `tail` moved `n` more bytes (both
    /// come back).
    pub fn on_sent_gather(&mut self, buf: Vec<u8>, tail: Vec<u8>, n: usize, cx: &mut Cx<'_>) {
        if self.phase == Phase::Closed {
            cx.bufs.put(tail);
            return self.on_sent(buf, n, cx);
        }
        let rest = buf.len() - self.sent;
        if n < rest {
            // The tail waits for the rest of the output.
            self.tail = Some(Box::new(tail));
            return self.on_sent(buf, n, cx);
        }
        // The output is out: the tail is the output now, `n - rest` bytes of
        // it sent.
        cx.bufs.put(buf);
        self.progress(rest, cx.now);
        self.sent = 0;
        self.on_sent(tail, n - rest, cx);
    }

    /// A send, splice or poll failed: the peer is gone.
    pub fn on_send_failed(&mut self, cx: &mut Cx<'_>) {
        self.sending = false;
        self.close_with(CloseReason::Reset, None, cx);
    }

    /// Output is all sent: go on with a file, linger, or the next request.
    pub(super) fn after_output(&mut self, cx: &mut Cx<'_>) {
        if self.http.read_staged() {
            return; // poll_action starts it
        }
        if self.file.is_some() {
            self.file_next(cx);
            return;
        }
        match self.then {
            Then::Close => self.linger(cx),
            Then::Resume => self.resume(cx),
        }
    }
}
