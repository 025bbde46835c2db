//! The reverse proxy handler (`handler = "proxy"`): a request goes to a
//! server of an `[[upstream]]` group through the worker's upstream engine
//! ([`crate::upstream::Hub`]), its body streaming up as it arrives, and the
//! response streams back as the upstream sends it.
//!
//! The handler answers [`Reply::Pending`]; the task forwards the request
//! body and waits for the response head, then becomes a [`BodySource`] that
//! forwards the response body. Both hold the exchange's [`Ticket`]: whatever
//! ends them (the response done, the client gone, a panic) tells the hub,
//! which closes an upstream connection left mid-response.

pub mod headers;

use std::net::IpAddr;
use std::rc::Rc;
use std::sync::Arc;

use headers::{BodyFraming, Forward};

use super::{Ctx, Handler};
use crate::exchange::{BodySource, Chunk, Io, Reply, RequestBody, RequestHead, Task, UpstreamNote};
use crate::http::{Method, Methods, Response};
use crate::upstream::balance::Pick;
use crate::upstream::spec::{Policy, ProxySpec};
use crate::upstream::{BodyPoll, Failure, HeadPoll, Start, Ticket, UpBody, Upstream, sticky};

/// The name this server gives itself in `Via`.
const VIA_NAME: &str = "peregrine";

/// Proxies a route's requests to an upstream group.
#[derive(Debug)]
pub struct Proxy {
    spec: Rc<ProxySpec>,
    upstream: Arc<Upstream>,
}

impl Proxy {
    /// A proxy to `upstream` with the route's settings.
    pub fn new(spec: ProxySpec, upstream: Arc<Upstream>) -> Proxy {
        Proxy {
            spec: Rc::new(spec),
            upstream,
        }
    }
}

/// The answer when nothing came from upstream; the access log says why.
pub(crate) fn failed(f: Failure, io: &mut Io, server: Option<Rc<str>>) -> Reply {
    io.set_upstream(UpstreamNote {
        server,
        failure: Some(f.name()),
    });
    Reply::Ready(Response::error(f.status(), Some(&f.to_string())))
}

/// The value of cookie `name` in the request's `Cookie` fields.
fn cookie<'r>(req: &'r RequestHead, name: &str) -> Option<&'r [u8]> {
    req.headers()
        .filter(|(n, _)| n.eq_ignore_ascii_case("cookie"))
        .flat_map(|(_, v)| v.split(|b| *b == b';'))
        .find_map(|pair| {
            let pair = pair.trim_ascii();
            let eq = pair.iter().position(|b| *b == b'=')?;
            (pair[..eq].trim_ascii() == name.as_bytes()).then(|| pair[eq + 1..].trim_ascii())
        })
}

/// The client's address as the balancer hashes it (an IPv4-mapped IPv6
/// address as IPv4).
pub(crate) fn balancer_ip(req: &RequestHead) -> Option<IpAddr> {
    req.client_ip().map(|ip| match ip {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(ip, IpAddr::V4),
        v4 => v4,
    })
}

/// How the request body goes up, from the request's framing.
fn framing(req: &RequestHead) -> (BodyFraming, UpBody) {
    if req.header("transfer-encoding").is_some() {
        return (BodyFraming::Chunked, UpBody::Chunked);
    }
    match req
        .header_str("content-length")
        .and_then(|v| v.trim().parse::<u64>().ok())
    {
        Some(0) => (BodyFraming::Length(0), UpBody::None),
        Some(n) => (BodyFraming::Length(n), UpBody::Length),
        None => (BodyFraming::None, UpBody::None),
    }
}

impl Handler for Proxy {
    fn methods(&self) -> Methods {
        if self.spec.connect {
            Methods::ANY.with(Method::Connect)
        } else {
            Methods::ANY
        }
    }

    fn accepts_body(&self) -> bool {
        true
    }

    fn handle(&mut self, req: &RequestHead, cx: &mut Ctx<'_, '_>) -> Reply {
        let now = cx.io.now();
        let waker = cx.io.waker();
        let Some(hub) = cx.io.upstreams() else {
            return failed(Failure::NoServer, cx.io, None);
        };
        let Some(group) = hub.group_of(&self.upstream) else {
            return failed(Failure::NoServer, cx.io, None);
        };
        let (body_framing, mut up_body) = framing(req);
        // A CONNECT (which has no content, RFC 9110 §9.3.6) opens its tunnel
        // once the upstream answers 2xx; a switch of protocols (a WebSocket)
        // is asked for only by a request without a body, and opens once the
        // upstream answers 101.
        let connect = req.method == Method::Connect;
        let upgrade = req
            .upgrade_requested()
            .filter(|_| !connect && body_framing == BodyFraming::None);
        if connect {
            up_body = UpBody::Connect;
        } else if upgrade.is_some() {
            up_body = UpBody::Tunnel;
        }
        let us = &self.upstream.spec;
        let key = match us.policy {
            Policy::Header => req.header(&us.lb_key),
            Policy::Cookie => cookie(req, &us.lb_key),
            _ => None,
        };
        // The server a valid affinity cookie names.
        let sticky = us.sticky.as_ref().map(|s| {
            cookie(req, &s.cookie).and_then(|v| sticky::find(&self.upstream.sticky_values, v))
        });
        let pick = Pick {
            client_ip: balancer_ip(req),
            uri: req.target(),
            key,
            sticky: sticky.flatten(),
            exclude: &[],
        };
        let start = Start {
            group,
            pick: &pick,
            head_request: req.method == Method::Head,
            idempotent: matches!(
                req.method,
                Method::Get
                    | Method::Head
                    | Method::Put
                    | Method::Delete
                    | Method::Options
                    | Method::Trace
            ),
            body: up_body,
            window: self.spec.max_memory,
            waker,
        };
        let scheme = if req.tls().is_some() { "https" } else { "http" };
        let spec = &self.spec;
        let encode = |server: &str, out: &mut Vec<u8>| {
            let fwd = Forward {
                scheme,
                server_host: server,
                body: body_framing,
                via_name: VIA_NAME,
                upgrade,
            };
            headers::upstream_request(req, spec, &fwd, out);
        };
        match hub.start(&start, encode, now) {
            Ok(ticket) => Reply::Pending(Box::new(Waiting {
                ticket: Some(ticket),
                spec: self.spec.clone(),
                head_request: start.head_request,
                connect,
                sticky: sticky.map(|from| Affinity {
                    upstream: self.upstream.clone(),
                    from,
                    secure: scheme == "https",
                }),
            })),
            Err(f) => failed(f, cx.io, None),
        }
    }
}

/// The reply to an exchange the hub started: the response head is awaited
/// while the request body goes up, then the body is forwarded; `spec`
/// says how the head is rewritten for the client.
pub(crate) fn awaiting(ticket: Ticket, spec: Rc<ProxySpec>, head_request: bool) -> Reply {
    Reply::Pending(Box::new(Waiting {
        ticket: Some(ticket),
        spec,
        head_request,
        connect: false,
        sticky: None,
    }))
}

/// Waits for the response head while the request body goes up.
struct Waiting {
    ticket: Option<Ticket>,
    spec: Rc<ProxySpec>,
    head_request: bool,
    /// A `CONNECT`: a 2xx opens the tunnel, its framing fields say nothing.
    connect: bool,
    sticky: Option<Affinity>,
}

/// A group with session affinity, and the server the request's cookie
/// named (if it named one).
struct Affinity {
    upstream: Arc<Upstream>,
    from: Option<usize>,
    secure: bool,
}

impl Affinity {
    /// The `Set-Cookie` value when the answer came from a server other
    /// than the one the cookie named.
    fn set_cookie(&self, server: Option<usize>) -> Option<String> {
        let server = server.filter(|s| Some(*s) != self.from)?;
        let name = &self.upstream.spec.sticky.as_ref()?.cookie;
        let value = self.upstream.sticky_values.get(server)?;
        let secure = if self.secure { "; Secure" } else { "" };
        Some(format!(
            "{name}={value}; Path=/; HttpOnly; SameSite=Lax{secure}"
        ))
    }
}

impl Task for Waiting {
    fn poll(&mut self, io: &mut Io, body: &mut RequestBody) -> Option<Reply> {
        let Some(hub) = io.upstreams() else {
            return Some(failed(Failure::NoServer, io, None));
        };
        let t = self.ticket.as_ref()?;
        hub.forward(t, body);
        match hub.take_head(t) {
            HeadPoll::Pending => None,
            HeadPoll::Failed(f) => {
                let server = hub.server_label(t);
                Some(failed(f, io, server))
            }
            HeadPoll::Head(h) => {
                let server = hub.server_label(t);
                let mut resp = headers::client_response(&h, &self.spec, VIA_NAME);
                if let Some(a) = &self.sticky
                    && let Some(c) = a.set_cookie(hub.server_of(t))
                {
                    resp = resp.header("Set-Cookie", c);
                }
                let chunked = h.header("transfer-encoding").is_some();
                let tunnel = self.connect && (200..300).contains(&h.status);
                let length = if chunked || tunnel {
                    None
                } else {
                    h.header_str("content-length")
                        .and_then(|v| v.trim().parse::<u64>().ok())
                };
                // A HEAD's answer, a 204 or a 304 carries no body whatever
                // its length says.
                let bodiless = self.head_request || matches!(h.status, 204 | 304);
                let source = Forwarding {
                    server: server.clone(),
                    ticket: self.ticket.take(),
                    length: if bodiless { length.or(Some(0)) } else { length },
                    pending: Vec::new(),
                    ended: None,
                };
                io.set_upstream(UpstreamNote {
                    server,
                    failure: None,
                });
                Some(Reply::Stream(resp, Box::new(source)))
            }
        }
    }
}

/// Forwards the response body (and what is left of the request body).
struct Forwarding {
    /// The server answering, for the access log of a body cut short.
    server: Option<Rc<str>>,
    ticket: Option<Ticket>,
    length: Option<u64>,
    /// Bytes taken with the end or a failure, handed out first.
    pending: Vec<u8>,
    ended: Option<Result<(), Failure>>,
}

impl BodySource for Forwarding {
    fn content_length(&self) -> Option<u64> {
        self.length
    }

    fn recycle(&mut self, buf: Vec<u8>) {
        if self.pending.is_empty() && self.pending.capacity() < buf.capacity() {
            self.pending = buf;
        }
    }

    fn poll_chunk(&mut self, io: &mut Io, body: &mut RequestBody, _max: usize) -> Chunk {
        if let Some(end) = self.ended {
            return match end {
                Ok(()) => Chunk::End,
                Err(f) => Chunk::Failed(f.to_string()),
            };
        }
        let (Some(hub), Some(t)) = (io.upstreams(), self.ticket.as_ref()) else {
            return Chunk::Failed("no upstream engine".into());
        };
        hub.forward(t, body);
        let mut buf = std::mem::take(&mut self.pending);
        let state = hub.take_body(t, &mut buf);
        match state {
            BodyPoll::More if buf.is_empty() => Chunk::Pending,
            BodyPoll::More => Chunk::Bytes(buf),
            BodyPoll::End | BodyPoll::Failed(_) => {
                self.ended = Some(match state {
                    BodyPoll::Failed(f) => Err(f),
                    _ => Ok(()),
                });
                // The access log says why the body was cut short.
                if let BodyPoll::Failed(f) = state {
                    io.set_upstream(UpstreamNote {
                        server: self.server.clone(),
                        failure: Some(f.name()),
                    });
                }
                // The exchange is over for the hub.
                self.ticket = None;
                if buf.is_empty() {
                    self.poll_chunk(io, body, _max)
                } else {
                    Chunk::Bytes(buf)
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cookies_and_framing() {
        let mut req = RequestHead::new(Method::Post, "/");
        req.push_header("Cookie", b"a=1; lb = x9 ;b=2");
        req.push_header("Content-Length", b"12");
        assert_eq!(cookie(&req, "lb"), Some(&b"x9"[..]));
        assert_eq!(cookie(&req, "b"), Some(&b"2"[..]));
        assert_eq!(cookie(&req, "c"), None);
        assert_eq!(framing(&req), (BodyFraming::Length(12), UpBody::Length));
        let mut req = RequestHead::new(Method::Post, "/");
        req.push_header("Transfer-Encoding", b"chunked");
        assert_eq!(framing(&req), (BodyFraming::Chunked, UpBody::Chunked));
        let req = RequestHead::new(Method::Get, "/");
        assert_eq!(framing(&req), (BodyFraming::None, UpBody::None));
    }
}
