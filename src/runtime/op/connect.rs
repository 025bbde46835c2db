//! Connecting a socket to a peer (an outgoing client connection): a TCP
//! address (IPv4 or IPv6) or a Unix-domain socket path.

use std::io;
use std::os::fd::{AsRawFd, BorrowedFd};

use io_uring::{opcode, squeue, types};
use socket2::SockAddr;

use crate::upstream::spec::Address;

/// A connect in flight: it owns the socket address the kernel reads.
#[derive(Debug)]
pub struct Connect {
    /// INVARIANT: boxed, so the address the entry points at does not move
    /// when the operation does; neither changed nor freed until the
    /// completion arrives (the operation holds it; `complete` drops it).
    addr: Box<SockAddr>,
}

/// The socket address of `addr`: a `sockaddr_in` / `sockaddr_in6`, or a
/// `sockaddr_un` (fails when the path does not fit in one).
pub fn sockaddr(addr: &Address) -> io::Result<SockAddr> {
    match addr {
        Address::Tcp(a) => Ok(SockAddr::from(*a)),
        Address::Unix(p) => SockAddr::unix(p),
    }
}

impl Connect {
    /// Starts connecting `fd` to `addr`: the entry to push, and the operation
    /// to keep until its completion. Fails, with nothing to push, only when
    /// `addr` has no socket address (a Unix path too long).
    pub fn start(
        fd: BorrowedFd<'_>,
        addr: &Address,
        user_data: u64,
    ) -> io::Result<(Connect, squeue::Entry)> {
        let addr = Box::new(sockaddr(addr)?);
        let e = opcode::Connect::new(types::Fd(fd.as_raw_fd()), addr.as_ptr().cast(), addr.len())
            .build()
            .user_data(user_data);
        Ok((Connect { addr }, e))
    }

    /// The completion arrived: connected, or the errno (`ECANCELED` when a
    /// cancel got to it first).
    pub fn complete(self, res: i32) -> Result<(), i32> {
        drop(self.addr);
        if res >= 0 { Ok(()) } else { Err(-res) }
    }
}
