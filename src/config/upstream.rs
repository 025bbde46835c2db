//! `[[upstream]]` tables: groups of servers that `proxy` routes send
//! requests to, read into [`crate::upstream::spec`], every error naming its
//! key and line. The routes' own keys are read by [`super::proxy`].

use std::net::{SocketAddr, ToSocketAddrs};
use std::path::Path;
use std::time::Duration;

use serde::Deserialize;
use toml::{Spanned, Value};

use super::ConfigError;
use super::file::{Ctx, Secs};
use super::site::origin;
use super::upstream_checks::{RawHealth, RawPassive, RawRetry, health, passive, retry};
use super::upstream_tls::{RawTlsKeys, tls};
use crate::upstream::spec::{
    Address, HashKind, Keepalive, Policy, ServerSpec, Sticky, UpstreamSpec, UpstreamTimeouts,
};

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawUpstream {
    pub(super) name: Option<Spanned<String>>,
    pub(super) servers: Option<Spanned<Vec<Spanned<Value>>>>,
    lb_policy: Option<Spanned<String>>,
    lb_key: Option<Spanned<String>>,
    hash: Option<Spanned<String>>,
    pub(super) health: Option<Spanned<RawHealth>>,
    passive: Option<Spanned<RawPassive>>,
    retry: Option<Spanned<RawRetry>>,
    slow_start: Option<Spanned<Secs>>,
    sticky: Option<Spanned<RawSticky>>,
    max_conns: Option<Spanned<i64>>,
    keepalive: Option<Spanned<RawKeepalive>>,
    timeouts: Option<Spanned<RawTimeouts>>,
    pub(super) tls: Option<Spanned<Value>>,
    server_name: Option<Spanned<String>>,
    ca: Option<Spanned<String>>,
    tls_verify: Option<Spanned<Value>>,
    client_cert: Option<Spanned<String>>,
    client_key: Option<Spanned<String>>,
    // [[fastcgi]] only
    pub(super) root: Option<Spanned<String>>,
    pub(super) split_path_info: Option<Spanned<String>>,
    pub(super) index: Option<Spanned<String>>,
    pub(super) try_files: Option<Spanned<Vec<String>>>,
    pub(super) params: Option<Spanned<std::collections::BTreeMap<String, String>>>,
    pub(super) keep_conn: Option<bool>,
    pub(super) connect_timeout: Option<Spanned<Secs>>,
    pub(super) read_timeout: Option<Spanned<Secs>>,
    // [[pool]] only
    pub(super) command: Option<Spanned<Vec<String>>>,
    pub(super) listen: Option<Spanned<String>>,
    pub(super) instances: Option<Spanned<i64>>,
    pub(super) env: Option<Spanned<std::collections::BTreeMap<String, String>>>,
    pub(super) cwd: Option<Spanned<String>>,
    pub(super) ready: Option<Spanned<super::pool::RawReady>>,
    pub(super) recycle: Option<Spanned<super::pool::RawRecycle>>,
    pub(super) rapid_fail: Option<Spanned<super::pool::RawRapidFail>>,
    pub(super) shutdown_timeout: Option<Spanned<Secs>>,
    pub(super) start: Option<Spanned<String>>,
    pub(super) idle_timeout: Option<Spanned<Secs>>,
    pub(super) log: Option<Spanned<String>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawSticky {
    cookie: Option<Spanned<String>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawKeepalive {
    idle: Option<Spanned<i64>>,
    max_requests: Option<Spanned<i64>>,
    lifetime: Option<Spanned<Secs>>,
    idle_timeout: Option<Spanned<Secs>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawTimeouts {
    connect: Option<Spanned<Secs>>,
    response_head: Option<Spanned<Secs>>,
    read_idle: Option<Spanned<Secs>>,
    send_idle: Option<Spanned<Secs>>,
    tunnel_idle: Option<Spanned<Secs>>,
}

/// The cookie `sticky = {}` sets when it names none.
pub(super) const DEFAULT_STICKY_COOKIE: &str = "PGAFFINITY";

/// Whether `b` may appear in a header or cookie name (an RFC 9110 token).
pub(super) fn token_byte(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b)
}

/// The groups of a file, in order; names are distinct.
pub(super) fn upstreams(
    cx: &Ctx<'_>,
    raw: &[Spanned<RawUpstream>],
    fastcgi: &[Spanned<RawUpstream>],
    pools: &[Spanned<RawUpstream>],
    file: Option<&Path>,
) -> Result<Vec<UpstreamSpec>, ConfigError> {
    let mut out: Vec<UpstreamSpec> = Vec::new();
    let tables = raw
        .iter()
        .enumerate()
        .map(|(i, u)| ("upstream", i, u))
        .chain(fastcgi.iter().enumerate().map(|(i, u)| ("fastcgi", i, u)))
        .chain(pools.iter().enumerate().map(|(i, u)| ("pool", i, u)));
    for (table, i, u) in tables {
        let spec = upstream(cx, table, i, u, file)?;
        if let Some(other) = out.iter().find(|o| o.name == spec.name) {
            let span = u.get_ref().name.as_ref().map_or(u.span(), |n| n.span());
            return Err(cx.err(
                span,
                &format!("{table}[{i}].name"),
                format!(
                    "{:?} is the name of {} too; upstream, fastcgi and pool names must differ",
                    spec.name, other.origin.key
                ),
            ));
        }
        out.push(spec);
    }
    Ok(out)
}

/// Checks that every `proxy` route names an `[[upstream]]` and every
/// `fastcgi` route a `[[fastcgi]]`.
pub(super) fn check_routes(c: &super::Config) -> Result<(), ConfigError> {
    for route in c.sites.iter().flat_map(|s| &s.routes) {
        let (name, fastcgi) = match &route.handler {
            crate::site::HandlerSpec::Proxy(p) => (&p.upstream, false),
            crate::site::HandlerSpec::FastCgi { upstream } => (upstream, true),
            _ => continue,
        };
        let (table, a) = if fastcgi {
            ("[[fastcgi]]", "a")
        } else {
            ("[[upstream]]", "an")
        };
        if c.upstreams
            .iter()
            .any(|u| u.name == *name && u.fastcgi.is_some() == fastcgi)
        {
            continue;
        }
        let known: Vec<&str> = c
            .upstreams
            .iter()
            .filter(|u| u.fastcgi.is_some() == fastcgi)
            .map(|u| u.name.as_str())
            .collect();
        let known = if known.is_empty() {
            format!("no {table} tables are defined")
        } else {
            format!("defined: {}", known.join(", "))
        };
        return Err(route.origin.err(
            "upstream",
            format!("{name:?} is not {a} {table} name ({known})"),
        ));
    }
    Ok(())
}

fn upstream(
    cx: &Ctx<'_>,
    table: &str,
    i: usize,
    u: &Spanned<RawUpstream>,
    file: Option<&Path>,
) -> Result<UpstreamSpec, ConfigError> {
    let k = |key: &str| format!("{table}[{i}].{key}");
    let r = u.get_ref();
    let name = match &r.name {
        None => return Err(cx.err(u.span(), &k("name"), "is required")),
        Some(n) => {
            let s = n.get_ref();
            let ok = |b: u8| b.is_ascii_alphanumeric() || b"_.-".contains(&b);
            if s.is_empty() || !s.bytes().all(ok) {
                return Err(cx.err(
                    n.span(),
                    &k("name"),
                    format!("{s:?} is not a name (letters, digits, '_', '.' and '-')"),
                ));
            }
            s.clone()
        }
    };
    let pool = super::pool::pool(cx, table, i, r, u.span(), file)?;
    let servers = match (&r.servers, &pool) {
        (_, Some((_, lanes))) => lanes.clone(),
        (None, None) => return Err(cx.err(u.span(), &k("servers"), "is required")),
        (Some(list), None) => servers(cx, list, &k("servers"), file)?,
    };
    let policy = match &r.lb_policy {
        None => Policy::default(),
        Some(p) => Policy::ALL
            .into_iter()
            .find(|v| v.name() == p.get_ref())
            .ok_or_else(|| {
                let names: Vec<&str> = Policy::ALL.iter().map(|v| v.name()).collect();
                cx.err(
                    p.span(),
                    &k("lb_policy"),
                    format!("{:?} is not a policy ({})", p.get_ref(), names.join(", ")),
                )
            })?,
    };
    let keyed = matches!(policy, Policy::Header | Policy::Cookie);
    let lb_key = match (&r.lb_key, keyed) {
        (None, true) => {
            let span = r.lb_policy.as_ref().map_or(u.span(), |p| p.span());
            return Err(cx.err(
                span,
                &k("lb_key"),
                "is required with lb_policy = \"header\" or \"cookie\": the name to hash",
            ));
        }
        (None, false) => String::new(),
        (Some(key), false) => {
            return Err(cx.err(
                key.span(),
                &k("lb_key"),
                "applies only to lb_policy = \"header\" or \"cookie\"",
            ));
        }
        (Some(key), true) => {
            let s = key.get_ref();
            if s.is_empty() || !s.bytes().all(token_byte) {
                return Err(cx.err(
                    key.span(),
                    &k("lb_key"),
                    format!("{s:?} is not a header or cookie name"),
                ));
            }
            s.clone()
        }
    };
    let hash = match &r.hash {
        None => HashKind::default(),
        Some(h) if !policy.is_hash() => {
            return Err(cx.err(
                h.span(),
                &k("hash"),
                "applies only to the hash policies (ip_hash, uri_hash, header, cookie)",
            ));
        }
        Some(h) if h.get_ref() == "rendezvous" => HashKind::Rendezvous,
        Some(h) => {
            return Err(cx.err(
                h.span(),
                &k("hash"),
                format!("{:?} is not a hash (rendezvous)", h.get_ref()),
            ));
        }
    };
    let ms = Duration::from_millis(1);
    let mut slow_start = Duration::ZERO;
    if let Some(d) = cx.secs(&r.slow_start, &k("slow_start"), Duration::ZERO)? {
        slow_start = d;
    }
    let sticky = match &r.sticky {
        None => None,
        Some(s) => Some(Sticky {
            cookie: match &s.get_ref().cookie {
                None => DEFAULT_STICKY_COOKIE.to_string(),
                Some(c) if !c.get_ref().is_empty() && c.get_ref().bytes().all(token_byte) => {
                    c.get_ref().clone()
                }
                Some(c) => {
                    return Err(cx.err(
                        c.span(),
                        &k("sticky.cookie"),
                        format!("{:?} is not a cookie name", c.get_ref()),
                    ));
                }
            },
        }),
    };
    let max_conns = cx.int(&r.max_conns, &k("max_conns"), 0, 1_000_000)?;
    let mut keepalive = Keepalive::default();
    if let Some(ka) = &r.keepalive {
        let ka = ka.get_ref();
        if let Some(n) = cx.int(&ka.idle, &k("keepalive.idle"), 0, 100_000)? {
            keepalive.idle = n as usize;
        }
        let max = i64::from(u32::MAX);
        if let Some(n) = cx.int(&ka.max_requests, &k("keepalive.max_requests"), 1, max)? {
            keepalive.max_requests = n as u32;
        }
        if let Some(d) = cx.secs(&ka.lifetime, &k("keepalive.lifetime"), ms)? {
            keepalive.lifetime = d;
        }
        if let Some(d) = cx.secs(&ka.idle_timeout, &k("keepalive.idle_timeout"), ms)? {
            keepalive.idle_timeout = d;
        }
    }
    let mut timeouts = UpstreamTimeouts::default();
    if let Some(t) = &r.timeouts {
        let t = t.get_ref();
        let fields = [
            (&t.connect, "connect", &mut timeouts.connect),
            (
                &t.response_head,
                "response_head",
                &mut timeouts.response_head,
            ),
            (&t.read_idle, "read_idle", &mut timeouts.read_idle),
            (&t.send_idle, "send_idle", &mut timeouts.send_idle),
            (&t.tunnel_idle, "tunnel_idle", &mut timeouts.tunnel_idle),
        ];
        for (raw, name, slot) in fields {
            if let Some(d) = cx.secs(raw, &k(&format!("timeouts.{name}")), ms)? {
                *slot = d;
            }
        }
    }
    let lines = [
        ("name", r.name.as_ref().map(Spanned::span)),
        ("servers", r.servers.as_ref().map(Spanned::span)),
        ("lb_policy", r.lb_policy.as_ref().map(Spanned::span)),
        ("lb_key", r.lb_key.as_ref().map(Spanned::span)),
        ("health", r.health.as_ref().map(Spanned::span)),
        ("passive", r.passive.as_ref().map(Spanned::span)),
        ("retry", r.retry.as_ref().map(Spanned::span)),
        ("sticky", r.sticky.as_ref().map(Spanned::span)),
        ("keepalive", r.keepalive.as_ref().map(Spanned::span)),
        ("timeouts", r.timeouts.as_ref().map(Spanned::span)),
        ("tls", r.tls.as_ref().map(Spanned::span)),
        ("server_name", r.server_name.as_ref().map(Spanned::span)),
        ("ca", r.ca.as_ref().map(Spanned::span)),
        ("tls_verify", r.tls_verify.as_ref().map(Spanned::span)),
        ("client_cert", r.client_cert.as_ref().map(Spanned::span)),
        ("client_key", r.client_key.as_ref().map(Spanned::span)),
    ]
    .into_iter()
    .filter_map(|(k, s)| s.map(|s| (k, cx.line(s.start))))
    .collect();
    let keys = RawTlsKeys {
        tls: &r.tls,
        server_name: &r.server_name,
        ca: &r.ca,
        tls_verify: &r.tls_verify,
        client_cert: &r.client_cert,
        client_key: &r.client_key,
    };
    let fastcgi = super::fastcgi::app(cx, table, i, r, u.span(), file)?;
    if fastcgi.is_some() {
        super::fastcgi::timeouts(cx, &k(""), r, &mut timeouts)?;
    }
    let tls = tls(cx, &format!("{table}[{i}]"), u.span(), keys, &servers, file)?;
    Ok(UpstreamSpec {
        name,
        servers,
        policy,
        lb_key,
        hash,
        health: health(cx, &r.health, &k("health"))?,
        passive: passive(cx, &r.passive, &k("passive"))?,
        retry: retry(cx, &r.retry, &k("retry"))?,
        slow_start,
        sticky,
        max_conns: max_conns.unwrap_or(0) as u32,
        keepalive,
        timeouts,
        tls,
        fastcgi,
        pool: pool.map(|(p, _)| p),
        origin: crate::site::spec::Origin {
            lines,
            ..origin(cx, u.span(), format!("{table}[{i}]"), file)
        },
    })
}

fn servers(
    cx: &Ctx<'_>,
    list: &Spanned<Vec<Spanned<Value>>>,
    key: &str,
    file: Option<&Path>,
) -> Result<Vec<ServerSpec>, ConfigError> {
    let mut out: Vec<ServerSpec> = Vec::new();
    for (j, v) in list.get_ref().iter().enumerate() {
        let k = format!("{key}[{j}]");
        let s = server(cx, v, &k, file)?;
        if out.iter().any(|o| o.name == s.name) {
            return Err(cx.err(v.span(), &k, format!("{:?} is listed twice", s.name)));
        }
        out.push(s);
    }
    if out.is_empty() {
        return Err(cx.err(list.span(), key, "needs at least one server"));
    }
    if out.iter().all(|s| s.backup) {
        return Err(cx.err(
            list.span(),
            key,
            "needs at least one server that is not a backup",
        ));
    }
    Ok(out)
}

fn server(
    cx: &Ctx<'_>,
    v: &Spanned<Value>,
    key: &str,
    file: Option<&Path>,
) -> Result<ServerSpec, ConfigError> {
    let span = v.span();
    let (name, weight, backup) = match v.get_ref() {
        Value::String(s) => (s.clone(), 1, false),
        Value::Table(t) => {
            if let Some(bad) = t
                .keys()
                .find(|n| !["address", "weight", "backup"].contains(&n.as_str()))
            {
                let m = if bad == "tls" {
                    "TLS is set for the whole group: tls = true in the [[upstream]] table".into()
                } else {
                    format!("unknown key {bad:?} (a server takes address, weight and backup)")
                };
                return Err(cx.err(span, &format!("{key}.{bad}"), m));
            }
            let name = match t.get("address") {
                Some(Value::String(s)) => s.clone(),
                Some(_) => {
                    return Err(cx.err(
                        span,
                        &format!("{key}.address"),
                        "must be a string like \"10.0.0.1:8080\"",
                    ));
                }
                None => return Err(cx.err(span, &format!("{key}.address"), "is required")),
            };
            let weight = match t.get("weight") {
                None => 1,
                Some(Value::Integer(n)) if (1..=1000).contains(n) => *n as u32,
                Some(_) => {
                    return Err(cx.err(
                        span,
                        &format!("{key}.weight"),
                        "must be a number from 1 to 1000",
                    ));
                }
            };
            let backup = match t.get("backup") {
                None => false,
                Some(Value::Boolean(b)) => *b,
                Some(_) => {
                    return Err(cx.err(span, &format!("{key}.backup"), "must be true or false"));
                }
            };
            (name, weight, backup)
        }
        _ => {
            return Err(cx.err(
                span,
                key,
                "must be an address like \"10.0.0.1:8080\", or a table { address, weight, backup }",
            ));
        }
    };
    let address = address(&name, file).map_err(|m| cx.err(span, key, m))?;
    Ok(ServerSpec {
        name,
        address,
        weight,
        backup,
    })
}

/// The longest Unix socket path (`sun_path` holds 108 bytes, a NUL included).
const UNIX_PATH_MAX: usize = 107;

/// Reads a server address: an IP and port, a host name and port resolved
/// now (its first address), or `unix:` and a socket path (a relative one is
/// resolved against the file's directory).
pub(super) fn address(s: &str, file: Option<&Path>) -> Result<Address, String> {
    if let Some(path) = s.strip_prefix("unix:") {
        if path.is_empty() {
            return Err(format!(
                "{s:?}: write the socket's path, like \"unix:/run/app.sock\""
            ));
        }
        let p = super::file::relative(path, file);
        let n = p.as_os_str().len();
        if n > UNIX_PATH_MAX {
            return Err(format!(
                "{s:?}: the socket path is {n} bytes long; a Unix socket path holds at most {UNIX_PATH_MAX}"
            ));
        }
        return Ok(Address::Unix(p));
    }
    if let Some((scheme, _)) = s.split_once("://") {
        return Err(if scheme.eq_ignore_ascii_case("https") {
            format!("{s:?}: write host:port, and tls = true in the [[upstream]] table")
        } else {
            format!("{s:?}: write host:port, without a scheme")
        });
    }
    if let Ok(a) = s.parse::<SocketAddr>() {
        return match a.port() {
            0 => Err(format!("{s:?}: the port must not be 0")),
            _ => Ok(Address::Tcp(a)),
        };
    }
    let Some((host, port)) = s.rsplit_once(':') else {
        return Err(format!("{s:?} needs a port, like \"{s}:8080\""));
    };
    let port = match port.parse::<u16>() {
        Ok(p) if p > 0 => p,
        _ => return Err(format!("{s:?}: {port:?} is not a port (1 to 65535)")),
    };
    if host.contains(':') {
        return Err(format!(
            "{s:?}: an IPv6 address is written in brackets, like \"[::1]:{port}\""
        ));
    }
    let label = |l: &str| {
        (1..=63).contains(&l.len())
            && l.bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
    };
    if host.is_empty() || host.len() > 253 || !host.split('.').all(label) {
        return Err(format!("{s:?}: {host:?} is not a host name or IP address"));
    }
    match (host, port).to_socket_addrs().map(|mut a| a.next()) {
        Ok(Some(a)) => Ok(Address::Tcp(a)),
        Ok(None) => Err(format!("{s:?}: {host} has no address")),
        Err(e) => Err(format!("{s:?}: {host} cannot be resolved: {e}")),
    }
}

#[cfg(test)]
#[path = "upstream_tests.rs"]
mod tests;
