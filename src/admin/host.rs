//! Which `Host` values the admin listener answers: IP literals, `localhost`
//! and the configured names. A page on another site whose name has been
//! re-pointed at this address (DNS rebinding) sends its own name and is refused.

use std::net::{Ipv4Addr, Ipv6Addr};

/// `host` (`uri-host [":" port]`) without its port, when the port is digits.
fn without_port(host: &str) -> Option<&str> {
    let digits = |p: &str| p.bytes().all(|b| b.is_ascii_digit());
    if let Some(rest) = host.strip_prefix('[') {
        let (inner, after) = rest.split_once(']')?;
        return match after.strip_prefix(':') {
            Some(p) if digits(p) => Some(inner),
            None if after.is_empty() => Some(inner),
            _ => None,
        };
    }
    match host.rsplit_once(':') {
        Some((name, p)) if digits(p) => Some(name),
        Some(_) => None,
        None => Some(host),
    }
}

/// Whether a request for `host` is answered; `names` are lowercase.
pub(super) fn allowed(host: &str, names: &[String]) -> bool {
    let bracketed = host.starts_with('[');
    let Some(name) = without_port(host) else {
        return false;
    };
    if bracketed {
        return name.parse::<Ipv6Addr>().is_ok();
    }
    name.parse::<Ipv4Addr>().is_ok()
        || name.eq_ignore_ascii_case("localhost")
        || names.iter().any(|n| n.eq_ignore_ascii_case(name))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn literals_localhost_and_listed_names() {
        let names = vec!["ops.example.com".to_string()];
        for ok in [
            "127.0.0.1",
            "127.0.0.1:9901",
            "10.1.2.3:80",
            "[::1]",
            "[::1]:9901",
            "[fe80::1]:1",
            "localhost",
            "LocalHost:9901",
            "ops.example.com",
            "OPS.example.com:443",
        ] {
            assert!(allowed(ok, &names), "{ok}");
        }
        for bad in [
            "evil.example",
            "evil.example:9901",
            "127.0.0.1.evil.example",
            "localhost.evil.example",
            "sub.ops.example.com",
            "2130706433",
            "127.1",
            "[::1",
            "[::1]x",
            "[127.0.0.1]",
            "::1",
            "127.0.0.1:x",
            "localhost:99:1",
            "",
        ] {
            assert!(!allowed(bad, &names), "{bad}");
        }
        assert!(!allowed("ops.example.com", &[]));
    }
}
