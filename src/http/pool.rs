//! Finished exchanges kept per worker for their buffers.

use super::conn::Exchange;

/// Finished exchanges kept for reuse, so that a request on a kept-alive
/// connection allocates nothing; one per worker.
// Boxed: a connection holds its exchange as a box, moved in and out of the
// pool without copying.
#[allow(clippy::vec_box)]
#[derive(Default)]
pub struct ExchangePool(Vec<Box<Exchange>>);

impl std::fmt::Debug for ExchangePool {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "ExchangePool({})", self.0.len())
    }
}

impl ExchangePool {
    /// Most exchanges kept.
    const MAX: usize = 256;

    /// An empty pool.
    pub fn new() -> ExchangePool {
        ExchangePool::default()
    }

    /// A finished exchange to reuse, if one is kept.
    pub(super) fn take(&mut self) -> Option<Box<Exchange>> {
        self.0.pop()
    }

    /// Takes back an exchange whose response is done (so it holds no task
    /// or source); a body buffer it still holds is freed.
    pub(super) fn put(&mut self, mut ex: Box<Exchange>) {
        debug_assert!(ex.producing.is_done());
        if self.0.len() < Self::MAX {
            ex.body.discard();
            ex.guarded.clear();
            self.0.push(ex);
        }
    }
}
