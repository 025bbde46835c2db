//! `[[site.route]]` tables: a route's path, matchers, handler and its
//! settings, and rules; every error naming its key and line.

use std::collections::BTreeMap;
use std::path::Path;

use serde::Deserialize;
use toml::Spanned;

use super::ConfigError;
use super::file::{Ctx, relative};
use super::site::{RawHeaderRules, error_pages, field, header_rules, index_list, origin};
use crate::http::{Method, Methods};
use crate::site::spec::{Files, HandlerSpec, Options, Origin, Route, Rules};
use crate::site::template::Template;
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawRoute {
    path: Option<Spanned<String>>,
    exact: Option<bool>,
    methods: Option<Spanned<Vec<String>>>,
    handler: Option<Spanned<String>>,
    response_headers: Option<Spanned<RawHeaderRules>>,
    errors: Option<Spanned<BTreeMap<String, String>>>,
    compression: Option<bool>,
    cache: Option<Spanned<super::cache::RawRule>>,
    // respond, redirect
    status: Option<Spanned<i64>>,
    body: Option<Spanned<String>>,
    headers: Option<Spanned<BTreeMap<String, String>>>,
    to: Option<Spanned<String>>,
    // files
    root: Option<Spanned<String>>,
    index: Option<Spanned<Vec<String>>>,
    browse: Option<Spanned<bool>>,
    hide: Option<Spanned<Vec<String>>>,
    dotfiles: Option<Spanned<bool>>,
    // named handlers
    options: Option<Spanned<toml::Table>>,
    // proxy
    pub(super) upstream: Option<Spanned<String>>,
    pub(super) preserve_host: Option<Spanned<bool>>,
    pub(super) strip_prefix: Option<Spanned<String>>,
    pub(super) prefix: Option<Spanned<String>>,
    pub(super) header_up: Option<Spanned<super::proxy::RawHeaderOps>>,
    pub(super) header_down: Option<Spanned<super::proxy::RawHeaderOps>>,
    pub(super) trusted_proxies: Option<Spanned<Vec<Spanned<String>>>>,
    pub(super) forwarded: Option<Spanned<bool>>,
    pub(super) via: Option<Spanned<bool>>,
    pub(super) buffering: Option<Spanned<super::proxy::RawBuffering>>,
    pub(super) connect: Option<Spanned<bool>>,
    request_filtering: Option<Spanned<super::filtering::RawFiltering>>,
    ip_security: Option<Spanned<super::security::RawIpSecurity>>,
    limit_req: Option<Vec<Spanned<super::security::RawLimitReq>>>,
    limit_conn: Option<Vec<Spanned<super::security::RawLimitConn>>>,
    dynamic_ip_security: Option<Spanned<super::security::RawDynamic>>,
}

super::security::guard_keys!(RawRoute);

/// Handler names that come with later features.
const NOT_YET: &[&str] = &[];

/// The keys each handler takes besides the common ones.
fn handler_keys(handler: &str) -> &'static [&'static str] {
    match handler {
        "files" => &["root", "index", "browse", "hide", "dotfiles"],
        "redirect" => &["to", "status"],
        "respond" => &["status", "body", "headers"],
        "builtins" => &[],
        "proxy" => super::proxy::KEYS,
        "fastcgi" => &["upstream"],
        _ => &["options"],
    }
}

pub(super) fn route(
    cx: &Ctx<'_>,
    rt: &Spanned<RawRoute>,
    key: String,
    site_root: &Option<std::path::PathBuf>,
    site_index: &[String],
    file: Option<&Path>,
) -> Result<Route, ConfigError> {
    let k = |s: &str| format!("{key}.{s}");
    let r = rt.get_ref();
    let path = match &r.path {
        Some(p) if p.get_ref().starts_with('/') && !p.get_ref().contains(['?', '#', ' ']) => {
            p.get_ref().clone()
        }
        Some(p) => {
            return Err(cx.err(
                p.span(),
                &k("path"),
                "must be a path starting with '/' (no query)",
            ));
        }
        None => return Err(cx.err(rt.span(), &k("path"), "is required")),
    };
    let Some(h) = &r.handler else {
        return Err(cx.err(
            rt.span(),
            &k("handler"),
            "is required: files, redirect, respond, builtins, proxy, or a registered name",
        ));
    };
    let handler = h.get_ref().as_str();
    if NOT_YET.contains(&handler) {
        return Err(cx.err(
            h.span(),
            &k("handler"),
            format!("{handler:?} is not available yet (use files, redirect, respond, builtins, proxy, fastcgi, or a registered name)"),
        ));
    }
    if handler.is_empty()
        || !handler
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
    {
        return Err(cx.err(
            h.span(),
            &k("handler"),
            format!("{handler:?} is not a handler name"),
        ));
    }
    let present: [(&str, Option<std::ops::Range<usize>>); 21] = [
        ("status", r.status.as_ref().map(Spanned::span)),
        ("body", r.body.as_ref().map(Spanned::span)),
        ("headers", r.headers.as_ref().map(Spanned::span)),
        ("to", r.to.as_ref().map(Spanned::span)),
        ("root", r.root.as_ref().map(Spanned::span)),
        ("index", r.index.as_ref().map(Spanned::span)),
        ("browse", r.browse.as_ref().map(Spanned::span)),
        ("hide", r.hide.as_ref().map(Spanned::span)),
        ("dotfiles", r.dotfiles.as_ref().map(Spanned::span)),
        ("options", r.options.as_ref().map(Spanned::span)),
        ("upstream", r.upstream.as_ref().map(Spanned::span)),
        ("preserve_host", r.preserve_host.as_ref().map(Spanned::span)),
        ("strip_prefix", r.strip_prefix.as_ref().map(Spanned::span)),
        ("prefix", r.prefix.as_ref().map(Spanned::span)),
        ("header_up", r.header_up.as_ref().map(Spanned::span)),
        ("header_down", r.header_down.as_ref().map(Spanned::span)),
        (
            "trusted_proxies",
            r.trusted_proxies.as_ref().map(Spanned::span),
        ),
        ("forwarded", r.forwarded.as_ref().map(Spanned::span)),
        ("via", r.via.as_ref().map(Spanned::span)),
        ("buffering", r.buffering.as_ref().map(Spanned::span)),
        ("connect", r.connect.as_ref().map(Spanned::span)),
    ];
    let allowed = handler_keys(handler);
    if let Some((name, Some(span))) = present
        .iter()
        .find(|(n, s)| s.is_some() && !allowed.contains(n))
    {
        return Err(cx.err(
            span.clone(),
            &k(name),
            format!("does not apply to handler = {handler:?}"),
        ));
    }
    let methods = match &r.methods {
        None => None,
        Some(m) => Some(methods(m.get_ref()).map_err(|e| cx.err(m.span(), &k("methods"), e))?),
    };
    let status = |default: u16, ok: &dyn Fn(u16) -> bool, what: &str| match &r.status {
        None => Ok(default),
        Some(s) => match u16::try_from(*s.get_ref()) {
            Ok(n) if ok(n) => Ok(n),
            _ => Err(cx.err(s.span(), &k("status"), format!("must be {what}"))),
        },
    };
    let spec = match handler {
        "files" => {
            let root = match (&r.root, site_root) {
                (Some(p), _) if !p.get_ref().is_empty() => relative(p.get_ref(), file),
                (Some(p), _) => return Err(cx.err(p.span(), &k("root"), "must not be empty")),
                (None, Some(root)) => root.clone(),
                (None, None) => {
                    return Err(cx.err(
                        rt.span(),
                        &k("root"),
                        "is required (the site has no root to serve)",
                    ));
                }
            };
            let hide = match &r.hide {
                None => Vec::new(),
                Some(v) => {
                    if let Some(bad) = v.get_ref().iter().find(|g| g.is_empty()) {
                        return Err(cx.err(
                            v.span(),
                            &k("hide"),
                            format!("{bad:?} is not a pattern"),
                        ));
                    }
                    v.get_ref().clone()
                }
            };
            HandlerSpec::Files(Files {
                root,
                index: match &r.index {
                    Some(v) => index_list(cx, v, &k("index"))?,
                    None => site_index.to_vec(),
                },
                browse: r.browse.as_ref().is_some_and(|b| *b.get_ref()),
                hide,
                dotfiles: r.dotfiles.as_ref().is_some_and(|b| *b.get_ref()),
            })
        }
        "redirect" => {
            let Some(to) = &r.to else {
                return Err(cx.err(
                    rt.span(),
                    &k("to"),
                    "is required for handler = \"redirect\"",
                ));
            };
            HandlerSpec::Redirect {
                to: Template::parse(to.get_ref()).map_err(|m| cx.err(to.span(), &k("to"), m))?,
                status: status(
                    302,
                    &|n| [301, 302, 303, 307, 308].contains(&n),
                    "301, 302, 303, 307 or 308",
                )?,
            }
        }
        "respond" => {
            let mut headers = Vec::new();
            if let Some(h) = &r.headers {
                for (n, v) in h.get_ref() {
                    field(n, Some(v)).map_err(|m| cx.err(h.span(), &k("headers"), m))?;
                    headers.push((n.clone(), v.clone()));
                }
            }
            HandlerSpec::Respond {
                status: status(
                    200,
                    &|n| (200..=599).contains(&n),
                    "a status from 200 to 599",
                )?,
                body: r
                    .body
                    .as_ref()
                    .map(|b| b.get_ref().clone())
                    .unwrap_or_default(),
                headers,
            }
        }
        "builtins" => HandlerSpec::Builtins,
        "proxy" => HandlerSpec::Proxy(super::proxy::proxy(cx, rt, &key)?),
        "fastcgi" => match &r.upstream {
            Some(u) => HandlerSpec::FastCgi {
                upstream: u.get_ref().clone(),
            },
            None => {
                return Err(cx.err(
                    rt.span(),
                    &k("upstream"),
                    "is required for handler = \"fastcgi\": the name of a [[fastcgi]] table",
                ));
            }
        },
        name => HandlerSpec::Named {
            name: name.to_string(),
            options: Options(
                r.options
                    .as_ref()
                    .map(|o| o.get_ref().clone())
                    .unwrap_or_default(),
            ),
        },
    };
    let mut rules = Rules::default();
    header_rules(cx, &r.response_headers, &k("response_headers"), &mut rules)?;
    error_pages(cx, &r.errors, &k("errors"), site_root.is_some(), &mut rules)?;
    let line_of = r.handler.as_ref().map_or(rt.span(), |h| h.span());
    Ok(Route {
        path,
        exact: r.exact.unwrap_or(false),
        methods,
        handler: spec,
        rules,
        security: super::security::guards(cx, r.guard_keys(), &key, cx.zones)?,
        compression: r.compression.unwrap_or(true),
        cache: match &r.cache {
            Some(c) => Some(super::cache::rule(cx, c, &k("cache"))?),
            None => None,
        },
        origin: Origin {
            lines: [
                ("path", r.path.as_ref().map(Spanned::span)),
                ("root", r.root.as_ref().map(Spanned::span)),
                ("errors", r.errors.as_ref().map(Spanned::span)),
                ("upstream", r.upstream.as_ref().map(Spanned::span)),
            ]
            .into_iter()
            .filter_map(|(k, s)| s.map(|s| (k, cx.line(s.start))))
            .collect(),
            ..origin(cx, line_of, key, file)
        },
    })
}

/// A `methods` list; `GET` brings `HEAD` with it.
fn methods(list: &[String]) -> Result<Methods, String> {
    if list.is_empty() {
        return Err("needs at least one method".into());
    }
    let mut m = Methods::NONE;
    for name in list {
        let up = name.to_ascii_uppercase();
        let method = Method::parse(&up)
            .filter(|m| *m != Method::Connect)
            .ok_or_else(|| {
                format!(
                    "{name:?} is not a method (GET, HEAD, POST, PUT, DELETE, OPTIONS, PATCH, TRACE)"
                )
            })?;
        m = m.with(method);
        if method == Method::Get {
            m = m.with(Method::Head);
        }
    }
    Ok(m)
}
