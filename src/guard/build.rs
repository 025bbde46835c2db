//! Compiling the guards of a generation: the zones (kept across reloads),
//! one [`Guard`] per site and per route that sets its own, and what each
//! listener checks when a connection is accepted.

use std::net::IpAddr;
use std::sync::Arc;

use super::client::ClientIp;
use super::spec::{ClientIpSpec, DenyAction, ReqDelay, Security, ZoneSpec};
use super::{ConnLimit, Dynamic, Guard, IpCheck, ReqLimit};
use crate::filter::Filter;
use crate::ipnet::IpRules;
use crate::limit::{Delay, Rate, Zone};
use crate::site::Plan;

/// The `[[limit.zone]]` tables of a generation, shared by every worker.
#[derive(Debug, Default)]
pub struct Zones {
    list: Vec<(ZoneSpec, Arc<Zone>)>,
}

impl Zones {
    /// The zones of `specs`; one that `previous` has with the same key and
    /// size is kept with what it has counted (a reload does not reset limits).
    pub fn new(specs: &[ZoneSpec], previous: Option<&Zones>) -> Zones {
        let list = specs
            .iter()
            .map(|s| {
                let kept = previous
                    .and_then(|p| p.list.iter().find(|(q, _)| q == s))
                    .map(|(_, z)| z.clone());
                (
                    s.clone(),
                    kept.unwrap_or_else(|| Arc::new(Zone::new(s.size as usize))),
                )
            })
            .collect();
        Zones { list }
    }

    /// The zones' names and tables, in order (their indices are metrics'
    /// and logs').
    pub fn named(&self) -> impl Iterator<Item = (&str, &Arc<Zone>)> {
        self.list.iter().map(|(s, z)| (s.name.as_str(), z))
    }

    /// Zone `i`.
    pub fn get(&self, i: usize) -> Option<&Arc<Zone>> {
        self.list.get(i).map(|(_, z)| z)
    }

    fn find(&self, name: &str) -> Result<(u16, &ZoneSpec, &Arc<Zone>), String> {
        self.list
            .iter()
            .enumerate()
            .find(|(_, (s, _))| s.name == name)
            .map(|(i, (s, z))| (i as u16, s, z))
            .ok_or_else(|| format!("no [[limit.zone]] is named {name:?}"))
    }
}

/// What a listener checks when it accepts a connection.
#[derive(Debug)]
struct AcceptCheck {
    /// The guards of every site on it (each restricts addresses).
    guards: Vec<Arc<Guard>>,
    /// Refused addresses are closed whatever the action (HTTPS: nothing can
    /// be answered before a handshake, which a refused peer is not given).
    any_action: bool,
}

/// The guards of one site.
#[derive(Debug, Default)]
struct SiteGuards {
    site: Option<Arc<Guard>>,
    /// Per route, in file order.
    routes: Vec<Option<Arc<Guard>>>,
}

/// Every guard of a generation.
#[derive(Debug)]
pub struct Guards {
    /// How the client's address is found.
    pub client: ClientIp,
    /// The zones.
    pub zones: Zones,
    sites: Vec<SiteGuards>,
    accept: Vec<Option<AcceptCheck>>,
    proxy_protocol: Vec<bool>,
}

impl Guards {
    /// Compiles the guards of `plan`.
    pub fn build(
        plan: &Plan,
        client: &ClientIpSpec,
        zones: Zones,
    ) -> Result<Guards, crate::config::ConfigError> {
        let mut sites = Vec::new();
        for (i, s) in plan.sites.iter().enumerate() {
            let site =
                compile(&s.security, &zones, (i, None), None).map_err(|m| s.origin.err("", m))?;
            // Routes that keep the site's dynamic restrictions share its table.
            let site_dynamic = site
                .as_ref()
                .and_then(|g| g.dynamic.as_ref().map(|d| d.zone.clone()));
            let mut routes = Vec::new();
            for (j, r) in s.routes.iter().enumerate() {
                routes.push(if r.security.is_empty() {
                    site.clone()
                } else {
                    let shared = if r.security.dynamic.is_none() {
                        site_dynamic.clone()
                    } else {
                        None
                    };
                    compile(&r.security.then(&s.security), &zones, (i, Some(j)), shared)
                        .map_err(|m| r.origin.err("", m))?
                });
            }
            sites.push(SiteGuards { site, routes });
        }
        let accept = (0..plan.listeners.len())
            .map(|l| {
                let on: Vec<usize> = (0..plan.sites.len())
                    .filter(|&s| plan.listeners_of(s).any(|x| *x == plan.listeners[l]))
                    .collect();
                let guards: Option<Vec<Arc<Guard>>> = on
                    .iter()
                    .map(|&s| sites[s].site.clone().filter(|g| g.has_ip_rules()))
                    .collect();
                let guards = guards.filter(|g| !g.is_empty())?;
                Some(AcceptCheck {
                    guards,
                    any_action: plan.listeners[l].tls,
                })
            })
            .collect();
        let proxy_protocol = plan
            .listeners
            .iter()
            .map(|l| client.proxy_protocol.expects(&l.addr))
            .collect();
        Ok(Guards {
            client: ClientIp::new(client),
            zones,
            sites,
            accept,
            proxy_protocol,
        })
    }

    /// The guard of site `site`, route `route` (`None`: the site's own, for
    /// answers no route gives).
    pub fn of(&self, site: usize, route: Option<usize>) -> Option<&Arc<Guard>> {
        let s = self.sites.get(site)?;
        match route {
            Some(r) => s.routes.get(r)?.as_ref(),
            None => s.site.as_ref(),
        }
    }

    /// Whether listener `l` checks addresses when it accepts.
    pub fn checks_at_accept(&self, l: usize) -> bool {
        self.accept.get(l).is_some_and(Option::is_some)
    }

    /// Whether a connection from `ip` on listener `l` is closed at once:
    /// every site there refuses the address (and, on a plain listener, by
    /// closing the connection), and it is not a trusted proxy (whose
    /// clients are judged per request).
    pub fn refuse_at_accept(&self, l: usize, ip: IpAddr) -> bool {
        let Some(Some(a)) = self.accept.get(l) else {
            return false;
        };
        if self.client.trusts(ip) {
            return false;
        }
        a.guards.iter().all(|g| match g.denies(ip) {
            None => false,
            Some(DenyAction::Abort) => true,
            Some(_) => a.any_action,
        })
    }

    /// Whether listener `l` expects a PROXY protocol header.
    pub fn proxy_protocol(&self, l: usize) -> bool {
        self.proxy_protocol.get(l).copied().unwrap_or(false)
    }
}

/// A key standing for a site or route.
fn unit_key(kind: u8, site: usize, route: usize) -> u64 {
    let mut b = [0u8; 17];
    b[0] = kind;
    b[1..9].copy_from_slice(&(site as u64).to_le_bytes());
    b[9..].copy_from_slice(&(route as u64).to_le_bytes());
    crate::limit::key_hash(&b)
}

/// The guard of `sec` (`None` when it sets nothing).
fn compile(
    sec: &Security,
    zones: &Zones,
    (site, route): (usize, Option<usize>),
    dynamic_zone: Option<Arc<Zone>>,
) -> Result<Option<Arc<Guard>>, String> {
    if sec.is_empty() {
        return Ok(None);
    }
    let ip = sec.ip.as_ref().map(|s| IpCheck {
        rules: IpRules::new(&s.rules),
        allow_unlisted: s.allow_unlisted,
        action: s.deny_action,
    });
    let mut req = Vec::new();
    for l in sec.limit_req.iter().flatten() {
        let (index, spec, zone) = zones.find(&l.zone)?;
        req.push(ReqLimit {
            zone: zone.clone(),
            index,
            key: spec.key.clone(),
            rate: Rate {
                emission_ns: l.emission_ns,
                burst: l.burst,
                delay: match l.delay {
                    ReqDelay::Delay => Delay::Default,
                    ReqDelay::NoDelay => Delay::NoDelay,
                    ReqDelay::After(n) => Delay::After(n),
                },
            },
            status: l.status,
            dry_run: l.dry_run,
        });
    }
    let mut conn = Vec::new();
    for l in sec.limit_conn.iter().flatten() {
        let (index, spec, zone) = zones.find(&l.zone)?;
        conn.push(ConnLimit {
            zone: zone.clone(),
            index,
            key: spec.key.clone(),
            max: l.max,
            status: l.status,
            dry_run: l.dry_run,
        });
    }
    let dynamic = sec.dynamic.as_ref().map(|d| Dynamic {
        zone: dynamic_zone
            .clone()
            .unwrap_or_else(|| Arc::new(Zone::new(DYNAMIC_CLIENTS))),
        spec: d.clone(),
    });
    Ok(Some(Arc::new(Guard {
        filter: sec.filtering.as_ref().map(Filter::new).transpose()?,
        ip,
        dynamic,
        conn,
        req,
        site_key: unit_key(0, site, 0),
        route_key: route.map_or(unit_key(0, site, 0), |r| unit_key(1, site, r)),
    })))
}

/// Clients a site's `dynamic_ip_security` keeps track of.
const DYNAMIC_CLIENTS: usize = 65_536;
