//! A hashed timer wheel for connection deadlines, driven by one periodic ring
//! timeout. Each key (a connection's slab index) holds at most one entry; a
//! position table indexed by key makes `set` and `clear` O(1), so memory
//! follows the number of live deadlines rather than the connection rate.

/// Number of wheel buckets. With 100 ms ticks the wheel spans 102.4 s; later
/// deadlines wait in their bucket for the right lap.
const SLOTS: usize = 1024;

/// A bucket or the position table above this capacity is cut to twice its
/// length once it is less than a quarter full.
const KEEP: usize = 64;

/// `Pos::bucket` of a key without an entry.
const NONE: u32 = u32::MAX;

/// One scheduled deadline.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Entry {
    /// Connection slot (the key).
    pub slot: u32,
    /// Connection generation.
    pub generation: u32,
    /// The tick it was scheduled for.
    pub at: u64,
}

/// Where a key's entry lives.
#[derive(Clone, Copy, Debug)]
struct Pos {
    bucket: u32,
    index: u32,
}

const FREE: Pos = Pos {
    bucket: NONE,
    index: 0,
};

/// The wheel.
#[derive(Debug)]
pub struct Wheel {
    buckets: Vec<Vec<Entry>>,
    /// Indexed by key.
    pos: Vec<Pos>,
    /// Entries held.
    len: usize,
    /// Every tick before this one has been expired.
    next: u64,
}

impl Default for Wheel {
    fn default() -> Self {
        Wheel::new()
    }
}

/// Cuts `v`'s capacity to twice its length (at least `KEEP`) when it is large
/// and less than a quarter full. Growth and shrinking stay amortized O(1).
fn relax<T>(v: &mut Vec<T>) {
    let cap = v.capacity();
    if cap > KEEP && v.len() < cap / 4 {
        v.shrink_to((2 * v.len()).max(KEEP));
    }
}

impl Wheel {
    /// An empty wheel at tick 0.
    pub fn new() -> Wheel {
        Wheel {
            buckets: vec![Vec::new(); SLOTS],
            pos: Vec::new(),
            len: 0,
            next: 0,
        }
    }

    /// Sets key's deadline to tick `at`, replacing any earlier one for the
    /// same key. A past tick fires on the next expiry.
    pub fn set(&mut self, key: u32, generation: u32, at: u64) {
        let at = at.max(self.next);
        let k = key as usize;
        if k >= self.pos.len() {
            self.pos.resize(k + 1, FREE);
        }
        let p = self.pos[k];
        if p.bucket != NONE {
            self.unlink(p);
            self.len -= 1;
        }
        let b = (at % SLOTS as u64) as usize;
        let bucket = &mut self.buckets[b];
        bucket.push(Entry {
            slot: key,
            generation,
            at,
        });
        self.pos[k] = Pos {
            bucket: b as u32,
            index: (bucket.len() - 1) as u32,
        };
        self.len += 1;
    }

    /// Schedules `slot`/`generation` for tick `at` unless the key already has
    /// an entry for the same generation at that tick or earlier.
    pub fn schedule(&mut self, slot: u32, generation: u32, at: u64) {
        if let Some(e) = self.entry(slot)
            && e.generation == generation
            && e.at <= at.max(self.next)
        {
            return;
        }
        self.set(slot, generation, at);
    }

    /// Removes key's deadline, if any (a connection being freed).
    pub fn clear(&mut self, key: u32) {
        let k = key as usize;
        let Some(&p) = self.pos.get(k) else {
            return;
        };
        if p.bucket == NONE {
            return;
        }
        self.unlink(p);
        relax(&mut self.buckets[p.bucket as usize]);
        self.release(k);
    }

    /// The tick key is scheduled for, if any.
    pub fn get(&self, key: u32) -> Option<u64> {
        self.entry(key).map(|e| e.at)
    }

    /// Moves every entry due at or before tick `now` into `due` and removes
    /// them.
    pub fn expire(&mut self, now: u64, due: &mut Vec<Entry>) {
        if now < self.next {
            return;
        }
        // A long stall visits each bucket at most once.
        let end = now.min(self.next + SLOTS as u64 - 1);
        for tick in self.next..=end {
            let b = (tick % SLOTS as u64) as usize;
            let mut i = 0;
            while i < self.buckets[b].len() {
                let e = self.buckets[b][i];
                if e.at <= now {
                    self.unlink(Pos {
                        bucket: b as u32,
                        index: i as u32,
                    });
                    self.release(e.slot as usize);
                    due.push(e);
                } else {
                    i += 1;
                }
            }
            // The cursor will not come back to this bucket for a lap.
            let bucket = &mut self.buckets[b];
            if bucket.is_empty() {
                *bucket = Vec::new();
            } else {
                relax(bucket);
            }
        }
        self.next = now + 1;
    }

    /// Number of entries held.
    pub fn len(&self) -> usize {
        self.len
    }

    /// Whether no entries are held.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Total capacity held by buckets and the position table, in elements.
    pub fn capacity(&self) -> usize {
        self.buckets.iter().map(Vec::capacity).sum::<usize>() + self.pos.capacity()
    }

    /// Releases spare capacity (called when idle).
    pub fn shrink(&mut self) {
        for b in &mut self.buckets {
            b.shrink_to_fit();
        }
        self.trim();
        self.pos.shrink_to_fit();
    }

    fn entry(&self, key: u32) -> Option<Entry> {
        let p = *self.pos.get(key as usize)?;
        (p.bucket != NONE).then(|| self.buckets[p.bucket as usize][p.index as usize])
    }

    /// Takes the entry at `p` out of its bucket, fixing the position of the
    /// entry moved into its place. The key's own position is left to the
    /// caller.
    fn unlink(&mut self, p: Pos) {
        let bucket = &mut self.buckets[p.bucket as usize];
        bucket.swap_remove(p.index as usize);
        if let Some(moved) = bucket.get(p.index as usize) {
            self.pos[moved.slot as usize].index = p.index;
        }
    }

    /// Marks key `k` as having no entry and counts the entry gone.
    fn release(&mut self, k: usize) {
        self.pos[k] = FREE;
        self.len -= 1;
        if k + 1 == self.pos.len() {
            self.trim();
            relax(&mut self.pos);
        }
    }

    /// Drops unused keys from the end of the position table.
    fn trim(&mut self) {
        while self.pos.last().is_some_and(|p| p.bucket == NONE) {
            self.pos.pop();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeMap;

    fn slots(due: &[Entry]) -> Vec<u32> {
        due.iter().map(|e| e.slot).collect()
    }

    /// Checks that every key's position points at its own entry.
    fn check(w: &Wheel) {
        let mut n = 0;
        for (b, bucket) in w.buckets.iter().enumerate() {
            for (i, e) in bucket.iter().enumerate() {
                let p = w.pos[e.slot as usize];
                assert_eq!((p.bucket as usize, p.index as usize), (b, i));
                assert_eq!(e.at % SLOTS as u64, b as u64);
                n += 1;
            }
        }
        assert_eq!(n, w.len());
        assert_eq!(w.pos.iter().filter(|p| p.bucket != NONE).count(), n);
    }

    #[test]
    fn fires_in_order_of_ticks() {
        let mut w = Wheel::new();
        w.set(1, 0, 5);
        w.set(2, 0, 3);
        w.set(3, 0, 5 + SLOTS as u64);
        let mut due = Vec::new();
        w.expire(2, &mut due);
        assert!(due.is_empty());
        w.expire(4, &mut due);
        assert_eq!(slots(&due), vec![2]);
        due.clear();
        w.expire(6, &mut due);
        assert_eq!(slots(&due), vec![1]);
        due.clear();
        // Bucket 5 has been passed once; the lapped entry stays until its tick.
        w.expire(SLOTS as u64 + 4, &mut due);
        assert!(due.is_empty());
        assert_eq!(w.get(3), Some(5 + SLOTS as u64));
        w.expire(SLOTS as u64 + 10, &mut due);
        assert_eq!(slots(&due), vec![3]);
        assert!(w.is_empty());
    }

    #[test]
    fn fires_over_several_laps() {
        let mut w = Wheel::new();
        let far = 3 * SLOTS as u64 + 17;
        w.set(9, 4, far);
        let mut due = Vec::new();
        for now in 0..far {
            w.expire(now, &mut due);
            assert!(due.is_empty(), "fired early at {now}");
        }
        w.expire(far, &mut due);
        assert_eq!(
            due,
            vec![Entry {
                slot: 9,
                generation: 4,
                at: far
            }]
        );
    }

    #[test]
    fn past_deadline_fires_next_expiry() {
        let mut w = Wheel::new();
        let mut due = Vec::new();
        w.expire(100, &mut due);
        w.set(7, 1, 50);
        w.expire(101, &mut due);
        assert_eq!(
            due,
            vec![Entry {
                slot: 7,
                generation: 1,
                at: 101
            }]
        );
    }

    #[test]
    fn long_stall_catches_up() {
        let mut w = Wheel::new();
        for i in 0..3000u32 {
            w.set(i, 0, u64::from(i));
        }
        let mut due = Vec::new();
        w.expire(5000, &mut due);
        assert_eq!(due.len(), 3000);
        assert!(w.is_empty());
        // Every bucket was passed and freed; the position table keeps a little.
        assert!(w.capacity() <= KEEP, "capacity {}", w.capacity());
        w.shrink();
        assert_eq!(w.capacity(), 0);
    }

    #[test]
    fn reset_moves_the_entry() {
        let mut w = Wheel::new();
        w.set(1, 0, 10);
        w.set(2, 0, 10);
        w.set(3, 0, 10);
        w.set(1, 0, 20);
        assert_eq!(w.len(), 3);
        assert_eq!(w.get(1), Some(20));
        check(&w);
        let mut due = Vec::new();
        w.expire(15, &mut due);
        assert_eq!(due.len(), 2);
        assert!(!slots(&due).contains(&1));
        due.clear();
        // Moving earlier works too.
        w.set(1, 5, 16);
        w.expire(16, &mut due);
        assert_eq!(
            due,
            vec![Entry {
                slot: 1,
                generation: 5,
                at: 16
            }]
        );
        assert!(w.is_empty());
    }

    #[test]
    fn clear_removes() {
        let mut w = Wheel::new();
        for k in 0..10 {
            w.set(k, 0, 7);
        }
        w.clear(3);
        w.clear(0);
        w.clear(9);
        w.clear(9);
        w.clear(1000);
        assert_eq!(w.len(), 7);
        assert_eq!(w.get(3), None);
        check(&w);
        let mut due = Vec::new();
        w.expire(7, &mut due);
        let mut fired = slots(&due);
        fired.sort_unstable();
        assert_eq!(fired, vec![1, 2, 4, 5, 6, 7, 8]);
    }

    #[test]
    fn schedule_keeps_an_earlier_entry_of_the_same_generation() {
        let mut w = Wheel::new();
        w.schedule(4, 1, 10);
        w.schedule(4, 1, 30);
        assert_eq!(w.get(4), Some(10));
        w.schedule(4, 1, 5);
        assert_eq!(w.get(4), Some(5));
        // A new connection in the same slot replaces the old one's entry.
        w.schedule(4, 2, 30);
        assert_eq!(w.get(4), Some(30));
        assert_eq!(w.len(), 1);
        let mut due = Vec::new();
        w.expire(40, &mut due);
        assert_eq!(
            due,
            vec![Entry {
                slot: 4,
                generation: 2,
                at: 30
            }]
        );
    }

    #[test]
    fn memory_follows_live_entries() {
        let mut w = Wheel::new();
        let mut due = Vec::new();
        let mut now = 0;
        // 100k short connections, 50 alive at a time, each re-armed a few
        // times before it is freed.
        for i in 0..100_000u32 {
            let key = i % 50;
            w.set(key, i, now + 50);
            w.set(key, i, now + 1300);
            w.clear(key);
            w.set(key, i + 1, now + 20);
            if i % 100 == 0 {
                now += 1;
                w.expire(now, &mut due);
            }
        }
        assert!(w.len() <= 50);
        assert!(w.capacity() < 4 * SLOTS, "capacity {}", w.capacity());
        for k in 0..50 {
            w.clear(k);
        }
        assert_eq!(w.len(), 0);
        assert!(w.capacity() < 4 * SLOTS, "capacity {}", w.capacity());
        w.shrink();
        assert_eq!(w.capacity(), 0);
    }

    #[test]
    fn a_burst_gives_memory_back() {
        let mut w = Wheel::new();
        for k in 0..20_000u32 {
            w.set(k, 0, 10);
        }
        assert!(w.capacity() >= 40_000);
        for k in (0..20_000u32).rev() {
            w.clear(k);
        }
        assert!(w.is_empty());
        assert!(w.capacity() <= 2 * KEEP, "capacity {}", w.capacity());
        for k in 0..20_000u32 {
            w.set(k, 0, 10);
        }
        let mut due = Vec::new();
        w.expire(10, &mut due);
        assert_eq!(due.len(), 20_000);
        assert!(w.capacity() <= KEEP, "capacity {}", w.capacity());
    }

    /// xorshift64: enough randomness for a model test.
    struct Rng(u64);

    impl Rng {
        fn next(&mut self) -> u64 {
            self.0 ^= self.0 << 13;
            self.0 ^= self.0 >> 7;
            self.0 ^= self.0 << 17;
            self.0
        }

        fn below(&mut self, n: u64) -> u64 {
            self.next() % n
        }
    }

    #[test]
    fn matches_a_simple_model() {
        for seed in 1..=8u64 {
            let mut rng = Rng(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15));
            let mut w = Wheel::new();
            // key -> (generation, at)
            let mut model: BTreeMap<u32, (u32, u64)> = BTreeMap::new();
            let mut now = 0u64;
            // The wheel's first unexpired tick.
            let mut next = 0u64;
            let mut due = Vec::new();
            for step in 0..20_000u32 {
                let key = rng.below(300) as u32;
                match rng.below(10) {
                    0..=4 => {
                        let at = now + rng.below(3 * SLOTS as u64);
                        let at = if rng.below(20) == 0 { at / 2 } else { at };
                        w.set(key, step, at);
                        model.insert(key, (step, at.max(next)));
                    }
                    5 | 6 => {
                        w.clear(key);
                        model.remove(&key);
                    }
                    7 => {
                        let at = now + rng.below(2 * SLOTS as u64);
                        let generation = rng.below(2) as u32;
                        w.schedule(key, generation, at);
                        let at = at.max(next);
                        match model.get(&key) {
                            Some(&(g, a)) if g == generation && a <= at => {}
                            _ => {
                                model.insert(key, (generation, at));
                            }
                        }
                    }
                    _ => {
                        now += match rng.below(50) {
                            0 => rng.below(2 * SLOTS as u64),
                            _ => rng.below(8),
                        };
                        due.clear();
                        w.expire(now, &mut due);
                        next = next.max(now + 1);
                        let mut got: Vec<(u32, u32, u64)> =
                            due.iter().map(|e| (e.slot, e.generation, e.at)).collect();
                        got.sort_unstable();
                        let mut want = Vec::new();
                        model.retain(|&k, &mut (g, a)| {
                            let fire = a <= now;
                            if fire {
                                want.push((k, g, a));
                            }
                            !fire
                        });
                        assert_eq!(got, want, "seed {seed} step {step} now {now}");
                    }
                }
                assert_eq!(w.len(), model.len());
                assert_eq!(w.get(key), model.get(&key).map(|&(_, a)| a));
            }
            check(&w);
        }
    }
}
