//! Cancelling one operation by its `user_data`.

use io_uring::{opcode, squeue};

/// The entry cancelling the operation whose `user_data` is `target`; its own
/// completion (`user_data`) carries nothing to act on.
pub fn entry(target: u64, user_data: u64) -> squeue::Entry {
    opcode::AsyncCancel::new(target)
        .build()
        .user_data(user_data)
}
