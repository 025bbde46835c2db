use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use super::*;

fn c(s: &str) -> Cidr {
    s.parse().unwrap_or_else(|e| panic!("{s}: {e}"))
}

fn ip(s: &str) -> IpAddr {
    s.parse().unwrap()
}

fn rules(list: &[(&str, char)]) -> IpRules<char> {
    let v: Vec<(Cidr, char)> = list.iter().map(|&(s, t)| (c(s), t)).collect();
    IpRules::new(&v)
}

#[test]
fn empty_matches_nothing() {
    let r: IpRules<u8> = IpRules::new(&[]);
    assert!(r.is_empty());
    assert_eq!(r.first_match(ip("1.2.3.4")), None);
    assert_eq!(r.first_match(ip("::")), None);
    assert!(!IpSet::default().contains(ip("127.0.0.1")));
}

#[test]
fn first_match_wins_in_rule_order() {
    let r = rules(&[
        ("10.1.0.0/16", 'd'),
        ("10.0.0.0/8", 'a'),
        ("10.1.2.3", 'x'),
        ("0.0.0.0/0", 'z'),
    ]);
    assert_eq!(r.len(), 4);
    assert_eq!(r.first_match(ip("10.1.2.3")), Some((0, 'd')));
    assert_eq!(r.first_match(ip("10.2.0.0")), Some((1, 'a')));
    assert_eq!(r.first_match(ip("11.0.0.0")), Some((3, 'z')));
    assert_eq!(r.first_match(ip("2001:db8::1")), None, "/0 of IPv4 only");

    // A longer, later rule never shadows an earlier, shorter one.
    let r = rules(&[("0.0.0.0/0", 'a'), ("192.0.2.1", 'd')]);
    assert_eq!(r.first_match(ip("192.0.2.1")), Some((0, 'a')));
}

#[test]
fn duplicates_keep_the_first() {
    let r = rules(&[("192.0.2.0/24", 'a'), ("192.0.2.0/24", 'b')]);
    assert_eq!(r.first_match(ip("192.0.2.77")), Some((0, 'a')));
}

#[test]
fn host_routes_and_full_ranges() {
    let r = rules(&[
        ("2001:db8::1", 'h'),
        ("255.255.255.255/32", 'm'),
        ("0.0.0.0/32", 'n'),
        ("::/0", 's'),
        ("ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff/128", 'f'),
    ]);
    assert_eq!(r.first_match(ip("2001:db8::1")), Some((0, 'h')));
    assert_eq!(r.first_match(ip("2001:db8::2")), Some((3, 's')));
    assert_eq!(r.first_match(ip("255.255.255.255")), Some((1, 'm')));
    assert_eq!(r.first_match(ip("255.255.255.254")), None);
    assert_eq!(r.first_match(ip("0.0.0.0")), Some((2, 'n')));
    assert_eq!(
        r.first_match(ip("ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff")),
        Some((3, 's'))
    );
}

#[test]
fn mapped_ipv6_matches_ipv4_rules() {
    let r = rules(&[("::/0", '6'), ("10.0.0.0/8", '4')]);
    assert_eq!(r.first_match(ip("::ffff:10.9.8.7")), Some((1, '4')));
    assert_eq!(r.first_match(ip("::ffff:11.0.0.1")), None);
    // Written in the mapped form, read as IPv4.
    let r = rules(&[("::ffff:10.0.0.0/104", 'm')]);
    assert_eq!(r.first_match(ip("10.1.1.1")), Some((0, 'm')));
    assert_eq!(r.first_match(ip("::ffff:10.1.1.1")), Some((0, 'm')));
}

#[test]
fn splits_and_forks() {
    // Inserted so that every insert branch is taken: a leaf, a leaf under a
    // leaf, a fork where two networks part ways, a fork that is itself a
    // network, and one ending on an existing fork.
    let r = rules(&[
        ("10.1.2.0/24", 'a'),
        ("10.1.3.0/24", 'b'),
        ("10.1.2.128/25", 'c'),
        ("10.1.0.0/16", 'd'),
        ("10.1.2.0/23", 'e'),
        ("10.1.2.0/24", 'f'),
    ]);
    assert_eq!(r.first_match(ip("10.1.2.200")), Some((0, 'a')));
    assert_eq!(r.first_match(ip("10.1.3.1")), Some((1, 'b')));
    assert_eq!(r.first_match(ip("10.1.4.1")), Some((3, 'd')));
    assert_eq!(r.first_match(ip("10.2.0.0")), None);
    let r = rules(&[
        ("10.1.2.128/25", 'c'),
        ("10.1.2.0/23", 'e'),
        ("10.1.2.0/24", 'a'),
    ]);
    assert_eq!(r.first_match(ip("10.1.2.1")), Some((1, 'e')));
    assert_eq!(r.first_match(ip("10.1.2.129")), Some((0, 'c')));
    assert_eq!(r.first_match(ip("10.1.1.255")), None);
}

#[test]
fn set_contains() {
    let s: IpSet = ["10.0.0.0/8", "192.168.0.0/16", "::1", "fc00::/7"]
        .iter()
        .map(|s| c(s))
        .collect();
    assert!(!s.is_empty());
    for yes in [
        "10.0.0.1",
        "192.168.255.1",
        "::1",
        "fd00::5",
        "::ffff:10.2.2.2",
    ] {
        assert!(s.contains(ip(yes)), "{yes}");
    }
    for no in ["11.0.0.1", "192.169.0.0", "::2", "fe00::", "127.0.0.1"] {
        assert!(!s.contains(ip(no)), "{no}");
    }
}

/// xorshift64*: reproducible, no dependency.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

/// Addresses near a few bases, so that networks nest and overlap.
fn random_ip(rng: &mut Rng, v6: bool) -> IpAddr {
    let base = rng.below(4);
    let noise_bits = rng.below(if v6 { 129 } else { 33 }) as u32;
    let noise = |r: &mut Rng, width: u32| -> u128 {
        let x = u128::from(r.next()) << 64 | u128::from(r.next());
        if noise_bits == 0 {
            0
        } else {
            x >> (128 - noise_bits.min(width))
        }
    };
    if v6 {
        let b = 0x2001_0db8_u128 << 96 | u128::from(base) << 90;
        IpAddr::V6(Ipv6Addr::from(b ^ noise(rng, 128)))
    } else {
        let b = 0x0a00_0000_u32 | (base as u32) << 20;
        IpAddr::V4(Ipv4Addr::from(b ^ noise(rng, 32) as u32))
    }
}

fn random_cidr(rng: &mut Rng) -> Cidr {
    let v6 = rng.below(2) == 0;
    let addr = random_ip(rng, v6);
    let len = rng.below(if v6 { 129 } else { 33 }) as u8;
    let (_, bits) = super::super::cidr::key(addr);
    let net = mask(bits, len);
    let addr = match addr {
        IpAddr::V4(_) => IpAddr::V4(Ipv4Addr::from((net >> 96) as u32)),
        IpAddr::V6(_) => IpAddr::V6(Ipv6Addr::from(net)),
    };
    Cidr::new(addr, len).unwrap()
}

#[test]
fn randomized_against_a_linear_scan() {
    let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
    let (mut matched, mut overlapping, mut queries) = (0, 0, 0);
    for round in 0..300 {
        let n = rng.below(40) as usize;
        let list: Vec<(Cidr, u32)> = (0..n)
            .map(|i| (random_cidr(&mut rng), i as u32 * 7))
            .collect();
        let trie = IpRules::new(&list);
        let set = IpSet::new(&list.iter().map(|&(c, _)| c).collect::<Vec<_>>());
        for q in 0..200 {
            let v6 = rng.below(2) == 0;
            let mut addr = random_ip(&mut rng, v6);
            // Queries exactly on rule boundaries, and mapped forms.
            if q % 5 == 0 && !list.is_empty() {
                addr = list[rng.below(n as u64) as usize].0.addr();
            }
            if q % 7 == 0
                && let IpAddr::V4(v4) = addr
            {
                addr = IpAddr::V6(v4.to_ipv6_mapped());
            }
            queries += 1;
            let containing = list.iter().filter(|(c, _)| c.contains(addr)).count();
            matched += usize::from(containing > 0);
            overlapping += usize::from(containing > 1);
            let want = list
                .iter()
                .enumerate()
                .find(|(_, (c, _))| c.contains(addr))
                .map(|(i, &(_, v))| (i, v));
            assert_eq!(
                trie.first_match(addr),
                want,
                "round {round}: {addr} in {list:?}"
            );
            assert_eq!(set.contains(addr), want.is_some());
        }
    }
    // The generator exercises what it should: hits, misses, nested rules.
    assert!(
        matched > queries / 10 && matched < queries * 9 / 10,
        "{matched} of {queries}"
    );
    assert!(overlapping > queries / 10, "{overlapping} of {queries}");
}
