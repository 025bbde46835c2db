use std::io::Read;

use super::*;

const ALL: [Coding; 3] = [Coding::Br, Coding::Zstd, Coding::Gzip];

fn pick(accept: &str) -> Choice {
    negotiate(Some(accept), &ALL)
}

#[test]
fn absent_header_is_identity() {
    assert_eq!(negotiate(None, &ALL), Choice::Identity);
}

#[test]
fn empty_header_is_identity() {
    assert_eq!(pick(""), Choice::Identity);
    assert_eq!(pick(" , ,"), Choice::Identity);
}

#[test]
fn single_coding() {
    assert_eq!(pick("gzip"), Choice::Coding(Coding::Gzip));
}

#[test]
fn equal_weights_follow_server_order() {
    assert_eq!(pick("gzip, br"), Choice::Coding(Coding::Br));
    assert_eq!(pick("gzip, zstd"), Choice::Coding(Coding::Zstd));
    let offered = [Coding::Gzip, Coding::Zstd];
    assert_eq!(
        negotiate(Some("zstd;q=0.5, gzip;q=0.5"), &offered),
        Choice::Coding(Coding::Gzip)
    );
}

#[test]
fn higher_weight_wins() {
    assert_eq!(pick("gzip;q=1, br;q=0.5"), Choice::Coding(Coding::Gzip));
    assert_eq!(
        pick("br;q=0.001, zstd;q=0.002"),
        Choice::Coding(Coding::Zstd)
    );
    assert_eq!(
        pick("gzip;q=1.000, br;q=0.999"),
        Choice::Coding(Coding::Gzip)
    );
}

#[test]
fn zero_weight_refuses_the_coding() {
    assert_eq!(pick("br;q=0"), Choice::Identity);
    assert_eq!(pick("br;q=0, gzip"), Choice::Coding(Coding::Gzip));
}

#[test]
fn star_covers_unlisted_codings() {
    assert_eq!(pick("*"), Choice::Coding(Coding::Br));
    assert_eq!(pick("br;q=0.5, *"), Choice::Coding(Coding::Zstd));
    assert_eq!(pick("*;q=0.5, gzip;q=0.6"), Choice::Coding(Coding::Gzip));
}

#[test]
fn star_zero_refuses_identity() {
    assert_eq!(pick("*;q=0"), Choice::NotAcceptable);
    assert_eq!(pick("*;q=0, identity"), Choice::Identity);
    assert_eq!(pick("*;q=0, gzip"), Choice::Coding(Coding::Gzip));
}

#[test]
fn identity_zero_without_acceptable_coding() {
    assert_eq!(pick("identity;q=0"), Choice::NotAcceptable);
    assert_eq!(pick("identity;q=0, deflate"), Choice::NotAcceptable);
    assert_eq!(pick("identity;q=0, gzip"), Choice::Coding(Coding::Gzip));
}

#[test]
fn empty_offer() {
    assert_eq!(negotiate(Some("gzip"), &[]), Choice::Identity);
    assert_eq!(negotiate(Some("identity;q=0"), &[]), Choice::NotAcceptable);
}

#[test]
fn names_ignore_case() {
    assert_eq!(pick("GZIP"), Choice::Coding(Coding::Gzip));
    assert_eq!(pick("Br;Q=0.3"), Choice::Coding(Coding::Br));
    assert_eq!(pick("*;q=0, IDENTITY"), Choice::Identity);
}

#[test]
fn x_gzip_is_gzip() {
    assert_eq!(pick("x-gzip"), Choice::Coding(Coding::Gzip));
}

#[test]
fn malformed_elements_are_ignored() {
    for accept in [
        "gzip;q=2",
        "gzip;q=abc",
        "gzip;q=1.5",
        "gzip;q=0.1234",
        "gzip;q=",
        "gzip;level=1",
        "gzip;",
        "g zip",
        ";q=1",
    ] {
        assert_eq!(pick(accept), Choice::Identity, "{accept}");
    }
    assert_eq!(pick("gzip;q=2, br"), Choice::Coding(Coding::Br));
    assert_eq!(pick("*;q=x"), Choice::Identity);
}

#[test]
fn whitespace_is_tolerated() {
    assert_eq!(pick("gzip ; q=0.8"), Choice::Coding(Coding::Gzip));
    assert_eq!(
        pick("  br;q=0.2 ,\tgzip;q=0.1  "),
        Choice::Coding(Coding::Br)
    );
}

#[test]
fn unknown_codings_fall_back_to_identity() {
    assert_eq!(pick("deflate"), Choice::Identity);
    assert_eq!(pick("deflate, compress;q=0.5"), Choice::Identity);
}

#[test]
fn coding_names_and_suffixes() {
    for coding in ALL {
        assert_eq!(Coding::parse(coding.name()), Some(coding));
    }
    assert_eq!(Coding::parse("X-GZIP"), Some(Coding::Gzip));
    assert_eq!(Coding::parse("deflate"), None);
    assert_eq!(Coding::Br.suffix(), ".br");
    assert_eq!(Coding::Zstd.suffix(), ".zst");
    assert_eq!(Coding::Gzip.suffix(), ".gz");
}

/// 1 MiB of text varied enough that the encoders do real work.
fn text() -> Vec<u8> {
    let mut text = Vec::with_capacity(1 << 20);
    let mut n: u64 = 1;
    while text.len() < 1 << 20 {
        n = n
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        let line = format!("line {} of the body, token {:x}\n", text.len(), n >> 40);
        text.extend_from_slice(line.as_bytes());
    }
    text.truncate(1 << 20);
    text
}

/// Everything `reader` yields before its input runs out or stops making
/// sense: what a client could show from a stream cut short.
fn readable(mut reader: impl Read) -> Vec<u8> {
    let mut out = Vec::new();
    let mut buf = [0; 8192];
    while let Ok(n @ 1..) = reader.read(&mut buf) {
        out.extend_from_slice(&buf[..n]);
    }
    out
}

fn decode_prefix(coding: Coding, bytes: &[u8]) -> Vec<u8> {
    match coding {
        Coding::Gzip => readable(flate2::read::GzDecoder::new(bytes)),
        Coding::Br => readable(brotli::Decompressor::new(bytes, 4096)),
        Coding::Zstd => readable(zstd::stream::read::Decoder::new(bytes).unwrap()),
    }
}

fn decode_all(coding: Coding, bytes: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    match coding {
        Coding::Gzip => flate2::read::GzDecoder::new(bytes).read_to_end(&mut out),
        Coding::Br => brotli::Decompressor::new(bytes, 4096).read_to_end(&mut out),
        Coding::Zstd => return zstd::decode_all(bytes).unwrap(),
    }
    .unwrap();
    out
}

/// Pushes `input` in uneven pieces, flushing once halfway and checking that
/// the bytes emitted by then decode to everything pushed so far.
fn round_trip(coding: Coding, level: u32) {
    let input = text();
    let sizes = [1, 7, 4096, 65_537, 13, 100_000, 333];
    let mut encoder = Encoder::new(coding, level);
    assert_eq!(encoder.coding(), coding);
    let (mut out, mut pushed, mut flushed) = (Vec::new(), 0, false);
    for size in sizes.iter().cycle() {
        let end = (pushed + size).min(input.len());
        encoder.push(&input[pushed..end], &mut out).unwrap();
        pushed = end;
        if !flushed && pushed >= input.len() / 2 {
            encoder.flush(&mut out).unwrap();
            let prefix = decode_prefix(coding, &out);
            assert_eq!(prefix.len(), pushed, "{coding:?} flush");
            assert!(prefix == input[..pushed], "{coding:?} flush");
            flushed = true;
        }
        if pushed == input.len() {
            break;
        }
    }
    encoder.finish(&mut out).unwrap();
    assert!(out.len() < input.len() / 2, "{coding:?} did not compress");
    assert!(decode_all(coding, &out) == input, "{coding:?} round trip");
}

#[test]
fn gzip_round_trip() {
    round_trip(Coding::Gzip, 6);
}

#[test]
fn brotli_round_trip() {
    // A middle quality keeps the debug-build test quick; 11 is covered below.
    round_trip(Coding::Br, 5);
}

#[test]
fn zstd_round_trip() {
    round_trip(Coding::Zstd, 3);
}

#[test]
fn one_shot_at_extreme_levels() {
    let input = &text()[..64 * 1024];
    for coding in ALL {
        for level in [0, 1, 11, 100] {
            let bytes = compress(coding, level, input);
            assert!(decode_all(coding, &bytes) == input, "{coding:?} {level}");
        }
    }
}

#[test]
fn empty_input_makes_a_valid_stream() {
    for coding in ALL {
        let bytes = compress(coding, 6, b"");
        assert!(!bytes.is_empty(), "{coding:?}");
        assert!(decode_all(coding, &bytes).is_empty(), "{coding:?}");
    }
}

#[test]
fn calls_after_finish_fail() {
    for coding in ALL {
        let mut encoder = Encoder::new(coding, 6);
        let mut out = Vec::new();
        encoder.push(b"hello", &mut out).unwrap();
        encoder.finish(&mut out).unwrap();
        let len = out.len();
        assert!(encoder.finish(&mut out).is_err(), "{coding:?}");
        assert!(encoder.push(b"more", &mut out).is_err(), "{coding:?}");
        assert!(encoder.flush(&mut out).is_err(), "{coding:?}");
        assert_eq!(out.len(), len, "{coding:?} wrote after finish");
        assert_eq!(decode_all(coding, &out), b"hello");
    }
}

fn types(list: &[&str]) -> Vec<String> {
    list.iter().map(|s| s.to_string()).collect()
}

#[test]
fn mime_exact_and_wildcard() {
    let list = types(&["text/*", "application/json", "image/svg+xml"]);
    assert!(mime_matches("text/html", &list));
    assert!(mime_matches("text/html; charset=utf-8", &list));
    assert!(mime_matches("Application/JSON", &list));
    assert!(mime_matches("image/svg+xml;charset=utf-8", &list));
    assert!(!mime_matches("image/png", &list));
    assert!(!mime_matches("application/javascript", &list));
    assert!(!mime_matches("textual/html", &list));
}

#[test]
fn mime_edge_cases() {
    assert!(!mime_matches("text/html", &[]));
    assert!(!mime_matches("", &types(&["text/*"])));
    assert!(!mime_matches("text", &types(&["text/*"])));
    assert!(mime_matches(" TEXT/Plain ", &types(&[" text/PLAIN "])));
    assert!(mime_matches("font/woff2", &types(&["*/*"])));
    assert!(mime_matches("text/css", &types(&["TEXT/*; q=1"])));
}
