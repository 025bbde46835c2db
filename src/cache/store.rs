//! A worker's response store: stored responses by key and variant, the
//! least recently used evicted first within the worker's share of
//! `[cache] max_size`, the misses being filled (for `lock`), and the
//! revalidations running in the background.

use std::collections::HashMap;
use std::rc::Rc;
use std::time::Instant;

use slab::Slab;

use super::policy::Freshness;
use crate::exchange::{Io, Waker};
use crate::http::response::Text;

/// A stored response.
#[derive(Debug)]
pub struct Stored {
    /// Its status.
    pub status: u16,
    /// Its `Content-Type`.
    pub content_type: Option<Text>,
    /// Its other fields as they were sent (no `Age`, no `Cache-Status`).
    pub headers: Vec<(Text, Text)>,
    /// Its body.
    pub body: Rc<[u8]>,
    /// The request fields its `Vary` names (lowercase) and the values it was
    /// stored for, normalized.
    pub vary: Vec<(Box<str>, String)>,
    /// When it was stored (or last revalidated).
    pub stored_at: Instant,
    /// How it ages.
    pub fresh: Freshness,
}

impl Stored {
    /// Its age at `now`, seconds.
    pub fn age(&self, now: Instant) -> u64 {
        self.fresh.initial_age + now.saturating_duration_since(self.stored_at).as_secs()
    }

    /// Seconds of freshness left at `now` (negative: stale for that long).
    pub fn ttl(&self, now: Instant) -> i64 {
        self.fresh.lifetime as i64 - self.age(now) as i64
    }

    /// The first value of field `name`.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_ref())
    }

    /// What it counts for against the store's size.
    pub fn size(&self, key: &str) -> u64 {
        let fields: usize = self
            .headers
            .iter()
            .map(|(n, v)| n.len() + v.len() + 32)
            .sum();
        let vary: usize = self.vary.iter().map(|(n, v)| n.len() + v.len() + 32).sum();
        (self.body.len() + fields + vary + key.len() + 256) as u64
    }
}

/// Names a stored response; stale once it is evicted or replaced.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Handle {
    index: usize,
    generation: u32,
}

const NIL: usize = usize::MAX;

struct Slot {
    key: Rc<str>,
    item: Rc<Stored>,
    size: u64,
    generation: u32,
    /// A revalidation is running in the background.
    refreshing: bool,
    /// Toward the most recently used.
    newer: usize,
    /// Toward the least recently used.
    older: usize,
}

/// What a worker's store counted.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct CacheStats {
    /// Requests answered from the store while fresh.
    pub hits: u64,
    /// Requests the store had nothing for (or nothing usable).
    pub misses: u64,
    /// Requests answered with a stale response (while revalidating, or on
    /// an upstream error).
    pub stale: u64,
    /// Stale responses the upstream confirmed (304).
    pub revalidated: u64,
    /// Requests that bypassed the store.
    pub bypass: u64,
    /// Responses stored.
    pub stores: u64,
    /// Responses evicted to make room.
    pub evictions: u64,
    /// Responses removed by a purge.
    pub purged: u64,
    /// Bytes stored now.
    pub bytes: u64,
    /// Responses stored now.
    pub objects: u64,
    /// The worker's share of `max_size`.
    pub capacity: u64,
}

impl CacheStats {
    /// Two workers' counts as one.
    pub fn add(&mut self, o: &CacheStats) {
        self.hits += o.hits;
        self.misses += o.misses;
        self.stale += o.stale;
        self.revalidated += o.revalidated;
        self.bypass += o.bypass;
        self.stores += o.stores;
        self.evictions += o.evictions;
        self.purged += o.purged;
        self.bytes += o.bytes;
        self.objects += o.objects;
        self.capacity += o.capacity;
    }
}

/// Work the store runs without a client: a revalidation in the background.
pub trait Job {
    /// Moves it on; `true` once it is done.
    fn poll(&mut self, io: &mut Io) -> bool;
}

/// What an administrator removes from every worker's store.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Purge {
    /// Every variant of one key (`scheme://host/path?query`; without the
    /// scheme, over both).
    Key(String),
    /// Every key that starts with this (all of them for an empty one).
    Prefix(String),
}

/// Variants kept per key; storing one more drops the oldest.
const MAX_VARIANTS: usize = 8;

/// The waker of background jobs: it names no connection.
pub const BACKGROUND: Waker = Waker {
    slot: u32::MAX,
    generation: 0,
};

/// A worker's response store.
pub struct Store {
    index: HashMap<Rc<str>, Vec<usize>>,
    slots: Slab<Slot>,
    newest: usize,
    oldest: usize,
    max_bytes: u64,
    max_object: u64,
    next_generation: u32,
    /// Keys whose miss is being filled, with the exchanges waiting for it.
    fills: HashMap<Rc<str>, Vec<Waker>>,
    /// Exchanges to poll again (their fill ended).
    wakes: Vec<Waker>,
    jobs: Vec<Box<dyn Job>>,
    /// When a job asked to be polled again.
    jobs_due: Option<Instant>,
    stats: CacheStats,
}

impl std::fmt::Debug for Store {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Store")
            .field("stats", &self.stats)
            .finish_non_exhaustive()
    }
}

impl Default for Store {
    fn default() -> Store {
        Store::new(0, 0)
    }
}

thread_local! {
    static LOCAL: Rc<std::cell::RefCell<Store>> = Rc::default();
}

/// This worker's store (one per thread: a worker is one pinned thread).
pub fn local() -> Rc<std::cell::RefCell<Store>> {
    LOCAL.with(Rc::clone)
}

impl Store {
    /// A store of `max_bytes` keeping bodies of at most `max_object` bytes.
    pub fn new(max_bytes: u64, max_object: u64) -> Store {
        Store {
            index: HashMap::new(),
            slots: Slab::new(),
            newest: NIL,
            oldest: NIL,
            max_bytes,
            max_object,
            next_generation: 0,
            fills: HashMap::new(),
            wakes: Vec::new(),
            jobs: Vec::new(),
            jobs_due: None,
            stats: CacheStats::default(),
        }
    }

    /// Takes new limits; what no longer fits is evicted.
    pub fn configure(&mut self, max_bytes: u64, max_object: u64) {
        self.max_bytes = max_bytes;
        self.max_object = max_object;
        self.stats.capacity = max_bytes;
        while self.stats.bytes > self.max_bytes && self.oldest != NIL {
            self.evict();
        }
    }

    /// The largest body stored.
    pub fn max_object(&self) -> u64 {
        self.max_object.min(self.max_bytes)
    }

    /// The counts so far.
    pub fn stats(&self) -> CacheStats {
        self.stats
    }

    /// The counts, to bump.
    pub fn count(&mut self) -> &mut CacheStats {
        &mut self.stats
    }

    /// The variant of `key` whose `Vary` values `matches` accepts (the most
    /// recently stored first), made the most recently used; `Err(true)`:
    /// the key has variants, none for this request.
    pub fn lookup(
        &mut self,
        key: &str,
        mut matches: impl FnMut(&Stored) -> bool,
    ) -> Result<(Handle, Rc<Stored>), bool> {
        let Some(list) = self.index.get(key) else {
            return Err(false);
        };
        let Some(&i) = list.iter().rev().find(|&&i| matches(&self.slots[i].item)) else {
            return Err(true);
        };
        self.unlink(i);
        self.link_newest(i);
        let s = &self.slots[i];
        Ok((
            Handle {
                index: i,
                generation: s.generation,
            },
            s.item.clone(),
        ))
    }

    /// Whether `h` still names a stored response.
    fn live(&self, h: Handle) -> bool {
        self.slots
            .get(h.index)
            .is_some_and(|s| s.generation == h.generation)
    }

    /// Marks `h` as being revalidated in the background; `false` when it
    /// already is (or is gone).
    pub fn start_refresh(&mut self, h: Handle) -> bool {
        match self.slots.get_mut(h.index) {
            Some(s) if s.generation == h.generation && !s.refreshing => {
                s.refreshing = true;
                true
            }
            _ => false,
        }
    }

    /// The background revalidation of `h` ended without replacing it.
    pub fn end_refresh(&mut self, h: Handle) {
        if let Some(s) = self.slots.get_mut(h.index)
            && s.generation == h.generation
        {
            s.refreshing = false;
        }
    }

    /// Stores `item` under `key`, replacing the variant with the same `Vary`
    /// values; `false` when it is too large.
    pub fn insert(&mut self, key: &str, item: Stored) -> bool {
        let size = item.size(key);
        if item.body.len() as u64 > self.max_object() || size > self.max_bytes {
            return false;
        }
        let key: Rc<str> = match self.index.get_key_value(key) {
            Some((k, _)) => k.clone(),
            None => key.into(),
        };
        let same: Vec<usize> = self
            .index
            .get(&key)
            .map(|l| {
                l.iter()
                    .copied()
                    .filter(|&i| self.slots[i].item.vary == item.vary)
                    .collect()
            })
            .unwrap_or_default();
        for i in same {
            self.remove(i);
        }
        if self
            .index
            .get(&key)
            .is_some_and(|l| l.len() >= MAX_VARIANTS)
        {
            let first = self.index[&key][0];
            self.remove(first);
        }
        while self.stats.bytes + size > self.max_bytes && self.oldest != NIL {
            self.evict();
        }
        self.next_generation = self.next_generation.wrapping_add(1);
        let i = self.slots.insert(Slot {
            key: key.clone(),
            item: Rc::new(item),
            size,
            generation: self.next_generation,
            refreshing: false,
            newer: NIL,
            older: NIL,
        });
        self.link_newest(i);
        self.index.entry(key).or_default().push(i);
        self.stats.bytes += size;
        self.stats.objects += 1;
        self.stats.stores += 1;
        true
    }

    /// Replaces what `h` names (a revalidation freshened it); `false` when
    /// it is gone.
    pub fn replace(&mut self, h: Handle, item: Stored) -> bool {
        if !self.live(h) {
            return false;
        }
        let key = self.slots[h.index].key.clone();
        self.remove(h.index);
        self.insert(&key, item)
    }

    /// Removes every variant of `key`; how many there were.
    pub fn remove_key(&mut self, key: &str) -> usize {
        let list = self.index.get(key).cloned().unwrap_or_default();
        for &i in &list {
            self.remove(i);
        }
        list.len()
    }

    /// Removes every response whose key starts with `prefix` (all of them
    /// for an empty one); how many there were.
    pub fn purge_prefix(&mut self, prefix: &str) -> usize {
        let keys: Vec<Rc<str>> = self
            .index
            .keys()
            .filter(|k| k.starts_with(prefix))
            .cloned()
            .collect();
        let n: usize = keys.iter().map(|k| self.remove_key(k)).sum();
        self.stats.purged += n as u64;
        n
    }

    /// Carries out a purge; how many responses it removed. A key or prefix
    /// without a scheme (`shop.test/a.js`) applies to both `http://` and
    /// `https://`.
    pub fn purge(&mut self, p: &Purge) -> usize {
        let schemed = |k: &str| k.starts_with("http://") || k.starts_with("https://");
        match p {
            Purge::Key(k) if schemed(k) => self.purge_key(k),
            Purge::Key(k) => {
                self.purge_key(&format!("http://{k}")) + self.purge_key(&format!("https://{k}"))
            }
            Purge::Prefix(k) if k.is_empty() || schemed(k) => self.purge_prefix(k),
            Purge::Prefix(k) => {
                self.purge_prefix(&format!("http://{k}"))
                    + self.purge_prefix(&format!("https://{k}"))
            }
        }
    }

    /// Removes the responses of `key` for a purge; how many there were.
    pub fn purge_key(&mut self, key: &str) -> usize {
        let n = self.remove_key(key);
        self.stats.purged += n as u64;
        n
    }

    fn evict(&mut self) {
        let i = self.oldest;
        self.remove(i);
        self.stats.evictions += 1;
    }

    fn remove(&mut self, i: usize) {
        self.unlink(i);
        let s = self.slots.remove(i);
        self.stats.bytes -= s.size;
        self.stats.objects -= 1;
        if let Some(list) = self.index.get_mut(&s.key) {
            list.retain(|&j| j != i);
            if list.is_empty() {
                self.index.remove(&s.key);
            }
        }
    }

    fn unlink(&mut self, i: usize) {
        let (newer, older) = (self.slots[i].newer, self.slots[i].older);
        match newer {
            NIL => self.newest = older,
            n => self.slots[n].older = older,
        }
        match older {
            NIL => self.oldest = newer,
            o => self.slots[o].newer = newer,
        }
        self.slots[i].newer = NIL;
        self.slots[i].older = NIL;
    }

    fn link_newest(&mut self, i: usize) {
        self.slots[i].older = self.newest;
        self.slots[i].newer = NIL;
        if self.newest != NIL {
            let n = self.newest;
            self.slots[n].newer = i;
        }
        self.newest = i;
        if self.oldest == NIL {
            self.oldest = i;
        }
    }

    // ---- misses being filled ---------------------------------------------

    /// Takes the fill of `key`; `false` when another exchange has it.
    pub fn lock(&mut self, key: &str) -> bool {
        if self.fills.contains_key(key) {
            return false;
        }
        self.fills.insert(key.into(), Vec::new());
        true
    }

    /// Whether a fill of `key` is running.
    pub fn locked(&self, key: &str) -> bool {
        self.fills.contains_key(key)
    }

    /// Has `w` polled again when the fill of `key` ends; `false` when none
    /// is running.
    pub fn wait(&mut self, key: &str, w: Waker) -> bool {
        match self.fills.get_mut(key) {
            Some(list) => {
                if !list.contains(&w) {
                    list.push(w);
                }
                true
            }
            None => false,
        }
    }

    /// The fill of `key` ended (stored or not): its waiters are polled again.
    pub fn unlock(&mut self, key: &str) {
        if let Some(list) = self.fills.remove(key) {
            self.wakes.extend(list);
        }
    }

    /// Takes the exchanges to poll again.
    pub fn take_wakes(&mut self, into: &mut Vec<Waker>) {
        into.append(&mut self.wakes);
    }

    /// Whether exchanges wait to be polled again.
    pub fn has_wakes(&self) -> bool {
        !self.wakes.is_empty()
    }

    // ---- background jobs ---------------------------------------------------

    /// Runs `job` in the background, polled when its wake-ups come.
    pub fn spawn(&mut self, job: Box<dyn Job>) {
        self.jobs.push(job);
        self.jobs_due = Some(
            self.jobs_due
                .map_or_else(Instant::now, |t| t.min(Instant::now())),
        );
    }

    /// Takes the jobs to poll (the store is free meanwhile: they use it).
    pub fn take_jobs(&mut self) -> Vec<Box<dyn Job>> {
        self.jobs_due = None;
        std::mem::take(&mut self.jobs)
    }

    /// Puts back the jobs not done; `due`: when one asked to be polled.
    pub fn put_jobs(&mut self, jobs: Vec<Box<dyn Job>>, due: Option<Instant>) {
        let mut jobs = jobs;
        jobs.append(&mut self.jobs);
        self.jobs = jobs;
        self.jobs_due = match (self.jobs_due, due) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        };
    }

    /// A job's exchange has news: poll the jobs at `now`.
    pub fn wake_jobs(&mut self, now: Instant) {
        self.jobs_due = Some(self.jobs_due.map_or(now, |t| t.min(now)));
    }

    /// Whether jobs run.
    pub fn has_jobs(&self) -> bool {
        !self.jobs.is_empty()
    }

    /// When a job wants to be polled.
    pub fn jobs_due(&self) -> Option<Instant> {
        self.jobs_due
    }
}

#[cfg(test)]
#[path = "store_tests.rs"]
mod tests;
