//! The TLS transport under an outgoing connection: between the socket and
//! the [`ClientConn`] above it, ciphertext from the ring goes through the
//! session and its plaintext to the connection; the requests the connection
//! hands to send are sealed, and sent as ciphertext.
//!
//! The connection sees a connect that lasts until the handshake is done, so
//! its connect timeout covers the handshake, and a handshake that fails
//! ends it as a failed connect ([`ClientEnd::Tls`]). A request buffer it
//! hands out comes back to it only once all of its ciphertext has gone, so
//! [`ClientConn::unsent`] still bounds what waits for a slow upstream.

use std::time::Instant;

use super::action::Action;
use super::client::{ClientConn, ClientEnd};
use crate::tls::{Connector, TlsClient, TlsFailure};

/// A connection's TLS session and its ciphertext on the way out.
#[derive(Debug)]
pub struct ClientTls {
    session: TlsClient,
    /// Ciphertext waiting to be sent (handshake messages, sealed requests).
    wire: Vec<u8>,
    /// A send of ciphertext is in flight.
    sending: bool,
    /// The request buffer the connection handed out, held until the
    /// ciphertext of it has gone.
    held: Option<Vec<u8>>,
    /// The socket is connected: the handshake runs.
    connected: bool,
}

impl ClientTls {
    /// A session for `c`, started once the socket connects.
    pub fn new(c: &Connector) -> Result<ClientTls, rustls::Error> {
        Ok(ClientTls {
            session: TlsClient::new(c)?,
            wire: Vec::new(),
            sending: false,
            held: None,
            connected: false,
        })
    }

    /// Whether the handshake is still to finish.
    pub fn is_handshaking(&self) -> bool {
        self.session.is_handshaking()
    }

    /// The socket's connect completed (`Err`: its errno): the handshake
    /// starts, and the connection hears of it when it is done.
    pub fn on_connected(&mut self, conn: &mut ClientConn, res: Result<(), i32>) {
        match res {
            Err(_) => conn.on_connected(res),
            Ok(()) => {
                self.connected = true;
                self.session.flush(&mut self.wire);
            }
        }
    }

    /// Ciphertext arrived.
    pub fn on_recv(&mut self, conn: &mut ClientConn, data: &[u8], now: Instant) {
        if conn.is_closed() {
            return;
        }
        let mut plain = Vec::new();
        let fed = match self.session.feed(data, &mut plain, &mut self.wire) {
            Ok(f) => f,
            Err(f) => return conn.on_transport_failed(ClientEnd::Tls(f)),
        };
        if fed.handshake_done {
            conn.on_connected(Ok(()));
        }
        if !plain.is_empty() {
            conn.on_recv(&plain, now);
        }
        if fed.closed {
            conn.on_eof(false, now);
        }
    }

    /// The peer shut its side (or reset): during the handshake, a failed
    /// connect.
    pub fn on_eof(&mut self, conn: &mut ClientConn, reset: bool, now: Instant) {
        if self.session.is_handshaking() && !conn.is_closed() {
            return conn.on_transport_failed(ClientEnd::Tls(TlsFailure::Closed));
        }
        conn.on_eof(reset, now);
    }

    /// A send of ciphertext moved `n` bytes of `buf`.
    pub fn on_sent(&mut self, conn: &mut ClientConn, mut buf: Vec<u8>, n: usize, now: Instant) {
        self.sending = false;
        if conn.is_closed() {
            return;
        }
        if n == 0 {
            return conn.on_send_failed(libc::EPIPE);
        }
        if n < buf.len() {
            // The rest goes first, then what was sealed meanwhile.
            buf.drain(..n);
            buf.extend_from_slice(&self.wire);
            self.wire.clear();
            std::mem::swap(&mut self.wire, &mut buf);
        } else if self.wire.is_empty() {
            buf.clear();
            self.wire = buf;
        }
        if self.wire.is_empty()
            && let Some(held) = self.held.take()
        {
            let len = held.len();
            conn.on_sent(held, len, now);
        }
    }

    /// The next thing for the executor to do: the connection's own actions,
    /// its sends sealed and turned into sends of ciphertext.
    pub fn poll_action(&mut self, conn: &mut ClientConn) -> Option<Action> {
        while let Some(a) = conn.poll_action() {
            match a {
                Action::Send { buf, from } => {
                    debug_assert!(self.held.is_none(), "a second request send");
                    self.session.seal(&buf[from..], &mut self.wire);
                    self.held = Some(buf);
                }
                a => return Some(a),
            }
        }
        if self.connected && !self.sending && !self.wire.is_empty() && !conn.is_closed() {
            self.sending = true;
            let buf = std::mem::take(&mut self.wire);
            return Some(Action::Send { buf, from: 0 });
        }
        None
    }

    /// Whether a receive should be armed: always during the handshake.
    pub fn wants_recv(&self, conn: &ClientConn) -> bool {
        if self.connected && self.session.is_handshaking() {
            return !conn.is_closed();
        }
        conn.wants_recv()
    }
}

#[cfg(test)]
#[path = "client_tls_tests.rs"]
mod tests;
