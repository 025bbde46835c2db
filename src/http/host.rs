//! `Host` values and request-target authorities: `uri-host [ ":" port ]`
//! (RFC 9112 §3.2, RFC 3986 §3.2.2 and §3.2.3).

use std::net::Ipv6Addr;

/// Most digits accepted in a port.
const MAX_PORT_DIGITS: usize = 5;

/// A syntactically valid `uri-host [ ":" port ]`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Authority<'a> {
    /// An IP-literal with its brackets, or a reg-name (which covers IPv4
    /// addresses); possibly empty.
    pub host: &'a [u8],
    /// The digits after `:` (possibly none), when there is a `:`.
    pub port: Option<&'a [u8]>,
}

/// Splits and checks `uri-host [ ":" port ]`. `None` for anything else: a
/// bracket without its partner or with a bad address inside, a character
/// outside unreserved / pct-encoded / sub-delims (so userinfo's `@` too), a
/// bad `%` escape, a second `:`, or a port that is not at most five digits.
pub fn parse(v: &[u8]) -> Option<Authority<'_>> {
    let (host, rest) = if v.first() == Some(&b'[') {
        let end = v.iter().position(|b| *b == b']')?;
        if !ip_literal(&v[1..end]) {
            return None;
        }
        v.split_at(end + 1)
    } else {
        // One pass: reg-name bytes up to the first ':' (a table lookup each;
        // `%` escapes are rare and checked apart).
        let mut end = v
            .iter()
            .position(|b| !REG_NAME[usize::from(*b)])
            .unwrap_or(v.len());
        while v.get(end) == Some(&b'%') {
            let hex = v.get(end + 1..end + 3);
            if !hex.is_some_and(|h| h.iter().all(u8::is_ascii_hexdigit)) {
                return None;
            }
            end += 3;
            end += v[end..]
                .iter()
                .position(|b| !REG_NAME[usize::from(*b)])
                .unwrap_or(v.len() - end);
        }
        if end < v.len() && v[end] != b':' {
            return None;
        }
        v.split_at(end)
    };
    let port = match rest {
        [] => None,
        [b':', digits @ ..]
            if digits.len() <= MAX_PORT_DIGITS && digits.iter().all(u8::is_ascii_digit) =>
        {
            Some(digits)
        }
        _ => return None,
    };
    Some(Authority { host, port })
}

/// `IPv6address / IPvFuture`, between the brackets.
fn ip_literal(v: &[u8]) -> bool {
    if let [b'v' | b'V', rest @ ..] = v {
        // IPvFuture = "v" 1*HEXDIG "." 1*( unreserved / sub-delims / ":" )
        let Some(dot) = rest.iter().position(|b| *b == b'.') else {
            return false;
        };
        let (version, tail) = (&rest[..dot], &rest[dot + 1..]);
        return !version.is_empty()
            && version.iter().all(u8::is_ascii_hexdigit)
            && !tail.is_empty()
            && tail
                .iter()
                .all(|b| *b == b':' || unreserved(*b) || sub_delim(*b));
    }
    std::str::from_utf8(v).is_ok_and(|s| s.parse::<Ipv6Addr>().is_ok())
}

/// The bytes a `reg-name` may hold as themselves: unreserved / sub-delims
/// (`%` escapes are checked apart). reg-name also covers IPv4address.
const REG_NAME: [bool; 256] = {
    let mut t = [false; 256];
    let mut b = 0;
    while b < 256 {
        let c = b as u8;
        t[b] = c.is_ascii_alphanumeric()
            || matches!(
                c,
                b'-' | b'.'
                    | b'_'
                    | b'~'
                    | b'!'
                    | b'$'
                    | b'&'
                    | b'\''
                    | b'('
                    | b')'
                    | b'*'
                    | b'+'
                    | b','
                    | b';'
                    | b'='
            );
        b += 1;
    }
    t
};

fn unreserved(b: u8) -> bool {
    b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~')
}

fn sub_delim(b: u8) -> bool {
    matches!(
        b,
        b'!' | b'$' | b'&' | b'\'' | b'(' | b')' | b'*' | b'+' | b',' | b';' | b'='
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn table_matches_the_grammar() {
        for b in 0..=255u8 {
            assert_eq!(REG_NAME[b as usize], unreserved(b) || sub_delim(b), "{b}");
        }
    }

    #[test]
    fn good_hosts() {
        for (v, host, port) in [
            ("", "", None),
            ("a", "a", None),
            ("EXAMPLE.com", "EXAMPLE.com", None),
            ("example.com:8080", "example.com", Some("8080")),
            ("a:", "a", Some("")),
            ("a:0", "a", Some("0")),
            ("a:99999", "a", Some("99999")),
            (":80", "", Some("80")),
            ("127.0.0.1", "127.0.0.1", None),
            ("127.0.0.1:80", "127.0.0.1", Some("80")),
            ("1.2.3.999", "1.2.3.999", None),
            ("xn--bcher-kva.example", "xn--bcher-kva.example", None),
            ("a%20b%7E", "a%20b%7E", None),
            ("a.b-c_d~e", "a.b-c_d~e", None),
            ("!$&'()*+,;=", "!$&'()*+,;=", None),
            ("[::1]", "[::1]", None),
            ("[::1]:", "[::1]", Some("")),
            ("[::1]:8080", "[::1]", Some("8080")),
            ("[2001:DB8::1]", "[2001:DB8::1]", None),
            ("[::ffff:192.0.2.1]:443", "[::ffff:192.0.2.1]", Some("443")),
            ("[1:2:3:4:5:6:7:8]", "[1:2:3:4:5:6:7:8]", None),
            ("[v1.fe80::a+en1]", "[v1.fe80::a+en1]", None),
            ("[VaF.x:y]:1", "[VaF.x:y]", Some("1")),
        ] {
            assert_eq!(
                parse(v.as_bytes()),
                Some(Authority {
                    host: host.as_bytes(),
                    port: port.map(str::as_bytes),
                }),
                "{v:?}"
            );
        }
    }

    #[test]
    fn bad_hosts() {
        for v in [
            "a:abc",
            "a:80:80",
            "a::80",
            "a:-1",
            "a:+1",
            "a: 80",
            "a:123456",
            "[::1",
            "a]",
            "a[b]",
            "[::1]x",
            "[::1]:x",
            "[::1]]",
            "[::1]:80:80",
            "[[::1]]",
            "[]",
            "[::1::2]",
            "[1:2:3:4:5:6:7:8:9]",
            "[12345::]",
            "[1.2.3.4]",
            "[::1%25eth0]",
            "[example.com]",
            "[v.x]",
            "[v1.]",
            "[v1x]",
            "[vg.x]",
            "[v1.a/b]",
            "a b",
            "a@b",
            "user:pass@a:80",
            "@a",
            "a%",
            "a%2",
            "a%zz",
            "a%%20",
            "a/b",
            "a?b",
            "a#b",
            "a\\b",
            "a\"b",
            "a<b",
            "caf\u{e9}",
            "a\tb",
        ] {
            assert_eq!(parse(v.as_bytes()), None, "{v:?}");
        }
    }

    /// How the request parser maps these checks: `Host` to `BadHost`, the
    /// absolute-form and CONNECT authorities to `BadTarget`.
    #[test]
    fn parser_refusals() {
        use crate::http::Error;
        use crate::http::limits::Limits;
        use crate::http::parse::{header_buf, parse_head};
        let head = |line: &str, host: &str| -> Result<Option<String>, Error> {
            let input = format!("{line} HTTP/1.1\r\nHost: {host}\r\n\r\n");
            let mut storage = header_buf();
            parse_head(input.as_bytes(), &mut storage, &Limits::default())
                .map(|h| h.expect("complete head").req.host().map(str::to_string))
        };
        for bad in ["a:abc", "a:80:80", "[::1", "a]", "[::1]x", "u@a", "a%zz"] {
            assert_eq!(head("GET /", bad), Err(Error::BadHost), "{bad:?}");
        }
        for good in ["", "a:", "[::1]:8080", "a.b:65535"] {
            assert_eq!(head("GET /", good), Ok(Some(good.to_string())), "{good:?}");
        }
        for bad in [
            "http://a:abc/",
            "http://u@a/",
            "http://u:p@a:80/x",
            "http://[::1/",
            "http://:80/",
            "https://a:1:2?q",
        ] {
            assert_eq!(
                head(&format!("GET {bad}"), "a"),
                Err(Error::BadTarget),
                "{bad:?}"
            );
        }
        assert_eq!(
            head("GET http://[::1]:8080/x", "a"),
            Ok(Some("[::1]:8080".to_string()))
        );
        for bad in ["a", "a:", ":443", "a:b", "u@a:443", "[::1]"] {
            assert_eq!(
                head(&format!("CONNECT {bad}"), "a"),
                Err(Error::BadTarget),
                "{bad:?}"
            );
        }
        assert_eq!(
            head("CONNECT example.com:443", "example.com:443"),
            Ok(Some("example.com:443".to_string()))
        );
    }
}
