//! The handler's side of the hub: starting an exchange, moving the request
//! body up and taking the response.

use std::time::Instant;

use super::{Cmd, Hub, UP_WINDOW};
use crate::exchange::{RequestBody, Waker};
use crate::http::client::ResponseHead;
use crate::upstream::balance::Pick;
use crate::upstream::exchange::{Exchange, ExchangeId, Failure, Phase, Ticket, UpBody};

/// What [`Hub::take_head`] found.
#[derive(Debug)]
pub enum HeadPoll {
    /// Not yet.
    Pending,
    /// The response head.
    Head(Box<ResponseHead>),
    /// No response: answer the client with the failure's status.
    Failed(Failure),
}

/// What [`Hub::take_body`] found.
#[derive(Debug, PartialEq, Eq)]
pub enum BodyPoll {
    /// Bytes were moved (or none are there yet: the exchange's connection is
    /// polled again when some come).
    More,
    /// The body is complete and everything was taken.
    End,
    /// The body cannot be completed.
    Failed(Failure),
}

/// What the handler says about an exchange it starts.
#[derive(Clone, Copy, Debug)]
pub struct Start<'a> {
    /// The group (its index from [`Hub::group_of`]).
    pub group: usize,
    /// The balancer's inputs.
    pub pick: &'a Pick<'a>,
    /// A HEAD request.
    pub head_request: bool,
    /// GET, HEAD, PUT, DELETE, OPTIONS, TRACE (RFC 9110 §9.2.2).
    pub idempotent: bool,
    /// How the request body goes up.
    pub body: UpBody,
    /// How far ahead of the client the response is read.
    pub window: usize,
    /// The connection to poll again when something happens.
    pub waker: Option<Waker>,
}

impl Hub {
    /// Starts an exchange: picks a server, and `head` encodes the request
    /// head for it (`head(server_name, out)`). Fails at once when no server
    /// is usable.
    pub fn start(
        &mut self,
        s: &Start<'_>,
        head: impl FnOnce(&str, &mut Vec<u8>),
        now: Instant,
    ) -> Result<Ticket, Failure> {
        let picked = self.pick_claimed(s.group, s.pick, now);
        let queue = match picked {
            Some(_) => None,
            None => Some(self.may_queue(s.group, now).ok_or(Failure::NoServer)?),
        };
        let server = picked.unwrap_or(0);
        let g = &mut self.groups[s.group];
        let mut bytes = Vec::with_capacity(512);
        head(g.shared.spec.servers[server].host_header(), &mut bytes);
        self.next_gen = self.next_gen.wrapping_add(1);
        let generation = self.next_gen;
        let index = self.exchanges.insert(Exchange {
            generation,
            group: s.group,
            server,
            conn: None,
            waker: s.waker,
            phase: Phase::Waiting,
            up_queue: bytes.clone(),
            head: bytes,
            head_request: s.head_request,
            idempotent: s.idempotent,
            up_body: s.body,
            handed: false,
            body_started: false,
            body_done: s.body == UpBody::None,
            resp: None,
            body: Vec::new(),
            rest: Vec::new(),
            attempts: 1,
            tried: Vec::new(),
            stale_retry: false,
            attempt_at: now,
            window: s.window,
            client_ip: s.pick.client_ip,
        });
        match queue {
            None => self.assign(index, server, false, now),
            Some(deadline) => {
                self.groups[s.group].queued.push((index, deadline));
                self.queue_at.get_or_insert(now + super::pooled::QUEUE_POLL);
            }
        }
        Ok(Ticket::new(
            ExchangeId {
                index: index as u32,
                generation,
            },
            self.dropped.clone(),
        ))
    }

    pub(super) fn exchange(&mut self, id: ExchangeId) -> Option<&mut Exchange> {
        self.exchanges
            .get_mut(id.index as usize)
            .filter(|e| e.generation == id.generation)
    }

    /// Moves request body bytes the client sent towards the upstream, while
    /// fewer than 64 KiB wait to go.
    pub fn forward(&mut self, t: &Ticket, body: &mut RequestBody) {
        let Some(e) = self.exchange(t.id) else { return };
        if e.body_done || matches!(e.phase, Phase::Failed(_)) {
            return;
        }
        // A tunnel carries nothing before the switch.
        if e.up_body.switches() && e.phase != Phase::Body {
            return;
        }
        let before = e.up_queue.len();
        while e.up_queue.len() < UP_WINDOW && body.available() > 0 {
            let room = UP_WINDOW - e.up_queue.len();
            match e.up_body {
                UpBody::Chunked => {
                    let n = body.available().min(room);
                    let piece = &body.peek()[..n];
                    crate::http::client::chunk(&mut e.up_queue, piece);
                    body.consume(n);
                }
                UpBody::Fcgi => {
                    let n = body.available().min(room);
                    let piece = &body.peek()[..n];
                    crate::fastcgi::record::stream(
                        &mut e.up_queue,
                        crate::fastcgi::record::STDIN,
                        piece,
                    );
                    body.consume(n);
                }
                _ => {
                    body.take_into(&mut e.up_queue, room);
                }
            }
        }
        if body.is_finished() && !e.up_body.switches() {
            e.body_done = true;
            if e.up_body == UpBody::Chunked {
                crate::http::client::last_chunk(&mut e.up_queue, &[]);
            }
            if e.up_body == UpBody::Fcgi {
                crate::fastcgi::record::stream(&mut e.up_queue, crate::fastcgi::record::STDIN, &[]);
            }
        }
        if e.up_queue.len() != before
            && let Some(c) = e.conn
            && let Some(id) = self.conns[c].id
        {
            self.cmds.push(Cmd::Touch(id));
        }
    }

    /// The response head, once it is there (taken once), or the failure.
    pub fn take_head(&mut self, t: &Ticket) -> HeadPoll {
        let Some(e) = self.exchange(t.id) else {
            return HeadPoll::Failed(Failure::Closed);
        };
        if let Some(h) = e.resp.take() {
            return HeadPoll::Head(h);
        }
        match e.phase {
            Phase::Failed(f) => HeadPoll::Failed(f),
            _ => HeadPoll::Pending,
        }
    }

    /// Moves the response body bytes that arrived into `into`.
    pub fn take_body(&mut self, t: &Ticket, into: &mut Vec<u8>) -> BodyPoll {
        let Some(e) = self.exchange(t.id) else {
            return BodyPoll::Failed(Failure::Closed);
        };
        let had = !e.body.is_empty();
        if into.is_empty() {
            std::mem::swap(into, &mut e.body);
        } else {
            into.append(&mut e.body);
        }
        // What came behind it is next.
        std::mem::swap(&mut e.body, &mut e.rest);
        let state = match e.phase {
            _ if !e.body.is_empty() => BodyPoll::More,
            Phase::Done => BodyPoll::End,
            Phase::Failed(f) => BodyPoll::Failed(f),
            _ => BodyPoll::More,
        };
        // Room was made: the connection may have more for us.
        if had
            && state == BodyPoll::More
            && let Some(c) = e.conn
            && let Some(id) = self.conns[c].id
        {
            self.cmds.push(Cmd::Touch(id));
        }
        state
    }

    /// The exchange a ticket names, while it is that one.
    fn live(&self, t: &Ticket) -> Option<&Exchange> {
        self.exchanges
            .get(t.id.index as usize)
            .filter(|e| e.generation == t.id.generation)
    }

    /// The index of the server an exchange went to (the last one tried).
    pub fn server_of(&self, t: &Ticket) -> Option<usize> {
        self.live(t).map(|e| e.server)
    }

    /// The server an exchange went to, as configured (for the access log).
    pub fn server_label(&self, t: &Ticket) -> Option<std::rc::Rc<str>> {
        let e = self.live(t)?;
        Some(
            self.groups
                .get(e.group)?
                .servers
                .get(e.server)?
                .label
                .clone(),
        )
    }

    /// Exchanges whose handler side is gone: their connections are released
    /// (closed when the response did not end), their slots freed.
    pub fn collect(&mut self) {
        let gone: Vec<ExchangeId> = match self.dropped.try_borrow_mut() {
            Ok(mut d) if !d.is_empty() => std::mem::take(&mut *d),
            _ => return,
        };
        for id in gone {
            if self.exchange(id).is_none() {
                continue;
            }
            let e = self.exchanges.remove(id.index as usize);
            self.groups[e.group]
                .queued
                .retain(|&(q, _)| q != id.index as usize);
            if let Some(c) = e.conn {
                self.finished(e.group, e.server, None);
                self.conns[c].exchange = None;
                self.close(c);
            }
        }
    }
}
