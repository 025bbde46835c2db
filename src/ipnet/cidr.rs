//! [`Cidr`]: one IPv4 or IPv6 network, written `10.0.0.0/8`,
//! `2001:db8::/32`, or a bare address for a single host.
//!
//! Host bits are refused rather than silently cleared: `10.0.0.1/8` is
//! most often a typo for a host rule or for another network, and the
//! error says which network it would have meant.
//!
//! IPv4-mapped IPv6 (`::ffff:a.b.c.d`) is IPv4: a peer on a dual-stack
//! socket is matched against the IPv4 rules, and a network written in the
//! mapped range (`::ffff:10.0.0.0/104`, any prefix of 96 or more) is read
//! as the IPv4 network it covers (`10.0.0.0/8`).

use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::str::FromStr;

/// An IP network: an address with every bit after the prefix zero, and the
/// prefix length (at most 32 for IPv4, 128 for IPv6).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Cidr {
    addr: IpAddr,
    len: u8,
}

/// Why a network was refused; its `Display` is a whole sentence naming the
/// input.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CidrError(String);

impl fmt::Display for CidrError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for CidrError {}

/// The prefix length that covers all of IPv4 inside IPv6 (`::ffff:0:0/96`).
const MAPPED_PREFIX: u8 = 96;

impl Cidr {
    /// The network `addr/prefix_len`. Refused when the prefix is longer than
    /// the address or a bit after the prefix is set. A network in the
    /// IPv4-mapped range with a prefix of 96 or more becomes the IPv4
    /// network it covers.
    pub fn new(addr: IpAddr, prefix_len: u8) -> Result<Cidr, CidrError> {
        if prefix_len > width(addr) {
            return Err(too_long(addr, prefix_len.into()));
        }
        let (_, bits) = key(addr);
        let network = mask(bits, prefix_len);
        if network != bits {
            let written = from_key(addr, network);
            return Err(CidrError(format!(
                "host bits set in {addr}/{prefix_len}: write {written}/{prefix_len}"
            )));
        }
        Ok(normalise(Cidr {
            addr,
            len: prefix_len,
        }))
    }

    /// The network address (every host bit zero).
    pub fn addr(&self) -> IpAddr {
        self.addr
    }

    /// The prefix length: 0 to 32 for IPv4, 0 to 128 for IPv6.
    pub fn prefix_len(&self) -> u8 {
        self.len
    }

    /// Whether `ip` lies in this network. An IPv4-mapped IPv6 address is
    /// matched as the IPv4 address it carries; the other family never
    /// matches.
    pub fn contains(&self, ip: IpAddr) -> bool {
        let (v6, bits) = key(ip.to_canonical());
        let (net_v6, net) = key(self.addr);
        v6 == net_v6 && mask(bits ^ net, self.len) == 0
    }

    /// Family (`true` for IPv6) and the network's bits, left-aligned in a
    /// `u128` (an IPv4 network fills the top 32 bits).
    pub(crate) fn key(&self) -> (bool, u128) {
        key(self.addr)
    }
}

impl From<IpAddr> for Cidr {
    /// The single-host network: `/32` or `/128` (an IPv4-mapped address
    /// becomes its IPv4 `/32`).
    fn from(ip: IpAddr) -> Cidr {
        let ip = ip.to_canonical();
        Cidr {
            addr: ip,
            len: width(ip),
        }
    }
}

impl FromStr for Cidr {
    type Err = CidrError;

    /// `10.0.0.0/8`, `2001:db8::/32`, or a bare address (`192.0.2.1`,
    /// `::1`) for a single host. No surrounding whitespace, no brackets,
    /// no zone (`%eth0`); the prefix length is decimal digits.
    fn from_str(s: &str) -> Result<Cidr, CidrError> {
        if s.is_empty() {
            return Err(CidrError(
                "empty network: write an address such as 10.0.0.0/8".into(),
            ));
        }
        let (addr_text, len_text) = match s.split_once('/') {
            Some((a, l)) => (a, Some(l)),
            None => (s, None),
        };
        let addr: IpAddr = addr_text
            .parse()
            .map_err(|_| CidrError(format!("not an IP address: {addr_text:?} in {s:?}")))?;
        let len = match len_text {
            None => width(addr),
            Some(l) => {
                let len = parse_len(l)
                    .ok_or_else(|| CidrError(format!("prefix length is not a number in {s:?}")))?;
                u8::try_from(len)
                    .ok()
                    .filter(|&len| len <= width(addr))
                    .ok_or_else(|| too_long(addr, len))?
            }
        };
        Cidr::new(addr, len)
    }
}

impl fmt::Display for Cidr {
    /// Canonical form: `10.0.0.0/8`, `2001:db8::/32`, always with the
    /// prefix length.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.addr, self.len)
    }
}

/// One to three decimal digits (the family's limit is checked by the
/// caller).
fn parse_len(s: &str) -> Option<u16> {
    if s.is_empty() || s.len() > 3 || !s.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    s.parse().ok()
}

/// A network in the IPv4-mapped range, prefix 96 or more, as IPv4.
fn normalise(c: Cidr) -> Cidr {
    match c.addr {
        IpAddr::V6(v6) if c.len >= MAPPED_PREFIX => match v6.to_ipv4_mapped() {
            Some(v4) => Cidr {
                addr: IpAddr::V4(v4),
                len: c.len - MAPPED_PREFIX,
            },
            None => c,
        },
        _ => c,
    }
}

fn too_long(addr: IpAddr, len: u16) -> CidrError {
    let family = match addr {
        IpAddr::V4(_) => "an IPv4 address",
        IpAddr::V6(_) => "an IPv6 address",
    };
    let max = width(addr);
    CidrError(format!(
        "prefix length {len} is too long for {family} (at most {max}) in {addr}/{len}"
    ))
}

/// Bits in an address of `ip`'s family.
pub(crate) fn width(ip: IpAddr) -> u8 {
    match ip {
        IpAddr::V4(_) => 32,
        IpAddr::V6(_) => 128,
    }
}

/// Family (`true` for IPv6) and bits, left-aligned. The address is taken
/// as it is: callers canonicalise IPv4-mapped addresses first.
pub(crate) fn key(ip: IpAddr) -> (bool, u128) {
    match ip {
        IpAddr::V4(v4) => (false, u128::from(u32::from(v4)) << 96),
        IpAddr::V6(v6) => (true, u128::from(v6)),
    }
}

fn from_key(like: IpAddr, bits: u128) -> IpAddr {
    match like {
        IpAddr::V4(_) => IpAddr::V4(Ipv4Addr::from((bits >> 96) as u32)),
        IpAddr::V6(_) => IpAddr::V6(Ipv6Addr::from(bits)),
    }
}

/// The first `len` bits of `bits` (0 to 128), the rest cleared.
pub(crate) fn mask(bits: u128, len: u8) -> u128 {
    match len {
        0 => 0,
        l if l >= 128 => bits,
        l => bits & (u128::MAX << (128 - u32::from(l))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn c(s: &str) -> Cidr {
        s.parse().unwrap_or_else(|e| panic!("{s}: {e}"))
    }

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    fn err(s: &str) -> String {
        s.parse::<Cidr>().unwrap_err().to_string()
    }

    #[test]
    fn parses_and_displays_canonically() {
        assert_eq!(c("10.0.0.0/8").to_string(), "10.0.0.0/8");
        assert_eq!(c("2001:db8::/32").to_string(), "2001:db8::/32");
        assert_eq!(c("2001:0db8:0::/32").to_string(), "2001:db8::/32");
        assert_eq!(c("192.0.2.1").to_string(), "192.0.2.1/32");
        assert_eq!(c("::1").to_string(), "::1/128");
        assert_eq!(c("0.0.0.0/0").to_string(), "0.0.0.0/0");
        assert_eq!(c("::/0").to_string(), "::/0");
        assert_eq!(c("10.0.0.0/8").prefix_len(), 8);
        assert_eq!(c("10.0.0.0/8").addr(), ip("10.0.0.0"));
    }

    #[test]
    fn mapped_networks_are_ipv4() {
        assert_eq!(c("::ffff:10.0.0.0/104"), c("10.0.0.0/8"));
        assert_eq!(c("::ffff:0:0/96"), c("0.0.0.0/0"));
        assert_eq!(c("::ffff:192.0.2.1"), c("192.0.2.1/32"));
        // Shorter than the mapped range: stays IPv6.
        assert_eq!(c("::/95").to_string(), "::/95");
        assert_eq!(Cidr::from(ip("::ffff:1.2.3.4")), c("1.2.3.4/32"));
    }

    #[test]
    fn refuses_with_clear_messages() {
        assert_eq!(
            err("10.0.0.1/8"),
            "host bits set in 10.0.0.1/8: write 10.0.0.0/8"
        );
        assert_eq!(
            err("2001:db8::1/32"),
            "host bits set in 2001:db8::1/32: write 2001:db8::/32"
        );
        assert_eq!(
            err("10.0.0.0/33"),
            "prefix length 33 is too long for an IPv4 address (at most 32) in 10.0.0.0/33"
        );
        assert!(err("::/129").contains("at most 128"));
        assert!(err("10.0.0.0/x").contains("not a number"));
        assert!(err("10.0.0.0/").contains("not a number"));
        assert!(err("10.0.0.0/+8").contains("not a number"));
        assert!(err("10.0.0.0/0008").contains("not a number"));
        assert!(err("10.0.0.0/256").contains("prefix length 256 is too long"));
        assert!(err("10.0.0.0/999").contains("prefix length 999 is too long"));
        assert!(err("10.0.0/8").contains("not an IP address"));
        assert!(err(" 10.0.0.0/8").contains("not an IP address"));
        assert!(err("[::1]/128").contains("not an IP address"));
        assert!(err("fe80::1%eth0").contains("not an IP address"));
        assert!(err("").contains("empty"));
        assert!(err("10.0.0.0/8/8").contains("not a number"));
    }

    #[test]
    fn contains_by_prefix() {
        let n = c("10.0.0.0/8");
        assert!(n.contains(ip("10.0.0.0")));
        assert!(n.contains(ip("10.255.255.255")));
        assert!(!n.contains(ip("11.0.0.0")));
        assert!(!n.contains(ip("9.255.255.255")));
        assert!(n.contains(ip("::ffff:10.1.2.3")));
        assert!(
            !n.contains(ip("::10.1.2.3")),
            "IPv4-compatible is not mapped"
        );
        assert!(!n.contains(ip("2001:db8::")));

        let all4 = c("0.0.0.0/0");
        assert!(all4.contains(ip("255.255.255.255")));
        assert!(all4.contains(ip("::ffff:0.0.0.0")));
        assert!(!all4.contains(ip("::")));

        let all6 = c("::/0");
        assert!(all6.contains(ip("ffff::")));
        assert!(!all6.contains(ip("1.2.3.4")));
        assert!(
            !all6.contains(ip("::ffff:1.2.3.4")),
            "mapped peers match IPv4 rules"
        );

        let host = c("2001:db8::1");
        assert!(host.contains(ip("2001:db8::1")));
        assert!(!host.contains(ip("2001:db8::2")));
        let host4 = c("192.0.2.1/32");
        assert!(host4.contains(ip("192.0.2.1")));
        assert!(!host4.contains(ip("192.0.2.0")));

        let odd = c("2001:db8:8000::/33");
        assert!(odd.contains(ip("2001:db8:ffff::1")));
        assert!(!odd.contains(ip("2001:db8:7fff::1")));
    }

    #[test]
    fn mask_edges() {
        assert_eq!(mask(u128::MAX, 0), 0);
        assert_eq!(mask(u128::MAX, 128), u128::MAX);
        assert_eq!(mask(u128::MAX, 1), 1 << 127);
        assert_eq!(mask(u128::MAX, 127), u128::MAX - 1);
    }
}
