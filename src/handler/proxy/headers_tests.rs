use super::*;
use crate::http::Method;
use crate::http::encode::{Framing, Persist, SERVER, encode_head};
use crate::http::parse::{header_buf, parse_head};
use crate::upstream::spec::Cidr;

pub(super) fn spec() -> ProxySpec {
    ProxySpec {
        upstream: "app".into(),
        preserve_host: true,
        strip_prefix: String::new(),
        prefix: String::new(),
        header_up: HeaderOps::default(),
        header_down: HeaderOps::default(),
        trusted_proxies: vec![Cidr {
            addr: "10.0.0.0".parse().unwrap(),
            prefix: 8,
        }],
        forwarded: false,
        via: false,
        buffer_response: false,
        max_memory: 64 * 1024,
        connect: false,
    }
}

fn ops(set: &[(&str, &str)], add: &[(&str, &str)], remove: &[&str]) -> HeaderOps {
    let own = |l: &[(&str, &str)]| {
        l.iter()
            .map(|(n, v)| (n.to_string(), v.to_string()))
            .collect()
    };
    HeaderOps {
        set: own(set),
        add: own(add),
        remove: remove.iter().map(|n| n.to_string()).collect(),
    }
}

const CTX: Forward<'static> = Forward {
    scheme: "http",
    server_host: "127.0.0.1:9001",
    body: BodyFraming::None,
    via_name: "peregrine",
    upgrade: None,
};

const UNTRUSTED: &str = "203.0.113.7:5000";
const TRUSTED: &str = "10.0.0.2:5000";

/// A request from `peer` with the `Name: value` lines of `fields`.
fn req(target: &str, peer: &str, fields: &str) -> RequestHead {
    let mut h = RequestHead::new(Method::Get, target);
    h.peer = Some(peer.parse().unwrap());
    for (n, v) in fields.lines().filter_map(|l| l.split_once(": ")) {
        if n.eq_ignore_ascii_case("host") {
            h.set_host(v.as_bytes());
        }
        h.push_header(n, v.as_bytes());
    }
    h
}

fn up(head: &RequestHead, spec: &ProxySpec, ctx: &Forward<'_>) -> String {
    let mut out = Vec::new();
    upstream_request(head, spec, ctx, &mut out);
    String::from_utf8(out).unwrap()
}

/// The header section after the request line, without the blank line.
fn fields(head: &RequestHead, spec: &ProxySpec, ctx: &Forward<'_>) -> String {
    let s = up(head, spec, ctx);
    let start = s.find("\r\n").unwrap() + 2;
    s[start..].strip_suffix("\r\n\r\n").unwrap().to_string()
}

fn line_of(head: &RequestHead, spec: &ProxySpec) -> String {
    let s = up(head, spec, &CTX);
    s[..s.find("\r\n").unwrap()].to_string()
}

#[test]
fn a_plain_request() {
    let h = req("/x", UNTRUSTED, "Host: example.com\nUser-Agent: t");
    let mut out = b"kept".to_vec();
    upstream_request(&h, &spec(), &CTX, &mut out);
    assert_eq!(
        String::from_utf8(out).unwrap(),
        "keptGET /x HTTP/1.1\r\nHost: example.com\r\nUser-Agent: t\r\n\
         X-Forwarded-For: 203.0.113.7\r\nX-Forwarded-Proto: http\r\n\
         X-Forwarded-Host: example.com\r\n\r\n"
    );
}

#[test]
fn strip_prefix_and_prefix() {
    let cases = [
        ("/api", "", "/api/x?q", "/x?q"),
        ("/api", "", "/api", "/"),
        ("/api", "", "/api?q=1", "/?q=1"),
        ("/api", "", "/api/", "/"),
        ("/api", "", "/apix", "/apix"),
        ("/api", "", "/other/api", "/other/api"),
        ("/api/", "", "/api/x", "/x"),
        ("/", "", "/x", "/x"),
        ("", "/v2", "/x", "/v2/x"),
        ("", "/v2/", "/x", "/v2/x"),
        ("", "/v2", "/", "/v2/"),
        ("", "v2", "/x", "/v2/x"),
        ("/api", "/v2", "/api/x?a=%20&b", "/v2/x?a=%20&b"),
        ("/api", "/v2", "/api", "/v2/"),
        ("/api", "/v2", "/apix", "/v2/apix"),
        ("", "", "/x?", "/x?"),
        ("/api", "/v2", "*", "*"),
    ];
    for (strip, prefix, target, sent) in cases {
        let s = ProxySpec {
            strip_prefix: strip.into(),
            prefix: prefix.into(),
            ..spec()
        };
        let h = req(target, UNTRUSTED, "");
        assert_eq!(
            line_of(&h, &s),
            format!("GET {sent} HTTP/1.1"),
            "{strip:?} {prefix:?} {target:?}"
        );
    }
}

#[test]
fn absolute_form_goes_up_in_origin_form() {
    let mut h = RequestHead::new(Method::Post, "/");
    h.clear();
    let target = "http://example.com/p?q";
    h.set_parts(
        target,
        &target[18..20],
        Some(&target[21..]),
        Some(b"example.com"),
    );
    h.version = Version::Http10;
    assert_eq!(
        up(&h, &spec(), &CTX),
        "POST /p?q HTTP/1.1\r\nHost: example.com\r\nX-Forwarded-Proto: http\r\n\
         X-Forwarded-Host: example.com\r\n\r\n"
    );
}

#[test]
fn host() {
    let with = req("/", UNTRUSTED, "Host: example.com");
    let without = req("/", UNTRUSTED, "");
    let keep = spec();
    let server = ProxySpec {
        preserve_host: false,
        ..spec()
    };
    let first =
        |h: &RequestHead, s: &ProxySpec| fields(h, s, &CTX).lines().next().unwrap().to_string();
    assert_eq!(first(&with, &keep), "Host: example.com");
    assert_eq!(first(&without, &keep), "Host: 127.0.0.1:9001");
    assert_eq!(first(&with, &server), "Host: 127.0.0.1:9001");
    // The client's host still goes up as X-Forwarded-Host.
    assert!(fields(&with, &server, &CTX).ends_with("X-Forwarded-Host: example.com"));
    assert!(!fields(&without, &server, &CTX).contains("X-Forwarded-Host"));
}

#[test]
fn hop_by_hop_and_connection_listed_fields_are_dropped() {
    let h = req(
        "/",
        UNTRUSTED,
        "Host: h\nConnection: keep-alive, X-Secret\nconnection:  x-OTHER ,,Upgrade\n\
        Keep-Alive: timeout=5\nProxy-Connection: keep-alive\nTE: trailers\n\
        Transfer-Encoding: chunked\nUpgrade: websocket\nProxy-Authorization: Basic x\n\
        Trailer: X-Sum\nContent-Length: 99\nExpect: 100-continue\nX-Secret: 1\nX-Other: 2\n\
        X-Kept: 3\nAuthorization: Bearer t",
    );
    assert_eq!(
        fields(&h, &spec(), &CTX),
        "Host: h\r\nX-Kept: 3\r\nAuthorization: Bearer t\r\n\
         X-Forwarded-For: 203.0.113.7\r\nX-Forwarded-Proto: http\r\nX-Forwarded-Host: h"
    );
}

#[test]
fn helpers() {
    for n in [
        "Connection",
        "keep-alive",
        "TE",
        "Trailer",
        "upgrade",
        "Proxy-Authenticate",
    ] {
        assert!(is_hop_by_hop(n), "{n}");
    }
    for n in ["Trailers", "Host", "Content-Length", "Via", "Connections"] {
        assert!(!is_hop_by_hop(n), "{n}");
    }
    let values: [&[u8]; 2] = [b"close, X-A", b" x-b\t, "];
    assert!(connection_listed(values, "x-a"));
    assert!(connection_listed(values, "X-B"));
    assert!(connection_listed(values, "Close"));
    assert!(!connection_listed(values, "x"));
    assert!(!connection_listed(values, ""));
    assert!(!connection_listed([], "close"));
}

#[test]
fn forwarded_for_from_an_untrusted_peer_is_replaced() {
    let h = req(
        "/",
        UNTRUSTED,
        "Host: h\nX-Forwarded-For: 1.1.1.1\nX-Forwarded-Proto: https\nX-Forwarded-Host: evil\n\
        Forwarded: for=1.1.1.1",
    );
    let s = ProxySpec {
        forwarded: true,
        ..spec()
    };
    assert_eq!(
        fields(&h, &s, &CTX),
        "Host: h\r\nX-Forwarded-For: 203.0.113.7\r\nX-Forwarded-Proto: http\r\n\
         X-Forwarded-Host: h\r\nForwarded: for=203.0.113.7;proto=http;host=h"
    );
}

#[test]
fn forwarded_for_from_a_trusted_peer_is_extended() {
    let h = req(
        "/",
        TRUSTED,
        "Host: h\nX-Forwarded-For: 198.51.100.1\nx-forwarded-for:  198.51.100.2, 10.0.0.1 \n\
        X-Forwarded-Proto: https\nX-Forwarded-Host: example.com\n\
        Forwarded: for=198.51.100.1;proto=https",
    );
    let s = ProxySpec {
        forwarded: true,
        ..spec()
    };
    assert_eq!(
        fields(&h, &s, &CTX),
        "Host: h\r\nX-Forwarded-For: 198.51.100.1, 198.51.100.2, 10.0.0.1, 10.0.0.2\r\n\
         X-Forwarded-Proto: https\r\nX-Forwarded-Host: example.com\r\n\
         Forwarded: for=198.51.100.1;proto=https, for=10.0.0.2;proto=http;host=h"
    );
    // A trusted peer that sent none: written as from any peer.
    let h = req("/", TRUSTED, "Host: h\nX-Forwarded-For:  ");
    assert_eq!(
        fields(&h, &spec(), &CTX),
        "Host: h\r\nX-Forwarded-For: 10.0.0.2\r\nX-Forwarded-Proto: http\r\nX-Forwarded-Host: h"
    );
    // Fields the trusted peer lists in Connection are not taken from it.
    let h = req(
        "/",
        TRUSTED,
        "Connection: X-Forwarded-For\nX-Forwarded-For: 1.1.1.1\nX-Forwarded-Proto: https",
    );
    assert_eq!(
        fields(&h, &spec(), &CTX),
        "Host: 127.0.0.1:9001\r\nX-Forwarded-For: 10.0.0.2\r\nX-Forwarded-Proto: https"
    );
}

#[test]
fn peers_in_ipv6_and_mapped_ipv4() {
    let s = ProxySpec {
        forwarded: true,
        ..spec()
    };
    let https = Forward {
        scheme: "https",
        ..CTX
    };
    let h = req("/", "[2001:db8::1]:443", "Host: example.com:8443");
    assert_eq!(
        fields(&h, &s, &https),
        "Host: example.com:8443\r\nX-Forwarded-For: 2001:db8::1\r\nX-Forwarded-Proto: https\r\n\
         X-Forwarded-Host: example.com:8443\r\n\
         Forwarded: for=\"[2001:db8::1]\";proto=https;host=\"example.com:8443\""
    );
    let h = req("/", "[::ffff:10.0.0.2]:1", "X-Forwarded-For: 1.1.1.1");
    assert_eq!(
        fields(&h, &s, &CTX),
        "Host: 127.0.0.1:9001\r\nX-Forwarded-For: 1.1.1.1, 10.0.0.2\r\nX-Forwarded-Proto: http\r\n\
         Forwarded: for=10.0.0.2;proto=http"
    );
    // No peer known: no X-Forwarded-For, and an obfuscated node.
    let mut h = req("/", UNTRUSTED, "X-Forwarded-For: 1.1.1.1");
    h.peer = None;
    assert_eq!(
        fields(&h, &s, &CTX),
        "Host: 127.0.0.1:9001\r\nX-Forwarded-Proto: http\r\nForwarded: for=unknown;proto=http"
    );
}

#[test]
fn forwarded_host_is_quoted_and_escaped() {
    let mut o = Vec::new();
    forwarded_element(&mut o, None, "http", Some("a\"b\\c"));
    assert_eq!(o, b"for=unknown;proto=http;host=\"a\\\"b\\\\c\"");
}

#[test]
fn via() {
    let s = ProxySpec {
        via: true,
        ..spec()
    };
    let mut h = req("/", UNTRUSTED, "Host: h\nVia: 1.1 edge");
    assert_eq!(
        fields(&h, &s, &CTX),
        "Host: h\r\nVia: 1.1 edge\r\nX-Forwarded-For: 203.0.113.7\r\nX-Forwarded-Proto: http\r\n\
         X-Forwarded-Host: h\r\nVia: 1.1 peregrine"
    );
    h.version = Version::Http10;
    assert!(fields(&h, &s, &CTX).ends_with("\r\nVia: 1.0 peregrine"));
}

#[test]
fn header_up_rules() {
    let s = ProxySpec {
        preserve_host: false,
        header_up: ops(
            &[
                ("X-A", "set"),
                ("Host", "backend.internal"),
                ("X-New", "n"),
                ("X-Forwarded-Proto", "https"),
                ("Connection", "close"),
                ("content-length", "1"),
                ("X-Bad", "a\r\nInjected: 1"),
            ],
            &[
                ("X-A", "added"),
                ("X-Removed", "again"),
                ("Transfer-Encoding", "chunked"),
                ("Bad Name", "x"),
            ],
            &["user-agent", "X-Removed", "x-forwarded-host", "Host", "x-a"],
        ),
        ..spec()
    };
    let h = req(
        "/",
        UNTRUSTED,
        "Host: example.com\nUser-Agent: t\nx-a: 1\nX-Removed: r\nX-A: 2\nAccept: */*",
    );
    assert_eq!(
        fields(&h, &s, &CTX),
        "Host: backend.internal\r\nX-A: set\r\nAccept: */*\r\nX-Forwarded-For: 203.0.113.7\r\n\
         X-Forwarded-Proto: https\r\nX-New: n\r\nX-A: added\r\nX-Removed: again"
    );
}

#[test]
fn framing() {
    let h = req(
        "/",
        UNTRUSTED,
        "Content-Length: 99\nTransfer-Encoding: chunked",
    );
    let base = "Host: 127.0.0.1:9001\r\nX-Forwarded-For: 203.0.113.7\r\nX-Forwarded-Proto: http";
    let framed = |body| fields(&h, &spec(), &Forward { body, ..CTX });
    assert_eq!(framed(BodyFraming::None), base);
    assert_eq!(
        framed(BodyFraming::Length(5)),
        format!("{base}\r\nContent-Length: 5")
    );
    assert_eq!(
        framed(BodyFraming::Chunked),
        format!("{base}\r\nTransfer-Encoding: chunked")
    );
}

#[test]
fn values_that_would_break_the_head_are_left_out() {
    let mut h = req("/", UNTRUSTED, "Host: h");
    h.push_header("X-Cr", b"a\rb");
    h.push_header("X-Lf", b"a\nb");
    h.push_header("X-Nul", b"a\0b");
    h.push_header("Bad Name", b"x");
    h.push_header("X-Latin", b"caf\xe9");
    let mut out = Vec::new();
    upstream_request(&h, &spec(), &CTX, &mut out);
    assert_eq!(
        out,
        &b"GET / HTTP/1.1\r\nHost: h\r\nX-Latin: caf\xe9\r\nX-Forwarded-For: 203.0.113.7\r\n\
           X-Forwarded-Proto: http\r\nX-Forwarded-Host: h\r\n\r\n"[..]
    );
    // A host that would break the head is not written either.
    let h = req("/", UNTRUSTED, "");
    let s = ProxySpec {
        preserve_host: false,
        ..spec()
    };
    let ctx = Forward {
        server_host: "h\r\nX: 1",
        ..CTX
    };
    assert!(!up(&h, &s, &ctx).contains("X: 1"));
}

#[test]
fn the_head_sent_up_parses() {
    let h = req(
        "/api/x?y=1",
        TRUSTED,
        "Host: example.com\nX-Forwarded-For: 1.1.1.1",
    );
    let s = ProxySpec {
        strip_prefix: "/api".into(),
        forwarded: true,
        via: true,
        ..spec()
    };
    let mut out = Vec::new();
    upstream_request(
        &h,
        &s,
        &Forward {
            body: BodyFraming::Length(2),
            ..CTX
        },
        &mut out,
    );
    out.extend_from_slice(b"hi");
    let mut storage = header_buf();
    let head = parse_head(&out, &mut storage, &Default::default())
        .unwrap()
        .expect("complete head");
    assert_eq!(head.req.path, "/x");
    assert_eq!(head.req.host, Some(&b"example.com"[..]));
    assert_eq!(head.framing, crate::http::parse::Framing::Length(2));
    assert_eq!(&out[head.len..], b"hi");
}

pub(super) fn response(version: Version, status: u16, fields: &[(&str, &[u8])]) -> ResponseHead {
    let mut h = ResponseHead::new(version, status, "Whatever");
    for (n, v) in fields {
        h.push_header(n, v);
    }
    h
}

fn encoded(resp: &Response) -> String {
    let mut out = Vec::new();
    encode_head(
        &mut out,
        resp,
        b"Sun, 06 Nov 1994 08:49:37 GMT",
        b"",
        Persist::KeepAlive,
        Framing::Chunked,
    );
    String::from_utf8(out).unwrap()
}

#[test]
fn a_plain_response() {
    let up = response(
        Version::Http11,
        200,
        &[
            ("Content-Type", b"text/plain"),
            ("Content-Length", b"5"),
            ("Date", b"Mon, 01 Jan 2024 00:00:00 GMT"),
            ("Server", b"gunicorn"),
            ("X-Upstream", b"a"),
            ("Set-Cookie", b"a=1"),
            ("set-cookie", b"b=2"),
        ],
    );
    let r = client_response(&up, &spec(), "peregrine");
    assert_eq!(
        encoded(&r),
        format!(
            "HTTP/1.1 200 OK\r\nServer: {SERVER}\r\nDate: Sun, 06 Nov 1994 08:49:37 GMT\r\n\
             Content-Type: text/plain\r\nX-Upstream: a\r\nSet-Cookie: a=1\r\nset-cookie: b=2\r\n\
             Transfer-Encoding: chunked\r\n\r\n"
        )
    );
}

#[test]
fn response_hop_by_hop_fields_are_dropped() {
    let up = response(
        Version::Http11,
        404,
        &[
            ("Connection", b"keep-alive, X-Hop"),
            ("Keep-Alive", b"timeout=5"),
            ("Transfer-Encoding", b"chunked"),
            ("Proxy-Authenticate", b"Basic"),
            ("Trailer", b"X-Sum"),
            ("Upgrade", b"h2c"),
            ("X-Hop", b"1"),
            ("X-Kept", b"2"),
            ("X-Latin", b"caf\xe9"),
            ("Content-Type", b"text/html"),
            ("Content-Type", b"text/plain"),
        ],
    );
    let r = client_response(&up, &spec(), "peregrine");
    assert_eq!(r.status(), 404);
    assert_eq!(
        encoded(&r),
        format!(
            "HTTP/1.1 404 Not Found\r\nServer: {SERVER}\r\nDate: Sun, 06 Nov 1994 08:49:37 GMT\r\n\
             Content-Type: text/html\r\nX-Kept: 2\r\nTransfer-Encoding: chunked\r\n\r\n"
        )
    );
}

#[test]
fn response_via() {
    let s = ProxySpec {
        via: true,
        ..spec()
    };
    let up = response(Version::Http10, 200, &[("Via", b"1.1 app")]);
    let r = client_response(&up, &s, "edge");
    assert_eq!(
        r.headers,
        [
            ("Via".into(), "1.1 app".into()),
            ("Via".into(), "1.0 edge".into())
        ]
    );
}

#[test]
fn header_down_rules() {
    let s = ProxySpec {
        header_down: ops(
            &[
                ("X-A", "set"),
                ("Content-Type", "application/json"),
                ("Server", "other"),
                ("Date", "never"),
                ("Connection", "close"),
                ("Content-Length", "1"),
                ("X-Bad", "a\nb"),
            ],
            &[
                ("X-A", "added"),
                ("X-Removed", "again"),
                ("Content-Type", "text/plain"),
                ("Bad Name", "x"),
            ],
            &["x-removed", "X-Powered-By"],
        ),
        ..spec()
    };
    let up = response(
        Version::Http11,
        201,
        &[
            ("x-a", b"1"),
            ("X-Powered-By", b"php"),
            ("X-Removed", b"r"),
            ("X-Kept", b"k"),
            ("Content-Type", b"text/html"),
            ("X-A", b"2"),
        ],
    );
    let r = client_response(&up, &s, "peregrine");
    assert_eq!(
        encoded(&r),
        format!(
            "HTTP/1.1 201 Created\r\nServer: {SERVER}\r\nDate: Sun, 06 Nov 1994 08:49:37 GMT\r\n\
             Content-Type: application/json\r\nX-Kept: k\r\nX-A: set\r\nX-A: added\r\n\
             X-Removed: again\r\nTransfer-Encoding: chunked\r\n\r\n"
        )
    );
}

#[test]
fn an_impossible_status_is_a_bad_gateway() {
    let up = response(Version::Http11, 42, &[]);
    assert_eq!(client_response(&up, &spec(), "p").status(), 502);
}
