//! Connecting a socket to a peer (an outgoing client connection).

use std::net::SocketAddr;
use std::os::fd::{AsRawFd, BorrowedFd};

use io_uring::{opcode, squeue, types};
use socket2::SockAddr;

/// A connect in flight: it owns the socket address the kernel reads.
#[derive(Debug)]
pub struct Connect {
    /// INVARIANT: boxed, so the address the entry points at does not move
    /// when the operation does; neither changed nor freed until the
    /// completion arrives (the operation holds it; `complete` drops it).
    addr: Box<SockAddr>,
}

impl Connect {
    /// Starts connecting `fd` to `addr`: the entry to push, and the operation
    /// to keep until its completion.
    pub fn start(fd: BorrowedFd<'_>, addr: SocketAddr, user_data: u64) -> (Connect, squeue::Entry) {
        let addr = Box::new(SockAddr::from(addr));
        let e = opcode::Connect::new(types::Fd(fd.as_raw_fd()), addr.as_ptr().cast(), addr.len())
            .build()
            .user_data(user_data);
        (Connect { addr }, e)
    }

    /// The completion arrived: connected, or the errno (`ECANCELED` when a
    /// cancel got to it first).
    pub fn complete(self, res: i32) -> Result<(), i32> {
        drop(self.addr);
        if res >= 0 { Ok(()) } else { Err(-res) }
    }
}
