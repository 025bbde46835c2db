//! HTTP/2 under the server driver: the cleartext preface chooses it (split
//! anywhere), its deadlines, and a graceful drain.

use super::*;
use crate::http2::frame::{self, Head, flag, kind};

/// `GET /` as an HPACK block: indexed :method, :scheme, :path, and a
/// literal :authority.
const GET_ROOT: [u8; 6] = [0x82, 0x86, 0x84, 0x01, 0x01, b'x'];

fn request(id: u32) -> Vec<u8> {
    let mut b = Vec::new();
    frame::head(
        &mut b,
        GET_ROOT.len(),
        kind::HEADERS,
        flag::END_HEADERS | flag::END_STREAM,
        id,
    );
    b.extend_from_slice(&GET_ROOT);
    b
}

fn frames(wire: &[u8]) -> Vec<(u8, u8, u32)> {
    let mut v = Vec::new();
    let mut p = 0;
    while let Some(h) = Head::parse(&wire[p..]) {
        v.push((h.kind, h.flags, h.stream));
        p += 9 + h.len as usize;
    }
    assert_eq!(p, wire.len());
    v
}

fn opened() -> Harness {
    let mut h = Harness::new(None);
    // The preface split inside its first bytes: held until it is sure.
    h.recv(&frame::PREFACE[..5]);
    assert!(h.wire.is_empty());
    assert!(!h.conn.is_h2());
    let mut rest = frame::PREFACE[5..].to_vec();
    frame::settings(&mut rest, &[]);
    h.recv(&rest);
    assert!(h.conn.is_h2());
    h
}

#[test]
fn the_preface_chooses_http2() {
    let mut h = opened();
    h.now += Duration::from_secs(1);
    h.recv(&request(1));
    let f = frames(&h.wire);
    assert_eq!(f[0], (kind::SETTINGS, 0, 0));
    assert!(f.contains(&(kind::SETTINGS, flag::ACK, 0)));
    assert!(f.contains(&(kind::HEADERS, flag::END_HEADERS, 1)));
    assert!(f.contains(&(kind::DATA, flag::END_STREAM, 1)));
    assert_eq!(h.conn.http2_streams(), Some(0));
    // Idle after the response: the keep-alive timeout, even after a
    // control frame that starts no request.
    let idle = h.now;
    h.now += Duration::from_secs(1);
    let mut ack = Vec::new();
    frame::settings_ack(&mut ack);
    h.recv(&ack);
    assert_eq!(h.conn.state(), State::Idle { since: idle });
    assert_eq!(h.deadline(), Some((131.0, Reason::Idle)));
    // A partial frame is timed by the head deadline.
    h.recv(&request(3)[..4]);
    assert_eq!(
        h.deadline(),
        Some((h.now - h.t0).as_secs_f64() + 5.0).map(|t| (t, Reason::Headers))
    );
}

#[test]
fn anything_else_is_http1() {
    let mut h = Harness::new(None);
    // "P" could start the preface; "PU" could not.
    h.recv(b"P");
    assert!(h.wire.is_empty());
    h.recv(b"UT / HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\n\r\n");
    assert!(!h.conn.is_h2());
    assert!(h.text().starts_with("HTTP/1.1 200 OK\r\n"), "{}", h.text());
    // With h2c off even the preface is HTTP/1 (and refused).
    let mut h = Harness::new(None);
    h.limits.http2.h2c = false;
    h.recv(frame::PREFACE);
    assert!(!h.conn.is_h2());
    assert!(h.text().starts_with("HTTP/1.1 505"), "{}", h.text());
}

#[test]
fn a_drain_says_goaway_and_closes() {
    let mut h = opened();
    h.recv(&request(1));
    h.wire.clear();
    let mut cx = cx!(h);
    cx.draining = true;
    h.conn.drain(&mut cx);
    h.pump(false);
    let f = frames(&h.wire);
    assert_eq!(f, [(kind::GOAWAY, 0, 0)]);
    assert_eq!(h.closed, Some(CloseReason::Shutdown));
}
