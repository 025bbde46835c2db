//! Application pools (`[[pool]]`): processes Peregrine starts, checks,
//! recycles and stops, serving an upstream group whose servers they are.
//!
//! ```text
//! supervisor thread ── Run (sans-IO) ── spawn / probe / signal / reap
//!        │ publishes lanes
//!        ▼
//!   PoolCells (atomics) ◀── claim / release ── each worker's hub
//! ```
#![forbid(unsafe_code)]

pub mod cells;
pub mod run;
pub mod spec;
pub mod status;
pub mod supervisor;

pub use cells::PoolCells;
pub use spec::PoolSpec;
pub use supervisor::Supervisor;

use std::sync::Arc;

/// The pools of a generation's upstream groups, with their cells.
pub fn of(upstreams: &[Arc<crate::upstream::Upstream>]) -> Vec<(Arc<PoolSpec>, Arc<PoolCells>)> {
    upstreams
        .iter()
        .filter_map(|u| Some((u.spec.pool.clone()?, u.pool.clone()?)))
        .collect()
}
