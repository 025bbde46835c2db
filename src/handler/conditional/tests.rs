use super::*;

#[test]
fn ranges() {
    assert_eq!(range(b"bytes=0-9", 100), Range::Part { start: 0, len: 10 });
    assert_eq!(range(b"bytes=90-", 100), Range::Part { start: 90, len: 10 });
    assert_eq!(range(b"bytes=-10", 100), Range::Part { start: 90, len: 10 });
    assert_eq!(
        range(b"bytes=-500", 100),
        Range::Part { start: 0, len: 100 }
    );
    assert_eq!(
        range(b"bytes=50-500", 100),
        Range::Part { start: 50, len: 50 }
    );
    assert_eq!(range(b"bytes=100-", 100), Range::Unsatisfiable);
    assert_eq!(range(b"bytes=-0", 100), Range::Unsatisfiable);
    assert_eq!(range(b"bytes=5-1", 100), Range::Full);
    assert_eq!(range(b"bytes=0-1,5-6", 100), Range::Full);
    assert_eq!(range(b"items=0-1", 100), Range::Full);
    assert_eq!(range(b"bytes=a-b", 100), Range::Full);
}

/// Sun, 06 Nov 1994 08:49:37 GMT
const MTIME: u64 = 784_111_777;
const AT: &str = "Sun, 06 Nov 1994 08:49:37 GMT";
const BEFORE: &str = "Sun, 06 Nov 1994 08:49:36 GMT";
const AFTER: &str = "Sun, 06 Nov 1994 08:49:38 GMT";

const OK: Outcome = Outcome::Proceed { range: true };
const FULL: Outcome = Outcome::Proceed { range: false };
const NM: Outcome = Outcome::NotModified;
const PF: Outcome = Outcome::PreconditionFailed;

const STRONG: Validators<'static> = Validators {
    etag: Some("\"v1\""),
    last_modified: Some(MTIME),
};
const WEAK: Validators<'static> = Validators {
    etag: Some("W/\"v1\""),
    last_modified: Some(MTIME),
};
const NO_TAG: Validators<'static> = Validators {
    etag: None,
    last_modified: Some(MTIME),
};
const NO_DATE: Validators<'static> = Validators {
    etag: Some("\"v1\""),
    last_modified: None,
};

fn eval(method: Method, fields: &[(&str, &str)], current: Option<&Validators<'_>>) -> Outcome {
    Preconditions::from_fields(fields.iter().map(|(n, v)| (*n, v.as_bytes())))
        .evaluate(method, current)
}

/// Rows of (method, fields, current representation, expected outcome).
type Row<'a> = (
    Method,
    &'a [(&'a str, &'a str)],
    Option<&'a Validators<'a>>,
    Outcome,
);

fn check(rows: &[Row<'_>]) {
    for (i, (method, fields, current, want)) in rows.iter().enumerate() {
        assert_eq!(
            eval(*method, fields, *current),
            *want,
            "row {i}: {method:?} {fields:?} against {current:?}"
        );
    }
}

use Method::{Delete, Get, Head, Post, Put};

#[test]
fn no_preconditions() {
    check(&[
        (Get, &[], Some(&STRONG), OK),
        (Get, &[], None, OK),
        (Head, &[], Some(&STRONG), FULL),
        (Post, &[], Some(&STRONG), FULL),
        (
            Get,
            &[("Range", "bytes=0-1"), ("X", "y")],
            Some(&STRONG),
            OK,
        ),
    ]);
}

#[test]
fn if_match_is_strong() {
    check(&[
        (Get, &[("If-Match", "\"v1\"")], Some(&STRONG), OK),
        (Get, &[("If-Match", "\"x\"")], Some(&STRONG), PF),
        (Get, &[("If-Match", "\"x\", \"v1\"")], Some(&STRONG), OK),
        (Get, &[("If-Match", "\"x\",\"y\"")], Some(&STRONG), PF),
        // A weak tag never matches, on either side.
        (Get, &[("If-Match", "W/\"v1\"")], Some(&STRONG), PF),
        (Get, &[("If-Match", "W/\"v1\"")], Some(&WEAK), PF),
        (Get, &[("If-Match", "\"v1\"")], Some(&WEAK), PF),
        // `*` needs a current representation.
        (Get, &[("If-Match", "*")], Some(&STRONG), OK),
        (Get, &[("If-Match", " * ")], Some(&WEAK), OK),
        (Put, &[("If-Match", "*")], None, PF),
        (Get, &[("If-Match", "\"v1\"")], None, PF),
        (Get, &[("If-Match", "\"v1\"")], Some(&NO_TAG), PF),
        (Get, &[("If-Match", "*")], Some(&NO_TAG), OK),
        (Get, &[("If-Match", "v1")], Some(&STRONG), PF),
        (Get, &[("If-Match", "")], Some(&STRONG), PF),
        (Put, &[("If-Match", "\"x\"")], Some(&STRONG), PF),
        (Delete, &[("If-Match", "\"v1\"")], Some(&STRONG), FULL),
    ]);
}

#[test]
fn if_unmodified_since() {
    check(&[
        (Get, &[("If-Unmodified-Since", AT)], Some(&STRONG), OK),
        (Get, &[("If-Unmodified-Since", AFTER)], Some(&STRONG), OK),
        (Get, &[("If-Unmodified-Since", BEFORE)], Some(&STRONG), PF),
        (Put, &[("If-Unmodified-Since", BEFORE)], Some(&STRONG), PF),
        (Head, &[("If-Unmodified-Since", BEFORE)], Some(&STRONG), PF),
        // The obsolete date formats count too.
        (
            Get,
            &[("If-Unmodified-Since", "Sunday, 06-Nov-94 08:49:36 GMT")],
            Some(&STRONG),
            PF,
        ),
        (
            Get,
            &[("If-Unmodified-Since", "Sun Nov  6 08:49:36 1994")],
            Some(&STRONG),
            PF,
        ),
        // Invalid dates, lists of dates and unknown modification times are
        // ignored.
        (
            Get,
            &[("If-Unmodified-Since", "yesterday")],
            Some(&STRONG),
            OK,
        ),
        (
            Get,
            &[("If-Unmodified-Since", "Sun, 06 Nov 1994 08:49:36 UTC")],
            Some(&STRONG),
            OK,
        ),
        (
            Get,
            &[("If-Unmodified-Since", &format!("{BEFORE}, {BEFORE}"))],
            Some(&STRONG),
            OK,
        ),
        (
            Get,
            &[
                ("If-Unmodified-Since", BEFORE),
                ("If-Unmodified-Since", BEFORE),
            ],
            Some(&STRONG),
            OK,
        ),
        (Get, &[("If-Unmodified-Since", BEFORE)], Some(&NO_DATE), OK),
        (Put, &[("If-Unmodified-Since", BEFORE)], None, FULL),
        // Only without If-Match.
        (
            Get,
            &[("If-Match", "\"v1\""), ("If-Unmodified-Since", BEFORE)],
            Some(&STRONG),
            OK,
        ),
        (
            Get,
            &[("If-Unmodified-Since", AFTER), ("If-Match", "\"x\"")],
            Some(&STRONG),
            PF,
        ),
    ]);
}

#[test]
fn if_none_match_is_weak() {
    check(&[
        (Get, &[("If-None-Match", "\"v1\"")], Some(&STRONG), NM),
        (Head, &[("If-None-Match", "\"v1\"")], Some(&STRONG), NM),
        (Get, &[("If-None-Match", "W/\"v1\"")], Some(&STRONG), NM),
        (Get, &[("If-None-Match", "\"v1\"")], Some(&WEAK), NM),
        (
            Get,
            &[("If-None-Match", "\"a\", W/\"v1\"")],
            Some(&STRONG),
            NM,
        ),
        (Get, &[("If-None-Match", "\"x\"")], Some(&STRONG), OK),
        (Get, &[("If-None-Match", "\"x\"")], Some(&NO_TAG), OK),
        (Get, &[("If-None-Match", "garbage")], Some(&STRONG), OK),
        // Other methods get 412.
        (Put, &[("If-None-Match", "\"v1\"")], Some(&STRONG), PF),
        (Post, &[("If-None-Match", "W/\"v1\"")], Some(&STRONG), PF),
        (Delete, &[("If-None-Match", "\"x\"")], Some(&STRONG), FULL),
        // `*` is false when a representation exists.
        (Get, &[("If-None-Match", "*")], Some(&STRONG), NM),
        (Put, &[("If-None-Match", "*")], Some(&STRONG), PF),
        (Put, &[("If-None-Match", "*")], None, FULL),
        (Get, &[("If-None-Match", "*")], None, OK),
        // Several field lines form one list.
        (
            Get,
            &[("If-None-Match", "\"a\""), ("if-none-match", "\"v1\"")],
            Some(&STRONG),
            NM,
        ),
    ]);
}

#[test]
fn if_modified_since() {
    check(&[
        (Get, &[("If-Modified-Since", AT)], Some(&STRONG), NM),
        (Get, &[("If-Modified-Since", AFTER)], Some(&STRONG), NM),
        (Head, &[("If-Modified-Since", AT)], Some(&STRONG), NM),
        (Get, &[("If-Modified-Since", BEFORE)], Some(&STRONG), OK),
        (Get, &[("If-Modified-Since", "garbage")], Some(&STRONG), OK),
        (Get, &[("If-Modified-Since", AT)], Some(&NO_DATE), OK),
        (Get, &[("If-Modified-Since", AT)], None, OK),
        // Only for GET and HEAD.
        (Post, &[("If-Modified-Since", AT)], Some(&STRONG), FULL),
        (Put, &[("If-Modified-Since", AFTER)], Some(&STRONG), FULL),
        // Only without If-None-Match.
        (
            Get,
            &[("If-None-Match", "\"x\""), ("If-Modified-Since", AT)],
            Some(&STRONG),
            OK,
        ),
        (
            Get,
            &[("If-Modified-Since", BEFORE), ("If-None-Match", "\"v1\"")],
            Some(&STRONG),
            NM,
        ),
    ]);
}

#[test]
fn precedence() {
    check(&[
        // If-Match passes, then If-None-Match decides.
        (
            Get,
            &[("If-Match", "\"v1\""), ("If-None-Match", "\"v1\"")],
            Some(&STRONG),
            NM,
        ),
        (
            Get,
            &[("If-Match", "\"v1\""), ("If-None-Match", "\"x\"")],
            Some(&STRONG),
            OK,
        ),
        // A failed If-Match is 412 even where If-None-Match would be 304.
        (
            Get,
            &[("If-None-Match", "\"v1\""), ("If-Match", "\"x\"")],
            Some(&STRONG),
            PF,
        ),
        (
            Get,
            &[("If-Match", "W/\"v1\""), ("If-None-Match", "W/\"v1\"")],
            Some(&WEAK),
            PF,
        ),
        // If-Unmodified-Since comes before If-None-Match and If-Modified-Since.
        (
            Get,
            &[("If-Unmodified-Since", BEFORE), ("If-None-Match", "\"v1\"")],
            Some(&STRONG),
            PF,
        ),
        (
            Get,
            &[("If-Unmodified-Since", BEFORE), ("If-Modified-Since", AT)],
            Some(&STRONG),
            PF,
        ),
        (
            Get,
            &[("If-Unmodified-Since", AT), ("If-Modified-Since", AT)],
            Some(&STRONG),
            NM,
        ),
        (
            Get,
            &[("If-Match", "\"v1\""), ("If-Modified-Since", AT)],
            Some(&STRONG),
            NM,
        ),
        // A 304 wins over If-Range; a failed precondition wins over both.
        (
            Get,
            &[("If-None-Match", "\"v1\""), ("If-Range", "\"x\"")],
            Some(&STRONG),
            NM,
        ),
        (
            Get,
            &[("If-Match", "\"x\""), ("If-Range", "\"v1\"")],
            Some(&STRONG),
            PF,
        ),
        (
            Get,
            &[("If-Match", "\"v1\""), ("If-Range", "\"x\"")],
            Some(&STRONG),
            FULL,
        ),
    ]);
}

#[test]
fn if_range() {
    check(&[
        (Get, &[("If-Range", "\"v1\"")], Some(&STRONG), OK),
        (Get, &[("If-Range", "\"x\"")], Some(&STRONG), FULL),
        (Get, &[("If-Range", "W/\"v1\"")], Some(&STRONG), FULL),
        (Get, &[("If-Range", "W/\"v1\"")], Some(&WEAK), FULL),
        (Get, &[("If-Range", "\"v1\"")], Some(&WEAK), FULL),
        (Get, &[("If-Range", "\"v1\"")], Some(&NO_TAG), FULL),
        (Get, &[("If-Range", "\"v1\", \"v1\"")], Some(&STRONG), FULL),
        // A date must be exactly the modification time.
        (Get, &[("If-Range", AT)], Some(&STRONG), OK),
        (
            Get,
            &[("If-Range", "Sunday, 06-Nov-94 08:49:37 GMT")],
            Some(&STRONG),
            OK,
        ),
        (Get, &[("If-Range", BEFORE)], Some(&STRONG), FULL),
        (Get, &[("If-Range", AFTER)], Some(&STRONG), FULL),
        (Get, &[("If-Range", AT)], Some(&NO_DATE), FULL),
        (Get, &[("If-Range", "garbage")], Some(&STRONG), FULL),
        // Range applies to GET only.
        (Head, &[("If-Range", "\"v1\"")], Some(&STRONG), FULL),
    ]);
}

#[test]
fn fields_are_collected() {
    let p = Preconditions::from_fields([
        ("Host", b"a".as_slice()),
        ("IF-MATCH", b"\"a\""),
        ("if-match", b"\"b\""),
        ("If-Modified-Since", AT.as_bytes()),
        ("If-Range", b"\"r\""),
    ]);
    assert_eq!(p.if_match.as_deref(), Some(b"\"a\", \"b\"".as_slice()));
    assert_eq!(p.if_modified_since.as_deref(), Some(AT.as_bytes()));
    assert_eq!(p.if_range.as_deref(), Some(b"\"r\"".as_slice()));
    assert_eq!((&p.if_none_match, &p.if_unmodified_since), (&None, &None));
    // Filled by hand, as a handler without header pairs would.
    let p = Preconditions {
        if_match: Some(Cow::Borrowed(b"\"v1\"")),
        ..Preconditions::default()
    };
    assert_eq!(p.evaluate(Get, Some(&STRONG)), OK);
    assert_eq!(p.evaluate(Get, Some(&WEAK)), PF);
}
