//! Content-coding negotiation (`peregrine::compress::negotiate`) over
//! arbitrary `Accept-Encoding` values.
//!
//! Input layout: byte 0 picks the offered codings and their order (bits
//! 0-2); the rest, lossily as UTF-8, is the header's value.
//!
//! Properties:
//! - it never panics;
//! - a chosen coding is one of those offered, and the header names it or
//!   `*` (case-insensitively);
//! - no offered coding means no coding chosen;
//! - appending `, identity` can only make identity acceptable: the answer
//!   is then never `NotAcceptable`;
//! - two values (the input split at its first `\n`) with the same
//!   `fingerprint` (the cache's variant key) negotiate alike for every offer.
#![no_main]

use libfuzzer_sys::fuzz_target;
use peregrine::compress::{Choice, Coding, fingerprint, negotiate};

const OFFERS: [&[Coding]; 8] = [
    &[],
    &[Coding::Gzip],
    &[Coding::Br, Coding::Zstd, Coding::Gzip],
    &[Coding::Gzip, Coding::Br],
    &[Coding::Zstd],
    &[Coding::Zstd, Coding::Gzip, Coding::Br],
    &[Coding::Br],
    &[Coding::Gzip, Coding::Zstd],
];

fuzz_target!(|data: &[u8]| {
    let Some((&pick, rest)) = data.split_first() else {
        return;
    };
    let offered = OFFERS[usize::from(pick & 7)];
    let value = String::from_utf8_lossy(rest);
    let choice = negotiate(Some(&value), offered);
    if let Choice::Coding(c) = choice {
        assert!(offered.contains(&c), "{value:?} chose {c:?} of {offered:?}");
        let lower = value.to_ascii_lowercase();
        assert!(
            lower.contains(c.name()) || lower.contains('*'),
            "{value:?} chose {c:?}"
        );
    }
    if offered.is_empty() {
        assert!(!matches!(choice, Choice::Coding(_)));
    }
    let with_identity = format!("{value}, identity");
    assert_ne!(
        negotiate(Some(&with_identity), offered),
        Choice::NotAcceptable,
        "{with_identity:?}"
    );
    if let Some(at) = value.find('\n') {
        let (a, b) = (&value[..at], &value[at + 1..]);
        if fingerprint(Some(a)) == fingerprint(Some(b)) {
            for o in OFFERS {
                assert_eq!(
                    negotiate(Some(a), o),
                    negotiate(Some(b), o),
                    "{a:?} vs {b:?}"
                );
            }
        }
    }
});
