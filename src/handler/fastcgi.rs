//! The FastCGI handler (`handler = "fastcgi"`, `upstream = "<[[fastcgi]]
//! name>"`): the request's script is found under the application's root,
//! and the request goes to a server of the group as FastCGI records
//! (`BEGIN_REQUEST`, the CGI/1.1 `PARAMS`, the body as `STDIN`) through the
//! worker's upstream engine, on the same pooled connections, balancing,
//! passive health, timeouts and streaming as a proxied request. The
//! responder's answer comes back as HTTP/1.1 (see [`crate::fastcgi`]) and
//! streams to the client.

use std::path::Path;
use std::rc::Rc;
use std::sync::Arc;

use super::proxy::{awaiting, balancer_ip, failed};
use super::{Ctx, Handler};
use crate::exchange::{Reply, RequestHead};
use crate::fastcgi::record::{self, STDIN};
use crate::fastcgi::{FastCgiApp, Kind, params};
use crate::http::{Method, Methods, Response};
use crate::upstream::balance::Pick;
use crate::upstream::spec::{HeaderOps, ProxySpec};
use crate::upstream::{Failure, Start, UpBody, Upstream};

/// Runs a route's requests on a FastCGI application.
#[derive(Debug)]
pub struct FastCgi {
    upstream: Arc<Upstream>,
    app: Arc<FastCgiApp>,
    /// How the answer's head is rewritten for the client (hop-by-hop
    /// fields removed; nothing added).
    down: Rc<ProxySpec>,
}

impl FastCgi {
    /// A handler for the `[[fastcgi]]` group `upstream`.
    ///
    /// # Panics
    /// When `upstream` is not a FastCGI group (the configuration checks).
    pub fn new(upstream: Arc<Upstream>) -> FastCgi {
        let app = upstream.spec.fastcgi.clone().expect("a [[fastcgi]] group");
        let down = Rc::new(ProxySpec {
            upstream: upstream.spec.name.clone(),
            preserve_host: true,
            strip_prefix: String::new(),
            prefix: String::new(),
            header_up: HeaderOps::default(),
            header_down: HeaderOps::default(),
            trusted_proxies: Vec::new(),
            forwarded: false,
            via: false,
            buffer_response: false,
            max_memory: 64 * 1024,
            connect: false,
        });
        FastCgi {
            upstream,
            app,
            down,
        }
    }
}

/// What the file system says about `p` (a stat of a file the page cache
/// holds, as the file handler's).
fn probe(p: &Path) -> Option<Kind> {
    let m = std::fs::metadata(p).ok()?;
    if m.is_file() {
        Some(Kind::File)
    } else if m.is_dir() {
        Some(Kind::Dir)
    } else {
        None
    }
}

impl Handler for FastCgi {
    fn methods(&self) -> Methods {
        Methods::ANY
    }

    fn accepts_body(&self) -> bool {
        true
    }

    fn admit(&mut self, req: &RequestHead, _cx: &Ctx<'_, '_>) -> Option<Response> {
        // FastCGI applications read CONTENT_LENGTH bytes: a body of unknown
        // length cannot be handed on without buffering it whole.
        req.header("transfer-encoding").map(|_| {
            Response::error(
                411,
                Some("a FastCGI application needs the request body's length (Content-Length)"),
            )
        })
    }

    fn handle(&mut self, req: &RequestHead, cx: &mut Ctx<'_, '_>) -> Reply {
        if req.header("transfer-encoding").is_some() {
            return Response::error(411, None).into();
        }
        let Some(script) = self.app.resolve(req.path(), probe) else {
            return Response::error(404, None).into();
        };
        let now = cx.io.now();
        let waker = cx.io.waker();
        let Some(hub) = cx.io.upstreams() else {
            return failed(Failure::NoServer, cx.io, None);
        };
        let Some(group) = hub.group_of(&self.upstream) else {
            return failed(Failure::NoServer, cx.io, None);
        };
        let length = req
            .header_str("content-length")
            .and_then(|v| v.trim().parse::<u64>().ok())
            .unwrap_or(0);
        let body = if length > 0 {
            UpBody::Fcgi
        } else {
            UpBody::None
        };
        let pick = Pick {
            client_ip: balancer_ip(req),
            uri: req.target(),
            key: None,
            sticky: None,
            exclude: &[],
        };
        let start = Start {
            group,
            pick: &pick,
            head_request: req.method == Method::Head,
            idempotent: matches!(req.method, Method::Get | Method::Head | Method::Options),
            body,
            window: 64 * 1024,
            waker,
        };
        let app = &self.app;
        let encode = |_server: &str, out: &mut Vec<u8>| {
            record::begin(out, app.keep_conn);
            params(app, req, &script).write(out);
            if body == UpBody::None {
                record::stream(out, STDIN, &[]);
            }
        };
        match hub.start(&start, encode, now) {
            Ok(ticket) => awaiting(ticket, self.down.clone(), start.head_request),
            Err(f) => failed(f, cx.io, None),
        }
    }
}
