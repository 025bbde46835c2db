//! Response compression, sans IO.
//!
//! Two parts: content-coding negotiation over `Accept-Encoding` per
//! RFC 9110 §12.5.3 ([`negotiate`]), and streaming encoders that turn body
//! bytes into gzip, brotli or zstd bytes in a caller's buffer ([`Encoder`]).
//! Nothing here reads or writes a socket, so the same code serves buffered
//! responses, streamed ones and precompressed sidecar files.
//!
//! Backends: gzip is flate2 with the pure-Rust zlib-rs backend, brotli is the
//! pure-Rust `brotli` crate, and zstd is the `zstd` crate over libzstd.
#![forbid(unsafe_code)]

pub mod background;
mod encoder;
mod negotiate;
#[cfg(test)]
mod tests;

pub use encoder::{Encoder, compress};
pub use negotiate::{Choice, Coding, fingerprint, negotiate};

/// Whether a response of `content_type` (its value, parameters allowed, e.g.
/// "text/html; charset=utf-8") is in `types`: entries are full types
/// ("application/json") or "type/*" ("text/*"); case-insensitive; parameters
/// ignored.
pub fn mime_matches(content_type: &str, types: &[String]) -> bool {
    MimeTypes::new(types).matches(content_type)
}

/// A list of media types as [`mime_matches`] reads it, parsed once: for
/// matching every response without taking the list apart again.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct MimeTypes {
    /// `(type, subtype)` in lowercase; `"*"` for a wildcard.
    entries: Vec<(String, String)>,
}

impl MimeTypes {
    /// The entries of `types` that are media types (others never match).
    pub fn new(types: &[String]) -> MimeTypes {
        let entries = types
            .iter()
            .filter_map(|t| essence(t))
            .map(|(k, s)| (k.to_ascii_lowercase(), s.to_ascii_lowercase()))
            .collect();
        MimeTypes { entries }
    }

    /// Whether `content_type` is in the list (see [`mime_matches`]).
    pub fn matches(&self, content_type: &str) -> bool {
        if self.entries.is_empty() {
            return false;
        }
        let Some((kind, subtype)) = essence(content_type) else {
            return false;
        };
        self.entries.iter().any(|(k, s)| {
            (k == "*" && s == "*")
                || (k.eq_ignore_ascii_case(kind) && (s == "*" || s.eq_ignore_ascii_case(subtype)))
        })
    }
}

/// A media type's `(type, subtype)` with parameters and whitespace removed;
/// None when it is not of the form `type/subtype`.
fn essence(media_type: &str) -> Option<(&str, &str)> {
    let bare = match media_type.as_bytes().iter().position(|&b| b == b';') {
        Some(i) => &media_type[..i],
        None => media_type,
    };
    let slash = bare.as_bytes().iter().position(|&b| b == b'/')?;
    let (kind, subtype) = (&bare[..slash], &bare[slash + 1..]);
    let (kind, subtype) = (kind.trim(), subtype.trim());
    if kind.is_empty() || subtype.is_empty() {
        return None;
    }
    Some((kind, subtype))
}
