//! `request_filtering` tables: defaults, normal forms, and errors that name
//! the key and the line.

use serde::Deserialize;
use toml::Spanned;

use super::*;
use crate::config::file::test_ctx;
use crate::filter::{DEFAULT_MAX_CONTENT_LENGTH, DEFAULT_MAX_QUERY_STRING, DEFAULT_MAX_URL};

#[derive(Deserialize)]
struct Doc {
    site: DocSite,
}

#[derive(Deserialize)]
struct DocSite {
    request_filtering: Spanned<RawFiltering>,
}

fn parse(text: &str) -> Result<FilterSpec, ConfigError> {
    let doc: Doc = toml::from_str(text).expect("well-formed TOML");
    filtering(
        &test_ctx(text),
        &doc.site.request_filtering,
        "site[0].request_filtering",
    )
}

fn err(text: &str) -> String {
    parse(text).unwrap_err().to_string()
}

const EXAMPLE: &str = r#"
[site.request_filtering]
file_extensions = { allow_unlisted = true, deny = [".config", ".ENV", ".bak"], allow = [] }
verbs = { allow_unlisted = true, deny = ["TRACE", "track"], allow = [] }
hidden_segments = [".git", ".svn", "bin", "App_Data"]
deny_url_sequences = ["..", "//"]
deny_query_string_sequences = ["<script", "%00"]
always_allowed_urls = ["/.well-known/acme-challenge/"]
allow_double_escaping = false
allow_high_bit_characters = true
modern_status = false
request_limits = { max_allowed_content_length = 30000000, max_url = 4096, max_query_string = 2048, max_url_segments = 32, header_limits = { "Content-Type" = 100, "x-debug" = 0 } }

[[site.request_filtering.rule]]
name = "sqli"
scan_url = true
scan_query_string = true
scan_headers = ["User-Agent"]
applies_to = [".PHP"]
deny_strings = ["union select"]
"#;

#[test]
fn the_example() {
    let s = parse(EXAMPLE).unwrap();
    assert_eq!(s.file_extensions.deny, [".config", ".env", ".bak"]);
    assert!(s.file_extensions.allow_unlisted && s.file_extensions.allow.is_empty());
    assert_eq!(s.verbs.deny, ["TRACE", "TRACK"]);
    assert_eq!(s.hidden_segments, [".git", ".svn", "bin", "App_Data"]);
    assert_eq!(s.deny_url_sequences, ["..", "//"]);
    assert_eq!(s.deny_query_string_sequences, ["<script", "%00"]);
    assert_eq!(s.always_allowed_urls, ["/.well-known/acme-challenge/"]);
    assert!(!s.allow_double_escaping && s.allow_high_bit_characters && !s.modern_status);
    let l = &s.limits;
    assert_eq!(l.max_allowed_content_length, Some(30_000_000));
    assert_eq!((l.max_url, l.max_query_string), (Some(4096), Some(2048)));
    assert_eq!(l.max_url_segments, Some(32));
    assert_eq!(
        l.header_limits,
        [
            ("content-type".to_string(), 100),
            ("x-debug".to_string(), 0)
        ]
    );
    let r = &s.rules[0];
    assert_eq!(r.name, "sqli");
    assert!(r.scan_url && r.scan_query_string);
    assert_eq!(r.scan_headers, ["user-agent"]);
    assert_eq!(r.applies_to, [".php"]);
    assert_eq!(r.deny_strings, ["union select"]);
    // And it compiles to a filter that works.
    let f = Filter::new(&s).unwrap();
    let req = crate::exchange::RequestHead::new(crate::http::Method::Get, "/a.php?q=UNION+select");
    assert!(f.check(&req).is_ok(), "+ is no space");
    let req = crate::exchange::RequestHead::new(crate::http::Method::Get, "/x/.git/HEAD");
    assert_eq!(f.check(&req).unwrap_err().code().to_string(), "404.8");
}

#[test]
fn an_empty_table_is_iis_defaults() {
    let s = parse("[site.request_filtering]\n").unwrap();
    assert_eq!(s, FilterSpec::default());
    let l = &s.limits;
    assert_eq!(
        l.max_allowed_content_length,
        Some(DEFAULT_MAX_CONTENT_LENGTH)
    );
    assert_eq!(l.max_url, Some(DEFAULT_MAX_URL));
    assert_eq!(l.max_query_string, Some(DEFAULT_MAX_QUERY_STRING));
    assert_eq!(l.max_url_segments, None);
    let s = parse("[site.request_filtering]\nrequest_limits = { max_url = 100 }\n").unwrap();
    assert_eq!(s.limits.max_url, Some(100));
    assert_eq!(s.limits.max_query_string, Some(DEFAULT_MAX_QUERY_STRING));
    let s =
        parse("[site.request_filtering]\nverbs = { allow_unlisted = false, allow = [\"get\"] }\n")
            .unwrap();
    assert!(!s.verbs.allow_unlisted);
    assert_eq!(s.verbs.allow, ["GET"]);
    let s = parse("[site.request_filtering]\nfile_extensions = { deny = [\".x\"] }\n").unwrap();
    assert!(s.file_extensions.allow_unlisted);
}

#[test]
fn zero_limits() {
    let t = "[site.request_filtering]\nrequest_limits = { max_allowed_content_length = 0, max_query_string = 0 }\n";
    let s = parse(t).unwrap();
    assert_eq!(s.limits.max_allowed_content_length, Some(0));
    assert_eq!(s.limits.max_query_string, Some(0));
    let e = err("[site.request_filtering]\nrequest_limits = { max_url_segments = 0 }\n");
    assert_eq!(
        e,
        "line 2: site[0].request_filtering.request_limits.max_url_segments: must be at least 1 (leave it out for IIS's default)"
    );
    let e = err("[site.request_filtering]\nrequest_limits = { max_url = 0 }\n");
    assert!(
        e.contains("request_limits.max_url: must be at least 1"),
        "{e}"
    );
}

#[test]
fn errors_name_key_and_line() {
    let cases = [
        (
            "file_extensions = { deny = [\"php\"] }",
            "site[0].request_filtering.file_extensions.deny: \"php\" must start with a dot",
        ),
        (
            "file_extensions = { allow = [\".tar.gz\"] }",
            "file_extensions.allow: \".tar.gz\" has a second dot",
        ),
        (
            "file_extensions = { deny = [\".a/b\"] }",
            "is not a file extension",
        ),
        (
            "file_extensions = { allow = [\".php\"], deny = [\".PHP\"] }",
            "file_extensions.deny: \".php\" is in allow too",
        ),
        (
            "verbs = { deny = [\"GET \"] }",
            "verbs.deny: \"GET \" is not a method",
        ),
        (
            "verbs = { deny = [\"get\", \"GET\"] }",
            "verbs.deny: \"GET\" is listed twice",
        ),
        (
            "hidden_segments = [\"/.git/\"]",
            "hidden_segments: \"/.git/\" is not a path segment",
        ),
        ("hidden_segments = [\"\"]", "is not a path segment"),
        (
            "deny_url_sequences = [\"\"]",
            "deny_url_sequences: an empty string",
        ),
        (
            "deny_query_string_sequences = [\"\"]",
            "deny_query_string_sequences: an empty",
        ),
        (
            "always_allowed_urls = [\"x/\"]",
            "always_allowed_urls: \"x/\" must be a path",
        ),
        (
            "request_limits = { max_allowed_content_length = -1 }",
            "max_allowed_content_length: must be between 0 and",
        ),
        (
            "request_limits = { max_url = 4294967296 }",
            "max_url: must be between 1 and 4294967295",
        ),
        (
            "request_limits = { max_query_string = -5 }",
            "max_query_string: must be between 0 and",
        ),
        (
            "request_limits = { header_limits = { \"bad name\" = 1 } }",
            "header_limits.bad name: \"bad name\" is not a header name",
        ),
        (
            "request_limits = { header_limits = { \"x\" = -1 } }",
            "header_limits.x: must be between 0 and",
        ),
        (
            "request_limits = { header_limits = { \"X-A\" = 1, \"x-a\" = 2 } }",
            "is listed twice",
        ),
    ];
    for (line, want) in cases {
        let text = format!("[site.request_filtering]\n{line}\n");
        let e = err(&text);
        assert!(e.starts_with("line 2: "), "{line}: {e}");
        assert!(e.contains(want), "{line}: {e}");
    }
}

#[test]
fn unknown_keys_are_refused() {
    for t in [
        "[site.request_filtering]\nmax_url = 5\n",
        "[site.request_filtering]\nverbs = { deny_all = true }\n",
        "[site.request_filtering]\nrequest_limits = { max_urls = 5 }\n",
        "[site.request_filtering]\n[[site.request_filtering.rule]]\nname = \"a\"\nscan = true\n",
    ] {
        assert!(toml::from_str::<Doc>(t).is_err(), "{t}");
    }
}

fn rule_err(body: &str) -> String {
    err(&format!(
        "[site.request_filtering]\n[[site.request_filtering.rule]]\nname = \"a\"\nscan_url = true\ndeny_strings = [\"x\"]\n\n[[site.request_filtering.rule]]\n{body}\n"
    ))
}

#[test]
fn rule_errors() {
    let e = rule_err("name = \"A\"\nscan_url = true\ndeny_strings = [\"y\"]");
    assert_eq!(
        e,
        "line 8: site[0].request_filtering.rule[1].name: \"A\" is the name of site[0].request_filtering.rule[0] too; rule names must differ"
    );
    let e = rule_err("name = \" \"\nscan_url = true\ndeny_strings = [\"y\"]");
    assert!(e.contains("rule[1].name: must not be empty"), "{e}");
    let e = rule_err("scan_url = true\ndeny_strings = [\"y\"]");
    assert!(e.contains("rule[1].name: a rule needs a name"), "{e}");
    let e = rule_err("name = \"b\"\nscan_url = true");
    assert!(
        e.contains("rule[1].deny_strings: a rule needs strings to deny"),
        "{e}"
    );
    let e = rule_err("name = \"b\"\nscan_url = true\ndeny_strings = []");
    assert!(
        e.contains("rule[1].deny_strings: a rule needs strings"),
        "{e}"
    );
    let e = rule_err("name = \"b\"\nscan_url = true\ndeny_strings = [\"\"]");
    assert!(
        e.starts_with("line 10: ") && e.contains("an empty string"),
        "{e}"
    );
    let e = rule_err("name = \"b\"\ndeny_strings = [\"y\"]");
    assert!(
        e.contains("rule[1].scan_url: the rule scans nothing"),
        "{e}"
    );
    let e = rule_err("name = \"b\"\nscan_url = false\nscan_headers = []\ndeny_strings = [\"y\"]");
    assert!(e.contains("scans nothing"), "{e}");
    let e = rule_err("name = \"b\"\nscan_headers = [\"a b\"]\ndeny_strings = [\"y\"]");
    assert!(
        e.contains("rule[1].scan_headers: \"a b\" is not a header name"),
        "{e}"
    );
    let e =
        rule_err("name = \"b\"\nscan_url = true\napplies_to = [\"php\"]\ndeny_strings = [\"y\"]");
    assert!(
        e.contains("rule[1].applies_to: \"php\" must start with a dot"),
        "{e}"
    );
}

#[test]
fn rules_keep_their_order_and_defaults() {
    let t = "[site.request_filtering]\n[[site.request_filtering.rule]]\nname = \"h\"\nscan_headers = [\"Referer\"]\ndeny_strings = [\"a\", \"b\"]\n[[site.request_filtering.rule]]\nname = \"q\"\nscan_query_string = true\ndeny_strings = [\"c\"]\n";
    let s = parse(t).unwrap();
    let names: Vec<&str> = s.rules.iter().map(|r| r.name.as_str()).collect();
    assert_eq!(names, ["h", "q"]);
    let h = &s.rules[0];
    assert!(!h.scan_url && !h.scan_query_string && h.applies_to.is_empty());
    assert_eq!(h.scan_headers, ["referer"]);
    assert!(s.rules[1].scan_query_string);
}
