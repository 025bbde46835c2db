//! The target URL: `http://host[:port][/path][?query]`, nothing else.
#![forbid(unsafe_code)]

use std::net::{SocketAddr, ToSocketAddrs};

/// A parsed `http://` URL.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Target {
    /// The host as written, without brackets (a name or an IP literal).
    pub host: String,
    /// The port (80 when the URL names none).
    pub port: u16,
    /// The request target: path and query, at least `/`.
    pub path: String,
    /// The `Host` header value: the host (bracketed for IPv6) and any port
    /// other than 80.
    pub authority: String,
}

impl Target {
    /// The URL back as text.
    pub fn url(&self) -> String {
        let host = if self.host.contains(':') {
            format!("[{}]", self.host)
        } else {
            self.host.clone()
        };
        format!("http://{host}:{}{}", self.port, self.path)
    }

    /// Resolves the host once; the first address is used.
    pub fn resolve(&self) -> Result<SocketAddr, String> {
        let mut addrs = (self.host.as_str(), self.port)
            .to_socket_addrs()
            .map_err(|e| format!("cannot resolve {}: {e}", self.host))?;
        addrs
            .next()
            .ok_or_else(|| format!("cannot resolve {}: no addresses", self.host))
    }
}

fn host_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || matches!(c, '-' | '.' | '_')
}

/// Parses a URL given on the command line.
pub fn parse(s: &str) -> Result<Target, String> {
    let Some((scheme, rest)) = s.split_once("://") else {
        return Err(format!(
            "{s:?} is not a URL: expected http://host[:port]/path"
        ));
    };
    if scheme.eq_ignore_ascii_case("https") {
        return Err("https is not supported: use an http:// URL (no TLS)".into());
    }
    if !scheme.eq_ignore_ascii_case("http") {
        return Err(format!(
            "unsupported URL scheme {scheme:?}: only http:// is supported"
        ));
    }
    let rest = rest.split('#').next().unwrap_or_default();
    let end = rest.find(['/', '?']).unwrap_or(rest.len());
    let (authority, path) = rest.split_at(end);
    if authority.contains('@') {
        return Err("credentials in the URL are not supported".into());
    }
    let (host, port) = if let Some(v6) = authority.strip_prefix('[') {
        let Some((addr, after)) = v6.split_once(']') else {
            return Err(format!("bad IPv6 address in URL: {authority:?}"));
        };
        if addr.parse::<std::net::Ipv6Addr>().is_err() {
            return Err(format!("bad IPv6 address in URL: [{addr}]"));
        }
        let port = match after {
            "" => None,
            p => Some(
                p.strip_prefix(':')
                    .ok_or_else(|| format!("bad URL authority: {authority:?}"))?,
            ),
        };
        (addr.to_string(), port)
    } else {
        match authority.rsplit_once(':') {
            Some((h, p)) => (h.to_string(), Some(p)),
            None => (authority.to_string(), None),
        }
    };
    if host.is_empty() {
        return Err("the URL has no host".into());
    }
    if !authority.starts_with('[') && !host.chars().all(host_char) {
        return Err(format!("bad host in URL: {host:?}"));
    }
    let port = match port {
        None => 80,
        Some(p) => match p.parse::<u16>() {
            Ok(n) if n > 0 && p.bytes().all(|b| b.is_ascii_digit()) => n,
            _ => return Err(format!("bad port in URL: {p:?} (expected 1-65535)")),
        },
    };
    let path = match path {
        "" => "/".to_string(),
        p if p.starts_with('?') => format!("/{p}"),
        p => p.to_string(),
    };
    if let Some(c) = path.chars().find(|&c| !c.is_ascii_graphic()) {
        return Err(format!(
            "the URL path contains {c:?}: spaces, control and non-ASCII characters must be percent-encoded"
        ));
    }
    let bracketed = if host.contains(':') {
        format!("[{host}]")
    } else {
        host.clone()
    };
    let authority = if port == 80 {
        bracketed
    } else {
        format!("{bracketed}:{port}")
    };
    Ok(Target {
        host,
        port,
        path,
        authority,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn good_urls() {
        let t = parse("http://127.0.0.1:8080/plaintext?x=1#frag").unwrap();
        assert_eq!(t.host, "127.0.0.1");
        assert_eq!(t.port, 8080);
        assert_eq!(t.path, "/plaintext?x=1");
        assert_eq!(t.authority, "127.0.0.1:8080");
        let t = parse("HTTP://example.com").unwrap();
        assert_eq!((t.port, t.path.as_str()), (80, "/"));
        assert_eq!(t.authority, "example.com");
        let t = parse("http://[::1]:9000?q").unwrap();
        assert_eq!(t.host, "::1");
        assert_eq!(t.path, "/?q");
        assert_eq!(t.authority, "[::1]:9000");
        assert_eq!(t.url(), "http://[::1]:9000/?q");
    }

    #[test]
    fn bad_urls() {
        for (url, says) in [
            ("https://example.com/", "https is not supported"),
            ("ftp://example.com/", "unsupported URL scheme"),
            ("example.com:80/", "not a URL"),
            ("http:///x", "no host"),
            ("http://h:0/", "bad port"),
            ("http://h:70000/", "bad port"),
            ("http://h:+80/", "bad port"),
            ("http://h:/", "bad port"),
            ("http://[::1/", "bad IPv6"),
            ("http://[zz]:1/", "bad IPv6"),
            ("http://u:p@h/", "credentials"),
            ("http://h/a b", "percent-encoded"),
            ("http://h^x/", "bad host"),
        ] {
            let e = parse(url).unwrap_err();
            assert!(e.contains(says), "{url}: {e}");
        }
    }

    #[test]
    fn resolves_literals() {
        let t = parse("http://[::1]:81/").unwrap();
        assert_eq!(t.resolve().unwrap(), "[::1]:81".parse().unwrap());
        let t = parse("http://127.0.0.1/").unwrap();
        assert_eq!(t.resolve().unwrap(), "127.0.0.1:80".parse().unwrap());
    }
}
