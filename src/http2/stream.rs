//! One HTTP/2 stream as an exchange: its request head and body, and the
//! production of its response as HEADERS and DATA frames under flow control
//! (a ready response, a task that answers later, or a body source; file
//! bodies are read through the ring in pieces no larger than the windows).

use std::panic::{AssertUnwindSafe, catch_unwind};
use std::time::Instant;

use super::frame::{self, Code};
use super::hpack::Encoder;
use crate::exchange::{BodySource, Chunk, Io, Reply, RequestBody, RequestHead, Task, UpstreamNote};
use crate::http::encode::{SERVER, allows_body};
use crate::http::response::{Body, FileBody, Response, Text};
use crate::http::{Env, Observer, Served, Ticket};

/// Largest piece of a body pulled or read for one stream at a time.
pub const PIECE: usize = 64 * 1024;

/// A file piece a stream wants read (the connection asks its driver).
#[derive(Debug)]
pub struct FileRead {
    /// The file.
    pub file: std::rc::Rc<std::fs::File>,
    /// Where to read.
    pub offset: u64,
    /// How much.
    pub len: usize,
    /// The stream it is for (handed back with the bytes).
    pub tag: u32,
}

/// What produces the response.
pub(super) enum Out {
    /// A reply not started yet.
    Reply(Option<Reply>),
    /// A task that answers later.
    Task(Box<dyn Task>),
    /// A body pulled from its source; the head waits for the first piece
    /// while the request body still arrives.
    Source(Option<Box<Response>>, Box<dyn BodySource>),
    /// The head is out; what is held (and the file) is the rest.
    Body,
    /// END_STREAM is sent (or the stream was reset).
    Done,
}

/// What a step of a stream asks of its connection.
#[derive(Debug)]
pub(super) enum Progress {
    /// Output was produced or the state moved: step again.
    More,
    /// Nothing to do until input, a wake-up, a window or a read.
    Wait,
    /// Read this file piece and hand it to the stream.
    Read(FileRead),
    /// The response cannot be completed: reset the stream.
    Reset(Code),
}

/// What a stream step needs from its connection.
pub(super) struct StepCx<'a, 'e> {
    pub env: &'a mut Env<'e>,
    pub enc: &'a mut Encoder,
    pub out: &'a mut Vec<u8>,
    /// The connection's send window.
    pub conn_window: &'a mut i64,
    /// The client's largest frame payload.
    pub max_frame: usize,
    /// Extra response fields (the listener's, e.g. HSTS) as name/value pairs.
    pub extra: &'a [(Box<str>, Box<str>)],
    /// Where header blocks are encoded (reused).
    pub block: &'a mut Vec<u8>,
}

/// One stream.
pub(super) struct Stream {
    pub id: u32,
    pub head: RequestHead,
    pub body: RequestBody,
    pub started: Instant,
    pub head_only: bool,
    /// The client sent END_STREAM.
    pub remote_done: bool,
    /// DATA payload received (for Content-Length).
    pub received: u64,
    pub declared: Option<u64>,
    /// The handler takes the body (otherwise it is dropped as it arrives).
    pub keep_body: bool,
    /// Body bytes taken by the handler when the client was last credited.
    pub credited: u64,
    /// What the client may still send before a WINDOW_UPDATE.
    pub recv_window: i64,
    /// What we may still send.
    pub send_window: i64,
    pub out: Out,
    /// Body bytes waiting for the windows.
    held: Vec<u8>,
    held_pos: usize,
    /// A file range still to send.
    file: Option<FileBody>,
    /// A file read for this stream is in flight.
    pub reading: bool,
    /// The window bytes that read took.
    reserved: usize,
    /// Once what is held is out, the body ends.
    end_due: bool,
    trailers: Vec<(Text, Text)>,
    pub wake: Option<Instant>,
    pub site: Option<u16>,
    pub upstream: Option<UpstreamNote>,
    ticket: Ticket,
    /// The observer was told of the head (and waits for the end).
    told: bool,
    /// Body bytes sent.
    sent: u64,
    /// The body's length as promised in the head.
    promised: Option<u64>,
    /// We sent END_STREAM or RST_STREAM.
    pub local_done: bool,
    /// Since when the stream has data but no window to send it.
    pub blocked_since: Option<Instant>,
    /// When request body bytes last arrived (or the stream opened).
    pub last_data: Instant,
    /// Receive window consumed and not yet given back by WINDOW_UPDATE.
    pub uncredited: i64,
    /// The response status, once its head is out.
    pub status: u16,
}

impl Stream {
    pub(super) fn new(id: u32, now: Instant, recv_window: i64, send_window: i64) -> Stream {
        Stream {
            id,
            head: RequestHead::default(),
            body: RequestBody::empty(),
            started: now,
            head_only: false,
            remote_done: false,
            received: 0,
            declared: None,
            keep_body: false,
            credited: 0,
            recv_window,
            send_window,
            out: Out::Done,
            held: Vec::new(),
            held_pos: 0,
            file: None,
            reading: false,
            reserved: 0,
            end_due: false,
            trailers: Vec::new(),
            wake: None,
            site: None,
            upstream: None,
            ticket: Ticket::NONE,
            told: false,
            sent: 0,
            promised: None,
            local_done: false,
            blocked_since: None,
            last_data: now,
            uncredited: 0,
            status: 0,
        }
    }

    /// Makes a finished stream the new stream `id`, keeping its buffers.
    pub(super) fn reuse(&mut self, id: u32, now: Instant, recv_window: i64, send_window: i64) {
        let head = std::mem::replace(
            &mut self.head,
            RequestHead::new(crate::http::Method::Get, ""),
        );
        let mut held = std::mem::take(&mut self.held);
        held.clear();
        *self = Stream::new(id, now, recv_window, send_window);
        self.head = head;
        self.held = held;
    }

    /// Whether nothing produces any more (the stream may be reused).
    pub(super) fn out_done(&self) -> bool {
        matches!(self.out, Out::Done)
    }

    /// Whether no response has started, so a refusal can still answer.
    pub(super) fn answerable(&self) -> bool {
        !self.told && matches!(self.out, Out::Reply(_) | Out::Task(_))
    }

    /// Answers with `resp` instead of what the handler was doing.
    pub(super) fn refuse(&mut self, resp: Response) {
        self.cancel();
        self.out = Out::Reply(Some(Reply::Ready(resp)));
    }

    fn held_rest(&self) -> usize {
        self.held.len() - self.held_pos
    }

    /// The stream ends early (reset by either side, or the connection
    /// ends): the observer hears of a body in progress, the producer stops.
    pub(super) fn abandon(&mut self, obs: &mut dyn Observer) {
        if self.told {
            obs.stream_done(self.ticket, self.started, self.sent);
            self.told = false;
        }
        self.cancel();
        self.local_done = true;
    }

    fn cancel(&mut self) {
        match std::mem::replace(&mut self.out, Out::Done) {
            Out::Task(mut t) => {
                let _ = catch_unwind(AssertUnwindSafe(|| t.cancel()));
            }
            Out::Source(_, mut s) => {
                let _ = catch_unwind(AssertUnwindSafe(|| s.stop()));
            }
            Out::Reply(Some(Reply::Stream(_, mut s))) => {
                let _ = catch_unwind(AssertUnwindSafe(|| s.stop()));
            }
            Out::Reply(Some(Reply::Pending(mut t))) => {
                let _ = catch_unwind(AssertUnwindSafe(|| t.cancel()));
            }
            Out::Reply(_) | Out::Body | Out::Done => {}
        }
        self.held = Vec::new();
        self.held_pos = 0;
        self.file = None;
    }

    /// Makes what progress the stream allows.
    pub(super) fn step(&mut self, cx: &mut StepCx<'_, '_>) -> Progress {
        match &mut self.out {
            Out::Done => Progress::Wait,
            Out::Reply(r) => match r.take() {
                Some(reply) => self.begin(reply, cx),
                None => Progress::Wait,
            },
            Out::Task(t) => {
                let env = &mut *cx.env;
                let mut io = Io::with_upstreams(env.now, env.waker, env.upstreams.as_deref_mut());
                let body = &mut self.body;
                let polled = catch_unwind(AssertUnwindSafe(|| t.poll(&mut io, body)));
                if let Some(n) = io.take_upstream() {
                    self.upstream = Some(n);
                }
                match polled {
                    Ok(Some(reply)) => {
                        self.wake = None;
                        self.out = Out::Reply(Some(reply));
                        Progress::More
                    }
                    Ok(None) => {
                        self.wake = io.wake();
                        Progress::Wait
                    }
                    Err(_) => {
                        self.wake = None;
                        self.out = Out::Reply(Some(Reply::Ready(Response::error(500, None))));
                        Progress::More
                    }
                }
            }
            Out::Source(..) | Out::Body => self.send(cx),
        }
    }

    fn begin(&mut self, reply: Reply, cx: &mut StepCx<'_, '_>) -> Progress {
        match reply {
            Reply::Pending(t) => {
                self.out = Out::Task(t);
                Progress::More
            }
            Reply::Ready(resp) => {
                let sends_body = !self.head_only && allows_body(resp.status);
                let len = resp.body.len();
                let end = !sends_body || len == 0;
                self.write_head(&resp, Some(len), end, cx);
                if end {
                    self.finish_local(cx.env);
                    return Progress::More;
                }
                match resp.body {
                    Body::Static(b) => self.hold(b),
                    Body::Bytes(b) => {
                        self.held = b;
                        self.held_pos = 0;
                    }
                    Body::Shared(b) => self.hold(&b),
                    Body::File(f) => self.file = Some(f),
                    Body::Empty => {}
                }
                self.end_due = true;
                self.out = Out::Body;
                Progress::More
            }
            Reply::Stream(head, mut source) if head.status == 101 || head.status < 200 => {
                let _ = catch_unwind(AssertUnwindSafe(|| source.stop()));
                let resp = Response::error(502, Some("a switch of protocols over HTTP/2"));
                self.begin(Reply::Ready(resp), cx)
            }
            Reply::Stream(head, mut source) => {
                if self.head_only || !allows_body(head.status) {
                    let len = source.content_length();
                    self.write_head(&head, len, true, cx);
                    let _ = catch_unwind(AssertUnwindSafe(|| source.stop()));
                    self.finish_local(cx.env);
                    return Progress::More;
                }
                self.out = Out::Source(Some(Box::new(head)), source);
                Progress::More
            }
        }
    }

    fn hold(&mut self, b: &[u8]) {
        self.held.clear();
        self.held.extend_from_slice(b);
        self.held_pos = 0;
    }

    /// Encodes the response head as HEADERS (END_STREAM when nothing follows).
    fn write_head(
        &mut self,
        resp: &Response,
        len: Option<u64>,
        end: bool,
        cx: &mut StepCx<'_, '_>,
    ) {
        let mut block = std::mem::take(cx.block);
        block.clear();
        let enc = &mut *cx.enc;
        enc.begin(&mut block);
        enc.status(&mut block, resp.status);
        enc.indexed(&mut block, b"server", SERVER.as_bytes());
        enc.indexed(&mut block, b"date", cx.env.date);
        if let Some(ct) = &resp.content_type {
            enc.indexed(&mut block, b"content-type", ct.as_bytes());
        }
        for (n, v) in &resp.headers {
            if is_connection_specific(n) {
                continue;
            }
            enc.field(&mut block, n.as_bytes(), v.as_bytes());
        }
        for (n, v) in cx.extra {
            enc.indexed(&mut block, n.as_bytes(), v.as_bytes());
        }
        let sends_body = allows_body(resp.status);
        if let Some(n) = len.filter(|_| sends_body) {
            enc.field(
                &mut block,
                b"content-length",
                itoa::Buffer::new().format(n).as_bytes(),
            );
        }
        frame::headers(cx.out, self.id, &block, end, cx.max_frame);
        *cx.block = block;
        self.status = resp.status;
        self.promised = len.filter(|_| sends_body && !self.head_only);
        let streams = !end && sends_body && !self.head_only;
        self.ticket = cx.env.obs.served(&Served {
            req: Some(&self.head),
            peer: cx.env.peer,
            status: resp.status,
            body_len: if sends_body && !self.head_only {
                len.unwrap_or(0)
            } else {
                0
            },
            started: self.started,
            error: None,
            file: false,
            stream: streams,
            site: self.site,
            upstream: self.upstream.as_ref(),
        });
        self.told = streams;
    }

    /// The last frame is out.
    fn finish_local(&mut self, env: &mut Env<'_>) {
        if self.told {
            env.obs.stream_done(self.ticket, self.started, self.sent);
            self.told = false;
        }
        self.out = Out::Done;
        self.local_done = true;
        self.wake = None;
        self.blocked_since = None;
        self.held = Vec::new();
        self.held_pos = 0;
    }

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
    fn send(&mut self, cx: &mut StepCx<'_, '_>) -> Progress {
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
    pub(super) fn on_file_data(&mut self, data: &[u8], cx: &mut StepCx<'_, '_>) {
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

/// Fields HTTP/2 forbids in responses (RFC 9113 §8.2.2).
fn is_connection_specific(name: &str) -> bool {
    [
        "connection",
        "keep-alive",
        "proxy-connection",
        "transfer-encoding",
        "upgrade",
    ]
    .iter()
    .any(|c| name.eq_ignore_ascii_case(c))
}

/// Splits CRLF-terminated header lines (a listener's extra fields) into
/// lowercase name/value pairs.
pub(super) fn split_lines(lines: &[u8]) -> Vec<(Box<str>, Box<str>)> {
    String::from_utf8_lossy(lines)
        .split("\r\n")
        .filter_map(|l| l.split_once(':'))
        .map(|(n, v)| (n.trim().to_ascii_lowercase().into(), v.trim().into()))
        .collect()
}
