//! The `Host` / authority validator (`peregrine::http::host::parse`).
//!
//! Properties:
//! - it never panics;
//! - an accepted value is split, not changed: host, then `:` and the port
//!   when there is one, gives back the input;
//! - the host is an IP literal in brackets or has no `[`, `]`, `:`, `@` or
//!   whitespace; the port is at most five digits;
//! - the request parser agrees: a `Host` header with this value (when it
//!   is one a header line can carry) is accepted exactly when the
//!   validator accepts it, and refused as `BadHost` otherwise.
#![no_main]

use libfuzzer_sys::fuzz_target;
use peregrine::http::host::parse;
use peregrine::http::parse::{header_buf, parse_head};
use peregrine::http::{Error, Limits};

fuzz_target!(|data: &[u8]| {
    let accepted = parse(data);
    if let Some(a) = accepted {
        let mut again = a.host.to_vec();
        if let Some(p) = a.port {
            again.push(b':');
            again.extend_from_slice(p);
        }
        assert_eq!(again, data);
        if a.host.first() == Some(&b'[') {
            assert_eq!(a.host.last(), Some(&b']'));
            assert!(a.host.len() > 2);
        } else {
            assert!(
                !a.host
                    .iter()
                    .any(|b| matches!(b, b'[' | b']' | b':' | b'@') || !b.is_ascii_graphic()),
                "{:?}",
                String::from_utf8_lossy(a.host)
            );
        }
        if let Some(p) = a.port {
            assert!(p.len() <= 5 && p.iter().all(u8::is_ascii_digit));
        }
    }

    // Values a header line carries unchanged: visible ASCII, no leading or
    // trailing whitespace (httparse trims it), nothing at all.
    if data.iter().all(u8::is_ascii_graphic) {
        let mut req = b"GET / HTTP/1.1\r\nHost: ".to_vec();
        req.extend_from_slice(data);
        req.extend_from_slice(b"\r\n\r\n");
        let mut storage = header_buf();
        match parse_head(&req, &mut storage, &Limits::default()) {
            Ok(Some(h)) => {
                assert!(
                    accepted.is_some(),
                    "the parser took a host the validator refuses"
                );
                assert_eq!(h.req.host().map(str::as_bytes), Some(data));
            }
            Ok(None) => panic!("a complete head read as partial"),
            Err(e) => {
                assert!(accepted.is_none(), "refused with {e:?}");
                assert_eq!(e, Error::BadHost);
            }
        }
    }
});
