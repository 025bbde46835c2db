//! Conditional requests (RFC 9110 §13) and single byte ranges (§14).

/// Whether an `If-None-Match` value matches `etag` (weak comparison).
pub fn none_match(header: &[u8], etag: &str) -> bool {
    let header = header.trim_ascii();
    if header == b"*" {
        return true;
    }
    let want = strip_weak(etag.as_bytes());
    header
        .split(|b| *b == b',')
        .any(|t| strip_weak(t.trim_ascii()) == want)
}

fn strip_weak(tag: &[u8]) -> &[u8] {
    tag.strip_prefix(b"W/").unwrap_or(tag)
}

/// Whether an `If-Modified-Since` value says the client's copy (of a file last
/// modified at `mtime` epoch seconds) is current. Unparsable dates say no.
pub fn not_modified_since(header: &[u8], mtime: u64) -> bool {
    std::str::from_utf8(header)
        .ok()
        .and_then(|s| httpdate::parse_http_date(s.trim()).ok())
        .is_some_and(|t| super::file_cache::epoch_secs(t) >= mtime)
}

/// Whether an `If-Range` value still matches the representation: a strong
/// entity-tag equal to `etag`, or exactly its `Last-Modified` date.
pub fn if_range_matches(header: &[u8], etag: &str, last_modified: &str) -> bool {
    let h = header.trim_ascii();
    if h.starts_with(b"W/") {
        false
    } else if h.starts_with(b"\"") {
        h == etag.as_bytes()
    } else {
        h == last_modified.as_bytes()
    }
}

/// The outcome of a `Range` header against a representation of `size` bytes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Range {
    /// No usable single range: send the whole representation (200). Invalid,
    /// multi-range and non-`bytes` headers land here, as RFC 9110 allows.
    Full,
    /// Send `len` bytes from `start` (206).
    Part {
        /// First byte.
        start: u64,
        /// Number of bytes.
        len: u64,
    },
    /// The range starts past the end (416).
    Unsatisfiable,
}

/// Interprets a `Range` header.
pub fn range(header: &[u8], size: u64) -> Range {
    let Some(spec) = header.trim_ascii().strip_prefix(b"bytes=") else {
        return Range::Full;
    };
    let spec = spec.trim_ascii();
    if spec.contains(&b',') {
        return Range::Full;
    }
    let Some(dash) = spec.iter().position(|b| *b == b'-') else {
        return Range::Full;
    };
    let (first, last) = (&spec[..dash], &spec[dash + 1..]);
    match (number(first), number(last)) {
        // bytes=-N: the last N bytes.
        (None, Some(n)) if first.is_empty() => {
            if n == 0 || size == 0 {
                Range::Unsatisfiable
            } else {
                let len = n.min(size);
                Range::Part {
                    start: size - len,
                    len,
                }
            }
        }
        (Some(start), None) if last.is_empty() => {
            if start >= size {
                Range::Unsatisfiable
            } else {
                Range::Part {
                    start,
                    len: size - start,
                }
            }
        }
        (Some(start), Some(end)) if start <= end => {
            if start >= size {
                Range::Unsatisfiable
            } else {
                Range::Part {
                    start,
                    len: end.min(size - 1) - start + 1,
                }
            }
        }
        _ => Range::Full,
    }
}

fn number(s: &[u8]) -> Option<u64> {
    if s.is_empty() || s.len() > 19 || !s.iter().all(u8::is_ascii_digit) {
        return None;
    }
    std::str::from_utf8(s).ok()?.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ranges() {
        assert_eq!(range(b"bytes=0-9", 100), Range::Part { start: 0, len: 10 });
        assert_eq!(range(b"bytes=90-", 100), Range::Part { start: 90, len: 10 });
        assert_eq!(range(b"bytes=-10", 100), Range::Part { start: 90, len: 10 });
        assert_eq!(
            range(b"bytes=-500", 100),
            Range::Part { start: 0, len: 100 }
        );
        assert_eq!(
            range(b"bytes=50-500", 100),
            Range::Part { start: 50, len: 50 }
        );
        assert_eq!(range(b"bytes=100-", 100), Range::Unsatisfiable);
        assert_eq!(range(b"bytes=-0", 100), Range::Unsatisfiable);
        assert_eq!(range(b"bytes=5-1", 100), Range::Full);
        assert_eq!(range(b"bytes=0-1,5-6", 100), Range::Full);
        assert_eq!(range(b"items=0-1", 100), Range::Full);
        assert_eq!(range(b"bytes=a-b", 100), Range::Full);
    }

    #[test]
    fn validators() {
        assert!(none_match(b"\"a\", W/\"x-1\"", "\"x-1\""));
        assert!(none_match(b"*", "\"x\""));
        assert!(!none_match(b"\"y\"", "\"x\""));
        assert!(not_modified_since(
            b"Sun, 06 Nov 1994 08:49:37 GMT",
            784111777
        ));
        assert!(!not_modified_since(
            b"Sun, 06 Nov 1994 08:49:36 GMT",
            784111777
        ));
        assert!(!not_modified_since(b"garbage", 0));
        assert!(if_range_matches(b"\"x\"", "\"x\"", "d"));
        assert!(!if_range_matches(b"W/\"x\"", "\"x\"", "d"));
        assert!(if_range_matches(b"d", "\"x\"", "d"));
    }
}
