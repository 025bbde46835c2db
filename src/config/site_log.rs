//! A site's `access_log`: `"off"`, or a table `{ path = "…", format = "…" }`
//! like the global `[access_log]`; without one the site logs to the global log.

use std::path::Path;

use toml::Spanned;

use super::ConfigError;
use super::file::{Ctx, relative};
use crate::accesslog::{Config, Format};
use crate::site::SiteLog;

/// The format named `name`.
pub(super) fn format(name: &str) -> Result<Format, String> {
    match name {
        "combined" => Ok(Format::Combined),
        "json" => Ok(Format::Json),
        other => Err(format!("must be \"combined\" or \"json\" (got {other:?})")),
    }
}

/// Reads `raw`, the value of `key` (`site[i].access_log`); relative paths are
/// taken from the configuration file's directory.
pub(super) fn site_log(
    cx: &Ctx<'_>,
    raw: &Spanned<toml::Value>,
    key: &str,
    file: Option<&Path>,
) -> Result<SiteLog, ConfigError> {
    let err = |k: &str, m: String| {
        let key = if k.is_empty() {
            key.to_string()
        } else {
            format!("{key}.{k}")
        };
        cx.err(raw.span(), &key, m)
    };
    let table = match raw.get_ref() {
        toml::Value::String(s) if s == "off" => return Ok(SiteLog::Off),
        toml::Value::Table(t) => t,
        other => {
            return Err(err(
                "",
                format!(
                    "must be \"off\" or a table like {{ path = \"site.log\", format = \"json\" }} (got {other})"
                ),
            ));
        }
    };
    if let Some(k) = table.keys().find(|k| *k != "path" && *k != "format") {
        return Err(err(
            k,
            "unknown key (a site's access_log has path and format)".into(),
        ));
    }
    let path = match table.get("path") {
        None => {
            return Err(err(
                "path",
                "is required (use \"-\" for standard output)".into(),
            ));
        }
        Some(toml::Value::String(p)) if p.is_empty() => {
            return Err(err(
                "path",
                "must not be empty (use \"-\" for standard output)".into(),
            ));
        }
        Some(toml::Value::String(p)) if p == "-" => None,
        Some(toml::Value::String(p)) => Some(relative(p, file)),
        Some(other) => return Err(err("path", format!("must be a string (got {other})"))),
    };
    let format = match table.get("format") {
        None => Format::Combined,
        Some(toml::Value::String(f)) => format(f).map_err(|m| err("format", m))?,
        Some(other) => return Err(err("format", format!("must be a string (got {other})"))),
    };
    Ok(SiteLog::Own(Config { path, format }))
}

#[cfg(test)]
mod tests {
    use std::path::{Path, PathBuf};

    use crate::accesslog::{Config, Format};
    use crate::config::parse;
    use crate::site::SiteLog;

    const SITE: &str = "[[site]]\nname = \"shop\"\nhosts = [\"shop.test\"]\n";

    fn log_of(line: &str) -> Result<SiteLog, String> {
        let text = format!("{SITE}{line}\n");
        parse(&text, Some(Path::new("/etc/p/p.toml")))
            .map(|c| c.sites[0].access_log.clone())
            .map_err(|e| e.to_string())
    }

    #[test]
    fn a_site_log_is_a_file_stdout_off_or_the_global_log() {
        assert_eq!(log_of("").unwrap(), SiteLog::Global);
        assert_eq!(log_of("access_log = \"off\"").unwrap(), SiteLog::Off);
        assert_eq!(
            log_of("access_log = { path = \"logs/shop.log\", format = \"json\" }").unwrap(),
            SiteLog::Own(Config {
                path: Some(PathBuf::from("/etc/p/logs/shop.log")),
                format: Format::Json,
            })
        );
        assert_eq!(
            log_of("access_log = { path = \"/var/log/shop.log\" }").unwrap(),
            SiteLog::Own(Config {
                path: Some(PathBuf::from("/var/log/shop.log")),
                format: Format::Combined,
            })
        );
        assert_eq!(
            log_of("access_log = { path = \"-\" }").unwrap(),
            SiteLog::Own(Config {
                path: None,
                format: Format::Combined,
            })
        );
    }

    #[test]
    fn bad_site_logs_name_the_key_and_line() {
        let cases = [
            (
                "access_log = \"on\"",
                "p.toml:4: site[0].access_log: must be \"off\" or a table",
            ),
            ("access_log = true", "p.toml:4: site[0].access_log: must be"),
            (
                "access_log = { format = \"json\" }",
                "p.toml:4: site[0].access_log.path: is required",
            ),
            (
                "access_log = { path = \"\" }",
                "p.toml:4: site[0].access_log.path: must not be empty",
            ),
            (
                "access_log = { path = 7 }",
                "p.toml:4: site[0].access_log.path: must be a string",
            ),
            (
                "access_log = { path = \"a.log\", format = \"xml\" }",
                "p.toml:4: site[0].access_log.format: must be \"combined\" or \"json\" (got \"xml\")",
            ),
            (
                "access_log = { path = \"a.log\", level = 1 }",
                "p.toml:4: site[0].access_log.level: unknown key",
            ),
        ];
        for (line, want) in cases {
            let e = log_of(line).unwrap_err();
            assert!(e.contains(want), "{line}: {e}");
        }
    }

    #[test]
    fn a_file_in_two_formats_is_refused_when_parsing() {
        let text = format!(
            "[access_log]\npath = \"all.log\"\n{SITE}access_log = {{ path = \"all.log\", format = \"json\" }}\n"
        );
        let e = parse(&text, Some(Path::new("/etc/p/p.toml")))
            .unwrap_err()
            .to_string();
        assert!(
            e.starts_with("/etc/p/p.toml:6: site[0].access_log.format: /etc/p/all.log is the global [access_log] too"),
            "{e}"
        );
    }
}
