//! The client's address: the peer's, or, when the peer is a trusted proxy,
//! the one its forwarding headers name (nginx `realip` with
//! `real_ip_recursive on`).

use std::net::IpAddr;

use super::spec::ClientIpSpec;
use crate::exchange::RequestHead;
use crate::ipnet::{IpSet, client_ip, client_ip_forwarded};

/// `[server.client_ip]`, compiled.
#[derive(Debug)]
pub struct ClientIp {
    trusted: IpSet,
    headers: Vec<String>,
}

impl ClientIp {
    /// Compiles `spec`.
    pub fn new(spec: &ClientIpSpec) -> ClientIp {
        ClientIp {
            trusted: IpSet::new(&spec.trusted_proxies),
            headers: spec.headers.clone(),
        }
    }

    /// Whether no proxy is trusted (every peer is the client).
    pub fn trusts_none(&self) -> bool {
        self.trusted.is_empty()
    }

    /// Whether `ip` is a trusted proxy.
    pub fn trusts(&self, ip: IpAddr) -> bool {
        !self.trusted.is_empty() && self.trusted.contains(ip)
    }

    /// The client's address for `req` (`None` without a peer address):
    /// the first of the configured headers the request carries decides.
    pub fn resolve(&self, req: &RequestHead) -> Option<IpAddr> {
        let peer = req.peer?.ip();
        if !self.trusts(peer) {
            return Some(peer);
        }
        for h in &self.headers {
            if req.header(h).is_none() {
                continue;
            }
            let values = req
                .headers()
                .filter(|(n, _)| n.eq_ignore_ascii_case(h))
                .map(|(_, v)| v);
            return Some(if h == "forwarded" {
                client_ip_forwarded(peer, values, &self.trusted)
            } else {
                client_ip(peer, values, &self.trusted)
            });
        }
        Some(peer)
    }
}
