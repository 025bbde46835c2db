//! Peregrine: a thread-per-core io_uring HTTP/1.1 server.
#![deny(unsafe_op_in_unsafe_fn, clippy::undocumented_unsafe_blocks)]
#![warn(missing_docs)]

pub mod config;
pub mod conn;
pub mod handler;
pub mod http;
pub mod runtime;
pub mod server;

pub use server::{Running, Server};
