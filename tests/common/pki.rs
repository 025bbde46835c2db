//! A test PKI: a CA, and server and client certificates it issues.

use std::path::PathBuf;
use std::sync::Arc;

use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, Issuer, KeyPair};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::{ClientConfig, RootCertStore};

use super::tempdir;

/// A test PKI: a CA, server certificates and client certificates.
pub struct Pki {
    pub dir: PathBuf,
    ca_params: CertificateParams,
    ca_key: KeyPair,
    pub ca_der: CertificateDer<'static>,
}

pub struct Leaf {
    pub cert: PathBuf,
    pub key: PathBuf,
    pub der: CertificateDer<'static>,
}

impl Pki {
    pub fn new() -> Pki {
        let dir = tempdir("pki");
        let ca_key = KeyPair::generate().unwrap();
        let mut ca_params = CertificateParams::new(Vec::<String>::new()).unwrap();
        ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        // Each test PKI has its own CA name, as separate CAs do.
        let name = format!(
            "Peregrine Test CA {}",
            dir.file_name().unwrap().to_string_lossy()
        );
        ca_params.distinguished_name.push(DnType::CommonName, name);
        let ca = ca_params.self_signed(&ca_key).unwrap();
        std::fs::write(dir.join("ca.pem"), ca.pem()).unwrap();
        Pki {
            dir,
            ca_params,
            ca_der: ca.der().clone(),
            ca_key,
        }
    }

    pub fn ca_path(&self) -> PathBuf {
        self.dir.join("ca.pem")
    }

    pub fn issue(&self, name: &str, sans: &[&str], cn: &str, expired: bool) -> Leaf {
        self.issue_with(KeyPair::generate().unwrap(), name, sans, cn, expired)
    }

    pub fn issue_with(
        &self,
        key: KeyPair,
        name: &str,
        sans: &[&str],
        cn: &str,
        expired: bool,
    ) -> Leaf {
        let mut p =
            CertificateParams::new(sans.iter().map(|s| s.to_string()).collect::<Vec<_>>()).unwrap();
        p.distinguished_name.push(DnType::CommonName, cn);
        if expired {
            p.not_before = rcgen::date_time_ymd(2020, 1, 1);
            p.not_after = rcgen::date_time_ymd(2021, 1, 1);
        }
        let issuer = Issuer::from_params(&self.ca_params, &self.ca_key);
        let cert = p.signed_by(&key, &issuer).unwrap();
        let cert_path = self.dir.join(format!("{name}.pem"));
        let key_path = self.dir.join(format!("{name}.key"));
        std::fs::write(&cert_path, cert.pem()).unwrap();
        std::fs::write(&key_path, key.serialize_pem()).unwrap();
        Leaf {
            cert: cert_path,
            key: key_path,
            der: cert.der().clone(),
        }
    }

    pub fn client(
        &self,
        versions: &[&'static rustls::SupportedProtocolVersion],
        auth: Option<&Leaf>,
    ) -> Arc<ClientConfig> {
        let mut roots = RootCertStore::empty();
        roots.add(self.ca_der.clone()).unwrap();
        let b =
            ClientConfig::builder_with_protocol_versions(versions).with_root_certificates(roots);
        let mut cfg = match auth {
            None => b.with_no_client_auth(),
            Some(l) => {
                let chain = vec![l.der.clone()];
                let key = PrivateKeyDer::from_pem_file(&l.key).unwrap();
                b.with_client_auth_cert(chain, key).unwrap()
            }
        };
        cfg.alpn_protocols = vec![b"http/1.1".to_vec()];
        Arc::new(cfg)
    }
}

/// A TLS client connection over TCP.
pub type Tls = rustls::StreamOwned<rustls::ClientConnection, std::net::TcpStream>;

/// Connects to `addr` with SNI `name` and completes the handshake (or fails
/// with its error).
pub fn tls_connect(
    addr: std::net::SocketAddr,
    name: &str,
    cfg: &Arc<ClientConfig>,
) -> std::io::Result<Tls> {
    let tcp = std::net::TcpStream::connect(addr)?;
    tcp.set_read_timeout(Some(std::time::Duration::from_secs(10)))?;
    let server = rustls::pki_types::ServerName::try_from(name.to_string()).unwrap();
    let conn = rustls::ClientConnection::new(cfg.clone(), server).unwrap();
    let mut s = rustls::StreamOwned::new(conn, tcp);
    while s.conn.is_handshaking() {
        s.conn.complete_io(&mut s.sock)?;
    }
    Ok(s)
}
