//! `request_filtering` tables (a site's or a route's): TOML into a
//! [`FilterSpec`], every error naming its key and line.

use std::collections::BTreeMap;

use serde::Deserialize;
use toml::Spanned;

use super::ConfigError;
use super::file::Ctx;
use crate::filter::{Filter, FilterSpec, ListSpec, RequestLimits, RuleSpec};
use crate::http::client::is_token;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawFiltering {
    file_extensions: Option<Spanned<RawList>>,
    verbs: Option<Spanned<RawList>>,
    hidden_segments: Option<Vec<Spanned<String>>>,
    deny_url_sequences: Option<Vec<Spanned<String>>>,
    deny_query_string_sequences: Option<Vec<Spanned<String>>>,
    always_allowed_urls: Option<Vec<Spanned<String>>>,
    allow_double_escaping: Option<bool>,
    allow_high_bit_characters: Option<bool>,
    modern_status: Option<bool>,
    request_limits: Option<RawLimits>,
    rule: Option<Vec<Spanned<RawRule>>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawList {
    allow_unlisted: Option<bool>,
    allow: Option<Vec<Spanned<String>>>,
    deny: Option<Vec<Spanned<String>>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawLimits {
    max_allowed_content_length: Option<Spanned<i64>>,
    max_url: Option<Spanned<i64>>,
    max_query_string: Option<Spanned<i64>>,
    max_url_segments: Option<Spanned<i64>>,
    header_limits: Option<Spanned<BTreeMap<String, Spanned<i64>>>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawRule {
    name: Option<Spanned<String>>,
    scan_url: Option<bool>,
    scan_query_string: Option<bool>,
    scan_headers: Option<Vec<Spanned<String>>>,
    applies_to: Option<Vec<Spanned<String>>>,
    deny_strings: Option<Vec<Spanned<String>>>,
}

/// Checks one entry of a list and gives it in the form the filter keeps.
type Entry = fn(&str) -> Result<String, String>;

/// The filter a `request_filtering` table describes; `key` is its dotted
/// key, e.g. `site[0].request_filtering`. Keys left out take IIS's
/// defaults (those of [`FilterSpec::default`]).
pub(super) fn filtering(
    cx: &Ctx<'_>,
    raw: &Spanned<RawFiltering>,
    key: &str,
) -> Result<FilterSpec, ConfigError> {
    let r = raw.get_ref();
    let k = |name: &str| format!("{key}.{name}");
    let d = FilterSpec::default();
    let spec = FilterSpec {
        file_extensions: list(cx, &r.file_extensions, &k("file_extensions"), extension)?,
        verbs: list(cx, &r.verbs, &k("verbs"), verb)?,
        hidden_segments: entries(cx, &r.hidden_segments, &k("hidden_segments"), segment)?,
        deny_url_sequences: entries(cx, &r.deny_url_sequences, &k("deny_url_sequences"), text)?,
        deny_query_string_sequences: entries(
            cx,
            &r.deny_query_string_sequences,
            &k("deny_query_string_sequences"),
            text,
        )?,
        always_allowed_urls: entries(
            cx,
            &r.always_allowed_urls,
            &k("always_allowed_urls"),
            url_prefix,
        )?,
        allow_double_escaping: r.allow_double_escaping.unwrap_or(d.allow_double_escaping),
        allow_high_bit_characters: r
            .allow_high_bit_characters
            .unwrap_or(d.allow_high_bit_characters),
        modern_status: r.modern_status.unwrap_or(d.modern_status),
        limits: match &r.request_limits {
            Some(l) => limits(cx, l, &k("request_limits"))?,
            None => RequestLimits::default(),
        },
        rules: rules(cx, r.rule.as_deref().unwrap_or(&[]), key)?,
    };
    Filter::new(&spec).map_err(|m| cx.err(raw.span(), key, m))?;
    Ok(spec)
}

/// The entries of a list under `key`, each checked by `check`, none twice.
fn entries(
    cx: &Ctx<'_>,
    raw: &Option<Vec<Spanned<String>>>,
    key: &str,
    check: Entry,
) -> Result<Vec<String>, ConfigError> {
    let mut out: Vec<String> = Vec::new();
    for v in raw.as_deref().unwrap_or(&[]) {
        let e = check(v.get_ref()).map_err(|m| cx.err(v.span(), key, m))?;
        if out.iter().any(|o| o.eq_ignore_ascii_case(&e)) {
            return Err(cx.err(v.span(), key, format!("{e:?} is listed twice")));
        }
        out.push(e);
    }
    Ok(out)
}

/// An allow and a deny list (`file_extensions`, `verbs`).
fn list(
    cx: &Ctx<'_>,
    raw: &Option<Spanned<RawList>>,
    key: &str,
    check: Entry,
) -> Result<ListSpec, ConfigError> {
    let Some(raw) = raw else {
        return Ok(ListSpec::default());
    };
    let r = raw.get_ref();
    let spec = ListSpec {
        allow_unlisted: r.allow_unlisted.unwrap_or(true),
        allow: entries(cx, &r.allow, &format!("{key}.allow"), check)?,
        deny: entries(cx, &r.deny, &format!("{key}.deny"), check)?,
    };
    for (v, e) in r.deny.iter().flatten().zip(&spec.deny) {
        if spec.allow.contains(e) {
            return Err(cx.err(
                v.span(),
                &format!("{key}.deny"),
                format!("{e:?} is in allow too; list it in one of them"),
            ));
        }
    }
    Ok(spec)
}

/// A file extension: a dot and what follows it, in lowercase; `"."` alone
/// is a last segment without an extension.
fn extension(s: &str) -> Result<String, String> {
    let Some(rest) = s.strip_prefix('.') else {
        return Err(format!(
            "{s:?} must start with a dot, like \".php\" (\".\" alone: no extension)"
        ));
    };
    if rest.contains('.') {
        return Err(format!(
            "{s:?} has a second dot: an extension is what follows the last dot of a name (\".tar.gz\" is \".gz\")"
        ));
    }
    if rest.contains('/') || rest.bytes().any(|b| b.is_ascii_control()) {
        return Err(format!(
            "{s:?} is not a file extension (no '/' or control characters)"
        ));
    }
    Ok(s.to_ascii_lowercase())
}

/// A method token, in uppercase (any token: the parser need not know it).
fn verb(s: &str) -> Result<String, String> {
    if !is_token(s) {
        return Err(format!(
            "{s:?} is not a method (an HTTP token, like \"TRACE\")"
        ));
    }
    Ok(s.to_ascii_uppercase())
}

/// A whole path segment.
fn segment(s: &str) -> Result<String, String> {
    if s.is_empty() || s.contains('/') {
        return Err(format!(
            "{s:?} is not a path segment (not empty, no '/'): list \".git\", not \"/.git/\""
        ));
    }
    Ok(s.to_string())
}

/// A string to find: anything but empty.
fn text(s: &str) -> Result<String, String> {
    if s.is_empty() {
        return Err("an empty string would match every request".into());
    }
    Ok(s.to_string())
}

/// A path prefix.
fn url_prefix(s: &str) -> Result<String, String> {
    if !s.starts_with('/') {
        return Err(format!(
            "{s:?} must be a path, starting with '/' (like \"/.well-known/acme-challenge/\")"
        ));
    }
    Ok(s.to_string())
}

/// A header field name, in lowercase.
fn field_name(s: &str) -> Result<String, String> {
    if !is_token(s) {
        return Err(format!("{s:?} is not a header name"));
    }
    Ok(s.to_ascii_lowercase())
}

/// The `request_limits` table.
fn limits(cx: &Ctx<'_>, r: &RawLimits, key: &str) -> Result<RequestLimits, ConfigError> {
    let k = |name: &str| format!("{key}.{name}");
    let d = RequestLimits::default();
    let max32 = i64::from(u32::MAX);
    let int32 = |v: &Option<Spanned<i64>>, name: &str, min: i64, default: Option<u32>| {
        if let Some(v) = v
            && min > 0
            && *v.get_ref() == 0
        {
            return Err(cx.err(
                v.span(),
                &k(name),
                "must be at least 1 (leave it out for IIS's default)",
            ));
        }
        Ok(cx
            .int(v, &k(name), min, max32)?
            .map(|n| n as u32)
            .or(default))
    };
    let mut header_limits = Vec::new();
    if let Some(h) = &r.header_limits {
        for (name, v) in h.get_ref() {
            let key = k(&format!("header_limits.{name}"));
            let n = field_name(name).map_err(|m| cx.err(v.span(), &key, m))?;
            let max = cx.int(&Some(v.clone()), &key, 0, max32)?.unwrap_or(0);
            if header_limits.iter().any(|(o, _)| *o == n) {
                return Err(cx.err(v.span(), &key, format!("{n:?} is listed twice")));
            }
            header_limits.push((n, max as u32));
        }
    }
    Ok(RequestLimits {
        max_allowed_content_length: cx
            .int(
                &r.max_allowed_content_length,
                &k("max_allowed_content_length"),
                0,
                i64::MAX,
            )?
            .map(|n| n as u64)
            .or(d.max_allowed_content_length),
        max_url: int32(&r.max_url, "max_url", 1, d.max_url)?,
        max_query_string: int32(
            &r.max_query_string,
            "max_query_string",
            0,
            d.max_query_string,
        )?,
        max_url_segments: int32(&r.max_url_segments, "max_url_segments", 1, None)?,
        header_limits,
    })
}

/// The `[[…request_filtering.rule]]` tables, names distinct.
fn rules(cx: &Ctx<'_>, raw: &[Spanned<RawRule>], key: &str) -> Result<Vec<RuleSpec>, ConfigError> {
    let mut out: Vec<RuleSpec> = Vec::new();
    for (i, r) in raw.iter().enumerate() {
        let k = |name: &str| format!("{key}.rule[{i}].{name}");
        let rule = rule(cx, r, &k)?;
        if let Some(other) = out
            .iter()
            .position(|o| o.name.eq_ignore_ascii_case(&rule.name))
        {
            let span = r.get_ref().name.as_ref().map_or(r.span(), |n| n.span());
            return Err(cx.err(
                span,
                &k("name"),
                format!(
                    "{:?} is the name of {key}.rule[{other}] too; rule names must differ",
                    rule.name
                ),
            ));
        }
        out.push(rule);
    }
    Ok(out)
}

fn rule(
    cx: &Ctx<'_>,
    raw: &Spanned<RawRule>,
    k: &dyn Fn(&str) -> String,
) -> Result<RuleSpec, ConfigError> {
    let r = raw.get_ref();
    let name = match &r.name {
        Some(n) if n.get_ref().trim().is_empty() => {
            return Err(cx.err(n.span(), &k("name"), "must not be empty"));
        }
        Some(n) => n.get_ref().clone(),
        None => return Err(cx.err(raw.span(), &k("name"), "a rule needs a name")),
    };
    if r.deny_strings.as_ref().is_none_or(Vec::is_empty) {
        return Err(cx.err(
            raw.span(),
            &k("deny_strings"),
            "a rule needs strings to deny",
        ));
    }
    let deny_strings = entries(cx, &r.deny_strings, &k("deny_strings"), text)?;
    let spec = RuleSpec {
        name,
        scan_url: r.scan_url.unwrap_or(false),
        scan_query_string: r.scan_query_string.unwrap_or(false),
        scan_headers: entries(cx, &r.scan_headers, &k("scan_headers"), field_name)?,
        applies_to: entries(cx, &r.applies_to, &k("applies_to"), extension)?,
        deny_strings,
    };
    if !spec.scan_url && !spec.scan_query_string && spec.scan_headers.is_empty() {
        return Err(cx.err(
            raw.span(),
            &k("scan_url"),
            "the rule scans nothing: set scan_url, scan_query_string or scan_headers",
        ));
    }
    Ok(spec)
}

#[cfg(test)]
#[path = "filtering_tests.rs"]
mod tests;
