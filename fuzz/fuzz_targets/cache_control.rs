//! `Cache-Control` parsing and the storing verdict
//! (`peregrine::cache::control`, `peregrine::cache::policy`) over arbitrary
//! field values.
//!
//! Input layout: the bytes, split at each `\n`, are the response's
//! `Cache-Control` lines.
//!
//! Properties:
//! - it never panics;
//! - every number read is at most 2^31 (RFC 9111 §1.2.2);
//! - `no-store` or `private` means not stored; a stored response's lifetime
//!   is the directives' own when they give one;
//! - the lines read alone and read as one line joined by `,` agree when no
//!   line has a `"` (quotes may span a comma).
#![no_main]

use libfuzzer_sys::fuzz_target;
use peregrine::cache::CacheRule;
use peregrine::cache::control::Directives;
use peregrine::cache::policy::judge;
use peregrine::http::Response;

fuzz_target!(|data: &[u8]| {
    let lines: Vec<&[u8]> = data.split(|b| *b == b'\n').collect();
    let d = Directives::parse(lines.iter().copied());
    for n in [
        d.max_age,
        d.s_maxage,
        d.stale_while_revalidate,
        d.stale_if_error,
    ]
    .into_iter()
    .flatten()
    {
        assert!(n <= 1 << 31, "{n}");
    }
    if !data.contains(&b'"') {
        let joined = lines.join(&b","[..]);
        assert_eq!(
            d,
            Directives::parse([&joined[..]]),
            "{:?}",
            String::from_utf8_lossy(data)
        );
    }
    // A response carries only valid field values (what the proxy lets
    // through).
    let valid: Vec<String> = lines
        .iter()
        .map(|l| String::from_utf8_lossy(l).into_owned())
        .filter(|l| l.bytes().all(|b| b == b'\t' || (b >= 0x20 && b != 0x7f)))
        .collect();
    let mut r = Response::new(200);
    for l in &valid {
        r = r.header("Cache-Control", l.clone());
    }
    let rule = CacheRule {
        ttl: vec![(None, std::time::Duration::from_secs(60))],
        ..CacheRule::default()
    };
    let from = Directives::parse(valid.iter().map(|s| s.as_bytes()));
    if let Ok(f) = judge(&r, &rule, false, 1_780_000_000) {
        assert!(!from.no_store && !from.private);
        assert_eq!(f.lifetime, from.lifetime().unwrap_or(60));
    }
});
