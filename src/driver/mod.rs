//! Sans-IO connection drivers: all lifecycle policy of a connection, tested
//! without sockets in simulated time.
//!
//! A driver is fed what happened (bytes received, a send or file read
//! completed, the peer closed, time passed) and says what to do next as
//! [`Action`]s — it never touches a socket, a file descriptor or the clock.
//! The executor in `runtime/` turns actions into ring operations and their
//! completions back into driver calls (quinn's `poll_transmit` /
//! `poll_timeout` shape; hyper's separate read and write states).
//!
//! [`ServerConn`] is the server side of one accepted connection: a transport
//! (plain, or TLS through a rustls session) under the HTTP/1 codec, with
//! deadlines named for what they wait for. [`ClientConn`] is one outgoing
//! connection: a connect, then the HTTP/1 codec's client role, with connect
//! and response deadlines; its owner queues requests and reads
//! [`ClientEvent`]s. [`ClientTls`] is the TLS transport under it, for
//! upstream servers reached over TLS.
#![forbid(unsafe_code)]

mod action;
mod client;
mod client_end;
mod client_settings;
mod client_tls;
mod close;
mod deadline;
mod expiry;
mod file;
mod h2;
mod output;
mod pool;
mod proto;
mod server;
mod state;
mod tls;

#[cfg(test)]
mod tests;

pub use client::{ClientConn, ClientEnd, ClientEvent, ClientSettings, Request, Response};
pub use client_tls::ClientTls;
pub use deadline::{MinRate, Reason, Settings};
pub use pool::BufPool;
pub use server::{Action, Cx, Gauge, ServerConn};
pub use state::State;
