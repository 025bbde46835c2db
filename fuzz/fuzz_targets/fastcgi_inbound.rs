//! A FastCGI responder's records read back as HTTP/1.1
//! (`peregrine::fastcgi::Inbound`) over arbitrary bytes.
//!
//! Input layout: byte 0 picks HEAD (bit 0), no KEEP_CONN (bit 1) and the
//! piece size the rest is fed in (bits 2-7, plus one); the rest is what the
//! responder sent.
//!
//! Properties:
//! - it never panics;
//! - what it makes is always a well-formed HTTP/1.1 response stream: the
//!   client role's response reader reads it without an error (truncated at
//!   most, or over the reader's own limits on header count and head size,
//!   which answer 502 like any invalid response), so a broken responder can
//!   never corrupt a client connection;
//! - feeding in pieces makes the same bytes (head and body) as feeding at
//!   once, or fails the same way.
#![no_main]

use libfuzzer_sys::fuzz_target;
use peregrine::fastcgi::Inbound;
use peregrine::http::client::{ClientError, Event, ResponseLimits, ResponseReader};

fn run(data: &[u8], head: bool, closes: bool, step: usize) -> (Result<(), ()>, Vec<u8>) {
    let mut r = Inbound::new(closes);
    r.start(head);
    let mut out = Vec::new();
    for piece in data.chunks(step) {
        if r.feed(piece, &mut out).is_err() {
            return (Err(()), out);
        }
    }
    (Ok(()), out)
}

fuzz_target!(|data: &[u8]| {
    let Some((&flags, rest)) = data.split_first() else {
        return;
    };
    let head = flags & 1 == 1;
    let closes = flags & 2 == 2;
    let step = usize::from(flags >> 2) + 1;
    let (whole_ok, whole) = run(rest, head, closes, rest.len().max(1));
    let (parts_ok, parts) = run(rest, head, closes, step);
    assert_eq!(whole_ok, parts_ok);
    if whole_ok.is_ok() {
        // Chunk boundaries may differ; the reader sees the same response.
        let read = |bytes: &[u8]| {
            let mut reader = ResponseReader::new(ResponseLimits::default());
            reader.set_head_request(head);
            let mut body = Vec::new();
            let mut rest = bytes;
            let mut events = 0;
            while !rest.is_empty() {
                let p = match reader.feed(rest) {
                    Ok(p) => p,
                    Err(ClientError::TooManyHeaders | ClientError::HeadTooLarge) => break,
                    Err(e) => panic!("not a well-formed response stream: {e:?}"),
                };
                if let Event::Body(r) = &p.event {
                    body.extend_from_slice(&rest[r.clone()]);
                }
                if matches!(p.event, Event::NeedInput) {
                    break;
                }
                events += 1;
                rest = &rest[p.consumed..];
                if matches!(p.event, Event::Complete { .. }) {
                    reader.set_head_request(head);
                }
                assert!(events < 100_000);
            }
            body
        };
        assert_eq!(read(&whole), read(&parts));
    }
});
