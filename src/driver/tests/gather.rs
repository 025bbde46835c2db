//! Large streamed body pieces go out behind the head (or a chunk size) in
//! one gather send, uncopied, and arrive intact and in order whatever each
//! send moves.

use super::*;

/// The body `/pieces` sends.
fn pieces() -> Vec<u8> {
    let mut b = Vec::new();
    for c in [b'a', b'b', b'c'] {
        b.extend(std::iter::repeat_n(c, PIECE));
    }
    b
}

/// The same pieces, chunked.
pub(super) fn chunked_pieces() -> Vec<u8> {
    let mut b = Vec::new();
    for c in [b'a', b'b', b'c'] {
        b.extend_from_slice(format!("{PIECE:x}\r\n").as_bytes());
        b.extend(std::iter::repeat_n(c, PIECE));
        b.extend_from_slice(b"\r\n");
    }
    b.extend_from_slice(b"0\r\n\r\n");
    b
}

/// Splits the wire after the first head.
fn head_and_rest(wire: &[u8]) -> (String, &[u8]) {
    let end = wire
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .expect("a head")
        + 4;
    (
        String::from_utf8_lossy(&wire[..end]).into_owned(),
        &wire[end..],
    )
}

#[test]
fn a_large_piece_follows_the_head_in_one_gather_send() {
    let mut h = Harness::new(None);
    h.recv(b"GET /pieces HTTP/1.1\r\nHost: x\r\n\r\n");
    let (head, body) = head_and_rest(&h.wire);
    assert!(head.contains("Content-Length: 122880\r\n"), "{head}");
    assert_eq!(body, &pieces()[..]);
    // The first piece went behind the head; the second, with nothing before
    // it, became the output, and the third went behind it.
    assert_eq!(h.gathers, 2);
    assert_eq!(h.deadline().unwrap().1, Reason::Idle);
}

#[test]
fn chunked_pieces_each_follow_their_size_line() {
    let mut h = Harness::new(None);
    h.recv(b"GET /pieces-chunked HTTP/1.1\r\nHost: x\r\n\r\n");
    let (head, body) = head_and_rest(&h.wire);
    assert!(head.contains("Transfer-Encoding: chunked\r\n"), "{head}");
    assert_eq!(body, &chunked_pieces()[..]);
    assert_eq!(h.gathers, 3);
}

#[test]
fn partial_sends_anywhere_keep_every_byte_in_order() {
    // A send may stop inside the head, at its end, or inside the piece.
    for cap in [97, 4096, PIECE - 1, PIECE + 200] {
        for path in ["/pieces", "/pieces-chunked"] {
            let mut h = Harness::new(None);
            h.cap = cap;
            let req =
                format!("GET {path} HTTP/1.1\r\nHost: x\r\n\r\nGET / HTTP/1.1\r\nHost: x\r\n\r\n");
            h.recv(req.as_bytes());
            let (_, rest) = head_and_rest(&h.wire);
            let body = if path == "/pieces" {
                pieces()
            } else {
                chunked_pieces()
            };
            assert!(rest.starts_with(&body), "cap {cap}, {path}");
            // The pipelined request behind it is answered after it.
            let next = String::from_utf8_lossy(&rest[body.len()..]);
            assert!(
                next.starts_with("HTTP/1.1 200 OK\r\n") && next.ends_with("\r\n\r\nok"),
                "cap {cap}, {path}: {next}"
            );
        }
    }
}

#[test]
fn a_connection_closed_with_a_piece_waiting_gives_both_buffers_back() {
    let mut h = Harness::new(None);
    h.cap = 10;
    let mut cx = cx!(h);
    h.conn
        .on_recv(b"GET /pieces HTTP/1.1\r\nHost: x\r\n\r\n", &mut cx);
    let Some(Action::SendGather { buf, from, tail }) = h.conn.poll_action() else {
        panic!("a gather send");
    };
    assert_eq!(tail.len(), PIECE);
    let mut cx = cx!(h);
    h.conn.abort(CloseReason::Shutdown, &mut cx);
    let _ = h.conn.poll_action();
    let _ = from;
    let mut cx = cx!(h);
    h.conn.on_sent_gather(buf, tail, 1, &mut cx);
    assert!(h.conn.poll_action().is_none());
    assert!(h.conn.is_closed());
    // Both buffers went back to the pool for other connections.
    let caps = [h.bufs.get().capacity(), h.bufs.get().capacity()];
    assert!(caps.iter().any(|&c| c >= PIECE), "{caps:?}");
}
