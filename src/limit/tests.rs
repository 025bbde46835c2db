//! The limit tables in simulated time.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use super::*;

const MS: u64 = 1_000_000;
const S: u64 = 1_000_000_000;

fn rate(per_sec: u64, burst: u32, delay: Delay) -> Rate {
    Rate {
        emission_ns: S / per_sec,
        burst,
        delay,
    }
}

#[test]
fn rates_parse_as_nginx_writes_them() {
    assert_eq!(parse_rate("20r/s"), Ok(50 * MS));
    assert_eq!(parse_rate(" 600r/m "), Ok(100 * MS));
    assert_eq!(parse_rate("0.5r/s"), Ok(2 * S));
    for bad in ["20", "r/s", "-1r/s", "0r/s", "20 r/h", "nanr/s", "1e10r/s"] {
        let e = parse_rate(bad).unwrap_err();
        assert!(e.contains(&format!("{bad:?}")), "{bad}: {e}");
    }
}

#[test]
fn nodelay_lets_the_burst_through_then_refuses_until_the_rate_allows() {
    let z = Zone::new(64);
    let r = rate(10, 3, Delay::NoDelay);
    let k = key_hash(b"client");
    for _ in 0..4 {
        assert_eq!(z.request(k, S, &r), Decision::Allow);
    }
    // The fifth waits 400 ms against a 300 ms allowance: 100 ms to go.
    assert_eq!(
        z.request(k, S, &r),
        Decision::Reject {
            retry_after_ns: 100 * MS
        }
    );
    // Refusals consume nothing: a retry at that time passes.
    for _ in 0..10 {
        assert!(matches!(z.request(k, S, &r), Decision::Reject { .. }));
    }
    assert_eq!(z.request(k, S + 100 * MS, &r), Decision::Allow);
    assert!(matches!(
        z.request(k, S + 100 * MS, &r),
        Decision::Reject { .. }
    ));
    // Another key has its own budget.
    assert_eq!(z.request(key_hash(b"other"), S, &r), Decision::Allow);
}

#[test]
fn without_nodelay_the_excess_waits_its_turn() {
    let z = Zone::new(64);
    let k = 7;
    let r = rate(4, 5, Delay::Default);
    let got: Vec<Decision> = (0..7).map(|_| z.request(k, S, &r)).collect();
    assert_eq!(got[0], Decision::Allow);
    for (i, d) in got[1..6].iter().enumerate() {
        assert_eq!(*d, Decision::Delay((i as u64 + 1) * 250 * MS));
    }
    assert!(matches!(got[6], Decision::Reject { .. }));
    // delay = 2: two past the rate go at once, then delays.
    let r = rate(4, 5, Delay::After(2));
    let got: Vec<Decision> = (0..5).map(|_| z.request(8, S, &r)).collect();
    assert_eq!(&got[..3], &[Decision::Allow; 3]);
    assert_eq!(got[3], Decision::Delay(250 * MS));
    assert_eq!(got[4], Decision::Delay(500 * MS));
}

/// An open-loop load at 1000 r/s against 100 r/s burst 40: the rate plus
/// the burst pass.
#[test]
fn a_steady_overload_passes_at_the_rate() {
    let z = Zone::new(64);
    let r = rate(100, 40, Delay::NoDelay);
    let passed = (0..10_000u64)
        .filter(|i| z.request(1, S + i * MS, &r) == Decision::Allow)
        .count();
    assert_eq!(passed, 1000 + 40);
}

/// Four threads share the budget of one key: the limit holds globally.
#[test]
fn one_key_from_four_threads_is_limited_as_one() {
    let z = Arc::new(Zone::new(1024));
    let r = rate(100, 10, Delay::NoDelay);
    let passed = Arc::new(AtomicU64::new(0));
    let threads: Vec<_> = (0..4u64)
        .map(|t| {
            let (z, passed) = (z.clone(), passed.clone());
            std::thread::spawn(move || {
                // Thread t sends requests t, t+4, t+8 … of a 4000 r/s load
                // over 2 s of simulated time.
                for i in (t..8000).step_by(4) {
                    if z.request(42, S + i * S / 4000, &r) == Decision::Allow {
                        passed.fetch_add(1, Ordering::Relaxed);
                    }
                }
            })
        })
        .collect();
    for t in threads {
        t.join().unwrap();
    }
    let n = passed.load(Ordering::Relaxed);
    // 200 at the rate and 11 at once; the threads' clocks interleave, so a
    // request may be judged a little out of order: ±1%.
    assert!((209..=213).contains(&n), "{n}");
}

#[test]
fn concurrency_counts_balance_across_threads() {
    let z = Arc::new(Zone::new(256));
    let threads: Vec<_> = (0..4u64)
        .map(|t| {
            let z = z.clone();
            std::thread::spawn(move || {
                for i in 0..20_000u64 {
                    let key = (i * 7 + t) % 50;
                    if let Some(tok) = z.enter(key, i, 1000) {
                        z.leave(tok);
                    }
                }
            })
        })
        .collect();
    for t in threads {
        t.join().unwrap();
    }
    for key in 0..50 {
        assert_eq!(z.in_progress(key), 0, "key {key}");
    }
}

#[test]
fn enter_refuses_past_max_and_leave_makes_room() {
    let z = Zone::new(64);
    let a = z.enter(5, 0, 2).unwrap();
    let b = z.enter(5, 0, 2).unwrap();
    assert_eq!(z.enter(5, 0, 2), None);
    assert_eq!(z.in_progress(5), 2);
    z.leave(a);
    let c = z.enter(5, 0, 2).unwrap();
    z.leave(b);
    z.leave(c);
    assert_eq!(z.in_progress(5), 0);
}

/// Keys of one bucket: the least recently used idle one is evicted; one
/// with requests in progress never is; a bucket of busy keys lets new keys
/// through untracked.
#[test]
fn eviction_takes_the_least_recently_used_idle_key() {
    // One bucket; last use is kept to about a millisecond.
    let z = Zone::new(8);
    assert_eq!(z.capacity(), 8);
    let r = rate(1, 0, Delay::NoDelay);
    let busy = z.enter(100, 0, 10).unwrap();
    for k in 1..=7 {
        assert_eq!(z.request(k, k * 2 * MS, &r), Decision::Allow);
    }
    // Key 1 is the least recently used; refresh it, so 2 is.
    assert!(matches!(z.request(1, 50 * MS, &r), Decision::Reject { .. }));
    assert_eq!(z.request(8, 60 * MS, &r), Decision::Allow);
    assert_eq!(z.evictions(), 1);
    // 2 was evicted: it starts afresh; 1 was kept and is still limited.
    assert_eq!(z.request(2, 70 * MS, &r), Decision::Allow);
    assert!(matches!(z.request(1, 80 * MS, &r), Decision::Reject { .. }));
    assert_eq!(z.in_progress(100), 1, "the busy key stays");
    // All eight busy: a new key is let through untracked.
    let mut held = vec![busy];
    for k in 200..207 {
        held.push(z.enter(k, 90, 10).unwrap());
    }
    assert_eq!(z.request(300, 100, &r), Decision::Allow);
    assert_eq!(z.request(300, 100, &r), Decision::Allow);
    assert!(z.untracked() >= 2);
    let t = z.enter(301, 100, 0).expect("untracked: let through");
    z.leave(t);
    for h in held {
        z.leave(h);
    }
}

#[test]
fn bans_last_their_time_and_windows_count() {
    let z = Zone::new(64);
    assert_eq!(z.banned(9, 0), None);
    // Three per 500 ms window: the fourth is over.
    assert!(!z.count(9, 0, 500 * MS, 3));
    assert!(!z.count(9, MS, 500 * MS, 3));
    assert!(!z.count(9, 2 * MS, 500 * MS, 3));
    assert!(z.count(9, 3 * MS, 500 * MS, 3));
    z.ban(9, 3 * MS, S);
    assert_eq!(z.banned(9, 3 * MS), Some(S));
    assert_eq!(z.banned(9, S), Some(3 * MS));
    assert_eq!(z.banned(9, S + 3 * MS), None);
    // A new window starts afresh.
    assert!(!z.count(9, S + 4 * MS, 500 * MS, 3));
    // A shorter ban does not shorten a longer one.
    z.ban(10, 0, 10 * S);
    z.ban(10, 0, S);
    assert_eq!(z.banned(10, 0), Some(10 * S));
}

#[test]
fn address_keys_never_collide_for_ipv4_and_spread_ipv6() {
    use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
    let v4 = |a: [u8; 4]| ip_key(IpAddr::V4(Ipv4Addr::from(a)));
    assert_ne!(v4([10, 0, 0, 1]), v4([10, 0, 0, 2]));
    assert_ne!(v4([0, 0, 0, 0]), 0, "never the empty word");
    // An IPv4-mapped IPv6 address is the IPv4 client.
    let mapped = "::ffff:10.0.0.1".parse::<Ipv6Addr>().unwrap();
    assert_eq!(ip_key(IpAddr::V6(mapped)), v4([10, 0, 0, 1]));
    // IPv6 keys have the top bit (never an IPv4 key) and differ in the
    // low 64 bits too.
    let mut seen = std::collections::HashSet::new();
    for i in 0..10_000u128 {
        let a = Ipv6Addr::from((0x2001_0db8u128 << 96) | i);
        let k = ip_key(IpAddr::V6(a));
        assert!(k >> 63 == 1);
        assert!(seen.insert(k), "{a}");
        if i > 0 {
            let b = Ipv6Addr::from((0x2001_0db8u128 << 96) | (i << 64));
            assert!(seen.insert(ip_key(IpAddr::V6(b))), "{b}");
        }
    }
    // Ten thousand addresses alike in their low bits spread over a zone's
    // buckets as random keys would (2,048 buckets of eight: a few per cent
    // of them overflow and evict), whatever keys the zone drew.
    for _ in 0..8 {
        let z = Zone::new(16_384);
        for i in 0..10_000u32 {
            let k = ip_key(IpAddr::V4(Ipv4Addr::from(i << 16)));
            assert!(z.entry(k, 0).is_some(), "untracked at {i}");
        }
        assert_eq!(z.keys() as u64 + z.evictions(), 10_000);
        assert!(z.evictions() < 600, "{}", z.evictions());
    }
}

#[test]
fn one_entry_serves_several_checks() {
    let z = Zone::new(64);
    let r = rate(1, 0, Delay::NoDelay);
    let e = z.entry(7, 0).unwrap();
    assert!(e.of(&z) && !e.of(&Zone::new(8)));
    let t = e.enter(1).unwrap();
    assert_eq!(e.enter(1), None);
    assert_eq!(e.request(0, &r), Decision::Allow);
    assert!(matches!(z.request(7, 0, &r), Decision::Reject { .. }));
    e.ban(0, S);
    assert_eq!(z.banned(7, MS), Some(S - MS));
    assert_eq!(z.in_progress(7), 1);
    z.leave(t);
    assert_eq!(z.in_progress(7), 0);
    assert!(z.get(8).is_none(), "get claims nothing");
}

#[test]
fn reserved_key_words_are_still_keys() {
    let z = Zone::new(64);
    let r = rate(1, 0, Delay::NoDelay);
    assert_eq!(z.request(0, 0, &r), Decision::Allow);
    assert!(matches!(z.request(0, 0, &r), Decision::Reject { .. }));
    assert_eq!(z.request(u64::MAX, 0, &r), Decision::Allow);
    assert!(matches!(
        z.request(u64::MAX, 0, &r),
        Decision::Reject { .. }
    ));
}

/// The cost of one uncontended `request` (printed; not a timed assertion).
#[test]
fn cost_of_a_request() {
    let z = Zone::new(100_000);
    let r = rate(1_000_000, 1000, Delay::NoDelay);
    let keys: Vec<u64> = (0..1000u64).map(|i| key_hash(&i.to_le_bytes())).collect();
    let t = std::time::Instant::now();
    let n = 200_000u64;
    for i in 0..n {
        std::hint::black_box(z.request(keys[(i % 1000) as usize], i * 1000, &r));
    }
    let per = t.elapsed().as_nanos() as f64 / n as f64;
    eprintln!("limit: {per:.1} ns per request (unoptimised builds are slower)");
}

/// Many threads seeing a new key at once end up sharing one slot.
#[test]
fn a_new_key_seen_by_several_threads_gets_one_slot() {
    for round in 0..200u64 {
        let z = Arc::new(Zone::new(64));
        let r = rate(1, 0, Delay::NoDelay);
        let barrier = Arc::new(std::sync::Barrier::new(4));
        let passed = Arc::new(AtomicU64::new(0));
        let threads: Vec<_> = (0..4)
            .map(|_| {
                let (z, b, p) = (z.clone(), barrier.clone(), passed.clone());
                std::thread::spawn(move || {
                    b.wait();
                    for _ in 0..3 {
                        if z.request(round, S, &r) == Decision::Allow {
                            p.fetch_add(1, Ordering::Relaxed);
                        }
                    }
                })
            })
            .collect();
        for t in threads {
            t.join().unwrap();
        }
        // One passes; a racing pair may each land one request in the slot
        // that loses before seeing the other (at most one per thread).
        let n = passed.load(Ordering::Relaxed);
        assert!((1..=4).contains(&n), "round {round}: {n}");
        assert_eq!(z.slots_of(round), 1, "round {round}");
    }
}
