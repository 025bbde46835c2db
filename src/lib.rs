//! Peregrine: a thread-per-core io_uring HTTP/1.1 server.
#![deny(unsafe_op_in_unsafe_fn, clippy::undocumented_unsafe_blocks)]
#![warn(missing_docs)]

pub mod http;
pub mod conn;
pub mod runtime;
pub mod handler;
pub mod config;
pub mod server;

pub use server::{Running, Server};
