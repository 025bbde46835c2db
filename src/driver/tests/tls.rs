//! The TLS transport against a real rustls client, in memory.

use super::*;

fn tls_pair() -> (Arc<rustls::ServerConfig>, rustls::ClientConnection) {
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let ck = rcgen::generate_simple_self_signed(vec!["localhost".into()]).unwrap();
    let cert = ck.cert.der().clone();
    let key = rustls::pki_types::PrivateKeyDer::try_from(ck.signing_key.serialize_der()).unwrap();
    let server = rustls::ServerConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_no_client_auth()
        .with_single_cert(vec![cert.clone()], key)
        .unwrap();
    let mut roots = rustls::RootCertStore::empty();
    roots.add(cert).unwrap();
    let client = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(roots)
        .with_no_client_auth();
    let conn =
        rustls::ClientConnection::new(Arc::new(client), "localhost".try_into().unwrap()).unwrap();
    (Arc::new(server), conn)
}

/// Moves bytes both ways until neither side has more to say.
fn shuttle(h: &mut Harness, client: &mut rustls::ClientConnection, plain: &mut Vec<u8>) {
    for _ in 0..20 {
        let mut out = Vec::new();
        while client.wants_write() {
            client.write_tls(&mut out).unwrap();
        }
        if !out.is_empty() {
            h.recv(&out);
        }
        let from = std::mem::take(&mut h.wire);
        if out.is_empty() && from.is_empty() {
            return;
        }
        let mut rd = &from[..];
        while !rd.is_empty() {
            client.read_tls(&mut rd).unwrap();
            client.process_new_packets().unwrap();
            // Taken as it comes: the client holds little plaintext.
            let mut buf = [0u8; 4096];
            while let Ok(n) = client.reader().read(&mut buf) {
                if n == 0 {
                    break;
                }
                plain.extend_from_slice(&buf[..n]);
            }
        }
    }
}

#[test]
fn tls_request_after_handshake() {
    let (cfg, mut client) = tls_pair();
    let mut h = Harness::new(Some(TlsSession::new(cfg).unwrap()));
    let mut plain = Vec::new();
    shuttle(&mut h, &mut client, &mut plain);
    assert!(!client.is_handshaking());
    client
        .writer()
        .write_all(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
        .unwrap();
    shuttle(&mut h, &mut client, &mut plain);
    let text = String::from_utf8_lossy(&plain);
    assert!(text.starts_with("HTTP/1.1 200 OK\r\n"), "{text}");
    assert!(text.ends_with("ok"));
    assert_eq!(h.deadline().unwrap().1, Reason::Idle);
}

#[test]
fn tls_silent_after_handshake_gets_the_headers_timeout() {
    // Was: the keep-alive timeout (130 s) after the server's first flight.
    let (cfg, mut client) = tls_pair();
    let mut h = Harness::new(Some(TlsSession::new(cfg).unwrap()));
    assert_eq!(h.conn.state(), State::Handshaking);
    let mut plain = Vec::new();
    shuttle(&mut h, &mut client, &mut plain);
    assert!(!client.is_handshaking());
    assert_eq!(h.conn.state(), State::AwaitingFirst);
    assert_eq!(h.deadline(), Some((5.0, Reason::Headers)));
    h.at(5.0);
    assert!(h.closed.is_some() || h.shut);
}

#[test]
fn tls_trickled_client_hello_is_cut_from_accept() {
    let (cfg, mut client) = tls_pair();
    let mut h = Harness::new(Some(TlsSession::new(cfg).unwrap()));
    let mut hello = Vec::new();
    while client.wants_write() {
        client.write_tls(&mut hello).unwrap();
    }
    for (i, b) in hello.iter().take(4).enumerate() {
        h.now = h.t0 + Duration::from_secs(i as u64);
        h.recv(std::slice::from_ref(b));
        assert_eq!(h.deadline(), Some((5.0, Reason::Headers)));
    }
    h.at(5.0);
    // A handshake that never finished gets no HTTP answer, just the close
    // (a close_notify alert at most).
    assert!(
        h.wire.len() <= 7 && !h.text().contains("HTTP/"),
        "{:?}",
        h.wire
    );
    assert!(h.shut || h.closed.is_some());
}

#[test]
fn tls_handshake_waits_for_budget() {
    let (cfg, mut client) = tls_pair();
    let mut h = Harness::new(Some(TlsSession::new(cfg).unwrap()));
    h.budget = 0;
    let mut hello = Vec::new();
    while client.wants_write() {
        client.write_tls(&mut hello).unwrap();
    }
    h.recv(&hello);
    assert!(h.conn.deferred());
    assert!(h.wire.is_empty());
    h.budget = 1;
    let mut cx = cx!(h);
    h.conn.retry(&mut cx);
    h.pump(false);
    assert!(!h.conn.deferred());
    assert!(!h.wire.is_empty(), "the server's first flight");
}

#[test]
fn tls_large_pieces_are_sealed_in_order() {
    let (cfg, mut client) = tls_pair();
    let mut h = Harness::new(Some(TlsSession::new(cfg).unwrap()));
    let mut plain = Vec::new();
    shuttle(&mut h, &mut client, &mut plain);
    client
        .writer()
        .write_all(b"GET /pieces-chunked HTTP/1.1\r\nHost: x\r\n\r\n")
        .unwrap();
    shuttle(&mut h, &mut client, &mut plain);
    let text = String::from_utf8_lossy(&plain);
    assert!(text.starts_with("HTTP/1.1 200 OK\r\n"), "{text}");
    let body = &plain[plain.windows(4).position(|w| w == b"\r\n\r\n").unwrap() + 4..];
    assert_eq!(body, &super::gather::chunked_pieces()[..]);
    // Sealed into the output: no gather send over TLS.
    assert_eq!(h.gathers, 0);
}
