//! Moving bytes through a rustls session, the same for the server and the
//! client side: records in, plaintext out of it, plaintext into it, records
//! out.

use std::io::{Read, Write};

use rustls::ConnectionCommon;

use super::conn::Fed;

/// Feeds ciphertext: plaintext is appended to `plain`, records to send
/// (handshake messages, alerts) to `wire`. On a protocol error the alert is
/// in `wire` and the error is returned.
pub(super) fn feed<D>(
    conn: &mut ConnectionCommon<D>,
    mut cipher: &[u8],
    plain: &mut Vec<u8>,
    wire: &mut Vec<u8>,
) -> Result<Fed, rustls::Error> {
    let mut fed = Fed::default();
    let was_handshaking = conn.is_handshaking();
    while !cipher.is_empty() {
        match conn.read_tls(&mut cipher) {
            Ok(0) => break,
            Ok(_) => {}
            Err(_) => {
                // The plaintext buffer is full: drain it and go on.
                drain(conn, plain, &mut fed);
                if conn.read_tls(&mut cipher).is_err() {
                    break;
                }
            }
        }
        match conn.process_new_packets() {
            Ok(state) => fed.closed |= state.peer_has_closed(),
            Err(e) => {
                flush(conn, wire);
                return Err(e);
            }
        }
        drain(conn, plain, &mut fed);
    }
    fed.handshake_done = was_handshaking && !conn.is_handshaking();
    flush(conn, wire);
    Ok(fed)
}

/// Reads every plaintext byte the session has into `plain`; a clean end
/// (`close_notify`) sets `fed.closed`.
pub(super) fn drain<D>(conn: &mut ConnectionCommon<D>, plain: &mut Vec<u8>, fed: &mut Fed) {
    loop {
        let start = plain.len();
        plain.resize(start + 16 * 1024, 0);
        match conn.reader().read(&mut plain[start..]) {
            Ok(n) => {
                plain.truncate(start + n);
                fed.plaintext += n;
                if n == 0 {
                    fed.closed = true;
                    return;
                }
            }
            Err(_) => {
                plain.truncate(start);
                return;
            }
        }
    }
}

/// The most bytes `plain` bytes take as records: a header, content type
/// and tag (at most 40 bytes) per 16 KiB record.
pub fn sealed_len(plain: usize) -> usize {
    plain + (plain / 16384 + 1) * 40
}

/// Encrypts `plain` and appends the records to `wire` (before the handshake
/// is done they wait in the session and go after it).
pub(super) fn seal<D>(conn: &mut ConnectionCommon<D>, plain: &[u8], wire: &mut Vec<u8>) {
    if !plain.is_empty() {
        // With no buffer limit the writer takes everything.
        let _ = conn.writer().write_all(plain);
        wire.reserve(sealed_len(plain.len()));
    }
    flush(conn, wire);
}

/// Appends what the session has to send to `wire`.
pub(super) fn flush<D>(conn: &mut ConnectionCommon<D>, wire: &mut Vec<u8>) {
    while conn.wants_write() {
        if conn.write_tls(wire).is_err() {
            break;
        }
    }
}
