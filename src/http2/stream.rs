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
    /// What the guards noted and hold (left when the stream ends).
    pub guarded: crate::guard::Guarded,
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
            guarded: Default::default(),
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
            if let Some(f) = self.upstream.as_ref().and_then(|u| u.failure) {
                obs.stream_failed(self.ticket, f);
            }
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
            refused: self.guarded.refused.as_ref(),
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

#[path = "stream_send.rs"]
mod send;
