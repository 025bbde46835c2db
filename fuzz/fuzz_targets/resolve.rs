//! Request path to file path (`peregrine::handler::path::resolve`).
//!
//! Properties:
//! - it never panics;
//! - an accepted path never leaves the root: no NUL, no backslash, no
//!   leading `/`, no empty, `.` or `..` segment, and joined under a root
//!   directory it stays under it (no parent or root components);
//! - it is a fixed point: percent-encoding the result again (where needed)
//!   and resolving it gives the same bytes.
#![no_main]

use std::ffi::OsStr;
use std::os::unix::ffi::OsStrExt;
use std::path::{Component, Path};

use libfuzzer_sys::fuzz_target;
use peregrine::handler::path::resolve;

fuzz_target!(|data: &[u8]| {
    let Ok(path) = std::str::from_utf8(data) else {
        return;
    };
    let Ok(rel) = resolve(path) else {
        return;
    };
    assert!(!rel.contains(&0) && !rel.contains(&b'\\'), "{rel:?}");
    if !rel.is_empty() {
        for seg in rel.split(|b| *b == b'/') {
            assert!(
                !matches!(seg, b"" | b"." | b".."),
                "segment {seg:?} in {rel:?}"
            );
        }
    }
    let root = Path::new("/srv/root");
    let full = root.join(OsStr::from_bytes(&rel));
    assert!(full.starts_with(root), "{full:?}");
    assert!(
        full.components()
            .skip(root.components().count())
            .all(|c| matches!(c, Component::Normal(_))),
        "{full:?}"
    );

    let mut again = String::from("/");
    for &b in &rel {
        if b.is_ascii_graphic() && b != b'%' {
            again.push(char::from(b));
        } else {
            again.push_str(&format!("%{b:02X}"));
        }
    }
    assert_eq!(resolve(&again).as_ref(), Ok(&rel), "{again:?}");
});
