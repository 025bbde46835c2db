//! The write side of an exchange: encoding a ready response, polling a task
//! that answers later, and pulling a streamed body through its framing.

use std::panic::{AssertUnwindSafe, catch_unwind};
use std::time::Instant;

use super::conn::{Env, Exchange, OUT_HIGH_WATER, Observer, Served};
use super::encode::{
    Framing, Persist, allows_body, chunk, chunk_size, encode, encode_head, last_chunk,
};
use super::method::Method;
use super::request::Version;
use super::response::{Body, FileBody, Response};
use crate::exchange::{BodySource, Chunk, Io, Reply, Task};

/// An observer's handle on a streamed response, handed back when it ends.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Ticket(pub u32);

impl Ticket {
    /// No ticket: the observer keeps nothing for this response.
    pub const NONE: Ticket = Ticket(0);
}

/// A file range to send after the output, and what to report when it is out.
#[derive(Debug)]
pub struct FileStep {
    /// The range.
    pub body: FileBody,
    /// For a file response (not a piece of a stream): the observer's ticket
    /// and the request's start, for [`super::conn::Observer::stream_done`]
    /// once the last byte is handed over (or the connection ends first).
    pub done: Option<(Ticket, Instant)>,
}

/// What produces an exchange's response.
pub(super) enum Producing {
    /// A reply not started yet.
    Reply(Option<Reply>),
    /// A task that answers later.
    Task(Box<dyn Task>),
    /// A body being pulled from its source; the head is out.
    Stream(Box<StreamOut>),
    /// The response is complete (or there is none to produce).
    Done,
}

pub(super) struct StreamOut {
    /// The head, until it is written: it waits for the first piece while the
    /// request body is still arriving, so that a request body refused by its
    /// framing or limits can still be answered with an error status, and the
    /// head goes out with the first piece.
    head: Option<Box<Response>>,
    source: Box<dyn BodySource>,
    framing: Framing,
    /// Body bytes produced so far.
    sent: u64,
    /// A chunked file piece was announced: its CRLF comes before what follows.
    crlf_due: bool,
    ticket: Ticket,
    /// The last piece has been framed.
    ended: bool,
}

/// What driving an exchange asks of the connection.
pub(super) enum Drive {
    /// Progress was made: drive again.
    More,
    /// Nothing to do until input, a wake-up or a send completes.
    Wait,
    /// Send this file range after the output (then drive again).
    File(FileStep),
    /// Send this body piece after the output (then drive again).
    Send(Vec<u8>),
    /// Cut the connection: a body cannot be completed as promised.
    Close,
}

impl Producing {
    /// Whether the response head has been produced.
    pub(super) fn started(&self) -> bool {
        match self {
            Producing::Stream(s) => s.head.is_none(),
            Producing::Done => true,
            Producing::Reply(_) | Producing::Task(_) => false,
        }
    }

    pub(super) fn is_done(&self) -> bool {
        matches!(self, Producing::Done)
    }

    /// Reports a stream in progress as ended and stops whatever produces.
    pub(super) fn abandon(
        &mut self,
        obs: &mut dyn Observer,
        started: Instant,
        upstream_failure: Option<&'static str>,
    ) {
        if let Producing::Stream(s) = self
            && s.head.is_none()
        {
            if let Some(f) = upstream_failure {
                obs.stream_failed(s.ticket, f);
            }
            obs.stream_done(s.ticket, started, s.sent);
        }
        self.cancel();
    }

    /// Stops a task or source (the exchange will not finish).
    pub(super) fn cancel(&mut self) {
        match std::mem::replace(self, Producing::Done) {
            Producing::Task(mut t) => {
                let _ = catch_unwind(AssertUnwindSafe(|| t.cancel()));
            }
            Producing::Stream(mut s) => {
                let _ = catch_unwind(AssertUnwindSafe(|| s.source.stop()));
            }
            Producing::Reply(Some(Reply::Stream(_, mut src))) => {
                let _ = catch_unwind(AssertUnwindSafe(|| src.stop()));
            }
            Producing::Reply(Some(Reply::Pending(mut t))) => {
                let _ = catch_unwind(AssertUnwindSafe(|| t.cancel()));
            }
            Producing::Reply(_) | Producing::Done => {}
        }
    }
}

/// Makes what progress the exchange allows.
/// Body pieces of `send_apart` bytes or more (0: none) go out as
/// [`Drive::Send`].
pub(super) fn drive(
    ex: &mut Exchange,
    env: &mut Env<'_>,
    out: &mut Vec<u8>,
    send_apart: usize,
) -> Drive {
    match &mut ex.producing {
        Producing::Done => Drive::Wait,
        Producing::Reply(r) => {
            let reply = r.take().expect("a reply to start");
            begin(ex, reply, env, out)
        }
        Producing::Task(t) => {
            let mut io = Io::with_upstreams(env.now, env.waker, env.upstreams.as_deref_mut());
            let body = &mut ex.body;
            let polled = catch_unwind(AssertUnwindSafe(|| t.poll(&mut io, body)));
            if let Some(n) = io.take_upstream() {
                ex.upstream = Some(n);
            }
            match polled {
                Ok(Some(reply)) => {
                    ex.wake = None;
                    ex.producing = Producing::Reply(Some(reply));
                    Drive::More
                }
                Ok(None) => {
                    ex.wake = io.wake();
                    Drive::Wait
                }
                Err(_) => {
                    ex.wake = None;
                    ex.producing =
                        Producing::Reply(Some(Reply::Ready(Response::error(500, None).close())));
                    Drive::More
                }
            }
        }
        Producing::Stream(_) => pull(ex, env, out, send_apart),
    }
}

/// Whether an answer of `status` switches the connection to a tunnel: a
/// 101, or a 2xx to a CONNECT.
fn switches(ex: &Exchange, status: u16) -> bool {
    status == 101 || (ex.head.method == Method::Connect && (200..300).contains(&status))
}

fn persist_for(ex: &Exchange, resp: &Response, env: &Env<'_>, framing: Framing) -> Persist {
    // A CONNECT that was not switched ends the connection: what its client
    // sent after it was meant for a tunnel.
    let keep = ex.head.keep_alive
        && ex.head.method != Method::Connect
        && !resp.close
        && !env.draining
        && !matches!(framing, Framing::Close | Framing::Tunnel);
    match (keep, ex.head.version) {
        (false, _) => Persist::Close,
        (true, Version::Http10) => Persist::KeepAlive10,
        (true, Version::Http11 | Version::Http2) => Persist::KeepAlive,
    }
}

pub(super) fn begin(
    ex: &mut Exchange,
    reply: Reply,
    env: &mut Env<'_>,
    out: &mut Vec<u8>,
) -> Drive {
    match reply {
        Reply::Pending(task) => {
            ex.producing = Producing::Task(task);
            Drive::More
        }
        Reply::Ready(resp) => {
            let persist = persist_for(ex, &resp, env, Framing::Length(resp.body.len()));
            encode(
                out,
                &resp,
                env.date,
                env.extra_headers,
                persist,
                ex.head_only,
            );
            ex.persist = persist;
            // (Most often it is done already: only a reply the exchange
            // held is left to drop.)
            if !ex.producing.is_done() {
                ex.producing = Producing::Done;
            }
            let sends_body = !ex.head_only && allows_body(resp.status);
            let file = sends_body && matches!(&resp.body, Body::File(f) if f.len > 0);
            let ticket = env.obs.served(&Served {
                req: Some(&ex.head),
                peer: env.peer,
                status: resp.status,
                body_len: if sends_body { resp.body.len() } else { 0 },
                started: ex.started,
                error: None,
                file,
                stream: false,
                site: ex.site,
                upstream: ex.upstream.as_ref(),
                refused: ex.guarded.refused.as_ref(),
            });
            match resp.body {
                Body::File(body) if file => Drive::File(FileStep {
                    body,
                    done: Some((ticket, ex.started)),
                }),
                _ => Drive::More,
            }
        }
        Reply::Stream(head, mut source) if switches(ex, head.status) => {
            // Only a request that asked to switch, carried no body and is
            // not a HEAD may be switched (RFC 9110 §15.2.2); a CONNECT
            // switches on a 2xx (§9.3.6).
            let asked = if ex.head.method == Method::Connect {
                head.status != 101
            } else {
                ex.head.upgrade_requested().is_some()
            };
            if !asked
                || ex.head_only
                || ex.body.declared_len().is_some_and(|n| n > 0)
                || !ex.body.is_complete()
            {
                let _ = catch_unwind(AssertUnwindSafe(|| source.stop()));
                let resp = Response::error(502, Some("a switch of protocols nobody asked for"));
                return begin(ex, Reply::Ready(resp.close()), env, out);
            }
            // From here on the request body is what the client sends through.
            ex.body = crate::exchange::RequestBody::new(None);
            ex.tunnel = true;
            ex.producing = Producing::Stream(Box::new(StreamOut {
                head: Some(Box::new(head)),
                source,
                framing: Framing::Tunnel,
                sent: 0,
                crlf_due: false,
                ticket: Ticket::NONE,
                ended: false,
            }));
            Drive::More
        }
        Reply::Stream(head, source) => {
            let framing = match source.content_length() {
                Some(n) => Framing::Length(n),
                None if ex.head.version == Version::Http11 => Framing::Chunked,
                None => Framing::Close,
            };
            let mut s = Box::new(StreamOut {
                head: Some(Box::new(head)),
                source,
                framing,
                sent: 0,
                crlf_due: false,
                ticket: Ticket::NONE,
                ended: false,
            });
            let sends_body =
                !ex.head_only && s.head.as_ref().is_some_and(|h| allows_body(h.status));
            if sends_body {
                ex.producing = Producing::Stream(s);
            } else {
                write_head(ex, &mut s, env, out);
                let _ = catch_unwind(AssertUnwindSafe(|| s.source.stop()));
                ex.producing = Producing::Done;
            }
            Drive::More
        }
    }
}

/// Writes a stream's head (once) and tells the observer.
fn write_head(ex: &mut Exchange, s: &mut StreamOut, env: &mut Env<'_>, out: &mut Vec<u8>) {
    let Some(head) = s.head.take() else { return };
    let persist = persist_for(ex, &head, env, s.framing);
    encode_head(out, &head, env.date, env.extra_headers, persist, s.framing);
    ex.persist = persist;
    let sends_body = !ex.head_only && (allows_body(head.status) || s.framing == Framing::Tunnel);
    s.ticket = env.obs.served(&Served {
        req: Some(&ex.head),
        peer: env.peer,
        status: head.status,
        body_len: match s.framing {
            Framing::Length(n) if sends_body => n,
            _ => 0,
        },
        started: ex.started,
        error: None,
        file: false,
        stream: sends_body,
        site: ex.site,
        upstream: ex.upstream.as_ref(),
        refused: ex.guarded.refused.as_ref(),
    });
}

fn pull(ex: &mut Exchange, env: &mut Env<'_>, out: &mut Vec<u8>, send_apart: usize) -> Drive {
    let Producing::Stream(mut s) = std::mem::replace(&mut ex.producing, Producing::Done) else {
        unreachable!("pull without a stream")
    };
    let d = pull_from(ex, &mut s, env, out, send_apart);
    // The stream goes on unless pulling ended it (done, or replaced by an
    // error response before its head).
    if matches!(ex.producing, Producing::Done) && !s.ended {
        ex.producing = Producing::Stream(s);
    }
    d
}

fn pull_from(
    ex: &mut Exchange,
    s: &mut StreamOut,
    env: &mut Env<'_>,
    out: &mut Vec<u8>,
    send_apart: usize,
) -> Drive {
    if s.crlf_due {
        out.extend_from_slice(b"\r\n");
        s.crlf_due = false;
    }
    let max = OUT_HIGH_WATER.saturating_sub(out.len()).max(1024);
    let mut io = Io::with_upstreams(env.now, env.waker, env.upstreams.as_deref_mut());
    let body = &mut ex.body;
    let source = &mut s.source;
    let polled = catch_unwind(AssertUnwindSafe(|| source.poll_chunk(&mut io, body, max)));
    let wake = io.wake();
    if let Some(n) = io.take_upstream() {
        ex.upstream = Some(n);
    }
    let chunk = match polled {
        Ok(c) => c,
        // A panic before the head: a 500; after it, the body cannot be
        // completed.
        Err(_) if s.head.is_some() => {
            ex.producing = Producing::Reply(Some(Reply::Ready(Response::error(500, None).close())));
            return Drive::More;
        }
        Err(_) => return Drive::Close,
    };
    if s.head.is_some() {
        match chunk {
            // Nothing to say yet while the request body still arrives.
            Chunk::Pending if !ex.body.is_complete() && s.framing != Framing::Tunnel => {
                ex.wake = wake;
                return Drive::Wait;
            }
            Chunk::Failed(_) => {
                ex.producing =
                    Producing::Reply(Some(Reply::Ready(Response::error(500, None).close())));
                return Drive::More;
            }
            _ => write_head(ex, s, env, out),
        }
    }
    match chunk {
        // Unframed bytes into an empty output: the buffer itself goes out.
        Chunk::Bytes(mut b)
            if out.is_empty() && s.framing != Framing::Chunked && !overruns(s, b.len() as u64) =>
        {
            s.sent += b.len() as u64;
            std::mem::swap(out, &mut b);
            let _ = catch_unwind(AssertUnwindSafe(|| s.source.recycle(b)));
            Drive::More
        }
        // A large piece behind other output (the head, a chunk size) goes
        // out after it as it is, not copied.
        Chunk::Bytes(b)
            if send_apart > 0 && b.len() >= send_apart && !overruns(s, b.len() as u64) =>
        {
            if s.framing == Framing::Chunked {
                chunk_size(out, b.len() as u64);
                s.crlf_due = true;
            }
            s.sent += b.len() as u64;
            Drive::Send(b)
        }
        Chunk::Bytes(mut b) => {
            let d = emit(s, &b, out);
            b.clear();
            let _ = catch_unwind(AssertUnwindSafe(|| s.source.recycle(b)));
            d
        }
        Chunk::Static(b) => emit(s, b, out),
        Chunk::File(f) => {
            if f.len == 0 {
                return Drive::More;
            }
            if overruns(s, f.len) {
                return Drive::Close;
            }
            if s.framing == Framing::Chunked {
                chunk_size(out, f.len);
                s.crlf_due = true;
            }
            s.sent += f.len;
            Drive::File(FileStep {
                body: f,
                done: None,
            })
        }
        Chunk::Pending => {
            ex.wake = wake;
            Drive::Wait
        }
        Chunk::End => {
            if let Framing::Length(n) = s.framing
                && s.sent != n
            {
                // Shorter than promised: never a silently short body.
                return Drive::Close;
            }
            if s.framing == Framing::Chunked {
                let trailers =
                    catch_unwind(AssertUnwindSafe(|| s.source.trailers())).unwrap_or_default();
                last_chunk(out, &trailers);
            }
            env.obs.stream_done(s.ticket, ex.started, s.sent);
            ex.wake = None;
            s.ended = true;
            Drive::More
        }
        Chunk::Failed(_) => Drive::Close,
    }
}

fn overruns(s: &StreamOut, n: u64) -> bool {
    matches!(s.framing, Framing::Length(len) if s.sent + n > len)
}

fn emit(s: &mut StreamOut, b: &[u8], out: &mut Vec<u8>) -> Drive {
    if overruns(s, b.len() as u64) {
        return Drive::Close;
    }
    match s.framing {
        Framing::Chunked => chunk(out, b),
        Framing::Length(_) | Framing::Close | Framing::Tunnel => out.extend_from_slice(b),
    }
    s.sent += b.len() as u64;
    Drive::More
}
