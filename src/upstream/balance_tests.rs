//! The balancer in simulated time: weights, each policy, backups, passive
//! failures, slow start, `max_conns` and exclusion.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::time::{Duration, Instant};

use super::*;
use crate::upstream::spec::{Address, ServerSpec};

/// A group of servers `s0`, `s1`, … with these weights (and backup flags).
fn group(servers: &[(u32, bool)], policy: Policy) -> UpstreamSpec {
    UpstreamSpec {
        name: "g".into(),
        servers: servers
            .iter()
            .enumerate()
            .map(|(i, &(weight, backup))| ServerSpec {
                name: format!("s{i}:80"),
                address: Address::Tcp(SocketAddr::from(([127, 0, 0, 1], 8000 + i as u16))),
                weight,
                backup,
            })
            .collect(),
        policy,
        lb_key: String::new(),
        hash: Default::default(),
        health: Default::default(),
        passive: Default::default(),
        retry: Default::default(),
        slow_start: Duration::ZERO,
        sticky: None,
        max_conns: 0,
        keepalive: Default::default(),
        timeouts: Default::default(),
        tls: None,
        fastcgi: None,
        pool: None,
        origin: Default::default(),
    }
}

pub(crate) fn weights(w: &[u32], policy: Policy) -> UpstreamSpec {
    group(&w.iter().map(|&w| (w, false)).collect::<Vec<_>>(), policy)
}

/// Picks `n` times with `p`, each request over at once; counts by server.
fn counts(b: &mut Balancer, n: usize, p: &Pick<'_>, now: Instant) -> Vec<usize> {
    let mut c = vec![0; 8];
    for _ in 0..n {
        let s = b.pick(p, now).expect("a server");
        b.started(s);
        b.finished(s, None);
        c[s] += 1;
    }
    c
}

fn within(got: usize, want: f64, n: usize) -> bool {
    (got as f64 / n as f64 - want).abs() <= 0.02
}

#[test]
fn round_robin_is_nginx_smooth_weighted() {
    let now = Instant::now();
    let mut b = Balancer::new(&weights(&[5, 1, 1], Policy::RoundRobin), 1);
    let seq: Vec<usize> = (0..7)
        .map(|_| b.pick(&Pick::default(), now).unwrap())
        .collect();
    assert_eq!(seq, [0, 0, 1, 0, 2, 0, 0], "nginx's a a b a c a a");
    let mut b = Balancer::new(&weights(&[3, 1], Policy::RoundRobin), 1);
    let c = counts(&mut b, 4000, &Pick::default(), now);
    assert!(
        within(c[0], 0.75, 4000) && within(c[1], 0.25, 4000),
        "{c:?}"
    );
    assert_eq!(c[0], 3000, "exact over whole cycles");
}

#[test]
fn random_follows_weights() {
    let now = Instant::now();
    for seed in [1, 2, 3] {
        let mut b = Balancer::new(&weights(&[3, 1], Policy::Random), seed);
        let c = counts(&mut b, 4000, &Pick::default(), now);
        assert!(within(c[0], 0.75, 4000), "seed {seed}: {c:?}");
    }
    let mut a = Balancer::new(&weights(&[1, 1, 1], Policy::Random), 9);
    let mut b = Balancer::new(&weights(&[1, 1, 1], Policy::Random), 10);
    let sa: Vec<_> = (0..32).map(|_| a.pick(&Pick::default(), now)).collect();
    let sb: Vec<_> = (0..32).map(|_| b.pick(&Pick::default(), now)).collect();
    assert_ne!(sa, sb, "the seed drives the draws");
}

#[test]
fn least_requests_prefers_the_idle_and_weighs() {
    let now = Instant::now();
    let p = Pick::default();
    let mut b = Balancer::new(&weights(&[1, 1], Policy::LeastRequests), 1);
    b.started(0);
    b.started(0);
    b.started(1);
    assert_eq!(b.pick(&p, now), Some(1));
    b.finished(0, None);
    b.finished(0, None);
    assert_eq!(b.pick(&p, now), Some(0));
    assert_eq!(b.in_flight(1), 1);
    // Ties share by round robin.
    b.finished(1, None);
    let c = counts(&mut b, 100, &p, now);
    assert_eq!((c[0], c[1]), (50, 50));
    // Weight 2 carries twice the requests in flight before it looks busier.
    let mut b = Balancer::new(&weights(&[2, 1], Policy::LeastRequests), 1);
    b.started(0);
    b.started(1);
    assert_eq!(b.pick(&p, now), Some(0), "1/2 beats 1/1");
    b.started(0);
    b.started(0);
    assert_eq!(b.pick(&p, now), Some(1), "3/2 loses to 1/1");
}

#[test]
fn least_time_prefers_the_fast_and_counts_in_flight() {
    let now = Instant::now();
    let p = Pick::default();
    let mut b = Balancer::new(&weights(&[1, 1], Policy::LeastTime), 1);
    let ms = Duration::from_millis;
    for _ in 0..4 {
        b.started(0);
        b.finished(0, Some(ms(10)));
        b.started(1);
        b.finished(1, Some(ms(1)));
    }
    assert_eq!(b.pick(&p, now), Some(1));
    for _ in 0..10 {
        b.started(1);
    }
    assert_eq!(
        b.pick(&p, now),
        Some(0),
        "1 ms × 11 in flight beats 10 ms × 1"
    );
    // A server not yet measured counts as fast as the fastest.
    let mut b = Balancer::new(&weights(&[1, 1], Policy::LeastTime), 1);
    b.started(0);
    b.finished(0, Some(ms(50)));
    b.started(0);
    assert_eq!(b.pick(&p, now), Some(1));
}

#[test]
fn least_time_measures_a_light_server_behind_a_slow_heavy_one() {
    let now = Instant::now();
    let p = Pick::default();
    let ms = Duration::from_millis;
    let mut b = Balancer::new(&weights(&[3, 1], Policy::LeastTime), 1);
    let first = b.pick(&p, now).unwrap();
    assert_eq!(first, 0, "nothing measured: the weights decide");
    b.started(0);
    b.finished(0, Some(ms(30)));
    // Server 1 has no sample yet: it is tried rather than counted as fast
    // as server 0 (which its weight of 1 against 3 would always lose).
    assert_eq!(b.pick(&p, now), Some(1));
    b.started(1);
    // Its first request is in flight: it counts as the fastest measured
    // one, so others are not all piled onto it meanwhile.
    assert_eq!(b.pick(&p, now), Some(0));
    b.finished(1, Some(ms(1)));
    // Measured fast, it takes the load.
    for _ in 0..20 {
        let s = b.pick(&p, now).unwrap();
        assert_eq!(s, 1);
        b.started(s);
        b.finished(s, Some(ms(1)));
    }
}

#[test]
fn random_two_takes_the_less_loaded() {
    let now = Instant::now();
    let p = Pick::default();
    let mut b = Balancer::new(&weights(&[1, 1], Policy::RandomTwo), 5);
    for _ in 0..5 {
        b.started(1);
    }
    for _ in 0..50 {
        assert_eq!(b.pick(&p, now), Some(0), "both drawn, the idle wins");
    }
    let mut b = Balancer::new(&weights(&[1], Policy::RandomTwo), 5);
    assert_eq!(b.pick(&p, now), Some(0), "one server");
}

#[test]
fn first_takes_the_first_usable() {
    let now = Instant::now();
    let p = Pick::default();
    let mut b = Balancer::new(&weights(&[1, 1, 1], Policy::First), 1);
    assert_eq!(counts(&mut b, 10, &p, now)[0], 10);
    b.set_active(0, false, now);
    assert_eq!(b.pick(&p, now), Some(1));
}

fn key_pick(key: &[u8]) -> Pick<'_> {
    Pick {
        key: Some(key),
        ..Pick::default()
    }
}

#[test]
fn hash_keys_stay_on_their_server() {
    let now = Instant::now();
    for policy in [Policy::Header, Policy::Cookie] {
        let mut b = Balancer::new(&weights(&[1, 1, 1, 1], policy), 1);
        for k in 0..200 {
            let key = format!("user-{k}");
            let first = b.pick(&key_pick(key.as_bytes()), now);
            for _ in 0..3 {
                assert_eq!(b.pick(&key_pick(key.as_bytes()), now), first);
            }
        }
    }
    let mut b = Balancer::new(&weights(&[1, 1, 1], Policy::UriHash), 1);
    let p = Pick {
        uri: "/a?b=1",
        ..Pick::default()
    };
    let s = b.pick(&p, now);
    assert!((0..20).all(|_| b.pick(&p, now) == s));
    // Another core, another seed: the same server.
    let mut other = Balancer::new(&weights(&[1, 1, 1], Policy::UriHash), 99);
    assert_eq!(other.pick(&p, now), s);
}

#[test]
fn ip_hash_keys_on_the_client_address() {
    let now = Instant::now();
    let mut b = Balancer::new(&weights(&[1, 1, 1, 1], Policy::IpHash), 1);
    let v4 = Ipv4Addr::new(192, 0, 2, 7);
    let p = |ip: IpAddr| Pick {
        client_ip: Some(ip),
        ..Pick::default()
    };
    let s = b.pick(&p(IpAddr::V4(v4)), now);
    let mapped = IpAddr::V6(v4.to_ipv6_mapped());
    assert_eq!(b.pick(&p(mapped), now), s, "IPv4-mapped is the same client");
    let spread: std::collections::HashSet<_> = (0..64u8)
        .map(|i| b.pick(&p(IpAddr::V4(Ipv4Addr::new(10, 0, 0, i))), now))
        .collect();
    assert!(spread.len() >= 3, "{spread:?}");
}

#[test]
fn hash_shares_follow_weights() {
    let now = Instant::now();
    let mut b = Balancer::new(&weights(&[3, 1], Policy::Header), 1);
    let n = 4000;
    let on0 = (0..n)
        .filter(|k| b.pick(&key_pick(format!("k{k}").as_bytes()), now) == Some(0))
        .count();
    assert!((on0 as f64 / n as f64 - 0.75).abs() < 0.03, "{on0}");
}

#[test]
fn only_the_keys_of_a_removed_server_move() {
    let now = Instant::now();
    let keys: Vec<String> = (0..2000).map(|k| format!("session-{k}")).collect();
    let mut b = Balancer::new(&weights(&[1, 1, 1, 1], Policy::Cookie), 1);
    let before: Vec<usize> = keys
        .iter()
        .map(|k| b.pick(&key_pick(k.as_bytes()), now).unwrap())
        .collect();
    for s in 0..4 {
        let share = before.iter().filter(|&&x| x == s).count();
        assert!((350..=650).contains(&share), "server {s}: {share} keys");
    }
    // The share of the keys of the other servers that stayed.
    let kept = |after: &[usize]| {
        let others = before.iter().filter(|&&x| x != 2).count();
        let kept = before
            .iter()
            .zip(after)
            .filter(|(was, now)| **was != 2 && was == now)
            .count();
        assert!(after.iter().all(|&s| s != 2));
        kept as f64 / others as f64
    };
    // Server 2 goes down: only its keys move.
    b.set_active(2, false, now);
    let down: Vec<usize> = keys
        .iter()
        .map(|k| b.pick(&key_pick(k.as_bytes()), now).unwrap())
        .collect();
    assert!(kept(&down) >= 0.95);
    // Server 2 removed from the file: the others keep their keys too.
    let mut spec = weights(&[1, 1, 1, 1], Policy::Cookie);
    spec.servers.remove(2);
    let mut fewer = Balancer::new(&spec, 1);
    let removed: Vec<usize> = keys
        .iter()
        .map(|k| fewer.pick(&key_pick(k.as_bytes()), now).unwrap())
        .map(|i| if i >= 2 { i + 1 } else { i })
        .collect();
    assert!(kept(&removed) >= 0.95);
}

#[test]
fn a_missing_key_falls_back_to_round_robin() {
    let now = Instant::now();
    let mut b = Balancer::new(&weights(&[1, 1], Policy::Header), 1);
    let c = counts(&mut b, 10, &Pick::default(), now);
    assert_eq!((c[0], c[1]), (5, 5));
    let c = counts(&mut b, 10, &key_pick(b""), now);
    assert_eq!((c[0], c[1]), (5, 5), "an empty value is no key");
    let mut b = Balancer::new(&weights(&[1, 1], Policy::IpHash), 1);
    let c = counts(&mut b, 10, &Pick::default(), now);
    assert_eq!((c[0], c[1]), (5, 5), "no client address");
}

#[test]
fn backups_only_when_no_primary_is_usable() {
    let now = Instant::now();
    let p = Pick::default();
    let spec = group(&[(1, false), (1, false), (5, true)], Policy::RoundRobin);
    let mut b = Balancer::new(&spec, 1);
    assert_eq!(counts(&mut b, 100, &p, now)[2], 0);
    b.set_active(0, false, now);
    assert_eq!(counts(&mut b, 10, &p, now)[1], 10);
    b.set_active(1, false, now);
    assert_eq!(counts(&mut b, 10, &p, now)[2], 10);
    b.set_active(0, true, now);
    assert_eq!(counts(&mut b, 10, &p, now)[0], 10);
    // A sticky backup is not kept once a primary is back.
    let sticky = Pick {
        sticky: Some(2),
        ..Pick::default()
    };
    assert_eq!(b.pick(&sticky, now), Some(0));
    // Retries move to the backups once every primary was tried.
    let tried = Pick {
        exclude: &[0, 1],
        ..Pick::default()
    };
    b.set_active(1, true, now);
    assert_eq!(b.pick(&tried, now), Some(2));
}

#[test]
fn passive_failures_take_a_server_out_for_fail_timeout() {
    let t0 = Instant::now();
    let s = Duration::from_secs;
    let p = Pick::default();
    let mut spec = weights(&[1, 1], Policy::RoundRobin);
    spec.passive.max_fails = 2;
    spec.passive.fail_timeout = s(10);
    let mut b = Balancer::new(&spec, 1);
    b.failed(0, t0);
    b.failed(0, t0 + s(11));
    assert!(
        b.is_usable(0, t0 + s(11)),
        "the first failure left the window"
    );
    b.failed(0, t0 + s(12));
    assert!(!b.is_usable(0, t0 + s(12)), "two within 10 s");
    assert_eq!(counts(&mut b, 10, &p, t0 + s(15))[1], 10);
    b.failed(0, t0 + s(20));
    assert!(b.is_usable(0, t0 + s(22)), "back after fail_timeout");
    assert!(!b.is_usable(0, t0 + s(21)));
    let c = counts(&mut b, 10, &p, t0 + s(22));
    assert_eq!((c[0], c[1]), (5, 5));
    // Taken out by failures, then down and up again by the active checks:
    // back at once, not at the end of the passive time-out.
    b.failed(0, t0 + s(30));
    b.failed(0, t0 + s(30));
    b.set_active(0, true, t0 + s(31));
    assert!(!b.is_usable(0, t0 + s(31)), "no flip: still out");
    b.set_active(0, false, t0 + s(31));
    b.set_active(0, true, t0 + s(32));
    assert!(b.is_usable(0, t0 + s(32)), "the checks brought it back");
    // max_fails = 0: never out.
    spec.passive.max_fails = 0;
    let mut b = Balancer::new(&spec, 1);
    for _ in 0..100 {
        b.failed(0, t0);
    }
    assert!(b.is_usable(0, t0));
}

#[test]
fn a_single_server_is_never_out_after_failures() {
    let t0 = Instant::now();
    let mut b = Balancer::new(&weights(&[1], Policy::RoundRobin), 1);
    for _ in 0..10 {
        b.failed(0, t0);
    }
    assert!(b.is_usable(0, t0));
    assert_eq!(b.pick(&Pick::default(), t0), Some(0));
    b.set_active(0, false, t0);
    assert_eq!(
        b.pick(&Pick::default(), t0),
        None,
        "the active checks still count"
    );
    // One primary beside a backup can fail over to it.
    let mut b = Balancer::new(&group(&[(1, false), (1, true)], Policy::RoundRobin), 1);
    b.failed(0, t0);
    assert_eq!(b.pick(&Pick::default(), t0), Some(1));
}

#[test]
fn slow_start_ramps_the_share() {
    let t0 = Instant::now();
    let s = Duration::from_secs;
    let mut spec = weights(&[1, 1], Policy::RoundRobin);
    spec.slow_start = s(10);
    let mut b = Balancer::new(&spec, 1);
    assert_eq!(b.effective_weight(1, t0), 1000, "no ramp at start-up");
    b.set_active(1, false, t0);
    b.set_active(1, true, t0);
    let share =
        |b: &mut Balancer, at: Instant| counts(b, 1000, &Pick::default(), at)[1] as f64 / 1000.0;
    let early = share(&mut b, t0);
    let mid = share(&mut b, t0 + s(5));
    let late = share(&mut b, t0 + s(9));
    let done = share(&mut b, t0 + s(10));
    assert!((0.07..0.12).contains(&early), "{early}");
    assert!((0.33..0.38).contains(&mid), "{mid}");
    assert!(
        early < mid && mid < late && late < done,
        "{early} {mid} {late} {done}"
    );
    assert!((done - 0.5).abs() < 0.01, "{done}");
    // A passive time-out ends in a slow start too.
    spec.passive.fail_timeout = s(3);
    let mut b = Balancer::new(&spec, 1);
    b.failed(1, t0);
    assert_eq!(b.effective_weight(1, t0 + s(3)), 100);
    assert_eq!(b.effective_weight(1, t0 + s(8)), 550);
    assert_eq!(b.effective_weight(1, t0 + s(13)), 1000);
}

#[test]
fn max_conns_skips_full_servers() {
    let now = Instant::now();
    let p = Pick::default();
    let mut spec = weights(&[1, 1], Policy::RoundRobin);
    spec.max_conns = 1;
    let mut b = Balancer::new(&spec, 1);
    let a = b.pick(&p, now).unwrap();
    b.started(a);
    let other = b.pick(&p, now).unwrap();
    assert_ne!(a, other);
    b.started(other);
    assert_eq!(b.pick(&p, now), None, "both full");
    b.finished(a, None);
    assert_eq!(b.pick(&p, now), Some(a));
}

#[test]
fn exclude_skips_tried_servers() {
    let now = Instant::now();
    let mut b = Balancer::new(&weights(&[1, 1, 1], Policy::RoundRobin), 1);
    let p = Pick {
        exclude: &[0, 2],
        ..Pick::default()
    };
    assert!((0..10).all(|_| b.pick(&p, now) == Some(1)));
    let all = Pick {
        exclude: &[0, 1, 2],
        ..Pick::default()
    };
    assert_eq!(b.pick(&all, now), None);
    let mut h = Balancer::new(&weights(&[1, 1, 1], Policy::Header), 1);
    let first = h.pick(&key_pick(b"k"), now).unwrap();
    let retry = Pick {
        exclude: &[first],
        ..key_pick(b"k")
    };
    let second = h.pick(&retry, now).unwrap();
    assert_ne!(first, second, "a retry goes to the key's next server");
}

#[test]
fn a_sticky_server_wins_while_usable() {
    let now = Instant::now();
    let mut b = Balancer::new(&weights(&[1, 1, 1], Policy::RoundRobin), 1);
    let p = Pick {
        sticky: Some(2),
        ..Pick::default()
    };
    assert!((0..10).all(|_| b.pick(&p, now) == Some(2)));
    b.set_active(2, false, now);
    assert_ne!(b.pick(&p, now), Some(2));
    let out_of_range = Pick {
        sticky: Some(9),
        ..Pick::default()
    };
    assert!(b.pick(&out_of_range, now).is_some());
    b.finished(9, None);
    b.failed(9, now);
    assert_eq!(b.in_flight(9), 0);
}
