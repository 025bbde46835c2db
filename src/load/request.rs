//! The request every connection sends: method, target, headers and body,
//! encoded once by the HTTP/1 client role.
#![forbid(unsafe_code)]

use super::url::Target;
use crate::http::client::{RequestBody, RequestEncoder, is_token};

/// A `Name: value` header from the command line.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Header {
    /// Field name.
    pub name: String,
    /// Field value, trimmed.
    pub value: String,
}

/// Parses `Name: value`.
pub fn parse_header(s: &str) -> Result<Header, String> {
    let Some((name, value)) = s.split_once(':') else {
        return Err(format!("{s:?} is not a header: expected 'Name: value'"));
    };
    if !is_token(name) {
        return Err(format!(
            "{name:?} is not a header name (letters, digits and !#$%&'*+-.^_`|~ only, no spaces)"
        ));
    }
    let value = value.trim_matches([' ', '\t']);
    if value.bytes().any(|b| b < 0x20 && b != b'\t' || b == 0x7f) {
        return Err(format!(
            "the value of header {name} contains control characters"
        ));
    }
    if name.eq_ignore_ascii_case("content-length") || name.eq_ignore_ascii_case("transfer-encoding")
    {
        return Err(format!(
            "header {name} cannot be set: Content-Length comes from --body or --body-file"
        ));
    }
    Ok(Header {
        name: name.to_string(),
        value: value.to_string(),
    })
}

/// Parses a method: an HTTP token, used as written.
pub fn parse_method(s: &str) -> Result<String, String> {
    if is_token(s) {
        Ok(s.to_string())
    } else {
        Err(format!("{s:?} is not an HTTP method"))
    }
}

/// Encodes the request. `Host` comes from the URL unless a header sets it;
/// `Content-Length` is sent when there is a body, or for methods that carry
/// one (POST, PUT, PATCH). The parts were checked when parsed, so a refusal
/// here names a part that slipped through.
pub fn encode(
    method: &str,
    target: &Target,
    headers: &[Header],
    body: &[u8],
) -> Result<Vec<u8>, String> {
    let fields: Vec<(&str, &str)> = headers
        .iter()
        .map(|h| (h.name.as_str(), h.value.as_str()))
        .collect();
    let framing = if !body.is_empty() || matches!(method, "POST" | "PUT" | "PATCH") {
        RequestBody::Length(body.len() as u64)
    } else {
        RequestBody::None
    };
    let mut r = Vec::with_capacity(128 + body.len());
    RequestEncoder::new(method, &target.path, &target.authority)
        .headers(&fields)
        .body(framing)
        .encode(&mut r)
        .map_err(|e| e.to_string())?;
    r.extend_from_slice(body);
    Ok(r)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn headers() {
        assert_eq!(
            parse_header("X-Test:  a b\t").unwrap(),
            Header {
                name: "X-Test".into(),
                value: "a b".into()
            }
        );
        assert_eq!(parse_header("Accept:").unwrap().value, "");
        for (bad, says) in [
            ("NoColon", "not a header"),
            ("Bad Name: x", "not a header name"),
            (": x", "not a header name"),
            ("X: a\rb", "control characters"),
            ("content-length: 5", "cannot be set"),
        ] {
            let e = parse_header(bad).unwrap_err();
            assert!(e.contains(says), "{bad}: {e}");
        }
        assert!(parse_method("GET").is_ok());
        assert!(parse_method("G ET").is_err());
        assert!(parse_method("").is_err());
    }

    #[test]
    fn encoding() {
        let t = super::super::url::parse("http://h:81/p?q").unwrap();
        let r = encode("GET", &t, &[], b"").unwrap();
        assert_eq!(r, b"GET /p?q HTTP/1.1\r\nHost: h:81\r\n\r\n");
        let h = [
            parse_header("Host: other").unwrap(),
            parse_header("X: 1").unwrap(),
        ];
        let r = encode("POST", &t, &h, b"abc").unwrap();
        assert_eq!(
            r,
            b"POST /p?q HTTP/1.1\r\nHost: other\r\nX: 1\r\nContent-Length: 3\r\n\r\nabc"
        );
        let r = encode("PUT", &t, &[], b"").unwrap();
        assert!(r.ends_with(b"Content-Length: 0\r\n\r\n"));
        let sneaky = [Header {
            name: "X".into(),
            value: "a\r\nY: b".into(),
        }];
        let e = encode("GET", &t, &sneaky, b"").unwrap_err();
        assert!(e.contains("control characters"), "{e}");
    }
}
