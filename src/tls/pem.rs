//! Certificates and private keys from PEM text, with errors that say what is
//! wrong with the file (a truncated block, bad base64, a certificate that is
//! not X.509 version 3) rather than what the parser tripped on.

use rustls::pki_types::pem::{self, PemObject, SectionKind};
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use x509_parser::der_parser::error::BerError;
use x509_parser::nom;
use x509_parser::prelude::{FromDer, X509Certificate, X509Error, X509Version};

use super::files::Source;

/// Text from the file for a message: lossy, escaped and cut short.
fn quote(bytes: &[u8]) -> String {
    let text: String = String::from_utf8_lossy(bytes).chars().take(64).collect();
    format!("{text:?}")
}

/// What is wrong with PEM block `n` (1-based), as a sentence.
fn pem_error(n: usize, e: &pem::Error) -> String {
    match e {
        pem::Error::MissingSectionEnd { end_marker } => format!(
            "PEM block {n} is truncated: it has no \"-----END {}-----\" line",
            String::from_utf8_lossy(end_marker)
        ),
        pem::Error::IllegalSectionStart { line } => {
            format!("PEM block {n} has a malformed BEGIN line: {}", quote(line))
        }
        pem::Error::Base64Decode(why) => {
            format!("PEM block {n} is not valid base64 ({why})")
        }
        pem::Error::SectionTooLarge => format!("PEM block {n} is too large"),
        other => format!("PEM block {n} cannot be read: {other}"),
    }
}

/// Every PEM block in `data` in order, or a sentence about the first bad one.
fn blocks(src: Source<'_>, data: &[u8]) -> Result<Vec<(SectionKind, Vec<u8>)>, String> {
    let mut out = Vec::new();
    for item in <(SectionKind, Vec<u8>)>::pem_slice_iter(data) {
        match item {
            Ok(b) => out.push(b),
            Err(e) => return Err(format!("{src}: {}", pem_error(out.len() + 1, &e))),
        }
    }
    Ok(out)
}

/// Why `data` holds no PEM block of the kind wanted, when it looks like DER.
fn der_hint(data: &[u8]) -> &'static str {
    if data.first() == Some(&0x30) {
        " (it looks like binary DER; convert it to PEM)"
    } else {
        ""
    }
}

const TRUNCATED: &str = "is truncated (its DER encoding ends early)";

/// Checks that `der` parses as one X.509 certificate; with `v3`, that it is
/// version 3, which TLS needs for a server certificate.
fn check_x509(der: &[u8], v3: bool) -> Result<(), String> {
    match X509Certificate::from_der(der) {
        Ok((rest, _)) if !rest.is_empty() => {
            Err(format!("has {} bytes of trailing data", rest.len()))
        }
        Ok((_, cert)) if v3 && cert.version() != X509Version::V3 => Err(format!(
            "is X.509 version {}; TLS needs version 3",
            cert.version().0 + 1
        )),
        Ok(_) => Ok(()),
        Err(nom::Err::Incomplete(_)) => Err(TRUNCATED.into()),
        Err(nom::Err::Error(e) | nom::Err::Failure(e)) => match e {
            X509Error::NomError(nom::error::ErrorKind::Eof)
            | X509Error::Der(BerError::Incomplete(_)) => Err(TRUNCATED.into()),
            e => Err(format!("is not a valid X.509 certificate ({e})")),
        },
    }
}

/// The certificates in `data`, in order. Each must be a well-formed X.509
/// certificate; with `v3`, version 3 too (a served chain, not a CA bundle).
pub fn certificates(
    src: Source<'_>,
    data: &[u8],
    v3: bool,
) -> Result<Vec<CertificateDer<'static>>, String> {
    let mut certs = Vec::new();
    for (i, (kind, der)) in blocks(src, data)?.into_iter().enumerate() {
        if kind != SectionKind::Certificate {
            continue;
        }
        if let Err(why) = check_x509(&der, v3) {
            let which = if certs.is_empty() && v3 {
                "the certificate".to_string()
            } else {
                format!("certificate {} (PEM block {})", certs.len() + 1, i + 1)
            };
            return Err(format!("{src}: {which} {why}"));
        }
        certs.push(CertificateDer::from(der));
    }
    if certs.is_empty() {
        return Err(format!(
            "{src}: holds no PEM certificate (\"-----BEGIN CERTIFICATE-----\"){}",
            der_hint(data)
        ));
    }
    Ok(certs)
}

/// The first private key in `data` (PKCS#8, PKCS#1 or SEC1).
pub fn private_key(src: Source<'_>, data: &[u8]) -> Result<PrivateKeyDer<'static>, String> {
    for (kind, der) in blocks(src, data)? {
        if let Some(k) = PrivateKeyDer::from_pem(kind, der) {
            return Ok(k);
        }
    }
    Err(format!(
        "{src}: holds no PEM private key (\"-----BEGIN PRIVATE KEY-----\", \"RSA PRIVATE KEY\" or \"EC PRIVATE KEY\"){}",
        der_hint(data)
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::Path;

    #[test]
    fn pem_problems_are_sentences() {
        let src = Source {
            key: "tls.cert",
            path: Path::new("c.pem"),
        };
        let e = certificates(src, b"-----BEGIN CERTIFICATE-----\nMIIB\n", true).unwrap_err();
        assert_eq!(
            e,
            "tls.cert: c.pem: PEM block 1 is truncated: it has no \"-----END CERTIFICATE-----\" line"
        );
        let e = certificates(
            src,
            b"-----BEGIN CERTIFICATE-----\nnot base64\n-----END CERTIFICATE-----\n",
            true,
        )
        .unwrap_err();
        assert!(
            e.starts_with("tls.cert: c.pem: PEM block 1 is not valid base64 ("),
            "{e}"
        );
        let e = certificates(src, b"-----BEGIN CERTIFICATE---\n", true).unwrap_err();
        assert_eq!(
            e,
            "tls.cert: c.pem: PEM block 1 has a malformed BEGIN line: \"-----BEGIN CERTIFICATE---\""
        );
        let e = certificates(src, b"\x30\x82\x01\x00", true).unwrap_err();
        assert!(
            e.ends_with("(it looks like binary DER; convert it to PEM)"),
            "{e}"
        );
        // Valid base64 of a cut-short DER sequence.
        let e = certificates(
            src,
            b"-----BEGIN CERTIFICATE-----\nMIIBIjAN\n-----END CERTIFICATE-----\n",
            true,
        )
        .unwrap_err();
        assert_eq!(
            e,
            "tls.cert: c.pem: the certificate is truncated (its DER encoding ends early)"
        );
        let e = private_key(
            src,
            b"-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n",
        )
        .unwrap_err();
        assert!(
            e.starts_with("tls.cert: c.pem: holds no PEM private key"),
            "{e}"
        );
    }
}
