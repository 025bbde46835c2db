//! `[[fastcgi]]` tables: an `[[upstream]]` whose servers speak FastCGI,
//! with the application's settings (`root`, `split_path_info`, `index`,
//! `try_files`, `params`, `keep_conn`, `connect_timeout`, `read_timeout`);
//! every error naming its key and line.

use std::ops::Range;
use std::path::Path;
use std::sync::Arc;

use super::ConfigError;
use super::file::{Ctx, relative};
use super::upstream::RawUpstream;
use crate::fastcgi::FastCgiApp;
use crate::upstream::spec::UpstreamTimeouts;

/// The application of a `[[fastcgi]]` table (`None` for an
/// `[[upstream]]`, which must not have its keys).
pub(super) fn app(
    cx: &Ctx<'_>,
    table: &str,
    i: usize,
    r: &RawUpstream,
    span: Range<usize>,
    file: Option<&Path>,
) -> Result<Option<Arc<FastCgiApp>>, ConfigError> {
    let k = |key: &str| format!("{table}[{i}].{key}");
    // A pool with a `root` runs FastCGI processes (php-cgi, …).
    let fastcgi_pool = table == "pool" && r.root.is_some();
    if table != "fastcgi" && !fastcgi_pool {
        let only = [
            ("root", r.root.as_ref().map(|v| v.span())),
            (
                "split_path_info",
                r.split_path_info.as_ref().map(|v| v.span()),
            ),
            ("index", r.index.as_ref().map(|v| v.span())),
            ("try_files", r.try_files.as_ref().map(|v| v.span())),
            ("params", r.params.as_ref().map(|v| v.span())),
            (
                "connect_timeout",
                r.connect_timeout.as_ref().map(|v| v.span()),
            ),
            ("read_timeout", r.read_timeout.as_ref().map(|v| v.span())),
            ("keep_conn", r.keep_conn.map(|_| span.clone())),
        ];
        if let Some((name, Some(at))) = only.into_iter().find(|(_, s)| s.is_some()) {
            return Err(cx.err(
                at,
                &k(name),
                "applies only to a [[fastcgi]] table (or a [[pool]] with root, of FastCGI processes)",
            ));
        }
        return Ok(None);
    }
    if let Some(t) = &r.tls {
        return Err(cx.err(
            t.span(),
            &k("tls"),
            "FastCGI servers are reached without TLS",
        ));
    }
    let Some(root) = &r.root else {
        return Err(cx.err(
            span,
            &k("root"),
            "is required: the directory of the application's scripts",
        ));
    };
    if root.get_ref().is_empty() {
        return Err(cx.err(root.span(), &k("root"), "must not be empty"));
    }
    let root_path = relative(root.get_ref(), file);
    let split_path_info = match &r.split_path_info {
        Some(s) if s.get_ref().contains('/') => {
            return Err(cx.err(
                s.span(),
                &k("split_path_info"),
                "is a suffix like \".php\", without '/'",
            ));
        }
        Some(s) => s.get_ref().clone(),
        None => ".php".into(),
    };
    let index = match &r.index {
        Some(s) if s.get_ref().is_empty() || s.get_ref().contains('/') => {
            return Err(cx.err(s.span(), &k("index"), "is a file name like \"index.php\""));
        }
        Some(s) => s.get_ref().clone(),
        None => "index.php".into(),
    };
    let try_files = match &r.try_files {
        Some(list) => {
            for t in list.get_ref() {
                if !t.starts_with('/') && !t.starts_with("{path}") {
                    return Err(cx.err(
                        list.span(),
                        &k("try_files"),
                        format!("{t:?} must start with {{path}} or '/'"),
                    ));
                }
            }
            list.get_ref().clone()
        }
        None => Vec::new(),
    };
    let mut params = Vec::new();
    if let Some(p) = &r.params {
        for (n, v) in p.get_ref() {
            let ok = !n.is_empty() && n.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_');
            if !ok {
                return Err(cx.err(
                    p.span(),
                    &k("params"),
                    format!("{n:?} is not a variable name (letters, digits, '_')"),
                ));
            }
            params.push((n.clone(), v.clone()));
        }
    }
    Ok(Some(Arc::new(FastCgiApp {
        root: root_path,
        split_path_info,
        index,
        try_files,
        params,
        keep_conn: r.keep_conn.unwrap_or(true),
    })))
}

/// `connect_timeout` and `read_timeout` (the time to the response head
/// and between two reads of its body) into `t`.
pub(super) fn timeouts(
    cx: &Ctx<'_>,
    key: &str,
    r: &RawUpstream,
    t: &mut UpstreamTimeouts,
) -> Result<(), ConfigError> {
    let ms = std::time::Duration::from_millis(1);
    let key = key.trim_end_matches('.');
    if let Some(d) = cx.secs(&r.connect_timeout, &format!("{key}.connect_timeout"), ms)? {
        t.connect = d;
    }
    if let Some(d) = cx.secs(&r.read_timeout, &format!("{key}.read_timeout"), ms)? {
        t.response_head = d;
        t.read_idle = d;
    }
    Ok(())
}

#[cfg(test)]
#[path = "fastcgi_tests.rs"]
mod tests;
