//! Request filtering with the semantics of IIS `<requestFiltering>`: sans-IO
//! checks of a request head against a site's or route's
//! `request_filtering` table, before any handler sees it.
//!
//! A [`FilterSpec`] is the validated table; [`Filter::new`] compiles it once
//! per configuration generation and [`Filter::check`] decides for each
//! request, allocating nothing: the path and query are percent-decoded on
//! the fly, and refused strings are found with Aho-Corasick automata fed
//! one byte at a time.
//!
//! # Order of the checks
//!
//! The first check that fails decides, in IIS's order:
//!
//! 1. `always_allowed_urls`: a decoded path that starts with one of them
//!    skips every check below, unless one of its segments is `.` or `..`
//!    (resolved, that could leave the prefix);
//! 2. request limits: `Content-Length` above `max_allowed_content_length`,
//!    then the path (raw bytes, without the query) longer than `max_url`,
//!    the query (raw bytes after `?`) longer than `max_query_string`, more
//!    than `max_url_segments` segments (`/` in the decoded path), then
//!    `header_limits` (a value longer than its limit; limit 0: the field is
//!    refused whatever its value);
//! 3. double escaping: the path, decoded once, still holds a `%XX` escape
//!    (decoding it again would change it), unless `allow_double_escaping`;
//!    unlike IIS a `+` is not counted as one;
//! 4. high-bit characters: a byte of 0x80 or above in the path, raw or
//!    decoded, unless `allow_high_bit_characters`;
//! 5. verbs: a method on the deny list, or on neither list when
//!    `allow_unlisted` is off;
//! 6. file extensions: the same for the extension of the last segment of
//!    the decoded path, from its last dot (`.tar.gz` is `.gz`), where `"."`
//!    stands for a segment without an extension (no dot, or a trailing one,
//!    which Windows ignores);
//! 7. hidden segments: a whole segment of the decoded path;
//! 8. URL sequences: anywhere in the decoded path, dot segments not resolved
//!    (so `..` and `//` stay visible);
//! 9. query-string sequences: in the raw query, or in it percent-decoded
//!    (`+` stays `+`);
//! 10. filtering rules, in order: a rule whose `applies_to` names the
//!     request's extension (or is empty) looks for its strings in the
//!     decoded path, the query (raw and decoded) and the values of the
//!     header fields it names, as it is told to.
//!
//! Every comparison is ASCII case-insensitive. [`Filter::max_content_length`]
//! is the body limit for requests without `Content-Length`.
//!
//! # Status codes
//!
//! | Reason              | IIS     | `modern_status = true` |
//! |---------------------|---------|------------------------|
//! | URL sequence        | 404.5   | 400                    |
//! | verb                | 404.6   | 405                    |
//! | file extension      | 404.7   | 404                    |
//! | hidden segment      | 404.8   | 404                    |
//! | double escaping     | 404.11  | 400                    |
//! | high-bit character  | 404.12  | 400                    |
//! | URL too long        | 404.14  | 414                    |
//! | query too long      | 404.15  | 414                    |
//! | query sequence      | 404.18  | 400                    |
//! | filtering rule      | 404.19  | 403                    |
//! | too many segments   | 404.20  | 414                    |
//! | content length      | 413.1   | 413                    |
//! | header limit        | 431     | 431                    |
//!
//! [`Refusal::code`] writes a status as the access log shows it (`404.5`,
//! `431`).
#![forbid(unsafe_code)]

mod check;
mod decode;
mod path;
mod refusal;
mod seqs;
mod spec;

pub use check::Filter;
pub use refusal::{Code, Reason, Refusal};
pub use spec::{
    DEFAULT_MAX_CONTENT_LENGTH, DEFAULT_MAX_QUERY_STRING, DEFAULT_MAX_URL, FilterSpec, ListSpec,
    RequestLimits, RuleSpec,
};

#[cfg(test)]
mod tests;
