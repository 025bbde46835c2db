//! The TOML configuration file.

use std::net::SocketAddr;
use std::ops::Range;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Deserialize;
use toml::Spanned;

use super::{Config, ConfigError, parse_listen};

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Raw {
    listen: Option<Spanned<OneOrMany>>,
    workers: Option<Spanned<Workers>>,
    root: Option<Spanned<String>>,
    builtins: Option<bool>,
    compression: Option<Spanned<super::compression::RawCompression>>,
    cache: Option<super::cache::RawStore>,
    limits: Option<RawLimits>,
    timeouts: Option<RawTimeouts>,
    engine: Option<RawEngine>,
    admin: Option<RawAdmin>,
    metrics: Option<RawMetrics>,
    access_log: Option<RawAccessLog>,
    tls: Option<Spanned<super::tls::RawTls>>,
    http2: Option<super::http2::RawHttp2>,
    site: Option<Vec<Spanned<super::site::RawSite>>>,
    server: Option<super::security::RawServer>,
    limit: Option<super::security::RawLimit>,
    upstream: Option<Vec<Spanned<super::upstream::RawUpstream>>>,
    fastcgi: Option<Vec<Spanned<super::upstream::RawUpstream>>>,
    pool: Option<Vec<Spanned<super::upstream::RawUpstream>>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawAdmin {
    listen: Option<Spanned<String>>,
    token: Option<Spanned<String>>,
    hosts: Option<Vec<Spanned<String>>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawMetrics {
    enabled: Option<bool>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawAccessLog {
    enabled: Option<bool>,
    path: Option<Spanned<String>>,
    format: Option<Spanned<String>>,
}

#[derive(Deserialize)]
#[serde(untagged)]
pub(super) enum OneOrMany {
    One(String),
    Many(Vec<String>),
}

#[derive(Deserialize)]
#[serde(untagged)]
enum Workers {
    Count(i64),
    Word(String),
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawLimits {
    max_request_line_size: Option<Spanned<i64>>,
    max_request_headers_total_size: Option<Spanned<i64>>,
    max_request_header_count: Option<Spanned<i64>>,
    max_request_body_size: Option<Spanned<i64>>,
    max_connections: Option<Spanned<i64>>,
    min_request_body_data_rate: Option<Spanned<super::rate::RawRate>>,
    min_response_data_rate: Option<Spanned<super::rate::RawRate>>,
}

#[derive(Clone, Deserialize)]
#[serde(untagged)]
pub(super) enum Secs {
    Int(i64),
    Float(f64),
    Text(String),
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawTimeouts {
    keep_alive_timeout: Option<Spanned<Secs>>,
    request_headers_timeout: Option<Spanned<Secs>>,
    request_body_timeout: Option<Spanned<Secs>>,
    send_timeout: Option<Spanned<Secs>>,
    lingering_timeout: Option<Spanned<Secs>>,
    shutdown_timeout: Option<Spanned<Secs>>,
    shutdown_delay: Option<Spanned<Secs>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawEngine {
    ring_entries: Option<Spanned<i64>>,
    buffer_count: Option<Spanned<i64>>,
    buffer_size: Option<Spanned<i64>>,
    multishot: Option<bool>,
    defer_taskrun: Option<bool>,
    file_chunk_size: Option<Spanned<i64>>,
    splice_min_size: Option<Spanned<i64>>,
    listen_backlog: Option<Spanned<i64>>,
}

/// Where errors point.
pub(super) struct Ctx<'a> {
    text: &'a str,
    file: Option<&'a Path>,
    /// The `[[limit.zone]]` tables, which sites' and routes' limits name.
    pub(super) zones: &'a [crate::guard::spec::ZoneSpec],
}

/// `p`, resolved against the configuration file's directory when relative.
pub(super) fn relative(p: &str, file: Option<&Path>) -> PathBuf {
    let path = PathBuf::from(p);
    match file.and_then(Path::parent) {
        Some(dir) if path.is_relative() => dir.join(path),
        _ => path,
    }
}

impl Ctx<'_> {
    /// A non-empty list of distinct listen addresses under `key`.
    pub(super) fn listen_list(
        &self,
        l: &Spanned<OneOrMany>,
        key: &str,
    ) -> Result<Vec<SocketAddr>, ConfigError> {
        let list = match l.get_ref() {
            OneOrMany::One(s) => std::slice::from_ref(s),
            OneOrMany::Many(v) => v.as_slice(),
        };
        if list.is_empty() {
            return Err(self.err(l.span(), key, "needs at least one address"));
        }
        let mut addrs: Vec<SocketAddr> = Vec::new();
        for s in list {
            let a = parse_listen(s).map_err(|m| self.err(l.span(), key, m))?;
            if addrs.contains(&a) {
                return Err(self.err(l.span(), key, format!("{a} is listed twice")));
            }
            addrs.push(a);
        }
        Ok(addrs)
    }

    pub(super) fn err(
        &self,
        span: Range<usize>,
        key: &str,
        message: impl Into<String>,
    ) -> ConfigError {
        ConfigError {
            file: self.file.map(Path::to_path_buf),
            line: Some(self.line(span.start)),
            key: Some(key.to_string()),
            message: message.into(),
        }
    }

    pub(super) fn line(&self, offset: usize) -> usize {
        self.text[..offset.min(self.text.len())]
            .bytes()
            .filter(|b| *b == b'\n')
            .count()
            + 1
    }

    pub(super) fn int(
        &self,
        v: &Option<Spanned<i64>>,
        key: &str,
        min: i64,
        max: i64,
    ) -> Result<Option<i64>, ConfigError> {
        let Some(v) = v else { return Ok(None) };
        let n = *v.get_ref();
        if n < min || n > max {
            return Err(self.err(
                v.span(),
                key,
                format!("must be between {min} and {max} (got {n})"),
            ));
        }
        Ok(Some(n))
    }

    pub(super) fn secs(
        &self,
        v: &Option<Spanned<Secs>>,
        key: &str,
        min: Duration,
    ) -> Result<Option<Duration>, ConfigError> {
        let Some(v) = v else { return Ok(None) };
        let d = secs_of(v.get_ref());
        let d = d.ok_or_else(|| {
            self.err(v.span(), key, "must be a duration: seconds as a number, or a string like \"30s\", \"500ms\", \"2m\"")
        })?;
        if d < min || d > Duration::from_secs(86_400 * 7) {
            return Err(self.err(
                v.span(),
                key,
                format!("must be between {:?} and 7 days (got {d:?})", min),
            ));
        }
        Ok(Some(d))
    }
}

/// A duration as written: seconds as a number, or a string with a unit.
pub(super) fn secs_of(v: &Secs) -> Option<Duration> {
    match v {
        Secs::Int(n) if *n >= 0 => Some(Duration::from_secs(*n as u64)),
        Secs::Float(f) if f.is_finite() && *f >= 0.0 && *f < 1e9 => {
            Some(Duration::from_secs_f64(*f))
        }
        Secs::Text(s) => parse_duration(s),
        _ => None,
    }
}

/// Parses `"30s"`, `"500ms"`, `"2m"`, `"1h"` or a bare number of seconds.
fn parse_duration(s: &str) -> Option<Duration> {
    let s = s.trim();
    let split = s
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(s.len());
    let (num, unit) = s.split_at(split);
    let n: f64 = num.parse().ok()?;
    let scale = match unit.trim() {
        "" | "s" => 1.0,
        "ms" => 0.001,
        "m" => 60.0,
        "h" => 3600.0,
        _ => return None,
    };
    let secs = n * scale;
    (0.0..1e9)
        .contains(&secs)
        .then(|| Duration::from_secs_f64(secs))
}

/// Parses and validates a TOML configuration. `file` is used in messages and to
/// resolve a relative `root` against the file's directory.
pub fn parse(text: &str, file: Option<&Path>) -> Result<Config, ConfigError> {
    let cx = Ctx {
        text,
        file,
        zones: &[],
    };
    super::site::stray_route(&cx, text)?;
    let raw: Raw = toml::from_str(text).map_err(|e| {
        let (line, key) = match e.span() {
            Some(span) => (Some(cx.line(span.start)), key_at(text, span.start)),
            None => (None, None),
        };
        ConfigError {
            file: file.map(Path::to_path_buf),
            line,
            key,
            message: e.message().trim().to_string(),
        }
    })?;
    let mut c = Config {
        source: file.map(Path::to_path_buf),
        ..Config::default()
    };

    if let Some(l) = &raw.listen {
        c.listen = cx.listen_list(l, "listen")?;
    }
    if let Some(w) = &raw.workers {
        c.workers = match w.get_ref() {
            Workers::Count(n) if (1..=1024).contains(n) => *n as usize,
            Workers::Word(s) if s == "auto" => super::available_cpus(),
            _ => {
                return Err(cx.err(
                    w.span(),
                    "workers",
                    "must be a number from 1 to 1024, or \"auto\"",
                ));
            }
        };
    }
    if let Some(r) = &raw.root {
        if r.get_ref().is_empty() {
            return Err(cx.err(r.span(), "root", "must not be empty"));
        }
        c.root = Some(relative(r.get_ref(), file));
    }
    if let Some(b) = raw.builtins {
        c.builtins = b;
    }
    if let Some(z) = &raw.compression {
        c.compression = super::compression::compression(&cx, z, "compression")?;
    }
    if let Some(z) = &raw.cache {
        c.cache = super::cache::store(&cx, z)?;
    }
    if let Some(l) = &raw.limits {
        let k = |s: &str| format!("limits.{s}");
        if let Some(n) = cx.int(
            &l.max_request_line_size,
            &k("max_request_line_size"),
            64,
            1 << 20,
        )? {
            c.limits.max_request_line_size = n as usize;
        }
        if let Some(n) = cx.int(
            &l.max_request_headers_total_size,
            &k("max_request_headers_total_size"),
            256,
            16 << 20,
        )? {
            c.limits.max_request_headers_total_size = n as usize;
        }
        let max_count = crate::http::limits::HARD_MAX_HEADER_COUNT as i64;
        if let Some(n) = cx.int(
            &l.max_request_header_count,
            &k("max_request_header_count"),
            1,
            max_count,
        )? {
            c.limits.max_request_header_count = n as usize;
        }
        if let Some(n) = cx.int(
            &l.max_request_body_size,
            &k("max_request_body_size"),
            0,
            1 << 40,
        )? {
            c.limits.max_request_body_size = n as u64;
        }
        if let Some(n) = cx.int(&l.max_connections, &k("max_connections"), 0, 1 << 24)? {
            c.engine.max_connections = n as usize;
        }
        if let Some(r) = &l.min_request_body_data_rate {
            c.limits.min_request_body_data_rate =
                super::rate::rate(&cx, r, &k("min_request_body_data_rate"))?;
        }
        if let Some(r) = &l.min_response_data_rate {
            c.limits.min_response_data_rate =
                super::rate::rate(&cx, r, &k("min_response_data_rate"))?;
        }
    }
    super::http2::apply(
        &cx,
        raw.http2.as_ref(),
        c.limits.max_request_headers_total_size,
        &mut c.limits.http2,
    )?;
    if let Some(t) = &raw.timeouts {
        let k = |s: &str| format!("timeouts.{s}");
        let ms = Duration::from_millis(1);
        let zero = Duration::ZERO;
        if let Some(d) = cx.secs(&t.keep_alive_timeout, &k("keep_alive_timeout"), ms)? {
            c.timeouts.keep_alive_timeout = d;
        }
        if let Some(d) = cx.secs(
            &t.request_headers_timeout,
            &k("request_headers_timeout"),
            ms,
        )? {
            c.timeouts.request_headers_timeout = d;
        }
        if let Some(d) = cx.secs(&t.request_body_timeout, &k("request_body_timeout"), ms)? {
            c.timeouts.request_body_timeout = d;
        }
        if let Some(d) = cx.secs(&t.send_timeout, &k("send_timeout"), ms)? {
            c.timeouts.send_timeout = d;
        }
        if let Some(d) = cx.secs(&t.lingering_timeout, &k("lingering_timeout"), zero)? {
            c.timeouts.lingering_timeout = d;
        }
        if let Some(d) = cx.secs(&t.shutdown_timeout, &k("shutdown_timeout"), zero)? {
            c.timeouts.shutdown_timeout = d;
        }
        if let Some(d) = cx.secs(&t.shutdown_delay, &k("shutdown_delay"), zero)? {
            c.timeouts.shutdown_delay = d;
        }
    }
    if let Some(e) = &raw.engine {
        let k = |s: &str| format!("engine.{s}");
        if let Some(n) = cx.int(&e.ring_entries, &k("ring_entries"), 8, 32768)? {
            c.engine.ring_entries = n as u32;
        }
        if let Some(n) = cx.int(&e.buffer_count, &k("buffer_count"), 1, 32768)? {
            let v = e.buffer_count.as_ref().expect("checked");
            if !(n as u64).is_power_of_two() {
                return Err(cx.err(
                    v.span(),
                    &k("buffer_count"),
                    format!("must be a power of two (got {n})"),
                ));
            }
            c.engine.buffer_count = n as u16;
        }
        if let Some(n) = cx.int(&e.buffer_size, &k("buffer_size"), 512, 1 << 20)? {
            c.engine.buffer_size = n as u32;
        }
        if let Some(b) = e.multishot {
            c.engine.multishot = b;
        }
        if let Some(b) = e.defer_taskrun {
            c.engine.defer_taskrun = b;
        }
        if let Some(n) = cx.int(&e.file_chunk_size, &k("file_chunk_size"), 4096, 16 << 20)? {
            c.engine.file_chunk_size = n as usize;
        }
        if let Some(n) = cx.int(&e.splice_min_size, &k("splice_min_size"), 0, 1 << 40)? {
            c.engine.splice_min_size = n as usize;
        }
        if let Some(n) = cx.int(&e.listen_backlog, &k("listen_backlog"), 1, 1 << 20)? {
            c.engine.listen_backlog = n as i32;
        }
    }
    if let Some(a) = &raw.admin {
        if let Some(l) = &a.listen {
            c.admin.listen = match l.get_ref().as_str() {
                "off" => None,
                v => Some(parse_listen(v).map_err(|m| cx.err(l.span(), "admin.listen", m))?),
            };
        }
        if let Some(t) = &a.token {
            c.admin.token = Some(t.get_ref().clone());
            if let Err(m) = c.admin.validate() {
                return Err(cx.err(t.span(), "admin.token", m));
            }
        }
        if let Err(m) = c.admin.validate() {
            let span = a.listen.as_ref().map_or(0..0, |l| l.span());
            return Err(cx.err(span, "admin.token", m));
        }
        for h in a.hosts.iter().flatten() {
            let name = super::Admin::host_name(h.get_ref())
                .map_err(|m| cx.err(h.span(), "admin.hosts", m))?;
            c.admin.hosts.push(name);
        }
    }
    if let Some(m) = &raw.metrics
        && let Some(b) = m.enabled
    {
        c.metrics = b;
    }
    if let Some(l) = &raw.access_log {
        let mut log = c.access_log.clone().unwrap_or(crate::accesslog::Config {
            path: None,
            format: crate::accesslog::Format::Combined,
        });
        if let Some(p) = &l.path {
            log.path = match p.get_ref().as_str() {
                "" => {
                    return Err(cx.err(
                        p.span(),
                        "access_log.path",
                        "must not be empty (use \"-\" for standard output)",
                    ));
                }
                "-" => None,
                v => Some(relative(v, file)),
            };
        }
        if let Some(f) = &l.format {
            log.format = match f.get_ref().as_str() {
                "combined" => crate::accesslog::Format::Combined,
                "json" => crate::accesslog::Format::Json,
                other => {
                    return Err(cx.err(
                        f.span(),
                        "access_log.format",
                        format!("must be \"combined\" or \"json\" (got {other:?})"),
                    ));
                }
            };
        }
        c.access_log = if l.enabled == Some(false) {
            None
        } else {
            Some(log)
        };
    }
    if let Some(t) = &raw.tls {
        c.tls = Some(super::tls::settings(&cx, t, file)?);
    }
    if raw.upstream.is_some() || raw.fastcgi.is_some() || raw.pool.is_some() {
        let none = Vec::new();
        c.upstreams = super::upstream::upstreams(
            &cx,
            raw.upstream.as_ref().unwrap_or(&none),
            raw.fastcgi.as_ref().unwrap_or(&none),
            raw.pool.as_ref().unwrap_or(&none),
            file,
        )?;
    }
    c.client_ip = super::security::client_ip(&cx, raw.server.as_ref())?;
    c.zones = super::security::zones(&cx, raw.limit.as_ref())?;
    let cx = Ctx {
        zones: &c.zones,
        ..cx
    };
    if let Some(s) = &raw.site {
        c.sites = super::site::sites(&cx, s, file)?;
        super::upstream::check_routes(&c)?;
        if let Some(r) = &raw.root {
            return Err(cx.err(
                r.span(),
                "root",
                "a file with [[site]] tables sets root per site (or in a route)",
            ));
        }
        if let Some(z) = &raw.compression {
            return Err(cx.err(
                z.span(),
                "compression",
                "a file with [[site]] tables sets compression per site ([site.compression])",
            ));
        }
        if raw.builtins == Some(true) {
            let at = text.find("builtins").unwrap_or(0);
            return Err(cx.err(
                at..at,
                "builtins",
                "a file with [[site]] tables puts the built-ins in a route (handler = \"builtins\")",
            ));
        }
        if raw.listen.is_none() && c.sites.iter().any(|s| s.listen.is_some()) {
            // The sites name their listeners; no default address is added.
            c.listen.clear();
        }
        let plan = crate::site::Plan::new(&c)?;
        crate::site::LogPlan::new(c.access_log.as_ref(), &plan.sites)?;
    }
    Ok(c)
}

/// The dotted key whose value or name starts at `offset`, found by reading the
/// table headers and the key on that line.
fn key_at(text: &str, offset: usize) -> Option<String> {
    let offset = offset.min(text.len());
    let mut table = String::new();
    let line_start = text[..offset].rfind('\n').map_or(0, |i| i + 1);
    for line in text[..line_start].lines() {
        let t = line.trim();
        if t.starts_with('[') && t.ends_with(']') {
            table = t.trim_matches(|c| c == '[' || c == ']').trim().to_string();
        }
    }
    let line = text[line_start..].lines().next().unwrap_or("");
    let t = line.trim();
    if t.starts_with('[') {
        return Some(t.trim_matches(|c| c == '[' || c == ']').trim().to_string());
    }
    let key = t.split('=').next()?.trim();
    if key.is_empty() {
        return None;
    }
    Some(if table.is_empty() {
        key.to_string()
    } else {
        format!("{table}.{key}")
    })
}

/// A context for `text` with no file, for the tests of one table's parser.
#[cfg(test)]
pub(super) fn test_ctx(text: &str) -> Ctx<'_> {
    Ctx {
        text,
        file: None,
        zones: &[],
    }
}

#[cfg(test)]
#[path = "file_tests.rs"]
mod tests;
