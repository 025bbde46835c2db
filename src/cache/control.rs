//! `Cache-Control` (RFC 9111 §5.2) and the RFC 5861 extensions, read from a
//! response's field lines.

/// The response directives a shared cache acts on.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Directives {
    /// `no-store`: never stored.
    pub no_store: bool,
    /// `no-cache` (with or without field names): stored, revalidated on
    /// every use.
    pub no_cache: bool,
    /// `private` (with or without field names): not for a shared cache.
    pub private: bool,
    /// `public`: storable even for a request with `Authorization`.
    pub public: bool,
    /// `must-revalidate`: never served stale.
    pub must_revalidate: bool,
    /// `proxy-revalidate`: the same, for shared caches.
    pub proxy_revalidate: bool,
    /// `max-age`, seconds.
    pub max_age: Option<u64>,
    /// `s-maxage`, seconds (wins over `max-age` here; implies
    /// `proxy-revalidate`).
    pub s_maxage: Option<u64>,
    /// `stale-while-revalidate`, seconds.
    pub stale_while_revalidate: Option<u64>,
    /// `stale-if-error`, seconds.
    pub stale_if_error: Option<u64>,
}

/// The largest delta-seconds kept (RFC 9111 §1.2.2: 2^31).
const MAX_DELTA: u64 = 1 << 31;

/// A delta-seconds value; an invalid one reads as 0 (the response is
/// stale at once, the safe reading), an overflowing one as 2^31.
fn delta(v: Option<&[u8]>) -> u64 {
    let Some(v) = v else { return 0 };
    let v = v.trim_ascii();
    let v = v
        .strip_prefix(b"\"")
        .and_then(|v| v.strip_suffix(b"\""))
        .unwrap_or(v);
    if v.is_empty() || !v.iter().all(u8::is_ascii_digit) {
        return 0;
    }
    v.iter()
        .try_fold(0u64, |n, d| {
            n.checked_mul(10)?.checked_add(u64::from(d - b'0'))
        })
        .map_or(MAX_DELTA, |n| n.min(MAX_DELTA))
}

/// Splits a field value at commas outside quoted strings.
fn elements(v: &[u8]) -> impl Iterator<Item = &[u8]> {
    let mut rest = v;
    std::iter::from_fn(move || {
        if rest.is_empty() {
            return None;
        }
        let mut quoted = false;
        let mut escaped = false;
        let mut end = rest.len();
        for (i, b) in rest.iter().enumerate() {
            match b {
                _ if escaped => escaped = false,
                b'\\' if quoted => escaped = true,
                b'"' => quoted = !quoted,
                b',' if !quoted => {
                    end = i;
                    break;
                }
                _ => {}
            }
        }
        let el = &rest[..end];
        rest = rest.get(end + 1..).unwrap_or(&[]);
        Some(el)
    })
}

impl Directives {
    /// The directives of every `Cache-Control` line in `values`; for a
    /// directive given twice, the first counts. Unknown ones are ignored.
    pub fn parse<'a>(values: impl IntoIterator<Item = &'a [u8]>) -> Directives {
        let mut d = Directives::default();
        for v in values {
            for el in elements(v) {
                let el = el.trim_ascii();
                let (name, arg) = match el.iter().position(|b| *b == b'=') {
                    Some(i) => (el[..i].trim_ascii(), Some(el[i + 1..].trim_ascii())),
                    None => (el, None),
                };
                let is = |n: &str| name.eq_ignore_ascii_case(n.as_bytes());
                let first = |slot: &mut Option<u64>| {
                    slot.get_or_insert(delta(arg));
                };
                if is("no-store") {
                    d.no_store = true;
                } else if is("no-cache") {
                    d.no_cache = true;
                } else if is("private") {
                    d.private = true;
                } else if is("public") {
                    d.public = true;
                } else if is("must-revalidate") {
                    d.must_revalidate = true;
                } else if is("proxy-revalidate") {
                    d.proxy_revalidate = true;
                } else if is("max-age") {
                    first(&mut d.max_age);
                } else if is("s-maxage") {
                    first(&mut d.s_maxage);
                } else if is("stale-while-revalidate") {
                    first(&mut d.stale_while_revalidate);
                } else if is("stale-if-error") {
                    first(&mut d.stale_if_error);
                }
            }
        }
        d
    }

    /// The lifetime the directives give, in seconds (`s-maxage` first).
    pub fn lifetime(&self) -> Option<u64> {
        self.s_maxage.or(self.max_age)
    }

    /// Whether a stale copy may never be served (revalidation or an error
    /// instead).
    pub fn no_stale(&self) -> bool {
        self.must_revalidate || self.proxy_revalidate || self.s_maxage.is_some()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(v: &str) -> Directives {
        Directives::parse([v.as_bytes()])
    }

    #[test]
    fn directives() {
        let d = p("public, max-age=60, s-maxage=\"30\", stale-while-revalidate=5");
        assert!(d.public && !d.private);
        assert_eq!(d.max_age, Some(60));
        assert_eq!(d.s_maxage, Some(30));
        assert_eq!(d.lifetime(), Some(30));
        assert_eq!(d.stale_while_revalidate, Some(5));
        assert!(d.no_stale(), "s-maxage implies proxy-revalidate");
        let d = p("No-Store");
        assert!(d.no_store);
        let d = Directives::parse([&b"max-age=10"[..], b"max-age=99, must-revalidate"]);
        assert_eq!(d.max_age, Some(10), "the first occurrence counts");
        assert!(d.must_revalidate);
        // Quoted commas do not split; qualified forms count as the bare ones.
        let d = p("private=\"Set-Cookie, X-A\", no-cache=\"X\", max-age=1");
        assert!(d.private && d.no_cache);
        assert_eq!(d.max_age, Some(1));
        // Invalid numbers read as 0, huge ones as 2^31.
        assert_eq!(p("max-age=abc").max_age, Some(0));
        assert_eq!(p("max-age=").max_age, Some(0));
        assert_eq!(p("max-age").max_age, Some(0));
        assert_eq!(p("max-age=-5").max_age, Some(0));
        assert_eq!(p("max-age=99999999999999999999999").max_age, Some(1 << 31));
        assert_eq!(p("stale-if-error=300").stale_if_error, Some(300));
        assert_eq!(p(""), Directives::default());
        assert_eq!(p(",,, ,"), Directives::default());
        assert_eq!(p("\"unterminated, max-age=5"), Directives::default());
    }
}
