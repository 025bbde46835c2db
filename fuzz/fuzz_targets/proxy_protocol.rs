//! The PROXY protocol header parser (`peregrine::ipnet::proxy_protocol`).
//!
//! Properties:
//! - it never panics;
//! - a header takes at most the bytes given and at most `MAX_HEADER`; the
//!   bytes it took, alone, read as the same header, and every shorter
//!   beginning of them asks for more;
//! - source and destination come together or not at all;
//! - it asks for more only while fewer than `MAX_HEADER` bytes are given;
//! - once refused, more bytes never make it acceptable.
#![no_main]

use libfuzzer_sys::fuzz_target;
use peregrine::ipnet::proxy_protocol::{MAX_HEADER, parse};

fuzz_target!(|data: &[u8]| {
    match parse(data) {
        Ok(Some((h, n))) => {
            assert!(n <= data.len() && n <= MAX_HEADER, "{n} of {}", data.len());
            assert_eq!(h.source.is_some(), h.destination.is_some());
            assert_eq!(parse(&data[..n]), Ok(Some((h, n))));
            for k in 0..n {
                assert_eq!(parse(&data[..k]), Ok(None), "beginning of {k} of {n}");
            }
        }
        Ok(None) => assert!(data.len() < MAX_HEADER, "{} bytes", data.len()),
        Err(e) => {
            assert!(!e.to_string().is_empty());
            for more in [&b"\r\n"[..], &[0; 64], &[b' '; 600]] {
                let mut longer = data.to_vec();
                longer.extend_from_slice(more);
                assert!(parse(&longer).is_err(), "{e} mended by more bytes");
            }
        }
    }
});
