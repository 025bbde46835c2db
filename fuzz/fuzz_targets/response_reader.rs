//! The HTTP/1 client role's response reader
//! (`peregrine::http::client::ResponseReader`).
//!
//! Properties:
//! - it never panics, and every call uses no more input than it was given;
//! - where the input is cut does not matter: fed whole, or in two pieces at
//!   the cut the first byte picks, it reports the same heads (status and
//!   fields), the same body bytes, the same completions and the same end
//!   (an error, or what the connection's end means);
//! - both hold for responses to a `CONNECT` too (the first byte's low bit
//!   says which), where a 2xx switches.
#![no_main]

use libfuzzer_sys::fuzz_target;
use peregrine::http::client::{Event, ResponseReader};

/// What the reader reported, owned: heads, body bytes, completions, then
/// the end of the input.
#[derive(Debug, PartialEq, Eq)]
enum Seen {
    Head(u16, Vec<(String, Vec<u8>)>),
    Body(Vec<u8>),
    Complete(bool),
    Upgraded,
    Failed(String),
    Eof(Result<bool, String>),
}

fn run(pieces: &[&[u8]], connect: bool) -> Vec<Seen> {
    let mut r = ResponseReader::default();
    r.set_connect_request(connect);
    let mut seen = Vec::new();
    for piece in pieces {
        let mut input = *piece;
        loop {
            match r.feed(input) {
                Ok(p) => {
                    assert!(p.consumed <= input.len());
                    match p.event {
                        Event::NeedInput => {
                            assert_eq!(p.consumed, input.len());
                            break;
                        }
                        Event::Head => {
                            let h = r.head();
                            let fields = h
                                .headers()
                                .map(|(n, v)| (n.to_ascii_lowercase(), v.to_vec()))
                                .collect();
                            seen.push(Seen::Head(h.status, fields));
                        }
                        Event::Body(range) => {
                            // Body bytes of one response, however split, read as one run.
                            let bytes = &input[range];
                            match seen.last_mut() {
                                Some(Seen::Body(b)) => b.extend_from_slice(bytes),
                                _ => seen.push(Seen::Body(bytes.to_vec())),
                            }
                        }
                        Event::Complete { reuse } => seen.push(Seen::Complete(reuse)),
                        Event::Upgraded => {
                            seen.push(Seen::Upgraded);
                            return seen;
                        }
                    }
                    input = &input[p.consumed..];
                }
                Err(e) => {
                    seen.push(Seen::Failed(format!("{e:?}")));
                    return seen;
                }
            }
        }
    }
    seen.push(Seen::Eof(r.eof().map_err(|e| format!("{e:?}"))));
    seen
}

fuzz_target!(|data: &[u8]| {
    let Some((&cut, input)) = data.split_first() else {
        return;
    };
    let connect = cut & 1 == 1;
    let whole = run(&[input], connect);
    let at = usize::from(cut >> 1) * input.len() / 128;
    let (a, b) = input.split_at(at);
    assert_eq!(run(&[a, b], connect), whole, "cut at {at}");
});
