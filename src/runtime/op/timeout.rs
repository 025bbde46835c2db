//! The worker's periodic tick.

use io_uring::{opcode, squeue, types};

/// The entry firing once after `ts`. `ts` must outlive the operation (the
/// worker keeps it boxed for its whole life).
pub fn entry(ts: &types::Timespec, user_data: u64) -> squeue::Entry {
    opcode::Timeout::new(ts).build().user_data(user_data)
}
