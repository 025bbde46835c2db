//! Splicing file pages into a pipe, and from the pipe to a socket.

use std::fs::File;
use std::os::fd::{AsRawFd, BorrowedFd};
use std::rc::Rc;

use io_uring::{opcode, squeue, types};

/// A splice from a file into a pipe in flight: it owns the file.
#[derive(Debug)]
pub struct SpliceIn {
    _file: Rc<File>,
}

impl SpliceIn {
    /// Starts moving up to `len` bytes of `file` at `offset` into `pipe`.
    pub fn start(
        file: Rc<File>,
        offset: u64,
        pipe: BorrowedFd<'_>,
        len: u32,
        user_data: u64,
    ) -> (SpliceIn, squeue::Entry) {
        let e = opcode::Splice::new(
            types::Fd(file.as_raw_fd()),
            offset as i64,
            types::Fd(pipe.as_raw_fd()),
            -1,
            len,
        )
        .build()
        .user_data(user_data);
        (SpliceIn { _file: file }, e)
    }
}

/// The entry moving `len` bytes from `pipe` to `socket`. The socket is
/// non-blocking, so a full socket answers `EAGAIN` instead of parking a
/// kernel worker thread.
pub fn out(
    pipe: BorrowedFd<'_>,
    socket: BorrowedFd<'_>,
    len: u32,
    user_data: u64,
) -> squeue::Entry {
    opcode::Splice::new(
        types::Fd(pipe.as_raw_fd()),
        -1,
        types::Fd(socket.as_raw_fd()),
        -1,
        len,
    )
    .flags(libc::SPLICE_F_NONBLOCK)
    .build()
    .user_data(user_data)
}
