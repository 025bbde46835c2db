//! Sans-IO HTTP/1.1: one codec, two roles. No sockets, no clock reads: time
//! is passed in.
//!
//! - The server role reads requests and writes responses: [`parse`] reads
//!   request heads, [`body`] decodes request bodies, [`encode`] writes
//!   response heads and chunked bodies, and [`conn`] is the per-connection
//!   state machine that drives them and the handlers.
//! - The client role ([`client`]) writes requests and reads responses, for
//!   `peregrine load` and anything else that talks to a server: request heads
//!   out, response heads, bodies and connection reuse in. It shares [`body`]'s
//!   decoder and [`encode`]'s chunk writers with the server role.
#![forbid(unsafe_code)]

pub mod body;
pub mod client;
pub mod conn;
pub mod date;
pub mod encode;
pub mod error;
pub mod host;
pub mod limits;
pub mod method;
pub mod parse;
mod pool;
mod produce;
pub mod request;
pub mod response;
mod service;

pub use conn::{Admit, Conn, Env, Observer, Served, Service, Step, Waiting};
pub use error::Error;
pub use limits::{Limits, MinRate, Timeouts};
pub use method::{Method, Methods};
pub use produce::{FileStep, Ticket};
pub use request::{Request, TlsInfo, Version};
pub use response::{Body, FileBody, Response};

#[cfg(test)]
mod mutate;
#[cfg(test)]
mod split_tests;
