//! A set of refused strings, found in a stream of bytes one byte at a time
//! (so decoded text needs no buffer).

use aho_corasick::automaton::{Automaton, StateID};
use aho_corasick::dfa::DFA;
use aho_corasick::{Anchored, MatchKind, StartKind};

/// Strings to find anywhere in a byte stream, ASCII case-insensitive.
#[derive(Clone, Debug)]
pub(super) struct Seqs {
    /// `None` when there is nothing to find.
    dfa: Option<DFA>,
}

impl Seqs {
    /// The set of `strings`; empty strings are left out (they would match
    /// everything).
    pub(super) fn new<S: AsRef<str>>(strings: &[S]) -> Result<Seqs, String> {
        let patterns: Vec<&[u8]> = strings
            .iter()
            .map(|s| s.as_ref().as_bytes())
            .filter(|s| !s.is_empty())
            .collect();
        if patterns.is_empty() {
            return Ok(Seqs { dfa: None });
        }
        let dfa = DFA::builder()
            .match_kind(MatchKind::Standard)
            .start_kind(StartKind::Unanchored)
            .ascii_case_insensitive(true)
            .prefilter(false)
            .build(patterns)
            .map_err(|e| format!("cannot compile the strings to find: {e}"))?;
        Ok(Seqs { dfa: Some(dfa) })
    }

    /// Whether there is nothing to find.
    pub(super) fn is_empty(&self) -> bool {
        self.dfa.is_none()
    }

    /// A search that is fed bytes one by one.
    pub(super) fn search(&self) -> Search<'_> {
        let state = self.dfa.as_ref().map(|d| {
            let sid = d
                .start_state(Anchored::No)
                .expect("built for unanchored searches");
            (d, sid)
        });
        Search {
            state,
            found: false,
        }
    }

    /// Whether one of the strings is in `bytes`.
    pub(super) fn found_in(&self, bytes: impl IntoIterator<Item = u8>) -> bool {
        if self.is_empty() {
            return false;
        }
        let mut s = self.search();
        for b in bytes {
            s.push(b);
            if s.found {
                return true;
            }
        }
        false
    }
}

impl Seqs {
    /// Whether one of the strings is in `bytes` (a slice: the search loop
    /// is tight).
    pub(super) fn found_in_slice(&self, bytes: &[u8]) -> bool {
        let Some(dfa) = &self.dfa else { return false };
        let mut sid = dfa
            .start_state(Anchored::No)
            .expect("built for unanchored searches");
        for &b in bytes {
            sid = dfa.next_state(Anchored::No, sid, b);
            if dfa.is_special(sid) && dfa.is_match(sid) {
                return true;
            }
        }
        false
    }

    /// Whether one of the strings is in `raw` percent-decoded.
    pub(super) fn found_decoded(&self, raw: &[u8]) -> bool {
        if raw.contains(&b'%') {
            self.found_in(super::decode::Decoded::new(raw))
        } else {
            self.found_in_slice(raw)
        }
    }

    /// Whether one of the strings is in `raw`, as it is or percent-decoded.
    pub(super) fn found_raw_or_decoded(&self, raw: &[u8]) -> bool {
        self.found_in_slice(raw)
            || (raw.contains(&b'%') && self.found_in(super::decode::Decoded::new(raw)))
    }
}

/// A search in progress.
pub(super) struct Search<'a> {
    /// The automaton and its state; `None` when there is nothing to find.
    state: Option<(&'a DFA, StateID)>,
    /// Whether a string was found.
    pub(super) found: bool,
}

impl Search<'_> {
    /// Feeds the next byte.
    pub(super) fn push(&mut self, b: u8) {
        if let Some((dfa, sid)) = &mut self.state {
            *sid = dfa.next_state(Anchored::No, *sid, b);
            // Standard semantics: a state holds every string that ends
            // there, those of its suffixes too.
            if dfa.is_special(*sid) && dfa.is_match(*sid) {
                self.found = true;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_any_string_case_insensitively() {
        let s = Seqs::new(&["union select", "..", "b"]).unwrap();
        assert!(s.found_in(*b"1 UNION Select 2"));
        assert!(s.found_in(*b"/a/../c"));
        assert!(s.found_in(*b"xxxB"));
        assert!(!s.found_in(*b"union  select /a/./c"));
        assert!(!s.found_in(*b""));
        assert!(s.found_in_slice(b"1 UNION Select 2"));
        assert!(!s.found_in_slice(b"union  select"));
        assert!(s.found_decoded(b"/a/%2E%2e/c"));
        assert!(!s.found_decoded(b"/a/%2E/c"));
        assert!(s.found_raw_or_decoded(b"%2e%2e"));
        assert!(s.found_raw_or_decoded(b"x.."));
        assert!(!s.found_raw_or_decoded(b"%2e/"));
    }

    #[test]
    fn overlapping_and_suffix_strings() {
        // "abcd" is a prefix path in which "bc" ends: found on the way.
        let s = Seqs::new(&["abcd", "bc"]).unwrap();
        assert!(s.found_in(*b"xabcx"));
        let s = Seqs::new(&["aab"]).unwrap();
        assert!(s.found_in(*b"aaab"));
    }

    #[test]
    fn empty_strings_find_nothing() {
        let s = Seqs::new(&["", ""]).unwrap();
        assert!(s.is_empty());
        assert!(!s.found_in(*b"anything"));
        let none: [&str; 0] = [];
        assert!(!Seqs::new(&none).unwrap().found_in(*b"x"));
    }
}
