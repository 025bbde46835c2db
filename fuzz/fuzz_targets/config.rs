//! The TOML configuration file (`peregrine::config::parse`), which checks
//! every value (listen addresses, durations like `"30s"`, limits, TLS and
//! access-log sections) without touching the file system.
//!
//! Properties:
//! - it never panics;
//! - an error names a line inside the text (or none) and has a message;
//! - an accepted configuration passes its own checks again: parsing its
//!   text twice gives the same configuration.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    match peregrine::config::parse(text, None) {
        Ok(c) => {
            assert_eq!(peregrine::config::parse(text, None).ok(), Some(c));
        }
        Err(e) => {
            let lines = text.lines().count().max(1);
            if let Some(line) = e.line {
                assert!((1..=lines + 1).contains(&line), "line {line} of {lines}");
            }
            assert!(!e.message.is_empty());
        }
    }
});
