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
    /// Last use, for eviction (in units of 2^20 ns).
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
    /// Clears a slot's figures for a new key (`used` in its units).
    fn reset(&self, used: u64) {
        self.tat.store(0, Ordering::Relaxed);
        self.ban.store(0, Ordering::Relaxed);
        self.window.store(0, Ordering::Relaxed);
        self.hits.store(0, Ordering::Relaxed);
        self.used.store(used, Ordering::Relaxed);
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
    mask: u64,
    /// The bucket mix's key, drawn per zone: clients cannot tell which
    /// keys share a bucket.
    seed: u64,
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

/// `used` is kept in units of 2^20 ns (about a millisecond) and stored only
/// when it changes: an eviction needs no finer order, and a key's slot is
/// not written on every request from every core.
const USED_SHIFT: u32 = 20;

/// A key's slot, found once for several checks of one request.
#[derive(Clone, Copy, Debug)]
pub struct Entry<'a> {
    zone: &'a Zone,
    i: usize,
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
            seed: super::seeds()[0],
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

    #[inline]
    fn bucket(&self, key: u64) -> std::ops::Range<usize> {
        let b = super::mix(key ^ self.seed) & self.mask;
        let start = b as usize * WAYS;
        start..start + WAYS
    }

    /// The slot of `key`, if it has one.
    #[inline]
    fn find(&self, key: u64) -> Option<usize> {
        self.bucket(key)
            .find(|&i| self.slots[i].key.load(Ordering::Acquire) == key)
    }

    /// The entry of `key`, if it has one (nothing is claimed).
    pub fn get(&self, key: u64) -> Option<Entry<'_>> {
        self.find(word(key)).map(|i| Entry { zone: self, i })
    }

    /// The entry of `key`, given a slot if it has none (`None`: its bucket
    /// is full of keys with requests in progress; counted as untracked).
    #[inline]
    pub fn entry(&self, key: u64, now: u64) -> Option<Entry<'_>> {
        let used = now >> USED_SHIFT;
        let key = word(key);
        match self.find(key) {
            Some(i) => Some(self.touch(i, used)),
            None => self.claim(key, used),
        }
    }

    /// Notes the use of slot `i`.
    #[inline]
    fn touch(&self, i: usize, used: u64) -> Entry<'_> {
        let u = &self.slots[i].used;
        if u.load(Ordering::Relaxed) != used {
            u.store(used, Ordering::Relaxed);
        }
        Entry { zone: self, i }
    }

    /// Gives `key` (a word) a slot: a key's first request, or one racing
    /// another worker's claim.
    #[cold]
    #[inline(never)]
    fn claim(&self, key: u64, used: u64) -> Option<Entry<'_>> {
        for _ in 0..4 {
            if let Some(i) = self.find(key) {
                return Some(self.touch(i, used));
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
            s.reset(used);
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
                return Some(Entry { zone: self, i: j });
            }
            return Some(Entry { zone: self, i });
        }
        self.untracked.fetch_add(1, Ordering::Relaxed);
        None
    }

    /// Judges a request of `key` at `now` against `rate` (nginx
    /// `limit_req`). A refused request changes nothing.
    pub fn request(&self, key: u64, now: u64, rate: &Rate) -> Decision {
        self.entry(key, now)
            .map_or(Decision::Allow, |e| e.request(now, rate))
    }

    /// Counts a request of `key` in progress unless `max` are already
    /// (`None`: refused). Give the token back with [`Zone::leave`].
    pub fn enter(&self, key: u64, now: u64, max: u32) -> Option<Token> {
        match self.entry(key, now) {
            Some(e) => e.enter(max),
            None => Some(Token::UNTRACKED),
        }
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
        self.get(key)
            .map_or(0, |e| e.slot().count.load(Ordering::Acquire))
    }

    /// How long `key` stays banned, if it is.
    pub fn banned(&self, key: u64, now: u64) -> Option<u64> {
        self.get(key)?.banned(now)
    }

    /// Bans `key` for `ns` from `now` (a longer ban already there stays).
    pub fn ban(&self, key: u64, now: u64, ns: u64) {
        if let Some(e) = self.entry(key, now) {
            e.ban(now, ns);
        }
    }

    /// Counts a request of `key` in fixed windows of `interval` ns: whether
    /// it is past `max` in its window (IIS `maxRequests` per
    /// `requestIntervalInMilliseconds`).
    pub fn count(&self, key: u64, now: u64, interval: u64, max: u32) -> bool {
        self.entry(key, now)
            .is_some_and(|e| e.count(now, interval, max))
    }
}

impl Entry<'_> {
    #[inline]
    fn slot(&self) -> &Slot {
        &self.zone.slots[self.i]
    }

    /// [`Zone::request`] on this entry.
    #[inline]
    pub fn request(&self, now: u64, rate: &Rate) -> Decision {
        let tat = &self.slot().tat;
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

    /// [`Zone::enter`] on this entry.
    #[inline]
    pub fn enter(&self, max: u32) -> Option<Token> {
        self.slot()
            .count
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |c| {
                (c < max).then_some(c + 1)
            })
            .ok()
            .map(|_| Token {
                slot: self.i as u32,
            })
    }

    /// [`Zone::banned`] on this entry.
    #[inline]
    pub fn banned(&self, now: u64) -> Option<u64> {
        let until = self.slot().ban.load(Ordering::Acquire);
        (until > now).then(|| until - now)
    }

    /// [`Zone::ban`] on this entry.
    pub fn ban(&self, now: u64, ns: u64) {
        self.slot()
            .ban
            .fetch_max(now.saturating_add(ns), Ordering::AcqRel);
    }

    /// [`Zone::count`] on this entry.
    #[inline]
    pub fn count(&self, now: u64, interval: u64, max: u32) -> bool {
        let s = self.slot();
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

    /// Whether this is `zone`'s entry.
    pub fn of(&self, zone: &Zone) -> bool {
        std::ptr::eq(self.zone, zone)
    }
}
