//! Switching protocols through the proxy: what goes up and what comes back.

use super::tests::{response, spec};
use super::*;
use crate::http::Method;

fn request(fields: &[(&str, &[u8])]) -> RequestHead {
    let mut h = RequestHead::new(Method::Get, "/chat");
    h.push_header("Host", b"example.com");
    for (n, v) in fields {
        h.push_header(n, v);
    }
    h
}

fn up(head: &RequestHead, upgrade: Option<&[u8]>) -> String {
    let fwd = Forward {
        scheme: "http",
        server_host: "127.0.0.1:9001",
        body: BodyFraming::None,
        via_name: "peregrine",
        upgrade,
    };
    let mut out = Vec::new();
    upstream_request(head, &spec(), &fwd, &mut out);
    String::from_utf8(out).unwrap()
}

#[test]
fn an_upgrade_goes_up_with_its_protocol_only() {
    let head = request(&[
        ("Connection", b"keep-alive, Upgrade"),
        ("Upgrade", b"websocket"),
        ("Sec-WebSocket-Key", b"dGhlIHNhbXBsZSBub25jZQ=="),
        ("Sec-WebSocket-Version", b"13"),
    ]);
    assert_eq!(head.upgrade_requested(), Some(&b"websocket"[..]));
    let text = up(&head, head.upgrade_requested());
    assert!(
        text.contains("\r\nUpgrade: websocket\r\nConnection: upgrade\r\n"),
        "{text}"
    );
    assert!(text.contains("\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"));
    assert!(!text.contains("keep-alive"), "{text}");
    assert_eq!(text.matches("Upgrade:").count(), 1);
    // Without the switch asked for, neither field goes up.
    let text = up(&head, None);
    assert!(
        !text.contains("Upgrade:") && !text.contains("Connection:"),
        "{text}"
    );
    // `Upgrade` without `Connection: upgrade` asks for nothing.
    let head = request(&[("Upgrade", b"websocket")]);
    assert_eq!(head.upgrade_requested(), None);
}

#[test]
fn a_101_names_its_protocol_to_the_client() {
    let h = response(
        Version::Http11,
        101,
        &[
            ("Upgrade", b"websocket"),
            ("Connection", b"Upgrade"),
            ("Sec-WebSocket-Accept", b"s3pPLMBiTxaQ9kYGzzhZRbK+xOo="),
        ],
    );
    let resp = client_response(&h, &spec(), "peregrine");
    assert_eq!(resp.status, 101);
    let get = |n: &str| {
        resp.headers
            .iter()
            .filter(|(k, _)| k.eq_ignore_ascii_case(n))
            .map(|(_, v)| v.to_string())
            .collect::<Vec<_>>()
    };
    assert_eq!(get("upgrade"), ["websocket"]);
    assert_eq!(get("connection"), ["upgrade"]);
    assert_eq!(
        get("sec-websocket-accept"),
        ["s3pPLMBiTxaQ9kYGzzhZRbK+xOo="]
    );
    // Any other status keeps them out.
    let h = response(Version::Http11, 200, &[("Upgrade", b"websocket")]);
    let resp = client_response(&h, &spec(), "peregrine");
    assert!(
        !resp
            .headers
            .iter()
            .any(|(k, _)| k.eq_ignore_ascii_case("upgrade"))
    );
}
