//! One TLS session, sans-IO: ciphertext in → plaintext out, plaintext in →
//! ciphertext out. Wraps `rustls::ServerConnection`; no sockets, no clock.

use std::rc::Rc;
use std::sync::Arc;

use rustls::{HandshakeKind, ServerConfig, ServerConnection};

use crate::http::TlsInfo;

/// Why a TLS session ended badly.
#[derive(Debug)]
#[non_exhaustive]
pub enum TlsError {
    /// The first bytes were a plain-text HTTP request, not a TLS record.
    PlainHttp,
    /// The handshake or a record failed; an alert may be queued to send.
    Protocol(rustls::Error),
}

impl std::fmt::Display for TlsError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            TlsError::PlainHttp => f.write_str("plain http request sent to a tls port"),
            TlsError::Protocol(e) => write!(f, "tls error: {e}"),
        }
    }
}

/// What one [`TlsSession::feed`] produced.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Fed {
    /// Plaintext bytes appended.
    pub plaintext: usize,
    /// The peer sent `close_notify`.
    pub closed: bool,
    /// The handshake finished during this call.
    pub handshake_done: bool,
}

/// A server-side TLS session.
pub struct TlsSession {
    conn: ServerConnection,
    started: bool,
    info: Option<Rc<TlsInfo>>,
    /// Plaintext of a file body waiting to be sealed (kept here so its memory
    /// is stable while a ring read fills it).
    pub file_buf: Vec<u8>,
}

impl std::fmt::Debug for TlsSession {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TlsSession")
            .field("handshaking", &self.conn.is_handshaking())
            .finish_non_exhaustive()
    }
}

/// Record type byte of a TLS handshake record.
const HANDSHAKE_RECORD: u8 = 0x16;

impl TlsSession {
    /// A session using `config` (shared by every connection of a worker).
    pub fn new(config: Arc<ServerConfig>) -> Result<TlsSession, rustls::Error> {
        let mut conn = ServerConnection::new(config)?;
        // The caller bounds what it queues (the HTTP layer flushes at 64 KiB and
        // file pieces are bounded), so rustls need not refuse writes.
        conn.set_buffer_limit(None);
        Ok(TlsSession {
            conn,
            started: false,
            info: None,
            file_buf: Vec::new(),
        })
    }

    /// Whether the handshake is still in progress.
    pub fn is_handshaking(&self) -> bool {
        self.conn.is_handshaking()
    }

    /// Session facts for handlers, once the handshake is done.
    pub fn info(&self) -> Option<&Rc<TlsInfo>> {
        self.info.as_ref()
    }

    /// Feeds ciphertext. Plaintext is appended to `plain`; handshake messages
    /// and alerts to send are appended to `wire`. On error, `wire` holds the
    /// alert (if any) to send before closing.
    pub fn feed(
        &mut self,
        cipher: &[u8],
        plain: &mut Vec<u8>,
        wire: &mut Vec<u8>,
    ) -> Result<Fed, TlsError> {
        if !self.started && !cipher.is_empty() {
            self.started = true;
            if cipher[0] != HANDSHAKE_RECORD && cipher[0].is_ascii_uppercase() {
                return Err(TlsError::PlainHttp);
            }
        }
        let fed = super::records::feed(&mut self.conn, cipher, plain, wire)
            .map_err(TlsError::Protocol)?;
        if fed.handshake_done {
            self.info = Some(Rc::new(self.describe()));
        }
        Ok(fed)
    }

    /// Encrypts `plain` and appends the records to `wire`.
    pub fn seal(&mut self, plain: &[u8], wire: &mut Vec<u8>) {
        super::records::seal(&mut self.conn, plain, wire);
    }

    /// Queues `close_notify` and appends it to `wire`.
    pub fn close(&mut self, wire: &mut Vec<u8>) {
        self.conn.send_close_notify();
        self.flush(wire);
    }

    fn flush(&mut self, wire: &mut Vec<u8>) {
        super::records::flush(&mut self.conn, wire);
    }

    fn describe(&self) -> TlsInfo {
        let version = match self.conn.protocol_version() {
            Some(rustls::ProtocolVersion::TLSv1_3) => "TLSv1.3",
            Some(rustls::ProtocolVersion::TLSv1_2) => "TLSv1.2",
            _ => "unknown",
        };
        let cipher = self
            .conn
            .negotiated_cipher_suite()
            .and_then(|s| s.suite().as_str())
            .unwrap_or("unknown");
        TlsInfo {
            version,
            cipher,
            server_name: self.conn.server_name().map(str::to_string),
            alpn: self
                .conn
                .alpn_protocol()
                .map(|p| String::from_utf8_lossy(p).into_owned()),
            client_subject: self
                .conn
                .peer_certificates()
                .and_then(|c| c.first())
                .and_then(|der| super::subject_of(der.as_ref())),
            resumed: self.conn.handshake_kind() == Some(HandshakeKind::Resumed),
        }
    }
}
