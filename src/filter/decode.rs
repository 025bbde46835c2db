//! Percent-decoding on the fly, without a buffer, and the comparisons made
//! on decoded text.

/// The bytes of `raw` percent-decoded once: `%XX` with two hex digits is the
/// byte it names, anything else (a `%` not followed by two hex digits too)
/// stands for itself. `+` is not a space.
#[derive(Clone, Debug)]
pub(super) struct Decoded<'a> {
    raw: &'a [u8],
    pos: usize,
}

impl<'a> Decoded<'a> {
    pub(super) fn new(raw: &'a [u8]) -> Decoded<'a> {
        Decoded { raw, pos: 0 }
    }

    /// The offset in `raw` of what the next byte decodes from.
    pub(super) fn pos(&self) -> usize {
        self.pos
    }
}

impl Iterator for Decoded<'_> {
    type Item = u8;

    fn next(&mut self) -> Option<u8> {
        let b = *self.raw.get(self.pos)?;
        if b == b'%'
            && let Some(hi) = self.raw.get(self.pos + 1).and_then(|h| hex(*h))
            && let Some(lo) = self.raw.get(self.pos + 2).and_then(|l| hex(*l))
        {
            self.pos += 3;
            return Some(hi << 4 | lo);
        }
        self.pos += 1;
        Some(b)
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        let left = self.raw.len() - self.pos;
        (left.div_ceil(3), Some(left))
    }
}

/// The value of hex digit `b`.
pub(super) fn hex(b: u8) -> Option<u8> {
    match b {
        b'0'..=b'9' => Some(b - b'0'),
        b'a'..=b'f' => Some(b - b'a' + 10),
        b'A'..=b'F' => Some(b - b'A' + 10),
        _ => None,
    }
}

/// Whether `raw`, decoded, is `text` (ASCII case-insensitive).
pub(super) fn decoded_eq(raw: &[u8], text: &[u8]) -> bool {
    let mut d = Decoded::new(raw);
    text.iter()
        .all(|t| d.next().is_some_and(|b| b.eq_ignore_ascii_case(t)))
        && d.next().is_none()
}

/// Whether `raw`, decoded, starts with `text` (ASCII case-insensitive).
pub(super) fn decoded_starts_with(raw: &[u8], text: &[u8]) -> bool {
    let mut d = Decoded::new(raw);
    text.iter()
        .all(|t| d.next().is_some_and(|b| b.eq_ignore_ascii_case(t)))
}

/// Finds a `%XX` escape in a stream of decoded bytes: what decoding a
/// second time would change.
#[derive(Clone, Copy, Debug, Default)]
pub(super) struct EscapeSeen {
    /// Bytes of an escape seen so far: 0, 1 (`%`) or 2 (`%` and a digit).
    at: u8,
    /// Whether a whole escape was seen.
    pub(super) seen: bool,
}

impl EscapeSeen {
    pub(super) fn push(&mut self, b: u8) {
        self.at = match (self.at, b) {
            (2, _) if hex(b).is_some() => {
                self.seen = true;
                0
            }
            (1, _) if hex(b).is_some() => 2,
            (_, b'%') => 1,
            _ => 0,
        };
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn dec(s: &str) -> Vec<u8> {
        Decoded::new(s.as_bytes()).collect()
    }

    #[test]
    fn decodes_valid_escapes_only() {
        assert_eq!(dec("/a%20b"), b"/a b");
        assert_eq!(dec("%2e%2E"), b"..");
        assert_eq!(dec("%"), b"%");
        assert_eq!(dec("%4"), b"%4");
        assert_eq!(dec("%zz%41"), b"%zzA");
        assert_eq!(dec("%%41"), b"%A");
        assert_eq!(dec("a+b"), b"a+b");
        assert_eq!(dec("%252e"), b"%2e");
        assert_eq!(dec("%ff"), [0xff]);
    }

    #[test]
    fn offsets_follow_the_raw_text() {
        let mut d = Decoded::new(b"a%2fb");
        assert_eq!((d.next(), d.pos()), (Some(b'a'), 1));
        assert_eq!((d.next(), d.pos()), (Some(b'/'), 4));
        assert_eq!((d.next(), d.pos()), (Some(b'b'), 5));
        assert_eq!(d.next(), None);
    }

    #[test]
    fn comparisons() {
        assert!(decoded_eq(b"%2EGit", b".git"));
        assert!(!decoded_eq(b".gitx", b".git"));
        assert!(!decoded_eq(b".gi", b".git"));
        assert!(decoded_eq(b"", b""));
        assert!(decoded_starts_with(b"/%2Ewell-known/x", b"/.WELL-known/"));
        assert!(!decoded_starts_with(b"/.well", b"/.well-known/"));
    }

    #[test]
    fn escapes_in_decoded_text() {
        let seen = |s: &[u8]| {
            let mut e = EscapeSeen::default();
            s.iter().for_each(|b| e.push(*b));
            e.seen
        };
        assert!(seen(b"%2e"));
        assert!(seen(b"a%%41"));
        assert!(!seen(b"%A"));
        assert!(!seen(b"%g1"));
        assert!(!seen(b"100%"));
        assert!(seen(b"%4%41"));
    }
}
