//! The compiled filter and its decision for a request head.

use super::decode::{decoded_eq, decoded_starts_with};
use super::path::{PathFacts, scan};
use super::refusal::{Reason, Refusal};
use super::seqs::Seqs;
use super::spec::{FilterSpec, ListSpec};
use crate::exchange::RequestHead;

/// A [`FilterSpec`] compiled for checking requests: built once per
/// configuration generation, then shared by every request (it is `Send` and
/// `Sync`, and checks allocate nothing).
#[derive(Clone, Debug)]
pub struct Filter {
    always_allowed: Vec<Box<[u8]>>,
    max_content_length: Option<u64>,
    max_url: Option<u32>,
    max_query_string: Option<u32>,
    max_url_segments: Option<u32>,
    header_limits: Vec<(Box<str>, u32)>,
    allow_double_escaping: bool,
    allow_high_bit_characters: bool,
    verbs: Lists,
    extensions: Lists,
    hidden: Vec<Box<[u8]>>,
    url_sequences: Seqs,
    query_sequences: Seqs,
    rules: Vec<Rule>,
    modern: bool,
}

/// An allow and a deny list (entries compared ASCII case-insensitively).
#[derive(Clone, Debug)]
struct Lists {
    allow_unlisted: bool,
    allow: Vec<Box<[u8]>>,
    deny: Vec<Box<[u8]>>,
}

impl Lists {
    fn new(spec: &ListSpec) -> Lists {
        let bytes = |v: &[String]| v.iter().map(|s| s.as_bytes().into()).collect();
        Lists {
            allow_unlisted: spec.allow_unlisted,
            allow: bytes(&spec.allow),
            deny: bytes(&spec.deny),
        }
    }

    /// Whether the value that `is` recognises passes.
    fn permits(&self, is: impl Fn(&[u8]) -> bool) -> bool {
        if self.deny.iter().any(|d| is(d)) {
            return false;
        }
        self.allow_unlisted || self.allow.iter().any(|a| is(a))
    }
}

/// A compiled filtering rule.
#[derive(Clone, Debug)]
struct Rule {
    scan_url: bool,
    scan_query_string: bool,
    scan_headers: Vec<Box<str>>,
    applies_to: Vec<Box<[u8]>>,
    deny: Seqs,
}

impl Rule {
    /// Whether the rule applies to the request and finds one of its strings.
    fn finds(&self, req: &RequestHead, path: &[u8], query: &[u8], f: &PathFacts) -> bool {
        if !self.applies_to.is_empty() && !self.applies_to.iter().any(|e| ext_is(path, &f.ext, e)) {
            return false;
        }
        let deny = &self.deny;
        (self.scan_url && deny.found_decoded(path))
            || (self.scan_query_string && deny.found_raw_or_decoded(query))
            || (!self.scan_headers.is_empty()
                && req.headers().any(|(name, value)| {
                    self.scan_headers
                        .iter()
                        .any(|h| h.eq_ignore_ascii_case(name))
                        && deny.found_in_slice(value)
                }))
    }
}

/// Whether the extension of a path (`ext`, its raw bytes from the dot, or
/// `None`) is `entry`: `"."` stands for a last segment without an
/// extension (none, or a trailing dot).
fn ext_is(path: &[u8], ext: &Option<std::ops::Range<usize>>, entry: &[u8]) -> bool {
    match ext {
        None => entry == b".",
        Some(r) => decoded_eq(&path[r.clone()], entry),
    }
}

/// The value of a `Content-Length` field; `None` when it is not digits (the
/// request parser refuses those), saturating when it overflows.
fn content_length(v: &[u8]) -> Option<u64> {
    let v = v.trim_ascii();
    if v.is_empty() || !v.iter().all(u8::is_ascii_digit) {
        return None;
    }
    Some(v.iter().fold(0u64, |n, d| {
        n.saturating_mul(10).saturating_add(u64::from(d - b'0'))
    }))
}

impl Filter {
    /// Compiles `spec`. Empty strings in its lists and rules are left out
    /// (they would match every request). Fails only when its strings are
    /// too many to compile.
    pub fn new(spec: &FilterSpec) -> Result<Filter, String> {
        let bytes = |v: &[String]| -> Vec<Box<[u8]>> {
            v.iter()
                .filter(|s| !s.is_empty())
                .map(|s| s.as_bytes().into())
                .collect()
        };
        let mut rules = Vec::with_capacity(spec.rules.len());
        for r in &spec.rules {
            let deny = Seqs::new(&r.deny_strings).map_err(|e| format!("rule {:?}: {e}", r.name))?;
            rules.push(Rule {
                scan_url: r.scan_url,
                scan_query_string: r.scan_query_string,
                scan_headers: r.scan_headers.iter().map(|h| h.as_str().into()).collect(),
                applies_to: r.applies_to.iter().map(|e| e.as_bytes().into()).collect(),
                deny,
            });
        }
        let l = &spec.limits;
        Ok(Filter {
            always_allowed: spec
                .always_allowed_urls
                .iter()
                .map(|s| s.as_bytes().into())
                .collect(),
            max_content_length: l.max_allowed_content_length,
            max_url: l.max_url,
            max_query_string: l.max_query_string,
            max_url_segments: l.max_url_segments,
            header_limits: l
                .header_limits
                .iter()
                .map(|(n, max)| (n.as_str().into(), *max))
                .collect(),
            allow_double_escaping: spec.allow_double_escaping,
            allow_high_bit_characters: spec.allow_high_bit_characters,
            verbs: Lists::new(&spec.verbs),
            extensions: Lists::new(&spec.file_extensions),
            hidden: bytes(&spec.hidden_segments),
            url_sequences: Seqs::new(&spec.deny_url_sequences)?,
            query_sequences: Seqs::new(&spec.deny_query_string_sequences)?,
            rules,
            modern: spec.modern_status,
        })
    }

    /// The most body bytes a request may send (`None`: no limit), to cut a
    /// body without `Content-Length` that grows past it. It is the same for
    /// every path: `always_allowed_urls` do not lift it.
    pub fn max_content_length(&self) -> Option<u64> {
        self.max_content_length
    }

    /// Checks a request head, the checks in IIS's order; the first that
    /// fails gives the refusal. Allocates nothing.
    pub fn check(&self, req: &RequestHead) -> Result<(), Refusal> {
        self.first_failure(req)
            .map_or(Ok(()), |r| Err(Refusal::of(r, self.modern)))
    }

    fn first_failure(&self, req: &RequestHead) -> Option<Reason> {
        let path = req.path().as_bytes();
        let query = req.query().unwrap_or("").as_bytes();
        let f = scan(path, &self.hidden, &self.url_sequences);
        // A `.` or `..` segment could climb out of the prefix once resolved.
        if !f.dot_segment
            && self
                .always_allowed
                .iter()
                .any(|p| decoded_starts_with(path, p))
        {
            return None;
        }
        if let Some(r) = self.limits(req, path, query, &f) {
            return Some(r);
        }
        if f.double_escape && !self.allow_double_escaping {
            return Some(Reason::DoubleEscape);
        }
        if f.high_bit && !self.allow_high_bit_characters {
            return Some(Reason::HighBit);
        }
        let verb = req.method.as_str().as_bytes();
        if !self.verbs.permits(|v| v.eq_ignore_ascii_case(verb)) {
            return Some(Reason::Verb);
        }
        if !self.extensions.permits(|e| ext_is(path, &f.ext, e)) {
            return Some(Reason::Extension);
        }
        if f.hidden {
            return Some(Reason::HiddenSegment);
        }
        if f.sequence {
            return Some(Reason::UrlSequence);
        }
        if self.query_sequences.found_raw_or_decoded(query) {
            return Some(Reason::QuerySequence);
        }
        if self.rules.iter().any(|r| r.finds(req, path, query, &f)) {
            return Some(Reason::Rule);
        }
        None
    }

    /// The request limits, in order: content length, path length, query
    /// length, segments, header fields.
    fn limits(
        &self,
        req: &RequestHead,
        path: &[u8],
        query: &[u8],
        f: &PathFacts,
    ) -> Option<Reason> {
        if let Some(max) = self.max_content_length
            && req
                .header("content-length")
                .and_then(content_length)
                .is_some_and(|n| n > max)
        {
            return Some(Reason::ContentLength);
        }
        let over = |len: usize, max: Option<u32>| max.is_some_and(|m| len > m as usize);
        if over(path.len(), self.max_url) {
            return Some(Reason::UrlTooLong);
        }
        if over(query.len(), self.max_query_string) {
            return Some(Reason::QueryTooLong);
        }
        if over(f.segments, self.max_url_segments) {
            return Some(Reason::TooManySegments);
        }
        if !self.header_limits.is_empty() {
            for (name, value) in req.headers() {
                let limit = self
                    .header_limits
                    .iter()
                    .find(|(n, _)| n.eq_ignore_ascii_case(name));
                if let Some((_, max)) = limit
                    && (*max == 0 || value.len() > *max as usize)
                {
                    return Some(Reason::Header);
                }
            }
        }
        None
    }
}
