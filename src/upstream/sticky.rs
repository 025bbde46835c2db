//! Sticky-session cookie values: the first 16 bytes of
//! HMAC-SHA256(secret, server name), in lowercase hex. A value names a
//! server without giving its address away, and cannot be forged to name
//! one without the secret. The secret is the server process's own, so
//! values last as long as it does (and across reloads).

use std::sync::OnceLock;

use aws_lc_rs::hmac;
use aws_lc_rs::rand::{SecureRandom, SystemRandom};

/// The process's secret, drawn once from the system's random source.
pub fn process_secret() -> &'static [u8; 32] {
    static SECRET: OnceLock<[u8; 32]> = OnceLock::new();
    SECRET.get_or_init(|| {
        let mut s = [0u8; 32];
        SystemRandom::new()
            .fill(&mut s)
            .expect("the system random source works");
        s
    })
}

/// The index of the value in `values` that `given` equals (hex in either
/// case), comparing every one in full so the time taken does not tell how
/// much of a guess was right.
pub fn find(values: &[String], given: &[u8]) -> Option<usize> {
    if given.len() != VALUE_LEN {
        return None;
    }
    let mut found = None;
    for (i, v) in values.iter().enumerate() {
        let diff = v
            .bytes()
            .zip(given)
            .fold(0u8, |acc, (a, b)| acc | (a ^ b.to_ascii_lowercase()));
        if diff == 0 && found.is_none() {
            found = Some(i);
        }
    }
    found
}

/// Bytes of the MAC kept in a value.
const MAC_LEN: usize = 16;
/// Characters of a value.
pub const VALUE_LEN: usize = MAC_LEN * 2;

fn mac(key: &hmac::Key, server_name: &str) -> [u8; MAC_LEN] {
    let tag = hmac::sign(key, server_name.as_bytes());
    let mut out = [0u8; MAC_LEN];
    out.copy_from_slice(&tag.as_ref()[..MAC_LEN]);
    out
}

/// The cookie value that names `server_name` (32 lowercase hex digits).
pub fn cookie_value(secret: &[u8; 32], server_name: &str) -> String {
    let key = hmac::Key::new(hmac::HMAC_SHA256, secret);
    let mut s = String::with_capacity(VALUE_LEN);
    for b in mac(&key, server_name) {
        s.push(char::from(HEX[usize::from(b >> 4)]));
        s.push(char::from(HEX[usize::from(b & 15)]));
    }
    s
}

/// The index in `names` of the server a cookie value names, if any.
/// Hex digits are accepted in either case; the comparison takes the same
/// time wherever the value first differs.
pub fn server_for(secret: &[u8; 32], value: &[u8], names: &[&str]) -> Option<usize> {
    let given = decode(value)?;
    let key = hmac::Key::new(hmac::HMAC_SHA256, secret);
    let mut found = None;
    for (i, name) in names.iter().enumerate() {
        let diff = mac(&key, name)
            .iter()
            .zip(&given)
            .fold(0u8, |acc, (a, b)| acc | (a ^ b));
        if diff == 0 && found.is_none() {
            found = Some(i);
        }
    }
    found
}

const HEX: &[u8; 16] = b"0123456789abcdef";

/// A value's bytes, when it is exactly 32 hex digits.
fn decode(value: &[u8]) -> Option<[u8; MAC_LEN]> {
    if value.len() != VALUE_LEN {
        return None;
    }
    let digit = |c: u8| match c {
        b'0'..=b'9' => Some(c - b'0'),
        b'a'..=b'f' => Some(c - b'a' + 10),
        b'A'..=b'F' => Some(c - b'A' + 10),
        _ => None,
    };
    let mut out = [0u8; MAC_LEN];
    for (o, pair) in out.iter_mut().zip(value.chunks_exact(2)) {
        *o = (digit(pair[0])? << 4) | digit(pair[1])?;
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    const SECRET: [u8; 32] = [7; 32];

    #[test]
    fn values_are_hmac_sha256_truncated_to_16_bytes() {
        // RFC 4231 test case 2 ("Jefe" as the key, padded with zeros to 32
        // bytes, which HMAC does itself): the first 16 bytes of the MAC.
        let mut key = [0u8; 32];
        key[..4].copy_from_slice(b"Jefe");
        assert_eq!(
            cookie_value(&key, "what do ya want for nothing?"),
            "5bdcc146bf60754e6a042426089575c7"
        );
        let v = cookie_value(&SECRET, "app1:9001");
        assert_eq!(v.len(), VALUE_LEN);
        assert!(v.bytes().all(|b| HEX.contains(&b)));
        assert_eq!(v, cookie_value(&SECRET, "app1:9001"), "deterministic");
        assert_ne!(v, cookie_value(&SECRET, "app2:9001"));
        assert_ne!(v, cookie_value(&[8; 32], "app1:9001"), "keyed");
    }

    #[test]
    fn a_value_names_its_server() {
        let names = ["app1:9001", "app2:9001", "app3:9001"];
        for (i, n) in names.iter().enumerate() {
            let v = cookie_value(&SECRET, n);
            assert_eq!(server_for(&SECRET, v.as_bytes(), &names), Some(i));
            let upper = v.to_ascii_uppercase();
            assert_eq!(server_for(&SECRET, upper.as_bytes(), &names), Some(i));
        }
    }

    #[test]
    fn forged_or_malformed_values_name_none() {
        let names = ["app1:9001", "app2:9001"];
        let v = cookie_value(&SECRET, "app1:9001");
        assert_eq!(server_for(&[1; 32], v.as_bytes(), &names), None);
        let mut flipped = v.clone().into_bytes();
        flipped[31] = if flipped[31] == b'0' { b'1' } else { b'0' };
        assert_eq!(server_for(&SECRET, &flipped, &names), None);
        assert_eq!(server_for(&SECRET, &v.as_bytes()[..30], &names), None);
        assert_eq!(server_for(&SECRET, b"", &names), None);
        let mut bad = v.into_bytes();
        bad[0] = b'g';
        assert_eq!(server_for(&SECRET, &bad, &names), None);
        let gone = cookie_value(&SECRET, "app9:9001");
        assert_eq!(server_for(&SECRET, gone.as_bytes(), &names), None);
    }

    #[test]
    fn find_matches_whole_values_in_either_case() {
        let secret = process_secret();
        assert_eq!(secret, process_secret(), "drawn once");
        let values: Vec<String> = ["a:1", "b:2", "c:3"]
            .iter()
            .map(|n| cookie_value(secret, n))
            .collect();
        assert_eq!(find(&values, values[1].as_bytes()), Some(1));
        let upper = values[2].to_ascii_uppercase();
        assert_eq!(find(&values, upper.as_bytes()), Some(2));
        assert_eq!(find(&values, &values[0].as_bytes()[..31]), None);
        let mut wrong = values[0].clone().into_bytes();
        wrong[31] = if wrong[31] == b'0' { b'1' } else { b'0' };
        assert_eq!(find(&values, &wrong), None);
        assert_eq!(find(&values, b"a:1"), None);
    }
}
