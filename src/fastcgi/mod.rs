//! FastCGI (the 1996 specification, as php-fpm speaks it), sans-IO: the
//! records a request is sent as ([`record`]), and the responder's records
//! read back into an HTTP/1.1 response stream ([`inbound`]) so that the
//! upstream engine's response reader, pool and limits apply unchanged.
#![forbid(unsafe_code)]

pub mod app;
pub mod inbound;
pub mod record;

pub use app::{FastCgiApp, Kind, Script, params};
pub use inbound::{FcgiError, Inbound};
