//! The handler API: a [`Handler`] trait, a [`Router`] mapping path prefixes to
//! handlers, the static-file handler and the built-in dynamic handlers.
//!
//! Handlers are created per worker (see [`crate::server::Server::router`]), so
//! they may keep per-core state such as caches without locks.
#![forbid(unsafe_code)]

pub mod builtins;
pub mod conditional;
pub mod fastcgi;
pub mod file_cache;
pub mod file_compress;
pub mod glob;
pub mod listing;
pub mod mime;
pub mod path;
pub mod proxy;
pub mod redirect;
pub mod respond;
pub mod router;
pub mod static_files;
pub mod stream;

use crate::exchange::{Io, Reply, RequestHead};
use crate::http::{Methods, Response};

pub use builtins::{Echo, Json, Plaintext, TlsInfoHandler};
pub use redirect::Redirect;
pub use respond::Respond;
pub use router::Router;
pub use static_files::StaticFiles;
pub use stream::{Delay, Sse, Stream};

/// Where a request was routed, and the worker facade for answering later.
#[derive(Debug)]
pub struct Ctx<'a, 'io> {
    /// The route prefix that matched, e.g. `/static`.
    pub prefix: &'a str,
    /// The rest of the (still percent-encoded) path after the prefix, starting
    /// with `/` or empty.
    pub rest: &'a str,
    /// The current time, and wake-ups on the worker's ring for replies that
    /// come later ([`Reply::Pending`], [`Reply::Stream`]).
    pub io: &'a mut Io<'io>,
}

/// Something that answers requests for a route.
pub trait Handler {
    /// Methods this handler supports; others are answered 405 with `Allow`.
    /// A router reads them once, when the handler's route is added.
    fn methods(&self) -> Methods {
        Methods::GET_HEAD
    }

    /// Whether request bodies stream to the reply's task or body source (see
    /// [`crate::exchange::RequestBody`]). When `false`, a body is read and
    /// dropped and the handler sees an empty one.
    fn accepts_body(&self) -> bool {
        false
    }

    /// Looks at the head of a request that has a body, before a byte of it is
    /// read: a response here (413, 403, …) refuses the body.
    fn admit(&mut self, req: &RequestHead, cx: &Ctx<'_, '_>) -> Option<Response> {
        let _ = (req, cx);
        None
    }

    /// Answers a request whose method is in [`Handler::methods`]: a response
    /// now (`Response` converts into [`Reply::Ready`]), a streamed body, or a
    /// task that answers later. Never blocks.
    fn handle(&mut self, req: &RequestHead, cx: &mut Ctx<'_, '_>) -> Reply;
}
