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
}
