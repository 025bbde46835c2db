//! `Range` header interpretation (`peregrine::handler::conditional::range`).
//!
//! Input layout: the first 8 bytes are the representation size (little
//! endian; byte 0's top bit clear keeps it small, so that both small files
//! and sizes near `u64::MAX` are reached); the rest is the header value.
//!
//! Properties:
//! - it never panics;
//! - a part lies inside the representation: `len >= 1`, `start < size` and
//!   `start + len <= size`, without overflow;
//! - the answer matches an independent reading of RFC 9110 §14.1.2 for a
//!   single `bytes=first-last`, `bytes=first-` or `bytes=-suffix` range,
//!   computed here in 128-bit arithmetic.
#![no_main]

use libfuzzer_sys::fuzz_target;
use peregrine::handler::conditional::{Range, range};

/// The expected answer, written from the RFC rather than from the code.
fn model(header: &[u8], size: u64) -> Range {
    let Ok(text) = std::str::from_utf8(header) else {
        return Range::Full;
    };
    let ws = |c: char| c.is_ascii_whitespace();
    let Some(spec) = text.trim_matches(ws).strip_prefix("bytes=") else {
        return Range::Full;
    };
    let spec = spec.trim_matches(ws);
    if spec.contains(',') {
        return Range::Full;
    }
    let Some((first, last)) = spec.split_once('-') else {
        return Range::Full;
    };
    // Digits only; the implementation reads at most 19 of them (u64 without
    // overflow), and treats longer numbers as no usable range.
    let num = |s: &str| -> Option<u128> {
        (!s.is_empty() && s.len() <= 19 && s.bytes().all(|b| b.is_ascii_digit()))
            .then(|| s.parse().unwrap())
    };
    let size = u128::from(size);
    let part = |start: u128, end_incl: u128| Range::Part {
        start: start as u64,
        len: (end_incl - start + 1) as u64,
    };
    match (num(first), num(last)) {
        (None, Some(n)) if first.is_empty() => {
            if n == 0 || size == 0 {
                Range::Unsatisfiable
            } else {
                part(size - n.min(size), size - 1)
            }
        }
        (Some(a), None) if last.is_empty() => {
            if a >= size {
                Range::Unsatisfiable
            } else {
                part(a, size - 1)
            }
        }
        (Some(a), Some(b)) if a <= b => {
            if a >= size {
                Range::Unsatisfiable
            } else {
                part(a, b.min(size - 1))
            }
        }
        _ => Range::Full,
    }
}

fuzz_target!(|data: &[u8]| {
    if data.len() < 8 {
        return;
    }
    let (size, header) = data.split_at(8);
    let mut size = u64::from_le_bytes(size.try_into().unwrap());
    if size >> 63 == 0 {
        size %= 4096;
    }
    let got = range(header, size);
    if let Range::Part { start, len } = got {
        assert!(len >= 1 && start < size, "{got:?} of {size}");
        assert!(
            start.checked_add(len).is_some_and(|end| end <= size),
            "{got:?} of {size}"
        );
    }
    assert_eq!(
        got,
        model(header, size),
        "{:?} of {size}",
        String::from_utf8_lossy(header)
    );
});
