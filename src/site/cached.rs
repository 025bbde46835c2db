//! The moving parts of a route's cache ([`super::cache`]): a body copied
//! into the store as it is sent ([`Capture`]), a pending answer taken when
//! it comes ([`Later`]), a miss waiting for another's fill ([`WaitFill`]),
//! a revalidation in the background ([`Refresh`]), and a change to a head
//! that comes later ([`OnHead`]).

use std::cell::RefCell;
use std::rc::Rc;
use std::time::Instant;

use super::cache::{Fill, RouteCache};
use crate::cache::{Handle, Job, Store, Stored};
use crate::exchange::{BodySource, Chunk, Io, Reply, RequestBody, RequestHead, Task};
use crate::http::Response;
use crate::http::response::Text;

/// A streamed body copied into the store as it goes to the client; stored
/// when it is complete, dropped when it grows past the largest object or
/// the client goes away.
pub(super) struct Capture {
    inner: Box<dyn BodySource>,
    store: Rc<RefCell<Store>>,
    key: String,
    /// This exchange holds the key's fill.
    locked: bool,
    /// The response without its body, until it is stored.
    pending: Option<Stored>,
    body: Vec<u8>,
    max: u64,
}

impl Capture {
    pub(super) fn new(
        inner: Box<dyn BodySource>,
        store: Rc<RefCell<Store>>,
        key: String,
        locked: bool,
        pending: Stored,
        max: u64,
    ) -> Capture {
        Capture {
            inner,
            store,
            key,
            locked,
            pending: Some(pending),
            body: Vec::new(),
            max,
        }
    }

    fn take(&mut self, bytes: &[u8]) {
        if self.pending.is_none() {
            return;
        }
        if (self.body.len() + bytes.len()) as u64 > self.max {
            self.abandon();
        } else {
            self.body.extend_from_slice(bytes);
        }
    }

    fn abandon(&mut self) {
        self.pending = None;
        self.body = Vec::new();
        self.release();
    }

    fn release(&mut self) {
        if std::mem::take(&mut self.locked) {
            self.store.borrow_mut().unlock(&self.key);
        }
    }
}

impl BodySource for Capture {
    fn content_length(&self) -> Option<u64> {
        self.inner.content_length()
    }

    fn poll_chunk(&mut self, io: &mut Io, body: &mut RequestBody, max: usize) -> Chunk {
        let c = self.inner.poll_chunk(io, body, max);
        match &c {
            Chunk::Bytes(b) => self.take(b),
            Chunk::Static(b) => self.take(b),
            Chunk::File(_) | Chunk::Failed(_) => self.abandon(),
            Chunk::Pending => {}
            Chunk::End => {
                if let Some(mut p) = self.pending.take() {
                    p.body = std::mem::take(&mut self.body).into();
                    self.store.borrow_mut().insert(&self.key, p);
                }
                self.release();
            }
        }
        c
    }

    fn trailers(&mut self) -> Vec<(Text, Text)> {
        self.inner.trailers()
    }

    fn stop(&mut self) {
        self.abandon();
        self.inner.stop();
    }

    fn recycle(&mut self, buf: Vec<u8>) {
        self.inner.recycle(buf);
    }
}

impl Drop for Capture {
    fn drop(&mut self) {
        self.release();
    }
}

/// A forwarded request's answer, taken by the cache when it comes.
pub(super) struct Later {
    pub task: Box<dyn Task>,
    pub fill: Option<Fill>,
    pub cache: Rc<RouteCache>,
}

impl Task for Later {
    fn poll(&mut self, io: &mut Io, body: &mut RequestBody) -> Option<Reply> {
        let reply = self.task.poll(io, body)?;
        let fill = self.fill.take()?;
        Some(self.cache.on_reply(reply, fill, io))
    }

    fn cancel(&mut self) {
        self.task.cancel();
        self.release();
    }
}

impl Later {
    fn release(&mut self) {
        if let Some(f) = self.fill.take() {
            let mut store = self.cache.store.borrow_mut();
            if f.locked {
                store.unlock(&f.key);
            }
            if let Some((h, _)) = f.stale {
                store.end_refresh(h);
            }
        }
    }
}

impl Drop for Later {
    fn drop(&mut self) {
        self.release();
    }
}

/// A miss waiting for another exchange's fill of its key.
pub(super) struct WaitFill {
    cache: Rc<RouteCache>,
    req: Box<RequestHead>,
    key: String,
    until: Instant,
}

impl WaitFill {
    pub(super) fn new(
        cache: Rc<RouteCache>,
        req: Box<RequestHead>,
        key: String,
        until: Instant,
    ) -> WaitFill {
        WaitFill {
            cache,
            req,
            key,
            until,
        }
    }
}

impl Task for WaitFill {
    fn poll(&mut self, io: &mut Io, _body: &mut RequestBody) -> Option<Reply> {
        let now = io.now();
        if now < self.until {
            let mut store = self.cache.store.borrow_mut();
            if store.locked(&self.key) {
                if let Some(w) = io.waker() {
                    store.wait(&self.key, w);
                }
                io.wake_at(self.until);
                return None;
            }
        }
        // The fill ended (or took too long): look again; a second miss
        // forwards without waiting again.
        let timed_out = now >= self.until;
        let cache = self.cache.clone();
        Some(cache.lookup(&self.req, io, !timed_out, true))
    }
}

/// A stale response revalidated in the background while it is served
/// (`stale_while_revalidate`): the request is forwarded with its
/// validators and the answer stored as any other.
pub(super) struct Refresh {
    cache: Rc<RouteCache>,
    req: Box<RequestHead>,
    key: String,
    stale: Option<(Handle, Rc<Stored>)>,
    handle: Handle,
    task: Option<Box<dyn Task>>,
    source: Option<Box<dyn BodySource>>,
    body: RequestBody,
}

impl Refresh {
    pub(super) fn new(
        cache: Rc<RouteCache>,
        req: Box<RequestHead>,
        key: String,
        stale: (Handle, Rc<Stored>),
    ) -> Refresh {
        Refresh {
            cache,
            req,
            key,
            handle: stale.0,
            stale: Some(stale),
            task: None,
            source: None,
            body: RequestBody::empty(),
        }
    }

    /// Takes a reply; `true` when nothing is left to do.
    fn take(&mut self, reply: Reply) -> bool {
        match reply {
            Reply::Ready(_) => true,
            Reply::Stream(_, s) => {
                self.source = Some(s);
                false
            }
            Reply::Pending(t) => {
                self.task = Some(t);
                false
            }
        }
    }
}

impl Job for Refresh {
    fn poll(&mut self, io: &mut Io) -> bool {
        if let Some(stale) = self.stale.take() {
            let cache = self.cache.clone();
            let r = cache.revalidate(&self.req, io, std::mem::take(&mut self.key), stale);
            if self.take(r) {
                return self.done();
            }
        }
        for _ in 0..64 {
            if let Some(t) = self.task.as_mut() {
                match t.poll(io, &mut self.body) {
                    None => return false,
                    Some(r) => {
                        self.task = None;
                        if self.take(r) {
                            return self.done();
                        }
                    }
                }
            }
            if let Some(s) = self.source.as_mut() {
                match s.poll_chunk(io, &mut self.body, 64 * 1024) {
                    Chunk::Pending => return false,
                    Chunk::End | Chunk::Failed(_) | Chunk::File(_) => {
                        if let Some(mut s) = self.source.take() {
                            s.stop();
                        }
                        return self.done();
                    }
                    Chunk::Bytes(b) => s.recycle(b),
                    Chunk::Static(_) => {}
                }
            }
        }
        io.wake_at(io.now());
        false
    }
}

impl Refresh {
    fn done(&mut self) -> bool {
        self.cache.store.borrow_mut().end_refresh(self.handle);
        true
    }
}

/// Applies a change to a reply's head, now or when it comes.
pub(super) struct OnHead<F: FnOnce(Response) -> Response> {
    task: Box<dyn Task>,
    f: Option<F>,
}

impl<F: FnOnce(Response) -> Response + 'static> OnHead<F> {
    /// `reply` with `f` applied to its head.
    pub(super) fn map(reply: Reply, f: F) -> Reply {
        match reply {
            Reply::Ready(r) => Reply::Ready(f(r)),
            Reply::Stream(r, s) => Reply::Stream(f(r), s),
            Reply::Pending(task) => Reply::Pending(Box::new(OnHead { task, f: Some(f) })),
        }
    }
}

impl<F: FnOnce(Response) -> Response + 'static> Task for OnHead<F> {
    fn poll(&mut self, io: &mut Io, body: &mut RequestBody) -> Option<Reply> {
        let reply = self.task.poll(io, body)?;
        Some(match self.f.take() {
            Some(f) => OnHead::map(reply, f),
            None => reply,
        })
    }

    fn cancel(&mut self) {
        self.task.cancel();
    }
}
