//! Receiving into the provided-buffer ring (multishot where the kernel has
//! it): an idle connection holds no buffer of its own.

use io_uring::{cqueue, opcode, squeue, types};

use crate::runtime::bufring::Handout;
use std::os::fd::{AsRawFd, BorrowedFd};

/// The entry receiving on `fd` into buffers of group `bgid`.
pub fn entry(
    fd: BorrowedFd<'_>,
    bgid: u16,
    buf_size: u32,
    multishot: bool,
    user_data: u64,
) -> squeue::Entry {
    let fd = types::Fd(fd.as_raw_fd());
    let e = if multishot {
        opcode::RecvMulti::new(fd, bgid).build()
    } else {
        opcode::Recv::new(fd, std::ptr::null_mut(), buf_size)
            .buf_group(bgid)
            .build()
            .flags(squeue::Flags::BUFFER_SELECT)
    };
    e.user_data(user_data)
}

/// What a receive completion means.
#[derive(Debug)]
pub enum Received {
    /// Bytes in a provided buffer (recycle it when done).
    Data(Handout),
    /// The peer closed its side.
    Eof,
    /// No provided buffer was free: arm again next tick.
    Starved,
    /// Cancelled (a pause or a close asked for it).
    Cancelled,
    /// Multishot receive is not supported here.
    NoMultishot,
    /// The connection failed (reset, …).
    Failed(i32),
}

/// Decodes a receive completion; `more` tells whether the operation stays
/// armed (multishot) after it.
pub fn complete(res: i32, flags: u32, multishot: bool) -> (Received, bool) {
    let more = cqueue::more(flags);
    let r = if res > 0 {
        let bid = cqueue::buffer_select(flags).expect("a receive with data names its buffer");
        Received::Data(Handout::from_completion(bid, res as usize))
    } else if res == 0 {
        Received::Eof
    } else {
        match -res {
            libc::ENOBUFS => Received::Starved,
            libc::ECANCELED => Received::Cancelled,
            libc::EINVAL if multishot => Received::NoMultishot,
            e => Received::Failed(e),
        }
    };
    (r, more)
}

/// The provided buffer a completion names, if any (to recycle it unread).
pub fn buffer(flags: u32) -> Option<Handout> {
    cqueue::buffer_select(flags).map(|bid| Handout::from_completion(bid, 0))
}
