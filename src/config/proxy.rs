//! The keys of a `[[site.route]]` with `handler = "proxy"`, read into
//! [`ProxySpec`]; every error naming its key and line. That the group named
//! by `upstream` exists is checked once all tables are read
//! ([`super::upstream::check_routes`]).

use std::collections::BTreeMap;
use std::net::IpAddr;

use serde::Deserialize;
use toml::{Spanned, Value};

use super::ConfigError;
use super::file::Ctx;
use super::route::RawRoute;
use super::upstream::token_byte;
use crate::upstream::spec::{Cidr, HeaderOps, ProxySpec};

/// The keys only `handler = "proxy"` takes.
pub(super) const KEYS: &[&str] = &[
    "upstream",
    "preserve_host",
    "strip_prefix",
    "prefix",
    "header_up",
    "header_down",
    "trusted_proxies",
    "forwarded",
    "via",
    "buffering",
    "connect",
];

/// How far a streamed response is read ahead of the client.
pub(super) const STREAM_MEMORY: usize = 64 << 10;
/// How far a buffered response is read ahead of the client, by default.
pub(super) const BUFFER_MEMORY: usize = 1 << 20;
const MIN_MEMORY: u64 = 4 << 10;
const MAX_MEMORY: u64 = 1 << 30;

/// Header fields whose framing or connection meaning the proxy owns.
const OWNED_FIELDS: &[&str] = &[
    "connection",
    "content-length",
    "keep-alive",
    "te",
    "trailer",
    "transfer-encoding",
    "upgrade",
];

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawHeaderOps {
    set: Option<BTreeMap<String, Spanned<String>>>,
    add: Option<BTreeMap<String, Spanned<String>>>,
    remove: Option<Vec<Spanned<String>>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawBuffering {
    response: Option<Spanned<String>>,
    max_memory: Option<Spanned<Value>>,
}

/// The proxy settings of route `r`, whose dotted key is `key`.
pub(super) fn proxy(
    cx: &Ctx<'_>,
    rt: &Spanned<RawRoute>,
    key: &str,
) -> Result<ProxySpec, ConfigError> {
    let k = |s: &str| format!("{key}.{s}");
    let r = rt.get_ref();
    let upstream = match &r.upstream {
        None => {
            return Err(cx.err(
                rt.span(),
                &k("upstream"),
                "is required for handler = \"proxy\": the name of an [[upstream]] group",
            ));
        }
        Some(u) if u.get_ref().is_empty() => {
            return Err(cx.err(u.span(), &k("upstream"), "must not be empty"));
        }
        Some(u) => u.get_ref().clone(),
    };
    let flag =
        |b: &Option<Spanned<bool>>, default: bool| b.as_ref().map_or(default, |b| *b.get_ref());
    let (buffer_response, max_memory) = buffering(cx, &r.buffering, &k("buffering"))?;
    Ok(ProxySpec {
        upstream,
        preserve_host: flag(&r.preserve_host, true),
        strip_prefix: path(cx, &r.strip_prefix, &k("strip_prefix"))?,
        prefix: path(cx, &r.prefix, &k("prefix"))?,
        header_up: header_ops(cx, &r.header_up, &k("header_up"))?,
        header_down: header_ops(cx, &r.header_down, &k("header_down"))?,
        trusted_proxies: match &r.trusted_proxies {
            None => Vec::new(),
            Some(list) => {
                let mut out = Vec::new();
                for s in list.get_ref() {
                    let c = cidr(s.get_ref())
                        .map_err(|m| cx.err(s.span(), &k("trusted_proxies"), m))?;
                    if !out.contains(&c) {
                        out.push(c);
                    }
                }
                out
            }
        },
        forwarded: flag(&r.forwarded, false),
        via: flag(&r.via, false),
        buffer_response,
        max_memory,
        connect: flag(&r.connect, false),
    })
}

/// `strip_prefix` or `prefix`: empty, or a path starting with `/`.
fn path(cx: &Ctx<'_>, v: &Option<Spanned<String>>, key: &str) -> Result<String, ConfigError> {
    let Some(v) = v else { return Ok(String::new()) };
    let s = v.get_ref();
    let bad = |b: u8| b <= b' ' || b == 0x7f || b == b'?' || b == b'#';
    if !s.is_empty() && (!s.starts_with('/') || s.bytes().any(bad)) {
        return Err(cx.err(
            v.span(),
            key,
            format!("{s:?} must be a path starting with '/' (no query, no spaces)"),
        ));
    }
    Ok(s.clone())
}

fn header_ops(
    cx: &Ctx<'_>,
    raw: &Option<Spanned<RawHeaderOps>>,
    key: &str,
) -> Result<HeaderOps, ConfigError> {
    let mut ops = HeaderOps::default();
    let Some(raw) = raw else { return Ok(ops) };
    let r = raw.get_ref();
    let name_ok = |n: &str| !n.is_empty() && n.bytes().all(token_byte);
    for (list, part) in [(&r.set, "set"), (&r.add, "add")] {
        let k = format!("{key}.{part}");
        for (n, v) in list.iter().flatten() {
            if !name_ok(n) {
                return Err(cx.err(v.span(), &k, format!("{n:?} is not a header name")));
            }
            if OWNED_FIELDS.contains(&n.to_ascii_lowercase().as_str()) {
                return Err(cx.err(
                    v.span(),
                    &k,
                    format!("{n} is managed by the proxy and cannot be set"),
                ));
            }
            if v.get_ref()
                .bytes()
                .any(|b| b == b'\r' || b == b'\n' || b == 0)
            {
                return Err(cx.err(
                    v.span(),
                    &k,
                    format!("the value of {n} must not contain CR, LF or NUL"),
                ));
            }
            let pair = (n.clone(), v.get_ref().clone());
            match part {
                "set" => ops.set.push(pair),
                _ => ops.add.push(pair),
            }
        }
    }
    for n in r.remove.iter().flatten() {
        if !name_ok(n.get_ref()) {
            return Err(cx.err(
                n.span(),
                &format!("{key}.remove"),
                format!("{:?} is not a header name", n.get_ref()),
            ));
        }
        ops.remove.push(n.get_ref().clone());
    }
    Ok(ops)
}

fn buffering(
    cx: &Ctx<'_>,
    raw: &Option<Spanned<RawBuffering>>,
    key: &str,
) -> Result<(bool, usize), ConfigError> {
    let Some(raw) = raw else {
        return Ok((false, STREAM_MEMORY));
    };
    let r = raw.get_ref();
    let buffer = match &r.response {
        None => false,
        Some(m) => match m.get_ref().as_str() {
            "stream" => false,
            "buffer" => true,
            other => {
                return Err(cx.err(
                    m.span(),
                    &format!("{key}.response"),
                    format!("must be \"stream\" or \"buffer\" (got {other:?})"),
                ));
            }
        },
    };
    let memory = match &r.max_memory {
        None if buffer => BUFFER_MEMORY,
        None => STREAM_MEMORY,
        Some(v) => match size_of(v.get_ref()) {
            Some(n) if (MIN_MEMORY..=MAX_MEMORY).contains(&n) => n as usize,
            got => {
                let got = got.map_or(String::new(), |n| format!(" (got {n} bytes)"));
                return Err(cx.err(
                    v.span(),
                    &format!("{key}.max_memory"),
                    format!("must be a size from 4KiB to 1GiB, like \"64KiB\" or \"1MiB\"{got}"),
                ));
            }
        },
    };
    Ok((buffer, memory))
}

/// A size: bytes as a number, or a string with a binary unit (`"64KiB"`,
/// `"1MiB"`, `"1GiB"`; nginx's `k`, `m` and `g` mean the same).
pub(super) fn size_of(v: &Value) -> Option<u64> {
    let s = match v {
        Value::Integer(n) => return u64::try_from(*n).ok(),
        Value::String(s) => s.trim(),
        _ => return None,
    };
    let split = s.find(|c: char| !c.is_ascii_digit()).unwrap_or(s.len());
    let (num, unit) = s.split_at(split);
    let n: u64 = num.parse().ok()?;
    let shift = match unit.trim() {
        "" | "B" => 0,
        "KiB" | "k" | "K" => 10,
        "MiB" | "m" | "M" => 20,
        "GiB" | "g" | "G" => 30,
        _ => return None,
    };
    n.checked_mul(1 << shift)
}

/// A network, `10.0.0.0/8` or `2001:db8::/32`, or one address (`::1`).
/// IPv4-mapped IPv6 networks are stored as IPv4 ones.
pub(super) fn cidr(s: &str) -> Result<Cidr, String> {
    let (ip, len) = match s.split_once('/') {
        Some((ip, len)) => (ip, Some(len)),
        None => (s, None),
    };
    let addr: IpAddr = ip
        .trim()
        .parse()
        .map_err(|_| format!("{s:?} is not an IP address or network like \"10.0.0.0/8\""))?;
    let max = if addr.is_ipv4() { 32 } else { 128 };
    let prefix = match len {
        None => max,
        Some(l) => match l.trim().parse::<u8>() {
            Ok(n) if n <= max => n,
            _ => return Err(format!("{s:?}: the prefix length must be 0 to {max}")),
        },
    };
    let (addr, prefix) = match addr {
        IpAddr::V6(v6) if prefix >= 96 => match v6.to_ipv4_mapped() {
            Some(v4) => (IpAddr::V4(v4), prefix - 96),
            None => (addr, prefix),
        },
        _ => (addr, prefix),
    };
    let c = Cidr { addr, prefix };
    let network = match addr {
        IpAddr::V4(a) => {
            let mask = u32::MAX.checked_shl(32 - u32::from(prefix)).unwrap_or(0);
            IpAddr::V4((u32::from(a) & mask).into())
        }
        IpAddr::V6(a) => {
            let mask = u128::MAX.checked_shl(128 - u32::from(prefix)).unwrap_or(0);
            IpAddr::V6((u128::from(a) & mask).into())
        }
    };
    if network != addr {
        return Err(format!(
            "{s:?} has bits set after the prefix; the network is \"{network}/{prefix}\""
        ));
    }
    Ok(c)
}
