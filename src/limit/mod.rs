//! The server-wide limit tables (`[[limit.zone]]`): request rates (nginx
//! `limit_req`, as GCRA), concurrent requests (`limit_conn`) and bans (IIS
//! dynamic IP restrictions), kept per key in a fixed table of atomics that
//! every worker shares — the one piece of mutable state workers share
//! besides configuration generations. Time is passed in (nanoseconds on
//! one clock for all workers), so everything here runs in simulated time
//! in tests.
//!
//! ## Layout
//! A [`Zone`] is allocated once: `buckets × 8` slots, the bucket chosen by
//! the key's hash. A key lives in one slot of its bucket; a new key takes an
//! empty slot, else the least recently used one that holds no request in
//! progress (an approximation of LRU within eight slots). When all eight
//! hold requests, the key is not tracked and its requests are let through
//! (counted in [`Zone::untracked`]): a table too small fails open rather
//! than refusing clients it cannot tell apart.
//!
//! ## Concurrency
//! Every update is a load and a compare-and-swap on one word: the GCRA
//! "theoretical arrival time", the count of requests in progress, the ban's
//! end, the window's hits. No locks and no allocation after construction.
//! A slot changing keys is claimed by a compare-and-swap on its key word
//! through a reserved value, so two workers never give one slot to two new
//! keys; its counters are reset before the new key is published (Release)
//! and read after it is seen (Acquire). A worker that found the slot under
//! its old key an instant before may still land one update on it: the new
//! key's first figures can be off by that one request, which is the price
//! of eviction without locks. Counts of requests in progress belong to the
//! slot, not the key, and a slot holding any is never evicted, so enter and
//! leave always balance.
#![forbid(unsafe_code)]

mod rate;
mod table;

pub use rate::{Decision, Delay, Rate, parse_rate};
pub use table::{Token, Zone};

use std::hash::BuildHasher;
use std::sync::OnceLock;

/// The hash of a key's bytes: SipHash with keys drawn once per process, so
/// clients cannot choose keys that crowd one bucket (`header:NAME` keys are
/// theirs to choose).
pub fn key_hash(bytes: &[u8]) -> u64 {
    static STATE: OnceLock<std::collections::hash_map::RandomState> = OnceLock::new();
    STATE
        .get_or_init(std::collections::hash_map::RandomState::new)
        .hash_one(bytes)
}

#[cfg(test)]
mod tests;
