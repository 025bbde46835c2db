//! The admin listener: Prometheus metrics, JSON status, HdrHistogram exports,
//! a live dashboard, the configuration in effect and its reload, and health
//! probes, served by its own loop on a separate address.
//!
//! Every endpoint checks the `Host` (DNS rebinding); with a token set, every
//! data endpoint wants it. `/healthz` and `/readyz` do not: they tell only
//! whether the server is alive and ready, and orchestrators' probes (a
//! Kubernetes `httpGet` probe, a load balancer's health check) send no
//! credentials.
#![forbid(unsafe_code)]

mod config;
mod host;
mod pools;
mod purge;

use std::sync::Arc;

use crate::exchange::{Reply, RequestHead};
use crate::handler::router::RouteOptions;
use crate::handler::{Ctx, Handler, Router};
use crate::http::{Body, Response};
use crate::metrics::{Registry, hgrm, merge, prometheus, status};

/// The dashboard page (HTML, CSS and script in one file; no network needed).
const DASHBOARD: &str = include_str!("dashboard.html");

/// Who the admin listener answers: the bearer token, when one is set, and the
/// host names allowed besides IP literals and `localhost`.
#[derive(Clone, Debug, Default)]
pub struct Access {
    token: Option<Arc<str>>,
    hosts: Arc<[String]>,
}

impl Access {
    /// From the `[admin]` configuration.
    pub fn new(cfg: &crate::config::Admin) -> Access {
        Access {
            token: cfg.token.as_deref().map(Arc::from),
            hosts: cfg.hosts.iter().cloned().collect(),
        }
    }

    /// The refusal for `req`, if it gets one: 421 for a `Host` this listener
    /// does not answer, then (with `token`) 401 without the bearer token. Both
    /// close the connection.
    fn refusal(&self, req: &RequestHead, token: bool) -> Option<Response> {
        if let Some(h) = req.host()
            && !host::allowed(h, &self.hosts)
        {
            let why = format!(
                "the admin listener does not answer for host {h:?} (IP addresses, localhost and admin.hosts only)"
            );
            return Some(Response::error(421, Some(&why)).close());
        }
        match &self.token {
            Some(t) if token && !bearer(req).is_some_and(|g| same(g, t.as_bytes())) => Some(
                Response::error(401, Some("a bearer token is required"))
                    .header("WWW-Authenticate", "Bearer realm=\"peregrine-admin\"")
                    .close(),
            ),
            _ => None,
        }
    }
}

/// The admin router over `reg` (and `reload`, for the configuration
/// endpoints); when a token is set every data request must carry
/// `Authorization: Bearer <token>`.
pub fn router(
    reg: Arc<Registry>,
    access: Access,
    reload: Option<Arc<crate::server::Reloader>>,
) -> Router {
    let a = &access;
    let exact = || RouteOptions {
        exact: true,
        ..RouteOptions::default()
    };
    let mut r = Router::new()
        // The page itself holds no data; it asks for the token when the data
        // endpoints answer 401 and sends it with every request. Its route is
        // `/`, so every unknown path passes the host check too.
        .route("/", Guard::new(Dashboard, a, false))
        .route("/metrics", Guard::new(Metrics(reg.clone()), a, true))
        .route("/status", Guard::new(Status(reg.clone()), a, true))
        .route("/histogram", Guard::new(Histogram(reg.clone()), a, true))
        .route_with(
            "/healthz",
            Box::new(Guard::new(config::Healthz, a, false)),
            exact(),
        )
        .route_with(
            "/readyz",
            Box::new(Guard::new(config::Readyz(reg.life.clone()), a, false)),
            exact(),
        );
    if let Some(rl) = reload {
        r = r
            .route_with(
                "/config",
                Box::new(Guard::new(config::Effective(rl.clone()), a, true)),
                exact(),
            )
            .route_with(
                "/config/reload",
                Box::new(Guard::new(config::Reload(rl.clone()), a, true)),
                exact(),
            )
            .route_with(
                "/cache/purge",
                Box::new(Guard::new(purge::PurgeCache(rl.clone()), a, true)),
                exact(),
            )
            .route("/pools/", Guard::new(pools::RecyclePool(rl), a, true));
    }
    r
}

/// Checks the host, and the token when `token` is set, before handing the
/// request on.
struct Guard<H> {
    inner: H,
    access: Access,
    token: bool,
}

impl<H: Handler> Guard<H> {
    fn new(inner: H, access: &Access, token: bool) -> Guard<H> {
        Guard {
            inner,
            access: access.clone(),
            token,
        }
    }
}

/// The credentials of an `Authorization: Bearer …` header; the scheme name is
/// case-insensitive (RFC 9110 §11.1).
fn bearer(req: &RequestHead) -> Option<&[u8]> {
    let v = req.header("authorization")?.trim_ascii();
    let sp = v.iter().position(|&b| b == b' ')?;
    let (scheme, rest) = v.split_at(sp);
    scheme
        .eq_ignore_ascii_case(b"bearer")
        .then(|| rest.trim_ascii())
}

/// Implements [`Handler`] for a type whose inherent `respond` answers at once.
macro_rules! respond_now {
    ($t:ty) => {
        impl Handler for $t {
            fn handle(&mut self, req: &RequestHead, _cx: &mut Ctx<'_, '_>) -> Reply {
                Reply::Ready(self.respond(req))
            }
        }
    };
}

/// Compares without an early exit, so timing does not reveal the prefix matched.
fn same(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

impl<H: Handler> Handler for Guard<H> {
    fn methods(&self) -> crate::http::Methods {
        self.inner.methods()
    }

    fn handle(&mut self, req: &RequestHead, cx: &mut Ctx<'_, '_>) -> Reply {
        match self.access.refusal(req, self.token) {
            Some(r) => r.into(),
            None => self.inner.handle(req, cx),
        }
    }
}

struct Dashboard;

respond_now!(Dashboard);

impl Dashboard {
    fn respond(&mut self, req: &RequestHead) -> Response {
        if req.path() != "/" && req.path() != "/index.html" {
            return Response::error(404, None);
        }
        Response::new(200)
            .content_type("text/html; charset=utf-8")
            .header("Cache-Control", "no-store")
            .body(Body::Static(DASHBOARD.as_bytes()))
    }
}

struct Metrics(Arc<Registry>);

respond_now!(Metrics);

impl Metrics {
    fn respond(&mut self, _req: &RequestHead) -> Response {
        let snaps = self.0.snapshots();
        Response::new(200)
            .content_type("text/plain; version=0.0.4; charset=utf-8")
            .header("Cache-Control", "no-store")
            .body(Body::Bytes(
                prometheus::render(&self.0, &snaps).into_bytes(),
            ))
    }
}

struct Status(Arc<Registry>);

respond_now!(Status);

impl Status {
    fn respond(&mut self, _req: &RequestHead) -> Response {
        let snaps = self.0.snapshots();
        let doc = status::render(&self.0, &snaps);
        Response::new(200)
            .content_type("application/json")
            .header("Cache-Control", "no-store")
            .body(Body::Bytes(
                serde_json::to_vec_pretty(&doc).unwrap_or_default(),
            ))
    }
}

struct Histogram(Arc<Registry>);

/// The value of query parameter `name`.
fn param<'a>(query: Option<&'a str>, name: &str) -> Option<&'a str> {
    query?.split('&').find_map(|kv| {
        let (k, v) = kv.split_once('=').unwrap_or((kv, ""));
        (k == name).then_some(v)
    })
}

respond_now!(Histogram);

impl Histogram {
    fn respond(&mut self, req: &RequestHead) -> Response {
        let snaps = self.0.snapshots();
        let which = param(req.query(), "worker").unwrap_or("all");
        let snap = match which {
            "all" | "" => merge(&snaps),
            n => match n.parse::<usize>().ok().and_then(|i| snaps.get(i)) {
                Some(s) => s.clone(),
                None => {
                    return Response::error(
                        400,
                        Some(&format!(
                            "worker must be \"all\" or 0..{} (got {n:?})",
                            snaps.len().saturating_sub(1)
                        )),
                    );
                }
            },
        };
        let h = match param(req.query(), "metric").unwrap_or("latency") {
            "latency" => &snap.stats.latency,
            "ttfb" => &snap.stats.ttfb,
            m => {
                return Response::error(
                    400,
                    Some(&format!("metric must be latency or ttfb (got {m:?})")),
                );
            }
        };
        let body = match param(req.query(), "format").unwrap_or("hgrm") {
            "hgrm" => hgrm::percentiles_text(h),
            "v2" => match hgrm::v2_base64(h) {
                Ok(s) => s + "\n",
                Err(e) => return Response::error(500, Some(&e)),
            },
            f => {
                return Response::error(
                    400,
                    Some(&format!("format must be hgrm or v2 (got {f:?})")),
                );
            }
        };
        Response::new(200)
            .content_type("text/plain; charset=utf-8")
            .header("Cache-Control", "no-store")
            .body(Body::Bytes(body.into_bytes()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn params_and_compare() {
        assert_eq!(param(Some("worker=2&format=v2"), "format"), Some("v2"));
        assert_eq!(param(Some("worker"), "worker"), Some(""));
        assert_eq!(param(None, "x"), None);
        assert!(same(b"abc", b"abc"));
        assert!(!same(b"abc", b"abd"));
        assert!(!same(b"abc", b"abcd"));
    }
}
