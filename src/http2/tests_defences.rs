//! The connection against floods and malformed input: Rapid Reset,
//! CONTINUATION floods, HPACK bombs, PING floods, stream and frame limits.

use super::*;

#[test]
fn rapid_reset_is_refused() {
    let mut h = H::new();
    h.open(&[]);
    let mut b = Vec::new();
    let mut id = 1;
    for _ in 0..300 {
        b.extend(h.request(id, "GET", "/delay", true));
        frame::rst_stream(&mut b, id, Code::Cancel);
        id += 2;
    }
    assert!(matches!(h.feed(&b), Step::Close));
    assert_eq!(goaway_code(&h.frames()), Some(Code::EnhanceYourCalm as u32));
    assert_eq!(h.svc.cancelled.get(), 201);
}

#[test]
fn continuation_flood_is_refused() {
    let mut h = H::new();
    h.open(&[]);
    let block = h.block("GET", "/", &[]);
    let mut b = Vec::new();
    frame::head(&mut b, block.len(), kind::HEADERS, 0, 1);
    b.extend_from_slice(&block);
    for _ in 0..100 {
        frame::head(&mut b, 0, kind::CONTINUATION, 0, 1);
    }
    assert!(matches!(h.feed(&b), Step::Close));
    assert_eq!(goaway_code(&h.frames()), Some(Code::EnhanceYourCalm as u32));
    // So is a block that grows past the bound in big pieces.
    let mut h = H::new();
    h.open(&[]);
    let mut b = Vec::new();
    frame::head(&mut b, block.len(), kind::HEADERS, 0, 1);
    b.extend_from_slice(&block);
    for _ in 0..8 {
        frame::head(&mut b, 16_000, kind::CONTINUATION, 0, 1);
        b.extend_from_slice(&[0x40; 16_000]);
    }
    assert!(matches!(h.feed(&b), Step::Close));
}

#[test]
fn a_header_list_too_large_is_431() {
    let mut h = H::new();
    h.open(&[]);
    // An HPACK bomb: one large entry, then many references to it.
    let big = "v".repeat(4000);
    let first = h.block("GET", "/", &[("x-big", &big)]);
    let b = headers_frame(1, &first, flag::END_HEADERS | flag::END_STREAM);
    let _ = h.feed(&b);
    let f = h.frames();
    h.fields(&f[0]);
    let mut block = h.block("GET", "/", &[]);
    block.extend(std::iter::repeat_n(0x80 | 62, 100));
    let b = headers_frame(3, &block, flag::END_HEADERS | flag::END_STREAM);
    let _ = h.feed(&b);
    let f = h.frames();
    let head = f.iter().find(|g| g.head.stream == 3).unwrap();
    let head = Got {
        head: head.head,
        payload: head.payload.clone(),
    };
    assert_eq!(status(&h.fields(&head)), "431");
    assert!(!h.conn.is_closed());
}

#[test]
fn ping_floods_are_refused() {
    let mut h = H::new();
    h.open(&[]);
    let mut b = Vec::new();
    for i in 0..2000u64 {
        frame::head(&mut b, 8, kind::PING, 0, 0);
        b.extend_from_slice(&i.to_be_bytes());
        if b.len() > 8000 {
            let _ = h.feed(&std::mem::take(&mut b));
            h.frames();
        }
    }
    let step = h.feed(&b);
    assert!(matches!(step, Step::Close), "{step:?}");
    // A second later the budget is new.
    let mut h = H::new();
    h.open(&[]);
    for _ in 0..3 {
        let mut b = Vec::new();
        for i in 0..900u64 {
            frame::head(&mut b, 8, kind::PING, 0, 0);
            b.extend_from_slice(&i.to_be_bytes());
        }
        assert!(!matches!(h.feed(&b), Step::Close));
        h.frames();
        h.now += Duration::from_secs(1);
    }
}

#[test]
fn malformed_requests_reset_their_stream() {
    let mut h = H::new();
    h.open(&[]);
    let block = h.block("GET", "/", &[("Upper", "x")]);
    let mut b = headers_frame(1, &block, flag::END_HEADERS | flag::END_STREAM);
    // A body longer than its Content-Length.
    let block = h.block("POST", "/echo", &[("content-length", "2")]);
    frame::head(&mut b, block.len(), kind::HEADERS, flag::END_HEADERS, 3);
    b.extend_from_slice(&block);
    frame::data(&mut b, 3, b"abc", true);
    b.extend(h.request(5, "GET", "/ok", true));
    let _ = h.feed(&b);
    let f = h.frames();
    assert_eq!(rst_code(&f, 1), Some(Code::Protocol as u32));
    assert_eq!(rst_code(&f, 3), Some(Code::Protocol as u32));
    assert_eq!(data_of(&f, 5), b"/ok");
    // An even stream number is a connection error.
    let b = h.request(6, "GET", "/", true);
    assert!(matches!(h.feed(&b), Step::Close));
    assert_eq!(goaway_code(&h.frames()), Some(Code::Protocol as u32));
}

#[test]
fn concurrency_is_bounded() {
    let mut limits = Limits::default();
    limits.http2.max_concurrent_streams = 2;
    let mut h = H::with(limits);
    h.open(&[]);
    let mut b = Vec::new();
    for id in [1, 3, 5] {
        b.extend(h.request(id, "GET", "/delay", true));
    }
    let _ = h.feed(&b);
    let f = h.frames();
    assert_eq!(rst_code(&f, 5), Some(Code::RefusedStream as u32));
    assert_eq!(h.conn.open_streams(), 2);
}

#[test]
fn frame_level_errors() {
    // A frame larger than our SETTINGS_MAX_FRAME_SIZE.
    let mut h = H::new();
    h.open(&[]);
    let mut b = Vec::new();
    frame::head(&mut b, 20_000, kind::DATA, 0, 1);
    b.extend_from_slice(&[0; 20_000]);
    assert!(matches!(h.feed(&b), Step::Close));
    assert_eq!(goaway_code(&h.frames()), Some(Code::FrameSize as u32));
    // DATA on an idle stream.
    let mut h = H::new();
    h.open(&[]);
    let mut b = Vec::new();
    frame::data(&mut b, 9, b"x", true);
    assert!(matches!(h.feed(&b), Step::Close));
    // A zero WINDOW_UPDATE on the connection.
    let mut h = H::new();
    h.open(&[]);
    let mut b = Vec::new();
    frame::window_update(&mut b, 0, 0);
    assert!(matches!(h.feed(&b), Step::Close));
    // A window past 2^31-1.
    let mut h = H::new();
    h.open(&[]);
    let mut b = Vec::new();
    frame::window_update(&mut b, 0, 0x7fff_ffff);
    assert!(matches!(h.feed(&b), Step::Close));
    assert_eq!(goaway_code(&h.frames()), Some(Code::FlowControl as u32));
}
