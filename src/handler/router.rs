//! Routing by longest path prefix.

use super::{Ctx, Handler};
use crate::http::{Admit, Method, Methods, Request, Response, Service};

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

fn not_allowed(methods: Methods) -> Response {
    Response::error(405, None).header("Allow", methods.with(Method::Options).allow_header())
}

impl Service for Router {
    fn check(&mut self, req: &Request<'_>) -> Admit {
        let Some(i) = self.find(req.path) else {
            return Admit::Answer(Response::error(404, None));
        };
        let h = &self.routes[i].handler;
        if req.method == Method::Options {
            Admit::Drop
        } else if !h.methods().contains(req.method) {
            Admit::Answer(not_allowed(h.methods()))
        } else if h.accepts_body() {
            Admit::Read
        } else {
            Admit::Drop
        }
    }

    fn call(&mut self, req: &Request<'_>) -> Response {
        let Some(i) = self.find(req.path) else {
            return Response::error(404, None);
        };
        let route = &mut self.routes[i];
        let methods = route.handler.methods();
        if req.method == Method::Options {
            return Response::new(204)
                .header("Allow", methods.with(Method::Options).allow_header());
        }
        if !methods.contains(req.method) {
            return not_allowed(methods);
        }
        let rest = if route.prefix == "/" {
            req.path
        } else {
            &req.path[route.prefix.len()..]
        };
        let cx = Ctx {
            prefix: &route.prefix,
            rest,
        };
        route.handler.handle(req, &cx)
    }

    fn methods(&self) -> Methods {
        self.routes
            .iter()
            .fold(Methods::NONE, |m, r| m.union(r.handler.methods()))
    }
}
