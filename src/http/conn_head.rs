//! A request head has arrived: the exchange is set up, the service asked
//! (first whether it takes the body, then for its reply) and the body's
//! reading begins.

use super::*;

impl Conn {
    pub(super) fn on_head<S: Service + ?Sized>(
        &mut self,
        head: Head<'_>,
        at: Arrival,
        svc: &mut S,
        env: &mut Env<'_>,
        out: &mut Vec<u8>,
    ) -> Option<FileStep> {
        let Arrival {
            more_input,
            started,
        } = at;
        let mut ex = env.pool.take().unwrap_or_else(|| {
            Box::new(Exchange {
                head: RequestHead::default(),
                body: RequestBody::default(),
                started,
                persist: Persist::KeepAlive,
                head_only: false,
                producing: Producing::Done,
                wake: None,
                site: None,
                tunnel: false,
                upstream: None,
                guarded: Default::default(),
            })
        });
        fill_head(&mut ex.head, &head.req, env);
        svc.prepare(&mut ex.head);
        ex.started = started;
        ex.head_only = head.req.method == Method::Head;
        ex.wake = None;
        ex.site = None;
        ex.tunnel = false;
        ex.upstream = None;
        ex.guarded.clear();
        ex.persist = Persist::KeepAlive;
        // (A pooled exchange is done producing: the pool takes no other.)
        debug_assert!(ex.producing.is_done());
        self.read = Reading::ExpectHead { since: None };
        let req = &ex.head;
        if req.method == Method::Options && req.target() == "*" {
            let allow = svc.methods().with(Method::Options).allow_header();
            let resp = Response::new(200).header("Allow", allow);
            ex.body = RequestBody::empty();
            self.ex = Some(ex);
            return self.start(Reply::Ready(resp), env, out);
        }
        if req.method == Method::Connect {
            // Only a proxy route that enables it takes a CONNECT, and a
            // CONNECT has no content (RFC 9110 §9.3.6).
            let methods = svc.methods();
            let refusal = if !methods.contains(Method::Connect) {
                Some(
                    Response::error(405, Some("CONNECT is not supported"))
                        .header("Allow", methods.allow_header()),
                )
            } else if !matches!(head.framing, Framing::None | Framing::Length(0)) {
                Some(Response::error(
                    400,
                    Some("a CONNECT request has no content"),
                ))
            } else {
                None
            };
            if let Some(resp) = refusal {
                ex.body = RequestBody::empty();
                self.ex = Some(ex);
                return self.start(Reply::Ready(resp.close()), env, out);
            }
        }
        // (A CONNECT's `Content-Length: 0` frames nothing.)
        let framing = if req.method == Method::Connect {
            Framing::None
        } else {
            head.framing
        };
        let mut decoder = match framing {
            Framing::None => {
                ex.body = RequestBody::empty();
                let mut io = Io::with_upstreams(env.now, env.waker, env.upstreams.as_deref_mut())
                    .with_guarded(std::mem::take(&mut ex.guarded));
                let reply = call(svc, &ex.head, &mut io);
                ex.wake = io.wake();
                ex.site = io.site();
                ex.upstream = io.take_upstream();
                ex.guarded = io.take_guarded();
                self.ex = Some(ex);
                if io.aborted() {
                    return self.abort_exchange(reply, env);
                }
                return self.start(reply, env, out);
            }
            Framing::Length(n) => Decoder::length(n),
            Framing::Chunked => Decoder::chunked(
                env.limits.max_request_body_size,
                env.limits.max_request_headers_total_size,
            ),
        };
        ex.body = RequestBody::new(decoder.remaining_hint());
        let mut io = Io::with_upstreams(env.now, env.waker, env.upstreams.as_deref_mut())
            .with_guarded(std::mem::take(&mut ex.guarded));
        let (keep, reply) = match svc.check(&ex.head, &mut io) {
            Admit::Answer(resp) => {
                // A client waiting for 100 Continue will not send the body; others
                // will, and it is read and dropped.
                let resp = if head.expect_continue && !more_input {
                    resp.close()
                } else {
                    resp
                };
                (false, Reply::Ready(resp))
            }
            admit => {
                if head.expect_continue && !more_input {
                    out.extend_from_slice(CONTINUE);
                }
                let reply = call(svc, &ex.head, &mut io);
                ex.wake = io.wake();
                (matches!(admit, Admit::Read), reply)
            }
        };
        ex.site = io.site();
        ex.upstream = io.take_upstream();
        ex.guarded = io.take_guarded();
        if let Some(max) = ex.guarded.max_body {
            decoder.limit(max);
        }
        let aborted = io.aborted();
        self.read = Reading::Body(Box::new(BodyRead {
            decoder,
            last: env.now,
            started,
            keep,
        }));
        self.ex = Some(ex);
        if aborted {
            return self.abort_exchange(reply, env);
        }
        self.start(reply, env, out)
    }
}

impl Conn {
    /// The service said not to answer: the reply is stopped unstarted, the
    /// exchange is logged as nginx's 444 (no response), and the connection
    /// closes.
    fn abort_exchange(&mut self, reply: Reply, env: &mut Env<'_>) -> Option<FileStep> {
        let ex = self.ex.as_mut().expect("exchange");
        match reply {
            Reply::Pending(mut t) => t.cancel(),
            Reply::Stream(_, mut source) => source.stop(),
            _ => {}
        }
        ex.producing = Producing::Done;
        env.obs.served(&Served {
            req: Some(&ex.head),
            peer: env.peer,
            status: 444,
            body_len: 0,
            started: ex.started,
            error: None,
            file: false,
            stream: false,
            site: ex.site,
            upstream: None,
            refused: ex.guarded.refused.as_ref(),
        });
        ex.persist = Persist::Close;
        None
    }
}

/// Copies a parsed head into an owned one (reusing its buffers).
fn fill_head(dst: &mut RequestHead, src: &Request<'_>, env: &Env<'_>) {
    src.fill(dst);
    dst.peer = env.peer;
    dst.listener = env.listener;
    dst.tls = env.tls.cloned();
}

/// Calls the service, answering 500 if it panics.
fn call<S: Service + ?Sized>(svc: &mut S, req: &RequestHead, io: &mut Io) -> Reply {
    match std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| svc.call(req, io))) {
        Ok(r) => r,
        Err(_) => Reply::Ready(Response::error(500, None).close()),
    }
}
