//! A hashed timer wheel for connection deadlines, driven by one periodic ring
//! timeout. Entries are never removed early: a connection keeps its own deadline
//! and a stale entry is recognized and dropped when its slot comes round.

/// Number of wheel slots. With 100 ms ticks the wheel spans 102.4 s; later
/// deadlines wait in their slot for the right lap.
const SLOTS: usize = 1024;

/// One scheduled deadline.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Entry {
    /// Connection slot.
    pub slot: u32,
    /// Connection generation.
    pub generation: u32,
    /// The tick it was scheduled for.
    pub at: u64,
}

/// The wheel.
#[derive(Debug)]
pub struct Wheel {
    slots: Vec<Vec<Entry>>,
    /// Every tick before this one has been expired.
    next: u64,
}

impl Default for Wheel {
    fn default() -> Self {
        Wheel::new()
    }
}

impl Wheel {
    /// An empty wheel at tick 0.
    pub fn new() -> Wheel {
        Wheel {
            slots: vec![Vec::new(); SLOTS],
            next: 0,
        }
    }

    /// Schedules `slot`/`generation` for tick `at` (a past tick fires on the next expiry).
    pub fn schedule(&mut self, slot: u32, generation: u32, at: u64) {
        let at = at.max(self.next);
        self.slots[(at % SLOTS as u64) as usize].push(Entry {
            slot,
            generation,
            at,
        });
    }

    /// Moves every entry due at or before tick `now` into `due`.
    pub fn expire(&mut self, now: u64, due: &mut Vec<Entry>) {
        if now < self.next {
            return;
        }
        // A long stall visits each slot at most once.
        let end = now.min(self.next + SLOTS as u64 - 1);
        for tick in self.next..=end {
            let bucket = &mut self.slots[(tick % SLOTS as u64) as usize];
            let mut i = 0;
            while i < bucket.len() {
                if bucket[i].at <= now {
                    due.push(bucket.swap_remove(i));
                } else {
                    i += 1;
                }
            }
        }
        self.next = now + 1;
    }

    /// Number of entries held (stale ones included).
    pub fn len(&self) -> usize {
        self.slots.iter().map(Vec::len).sum()
    }

    /// Whether no entries are held.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fires_in_order_of_ticks() {
        let mut w = Wheel::new();
        w.schedule(1, 0, 5);
        w.schedule(2, 0, 3);
        w.schedule(3, 0, 5 + SLOTS as u64);
        let mut due = Vec::new();
        w.expire(2, &mut due);
        assert!(due.is_empty());
        w.expire(4, &mut due);
        assert_eq!(due.iter().map(|e| e.slot).collect::<Vec<_>>(), vec![2]);
        due.clear();
        w.expire(6, &mut due);
        assert_eq!(due.iter().map(|e| e.slot).collect::<Vec<_>>(), vec![1]);
        due.clear();
        w.expire(SLOTS as u64 + 10, &mut due);
        assert_eq!(due.iter().map(|e| e.slot).collect::<Vec<_>>(), vec![3]);
        assert!(w.is_empty());
    }

    #[test]
    fn past_deadline_fires_next_expiry() {
        let mut w = Wheel::new();
        let mut due = Vec::new();
        w.expire(100, &mut due);
        w.schedule(7, 1, 50);
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
            w.schedule(i, 0, u64::from(i));
        }
        let mut due = Vec::new();
        w.expire(5000, &mut due);
        assert_eq!(due.len(), 3000);
    }
}
