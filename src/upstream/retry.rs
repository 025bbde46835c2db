//! What happens when an upstream connection ends under an exchange: the
//! failure it means, passive health, and whether the exchange is sent again.

use std::time::Instant;

use super::{Hub, Phase};
use crate::driver::ClientEnd;
use crate::upstream::balance::Pick;
use crate::upstream::exchange::Failure;
use crate::upstream::spec::RetryOn;

impl Hub {
    /// A connection ended: its exchange, if any, fails or is retried.
    pub(super) fn ended(&mut self, c: usize, why: ClientEnd, now: Instant) {
        let u = self.conns.remove(c);
        let g = &mut self.groups[u.group];
        g.idle.retain(|&i| i != c);
        let s = &mut g.servers[u.server];
        s.open = s.open.saturating_sub(1);
        let Some(ei) = u.exchange else { return };
        let e = &mut self.exchanges[ei];
        e.conn = None;
        if matches!(e.phase, Phase::Done | Phase::Failed(_)) {
            return;
        }
        let f = match why {
            ClientEnd::ConnectFailed(errno) => Failure::Connect(errno),
            ClientEnd::ConnectTimeout => Failure::ConnectTimeout,
            ClientEnd::ResponseTimeout if e.phase == Phase::Body => Failure::ReadTimeout,
            ClientEnd::ResponseTimeout => Failure::HeadTimeout,
            ClientEnd::Malformed(_) | ClientEnd::Unsolicited => Failure::Invalid,
            ClientEnd::SendFailed(_) if e.phase != Phase::Body => Failure::Send,
            ClientEnd::Upgraded => Failure::Upgraded,
            _ => Failure::Closed,
        };
        let server = e.server;
        let before_head = e.phase != Phase::Body;
        // A pooled connection the server had closed: nothing of this request
        // reached it.
        let stale = u.uses > 0 && before_head && matches!(f, Failure::Closed | Failure::Send);
        let g = &mut self.groups[u.group];
        g.balancer.finished(server, None);
        g.servers[server].stats.failure(f);
        if !stale && why != ClientEnd::Local {
            g.balancer.failed(server, now);
        }
        if before_head && self.may_retry_after(ei, f, stale) {
            return self.retry(ei, stale, f, now);
        }
        self.exchanges[ei].phase = Phase::Failed(f);
        self.wake(ei);
    }

    /// Whether an exchange may be sent again (nothing of it is lost and the
    /// method allows it).
    pub(super) fn may_retry(&self, ei: usize, stale: bool) -> bool {
        let e = &self.exchanges[ei];
        let spec = &self.groups[e.group].shared.spec.retry;
        let resendable = !e.body_started;
        let method_ok = e.idempotent || spec.non_idempotent || !e.handed;
        let budget = if stale {
            !e.stale_retry
        } else {
            e.attempts < spec.tries
        };
        resendable && method_ok && budget
    }

    fn may_retry_after(&self, ei: usize, f: Failure, stale: bool) -> bool {
        if stale {
            return self.may_retry(ei, true);
        }
        let e = &self.exchanges[ei];
        let on = &self.groups[e.group].shared.spec.retry.on;
        let listed = match f {
            Failure::Connect(_) => on.contains(&RetryOn::ConnectError),
            f if f.is_timeout() => on.contains(&RetryOn::Timeout),
            _ => false,
        };
        listed && self.may_retry(ei, false)
    }

    /// Sends an exchange again: on a fresh connection to the same server
    /// after a stale pooled one, else to a server not tried yet.
    pub(super) fn retry(&mut self, ei: usize, stale: bool, f: Failure, now: Instant) {
        let e = &mut self.exchanges[ei];
        if stale {
            e.stale_retry = true;
        } else {
            e.attempts += 1;
            e.tried.push(e.server);
            // The next server's pooled connection may be stale too.
            e.stale_retry = false;
        }
        if e.handed {
            e.up_queue = e.head.clone();
            e.handed = false;
        }
        e.phase = Phase::Waiting;
        e.attempt_at = now;
        let (gi, server) = (e.group, e.server);
        let next = if stale {
            Some(server)
        } else {
            self.apply_health(gi, now);
            let e = &self.exchanges[ei];
            let pick = Pick {
                client_ip: e.client_ip,
                uri: "",
                key: None,
                sticky: None,
                exclude: &e.tried,
            };
            self.groups[gi].balancer.pick(&pick, now)
        };
        match next {
            Some(s) => {
                self.exchanges[ei].server = s;
                self.assign(ei, s, stale, now);
            }
            // No other server: the last failure is the answer.
            None => {
                self.exchanges[ei].phase = Phase::Failed(f);
                self.wake(ei);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;
    use std::net::SocketAddr;
    use std::sync::Arc;
    use std::time::Instant;

    use crate::driver::{Action, ClientConn, ClientEvent};
    use crate::upstream::balance::Pick;
    use crate::upstream::hub::{Cmd, HeadPoll, Hub, Start, Upstream};
    use crate::upstream::spec::{Address, ServerSpec, UpstreamSpec};
    use crate::upstream::{Ticket, UpBody};

    /// A hub and the drivers of its connections, connected by hand.
    struct Sim {
        hub: Hub,
        conns: HashMap<u64, (SocketAddr, ClientConn)>,
        now: Instant,
    }

    impl Sim {
        fn new(servers: usize, tries: u32, max_fails: u32) -> Sim {
            let now = Instant::now();
            let mut spec = UpstreamSpec {
                name: "g".into(),
                servers: (0..servers)
                    .map(|i| {
                        let addr = SocketAddr::from(([127, 0, 0, 1], 9000 + i as u16));
                        ServerSpec {
                            name: addr.to_string(),
                            address: Address::Tcp(addr),
                            weight: 1,
                            backup: false,
                        }
                    })
                    .collect(),
                policy: Default::default(),
                lb_key: String::new(),
                hash: Default::default(),
                health: Default::default(),
                passive: Default::default(),
                retry: Default::default(),
                slow_start: Default::default(),
                sticky: None,
                max_conns: 0,
                keepalive: Default::default(),
                timeouts: Default::default(),
                origin: Default::default(),
            };
            spec.retry.tries = tries;
            spec.passive.max_fails = max_fails;
            let mut hub = Hub::new(0);
            hub.install(&[Arc::new(Upstream::new(spec, 0, None))], 1, now);
            Sim {
                hub,
                conns: HashMap::new(),
                now,
            }
        }

        fn start(&mut self) -> Ticket {
            let pick = Pick::default();
            let s = Start {
                group: 0,
                pick: &pick,
                head_request: false,
                idempotent: true,
                body: UpBody::None,
                window: 64 * 1024,
                waker: None,
            };
            let head = |host: &str, out: &mut Vec<u8>| {
                out.extend_from_slice(format!("GET / HTTP/1.1\r\nHost: {host}\r\n\r\n").as_bytes());
            };
            self.hub.start(&s, head, self.now).unwrap()
        }

        /// The connects the hub asked for since last asked: (key, address).
        fn connects(&mut self) -> Vec<(u64, SocketAddr)> {
            let mut cmds = Vec::new();
            self.hub.take_cmds(&mut cmds);
            cmds.into_iter()
                .filter_map(|c| match c {
                    Cmd::Connect {
                        key,
                        addr,
                        settings,
                    } => {
                        let d = ClientConn::new(addr, key, settings, self.now);
                        self.conns.insert(key, (addr, d));
                        Some((key, addr))
                    }
                    _ => None,
                })
                .collect()
        }

        /// Hands the hub the events of connection `key`, then syncs it.
        fn pump(&mut self, key: u64) {
            let Some((_, d)) = self.conns.get_mut(&key) else {
                return;
            };
            while let Some(ev) = d.poll_event() {
                let closed = matches!(ev, ClientEvent::Closed { .. });
                self.hub.on_event(key, d, ev, self.now);
                if closed {
                    self.conns.remove(&key);
                    return;
                }
            }
            self.hub.sync(key, d, self.now);
            // Whatever it sends goes out whole.
            while let Some(a) = d.poll_action() {
                if let Action::Send { buf, from } = a {
                    let n = buf.len() - from;
                    d.on_sent(buf, n, self.now);
                }
            }
        }

        fn with(&mut self, key: u64, f: impl FnOnce(&mut ClientConn, Instant)) {
            let now = self.now;
            f(&mut self.conns.get_mut(&key).unwrap().1, now);
            self.pump(key);
        }

        /// Keys of the connections to `addr`.
        fn keys_to(&self, addr: SocketAddr) -> Vec<u64> {
            self.conns
                .iter()
                .filter(|(_, (a, _))| *a == addr)
                .map(|(k, _)| *k)
                .collect()
        }
    }

    #[test]
    fn a_core_that_missed_a_check_flip_still_lifts_a_passive_time_out() {
        let mut sim = Sim::new(2, 2, 1);
        let now = sim.now;
        let g = &mut sim.hub.groups[0];
        g.shared.health.set(0, true);
        // This core sees the server up, then takes it out on a failure.
        sim.hub.apply_health(0, now);
        let g = &mut sim.hub.groups[0];
        g.balancer.failed(0, now);
        assert!(!g.balancer.is_usable(0, now));
        // The checking core sees it go down and come back; this one does not
        // look in between.
        g.shared.health.set(0, false);
        g.shared.health.set(0, true);
        sim.hub.apply_health(0, now);
        assert!(sim.hub.groups[0].balancer.is_usable(0, now));
    }

    #[test]
    fn each_server_tried_gets_its_own_stale_connection_retry() {
        let mut sim = Sim::new(3, 3, 0);
        // One answered request per server: each leaves a pooled connection.
        for _ in 0..3 {
            let t = sim.start();
            let (key, _) = sim.connects()[0];
            sim.with(key, |d, _| d.on_connected(Ok(())));
            sim.with(key, |d, now| {
                d.on_recv(b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n", now)
            });
            drop(t);
            sim.hub.collect();
        }
        for g in &sim.hub.groups {
            assert_eq!(g.idle.len(), 3, "one pooled connection per server");
        }
        // Every server went away: the next request meets a closed pooled
        // connection, the fresh one is refused, and so on to the next server.
        let t = sim.start();
        let mut tried = Vec::new();
        for _ in 0..3 {
            assert!(matches!(sim.hub.take_head(&t), HeadPoll::Pending));
            let e = &sim.hub.exchanges[t.id.index as usize];
            let addr = sim.hub.groups[0].servers[e.server].addr;
            tried.push(addr);
            let pooled = sim.keys_to(addr);
            assert_eq!(pooled.len(), 1, "one connection to {addr}");
            let c = e.conn.unwrap();
            assert!(sim.hub.conns[c].uses > 0, "the pooled connection is used");
            sim.pump(pooled[0]);
            sim.with(pooled[0], |d, now| d.on_eof(false, now));
            let fresh = sim.connects();
            assert_eq!(
                fresh.iter().map(|c| c.1).collect::<Vec<_>>(),
                vec![addr],
                "a fresh connection to the same server"
            );
            sim.hub
                .connect_failed(fresh[0].0, libc::ECONNREFUSED, sim.now);
            sim.conns.remove(&fresh[0].0);
        }
        tried.sort();
        tried.dedup();
        assert_eq!(tried.len(), 3, "each server was tried once");
        assert!(
            matches!(sim.hub.take_head(&t), HeadPoll::Failed(f) if f.name() == "connect_error"),
            "three tries, then the last failure is the answer"
        );
    }
}
