//! The hub driven by hand in simulated time: its connections' drivers are
//! fed the bytes, ends and refusals a real executor would hand them.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Instant;

use crate::driver::{Action, ClientConn, ClientEvent};
use crate::upstream::balance::Pick;
use crate::upstream::balance::tests::weights;
use crate::upstream::hub::{BodyPoll, Cmd, HeadPoll, Hub, Start, Upstream};
use crate::upstream::spec::Policy;
use crate::upstream::{Ticket, UpBody};

/// A hub and the drivers of its connections, connected by hand.
struct Sim {
    hub: Hub,
    conns: HashMap<u64, ClientConn>,
    now: Instant,
}

impl Sim {
    /// `servers` servers of weight 1, round robin.
    fn new(servers: usize, tries: u32, max_fails: u32) -> Sim {
        let mut spec = weights(&vec![1; servers], Policy::RoundRobin);
        spec.retry.tries = tries;
        spec.passive.max_fails = max_fails;
        Sim::with_spec(spec)
    }

    fn with_spec(spec: crate::upstream::spec::UpstreamSpec) -> Sim {
        let now = Instant::now();
        let mut hub = Hub::new(0);
        hub.install(&[Arc::new(Upstream::new(spec, 0, None))], 1, now);
        Sim {
            hub,
            conns: HashMap::new(),
            now,
        }
    }

    fn start(&mut self) -> Ticket {
        self.try_start().unwrap()
    }

    fn try_start(&mut self) -> Result<Ticket, crate::upstream::Failure> {
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
        self.hub.start(&s, head, self.now)
    }

    /// The server a hub connection goes to.
    fn server_of(&self, key: u64) -> usize {
        self.hub.conns[self.hub.conn_of(key).unwrap()].server
    }

    /// The connects the hub asked for since last asked: (key, server).
    fn connects(&mut self) -> Vec<(u64, usize)> {
        self.connects_to()
            .into_iter()
            .map(|(k, s, _)| (k, s))
            .collect()
    }

    /// The connects the hub asked for since last asked: (key, server,
    /// address).
    fn connects_to(&mut self) -> Vec<(u64, usize, String)> {
        let mut cmds = Vec::new();
        self.hub.take_cmds(&mut cmds);
        let mut out = Vec::new();
        for c in cmds {
            if let Cmd::Connect {
                key,
                addr,
                settings,
                ..
            } = c
            {
                let shown = addr.to_string();
                let d = ClientConn::new(addr, key, settings, self.now);
                self.conns.insert(key, d);
                out.push((key, self.server_of(key), shown));
            }
        }
        out
    }

    /// Hands the hub the events of connection `key`, then syncs it and
    /// sends what it has to send.
    fn pump(&mut self, key: u64) {
        let Some(d) = self.conns.get_mut(&key) else {
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
        while let Some(a) = d.poll_action() {
            if let Action::Send { buf, from } = a {
                let n = buf.len() - from;
                d.on_sent(buf, n, self.now);
            }
        }
    }

    fn with(&mut self, key: u64, f: impl FnOnce(&mut ClientConn, Instant)) {
        let now = self.now;
        f(self.conns.get_mut(&key).unwrap(), now);
        self.pump(key);
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
    assert_eq!(
        sim.hub.groups[0].idle.len(),
        3,
        "one pooled connection per server"
    );
    // Every server went away: the next request meets a closed pooled
    // connection, the fresh one is refused, and so on to the next server.
    let t = sim.start();
    let mut tried = Vec::new();
    for _ in 0..3 {
        assert!(matches!(sim.hub.take_head(&t), HeadPoll::Pending));
        let e = &sim.hub.exchanges[t.id.index as usize];
        let (server, c) = (e.server, e.conn.unwrap());
        tried.push(server);
        assert!(sim.hub.conns[c].uses > 0, "the pooled connection is used");
        let pooled = sim.hub.conn_key(c);
        sim.pump(pooled);
        sim.with(pooled, |d, now| d.on_eof(false, now));
        let fresh = sim.connects();
        assert_eq!(
            fresh.iter().map(|c| c.1).collect::<Vec<_>>(),
            vec![server],
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

#[test]
fn a_check_whose_socket_cannot_be_made_fails_and_checks_go_on() {
    let mut now = Instant::now();
    let mut spec = weights(&[1, 1], Policy::RoundRobin);
    spec.health.uri = Some("/healthz".into());
    let mut hub = Hub::new(0);
    hub.install(&[Arc::new(Upstream::new(spec, 0, None))], 1, now);
    let check_keys = |hub: &mut Hub| {
        let mut cmds = Vec::new();
        hub.take_cmds(&mut cmds);
        cmds.into_iter()
            .filter_map(|c| match c {
                Cmd::Connect { key, .. } => Some(key),
                _ => None,
            })
            .collect::<Vec<_>>()
    };
    hub.tick(now);
    let first = check_keys(&mut hub);
    assert_eq!(first.len(), 2, "one check per server");
    // No socket at all (out of descriptors): each check fails at once.
    for k in &first {
        hub.connect_failed(*k, libc::EMFILE, now);
    }
    // And the next round is asked for when it is due.
    now += std::time::Duration::from_secs(3);
    hub.tick(now);
    assert_eq!(check_keys(&mut hub).len(), 2, "checks go on");
}

#[test]
fn a_burst_keeps_its_connections_until_the_sweep_finds_them_unused() {
    let mut spec = weights(&[1], Policy::RoundRobin);
    spec.keepalive.idle = 2;
    let mut sim = Sim::with_spec(spec);
    // Ten requests at once: ten connections.
    let tickets: Vec<Ticket> = (0..10).map(|_| sim.start()).collect();
    let keys = sim.connects();
    assert_eq!(keys.len(), 10);
    for (key, _) in keys {
        sim.with(key, |d, _| d.on_connected(Ok(())));
        sim.with(key, |d, now| {
            d.on_recv(b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n", now)
        });
    }
    drop(tickets);
    sim.hub.collect();
    // Up to four times the idle limit stays for the next burst.
    assert_eq!(sim.hub.groups[0].idle.len(), 8);
    // Used again within the second: nothing is closed.
    sim.now += std::time::Duration::from_millis(500);
    let again: Vec<Ticket> = (0..8).map(|_| sim.start()).collect();
    assert!(sim.connects().is_empty(), "the burst reuses what it left");
    let keys: Vec<u64> = sim.conns.keys().copied().collect();
    for key in keys {
        sim.pump(key);
        sim.with(key, |d, now| {
            d.on_recv(b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n", now)
        });
    }
    drop(again);
    sim.hub.collect();
    assert_eq!(sim.hub.groups[0].idle.len(), 8);
    sim.hub.collect();
    // Unused for a sweep: back to the limit.
    sim.now += std::time::Duration::from_millis(1500);
    sim.hub.tick(sim.now);
    assert_eq!(sim.hub.groups[0].idle.len(), 2);
}

#[test]
fn a_pool_request_waits_for_an_instance_and_claims_its_lane() {
    let mut spec = weights(&[1, 1], Policy::RoundRobin);
    spec.pool = Some(Arc::new(crate::pool::spec::sample(1)));
    let mut sim = Sim::with_spec(spec);
    let cells = sim.hub.groups[0].shared.pool.clone().unwrap();
    // No instance serves: the request waits and asks for one.
    let t = sim.start();
    assert!(sim.connects_to().is_empty());
    assert_eq!(cells.demand(), 1);
    assert!(sim.hub.due().is_some());
    cells.publish(1, true, 9100);
    sim.now += std::time::Duration::from_millis(20);
    sim.hub.tick(sim.now);
    let c = sim.connects_to();
    assert_eq!((c[0].1, c[0].2.as_str()), (1, "127.0.0.1:9100"));
    assert_eq!((cells.active(1), cells.requests(1)), (1, 1));
    let key = c[0].0;
    sim.with(key, |d, _| d.on_connected(Ok(())));
    sim.with(key, |d, now| {
        d.on_recv(b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n", now)
    });
    assert!(matches!(sim.hub.take_head(&t), HeadPoll::Head(_)));
    drop(t);
    sim.hub.collect();
    assert_eq!(cells.active(1), 0, "the lane is released with the response");
    assert_eq!(sim.hub.groups[0].idle.len(), 1);
    // The instance is replaced: its idle connection closes, and the next
    // request goes to the new address.
    cells.publish(1, false, 9100);
    cells.publish(0, true, 9200);
    let t = sim.start();
    let mut cmds = Vec::new();
    sim.hub.take_cmds(&mut cmds);
    assert!(
        sim.hub.groups[0].idle.is_empty(),
        "the old instance's idle connection closed"
    );
    let addrs: Vec<String> = cmds
        .iter()
        .filter_map(|c| match c {
            Cmd::Connect { addr, .. } => Some(addr.to_string()),
            _ => None,
        })
        .collect();
    assert_eq!(addrs, vec!["127.0.0.1:9200".to_string()]);
    assert_eq!(cells.active(0), 1);
    drop(t);
    sim.hub.collect();
    assert_eq!(cells.active(0), 0, "a dropped exchange releases its lane");
    // Nothing serves again: a waiting request fails after the ready timeout.
    cells.publish(0, false, 9200);
    let t = sim.start();
    sim.now += std::time::Duration::from_secs(10);
    sim.hub.tick(sim.now);
    assert!(matches!(sim.hub.take_head(&t), HeadPoll::Failed(f) if f.name() == "no_server"));
    // Rapid-fail protection stopped the pool: refused at once.
    cells.set_refusing(true);
    assert!(sim.try_start().is_err());
}

#[test]
fn a_request_past_max_conns_waits_for_the_connection_that_comes_free() {
    let mut spec = weights(&[1], Policy::RoundRobin);
    spec.max_conns = 1;
    let mut sim = Sim::with_spec(spec);
    let t1 = sim.start();
    let (key, _) = sim.connects()[0];
    sim.with(key, |d, _| d.on_connected(Ok(())));
    // The server has its one request: the next waits instead of a 503.
    let t2 = sim.start();
    assert!(sim.connects().is_empty());
    assert!(matches!(sim.hub.take_head(&t2), HeadPoll::Pending));
    sim.with(key, |d, now| {
        d.on_recv(b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n", now)
    });
    assert!(matches!(sim.hub.take_head(&t1), HeadPoll::Head(_)));
    // It goes on the same kept connection, at once.
    assert!(sim.connects().is_empty(), "no new connection");
    let e = &sim.hub.exchanges[t2.id.index as usize];
    assert_eq!(e.conn.map(|c| sim.hub.conn_key(c)), Some(key));
    sim.pump(key);
    sim.with(key, |d, now| {
        d.on_recv(b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n", now)
    });
    assert!(matches!(sim.hub.take_head(&t2), HeadPoll::Head(_)));
    // A request that waits too long fails (the time to the response head).
    let _busy = sim.start();
    let t4 = sim.start();
    sim.now += sim.hub.groups[0].shared.spec.timeouts.response_head;
    sim.hub.tick(sim.now);
    assert!(matches!(sim.hub.take_head(&t4), HeadPoll::Failed(f) if f.name() == "no_server"));
}

#[test]
fn body_bytes_behind_untaken_ones_are_handed_out_next_uncopied() {
    let mut sim = Sim::new(1, 1, 1);
    let t = sim.start();
    let (key, _) = sim.connects()[0];
    sim.with(key, |d, _| d.on_connected(Ok(())));
    sim.with(key, |d, now| {
        d.on_recv(b"HTTP/1.1 200 OK\r\nContent-Length: 6\r\n\r\nab", now)
    });
    // The handler has not taken "ab" when the rest comes and the response
    // ends: the connection goes back to the pool, its bytes kept apart.
    sim.with(key, |d, now| d.on_recv(b"cd", now));
    sim.with(key, |d, now| d.on_recv(b"ef", now));
    assert_eq!(sim.hub.groups[0].idle.len(), 1);
    assert!(matches!(sim.hub.take_head(&t), HeadPoll::Head(_)));
    let mut pieces = Vec::new();
    loop {
        let mut b = Vec::new();
        let state = sim.hub.take_body(&t, &mut b);
        pieces.push(String::from_utf8(b).unwrap());
        match state {
            BodyPoll::More => {}
            BodyPoll::End => break,
            BodyPoll::Failed(f) => panic!("{f}"),
        }
    }
    assert_eq!(pieces, ["ab", "cdef"]);
}
