use std::net::IpAddr;

use super::*;
use crate::ipnet::Cidr;

fn ip(s: &str) -> IpAddr {
    s.parse().unwrap()
}

fn set(list: &[&str]) -> IpSet {
    list.iter().map(|s| s.parse::<Cidr>().unwrap()).collect()
}

fn proxies() -> IpSet {
    set(&["10.0.0.0/8", "2001:db8:ffff::/48"])
}

fn xff(peer: &str, values: &[&str]) -> IpAddr {
    client_ip(ip(peer), values.iter().map(|v| v.as_bytes()), &proxies())
}

fn fwd(peer: &str, values: &[&str]) -> IpAddr {
    client_ip_forwarded(ip(peer), values.iter().map(|v| v.as_bytes()), &proxies())
}

fn hops(v: &str) -> Vec<Option<IpAddr>> {
    x_forwarded_for(v.as_bytes()).collect()
}

fn fhops(v: &str) -> Vec<Option<IpAddr>> {
    forwarded_for(v.as_bytes()).collect()
}

#[test]
fn untrusted_peer_is_the_client() {
    assert_eq!(xff("203.0.113.9", &["198.51.100.1"]), ip("203.0.113.9"));
    assert_eq!(fwd("203.0.113.9", &["for=198.51.100.1"]), ip("203.0.113.9"));
}

#[test]
fn trusted_peer_without_header_is_the_client() {
    assert_eq!(xff("10.0.0.1", &[]), ip("10.0.0.1"));
    assert_eq!(xff("10.0.0.1", &["", " , ,"]), ip("10.0.0.1"));
}

#[test]
fn walks_from_the_right_past_trusted_hops() {
    // The client wrote a fake first entry; the trusted proxies appended.
    let v = ["1.1.1.1, 198.51.100.7, 10.0.0.2, 10.0.0.3"];
    assert_eq!(xff("10.0.0.1", &v), ip("198.51.100.7"));
    // Several header lines are one list, in order.
    let v = ["1.1.1.1", "198.51.100.7, 10.0.0.2", "10.0.0.3"];
    assert_eq!(xff("10.0.0.1", &v), ip("198.51.100.7"));
    let v = ["198.51.100.7", ""];
    assert_eq!(xff("10.0.0.1", &v), ip("198.51.100.7"));
}

#[test]
fn every_hop_trusted_gives_the_leftmost() {
    assert_eq!(xff("10.0.0.1", &["10.0.0.9, 10.0.0.8"]), ip("10.0.0.9"));
    assert_eq!(xff("10.0.0.1", &["10.0.0.9"]), ip("10.0.0.9"));
}

#[test]
fn a_non_address_stops_at_the_hop_to_its_right() {
    assert_eq!(
        xff("10.0.0.1", &["198.51.100.7, unknown, 10.0.0.2"]),
        ip("10.0.0.2")
    );
    assert_eq!(xff("10.0.0.1", &["198.51.100.7, garbage"]), ip("10.0.0.1"));
    assert_eq!(
        xff("10.0.0.1", &["garbage, 198.51.100.7"]),
        ip("198.51.100.7")
    );
    // An untrusted hop right of the garbage decides before it is reached.
    assert_eq!(
        xff("10.0.0.1", &["x, 198.51.100.7, y, 10.0.0.2"]),
        ip("10.0.0.2")
    );
    assert_eq!(xff("10.0.0.1", &["x, 10.0.0.3, 10.0.0.2"]), ip("10.0.0.3"));
}

#[test]
fn ipv6_and_mapped_hops() {
    let v = ["2001:db8::1, 2001:db8:ffff::2"];
    assert_eq!(xff("2001:db8:ffff::1", &v), ip("2001:db8::1"));
    // A dual-stack peer in the mapped form is the trusted IPv4 proxy.
    assert_eq!(
        xff("::ffff:10.0.0.1", &["198.51.100.7"]),
        ip("198.51.100.7")
    );
    assert_eq!(
        xff("10.0.0.1", &["198.51.100.7, ::ffff:10.0.0.5"]),
        ip("198.51.100.7")
    );
}

#[test]
fn xff_entry_forms() {
    assert_eq!(
        hops(" 192.0.2.1:8080 ,\t[2001:db8::1]:443,[2001:db8::2], 2001:db8::3 ,,"),
        [
            Some(ip("192.0.2.1")),
            Some(ip("2001:db8::1")),
            Some(ip("2001:db8::2")),
            Some(ip("2001:db8::3")),
        ]
    );
    for bad in [
        "unknown",
        "_hidden",
        "1.2.3",
        "01.2.3.4",
        "1.2.3.4:",
        "1.2.3.4:65536",
        "1.2.3.4:123456",
        "1.2.3.4:+80",
        "1.2.3.4 5.6.7.8",
        "[1.2.3.4]",
        "[2001:db8::1",
        "[2001:db8::1]80",
        "[2001:db8::1]:",
        "2001:db8::1:80:x",
        "fe80::1%eth0",
        "\"1.2.3.4\"",
        "\u{ff}1.2.3.4",
    ] {
        assert_eq!(hops(bad), [None], "{bad:?}");
    }
    assert_eq!(hops("1.2.3.4:0"), [Some(ip("1.2.3.4"))]);
    assert_eq!(hops("1.2.3.4:65535"), [Some(ip("1.2.3.4"))]);
    assert_eq!(hops("[::1]:_obf"), [Some(ip("::1"))]);
}

#[test]
fn forwarded_elements() {
    assert_eq!(
        fhops(
            "for=192.0.2.60;proto=http;by=203.0.113.43, For=\"[2001:db8:cafe::17]:4711\", \
             proto=https;for=198.51.100.17:80"
        ),
        [
            Some(ip("192.0.2.60")),
            Some(ip("2001:db8:cafe::17")),
            Some(ip("198.51.100.17")),
        ]
    );
    assert_eq!(fhops("for=\"192.0.2.1\""), [Some(ip("192.0.2.1"))]);
    assert_eq!(
        fhops("for=[2001:db8::1]"),
        [Some(ip("2001:db8::1"))],
        "lenient unquoted"
    );
    assert_eq!(
        fhops("for=\"[2001:db8::1]:_port\""),
        [Some(ip("2001:db8::1"))]
    );
    assert_eq!(fhops(" for = 1.2.3.4"), [None], "no space around =");
    assert_eq!(fhops("for=1.2.3.4 ; proto=http ,, "), [Some(ip("1.2.3.4"))]);
    assert_eq!(fhops(""), []);
}

#[test]
fn forwarded_non_addresses() {
    for v in [
        "for=unknown",
        "for=_hidden",
        "for=\"_gazonk\"",
        "proto=https",
        "for=1.2.3.4;for=5.6.7.8",
        "for=\"1.2.3.4\\\"\"",
        "for=\"1.2.3.4",
        "for=\"1.2.3.4\\",
        "for=1.2.3.4 x",
        "for=1.2.3.4\"x\"",
        "for=",
        "=1.2.3.4",
        "for=\"\"",
        "for=\"1.2.3.4\u{1}\"",
        "for=[2001:db8::1]:99999",
    ] {
        assert_eq!(fhops(v), [None], "{v:?}");
    }
}

#[test]
fn forwarded_recovers_after_a_malformed_element() {
    assert_eq!(
        fhops("for=\"oops, for=192.0.2.9"),
        [None, Some(ip("192.0.2.9"))]
    );
    assert_eq!(
        fhops("for=a b, for=192.0.2.9"),
        [None, Some(ip("192.0.2.9"))]
    );
    // A quoted comma belongs to its string.
    assert_eq!(fhops("for=\"1.2.3.4, for=5.6.7.8\""), [None]);
}

#[test]
fn forwarded_walk() {
    let v = ["for=198.51.100.7", "for=10.0.0.2;proto=https"];
    assert_eq!(fwd("10.0.0.1", &v), ip("198.51.100.7"));
    let v = ["for=198.51.100.7, for=_hidden, for=10.0.0.2"];
    assert_eq!(fwd("10.0.0.1", &v), ip("10.0.0.2"));
    let v = ["for=\"[2001:db8::5]:1234\", for=\"[2001:db8:ffff::9]\""];
    assert_eq!(fwd("10.0.0.1", &v), ip("2001:db8::5"));
}

#[test]
fn arbitrary_bytes_never_panic() {
    let mut x = 0x1234_5678_9abc_def1_u64;
    let alphabet = b"0123456789abcdef.:[]_,;=\" \t\\forFOR\x00\xff";
    for _ in 0..2000 {
        let len = (x % 40) as usize;
        let v: Vec<u8> = (0..len)
            .map(|_| {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                alphabet[(x % alphabet.len() as u64) as usize]
            })
            .collect();
        let _ = client_ip(ip("10.0.0.1"), [&v[..]].into_iter(), &proxies());
        let _ = client_ip_forwarded(ip("10.0.0.1"), [&v[..]].into_iter(), &proxies());
    }
}
