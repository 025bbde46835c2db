//! The health and retry keys of an `[[upstream]]` table: `health` (active
//! checks), `passive` (failures counted from real traffic) and `retry`.

use std::time::Duration;

use serde::Deserialize;
use toml::{Spanned, Value};

use super::ConfigError;
use super::file::{Ctx, Secs};
use crate::upstream::spec::{Health, Passive, Retry, RetryOn};

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawHealth {
    uri: Option<Spanned<String>>,
    interval: Option<Spanned<Secs>>,
    timeout: Option<Spanned<Secs>>,
    passes: Option<Spanned<i64>>,
    fails: Option<Spanned<i64>>,
    expect_status: Option<Spanned<Value>>,
    expect_body: Option<Spanned<String>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawPassive {
    max_fails: Option<Spanned<i64>>,
    fail_timeout: Option<Spanned<Secs>>,
    unhealthy_status: Option<Spanned<Vec<Spanned<Value>>>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawRetry {
    tries: Option<Spanned<i64>>,
    on: Option<Spanned<Vec<Spanned<String>>>>,
    non_idempotent: Option<Spanned<bool>>,
}

pub(super) fn health(
    cx: &Ctx<'_>,
    raw: &Option<Spanned<RawHealth>>,
    key: &str,
) -> Result<Health, ConfigError> {
    let mut h = Health::default();
    let Some(raw) = raw else { return Ok(h) };
    let k = |s: &str| format!("{key}.{s}");
    let r = raw.get_ref();
    match &r.uri {
        None => {
            return Err(cx.err(
                raw.span(),
                &k("uri"),
                "is required: the path the checks ask for",
            ));
        }
        Some(u) => {
            let s = u.get_ref();
            if !s.starts_with('/') || s.bytes().any(|b| b <= b' ' || b == 0x7f || b == b'#') {
                return Err(cx.err(
                    u.span(),
                    &k("uri"),
                    format!("{s:?} must be a path starting with '/', without spaces"),
                ));
            }
            h.uri = Some(s.clone());
        }
    }
    let ms = Duration::from_millis(1);
    if let Some(d) = cx.secs(&r.interval, &k("interval"), ms)? {
        h.interval = d;
    }
    if let Some(d) = cx.secs(&r.timeout, &k("timeout"), ms)? {
        h.timeout = d;
    }
    if let Some(n) = cx.int(&r.passes, &k("passes"), 1, 100)? {
        h.passes = n as u32;
    }
    if let Some(n) = cx.int(&r.fails, &k("fails"), 1, 100)? {
        h.fails = n as u32;
    }
    if let Some(v) = &r.expect_status {
        h.expect_status =
            status_ranges(v.get_ref()).map_err(|m| cx.err(v.span(), &k("expect_status"), m))?;
    }
    if let Some(b) = &r.expect_body {
        h.expect_body = b.get_ref().clone();
    }
    Ok(h)
}

/// `"200-399"`, `"200"`, `"200-299,404"` or `204`: inclusive ranges.
fn status_ranges(v: &Value) -> Result<Vec<(u16, u16)>, String> {
    let text = match v {
        Value::Integer(n) => n.to_string(),
        Value::String(s) => s.clone(),
        _ => return Err("must be statuses like \"200-399\", \"200\" or \"200-299,404\"".into()),
    };
    let status = |s: &str| match s.trim().parse::<u16>() {
        Ok(n) if (100..=599).contains(&n) => Ok(n),
        _ => Err(format!("{:?} is not a status from 100 to 599", s.trim())),
    };
    let mut out = Vec::new();
    for part in text.split(',') {
        let (a, b) = match part.split_once('-') {
            Some((a, b)) => (status(a)?, status(b)?),
            None => (status(part)?, status(part)?),
        };
        if a > b {
            return Err(format!("{:?}: the range runs backwards", part.trim()));
        }
        out.push((a, b));
    }
    Ok(out)
}

pub(super) fn passive(
    cx: &Ctx<'_>,
    raw: &Option<Spanned<RawPassive>>,
    key: &str,
) -> Result<Passive, ConfigError> {
    let mut p = Passive::default();
    let Some(raw) = raw else { return Ok(p) };
    let k = |s: &str| format!("{key}.{s}");
    let r = raw.get_ref();
    if let Some(n) = cx.int(&r.max_fails, &k("max_fails"), 0, 1000)? {
        p.max_fails = n as u32;
    }
    if let Some(d) = cx.secs(
        &r.fail_timeout,
        &k("fail_timeout"),
        Duration::from_millis(1),
    )? {
        p.fail_timeout = d;
    }
    if let Some(list) = &r.unhealthy_status {
        p.unhealthy_status.clear();
        for v in list.get_ref() {
            let n = match v.get_ref() {
                Value::Integer(n) => u16::try_from(*n).ok(),
                Value::String(s) => s.parse::<u16>().ok(),
                _ => None,
            };
            let bad = |m: String| cx.err(v.span(), &k("unhealthy_status"), m);
            match n {
                Some(n) if (100..=599).contains(&n) => {
                    if p.unhealthy_status.contains(&n) {
                        return Err(bad(format!("{n} is listed twice")));
                    }
                    p.unhealthy_status.push(n);
                }
                _ => {
                    return Err(bad(format!(
                        "{} is not a status from 100 to 599",
                        v.get_ref()
                    )));
                }
            }
        }
    }
    Ok(p)
}

pub(super) fn retry(
    cx: &Ctx<'_>,
    raw: &Option<Spanned<RawRetry>>,
    key: &str,
) -> Result<Retry, ConfigError> {
    let mut out = Retry::default();
    let Some(raw) = raw else { return Ok(out) };
    let k = |s: &str| format!("{key}.{s}");
    let r = raw.get_ref();
    if let Some(n) = cx.int(&r.tries, &k("tries"), 1, 10)? {
        out.tries = n as u32;
    }
    if let Some(list) = &r.on {
        out.on.clear();
        for name in list.get_ref() {
            let on = RetryOn::ALL
                .into_iter()
                .find(|v| v.name() == name.get_ref())
                .ok_or_else(|| {
                    let names: Vec<&str> = RetryOn::ALL.iter().map(|v| v.name()).collect();
                    cx.err(
                        name.span(),
                        &k("on"),
                        format!("{:?} is not one of {}", name.get_ref(), names.join(", ")),
                    )
                })?;
            if out.on.contains(&on) {
                return Err(cx.err(
                    name.span(),
                    &k("on"),
                    format!("{:?} is listed twice", name.get_ref()),
                ));
            }
            out.on.push(on);
        }
    }
    if let Some(b) = &r.non_idempotent {
        out.non_idempotent = *b.get_ref();
    }
    Ok(out)
}
