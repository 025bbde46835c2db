//! Sending owned buffers on a socket: one buffer, or an output buffer and a
//! body buffer behind it in one gather send (so a large body piece is not
//! copied behind its head).

use io_uring::{opcode, squeue, types};
use std::os::fd::{AsRawFd, BorrowedFd};

/// A gather send's buffers, its message header and the header's pieces.
#[derive(Debug)]
pub struct Gather {
    /// INVARIANT: neither moved, resized nor freed until the completion
    /// arrives (as `tail`).
    buf: Vec<u8>,
    tail: Vec<u8>,
    /// INVARIANT: points at `iov`, which points into `buf` and `tail` only.
    hdr: libc::msghdr,
    iov: [libc::iovec; 2],
}

/// A send in flight: it owns the buffers the kernel reads.
#[derive(Debug)]
pub enum Send {
    /// One buffer.
    /// INVARIANT: neither moved, resized nor freed until the completion
    /// arrives (the operation holds it; `complete` gives it back).
    One(Vec<u8>),
    /// Two buffers; boxed, so the header stays where the entry points until
    /// the completion arrives.
    Gather(Box<Gather>),
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
        (Send::One(buf), e)
    }

    /// Starts sending `buf[from..]` and then all of `tail` in one gather
    /// send on `fd`.
    pub fn start_gather(
        fd: BorrowedFd<'_>,
        buf: Vec<u8>,
        from: usize,
        tail: Vec<u8>,
        user_data: u64,
    ) -> (Send, squeue::Entry) {
        let piece = |b: &[u8]| libc::iovec {
            iov_base: b.as_ptr() as *mut libc::c_void,
            iov_len: b.len(),
        };
        let iov = [piece(&buf[from..]), piece(&tail)];
        // SAFETY: `msghdr` is a plain C struct of integers and pointers, for
        // which all-zero bytes are a valid value (no name, no control data,
        // no flags); the pieces are set below.
        let hdr: libc::msghdr = unsafe { std::mem::zeroed() };
        // Moving the vectors into the box leaves their bytes where they are.
        let mut g = Box::new(Gather {
            buf,
            tail,
            hdr,
            iov,
        });
        g.hdr.msg_iov = g.iov.as_mut_ptr();
        g.hdr.msg_iovlen = g.iov.len();
        let e = opcode::SendMsg::new(types::Fd(fd.as_raw_fd()), &g.hdr)
            .flags(libc::MSG_NOSIGNAL as u32)
            .build()
            .user_data(user_data);
        (Send::Gather(g), e)
    }

    /// The completion arrived: the buffers back (a gather send's tail
    /// with them), and the bytes sent (or the errno).
    pub fn complete(self, res: i32) -> (Vec<u8>, Option<Vec<u8>>, Result<usize, i32>) {
        let r = if res >= 0 {
            Ok(res as usize)
        } else {
            Err(-res)
        };
        match self {
            Send::One(buf) => (buf, None, r),
            Send::Gather(g) => {
                let Gather { buf, tail, .. } = *g;
                (buf, Some(tail), r)
            }
        }
    }
}
