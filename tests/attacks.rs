//! Attacks, run for real against one server: trickled TLS handshakes and
//! requests (HTTPS slowloris), a silent client after the handshake, a slow
//! uploader and a slow reader (minimum data rates). Each must be cut near its
//! limit while a normal client is served meanwhile.

mod common;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::sync::Arc;
use std::time::{Duration, Instant};

use common::{Server, get, read_response, tempdir, write_random};
use rustls::pki_types::ServerName;
use rustls::{ClientConfig, ClientConnection, RootCertStore};

struct Setup {
    server: Server,
    client: Arc<ClientConfig>,
}

/// One server: HTTPS with a self-signed certificate, a 2 s headers timeout,
/// minimum data rates of 240 B/s with 1 s windows, and an 8 MiB file.
fn setup() -> Setup {
    let dir = tempdir("attacks");
    let ck = rcgen::generate_simple_self_signed(vec!["localhost".into()]).unwrap();
    std::fs::write(dir.join("cert.pem"), ck.cert.pem()).unwrap();
    std::fs::write(dir.join("key.pem"), ck.signing_key.serialize_pem()).unwrap();
    let root = dir.join("root");
    std::fs::create_dir(&root).unwrap();
    write_random(&root.join("big.bin"), 8 << 20);
    let cfg = format!(
        "builtins = true\nworkers = 1\nroot = {root:?}\n\
         [access_log]\nenabled = false\n\
         [timeouts]\nrequest_headers_timeout = \"2s\"\n\
         [limits]\nmin_request_body_data_rate = {{ bytes_per_second = 240, grace = \"1s\" }}\n\
         min_response_data_rate = {{ bytes_per_second = 240, grace = \"1s\" }}\n\
         [tls]\nlisten = \"127.0.0.1:0\"\ncert = {:?}\nkey = {:?}\n",
        dir.join("cert.pem"),
        dir.join("key.pem"),
    );
    let server = Server::with_config(&cfg, &[]);
    let mut roots = RootCertStore::empty();
    roots.add(ck.cert.der().clone()).unwrap();
    let client = Arc::new(
        ClientConfig::builder()
            .with_root_certificates(roots)
            .with_no_client_auth(),
    );
    Setup { server, client }
}

/// Seconds from `t0` until the server closes `s` (EOF or reset), reading
/// and dropping whatever arrives; `None` if still open after `limit`.
fn cut_after(s: &mut TcpStream, t0: Instant, limit: Duration) -> Option<f64> {
    let mut buf = [0u8; 65536];
    loop {
        let left = limit.checked_sub(t0.elapsed())?;
        s.set_read_timeout(Some(left.max(Duration::from_millis(1))))
            .unwrap();
        match s.read(&mut buf) {
            Ok(0) => return Some(t0.elapsed().as_secs_f64()),
            Ok(_) => {}
            Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset => {
                return Some(t0.elapsed().as_secs_f64());
            }
            Err(_) => return None,
        }
    }
}

/// Sends `bytes` one at a time, `every` apart, until the server closes.
fn trickle(s: &mut TcpStream, bytes: &[u8], every: Duration) {
    for b in bytes {
        if s.write_all(std::slice::from_ref(b)).is_err() {
            return;
        }
        std::thread::sleep(every);
    }
}

/// A connection with its TLS handshake done, and when it was opened.
fn handshaken(s: &Setup) -> (TcpStream, ClientConnection, Instant) {
    let mut tcp = TcpStream::connect(tls_addr(s)).unwrap();
    let t0 = Instant::now();
    let mut c = ClientConnection::new(s.client.clone(), ServerName::try_from("localhost").unwrap())
        .unwrap();
    while c.is_handshaking() {
        c.complete_io(&mut tcp).unwrap();
    }
    (tcp, c, t0)
}

fn tls_addr(s: &Setup) -> std::net::SocketAddr {
    s.server.tls.expect("tls listener")
}

#[test]
fn https_slowloris_handshake_and_request_are_cut_at_the_headers_timeout() {
    let s = setup();
    let addr = tls_addr(&s);
    // 1. A ClientHello, one byte every 300 ms.
    let mut hello = Vec::new();
    let mut c = ClientConnection::new(s.client.clone(), ServerName::try_from("localhost").unwrap())
        .unwrap();
    while c.wants_write() {
        c.write_tls(&mut hello).unwrap();
    }
    let mut tcp = TcpStream::connect(addr).unwrap();
    let t0 = Instant::now();
    let mut w = tcp.try_clone().unwrap();
    let hello2 = hello.clone();
    let writer = std::thread::spawn(move || trickle(&mut w, &hello2, Duration::from_millis(300)));
    let cut = cut_after(&mut tcp, t0, Duration::from_secs(10));
    writer.join().unwrap();
    let cut = cut.expect("a trickled ClientHello is never cut");
    assert!((1.8..4.0).contains(&cut), "cut after {cut:.2} s");

    // 2. A full handshake, then the request's ciphertext one byte at a time.
    let (mut tcp, mut c, t0) = handshaken(&s);
    c.writer()
        .write_all(b"GET /plaintext HTTP/1.1\r\nHost: localhost\r\n\r\n")
        .unwrap();
    let mut record = Vec::new();
    while c.wants_write() {
        c.write_tls(&mut record).unwrap();
    }
    let mut w = tcp.try_clone().unwrap();
    let writer = std::thread::spawn(move || trickle(&mut w, &record, Duration::from_millis(300)));
    let cut = cut_after(&mut tcp, t0, Duration::from_secs(10));
    writer.join().unwrap();
    let cut = cut.expect("a trickled request record is never cut");
    assert!((1.8..4.0).contains(&cut), "cut after {cut:.2} s");

    // 3. A handshake, then silence: the headers timeout, not keep-alive's.
    let (mut tcp, _c, t0) = handshaken(&s);
    let cut = cut_after(&mut tcp, t0, Duration::from_secs(10)).expect("never cut");
    assert!((1.8..4.0).contains(&cut), "cut after {cut:.2} s");

    // Normal clients were served all along.
    assert_eq!(get(&s.server, "/plaintext").status, 200);
}

#[test]
fn slow_upload_and_slow_reader_are_cut_by_the_minimum_rates() {
    let s = setup();
    // A body at about 100 B/s, under the 240 B/s minimum.
    let mut up = s.server.connect();
    up.write_all(b"POST /echo HTTP/1.1\r\nHost: t\r\nContent-Length: 100000\r\n\r\n")
        .unwrap();
    let t0 = Instant::now();
    let mut w = up.try_clone().unwrap();
    let writer = std::thread::spawn(move || {
        for _ in 0..100 {
            if w.write_all(&[b'a'; 20]).is_err() {
                return;
            }
            std::thread::sleep(Duration::from_millis(200));
        }
    });
    let cut = cut_after(&mut up, t0, Duration::from_secs(10));
    writer.join().unwrap();
    let cut = cut.expect("a slow upload is never cut");
    assert!(cut < 4.0, "cut after {cut:.2} s");

    // A normal upload keeps going meanwhile and is echoed whole.
    let r = common::exchange(
        &s.server,
        b"POST /echo HTTP/1.1\r\nHost: t\r\nContent-Length: 5\r\nConnection: close\r\n\r\nhello",
    );
    assert_eq!(r.text(), "hello");

    // A client that asks for 8 MiB and reads nothing.
    let mut down = s.server.connect();
    down.write_all(b"GET /big.bin HTTP/1.1\r\nHost: t\r\n\r\n")
        .unwrap();
    let t0 = Instant::now();
    std::thread::sleep(Duration::from_secs(4));
    // By now the server has given up: what arrives ends short of 8 MiB.
    let mut got = 0usize;
    let mut buf = vec![0u8; 1 << 16];
    down.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    loop {
        match down.read(&mut buf) {
            Ok(0) | Err(_) => break,
            Ok(n) => got += n,
        }
    }
    assert!(
        got < 8 << 20,
        "all {got} bytes arrived: the slow reader was not cut"
    );
    assert!(t0.elapsed() < Duration::from_secs(9));
    // A reader at full speed gets the whole file.
    let mut c = s.server.connect();
    c.write_all(b"GET /big.bin HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n")
        .unwrap();
    let r = read_response(&mut c, false).unwrap();
    assert_eq!(r.body.len(), 8 << 20);
}
