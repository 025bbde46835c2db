//! Guards: what may be refused from a request's head before a handler sees
//! it — IP restrictions, dynamic bans, request filtering, concurrency and
//! rate limits — and the client address they judge by.
//!
//! ```text
//! [server.client_ip] ─> ClientIp (trusted proxies, headers)   per request: head.client
//! [[limit.zone]]     ─> Zones (Arc<limit::Zone>, shared by every worker, kept across reloads)
//! site / route keys  ─> Guard (compiled once per generation, Arc)
//! request: ip_security → dynamic_ip_security → request_filtering → limit_conn → limit_req
//! ```
//!
//! The order puts the cheapest and most final refusals first: a denied
//! address is not counted against any limit, and a filtered request uses
//! no limit's budget. A route's guards replace the site's key by key.
#![forbid(unsafe_code)]

mod build;
mod check;
mod client;
mod note;
pub mod spec;

pub use build::{Guards, Zones};
pub use check::Verdict;
pub use client::ClientIp;
pub use note::{Guarded, Held, Kind, Refused};

use std::sync::Arc;

use crate::filter::Filter;
use crate::ipnet::IpRules;
use crate::limit::{Rate, Zone};
use spec::{DenyAction, DynamicSpec, ZoneKey};

/// A `limit_req` in effect.
#[derive(Debug)]
struct ReqLimit {
    zone: Arc<Zone>,
    index: u16,
    key: ZoneKey,
    rate: Rate,
    status: u16,
    dry_run: bool,
}

/// A `limit_conn` in effect.
#[derive(Debug)]
struct ConnLimit {
    zone: Arc<Zone>,
    index: u16,
    key: ZoneKey,
    max: u32,
    status: u16,
    dry_run: bool,
}

/// `ip_security` compiled: the rules in a prefix trie.
#[derive(Debug)]
struct IpCheck {
    rules: IpRules<bool>,
    allow_unlisted: bool,
    action: DenyAction,
}

/// `dynamic_ip_security` in effect, with its own table of clients.
#[derive(Debug)]
struct Dynamic {
    zone: Arc<Zone>,
    spec: DynamicSpec,
}

/// The guards of one site or route, compiled (immutable, shared by every
/// worker).
#[derive(Debug)]
pub struct Guard {
    filter: Option<Filter>,
    ip: Option<IpCheck>,
    dynamic: Option<Dynamic>,
    conn: Vec<ConnLimit>,
    req: Vec<ReqLimit>,
    /// Keys for `key = "site"` and `key = "route"`.
    site_key: u64,
    route_key: u64,
}

impl Guard {
    /// Whether the address alone refuses `ip` (for checks at accept time):
    /// its action, or `None` when it is allowed.
    #[inline]
    pub fn denies(&self, ip: std::net::IpAddr) -> Option<DenyAction> {
        let c = self.ip.as_ref()?;
        let allowed = c
            .rules
            .first_match(ip)
            .map_or(c.allow_unlisted, |(_, allow)| allow);
        (!allowed).then_some(c.action)
    }

    /// Whether this guard restricts addresses.
    pub fn has_ip_rules(&self) -> bool {
        self.ip.is_some()
    }

    /// The largest request body the filter allows, if it limits one.
    pub fn max_body(&self) -> Option<u64> {
        self.filter.as_ref().and_then(Filter::max_content_length)
    }
}
