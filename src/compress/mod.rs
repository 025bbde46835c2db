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
    let Some((kind, subtype)) = essence(content_type) else {
        return false;
    };
    types.iter().any(|entry| match essence(entry) {
        Some(("*", "*")) => true,
        Some((k, "*")) => k.eq_ignore_ascii_case(kind),
        Some((k, s)) => k.eq_ignore_ascii_case(kind) && s.eq_ignore_ascii_case(subtype),
        None => false,
    })
}

/// A media type's `(type, subtype)` with parameters and whitespace removed;
/// None when it is not of the form `type/subtype`.
fn essence(media_type: &str) -> Option<(&str, &str)> {
    let bare = media_type.split(';').next().unwrap_or_default();
    let (kind, subtype) = bare.trim().split_once('/')?;
    let (kind, subtype) = (kind.trim(), subtype.trim());
    if kind.is_empty() || subtype.is_empty() {
        return None;
    }
    Some((kind, subtype))
}
