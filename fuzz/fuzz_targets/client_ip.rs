//! The client address behind trusted proxies
//! (`peregrine::ipnet::forwarded`), over arbitrary header bytes.
//!
//! Input layout: byte 0 picks the peer (bits 0-1), the trusted networks
//! (bits 2-3) and the header (bit 4: `X-Forwarded-For` or `Forwarded`);
//! the rest, split at `\n`, is the header's values in order.
//!
//! Properties:
//! - it never panics;
//! - the trie-backed set agrees with a linear scan of its networks;
//! - the answer is nginx's realip walk (`real_ip_recursive on`), written
//!   here from the right over the collected hops: while the current
//!   address is trusted, step to the next hop on the left; a hop that is
//!   not an address ends the walk where it is;
//! - an untrusted peer is always the answer.
#![no_main]

use std::net::IpAddr;

use libfuzzer_sys::fuzz_target;
use peregrine::ipnet::{
    Cidr, IpSet, client_ip, client_ip_forwarded, forwarded_for, x_forwarded_for,
};

const PEERS: [&str; 4] = ["10.0.0.1", "2001:db8::1", "::ffff:10.0.0.1", "203.0.113.1"];

const TRUSTED: [&[&str]; 4] = [
    &["10.0.0.0/8", "2001:db8::/32"],
    &["0.0.0.0/0", "::/0"],
    &["10.0.0.1", "2001:db8::1", "192.0.2.0/24"],
    &["10.0.0.0/8", "2001:db8::/32", "1.0.0.0/8", "::/1"],
];

fn walk(peer: IpAddr, hops: &[Option<IpAddr>], trusted: &[Cidr]) -> IpAddr {
    let is_trusted = |ip: IpAddr| trusted.iter().any(|c| c.contains(ip));
    let mut cur = peer;
    for hop in hops.iter().rev() {
        if !is_trusted(cur) {
            break;
        }
        match hop {
            Some(ip) => cur = *ip,
            None => break,
        }
    }
    cur
}

fuzz_target!(|data: &[u8]| {
    let Some((&pick, rest)) = data.split_first() else {
        return;
    };
    let peer: IpAddr = PEERS[usize::from(pick & 3)].parse().unwrap();
    let cidrs: Vec<Cidr> = TRUSTED[usize::from(pick >> 2 & 3)]
        .iter()
        .map(|s| s.parse().unwrap())
        .collect();
    let set = IpSet::new(&cidrs);
    let forwarded = pick & 0x10 != 0;
    let values = || rest.split(|&b| b == b'\n');

    let hops: Vec<Option<IpAddr>> = if forwarded {
        values().flat_map(forwarded_for).collect()
    } else {
        values().flat_map(x_forwarded_for).collect()
    };
    for ip in hops.iter().flatten().chain([&peer]) {
        assert_eq!(
            set.contains(*ip),
            cidrs.iter().any(|c| c.contains(*ip)),
            "{ip}"
        );
    }
    let got = if forwarded {
        client_ip_forwarded(peer, values(), &set)
    } else {
        client_ip(peer, values(), &set)
    };
    assert_eq!(got, walk(peer, &hops, &cidrs), "hops {hops:?}");
    if !set.contains(peer) {
        assert_eq!(got, peer);
    }
});
