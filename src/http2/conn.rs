//! One HTTP/2 server connection, sans-IO: bytes and `now` in, frames out.
//! The same contract as the HTTP/1.1 codec ([`crate::http::Conn`]): the
//! driver feeds input and sends what lands in `out`; [`Step::ReadFile`]
//! asks it to read a file piece and hand it back with [`H2Conn::file_data`].

use std::collections::VecDeque;
use std::time::{Duration, Instant};

use super::Settings;
use super::frame::{self, Code, Head, flag, kind, setting};
use super::hpack::{Decoder, Encoder};
use super::request::{Fields, build};
use super::stream::{Out, Progress, StepCx, Stream, split_lines};
use crate::exchange::{Io, Reply, RequestBody};
use crate::http::conn::OUT_HIGH_WATER;
use crate::http::{Admit, Env, Error, Method, Observer, Response, Service, Step, Waiting};

/// Most frames one header block may span (HEADERS and CONTINUATIONs).
const MAX_BLOCK_FRAMES: u32 = 64;
/// Streams we reset whose late frames are ignored rather than answered.
const RECENT_RESETS: usize = 64;

/// A header block being collected from HEADERS and CONTINUATION frames.
#[derive(Debug)]
struct Block {
    stream: u32,
    end_stream: bool,
    buf: Vec<u8>,
    frames: u32,
}

/// Where the connection is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Phase {
    /// Waiting for the client preface.
    Preface,
    /// The preface is in; the first frame must be SETTINGS.
    FirstSettings,
    Open,
    /// Finished: input is ignored.
    Closed,
}

/// Per-second budgets against floods.
#[derive(Debug)]
struct Budget {
    since: Instant,
    resets: u32,
    control: u32,
}

/// One HTTP/2 connection's protocol state.
pub struct H2Conn {
    cfg: Settings,
    phase: Phase,
    rbuf: Vec<u8>,
    /// When unprocessed input (a partial frame or header block) began.
    partial_since: Option<Instant>,
    dec: Decoder,
    enc: Encoder,
    fields: Fields,
    block: Option<Block>,
    // Boxed: streams are moved in and out cheaply.
    #[allow(clippy::vec_box)]
    streams: Vec<Box<Stream>>,
    /// The highest stream a client opened (streams above it are idle).
    last_stream: u32,
    /// Streams we reset lately: their late frames are dropped.
    reset_recent: VecDeque<u32>,
    /// Streams that ended lately (a HEADERS on one is `STREAM_CLOSED`; on
    /// a lower number never opened, `PROTOCOL_ERROR`).
    closed_recent: VecDeque<u32>,
    /// What the client may still send on the connection.
    recv_window: i64,
    /// Body bytes consumed (taken or dropped) not yet credited.
    recv_unacked: i64,
    send_window: i64,
    /// The client's settings.
    peer_max_frame: usize,
    peer_initial_window: i64,
    /// Our settings have gone out.
    settings_sent: bool,
    /// A GOAWAY has gone out: no new streams.
    goaway_sent: bool,
    /// The client sent GOAWAY.
    peer_goaway: bool,
    error: Option<Error>,
    budget: Budget,
    /// A file read is in flight for this stream.
    reading: Vec<u32>,
    /// Reads asked for beyond the one a step names, for the driver to take.
    wanted: Vec<super::FileRead>,
    /// Reads the driver started and has not handed back.
    issued: u8,
    /// The read asked for, with the buffer the driver gave it, until the
    /// driver starts it.
    pub staged: Vec<(super::FileRead, Vec<u8>)>,
    /// Where the next round of stream steps starts.
    rr: usize,
    /// Response header blocks are encoded here.
    block_buf: Vec<u8>,
    /// Finished streams kept for their buffers.
    #[allow(clippy::vec_box)]
    spare: Vec<Box<Stream>>,
    /// The listener's extra response fields.
    extra: Vec<(Box<str>, Box<str>)>,
    extra_src: Vec<u8>,
}

impl std::fmt::Debug for H2Conn {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("H2Conn")
            .field("phase", &self.phase)
            .field("streams", &self.streams.len())
            .field("buffered", &self.rbuf.len())
            .finish_non_exhaustive()
    }
}

impl H2Conn {
    /// A connection whose client preface is still to come (`preface_seen`:
    /// it was already consumed, as by an `Upgrade: h2c`).
    pub fn new(cfg: &Settings, now: Instant) -> H2Conn {
        H2Conn {
            dec: Decoder::new(4096),
            enc: Encoder::new(),
            phase: Phase::Preface,
            rbuf: Vec::new(),
            partial_since: None,
            fields: Fields::default(),
            block: None,
            streams: Vec::new(),
            last_stream: 0,
            reset_recent: VecDeque::new(),
            closed_recent: VecDeque::new(),
            recv_window: frame::DEFAULT_WINDOW as i64,
            recv_unacked: 0,
            send_window: frame::DEFAULT_WINDOW as i64,
            peer_max_frame: frame::DEFAULT_MAX_FRAME as usize,
            peer_initial_window: frame::DEFAULT_WINDOW as i64,
            settings_sent: false,
            goaway_sent: false,
            peer_goaway: false,
            error: None,
            budget: Budget {
                since: now,
                resets: 0,
                control: 0,
            },
            reading: Vec::new(),
            wanted: Vec::new(),
            issued: 0,
            staged: Vec::new(),
            rr: 0,
            spare: Vec::new(),
            block_buf: Vec::new(),
            extra: Vec::new(),
            extra_src: Vec::new(),
            cfg: cfg.clone(),
        }
    }

    /// Streams open now.
    pub fn open_streams(&self) -> usize {
        self.streams.len()
    }

    /// Feeds input, answering what it completes, and goes on with the
    /// streams' responses (also the call after a send or a wake-up: no input).
    pub fn feed<S: Service + ?Sized>(
        &mut self,
        input: &[u8],
        svc: &mut S,
        env: &mut Env<'_>,
        out: &mut Vec<u8>,
    ) -> Step {
        if self.phase == Phase::Closed {
            return Step::Close;
        }
        if !self.settings_sent {
            self.send_settings(out);
        }
        // (Lengths first: most connections have none, and this runs for
        // every piece of every response.)
        if self.extra_src.len() != env.extra_headers.len()
            || (!self.extra_src.is_empty() && self.extra_src != env.extra_headers)
        {
            self.extra_src = env.extra_headers.to_vec();
            self.extra = split_lines(env.extra_headers);
        }
        if let Err((code, why)) = self.process(input, svc, env, out) {
            return self.fail(code, why, env, out);
        }
        self.after(env, out)
    }

    /// Keeps input for later (while output is being sent).
    pub fn buffer(&mut self, input: &[u8]) -> usize {
        if self.phase != Phase::Closed {
            self.rbuf.extend_from_slice(input);
        }
        self.rbuf.len()
    }

    /// Bytes of input held.
    pub fn buffered(&self) -> usize {
        self.rbuf.len()
    }

    /// Most file reads asked for at once.
    pub const MAX_READS: usize = 8;

    /// Another read asked for with the last [`Step::ReadFile`].
    pub fn take_wanted_read(&mut self) -> Option<super::FileRead> {
        self.wanted.pop()
    }

    /// Keeps a read and its buffer until the driver starts it.
    pub fn stage_read(&mut self, r: super::FileRead, buf: Vec<u8>) {
        self.staged.push((r, buf));
    }

    /// A staged read to start now.
    pub fn start_staged_read(&mut self) -> Option<(super::FileRead, Vec<u8>)> {
        let r = self.staged.pop()?;
        self.issued += 1;
        Some(r)
    }

    /// Whether a started read has not come back.
    pub fn reads_in_flight(&self) -> bool {
        self.issued > 0
    }

    /// A file piece asked for with [`Step::ReadFile`] for stream `tag` was
    /// read.
    pub fn file_data<S: Service + ?Sized>(
        &mut self,
        tag: u32,
        data: &[u8],
        svc: &mut S,
        env: &mut Env<'_>,
        out: &mut Vec<u8>,
    ) -> Step {
        self.issued = self.issued.saturating_sub(1);
        if let Some(k) = self.reading.iter().position(|r| *r == tag) {
            self.reading.swap_remove(k);
        }
        if let Some(i) = self.find(tag) {
            let mut cx = StepCx {
                env,
                enc: &mut self.enc,
                out,
                conn_window: &mut self.send_window,
                max_frame: self.peer_max_frame,
                extra: &self.extra,
                block: &mut self.block_buf,
            };
            self.streams[i].on_file_data(data, &mut cx);
        }
        self.feed(&[], svc, env, out)
    }

    /// What the connection waits for.
    pub fn waiting(&self) -> Waiting {
        if self.phase == Phase::Closed {
            return Waiting::Done;
        }
        if let Some(t) = self.streams.iter().filter_map(|s| s.blocked_since).min() {
            return Waiting::Stalled(t);
        }
        // A request body the client owes (and the handler has room for).
        if let Some(t) = self
            .streams
            .iter()
            .filter(|s| !(s.remote_done || s.keep_body && s.body.room() == 0))
            .map(|s| s.last_data)
            .min()
        {
            return Waiting::Body(t);
        }
        if !self.streams.is_empty() {
            return Waiting::Handler;
        }
        match self.partial_since {
            Some(t) => Waiting::Head(t),
            None => Waiting::Idle,
        }
    }

    /// When a stream's task or source asked to be polled again.
    pub fn wake_at(&self) -> Option<Instant> {
        self.streams.iter().filter_map(|s| s.wake).min()
    }

    /// Whether the connection is finished.
    pub fn is_closed(&self) -> bool {
        self.phase == Phase::Closed
    }

    /// The protocol error that ended the connection, if one did.
    pub fn error(&self) -> Option<Error> {
        self.error
    }

    /// A deadline passed: the connection goes away.
    pub fn timeout(&mut self, env: &mut Env<'_>, out: &mut Vec<u8>) -> Step {
        if let Waiting::Head(_) | Waiting::Body(_) = self.waiting() {
            self.error = Some(match self.waiting() {
                Waiting::Head(_) => Error::HeadersTimeout,
                _ => Error::BodyTimeout,
            });
        }
        if self.settings_sent {
            frame::goaway(out, self.last_stream, Code::NoError, b"timeout");
        }
        self.abandon(env.obs);
        self.finish();
        Step::Close
    }

    /// Whether closing needs a lingering close.
    pub fn needs_linger(&self) -> bool {
        self.error.is_some() || !self.rbuf.is_empty()
    }

    /// Stops taking streams; the caller closes.
    pub fn finish(&mut self) {
        self.phase = Phase::Closed;
        self.rbuf = Vec::new();
        self.block = None;
        for s in &mut self.streams {
            s.local_done = true;
        }
        self.streams.clear();
    }

    /// The connection is going away: streams in progress are reported and
    /// their producers stopped.
    pub fn abandon(&mut self, obs: &mut dyn Observer) {
        for s in &mut self.streams {
            s.abandon(obs);
        }
    }

    // ---- input ---------------------------------------------------------------

    fn send_settings(&mut self, out: &mut Vec<u8>) {
        let c = &self.cfg;
        frame::settings(
            out,
            &[
                (setting::MAX_CONCURRENT_STREAMS, c.max_concurrent_streams),
                (setting::INITIAL_WINDOW_SIZE, c.initial_stream_window),
                (setting::MAX_FRAME_SIZE, c.max_frame_size),
                (setting::MAX_HEADER_LIST_SIZE, c.max_header_list_size),
                (setting::ENABLE_PUSH, 0),
            ],
        );
        let more = c.initial_connection_window as i64 - frame::DEFAULT_WINDOW as i64;
        if more > 0 {
            frame::window_update(out, 0, more as u32);
            self.recv_window += more;
        }
        self.settings_sent = true;
    }

    /// A stream for `id`: a finished one reused, or a new one.
    pub(super) fn new_stream(&mut self, id: u32, now: Instant) -> Box<Stream> {
        let (recv, send) = (
            self.cfg.initial_stream_window as i64,
            self.peer_initial_window,
        );
        match self.spare.pop() {
            Some(mut s) => {
                s.reuse(id, now, recv, send);
                s
            }
            None => Box::new(Stream::new(id, now, recv, send)),
        }
    }

    /// Keeps a finished stream for reuse.
    pub(super) fn recycle(&mut self, mut s: Box<Stream>) {
        s.guarded.clear();
        if self.spare.len() < (self.cfg.max_concurrent_streams as usize).min(64) && s.out_done() {
            self.spare.push(s);
        }
    }

    // ---- output --------------------------------------------------------------

    /// Drives the streams, credits what was consumed, retires finished
    /// streams, and says what the driver does next.
    fn after(&mut self, env: &mut Env<'_>, out: &mut Vec<u8>) -> Step {
        let read = self.drive(env, out);
        self.credit(out);
        self.retire(env, out);
        if env.draining && !self.goaway_sent {
            frame::goaway(out, self.last_stream, Code::NoError, b"");
            self.goaway_sent = true;
        }
        if let Some(r) = read {
            return Step::ReadFile(r);
        }
        if self.goaway_sent && self.streams.is_empty() {
            self.finish();
            return Step::Close;
        }
        if out.len() >= OUT_HIGH_WATER {
            Step::Flush
        } else {
            Step::NeedInput
        }
    }

    /// A connection error: GOAWAY with the code, and the connection ends.
    fn fail(
        &mut self,
        code: Code,
        why: &'static str,
        env: &mut Env<'_>,
        out: &mut Vec<u8>,
    ) -> Step {
        if self.phase != Phase::Preface {
            frame::goaway(out, self.last_stream, code, why.as_bytes());
        }
        self.error = Some(if code == Code::EnhanceYourCalm {
            Error::Http2Flood
        } else {
            Error::Http2Protocol
        });
        self.abandon(env.obs);
        self.finish();
        Step::Close
    }
}

/// Keeps `id` among the last few.
fn remember(list: &mut VecDeque<u32>, id: u32) {
    list.push_back(id);
    if list.len() > RECENT_RESETS {
        list.pop_front();
    }
}

/// The payload without its padding (§6.1, §6.2).
fn unpad(h: Head, p: &[u8]) -> Result<&[u8], (Code, &'static str)> {
    if !h.has(flag::PADDED) {
        return Ok(p);
    }
    let Some((&pad, rest)) = p.split_first() else {
        return Err((Code::FrameSize, "a padded frame without its pad length"));
    };
    if pad as usize >= p.len() {
        return Err((Code::Protocol, "padding as long as the frame"));
    }
    Ok(&rest[..rest.len() - pad as usize])
}

/// The stream a PRIORITY payload depends on.
fn dependency(p: &[u8]) -> u32 {
    u32::from_be_bytes([p[0], p[1], p[2], p[3]]) & 0x7fff_ffff
}

/// Calls the service, answering 500 if it panics.
fn call<S: Service + ?Sized>(
    svc: &mut S,
    req: &crate::exchange::RequestHead,
    io: &mut Io,
) -> Reply {
    match std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| svc.call(req, io))) {
        Ok(r) => r,
        Err(_) => Reply::Ready(Response::error(500, None)),
    }
}

#[path = "conn_input.rs"]
mod input;

#[path = "conn_output.rs"]
mod output;

#[path = "conn_control.rs"]
mod control;
