//! The guard tables: `[server.client_ip]`, `[[limit.zone]]`, and a site's or
//! route's `ip_security`, `limit_req`, `limit_conn` and
//! `dynamic_ip_security` (its `request_filtering` is read by
//! [`super::filtering`]). Every error names its key and line.

use serde::Deserialize;
use toml::Spanned;

use super::ConfigError;
use super::file::{Ctx, Secs, secs_of};
use crate::guard::spec::{
    ClientIpSpec, DenyAction, DynamicSpec, IpSecuritySpec, LimitConnSpec, LimitReqSpec,
    ProxyListeners, ReqDelay, Security, ZoneKey, ZoneSpec,
};
use crate::http::client::is_token;
use crate::ipnet::Cidr;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawServer {
    client_ip: Option<Spanned<RawClientIp>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawClientIp {
    trusted_proxies: Option<Vec<Spanned<String>>>,
    headers: Option<Vec<Spanned<String>>>,
    proxy_protocol: Option<Spanned<BoolOrList>>,
}

#[derive(Deserialize)]
#[serde(untagged)]
enum BoolOrList {
    Bool(bool),
    List(Vec<String>),
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawLimit {
    zone: Option<Vec<Spanned<RawZone>>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawZone {
    name: Option<Spanned<String>>,
    key: Option<Spanned<String>>,
    size: Option<Spanned<i64>>,
}

/// The guard keys of a `[[site]]` or `[[site.route]]` table.
#[derive(Clone, Copy)]
pub(super) struct GuardKeys<'a> {
    pub(super) request_filtering: &'a Option<Spanned<super::filtering::RawFiltering>>,
    pub(super) ip_security: &'a Option<Spanned<RawIpSecurity>>,
    pub(super) limit_req: &'a Option<Vec<Spanned<RawLimitReq>>>,
    pub(super) limit_conn: &'a Option<Vec<Spanned<RawLimitConn>>>,
    pub(super) dynamic_ip_security: &'a Option<Spanned<RawDynamic>>,
}

/// Declares the guard keys in a table's raw struct and a way to see them.
macro_rules! guard_keys {
    ($raw:ty) => {
        impl $raw {
            pub(super) fn guard_keys(&self) -> super::security::GuardKeys<'_> {
                super::security::GuardKeys {
                    request_filtering: &self.request_filtering,
                    ip_security: &self.ip_security,
                    limit_req: &self.limit_req,
                    limit_conn: &self.limit_conn,
                    dynamic_ip_security: &self.dynamic_ip_security,
                }
            }
        }
    };
}
pub(super) use guard_keys;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawIpSecurity {
    allow_unlisted: Option<bool>,
    deny_action: Option<Spanned<String>>,
    rules: Option<Vec<Spanned<RawIpRule>>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawIpRule {
    allow: Option<String>,
    deny: Option<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawLimitReq {
    zone: Option<Spanned<String>>,
    rate: Option<Spanned<String>>,
    burst: Option<Spanned<i64>>,
    nodelay: Option<bool>,
    delay: Option<Spanned<i64>>,
    status: Option<Spanned<i64>>,
    dry_run: Option<bool>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawLimitConn {
    zone: Option<Spanned<String>>,
    max: Option<Spanned<i64>>,
    status: Option<Spanned<i64>>,
    dry_run: Option<bool>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawDynamic {
    deny_by_concurrent: Option<Spanned<RawByConcurrent>>,
    deny_by_rate: Option<Spanned<RawByRate>>,
    ban_for: Option<Spanned<Secs>>,
    deny_action: Option<Spanned<String>>,
    dry_run: Option<bool>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawByConcurrent {
    max: Spanned<i64>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawByRate {
    max_requests: Spanned<i64>,
    interval: Option<Spanned<Secs>>,
}

/// `[server.client_ip]`.
pub(super) fn client_ip(
    cx: &Ctx<'_>,
    raw: Option<&RawServer>,
) -> Result<ClientIpSpec, ConfigError> {
    let mut out = ClientIpSpec::default();
    let Some(c) = raw.and_then(|r| r.client_ip.as_ref()) else {
        return Ok(out);
    };
    let c = c.get_ref();
    for t in c.trusted_proxies.iter().flatten() {
        let cidr = cidr(cx, t, "server.client_ip.trusted_proxies")?;
        out.trusted_proxies.push(cidr);
    }
    for h in c.headers.iter().flatten() {
        let name = h.get_ref().trim().to_ascii_lowercase();
        if !is_token(&name) {
            return Err(cx.err(
                h.span(),
                "server.client_ip.headers",
                format!("{:?} is not a header name", h.get_ref()),
            ));
        }
        out.headers.push(name);
    }
    if c.headers.is_none() {
        out.headers.push("x-forwarded-for".to_string());
    }
    if let Some(p) = &c.proxy_protocol {
        out.proxy_protocol = match p.get_ref() {
            BoolOrList::Bool(false) => ProxyListeners::None,
            BoolOrList::Bool(true) => ProxyListeners::All,
            BoolOrList::List(v) => {
                let mut addrs = Vec::new();
                for a in v {
                    let addr = super::parse_listen(a)
                        .map_err(|m| cx.err(p.span(), "server.client_ip.proxy_protocol", m))?;
                    addrs.push(addr);
                }
                ProxyListeners::Some(addrs)
            }
        };
    }
    Ok(out)
}

/// The `[[limit.zone]]` tables.
pub(super) fn zones(cx: &Ctx<'_>, raw: Option<&RawLimit>) -> Result<Vec<ZoneSpec>, ConfigError> {
    let mut out: Vec<ZoneSpec> = Vec::new();
    for (i, z) in raw
        .and_then(|r| r.zone.as_ref())
        .into_iter()
        .flatten()
        .enumerate()
    {
        let k = |s: &str| format!("limit.zone[{i}].{s}");
        let r = z.get_ref();
        let name = match &r.name {
            Some(n) if !n.get_ref().trim().is_empty() => n.get_ref().clone(),
            Some(n) => return Err(cx.err(n.span(), &k("name"), "must not be empty")),
            None => return Err(cx.err(z.span(), &k("name"), "a zone needs a name")),
        };
        if out.iter().any(|o| o.name == name) {
            let span = r.name.as_ref().map_or(z.span(), |n| n.span());
            return Err(cx.err(span, &k("name"), format!("zone {name:?} is defined twice")));
        }
        let key = match &r.key {
            None => ZoneKey::ClientIp,
            Some(v) => zone_key(v.get_ref()).map_err(|m| cx.err(v.span(), &k("key"), m))?,
        };
        let size = cx.int(&r.size, &k("size"), 1, 1 << 24)?.unwrap_or(100_000) as u32;
        out.push(ZoneSpec { name, key, size });
    }
    Ok(out)
}

fn zone_key(s: &str) -> Result<ZoneKey, String> {
    Ok(match s {
        "client_ip" => ZoneKey::ClientIp,
        "peer_ip" => ZoneKey::PeerIp,
        "site" => ZoneKey::Site,
        "route" => ZoneKey::Route,
        other => match other.strip_prefix("header:") {
            Some(h) if is_token(h) => ZoneKey::Header(h.to_ascii_lowercase()),
            _ => {
                return Err(format!(
                    "must be client_ip, peer_ip, header:NAME, site or route (got {other:?})"
                ));
            }
        },
    })
}

fn cidr(cx: &Ctx<'_>, s: &Spanned<String>, key: &str) -> Result<Cidr, ConfigError> {
    s.get_ref()
        .trim()
        .parse::<Cidr>()
        .map_err(|m| cx.err(s.span(), key, m.to_string()))
}

fn deny_action(
    cx: &Ctx<'_>,
    v: &Option<Spanned<String>>,
    key: &str,
) -> Result<DenyAction, ConfigError> {
    let Some(v) = v else {
        return Ok(DenyAction::Forbidden);
    };
    Ok(match v.get_ref().as_str() {
        "forbidden" => DenyAction::Forbidden,
        "unauthorized" => DenyAction::Unauthorized,
        "not_found" => DenyAction::NotFound,
        "abort" => DenyAction::Abort,
        other => {
            return Err(cx.err(
                v.span(),
                key,
                format!("must be forbidden, unauthorized, not_found or abort (got {other:?})"),
            ));
        }
    })
}

/// A refusal status: 4xx or 5xx.
fn status(
    cx: &Ctx<'_>,
    v: &Option<Spanned<i64>>,
    key: &str,
    default: u16,
) -> Result<u16, ConfigError> {
    Ok(cx.int(v, key, 400, 599)?.map_or(default, |n| n as u16))
}

/// The guards of a site or route whose dotted key is `key`; `zones` are the
/// zones the file defines.
pub(super) fn guards(
    cx: &Ctx<'_>,
    g: GuardKeys<'_>,
    key: &str,
    zones: &[ZoneSpec],
) -> Result<Security, ConfigError> {
    let k = |s: &str| format!("{key}.{s}");
    let mut out = Security::default();
    if let Some(f) = g.request_filtering {
        out.filtering = Some(super::filtering::filtering(cx, f, &k("request_filtering"))?);
    }
    if let Some(ip) = g.ip_security {
        let r = ip.get_ref();
        let mut rules = Vec::new();
        for (j, rule) in r.rules.iter().flatten().enumerate() {
            let rk = k(&format!("ip_security.rules[{j}]"));
            let (text, allow) = match (&rule.get_ref().allow, &rule.get_ref().deny) {
                (Some(a), None) => (a, true),
                (None, Some(d)) => (d, false),
                _ => {
                    return Err(cx.err(
                        rule.span(),
                        &rk,
                        "a rule is { allow = \"CIDR\" } or { deny = \"CIDR\" }",
                    ));
                }
            };
            let c = text
                .trim()
                .parse::<Cidr>()
                .map_err(|m| cx.err(rule.span(), &rk, m.to_string()))?;
            rules.push((c, allow));
        }
        out.ip = Some(IpSecuritySpec {
            allow_unlisted: r.allow_unlisted.unwrap_or(true),
            deny_action: deny_action(cx, &r.deny_action, &k("ip_security.deny_action"))?,
            rules,
        });
    }
    let zone_of = |z: &Option<Spanned<String>>, span: std::ops::Range<usize>, key: &str| {
        let Some(z) = z else {
            return Err(cx.err(span, key, "needs a zone (the name of a [[limit.zone]])"));
        };
        if zones.iter().any(|s| s.name == *z.get_ref()) {
            Ok(z.get_ref().clone())
        } else {
            Err(cx.err(
                z.span(),
                key,
                format!("no [[limit.zone]] is named {:?}", z.get_ref()),
            ))
        }
    };
    if let Some(list) = g.limit_req {
        let mut v = Vec::new();
        for (j, l) in list.iter().enumerate() {
            let lk = |s: &str| k(&format!("limit_req[{j}].{s}"));
            let r = l.get_ref();
            let zone = zone_of(&r.zone, l.span(), &lk("zone"))?;
            let Some(rate) = &r.rate else {
                return Err(cx.err(l.span(), &lk("rate"), "needs a rate, e.g. \"20r/s\""));
            };
            let emission_ns = crate::limit::parse_rate(rate.get_ref())
                .map_err(|m| cx.err(rate.span(), &lk("rate"), m))?;
            let burst = cx.int(&r.burst, &lk("burst"), 0, 1 << 20)?.unwrap_or(0) as u32;
            let delay = match (r.nodelay, &r.delay) {
                (Some(true), Some(d)) => {
                    return Err(cx.err(
                        d.span(),
                        &lk("delay"),
                        "nodelay and delay exclude each other",
                    ));
                }
                (Some(true), None) => ReqDelay::NoDelay,
                (_, Some(_)) => {
                    ReqDelay::After(cx.int(&r.delay, &lk("delay"), 0, 1 << 20)?.unwrap_or(0) as u32)
                }
                _ => ReqDelay::Delay,
            };
            v.push(LimitReqSpec {
                zone,
                emission_ns,
                rate: rate.get_ref().trim().to_string(),
                burst,
                delay,
                status: status(cx, &r.status, &lk("status"), 503)?,
                dry_run: r.dry_run.unwrap_or(false),
            });
        }
        out.limit_req = Some(v);
    }
    if let Some(list) = g.limit_conn {
        let mut v = Vec::new();
        for (j, l) in list.iter().enumerate() {
            let lk = |s: &str| k(&format!("limit_conn[{j}].{s}"));
            let r = l.get_ref();
            let zone = zone_of(&r.zone, l.span(), &lk("zone"))?;
            let Some(max) = cx.int(&r.max, &lk("max"), 1, 1 << 24)? else {
                return Err(cx.err(
                    l.span(),
                    &lk("max"),
                    "needs max, the concurrent requests per key",
                ));
            };
            v.push(LimitConnSpec {
                zone,
                max: max as u32,
                status: status(cx, &r.status, &lk("status"), 503)?,
                dry_run: r.dry_run.unwrap_or(false),
            });
        }
        out.limit_conn = Some(v);
    }
    if let Some(d) = g.dynamic_ip_security {
        out.dynamic = Some(dynamic(cx, d, &k("dynamic_ip_security"))?);
    }
    Ok(out)
}

fn dynamic(cx: &Ctx<'_>, d: &Spanned<RawDynamic>, key: &str) -> Result<DynamicSpec, ConfigError> {
    let k = |s: &str| format!("{key}.{s}");
    let r = d.get_ref();
    let max_concurrent = match &r.deny_by_concurrent {
        Some(c) => Some(
            cx.int(
                &Some(c.get_ref().max.clone()),
                &k("deny_by_concurrent.max"),
                1,
                1 << 24,
            )?
            .unwrap_or(1) as u32,
        ),
        None => None,
    };
    let max_rate = match &r.deny_by_rate {
        Some(b) => {
            let b = b.get_ref();
            let n = cx
                .int(
                    &Some(b.max_requests.clone()),
                    &k("deny_by_rate.max_requests"),
                    1,
                    1 << 30,
                )?
                .unwrap_or(1) as u32;
            let interval = match &b.interval {
                Some(v) => duration(cx, v, &k("deny_by_rate.interval"))?,
                None => 1_000_000_000,
            };
            Some((n, interval))
        }
        None => None,
    };
    if max_concurrent.is_none() && max_rate.is_none() {
        return Err(cx.err(
            d.span(),
            key,
            "needs deny_by_concurrent or deny_by_rate (or both)",
        ));
    }
    let ban_ns = match &r.ban_for {
        Some(v) => duration(cx, v, &k("ban_for"))?,
        None => 60_000_000_000,
    };
    Ok(DynamicSpec {
        max_concurrent,
        max_rate,
        ban_ns,
        deny_action: deny_action(cx, &r.deny_action, &k("deny_action"))?,
        dry_run: r.dry_run.unwrap_or(false),
    })
}

/// A duration of 1 ms to 7 days, in nanoseconds.
fn duration(cx: &Ctx<'_>, v: &Spanned<Secs>, key: &str) -> Result<u64, ConfigError> {
    match secs_of(v.get_ref()) {
        Some(d) if d >= std::time::Duration::from_millis(1) && d <= std::time::Duration::from_secs(7 * 86_400) => {
            Ok(d.as_nanos() as u64)
        }
        _ => Err(cx.err(
            v.span(),
            key,
            "must be a duration from 1ms to 7 days: seconds, or a string like \"1s\", \"500ms\", \"2m\"",
        )),
    }
}
