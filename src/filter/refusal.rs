//! Why a request was refused, and the status that says so.

use std::fmt;

/// The check a request failed.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Reason {
    /// A `deny_url_sequences` entry is in the decoded path.
    UrlSequence,
    /// The method is denied, or unlisted where unlisted verbs are not allowed.
    Verb,
    /// The file extension is denied, or unlisted where unlisted extensions
    /// are not allowed.
    Extension,
    /// A path segment is one of `hidden_segments`.
    HiddenSegment,
    /// The decoded path still holds a `%XX` escape.
    DoubleEscape,
    /// The path has a byte of 0x80 or above.
    HighBit,
    /// The path is longer than `max_url`.
    UrlTooLong,
    /// The query string is longer than `max_query_string`.
    QueryTooLong,
    /// The path has more than `max_url_segments` segments.
    TooManySegments,
    /// A `deny_query_string_sequences` entry is in the query string.
    QuerySequence,
    /// A filtering rule found one of its strings.
    Rule,
    /// `Content-Length` is above `max_allowed_content_length`.
    ContentLength,
    /// A header field is forbidden or longer than its limit.
    Header,
}

impl Reason {
    /// Every reason, in the order of [`Reason::name`]'s table.
    pub const ALL: [Reason; 13] = [
        Reason::UrlSequence,
        Reason::Verb,
        Reason::Extension,
        Reason::HiddenSegment,
        Reason::DoubleEscape,
        Reason::HighBit,
        Reason::UrlTooLong,
        Reason::QueryTooLong,
        Reason::TooManySegments,
        Reason::QuerySequence,
        Reason::Rule,
        Reason::ContentLength,
        Reason::Header,
    ];

    /// The reason in snake case, e.g. `url_sequence` (a metrics label).
    pub fn name(self) -> &'static str {
        match self {
            Reason::UrlSequence => "url_sequence",
            Reason::Verb => "verb",
            Reason::Extension => "extension",
            Reason::HiddenSegment => "hidden_segment",
            Reason::DoubleEscape => "double_escape",
            Reason::HighBit => "high_bit",
            Reason::UrlTooLong => "url_too_long",
            Reason::QueryTooLong => "query_too_long",
            Reason::TooManySegments => "too_many_segments",
            Reason::QuerySequence => "query_sequence",
            Reason::Rule => "rule",
            Reason::ContentLength => "content_length",
            Reason::Header => "header",
        }
    }

    /// The status and sub-status IIS answers with (sub-status 0: none).
    pub fn iis_status(self) -> (u16, u16) {
        match self {
            Reason::UrlSequence => (404, 5),
            Reason::Verb => (404, 6),
            Reason::Extension => (404, 7),
            Reason::HiddenSegment => (404, 8),
            Reason::DoubleEscape => (404, 11),
            Reason::HighBit => (404, 12),
            Reason::UrlTooLong => (404, 14),
            Reason::QueryTooLong => (404, 15),
            Reason::QuerySequence => (404, 18),
            Reason::Rule => (404, 19),
            Reason::TooManySegments => (404, 20),
            Reason::ContentLength => (413, 1),
            Reason::Header => (431, 0),
        }
    }

    /// The plain status that fits the reason (`modern_status = true`).
    pub fn modern_status(self) -> u16 {
        match self {
            Reason::UrlSequence
            | Reason::DoubleEscape
            | Reason::HighBit
            | Reason::QuerySequence => 400,
            Reason::Verb => 405,
            Reason::Extension | Reason::HiddenSegment => 404,
            Reason::UrlTooLong | Reason::QueryTooLong | Reason::TooManySegments => 414,
            Reason::Rule => 403,
            Reason::ContentLength => 413,
            Reason::Header => 431,
        }
    }
}

impl fmt::Display for Reason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// A filter's refusal: the status to answer with and why.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Refusal {
    /// The response status.
    pub status: u16,
    /// The IIS sub-status (`404.5` has 5); 0 when there is none.
    pub sub: u16,
    /// The check that failed.
    pub reason: Reason,
}

impl Refusal {
    /// The refusal for `reason`: IIS's status and sub-status, or with
    /// `modern` the plain status and no sub-status.
    pub fn of(reason: Reason, modern: bool) -> Refusal {
        let (status, sub) = if modern {
            (reason.modern_status(), 0)
        } else {
            reason.iis_status()
        };
        Refusal {
            status,
            sub,
            reason,
        }
    }

    /// The status for the access log: `404.5`, `413.1`, or `431` when there
    /// is no sub-status.
    pub fn code(&self) -> Code {
        Code {
            status: self.status,
            sub: self.sub,
        }
    }
}

/// A status with its sub-status, displayed as IIS logs it: `404.5`, `431`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Code {
    status: u16,
    sub: u16,
}

impl fmt::Display for Code {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.sub == 0 {
            write!(f, "{}", self.status)
        } else {
            write!(f, "{}.{}", self.status, self.sub)
        }
    }
}
