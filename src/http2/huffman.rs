//! HPACK Huffman decoding (RFC 7541 §5.2, Appendix B) four bits at a time,
//! through a state table built once from the code (the code table itself
//! comes from `httlib-huffman`). A state is a node of the code tree; each
//! entry says where a nibble leads, whether it completes a symbol, and
//! whether the bits since the last symbol are a valid end (fewer than eight
//! ones, the start of EOS).

use std::sync::OnceLock;

/// One transition: `next | EMIT | ACCEPT | FAIL`, symbol in bits 16..24.
type Entry = u32;
const EMIT: u32 = 1 << 8;
const ACCEPT: u32 = 1 << 9;
const FAIL: u32 = 1 << 10;

struct Table {
    /// `[state * 16 + nibble]`.
    next: Vec<Entry>,
    /// Whether ending in a state is a valid end of string.
    accept: Vec<bool>,
}

fn table() -> &'static Table {
    static T: OnceLock<Table> = OnceLock::new();
    T.get_or_init(build)
}

/// The code tree: internal nodes as `[child0, child1]`, where a child is
/// a node (`< 0x1000`) or a leaf (`0x1000 | symbol`).
fn tree() -> Vec<[u16; 2]> {
    const LEAF: u16 = 0x1000;
    let mut nodes: Vec<[u16; 2]> = vec![[0, 0]];
    for (sym, &(len, code)) in httlib_huffman::encoder::table::ENCODE_TABLE
        .iter()
        .enumerate()
    {
        let mut n = 0usize;
        for i in (0..len).rev() {
            let bit = ((code >> i) & 1) as usize;
            if i == 0 {
                nodes[n][bit] = LEAF | sym as u16;
            } else {
                if nodes[n][bit] == 0 {
                    nodes.push([0, 0]);
                    nodes[n][bit] = (nodes.len() - 1) as u16;
                }
                n = usize::from(nodes[n][bit]);
            }
        }
    }
    nodes
}

fn build() -> Table {
    let nodes = tree();
    // The nodes reached from the root by 1 to 7 one-bits (and the root).
    let mut ones = vec![false; nodes.len()];
    ones[0] = true;
    let mut n = 0usize;
    for _ in 0..7 {
        let c = nodes[n][1];
        if c & 0x1000 != 0 {
            break;
        }
        n = usize::from(c);
        ones[n] = true;
    }
    let mut next = vec![0; nodes.len() * 16];
    for state in 0..nodes.len() {
        for nibble in 0..16u32 {
            let mut n = state;
            let mut e: Entry = 0;
            let mut fail = false;
            for i in (0..4).rev() {
                let c = nodes[n][((nibble >> i) & 1) as usize];
                if c & 0x1000 != 0 {
                    let sym = u32::from(c & 0xfff);
                    // EOS inside a string is an error (§5.2).
                    if sym == 256 || e & EMIT != 0 {
                        fail = true;
                        break;
                    }
                    e |= EMIT | sym << 16;
                    n = 0;
                } else {
                    n = usize::from(c);
                }
            }
            e |= n as u32;
            if ones[n] {
                e |= ACCEPT;
            }
            if fail {
                e = FAIL;
            }
            next[state * 16 + nibble as usize] = e;
        }
    }
    Table { next, accept: ones }
}

/// Decodes `src`, appending to `dst`. `Err` for EOS in the string, or
/// padding that is longer than seven bits or not all ones.
pub fn decode(src: &[u8], dst: &mut Vec<u8>) -> Result<(), ()> {
    let t = table();
    let mut state = 0usize;
    for &b in src {
        for nibble in [b >> 4, b & 15] {
            let e = t.next[state * 16 + usize::from(nibble)];
            if e & FAIL != 0 {
                return Err(());
            }
            if e & EMIT != 0 {
                dst.push((e >> 16) as u8);
            }
            state = (e & 0xff) as usize;
        }
    }
    if t.accept[state] { Ok(()) } else { Err(()) }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc_7541_strings() {
        let mut out = Vec::new();
        decode(
            &[
                0xf1, 0xe3, 0xc2, 0xe5, 0xf2, 0x3a, 0x6b, 0xa0, 0xab, 0x90, 0xf4, 0xff,
            ],
            &mut out,
        )
        .unwrap();
        assert_eq!(out, b"www.example.com");
        out.clear();
        decode(&[0xa8, 0xeb, 0x10, 0x64, 0x9c, 0xbf], &mut out).unwrap();
        assert_eq!(out, b"no-cache");
    }

    #[test]
    fn every_symbol_round_trips_and_bad_padding_fails() {
        let table = &httlib_huffman::encoder::table::ENCODE_TABLE;
        for (sym, &(len, code)) in table.iter().enumerate().take(256) {
            // The symbol's code, then ones up to the byte boundary.
            let bits = len as usize;
            let pad = (8 - bits % 8) % 8;
            let v: u64 = (u64::from(code) << pad) | ((1 << pad) - 1);
            let bytes = (bits + pad) / 8;
            let src: Vec<u8> = (0..bytes).rev().map(|i| (v >> (8 * i)) as u8).collect();
            let mut out = Vec::new();
            decode(&src, &mut out).unwrap();
            assert_eq!(out, [sym as u8]);
            if pad > 0 {
                // The same with a zero in the padding.
                let mut bad = src.clone();
                *bad.last_mut().unwrap() &= !1;
                assert!(decode(&bad, &mut Vec::new()).is_err(), "{sym}");
            }
        }
        // Eight bits of padding, and EOS itself.
        assert!(decode(&[0x1f, 0xff], &mut Vec::new()).is_err());
        assert!(decode(&[0xff, 0xff, 0xff, 0xff], &mut Vec::new()).is_err());
        assert!(decode(&[], &mut Vec::new()).is_ok());
    }
}
