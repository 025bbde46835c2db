//! Active health checks: the verdicts shared by every core
//! ([`HealthCells`]), the run of results that flips one ([`Checker`]), and
//! whether one response passes ([`passes`]).
//!
//! Each server is checked by one core, which records the results in its
//! [`Checker`] and publishes a flip in the group's [`HealthCells`]; every
//! core reads the cells and tells its balancer
//! ([`super::balance::Balancer::set_active`]).

use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};

use super::spec::Health;

const UNKNOWN: u32 = 0;
const UP: u32 = 1;
const DOWN: u32 = 2;
/// The low bits of a cell hold the verdict; the rest count its changes.
const STATE: u32 = 3;

/// The active checks' verdict on each server of a group, shared by the
/// cores, with a count of its changes: a core that looks only now and then
/// still learns that a server went down and came back in between.
#[derive(Debug)]
pub struct HealthCells {
    cells: Vec<AtomicU32>,
}

impl HealthCells {
    /// Cells for `n` servers, none with a verdict yet.
    pub fn new(n: usize) -> Arc<HealthCells> {
        Arc::new(HealthCells {
            cells: (0..n).map(|_| AtomicU32::new(UNKNOWN)).collect(),
        })
    }

    /// The verdict on server `i`: `Some(true)` up, `Some(false)` down,
    /// `None` none yet (or no such server).
    pub fn get(&self, i: usize) -> Option<bool> {
        self.read(i).0
    }

    /// The verdict on server `i` and how many times it has changed.
    pub fn read(&self, i: usize) -> (Option<bool>, u32) {
        // Each cell stands alone: no other memory is published with it.
        let Some(c) = self.cells.get(i) else {
            return (None, 0);
        };
        let v = c.load(Ordering::Relaxed);
        let state = match v & STATE {
            UP => Some(true),
            DOWN => Some(false),
            _ => None,
        };
        (state, v >> 2)
    }

    /// Records the verdict on server `i` (ignored when there is none).
    /// Only the core that checks the server writes its cell.
    pub fn set(&self, i: usize, up: bool) {
        if let Some(c) = self.cells.get(i) {
            let state = if up { UP } else { DOWN };
            let v = c.load(Ordering::Relaxed);
            if v & STATE != state {
                let changes = (v >> 2).wrapping_add(1);
                c.store(changes << 2 | state, Ordering::Relaxed);
            }
        }
    }

    /// The number of servers.
    pub fn len(&self) -> usize {
        self.cells.len()
    }

    /// Whether there are no servers.
    pub fn is_empty(&self) -> bool {
        self.cells.is_empty()
    }
}

/// The check results of one server, on the core that checks it: `fails`
/// failures in a row take it down, `passes` passes in a row bring it back.
#[derive(Clone, Debug)]
pub struct Checker {
    up: bool,
    /// Results in a row that disagree with `up`.
    run: u32,
    passes: u32,
    fails: u32,
}

impl Checker {
    /// A checker for `h`'s thresholds; the server starts up.
    pub fn new(h: &Health) -> Checker {
        Checker {
            up: true,
            run: 0,
            passes: h.passes.max(1),
            fails: h.fails.max(1),
        }
    }

    /// Records one check; `Some(up)` when the state flips to `up`.
    pub fn record(&mut self, pass: bool) -> Option<bool> {
        if pass == self.up {
            self.run = 0;
            return None;
        }
        self.run += 1;
        let need = if pass { self.passes } else { self.fails };
        if self.run < need {
            return None;
        }
        self.up = pass;
        self.run = 0;
        Some(pass)
    }

    /// The state after the results so far.
    pub fn is_up(&self) -> bool {
        self.up
    }
}

/// Whether a check's response passes: its status is in one of
/// `expect_status`'s ranges and its body contains `expect_body`.
pub fn passes(h: &Health, status: u16, body: &[u8]) -> bool {
    let status_ok = h
        .expect_status
        .iter()
        .any(|&(lo, hi)| (lo..=hi).contains(&status));
    let want = h.expect_body.as_bytes();
    status_ok && (want.is_empty() || body.windows(want.len()).any(|w| w == want))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn health(passes: u32, fails: u32) -> Health {
        Health {
            passes,
            fails,
            ..Health::default()
        }
    }

    #[test]
    fn cells_start_unknown_and_are_shared() {
        let cells = HealthCells::new(3);
        assert_eq!(cells.len(), 3);
        assert_eq!(cells.get(0), None);
        let other = Arc::clone(&cells);
        std::thread::spawn(move || other.set(1, false))
            .join()
            .unwrap();
        assert_eq!(cells.get(1), Some(false));
        cells.set(1, true);
        assert_eq!(cells.get(1), Some(true));
        cells.set(7, true);
        assert_eq!(cells.get(7), None, "no such server");
        // Changes are counted; a verdict repeated is no change.
        assert_eq!(cells.read(1), (Some(true), 2));
        cells.set(1, true);
        assert_eq!(cells.read(1), (Some(true), 2));
        cells.set(1, false);
        cells.set(1, true);
        assert_eq!(cells.read(1), (Some(true), 4));
        assert_eq!(cells.read(0), (None, 0));
        fn shared<T: Send + Sync>() {}
        shared::<HealthCells>();
    }

    #[test]
    fn flips_after_runs_of_fails_and_passes() {
        let mut c = Checker::new(&health(2, 3));
        assert!(c.is_up());
        assert_eq!(c.record(false), None);
        assert_eq!(c.record(false), None);
        assert_eq!(c.record(true), None, "a pass breaks the run");
        assert_eq!(c.record(false), None);
        assert_eq!(c.record(false), None);
        assert_eq!(c.record(false), Some(false));
        assert!(!c.is_up());
        assert_eq!(c.record(false), None, "already down");
        assert_eq!(c.record(true), None);
        assert_eq!(c.record(false), None, "a failure breaks the run");
        assert_eq!(c.record(true), None);
        assert_eq!(c.record(true), Some(true));
        assert_eq!(c.record(true), None);
    }

    #[test]
    fn one_result_flips_with_thresholds_of_one() {
        let mut c = Checker::new(&health(1, 1));
        assert_eq!(c.record(false), Some(false));
        assert_eq!(c.record(true), Some(true));
    }

    #[test]
    fn status_ranges_and_body() {
        let mut h = Health::default();
        assert!(passes(&h, 200, b""));
        assert!(passes(&h, 399, b""));
        assert!(!passes(&h, 404, b""));
        assert!(!passes(&h, 199, b""));
        h.expect_status = vec![(200, 299), (404, 404)];
        assert!(passes(&h, 404, b""));
        assert!(!passes(&h, 301, b""));
        h.expect_body = "\"ok\"".into();
        assert!(passes(&h, 200, b"{\"status\":\"ok\"}"));
        assert!(!passes(&h, 200, b"{\"status\":\"degraded\"}"));
        assert!(!passes(&h, 200, b"ok"), "shorter than the substring");
        assert!(!passes(&h, 500, b"\"ok\""), "the status must pass too");
    }
}
