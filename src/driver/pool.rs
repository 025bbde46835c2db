//! Output buffers shared by a worker's connections, so that an idle
//! connection holds none and a busy one allocates none.

/// Output buffers larger than this are not kept.
const KEEP_MAX: usize = 64 * 1024;
/// Capacity of a fresh buffer.
const FRESH: usize = 2048;
/// Buffers kept for reuse.
const KEEP: usize = 64;

/// A pool of empty byte buffers.
#[derive(Debug, Default)]
pub struct BufPool(Vec<Vec<u8>>);

impl BufPool {
    /// An empty pool.
    pub fn new() -> BufPool {
        BufPool::default()
    }

    /// An empty buffer with some capacity.
    pub fn get(&mut self) -> Vec<u8> {
        self.0.pop().unwrap_or_else(|| Vec::with_capacity(FRESH))
    }

    /// Takes a buffer back (emptied); too large ones and extras are freed.
    pub fn put(&mut self, mut buf: Vec<u8>) {
        if buf.capacity() > 0 && buf.capacity() <= KEEP_MAX && self.0.len() < KEEP {
            buf.clear();
            self.0.push(buf);
        }
    }
}
