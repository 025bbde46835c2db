//! Listening sockets: one `SO_REUSEPORT` socket per worker for each address.

use std::io;
use std::net::SocketAddr;

use socket2::{Domain, Protocol, SockAddr, Socket, Type};

fn socket_for(addr: &SocketAddr) -> io::Result<Socket> {
    let s = Socket::new(
        Domain::for_address(*addr),
        Type::STREAM.cloexec(),
        Some(Protocol::TCP),
    )?;
    if addr.is_ipv6() {
        s.set_only_v6(true)?;
    }
    s.set_reuse_address(true)?;
    Ok(s)
}

/// Binds `count` listening sockets to `addr` with `SO_REUSEPORT` so the kernel
/// spreads connections over them. Returns the sockets and the bound address
/// (with the real port when `addr` asked for port 0).
///
/// The address is first bound once without `SO_REUSEPORT`, so another process
/// already listening there is reported as "address in use" instead of silently
/// sharing the port.
pub fn bind_group(
    addr: SocketAddr,
    count: usize,
    backlog: i32,
) -> io::Result<(Vec<Socket>, SocketAddr)> {
    if addr.port() != 0 {
        let probe = socket_for(&addr)?;
        probe.bind(&SockAddr::from(addr))?;
    }
    let mut out = Vec::with_capacity(count);
    let mut bound = addr;
    for _ in 0..count.max(1) {
        let s = socket_for(&bound)?;
        s.set_reuse_port(true)?;
        s.set_tcp_nodelay(true)?;
        s.bind(&SockAddr::from(bound))?;
        s.listen(backlog)?;
        if bound.port() == 0 {
            bound = s
                .local_addr()?
                .as_socket()
                .ok_or_else(|| io::Error::other("listener has no inet address"))?;
        }
        out.push(s);
    }
    Ok((out, bound))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn group_shares_port_and_refuses_taken_port() {
        let (socks, addr) = bind_group("127.0.0.1:0".parse().unwrap(), 3, 128).unwrap();
        assert_eq!(socks.len(), 3);
        assert_ne!(addr.port(), 0);
        for s in &socks {
            assert_eq!(s.local_addr().unwrap().as_socket().unwrap(), addr);
        }
        let err = bind_group(addr, 1, 128).unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::AddrInUse);
    }
}
