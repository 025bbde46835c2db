//! Routing by longest path prefix (or exact path), with optional method
//! filters and response rules per route.

use std::cell::RefCell;
use std::rc::Rc;
use std::sync::Arc;

use super::{Ctx, Handler};
use crate::exchange::{Io, Reply, RequestHead};
use crate::guard::{Guard, Verdict};
use crate::http::{Admit, Method, Methods, Response, Service};
use crate::site::cache::{Origin, RouteCache};
use crate::site::compression::Compression;
use crate::site::rules::Applied;

struct Route {
    prefix: String,
    exact: bool,
    /// Methods the route is for; `None`: any (its handler says which).
    only: Option<Methods>,
    /// Shared with an exchange a rate limit delays (it calls the handler
    /// when its time comes).
    handler: Rc<RefCell<Box<dyn Handler>>>,
    /// The handler's methods, read once when the route is added.
    methods: Methods,
    rules: Option<Rc<Applied>>,
    guard: Option<Arc<Guard>>,
    compression: Option<Rc<Compression>>,
    /// The route's response cache (its handler, rules and compression
    /// answer through it).
    cache: Option<Rc<RouteCache>>,
}

impl Route {
    fn matches(&self, path: &str) -> bool {
        if self.exact {
            return path == self.prefix;
        }
        self.prefix == "/"
            || path
                .strip_prefix(self.prefix.as_str())
                .is_some_and(|rest| rest.is_empty() || rest.starts_with('/'))
    }
}

/// How a route is matched beyond its prefix, and what is applied to its
/// answers.
#[derive(Clone, Debug, Default)]
pub struct RouteOptions {
    /// Only the path itself matches, nothing below it.
    pub exact: bool,
    /// Only these methods match (routes for the same path may split methods
    /// between them); others are answered 405 when no route for the path
    /// takes them.
    pub methods: Option<Methods>,
    /// Header rules and error pages for the route's answers.
    pub rules: Option<Rc<Applied>>,
    /// IP restrictions, request filtering and limits for its requests.
    pub guard: Option<Arc<Guard>>,
    /// Compression of its answers.
    pub compression: Option<Rc<Compression>>,
    /// Its response cache.
    pub cache: Option<crate::cache::CacheRule>,
}

/// Maps path prefixes to handlers. A prefix matches the path itself and
/// anything below it (`/api` matches `/api` and `/api/x`, not `/apix`); the
/// longest matching prefix wins.
#[derive(Default)]
pub struct Router {
    routes: Vec<Route>,
    /// Applied to the router's own answers (404, 405) and to routes
    /// without rules of their own.
    rules: Option<Rc<Applied>>,
    /// Judges requests no route takes.
    guard: Option<Arc<Guard>>,
}

impl std::fmt::Debug for Router {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_list()
            .entries(self.routes.iter().map(|r| &r.prefix))
            .finish()
    }
}

/// What the routes say about a request.
#[derive(Clone, Copy)]
enum Found {
    Route(usize),
    /// Routes for the path exist, none for the method: these are.
    NotAllowed(Methods),
    None,
}

impl Router {
    /// An empty router (every request is answered 404).
    pub fn new() -> Router {
        Router::default()
    }

    /// Adds a route.
    ///
    /// # Panics
    /// When `prefix` does not start with `/`.
    pub fn route(self, prefix: impl Into<String>, handler: impl Handler + 'static) -> Router {
        self.route_with(prefix, Box::new(handler), RouteOptions::default())
    }

    /// Adds a route with options.
    ///
    /// # Panics
    /// When `prefix` does not start with `/`.
    pub fn route_with(
        mut self,
        prefix: impl Into<String>,
        handler: Box<dyn Handler>,
        opts: RouteOptions,
    ) -> Router {
        let mut prefix = prefix.into();
        assert!(
            prefix.starts_with('/'),
            "route prefix {prefix:?} must start with '/'"
        );
        if prefix.len() > 1 && prefix.ends_with('/') && !opts.exact {
            prefix.pop();
        }
        let methods = handler.methods();
        let handler = Rc::new(RefCell::new(handler));
        let rules = opts.rules.or_else(|| self.rules.clone());
        let cache = opts.cache.map(|rule| {
            let origin = Origin {
                handler: handler.clone(),
                prefix: prefix.clone(),
                rules: rules.clone(),
                compression: opts.compression.clone(),
            };
            RouteCache::new(rule, origin, crate::cache::local())
        });
        self.routes.push(Route {
            prefix,
            exact: opts.exact,
            only: opts.methods,
            handler,
            methods,
            rules,
            guard: opts.guard,
            compression: opts.compression,
            cache,
        });
        // Longest first; for one length, exact before prefix (stable: file
        // order otherwise).
        self.routes
            .sort_by_key(|r| (std::cmp::Reverse(r.prefix.len()), !r.exact));
        self
    }

    /// Rules for the router's own answers and for routes added later
    /// without rules of their own.
    pub fn rules(mut self, rules: Option<Rc<Applied>>) -> Router {
        self.rules = rules;
        self
    }

    /// The guard of requests no route takes.
    pub fn guard(mut self, guard: Option<Arc<Guard>>) -> Router {
        self.guard = guard;
        self
    }

    /// The route for `path` and `method`: among the routes with the longest
    /// matching prefix, the first whose method filter takes `method`.
    fn find(&self, path: &str, method: Method) -> Found {
        // A CONNECT names no path: the first route that takes it does.
        if method == Method::Connect {
            return match self
                .routes
                .iter()
                .position(|r| methods_of(r).contains(method))
            {
                Some(i) => Found::Route(i),
                None => Found::NotAllowed(self.methods()),
            };
        }
        let mut refused: Option<(&str, Methods)> = None;
        for (i, r) in self.routes.iter().enumerate() {
            if let Some((prefix, _)) = refused
                && r.prefix != prefix
            {
                break;
            }
            if !r.matches(path) {
                continue;
            }
            match r.only {
                Some(m) if !m.contains(method) && method != Method::Options => {
                    let allowed = refused.map_or(m, |(_, a)| a.union(m));
                    refused = Some((&r.prefix, allowed));
                }
                _ => return Found::Route(i),
            }
        }
        match refused {
            Some((_, m)) => Found::NotAllowed(m),
            None => Found::None,
        }
    }

    /// The methods the routes that share route `i`'s path take, together
    /// (routes of one path may split the methods between them).
    fn allowed(&self, i: usize, path: &str) -> Methods {
        let prefix = &self.routes[i].prefix;
        self.routes[i..]
            .iter()
            .take_while(|r| r.prefix == *prefix)
            .filter(|r| r.matches(path))
            .fold(Methods::NONE, |m, r| m.union(methods_of(r)))
            // (CONNECT names no resource: it is no method of a path.)
            .intersect(Methods::ANY)
    }

    /// The guard that judges what `found` says, and the rules of its
    /// refusals: the route's, or the router's own for its 404 and 405.
    fn judged_by(&self, found: Found) -> (Option<&Arc<Guard>>, &Option<Rc<Applied>>) {
        match found {
            Found::Route(i) => (self.routes[i].guard.as_ref(), &self.routes[i].rules),
            _ => (self.guard.as_ref(), &self.rules),
        }
    }

    fn own(&self, r: Response) -> Response {
        match &self.rules {
            Some(a) => a.response(r),
            None => r,
        }
    }
}

/// The part of `path` below the route `prefix`.
fn rest_of<'a>(prefix: &str, path: &'a str) -> &'a str {
    if prefix == "/" {
        path
    } else {
        &path[prefix.len()..]
    }
}

fn not_allowed(methods: Methods) -> Response {
    let methods = methods.intersect(Methods::ANY).with(Method::Options);
    Response::error(405, None).header("Allow", methods.allow_header())
}

/// What a route answers to: its handler's methods, narrowed by its filter
/// (which leaves `CONNECT` to the handler: a proxy's `connect`).
fn methods_of(r: &Route) -> Methods {
    let m = r.methods;
    r.only
        .map_or(m, |only| m.intersect(only.with(Method::Connect)))
}

fn apply(rules: &Option<Rc<Applied>>, r: Response) -> Response {
    match rules {
        Some(a) => a.response(r),
        None => r,
    }
}

/// What judging a request came to, for the router.
enum Judged {
    Pass,
    Delay(std::time::Instant),
    Answer(Box<Response>),
}

/// Judges `req` by `guard` unless it was judged already (a request with a
/// body is judged when its head is checked).
fn judge(guard: Option<&Arc<Guard>>, req: &RequestHead, io: &mut Io) -> Judged {
    let Some(g) = guard else { return Judged::Pass };
    if io.guarded().judged {
        return match io.guarded().delay_until {
            Some(t) => Judged::Delay(t),
            None => Judged::Pass,
        };
    }
    let now = io.now();
    let verdict = g.check(req, req.client_ip(), now, io.guarded());
    io.guarded().max_body = g.max_body();
    match verdict {
        Verdict::Pass => Judged::Pass,
        Verdict::Delay(d) => {
            io.guarded().delay_until = Some(now + d);
            Judged::Delay(now + d)
        }
        Verdict::Refuse(r) => Judged::Answer(r),
        Verdict::Abort => {
            io.abort();
            Judged::Answer(Box::new(Response::error(403, None).close()))
        }
    }
}

/// An exchange a rate limit delays: the handler is called when its time
/// comes (nginx `limit_req` without `nodelay`).
struct Delayed {
    until: std::time::Instant,
    handler: Rc<RefCell<Box<dyn Handler>>>,
    head: Box<RequestHead>,
    prefix: String,
    rules: Option<Rc<Applied>>,
    cache: Option<Rc<RouteCache>>,
}

impl crate::exchange::Task for Delayed {
    fn poll(&mut self, io: &mut Io, _body: &mut crate::exchange::RequestBody) -> Option<Reply> {
        if io.now() < self.until {
            io.wake_at(self.until);
            return None;
        }
        if let Some(c) = &self.cache {
            return Some(c.call(&self.head, io));
        }
        let path = self.head.path();
        let mut cx = Ctx {
            prefix: &self.prefix,
            rest: rest_of(&self.prefix, path),
            io,
        };
        let reply = self.handler.borrow_mut().handle(&self.head, &mut cx);
        Some(match &self.rules {
            Some(a) => a.reply(reply),
            None => reply,
        })
    }
}

impl Service for Router {
    fn check(&mut self, req: &RequestHead, io: &mut Io) -> Admit {
        let path = req.path();
        let found = self.find(path, req.method);
        let (guard, rules) = self.judged_by(found);
        if let Judged::Answer(r) = judge(guard, req, io) {
            return Admit::Answer(apply(rules, *r));
        }
        let i = match found {
            Found::Route(i) => i,
            Found::NotAllowed(m) => return Admit::Answer(self.own(not_allowed(m))),
            Found::None => return Admit::Answer(self.own(Response::error(404, None))),
        };
        let route = &mut self.routes[i];
        if req.method == Method::Options {
            return Admit::Drop;
        }
        if !route.methods.contains(req.method) {
            let r = not_allowed(methods_of(route));
            return Admit::Answer(apply(&route.rules, r));
        }
        let mut handler = route.handler.borrow_mut();
        if !handler.accepts_body() {
            return Admit::Drop;
        }
        let rest = rest_of(&route.prefix, path);
        let cx = Ctx {
            prefix: &route.prefix,
            rest,
            io,
        };
        match handler.admit(req, &cx) {
            Some(refusal) => Admit::Answer(apply(&route.rules, refusal)),
            None => Admit::Read,
        }
    }

    fn call(&mut self, req: &RequestHead, io: &mut Io) -> Reply {
        let path = req.path();
        let found = self.find(path, req.method);
        let (guard, rules) = self.judged_by(found);
        let judged = judge(guard, req, io);
        if let Judged::Answer(r) = judged {
            return apply(rules, *r).into();
        }
        let i = match found {
            Found::Route(i) => i,
            Found::NotAllowed(m) => return self.own(not_allowed(m)).into(),
            Found::None => return self.own(Response::error(404, None)).into(),
        };
        if req.method == Method::Options {
            let r = Response::new(204).header(
                "Allow",
                self.allowed(i, path).with(Method::Options).allow_header(),
            );
            return apply(&self.routes[i].rules, r).into();
        }
        let route = &mut self.routes[i];
        if !route.methods.contains(req.method) {
            return apply(&route.rules, not_allowed(methods_of(route))).into();
        }
        let reply = if let Judged::Delay(until) = judged {
            Reply::Pending(Box::new(Delayed {
                until,
                handler: route.handler.clone(),
                head: Box::new(req.clone()),
                prefix: route.prefix.clone(),
                rules: route.rules.clone(),
                cache: route.cache.clone(),
            }))
        } else if let Some(c) = &route.cache {
            // Its rules and compression apply inside the cache.
            return c.call(req, io);
        } else {
            let mut cx = Ctx {
                prefix: &route.prefix,
                rest: rest_of(&route.prefix, path),
                io,
            };
            let reply = route.handler.borrow_mut().handle(req, &mut cx);
            match &route.rules {
                Some(a) => a.reply(reply),
                None => reply,
            }
        };
        match &route.compression {
            Some(c) if route.cache.is_none() => c.reply(req, reply),
            _ => reply,
        }
    }

    fn methods(&self) -> Methods {
        self.routes
            .iter()
            .fold(Methods::NONE, |m, r| m.union(methods_of(r)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::handler::Respond;

    fn status(r: &mut Router, method: Method, target: &str) -> (u16, Option<String>) {
        let mut io = Io::new(std::time::Instant::now());
        let req = RequestHead::new(method, target);
        match r.call(&req, &mut io) {
            Reply::Ready(resp) => (
                resp.status(),
                resp.header_value("allow").map(str::to_string),
            ),
            other => panic!("{other:?}"),
        }
    }

    /// Route options with only `exact` and a method filter.
    fn opts(exact: bool, methods: Option<Methods>) -> RouteOptions {
        RouteOptions {
            exact,
            methods,
            rules: None,
            guard: None,
            compression: None,
            cache: None,
        }
    }

    fn respond(status: u16) -> Box<dyn Handler> {
        Box::new(Respond::new(status, "", &[]))
    }

    #[test]
    fn longest_prefix_exact_and_methods() {
        let post = Methods::of(&[Method::Post]);
        let get = Methods::of(&[Method::Get, Method::Head]);
        let mut r = Router::new()
            .route_with("/", respond(200), opts(false, None))
            .route_with("/api", respond(201), opts(false, Some(post)))
            .route_with("/api", respond(202), opts(false, Some(get)))
            .route_with("/api/v1", respond(203), opts(false, None))
            .route_with("/exact", respond(204), opts(true, None));
        assert_eq!(status(&mut r, Method::Get, "/x").0, 200);
        assert_eq!(status(&mut r, Method::Post, "/api/x").0, 201);
        assert_eq!(status(&mut r, Method::Get, "/api").0, 202);
        assert_eq!(status(&mut r, Method::Get, "/apix").0, 200);
        assert_eq!(status(&mut r, Method::Get, "/api/v1/z").0, 203);
        assert_eq!(
            status(&mut r, Method::Delete, "/api/z"),
            (405, Some("GET, HEAD, POST, OPTIONS".into()))
        );
        // OPTIONS lists what every route of the path takes.
        assert_eq!(
            status(&mut r, Method::Options, "/api/z"),
            (204, Some("GET, HEAD, POST, OPTIONS".into()))
        );
        assert_eq!(status(&mut r, Method::Get, "/exact").0, 204);
        assert_eq!(status(&mut r, Method::Get, "/exact/below").0, 200);
        let mut empty = Router::new();
        assert_eq!(status(&mut empty, Method::Get, "/").0, 404);
    }

    /// Answers every method, CONNECT included, with its status.
    #[derive(Debug)]
    struct Connects(u16);

    impl Handler for Connects {
        fn methods(&self) -> Methods {
            Methods::ANY.with(Method::Connect)
        }
        fn handle(&mut self, _req: &RequestHead, _cx: &mut Ctx<'_, '_>) -> Reply {
            Response::new(self.0).into()
        }
    }

    #[test]
    fn connect_goes_to_the_first_route_that_takes_it() {
        let get = Methods::of(&[Method::Get, Method::Head]);
        // A CONNECT names no path; a `methods` filter leaves it to the handler.
        let mut r = Router::new()
            .route_with("/", respond(200), opts(false, None))
            .route_with(
                "/deep/path",
                Box::new(Connects(201)),
                opts(false, Some(get)),
            )
            .route_with("/z", Box::new(Connects(202)), opts(false, None));
        assert_eq!(status(&mut r, Method::Connect, "example.com:443").0, 201);
        assert_eq!(status(&mut r, Method::Get, "/deep/path/x").0, 201);
        // A path's Allow never lists CONNECT.
        assert_eq!(
            status(&mut r, Method::Post, "/deep/path"),
            (405, Some("GET, HEAD, OPTIONS".into()))
        );
        assert_eq!(
            status(&mut r, Method::Options, "/z"),
            (
                204,
                Some("GET, HEAD, POST, PUT, DELETE, OPTIONS, TRACE, PATCH".into())
            )
        );
        // None takes it: 405.
        let mut r = Router::new().route_with("/", respond(200), opts(false, None));
        assert_eq!(status(&mut r, Method::Connect, "example.com:443").0, 405);
    }
}
