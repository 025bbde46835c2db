//! Glob patterns for names never served nor listed (`hide = ["*.bak"]`).
//!
//! `*` matches any run of bytes but `/`, `?` one byte but `/`; anything else
//! matches itself. A pattern without `/` is tried against every segment of
//! a path, one with `/` against the whole path below the root.

/// Whether `pattern` matches `text` entirely.
pub fn matches(pattern: &[u8], text: &[u8]) -> bool {
    // Iterative with one backtrack point: the last `*` seen.
    let (mut p, mut t) = (0, 0);
    let mut star: Option<(usize, usize)> = None;
    while t < text.len() {
        match pattern.get(p) {
            Some(b'*') => {
                star = Some((p, t));
                p += 1;
                continue;
            }
            Some(b'?') if text[t] != b'/' => {
                p += 1;
                t += 1;
                continue;
            }
            Some(&c) if c != b'?' && c == text[t] => {
                p += 1;
                t += 1;
                continue;
            }
            _ => {}
        }
        match star {
            // Let the last `*` take one more byte, unless that byte is `/`.
            Some((sp, st)) if text[st] != b'/' => {
                star = Some((sp, st + 1));
                p = sp + 1;
                t = st + 1;
            }
            _ => return false,
        }
    }
    pattern[p..].iter().all(|&c| c == b'*')
}

/// Whether `rel` (a normalized path below the root, `/`-separated) is hidden
/// by one of `patterns`.
pub fn hidden(patterns: &[String], rel: &[u8]) -> bool {
    patterns.iter().any(|pat| {
        let pat = pat.as_bytes();
        if pat.contains(&b'/') {
            let pat = pat.strip_prefix(b"/").unwrap_or(pat);
            // A directory pattern hides what is below it too.
            (0..=rel.len())
                .filter(|&i| i == rel.len() || rel[i] == b'/')
                .any(|i| matches(pat, &rel[..i]))
        } else {
            rel.split(|b| *b == b'/').any(|seg| matches(pat, seg))
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stars_and_questions() {
        assert!(matches(b"*.bak", b"a.bak"));
        assert!(matches(b"*.bak", b".bak"));
        assert!(!matches(b"*.bak", b"a.bak.txt"));
        assert!(matches(b"a?c", b"abc"));
        assert!(!matches(b"a?c", b"ac"));
        assert!(matches(b"*", b""));
        assert!(matches(b"a*b*c", b"aXXbYYc"));
        assert!(!matches(b"a*b*c", b"aXXbYY"));
        assert!(!matches(b"*", b"a/b"));
        assert!(matches(b"secret", b"secret"));
    }

    #[test]
    fn segments_and_paths() {
        let p = vec![
            "*.bak".to_string(),
            "private/*".to_string(),
            "/drafts".to_string(),
        ];
        assert!(hidden(&p, b"docs/old.bak"));
        assert!(hidden(&p, b"private/a.txt"));
        assert!(hidden(&p, b"drafts/x/y.html"));
        assert!(hidden(&p, b"drafts"));
        assert!(!hidden(&p, b"docs/private/a.txt"));
        assert!(!hidden(&p, b"docs/a.txt"));
        assert!(!hidden(&p, b"draftsman"));
    }
}
