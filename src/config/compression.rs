//! `[site.compression]`: TOML into a [`CompressionSpec`], every error
//! naming its key and line.

use std::collections::BTreeMap;

use serde::Deserialize;
use toml::Spanned;

use super::ConfigError;
use super::file::Ctx;
use crate::compress::Coding;
use crate::site::compression::{CompressionSpec, Levels};

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawCompression {
    enabled: Option<bool>,
    encodings: Option<Vec<Spanned<String>>>,
    min_length: Option<Spanned<i64>>,
    mime_types: Option<Vec<Spanned<String>>>,
    levels: Option<Spanned<BTreeMap<String, Spanned<i64>>>>,
    precompressed: Option<Vec<Spanned<String>>>,
}

/// The codings of a list under `key`: known names, none twice.
fn codings(cx: &Ctx<'_>, raw: &[Spanned<String>], key: &str) -> Result<Vec<Coding>, ConfigError> {
    let mut out = Vec::new();
    for v in raw {
        let c = Coding::parse(v.get_ref()).ok_or_else(|| {
            cx.err(
                v.span(),
                key,
                format!("{:?} is not a coding: write br, zstd or gzip", v.get_ref()),
            )
        })?;
        if out.contains(&c) {
            return Err(cx.err(v.span(), key, format!("{:?} is listed twice", c.name())));
        }
        out.push(c);
    }
    Ok(out)
}

/// A media type entry: `type/subtype` or `type/*`, lowercase.
fn media_type(s: &str) -> Result<String, String> {
    let t = s.trim().to_ascii_lowercase();
    let ok = |p: &str| crate::http::client::is_token(p);
    match t.split_once('/') {
        Some((a, b)) if ok(a) && (b == "*" || ok(b)) => Ok(t),
        _ => Err(format!(
            "{s:?} is not a media type: write type/subtype, or type/* for a whole type"
        )),
    }
}

/// The compression a `compression` table describes (`None`: `enabled =
/// false`); `key` is its dotted key, e.g. `site[0].compression`.
pub(super) fn compression(
    cx: &Ctx<'_>,
    raw: &Spanned<RawCompression>,
    key: &str,
) -> Result<Option<CompressionSpec>, ConfigError> {
    let r = raw.get_ref();
    if r.enabled == Some(false) {
        return Ok(None);
    }
    let k = |name: &str| format!("{key}.{name}");
    let d = CompressionSpec::default();
    let encodings = match &r.encodings {
        Some(v) => codings(cx, v, &k("encodings"))?,
        None => d.encodings,
    };
    let precompressed = match &r.precompressed {
        Some(v) => codings(cx, v, &k("precompressed"))?,
        None => d.precompressed,
    };
    let min_length = cx
        .int(&r.min_length, &k("min_length"), 0, i64::from(u32::MAX))?
        .map_or(d.min_length, |n| n as u64);
    let mime_types = match &r.mime_types {
        Some(v) => {
            let mut out: Vec<String> = Vec::new();
            for m in v {
                let t =
                    media_type(m.get_ref()).map_err(|e| cx.err(m.span(), &k("mime_types"), e))?;
                if out.contains(&t) {
                    return Err(cx.err(
                        m.span(),
                        &k("mime_types"),
                        format!("{t:?} is listed twice"),
                    ));
                }
                out.push(t);
            }
            out
        }
        None => d.mime_types,
    };
    let mut levels = Levels::default();
    if let Some(l) = &r.levels {
        for (name, v) in l.get_ref() {
            let lk = format!("{}.{name}", k("levels"));
            let c = Coding::parse(name).ok_or_else(|| {
                cx.err(
                    l.span(),
                    &lk,
                    format!("{name:?} is not a coding: write br, zstd or gzip"),
                )
            })?;
            // Answers are compressed on the workers: levels whose encoders
            // spend more than a few milliseconds at a time on one body are
            // refused (files get copies at the best level, made off them).
            // (least, most allowed, most the encoder has, why)
            let (min, max, top, slow) = match c {
                Coding::Br => (
                    0,
                    6,
                    11,
                    "br 7 spends 6 ms and br 11 up to 0.35 s at a time",
                ),
                Coding::Zstd => (1, 9, 19, "zstd 12 spends 20 ms and zstd 19 50 ms at a time"),
                Coding::Gzip => (1, 9, 9, ""),
            };
            if (max + 1..=top).contains(v.get_ref()) {
                return Err(cx.err(
                    v.span(),
                    &lk,
                    format!(
                        "at most {max} for answers compressed as they are sent ({slow} on one body, stalling the worker); files are compressed at the best level in the background whatever this says"
                    ),
                ));
            }
            let n = cx.int(&Some(v.clone()), &lk, min, max)?.unwrap_or(min) as u32;
            match c {
                Coding::Br => levels.br = n,
                Coding::Zstd => levels.zstd = n,
                Coding::Gzip => levels.gzip = n,
            }
        }
    }
    if encodings.is_empty() && precompressed.is_empty() {
        return Err(cx.err(
            raw.span(),
            &k("encodings"),
            "is empty and so is precompressed: nothing would be compressed (write enabled = false to turn compression off)",
        ));
    }
    Ok(Some(CompressionSpec {
        encodings,
        min_length,
        mime_types,
        levels,
        precompressed,
    }))
}

#[cfg(test)]
mod tests {
    fn site(body: &str) -> Result<crate::config::Config, String> {
        crate::config::parse(
            &format!("[[site]]\nname = \"s\"\ndefault = true\n[site.compression]\n{body}"),
            Some(std::path::Path::new("p.toml")),
        )
        .map_err(|e| e.to_string())
    }

    #[test]
    fn defaults_and_keys() {
        let c = site("").unwrap();
        let s = c.sites[0].compression.as_ref().unwrap();
        assert_eq!(s, &crate::site::compression::CompressionSpec::default());
        let c = site(
            "encodings = [\"gzip\", \"br\"]\nmin_length = 10\nmime_types = [\"text/*\", \"Application/JSON\"]\nlevels = { gzip = 9, br = 6 }\nprecompressed = [\"zstd\"]\n",
        )
        .unwrap();
        let s = c.sites[0].compression.as_ref().unwrap();
        assert_eq!(s.encodings, vec![super::Coding::Gzip, super::Coding::Br]);
        assert_eq!(s.min_length, 10);
        assert_eq!(s.mime_types, vec!["text/*", "application/json"]);
        assert_eq!((s.levels.gzip, s.levels.br, s.levels.zstd), (9, 6, 3));
        assert_eq!(s.precompressed, vec![super::Coding::Zstd]);
        assert!(
            site("enabled = false\n").unwrap().sites[0]
                .compression
                .is_none()
        );
    }

    #[test]
    fn the_flat_configuration_has_its_own_table() {
        let p = Some(std::path::Path::new("p.toml"));
        let c =
            crate::config::parse("root = \"/srv\"\n[compression]\nmin_length = 5\n", p).unwrap();
        assert_eq!(c.compression.as_ref().unwrap().min_length, 5);
        let plan = crate::site::Plan::new(&c).unwrap();
        assert_eq!(plan.sites[0].compression, c.compression);
        let e = crate::config::parse("[compression]\n[[site]]\nname = \"s\"\ndefault = true\n", p)
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("p.toml:1: compression") && e.contains("[site.compression]"),
            "{e}"
        );
    }

    #[test]
    fn errors_name_the_key_and_line() {
        let e = site("encodings = [\"lzma\"]\n").unwrap_err();
        assert!(
            e.contains(":5:")
                && e.contains("site[0].compression.encodings")
                && e.contains("\"lzma\""),
            "{e}"
        );
        let e = site("encodings = [\"br\", \"BR\"]\n").unwrap_err();
        assert!(e.contains("listed twice"), "{e}");
        let e = site("levels = { gzip = 10 }\n").unwrap_err();
        assert!(
            e.contains("site[0].compression.levels.gzip") && e.contains("between 1 and 9"),
            "{e}"
        );
        let e = site("levels = { br = 11 }\n").unwrap_err();
        assert!(
            e.contains("levels.br") && e.contains("at most 6") && e.contains("0.35 s"),
            "{e}"
        );
        let e = site("levels = { zstd = 12 }\n").unwrap_err();
        assert!(e.contains("levels.zstd") && e.contains("at most 9"), "{e}");
        let e = site("levels = { zstd = 20 }\n").unwrap_err();
        assert!(e.contains("between 1 and 9"), "{e}");
        let e = site("levels = { lz4 = 1 }\n").unwrap_err();
        assert!(e.contains("levels.lz4"), "{e}");
        let e = site("mime_types = [\"text\"]\n").unwrap_err();
        assert!(
            e.contains("mime_types") && e.contains("not a media type"),
            "{e}"
        );
        let e = site("encodings = []\n").unwrap_err();
        assert!(e.contains("nothing would be compressed"), "{e}");
        let e = site("gzip = true\n").unwrap_err();
        assert!(e.contains("unknown field"), "{e}");
    }
}
