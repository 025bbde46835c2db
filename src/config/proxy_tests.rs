//! `proxy` routes: every key, the defaults, and errors that name the key
//! and the line; the networks and sizes they take.

use super::*;

#[test]
fn every_proxy_key() {
    let p = proxy_of(FULL);
    assert_eq!(p.upstream, "app");
    assert!(!p.preserve_host);
    assert_eq!(
        (p.strip_prefix.as_str(), p.prefix.as_str()),
        ("/api", "/v1")
    );
    let pair = |a: &str, b: &str| vec![(a.to_string(), b.to_string())];
    assert_eq!(p.header_up.set, pair("X-Env", "prod"));
    assert_eq!(p.header_up.add, pair("X-Tag", "a"));
    assert_eq!(p.header_up.remove, ["Cookie2"]);
    assert_eq!(p.header_down.remove, ["Server"]);
    assert!(p.header_down.set.is_empty() && p.header_down.add.is_empty());
    let net = |s: &str, prefix| Cidr {
        addr: s.parse().unwrap(),
        prefix,
    };
    assert_eq!(
        p.trusted_proxies,
        [net("10.0.0.0", 8), net("::1", 128), net("127.0.0.1", 32)]
    );
    assert!(p.forwarded && p.via && p.buffer_response);
    assert_eq!(p.max_memory, 2 << 20);
}

#[test]
fn routes_must_name_a_group() {
    assert_eq!(
        err(&route("").replace("upstream = \"app\"", "upstream = \"nope\"")),
        "p.toml:9: site[0].route[0].upstream: \"nope\" is not an [[upstream]] name (defined: app)"
    );
    let alone = "[[site]]\nhosts = [\"a.test\"]\n[[site.route]]\npath = \"/\"\nhandler = \"proxy\"\nupstream = \"app\"\n";
    assert_eq!(
        err(alone),
        "p.toml:6: site[0].route[0].upstream: \"app\" is not an [[upstream]] name (no [[upstream]] tables are defined)"
    );
    assert_eq!(
        err(&route("").replace("upstream = \"app\"", "upstream = \"\"")),
        "p.toml:9: site[0].route[0].upstream: must not be empty"
    );
    // A group written after the routes that use it is found.
    assert_eq!(proxy_of(FULL).upstream, "app");
}

#[test]
fn route_errors_name_key_and_line() {
    let r = "site[0].route[0]";
    let cases: &[(&str, String)] = &[
        (
            "strip_prefix = \"api\"",
            format!("{r}.strip_prefix: \"api\" must be a path starting with '/'"),
        ),
        (
            "prefix = \"/v1?x\"",
            format!("{r}.prefix: \"/v1?x\" must be a path starting with '/'"),
        ),
        (
            "header_up = { set = { \"Bad Name\" = \"x\" } }",
            format!("{r}.header_up.set: \"Bad Name\" is not a header name"),
        ),
        (
            "header_up = { add = { \"X-A\" = \"a\\nb\" } }",
            format!("{r}.header_up.add: the value of X-A must not contain CR, LF or NUL"),
        ),
        (
            "header_down = { set = { \"Transfer-Encoding\" = \"chunked\" } }",
            format!("{r}.header_down.set: Transfer-Encoding is managed by the proxy"),
        ),
        (
            "header_down = { remove = [\"a:b\"] }",
            format!("{r}.header_down.remove: \"a:b\" is not a header name"),
        ),
        (
            "trusted_proxies = [\"10.0.0.1/8\"]",
            format!(
                "{r}.trusted_proxies: \"10.0.0.1/8\" has bits set after the prefix; the network is \"10.0.0.0/8\""
            ),
        ),
        (
            "trusted_proxies = [\"10.0.0.0/33\"]",
            format!("{r}.trusted_proxies: \"10.0.0.0/33\": the prefix length must be 0 to 32"),
        ),
        (
            "trusted_proxies = [\"proxy.local\"]",
            format!("{r}.trusted_proxies: \"proxy.local\" is not an IP address"),
        ),
        (
            "buffering = { response = \"spool\" }",
            format!("{r}.buffering.response: must be \"stream\" or \"buffer\" (got \"spool\")"),
        ),
        (
            "buffering = { max_memory = \"1KiB\" }",
            format!(
                "{r}.buffering.max_memory: must be a size from 4KiB to 1GiB, like \"64KiB\" or \"1MiB\" (got 1024 bytes)"
            ),
        ),
        (
            "buffering = { max_memory = \"2GiB\" }",
            format!("{r}.buffering.max_memory: must be a size from 4KiB to 1GiB"),
        ),
        (
            "buffering = { max_memory = \"1MB\" }",
            format!(
                "{r}.buffering.max_memory: must be a size from 4KiB to 1GiB, like \"64KiB\" or \"1MiB\""
            ),
        ),
        (
            "root = \"/srv\"",
            format!("{r}.root: does not apply to handler = \"proxy\""),
        ),
        (
            "options = {}",
            format!("{r}.options: does not apply to handler = \"proxy\""),
        ),
        (
            "connect = 1",
            "site.route.connect: invalid type: integer `1`, expected a boolean".into(),
        ),
    ];
    for (rest, want) in cases {
        let want = format!("p.toml:10: {want}");
        let got = err(&route(&format!("{rest}\n")));
        assert!(got.starts_with(&want), "{rest}\n got: {got}\nwant: {want}");
    }
    assert!(err(&route("header_up = { replace = {} }\n")).contains("unknown field `replace`"));
    let respond = "[[site]]\nhosts = [\"a.test\"]\n[[site.route]]\npath = \"/\"\nhandler = \"respond\"\nvia = true\n";
    assert_eq!(
        err(&respond.replace("via = true", "connect = true")),
        "p.toml:6: site[0].route[0].connect: does not apply to handler = \"respond\""
    );
    assert_eq!(
        err(respond),
        "p.toml:6: site[0].route[0].via: does not apply to handler = \"respond\""
    );
}

#[test]
fn networks_and_sizes() {
    let ip = |s: &str| s.parse::<IpAddr>().unwrap();
    let c = cidr("10.0.0.0/8").unwrap();
    assert!(c.contains(ip("10.1.2.3")) && !c.contains(ip("11.0.0.1")));
    assert_eq!(cidr("::1").unwrap().prefix, 128);
    assert_eq!(cidr("192.0.2.7").unwrap().prefix, 32);
    assert_eq!(cidr("0.0.0.0/0").unwrap().prefix, 0);
    assert!(cidr("0.0.0.0/0").unwrap().contains(ip("203.0.113.9")));
    let mapped = cidr("::ffff:10.0.0.0/104").unwrap();
    assert_eq!(mapped, cidr("10.0.0.0/8").unwrap(), "stored as IPv4");
    assert!(cidr("2001:db8::/32").unwrap().contains(ip("2001:db8::1")));
    assert!(cidr("2001:db8::1/32").is_err());
    assert!(cidr("::/129").is_err());
    assert!(cidr("10.0.0.0/x").is_err());
    let v = |s: &str| toml::Value::String(s.into());
    assert_eq!(size_of(&v("64KiB")), Some(64 << 10));
    assert_eq!(size_of(&v("1MiB")), Some(1 << 20));
    assert_eq!(size_of(&v("1GiB")), Some(1 << 30));
    assert_eq!(size_of(&v("16m")), Some(16 << 20));
    assert_eq!(size_of(&v("4096")), Some(4096));
    assert_eq!(size_of(&toml::Value::Integer(5000)), Some(5000));
    assert_eq!(size_of(&toml::Value::Integer(-1)), None);
    for bad in ["", "MiB", "1.5MiB", "1 TiB", "1MB", "-4KiB"] {
        assert_eq!(size_of(&v(bad)), None, "{bad:?}");
    }
}
