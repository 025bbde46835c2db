//! The PROXY protocol header (HAProxy's specification, versions 1 and 2),
//! sans-IO: a load balancer sends it first on each connection to tell the
//! server the client's address.
//!
//! [`parse`] reads it from the start of the connection's bytes and says
//! how many it took; the rest belongs to the protocol that follows (TLS,
//! HTTP). Bytes that cannot begin a header are refused as soon as they are
//! seen, so a client that does not speak the protocol is not left waiting.
//!
//! - Version 1 is a text line, `PROXY TCP4 192.0.2.1 198.51.100.1 56324
//!   443\r\n` (or `TCP6`, or `UNKNOWN` and anything up to the CRLF), at
//!   most [`V1_MAX`] bytes. Read strictly: single spaces, addresses of the
//!   family named, ports of one to five decimal digits up to 65535,
//!   printable ASCII only.
//! - Version 2 is binary: a 12-byte signature, version and command,
//!   family and transport, a 16-bit length, the address block and then
//!   type-length-value extensions, which are skipped. `LOCAL` (a health
//!   check from the balancer itself) and families other than TCP over IPv4
//!   or IPv6 carry no usable address: the header is consumed and the
//!   addresses are `None`.

use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

/// The most bytes a header [`parse`] accepts may take: a whole version 1
/// line, or a version 2 header with a UNIX address block (216 bytes) and
/// some 300 bytes of extensions (TCP over IPv6 leaves 484). 536 is IPv4's
/// default TCP maximum segment size (RFC 879), so a header that fits
/// arrives whole in the first segment; a longer version 2 header is
/// refused.
pub const MAX_HEADER: usize = 536;

/// The longest version 1 line, CRLF included.
pub const V1_MAX: usize = 107;

// Either version's longest address form fits.
const _: () = assert!(V1_MAX <= MAX_HEADER && V2_FIXED + 216 <= MAX_HEADER);

const V1_SIG: &[u8] = b"PROXY ";
const V2_SIG: &[u8; 12] = b"\r\n\r\n\0\r\nQUIT\n";
/// Signature, version/command, family/transport, length.
const V2_FIXED: usize = 16;

/// The addresses a header carries: where the client's connection came
/// from and where it went. `None` when the header has none to tell
/// (`UNKNOWN`, `LOCAL`, an unspecified family, UNIX sockets, datagrams):
/// use the connection's own.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ProxyHeader {
    /// The client's address and port.
    pub source: Option<SocketAddr>,
    /// The address and port the client connected to.
    pub destination: Option<SocketAddr>,
}

impl ProxyHeader {
    const NONE: ProxyHeader = ProxyHeader {
        source: None,
        destination: None,
    };
}

/// Why the bytes are not an acceptable PROXY protocol header.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ProxyError {
    /// The bytes begin neither signature.
    NotProxy,
    /// A version 1 line without CRLF within [`V1_MAX`] bytes.
    V1TooLong,
    /// A version 1 line that breaks the format; the reason.
    V1Malformed(&'static str),
    /// A version 2 header with a version other than 2.
    V2Version(u8),
    /// A version 2 header with a command other than `LOCAL` or `PROXY`.
    V2Command(u8),
    /// A version 2 `PROXY` header with a family/transport byte the
    /// specification does not define.
    V2Family(u8),
    /// A version 2 header longer than [`MAX_HEADER`] (its whole length).
    V2TooLong(usize),
    /// A version 2 `PROXY` header whose length does not cover the address
    /// block of its family: the family/transport byte and the length.
    V2ShortAddresses(u8, u16),
}

impl fmt::Display for ProxyError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            ProxyError::NotProxy => f.write_str("not a PROXY protocol header"),
            ProxyError::V1TooLong => {
                write!(f, "PROXY v1 header without CRLF within {V1_MAX} bytes")
            }
            ProxyError::V1Malformed(why) => write!(f, "malformed PROXY v1 header: {why}"),
            ProxyError::V2Version(v) => write!(f, "PROXY v2 header with version {v}, not 2"),
            ProxyError::V2Command(c) => write!(f, "PROXY v2 header with unknown command {c:#x}"),
            ProxyError::V2Family(b) => {
                write!(
                    f,
                    "PROXY v2 header with unknown family and transport {b:#04x}"
                )
            }
            ProxyError::V2TooLong(n) => {
                write!(
                    f,
                    "PROXY v2 header of {n} bytes, more than the {MAX_HEADER} allowed"
                )
            }
            ProxyError::V2ShortAddresses(fam, len) => write!(
                f,
                "PROXY v2 header of family {fam:#04x} with {len} bytes, too few for its addresses"
            ),
        }
    }
}

impl std::error::Error for ProxyError {}

/// Reads a PROXY protocol header at the start of `buf`: the header and how
/// many bytes it took (at most [`MAX_HEADER`], at most `buf.len()`), or
/// `Ok(None)` when `buf` is a proper beginning of one and more bytes are
/// needed (never once `buf` holds [`MAX_HEADER`] bytes). Never panics.
pub fn parse(buf: &[u8]) -> Result<Option<(ProxyHeader, usize)>, ProxyError> {
    match buf.first() {
        None => Ok(None),
        Some(b'P') => v1(buf),
        Some(_) => v2(buf),
    }
}

/// Whether `buf` begins with `sig`, as far as `buf` goes.
fn starts_like(buf: &[u8], sig: &[u8]) -> bool {
    let n = buf.len().min(sig.len());
    buf[..n] == sig[..n]
}

fn v1(buf: &[u8]) -> Result<Option<(ProxyHeader, usize)>, ProxyError> {
    use ProxyError::V1Malformed as Bad;
    if !starts_like(buf, V1_SIG) {
        return Err(ProxyError::NotProxy);
    }
    let window = &buf[..buf.len().min(V1_MAX)];
    let Some(lf) = window.iter().position(|&b| b == b'\n') else {
        // Refuse early what no more bytes can mend.
        let (last, seen) = window.split_last().expect("starts with P");
        if !seen.iter().all(|&b| is_printable(b)) || !(is_printable(*last) || *last == b'\r') {
            return Err(Bad("a byte that is not printable ASCII"));
        }
        if window.len() > V1_SIG.len() && !known_protocol(&window[V1_SIG.len()..]) {
            return Err(Bad("unknown protocol, not TCP4, TCP6 or UNKNOWN"));
        }
        if window.len() == V1_MAX {
            return Err(ProxyError::V1TooLong);
        }
        return Ok(None);
    };
    let Some(line) = window[..lf].strip_suffix(b"\r") else {
        return Err(Bad("a line ending without CR"));
    };
    if !line.iter().all(|&b| is_printable(b)) {
        return Err(Bad("a byte that is not printable ASCII"));
    }
    let rest = &line[V1_SIG.len().min(line.len())..];
    if let Some(after) = rest.strip_prefix(b"UNKNOWN") {
        // Whatever follows `UNKNOWN ` is to be ignored.
        if !after.is_empty() && after[0] != b' ' {
            return Err(Bad("unknown protocol, not TCP4, TCP6 or UNKNOWN"));
        }
        return Ok(Some((ProxyHeader::NONE, lf + 1)));
    }
    let mut fields = rest.split(|&b| b == b' ');
    let mut field = || fields.next().unwrap_or_default();
    let v6 = match field() {
        b"TCP4" => false,
        b"TCP6" => true,
        _ => return Err(Bad("unknown protocol, not TCP4, TCP6 or UNKNOWN")),
    };
    let (src, dst) = (address(field(), v6)?, address(field(), v6)?);
    let (sport, dport) = (port(field())?, port(field())?);
    if fields.next().is_some() {
        return Err(Bad("more than four fields after the protocol"));
    }
    let header = ProxyHeader {
        source: Some(SocketAddr::new(src, sport)),
        destination: Some(SocketAddr::new(dst, dport)),
    };
    Ok(Some((header, lf + 1)))
}

fn is_printable(b: u8) -> bool {
    (0x20..0x7f).contains(&b)
}

/// Whether the protocol word (so far) is one of the three, and what
/// follows it can follow it.
fn known_protocol(after_sig: &[u8]) -> bool {
    [&b"TCP4 "[..], b"TCP6 ", b"UNKNOWN ", b"UNKNOWN\r"]
        .iter()
        .any(|word| starts_like(after_sig, word))
}

fn address(field: &[u8], v6: bool) -> Result<IpAddr, ProxyError> {
    let text = std::str::from_utf8(field).unwrap_or_default();
    let ip = if v6 {
        text.parse::<Ipv6Addr>().map(IpAddr::V6).ok()
    } else {
        text.parse::<Ipv4Addr>().map(IpAddr::V4).ok()
    };
    ip.ok_or(ProxyError::V1Malformed(if v6 {
        "not an IPv6 address"
    } else {
        "not an IPv4 address"
    }))
}

fn port(field: &[u8]) -> Result<u16, ProxyError> {
    let bad = ProxyError::V1Malformed("not a port (0 to 65535, decimal digits)");
    if field.is_empty() || field.len() > 5 || !field.iter().all(u8::is_ascii_digit) {
        return Err(bad);
    }
    let n = field
        .iter()
        .fold(0u32, |n, &d| n * 10 + u32::from(d - b'0'));
    u16::try_from(n).map_err(|_| bad)
}

/// Commands (low nibble of byte 12).
const LOCAL: u8 = 0x0;
const PROXY: u8 = 0x1;

fn v2(buf: &[u8]) -> Result<Option<(ProxyHeader, usize)>, ProxyError> {
    if !starts_like(buf, V2_SIG) {
        return Err(ProxyError::NotProxy);
    }
    let Some(&ver_cmd) = buf.get(12) else {
        return Ok(None);
    };
    if ver_cmd >> 4 != 2 {
        return Err(ProxyError::V2Version(ver_cmd >> 4));
    }
    let command = ver_cmd & 0x0f;
    if command != LOCAL && command != PROXY {
        return Err(ProxyError::V2Command(command));
    }
    let Some(&fam) = buf.get(13) else {
        return Ok(None);
    };
    // The address block each defined family/transport pair needs; LOCAL
    // ignores the byte altogether.
    let needs = match (command, fam) {
        (LOCAL, _) | (_, 0x00) => 0,
        (_, 0x11 | 0x12) => 12,
        (_, 0x21 | 0x22) => 36,
        (_, 0x31 | 0x32) => 216,
        _ => return Err(ProxyError::V2Family(fam)),
    };
    let Some(len) = buf.get(14..V2_FIXED) else {
        return Ok(None);
    };
    let len = u16::from_be_bytes([len[0], len[1]]);
    let total = V2_FIXED + usize::from(len);
    if total > MAX_HEADER {
        return Err(ProxyError::V2TooLong(total));
    }
    if usize::from(len) < needs {
        return Err(ProxyError::V2ShortAddresses(fam, len));
    }
    let Some(block) = buf.get(V2_FIXED..total) else {
        return Ok(None);
    };
    let header = match (command, fam) {
        (PROXY, 0x11) => {
            let ip = |at: usize| {
                IpAddr::V4(Ipv4Addr::new(
                    block[at],
                    block[at + 1],
                    block[at + 2],
                    block[at + 3],
                ))
            };
            addresses(ip(0), ip(4), &block[8..12])
        }
        (PROXY, 0x21) => {
            let ip = |at: usize| {
                let mut octets = [0; 16];
                octets.copy_from_slice(&block[at..at + 16]);
                IpAddr::V6(Ipv6Addr::from(octets))
            };
            addresses(ip(0), ip(16), &block[32..36])
        }
        _ => ProxyHeader::NONE,
    };
    Ok(Some((header, total)))
}

fn addresses(src: IpAddr, dst: IpAddr, ports: &[u8]) -> ProxyHeader {
    ProxyHeader {
        source: Some(SocketAddr::new(
            src,
            u16::from_be_bytes([ports[0], ports[1]]),
        )),
        destination: Some(SocketAddr::new(
            dst,
            u16::from_be_bytes([ports[2], ports[3]]),
        )),
    }
}

#[cfg(test)]
#[path = "proxy_protocol_tests.rs"]
mod tests;
