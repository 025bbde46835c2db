//! A request's cache key and the values its response's `Vary` names.

use crate::exchange::RequestHead;

/// The key of `req` under `vary_by_query` (`None`: the whole query):
/// `scheme://host/path?query`, the host lowercased and without a default
/// port (answers over HTTP and HTTPS are kept apart, as nginx's default
/// key does).
pub fn key(req: &RequestHead, vary_by_query: Option<&[String]>, out: &mut String) {
    out.clear();
    out.push_str(if req.tls().is_some() {
        "https://"
    } else {
        "http://"
    });
    let host = req.host().unwrap_or("");
    let host = host
        .strip_suffix(":80")
        .or_else(|| host.strip_suffix(":443"))
        .unwrap_or(host);
    out.extend(host.chars().map(|c| c.to_ascii_lowercase()));
    out.push_str(req.path());
    let Some(q) = req.query() else { return };
    match vary_by_query {
        None => {
            out.push('?');
            out.push_str(q);
        }
        Some(names) => {
            // The named parameters, in the configuration's order (so that
            // `?a=1&v=2` and `?v=2&a=1` meet).
            let mut first = true;
            for name in names {
                for pair in q.split('&') {
                    let n = pair.split('=').next().unwrap_or("");
                    if n == name {
                        out.push(if first { '?' } else { '&' });
                        out.push_str(pair);
                        first = false;
                    }
                }
            }
        }
    }
}

/// Whether the query of `req` has parameter `name`.
pub fn has_param(req: &RequestHead, name: &str) -> bool {
    req.query()
        .is_some_and(|q| q.split('&').any(|p| p.split('=').next() == Some(name)))
}

/// The normalized value `req` gives the request field `name` (lowercase)
/// for `Vary`: its lines joined, whitespace trimmed. `Accept-Encoding`
/// becomes the weights it gives the codings this server knows, so that
/// clients sending different lists that negotiate alike share a variant.
pub fn vary_value(req: &RequestHead, name: &str) -> String {
    if name == "accept-encoding" {
        let ae = crate::site::compression::accept_encoding(req);
        return crate::compress::fingerprint(ae.as_deref());
    }
    let mut out = String::new();
    for (n, v) in req.headers() {
        if n.eq_ignore_ascii_case(name) {
            if !out.is_empty() {
                out.push_str(", ");
            }
            out.push_str(String::from_utf8_lossy(v.trim_ascii()).as_ref());
        }
    }
    out
}

/// The names a response's `Vary` lines list, lowercase.
pub fn vary_names<'a>(values: impl Iterator<Item = &'a [u8]>) -> Vec<Box<str>> {
    let mut names: Vec<Box<str>> = Vec::new();
    for v in values {
        for n in v.split(|b| *b == b',') {
            let n = String::from_utf8_lossy(n.trim_ascii()).to_ascii_lowercase();
            if !n.is_empty() && !names.iter().any(|m| **m == *n) {
                names.push(n.into());
            }
        }
    }
    names
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::http::Method;

    fn req(target: &str, host: &str) -> RequestHead {
        let mut r = RequestHead::new(Method::Get, target);
        r.set_host(host.as_bytes());
        r
    }

    #[test]
    fn keys() {
        let mut k = String::new();
        key(&req("/a/b?x=1&v=2", "Shop.Test:80"), None, &mut k);
        assert_eq!(k, "http://shop.test/a/b?x=1&v=2");
        let only = ["v".to_string(), "w".to_string()];
        key(&req("/a?x=1&w=3&v=2", "h"), Some(&only), &mut k);
        assert_eq!(k, "http://h/a?v=2&w=3");
        key(&req("/a?x=1", "h"), Some(&only), &mut k);
        assert_eq!(k, "http://h/a");
        key(&req("/a?x=1", "h:8080"), Some(&[]), &mut k);
        assert_eq!(k, "http://h:8080/a");
        assert!(has_param(&req("/a?nocache&b=1", "h"), "nocache"));
        assert!(!has_param(&req("/a?nocachex=1", "h"), "nocache"));
    }

    #[test]
    fn vary() {
        let mut r = req("/", "h");
        r.push_header("Accept-Language", b" en ");
        r.push_header("accept-language", b"de");
        assert_eq!(vary_value(&r, "accept-language"), "en, de");
        assert_eq!(vary_value(&r, "x-none"), "");
        let mut a = req("/", "h");
        a.push_header("Accept-Encoding", b"gzip, deflate, br");
        let mut b = req("/", "h");
        b.push_header("Accept-Encoding", b"br,gzip,deflate");
        let mut c = req("/", "h");
        c.push_header("Accept-Encoding", b"br, gzip;q=0");
        assert_eq!(
            vary_value(&a, "accept-encoding"),
            vary_value(&b, "accept-encoding")
        );
        assert_ne!(
            vary_value(&a, "accept-encoding"),
            vary_value(&c, "accept-encoding")
        );
        assert_ne!(
            vary_value(&req("/", "h"), "accept-encoding"),
            vary_value(&a, "accept-encoding")
        );
        let names =
            vary_names([&b"Accept-Encoding, accept-language"[..], b"Accept-Encoding"].into_iter());
        assert_eq!(
            names,
            vec!["accept-encoding".into(), "accept-language".into()] as Vec<Box<str>>
        );
    }
}
