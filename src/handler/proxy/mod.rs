//! The reverse proxy handler.

pub mod headers;
