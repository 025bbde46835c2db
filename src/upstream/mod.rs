//! Upstream servers: the `[[upstream]]` groups proxied to, their per-core
//! connection pools, balancers and health.
#![forbid(unsafe_code)]

pub mod balance;
pub mod health;
pub mod spec;
pub mod sticky;
