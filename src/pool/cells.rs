//! What a pool's supervisor and the workers share: per lane, whether an
//! instance serves on it and where, the requests sent to it and those in
//! flight; and per pool, the demand that starts an on-demand pool and
//! whether requests wait for an instance or are refused.
//!
//! A worker takes a lane with [`PoolCells::claim`] before it sends a
//! request there; the supervisor stops a lane with [`PoolCells::publish`]
//! and waits for [`PoolCells::active`] to reach zero before it signals
//! the instance. Both sides use sequentially consistent operations, so a
//! claim either sees the lane stopped or is seen by the supervisor.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering::SeqCst};

/// One lane: an instance's place in the group.
#[derive(Debug, Default)]
struct Lane {
    /// `changes << 33 | serving << 32 | ident`: the ident is the port (or
    /// the instance number of a Unix socket).
    state: AtomicU64,
    /// Requests claimed on it, ever.
    requests: AtomicU64,
    /// Requests claimed and not yet finished.
    active: AtomicU32,
}

/// A lane as a worker last read it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub struct LaneView {
    /// How many times the lane changed.
    pub changes: u32,
    /// An instance serves on it.
    pub serving: bool,
    /// Its port, or instance number for a Unix socket.
    pub ident: u32,
}

impl LaneView {
    fn decode(v: u64) -> LaneView {
        LaneView {
            changes: (v >> 33) as u32,
            serving: v >> 32 & 1 == 1,
            ident: v as u32,
        }
    }
}

/// The cells of one pool.
#[derive(Debug)]
pub struct PoolCells {
    lanes: Vec<Lane>,
    /// Bumped by a request that found no instance serving.
    demand: AtomicU64,
    /// Requests are refused at once (rapid-fail protection stopped the
    /// pool) instead of waiting for an instance.
    refusing: AtomicBool,
}

impl PoolCells {
    /// Cells for `lanes` lanes, none serving.
    pub fn new(lanes: usize) -> Arc<PoolCells> {
        Arc::new(PoolCells {
            lanes: (0..lanes).map(|_| Lane::default()).collect(),
            demand: AtomicU64::new(0),
            refusing: AtomicBool::new(false),
        })
    }

    /// The number of lanes.
    pub fn lanes(&self) -> usize {
        self.lanes.len()
    }

    /// Lane `i` now.
    pub fn view(&self, i: usize) -> LaneView {
        self.lanes.get(i).map_or_else(LaneView::default, |l| {
            LaneView::decode(l.state.load(SeqCst))
        })
    }

    /// (Supervisor) Lane `i` serves `ident`, or stops serving.
    pub fn publish(&self, i: usize, serving: bool, ident: u32) {
        if let Some(l) = self.lanes.get(i) {
            let old = LaneView::decode(l.state.load(SeqCst));
            let changes = u64::from(old.changes.wrapping_add(1) & 0x7fff_ffff);
            l.state.store(
                changes << 33 | u64::from(serving) << 32 | u64::from(ident),
                SeqCst,
            );
        }
    }

    /// (Worker) Takes lane `i` for one request, if it is still as `seen`.
    pub fn claim(&self, i: usize, seen: LaneView) -> bool {
        let Some(l) = self.lanes.get(i) else {
            return false;
        };
        l.active.fetch_add(1, SeqCst);
        let now = LaneView::decode(l.state.load(SeqCst));
        if now != seen || !now.serving {
            l.active.fetch_sub(1, SeqCst);
            return false;
        }
        l.requests.fetch_add(1, SeqCst);
        true
    }

    /// (Worker) A request claimed on lane `i` finished.
    pub fn release(&self, i: usize) {
        if let Some(l) = self.lanes.get(i) {
            let _ = l
                .active
                .fetch_update(SeqCst, SeqCst, |n| Some(n.saturating_sub(1)));
        }
    }

    /// Requests in flight on lane `i`.
    pub fn active(&self, i: usize) -> u32 {
        self.lanes.get(i).map_or(0, |l| l.active.load(SeqCst))
    }

    /// Requests ever claimed on lane `i`.
    pub fn requests(&self, i: usize) -> u64 {
        self.lanes.get(i).map_or(0, |l| l.requests.load(SeqCst))
    }

    /// (Worker) A request found no instance serving.
    pub fn want(&self) {
        self.demand.fetch_add(1, SeqCst);
    }

    /// How many requests found no instance serving, ever.
    pub fn demand(&self) -> u64 {
        self.demand.load(SeqCst)
    }

    /// (Supervisor) Requests are refused (true) or wait (false).
    pub fn set_refusing(&self, on: bool) {
        self.refusing.store(on, SeqCst);
    }

    /// Whether requests are refused at once.
    pub fn refusing(&self) -> bool {
        self.refusing.load(SeqCst)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_claim_holds_only_while_the_lane_is_as_seen() {
        let c = PoolCells::new(2);
        assert!(!c.view(0).serving);
        c.publish(0, true, 8001);
        let seen = c.view(0);
        assert_eq!((seen.serving, seen.ident, seen.changes), (true, 8001, 1));
        assert!(c.claim(0, seen));
        assert_eq!((c.active(0), c.requests(0)), (1, 1));
        c.publish(0, false, 8001);
        // The lane changed since: the claim is refused and undone.
        assert!(!c.claim(0, seen));
        assert_eq!((c.active(0), c.requests(0)), (1, 1));
        c.release(0);
        c.release(0);
        assert_eq!(c.active(0), 0);
        assert!(!c.claim(5, seen));
    }

    #[test]
    fn demand_and_refusal() {
        let c = PoolCells::new(1);
        c.want();
        c.want();
        assert_eq!(c.demand(), 2);
        assert!(!c.refusing());
        c.set_refusing(true);
        assert!(c.refusing());
    }
}
