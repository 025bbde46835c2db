//! Redirect targets and `hide` globs: the two small languages of route
//! configuration (`peregrine::site::template`, `peregrine::handler::glob`).
//!
//! Properties:
//! - neither ever panics;
//! - a template that parses renders; with every value empty its output is
//!   its literal text only, so never longer than the template;
//! - a glob without `*` or `?` matches exactly itself; `*` matches exactly
//!   the texts without `/`.
#![no_main]

use libfuzzer_sys::fuzz_target;
use peregrine::handler::glob;
use peregrine::site::template::{Template, Values};

fuzz_target!(|data: &[u8]| {
    let Some((&split, rest)) = data.split_first() else {
        return;
    };

    if let Ok(s) = std::str::from_utf8(rest)
        && let Ok(t) = Template::parse(s)
    {
        let full = Values {
            host: "h",
            path: "/p",
            rest: "/r",
            query: Some("q=1"),
            scheme: "https",
        };
        let _ = t.render(&full);
        let empty = Values {
            host: "",
            path: "",
            rest: "",
            query: None,
            scheme: "",
        };
        let out = t.render(&empty);
        assert!(out.len() <= s.len(), "{s:?} -> {out:?}");
    }

    let at = usize::from(split) * rest.len() / 256;
    let (pattern, text) = rest.split_at(at);
    let m = glob::matches(pattern, text);
    if !pattern.iter().any(|b| matches!(b, b'*' | b'?')) {
        assert_eq!(m, pattern == text, "{pattern:?} {text:?}");
    }
    assert_eq!(glob::matches(b"*", text), !text.contains(&b'/'), "{text:?}");
});
