//! `Decoder` (Content-Length and chunked) fed the same bytes whole and cut
//! into pieces.
//!
//! Input layout: byte 0 picks the mode (bit 0: chunked) and, for chunked,
//! bytes 1-2 the body limit and byte 3 the trailer limit; for length, bytes
//! 1-2 the length. Byte 4 is the number of cut points, each taken from the
//! bytes after it (two bytes each, as an offset into the stream). The rest
//! is the byte stream.
//!
//! Properties:
//! - the outcome (error, or done / not done), the body bytes and the bytes
//!   consumed (when there is no error) are the same for every way of
//!   cutting the stream, and with or without a sink for the body;
//! - a call consumes all of its input unless the body ended in it;
//! - never more body bytes than the limit (chunked) or the length;
//! - a length body is done exactly when all of its bytes arrived.
#![no_main]

use libfuzzer_sys::fuzz_target;
use peregrine::http::Error;
use peregrine::http::body::Decoder;

#[derive(Debug, PartialEq, Eq)]
struct Run {
    result: Result<bool, Error>,
    body: Vec<u8>,
    consumed: usize,
}

fn run(mut d: Decoder, pieces: &[&[u8]], keep: bool) -> Run {
    let mut body = Vec::new();
    let mut consumed = 0;
    for piece in pieces {
        let sink = if keep { Some(&mut body) } else { None };
        match d.decode(piece, sink) {
            Ok(r) => {
                assert!(r.consumed <= piece.len());
                assert!(
                    r.consumed == piece.len() || r.done,
                    "left input before the end"
                );
                assert_eq!(r.done, d.is_done());
                consumed += r.consumed;
                if r.done {
                    return Run {
                        result: Ok(true),
                        body,
                        consumed,
                    };
                }
            }
            Err(e) => {
                // How much of the failing piece was read is not reported.
                return Run {
                    result: Err(e),
                    body,
                    consumed: 0,
                };
            }
        }
    }
    Run {
        result: Ok(false),
        body,
        consumed,
    }
}

fuzz_target!(|data: &[u8]| {
    if data.len() < 5 {
        return;
    }
    let (ctl, rest) = data.split_at(5);
    let chunked = ctl[0] & 1 == 1;
    let n = u64::from(u16::from_le_bytes([ctl[1], ctl[2]]));
    let trailer_limit = usize::from(ctl[3]);
    let cuts = usize::from(ctl[4] % 16);
    let (cut_bytes, stream) = rest.split_at((cuts * 2).min(rest.len()));
    let new = || {
        if chunked {
            Decoder::chunked(n, trailer_limit)
        } else {
            Decoder::length(n)
        }
    };

    let mut at: Vec<usize> = cut_bytes
        .chunks(2)
        .map(|c| usize::from(u16::from_le_bytes([c[0], *c.get(1).unwrap_or(&0)])))
        .map(|c| c % (stream.len() + 1))
        .collect();
    at.sort_unstable();
    let mut pieces = Vec::new();
    let mut from = 0;
    for cut in at.into_iter().chain([stream.len()]) {
        pieces.push(&stream[from..cut]);
        from = cut;
    }

    let whole = run(new(), &[stream], true);
    let split = run(new(), &pieces, true);
    let mut bytewise: Vec<&[u8]> = stream.chunks(1).collect();
    if bytewise.is_empty() {
        bytewise.push(stream);
    }
    let single = run(new(), &bytewise, true);
    let dropped = run(new(), &pieces, false);
    assert_eq!(whole, split, "cut at {pieces:?}");
    assert_eq!(whole, single, "byte by byte");
    assert_eq!(
        (whole.result, whole.consumed),
        (dropped.result, dropped.consumed),
        "without a sink"
    );
    assert!(dropped.body.is_empty());

    if whole.result.is_ok() {
        assert!(whole.body.len() <= whole.consumed);
    }
    assert!(
        whole.body.len() as u64 <= n,
        "{} body bytes, limit {n}",
        whole.body.len()
    );
    if !chunked {
        assert_eq!(whole.body.len(), whole.consumed);
        assert_eq!(whole.result, Ok(whole.body.len() as u64 == n));
    }
    if whole.result == Ok(false) {
        assert_eq!(whole.consumed, stream.len());
    }
});
