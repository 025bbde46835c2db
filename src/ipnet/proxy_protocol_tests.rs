use std::net::SocketAddr;

use super::*;

fn sa(s: &str) -> Option<SocketAddr> {
    Some(s.parse().unwrap())
}

fn ok(buf: &[u8]) -> (ProxyHeader, usize) {
    match parse(buf) {
        Ok(Some(h)) => h,
        other => panic!("{:?}: {other:?}", String::from_utf8_lossy(buf)),
    }
}

fn err(buf: &[u8]) -> ProxyError {
    match parse(buf) {
        Err(e) => e,
        other => panic!("{:?}: {other:?}", String::from_utf8_lossy(buf)),
    }
}

fn bad(buf: &[u8]) -> &'static str {
    match err(buf) {
        ProxyError::V1Malformed(why) => why,
        e => panic!("{:?}: {e:?}", String::from_utf8_lossy(buf)),
    }
}

/// Every proper prefix is `Ok(None)`; the whole is the header; bytes
/// after it are left alone.
fn whole_and_split(header: &[u8]) -> ProxyHeader {
    for n in 0..header.len() {
        assert_eq!(parse(&header[..n]), Ok(None), "prefix of {n} bytes");
    }
    let (h, used) = ok(header);
    assert_eq!(used, header.len());
    let mut more = header.to_vec();
    more.extend_from_slice(b"GET / HTTP/1.1\r\n\r\n");
    assert_eq!(parse(&more), Ok(Some((h, header.len()))));
    h
}

fn v2(ver_cmd: u8, fam: u8, block: &[u8]) -> Vec<u8> {
    let mut b = V2_SIG.to_vec();
    b.push(ver_cmd);
    b.push(fam);
    b.extend_from_slice(&(block.len() as u16).to_be_bytes());
    b.extend_from_slice(block);
    b
}

const TCP4_BLOCK: [u8; 12] = [192, 0, 2, 1, 198, 51, 100, 2, 0x04, 0x57, 0x08, 0xae];

#[test]
fn v1_tcp4_tcp6_unknown() {
    let h = whole_and_split(b"PROXY TCP4 192.0.2.1 198.51.100.2 1111 2222\r\n");
    assert_eq!(h.source, sa("192.0.2.1:1111"));
    assert_eq!(h.destination, sa("198.51.100.2:2222"));
    let h = whole_and_split(b"PROXY TCP6 2001:db8::1 ::1 0 65535\r\n");
    assert_eq!(h.source, sa("[2001:db8::1]:0"));
    assert_eq!(h.destination, sa("[::1]:65535"));
    assert_eq!(whole_and_split(b"PROXY UNKNOWN\r\n"), ProxyHeader::NONE);
    assert_eq!(
        whole_and_split(b"PROXY UNKNOWN ffff:f::1 ffff:f::2 65535 65535\r\n"),
        ProxyHeader::NONE
    );
}

#[test]
fn v1_longest_line_fits() {
    let line = b"PROXY TCP6 ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff 65535 65535\r\n";
    assert_eq!(line.len(), 104);
    whole_and_split(line);
    // UNKNOWN may carry anything up to the limit.
    let mut line = b"PROXY UNKNOWN ".to_vec();
    line.resize(V1_MAX - 2, b'x');
    line.extend_from_slice(b"\r\n");
    assert_eq!(ok(&line), (ProxyHeader::NONE, V1_MAX));
}

#[test]
fn v1_too_long() {
    let mut line = b"PROXY UNKNOWN ".to_vec();
    line.resize(V1_MAX - 1, b'x');
    assert_eq!(parse(&line), Ok(None));
    line.push(b'\r');
    assert_eq!(err(&line), ProxyError::V1TooLong);
    line.push(b'\n');
    assert_eq!(err(&line), ProxyError::V1TooLong);
}

#[test]
fn v1_strict_fields() {
    let protocol = "unknown protocol, not TCP4, TCP6 or UNKNOWN";
    assert_eq!(bad(b"PROXY TCP5"), protocol, "refused before the CRLF");
    assert_eq!(bad(b"PROXY UNKNOWNx\r\n"), protocol);
    assert_eq!(bad(b"PROXY UNKNOWNx"), protocol, "refused before the CRLF");
    assert_eq!(bad(b"PROXY TCP4\r"), protocol, "refused before the CRLF");
    assert_eq!(bad(b"PROXY \r\n"), protocol);
    assert_eq!(bad(b"PROXY  TCP4 1.2.3.4 5.6.7.8 1 2\r\n"), protocol);
    assert_eq!(bad(b"PROXY tcp4 1.2.3.4 5.6.7.8 1 2\r\n"), protocol);
    let v4 = "not an IPv4 address";
    assert_eq!(bad(b"PROXY TCP4 1.2.3.4  5.6.7.8 1 2\r\n"), v4);
    assert_eq!(bad(b"PROXY TCP4 ::1 5.6.7.8 1 2\r\n"), v4);
    assert_eq!(bad(b"PROXY TCP4 1.2.3.4 5.6.7 1 2\r\n"), v4);
    assert_eq!(bad(b"PROXY TCP4 01.2.3.4 5.6.7.8 1 2\r\n"), v4);
    assert_eq!(bad(b"PROXY TCP4 1.2.3.4\r\n"), v4);
    assert_eq!(
        bad(b"PROXY TCP6 1.2.3.4 ::1 1 2\r\n"),
        "not an IPv6 address"
    );
    let port = "not a port (0 to 65535, decimal digits)";
    assert_eq!(bad(b"PROXY TCP4 1.2.3.4 5.6.7.8 +1 2\r\n"), port);
    assert_eq!(bad(b"PROXY TCP4 1.2.3.4 5.6.7.8 1 65536\r\n"), port);
    assert_eq!(bad(b"PROXY TCP4 1.2.3.4 5.6.7.8 1 100000\r\n"), port);
    assert_eq!(bad(b"PROXY TCP4 1.2.3.4 5.6.7.8 1 -1\r\n"), port);
    assert_eq!(bad(b"PROXY TCP4 1.2.3.4 5.6.7.8 1\r\n"), port);
    assert_eq!(bad(b"PROXY TCP4 1.2.3.4 5.6.7.8 1 \r\n"), port);
    assert_eq!(bad(b"PROXY TCP4 1.2.3.4 5.6.7.8 1 0x2\r\n"), port);
    assert_eq!(
        bad(b"PROXY TCP4 1.2.3.4 5.6.7.8 1 2 3\r\n"),
        "more than four fields after the protocol"
    );
    assert_eq!(
        bad(b"PROXY TCP4 1.2.3.4 5.6.7.8 1 2 \r\n"),
        "more than four fields after the protocol"
    );
}

#[test]
fn v1_line_bytes() {
    assert_eq!(
        bad(b"PROXY TCP4 1.2.3.4 5.6.7.8 1 2\n"),
        "a line ending without CR"
    );
    assert_eq!(bad(b"PROXY \n"), "a line ending without CR");
    let np = "a byte that is not printable ASCII";
    assert_eq!(bad(b"PROXY TCP4\t"), np, "refused before the CRLF");
    assert_eq!(bad(b"PROXY TCP4 1.2\r.3"), np, "a CR not before LF");
    assert_eq!(bad(b"PROXY UNKNOWN \xff\r\n"), np);
    assert_eq!(bad(b"PROXY UNKNOWN \x00\r\n"), np);
    assert_eq!(bad(b"PROXY TCP4 1.2.3.4\r\r\n"), np);
    assert_eq!(parse(b"PROXY TCP4 1.2.3.4 5.6.7.8 1 2\r"), Ok(None));
}

#[test]
fn not_a_header_is_refused_at_once() {
    assert_eq!(parse(b""), Ok(None));
    assert_eq!(parse(b"P"), Ok(None));
    assert_eq!(parse(b"\r\n\r\n\0"), Ok(None));
    for buf in [
        &b"G"[..],
        b"GET / HTTP/1.1\r\n",
        b"PRI * HTTP/2.0",
        b"\x16\x03\x01",
        b"PROXY\t",
        b"proxy ",
        b"\r\n\r\n\r",
        b"\r\n\r\n\0\r\nQUIT\r",
        b"\n",
    ] {
        assert_eq!(err(buf), ProxyError::NotProxy, "{buf:?}");
    }
}

#[test]
fn v2_tcp4_and_tcp6() {
    let h = whole_and_split(&v2(0x21, 0x11, &TCP4_BLOCK));
    assert_eq!(h.source, sa("192.0.2.1:1111"));
    assert_eq!(h.destination, sa("198.51.100.2:2222"));

    let mut block = Vec::new();
    block.extend_from_slice(&"2001:db8::1".parse::<Ipv6Addr>().unwrap().octets());
    block.extend_from_slice(&"::1".parse::<Ipv6Addr>().unwrap().octets());
    block.extend_from_slice(&[0, 80, 0xff, 0xff]);
    let h = whole_and_split(&v2(0x21, 0x21, &block));
    assert_eq!(h.source, sa("[2001:db8::1]:80"));
    assert_eq!(h.destination, sa("[::1]:65535"));
}

#[test]
fn v2_extensions_are_skipped() {
    let mut block = TCP4_BLOCK.to_vec();
    // PP2_TYPE_ALPN "h2", PP2_TYPE_NOOP of 3 bytes.
    block.extend_from_slice(&[0x01, 0x00, 0x02, b'h', b'2', 0x04, 0x00, 0x03, 0, 0, 0]);
    let h = whole_and_split(&v2(0x21, 0x11, &block));
    assert_eq!(h.source, sa("192.0.2.1:1111"));
    // Even bytes that are not well-formed extensions.
    let mut block = TCP4_BLOCK.to_vec();
    block.push(0xee);
    let (h, used) = ok(&v2(0x21, 0x11, &block));
    assert_eq!((h.source, used), (sa("192.0.2.1:1111"), 29));
}

#[test]
fn v2_without_usable_addresses() {
    // LOCAL: anything in the family byte, any length.
    assert_eq!(whole_and_split(&v2(0x20, 0x00, &[])), ProxyHeader::NONE);
    assert_eq!(
        whole_and_split(&v2(0x20, 0x11, &TCP4_BLOCK)),
        ProxyHeader::NONE
    );
    assert_eq!(whole_and_split(&v2(0x20, 0xff, &[1, 2])), ProxyHeader::NONE);
    // PROXY over UNSPEC, datagrams, UNIX sockets.
    assert_eq!(whole_and_split(&v2(0x21, 0x00, &[])), ProxyHeader::NONE);
    assert_eq!(
        whole_and_split(&v2(0x21, 0x00, &[9; 20])),
        ProxyHeader::NONE
    );
    assert_eq!(
        whole_and_split(&v2(0x21, 0x12, &TCP4_BLOCK)),
        ProxyHeader::NONE
    );
    assert_eq!(
        whole_and_split(&v2(0x21, 0x22, &[0; 36])),
        ProxyHeader::NONE
    );
    assert_eq!(
        whole_and_split(&v2(0x21, 0x31, &[0; 216])),
        ProxyHeader::NONE
    );
    assert_eq!(
        whole_and_split(&v2(0x21, 0x32, &[0; 220])),
        ProxyHeader::NONE
    );
}

#[test]
fn v2_refusals_come_early() {
    // Each is refused from the byte that decides it, before the rest.
    let head = |ver_cmd: u8, fam: u8| {
        let mut b = V2_SIG.to_vec();
        b.extend_from_slice(&[ver_cmd, fam]);
        b
    };
    assert_eq!(err(&head(0x11, 0x11)[..13]), ProxyError::V2Version(1));
    assert_eq!(err(&head(0x31, 0x11)[..13]), ProxyError::V2Version(3));
    assert_eq!(err(&head(0x22, 0x11)[..13]), ProxyError::V2Command(2));
    assert_eq!(err(&head(0x2f, 0x11)[..13]), ProxyError::V2Command(0xf));
    for fam in [0x01, 0x13, 0x23, 0x30, 0x41, 0x10, 0xff] {
        assert_eq!(err(&head(0x21, fam)), ProxyError::V2Family(fam), "{fam:#x}");
    }
    let mut b = head(0x21, 0x11);
    b.extend_from_slice(&11u16.to_be_bytes());
    assert_eq!(err(&b), ProxyError::V2ShortAddresses(0x11, 11));
    let mut b = head(0x21, 0x21);
    b.extend_from_slice(&35u16.to_be_bytes());
    b.extend_from_slice(&[0; 35]);
    assert_eq!(err(&b), ProxyError::V2ShortAddresses(0x21, 35));
    let mut b = head(0x21, 0x31);
    b.extend_from_slice(&215u16.to_be_bytes());
    assert_eq!(err(&b), ProxyError::V2ShortAddresses(0x31, 215));
}

#[test]
fn v2_length_limit() {
    let fits = MAX_HEADER - V2_FIXED;
    let h = v2(0x21, 0x11, &[0; MAX_HEADER - V2_FIXED]);
    assert_eq!(ok(&h), (ProxyHeader { ..ok(&h).0 }, MAX_HEADER));
    assert_eq!(parse(&h[..MAX_HEADER - 1]), Ok(None));
    let mut b = V2_SIG.to_vec();
    b.extend_from_slice(&[0x20, 0x00]);
    b.extend_from_slice(&((fits + 1) as u16).to_be_bytes());
    assert_eq!(err(&b), ProxyError::V2TooLong(MAX_HEADER + 1));
    b.truncate(14);
    b.extend_from_slice(&[0xff, 0xff]);
    assert_eq!(err(&b), ProxyError::V2TooLong(V2_FIXED + 65535));
}

#[test]
fn errors_read_as_sentences() {
    assert_eq!(
        ProxyError::NotProxy.to_string(),
        "not a PROXY protocol header"
    );
    assert_eq!(
        ProxyError::V1TooLong.to_string(),
        "PROXY v1 header without CRLF within 107 bytes"
    );
    assert_eq!(
        ProxyError::V1Malformed("not a port").to_string(),
        "malformed PROXY v1 header: not a port"
    );
    assert_eq!(
        ProxyError::V2Version(1).to_string(),
        "PROXY v2 header with version 1, not 2"
    );
    assert_eq!(
        ProxyError::V2Command(3).to_string(),
        "PROXY v2 header with unknown command 0x3"
    );
    assert_eq!(
        ProxyError::V2Family(0x41).to_string(),
        "PROXY v2 header with unknown family and transport 0x41"
    );
    assert_eq!(
        ProxyError::V2TooLong(600).to_string(),
        "PROXY v2 header of 600 bytes, more than the 536 allowed"
    );
    assert_eq!(
        ProxyError::V2ShortAddresses(0x11, 4).to_string(),
        "PROXY v2 header of family 0x11 with 4 bytes, too few for its addresses"
    );
}

/// Random bytes near valid headers: no panic, and what the fuzz target
/// checks holds.
#[test]
fn mutations_keep_the_invariants() {
    let seeds: [Vec<u8>; 4] = [
        b"PROXY TCP4 192.0.2.1 198.51.100.2 1111 2222\r\nGET".to_vec(),
        b"PROXY TCP6 2001:db8::1 ::1 0 65535\r\n".to_vec(),
        v2(0x21, 0x11, &TCP4_BLOCK),
        v2(0x21, 0x21, &[7; 40]),
    ];
    let mut x = 0x0123_4567_89ab_cdef_u64;
    let mut rnd = || {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        x
    };
    for _ in 0..5000 {
        let mut b = seeds[(rnd() % 4) as usize].clone();
        for _ in 0..(rnd() % 4) {
            let i = (rnd() % b.len() as u64) as usize;
            b[i] = rnd() as u8;
        }
        b.truncate((rnd() % (b.len() as u64 + 1)) as usize);
        match parse(&b) {
            Ok(Some((h, n))) => {
                assert!(n <= b.len() && n <= MAX_HEADER);
                assert_eq!(h.source.is_some(), h.destination.is_some());
                assert_eq!(parse(&b[..n]), Ok(Some((h, n))));
            }
            Ok(None) => assert!(b.len() < MAX_HEADER),
            Err(_) => {
                b.extend_from_slice(b"\r\n");
                assert!(parse(&b).is_err(), "more bytes do not mend it");
            }
        }
    }
}
