//! Request filtering (`peregrine::filter::Filter::check`) on arbitrary
//! targets and header values.
//!
//! Input: one byte choosing the method (and whether a `Content-Length`
//! field is sent), then the target, then after the first `\n` a header
//! value sent as `User-Agent` and `Content-Type`.
//!
//! Properties:
//! - it never panics;
//! - it decides the same twice;
//! - the IIS and the modern status agree on the reason, and each is the
//!   one its table gives;
//! - a filter that allows everything refuses nothing.
#![no_main]

use std::sync::LazyLock;

use libfuzzer_sys::fuzz_target;
use peregrine::exchange::RequestHead;
use peregrine::filter::{Filter, FilterSpec, ListSpec, RequestLimits, RuleSpec};
use peregrine::http::Method;

const METHODS: [Method; 9] = peregrine::http::method::ALL;

fn strings(v: &[&str]) -> Vec<String> {
    v.iter().map(|s| s.to_string()).collect()
}

fn spec(modern: bool) -> FilterSpec {
    FilterSpec {
        file_extensions: ListSpec {
            allow_unlisted: true,
            allow: strings(&["."]),
            deny: strings(&[".config", ".env", ".bak"]),
        },
        verbs: ListSpec {
            allow_unlisted: true,
            allow: Vec::new(),
            deny: strings(&["TRACE", "TRACK"]),
        },
        hidden_segments: strings(&[".git", "bin", "App_Data"]),
        deny_url_sequences: strings(&["..", "//", "%"]),
        deny_query_string_sequences: strings(&["<script", "%00"]),
        always_allowed_urls: strings(&["/.well-known/acme-challenge/"]),
        allow_double_escaping: false,
        allow_high_bit_characters: false,
        modern_status: modern,
        limits: RequestLimits {
            max_allowed_content_length: Some(1000),
            max_url: Some(200),
            max_query_string: Some(100),
            max_url_segments: Some(8),
            header_limits: vec![("content-type".into(), 50), ("x-forbidden".into(), 0)],
        },
        rules: vec![RuleSpec {
            name: "sqli".into(),
            scan_url: true,
            scan_query_string: true,
            scan_headers: strings(&["User-Agent"]),
            applies_to: strings(&[".php", "."]),
            deny_strings: strings(&["union select", "' or "]),
        }],
    }
}

static IIS: LazyLock<Filter> = LazyLock::new(|| Filter::new(&spec(false)).unwrap());
static MODERN: LazyLock<Filter> = LazyLock::new(|| Filter::new(&spec(true)).unwrap());
static OPEN: LazyLock<Filter> = LazyLock::new(|| {
    let mut s = FilterSpec {
        allow_double_escaping: true,
        ..FilterSpec::default()
    };
    s.limits.max_allowed_content_length = None;
    s.limits.max_url = None;
    s.limits.max_query_string = None;
    Filter::new(&s).unwrap()
});

fuzz_target!(|data: &[u8]| {
    let Some((&first, rest)) = data.split_first() else {
        return;
    };
    let (target, value) = match rest.iter().position(|b| *b == b'\n') {
        Some(i) => (&rest[..i], &rest[i + 1..]),
        None => (rest, &[][..]),
    };
    let mut req = RequestHead::new(
        METHODS[usize::from(first & 0x0f) % METHODS.len()],
        &String::from_utf8_lossy(target),
    );
    req.push_header("User-Agent", value);
    req.push_header("Content-Type", value);
    if first & 0x80 != 0 {
        req.push_header("Content-Length", value.len().to_string().as_bytes());
    }

    let iis = IIS.check(&req);
    assert_eq!(iis, IIS.check(&req));
    let modern = MODERN.check(&req);
    match (iis, modern) {
        (Ok(()), Ok(())) => {}
        (Err(a), Err(b)) => {
            assert_eq!(a.reason, b.reason);
            assert_eq!((a.status, a.sub), a.reason.iis_status());
            assert_eq!((b.status, b.sub), (b.reason.modern_status(), 0));
            assert!(!a.code().to_string().is_empty());
        }
        (a, b) => panic!("IIS {a:?}, modern {b:?}"),
    }
    assert_eq!(OPEN.check(&req), Ok(()));
});
