//! The response cache's sans-IO core (RFC 9111): `Cache-Control` and
//! freshness ([`control`], [`policy`]), keys and variants ([`key`]), and a
//! worker's store ([`store`]). A route's cache layer is
//! [`crate::site::cache`].
//!
//! Each worker keeps its own store (its share of `[cache] max_size`), like
//! everything else mutable on a core: a hit takes no lock and shares the
//! stored body with the response without copying it. The price is one
//! copy of a popular response per worker and one miss per worker.
#![forbid(unsafe_code)]

pub mod control;
pub mod key;
pub mod policy;
pub mod spec;
pub mod store;

pub use spec::{Bypass, CacheRule, StoreSpec};
pub use store::{BACKGROUND, CacheStats, Handle, Job, Purge, Store, Stored, local};
