//! Output buffers shared by a worker's connections, so that an idle
//! connection holds none and a busy one allocates none.

/// Output buffers larger than this are not kept.
const KEEP_MAX: usize = 256 * 1024;
/// Buffers above 64 KiB (streamed bodies) kept at most: a burst of large
/// responses leaves no more than 4 MiB held.
const KEEP_LARGE: usize = 16;
/// Capacity of a fresh buffer.
const FRESH: usize = 2048;
/// Buffers kept for reuse.
const KEEP: usize = 64;

/// A pool of empty byte buffers.
#[derive(Debug, Default)]
pub struct BufPool {
    bufs: Vec<Vec<u8>>,
    /// How many of `bufs` are above 64 KiB.
    large: usize,
}

impl BufPool {
    /// An empty pool.
    pub fn new() -> BufPool {
        BufPool::default()
    }

    /// An empty buffer with some capacity.
    pub fn get(&mut self) -> Vec<u8> {
        match self.bufs.pop() {
            Some(b) => {
                self.large -= usize::from(b.capacity() > 64 * 1024);
                b
            }
            None => Vec::with_capacity(FRESH),
        }
    }

    /// An empty buffer of at least `min` bytes: a kept one that large (the
    /// most recently kept first), else a fresh one.
    pub fn get_at_least(&mut self, min: usize) -> Vec<u8> {
        match self.bufs.iter().rposition(|b| b.capacity() >= min) {
            Some(i) => {
                let b = self.bufs.swap_remove(i);
                self.large -= usize::from(b.capacity() > 64 * 1024);
                b
            }
            None => Vec::with_capacity(min),
        }
    }

    /// Takes a buffer back (emptied); too large ones and extras are freed.
    pub fn put(&mut self, mut buf: Vec<u8>) {
        let large = buf.capacity() > 64 * 1024;
        if buf.capacity() > 0
            && buf.capacity() <= KEEP_MAX
            && self.bufs.len() < KEEP
            && (!large || self.large < KEEP_LARGE)
        {
            buf.clear();
            self.large += usize::from(large);
            self.bufs.push(buf);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn large_buffers_are_kept_up_to_a_bound() {
        let mut p = BufPool::new();
        for _ in 0..20 {
            p.put(Vec::with_capacity(128 * 1024));
        }
        assert_eq!(p.bufs.len(), KEEP_LARGE);
        p.put(Vec::with_capacity(512 * 1024));
        assert_eq!(p.bufs.len(), KEEP_LARGE, "beyond KEEP_MAX: freed");
        p.put(Vec::with_capacity(4096));
        assert_eq!(p.bufs.len(), KEEP_LARGE + 1, "small ones still kept");
        // Taking large ones back makes room again.
        while p.get().capacity() <= 64 * 1024 {}
        p.put(Vec::with_capacity(128 * 1024));
        assert_eq!(p.large, KEEP_LARGE);
    }

    #[test]
    fn a_large_enough_buffer_is_found_behind_small_ones() {
        let mut p = BufPool::new();
        p.put(Vec::with_capacity(100 * 1024));
        p.put(Vec::with_capacity(4096));
        assert!(p.get_at_least(96 * 1024).capacity() >= 100 * 1024);
        assert_eq!(p.large, 0);
        assert_eq!(p.get().capacity(), 4096, "the small one is still kept");
        // None that large: a fresh one.
        assert!(p.get_at_least(96 * 1024).capacity() >= 96 * 1024);
    }
}
