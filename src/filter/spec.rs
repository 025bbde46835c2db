//! What a `request_filtering` table says: plain data, validated by the
//! configuration parser and compiled by [`super::Filter::new`].

/// The IIS default for [`RequestLimits::max_allowed_content_length`].
pub const DEFAULT_MAX_CONTENT_LENGTH: u64 = 30_000_000;
/// The IIS default for [`RequestLimits::max_url`].
pub const DEFAULT_MAX_URL: u32 = 4096;
/// The IIS default for [`RequestLimits::max_query_string`].
pub const DEFAULT_MAX_QUERY_STRING: u32 = 2048;

/// A request filter's settings (IIS `<requestFiltering>`). [`Default`] gives
/// the IIS defaults: nothing listed, unlisted verbs and extensions allowed,
/// double escaping refused, high-bit characters allowed, IIS status codes and
/// the default [`RequestLimits`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FilterSpec {
    /// File extensions (with their dot, lowercase; `"."` for a last segment
    /// without one), matched against the last segment of the decoded path.
    pub file_extensions: ListSpec,
    /// Request methods (uppercase tokens; any token, known to the parser or
    /// not).
    pub verbs: ListSpec,
    /// Path segments that are never served, wherever they appear in the
    /// decoded path (whole segments).
    pub hidden_segments: Vec<String>,
    /// Sequences refused anywhere in the decoded path.
    pub deny_url_sequences: Vec<String>,
    /// Sequences refused in the query string, raw or percent-decoded.
    pub deny_query_string_sequences: Vec<String>,
    /// Decoded-path prefixes that skip every check, unless the path has a
    /// `.` or `..` segment.
    pub always_allowed_urls: Vec<String>,
    /// Allow a path that still holds a `%XX` escape once decoded.
    pub allow_double_escaping: bool,
    /// Allow bytes of 0x80 and above in the path.
    pub allow_high_bit_characters: bool,
    /// Answer with plain modern status codes instead of IIS's `404.x`.
    pub modern_status: bool,
    /// Size limits.
    pub limits: RequestLimits,
    /// Filtering rules (IIS `<filteringRules>`), checked in order.
    pub rules: Vec<RuleSpec>,
}

impl Default for FilterSpec {
    fn default() -> Self {
        FilterSpec {
            file_extensions: ListSpec::default(),
            verbs: ListSpec::default(),
            hidden_segments: Vec::new(),
            deny_url_sequences: Vec::new(),
            deny_query_string_sequences: Vec::new(),
            always_allowed_urls: Vec::new(),
            allow_double_escaping: false,
            allow_high_bit_characters: true,
            modern_status: false,
            limits: RequestLimits::default(),
            rules: Vec::new(),
        }
    }
}

/// An allow list and a deny list, and what happens to values on neither.
///
/// A value on the deny list is refused; on the allow list, accepted;
/// otherwise accepted exactly when `allow_unlisted` is set. The parser
/// refuses a value on both lists (should one reach the filter, deny wins).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ListSpec {
    /// Whether values on neither list are accepted.
    pub allow_unlisted: bool,
    /// Values accepted.
    pub allow: Vec<String>,
    /// Values refused.
    pub deny: Vec<String>,
}

impl Default for ListSpec {
    fn default() -> Self {
        ListSpec {
            allow_unlisted: true,
            allow: Vec::new(),
            deny: Vec::new(),
        }
    }
}

/// Size limits (IIS `<requestLimits>`); `None` is no limit.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RequestLimits {
    /// The largest `Content-Length` accepted, and the most body bytes a
    /// request without one may send.
    pub max_allowed_content_length: Option<u64>,
    /// The longest path accepted, in bytes as received (still
    /// percent-encoded, without the query string).
    pub max_url: Option<u32>,
    /// The longest query string accepted, in bytes as received (after `?`).
    pub max_query_string: Option<u32>,
    /// The most segments a path may have: the number of `/` in the decoded
    /// path (`/` has one, `/a/b` two, `/a/` two).
    pub max_url_segments: Option<u32>,
    /// Header field names (lowercase) and the longest value each may have,
    /// in bytes; 0 refuses the field whatever its value.
    pub header_limits: Vec<(String, u32)>,
}

impl Default for RequestLimits {
    fn default() -> Self {
        RequestLimits {
            max_allowed_content_length: Some(DEFAULT_MAX_CONTENT_LENGTH),
            max_url: Some(DEFAULT_MAX_URL),
            max_query_string: Some(DEFAULT_MAX_QUERY_STRING),
            max_url_segments: None,
            header_limits: Vec::new(),
        }
    }
}

/// A filtering rule: strings refused in the parts of a request it scans.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct RuleSpec {
    /// The rule's name (unique in its filter).
    pub name: String,
    /// Scan the decoded path.
    pub scan_url: bool,
    /// Scan the query string, raw and percent-decoded.
    pub scan_query_string: bool,
    /// Header fields whose values are scanned (every field of each name).
    pub scan_headers: Vec<String>,
    /// The extensions (as in [`FilterSpec::file_extensions`]) of the
    /// requests the rule applies to; empty: every request.
    pub applies_to: Vec<String>,
    /// The strings refused.
    pub deny_strings: Vec<String>,
}
