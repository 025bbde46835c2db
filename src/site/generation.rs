//! One configuration generation: the plan (listeners, bindings, sites) and
//! the TLS context, built and checked from a configuration, immutable and
//! shared by every worker, which builds its own handlers from it (see
//! [`super::Sites`]). A later generation replaces it whole.

use std::path::Path;
use std::sync::Arc;

use super::logs::LogPlan;
use super::plan::Plan;
use super::spec::{HandlerSpec, Origin, Rules, Site, StatusMatch};
use crate::config::{Config, ConfigError};
use crate::handler::StaticFiles;
use crate::tls;

/// A checked configuration, ready to serve.
#[derive(Debug)]
pub struct Generation {
    /// Listeners, bindings and sites.
    pub plan: Plan,
    /// The TLS context of the HTTPS listeners (certificates by SNI).
    pub tls: Option<Arc<rustls::ServerConfig>>,
    /// The access logs, and which one each site writes.
    pub logs: LogPlan,
    /// Things worth knowing that do not stop the server (a certificate that
    /// does not cover a site's host names).
    pub warnings: Vec<String>,
    /// Per listener: HTTPS.
    pub(super) tls_listener: Vec<bool>,
    /// The `[[upstream]]` groups, in the file's order.
    pub upstreams: Vec<Arc<crate::upstream::Upstream>>,
    /// Worker threads (which core checks which upstream server).
    pub workers: usize,
    /// `[cache]`: each worker keeps its share of the store.
    pub cache: crate::cache::StoreSpec,
    /// IP restrictions, request filtering and limits, compiled.
    pub guards: Arc<crate::guard::Guards>,
}

/// The built-in handler names.
pub const BUILT_IN: &[&str] = &[
    "files", "redirect", "respond", "builtins", "proxy", "fastcgi",
];

impl Generation {
    /// Builds and checks the generation for `c`: every named handler is one
    /// of `named`, every directory served exists, every error page is there,
    /// and the certificates load.
    pub fn build(c: &Config, named: &[&str]) -> Result<Generation, ConfigError> {
        Generation::build_after(c, named, None)
    }

    /// As [`Generation::build`], for a reload after `previous`: its session
    /// ticket keys are kept, so clients resume their sessions across it.
    pub fn build_after(
        c: &Config,
        named: &[&str],
        previous: Option<&Generation>,
    ) -> Result<Generation, ConfigError> {
        let plan = Plan::new(c)?;
        for s in &plan.sites {
            check_site(s, named)?;
        }
        let tickets = previous
            .and_then(|g| g.tls.as_ref())
            .map(|t| t.ticketer.clone())
            .filter(|t| t.enabled());
        let logs = LogPlan::new(c.access_log.as_ref(), &plan.sites)?;
        let tls = match &plan.tls {
            Some(t) => {
                Some(tls::build(t, tickets, c.limits.http2.enabled).map_err(|m| tls_error(c, m))?)
            }
            None => None,
        };
        let mut warnings = Vec::new();
        if let Some(t) = &plan.tls {
            for (i, s) in plan.sites.iter().enumerate() {
                if plan.listeners_of(i).any(|l| l.tls) {
                    warnings.extend(coverage(s, t));
                }
            }
        }
        let upstreams = c
            .upstreams
            .iter()
            .enumerate()
            .map(|(i, u)| {
                let before =
                    previous.and_then(|g| g.upstreams.iter().find(|p| p.spec.name == u.name));
                Arc::new(crate::upstream::Upstream::new(
                    u.clone(),
                    i,
                    before.map(|a| &**a),
                ))
            })
            .collect();
        let zones = crate::guard::Zones::new(&c.zones, previous.map(|g| &g.guards.zones));
        let guards = Arc::new(crate::guard::Guards::build(&plan, &c.client_ip, zones)?);
        Ok(Generation {
            guards,
            upstreams,
            workers: c.workers,
            cache: c.cache,
            tls_listener: plan.listeners.iter().map(|l| l.tls).collect(),
            plan,
            tls,
            logs,
            warnings,
        })
    }

    /// The name of site `i` (for metric labels and `/status`).
    pub fn site_name(&self, i: usize) -> Option<&str> {
        self.plan.sites.get(i).map(|s| s.name.as_str())
    }

    /// Whether listener `i` is HTTPS.
    pub fn is_tls(&self, i: usize) -> bool {
        self.tls_listener.get(i).copied().unwrap_or(false)
    }
}

fn check_site(s: &Site, named: &[&str]) -> Result<(), ConfigError> {
    check_pages(&s.rules, s, &s.origin)?;
    for r in &s.routes {
        check_pages(&r.rules, s, &r.origin)?;
        match &r.handler {
            HandlerSpec::Files(f) => {
                StaticFiles::check_root(&f.root).map_err(|m| at(&r.origin, "root", m))?;
            }
            HandlerSpec::Named { name, .. } if !named.contains(&name.as_str()) => {
                let mut known: Vec<&str> = BUILT_IN.to_vec();
                known.extend_from_slice(named);
                return Err(r.origin.err(
                    "handler",
                    format!("unknown handler {name:?} (known: {})", known.join(", ")),
                ));
            }
            _ => {}
        }
    }
    Ok(())
}

/// A certificate error as a configuration error: its message starts with
/// the key (`tls.cert: …`, `site[1].tls.key: …`), which becomes the key.
fn tls_error(c: &Config, message: String) -> ConfigError {
    let keyed = message
        .split_once(": ")
        .filter(|(k, _)| !k.contains(' ') && (k.starts_with("tls") || k.starts_with("site[")));
    let (key, message) = match keyed {
        Some((k, m)) => (Some(k.to_string()), m.to_string()),
        None => (None, message),
    };
    ConfigError {
        file: c.source.clone(),
        line: None,
        key,
        message,
    }
}

/// An error about `key` of `o`; the flat configuration's own messages
/// (`document root …`) stand alone.
fn at(o: &Origin, key: &str, message: String) -> ConfigError {
    if o.key.is_empty() {
        ConfigError {
            file: None,
            line: None,
            key: None,
            message,
        }
    } else {
        o.err(key, message)
    }
}

fn check_pages(rules: &Rules, s: &Site, o: &Origin) -> Result<(), ConfigError> {
    let Some(root) = &s.root else { return Ok(()) };
    for (m, page) in &rules.errors {
        let key = match m {
            StatusMatch::Code(c) => format!("errors.{c}"),
            StatusMatch::Class(c) => format!("errors.{c}xx"),
        };
        let file = root.join(page.trim_start_matches('/'));
        if !Path::new(&file).is_file() {
            return Err(o.err(&key, format!("{page:?}: {} is not a file", file.display())));
        }
    }
    Ok(())
}

/// The certificate SNI picks for `host`, as the resolver does: the site's
/// own, else an exact `[tls.sni]` name, else a wildcard one, else the default.
fn cert_for<'a>(s: &'a Site, t: &'a tls::Settings, host: &str) -> &'a Path {
    if let Some(st) = &s.tls {
        return &st.cert;
    }
    let named = |n: &str| {
        t.sni
            .iter()
            .find(|e| e.names.iter().any(|x| x.eq_ignore_ascii_case(n)))
    };
    let parent = host.split_once('.').map(|(_, p)| format!("*.{p}"));
    named(host)
        .or_else(|| parent.as_deref().and_then(named))
        .map_or(&t.cert, |e| &e.cert)
}

/// Warnings for host names of `s` that the certificate SNI picks for them
/// does not cover.
fn coverage(s: &Site, t: &tls::Settings) -> Vec<String> {
    let at = match (&s.origin.file, s.origin.line_of("hosts")) {
        (Some(f), Some(l)) => format!("{}:{l}: ", f.display()),
        (Some(f), None) => format!("{}: ", f.display()),
        _ => String::new(),
    };
    let mut out = Vec::new();
    for h in &s.hosts {
        let cert = cert_for(s, t, h);
        let Ok(names) = tls::names_of(cert) else {
            continue;
        };
        if !names.iter().any(|n| super::matcher::covers(n, h)) {
            out.push(format!(
                "{at}{}.hosts: the certificate {} does not cover {h:?} (it names {})",
                s.origin.key,
                cert.display(),
                names.join(", ")
            ));
        }
    }
    out
}
