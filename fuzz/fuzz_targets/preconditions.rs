//! Conditional request evaluation (`Preconditions::evaluate`, entity-tag
//! lists and HTTP-dates) on arbitrary field values.
//!
//! Input layout: byte 0 picks the method and which validators the current
//! representation has; bytes 1-8 its modification time; the rest is split
//! on `\n` into the current `ETag`, then `name:value` fields.
//!
//! Properties:
//! - it never panics;
//! - `Proceed { range: true }` only for GET;
//! - `NotModified` only for GET and HEAD;
//! - without a current representation, `If-None-Match` and the date fields
//!   never give 304;
//! - without any precondition field the outcome is `Proceed`.
#![no_main]

use libfuzzer_sys::fuzz_target;
use peregrine::handler::conditional::{Outcome, Preconditions, Validators};
use peregrine::http::Method;

const METHODS: [Method; 5] = [
    Method::Get,
    Method::Head,
    Method::Post,
    Method::Put,
    Method::Delete,
];

fuzz_target!(|data: &[u8]| {
    if data.len() < 9 {
        return;
    }
    let method = METHODS[usize::from(data[0] & 7) % METHODS.len()];
    let exists = data[0] & 8 == 0;
    let has_tag = data[0] & 16 == 0;
    let has_date = data[0] & 32 == 0;
    let mtime = u64::from_le_bytes(data[1..9].try_into().unwrap()) % (1 << 40);
    let mut lines = data[9..].split(|b| *b == b'\n');
    let etag = lines.next().and_then(|t| std::str::from_utf8(t).ok());
    let fields: Vec<(&str, &[u8])> = lines
        .filter_map(|l| {
            let colon = l.iter().position(|b| *b == b':')?;
            let name = std::str::from_utf8(&l[..colon]).ok()?;
            Some((name, &l[colon + 1..]))
        })
        .collect();
    let p = Preconditions::from_fields(fields.iter().copied());
    let current = Validators {
        etag: etag.filter(|_| has_tag),
        last_modified: has_date.then_some(mtime),
    };
    let outcome = p.evaluate(method, exists.then_some(&current));

    match outcome {
        Outcome::Proceed { range: true } => assert_eq!(method, Method::Get),
        Outcome::NotModified => assert!(matches!(method, Method::Get | Method::Head)),
        _ => {}
    }
    if !exists {
        assert_ne!(outcome, Outcome::NotModified);
    }
    if p == Preconditions::default() {
        assert_eq!(
            outcome,
            Outcome::Proceed {
                range: method == Method::Get
            }
        );
    }
});
