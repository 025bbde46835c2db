//! Routing by longest path prefix.

use super::{Ctx, Handler};
use crate::exchange::{Io, Reply, RequestHead};
use crate::http::{Admit, Method, Methods, Response, Service};

struct Route {
    prefix: String,
    handler: Box<dyn Handler>,
}

/// Maps path prefixes to handlers. A prefix matches the path itself and
/// anything below it (`/api` matches `/api` and `/api/x`, not `/apix`); the
/// longest matching prefix wins.
#[derive(Default)]
pub struct Router {
    routes: Vec<Route>,
}

impl std::fmt::Debug for Router {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_list()
            .entries(self.routes.iter().map(|r| &r.prefix))
            .finish()
    }
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
    pub fn route(mut self, prefix: impl Into<String>, handler: impl Handler + 'static) -> Router {
        let mut prefix = prefix.into();
        assert!(
            prefix.starts_with('/'),
            "route prefix {prefix:?} must start with '/'"
        );
        if prefix.len() > 1 && prefix.ends_with('/') {
            prefix.pop();
        }
        self.routes.push(Route {
            prefix,
            handler: Box::new(handler),
        });
        self.routes
            .sort_by_key(|r| std::cmp::Reverse(r.prefix.len()));
        self
    }

    /// Index of the route for `path`.
    fn find(&self, path: &str) -> Option<usize> {
        self.routes.iter().position(|r| {
            r.prefix == "/"
                || path
                    .strip_prefix(r.prefix.as_str())
                    .is_some_and(|rest| rest.is_empty() || rest.starts_with('/'))
        })
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
    Response::error(405, None).header("Allow", methods.with(Method::Options).allow_header())
}

impl Service for Router {
    fn check(&mut self, req: &RequestHead, io: &mut Io) -> Admit {
        let path = req.path();
        let Some(i) = self.find(path) else {
            return Admit::Answer(Response::error(404, None));
        };
        let route = &mut self.routes[i];
        let methods = route.handler.methods();
        if req.method == Method::Options {
            return Admit::Drop;
        }
        if !methods.contains(req.method) {
            return Admit::Answer(not_allowed(methods));
        }
        if !route.handler.accepts_body() {
            return Admit::Drop;
        }
        let rest = rest_of(&route.prefix, path);
        let cx = Ctx {
            prefix: &route.prefix,
            rest,
            io,
        };
        match route.handler.admit(req, &cx) {
            Some(refusal) => Admit::Answer(refusal),
            None => Admit::Read,
        }
    }

    fn call(&mut self, req: &RequestHead, io: &mut Io) -> Reply {
        let path = req.path();
        let Some(i) = self.find(path) else {
            return Response::error(404, None).into();
        };
        let route = &mut self.routes[i];
        let methods = route.handler.methods();
        if req.method == Method::Options {
            return Response::new(204)
                .header("Allow", methods.with(Method::Options).allow_header())
                .into();
        }
        if !methods.contains(req.method) {
            return not_allowed(methods).into();
        }
        let mut cx = Ctx {
            prefix: &route.prefix,
            rest: rest_of(&route.prefix, path),
            io,
        };
        route.handler.handle(req, &mut cx)
    }

    fn methods(&self) -> Methods {
        self.routes
            .iter()
            .fold(Methods::NONE, |m, r| m.union(r.handler.methods()))
    }
}
