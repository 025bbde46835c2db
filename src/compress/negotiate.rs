//! Content-coding negotiation over an `Accept-Encoding` value (RFC 9110 §12.5.3).
//!
//! The header is parsed in place: one pass fills a fixed table of weights,
//! so negotiating costs no allocation on the request path.

/// A content coding the server can produce.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Coding {
    /// Brotli (RFC 7932).
    Br,
    /// Zstandard (RFC 8878).
    Zstd,
    /// Gzip (RFC 1952).
    Gzip,
}

/// How many [`Coding`] variants exist: the size of the weight table.
const CODINGS: usize = 3;

impl Coding {
    /// The coding's token as it appears in `Content-Encoding`.
    pub fn name(self) -> &'static str {
        match self {
            Coding::Br => "br",
            Coding::Zstd => "zstd",
            Coding::Gzip => "gzip",
        }
    }

    /// The coding named by `s`, ignoring ASCII case; `x-gzip` is accepted
    /// as gzip because RFC 9110 §8.4.1.3 says recipients should.
    pub fn parse(s: &str) -> Option<Coding> {
        let known = [
            ("br", Coding::Br),
            ("zstd", Coding::Zstd),
            ("gzip", Coding::Gzip),
            ("x-gzip", Coding::Gzip),
        ];
        known
            .iter()
            .find(|(name, _)| s.eq_ignore_ascii_case(name))
            .map(|&(_, coding)| coding)
    }

    /// The suffix of a precompressed sidecar file, as `index.html.br`.
    pub fn suffix(self) -> &'static str {
        match self {
            Coding::Br => ".br",
            Coding::Zstd => ".zst",
            Coding::Gzip => ".gz",
        }
    }

    /// The coding's slot in the weight table.
    fn index(self) -> usize {
        self as usize
    }
}

/// The outcome of negotiation.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Choice {
    /// Send the representation unencoded.
    Identity,
    /// Encode the representation with this coding.
    Coding(Coding),
    /// The client refuses identity and every offered coding: answer 406
    /// (or, as RFC 9110 allows, ignore the header and send identity).
    NotAcceptable,
}

/// A q-value in thousandths: `1` is 1000, `0.5` is 500.
type Q = u16;

/// The weights one `Accept-Encoding` value gives, filled in a single pass.
#[derive(Default)]
struct Weights {
    /// Explicit entries for each coding, by [`Coding::index`].
    codings: [Option<Q>; CODINGS],
    /// The `*` entry, which covers codings not listed explicitly.
    star: Option<Q>,
    /// The explicit `identity` entry.
    identity: Option<Q>,
}

impl Weights {
    /// Reads every well-formed element of `accept`; malformed ones are
    /// skipped so that one bad element does not spoil the whole header.
    fn parse(accept: &str) -> Weights {
        let mut weights = Weights::default();
        for (name, q) in accept.split(',').filter_map(element) {
            let slot = if name == "*" {
                &mut weights.star
            } else if name.eq_ignore_ascii_case("identity") {
                &mut weights.identity
            } else if let Some(coding) = Coding::parse(name) {
                &mut weights.codings[coding.index()]
            } else {
                continue;
            };
            // A repeated entry (say `gzip` and `x-gzip`) keeps the most
            // generous weight rather than depending on order.
            *slot = Some(slot.map_or(q, |old| old.max(q)));
        }
        weights
    }

    /// The weight `coding` gets: its own entry, else `*`'s, else 0.
    fn of(&self, coding: Coding) -> Q {
        self.codings[coding.index()].or(self.star).unwrap_or(0)
    }

    /// Whether the client forbids the unencoded representation.
    fn identity_refused(&self) -> bool {
        match self.identity {
            Some(q) => q == 0,
            None => self.star == Some(0),
        }
    }
}

/// Chooses how to encode a response (RFC 9110 §12.5.3).
///
/// `accept` is the request's Accept-Encoding value (None: header absent;
/// several header lines are joined with ", " by the caller). `offered` lists
/// the codings the server can produce, most preferred first; it breaks ties
/// between equally weighted codings.
pub fn negotiate(accept: Option<&str>, offered: &[Coding]) -> Choice {
    // No header means the client takes anything, and identity is the one
    // coding every client can decode.
    let Some(accept) = accept else {
        return Choice::Identity;
    };
    let weights = Weights::parse(accept);
    if let Some(coding) = best(&weights, offered) {
        return Choice::Coding(coding);
    }
    if weights.identity_refused() {
        Choice::NotAcceptable
    } else {
        Choice::Identity
    }
}

/// The offered coding with the highest weight above zero; the first one
/// wins a tie, which keeps the server's preference order.
fn best(weights: &Weights, offered: &[Coding]) -> Option<Coding> {
    let mut best: Option<(Coding, Q)> = None;
    for &coding in offered {
        let q = weights.of(coding);
        if q > 0 && best.is_none_or(|(_, top)| q > top) {
            best = Some((coding, q));
        }
    }
    best.map(|(coding, _)| coding)
}

/// One list element as `(name, q)`; None for an empty or malformed one.
fn element(raw: &str) -> Option<(&str, Q)> {
    let raw = raw.trim();
    if raw.is_empty() {
        return None;
    }
    let (name, params) = match raw.split_once(';') {
        Some((name, params)) => (name.trim_end(), Some(params)),
        None => (raw, None),
    };
    if !is_token(name) {
        return None;
    }
    let q = match params {
        Some(params) => weight(params)?,
        None => 1000,
    };
    Some((name, q))
}

/// The q of a `q=VALUE` parameter. The grammar allows only this one
/// parameter, so anything else marks the element malformed.
fn weight(param: &str) -> Option<Q> {
    let (key, value) = param.split_once('=')?;
    if !key.trim().eq_ignore_ascii_case("q") {
        return None;
    }
    qvalue(value.trim())
}

/// Parses `qvalue = ( "0" [ "." 0*3DIGIT ] ) / ( "1" [ "." 0*3("0") ] )`.
fn qvalue(s: &str) -> Option<Q> {
    let (int, frac) = s.split_once('.').unwrap_or((s, ""));
    if frac.len() > 3 || !frac.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    // Pad the fraction to thousandths: "5" is 500, "05" is 50.
    let thousandths = frac
        .bytes()
        .chain(std::iter::repeat(b'0'))
        .take(3)
        .fold(0, |acc, b| acc * 10 + Q::from(b - b'0'));
    match int {
        "0" => Some(thousandths),
        "1" if thousandths == 0 => Some(1000),
        _ => None,
    }
}

/// Whether `s` is a non-empty RFC 9110 token (`*` included).
fn is_token(s: &str) -> bool {
    !s.is_empty()
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b))
}

/// What `accept` says about every coding this server knows, as a short
/// text: two values that are equal negotiate alike for any offer (a cache
/// keys variants on it). `None` (no header) has its own text.
pub fn fingerprint(accept: Option<&str>) -> String {
    let Some(accept) = accept else {
        return "-".into();
    };
    let w = Weights::parse(accept);
    let mut s = String::with_capacity(24);
    for c in [Coding::Br, Coding::Zstd, Coding::Gzip] {
        s.push_str(itoa::Buffer::new().format(w.of(c)));
        s.push(',');
    }
    s.push(if w.identity_refused() { 'n' } else { 'y' });
    s
}
