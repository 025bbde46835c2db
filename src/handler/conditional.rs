//! Conditional requests (RFC 9110 §13) and single byte ranges (§14).
//!
//! [`Preconditions::evaluate`] applies `If-Match`, `If-Unmodified-Since`,
//! `If-None-Match`, `If-Modified-Since` and `If-Range` in the order of RFC 9110
//! §13.2.2 to the [`Validators`] of the representation a handler is about to
//! send. It knows nothing of the request type: a handler collects the header
//! values with [`Preconditions::from_fields`] (any iterator of name/value
//! pairs) or fills the fields itself, evaluates them once it knows that the
//! response without preconditions would be a 2xx (§13.2.1), and answers by the
//! [`Outcome`]: 304 or 412 carrying the same `ETag` / `Last-Modified` the full
//! response would carry, or the normal response.

use std::borrow::Cow;
use std::time::UNIX_EPOCH;

use crate::http::Method;

mod etag;

use etag::Tag;

/// What a handler knows about the representation it would send.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Validators<'a> {
    /// The `ETag` value as sent, quotes included (`"x"` or `W/"x"`).
    pub etag: Option<&'a str>,
    /// The last modification, whole seconds since the epoch.
    pub last_modified: Option<u64>,
}

/// The precondition fields of a request. A field sent on several lines holds
/// its values joined by `, ` (RFC 9110 §5.3).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Preconditions<'a> {
    /// `If-Match`
    pub if_match: Option<Cow<'a, [u8]>>,
    /// `If-Unmodified-Since`
    pub if_unmodified_since: Option<Cow<'a, [u8]>>,
    /// `If-None-Match`
    pub if_none_match: Option<Cow<'a, [u8]>>,
    /// `If-Modified-Since`
    pub if_modified_since: Option<Cow<'a, [u8]>>,
    /// `If-Range`
    pub if_range: Option<Cow<'a, [u8]>>,
}

/// What to answer after evaluating the preconditions.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Outcome {
    /// Send the normal response. When `range` is false a `Range` header must
    /// be ignored (the method is not GET, or `If-Range` did not match) and the
    /// whole representation sent.
    Proceed {
        /// Whether a `Range` header may be honoured.
        range: bool,
    },
    /// 304 Not Modified (GET or HEAD).
    NotModified,
    /// 412 Precondition Failed.
    PreconditionFailed,
}

impl<'a> Preconditions<'a> {
    /// Picks the precondition fields out of a request's header fields (names
    /// compared case-insensitively); other fields are skipped.
    pub fn from_fields<I>(fields: I) -> Preconditions<'a>
    where
        I: IntoIterator<Item = (&'a str, &'a [u8])>,
    {
        let mut p = Preconditions::default();
        for (name, value) in fields {
            let slot = if name.eq_ignore_ascii_case("if-match") {
                &mut p.if_match
            } else if name.eq_ignore_ascii_case("if-unmodified-since") {
                &mut p.if_unmodified_since
            } else if name.eq_ignore_ascii_case("if-none-match") {
                &mut p.if_none_match
            } else if name.eq_ignore_ascii_case("if-modified-since") {
                &mut p.if_modified_since
            } else if name.eq_ignore_ascii_case("if-range") {
                &mut p.if_range
            } else {
                continue;
            };
            match slot {
                None => *slot = Some(Cow::Borrowed(value)),
                Some(v) => {
                    let v = v.to_mut();
                    v.extend_from_slice(b", ");
                    v.extend_from_slice(value);
                }
            }
        }
        p
    }

    /// Evaluates the preconditions for `method` against the current
    /// representation (`None` when the resource has none), in the order of
    /// RFC 9110 §13.2.2:
    ///
    /// 1. `If-Match` false: 412. Strong comparison, so a weak tag never
    ///    matches; `*` matches any current representation.
    /// 2. Without `If-Match`, `If-Unmodified-Since` false (modified after the
    ///    date): 412.
    /// 3. `If-None-Match` false (weak comparison; `*` matches any current
    ///    representation): 304 for GET and HEAD, 412 for other methods.
    /// 4. Without `If-None-Match`, for GET and HEAD, `If-Modified-Since` false
    ///    (not modified since the date): 304.
    /// 5. For GET, `If-Range` decides whether a `Range` applies: a strong tag
    ///    equal to the current one, or exactly the modification date.
    ///
    /// A date that is not a valid HTTP-date (or a list of them) is ignored, as
    /// is a date condition when the representation has no modification time.
    pub fn evaluate(&self, method: Method, current: Option<&Validators<'_>>) -> Outcome {
        let exists = current.is_some();
        let tag = current
            .and_then(|v| v.etag)
            .and_then(|t| Tag::parse(t.as_bytes()));
        let mtime = current.and_then(|v| v.last_modified);
        let get_or_head = matches!(method, Method::Get | Method::Head);

        if let Some(v) = &self.if_match {
            if !if_match(v, exists, tag) {
                return Outcome::PreconditionFailed;
            }
        } else if let (Some(date), Some(mtime)) = (date(&self.if_unmodified_since), mtime)
            && mtime > date
        {
            return Outcome::PreconditionFailed;
        }

        if let Some(v) = &self.if_none_match {
            if !if_none_match(v, exists, tag) {
                return if get_or_head {
                    Outcome::NotModified
                } else {
                    Outcome::PreconditionFailed
                };
            }
        } else if get_or_head
            && let (Some(date), Some(mtime)) = (date(&self.if_modified_since), mtime)
            && mtime <= date
        {
            return Outcome::NotModified;
        }

        let range = method == Method::Get
            && self
                .if_range
                .as_deref()
                .is_none_or(|v| if_range(v, tag, mtime));
        Outcome::Proceed { range }
    }
}

fn is_star(v: &[u8]) -> bool {
    v.trim_ascii() == b"*"
}

/// `If-Match` (§13.1.1): true for `*` when a representation exists, or when a
/// listed tag strongly matches the current one.
fn if_match(v: &[u8], exists: bool, current: Option<Tag<'_>>) -> bool {
    if is_star(v) {
        return exists;
    }
    current.is_some_and(|c| etag::any(v, |t| t.strong_eq(c)))
}

/// `If-None-Match` (§13.1.2): false for `*` when a representation exists, or
/// when a listed tag weakly matches the current one.
fn if_none_match(v: &[u8], exists: bool, current: Option<Tag<'_>>) -> bool {
    if is_star(v) {
        return !exists;
    }
    !current.is_some_and(|c| etag::any(v, |t| t.weak_eq(c)))
}

/// `If-Range` (§13.1.5): an entity tag (it starts with `"` or `W/`) must match
/// strongly; anything else must be a date equal to the modification time.
fn if_range(v: &[u8], current: Option<Tag<'_>>, mtime: Option<u64>) -> bool {
    let v = v.trim_ascii();
    if v.starts_with(b"\"") || v.starts_with(b"W/") {
        return Tag::parse(v)
            .zip(current)
            .is_some_and(|(t, c)| t.strong_eq(c));
    }
    mtime.is_some_and(|m| http_date(v) == Some(m))
}

/// A present, valid HTTP-date field as epoch seconds.
fn date(field: &Option<Cow<'_, [u8]>>) -> Option<u64> {
    http_date(field.as_deref()?)
}

/// An HTTP-date (any of the three formats) as epoch seconds.
fn http_date(v: &[u8]) -> Option<u64> {
    let t = httpdate::parse_http_date(std::str::from_utf8(v).ok()?.trim()).ok()?;
    Some(t.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs()))
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
mod tests;
