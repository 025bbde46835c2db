//! The client's address behind trusted proxies, from `X-Forwarded-For` or
//! `Forwarded` (RFC 7239): nginx's realip module with
//! `real_ip_recursive on`.
//!
//! Each proxy appends the address it received the request from, so the
//! list reads left to right from the client towards this server, and only
//! the part that trusted proxies appended can be believed. The walk starts
//! at the peer: while the current address is trusted, the next hop to the
//! left is taken. The first untrusted address is the client; if every hop
//! is trusted, the leftmost is. A hop that is not an address (`unknown`,
//! an obfuscated `_hidden`, anything malformed) ends the walk at the
//! trusted address to its right, since nothing past it can be checked.
//!
//! From an untrusted peer nothing is read at all: anyone can send the
//! header.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use super::trie::IpSet;

/// The client's address: `peer` unless it is trusted, else the first
/// untrusted hop of the `X-Forwarded-For` `values` walking from the right
/// (the header may occur several times: `values` in the order received,
/// each a comma-separated list). Never panics, never allocates.
pub fn client_ip<'a>(
    peer: IpAddr,
    values: impl Iterator<Item = &'a [u8]>,
    trusted: &IpSet,
) -> IpAddr {
    client_ip_from_hops(peer, values.flat_map(x_forwarded_for), trusted)
}

/// [`client_ip`] for the `Forwarded` header (RFC 7239): the hops are the
/// `for=` parameters of its elements, in order.
pub fn client_ip_forwarded<'a>(
    peer: IpAddr,
    values: impl Iterator<Item = &'a [u8]>,
    trusted: &IpSet,
) -> IpAddr {
    client_ip_from_hops(peer, values.flat_map(forwarded_for), trusted)
}

/// The walk itself, over hops in header order (leftmost first): `Some`
/// address, or `None` for a hop that is not one. [`client_ip`] and
/// [`client_ip_forwarded`] feed it [`x_forwarded_for`] and
/// [`forwarded_for`].
///
/// One pass from the left gives what the walk from the right finds: the
/// answer is decided by the rightmost hop that stops the walk (an
/// untrusted address is the answer; a non-address hands it to the hop on
/// its right, or the peer), and without one it is the leftmost address.
pub fn client_ip_from_hops(
    peer: IpAddr,
    hops: impl IntoIterator<Item = Option<IpAddr>>,
    trusted: &IpSet,
) -> IpAddr {
    if !trusted.contains(peer) {
        return peer;
    }
    let mut leftmost = None;
    // The answer decided by the rightmost stop so far, or `Pending` when
    // that stop was a non-address and the next address decides.
    let mut stop = Stop::None;
    for hop in hops {
        match hop {
            Some(ip) => {
                leftmost.get_or_insert(ip);
                if !trusted.contains(ip) || stop == Stop::Pending {
                    stop = Stop::At(ip);
                }
            }
            None => stop = Stop::Pending,
        }
    }
    match stop {
        Stop::At(ip) => ip,
        Stop::Pending => peer,
        Stop::None => leftmost.unwrap_or(peer),
    }
}

#[derive(Clone, Copy, PartialEq)]
enum Stop {
    None,
    Pending,
    At(IpAddr),
}

/// The hops of one `X-Forwarded-For` value: its comma-separated entries,
/// whitespace around them ignored, empty ones skipped. An entry is an
/// address (`192.0.2.1`, `2001:db8::1`), optionally with a port
/// (`192.0.2.1:8080`, `[2001:db8::1]:8080`); anything else is `None`.
pub fn x_forwarded_for(value: &[u8]) -> XForwardedFor<'_> {
    XForwardedFor { rest: value }
}

/// Iterator returned by [`x_forwarded_for`].
#[derive(Clone, Debug)]
pub struct XForwardedFor<'a> {
    rest: &'a [u8],
}

impl Iterator for XForwardedFor<'_> {
    type Item = Option<IpAddr>;

    fn next(&mut self) -> Option<Option<IpAddr>> {
        loop {
            if self.rest.is_empty() {
                return None;
            }
            let (entry, rest) = match self.rest.iter().position(|&b| b == b',') {
                Some(i) => (&self.rest[..i], &self.rest[i + 1..]),
                None => (self.rest, &[][..]),
            };
            self.rest = rest;
            let entry = trim(entry);
            if !entry.is_empty() {
                return Some(node(entry));
            }
        }
    }
}

/// The hops of one `Forwarded` value: for each comma-separated element,
/// its `for=` node (token or quoted string): an address, `[v6]`, either
/// with a `:port`. `None` for `unknown`, an obfuscated `_name`, an element
/// without `for=` or with two, and for a malformed element (after which
/// the next comma starts the next element).
pub fn forwarded_for(value: &[u8]) -> ForwardedFor<'_> {
    ForwardedFor { rest: value }
}

/// Iterator returned by [`forwarded_for`].
#[derive(Clone, Debug)]
pub struct ForwardedFor<'a> {
    rest: &'a [u8],
}

impl Iterator for ForwardedFor<'_> {
    type Item = Option<IpAddr>;

    fn next(&mut self) -> Option<Option<IpAddr>> {
        loop {
            self.rest = trim(self.rest);
            match self.rest.first() {
                None => return None,
                // An empty element (`a,,b`), skipped as in lists generally.
                Some(b',') => self.rest = &self.rest[1..],
                Some(_) => break,
            }
        }
        match element(self.rest) {
            Some((hop, rest)) => {
                self.rest = rest;
                Some(hop)
            }
            None => {
                // Malformed: skip to the next comma, whatever the quoting.
                self.rest = match self.rest.iter().position(|&b| b == b',') {
                    Some(i) => &self.rest[i + 1..],
                    None => &[],
                };
                Some(None)
            }
        }
    }
}

/// One element, `pair *( ";" pair )`, up to and including its comma: the
/// `for=` hop (`None` when there is none, or more than one) and what
/// follows. `None` when malformed.
fn element(mut s: &[u8]) -> Option<(Option<IpAddr>, &[u8])> {
    let mut found: Option<Option<IpAddr>> = None;
    let mut fors = 0;
    loop {
        s = trim_start(s);
        let name_len = s.iter().position(|&b| !is_tchar(b)).unwrap_or(s.len());
        let (name, rest) = s.split_at(name_len);
        let rest = rest.strip_prefix(b"=")?;
        if name.is_empty() {
            return None;
        }
        let (value, rest) = pair_value(rest)?;
        if name.eq_ignore_ascii_case(b"for") {
            fors += 1;
            found = Some(value.and_then(node));
        }
        s = trim_start(rest);
        match s.first() {
            Some(b';') => s = &s[1..],
            Some(b',') => {
                s = &s[1..];
                break;
            }
            None => break,
            Some(_) => return None,
        }
    }
    let hop = if fors == 1 { found.flatten() } else { None };
    Some((hop, s))
}

/// A token or a quoted string at the start of `s`, and what follows. The
/// value is `None` when it is a quoted string with escapes (no address has
/// one). `None` (the outer one) when malformed.
fn pair_value(s: &[u8]) -> Option<(Option<&[u8]>, &[u8])> {
    if let Some(quoted) = s.strip_prefix(b"\"") {
        let mut escaped = false;
        let mut i = 0;
        while i < quoted.len() {
            match quoted[i] {
                b'"' => {
                    let value = (!escaped).then_some(&quoted[..i]);
                    return Some((value, &quoted[i + 1..]));
                }
                b'\\' => {
                    escaped = true;
                    i += 1;
                    if i == quoted.len() {
                        return None;
                    }
                }
                b if b < 0x20 && b != b'\t' || b == 0x7f => return None,
                _ => {}
            }
            i += 1;
        }
        return None;
    }
    // Tokens, and leniently the `[`, `]` and `:` of an unquoted IPv6 node
    // or port (which strictly must be quoted).
    let len = s
        .iter()
        .position(|&b| !(is_tchar(b) || matches!(b, b'[' | b']' | b':')))
        .unwrap_or(s.len());
    (len > 0).then(|| (Some(&s[..len]), &s[len..]))
}

/// RFC 9110 `tchar`.
fn is_tchar(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b)
}

/// An address with an optional port: `192.0.2.1`, `192.0.2.1:80`,
/// `2001:db8::1`, `[2001:db8::1]`, `[2001:db8::1]:80`. The port may be an
/// RFC 7239 obfuscated one (`_abc`).
fn node(s: &[u8]) -> Option<IpAddr> {
    if let Some(inner) = s.strip_prefix(b"[") {
        let close = inner.iter().position(|&b| b == b']')?;
        let after = &inner[close + 1..];
        if !after.is_empty() && !port(after.strip_prefix(b":")?) {
            return None;
        }
        return parse::<Ipv6Addr>(&inner[..close]).map(IpAddr::V6);
    }
    let colons = s.iter().filter(|&&b| b == b':').count();
    match colons {
        0 => parse::<Ipv4Addr>(s).map(IpAddr::V4),
        1 => {
            let i = s.iter().position(|&b| b == b':')?;
            if !port(&s[i + 1..]) {
                return None;
            }
            parse::<Ipv4Addr>(&s[..i]).map(IpAddr::V4)
        }
        _ => parse::<Ipv6Addr>(s).map(IpAddr::V6),
    }
}

/// 1 to 5 digits up to 65535, or an obfuscated port (`_` and at least one
/// of `[A-Za-z0-9._-]`).
fn port(s: &[u8]) -> bool {
    if let Some(obf) = s.strip_prefix(b"_") {
        return !obf.is_empty()
            && obf
                .iter()
                .all(|&b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'));
    }
    !s.is_empty()
        && s.len() <= 5
        && s.iter().all(u8::is_ascii_digit)
        && s.iter().fold(0u32, |n, &d| n * 10 + u32::from(d - b'0')) <= 65535
}

fn parse<A: std::str::FromStr>(s: &[u8]) -> Option<A> {
    std::str::from_utf8(s).ok()?.parse().ok()
}

fn is_ows(b: u8) -> bool {
    b == b' ' || b == b'\t'
}

fn trim_start(s: &[u8]) -> &[u8] {
    let start = s.iter().position(|&b| !is_ows(b)).unwrap_or(s.len());
    &s[start..]
}

fn trim(s: &[u8]) -> &[u8] {
    let s = trim_start(s);
    let end = s.iter().rposition(|&b| !is_ows(b)).map_or(0, |i| i + 1);
    &s[..end]
}

#[cfg(test)]
#[path = "forwarded_tests.rs"]
mod tests;
