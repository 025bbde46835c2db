//! HTTPS with rustls: certificates (with SNI), protocol versions, ALPN,
//! session resumption, client certificates, HSTS and the HTTP→HTTPS redirect.
//! The per-connection session is sans-IO ([`TlsSession`]); the worker feeds it
//! ciphertext from the ring and sends what it seals. Connections to upstream
//! servers have the client side ([`TlsClient`], configured per group by
//! [`client_config`]).
//!
//! Kernel TLS is not used yet. Where it would fit: once a session's handshake
//! is done, its traffic secrets (`dangerous_extract_secrets`) could be handed
//! to the socket with `TCP_ULP "tls"`, after which the worker would send
//! plaintext (and splice file bodies) while the kernel encrypts.
#![forbid(unsafe_code)]

mod client;
mod conn;
mod files;
pub mod pem;
mod records;

use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use rustls::crypto::CryptoProvider;
use rustls::pki_types::CertificateDer;
use rustls::server::{ClientHello, ProducesTickets, ResolvesServerCert, WebPkiClientVerifier};
use rustls::sign::CertifiedKey;
use rustls::{InconsistentKeys, RootCertStore, ServerConfig};

pub use client::{Connector, SYSTEM_BUNDLES, TlsClient, TlsFailure, client_config};
pub use conn::{Fed, TlsError, TlsSession};
pub use files::Source;
pub use records::sealed_len;

/// The lowest protocol version accepted.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MinVersion {
    /// TLS 1.2 and 1.3.
    Tls12,
    /// TLS 1.3 only.
    Tls13,
}

/// Client certificate policy.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ClientAuth {
    /// Never asked for.
    None,
    /// Asked for; verified when sent; connections without one are allowed.
    Optional,
    /// Required and verified.
    Required,
}

/// `Strict-Transport-Security` settings.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Hsts {
    /// `max-age` in seconds.
    pub max_age: u64,
    /// `includeSubDomains`.
    pub include_subdomains: bool,
    /// `preload`.
    pub preload: bool,
}

impl Hsts {
    /// The header line, CRLF included.
    pub fn header_line(&self) -> String {
        let mut v = format!("Strict-Transport-Security: max-age={}", self.max_age);
        if self.include_subdomains {
            v.push_str("; includeSubDomains");
        }
        if self.preload {
            v.push_str("; preload");
        }
        v.push_str("\r\n");
        v
    }
}

/// A certificate chosen by server name.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SniCert {
    /// Names it serves: exact (`a.example.com`) or one-label wildcards (`*.example.com`).
    pub names: Vec<String>,
    /// PEM certificate chain.
    pub cert: PathBuf,
    /// PEM private key.
    pub key: PathBuf,
    /// The configuration key it came from, for messages: `tls.sni[0]` or
    /// `site[1].tls`.
    pub origin: String,
}

/// TLS settings from the configuration.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Settings {
    /// HTTPS listen addresses.
    pub listen: Vec<SocketAddr>,
    /// Default PEM certificate chain.
    pub cert: PathBuf,
    /// Default PEM private key (PKCS#8, PKCS#1 or SEC1: RSA, ECDSA, Ed25519).
    pub key: PathBuf,
    /// Certificates by server name.
    pub sni: Vec<SniCert>,
    /// Lowest accepted version.
    pub min_version: MinVersion,
    /// Client certificates.
    pub client_auth: ClientAuth,
    /// PEM bundle of CAs that client certificates must chain to.
    pub client_ca: Option<PathBuf>,
    /// Plain-HTTP listeners answer 308 to the HTTPS URL.
    pub redirect_http: bool,
    /// HSTS header on HTTPS responses.
    pub hsts: Option<Hsts>,
    /// Session resumption (TLS 1.3 tickets, TLS 1.2 tickets and session IDs).
    pub session_resumption: bool,
}

/// The crypto provider in use (aws-lc-rs).
pub(crate) fn provider() -> Arc<CryptoProvider> {
    Arc::new(rustls::crypto::aws_lc_rs::default_provider())
}

fn load_chain(
    path: &Path,
    key: &str,
    served: bool,
) -> Result<Vec<CertificateDer<'static>>, String> {
    let src = Source { key, path };
    pem::certificates(src, &files::read(src)?, served)
}

/// The certificate chain in `cert` and its private key in `key`, checked
/// to belong together and to be valid now; errors name `{prefix}cert` or
/// `{prefix}key`.
pub(crate) fn load_key(
    cert: &Path,
    key: &Path,
    prefix: &str,
    provider: &CryptoProvider,
) -> Result<Arc<CertifiedKey>, String> {
    let chain = load_chain(cert, &format!("{prefix}cert"), true)?;
    let key_name = format!("{prefix}key");
    let src = Source {
        key: &key_name,
        path: key,
    };
    let der = pem::private_key(src, &files::read(src)?)?;
    let signing = provider
        .key_provider
        .load_private_key(der)
        .map_err(|e| format!("{src}: unsupported private key: {e}"))?;
    let ck = CertifiedKey::new(chain, signing);
    match ck.keys_match() {
        // Unknown: the key cannot tell its public half, so there is nothing to compare.
        Ok(()) | Err(rustls::Error::InconsistentKeys(InconsistentKeys::Unknown)) => {}
        Err(rustls::Error::InconsistentKeys(InconsistentKeys::KeyMismatch)) => {
            return Err(format!(
                "{prefix}key: {} does not belong to the certificate in {}",
                key.display(),
                cert.display()
            ));
        }
        Err(e) => {
            return Err(format!(
                "{prefix}cert: {}: the certificate cannot be used: {e}",
                cert.display()
            ));
        }
    }
    if let Some(leaf) = ck.cert.first()
        && let Some(why) = expired(leaf.as_ref())
    {
        return Err(format!("{prefix}cert: {}: {why}", cert.display()));
    }
    Ok(Arc::new(ck))
}

/// Why a certificate cannot be served now (expired or not yet valid).
fn expired(der: &[u8]) -> Option<String> {
    let (_, cert) = x509_parser::parse_x509_certificate(der).ok()?;
    let v = cert.validity();
    let now = x509_parser::time::ASN1Time::now();
    if now > v.not_after {
        Some(format!("certificate expired on {}", v.not_after))
    } else if now < v.not_before {
        Some(format!("certificate is not valid before {}", v.not_before))
    } else {
        None
    }
}

/// The DNS names a PEM certificate (its first one) is for: its subject
/// alternative names, else its common name.
pub fn names_of(cert: &Path) -> Result<Vec<String>, String> {
    let chain = load_chain(cert, "cert", true)?;
    let leaf = chain.first().ok_or("no certificate")?;
    let (_, c) = x509_parser::parse_x509_certificate(leaf.as_ref()).map_err(|e| e.to_string())?;
    let mut names = Vec::new();
    if let Ok(Some(san)) = c.subject_alternative_name() {
        for n in &san.value.general_names {
            match n {
                x509_parser::extensions::GeneralName::DNSName(d) => names.push(d.to_string()),
                x509_parser::extensions::GeneralName::IPAddress(ip) if ip.len() == 4 => {
                    names.push(format!("{}.{}.{}.{}", ip[0], ip[1], ip[2], ip[3]));
                }
                _ => {}
            }
        }
    }
    if names.is_empty() {
        names.extend(
            c.subject()
                .iter_common_name()
                .filter_map(|cn| cn.as_str().ok().map(str::to_string)),
        );
    }
    Ok(names)
}

/// The subject distinguished name of a DER certificate, e.g. `CN=alice, O=Example`.
pub fn subject_of(der: &[u8]) -> Option<String> {
    let (_, cert) = x509_parser::parse_x509_certificate(der).ok()?;
    Some(cert.subject().to_string())
}

/// Picks a certificate by SNI: exact names, then one-label wildcards, then the
/// default.
#[derive(Debug)]
struct Resolver {
    default: Arc<CertifiedKey>,
    exact: HashMap<String, Arc<CertifiedKey>>,
    wildcard: HashMap<String, Arc<CertifiedKey>>,
}

impl ResolvesServerCert for Resolver {
    fn resolve(&self, hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        let Some(name) = hello.server_name() else {
            return Some(self.default.clone());
        };
        let name = name.to_ascii_lowercase();
        if let Some(k) = self.exact.get(&name) {
            return Some(k.clone());
        }
        if let Some((_, parent)) = name.split_once('.')
            && let Some(k) = self.wildcard.get(parent)
        {
            return Some(k.clone());
        }
        Some(self.default.clone())
    }
}

/// Builds the rustls configuration from the files `s` names. Errors name the
/// configuration key and the file. Pass the previous ticket keys on a reload so
/// that sessions resumed by ticket survive it.
pub fn build(
    s: &Settings,
    tickets: Option<Arc<dyn ProducesTickets>>,
    h2: bool,
) -> Result<Arc<ServerConfig>, String> {
    let provider = provider();
    let default = load_key(&s.cert, &s.key, "tls.", &provider)?;
    let mut exact = HashMap::new();
    let mut wildcard = HashMap::new();
    for sni in &s.sni {
        let k = load_key(&sni.cert, &sni.key, &format!("{}.", sni.origin), &provider)?;
        for n in &sni.names {
            let n = n.to_ascii_lowercase();
            match n.strip_prefix("*.") {
                Some(parent) => wildcard.insert(parent.to_string(), k.clone()),
                None => exact.insert(n, k.clone()),
            };
        }
    }
    let versions: &[&rustls::SupportedProtocolVersion] = match s.min_version {
        MinVersion::Tls12 => &[&rustls::version::TLS13, &rustls::version::TLS12],
        MinVersion::Tls13 => &[&rustls::version::TLS13],
    };
    let builder = ServerConfig::builder_with_provider(provider.clone())
        .with_protocol_versions(versions)
        .map_err(|e| format!("tls.min_version: {e}"))?;
    let builder = match s.client_auth {
        ClientAuth::None => builder.with_no_client_auth(),
        auth => {
            let ca = s
                .client_ca
                .as_ref()
                .ok_or("tls.client_ca: needed when tls.client_auth is optional or required")?;
            let mut roots = RootCertStore::empty();
            for c in load_chain(ca, "tls.client_ca", false)? {
                roots
                    .add(c)
                    .map_err(|e| format!("tls.client_ca: {}: {e}", ca.display()))?;
            }
            let v = WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider.clone());
            let v = if auth == ClientAuth::Optional {
                v.allow_unauthenticated()
            } else {
                v
            };
            builder.with_client_cert_verifier(v.build().map_err(|e| format!("tls.client_ca: {e}"))?)
        }
    };
    let mut cfg = builder.with_cert_resolver(Arc::new(Resolver {
        default,
        exact,
        wildcard,
    }));
    // HTTP/2 first when it is on (RFC 9113 §3.2), else HTTP/1.1 only.
    cfg.alpn_protocols = if h2 {
        vec![b"h2".to_vec(), b"http/1.1".to_vec()]
    } else {
        vec![b"http/1.1".to_vec()]
    };
    if s.session_resumption {
        cfg.session_storage = rustls::server::ServerSessionMemoryCache::new(16 * 1024);
        cfg.ticketer = match tickets {
            Some(t) => t,
            None => rustls::crypto::aws_lc_rs::Ticketer::new()
                .map_err(|e| format!("tls: cannot create ticket keys: {e}"))?,
        };
        // TLS 1.3 sends tickets after the handshake.
        cfg.send_tls13_tickets = 2;
    } else {
        cfg.session_storage = Arc::new(rustls::server::NoServerSessionStorage {});
        cfg.send_tls13_tickets = 0;
    }
    Ok(Arc::new(cfg))
}
