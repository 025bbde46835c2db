//! IP restrictions and client addresses, sans-IO: parsing and lookup only,
//! no sockets.
//!
//! - [`cidr`]: [`Cidr`], one network (`10.0.0.0/8`, `2001:db8::/32`, a bare
//!   address), parsed strictly and displayed canonically.
//! - [`trie`]: [`IpRules`], ordered rules on networks where the first
//!   (lowest-index) matching rule wins, as `allow`/`deny` lists read; and
//!   [`IpSet`], a set of networks, such as the trusted proxies. Both are a
//!   path-compressed binary trie; a lookup does not allocate.
//! - [`forwarded`]: [`client_ip`], the client behind trusted proxies from
//!   `X-Forwarded-For` (or `Forwarded`, RFC 7239), walking from the right
//!   as nginx's realip module does with `real_ip_recursive on`.
//! - [`proxy_protocol`]: [`proxy_protocol::parse`], the PROXY protocol
//!   header (versions 1 and 2) a load balancer sends before the
//!   connection's own bytes.
//!
//! Everywhere, an IPv4-mapped IPv6 address (`::ffff:192.0.2.1`, what a
//! dual-stack socket reports for an IPv4 peer) is matched as IPv4.
#![forbid(unsafe_code)]

pub mod cidr;
pub mod forwarded;
pub mod proxy_protocol;
pub mod trie;

pub use cidr::{Cidr, CidrError};
pub use forwarded::{
    client_ip, client_ip_forwarded, client_ip_from_hops, forwarded_for, x_forwarded_for,
};
pub use proxy_protocol::{MAX_HEADER, ProxyError, ProxyHeader};
pub use trie::{IpRules, IpSet};
