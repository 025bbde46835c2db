//! Sites, bindings and routes: a request's listener and `Host` (checked
//! against the TLS server name) pick a site; the site's routes pick a
//! handler; the route's and site's rules shape the answer.
//!
//! ```text
//! Config ──Plan::new──> listeners · HostMap per listener · sites (spec)
//!        ──Generation::build──> + TLS context, checked roots, pages, handler names
//!                                  │ Arc, shared by every worker
//!        per worker: Sites::new ──> one Router per site (handlers keep per-core state)
//! request: listener → HostMap (exact, wildcard, default) → site → Router → handler
//! ```
//!
//! A generation is immutable; replacing the configuration means building a
//! new one and giving each worker a new [`Sites`] between requests.
#![forbid(unsafe_code)]

pub mod cache;
mod cached;
pub mod compressed;
pub mod compression;
pub mod generation;
pub mod logs;
pub mod matcher;
pub mod plan;
pub mod rules;
pub mod spec;
pub mod template;

use std::collections::HashMap;
use std::rc::Rc;
use std::sync::Arc;

pub use generation::Generation;
pub use logs::LogPlan;
pub use plan::{Listener, Plan};
pub use spec::{HandlerSpec, Route, Site, SiteLog};

use crate::exchange::{Io, Reply, RequestHead};
use crate::handler::router::RouteOptions;
use crate::handler::{Handler, Redirect, Respond, Router, StaticFiles, builtins};
use crate::http::{Admit, Methods, Response, Service};
use rules::{Applied, PageCache};

/// What a named handler's factory is told about the route it serves.
#[derive(Debug)]
pub struct RouteArgs<'a> {
    /// The site's name.
    pub site: &'a str,
    /// The route's path.
    pub path: &'a str,
    /// The route's `options` table (empty when it has none).
    pub options: &'a toml::Table,
}

/// Makes a named handler for a route, once per worker thread.
pub type HandlerFactory = dyn Fn(&RouteArgs<'_>) -> Result<Box<dyn Handler>, String> + Send + Sync;

/// Named handlers registered by the program embedding the server.
pub type Registry = HashMap<String, Arc<HandlerFactory>>;

/// One worker's sites: a router per site, and the generation they came from.
pub struct Sites {
    generation: Arc<Generation>,
    routers: Vec<Router>,
}

impl std::fmt::Debug for Sites {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Sites")
            .field("routers", &self.routers)
            .finish_non_exhaustive()
    }
}

impl Sites {
    /// Builds the handlers of every site of `generation` (call on the worker
    /// thread: handlers keep per-core state).
    pub fn new(generation: Arc<Generation>, named: &Registry) -> Result<Sites, String> {
        let routers = generation
            .plan
            .sites
            .iter()
            .enumerate()
            .map(|(i, s)| router(s, named, &generation.upstreams, (&generation.guards, i)))
            .collect::<Result<Vec<_>, _>>()?;
        Ok(Sites {
            generation,
            routers,
        })
    }

    /// The sites of `generation` with `router` answering for its first one
    /// (a program's own router for the flat configuration).
    pub fn with_router(generation: Arc<Generation>, router: Router) -> Sites {
        Sites {
            generation,
            routers: vec![router],
        }
    }

    /// The generation these sites were built from.
    pub fn generation(&self) -> &Arc<Generation> {
        &self.generation
    }

    /// Whether site `i` refuses `req` for coming over HTTP/2.
    fn wants_http1(&self, i: u16, req: &RequestHead) -> bool {
        req.version == crate::http::Version::Http2
            && self
                .generation
                .plan
                .sites
                .get(usize::from(i))
                .is_some_and(|s| !s.http2)
    }

    /// The site for `req` (its index), or the refusal: no site for the host (421 over
    /// TLS, 404 over plain HTTP), or a `Host` naming another site than the
    /// TLS server name (421; but a CONNECT's `Host` is the tunnel's end, and
    /// the TLS server name alone chooses its site).
    fn site(&self, req: &RequestHead) -> Result<u16, Response> {
        let l = usize::from(req.listener);
        let g = &self.generation;
        let Some(map) = g.plan.bindings.get(l) else {
            return Err(Response::error(404, None));
        };
        let none = || {
            if g.is_tls(l) {
                Response::error(421, Some("no site here for this host"))
            } else {
                Response::error(404, Some("no site here for this host"))
            }
        };
        // The flat configuration and single-site listeners: no lookup.
        if map.nameless() {
            return map.default_site().ok_or_else(none);
        }
        let host = req.host();
        let by_host = map.site_for(host);
        if let Some(sni) = req.tls().and_then(|t| t.server_name.as_deref())
            && let Some(s) = map.named(sni)
        {
            // A CONNECT's host is where the tunnel goes, not a site.
            if host.is_some() && by_host != Some(s) && req.method != crate::http::Method::Connect {
                return Err(Response::error(
                    421,
                    Some("the Host names another site than the TLS server name"),
                ));
            }
            return Ok(s);
        }
        by_host.ok_or_else(none)
    }
}

impl Service for Sites {
    fn prepare(&mut self, req: &mut RequestHead) {
        let client = &self.generation.guards.client;
        if client.trusts_none() {
            return;
        }
        if let Some(peer) = req.peer
            && client.trusts(peer.ip())
        {
            req.client = client.resolve(req);
        }
    }

    fn check(&mut self, req: &RequestHead, io: &mut Io) -> Admit {
        match self.site(req) {
            Ok(i) if self.wants_http1(i, req) => {
                io.require_http1();
                Admit::Answer(Response::error(
                    505,
                    Some("this site is served over HTTP/1.1"),
                ))
            }
            Ok(i) => {
                io.set_site(i);
                self.routers[usize::from(i)].check(req, io)
            }
            Err(r) => Admit::Answer(r),
        }
    }

    fn call(&mut self, req: &RequestHead, io: &mut Io) -> Reply {
        match self.site(req) {
            Ok(i) if self.wants_http1(i, req) => {
                io.require_http1();
                Response::error(505, Some("this site is served over HTTP/1.1")).into()
            }
            Ok(i) => {
                io.set_site(i);
                self.routers[usize::from(i)].call(req, io)
            }
            Err(r) => r.into(),
        }
    }

    fn methods(&self) -> Methods {
        self.routers
            .iter()
            .fold(Methods::NONE, |m, r| m.union(r.methods()))
    }
}

/// `base` and `tail` joined with one `/`.
fn join(base: &str, tail: &str) -> String {
    format!("{}{tail}", base.trim_end_matches('/'))
}

/// The router of one site.
fn router(
    s: &Site,
    named: &Registry,
    upstreams: &[Arc<crate::upstream::Upstream>],
    (guards, site): (&crate::guard::Guards, usize),
) -> Result<Router, String> {
    let wants_pages =
        !s.rules.errors.is_empty() || s.routes.iter().any(|r| !r.rules.errors.is_empty());
    let pages: Option<PageCache> = match (&s.root, wants_pages) {
        (Some(root), true) => Some(Applied::page_cache(root)?),
        _ => None,
    };
    let err = |o: &spec::Origin, m: String| o.err("", m).to_string();
    let site_rules = Applied::new(&s.rules, pages.as_ref()).map_err(|m| err(&s.origin, m))?;
    let mut r = Router::new()
        .rules(site_rules.clone())
        .guard(guards.of(site, None).cloned());
    let compression = s
        .compression
        .clone()
        .map(crate::site::compression::Compression::new);
    for (j, route) in s.routes.iter().enumerate() {
        let rules: Option<Rc<Applied>> = if route.rules.is_empty() {
            site_rules.clone()
        } else {
            Applied::new(&route.rules.then(&s.rules), pages.as_ref())
                .map_err(|m| err(&route.origin, m))?
        };
        let opts = RouteOptions {
            exact: route.exact,
            methods: route.methods,
            rules,
            guard: guards.of(site, Some(j)).cloned(),
            compression: compression.clone().filter(|_| route.compression),
            cache: route.cache.clone(),
        };
        let handler: Box<dyn Handler> = match &route.handler {
            HandlerSpec::Builtins => {
                for (path, h) in builtins::all() {
                    r = r.route_with(join(&route.path, path), h, opts.clone());
                }
                continue;
            }
            HandlerSpec::Files(f) => Box::new(
                StaticFiles::new(&f.root)
                    .map_err(|e| format!("document root {}: {e}", f.root.display()))?
                    .index(&f.index)
                    .browse(f.browse)
                    .hide(f.hide.clone())
                    .dotfiles(f.dotfiles)
                    .compression(s.compression.as_ref().filter(|_| route.compression)),
            ),
            HandlerSpec::Redirect { to, status } => Box::new(Redirect::new(to.clone(), *status)),
            HandlerSpec::Respond {
                status,
                body,
                headers,
            } => Box::new(Respond::new(*status, body, headers)),
            HandlerSpec::Named { name, options } => {
                let make = named
                    .get(name)
                    .ok_or_else(|| err(&route.origin, format!("unknown handler {name:?}")))?;
                make(&RouteArgs {
                    site: &s.name,
                    path: &route.path,
                    options: &options.0,
                })
                .map_err(|m| err(&route.origin, format!("handler {name:?}: {m}")))?
            }
            HandlerSpec::Proxy(p) => {
                let up = upstreams
                    .iter()
                    .find(|u| u.spec.name == p.upstream)
                    .ok_or_else(|| err(&route.origin, format!("no upstream {:?}", p.upstream)))?;
                Box::new(crate::handler::proxy::Proxy::new(p.clone(), up.clone()))
            }
            HandlerSpec::FastCgi { upstream } => {
                let up = upstreams
                    .iter()
                    .find(|u| u.spec.name == *upstream && u.spec.fastcgi.is_some())
                    .ok_or_else(|| err(&route.origin, format!("no [[fastcgi]] {upstream:?}")))?;
                Box::new(crate::handler::fastcgi::FastCgi::new(up.clone()))
            }
        };
        r = r.route_with(route.path.clone(), handler, opts);
    }
    Ok(r)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::http::Method;

    /// The site that answers is named to the observer through `Io`; a
    /// request no site takes names none.
    #[test]
    fn the_chosen_site_is_told_through_io() {
        let text = r#"
[[site]]
name = "shop"
hosts = ["shop.test"]
[[site.route]]
path = "/"
handler = "respond"
[[site]]
name = "blog"
hosts = ["blog.test"]
[[site.route]]
path = "/"
handler = "respond"
"#;
        let c = crate::config::parse(text, None).unwrap();
        let g = Arc::new(Generation::build(&c, &[]).unwrap());
        let mut sites = Sites::new(g, &Registry::new()).unwrap();
        let site_of = |sites: &mut Sites, host: &str| {
            let mut req = RequestHead::new(Method::Get, "/");
            req.set_host(host.as_bytes());
            let mut io = Io::new(std::time::Instant::now());
            let _ = sites.call(&req, &mut io);
            io.site()
        };
        assert_eq!(site_of(&mut sites, "blog.test"), Some(1));
        assert_eq!(site_of(&mut sites, "shop.test"), Some(0));
        assert_eq!(site_of(&mut sites, "other.test"), None);
    }
}
