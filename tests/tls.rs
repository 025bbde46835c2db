//! HTTPS end to end: a rustls client and curl against the real server, with
//! certificates generated here.

mod common;
use common::*;
use std::io::{Read, Write};
use std::net::TcpStream;
use std::sync::Arc;
use std::time::Duration;

use common::pki::{Leaf, Pki};
use rcgen::KeyPair;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::{ClientConfig, RootCertStore};

const ALL: &[&rustls::SupportedProtocolVersion] =
    &[&rustls::version::TLS13, &rustls::version::TLS12];

use common::pki::{Tls, tls_connect as connect};

/// Connects and sends one request: the error, if the handshake or the
/// request is refused (a client-certificate alert arrives on the first read).
fn try_request(
    addr: std::net::SocketAddr,
    name: &str,
    cfg: &Arc<ClientConfig>,
) -> std::io::Result<()> {
    let mut c = connect(addr, name, cfg)?;
    c.write_all(b"GET /plaintext HTTP/1.1\r\nHost: a\r\n\r\n")?;
    let mut b = [0u8; 64];
    c.read(&mut b).map(|_| ())
}

fn get_over(s: &mut Tls, path: &str) -> Resp {
    s.write_all(format!("GET {path} HTTP/1.1\r\nHost: localhost\r\n\r\n").as_bytes())
        .unwrap();
    read_response(s, false).unwrap()
}

fn info(s: &mut Tls) -> serde_json::Value {
    serde_json::from_slice(&get_over(s, "/tls-info").body).unwrap()
}

struct Setup {
    pki: Pki,
    server: Server,
    tls_addr: std::net::SocketAddr,
    default: Leaf,
}

/// A server with built-ins and one HTTPS listener using `leaf`, plus `extra`
/// lines for the `[tls]` section.
fn tls_server(leaf: &Leaf, extra: &str) -> Server {
    let cfg = format!(
        "builtins = true\n[access_log]\nenabled = false\n[tls]\nlisten = \"127.0.0.1:0\"\ncert = {:?}\nkey = {:?}\n{extra}",
        leaf.cert, leaf.key
    );
    Server::with_config(&cfg, &[])
}

fn tls_addr(s: &Server) -> std::net::SocketAddr {
    s.tls.expect("server printed an https address")
}

fn setup(extra: &str) -> Setup {
    let pki = Pki::new();
    let default = pki.issue("localhost", &["localhost", "127.0.0.1"], "localhost", false);
    let a = pki.issue("a", &["a.test"], "a.test", false);
    let b = pki.issue("b", &["*.b.test"], "wildcard b.test", false);
    let cfg = format!(
        "builtins = true\nworkers = 2\n[access_log]\nenabled = false\n[tls]\nlisten = \"127.0.0.1:0\"\ncert = {:?}\nkey = {:?}\n{extra}\n[[tls.sni]]\nnames = [\"a.test\"]\ncert = {:?}\nkey = {:?}\n[[tls.sni]]\nnames = [\"*.b.test\"]\ncert = {:?}\nkey = {:?}\n",
        default.cert, default.key, a.cert, a.key, b.cert, b.key
    );
    let server = Server::with_config(&cfg, &[]);
    let tls_addr = tls_addr(&server);
    Setup {
        pki,
        server,
        tls_addr,
        default,
    }
}

#[test]
fn tls12_and_tls13_with_alpn() {
    let s = setup("");
    for (v, name) in [
        (&rustls::version::TLS13, "TLSv1.3"),
        (&rustls::version::TLS12, "TLSv1.2"),
    ] {
        let cfg = s.pki.client(&[v], None);
        let mut c = connect(s.tls_addr, "localhost", &cfg).unwrap();
        assert_eq!(c.conn.alpn_protocol(), Some(&b"http/1.1"[..]));
        let i = info(&mut c);
        assert_eq!(i["version"], name);
        assert_eq!(i["alpn"], "http/1.1");
        assert_eq!(i["server_name"], "localhost");
        // Keep-alive over TLS.
        for _ in 0..20 {
            assert_eq!(get_over(&mut c, "/plaintext").text(), "Hello, World!");
        }
    }
}

#[test]
fn minimum_version_13_refuses_tls12() {
    let s = setup("min_version = \"1.3\"");
    let cfg = s.pki.client(&[&rustls::version::TLS12], None);
    let Err(err) = connect(s.tls_addr, "localhost", &cfg) else {
        panic!("TLS 1.2 must be refused");
    };
    assert!(
        err.to_string().contains("ProtocolVersion") || err.to_string().contains("protocol"),
        "{err}"
    );
    let cfg = s.pki.client(ALL, None);
    assert_eq!(
        info(&mut connect(s.tls_addr, "localhost", &cfg).unwrap())["version"],
        "TLSv1.3"
    );
}

#[test]
fn sni_picks_the_certificate() {
    let s = setup("");
    let cfg = s.pki.client(ALL, None);
    let leaf = |name: &str| {
        connect(s.tls_addr, name, &cfg)
            .unwrap()
            .conn
            .peer_certificates()
            .unwrap()[0]
            .clone()
    };
    assert_eq!(leaf("localhost"), s.default.der);
    let a = std::fs::read(s.pki.dir.join("a.pem")).unwrap();
    let a_der = CertificateDer::from_pem_slice(&a).unwrap();
    assert_eq!(leaf("a.test"), a_der);
    let b =
        CertificateDer::from_pem_slice(&std::fs::read(s.pki.dir.join("b.pem")).unwrap()).unwrap();
    assert_eq!(leaf("x.b.test"), b);
    // An unknown name gets the default certificate (and so fails verification).
    assert!(connect(s.tls_addr, "other.test", &cfg).is_err());
}

#[test]
fn sessions_resume() {
    let s = setup("");
    for v in [&rustls::version::TLS13, &rustls::version::TLS12] {
        let cfg = s.pki.client(&[v], None);
        let mut first = connect(s.tls_addr, "localhost", &cfg).unwrap();
        assert_eq!(info(&mut first)["resumed"], false);
        drop(first);
        let mut second = connect(s.tls_addr, "localhost", &cfg).unwrap();
        assert_eq!(
            second.conn.handshake_kind(),
            Some(rustls::HandshakeKind::Resumed),
            "{v:?}"
        );
        assert_eq!(info(&mut second)["resumed"], true);
    }
}

#[test]
fn hsts_and_redirect() {
    let s = setup("redirect_http = true\nhsts = { max_age = 31536000, include_subdomains = true }");
    let cfg = s.pki.client(ALL, None);
    let mut c = connect(s.tls_addr, "localhost", &cfg).unwrap();
    let r = get_over(&mut c, "/plaintext");
    assert_eq!(
        r.header("strict-transport-security").as_deref(),
        Some("max-age=31536000; includeSubDomains")
    );
    let plain = exchange(
        &s.server,
        b"GET /docs/a?x=1&y=2 HTTP/1.1\r\nHost: localhost:8080\r\n\r\n",
    );
    assert_eq!(plain.status, 308);
    assert_eq!(
        plain.header("location"),
        Some(format!(
            "https://localhost:{}/docs/a?x=1&y=2",
            s.tls_addr.port()
        ))
    );
    assert!(plain.header("strict-transport-security").is_none());
}

#[test]
fn client_certificates_required() {
    let pki = Pki::new();
    let server_leaf = pki.issue("localhost", &["localhost"], "localhost", false);
    let alice = pki.issue("alice", &[], "alice", false);
    let old = pki.issue("old", &[], "old", true);
    let server = tls_server(
        &server_leaf,
        &format!(
            "client_auth = \"required\"\nclient_ca = {:?}\n",
            pki.ca_path()
        ),
    );
    let addr = tls_addr(&server);
    // No certificate: refused.
    let anon = pki.client(ALL, None);
    let refused = try_request(addr, "localhost", &anon);
    let e = refused
        .expect_err("no client certificate must be refused")
        .to_string();
    assert!(
        e.contains("CertificateRequired") || e.contains("alert"),
        "{e}"
    );
    // A valid certificate: the handler sees its subject.
    let mut c = connect(addr, "localhost", &pki.client(ALL, Some(&alice))).unwrap();
    assert_eq!(info(&mut c)["client_subject"], "CN=alice");
    // An expired certificate: refused with the matching alert.
    let expired = try_request(addr, "localhost", &pki.client(ALL, Some(&old)));
    let e = expired
        .expect_err("expired client certificate must be refused")
        .to_string();
    assert!(e.contains("CertificateExpired"), "{e}");
}

#[test]
fn client_certificates_optional() {
    let pki = Pki::new();
    let server_leaf = pki.issue("localhost", &["localhost"], "localhost", false);
    let bob = pki.issue("bob", &[], "bob", false);
    let server = tls_server(
        &server_leaf,
        &format!(
            "client_auth = \"optional\"\nclient_ca = {:?}\n",
            pki.ca_path()
        ),
    );
    let addr = tls_addr(&server);
    let mut anon = connect(addr, "localhost", &pki.client(ALL, None)).unwrap();
    assert_eq!(info(&mut anon)["client_subject"], serde_json::Value::Null);
    let mut c = connect(addr, "localhost", &pki.client(ALL, Some(&bob))).unwrap();
    assert_eq!(info(&mut c)["client_subject"], "CN=bob");
}

#[test]
fn reload_keeps_open_connections_and_survives_a_bad_certificate() {
    let s = setup("");
    let cfg = s.pki.client(ALL, None);
    let mut open = connect(s.tls_addr, "localhost", &cfg).unwrap();
    assert_eq!(get_over(&mut open, "/plaintext").status, 200);
    // Replace the default certificate and reload.
    let fresh = s.pki.issue("fresh", &["localhost"], "localhost v2", false);
    std::fs::copy(&fresh.cert, &s.default.cert).unwrap();
    std::fs::copy(&fresh.key, &s.default.key).unwrap();
    s.server.signal("HUP");
    std::thread::sleep(Duration::from_millis(300));
    // The open connection goes on; new ones get the new certificate (a fresh
    // client config each time, so no session is resumed).
    assert_eq!(get_over(&mut open, "/plaintext").status, 200);
    let leaf = connect(s.tls_addr, "localhost", &s.pki.client(ALL, None))
        .unwrap()
        .conn
        .peer_certificates()
        .unwrap()[0]
        .clone();
    assert_eq!(leaf, fresh.der);
    // A broken certificate is refused and the current one kept.
    std::fs::write(
        &s.default.cert,
        "-----BEGIN CERTIFICATE-----\nnot base64\n-----END CERTIFICATE-----\n",
    )
    .unwrap();
    s.server.signal("HUP");
    std::thread::sleep(Duration::from_millis(300));
    let log = s.server.stderr_text();
    assert!(
        log.contains("reloaded the configuration: generation 2"),
        "{log}"
    );
    let refused = log
        .lines()
        .find(|l| l.contains("reload failed, keeping generation 2: "))
        .unwrap_or_else(|| panic!("{log}"));
    assert!(refused.contains(": tls.cert: "), "{refused}");
    let leaf = connect(s.tls_addr, "localhost", &s.pki.client(ALL, None))
        .unwrap()
        .conn
        .peer_certificates()
        .unwrap()[0]
        .clone();
    assert_eq!(leaf, fresh.der);
    assert_eq!(get_over(&mut open, "/plaintext").status, 200);
}

#[test]
fn plain_http_to_the_tls_port_gets_400_in_clear() {
    let s = setup("");
    let mut c = TcpStream::connect(s.tls_addr).unwrap();
    c.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    c.write_all(b"GET / HTTP/1.1\r\nHost: a\r\n\r\n").unwrap();
    let r = read_response(&mut c, false).unwrap();
    assert_eq!(r.status, 400);
    assert!(
        r.text()
            .contains("plain HTTP request was sent to HTTPS port")
    );
    assert!(closed(&mut c));
}

#[test]
fn garbage_and_truncated_handshakes_are_closed() {
    let s = setup("");
    // Garbage that is not a TLS record.
    let mut g = TcpStream::connect(s.tls_addr).unwrap();
    g.write_all(&[0x16, 0x03, 0x01, 0x00, 0x05, 0xde, 0xad, 0xbe, 0xef, 0x00])
        .unwrap();
    assert!(closed(&mut g));
    let mut g = TcpStream::connect(s.tls_addr).unwrap();
    g.write_all(&[0xff; 64]).unwrap();
    assert!(closed(&mut g));
    // The server still serves.
    let cfg = s.pki.client(ALL, None);
    assert_eq!(
        info(&mut connect(s.tls_addr, "localhost", &cfg).unwrap())["tls"],
        true
    );
}

#[test]
fn unfinished_handshake_is_cut_at_the_headers_timeout() {
    let pki = Pki::new();
    let leaf = pki.issue("localhost", &["localhost"], "localhost", false);
    let cfg = format!(
        "builtins = true\n[access_log]\nenabled = false\n[timeouts]\nrequest_headers_timeout = \"1s\"\n[tls]\nlisten = \"127.0.0.1:0\"\ncert = {:?}\nkey = {:?}\n",
        leaf.cert, leaf.key
    );
    let server = Server::with_config(&cfg, &[]);
    let addr = tls_addr(&server);
    // The first bytes of a ClientHello, then silence.
    let mut c = TcpStream::connect(addr).unwrap();
    c.write_all(&[
        0x16, 0x03, 0x01, 0x02, 0x00, 0x01, 0x00, 0x01, 0xfc, 0x03, 0x03,
    ])
    .unwrap();
    let t = std::time::Instant::now();
    assert!(closed(&mut c));
    assert!(
        t.elapsed() >= Duration::from_millis(700) && t.elapsed() < Duration::from_secs(4),
        "{:?}",
        t.elapsed()
    );
}

#[test]
fn curl_with_cacert_and_sni() {
    let s = setup("");
    let port = s.tls_addr.port();
    for (name, args) in [
        ("localhost", vec!["--tlsv1.3"]),
        ("a.test", vec!["--tlsv1.2", "--tls-max", "1.2"]),
    ] {
        let resolve = format!("{name}:{port}:127.0.0.1");
        let url = format!("https://{name}:{port}/tls-info");
        let out = std::process::Command::new("curl")
            .args([
                "-sS",
                "--http1.1",
                "--cacert",
                s.pki.ca_path().to_str().unwrap(),
                "--resolve",
                &resolve,
            ])
            .args(&args)
            .arg(&url)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
        assert_eq!(v["server_name"], name);
        assert_eq!(v["alpn"], "http/1.1");
    }
}

#[test]
fn big_file_over_tls() {
    let pki = Pki::new();
    let leaf = pki.issue("localhost", &["localhost"], "localhost", false);
    let root = tempdir("tlsroot");
    let big = write_random(&root.join("big.bin"), 2 * 1024 * 1024 + 77);
    let cfg = format!(
        "root = {:?}\n[access_log]\nenabled = false\n[tls]\nlisten = \"127.0.0.1:0\"\ncert = {:?}\nkey = {:?}\n",
        root.to_str().unwrap(),
        leaf.cert,
        leaf.key
    );
    let server = Server::with_config(&cfg, &[]);
    let mut c = connect(tls_addr(&server), "localhost", &pki.client(ALL, None)).unwrap();
    for _ in 0..2 {
        let r = get_over(&mut c, "/big.bin");
        assert_eq!(r.status, 200);
        assert!(r.body == big, "body differs");
    }
}

#[test]
fn rsa_and_ed25519_certificates() {
    let pki = Pki::new();
    let default = pki.issue("localhost", &["localhost"], "localhost", false);
    let rsa_key =
        KeyPair::generate_rsa_for(&rcgen::PKCS_RSA_SHA256, rcgen::RsaKeySize::_2048).unwrap();
    let rsa = pki.issue_with(rsa_key, "rsa", &["rsa.test"], "rsa.test", false);
    let ed = pki.issue_with(
        KeyPair::generate_for(&rcgen::PKCS_ED25519).unwrap(),
        "ed",
        &["ed.test"],
        "ed.test",
        false,
    );
    let cfg = format!(
        "builtins = true\n[access_log]\nenabled = false\n[tls]\nlisten = \"127.0.0.1:0\"\ncert = {:?}\nkey = {:?}\n[[tls.sni]]\nnames = [\"rsa.test\"]\ncert = {:?}\nkey = {:?}\n[[tls.sni]]\nnames = [\"ed.test\"]\ncert = {:?}\nkey = {:?}\n",
        default.cert, default.key, rsa.cert, rsa.key, ed.cert, ed.key
    );
    let server = Server::with_config(&cfg, &[]);
    let addr = tls_addr(&server);
    for (name, leaf) in [("rsa.test", &rsa), ("ed.test", &ed)] {
        for v in [&rustls::version::TLS13, &rustls::version::TLS12] {
            let mut c = connect(addr, name, &pki.client(&[v], None)).unwrap();
            assert_eq!(
                c.conn.peer_certificates().unwrap()[0],
                leaf.der,
                "{name} {v:?}"
            );
            assert_eq!(info(&mut c)["server_name"], name);
        }
    }
}

#[test]
fn client_certificate_from_another_ca_is_refused() {
    let pki = Pki::new();
    let other = Pki::new();
    let server_leaf = pki.issue("localhost", &["localhost"], "localhost", false);
    let mallory = other.issue("mallory", &[], "mallory", false);
    let server = tls_server(
        &server_leaf,
        &format!(
            "client_auth = \"optional\"\nclient_ca = {:?}\n",
            pki.ca_path()
        ),
    );
    // The client trusts the server's CA but presents a certificate from another.
    let mut roots = RootCertStore::empty();
    roots.add(pki.ca_der.clone()).unwrap();
    let key = PrivateKeyDer::from_pem_file(&mallory.key).unwrap();
    let client = Arc::new(
        ClientConfig::builder_with_protocol_versions(ALL)
            .with_root_certificates(roots)
            .with_client_auth_cert(vec![mallory.der.clone()], key)
            .unwrap(),
    );
    let r = try_request(tls_addr(&server), "localhost", &client);
    let e = r
        .expect_err("a certificate from an unknown CA must be refused")
        .to_string();
    assert!(e.contains("UnknownCA"), "{e}");
}

#[test]
fn check_loads_the_certificates() {
    let pki = Pki::new();
    let leaf = pki.issue("localhost", &["localhost"], "localhost", false);
    let other = pki.issue("other", &["other"], "other", false);
    let dir = tempdir("tlscheck");
    let write = |key: &std::path::Path| {
        let p = dir.join("p.toml");
        std::fs::write(
            &p,
            format!(
                "[tls]\nlisten = \"127.0.0.1:8443\"\ncert = {:?}\nkey = {:?}\n",
                leaf.cert, key
            ),
        )
        .unwrap();
        let out = std::process::Command::new(bin())
            .args(["check", "--config", p.to_str().unwrap()])
            .output()
            .unwrap();
        (
            out.status.code(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    };
    assert_eq!(write(&leaf.key).0, Some(0));
    let (code, err) = write(&other.key);
    assert_eq!(code, Some(2));
    assert!(
        err.contains("tls.key:") && err.contains("does not belong to the certificate"),
        "{err}"
    );
}
