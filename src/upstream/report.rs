//! What the hub tells the worker's published metrics: per group and server,
//! the counters, the connections and whether requests may go to it, as
//! this core sees it. Called when the worker publishes (once a second), not
//! per request.

use std::time::Instant;

use super::{Group, Hub};
use crate::metrics::upstream::{Health, ServerReport, UpstreamReport};

impl Hub {
    /// Writes this core's view of every group into `out`, reusing its
    /// entries: the configuration in effect first, in the order configured,
    /// then groups only an earlier generation had (their counts stay). The
    /// active checks' latest verdicts are applied to the balancers first,
    /// so that health is as fresh as the shared cells.
    pub fn report(&mut self, now: Instant, out: &mut Vec<UpstreamReport>) {
        let mut order: Vec<usize> = (0..self.groups.len()).collect();
        order.sort_by_key(|&gi| {
            let g = &self.groups[gi];
            (!g.live, if g.live { g.shared.position } else { gi })
        });
        out.truncate(order.len());
        for (k, gi) in order.into_iter().enumerate() {
            if self.groups[gi].live {
                self.apply_health(gi, now);
            }
            let g = &self.groups[gi];
            let spec = &g.shared.spec;
            let name = match out.get(k) {
                Some(r) if *r.name == *spec.name => r.name.clone(),
                _ => spec.name.as_str().into(),
            };
            let mut servers = match out.get_mut(k) {
                Some(r) => std::mem::take(&mut r.servers),
                None => Vec::new(),
            };
            servers.truncate(g.servers.len());
            for (si, s) in g.servers.iter().enumerate() {
                let conf = &spec.servers[si];
                let name = match servers.get(si) {
                    Some(t) if *t.name == *conf.name => t.name.clone(),
                    _ => conf.name.as_str().into(),
                };
                let idle = g
                    .idle
                    .iter()
                    .filter(|&&c| self.conns[c].server == si)
                    .count() as u64;
                let t = ServerReport {
                    name,
                    weight: conf.weight,
                    backup: conf.backup,
                    live: g.live,
                    health: if g.live {
                        self.health(g, si, now)
                    } else {
                        Health::Unknown
                    },
                    open: u64::from(s.open),
                    idle,
                    stats: s.stats.clone(),
                };
                match servers.get_mut(si) {
                    Some(slot) => *slot = t,
                    None => servers.push(t),
                }
            }
            let r = UpstreamReport {
                name,
                policy: spec.policy.name(),
                live: g.live,
                servers,
            };
            match out.get_mut(k) {
                Some(slot) => *slot = r,
                None => out.push(r),
            }
        }
    }

    /// Whether this core would send requests to server `si` of `g`.
    fn health(&self, g: &Group, si: usize, now: Instant) -> Health {
        if !g.balancer.is_usable(si, now) {
            return Health::Down;
        }
        let checked = g.shared.spec.health.uri.is_some();
        if checked && g.shared.health.get(si).is_none() {
            return Health::Unknown;
        }
        Health::Up
    }
}

#[cfg(test)]
mod tests {
    use std::net::SocketAddr;
    use std::sync::Arc;
    use std::time::Duration;

    use super::*;
    use crate::upstream::balance::Pick;
    use crate::upstream::spec::{Address, Health as Checks, Policy, UpstreamSpec};
    use crate::upstream::{Cmd, Start, UpBody, Upstream};

    fn spec(name: &str, ports: &[u16]) -> UpstreamSpec {
        let w: Vec<u32> = ports.iter().map(|&p| u32::from(p % 10) + 1).collect();
        let mut s = crate::upstream::balance::tests::weights(&w, Policy::default());
        s.name = name.into();
        for (srv, &p) in s.servers.iter_mut().zip(ports) {
            srv.name = format!("127.0.0.1:{p}");
            srv.address = Address::Tcp(SocketAddr::from(([127, 0, 0, 1], p)));
        }
        s
    }

    /// Starts a GET on `group`; the exchange lives while its ticket does.
    fn start(hub: &mut Hub, group: usize, now: Instant) -> crate::upstream::Ticket {
        let pick = Pick::default();
        let s = Start {
            group,
            pick: &pick,
            head_request: false,
            idempotent: true,
            body: UpBody::None,
            window: 64 * 1024,
            waker: None,
        };
        hub.start(&s, |_, out| out.extend_from_slice(b"GET /"), now)
            .expect("a server is usable")
    }

    fn connects(hub: &mut Hub) -> Vec<u64> {
        let mut cmds = Vec::new();
        hub.take_cmds(&mut cmds);
        cmds.iter()
            .filter_map(|c| match c {
                Cmd::Connect { key, .. } => Some(*key),
                _ => None,
            })
            .collect()
    }

    #[test]
    fn a_refused_connect_counts_and_takes_the_server_out_on_this_core() {
        let now = Instant::now();
        let mut checked = spec("checked", &[9003]);
        checked.health = Checks {
            uri: Some("/healthz".into()),
            ..Checks::default()
        };
        let mut app = spec("app", &[9001, 9002]);
        app.policy = Policy::First;
        let ups = [
            Arc::new(Upstream::new(app, 0, None)),
            Arc::new(Upstream::new(checked, 1, None)),
        ];
        let mut hub = Hub::new(0);
        hub.install(&ups, 1, now);
        let _t = start(&mut hub, 0, now);
        let first = connects(&mut hub);
        assert_eq!(first.len(), 1);
        hub.connect_failed(first[0], libc::ECONNREFUSED, now);
        // Retried on the other server.
        assert_eq!(connects(&mut hub).len(), 1);
        let mut out = Vec::new();
        hub.report(now, &mut out);
        assert_eq!(out.len(), 2);
        let app = &out[0];
        assert_eq!((&*app.name, app.policy, app.live), ("app", "first", true));
        let [a, b] = &app.servers[..] else {
            panic!("two servers: {:?}", app.servers)
        };
        assert_eq!(&*a.name, "127.0.0.1:9001");
        assert_eq!(a.weight, 2);
        assert_eq!(a.stats.requests, 1);
        assert_eq!(a.stats.failures[0], 1, "connect_error");
        assert_eq!((a.open, a.idle), (0, 0));
        assert_eq!(a.health, Health::Down);
        assert_eq!(b.stats.requests, 1);
        assert_eq!(b.stats.failed(), 0);
        assert_eq!((b.open, b.idle), (1, 0));
        assert_eq!(b.health, Health::Up);
        // Checks configured, no verdict yet.
        assert_eq!(out[1].servers[0].health, Health::Unknown);
        ups[1].health.set(0, false);
        hub.report(now, &mut out);
        assert_eq!(out[1].servers[0].health, Health::Down);
        ups[1].health.set(0, true);
        hub.report(now, &mut out);
        assert_eq!(out[1].servers[0].health, Health::Up);
        // The passive verdict ends after fail_timeout.
        hub.report(now + Duration::from_secs(11), &mut out);
        assert_eq!(out[0].servers[0].health, Health::Up);
        assert_eq!(out[0].servers[0].stats.requests, 1, "counts stay");
    }

    #[test]
    fn a_new_generation_comes_first_and_an_old_group_keeps_its_counts() {
        let now = Instant::now();
        let old = Arc::new(Upstream::new(spec("app", &[9001]), 0, None));
        let mut hub = Hub::new(0);
        hub.install(std::slice::from_ref(&old), 1, now);
        let _t = start(&mut hub, 0, now);
        let mut out = Vec::new();
        hub.report(now, &mut out);
        assert_eq!(out.len(), 1);
        // The group's servers change, and a group is added before it.
        let ups = [
            Arc::new(Upstream::new(spec("api", &[9005]), 0, None)),
            Arc::new(Upstream::new(spec("app", &[9001, 9002]), 1, Some(&old))),
        ];
        hub.install(&ups, 1, now);
        hub.report(now, &mut out);
        let names: Vec<(&str, bool)> = out.iter().map(|u| (&*u.name, u.live)).collect();
        assert_eq!(names, [("api", true), ("app", true), ("app", false)]);
        assert_eq!(out[1].servers.len(), 2);
        assert_eq!(out[1].servers[0].stats.requests, 0);
        assert_eq!(out[2].servers[0].stats.requests, 1);
        assert_eq!(out[2].servers[0].health, Health::Unknown);
        assert!(!out[2].servers[0].live);
    }
}
