//! `[cache]` (the store) and a route's `cache = { … }`: TOML into a
//! [`StoreSpec`] and a [`CacheRule`], every error naming its key and line.

use std::collections::BTreeMap;
use std::time::Duration;

use serde::Deserialize;
use toml::Spanned;

use super::ConfigError;
use super::file::{Ctx, Secs};
use crate::cache::{Bypass, CacheRule, StoreSpec};

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawStore {
    max_size: Option<Spanned<toml::Value>>,
    max_object_size: Option<Spanned<toml::Value>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawRule {
    ttl: Option<Spanned<BTreeMap<String, Spanned<Secs>>>>,
    vary_by_query: Option<Spanned<Vec<String>>>,
    stale_while_revalidate: Option<Spanned<Secs>>,
    stale_if_error: Option<Spanned<Secs>>,
    lock: Option<bool>,
    lock_timeout: Option<Spanned<Secs>>,
    bypass_if: Option<Vec<Spanned<String>>>,
    store_set_cookie: Option<bool>,
}

/// A size from `min` to `max` bytes under `key`.
fn size(
    cx: &Ctx<'_>,
    v: &Spanned<toml::Value>,
    key: &str,
    (min, max): (u64, u64),
) -> Result<u64, ConfigError> {
    match super::proxy::size_of(v.get_ref()) {
        Some(n) if (min..=max).contains(&n) => Ok(n),
        _ => Err(cx.err(
            v.span(),
            key,
            format!(
                "must be a size from {} to {}, like \"256MiB\" (bytes as a number, or KiB, MiB, GiB)",
                shown(min),
                shown(max)
            ),
        )),
    }
}

fn shown(n: u64) -> String {
    match n {
        n if n >= 1 << 30 && n % (1 << 30) == 0 => format!("{}GiB", n >> 30),
        n if n >= 1 << 20 && n % (1 << 20) == 0 => format!("{}MiB", n >> 20),
        n if n >= 1 << 10 && n % (1 << 10) == 0 => format!("{}KiB", n >> 10),
        n => format!("{n} bytes"),
    }
}

/// `[cache]`.
pub(super) fn store(cx: &Ctx<'_>, raw: &RawStore) -> Result<StoreSpec, ConfigError> {
    let d = StoreSpec::default();
    let max_size = match &raw.max_size {
        Some(v) => size(cx, v, "cache.max_size", (1 << 20, 1 << 40))?,
        None => d.max_size,
    };
    let max_object_size = match &raw.max_object_size {
        Some(v) => size(cx, v, "cache.max_object_size", (1, 1 << 30))?,
        None => d.max_object_size,
    };
    if max_object_size > max_size {
        let span = raw.max_object_size.as_ref().map_or(0..0, |v| v.span());
        return Err(cx.err(
            span,
            "cache.max_object_size",
            format!(
                "must not be larger than cache.max_size ({})",
                shown(max_size)
            ),
        ));
    }
    Ok(StoreSpec {
        max_size,
        max_object_size,
    })
}

fn duration(
    cx: &Ctx<'_>,
    v: &Option<Spanned<Secs>>,
    key: &str,
    min: Duration,
) -> Result<Option<Duration>, ConfigError> {
    let Some(s) = v else { return Ok(None) };
    match super::file::secs_of(s.get_ref()) {
        Some(d) if d >= min && d <= Duration::from_secs(365 * 86_400) => Ok(Some(d)),
        _ => Err(cx.err(
            s.span(),
            key,
            format!(
                "must be a duration from {min:?} to 365 days: seconds, or a string like \"10m\", \"30s\", \"1h\""
            ),
        )),
    }
}

/// A route's `cache` table; `key` is its dotted key.
pub(super) fn rule(
    cx: &Ctx<'_>,
    raw: &Spanned<RawRule>,
    key: &str,
) -> Result<CacheRule, ConfigError> {
    let r = raw.get_ref();
    let k = |name: &str| format!("{key}.{name}");
    let d = CacheRule::default();
    let mut ttl = Vec::new();
    if let Some(t) = &r.ttl {
        for (status, v) in t.get_ref() {
            let s = match status.as_str() {
                "any" => None,
                code => match code.parse::<u16>() {
                    Ok(n) if (200..=599).contains(&n) && n != 206 => Some(n),
                    _ => {
                        return Err(cx.err(
                            t.span(),
                            &k("ttl"),
                            format!("{status:?} is not a status: write a final status from 200 to 599 (not 206), or \"any\""),
                        ));
                    }
                },
            };
            let key = format!("{}.{status}", k("ttl"));
            let d = duration(cx, &Some(v.clone()), &key, Duration::from_secs(1))?.expect("given");
            ttl.push((s, d));
        }
    }
    let vary_by_query = match &r.vary_by_query {
        None => None,
        Some(v) => {
            for name in v.get_ref() {
                if name.is_empty() || name.contains(['&', '=', '?', '#', ' ']) {
                    return Err(cx.err(
                        v.span(),
                        &k("vary_by_query"),
                        format!("{name:?} is not a query parameter name"),
                    ));
                }
            }
            Some(v.get_ref().clone())
        }
    };
    let mut bypass_if = Vec::new();
    for b in r.bypass_if.iter().flatten() {
        let s = b.get_ref();
        let parsed = match s.split_once(':') {
            Some(("header", n)) if crate::http::client::is_token(n) => {
                Some(Bypass::Header(n.to_string()))
            }
            Some(("cookie", n)) if !n.is_empty() && !n.contains([';', '=', ' ']) => {
                Some(Bypass::Cookie(n.to_string()))
            }
            Some(("query", n)) if !n.is_empty() && !n.contains(['&', '=']) => {
                Some(Bypass::Query(n.to_string()))
            }
            _ => None,
        };
        bypass_if.push(parsed.ok_or_else(|| {
            cx.err(
                b.span(),
                &k("bypass_if"),
                format!("{s:?} is not a condition: write \"header:Name\", \"cookie:name\" or \"query:name\""),
            )
        })?);
    }
    Ok(CacheRule {
        ttl,
        vary_by_query,
        stale_while_revalidate: duration(
            cx,
            &r.stale_while_revalidate,
            &k("stale_while_revalidate"),
            Duration::ZERO,
        )?
        .unwrap_or(d.stale_while_revalidate),
        stale_if_error: duration(cx, &r.stale_if_error, &k("stale_if_error"), Duration::ZERO)?
            .unwrap_or(d.stale_if_error),
        lock: r.lock.unwrap_or(d.lock),
        lock_timeout: duration(
            cx,
            &r.lock_timeout,
            &k("lock_timeout"),
            Duration::from_millis(1),
        )?
        .unwrap_or(d.lock_timeout),
        bypass_if,
        store_set_cookie: r.store_set_cookie.unwrap_or(d.store_set_cookie),
    })
}

#[cfg(test)]
#[path = "cache_tests.rs"]
mod tests;
