//! The `peregrine load` target URL parser (`peregrine::load::url::parse`).
//!
//! Properties:
//! - it never panics;
//! - an accepted URL round-trips: parsing `Target::url()` gives the same
//!   target;
//! - what the load generator would send is what the server accepts: the
//!   `Host` value passes the server's authority check, and the request
//!   `GET <path> HTTP/1.1` with that `Host` parses to the same path and
//!   host.
#![no_main]

use libfuzzer_sys::fuzz_target;
use peregrine::http::Limits;
use peregrine::http::parse::{header_buf, parse_head};
use peregrine::load::url::parse;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let Ok(t) = parse(text) else {
        return;
    };
    assert!(t.port > 0);
    assert!(t.path.starts_with('/'), "{t:?}");
    assert_eq!(parse(&t.url()).as_ref(), Ok(&t), "{:?}", t.url());
    assert!(
        peregrine::http::host::parse(t.authority.as_bytes()).is_some(),
        "Host {:?} refused by the server",
        t.authority
    );

    let req = format!("GET {} HTTP/1.1\r\nHost: {}\r\n\r\n", t.path, t.authority);
    let mut storage = header_buf();
    match parse_head(req.as_bytes(), &mut storage, &Limits::default()) {
        Ok(Some(h)) => {
            assert_eq!(h.req.target, t.path);
            assert_eq!(h.req.host(), Some(t.authority.as_str()));
        }
        other => panic!("the server answers {other:?} to {req:?}"),
    }
});
