//! Sending an owned buffer on a socket.

use io_uring::{opcode, squeue, types};
use std::os::fd::{AsRawFd, BorrowedFd};

/// A send in flight: it owns the buffer the kernel reads.
#[derive(Debug)]
pub struct Send {
    /// INVARIANT: neither moved, resized nor freed until the completion
    /// arrives (the operation holds it; `complete` gives it back).
    buf: Vec<u8>,
}

impl Send {
    /// Starts sending `buf[from..]` on `fd`: the entry to push, and the
    /// operation to keep until its completion.
    pub fn start(
        fd: BorrowedFd<'_>,
        buf: Vec<u8>,
        from: usize,
        user_data: u64,
    ) -> (Send, squeue::Entry) {
        let rest = &buf[from..];
        let e = opcode::Send::new(
            types::Fd(fd.as_raw_fd()),
            rest.as_ptr(),
            rest.len().min(u32::MAX as usize) as u32,
        )
        .flags(libc::MSG_NOSIGNAL)
        .build()
        .user_data(user_data);
        (Send { buf }, e)
    }

    /// The completion arrived: the buffer back, and the bytes sent (or the
    /// errno).
    pub fn complete(self, res: i32) -> (Vec<u8>, Result<usize, i32>) {
        let r = if res >= 0 {
            Ok(res as usize)
        } else {
            Err(-res)
        };
        (self.buf, r)
    }
}
