//! `[[site]]` tables: TOML into the site model ([`crate::site::spec`]),
//! every error naming its key and line; their routes are read by
//! [`super::route`].

use std::collections::BTreeMap;
use std::path::Path;

use serde::Deserialize;
use toml::Spanned;

use super::ConfigError;
use super::file::{Ctx, OneOrMany, relative};
use super::route::{RawRoute, route};
use crate::site::spec::{Origin, Rules, Site, SiteTls, StatusMatch};

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawSite {
    name: Option<Spanned<String>>,
    hosts: Option<Spanned<Vec<String>>>,
    listen: Option<Spanned<OneOrMany>>,
    tls_listen: Option<Spanned<OneOrMany>>,
    tls: Option<Spanned<RawSiteTls>>,
    root: Option<Spanned<String>>,
    index: Option<Spanned<Vec<String>>>,
    default: Option<Spanned<bool>>,
    http2: Option<bool>,
    response_headers: Option<Spanned<RawHeaderRules>>,
    errors: Option<Spanned<BTreeMap<String, String>>>,
    access_log: Option<Spanned<toml::Value>>,
    route: Option<Vec<Spanned<RawRoute>>>,
    request_filtering: Option<Spanned<super::filtering::RawFiltering>>,
    ip_security: Option<Spanned<super::security::RawIpSecurity>>,
    limit_req: Option<Vec<Spanned<super::security::RawLimitReq>>>,
    limit_conn: Option<Vec<Spanned<super::security::RawLimitConn>>>,
    dynamic_ip_security: Option<Spanned<super::security::RawDynamic>>,
    compression: Option<Spanned<super::compression::RawCompression>>,
}

super::security::guard_keys!(RawSite);

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawSiteTls {
    cert: Spanned<String>,
    key: Spanned<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawHeaderRules {
    set: Option<BTreeMap<String, String>>,
    add: Option<BTreeMap<String, String>>,
    remove: Option<Vec<String>>,
}

/// Header fields the server writes itself.
const SERVER_FIELDS: &[&str] = &[
    "content-length",
    "transfer-encoding",
    "connection",
    "date",
    "server",
];

/// Table headers that put a route outside any site: `[[route]]`, or a
/// `[[site.route]]` before the first `[[site]]`. Found in the text, since TOML
/// itself would read the latter as a table named `site`.
pub(super) fn stray_route(cx: &Ctx<'_>, text: &str) -> Result<(), ConfigError> {
    let mut offset = 0;
    let mut in_site = false;
    for line in text.split_inclusive('\n') {
        let t: String = line
            .split('#')
            .next()
            .unwrap_or("")
            .split_whitespace()
            .collect();
        let at = offset..offset + line.len();
        offset += line.len();
        match t.as_str() {
            "[[site]]" => in_site = true,
            "[[route]]" | "[route]" => {
                return Err(cx.err(
                    at,
                    "route",
                    "a route outside any site: write [[site.route]] after a [[site]] table",
                ));
            }
            "[[site.route]]" if !in_site => {
                return Err(cx.err(
                    at,
                    "site.route",
                    "a route outside any site: put a [[site]] table (name, hosts) before it",
                ));
            }
            _ => {}
        }
    }
    Ok(())
}

/// The sites of a file, in order.
pub(super) fn sites(
    cx: &Ctx<'_>,
    raw: &[Spanned<RawSite>],
    file: Option<&Path>,
) -> Result<Vec<Site>, ConfigError> {
    let mut out: Vec<Site> = Vec::new();
    for (i, s) in raw.iter().enumerate() {
        let site = site(cx, i, s, file)?;
        if let Some(other) = out.iter().find(|o| o.name == site.name) {
            let span = s.get_ref().name.as_ref().map_or(s.span(), |n| n.span());
            return Err(cx.err(
                span,
                &format!("site[{i}].name"),
                format!(
                    "{:?} is the name of {} too; site names must differ",
                    site.name, other.origin.key
                ),
            ));
        }
        out.push(site);
    }
    Ok(out)
}

pub(super) fn origin(
    cx: &Ctx<'_>,
    span: std::ops::Range<usize>,
    key: String,
    file: Option<&Path>,
) -> Origin {
    Origin {
        file: file.map(Path::to_path_buf),
        line: Some(cx.line(span.start)),
        key,
        lines: Vec::new(),
    }
}

/// The lines of the keys of `r` that the plan checks.
fn key_lines(cx: &Ctx<'_>, r: &RawSite) -> Vec<(&'static str, usize)> {
    let mut out = Vec::new();
    let mut at = |k: &'static str, span: Option<std::ops::Range<usize>>| {
        if let Some(s) = span {
            out.push((k, cx.line(s.start)));
        }
    };
    at("hosts", r.hosts.as_ref().map(Spanned::span));
    at("default", r.default.as_ref().map(Spanned::span));
    at("tls", r.tls.as_ref().map(Spanned::span));
    at("tls_listen", r.tls_listen.as_ref().map(Spanned::span));
    at("listen", r.listen.as_ref().map(Spanned::span));
    at("root", r.root.as_ref().map(Spanned::span));
    at("errors", r.errors.as_ref().map(Spanned::span));
    at("access_log", r.access_log.as_ref().map(Spanned::span));
    out
}

fn site(
    cx: &Ctx<'_>,
    i: usize,
    s: &Spanned<RawSite>,
    file: Option<&Path>,
) -> Result<Site, ConfigError> {
    let k = |key: &str| format!("site[{i}].{key}");
    let r = s.get_ref();
    let mut hosts: Vec<String> = Vec::new();
    if let Some(h) = &r.hosts {
        for name in h.get_ref() {
            let n = host_pattern(name).map_err(|m| cx.err(h.span(), &k("hosts"), m))?;
            if hosts.contains(&n) {
                return Err(cx.err(h.span(), &k("hosts"), format!("{n:?} is listed twice")));
            }
            hosts.push(n);
        }
    }
    let default = r.default.as_ref().is_some_and(|d| *d.get_ref());
    if hosts.is_empty() && !default {
        return Err(cx.err(
            s.span(),
            &k("hosts"),
            "a site needs host names, or default = true to answer every Host",
        ));
    }
    let name = match &r.name {
        Some(n) if n.get_ref().trim().is_empty() => {
            return Err(cx.err(n.span(), &k("name"), "must not be empty"));
        }
        Some(n) => n.get_ref().clone(),
        None => hosts.first().cloned().unwrap_or_else(|| format!("site{i}")),
    };
    let listen = r
        .listen
        .as_ref()
        .map(|l| cx.listen_list(l, &k("listen")))
        .transpose()?;
    let tls_listen = r
        .tls_listen
        .as_ref()
        .map(|l| cx.listen_list(l, &k("tls_listen")))
        .transpose()?;
    let tls = match &r.tls {
        None => None,
        Some(t) => {
            let t = t.get_ref();
            let path = |p: &Spanned<String>, key: &str| {
                if p.get_ref().is_empty() {
                    Err(cx.err(p.span(), &k(key), "must not be empty"))
                } else {
                    Ok(relative(p.get_ref(), file))
                }
            };
            Some(SiteTls {
                cert: path(&t.cert, "tls.cert")?,
                key: path(&t.key, "tls.key")?,
            })
        }
    };
    if let (Some(_), true) = (&tls, hosts.is_empty()) {
        let span = r.tls.as_ref().map_or(s.span(), |t| t.span());
        return Err(cx.err(
            span,
            &k("tls"),
            "needs the site's hosts: SNI picks the certificate by them",
        ));
    }
    let root = match &r.root {
        Some(p) if p.get_ref().is_empty() => {
            return Err(cx.err(p.span(), &k("root"), "must not be empty"));
        }
        Some(p) => Some(relative(p.get_ref(), file)),
        None => None,
    };
    let index = match &r.index {
        Some(v) => index_list(cx, v, &k("index"))?,
        None => vec!["index.html".to_string()],
    };
    let mut rules = Rules::default();
    header_rules(cx, &r.response_headers, &k("response_headers"), &mut rules)?;
    error_pages(cx, &r.errors, &k("errors"), root.is_some(), &mut rules)?;
    let access_log = match &r.access_log {
        Some(l) => super::site_log::site_log(cx, l, &k("access_log"), file)?,
        None => crate::site::SiteLog::Global,
    };
    let mut routes: Vec<crate::site::Route> = Vec::new();
    for (j, rt) in r.route.iter().flatten().enumerate() {
        let key = format!("site[{i}].route[{j}]");
        let new = route(cx, rt, key, &root, &index, file)?;
        if let Some(old) = routes.iter().find(|o| shadows(o, &new)) {
            return Err(new.origin.err(
                "path",
                format!(
                    "{:?} is routed by {} already, for the same methods",
                    new.path, old.origin.key
                ),
            ));
        }
        routes.push(new);
    }
    Ok(Site {
        name,
        hosts,
        listen,
        tls_listen,
        tls,
        root,
        index,
        default,
        http2: r.http2.unwrap_or(true),
        rules,
        security: super::security::guards(cx, r.guard_keys(), &format!("site[{i}]"), cx.zones)?,
        compression: match &r.compression {
            Some(c) => super::compression::compression(cx, c, &k("compression"))?,
            None => None,
        },
        routes,
        access_log,
        origin: Origin {
            lines: key_lines(cx, r),
            ..origin(cx, s.span(), format!("site[{i}]"), file)
        },
    })
}

/// Whether `old` answers every request `new` would (so `new` never runs).
fn shadows(old: &crate::site::Route, new: &crate::site::Route) -> bool {
    let norm = |r: &crate::site::Route| {
        if r.exact || r.path == "/" {
            r.path.clone()
        } else {
            r.path.trim_end_matches('/').to_string()
        }
    };
    let methods = match (old.methods, new.methods) {
        (None, _) => true,
        (Some(_), None) => false,
        (Some(a), Some(b)) => a.intersect(b) == b,
    };
    old.exact == new.exact && norm(old) == norm(new) && methods
}

/// A lowercase host name or `*.` wildcard, checked.
fn host_pattern(name: &str) -> Result<String, String> {
    let bare = name.strip_prefix("*.").unwrap_or(name);
    let label_ok = |l: &str| {
        (1..=63).contains(&l.len())
            && l.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
            && !l.starts_with('-')
            && !l.ends_with('-')
    };
    if bare.len() > 251 || !bare.split('.').all(label_ok) {
        return Err(format!(
            "{name:?} is not a host name or a one-label wildcard like \"*.example.com\" (no port, no scheme)"
        ));
    }
    Ok(name.to_ascii_lowercase())
}

pub(super) fn index_list(
    cx: &Ctx<'_>,
    v: &Spanned<Vec<String>>,
    key: &str,
) -> Result<Vec<String>, ConfigError> {
    for n in v.get_ref() {
        if n.is_empty() || n.contains('/') || n == "." || n == ".." {
            return Err(cx.err(v.span(), key, format!("{n:?} is not a file name")));
        }
    }
    Ok(v.get_ref().clone())
}

pub(super) fn header_rules(
    cx: &Ctx<'_>,
    raw: &Option<Spanned<RawHeaderRules>>,
    key: &str,
    rules: &mut Rules,
) -> Result<(), ConfigError> {
    let Some(raw) = raw else { return Ok(()) };
    let span = raw.span();
    let h = raw.get_ref();
    for (list, part) in [(&h.set, "set"), (&h.add, "add")] {
        for (n, v) in list.iter().flatten() {
            field(n, Some(v)).map_err(|m| cx.err(span.clone(), &format!("{key}.{part}"), m))?;
            let pair = (n.clone(), v.clone());
            if part == "set" {
                rules.set.push(pair);
            } else {
                rules.add.push(pair);
            }
        }
    }
    for n in h.remove.iter().flatten() {
        field(n, None).map_err(|m| cx.err(span.clone(), &format!("{key}.remove"), m))?;
        rules.remove.push(n.clone());
    }
    Ok(())
}

/// Checks a header name (and value) a rule or a `respond` route writes.
pub(super) fn field(name: &str, value: Option<&str>) -> Result<(), String> {
    let token = |b: u8| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b);
    if name.is_empty() || !name.bytes().all(token) {
        return Err(format!("{name:?} is not a header name"));
    }
    if SERVER_FIELDS.contains(&name.to_ascii_lowercase().as_str()) {
        return Err(format!(
            "{name} is written by the server and cannot be changed"
        ));
    }
    if let Some(v) = value
        && v.bytes().any(|b| b == b'\r' || b == b'\n' || b == 0)
    {
        return Err(format!(
            "the value of {name} must not contain CR, LF or NUL"
        ));
    }
    Ok(())
}

pub(super) fn error_pages(
    cx: &Ctx<'_>,
    raw: &Option<Spanned<BTreeMap<String, String>>>,
    key: &str,
    has_root: bool,
    rules: &mut Rules,
) -> Result<(), ConfigError> {
    let Some(raw) = raw else { return Ok(()) };
    if !has_root && !raw.get_ref().is_empty() {
        return Err(cx.err(
            raw.span(),
            key,
            "error pages are files under the site's root: set the site's root",
        ));
    }
    for (status, page) in raw.get_ref() {
        let m = match status.as_bytes() {
            [c @ b'4'..=b'5', b'x' | b'X', b'x' | b'X'] => StatusMatch::Class(u16::from(c - b'0')),
            _ => match status.parse::<u16>() {
                Ok(n) if (400..=599).contains(&n) => StatusMatch::Code(n),
                _ => {
                    return Err(cx.err(
                        raw.span(),
                        &format!("{key}.{status}"),
                        "must be a status from 400 to 599, \"4xx\" or \"5xx\"",
                    ));
                }
            },
        };
        if !page.starts_with('/') {
            return Err(cx.err(
                raw.span(),
                &format!("{key}.{status}"),
                format!("{page:?} must be a path in the site, starting with '/'"),
            ));
        }
        rules.errors.push((m, page.clone()));
    }
    Ok(())
}

#[cfg(test)]
#[path = "site_tests.rs"]
mod tests;
