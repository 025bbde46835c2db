//! The client side of TLS, for connections to upstream servers: the rustls
//! configuration of a group (trust roots, verification, ALPN), and one
//! session, sans-IO: ciphertext in → plaintext out, plaintext in →
//! ciphertext out. Wraps `rustls::ClientConnection`; no sockets, no clock.

use std::fmt;
use std::path::Path;
use std::sync::Arc;

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::client::{ResolvesClientCert, WebPkiServerVerifier};
use rustls::crypto::{CryptoProvider, verify_tls12_signature, verify_tls13_signature};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::sign::CertifiedKey;
use rustls::{
    AlertDescription, CertificateError, ClientConfig, ClientConnection, DigitallySignedStruct,
    RootCertStore, SignatureScheme,
};

use super::conn::Fed;
use super::files::{self, Source};
use super::pem;
use super::provider;

/// Where the system's trust roots are looked for, after `SSL_CERT_FILE`:
/// the bundles of Debian and its kin, Fedora and RHEL, openSUSE, Alpine and
/// the BSDs.
pub const SYSTEM_BUNDLES: [&str; 5] = [
    "/etc/ssl/certs/ca-certificates.crt",
    "/etc/pki/tls/certs/ca-bundle.crt",
    "/etc/pki/ca-trust/extracted/pem/tls-ca-bundle.pem",
    "/etc/ssl/ca-bundle.pem",
    "/etc/ssl/cert.pem",
];

/// Why a TLS session to an upstream server failed, in terms an operator
/// can act on (small and `Copy`, as connection ends are).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum TlsFailure {
    /// The certificate is not valid for the name verified (`server_name`).
    NameMismatch,
    /// The certificate does not chain to a trusted root (`ca`).
    UnknownIssuer,
    /// The certificate has expired.
    Expired,
    /// The certificate is not valid yet.
    NotYetValid,
    /// The certificate was revoked.
    Revoked,
    /// The certificate is unusable for another reason (bad encoding or
    /// signature, wrong purpose).
    BadCertificate,
    /// The server refused the handshake with this alert.
    Alert(AlertDescription),
    /// The server offers nothing acceptable here (version, cipher suite,
    /// ALPN `http/1.1`).
    Incompatible,
    /// What the server sent is not TLS, or breaks the protocol.
    Protocol,
    /// The server closed the connection during the handshake.
    Closed,
}

impl TlsFailure {
    /// The failure a rustls error means.
    pub fn of(e: &rustls::Error) -> TlsFailure {
        use rustls::Error as E;
        match e {
            E::InvalidCertificate(c) => match c {
                CertificateError::NotValidForName
                | CertificateError::NotValidForNameContext { .. } => TlsFailure::NameMismatch,
                CertificateError::UnknownIssuer => TlsFailure::UnknownIssuer,
                CertificateError::Expired | CertificateError::ExpiredContext { .. } => {
                    TlsFailure::Expired
                }
                CertificateError::NotValidYet | CertificateError::NotValidYetContext { .. } => {
                    TlsFailure::NotYetValid
                }
                CertificateError::Revoked => TlsFailure::Revoked,
                _ => TlsFailure::BadCertificate,
            },
            E::AlertReceived(a) => TlsFailure::Alert(*a),
            E::PeerIncompatible(_) | E::NoApplicationProtocol => TlsFailure::Incompatible,
            _ => TlsFailure::Protocol,
        }
    }
}

impl fmt::Display for TlsFailure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("TLS handshake failed: ")?;
        match self {
            TlsFailure::NameMismatch => {
                f.write_str("the certificate is not valid for the server name")
            }
            TlsFailure::UnknownIssuer => {
                f.write_str("the certificate is not signed by a trusted CA")
            }
            TlsFailure::Expired => f.write_str("the certificate has expired"),
            TlsFailure::NotYetValid => f.write_str("the certificate is not valid yet"),
            TlsFailure::Revoked => f.write_str("the certificate was revoked"),
            TlsFailure::BadCertificate => f.write_str("the certificate cannot be used"),
            TlsFailure::Alert(a) => write!(f, "the server sent the alert {a:?}"),
            TlsFailure::Incompatible => {
                f.write_str("no protocol version, cipher suite or ALPN protocol in common")
            }
            TlsFailure::Protocol => f.write_str("the server does not speak TLS correctly"),
            TlsFailure::Closed => f.write_str("the server closed the connection"),
        }
    }
}

/// What a connection needs to start its session: the group's configuration
/// and the name this server is verified for.
#[derive(Clone, Debug)]
pub struct Connector {
    /// The group's configuration.
    pub config: Arc<ClientConfig>,
    /// Sent as SNI (a DNS name; an IP address is not sent) and verified.
    pub name: ServerName<'static>,
}

/// One client session, sans-IO.
pub struct TlsClient {
    conn: ClientConnection,
}

impl fmt::Debug for TlsClient {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TlsClient")
            .field("handshaking", &self.conn.is_handshaking())
            .finish_non_exhaustive()
    }
}

impl TlsClient {
    /// A session for `c`; its first flight (the ClientHello) waits in
    /// [`TlsClient::flush`].
    pub fn new(c: &Connector) -> Result<TlsClient, rustls::Error> {
        let mut conn = ClientConnection::new(c.config.clone(), c.name.clone())?;
        // The caller bounds what it queues (one request send at a time).
        conn.set_buffer_limit(None);
        Ok(TlsClient { conn })
    }

    /// Whether the handshake is still in progress.
    pub fn is_handshaking(&self) -> bool {
        self.conn.is_handshaking()
    }

    /// The ALPN protocol agreed, once the handshake is done.
    pub fn alpn(&self) -> Option<&[u8]> {
        self.conn.alpn_protocol()
    }

    /// Feeds ciphertext. Plaintext is appended to `plain`; handshake
    /// messages to send are appended to `wire`.
    pub fn feed(
        &mut self,
        cipher: &[u8],
        plain: &mut Vec<u8>,
        wire: &mut Vec<u8>,
    ) -> Result<Fed, TlsFailure> {
        super::records::feed(&mut self.conn, cipher, plain, wire).map_err(|e| TlsFailure::of(&e))
    }

    /// Encrypts `plain` and appends the records to `wire` (before the
    /// handshake is done they wait in the session and go after it).
    pub fn seal(&mut self, plain: &[u8], wire: &mut Vec<u8>) {
        super::records::seal(&mut self.conn, plain, wire);
    }

    /// Queues `close_notify` and appends it to `wire`.
    pub fn close(&mut self, wire: &mut Vec<u8>) {
        self.conn.send_close_notify();
        self.flush(wire);
    }

    /// Appends what the session has to send to `wire`.
    pub fn flush(&mut self, wire: &mut Vec<u8>) {
        super::records::flush(&mut self.conn, wire);
    }
}

/// The trust roots of `ca`, every certificate in it well-formed; `key` is
/// the configuration key, for messages.
fn roots_from(ca: &Path, key: &str) -> Result<RootCertStore, String> {
    let src = Source { key, path: ca };
    let mut roots = RootCertStore::empty();
    for c in pem::certificates(src, &files::read(src)?, false)? {
        roots
            .add(c)
            .map_err(|e| format!("{src}: not usable as a trust root: {e}"))?;
    }
    Ok(roots)
}

/// The system's trust roots: the bundle `SSL_CERT_FILE` names, else the
/// first of [`SYSTEM_BUNDLES`] present. Certificates of it that cannot be
/// parsed are skipped (as `rustls-native-certs` does); one usable one is
/// needed.
fn system_roots(key: &str) -> Result<RootCertStore, String> {
    let from_env = std::env::var_os("SSL_CERT_FILE").map(std::path::PathBuf::from);
    let path = match from_env {
        Some(p) => p,
        None => SYSTEM_BUNDLES
            .iter()
            .map(Path::new)
            .find(|p| p.is_file())
            .ok_or_else(|| {
                format!(
                    "{key}: no system trust roots found (looked for SSL_CERT_FILE and {}); set ca = \"…\"",
                    SYSTEM_BUNDLES.join(", ")
                )
            })?
            .to_path_buf(),
    };
    let src = Source { key, path: &path };
    let data = files::read(src)?;
    let mut roots = RootCertStore::empty();
    let certs = CertificateDer::pem_slice_iter(&data).filter_map(Result::ok);
    let (added, _) = roots.add_parsable_certificates(certs);
    if added == 0 {
        return Err(format!(
            "{src}: holds no usable CA certificate (system trust roots); set ca = \"…\""
        ));
    }
    Ok(roots)
}

/// Builds a group's client configuration: roots from `ca` (else the
/// system's), the certificate verified unless `verify` is false, ALPN
/// `http/1.1`, TLS 1.2 and 1.3. Errors name `key` (the group's) and the
/// file: `upstream[0].ca: ca.pem: PEM block 1 is truncated …`.
pub fn client_config(
    ca: Option<&Path>,
    verify: bool,
    client: Option<Arc<CertifiedKey>>,
    key: &str,
) -> Result<Arc<ClientConfig>, String> {
    let provider = provider();
    let builder = ClientConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()
        .map_err(|e| format!("{key}.tls: {e}"))?;
    let cfg = if verify {
        let roots = match ca {
            Some(p) => roots_from(p, &format!("{key}.ca"))?,
            None => system_roots(&format!("{key}.tls"))?,
        };
        let v = WebPkiServerVerifier::builder_with_provider(Arc::new(roots), provider)
            .build()
            .map_err(|e| format!("{key}.ca: {e}"))?;
        builder.with_webpki_verifier(v)
    } else {
        if let Some(p) = ca {
            // Read anyway, so a wrong path is reported even while unused.
            roots_from(p, &format!("{key}.ca"))?;
        }
        builder
            .dangerous()
            .with_custom_certificate_verifier(Arc::new(NoVerify(provider)))
    };
    let mut cfg = match client {
        Some(k) => cfg.with_client_cert_resolver(Arc::new(ClientCert(k))),
        None => cfg.with_no_client_auth(),
    };
    cfg.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(Arc::new(cfg))
}

/// The one certificate this client shows when a server asks for one
/// (`client_cert` and `client_key`), whatever the server says it trusts.
#[derive(Debug)]
struct ClientCert(Arc<CertifiedKey>);

impl ResolvesClientCert for ClientCert {
    fn resolve(
        &self,
        _root_hint_subjects: &[&[u8]],
        _sigschemes: &[SignatureScheme],
    ) -> Option<Arc<CertifiedKey>> {
        Some(self.0.clone())
    }

    fn has_certs(&self) -> bool {
        true
    }
}

/// `tls_verify = false`: any certificate is accepted (the handshake's
/// signatures are still checked, so the server holds the key of the
/// certificate it sent — but nothing says whose certificate it is).
#[derive(Debug)]
struct NoVerify(Arc<CryptoProvider>);

impl ServerCertVerifier for NoVerify {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        verify_tls12_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        verify_tls13_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}

#[cfg(test)]
#[path = "client_tests.rs"]
mod tests;
