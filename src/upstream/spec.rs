//! The configuration model of `[[upstream]]` groups and of proxy routes:
//! plain, validated, immutable data (`Send + Sync`), as parsed from the file.
//! Workers build their pools and balancers from it.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use rustls::pki_types::ServerName;

use crate::site::spec::Origin;

/// Where an upstream server is reached.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Address {
    /// A TCP address (`host:port` resolved when the configuration is loaded,
    /// or `[v6]:port`).
    Tcp(SocketAddr),
    /// A Unix-domain stream socket (`unix:/path`).
    Unix(PathBuf),
}

impl From<SocketAddr> for Address {
    fn from(a: SocketAddr) -> Address {
        Address::Tcp(a)
    }
}

impl std::fmt::Display for Address {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Address::Tcp(a) => a.fmt(f),
            Address::Unix(p) => write!(f, "unix:{}", p.display()),
        }
    }
}

/// One server of a group.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ServerSpec {
    /// The address as written (`app1:9001`), for metrics, logs and status.
    pub name: String,
    /// Where it is reached.
    pub address: Address,
    /// Relative weight (1 to 1000; default 1).
    pub weight: u32,
    /// Only used when no primary server is up.
    pub backup: bool,
}

impl ServerSpec {
    /// The `Host` sent when the client's is not (`preserve_host = false`, or
    /// a request without one): the address as written, or `localhost` for a
    /// Unix socket, which has no host (as nginx sends).
    pub fn host_header(&self) -> &str {
        match self.address {
            Address::Unix(_) => "localhost",
            Address::Tcp(_) => &self.name,
        }
    }

    /// The host part of the address as written (`app.internal` of
    /// `app.internal:8443`, `::1` of `[::1]:8443`); `None` for a Unix socket.
    pub fn host(&self) -> Option<&str> {
        if let Address::Unix(_) = self.address {
            return None;
        }
        let (host, _) = self.name.rsplit_once(':')?;
        Some(host.trim_start_matches('[').trim_end_matches(']'))
    }
}

/// TLS towards the servers of a group (`tls = true`).
#[derive(Clone, Debug)]
pub struct UpstreamTls {
    /// Trust roots, verification and ALPN `http/1.1`, built once when the
    /// configuration is loaded and shared by every worker (with its session
    /// cache, so reconnects resume).
    pub config: Arc<rustls::ClientConfig>,
    /// `server_name`: sent as SNI and verified against the certificate, for
    /// every server of the group. `None`: each server's own host, a name or
    /// an IP address (an IP is verified against the certificate's IP
    /// addresses and sent without SNI).
    pub server_name: Option<ServerName<'static>>,
    /// `ca`: the PEM bundle of trusted roots; `None`: the system's roots.
    pub ca: Option<PathBuf>,
    /// `tls_verify`: the certificate is verified (default true).
    pub verify: bool,
    /// `client_cert` and `client_key`: the certificate shown to servers
    /// that ask for one (mutual TLS).
    pub client: Option<(PathBuf, PathBuf)>,
}

/// Settings are compared by what was written: `config` is built from them.
impl PartialEq for UpstreamTls {
    fn eq(&self, o: &UpstreamTls) -> bool {
        self.server_name == o.server_name
            && self.ca == o.ca
            && self.verify == o.verify
            && self.client == o.client
    }
}

impl Eq for UpstreamTls {}

impl UpstreamTls {
    /// The name sent and verified for `server`: `server_name`, else its
    /// host. A server with neither (a Unix socket, which the configuration
    /// allows only without verification) sends no SNI.
    pub fn name_for(&self, server: &ServerSpec) -> ServerName<'static> {
        if let Some(n) = &self.server_name {
            return n.clone();
        }
        server
            .host()
            .and_then(|h| ServerName::try_from(h.to_string()).ok())
            .unwrap_or(ServerName::IpAddress(std::net::Ipv4Addr::LOCALHOST.into()))
    }

    /// What a connection to `server` needs to start its session.
    pub fn connector(&self, server: &ServerSpec) -> crate::tls::Connector {
        crate::tls::Connector {
            config: self.config.clone(),
            name: self.name_for(server),
        }
    }
}

/// How a group picks a server.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum Policy {
    /// Smooth weighted round robin (nginx's).
    #[default]
    RoundRobin,
    /// Fewest requests in flight on this core, weighted.
    LeastRequests,
    /// Lowest moving average of the time to the response head on this core,
    /// weighted, times the requests in flight plus one.
    LeastTime,
    /// Uniformly at random, weighted.
    Random,
    /// Two at random, the one with fewer requests in flight.
    RandomTwo,
    /// The first server that is up, in the order written.
    First,
    /// A hash of the client's IP address.
    IpHash,
    /// A hash of the request path and query.
    UriHash,
    /// A hash of the request header named by `lb_key`.
    Header,
    /// A hash of the request cookie named by `lb_key`.
    Cookie,
}

impl Policy {
    /// Every policy, in the order the documentation lists them.
    pub const ALL: [Policy; 10] = [
        Policy::RoundRobin,
        Policy::LeastRequests,
        Policy::LeastTime,
        Policy::Random,
        Policy::RandomTwo,
        Policy::First,
        Policy::IpHash,
        Policy::UriHash,
        Policy::Header,
        Policy::Cookie,
    ];

    /// Its name in the configuration file (`lb_policy`).
    pub fn name(self) -> &'static str {
        match self {
            Policy::RoundRobin => "round_robin",
            Policy::LeastRequests => "least_requests",
            Policy::LeastTime => "least_time",
            Policy::Random => "random",
            Policy::RandomTwo => "random_two",
            Policy::First => "first",
            Policy::IpHash => "ip_hash",
            Policy::UriHash => "uri_hash",
            Policy::Header => "header",
            Policy::Cookie => "cookie",
        }
    }

    /// Whether it maps a key to a server by hashing (and falls back to round
    /// robin when a request has no key).
    pub fn is_hash(self) -> bool {
        matches!(
            self,
            Policy::IpHash | Policy::UriHash | Policy::Header | Policy::Cookie
        )
    }
}

/// How hash policies map keys to servers.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum HashKind {
    /// Rendezvous (highest random weight): a key moves only when its server
    /// goes away.
    #[default]
    Rendezvous,
}

/// Active health checks (`health = { … }`): off when `uri` is empty.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Health {
    /// The path asked for (`GET`); `None`: no active checks.
    pub uri: Option<String>,
    /// Time between checks of one server (default 2 s).
    pub interval: Duration,
    /// A check not answered within this fails (default 1 s).
    pub timeout: Duration,
    /// Consecutive passes that bring a server back (default 2).
    pub passes: u32,
    /// Consecutive failures that take a server out (default 2).
    pub fails: u32,
    /// Status codes that pass, inclusive ranges (default 200-399).
    pub expect_status: Vec<(u16, u16)>,
    /// A substring the body must contain (empty: any body).
    pub expect_body: String,
}

impl Default for Health {
    fn default() -> Self {
        Health {
            uri: None,
            interval: Duration::from_secs(2),
            timeout: Duration::from_secs(1),
            passes: 2,
            fails: 2,
            expect_status: vec![(200, 399)],
            expect_body: String::new(),
        }
    }
}

/// Passive health (`passive = { … }`): failures counted per core.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Passive {
    /// Failures within `fail_timeout` that take a server out for
    /// `fail_timeout` (nginx `max_fails`, default 1; 0: never).
    pub max_fails: u32,
    /// The window and the time out (nginx `fail_timeout`, default 10 s).
    pub fail_timeout: Duration,
    /// Response statuses that count as failures (default 502, 503, 504).
    pub unhealthy_status: Vec<u16>,
}

impl Default for Passive {
    fn default() -> Self {
        Passive {
            max_fails: 1,
            fail_timeout: Duration::from_secs(10),
            unhealthy_status: vec![502, 503, 504],
        }
    }
}

/// What may be retried on another server.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum RetryOn {
    /// The connect failed or was refused.
    ConnectError,
    /// The connect or the response head timed out.
    Timeout,
    /// The upstream answered 502.
    Http502,
    /// The upstream answered 503.
    Http503,
    /// The upstream answered 504.
    Http504,
}

impl RetryOn {
    /// Every condition.
    pub const ALL: [RetryOn; 5] = [
        RetryOn::ConnectError,
        RetryOn::Timeout,
        RetryOn::Http502,
        RetryOn::Http503,
        RetryOn::Http504,
    ];

    /// Its name in the configuration file (`retry.on`).
    pub fn name(self) -> &'static str {
        match self {
            RetryOn::ConnectError => "connect_error",
            RetryOn::Timeout => "timeout",
            RetryOn::Http502 => "http_502",
            RetryOn::Http503 => "http_503",
            RetryOn::Http504 => "http_504",
        }
    }
}

/// Retries (`retry = { … }`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Retry {
    /// Attempts in all, the first included (default 2).
    pub tries: u32,
    /// What is retried (default connect_error, timeout).
    pub on: Vec<RetryOn>,
    /// Retry POST, PATCH and other non-idempotent requests once sent (default false).
    pub non_idempotent: bool,
}

impl Default for Retry {
    fn default() -> Self {
        Retry {
            tries: 2,
            on: vec![RetryOn::ConnectError, RetryOn::Timeout],
            non_idempotent: false,
        }
    }
}

/// Upstream connection keep-alive (`keepalive = { … }`, nginx defaults).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Keepalive {
    /// Idle connections kept per core for the whole group (nginx
    /// `keepalive 32`); 0 turns pooling off.
    pub idle: usize,
    /// Requests one connection carries before it is closed (nginx
    /// `keepalive_requests 1000`).
    pub max_requests: u32,
    /// How long one connection is used (nginx `keepalive_time 1h`).
    pub lifetime: Duration,
    /// How long an idle connection is kept (nginx `keepalive_timeout 60s`).
    pub idle_timeout: Duration,
}

impl Default for Keepalive {
    fn default() -> Self {
        Keepalive {
            idle: 32,
            max_requests: 1000,
            lifetime: Duration::from_secs(3600),
            idle_timeout: Duration::from_secs(60),
        }
    }
}

/// Timeouts towards the servers of a group.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct UpstreamTimeouts {
    /// The connect (default 3 s).
    pub connect: Duration,
    /// From the request sent to the response head (default 60 s).
    pub response_head: Duration,
    /// Between two reads of the response body (default 60 s).
    pub read_idle: Duration,
    /// Between two sends of the request body (default 60 s).
    pub send_idle: Duration,
    /// Quiet time, both ways, of a switched connection (a WebSocket;
    /// default 300 s).
    pub tunnel_idle: Duration,
}

impl Default for UpstreamTimeouts {
    fn default() -> Self {
        UpstreamTimeouts {
            connect: Duration::from_secs(3),
            response_head: Duration::from_secs(60),
            read_idle: Duration::from_secs(60),
            send_idle: Duration::from_secs(60),
            tunnel_idle: Duration::from_secs(300),
        }
    }
}

/// One `[[upstream]]` group.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct UpstreamSpec {
    /// Its name, as routes refer to it.
    pub name: String,
    /// Its servers, in the order written.
    pub servers: Vec<ServerSpec>,
    /// How a server is picked.
    pub policy: Policy,
    /// The header or cookie name for the `header` and `cookie` policies.
    pub lb_key: String,
    /// How hash policies map keys.
    pub hash: HashKind,
    /// Active checks.
    pub health: Health,
    /// Passive failure counting.
    pub passive: Passive,
    /// Retries.
    pub retry: Retry,
    /// A recovered server's weight ramps from a tenth to the full weight
    /// over this (zero: off).
    pub slow_start: Duration,
    /// Session affinity by cookie (`sticky = { cookie = "…" }`).
    pub sticky: Option<Sticky>,
    /// Most connections to one server per core (0: unlimited).
    pub max_conns: u32,
    /// Connection reuse.
    pub keepalive: Keepalive,
    /// Timeouts.
    pub timeouts: UpstreamTimeouts,
    /// TLS to the servers (`tls = true`); `None`: plain HTTP.
    pub tls: Option<UpstreamTls>,
    /// A `[[fastcgi]]` group: its servers speak FastCGI, and this is the
    /// application; `None`: HTTP.
    pub fastcgi: Option<std::sync::Arc<crate::fastcgi::FastCgiApp>>,
    /// A `[[pool]]`: Peregrine runs the servers, whose addresses change as
    /// instances start (`servers` are its lanes); `None`: fixed servers.
    pub pool: Option<std::sync::Arc<crate::pool::PoolSpec>>,
    /// Where it was written.
    pub origin: Origin,
}

impl UpstreamSpec {
    /// What a connection to server `i` needs for TLS; `None`: plain.
    pub fn connector(&self, i: usize) -> Option<crate::tls::Connector> {
        let t = self.tls.as_ref()?;
        Some(t.connector(self.servers.get(i)?))
    }
}

/// Session affinity (`sticky = { cookie = "PGAFFINITY" }`): the response
/// sets a cookie naming the server, and later
/// requests that carry it go to that server while it is usable.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Sticky {
    /// The cookie's name.
    pub cookie: String,
}

/// A header rule applied to requests (`header_up`) or responses
/// (`header_down`): `{ set = {…}, add = {…}, remove = [...] }`.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct HeaderOps {
    /// Replaced (or added when missing).
    pub set: Vec<(String, String)>,
    /// Added beside any already there.
    pub add: Vec<(String, String)>,
    /// Removed (case-insensitive names).
    pub remove: Vec<String>,
}

/// Settings of the `proxy` handler on a route.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ProxySpec {
    /// The `[[upstream]]` group's name.
    pub upstream: String,
    /// Send the client's `Host` (true, default) or the server's address.
    pub preserve_host: bool,
    /// Removed from the start of the path before it is sent (`/api`:
    /// `/api/x` goes up as `/x`).
    pub strip_prefix: String,
    /// Put before the (stripped) path.
    pub prefix: String,
    /// Rules for the request sent up.
    pub header_up: HeaderOps,
    /// Rules for the response sent down.
    pub header_down: HeaderOps,
    /// Incoming `X-Forwarded-*` are kept (and extended) only from these peers.
    pub trusted_proxies: Vec<crate::upstream::spec::Cidr>,
    /// Add an RFC 7239 `Forwarded` field.
    pub forwarded: bool,
    /// Add a `Via` field.
    pub via: bool,
    /// Response buffering: `false` streams (default); `true` reads up to
    /// `max_memory` ahead of a slow client.
    pub buffer_response: bool,
    /// How far ahead of the client the response is read (default 64 KiB
    /// streaming, `max_memory` when buffering).
    pub max_memory: usize,
    /// HTTP/1.1 `CONNECT` requests are forwarded to the group (a forward
    /// proxy) and, once it answers 2xx, tunnelled both ways.
    pub connect: bool,
}

/// An IP network: an address and a prefix length.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Cidr {
    /// The network address.
    pub addr: std::net::IpAddr,
    /// Leading bits that must match.
    pub prefix: u8,
}

impl Cidr {
    /// Whether `ip` is in the network (IPv4-mapped IPv6 addresses match
    /// IPv4 networks).
    pub fn contains(&self, ip: std::net::IpAddr) -> bool {
        use std::net::IpAddr;
        let ip = match ip {
            IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(ip, IpAddr::V4),
            v4 => v4,
        };
        match (self.addr, ip) {
            (IpAddr::V4(n), IpAddr::V4(a)) => {
                let bits = u32::from(self.prefix.min(32));
                let mask = if bits == 0 {
                    0
                } else {
                    u32::MAX << (32 - bits)
                };
                u32::from(n) & mask == u32::from(a) & mask
            }
            (IpAddr::V6(n), IpAddr::V6(a)) => {
                let bits = u32::from(self.prefix.min(128));
                let mask = if bits == 0 {
                    0
                } else {
                    u128::MAX << (128 - bits)
                };
                u128::from(n) & mask == u128::from(a) & mask
            }
            _ => false,
        }
    }
}
