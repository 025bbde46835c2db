//! The hub's clock: active health checks (one connection per check, from
//! the core that checks the server) and the sweep of idle connections.

use std::time::{Duration, Instant};

use super::{CHECK_BODY, Hub, SWEEP};
use crate::driver::{ClientConn, ClientEvent, Request};

impl Hub {
    // ---- time ----------------------------------------------------------------

    /// When [`Hub::tick`] is due next.
    pub fn due(&self) -> Option<Instant> {
        let checks = self
            .groups
            .iter()
            .flat_map(|g| g.servers.iter())
            .filter_map(|s| s.check.as_ref())
            .filter(|c| c.conn.is_none())
            .map(|c| c.next)
            .min();
        [checks, self.next_sweep, self.queue_at]
            .into_iter()
            .flatten()
            .min()
    }

    /// Starts the checks that are due and closes connections idle too long.
    pub fn tick(&mut self, now: Instant) {
        if self.queue_at.is_some_and(|t| t <= now) {
            self.tick_queues(now);
            let waiting = self.groups.iter().any(|g| !g.queued.is_empty());
            self.queue_at = waiting.then_some(now + super::pooled::QUEUE_POLL);
        }
        if self.next_sweep.is_some_and(|t| t <= now) {
            self.next_sweep = Some(now + SWEEP);
            // Pools' idle connections to instances that stopped serving.
            for gi in 0..self.groups.len() {
                self.apply_pool(gi, now);
            }
            let mut stale = Vec::new();
            for g in &self.groups {
                let k = &g.shared.spec.keepalive;
                // Oldest first: beyond the idle limit, those unused since the
                // last sweep go.
                let mut excess = g.idle.len().saturating_sub(k.idle);
                for &c in &g.idle {
                    let u = &self.conns[c];
                    let idle_for = u.idle_since.map_or(Duration::ZERO, |t| now - t);
                    let unused = excess > 0 && idle_for >= SWEEP;
                    if unused || idle_for >= k.idle_timeout || now - u.born >= k.lifetime {
                        stale.push(c);
                        excess = excess.saturating_sub(1);
                    }
                }
            }
            for c in stale {
                self.close(c);
            }
        }
        for gi in 0..self.groups.len() {
            for si in 0..self.groups[gi].servers.len() {
                let due = self.groups[gi].servers[si]
                    .check
                    .as_ref()
                    .is_some_and(|c| c.conn.is_none() && c.next <= now);
                if due {
                    let c = self.open(gi, si, true, now);
                    let interval = self.groups[gi].shared.spec.health.interval;
                    if let Some(ch) = self.groups[gi].servers[si].check.as_mut() {
                        ch.conn = Some(c);
                        ch.next = now + interval;
                        ch.body.clear();
                    }
                }
            }
        }
    }

    // ---- health checks -------------------------------------------------------

    /// Applies the active-check verdicts published since last looked at.
    pub(super) fn apply_health(&mut self, gi: usize, now: Instant) {
        let g = &mut self.groups[gi];
        for (i, s) in g.servers.iter_mut().enumerate() {
            let v = g.shared.health.read(i);
            if v != s.seen {
                // Up then and up now, but changed: it was down in between.
                let missed_down = v.0 == Some(true) && s.seen.0 == Some(true);
                s.seen = v;
                if missed_down {
                    g.balancer.set_active(i, false, now);
                }
                if let Some(up) = v.0 {
                    g.balancer.set_active(i, up, now);
                }
            }
        }
    }

    pub(super) fn sync_check(&mut self, c: usize, d: &mut ClientConn, now: Instant) {
        let u = &mut self.conns[c];
        if !u.handed && d.is_open() {
            u.handed = true;
            let g = &self.groups[u.group];
            let spec = &g.shared.spec;
            let uri = spec.health.uri.as_deref().unwrap_or("/");
            let host = &spec.servers[u.server].name;
            let req = match &spec.fastcgi {
                // The same GET as FastCGI records, on a connection not kept.
                Some(app) => {
                    use crate::fastcgi::record;
                    let mut out = Vec::with_capacity(512);
                    record::begin(&mut out, false);
                    crate::fastcgi::app::check_params(app, uri).write(&mut out);
                    record::stream(&mut out, record::STDIN, &[]);
                    out
                }
                None => format!(
                    "GET {uri} HTTP/1.1\r\nHost: {host}\r\nUser-Agent: peregrine-health-check\r\nConnection: close\r\n\r\n"
                )
                .into_bytes(),
            };
            d.request(
                &req,
                Request {
                    tag: 0,
                    head: false,
                    upgrade: false,
                    connect: false,
                },
                now,
            );
        }
        let (gi, si) = (u.group, u.server);
        if let Some(ch) = self.groups[gi].servers[si].check.as_mut()
            && ch.body.len() < CHECK_BODY
        {
            d.take_body(&mut ch.body);
        }
    }

    pub(super) fn on_check_event(
        &mut self,
        c: usize,
        d: &mut ClientConn,
        ev: ClientEvent,
        now: Instant,
    ) {
        let (gi, si) = (self.conns[c].group, self.conns[c].server);
        match ev {
            ClientEvent::Response(r) => {
                let g = &mut self.groups[gi];
                let health = &g.shared.spec.health;
                let pass = match g.servers[si].check.as_mut() {
                    Some(ch) => {
                        d.take_body(&mut ch.body);
                        crate::upstream::health::passes(health, r.status, &ch.body)
                    }
                    None => false,
                };
                self.verdict(gi, si, pass, now);
                self.close(c);
            }
            ClientEvent::Closed { .. } => {
                let answered = self.groups[gi].servers[si]
                    .check
                    .as_ref()
                    .is_some_and(|ch| ch.conn != Some(c));
                if !answered {
                    self.verdict(gi, si, false, now);
                }
                self.conns.remove(c);
                let s = &mut self.groups[gi].servers[si];
                s.open = s.open.saturating_sub(1);
            }
            _ => {}
        }
    }

    /// A check's connection could not even be made: the check failed, and
    /// the next one is due as usual.
    pub(super) fn check_unconnected(&mut self, c: usize, now: Instant) {
        let (gi, si) = (self.conns[c].group, self.conns[c].server);
        self.verdict(gi, si, false, now);
        self.conns.remove(c);
        let s = &mut self.groups[gi].servers[si];
        s.open = s.open.saturating_sub(1);
    }

    fn verdict(&mut self, gi: usize, si: usize, pass: bool, now: Instant) {
        let g = &mut self.groups[gi];
        g.servers[si].stats.checks(pass);
        let Some(ch) = g.servers[si].check.as_mut() else {
            return;
        };
        ch.conn = None;
        let first = g.shared.health.get(si).is_none();
        if let Some(up) = ch.checker.record(pass) {
            g.shared.health.set(si, up);
        } else if first && pass {
            g.shared.health.set(si, true);
        }
        self.apply_health(gi, now);
    }
}
