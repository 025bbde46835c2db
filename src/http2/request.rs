//! A decoded request header block checked against RFC 9113 §8 and turned
//! into a protocol-neutral [`RequestHead`]: pseudo-header fields first, each
//! once, the ones a request needs; no connection-specific fields; lowercase
//! names; values without NUL, CR, LF or surrounding whitespace; `:authority`
//! agreeing with `Host`; one `Content-Length`.

use std::ops::Range;

use crate::exchange::RequestHead;
use crate::http::{Method, Version};

/// A header block's fields as decoded, before they are checked.
#[derive(Debug, Default)]
pub struct Fields {
    buf: Vec<u8>,
    list: Vec<(Range<u32>, Range<u32>)>,
}

impl Fields {
    /// Empties the list for the next block.
    pub fn clear(&mut self) {
        self.buf.clear();
        self.list.clear();
    }

    /// Adds a decoded field.
    pub fn push(&mut self, name: &[u8], value: &[u8]) {
        let n = self.buf.len() as u32..(self.buf.len() + name.len()) as u32;
        self.buf.extend_from_slice(name);
        let v = self.buf.len() as u32..(self.buf.len() + value.len()) as u32;
        self.buf.extend_from_slice(value);
        self.list.push((n, v));
    }

    /// The fields in order.
    pub fn iter(&self) -> impl Iterator<Item = (&[u8], &[u8])> {
        self.list.iter().map(|(n, v)| {
            (
                &self.buf[n.start as usize..n.end as usize],
                &self.buf[v.start as usize..v.end as usize],
            )
        })
    }

    /// How many fields.
    pub fn len(&self) -> usize {
        self.list.len()
    }

    /// Whether there are none.
    pub fn is_empty(&self) -> bool {
        self.list.is_empty()
    }
}

/// Why a request is malformed (a stream error, `PROTOCOL_ERROR`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Malformed(pub &'static str);

/// A checked request.
#[derive(Debug)]
pub struct Checked {
    /// `None`: a method this server does not know (answered 501).
    pub method: Option<Method>,
    /// The declared body length.
    pub content_length: Option<u64>,
}

/// Bytes allowed in a field name: lowercase `tchar` (RFC 9110 §5.6.2).
static NAME: [bool; 256] = {
    let mut t = [false; 256];
    let mut c = 0;
    while c < 256 {
        let b = c as u8;
        t[c] = b.is_ascii_lowercase()
            || b.is_ascii_digit()
            || matches!(
                b,
                b'!' | b'#'
                    | b'$'
                    | b'%'
                    | b'&'
                    | b'\''
                    | b'*'
                    | b'+'
                    | b'-'
                    | b'.'
                    | b'^'
                    | b'_'
                    | b'`'
                    | b'|'
                    | b'~'
            );
        c += 1;
    }
    t
};

// The checks below look at every byte without stopping early, so they
// compile to straight-line (vectorised) code.
fn name_ok(n: &[u8]) -> bool {
    !n.is_empty() && n.iter().fold(true, |ok, b| ok & NAME[usize::from(*b)])
}

fn value_ok(v: &[u8]) -> bool {
    let bad = v
        .iter()
        .map(|&b| u8::from(b == 0) | u8::from(b == b'\r') | u8::from(b == b'\n'))
        .fold(0u8, |a, x| a | x)
        != 0;
    !bad && !matches!(v.first(), Some(b' ' | b'\t')) && !matches!(v.last(), Some(b' ' | b'\t'))
}

/// Checks `fields` and fills `head` from them.
pub fn build(fields: &Fields, head: &mut RequestHead) -> Result<Checked, Malformed> {
    let mut method: Option<&[u8]> = None;
    let mut scheme: Option<&[u8]> = None;
    let mut path: Option<&[u8]> = None;
    let mut authority: Option<&[u8]> = None;
    let mut host: Option<&[u8]> = None;
    let mut content_length: Option<u64> = None;
    let mut regular = false;
    for (n, v) in fields.iter() {
        if let Some(p) = n.strip_prefix(b":") {
            if regular {
                return Err(Malformed("a pseudo-header field after a regular one"));
            }
            let slot = match p {
                b"method" => &mut method,
                b"scheme" => &mut scheme,
                b"path" => &mut path,
                b"authority" => &mut authority,
                _ => return Err(Malformed("an unknown pseudo-header field")),
            };
            if slot.replace(v).is_some() {
                return Err(Malformed("a repeated pseudo-header field"));
            }
            if !value_ok(v) {
                return Err(Malformed("a bad pseudo-header value"));
            }
            continue;
        }
        regular = true;
        if !name_ok(n) {
            return Err(Malformed("a field name that is not a lowercase token"));
        }
        if !value_ok(v) {
            return Err(Malformed(
                "a field value with NUL, CR, LF or surrounding space",
            ));
        }
        match n {
            b"connection" | b"proxy-connection" | b"keep-alive" | b"transfer-encoding"
            | b"upgrade" => return Err(Malformed("a connection-specific field")),
            b"te" if v != b"trailers" => {
                return Err(Malformed("TE other than \"trailers\""));
            }
            b"host" if host.replace(v).is_some() => {
                return Err(Malformed("two Host fields"));
            }
            b"content-length" => {
                let n = std::str::from_utf8(v)
                    .ok()
                    .filter(|s| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit()))
                    .and_then(|s| s.parse::<u64>().ok())
                    .ok_or(Malformed("a bad Content-Length"))?;
                if content_length.replace(n).is_some_and(|m| m != n) {
                    return Err(Malformed("Content-Length values that differ"));
                }
            }
            _ => {}
        }
    }
    let method_token = method.ok_or(Malformed("no :method"))?;
    let method_text = std::str::from_utf8(method_token).map_err(|_| Malformed("a bad :method"))?;
    let known = Method::parse(method_text);
    if known == Some(Method::Connect) {
        // CONNECT carries only :method and :authority (§8.5).
        if scheme.is_some() || path.is_some() || authority.is_none() {
            return Err(Malformed(
                "a CONNECT request with :scheme or :path, or no :authority",
            ));
        }
    } else {
        let s = scheme.ok_or(Malformed("no :scheme"))?;
        let p = path.ok_or(Malformed("no :path"))?;
        if p.is_empty() {
            return Err(Malformed("an empty :path"));
        }
        if (s == b"http" || s == b"https")
            && p[0] != b'/'
            && !(p == b"*" && known == Some(Method::Options))
        {
            return Err(Malformed(":path neither absolute nor \"*\" for OPTIONS"));
        }
    }
    if let (Some(a), Some(h)) = (authority, host)
        && a != h
    {
        return Err(Malformed(":authority and Host differ"));
    }
    let the_host = authority.or(host);
    if let Some(h) = the_host
        && crate::http::host::parse(h).is_none()
    {
        return Err(Malformed("a bad :authority or Host"));
    }
    let target = std::str::from_utf8(path.unwrap_or(b""))
        .map_err(|_| Malformed("a :path that is not text"))?;
    if target
        .bytes()
        .fold(false, |bad, b| bad | (b <= b' ') | (b == 0x7f))
    {
        return Err(Malformed("a :path with spaces or controls"));
    }
    head.clear();
    head.method = known.unwrap_or(Method::Get);
    head.version = Version::Http2;
    head.keep_alive = true;
    head.set_target(if known == Some(Method::Connect) {
        "/"
    } else {
        target
    });
    if let Some(h) = the_host {
        head.set_host(h);
    }
    // Cookie crumbs become one field (§8.2.3), the rest are kept in order.
    let mut cookies = 0;
    for (n, v) in fields.iter() {
        if n.first() == Some(&b':') {
            continue;
        }
        if n == b"cookie" {
            cookies += 1;
            if cookies > 1 {
                continue;
            }
        }
        if n == b"cookie" && fields.iter().filter(|(n, _)| *n == b"cookie").count() > 1 {
            let mut joined = Vec::new();
            for (_, c) in fields.iter().filter(|(n, _)| *n == b"cookie") {
                if !joined.is_empty() {
                    joined.extend_from_slice(b"; ");
                }
                joined.extend_from_slice(c);
            }
            head.push_field(n, &joined);
        } else {
            head.push_field(n, v);
        }
    }
    if authority.is_some() && host.is_none() {
        head.push_field(b"host", the_host.unwrap_or_default());
    }
    Ok(Checked {
        method: known,
        content_length,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fields(list: &[(&str, &str)]) -> Fields {
        let mut f = Fields::default();
        for (n, v) in list {
            f.push(n.as_bytes(), v.as_bytes());
        }
        f
    }

    const BASE: [(&str, &str); 4] = [
        (":method", "GET"),
        (":scheme", "https"),
        (":path", "/a?b=1"),
        (":authority", "example.com"),
    ];

    #[test]
    fn a_request_becomes_a_head() {
        let mut list = BASE.to_vec();
        list.push(("cookie", "a=1"));
        list.push(("accept", "*/*"));
        list.push(("cookie", "b=2"));
        let mut h = RequestHead::default();
        let c = build(&fields(&list), &mut h).unwrap();
        assert_eq!(c.method, Some(Method::Get));
        assert_eq!(h.version, Version::Http2);
        assert_eq!(h.path(), "/a");
        assert_eq!(h.query(), Some("b=1"));
        assert_eq!(h.host(), Some("example.com"));
        assert_eq!(h.header_str("cookie"), Some("a=1; b=2"));
        assert_eq!(h.header_str("host"), Some("example.com"));
        assert_eq!(h.headers().filter(|(n, _)| *n == "cookie").count(), 1);
    }

    #[test]
    fn malformed_requests() {
        let cases: Vec<Vec<(&str, &str)>> = vec![
            vec![(":method", "GET"), (":path", "/")],
            vec![(":method", "GET"), (":scheme", "http")],
            vec![(":method", "GET"), (":scheme", "http"), (":path", "")],
            vec![(":method", "GET"), (":scheme", "http"), (":path", "x")],
            vec![
                (":method", "GET"),
                (":method", "GET"),
                (":scheme", "http"),
                (":path", "/"),
            ],
            vec![
                (":method", "GET"),
                (":scheme", "http"),
                (":path", "/"),
                (":status", "200"),
            ],
            vec![
                (":method", "GET"),
                (":scheme", "http"),
                ("a", "b"),
                (":path", "/"),
            ],
        ];
        for c in cases {
            assert!(
                build(&fields(&c), &mut RequestHead::default()).is_err(),
                "{c:?}"
            );
        }
        for extra in [
            ("connection", "keep-alive"),
            ("te", "gzip"),
            ("Upper", "x"),
            ("x", " lead"),
            ("x", "trail\t"),
            ("x", "a\rb"),
            ("host", "other.example"),
            ("content-length", "1x"),
        ] {
            let mut list = BASE.to_vec();
            list.push(extra);
            assert!(
                build(&fields(&list), &mut RequestHead::default()).is_err(),
                "{extra:?}"
            );
        }
        let mut list = BASE.to_vec();
        list.push(("te", "trailers"));
        list.push(("content-length", "5"));
        list.push(("content-length", "5"));
        let c = build(&fields(&list), &mut RequestHead::default()).unwrap();
        assert_eq!(c.content_length, Some(5));
    }

    #[test]
    fn unknown_methods_and_options_star() {
        let list = vec![(":method", "BREW"), (":scheme", "http"), (":path", "/")];
        let c = build(&fields(&list), &mut RequestHead::default()).unwrap();
        assert_eq!(c.method, None);
        let list = vec![(":method", "OPTIONS"), (":scheme", "http"), (":path", "*")];
        assert!(build(&fields(&list), &mut RequestHead::default()).is_ok());
    }
}
