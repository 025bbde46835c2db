//! Entity tags (RFC 9110 §8.8.3) and their comparison (§8.8.3.2).

/// One entity tag. `opaque` is the quoted part, quotes included.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Tag<'a> {
    /// Whether it carried the `W/` prefix.
    pub weak: bool,
    /// `"…"`, quotes included.
    pub opaque: &'a [u8],
}

impl<'a> Tag<'a> {
    /// Parses a value that is exactly one entity tag (whitespace around it
    /// allowed).
    pub fn parse(value: &'a [u8]) -> Option<Tag<'a>> {
        let (tag, rest) = Tag::prefix(value.trim_ascii_start())?;
        rest.trim_ascii().is_empty().then_some(tag)
    }

    /// The entity tag at the start of `v` and what follows it.
    fn prefix(v: &'a [u8]) -> Option<(Tag<'a>, &'a [u8])> {
        let (weak, v) = match v.strip_prefix(b"W/") {
            Some(rest) => (true, rest),
            None => (false, v),
        };
        if v.first() != Some(&b'"') {
            return None;
        }
        let end = 1 + v[1..].iter().position(|b| *b == b'"')?;
        if !v[1..end].iter().all(|b| is_etagc(*b)) {
            return None;
        }
        Some((
            Tag {
                weak,
                opaque: &v[..=end],
            },
            &v[end + 1..],
        ))
    }

    /// Strong comparison: neither is weak and the opaque parts are equal.
    pub fn strong_eq(self, other: Tag<'_>) -> bool {
        !self.weak && !other.weak && self.opaque == other.opaque
    }

    /// Weak comparison: the opaque parts are equal, `W/` or not.
    pub fn weak_eq(self, other: Tag<'_>) -> bool {
        self.opaque == other.opaque
    }
}

/// `etagc = %x21 / %x23-7E / obs-text`.
fn is_etagc(b: u8) -> bool {
    b == 0x21 || (0x23..=0x7e).contains(&b) || b >= 0x80
}

/// Whether `hit` holds for some tag of the `#entity-tag` list `list`. Empty
/// list elements are skipped; parsing stops at the first element that is not
/// an entity tag, so nothing after it can match.
pub fn any(list: &[u8], mut hit: impl FnMut(Tag<'_>) -> bool) -> bool {
    let mut rest = list;
    loop {
        rest = rest.trim_ascii_start();
        while let Some(r) = rest.strip_prefix(b",") {
            rest = r.trim_ascii_start();
        }
        if rest.is_empty() {
            return false;
        }
        let Some((tag, after)) = Tag::prefix(rest) else {
            return false;
        };
        if hit(tag) {
            return true;
        }
        rest = after.trim_ascii_start();
        if !rest.is_empty() && !rest.starts_with(b",") {
            return false;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tag(s: &str) -> Tag<'_> {
        Tag::parse(s.as_bytes()).unwrap()
    }

    #[test]
    fn parses() {
        assert_eq!(
            tag(" \"a\" "),
            Tag {
                weak: false,
                opaque: b"\"a\""
            }
        );
        assert!(tag("W/\"a\"").weak);
        assert_eq!(tag("\"\"").opaque, b"\"\"");
        assert_eq!(tag("\"a,b\"").opaque, b"\"a,b\"");
        for bad in ["a", "\"a", "w/\"a\"", "\"a\"b", "\"a b\"", "W/ \"a\"", ""] {
            assert_eq!(Tag::parse(bad.as_bytes()), None, "{bad:?}");
        }
    }

    #[test]
    fn compares() {
        assert!(tag("\"1\"").strong_eq(tag("\"1\"")));
        assert!(!tag("W/\"1\"").strong_eq(tag("\"1\"")));
        assert!(!tag("\"1\"").strong_eq(tag("W/\"1\"")));
        assert!(!tag("W/\"1\"").strong_eq(tag("W/\"1\"")));
        assert!(tag("W/\"1\"").weak_eq(tag("W/\"1\"")));
        assert!(tag("W/\"1\"").weak_eq(tag("\"1\"")));
        assert!(!tag("\"1\"").weak_eq(tag("\"2\"")));
    }

    #[test]
    fn lists() {
        let has = |list: &str, want: &str| any(list.as_bytes(), |t| t.opaque == want.as_bytes());
        assert!(has("\"a\", \"b\"", "\"b\""));
        assert!(has(" , ,\"a\" ,, W/\"b\" ,", "\"b\""));
        assert!(has("\"x,y\", \"z\"", "\"x,y\""));
        assert!(!has("\"x,y\"", "\"y\""));
        assert!(!has("", "\"a\""));
        // Nothing after a malformed element matches.
        assert!(!has("bogus, \"a\"", "\"a\""));
        assert!(!has("\"a\" \"b\"", "\"b\""));
        assert!(has("\"a\", bogus", "\"a\""));
    }
}
