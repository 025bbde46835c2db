//! Accepting connections on a listening socket (multishot where the kernel
//! has it).

use io_uring::{opcode, squeue, types};
use std::os::fd::{AsRawFd, BorrowedFd};

/// The entry for accepting on `listener`; accepted sockets are non-blocking
/// and close-on-exec.
pub fn entry(listener: BorrowedFd<'_>, multishot: bool, user_data: u64) -> squeue::Entry {
    let fd = types::Fd(listener.as_raw_fd());
    let flags = libc::SOCK_CLOEXEC | libc::SOCK_NONBLOCK;
    let e = if multishot {
        opcode::AcceptMulti::new(fd).flags(flags).build()
    } else {
        opcode::Accept::new(fd, std::ptr::null_mut(), std::ptr::null_mut())
            .flags(flags)
            .build()
    };
    e.user_data(user_data)
}

/// What an accept completion means.
#[derive(Debug, PartialEq, Eq)]
pub enum Accepted {
    /// A new connection's descriptor (the caller takes ownership).
    Conn(i32),
    /// Out of descriptors or memory: pause, existing connections go on.
    Starved(i32),
    /// Multishot accept is not supported here: fall back to single shots.
    NoMultishot,
    /// Cancelled or another error: nothing to do.
    Other(i32),
}

/// Decodes an accept completion's result.
pub fn complete(res: i32, multishot: bool) -> Accepted {
    if res >= 0 {
        return Accepted::Conn(res);
    }
    match -res {
        e @ (libc::EMFILE | libc::ENFILE | libc::ENOBUFS | libc::ENOMEM) => Accepted::Starved(e),
        libc::EINVAL if multishot => Accepted::NoMultishot,
        e => Accepted::Other(e),
    }
}
