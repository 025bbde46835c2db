//! One pass over a request path, decoding it on the fly, that gathers what
//! the checks on it need.

use std::ops::Range;

use super::decode::{Decoded, EscapeSeen, decoded_eq};
use super::seqs::Seqs;

/// What a path holds, once decoded.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(super) struct PathFacts {
    /// The number of `/` in the decoded path.
    pub(super) segments: usize,
    /// The decoded path holds a `%XX` escape.
    pub(super) double_escape: bool,
    /// A byte of 0x80 or above, raw or decoded.
    pub(super) high_bit: bool,
    /// A segment is `.` or `..`.
    pub(super) dot_segment: bool,
    /// A segment is one of the hidden ones.
    pub(super) hidden: bool,
    /// One of the refused URL sequences is in the decoded path.
    pub(super) sequence: bool,
    /// The extension of the last segment: the raw bytes from its last
    /// decoded `.` to the end; `None` when it has no dot.
    pub(super) ext: Option<Range<usize>>,
}

/// Scans `path` (raw, percent-encoded) for `hidden` segments (lowercase) and
/// the sequences of `seqs`.
pub(super) fn scan(path: &[u8], hidden: &[Box<[u8]>], seqs: &Seqs) -> PathFacts {
    if path.contains(&b'%') {
        return scan_decoding(path, hidden, seqs);
    }
    let f = scan_plain(path, hidden, seqs);
    debug_assert_eq!(f, scan_decoding(path, hidden, seqs), "{path:?}");
    f
}

/// [`scan`] of a path without `%`: it decodes to itself, so the checks run
/// on whole slices.
fn scan_plain(path: &[u8], hidden: &[Box<[u8]>], seqs: &Seqs) -> PathFacts {
    let mut f = PathFacts {
        high_bit: !path.is_ascii(),
        sequence: seqs.found_in_slice(path),
        ..PathFacts::default()
    };
    for seg in path.split(|b| *b == b'/').filter(|s| !s.is_empty()) {
        f.dot_segment |= seg.len() <= 2 && seg.iter().all(|b| *b == b'.');
        f.hidden |= hidden.iter().any(|h| seg.eq_ignore_ascii_case(h));
    }
    f.segments = path.iter().filter(|b| **b == b'/').count();
    let last = path.iter().rposition(|b| *b == b'/').map_or(0, |i| i + 1);
    f.ext = path[last..]
        .iter()
        .rposition(|b| *b == b'.')
        .map(|i| last + i..path.len());
    f
}

/// [`scan`] decoding as it goes.
fn scan_decoding(path: &[u8], hidden: &[Box<[u8]>], seqs: &Seqs) -> PathFacts {
    let mut f = PathFacts::default();
    let mut escape = EscapeSeen::default();
    let mut search = seqs.search();
    let mut d = Decoded::new(path);
    // The current segment: where it starts (raw), how long it is decoded,
    // whether it is all dots, and where its last dot is (raw).
    let mut seg_start = 0;
    let mut seg_len = 0usize;
    let mut all_dots = true;
    let mut dot = None;
    loop {
        let at = d.pos();
        let b = d.next();
        if matches!(b, None | Some(b'/')) {
            if all_dots && (1..=2).contains(&seg_len) {
                f.dot_segment = true;
            }
            if seg_len > 0 && hidden.iter().any(|h| decoded_eq(&path[seg_start..at], h)) {
                f.hidden = true;
            }
        }
        let Some(b) = b else { break };
        escape.push(b);
        search.push(b);
        f.high_bit |= b >= 0x80;
        if b == b'/' {
            f.segments += 1;
            seg_start = d.pos();
            seg_len = 0;
            all_dots = true;
            dot = None;
            continue;
        }
        seg_len += 1;
        all_dots &= b == b'.';
        if b == b'.' {
            dot = Some(at);
        }
    }
    f.double_escape = escape.seen;
    f.sequence = search.found;
    f.ext = dot.map(|at| at..path.len());
    f
}

#[cfg(test)]
mod tests {
    use super::*;

    fn facts(path: &str, hidden: &[&str], seqs: &[&str]) -> PathFacts {
        let hidden: Vec<Box<[u8]>> = hidden.iter().map(|h| h.as_bytes().into()).collect();
        scan(path.as_bytes(), &hidden, &Seqs::new(seqs).unwrap())
    }

    #[test]
    fn segments_count_slashes_of_the_decoded_path() {
        assert_eq!(facts("/", &[], &[]).segments, 1);
        assert_eq!(facts("/a/b", &[], &[]).segments, 2);
        assert_eq!(facts("/a/", &[], &[]).segments, 2);
        assert_eq!(facts("/a%2fb", &[], &[]).segments, 2);
        assert_eq!(facts("", &[], &[]).segments, 0);
    }

    #[test]
    fn extension_of_the_last_segment() {
        let ext = |p: &str| facts(p, &[], &[]).ext.map(|r| p[r].to_string());
        assert_eq!(ext("/a/b.PHP").as_deref(), Some(".PHP"));
        assert_eq!(ext("/a.d/b"), None);
        assert_eq!(ext("/a/b.tar.gz").as_deref(), Some(".gz"));
        assert_eq!(ext("/a/b.").as_deref(), Some("."));
        assert_eq!(ext("/a/b%2ephp").as_deref(), Some("%2ephp"));
        assert_eq!(ext("/a.php%2fb"), None);
        assert_eq!(ext("/a/.env").as_deref(), Some(".env"));
        assert_eq!(ext("/"), None);
    }

    #[test]
    fn dot_segments_raw_or_encoded() {
        for p in ["/a/../b", "/a/./b", "/..", "/a/%2e%2E/b", "/a/.%2e", "."] {
            assert!(facts(p, &[], &[]).dot_segment, "{p}");
        }
        for p in ["/a/.../b", "/a/..b", "/a.", "/", "//", "/a/b"] {
            assert!(!facts(p, &[], &[]).dot_segment, "{p}");
        }
    }

    #[test]
    fn hidden_segments_are_whole_and_decoded() {
        let hid = |p: &str| facts(p, &[".git", "bin"], &[]).hidden;
        assert!(hid("/.git/config"));
        assert!(hid("/x/.GIT"));
        assert!(hid("/%2egit/"));
        assert!(hid("/a%2fbin"));
        assert!(hid("/BIN"));
        assert!(!hid("/.gitignore"));
        assert!(!hid("/cabin/x"));
        assert!(!hid("/bin.txt"));
        assert!(!hid("//"));
    }

    #[test]
    fn paths_without_escapes_scan_alike_both_ways() {
        let hidden: Vec<Box<[u8]>> = [".git", "bin"]
            .iter()
            .map(|h| h.as_bytes().into())
            .collect();
        let seqs = Seqs::new(&["..", "//", "union select"]).unwrap();
        for p in [
            "",
            "/",
            "//",
            "/a",
            "/a/",
            "/.git",
            "/x/.GIT/y",
            "/bin",
            "/cabin",
            "/a/../b",
            "/a/./b",
            "/.",
            "/..",
            "/...",
            "/a.",
            "/a/b.tar.gz",
            "/a.d/b",
            "/é",
            "/a union select",
            ".",
            "a",
            "/plaintext",
            "/static/4k.bin",
        ] {
            let b = p.as_bytes();
            assert_eq!(
                scan_plain(b, &hidden, &seqs),
                scan_decoding(b, &hidden, &seqs),
                "{p}"
            );
        }
    }

    #[test]
    fn escapes_high_bit_and_sequences() {
        assert!(facts("/%252e", &[], &[]).double_escape);
        assert!(!facts("/%2e", &[], &[]).double_escape);
        assert!(!facts("/100%", &[], &[]).double_escape);
        assert!(facts("/%c3%a9", &[], &[]).high_bit);
        assert!(facts("/é", &[], &[]).high_bit);
        assert!(!facts("/e", &[], &[]).high_bit);
        assert!(facts("/a/%2E%2e/b", &[], &[".."]).sequence);
        assert!(facts("/a//b", &[], &["//"]).sequence);
        assert!(!facts("/a/b", &[], &["..", "//"]).sequence);
    }
}
