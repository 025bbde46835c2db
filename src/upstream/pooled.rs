//! The hub's side of application pools: a `[[pool]]` group's servers are
//! lanes whose instance (and address) the supervisor changes. Before a
//! request goes to a lane the hub claims it, so the supervisor never stops
//! an instance with a request of ours on the way; a request that finds no
//! instance serving waits for one (up to the pool's ready timeout) and
//! asks an on-demand pool to start.

use std::time::{Duration, Instant};

use super::{Hub, Phase};
use crate::pool::spec::Listen;
use crate::upstream::balance::Pick;
use crate::upstream::exchange::Failure;
use crate::upstream::spec::Address;

/// How often waiting requests look for an instance.
pub(super) const QUEUE_POLL: Duration = Duration::from_millis(20);

impl Hub {
    /// Takes in the lanes the supervisor changed: a new instance's address,
    /// whether it serves, and no idle connection to the one before.
    pub(super) fn apply_pool(&mut self, gi: usize, now: Instant) {
        let g = &mut self.groups[gi];
        let (Some(cells), Some(spec)) = (g.shared.pool.clone(), g.shared.spec.pool.clone()) else {
            return;
        };
        let mut stale = Vec::new();
        for (si, s) in g.servers.iter_mut().enumerate() {
            let v = cells.view(si);
            if s.lane == Some(v) {
                continue;
            }
            let moved = s.lane.is_none_or(|o| o.ident != v.ident);
            s.lane = Some(v);
            if moved {
                s.addr = match &spec.listen {
                    Listen::Port => {
                        let port = u16::try_from(v.ident).unwrap_or(0);
                        Address::Tcp(std::net::SocketAddr::from(([127, 0, 0, 1], port)))
                    }
                    Listen::Unix(_) => Address::Unix(spec.socket_path(v.ident).unwrap_or_default()),
                };
                s.label = s.addr.to_string().into();
            }
            g.balancer.set_active(si, v.serving, now);
            if moved || !v.serving {
                stale.extend(
                    g.idle
                        .iter()
                        .copied()
                        .filter(|&c| self.conns[c].server == si),
                );
            }
        }
        for c in stale {
            self.close(c);
        }
    }

    /// Picks a server; in a pool, claims its lane first (a lane that
    /// changed meanwhile is taken in and the pick made again).
    pub(super) fn pick_claimed(
        &mut self,
        gi: usize,
        pick: &Pick<'_>,
        now: Instant,
    ) -> Option<usize> {
        self.apply_health(gi, now);
        for _ in 0..=self.groups[gi].servers.len() {
            self.apply_pool(gi, now);
            let g = &mut self.groups[gi];
            let server = g.balancer.pick(pick, now)?;
            let Some(cells) = &g.shared.pool else {
                return Some(server);
            };
            if let Some(seen) = g.servers[server].lane
                && cells.claim(server, seen)
            {
                return Some(server);
            }
        }
        None
    }

    /// Claims the lane of `server` again (a retry on a fresh connection).
    pub(super) fn reclaim(&mut self, gi: usize, server: usize) -> bool {
        let g = &self.groups[gi];
        match (&g.shared.pool, g.servers[server].lane) {
            (None, _) => true,
            (Some(cells), Some(seen)) => cells.claim(server, seen),
            (Some(_), None) => false,
        }
    }

    /// A request on `server` is over: the balancer learns it (with the
    /// time to its response head, when one came), and a pool's lane is
    /// released.
    pub(super) fn finished(&mut self, gi: usize, server: usize, head_time: Option<Duration>) {
        let g = &mut self.groups[gi];
        g.balancer.finished(server, head_time);
        if let Some(cells) = &g.shared.pool {
            cells.release(server);
        }
    }

    /// With no server picked: whether the request may wait, and until
    /// when. It may when every usable server has `max_conns` requests in
    /// flight (until the time to the response head is up), and in a pool
    /// with no instance serving (the pool is starting, or starts now on
    /// demand; until its ready timeout).
    pub(super) fn may_queue(&self, gi: usize, now: Instant) -> Option<Instant> {
        let g = &self.groups[gi];
        if self.draining {
            return None;
        }
        if g.balancer.saturated(now) {
            return Some(now + g.shared.spec.timeouts.response_head);
        }
        let (cells, spec) = (g.shared.pool.as_ref()?, g.shared.spec.pool.as_ref()?);
        if cells.refusing() {
            return None;
        }
        cells.want();
        Some(now + spec.ready.timeout)
    }

    /// Waiting requests go to an instance that serves now, or fail once
    /// their time is up.
    pub(super) fn tick_queues(&mut self, now: Instant) {
        for gi in 0..self.groups.len() {
            self.serve_queue(gi, now);
        }
    }

    /// The requests waiting on group `gi` that can go now, go (oldest
    /// first); those whose time is up fail.
    pub(super) fn serve_queue(&mut self, gi: usize, now: Instant) {
        if self.groups[gi].queued.is_empty() {
            return;
        }
        self.apply_pool(gi, now);
        let queued = std::mem::take(&mut self.groups[gi].queued);
        let refusing = self.groups[gi]
            .shared
            .pool
            .as_ref()
            .is_some_and(|c| c.refusing());
        for (ei, deadline) in queued {
            let Some(e) = self.exchanges.get(ei) else {
                continue;
            };
            let client_ip = e.client_ip;
            let pick = Pick {
                client_ip,
                uri: "",
                key: None,
                sticky: None,
                exclude: &[],
            };
            match self.pick_claimed(gi, &pick, now) {
                Some(s) => {
                    let e = &mut self.exchanges[ei];
                    e.server = s;
                    e.attempt_at = now;
                    self.assign(ei, s, false, now);
                }
                None if now >= deadline || refusing || self.draining => {
                    self.exchanges[ei].phase = Phase::Failed(Failure::NoServer);
                    self.wake(ei);
                }
                None => self.groups[gi].queued.push((ei, deadline)),
            }
        }
    }
}
