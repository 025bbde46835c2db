//! `[cache]` and a route's `cache = { … }`: what they parse into, and
//! errors that name the key and the line.

use std::path::Path;
use std::time::Duration;

use crate::cache::{Bypass, CacheRule, StoreSpec};
use crate::config::parse;

fn err(text: &str) -> String {
    parse(text, Some(Path::new("p.toml")))
        .unwrap_err()
        .to_string()
}

fn route(cache: &str) -> String {
    format!(
        "[[site]]\nname = \"a\"\ndefault = true\n[[site.route]]\npath = \"/\"\nhandler = \"respond\"\ncache = {cache}\n"
    )
}

#[test]
fn rules_and_store() {
    let c = parse(
        &format!(
            "[cache]\nmax_size = \"64MiB\"\nmax_object_size = \"2MiB\"\n{}",
            route(
                r#"{ ttl = { "200" = "10m", "404" = "1m", any = 5 }, vary_by_query = ["v"], stale_while_revalidate = "30s",
          stale_if_error = "1h", lock = false, lock_timeout = "2s", bypass_if = ["header:Authorization", "cookie:session", "query:nocache"],
          store_set_cookie = true }"#
            )
        ),
        None,
    )
    .unwrap();
    assert_eq!(
        c.cache,
        StoreSpec {
            max_size: 64 << 20,
            max_object_size: 2 << 20
        }
    );
    let r = c.sites[0].routes[0].cache.clone().unwrap();
    assert_eq!(r.ttl_for(200), Some(Duration::from_secs(600)));
    assert_eq!(r.ttl_for(404), Some(Duration::from_secs(60)));
    assert_eq!(r.ttl_for(500), Some(Duration::from_secs(5)), "any");
    assert_eq!(r.vary_by_query, Some(vec!["v".to_string()]));
    assert_eq!(r.stale_while_revalidate, Duration::from_secs(30));
    assert_eq!(r.stale_if_error, Duration::from_secs(3600));
    assert!(!r.lock && r.store_set_cookie);
    assert_eq!(r.lock_timeout, Duration::from_secs(2));
    assert_eq!(
        r.bypass_if,
        vec![
            Bypass::Header("Authorization".into()),
            Bypass::Cookie("session".into()),
            Bypass::Query("nocache".into())
        ]
    );
    // An empty table takes the defaults; no table, no cache.
    let c = parse(&route("{}"), None).unwrap();
    assert_eq!(c.sites[0].routes[0].cache, Some(CacheRule::default()));
    assert_eq!(c.cache, StoreSpec::default());
    let json = crate::config::json::render(&c);
    assert_eq!(json["cache"]["max_size"], 256 << 20);
    assert_eq!(json["site"][0]["route"][0]["cache"]["lock"], true);
}

#[test]
fn errors_name_key_and_line() {
    let e = err(&route(r#"{ ttl = { "2xx" = "1m" } }"#));
    assert!(
        e.contains("p.toml:7")
            && e.contains("site[0].route[0].cache.ttl")
            && e.contains("\"2xx\" is not a status"),
        "{e}"
    );
    let e = err(&route(r#"{ ttl = { "206" = "1m" } }"#));
    assert!(e.contains("not 206"), "{e}");
    let e = err(&route(r#"{ ttl = { "200" = "soon" } }"#));
    assert!(
        e.contains("cache.ttl.200") && e.contains("must be a duration"),
        "{e}"
    );
    let e = err(&route(r#"{ bypass_if = ["Authorization"] }"#));
    assert!(
        e.contains("cache.bypass_if") && e.contains("header:Name"),
        "{e}"
    );
    let e = err(&route(r#"{ vary_by_query = ["a=b"] }"#));
    assert!(e.contains("cache.vary_by_query"), "{e}");
    let e = err(&route(r#"{ lock_timeout = "0s" }"#));
    assert!(e.contains("cache.lock_timeout"), "{e}");
    let e = err(&route(r#"{ tll = 5 }"#));
    assert!(e.contains("tll"), "{e}");
    let e = err("[cache]\nmax_size = \"12parsecs\"\n");
    assert!(
        e.contains("p.toml:2") && e.contains("cache.max_size") && e.contains("like \"256MiB\""),
        "{e}"
    );
    let e = err("[cache]\nmax_size = \"4MiB\"\nmax_object_size = \"8MiB\"\n");
    assert!(
        e.contains("p.toml:3") && e.contains("cache.max_object_size") && e.contains("4MiB"),
        "{e}"
    );
}
