//! The zone's table: fixed buckets of eight slots of atomics.

use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};

use super::rate::{Decision, Rate};

/// Slots per bucket.
const WAYS: usize = 8;
/// No key.
const EMPTY: u64 = 0;
/// A slot being handed to a new key.
const CLAIMING: u64 = u64::MAX;

/// One key's figures.
#[derive(Debug, Default)]
struct Slot {
    key: AtomicU64,
    /// GCRA theoretical arrival time.
    tat: AtomicU64,
    /// Last use, for eviction.
    used: AtomicU64,
    /// A ban lasts until then.
    ban: AtomicU64,
    /// The start of the counting window.
    window: AtomicU64,
    /// Requests in the window.
    hits: AtomicU32,
    /// Requests in progress.
    count: AtomicU32,
}

impl Slot {
    /// Clears a slot's figures for a new key.
    fn reset(&self, now: u64) {
        self.tat.store(0, Ordering::Relaxed);
        self.ban.store(0, Ordering::Relaxed);
        self.window.store(0, Ordering::Relaxed);
        self.hits.store(0, Ordering::Relaxed);
        self.used.store(now, Ordering::Relaxed);
    }
}

/// A request counted in progress in a zone, given back by [`Zone::leave`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Token {
    slot: u32,
}

impl Token {
    /// A request the zone could not track (its bucket was full of keys with
    /// requests in progress): leaving it changes nothing.
    const UNTRACKED: Token = Token { slot: u32::MAX };
}

/// A table of keys shared by every worker (see the module docs).
#[derive(Debug)]
pub struct Zone {
    slots: Box<[Slot]>,
    /// Buckets − 1 (a power of two less one).
    mask: u64,
    evictions: AtomicU64,
    untracked: AtomicU64,
}

/// A real key's word (0 and `CLAIMING` are reserved).
fn word(key: u64) -> u64 {
    match key {
        EMPTY => 1,
        CLAIMING => CLAIMING - 1,
        k => k,
    }
}

impl Zone {
    /// A zone keeping about `keys` keys (rounded up to whole buckets of eight,
    /// a power of two of them).
    pub fn new(keys: usize) -> Zone {
        let buckets = keys.div_ceil(WAYS).max(1).next_power_of_two();
        let slots = (0..buckets * WAYS).map(|_| Slot::default()).collect();
        Zone {
            slots,
            mask: buckets as u64 - 1,
            evictions: AtomicU64::new(0),
            untracked: AtomicU64::new(0),
        }
    }

    /// Keys the table can hold.
    pub fn capacity(&self) -> usize {
        self.slots.len()
    }

    /// Keys evicted to make room so far.
    pub fn evictions(&self) -> u64 {
        self.evictions.load(Ordering::Relaxed)
    }

    /// Requests let through untracked (their bucket was full of busy keys).
    pub fn untracked(&self) -> u64 {
        self.untracked.load(Ordering::Relaxed)
    }

    /// Keys the table holds now (a scan of every slot: for metrics, not
    /// for the request path).
    pub fn keys(&self) -> usize {
        self.slots
            .iter()
            .filter(|s| !matches!(s.key.load(Ordering::Relaxed), EMPTY | CLAIMING))
            .count()
    }

    fn bucket(&self, key: u64) -> std::ops::Range<usize> {
        // The high bits: the low ones are the key word's too.
        let b = ((key >> 32) ^ key.rotate_left(17)) & self.mask;
        let start = b as usize * WAYS;
        start..start + WAYS
    }

    /// The slot of `key`, if it has one.
    fn find(&self, key: u64) -> Option<usize> {
        self.bucket(key)
            .find(|&i| self.slots[i].key.load(Ordering::Acquire) == key)
    }

    /// The slot of `key`, given one if it has none (`None`: its bucket is
    /// full of keys with requests in progress).
    fn slot(&self, key: u64, now: u64) -> Option<usize> {
        let key = word(key);
        for _ in 0..4 {
            if let Some(i) = self.find(key) {
                self.slots[i].used.store(now, Ordering::Relaxed);
                return Some(i);
            }
            // The victim: an empty slot, else the least recently used idle one.
            let victim = self
                .bucket(key)
                .filter(|&i| {
                    let s = &self.slots[i];
                    s.key.load(Ordering::Relaxed) != CLAIMING
                        && s.count.load(Ordering::Relaxed) == 0
                })
                .min_by_key(|&i| {
                    let s = &self.slots[i];
                    let k = s.key.load(Ordering::Relaxed);
                    (k != EMPTY, s.used.load(Ordering::Relaxed))
                });
            let Some(i) = victim else { break };
            let s = &self.slots[i];
            let old = s.key.load(Ordering::Relaxed);
            if old == CLAIMING
                || s.key
                    .compare_exchange(old, CLAIMING, Ordering::Acquire, Ordering::Relaxed)
                    .is_err()
            {
                continue; // another worker changed it: look again
            }
            s.reset(now);
            s.key.store(key, Ordering::Release);
            if old != EMPTY {
                self.evictions.fetch_add(1, Ordering::Relaxed);
            }
            // Two workers may have given the new key a slot each at once:
            // the lower slot wins, the other is emptied again.
            if let Some(j) = self
                .bucket(key)
                .find(|&j| j != i && self.slots[j].key.load(Ordering::Acquire) == key)
                && j < i
            {
                let _ = s
                    .key
                    .compare_exchange(key, EMPTY, Ordering::AcqRel, Ordering::Relaxed);
                return Some(j);
            }
            return Some(i);
        }
        self.untracked.fetch_add(1, Ordering::Relaxed);
        None
    }

    /// Judges a request of `key` at `now` against `rate` (nginx
    /// `limit_req`). A refused request changes nothing.
    pub fn request(&self, key: u64, now: u64, rate: &Rate) -> Decision {
        let Some(i) = self.slot(key, now) else {
            return Decision::Allow;
        };
        let tat = &self.slots[i].tat;
        let mut cur = tat.load(Ordering::Acquire);
        loop {
            let (d, next) = rate.judge(cur, now);
            let Some(next) = next else { return d };
            match tat.compare_exchange_weak(cur, next, Ordering::AcqRel, Ordering::Acquire) {
                Ok(_) => return d,
                Err(v) => cur = v,
            }
        }
    }

    /// Counts a request of `key` in progress unless `max` are already
    /// (`None`: refused). Give the token back with [`Zone::leave`].
    pub fn enter(&self, key: u64, now: u64, max: u32) -> Option<Token> {
        let Some(i) = self.slot(key, now) else {
            return Some(Token::UNTRACKED);
        };
        self.slots[i]
            .count
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |c| {
                (c < max).then_some(c + 1)
            })
            .ok()
            .map(|_| Token { slot: i as u32 })
    }

    /// A request counted by [`Zone::enter`] has ended.
    pub fn leave(&self, t: Token) {
        if let Some(s) = self.slots.get(t.slot as usize) {
            let _ = s
                .count
                .fetch_update(Ordering::AcqRel, Ordering::Acquire, |c| c.checked_sub(1));
        }
    }

    /// Slots holding `key` (one, once claims have settled).
    #[cfg(test)]
    pub(super) fn slots_of(&self, key: u64) -> usize {
        let key = word(key);
        self.bucket(key)
            .filter(|&i| self.slots[i].key.load(Ordering::Acquire) == key)
            .count()
    }

    /// Requests of `key` in progress.
    pub fn in_progress(&self, key: u64) -> u32 {
        self.find(word(key))
            .map_or(0, |i| self.slots[i].count.load(Ordering::Acquire))
    }

    /// How long `key` stays banned, if it is.
    pub fn banned(&self, key: u64, now: u64) -> Option<u64> {
        let i = self.find(word(key))?;
        let until = self.slots[i].ban.load(Ordering::Acquire);
        (until > now).then(|| until - now)
    }

    /// Bans `key` for `ns` from `now` (a longer ban already there stays).
    pub fn ban(&self, key: u64, now: u64, ns: u64) {
        if let Some(i) = self.slot(key, now) {
            self.slots[i]
                .ban
                .fetch_max(now.saturating_add(ns), Ordering::AcqRel);
        }
    }

    /// Counts a request of `key` in fixed windows of `interval` ns: whether
    /// it is past `max` in its window (IIS `maxRequests` per
    /// `requestIntervalInMilliseconds`).
    pub fn count(&self, key: u64, now: u64, interval: u64, max: u32) -> bool {
        let Some(i) = self.slot(key, now) else {
            return false;
        };
        let s = &self.slots[i];
        let start = s.window.load(Ordering::Acquire);
        if now.saturating_sub(start) >= interval
            && s.window
                .compare_exchange(start, now, Ordering::AcqRel, Ordering::Acquire)
                .is_ok()
        {
            s.hits.store(1, Ordering::Release);
            return 1 > max;
        }
        s.hits.fetch_add(1, Ordering::AcqRel).saturating_add(1) > max
    }
}
