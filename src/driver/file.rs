//! File bodies: read through the ring in pieces into the output (copied, or
//! sealed over TLS), or spliced from the page cache through a pipe.

use std::fs::File;
use std::rc::Rc;
use std::time::Instant;

use super::server::{Action, Cx, ServerConn};
use crate::http::conn::Observer;
use crate::http::{FileStep, Ticket};
use crate::metrics::CloseReason;

/// A file body being sent.
#[derive(Debug)]
pub struct FileSend {
    file: Rc<File>,
    /// Next byte to read.
    offset: u64,
    /// Bytes still to read.
    remaining: u64,
    /// The whole length.
    len: u64,
    /// Splice file pages through a pipe instead of copying.
    splice: bool,
    /// Bytes spliced into the pipe and not yet out to the socket.
    in_pipe: usize,
    /// A splice out linked behind the splice in is in flight.
    linked_out: bool,
    /// What to report when the last byte is handed over.
    done: Option<(Ticket, Instant)>,
    /// Over TLS, the buffer the next read fills (sealed into the output).
    plain: Vec<u8>,
}

/// The file I/O a driver asks for next (built into an [`Action`] by
/// [`ServerConn::poll_action`], so an idle connection carries none).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum FileIo {
    /// Read this many bytes into the output (or, over TLS, the plain buffer).
    Read(usize),
    /// Splice up to this many bytes into the pipe.
    SpliceIn(usize),
    /// Splice this many bytes from the pipe to the socket.
    SpliceOut(usize),
    /// Wait for the socket to take more.
    PollOut,
}

impl FileSend {
    pub(super) fn new(step: FileStep, splice: bool) -> FileSend {
        FileSend {
            file: step.body.file,
            offset: step.body.offset,
            remaining: step.body.len,
            len: step.body.len,
            splice,
            in_pipe: 0,
            linked_out: false,
            done: step.done,
            plain: Vec::new(),
        }
    }

    /// The next read as an action: `out` is the connection's output (plain
    /// HTTP reads into it).
    pub(super) fn read_action(&mut self, len: usize, out: &mut Vec<u8>, tls: bool) -> Action {
        let buf = if tls {
            std::mem::take(&mut self.plain)
        } else {
            std::mem::take(out)
        };
        Action::ReadFile {
            file: self.file.clone(),
            offset: self.offset,
            len,
            buf,
            tag: 0,
        }
    }

    /// The next splice into the pipe as an action, with the splice out
    /// linked behind it (one trip through the loop for both).
    pub(super) fn splice_action(&mut self, len: usize) -> Action {
        self.linked_out = true;
        Action::SpliceIn {
            file: self.file.clone(),
            offset: self.offset,
            len,
            then_out: true,
        }
    }

    /// Reports the body as ended (completely or not) to the observer.
    pub(super) fn report(&self, obs: &mut dyn Observer) {
        if let Some((ticket, started)) = self.done {
            obs.stream_done(ticket, started, self.len - self.remaining);
        }
    }
}

impl ServerConn {
    /// Asks for the next piece of a file body, or sends what is buffered
    /// first when it is nearly full; finishes the body when it is all out.
    pub(super) fn file_next(&mut self, cx: &mut Cx<'_>) {
        let Some(f) = self.file.as_deref() else {
            return;
        };
        if f.remaining == 0 && f.in_pipe == 0 {
            if let Some(f) = self.file.take() {
                f.report(&mut *cx.obs);
            }
            self.resume(cx);
            return;
        }
        let (remaining, in_pipe, splice) = (f.remaining, f.in_pipe, f.splice);
        let unsent = self.out.len() - self.sent;
        if splice {
            // Zero-copy: the head (and any earlier responses) go first, then
            // file pages move through the pipe to the socket.
            if unsent > 0 {
                return; // poll_action sends it
            }
            self.next_io = Some(if in_pipe > 0 {
                FileIo::SpliceOut(in_pipe)
            } else {
                FileIo::SpliceIn(remaining.min(usize::MAX as u64) as usize)
            });
            return;
        }
        let chunk = cx.file_chunk.max(4096);
        let tls = self.tls.is_some();
        let out = &mut self.out;
        let room = chunk.saturating_sub(out.len());
        // Send first when the buffer is nearly full, and always over TLS
        // (the plaintext is sealed into the output, which a send holds).
        if unsent > 0 && (tls || room < 4096) {
            return;
        }
        let len = remaining.min(room.max(4096) as u64) as usize;
        // Over TLS the plaintext is read into its own buffer, then sealed.
        if tls {
            if let Some(f) = self.file.as_deref_mut()
                && f.plain.capacity() == 0
            {
                f.plain = cx.bufs.get();
            }
        } else if out.capacity() == 0 {
            *out = cx.bufs.get();
        }
        self.next_io = Some(FileIo::Read(len));
    }

    /// A file read put `n` bytes after `buf`'s length (or failed: `n` < 0 is
    /// an errno, 0 means the file shrank).
    pub fn on_read(&mut self, buf: Vec<u8>, n: i32, tag: u32, cx: &mut Cx<'_>) {
        if self.http.is_h2() {
            self.h2_on_read(buf, n, tag, cx);
            return;
        }
        self.reading = false;
        if !self.is_open() {
            cx.bufs.put(buf);
            return;
        }
        if n <= 0 {
            match self.tls {
                Some(_) => cx.bufs.put(buf),
                None => self.out = buf,
            }
            self.file_failed(n, "read", cx);
            return;
        }
        let n = n as usize;
        if let Some(f) = self.file.as_deref_mut() {
            f.offset += n as u64;
            f.remaining -= n as u64;
        }
        match self.tls.as_deref_mut() {
            Some(t) => {
                if self.out.capacity() == 0 {
                    self.out = cx.bufs.get();
                }
                t.session.seal(&buf, &mut self.out);
                let mut buf = buf;
                buf.clear();
                match self.file.as_deref_mut() {
                    Some(f) => f.plain = buf,
                    None => cx.bufs.put(buf),
                }
            }
            None => self.out = buf,
        }
    }

    /// A splice into the pipe moved `res` bytes (or failed: an errno).
    pub fn on_spliced_in(&mut self, res: i32, cx: &mut Cx<'_>) {
        self.reading = false;
        if !self.is_open() {
            return;
        }
        if res <= 0 {
            self.file_failed(res, "splice", cx);
            return;
        }
        if let Some(f) = self.file.as_deref_mut() {
            let n = res as usize;
            f.offset += n as u64;
            f.remaining -= n as u64;
            f.in_pipe += n;
            // A linked splice out is already on its way.
            if !f.linked_out {
                self.next_io = Some(FileIo::SpliceOut(f.in_pipe));
            }
        }
    }

    /// A splice out of the pipe moved `res` bytes to the socket (`-EAGAIN`:
    /// the socket is full).
    pub fn on_spliced_out(&mut self, res: i32, cx: &mut Cx<'_>) {
        self.sending = false;
        let linked = self
            .file
            .as_deref_mut()
            .is_some_and(|f| std::mem::replace(&mut f.linked_out, false));
        if !self.is_open() {
            return;
        }
        if res == -libc::EAGAIN {
            self.next_io = Some(FileIo::PollOut);
            return;
        }
        // A short splice in breaks the link: send what did reach the pipe.
        if res == -libc::ECANCELED && linked {
            self.file_next(cx);
            return;
        }
        if res <= 0 {
            self.close_with(CloseReason::Reset, None, cx);
            return;
        }
        if let Some(f) = self.file.as_deref_mut() {
            f.in_pipe -= res as usize;
        }
        self.progress(res as usize, cx.now);
        self.file_next(cx);
    }

    /// The socket can take more after a full one.
    pub fn on_poll_out(&mut self, res: i32, cx: &mut Cx<'_>) {
        self.sending = false;
        if !self.is_open() {
            return;
        }
        if res < 0 {
            self.close_with(CloseReason::Reset, None, cx);
            return;
        }
        self.file_next(cx);
    }

    /// Splicing cannot be used (no pipe could be made): copy instead.
    pub fn splice_unavailable(&mut self, cx: &mut Cx<'_>) {
        self.reading = false;
        if let Some(f) = self.file.as_deref_mut() {
            f.splice = false;
        }
        self.file_next(cx);
    }

    /// A file body read or splice returned `res` ≤ 0: an error, or a file that
    /// shrank. The promised length cannot be sent, so the connection ends.
    pub(super) fn file_failed(&mut self, res: i32, what: &str, cx: &mut Cx<'_>) {
        let why = if res == 0 {
            "file shrank while being sent".to_string()
        } else {
            std::io::Error::from_raw_os_error(-res).to_string()
        };
        self.close_with(
            CloseReason::Error,
            Some(format!("file body {what} failed: {why}")),
            cx,
        );
    }
}
