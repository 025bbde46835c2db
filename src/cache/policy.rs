//! Whether a response may be stored, and for how long it is fresh
//! (RFC 9111 §3 and §4.2).

use super::control::Directives;
use super::spec::CacheRule;
use crate::http::Response;

/// How a stored response ages.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Freshness {
    /// Seconds it is fresh for, from its origin.
    pub lifetime: u64,
    /// Its age when it arrived, seconds (RFC 9111 §4.2.3).
    pub initial_age: u64,
    /// Seconds it may be served stale while it is revalidated.
    pub stale_while_revalidate: u64,
    /// Seconds it may be served stale when the upstream fails.
    pub stale_if_error: u64,
    /// Revalidated on every use (`no-cache`).
    pub no_cache: bool,
}

/// The values of every `name` field of `r`.
pub fn fields<'r>(r: &'r Response, name: &'r str) -> impl Iterator<Item = &'r [u8]> + 'r {
    r.headers
        .iter()
        .filter(move |(n, _)| n.eq_ignore_ascii_case(name))
        .map(|(_, v)| v.as_bytes())
}

/// An HTTP-date as seconds since the epoch.
pub fn http_date(v: &[u8]) -> Option<u64> {
    let t = httpdate::parse_http_date(std::str::from_utf8(v).ok()?.trim()).ok()?;
    Some(
        t.duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_secs()),
    )
}

/// Whether the comma-separated field lines of `name` in `r` list `token`.
fn lists(r: &Response, name: &str, token: &str) -> bool {
    fields(r, name).any(|v| {
        v.split(|b| *b == b',')
            .any(|t| t.trim_ascii().eq_ignore_ascii_case(token.as_bytes()))
    })
}

/// Judges a response to a GET for storing: its freshness, or why it is
/// not stored. `authorized`: the request carried `Authorization`; `now`:
/// seconds since the epoch.
pub fn judge(
    r: &Response,
    rule: &CacheRule,
    authorized: bool,
    now: u64,
) -> Result<Freshness, &'static str> {
    let status = r.status();
    if !(200..600).contains(&status) || status == 206 {
        return Err("status");
    }
    let d = Directives::parse(fields(r, "cache-control"));
    if d.no_store {
        return Err("no-store");
    }
    if d.private {
        return Err("private");
    }
    // RFC 9111 §3.5: an answer to an authenticated request is shared only
    // when it says so.
    if authorized && !(d.public || d.s_maxage.is_some() || d.must_revalidate) {
        return Err("authorization");
    }
    if !rule.store_set_cookie && fields(r, "set-cookie").next().is_some() {
        return Err("set-cookie");
    }
    if lists(r, "vary", "*") {
        return Err("vary");
    }
    let date = fields(r, "date").next().and_then(http_date).unwrap_or(now);
    let lifetime = match d.lifetime() {
        Some(s) => s,
        None => match fields(r, "expires").next() {
            // An invalid date (such as "0") means already expired.
            Some(e) => http_date(e).map_or(0, |e| e.saturating_sub(date)),
            None => match rule.ttl_for(status) {
                Some(t) => t.as_secs(),
                None => return Err("no lifetime"),
            },
        },
    };
    let validated =
        fields(r, "etag").next().is_some() || fields(r, "last-modified").next().is_some();
    if (lifetime == 0 || d.no_cache) && !validated {
        return Err("stale at once, no validator");
    }
    let age = fields(r, "age")
        .next()
        .and_then(|v| std::str::from_utf8(v).ok()?.trim().parse::<u64>().ok())
        .unwrap_or(0);
    let apparent = now.saturating_sub(date);
    let (swr, sie) = if d.no_stale() {
        (0, 0)
    } else {
        (
            d.stale_while_revalidate
                .unwrap_or(rule.stale_while_revalidate.as_secs()),
            d.stale_if_error.unwrap_or(rule.stale_if_error.as_secs()),
        )
    };
    Ok(Freshness {
        lifetime,
        initial_age: age.max(apparent),
        stale_while_revalidate: swr,
        stale_if_error: sie,
        no_cache: d.no_cache,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    const NOW: u64 = 1_780_000_000;

    fn date(t: u64) -> String {
        httpdate::fmt_http_date(std::time::UNIX_EPOCH + Duration::from_secs(t))
    }

    fn resp(status: u16, headers: &[(&str, &str)]) -> Response {
        let mut r = Response::new(status);
        for (n, v) in headers {
            r = r.header(n.to_string(), v.to_string());
        }
        r
    }

    #[test]
    fn lifetimes() {
        let rule = CacheRule {
            ttl: vec![
                (Some(200), Duration::from_secs(600)),
                (Some(404), Duration::from_secs(60)),
            ],
            stale_while_revalidate: Duration::from_secs(30),
            ..CacheRule::default()
        };
        let j = |r: &Response| judge(r, &rule, false, NOW);
        assert_eq!(j(&resp(200, &[])).unwrap().lifetime, 600);
        assert_eq!(j(&resp(404, &[])).unwrap().lifetime, 60);
        assert_eq!(j(&resp(500, &[])), Err("no lifetime"));
        assert_eq!(
            j(&resp(206, &[("cache-control", "max-age=9")])),
            Err("status")
        );
        // The response's own lifetime wins over the rule's.
        let f = j(&resp(200, &[("Cache-Control", "max-age=5")])).unwrap();
        assert_eq!((f.lifetime, f.stale_while_revalidate), (5, 30));
        let f = j(&resp(
            500,
            &[("Cache-Control", "max-age=5, stale-if-error=7")],
        ))
        .unwrap();
        assert_eq!((f.lifetime, f.stale_if_error), (5, 7));
        let d = date(NOW);
        let e = date(NOW + 120);
        let f = j(&resp(200, &[("Date", &d), ("Expires", &e)])).unwrap();
        assert_eq!(f.lifetime, 120);
        // An invalid Expires is in the past: stored only with a validator.
        assert_eq!(
            j(&resp(200, &[("Expires", "0")])),
            Err("stale at once, no validator")
        );
        let f = j(&resp(200, &[("Expires", "0"), ("ETag", "\"a\"")])).unwrap();
        assert_eq!(f.lifetime, 0);
        // Age and an old Date count.
        let old = date(NOW - 50);
        let f = j(&resp(200, &[("Age", "20"), ("Date", &old)])).unwrap();
        assert_eq!(f.initial_age, 50);
        let f = j(&resp(200, &[("Age", "80"), ("Date", &old)])).unwrap();
        assert_eq!(f.initial_age, 80);
        // must-revalidate and s-maxage: never stale.
        let f = j(&resp(
            200,
            &[("cache-control", "max-age=5, must-revalidate")],
        ))
        .unwrap();
        assert_eq!(f.stale_while_revalidate, 0);
        let f = j(&resp(
            200,
            &[("cache-control", "no-cache"), ("etag", "\"x\"")],
        ))
        .unwrap();
        assert!(f.no_cache);
    }

    #[test]
    fn refusals() {
        let rule = CacheRule {
            ttl: vec![(None, Duration::from_secs(60))],
            ..CacheRule::default()
        };
        let j = |r: &Response, auth: bool| judge(r, &rule, auth, NOW);
        assert_eq!(
            j(&resp(200, &[("cache-control", "no-store")]), false),
            Err("no-store")
        );
        assert_eq!(
            j(
                &resp(200, &[("cache-control", "private, max-age=9")]),
                false
            ),
            Err("private")
        );
        assert_eq!(
            j(&resp(200, &[("set-cookie", "a=1")]), false),
            Err("set-cookie")
        );
        assert_eq!(j(&resp(200, &[("vary", "Accept, *")]), false), Err("vary"));
        assert_eq!(j(&resp(200, &[]), true), Err("authorization"));
        assert!(j(&resp(200, &[("cache-control", "public")]), true).is_ok());
        assert!(j(&resp(200, &[("cache-control", "s-maxage=5")]), true).is_ok());
        assert!(j(&resp(200, &[("vary", "Accept-Encoding")]), false).is_ok());
        let told = CacheRule {
            store_set_cookie: true,
            ..rule.clone()
        };
        assert!(judge(&resp(200, &[("set-cookie", "a=1")]), &told, false, NOW).is_ok());
        assert_eq!(j(&resp(101, &[]), false), Err("status"));
    }
}
