//! Content-Type by file extension.

/// The Content-Type for a file name: text types carry `charset=utf-8`;
/// unknown extensions are `application/octet-stream`.
pub fn content_type(name: &[u8]) -> &'static str {
    let ext = match name.iter().rposition(|b| *b == b'.') {
        Some(i) if !name[i + 1..].contains(&b'/') => &name[i + 1..],
        _ => return "application/octet-stream",
    };
    let ext = std::str::from_utf8(ext).unwrap_or("").to_ascii_lowercase();
    match ext.as_str() {
        "html" | "htm" => "text/html; charset=utf-8",
        "css" => "text/css; charset=utf-8",
        "js" | "mjs" => "text/javascript; charset=utf-8",
        "json" => "application/json",
        "txt" => "text/plain; charset=utf-8",
        "md" => "text/markdown; charset=utf-8",
        "csv" => "text/csv; charset=utf-8",
        "xml" => "text/xml; charset=utf-8",
        "svg" => "image/svg+xml",
        "wasm" => "application/wasm",
        _ => mime_guess::from_ext(&ext)
            .first_raw()
            .unwrap_or("application/octet-stream"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn known_types() {
        assert_eq!(content_type(b"index.HTML"), "text/html; charset=utf-8");
        assert_eq!(content_type(b"a/b.png"), "image/png");
        assert_eq!(content_type(b"x.woff2"), "font/woff2");
        assert_eq!(content_type(b"noext"), "application/octet-stream");
        assert_eq!(content_type(b"a.d/noext"), "application/octet-stream");
        assert_eq!(content_type(b"x.unknownext"), "application/octet-stream");
    }
}
