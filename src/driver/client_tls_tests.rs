//! The client driver over its TLS transport, against an in-memory rustls
//! server, in simulated time: the handshake inside the connect, requests
//! sealed and responses opened, sends that go out in pieces, and the ways
//! a handshake fails.

use std::io::{Read, Write};
use std::sync::Arc;
use std::time::Duration;

use rustls::ServerConnection;
use rustls::pki_types::{PrivateKeyDer, ServerName};

use super::*;
use crate::driver::{ClientEvent, ClientSettings, Request};
use crate::metrics::CloseReason;
use crate::tls::Connector;

const GET: &[u8] = b"GET / HTTP/1.1\r\nHost: app.test\r\n\r\n";

/// A server for `localhost`, and a client configuration that trusts it.
fn configs() -> (Arc<rustls::ServerConfig>, Arc<rustls::ClientConfig>) {
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let ck = rcgen::generate_simple_self_signed(vec!["localhost".into()]).unwrap();
    let cert = ck.cert.der().clone();
    let key = PrivateKeyDer::try_from(ck.signing_key.serialize_der()).unwrap();
    let mut server = rustls::ServerConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_no_client_auth()
        .with_single_cert(vec![cert.clone()], key)
        .unwrap();
    server.alpn_protocols = vec![b"http/1.1".to_vec()];
    let mut roots = rustls::RootCertStore::empty();
    roots.add(cert).unwrap();
    let mut client = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(roots)
        .with_no_client_auth();
    client.alpn_protocols = vec![b"http/1.1".to_vec()];
    (Arc::new(server), Arc::new(client))
}

/// The executor and the server, in memory.
struct H {
    conn: ClientConn,
    tls: ClientTls,
    server: ServerConnection,
    t0: Instant,
    now: Instant,
    /// The ciphertext send in flight.
    inflight: Option<Vec<u8>>,
    /// Most bytes one send moves.
    send_max: usize,
    connecting: bool,
    closed: Option<CloseReason>,
    events: Vec<ClientEvent>,
    at_server: Vec<u8>,
}

impl H {
    fn new(name: &str) -> H {
        let (server, client) = configs();
        let c = Connector {
            config: client,
            name: ServerName::try_from(name.to_string()).unwrap(),
        };
        let t0 = Instant::now();
        let settings = ClientSettings {
            connect_timeout: Duration::from_secs(1),
            ..ClientSettings::default()
        };
        let addr = crate::upstream::spec::Address::Unix("/run/app.sock".into());
        let mut h = H {
            conn: ClientConn::new(addr, 7, settings, t0),
            tls: ClientTls::new(&c).unwrap(),
            server: ServerConnection::new(server).unwrap(),
            t0,
            now: t0,
            inflight: None,
            send_max: usize::MAX,
            connecting: false,
            closed: None,
            events: Vec::new(),
            at_server: Vec::new(),
        };
        h.pump();
        assert!(h.connecting, "the first action is the connect");
        h
    }

    fn pump(&mut self) {
        while let Some(a) = self.tls.poll_action(&mut self.conn) {
            match a {
                Action::Connect { addr } => {
                    assert_eq!(addr.to_string(), "unix:/run/app.sock");
                    self.connecting = true;
                }
                Action::Send { buf, from } => {
                    assert_eq!(from, 0);
                    assert!(self.inflight.is_none(), "a second send in flight");
                    self.inflight = Some(buf);
                }
                Action::Close { why, .. } => self.closed = Some(why),
                a => panic!("unexpected {a:?}"),
            }
        }
        while let Some(e) = self.conn.poll_event() {
            self.events.push(e);
        }
    }

    fn connected(&mut self) {
        self.connecting = false;
        self.tls.on_connected(&mut self.conn, Ok(()));
        self.pump();
    }

    /// Completes the send in flight (at most `send_max` bytes of it), the
    /// server reading what it moved. False when none was in flight.
    fn complete_send(&mut self) -> bool {
        let Some(buf) = self.inflight.take() else {
            return false;
        };
        let n = buf.len().min(self.send_max);
        let mut rd = &buf[..n];
        while !rd.is_empty() {
            self.server.read_tls(&mut rd).unwrap();
            // An error queues an alert, sent below.
            let _ = self.server.process_new_packets();
        }
        let mut tmp = vec![0u8; 64 * 1024];
        while let Ok(k) = self.server.reader().read(&mut tmp) {
            if k == 0 {
                break;
            }
            self.at_server.extend_from_slice(&tmp[..k]);
        }
        self.tls.on_sent(&mut self.conn, buf, n, self.now);
        self.pump();
        true
    }

    /// What the server has to say goes to the client.
    fn server_speaks(&mut self) -> bool {
        let mut out = Vec::new();
        while self.server.wants_write() {
            self.server.write_tls(&mut out).unwrap();
        }
        if out.is_empty() {
            return false;
        }
        self.tls.on_recv(&mut self.conn, &out, self.now);
        self.pump();
        true
    }

    /// Runs both sides until neither moves.
    fn settle(&mut self) {
        for _ in 0..1000 {
            let sent = self.complete_send();
            let spoke = self.server_speaks();
            if !sent && !spoke {
                return;
            }
        }
        panic!("no end to it");
    }

    fn closed_with(&self) -> Option<(ClientEnd, u64)> {
        self.events.iter().find_map(|e| match e {
            ClientEvent::Closed { why, lost } => Some((*why, *lost)),
            _ => None,
        })
    }
}

#[test]
fn connected_only_once_the_handshake_is_done() {
    let mut h = H::new("localhost");
    // Queued before the connect: it waits for the handshake.
    assert!(h.conn.request(
        GET,
        Request {
            tag: 1,
            head: false,
            upgrade: false,
            connect: false
        },
        h.now
    ));
    h.pump();
    assert!(h.inflight.is_none(), "nothing goes before the connect");
    h.connected();
    assert!(h.inflight.is_some(), "the ClientHello goes at once");
    assert!(h.tls.wants_recv(&h.conn), "the handshake reads");
    assert!(h.events.is_empty(), "{:?}", h.events);
    assert!(
        h.conn
            .deadline()
            .is_some_and(|d| d == h.t0 + Duration::from_secs(1))
    );
    h.settle();
    assert!(!h.tls.is_handshaking());
    assert_eq!(h.events.first(), Some(&ClientEvent::Connected));
    assert_eq!(
        h.at_server, GET,
        "the request went sealed, after the handshake"
    );
    assert_eq!(h.conn.unsent(), 0);

    h.server
        .writer()
        .write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhello")
        .unwrap();
    h.settle();
    let r = h.events.iter().find_map(|e| match e {
        ClientEvent::Response(r) => Some(*r),
        _ => None,
    });
    let r = r.expect("a response");
    assert_eq!((r.tag, r.status, r.body_len), (1, 200, 5));

    // close_notify from the server reads as its end.
    h.server.send_close_notify();
    h.server_speaks();
    assert_eq!(h.closed_with(), Some((ClientEnd::PeerClosed, 0)));
}

#[test]
fn a_request_is_sent_until_its_ciphertext_has_gone() {
    let mut h = H::new("localhost");
    h.connected();
    h.settle();
    assert_eq!(h.events, [ClientEvent::Connected]);
    let body = vec![b'x'; 100_000];
    let head = format!(
        "POST /echo HTTP/1.1\r\nHost: a\r\nContent-Length: {}\r\n\r\n",
        body.len()
    );
    assert!(h.conn.request(
        head.as_bytes(),
        Request {
            tag: 2,
            head: false,
            upgrade: false,
            connect: false
        },
        h.now
    ));
    assert!(h.conn.send_more(&body, h.now));
    h.pump();
    let total = head.len() + body.len();
    h.send_max = 1000;
    let mut sends = 0;
    while h.at_server.len() < total {
        assert!(h.conn.unsent() > 0, "unsent drops only when all has gone");
        assert!(h.complete_send(), "sends go on");
        sends += 1;
    }
    h.settle();
    assert!(sends > 100, "{sends}");
    assert_eq!(h.conn.unsent(), 0);
    assert_eq!(&h.at_server[..head.len()], head.as_bytes());
    assert_eq!(h.at_server.len(), total);
}

#[test]
fn a_certificate_for_another_name_fails_the_connect() {
    let mut h = H::new("other.test");
    assert!(h.conn.request(
        GET,
        Request {
            tag: 1,
            head: false,
            upgrade: false,
            connect: false
        },
        h.now
    ));
    h.connected();
    h.settle();
    assert_eq!(
        h.closed_with(),
        Some((ClientEnd::Tls(TlsFailure::NameMismatch), 1))
    );
    assert_eq!(h.closed, Some(CloseReason::Error));
    assert!(h.at_server.is_empty());
    assert!(!h.events.contains(&ClientEvent::Connected));
    assert_eq!(
        ClientEnd::Tls(TlsFailure::NameMismatch).to_string(),
        "TLS handshake failed: the certificate is not valid for the server name"
    );
}

#[test]
fn a_close_or_a_stall_during_the_handshake_fails_the_connect() {
    let mut h = H::new("localhost");
    h.connected();
    h.complete_send();
    h.tls.on_eof(&mut h.conn, false, h.now);
    h.pump();
    assert_eq!(
        h.closed_with(),
        Some((ClientEnd::Tls(TlsFailure::Closed), 0))
    );

    // A server that never answers: the connect timeout covers the handshake.
    let mut h = H::new("localhost");
    h.connected();
    h.complete_send();
    h.now = h.t0 + Duration::from_millis(1001);
    h.conn.on_timer(h.now);
    h.pump();
    assert_eq!(h.closed_with(), Some((ClientEnd::ConnectTimeout, 0)));

    // A refused connect is reported as it is.
    let mut h = H::new("localhost");
    h.tls.on_connected(&mut h.conn, Err(libc::ECONNREFUSED));
    h.pump();
    assert_eq!(
        h.closed_with(),
        Some((ClientEnd::ConnectFailed(libc::ECONNREFUSED), 0))
    );
}

#[test]
fn garbage_from_the_server_is_a_protocol_failure() {
    let mut h = H::new("localhost");
    h.connected();
    h.complete_send();
    h.tls
        .on_recv(&mut h.conn, b"HTTP/1.1 400 Bad Request\r\n\r\n", h.now);
    h.pump();
    assert_eq!(
        h.closed_with(),
        Some((ClientEnd::Tls(TlsFailure::Protocol), 0))
    );
}

#[test]
fn a_failed_handshake_is_a_connect_error_for_the_proxy() {
    use crate::upstream::Failure;
    let f = Failure::Tls(TlsFailure::UnknownIssuer);
    assert_eq!((f.status(), f.name()), (502, "connect_error"));
    assert_eq!(
        f.to_string(),
        "cannot connect to the upstream server: TLS handshake failed: the certificate is not signed by a trusted CA"
    );
    assert!(!f.is_timeout());
}
