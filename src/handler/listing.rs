//! Directory listings for the `files` handler with `browse = true`: an HTML
//! table of names, sizes and modification dates, or JSON for
//! `Accept: application/json`; sorted, directories first.

use std::fs::File;
use std::io;
use std::os::fd::AsRawFd;
use std::os::unix::ffi::OsStrExt;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use crate::http::{Body, Response};

/// One listed name.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Item {
    /// The file name.
    pub name: String,
    /// A directory (listed with a trailing `/`).
    pub dir: bool,
    /// Size in bytes (0 for directories).
    pub size: u64,
    /// Modification time, seconds since the epoch.
    pub mtime: u64,
}

/// The entries of the open directory `dir` that `visible` keeps, sorted:
/// directories first, then by name. Symlinks and special files are left
/// out, so a listing shows nothing that the handler would not serve.
pub fn read(dir: &File, visible: impl Fn(&[u8]) -> bool) -> io::Result<Vec<Item>> {
    // The descriptor was opened beneath the root; its /proc name reads that
    // very directory, whatever the path now names.
    let path = format!("/proc/self/fd/{}", dir.as_raw_fd());
    let mut items = Vec::new();
    for e in std::fs::read_dir(path)? {
        let e = e?;
        let name = e.file_name();
        let Ok(text) = std::str::from_utf8(name.as_bytes()) else {
            continue;
        };
        if !visible(name.as_bytes()) {
            continue;
        }
        let ft = e.file_type()?;
        if !(ft.is_file() || ft.is_dir()) {
            continue;
        }
        let meta = e.metadata()?;
        let mtime = meta
            .modified()
            .ok()
            .and_then(|t| t.duration_since(UNIX_EPOCH).ok())
            .map_or(0, |d| d.as_secs());
        items.push(Item {
            name: text.to_string(),
            dir: ft.is_dir(),
            size: if ft.is_dir() { 0 } else { meta.len() },
            mtime,
        });
    }
    items.sort_by(|a, b| b.dir.cmp(&a.dir).then_with(|| a.name.cmp(&b.name)));
    Ok(items)
}

/// The listing of `items` for the directory at URL path `path` (ending in
/// `/`), as JSON or HTML.
pub fn response(path: &str, items: &[Item], json: bool) -> Response {
    if json {
        let list: Vec<serde_json::Value> = items
            .iter()
            .map(|i| {
                serde_json::json!({
                    "name": i.name,
                    "dir": i.dir,
                    "size": i.size,
                    "modified": http_date(i.mtime),
                    "mtime": i.mtime,
                })
            })
            .collect();
        let body = serde_json::to_vec(&serde_json::json!({ "path": path, "entries": list }))
            .unwrap_or_default();
        return Response::new(200)
            .content_type("application/json")
            .header("Vary", "Accept")
            .body(Body::Bytes(body));
    }
    let title = escape(&decode_lossy(path));
    let mut html = format!(
        "<!doctype html>\n<html><head><meta charset=\"utf-8\"><title>Index of {title}</title></head>\n<body><h1>Index of {title}</h1>\n<table>\n<tr><th>Name</th><th>Size</th><th>Modified</th></tr>\n"
    );
    if path != "/" {
        html.push_str("<tr><td><a href=\"../\">../</a></td><td></td><td></td></tr>\n");
    }
    for i in items {
        let slash = if i.dir { "/" } else { "" };
        let size = if i.dir {
            "-".to_string()
        } else {
            i.size.to_string()
        };
        html.push_str(&format!(
            "<tr><td><a href=\"{}{slash}\">{}{slash}</a></td><td>{size}</td><td>{}</td></tr>\n",
            encode(&i.name),
            escape(&i.name),
            http_date(i.mtime)
        ));
    }
    html.push_str("</table>\n</body></html>\n");
    Response::new(200)
        .content_type("text/html; charset=utf-8")
        .header("Vary", "Accept")
        .body(Body::Bytes(html.into_bytes()))
}

fn http_date(secs: u64) -> String {
    httpdate::fmt_http_date(SystemTime::UNIX_EPOCH + Duration::from_secs(secs))
}

/// `s` with HTML's special characters escaped.
fn escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// A file name as a relative URL: everything but unreserved bytes escaped.
fn encode(name: &str) -> String {
    let mut out = String::with_capacity(name.len());
    for b in name.bytes() {
        if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// A percent-encoded path for display.
fn decode_lossy(path: &str) -> String {
    match super::path::resolve(path) {
        Ok(rel) => format!(
            "/{}{}",
            String::from_utf8_lossy(&rel),
            if rel.is_empty() { "" } else { "/" }
        ),
        Err(_) => path.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn item(name: &str, dir: bool, size: u64) -> Item {
        Item {
            name: name.into(),
            dir,
            size,
            mtime: 0,
        }
    }

    #[test]
    fn reads_sorted_and_filtered() {
        let d = std::env::temp_dir().join(format!("peregrine-listing-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&d);
        std::fs::create_dir_all(d.join("sub")).unwrap();
        std::fs::write(d.join("b.txt"), "bb").unwrap();
        std::fs::write(d.join("a.txt"), "a").unwrap();
        std::fs::write(d.join(".secret"), "x").unwrap();
        std::os::unix::fs::symlink("/etc/passwd", d.join("link")).unwrap();
        let dir = File::open(&d).unwrap();
        let items = read(&dir, |n| !n.starts_with(b".")).unwrap();
        let names: Vec<&str> = items.iter().map(|i| i.name.as_str()).collect();
        assert_eq!(names, ["sub", "a.txt", "b.txt"]);
        assert_eq!(items[2].size, 2);
        assert!(items[1].mtime > 0);
        std::fs::remove_dir_all(&d).unwrap();
    }

    #[test]
    fn html_escapes_and_links() {
        let r = response(
            "/docs/",
            &[item("a <b>.txt", false, 5), item("d", true, 0)],
            false,
        );
        let Body::Bytes(b) = r.body_ref() else {
            panic!()
        };
        let html = String::from_utf8(b.clone()).unwrap();
        assert!(html.contains("<a href=\"a%20%3Cb%3E.txt\">a &lt;b&gt;.txt</a></td><td>5</td>"));
        assert!(html.contains("<a href=\"d/\">d/</a></td><td>-</td>"));
        assert!(html.contains("<a href=\"../\">"));
        assert!(html.contains("Thu, 01 Jan 1970 00:00:00 GMT"));
    }

    #[test]
    fn json_lists_entries() {
        let r = response("/", &[item("x", false, 3)], true);
        assert_eq!(r.header_value("content-type"), Some("application/json"));
        let Body::Bytes(b) = r.body_ref() else {
            panic!()
        };
        let v: serde_json::Value = serde_json::from_slice(b).unwrap();
        assert_eq!(v["entries"][0]["name"], "x");
        assert_eq!(v["entries"][0]["size"], 3);
        assert_eq!(v["entries"][0]["dir"], false);
    }
}
