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
pub use table::{Entry, Token, Zone};

use std::hash::BuildHasher;
use std::net::IpAddr;
use std::sync::OnceLock;

fn state() -> &'static std::collections::hash_map::RandomState {
    static STATE: OnceLock<std::collections::hash_map::RandomState> = OnceLock::new();
    STATE.get_or_init(std::collections::hash_map::RandomState::new)
}

/// The hash of a key's bytes: SipHash with keys drawn once per process, so
/// clients cannot choose keys that collide (`header:NAME` keys are theirs
/// to choose).
pub fn key_hash(bytes: &[u8]) -> u64 {
    state().hash_one(bytes)
}

/// Two random words, new on every call (from the process's SipHash keys
/// and a counter).
pub(crate) fn seeds() -> [u64; 2] {
    static N: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    let n = N.fetch_add(2, std::sync::atomic::Ordering::Relaxed);
    [state().hash_one(n), state().hash_one(n + 1) | 1]
}

/// A 64-bit finalizer with full avalanche (splitmix64's): every output bit
/// depends on every input bit, so keys alike in all but a few bits (the
/// addresses of one network) spread over every bucket. A bijection: two
/// words never meet in it.
pub(crate) fn mix(z: u64) -> u64 {
    let z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    let z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

/// The key of an address, cheaper than [`key_hash`]: an IPv4 address (or
/// an IPv4-mapped IPv6 one) is its own key, so no two collide; an IPv6
/// address is mixed with keys drawn once per process into a word with the
/// top bit set (never an IPv4 key). Its halves go in one after the other
/// through a bijection, so two addresses share a key only when their words
/// differ in the top bit alone, and which pairs those are cannot be told
/// without the process's keys.
pub fn ip_key(ip: IpAddr) -> u64 {
    let v6 = match ip {
        IpAddr::V4(a) => return (1 << 32) | u64::from(a.to_bits()),
        IpAddr::V6(a) => match a.to_ipv4_mapped() {
            Some(v4) => return (1 << 32) | u64::from(v4.to_bits()),
            None => a.to_bits(),
        },
    };
    static SEED: OnceLock<[u64; 2]> = OnceLock::new();
    let s = SEED.get_or_init(seeds);
    let (hi, lo) = ((v6 >> 64) as u64, v6 as u64);
    mix(mix(hi ^ s[0]) ^ lo ^ s[1]) | (1 << 63)
}

#[cfg(test)]
mod tests;
