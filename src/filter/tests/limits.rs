//! Request limits: content length, path and query length, segments and
//! header fields.

use super::*;

#[test]
fn url_and_query_length_404_14_and_404_15() {
    let mut s = example();
    s.limits.max_url = Some(10);
    s.limits.max_query_string = Some(5);
    let f = filter(&s);
    assert_eq!(get(&f, "/123456789"), "ok");
    assert_eq!(get(&f, "/1234567890"), "404.14");
    // Raw length: escapes count three bytes each.
    assert_eq!(get(&f, "/%41%41%41%41"), "404.14");
    assert_eq!(get(&f, "/?12345"), "ok");
    assert_eq!(get(&f, "/?123456"), "404.15");
    s.limits.max_query_string = Some(0);
    let f = filter(&s);
    assert_eq!(get(&f, "/?"), "ok");
    assert_eq!(get(&f, "/?a"), "404.15");
}

#[test]
fn url_segments_404_20() {
    let mut s = example();
    s.limits.max_url_segments = Some(2);
    let f = filter(&s);
    assert_eq!(get(&f, "/a/b"), "ok");
    assert_eq!(get(&f, "/a/"), "ok");
    assert_eq!(get(&f, "/a/b/c"), "404.20");
    assert_eq!(get(&f, "/a/b%2Fc"), "404.20");
    assert_eq!(get(&f, "/a/b?c/d/e"), "ok");
    s.limits.max_url_segments = None;
    assert_eq!(get(&filter(&s), &"/a".repeat(200)), "ok");
}

#[test]
fn content_length_413_1() {
    let mut s = example();
    s.limits.max_allowed_content_length = Some(100);
    let f = filter(&s);
    let post = |len: &str| outcome(&f, &req(Method::Post, "/", &[("Content-Length", len)]));
    assert_eq!(post("100"), "ok");
    assert_eq!(post("101"), "413.1");
    assert_eq!(post("99999999999999999999999"), "413.1");
    assert_eq!(post("x"), "ok", "left to the request parser");
    assert_eq!(f.max_content_length(), Some(100));
    s.limits.max_allowed_content_length = None;
    let f = filter(&s);
    assert_eq!(f.max_content_length(), None);
    let r = req(Method::Post, "/", &[("Content-Length", "999999999999")]);
    assert_eq!(outcome(&f, &r), "ok");
}

#[test]
fn header_limits_431() {
    let mut s = example();
    s.limits.header_limits = vec![("content-type".into(), 10), ("x-debug".into(), 0)];
    let f = filter(&s);
    let with = |n: &str, v: &str| outcome(&f, &req(Method::Post, "/", &[("Host", "h"), (n, v)]));
    assert_eq!(with("Content-Type", "text/plain"), "ok");
    assert_eq!(with("CONTENT-TYPE", "text/plains"), "431");
    assert_eq!(with("X-Debug", ""), "431", "0 forbids the field");
    assert_eq!(with("X-Debug", "1"), "431");
    assert_eq!(with("X-Other", "a long value of many bytes"), "ok");
    // Every field of the name is checked, not only the first.
    let r = req(
        Method::Get,
        "/",
        &[("Content-Type", "short"), ("Content-Type", "much too long")],
    );
    assert_eq!(outcome(&f, &r), "431");
}
