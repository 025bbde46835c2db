//! The checks one by one, their order, and the status codes.

use super::*;
use crate::exchange::RequestHead;
use crate::http::Method;

mod limits;
mod rules;

/// A head for `method` and `target` with `headers`.
pub(super) fn req(method: Method, target: &str, headers: &[(&str, &str)]) -> RequestHead {
    let mut h = RequestHead::new(method, target);
    for (n, v) in headers {
        h.push_header(n, v.as_bytes());
    }
    h
}

pub(super) fn strings(v: &[&str]) -> Vec<String> {
    v.iter().map(|s| s.to_string()).collect()
}

/// The refusal for a GET of `target`, as `"404.5"`, or `"ok"`.
pub(super) fn get(f: &Filter, target: &str) -> String {
    outcome(f, &req(Method::Get, target, &[]))
}

pub(super) fn outcome(f: &Filter, r: &RequestHead) -> String {
    match f.check(r) {
        Ok(()) => "ok".into(),
        Err(r) => r.code().to_string(),
    }
}

/// The filter of the documented example table.
pub(super) fn example() -> FilterSpec {
    FilterSpec {
        file_extensions: ListSpec {
            deny: strings(&[".config", ".env", ".bak"]),
            ..ListSpec::default()
        },
        verbs: ListSpec {
            deny: strings(&["TRACE", "TRACK"]),
            ..ListSpec::default()
        },
        hidden_segments: strings(&[".git", ".svn", "bin", "App_Data"]),
        deny_url_sequences: strings(&["..", "//"]),
        deny_query_string_sequences: strings(&["<script", "%00"]),
        always_allowed_urls: strings(&["/.well-known/acme-challenge/"]),
        limits: RequestLimits {
            max_url_segments: Some(32),
            header_limits: vec![("content-type".into(), 100)],
            ..RequestLimits::default()
        },
        ..FilterSpec::default()
    }
}

pub(super) fn filter(spec: &FilterSpec) -> Filter {
    Filter::new(spec).unwrap()
}

#[test]
fn plain_requests_pass() {
    let f = filter(&example());
    for t in [
        "/",
        "/index.html",
        "/a/b/c.php?x=1&y=2",
        "/dir/",
        "/a.b/c",
        "/a%20b",
    ] {
        assert_eq!(get(&f, t), "ok", "{t}");
    }
    assert!(Filter::new(&FilterSpec::default()).is_ok());
}

#[test]
fn default_spec_is_iis() {
    let s = FilterSpec::default();
    assert!(s.verbs.allow_unlisted && s.file_extensions.allow_unlisted);
    assert!(!s.allow_double_escaping && s.allow_high_bit_characters && !s.modern_status);
    assert_eq!(s.limits.max_allowed_content_length, Some(30_000_000));
    assert_eq!(s.limits.max_url, Some(4096));
    assert_eq!(s.limits.max_query_string, Some(2048));
    assert_eq!(s.limits.max_url_segments, None);
    let f = filter(&s);
    assert_eq!(f.max_content_length(), Some(30_000_000));
    assert_eq!(get(&f, "/%252e"), "404.11");
}

#[test]
fn url_sequences_404_5() {
    let f = filter(&example());
    assert_eq!(get(&f, "/a/../b"), "404.5");
    assert_eq!(get(&f, "/a/%2e%2e/b"), "404.5");
    assert_eq!(get(&f, "/a/%2E%2E"), "404.5");
    assert_eq!(get(&f, "/a//b"), "404.5");
    assert_eq!(get(&f, "/a/%2f/b"), "404.5");
    assert_eq!(get(&f, "/a/./b"), "ok");
    // Only the path: the query is not scanned for URL sequences.
    assert_eq!(get(&f, "/a?x=..//"), "ok");
}

#[test]
fn verbs_404_6() {
    let f = filter(&example());
    assert_eq!(outcome(&f, &req(Method::Trace, "/", &[])), "404.6");
    assert_eq!(outcome(&f, &req(Method::Post, "/", &[])), "ok");
    let mut only = example();
    only.verbs = ListSpec {
        allow_unlisted: false,
        allow: strings(&["get", "HEAD"]),
        deny: Vec::new(),
    };
    let f = filter(&only);
    assert_eq!(outcome(&f, &req(Method::Get, "/", &[])), "ok");
    assert_eq!(outcome(&f, &req(Method::Head, "/", &[])), "ok");
    assert_eq!(outcome(&f, &req(Method::Post, "/", &[])), "404.6");
    assert_eq!(outcome(&f, &req(Method::Delete, "/", &[])), "404.6");
}

#[test]
fn extensions_404_7() {
    let f = filter(&example());
    assert_eq!(get(&f, "/web.config"), "404.7");
    assert_eq!(get(&f, "/a/WEB.CONFIG"), "404.7");
    assert_eq!(get(&f, "/.env"), "404.7");
    assert_eq!(get(&f, "/x.bak?y=1"), "404.7");
    assert_eq!(get(&f, "/x%2ebak"), "404.7");
    assert_eq!(get(&f, "/x.bak.txt"), "ok");
    assert_eq!(get(&f, "/x.bak/y"), "ok");
    assert_eq!(get(&f, "/x.bakx"), "ok");
}

#[test]
fn extension_allow_list_and_the_dot_entry() {
    let mut s = example();
    s.file_extensions = ListSpec {
        allow_unlisted: false,
        allow: strings(&[".html", "."]),
        deny: Vec::new(),
    };
    let f = filter(&s);
    assert_eq!(get(&f, "/a.html"), "ok");
    assert_eq!(get(&f, "/a.HTML"), "ok");
    assert_eq!(get(&f, "/a"), "ok", "no extension is \".\"");
    assert_eq!(get(&f, "/a."), "ok", "a trailing dot is no extension");
    assert_eq!(get(&f, "/dir/"), "ok");
    assert_eq!(get(&f, "/a.php"), "404.7");
    s.file_extensions.allow = strings(&[".html"]);
    let f = filter(&s);
    assert_eq!(get(&f, "/a"), "404.7");
    assert_eq!(get(&f, "/"), "404.7");
    assert_eq!(get(&f, "/a.html"), "ok");
}

#[test]
fn hidden_segments_404_8() {
    let f = filter(&example());
    assert_eq!(get(&f, "/.git/config"), "404.8");
    assert_eq!(get(&f, "/x/.GIT"), "404.8");
    assert_eq!(get(&f, "/%2Esvn/entries"), "404.8");
    assert_eq!(get(&f, "/app_data/db.mdf"), "404.8");
    assert_eq!(get(&f, "/BIN/x"), "404.8");
    assert_eq!(get(&f, "/a%2fbin"), "404.8");
    assert_eq!(get(&f, "/.gitignore"), "ok");
    assert_eq!(get(&f, "/cabin/bin.txt"), "ok");
    assert_eq!(get(&f, "/x?p=/.git/"), "ok");
}

#[test]
fn double_escaping_404_11() {
    let f = filter(&example());
    assert_eq!(get(&f, "/a%252e"), "404.11");
    assert_eq!(get(&f, "/a%25%32%65"), "404.11");
    assert_eq!(get(&f, "/a%25"), "ok", "%25 alone decodes to a lone %");
    assert_eq!(get(&f, "/a%25zz"), "ok");
    assert_eq!(get(&f, "/100%"), "ok");
    assert_eq!(get(&f, "/a+b"), "ok", "+ is not an escape here");
    assert_eq!(get(&f, "/a?q=%252e"), "ok", "the query is not checked");
    let mut s = example();
    s.allow_double_escaping = true;
    assert_eq!(get(&filter(&s), "/a%252e"), "ok");
}

#[test]
fn high_bit_404_12() {
    let mut s = example();
    assert_eq!(get(&filter(&s), "/caf%C3%A9"), "ok", "allowed by default");
    s.allow_high_bit_characters = false;
    let f = filter(&s);
    assert_eq!(get(&f, "/caf%C3%A9"), "404.12");
    assert_eq!(get(&f, "/café"), "404.12");
    assert_eq!(get(&f, "/%80"), "404.12");
    assert_eq!(get(&f, "/%7f"), "ok");
    assert_eq!(get(&f, "/a?q=%C3%A9"), "ok", "the query is not checked");
}

#[test]
fn query_sequences_404_18() {
    let f = filter(&example());
    assert_eq!(get(&f, "/?q=<script>"), "404.18");
    assert_eq!(get(&f, "/?q=%3CSCRIPT%3E"), "404.18", "decoded");
    assert_eq!(get(&f, "/?q=%00"), "404.18", "raw");
    assert_eq!(get(&f, "/?q=%2500"), "404.18", "decoded once");
    assert_eq!(get(&f, "/?q=script"), "ok");
    let mut s = example();
    s.deny_query_string_sequences = strings(&["a b"]);
    let f = filter(&s);
    assert_eq!(get(&f, "/?q=a%20b"), "404.18");
    assert_eq!(get(&f, "/?q=a+b"), "ok", "+ is not decoded as a space");
}

#[test]
fn always_allowed_urls_skip_everything() {
    let mut s = example();
    s.limits.max_url = Some(60);
    let f = filter(&s);
    let acme = "/.well-known/acme-challenge/";
    assert_eq!(get(&f, &format!("{acme}token.bak")), "ok");
    assert_eq!(get(&f, &format!("{acme}bin/x//y?q=<script")), "ok");
    assert_eq!(get(&f, &format!("{acme}{}", "x".repeat(40))), "ok");
    assert_eq!(get(&f, "/.WELL-KNOWN/Acme-Challenge/t.bak"), "ok");
    assert_eq!(get(&f, "/%2Ewell-known/acme-challenge/t.bak"), "ok");
    let trace = req(Method::Trace, &format!("{acme}t"), &[]);
    assert_eq!(outcome(&f, &trace), "ok");
    // Not a prefix, or a dot segment that could leave it.
    assert_eq!(get(&f, "/.well-known/acme-challenge.bak"), "404.7");
    assert_eq!(get(&f, "/x/.well-known/acme-challenge/t.bak"), "404.7");
    assert_eq!(get(&f, &format!("{acme}../../.git/config")), "404.8");
    assert_eq!(get(&f, &format!("{acme}%2e%2e/a")), "404.5");
    assert_eq!(get(&f, &format!("{acme}./a.bak")), "404.7");
}

#[test]
fn order_earlier_checks_win() {
    let mut s = example();
    s.limits.max_url = Some(64);
    s.limits.max_query_string = Some(16);
    s.limits.max_allowed_content_length = Some(10);
    s.allow_high_bit_characters = false;
    let f = filter(&s);
    let cl = [("Content-Length", "11")];
    let r = |m, t: &str, h: &[(&str, &str)]| outcome(&f, &req(m, t, h));
    // Content length first, then URL length, query length, segments.
    let long = format!("/{}/../.git/x.bak", "a".repeat(70));
    assert_eq!(r(Method::Trace, &long, &cl), "413.1");
    assert_eq!(r(Method::Trace, &long, &[]), "404.14");
    let t = "/.git/%252e%C3/../x.bak?aaaaaaaaaaaaaaaaaaaaa<script";
    assert_eq!(r(Method::Trace, t, &[]), "404.15");
    let t = "/.git/%252e%C3/../x.bak?<script";
    assert_eq!(
        r(Method::Trace, t, &[("Content-Type", &"x".repeat(101))]),
        "431"
    );
    assert_eq!(r(Method::Trace, t, &[]), "404.11");
    let t = "/.git/%C3/../x.bak?<script";
    assert_eq!(r(Method::Trace, t, &[]), "404.12");
    let t = "/.git/../x.bak?<script";
    assert_eq!(r(Method::Trace, t, &[]), "404.6");
    assert_eq!(r(Method::Get, t, &[]), "404.7");
    assert_eq!(r(Method::Get, "/.git/../x?<script", &[]), "404.8");
    assert_eq!(r(Method::Get, "/a/../x?<script", &[]), "404.5");
    assert_eq!(r(Method::Get, "/a/x?<script", &[]), "404.18");
}

#[test]
fn modern_status_codes() {
    let mut s = example();
    s.modern_status = true;
    s.allow_high_bit_characters = false;
    s.limits.max_url = Some(20);
    s.limits.max_query_string = Some(8);
    s.limits.max_url_segments = Some(3);
    s.limits.max_allowed_content_length = Some(1);
    s.rules = vec![RuleSpec {
        name: "r".into(),
        scan_url: true,
        deny_strings: strings(&["evil"]),
        ..RuleSpec::default()
    }];
    let f = filter(&s);
    let check = |m, t: &str, h: &[(&str, &str)]| f.check(&req(m, t, h)).unwrap_err();
    let cases = [
        (check(Method::Get, "/a//b", &[]), 400, Reason::UrlSequence),
        (check(Method::Trace, "/", &[]), 405, Reason::Verb),
        (check(Method::Get, "/.env", &[]), 404, Reason::Extension),
        (check(Method::Get, "/bin/", &[]), 404, Reason::HiddenSegment),
        (check(Method::Get, "/%252e", &[]), 400, Reason::DoubleEscape),
        (check(Method::Get, "/%ff", &[]), 400, Reason::HighBit),
        (
            check(Method::Get, &"/a".repeat(11), &[]),
            414,
            Reason::UrlTooLong,
        ),
        (
            check(Method::Get, "/?123456789", &[]),
            414,
            Reason::QueryTooLong,
        ),
        (
            check(Method::Get, "/a/b/c/d", &[]),
            414,
            Reason::TooManySegments,
        ),
        (
            check(Method::Get, "/?<script", &[]),
            400,
            Reason::QuerySequence,
        ),
        (check(Method::Get, "/evil", &[]), 403, Reason::Rule),
        (
            check(Method::Get, "/", &[("content-length", "2")]),
            413,
            Reason::ContentLength,
        ),
        (
            check(Method::Get, "/", &[("content-type", &"x".repeat(101))]),
            431,
            Reason::Header,
        ),
    ];
    assert_eq!(cases.len(), Reason::ALL.len());
    for (refusal, status, reason) in cases {
        assert_eq!(
            refusal,
            Refusal {
                status,
                sub: 0,
                reason
            }
        );
        assert_eq!(refusal.code().to_string(), status.to_string());
        assert_eq!(reason.modern_status(), status);
    }
}

#[test]
fn reasons_names_and_codes() {
    let names: Vec<&str> = Reason::ALL.iter().map(|r| r.name()).collect();
    assert_eq!(names[0], "url_sequence");
    assert!(names.contains(&"too_many_segments") && names.contains(&"content_length"));
    let mut unique = names.clone();
    unique.sort_unstable();
    unique.dedup();
    assert_eq!(unique.len(), names.len());
    for n in &names {
        assert!(
            n.bytes().all(|b| b.is_ascii_lowercase() || b == b'_'),
            "{n}"
        );
    }
    let codes: Vec<String> = Reason::ALL
        .iter()
        .map(|r| Refusal::of(*r, false).code().to_string())
        .collect();
    let want = [
        "404.5", "404.6", "404.7", "404.8", "404.11", "404.12", "404.14", "404.15", "404.20",
        "404.18", "404.19", "413.1", "431",
    ];
    assert_eq!(codes, want);
    assert_eq!(Reason::Header.to_string(), "header");
    let r = Refusal::of(Reason::Verb, false);
    assert_eq!((r.status, r.sub), (404, 6));
}

#[test]
fn filter_is_send_and_sync() {
    fn both<T: Send + Sync>() {}
    both::<Filter>();
}
