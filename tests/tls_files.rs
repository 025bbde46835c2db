//! Certificate and key files that are not what they should be: devices, FIFOs,
//! oversized files and broken certificates get a prompt error naming the
//! configuration key, at startup and on reload.

mod common;
use common::*;
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use rcgen::{CertificateParams, KeyPair};
use rustls::pki_types::{CertificateDer, ServerName};
use rustls::{ClientConfig, ClientConnection, RootCertStore};

/// A self-signed certificate for `localhost`, written as `cert.pem` and `key.pem`.
struct Files {
    dir: PathBuf,
    cert: PathBuf,
    key: PathBuf,
    der: CertificateDer<'static>,
}

fn files(tag: &str) -> Files {
    let dir = tempdir(tag);
    let key = KeyPair::generate().unwrap();
    let cert = CertificateParams::new(vec!["localhost".to_string()])
        .unwrap()
        .self_signed(&key)
        .unwrap();
    std::fs::write(dir.join("cert.pem"), cert.pem()).unwrap();
    std::fs::write(dir.join("key.pem"), key.serialize_pem()).unwrap();
    Files {
        cert: dir.join("cert.pem"),
        key: dir.join("key.pem"),
        der: cert.der().clone(),
        dir,
    }
}

/// A configuration with one HTTPS listener using `cert` and `key`, plus `extra`
/// lines for the `[tls]` section.
fn config(dir: &Path, cert: &Path, key: &Path, extra: &str) -> PathBuf {
    let p = dir.join("peregrine.toml");
    std::fs::write(
        &p,
        format!(
            "workers = 1\n[access_log]\nenabled = false\n[tls]\nlisten = \"127.0.0.1:0\"\ncert = {cert:?}\nkey = {key:?}\n{extra}"
        ),
    )
    .unwrap();
    p
}

/// Runs `peregrine serve` with `config`, expecting it to fail at startup
/// within a few seconds; returns its exit code, stderr and how long it took.
fn refused_at_startup(config: &Path) -> (Option<i32>, String, Duration) {
    let err = config.with_extension("stderr");
    let t = Instant::now();
    let mut child = Command::new(bin())
        .args([
            "serve",
            "--listen",
            "127.0.0.1:0",
            "--admin",
            "off",
            "--config",
        ])
        .arg(config)
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(&err).unwrap())
        .spawn()
        .unwrap();
    let status = loop {
        if let Some(st) = child.try_wait().unwrap() {
            break st;
        }
        if t.elapsed() > Duration::from_secs(10) {
            let _ = child.kill();
            let _ = child.wait();
            panic!(
                "still running after 10 s; stderr: {}",
                std::fs::read_to_string(&err).unwrap_or_default()
            );
        }
        std::thread::sleep(Duration::from_millis(10));
    };
    (
        status.code(),
        std::fs::read_to_string(&err).unwrap(),
        t.elapsed(),
    )
}

#[test]
fn dev_zero_as_certificate_is_refused_quickly() {
    let f = files("zero");
    let cfg = config(&f.dir, Path::new("/dev/zero"), &f.key, "");
    let (code, err, took) = refused_at_startup(&cfg);
    assert_eq!(code, Some(1), "{err}");
    assert!(
        err.contains("tls.cert: /dev/zero: is a character device, not a regular file"),
        "{err}"
    );
    assert!(took < Duration::from_secs(5), "took {took:?}");
}

#[test]
fn fifo_as_key_is_refused_without_blocking() {
    let f = files("fifo");
    let fifo = f.dir.join("key.fifo");
    let ok = Command::new("mkfifo")
        .arg(&fifo)
        .status()
        .unwrap()
        .success();
    assert!(ok, "mkfifo");
    let cfg = config(&f.dir, &f.cert, &fifo, "");
    let (code, err, _) = refused_at_startup(&cfg);
    assert_eq!(code, Some(1), "{err}");
    assert!(
        err.contains(&format!(
            "tls.key: {}: is a FIFO, not a regular file",
            fifo.display()
        )),
        "{err}"
    );
}

#[test]
fn oversized_client_ca_bundle_is_too_large() {
    let f = files("big");
    let big = f.dir.join("ca.pem");
    std::fs::write(&big, vec![b'A'; 2 << 20]).unwrap();
    let extra = format!("client_auth = \"optional\"\nclient_ca = {big:?}\n");
    let cfg = config(&f.dir, &f.cert, &f.key, &extra);
    let (code, err, _) = refused_at_startup(&cfg);
    assert_eq!(code, Some(1), "{err}");
    assert!(
        err.contains(&format!(
            "tls.client_ca: {}: file is too large (2097152 bytes; the limit is 1048576 bytes)",
            big.display()
        )),
        "{err}"
    );
}

/// The certificate the server at `addr` presents for `localhost`.
fn served_cert(
    addr: std::net::SocketAddr,
    trusted: &CertificateDer<'static>,
) -> CertificateDer<'static> {
    let mut roots = RootCertStore::empty();
    roots.add(trusted.clone()).unwrap();
    let cfg = ClientConfig::builder()
        .with_root_certificates(roots)
        .with_no_client_auth();
    let mut conn =
        ClientConnection::new(Arc::new(cfg), ServerName::try_from("localhost").unwrap()).unwrap();
    let mut tcp = TcpStream::connect(addr).unwrap();
    tcp.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    while conn.is_handshaking() {
        conn.complete_io(&mut tcp).unwrap();
    }
    conn.peer_certificates().unwrap()[0].clone()
}

/// Waits up to 10 s for `needle` on the server's stderr.
fn wait_for_log(s: &Server, needle: &str) -> String {
    let t = Instant::now();
    loop {
        let text = s.stderr_text();
        if text.contains(needle) || t.elapsed() > Duration::from_secs(10) {
            return text;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn reload_from_dev_zero_keeps_the_old_certificate_and_signals_work() {
    let f = files("reload");
    let cfg = config(&f.dir, &f.cert, &f.key, "");
    let mut s = Server::start(&["--config", cfg.to_str().unwrap()]);
    let addr = s.tls.expect("https listener");
    assert_eq!(served_cert(addr, &f.der), f.der);

    std::fs::remove_file(&f.cert).unwrap();
    std::os::unix::fs::symlink("/dev/zero", &f.cert).unwrap();
    s.signal("HUP");
    let want = format!(
        "tls.cert: {}: is a character device, not a regular file",
        f.cert.display()
    );
    let log = wait_for_log(&s, &want);
    assert!(log.contains(&want), "{log}");
    assert!(
        log.contains("reload failed, keeping generation 1: "),
        "{log}"
    );
    assert_eq!(log.matches("reload failed").count(), 1, "{log}");
    // Still serving, with the certificate it had.
    assert_eq!(served_cert(addr, &f.der), f.der);

    let t = Instant::now();
    s.signal("TERM");
    assert_eq!(
        s.wait_exit(Duration::from_secs(5)),
        Some(0),
        "{}",
        s.stderr_text()
    );
    assert!(t.elapsed() < Duration::from_secs(5));
}

#[test]
fn version_1_certificate_is_named_as_such() {
    // Made with `openssl x509 -req -signkey` (no extensions, so version 1),
    // valid until 2126; the key is this fixture's own and protects nothing.
    let fixtures = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures");
    let cert = fixtures.join("v1-cert.pem");
    let dir = tempdir("v1");
    let cfg = config(&dir, &cert, &fixtures.join("v1-key.pem"), "");
    let (code, err, _) = refused_at_startup(&cfg);
    assert_eq!(code, Some(1), "{err}");
    assert!(
        err.contains(&format!(
            "tls.cert: {}: the certificate is X.509 version 1; TLS needs version 3",
            cert.display()
        )),
        "{err}"
    );
    assert!(!err.contains("does not belong"), "{err}");
}

#[test]
fn truncated_certificate_is_named_as_such() {
    let f = files("trunc");
    let pem = std::fs::read(&f.cert).unwrap();
    std::fs::write(&f.cert, &pem[..pem.len() / 2]).unwrap();
    let cfg = config(&f.dir, &f.cert, &f.key, "");
    let (code, err, _) = refused_at_startup(&cfg);
    assert_eq!(code, Some(1), "{err}");
    assert!(
        err.contains(&format!(
            "tls.cert: {}: PEM block 1 is truncated: it has no \"-----END CERTIFICATE-----\" line",
            f.cert.display()
        )),
        "{err}"
    );
    // No bytes printed as a list of numbers.
    assert!(!err.contains("[67, "), "{err}");
}
