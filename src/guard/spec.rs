//! The configuration model of the guards: plain, validated data as parsed
//! from `[server.client_ip]`, `[[limit.zone]]` and a site's or route's
//! `request_filtering`, `ip_security`, `limit_req`, `limit_conn` and
//! `dynamic_ip_security`.

use crate::filter::FilterSpec;
use crate::ipnet::Cidr;

/// `[server.client_ip]`: where the client's address comes from.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ClientIpSpec {
    /// Peers whose forwarding headers are believed.
    pub trusted_proxies: Vec<Cidr>,
    /// The headers read, in order of preference (`X-Forwarded-For`,
    /// `X-Real-IP`, `Forwarded`), lowercase.
    pub headers: Vec<String>,
    /// Which listeners expect a PROXY protocol header first.
    pub proxy_protocol: ProxyListeners,
}

/// The listeners that expect a PROXY protocol (v1 or v2) header.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub enum ProxyListeners {
    /// None.
    #[default]
    None,
    /// Every listener.
    All,
    /// These addresses (as configured).
    Some(Vec<std::net::SocketAddr>),
}

impl ProxyListeners {
    /// Whether the listener bound to `addr` expects the header.
    pub fn expects(&self, addr: &std::net::SocketAddr) -> bool {
        match self {
            ProxyListeners::None => false,
            ProxyListeners::All => true,
            ProxyListeners::Some(v) => v.contains(addr),
        }
    }
}

/// What a limit zone's keys are made of.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ZoneKey {
    /// The client's address (after `[server.client_ip]`).
    ClientIp,
    /// The TCP peer's address.
    PeerIp,
    /// A request header's value (requests without it are not limited).
    Header(String),
    /// The site (one key per site).
    Site,
    /// The route (one key per route).
    Route,
}

/// `[[limit.zone]]`: a table of keys shared by every worker.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ZoneSpec {
    /// Its name, which limits refer to.
    pub name: String,
    /// What its keys are.
    pub key: ZoneKey,
    /// Keys kept; when full, the least recently used are evicted.
    pub size: u32,
}

/// How requests past the rate but within the burst are treated.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ReqDelay {
    /// Delayed to the rate (nginx without `nodelay`).
    Delay,
    /// Served at once (`nodelay = true`).
    NoDelay,
    /// The first N served at once, the rest delayed (`delay = N`).
    After(u32),
}

/// One `limit_req`: a request rate per key of a zone (nginx `limit_req`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LimitReqSpec {
    /// The zone's name.
    pub zone: String,
    /// Nanoseconds between requests at the rate.
    pub emission_ns: u64,
    /// The rate as written (for messages and metrics).
    pub rate: String,
    /// Requests allowed past the rate.
    pub burst: u32,
    /// Treatment of requests within the burst.
    pub delay: ReqDelay,
    /// The status of a refusal (with `Retry-After`).
    pub status: u16,
    /// Only log (and count) what would be refused.
    pub dry_run: bool,
}

/// One `limit_conn`: concurrent requests per key of a zone.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LimitConnSpec {
    /// The zone's name.
    pub zone: String,
    /// Requests in progress allowed per key.
    pub max: u32,
    /// The status of a refusal.
    pub status: u16,
    /// Only log (and count) what would be refused.
    pub dry_run: bool,
}

/// What a denied client gets.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DenyAction {
    /// 403.
    Forbidden,
    /// 401.
    Unauthorized,
    /// 404.
    NotFound,
    /// The connection is closed without an answer.
    Abort,
}

impl DenyAction {
    /// The status answered (`None`: the connection is cut).
    pub fn status(self) -> Option<u16> {
        match self {
            DenyAction::Forbidden => Some(403),
            DenyAction::Unauthorized => Some(401),
            DenyAction::NotFound => Some(404),
            DenyAction::Abort => None,
        }
    }
}

/// `ip_security` (IIS `<ipSecurity>`): allow and deny rules by address.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct IpSecuritySpec {
    /// Whether an address no rule names is allowed.
    pub allow_unlisted: bool,
    /// What a denied client gets.
    pub deny_action: DenyAction,
    /// The rules, first match wins: `true` allows.
    pub rules: Vec<(Cidr, bool)>,
}

/// `dynamic_ip_security` (IIS `<dynamicIpSecurity>`): clients that hold too
/// many requests at once or send too many in an interval are banned for a
/// while.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DynamicSpec {
    /// Concurrent requests per client past which it is banned.
    pub max_concurrent: Option<u32>,
    /// Requests per interval past which it is banned: (count, interval ns).
    pub max_rate: Option<(u32, u64)>,
    /// How long a ban lasts (ns).
    pub ban_ns: u64,
    /// What a banned client gets.
    pub deny_action: DenyAction,
    /// Only log (and count) what would be refused.
    pub dry_run: bool,
}

/// The guards of a site or route. On a route, each one that is set replaces
/// the site's (nginx's inheritance: an inner level that sets a directive
/// inherits none of the outer's).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Security {
    /// `request_filtering`.
    pub filtering: Option<FilterSpec>,
    /// `ip_security`.
    pub ip: Option<IpSecuritySpec>,
    /// `limit_req` (several).
    pub limit_req: Option<Vec<LimitReqSpec>>,
    /// `limit_conn` (several).
    pub limit_conn: Option<Vec<LimitConnSpec>>,
    /// `dynamic_ip_security`.
    pub dynamic: Option<DynamicSpec>,
}

impl Security {
    /// Whether nothing is set.
    pub fn is_empty(&self) -> bool {
        self.filtering.is_none()
            && self.ip.is_none()
            && self.limit_req.is_none()
            && self.limit_conn.is_none()
            && self.dynamic.is_none()
    }

    /// These (a route's) over `outer` (its site's).
    pub fn then(&self, outer: &Security) -> Security {
        Security {
            filtering: self.filtering.clone().or_else(|| outer.filtering.clone()),
            ip: self.ip.clone().or_else(|| outer.ip.clone()),
            limit_req: self.limit_req.clone().or_else(|| outer.limit_req.clone()),
            limit_conn: self.limit_conn.clone().or_else(|| outer.limit_conn.clone()),
            dynamic: self.dynamic.clone().or_else(|| outer.dynamic.clone()),
        }
    }
}
