//! Turning a request path into a safe relative file path.

use std::fmt;

/// Why a request path cannot name a file under the root.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum PathError {
    /// A `%` not followed by two hex digits.
    BadEscape,
    /// A NUL byte, raw or encoded.
    Nul,
    /// An encoded `/` (`%2F`), which would change how the path splits.
    EncodedSlash,
    /// A backslash, raw or encoded.
    Backslash,
    /// `..` segments that climb above the root.
    Escape,
}

impl fmt::Display for PathError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            PathError::BadEscape => "invalid percent-encoding in path",
            PathError::Nul => "nul byte in path",
            PathError::EncodedSlash => "encoded slash in path",
            PathError::Backslash => "backslash in path",
            PathError::Escape => "path climbs above the document root",
        })
    }
}

/// Percent-decodes `path` and normalizes it to a relative path without `.` or
/// `..` segments or empty segments (`""` for the root itself).
pub fn resolve(path: &str) -> Result<Vec<u8>, PathError> {
    let raw = path.as_bytes();
    let mut segs: Vec<Vec<u8>> = Vec::new();
    for seg in raw.split(|b| *b == b'/') {
        let seg = decode(seg)?;
        match seg.as_slice() {
            b"" | b"." => {}
            b".." => {
                if segs.pop().is_none() {
                    return Err(PathError::Escape);
                }
            }
            _ => segs.push(seg),
        }
    }
    Ok(segs.join(&b'/'))
}

fn decode(seg: &[u8]) -> Result<Vec<u8>, PathError> {
    let mut out = Vec::with_capacity(seg.len());
    let mut i = 0;
    while i < seg.len() {
        let b = match seg[i] {
            b'%' => {
                let h = seg.get(i + 1..i + 3).ok_or(PathError::BadEscape)?;
                let v = (hex(h[0]).ok_or(PathError::BadEscape)? << 4)
                    | hex(h[1]).ok_or(PathError::BadEscape)?;
                i += 3;
                if v == b'/' {
                    return Err(PathError::EncodedSlash);
                }
                v
            }
            b => {
                i += 1;
                b
            }
        };
        match b {
            0 => return Err(PathError::Nul),
            b'\\' => return Err(PathError::Backslash),
            _ => out.push(b),
        }
    }
    Ok(out)
}

fn hex(b: u8) -> Option<u8> {
    (b as char).to_digit(16).map(|d| d as u8)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ok(p: &str) -> String {
        String::from_utf8(resolve(p).unwrap()).unwrap()
    }

    #[test]
    fn normalizes() {
        assert_eq!(ok("/"), "");
        assert_eq!(ok("/a/b.txt"), "a/b.txt");
        assert_eq!(ok("//a/./b//c/"), "a/b/c");
        assert_eq!(ok("/a/../b"), "b");
        assert_eq!(ok("/a%20b/%41"), "a b/A");
        assert_eq!(ok("/.../x"), ".../x");
    }

    #[test]
    fn refuses_escapes() {
        assert_eq!(resolve("/.."), Err(PathError::Escape));
        assert_eq!(resolve("/a/../../etc/passwd"), Err(PathError::Escape));
        assert_eq!(resolve("/%2e%2e/etc/passwd"), Err(PathError::Escape));
        assert_eq!(resolve("/..%2fetc"), Err(PathError::EncodedSlash));
        assert_eq!(resolve("/a%2Fb"), Err(PathError::EncodedSlash));
        assert_eq!(resolve("/a%00b"), Err(PathError::Nul));
        assert_eq!(resolve("/a\\b"), Err(PathError::Backslash));
        assert_eq!(resolve("/a%5cb"), Err(PathError::Backslash));
        assert_eq!(resolve("/a%zz"), Err(PathError::BadEscape));
        assert_eq!(resolve("/a%2"), Err(PathError::BadEscape));
    }
}
