//! From a configuration to what the server binds and how requests find their
//! site: the listeners (TLS first, then plain, in the order they are bound),
//! one [`HostMap`] per listener, the sites with their implicit routes, and
//! the TLS settings with every site's certificate added to SNI selection.
//! Pure data, checked without touching the file system.

use std::net::SocketAddr;

use super::matcher::{Conflict, HostMap};
use super::spec::{Files, HandlerSpec, Origin, Route, Rules, Site};
use crate::config::{Config, ConfigError};
use crate::tls;

/// A listening address and what it speaks.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Listener {
    /// The address (as configured; port 0 is bound to a free port).
    pub addr: SocketAddr,
    /// HTTPS.
    pub tls: bool,
}

/// Listeners, bindings and sites of one configuration.
#[derive(Clone, Debug)]
pub struct Plan {
    /// Every listener, TLS ones first; a request's [`crate::exchange::RequestHead::listener`]
    /// indexes this.
    pub listeners: Vec<Listener>,
    /// Per listener, which site answers which host.
    pub bindings: Vec<HostMap>,
    /// The sites; the flat configuration makes one.
    pub sites: Vec<Site>,
    /// TLS settings in effect (`[tls]` and the sites' certificates), when any
    /// listener is HTTPS.
    pub tls: Option<tls::Settings>,
}

/// The one site of a configuration without `[[site]]` tables.
fn flat_site(c: &Config) -> Site {
    let mut routes = Vec::new();
    if c.builtins {
        routes.push(Route {
            path: "/".into(),
            exact: false,
            methods: None,
            handler: HandlerSpec::Builtins,
            rules: Rules::default(),
            security: Default::default(),
            compression: true,
            cache: None,
            origin: Origin {
                key: "builtins".into(),
                ..Origin::default()
            },
        });
    }
    let mut site = Site {
        name: "default".into(),
        hosts: Vec::new(),
        listen: None,
        tls_listen: None,
        tls: None,
        root: c.root.clone(),
        index: vec!["index.html".into()],
        default: true,
        http2: true,
        rules: Rules::default(),
        security: Default::default(),
        compression: c.compression.clone(),
        routes,
        access_log: super::spec::SiteLog::Global,
        // Its messages stand alone, as before sites existed.
        origin: Origin::default(),
    };
    // As before sites existed: names starting with a dot are served.
    add_root_route(&mut site, true);
    site
}

/// Files from the site's root answer paths no route claims.
fn add_root_route(site: &mut Site, dotfiles: bool) {
    let Some(root) = &site.root else { return };
    let claimed = site
        .routes
        .iter()
        .any(|r| r.path == "/" && !r.exact && r.handler != HandlerSpec::Builtins);
    if claimed {
        return;
    }
    site.routes.push(Route {
        path: "/".into(),
        exact: false,
        methods: None,
        handler: HandlerSpec::Files(Files {
            root: root.clone(),
            index: site.index.clone(),
            browse: false,
            hide: Vec::new(),
            dotfiles,
        }),
        rules: Rules::default(),
        security: Default::default(),
        compression: true,
        cache: None,
        origin: if site.origin.key.is_empty() {
            Origin::default()
        } else {
            Origin {
                key: format!("{}.root", site.origin.key),
                ..site.origin.clone()
            }
        },
    });
}

fn push_unique(list: &mut Vec<SocketAddr>, a: SocketAddr) {
    if !list.contains(&a) {
        list.push(a);
    }
}

impl Plan {
    /// Plans `c`. Errors: two default sites or one host name for two sites
    /// on a listener, a TLS listener without a certificate, a site
    /// certificate on no TLS listener.
    pub fn new(c: &Config) -> Result<Plan, ConfigError> {
        let mut sites = if c.sites.is_empty() {
            vec![flat_site(c)]
        } else {
            c.sites.clone()
        };
        if !c.sites.is_empty() {
            for s in &mut sites {
                add_root_route(s, false);
            }
        }
        let mut tls_addrs = c.tls.as_ref().map(|t| t.listen.clone()).unwrap_or_default();
        let mut plain = c.listen.clone();
        for s in &sites {
            for a in s.tls_listen.iter().flatten() {
                push_unique(&mut tls_addrs, *a);
            }
            for a in s.listen.iter().flatten() {
                push_unique(&mut plain, *a);
            }
        }
        let listeners: Vec<Listener> = tls_addrs
            .iter()
            .map(|&addr| Listener { addr, tls: true })
            .chain(plain.iter().map(|&addr| Listener { addr, tls: false }))
            .collect();
        let mut bindings = vec![HostMap::new(); listeners.len()];
        for (i, s) in sites.iter().enumerate() {
            let id = u16::try_from(i).map_err(|_| s.origin.err("", "more than 65535 sites"))?;
            for (l, map) in listeners.iter().zip(bindings.iter_mut()) {
                let on = match (l.tls, &s.listen, &s.tls_listen) {
                    (false, Some(list), _) | (true, _, Some(list)) => list.contains(&l.addr),
                    _ => true,
                };
                if !on {
                    continue;
                }
                for h in &s.hosts {
                    map.add(h, id).map_err(|e| conflict(&sites, i, e, l, h))?;
                }
                if s.default {
                    map.set_default(id)
                        .map_err(|e| conflict(&sites, i, e, l, ""))?;
                }
            }
        }
        let tls = effective_tls(c, &sites, tls_addrs)?;
        Ok(Plan {
            listeners,
            bindings,
            sites,
            tls,
        })
    }

    /// Which listeners site `i` is on.
    pub fn listeners_of(&self, i: usize) -> impl Iterator<Item = &Listener> + '_ {
        let s = &self.sites[i];
        self.listeners
            .iter()
            .filter(move |l| match (l.tls, &s.listen, &s.tls_listen) {
                (false, Some(list), _) | (true, _, Some(list)) => list.contains(&l.addr),
                _ => true,
            })
    }
}

fn conflict(sites: &[Site], i: usize, e: Conflict, l: &Listener, host: &str) -> ConfigError {
    let scheme = if l.tls { "https" } else { "http" };
    match e {
        Conflict::Name(j) => {
            let other = &sites[usize::from(j)];
            sites[i].origin.err(
                "hosts",
                format!(
                    "{host:?} is a host of {} ({:?}) too, on {scheme} listener {}; a name belongs to one site per listener",
                    other.origin.key, other.name, l.addr
                ),
            )
        }
        Conflict::Default(j) => {
            let other = &sites[usize::from(j)];
            sites[i].origin.err(
                "default",
                format!(
                    "{} ({:?}) is the default site on {scheme} listener {} already; one default per listener",
                    other.origin.key, other.name, l.addr
                ),
            )
        }
    }
}

/// `[tls]` with the sites' TLS listeners and certificates added; when there
/// is no `[tls]`, the first site certificate is the default one.
fn effective_tls(
    c: &Config,
    sites: &[Site],
    listen: Vec<SocketAddr>,
) -> Result<Option<tls::Settings>, ConfigError> {
    let with_cert: Vec<&Site> = sites.iter().filter(|s| s.tls.is_some()).collect();
    if listen.is_empty() {
        if let Some(s) = with_cert.first() {
            return Err(s.origin.err(
                "tls",
                "the site is on no TLS listener: give it tls_listen, or add [tls] with listen",
            ));
        }
        return Ok(None);
    }
    let mut t = match (&c.tls, with_cert.first()) {
        (Some(t), _) => t.clone(),
        (None, Some(s)) => {
            let st = s.tls.as_ref().expect("filtered");
            tls::Settings {
                listen: Vec::new(),
                cert: st.cert.clone(),
                key: st.key.clone(),
                sni: Vec::new(),
                min_version: tls::MinVersion::Tls12,
                client_auth: tls::ClientAuth::None,
                client_ca: None,
                redirect_http: false,
                hsts: None,
                session_resumption: true,
            }
        }
        (None, None) => {
            let s = sites
                .iter()
                .find(|s| s.tls_listen.is_some())
                .expect("a TLS listener comes from [tls] or a site");
            return Err(s.origin.err(
                "tls_listen",
                "HTTPS needs a certificate: give the site tls = { cert = …, key = … }, or add [tls] with cert and key",
            ));
        }
    };
    t.listen = listen;
    for s in with_cert {
        let st = s.tls.as_ref().expect("filtered");
        t.sni.push(tls::SniCert {
            names: s.hosts.clone(),
            cert: st.cert.clone(),
            key: st.key.clone(),
            origin: format!("{}.tls", s.origin.key),
        });
    }
    Ok(Some(t))
}
