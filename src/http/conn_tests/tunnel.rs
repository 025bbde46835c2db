//! Switching protocols: after a `101` (or a 2xx to a `CONNECT`) the
//! connection carries bytes through to the handler and back, unframed,
//! until either side ends it.

use super::*;

const SWITCH: &[u8] =
    b"GET /switch HTTP/1.1\r\nHost: x\r\nConnection: keep-alive, Upgrade\r\nUpgrade: echo\r\n\r\n";

#[test]
fn a_switch_carries_bytes_both_ways_unframed() {
    let mut h = Harness::new();
    // Bytes sent right behind the head belong to the new protocol.
    let mut input = SWITCH.to_vec();
    input.extend_from_slice(b"early ");
    assert!(matches!(h.feed(&input), Step::NeedInput));
    let out = h.take();
    let (head, rest) = out.split_once("\r\n\r\n").expect("a head");
    assert!(head.starts_with("HTTP/1.1 101 "), "{head}");
    assert!(head.contains("\r\nUpgrade: echo"), "{head}");
    assert!(head.contains("\r\nConnection: upgrade"), "{head}");
    assert!(!head.contains("Content-Length") && !head.contains("Transfer-Encoding"));
    assert!(!head.contains("Connection: close"), "{head}");
    assert_eq!(rest, "early ");
    assert!(h.conn.is_tunnel());
    assert_eq!(h.conn.waiting(), Waiting::Handler);
    // What looks like a request is just bytes now.
    let _ = h.feed(b"GET / HTTP/1.1\r\n\r\n");
    assert_eq!(h.take(), "GET / HTTP/1.1\r\n\r\n");
    assert_eq!(h.svc.calls, 1);
    // The client going away ends it; the stream is reported with its bytes.
    h.conn.abandon(&mut h.obs);
    h.conn.finish();
    assert!(h.conn.is_closed());
    assert_eq!(h.obs.streams.len(), 1);
    assert_eq!(h.obs.streams[0].1, 24);
}

#[test]
fn a_switch_nobody_asked_for_is_refused() {
    let mut h = Harness::new();
    // No Upgrade field: the handler's 101 becomes a 502 and the connection
    // closes.
    let step = h.feed(b"GET /switch HTTP/1.1\r\nHost: x\r\n\r\n");
    assert!(matches!(step, Step::Close));
    let out = h.take();
    assert!(out.starts_with("HTTP/1.1 502 "), "{out}");
    assert!(!h.conn.is_tunnel());
    // HTTP/1.0 cannot switch either.
    let mut h = Harness::new();
    let step =
        h.feed(b"GET /switch HTTP/1.0\r\nHost: x\r\nConnection: upgrade\r\nUpgrade: echo\r\n\r\n");
    assert!(matches!(step, Step::Close));
    assert!(h.take().starts_with("HTTP/1.1 502 "));
}

#[test]
fn backpressure_holds_tunnel_input() {
    let mut h = Harness::new();
    let _ = h.feed(SWITCH);
    let _ = h.take();
    // The echo takes at most what the output allows per call; a huge burst
    // is held, not lost.
    let burst = vec![b'a'; 300 * 1024];
    let mut got = 0;
    let mut step = h.feed(&burst);
    for _ in 0..100 {
        got += h.take().len();
        if got == burst.len() {
            break;
        }
        step = h.feed(b"");
    }
    assert!(matches!(step, Step::NeedInput | Step::Flush));
    assert_eq!(got, burst.len());
    assert_eq!(h.conn.buffered(), 0);
}

fn connecting() -> Harness {
    let mut h = Harness::new();
    h.svc.connect = true;
    h
}

#[test]
fn a_connect_switches_on_2xx() {
    let mut h = connecting();
    let step = h.feed(b"CONNECT ok:1 HTTP/1.1\r\nHost: ok:1\r\n\r\nearly ");
    assert!(matches!(step, Step::NeedInput));
    let out = h.take();
    let (head, rest) = out.split_once("\r\n\r\n").expect("a head");
    assert!(head.starts_with("HTTP/1.1 200 "), "{head}");
    // RFC 9110 §9.3.6: no framing fields in a 2xx to CONNECT.
    assert!(!head.contains("Content-Length") && !head.contains("Transfer-Encoding"));
    assert!(!head.contains("Connection:"), "{head}");
    assert_eq!(rest, "early ");
    assert!(h.conn.is_tunnel());
    let _ = h.feed(b"GET / HTTP/1.1\r\n\r\n");
    assert_eq!(h.take(), "GET / HTTP/1.1\r\n\r\n");
    assert_eq!(h.svc.calls, 1);
}

#[test]
fn a_connect_not_switched_ends_the_connection() {
    // Refused by the handler: its answer, then the close (what follows was
    // meant for the tunnel).
    let mut h = connecting();
    let step = h.feed(b"CONNECT no:1 HTTP/1.1\r\nHost: no:1\r\n\r\nGET / HTTP/1.1\r\n\r\n");
    assert!(matches!(step, Step::Close));
    let out = h.take();
    assert!(out.starts_with("HTTP/1.1 403 "), "{out}");
    assert!(out.contains("Connection: close\r\n"), "{out}");
    assert_eq!(responses(&out).len(), 1);
    assert_eq!(h.svc.calls, 1);
    // A 101 is no answer to a CONNECT.
    let mut h = connecting();
    let step = h.feed(b"CONNECT up:1 HTTP/1.1\r\nHost: up:1\r\n\r\n");
    assert!(matches!(step, Step::Close));
    assert!(h.take().starts_with("HTTP/1.1 502 "));
    assert!(!h.conn.is_tunnel());
    // A CONNECT has no content: refused before the handler sees it.
    let mut h = connecting();
    let step = h.feed(b"CONNECT ok:1 HTTP/1.1\r\nHost: ok:1\r\nContent-Length: 3\r\n\r\nabc");
    assert!(matches!(step, Step::Close));
    assert!(h.take().starts_with("HTTP/1.1 400 "));
    assert_eq!(h.svc.calls, 0);
    // `Content-Length: 0` frames nothing and is let through.
    let mut h = connecting();
    let _ = h.feed(b"CONNECT ok:1 HTTP/1.1\r\nHost: ok:1\r\nContent-Length: 0\r\n\r\n");
    assert!(h.take().starts_with("HTTP/1.1 200 "));
    assert!(h.conn.is_tunnel());
}
