//! A `[[fastcgi]]` application: where its scripts are, which script a
//! request runs ([`FastCgiApp::resolve`]), and the CGI/1.1 variables it is
//! sent ([`params`]).

use std::path::{Path, PathBuf};

use super::record::Params;
use crate::exchange::RequestHead;

/// The application settings of a `[[fastcgi]]` table.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FastCgiApp {
    /// Scripts live under this (`SCRIPT_FILENAME` = root + script name).
    pub root: PathBuf,
    /// The script name ends at this suffix followed by `/` or the end; the
    /// rest is `PATH_INFO` (`/index.php/a/b`). Empty: no split, and any
    /// file runs.
    pub split_path_info: String,
    /// The script run for a directory.
    pub index: String,
    /// Candidates tried in order (`{path}` is the request's path); the
    /// first that names a script that exists runs. Empty: `{path}` alone.
    pub try_files: Vec<String>,
    /// Variables added to (or replacing) the CGI set.
    pub params: Vec<(String, String)>,
    /// Connections are kept open between requests (`FCGI_KEEP_CONN`).
    pub keep_conn: bool,
}

/// The script a request runs.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Script {
    /// `SCRIPT_NAME`: its path under the root, from `/`.
    pub name: String,
    /// `PATH_INFO`: what followed it.
    pub path_info: String,
    /// `SCRIPT_FILENAME`.
    pub filename: PathBuf,
}

/// What the file system says about a path.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    /// A regular file.
    File,
    /// A directory.
    Dir,
}

/// `%XX` decoded; `None` for a bad escape, a NUL, or not UTF-8.
fn decode(p: &str) -> Option<String> {
    let b = p.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%' {
            let h = std::str::from_utf8(b.get(i + 1..i + 3)?).ok()?;
            out.push(u8::from_str_radix(h, 16).ok()?);
            i += 3;
        } else {
            out.push(b[i]);
            i += 1;
        }
    }
    if out.contains(&0) {
        return None;
    }
    String::from_utf8(out).ok()
}

impl FastCgiApp {
    /// The script for the (percent-encoded) request path, probing the file
    /// system with `probe`; `None`: no candidate names a script (404), or
    /// the path is not one (`..`, a bad escape).
    pub fn resolve(&self, path: &str, probe: impl Fn(&Path) -> Option<Kind>) -> Option<Script> {
        let path = decode(path)?;
        if !path.starts_with('/') || path.split('/').any(|s| s == "..") || path.contains('\\') {
            return None;
        }
        let default = ["{path}".to_string()];
        let list: &[String] = if self.try_files.is_empty() {
            &default
        } else {
            &self.try_files
        };
        list.iter()
            .find_map(|t| self.candidate(&t.replace("{path}", &path), &probe))
    }

    fn candidate(&self, c: &str, probe: &impl Fn(&Path) -> Option<Kind>) -> Option<Script> {
        let c = c.replace("//", "/");
        let (name, info) = self.split(&c);
        let file = |name: &str| self.root.join(name.trim_start_matches('/'));
        match probe(&file(&name)) {
            Some(Kind::File) if self.runs(&name) => Some(Script {
                filename: file(&name),
                name,
                path_info: info,
            }),
            // A directory runs its index (its path info is dropped).
            Some(Kind::Dir) if info.is_empty() => {
                let name = format!("{}/{}", name.trim_end_matches('/'), self.index);
                (probe(&file(&name)) == Some(Kind::File) && self.runs(&name)).then(|| Script {
                    filename: file(&name),
                    name,
                    path_info: String::new(),
                })
            }
            _ => None,
        }
    }

    /// Whether `name` is a script: it ends with `split_path_info` (when
    /// set), so that `/uploads/x.jpg` never runs as one.
    fn runs(&self, name: &str) -> bool {
        self.split_path_info.is_empty() || name.ends_with(&self.split_path_info)
    }

    /// `c` split after the first `split_path_info` that ends a segment.
    fn split(&self, c: &str) -> (String, String) {
        let s = &self.split_path_info;
        if s.is_empty() {
            return (c.to_string(), String::new());
        }
        let mut from = 0;
        while let Some(at) = c[from..].find(s.as_str()) {
            let end = from + at + s.len();
            if end == c.len() || c.as_bytes()[end] == b'/' {
                return (c[..end].to_string(), c[end..].to_string());
            }
            from = end;
        }
        (c.to_string(), String::new())
    }
}

/// The variables of an active health check of `uri` (php-fpm's
/// `ping.path` or `pm.status_path`, or a script under `root`): a GET the
/// server sends itself.
pub fn check_params(app: &FastCgiApp, uri: &str) -> Params {
    let mut p = Params::new();
    let (path, query) = uri.split_once('?').unwrap_or((uri, ""));
    let root = app.root.to_string_lossy();
    let filename = format!("{}{path}", root.trim_end_matches('/'));
    let fields: [(&str, &[u8]); 20] = [
        ("GATEWAY_INTERFACE", b"CGI/1.1"),
        (
            "SERVER_SOFTWARE",
            concat!("peregrine/", env!("CARGO_PKG_VERSION")).as_bytes(),
        ),
        ("SERVER_PROTOCOL", b"HTTP/1.1"),
        ("REQUEST_METHOD", b"GET"),
        ("REQUEST_URI", uri.as_bytes()),
        ("DOCUMENT_URI", path.as_bytes()),
        ("QUERY_STRING", query.as_bytes()),
        ("SCRIPT_NAME", path.as_bytes()),
        ("SCRIPT_FILENAME", filename.as_bytes()),
        ("DOCUMENT_ROOT", root.as_bytes()),
        ("SERVER_NAME", b"localhost"),
        ("SERVER_ADDR", b"127.0.0.1"),
        ("SERVER_PORT", b"80"),
        ("REMOTE_ADDR", b"127.0.0.1"),
        ("REMOTE_PORT", b"0"),
        ("REQUEST_SCHEME", b"http"),
        ("REDIRECT_STATUS", b"200"),
        ("CONTENT_LENGTH", b""),
        ("HTTP_HOST", b"localhost"),
        ("HTTP_USER_AGENT", b"peregrine-health-check"),
    ];
    for (n, v) in fields {
        p.add(n, v);
    }
    for (n, v) in &app.params {
        p.add(n, v.as_bytes());
    }
    p
}

/// The CGI/1.1 variables (RFC 3875 §4.1, and what php-fpm expects) for
/// `req` running `script` of `app`.
pub fn params(app: &FastCgiApp, req: &RequestHead, script: &Script) -> Params {
    let mut p = Params::new();
    let root = app.root.to_string_lossy();
    let target = req.target();
    let request_uri = match target.find("://") {
        // An absolute-form target: its path and query.
        Some(i) => target[i + 3..]
            .find('/')
            .map_or("/", |j| &target[i + 3 + j..]),
        None => target,
    };
    let host = req.host().unwrap_or("");
    let server_name = match host.rfind(':') {
        Some(i) if !host.ends_with(']') => &host[..i],
        _ => host,
    };
    let https = req.tls().is_some();
    let mut add = |n: &str, v: &[u8]| p.add(n, v);
    add("GATEWAY_INTERFACE", b"CGI/1.1");
    add(
        "SERVER_SOFTWARE",
        concat!("peregrine/", env!("CARGO_PKG_VERSION")).as_bytes(),
    );
    let protocol: &[u8] = match req.version {
        crate::http::Version::Http10 => b"HTTP/1.0",
        crate::http::Version::Http11 => b"HTTP/1.1",
        crate::http::Version::Http2 => b"HTTP/2.0",
    };
    add("SERVER_PROTOCOL", protocol);
    add("REQUEST_METHOD", req.method.as_str().as_bytes());
    add("REQUEST_URI", request_uri.as_bytes());
    add("DOCUMENT_URI", req.path().as_bytes());
    add("QUERY_STRING", req.query().unwrap_or("").as_bytes());
    add("SCRIPT_NAME", script.name.as_bytes());
    add(
        "SCRIPT_FILENAME",
        script.filename.to_string_lossy().as_bytes(),
    );
    add("DOCUMENT_ROOT", root.as_bytes());
    if !script.path_info.is_empty() {
        add("PATH_INFO", script.path_info.as_bytes());
        let translated = format!("{}{}", root.trim_end_matches('/'), script.path_info);
        add("PATH_TRANSLATED", translated.as_bytes());
    }
    add("SERVER_NAME", server_name.as_bytes());
    if let Some(l) = req.local {
        add("SERVER_ADDR", l.ip().to_string().as_bytes());
        add("SERVER_PORT", l.port().to_string().as_bytes());
    }
    if let Some(ip) = req.client_ip() {
        add("REMOTE_ADDR", ip.to_string().as_bytes());
    }
    if let Some(peer) = req.peer {
        add("REMOTE_PORT", peer.port().to_string().as_bytes());
    }
    add("REQUEST_SCHEME", if https { b"https" } else { b"http" });
    if https {
        add("HTTPS", b"on");
    }
    // php-cgi built with force-cgi-redirect runs only with it.
    add("REDIRECT_STATUS", b"200");
    if let Some(t) = req.header("content-type") {
        add("CONTENT_TYPE", t);
    }
    add(
        "CONTENT_LENGTH",
        req.header("content-length").unwrap_or(b"").trim_ascii(),
    );
    // Header fields as HTTP_*, several lines joined (cookies with `; `).
    // Never `HTTP_PROXY` (httpoxy), and never a name with `_`, which
    // could pass for another field once `-` becomes `_`.
    let mut seen: Vec<String> = Vec::new();
    for (name, _) in req.headers() {
        let lower = name.to_ascii_lowercase();
        if seen.contains(&lower)
            || name.contains('_')
            || matches!(lower.as_str(), "proxy" | "content-type" | "content-length")
        {
            continue;
        }
        let sep: &[u8] = if lower == "cookie" { b"; " } else { b", " };
        let mut value = Vec::new();
        for (n, v) in req.headers() {
            if n.eq_ignore_ascii_case(name) {
                if !value.is_empty() {
                    value.extend_from_slice(sep);
                }
                value.extend_from_slice(v);
            }
        }
        let var = format!("HTTP_{}", name.to_ascii_uppercase().replace('-', "_"));
        add(&var, &value);
        seen.push(lower);
    }
    // HTTP/2 carries the host as `:authority`, not a field.
    if !seen.iter().any(|n| n == "host") && !host.is_empty() {
        add("HTTP_HOST", host.as_bytes());
    }
    for (n, v) in &app.params {
        add(n, v.as_bytes());
    }
    p
}

#[cfg(test)]
#[path = "app_tests.rs"]
mod tests;
