//! The handler API: a [`Handler`] trait, a [`Router`] mapping path prefixes to
//! handlers, the static-file handler and the built-in dynamic handlers.
//!
//! Handlers are created per worker (see [`crate::server::Server::router`]), so
//! they may keep per-core state such as caches without locks.
#![forbid(unsafe_code)]

pub mod builtins;
pub mod conditional;
pub mod file_cache;
pub mod mime;
pub mod path;
pub mod redirect;
pub mod router;
pub mod static_files;

use crate::http::{Methods, Request, Response};

pub use builtins::{Echo, Json, Plaintext, TlsInfoHandler};
pub use router::Router;
pub use static_files::StaticFiles;

/// Where a request was routed.
#[derive(Clone, Copy, Debug)]
pub struct Ctx<'a> {
    /// The route prefix that matched, e.g. `/static`.
    pub prefix: &'a str,
    /// The rest of the (still percent-encoded) path after the prefix, starting
    /// with `/` or empty.
    pub rest: &'a str,
}

/// Something that answers requests for a route.
pub trait Handler {
    /// Methods this handler supports; others are answered 405 with `Allow`.
    fn methods(&self) -> Methods {
        Methods::GET_HEAD
    }

    /// Whether request bodies are handed to [`Handler::handle`]. When `false`,
    /// a body is read and dropped and the handler sees an empty one.
    fn accepts_body(&self) -> bool {
        false
    }

    /// Answers a request whose method is in [`Handler::methods`].
    fn handle(&mut self, req: &Request<'_>, cx: &Ctx<'_>) -> Response;
}
