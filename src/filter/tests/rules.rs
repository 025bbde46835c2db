//! Filtering rules: what they scan, what they apply to, and where they come
//! in the order.

use super::*;

fn sqli() -> RuleSpec {
    RuleSpec {
        name: "sqli".into(),
        scan_url: true,
        scan_query_string: true,
        scan_headers: strings(&["User-Agent"]),
        applies_to: strings(&[".php"]),
        deny_strings: strings(&["union select", "' or 1=1"]),
    }
}

fn with_rules(rules: Vec<RuleSpec>) -> Filter {
    Filter::new(&FilterSpec { rules, ..example() }).unwrap()
}

#[test]
fn a_rule_scans_path_query_and_headers() {
    let f = with_rules(vec![sqli()]);
    assert_eq!(get(&f, "/a.php?id=1%20UNION%20SELECT%20x"), "404.19");
    assert_eq!(get(&f, "/a.php?id=1 union select x"), "404.19");
    assert_eq!(get(&f, "/union%20select/a.php"), "404.19");
    assert_eq!(get(&f, "/a.php?id=%27%20or%201=1"), "404.19");
    assert_eq!(
        get(&f, "/a.php?id=1+union+select"),
        "ok",
        "+ is not a space"
    );
    assert_eq!(get(&f, "/a.php?id=1"), "ok");
    let ua = |v: &str| outcome(&f, &req(Method::Get, "/a.php", &[("user-agent", v)]));
    assert_eq!(ua("x Union Select y"), "404.19");
    assert_eq!(ua("curl/8"), "ok");
    // Only the fields named.
    let r = req(Method::Get, "/a.php", &[("Referer", "union select")]);
    assert_eq!(outcome(&f, &r), "ok");
    // Every field of the name.
    let r = req(
        Method::Get,
        "/a.php",
        &[("User-Agent", "fine"), ("User-Agent", "union select")],
    );
    assert_eq!(outcome(&f, &r), "404.19");
}

#[test]
fn applies_to_limits_the_requests() {
    let f = with_rules(vec![sqli()]);
    assert_eq!(get(&f, "/a.PHP?q=union select"), "404.19");
    assert_eq!(get(&f, "/a%2Ephp?q=union select"), "404.19");
    assert_eq!(get(&f, "/a.html?q=union select"), "ok");
    assert_eq!(get(&f, "/a?q=union select"), "ok");
    assert_eq!(
        get(&f, "/a.php/b?q=union select"),
        "ok",
        "the last segment's"
    );
    let mut any = sqli();
    any.applies_to.clear();
    let f = with_rules(vec![any]);
    assert_eq!(get(&f, "/a.html?q=union select"), "404.19");
    assert_eq!(get(&f, "/?q=union select"), "404.19");
    let mut bare = sqli();
    bare.applies_to = strings(&["."]);
    let f = with_rules(vec![bare]);
    assert_eq!(get(&f, "/api/x?q=union select"), "404.19");
    assert_eq!(get(&f, "/x.php?q=union select"), "ok");
}

#[test]
fn scan_flags_choose_the_parts() {
    let only_query = RuleSpec {
        name: "q".into(),
        scan_query_string: true,
        deny_strings: strings(&["bad"]),
        ..RuleSpec::default()
    };
    let f = with_rules(vec![only_query]);
    assert_eq!(get(&f, "/?x=BAD"), "404.19");
    assert_eq!(get(&f, "/bad"), "ok");
    let only_headers = RuleSpec {
        name: "h".into(),
        scan_headers: strings(&["x-a", "X-B"]),
        deny_strings: strings(&["bad"]),
        ..RuleSpec::default()
    };
    let f = with_rules(vec![only_headers]);
    assert_eq!(get(&f, "/bad?bad"), "ok");
    let h = |n: &str| outcome(&f, &req(Method::Get, "/", &[(n, "so bad")]));
    assert_eq!(h("X-A"), "404.19");
    assert_eq!(h("x-b"), "404.19");
    assert_eq!(h("x-c"), "ok");
    // Header values are scanned raw, not decoded.
    let r = req(Method::Get, "/", &[("x-a", "b%61d")]);
    assert_eq!(outcome(&f, &r), "ok");
}

#[test]
fn later_rules_are_checked_too() {
    let a = RuleSpec {
        name: "a".into(),
        scan_url: true,
        deny_strings: strings(&["aaa"]),
        ..RuleSpec::default()
    };
    let b = RuleSpec {
        name: "b".into(),
        scan_url: true,
        deny_strings: strings(&["bbb"]),
        ..RuleSpec::default()
    };
    let f = with_rules(vec![a, b]);
    assert_eq!(get(&f, "/aaa"), "404.19");
    assert_eq!(get(&f, "/xbbbx"), "404.19");
    assert_eq!(get(&f, "/ab"), "ok");
}

#[test]
fn rules_come_last() {
    let mut r = sqli();
    r.deny_strings = strings(&["<script", "bin", ".bak", "trace"]);
    r.applies_to.clear();
    let f = with_rules(vec![r]);
    assert_eq!(get(&f, "/?<script"), "404.18");
    assert_eq!(get(&f, "/bin/x"), "404.8");
    assert_eq!(get(&f, "/a.bak"), "404.7");
    assert_eq!(outcome(&f, &req(Method::Trace, "/trace", &[])), "404.6");
    assert_eq!(get(&f, "/trace"), "404.19");
    let acme = "/.well-known/acme-challenge/trace";
    assert_eq!(get(&f, acme), "ok", "always allowed");
}

#[test]
fn rules_with_empty_strings_find_nothing() {
    let r = RuleSpec {
        name: "empty".into(),
        scan_url: true,
        deny_strings: strings(&[""]),
        ..RuleSpec::default()
    };
    let f = with_rules(vec![r]);
    assert_eq!(get(&f, "/anything"), "ok");
}
