//! Sans-IO HTTP/1.1: parsing, body decoding, response encoding and the
//! per-connection state machine. No sockets, no clock reads: time is passed in.
#![forbid(unsafe_code)]

pub mod body;
pub mod conn;
pub mod date;
pub mod encode;
pub mod error;
pub mod host;
pub mod limits;
pub mod method;
pub mod parse;
mod produce;
pub mod request;
pub mod response;

pub use conn::{Admit, Conn, Env, Observer, Served, Service, Step, Waiting};
pub use error::Error;
pub use limits::{Limits, MinRate, Timeouts};
pub use method::{Method, Methods};
pub use produce::{FileStep, Ticket};
pub use request::{Request, TlsInfo, Version};
pub use response::{Body, FileBody, Response};

#[cfg(test)]
mod split_tests;
