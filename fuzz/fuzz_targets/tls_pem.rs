//! Certificate and private-key PEM parsing with readable errors
//! (`peregrine::tls::pem`).
//!
//! Properties:
//! - it never panics, whatever the bytes (PEM framing, base64, DER);
//! - an error is one sentence that starts with the file it is about;
//! - an accepted chain has at least one certificate; accepting as a served
//!   chain (version 3 required) implies accepting the same certificates as a
//!   CA bundle.
#![no_main]

use std::path::Path;

use libfuzzer_sys::fuzz_target;
use peregrine::tls::Source;
use peregrine::tls::pem::{certificates, private_key};

fuzz_target!(|data: &[u8]| {
    let src = Source {
        key: "tls.cert",
        path: Path::new("fuzz.pem"),
    };
    let prefix = "tls.cert: fuzz.pem: ";
    let served = certificates(src, data, true);
    let bundle = certificates(src, data, false);
    for r in [&served, &bundle] {
        match r {
            Ok(certs) => assert!(!certs.is_empty()),
            Err(e) => {
                assert!(e.starts_with(prefix), "{e}");
                assert!(!e.contains('\n'), "{e}");
            }
        }
    }
    if let Ok(certs) = &served {
        assert_eq!(bundle.as_ref().ok(), Some(certs));
    }
    match private_key(src, data) {
        Ok(_) => {}
        Err(e) => assert!(e.starts_with(prefix) && !e.contains('\n'), "{e}"),
    }
});
