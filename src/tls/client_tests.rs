//! The client session against an in-memory rustls server: the handshake,
//! data both ways, what verification refuses and how it is named, and the
//! configuration's errors.

use std::path::PathBuf;

use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, Issuer, KeyPair};
use rustls::ServerConnection;
use rustls::pki_types::PrivateKeyDer;

use std::io::{Read, Write};

use super::*;

/// A CA that issues server certificates, its PEM in a file of its own.
struct Ca {
    params: CertificateParams,
    key: KeyPair,
    pem: PathBuf,
}

fn dir() -> PathBuf {
    use std::sync::atomic::{AtomicUsize, Ordering};
    static N: AtomicUsize = AtomicUsize::new(0);
    let d = std::env::temp_dir().join(format!(
        "peregrine-tls-client-{}-{}",
        std::process::id(),
        N.fetch_add(1, Ordering::Relaxed)
    ));
    std::fs::create_dir_all(&d).unwrap();
    d
}

impl Ca {
    fn new() -> Ca {
        let key = KeyPair::generate().unwrap();
        let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        // Each its own name, as separate CAs have.
        let d = dir();
        let name = format!("Client Test CA {}", d.display());
        params.distinguished_name.push(DnType::CommonName, name);
        let cert = params.self_signed(&key).unwrap();
        let pem = d.join("ca.pem");
        std::fs::write(&pem, cert.pem()).unwrap();
        Ca { params, key, pem }
    }

    /// A server configuration with a certificate for `sans`.
    fn server(&self, sans: &[&str], expired: bool) -> Arc<rustls::ServerConfig> {
        let key = KeyPair::generate().unwrap();
        let mut p =
            CertificateParams::new(sans.iter().map(|s| s.to_string()).collect::<Vec<_>>()).unwrap();
        if expired {
            p.not_before = rcgen::date_time_ymd(2020, 1, 1);
            p.not_after = rcgen::date_time_ymd(2021, 1, 1);
        }
        let cert = p
            .signed_by(&key, &Issuer::from_params(&self.params, &self.key))
            .unwrap();
        let der = PrivateKeyDer::try_from(key.serialize_der()).unwrap();
        let mut cfg = rustls::ServerConfig::builder_with_provider(provider())
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_no_client_auth()
            .with_single_cert(vec![cert.der().clone()], der)
            .unwrap();
        cfg.alpn_protocols = vec![b"http/1.1".to_vec()];
        Arc::new(cfg)
    }
}

fn session(ca: Option<&Path>, verify: bool, name: &str) -> TlsClient {
    let config = client_config(ca, verify, None, "upstream[0]").unwrap();
    let name = ServerName::try_from(name.to_string()).unwrap();
    TlsClient::new(&Connector { config, name }).unwrap()
}

/// The client and the server, and what each has received in plaintext.
struct Pair {
    client: TlsClient,
    server: ServerConnection,
    to_client: Vec<u8>,
    at_client: Vec<u8>,
    at_server: Vec<u8>,
    handshakes_done: usize,
}

impl Pair {
    fn new(client: TlsClient, server: Arc<rustls::ServerConfig>) -> Pair {
        Pair {
            client,
            server: ServerConnection::new(server).unwrap(),
            to_client: Vec::new(),
            at_client: Vec::new(),
            at_server: Vec::new(),
            handshakes_done: 0,
        }
    }

    /// Moves records both ways until neither side has more to say; the
    /// client's first error ends it.
    fn run(&mut self) -> Result<(), TlsFailure> {
        let mut wire = Vec::new();
        self.client.flush(&mut wire);
        for _ in 0..50 {
            let mut rd = &wire[..];
            while !rd.is_empty() {
                self.server.read_tls(&mut rd).unwrap();
                if self.server.process_new_packets().is_err() {
                    // The alert the server queued goes to the client.
                    break;
                }
            }
            let mut buf = vec![0u8; 64 * 1024];
            while let Ok(n) = self.server.reader().read(&mut buf) {
                if n == 0 {
                    break;
                }
                self.at_server.extend_from_slice(&buf[..n]);
            }
            let mut out = std::mem::take(&mut self.to_client);
            while self.server.wants_write() {
                self.server.write_tls(&mut out).unwrap();
            }
            wire.clear();
            if !out.is_empty() {
                let fed = self.client.feed(&out, &mut self.at_client, &mut wire)?;
                self.handshakes_done += usize::from(fed.handshake_done);
            }
            if out.is_empty() && wire.is_empty() {
                return Ok(());
            }
        }
        panic!("the pair kept talking");
    }

    fn client_sends(&mut self, data: &[u8]) {
        let mut wire = Vec::new();
        self.client.seal(data, &mut wire);
        let mut rd = &wire[..];
        while !rd.is_empty() {
            self.server.read_tls(&mut rd).unwrap();
            self.server.process_new_packets().unwrap();
        }
        let mut buf = vec![0u8; 64 * 1024];
        while let Ok(n) = self.server.reader().read(&mut buf) {
            if n == 0 {
                break;
            }
            self.at_server.extend_from_slice(&buf[..n]);
        }
    }
}

#[test]
fn handshake_then_a_request_and_a_large_response() {
    let ca = Ca::new();
    let client = session(Some(&ca.pem), true, "app.test");
    assert!(client.is_handshaking());
    let mut p = Pair::new(client, ca.server(&["app.test"], false));
    p.run().unwrap();
    assert!(!p.client.is_handshaking());
    assert_eq!(p.handshakes_done, 1);
    assert_eq!(p.client.alpn(), Some(&b"http/1.1"[..]));
    assert_eq!(p.server.alpn_protocol(), Some(&b"http/1.1"[..]));
    assert_eq!(p.server.server_name(), Some("app.test"), "SNI is sent");

    let request = b"POST /echo HTTP/1.1\r\nHost: app.test\r\nContent-Length: 5\r\n\r\nhello";
    p.client_sends(request);
    p.run().unwrap();
    assert_eq!(p.at_server, request);

    // 300 KB at once: more than the session holds in plaintext, so the
    // feed drains it as it goes.
    let body: Vec<u8> = (0..300_000u32).map(|i| (i % 251) as u8).collect();
    p.server.set_buffer_limit(None);
    p.server.writer().write_all(&body).unwrap();
    p.run().unwrap();
    assert_eq!(p.at_client, body);

    // close_notify reads as the end.
    p.server.send_close_notify();
    let mut out = Vec::new();
    while p.server.wants_write() {
        p.server.write_tls(&mut out).unwrap();
    }
    let (mut plain, mut wire) = (Vec::new(), Vec::new());
    let fed = p.client.feed(&out, &mut plain, &mut wire).unwrap();
    assert!(fed.closed && plain.is_empty(), "{fed:?}");
}

#[test]
fn an_ip_address_is_verified_against_ip_sans_and_sends_no_sni() {
    let ca = Ca::new();
    let server = ca.server(&["127.0.0.1", "::1"], false);
    for ip in ["127.0.0.1", "::1"] {
        let mut p = Pair::new(session(Some(&ca.pem), true, ip), server.clone());
        p.run().unwrap();
        assert_eq!(p.server.server_name(), None);
    }
    let mut p = Pair::new(session(Some(&ca.pem), true, "127.0.0.2"), server);
    assert_eq!(p.run(), Err(TlsFailure::NameMismatch));
}

#[test]
fn verification_failures_are_named() {
    let ca = Ca::new();
    let mut p = Pair::new(
        session(Some(&ca.pem), true, "other.test"),
        ca.server(&["app.test"], false),
    );
    assert_eq!(p.run(), Err(TlsFailure::NameMismatch));
    assert!(p.at_server.is_empty());

    let other = Ca::new();
    let mut p = Pair::new(
        session(Some(&other.pem), true, "app.test"),
        ca.server(&["app.test"], false),
    );
    assert_eq!(p.run(), Err(TlsFailure::UnknownIssuer));

    let mut p = Pair::new(
        session(Some(&ca.pem), true, "app.test"),
        ca.server(&["app.test"], true),
    );
    assert_eq!(p.run(), Err(TlsFailure::Expired));

    assert_eq!(
        TlsFailure::NameMismatch.to_string(),
        "TLS handshake failed: the certificate is not valid for the server name"
    );
    assert_eq!(
        TlsFailure::UnknownIssuer.to_string(),
        "TLS handshake failed: the certificate is not signed by a trusted CA"
    );
}

#[test]
fn without_verification_any_certificate_is_taken() {
    let ca = Ca::new();
    let other = Ca::new();
    for ca_file in [None, Some(other.pem.as_path())] {
        let mut p = Pair::new(
            session(ca_file, false, "other.test"),
            ca.server(&["app.test"], true),
        );
        p.run().unwrap();
        assert!(!p.client.is_handshaking());
    }
}

#[test]
fn a_server_that_does_not_speak_tls_is_a_protocol_failure() {
    let ca = Ca::new();
    let mut c = session(Some(&ca.pem), true, "app.test");
    let (mut plain, mut wire) = (Vec::new(), Vec::new());
    c.flush(&mut wire);
    assert!(!wire.is_empty(), "the ClientHello waits to go");
    let reply = b"HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\n\r\n";
    assert_eq!(
        c.feed(reply, &mut plain, &mut wire).unwrap_err(),
        TlsFailure::Protocol
    );
}

#[test]
fn the_server_refusing_is_an_alert() {
    let ca = Ca::new();
    // A server that speaks only h2 refuses a client that offers http/1.1.
    let mut server = (*ca.server(&["app.test"], false)).clone();
    server.alpn_protocols = vec![b"h2".to_vec()];
    let mut p = Pair::new(session(Some(&ca.pem), true, "app.test"), Arc::new(server));
    let got = p.run().unwrap_err();
    assert_eq!(
        got,
        TlsFailure::Alert(AlertDescription::NoApplicationProtocol)
    );
    assert!(got.to_string().contains("NoApplicationProtocol"), "{got}");
}

#[test]
fn configuration_errors_name_the_key_and_the_file() {
    let d = dir();
    let missing = d.join("missing.pem");
    let e = client_config(Some(&missing), true, None, "upstream[2]").unwrap_err();
    assert!(
        e.starts_with(&format!(
            "upstream[2].ca: {}: cannot open: ",
            missing.display()
        )),
        "{e}"
    );
    let bad = d.join("bad.pem");
    std::fs::write(&bad, "-----BEGIN CERTIFICATE-----\nMIIB\n").unwrap();
    let e = client_config(Some(&bad), true, None, "upstream[0]").unwrap_err();
    assert_eq!(
        e,
        format!(
            "upstream[0].ca: {}: PEM block 1 is truncated: it has no \"-----END CERTIFICATE-----\" line",
            bad.display()
        )
    );
    let empty = d.join("empty.pem");
    std::fs::write(&empty, "").unwrap();
    let e = client_config(Some(&empty), true, None, "upstream[0]").unwrap_err();
    assert!(e.contains("holds no PEM certificate"), "{e}");
    // An unusable CA file is reported even with verification off.
    let e = client_config(Some(&missing), false, None, "upstream[0]").unwrap_err();
    assert!(e.starts_with("upstream[0].ca: "), "{e}");
    std::fs::remove_dir_all(&d).unwrap();
}

#[test]
fn the_system_roots_are_found_where_the_system_keeps_them() {
    let present = std::env::var_os("SSL_CERT_FILE").is_some()
        || SYSTEM_BUNDLES.iter().any(|p| Path::new(p).is_file());
    let r = client_config(None, true, None, "upstream[0]");
    if present {
        r.unwrap();
    } else {
        let e = r.unwrap_err();
        assert!(
            e.starts_with("upstream[0].tls: no system trust roots found"),
            "{e}"
        );
    }
}
