//! Waiting until a socket can take more (between non-blocking splices).

use io_uring::{opcode, squeue, types};
use std::os::fd::{AsRawFd, BorrowedFd};

/// The entry waiting for `fd` to be writable.
pub fn writable(fd: BorrowedFd<'_>, user_data: u64) -> squeue::Entry {
    opcode::PollAdd::new(types::Fd(fd.as_raw_fd()), libc::POLLOUT as u32)
        .build()
        .user_data(user_data)
}
