//! HPACK decoding (RFC 7541): integers, string literals (Huffman-coded ones
//! through [`super::huffman`]), the static table, and a
//! dynamic table bounded by our `SETTINGS_HEADER_TABLE_SIZE`. Every field is
//! handed out as slices; the decoded list is bounded by the caller's limit.

use std::collections::VecDeque;

/// The static table (RFC 7541 Appendix A), index 1 first.
pub(super) static STATIC: [(&[u8], &[u8]); 61] = [
    (b":authority", b""),
    (b":method", b"GET"),
    (b":method", b"POST"),
    (b":path", b"/"),
    (b":path", b"/index.html"),
    (b":scheme", b"http"),
    (b":scheme", b"https"),
    (b":status", b"200"),
    (b":status", b"204"),
    (b":status", b"206"),
    (b":status", b"304"),
    (b":status", b"400"),
    (b":status", b"404"),
    (b":status", b"500"),
    (b"accept-charset", b""),
    (b"accept-encoding", b"gzip, deflate"),
    (b"accept-language", b""),
    (b"accept-ranges", b""),
    (b"accept", b""),
    (b"access-control-allow-origin", b""),
    (b"age", b""),
    (b"allow", b""),
    (b"authorization", b""),
    (b"cache-control", b""),
    (b"content-disposition", b""),
    (b"content-encoding", b""),
    (b"content-language", b""),
    (b"content-length", b""),
    (b"content-location", b""),
    (b"content-range", b""),
    (b"content-type", b""),
    (b"cookie", b""),
    (b"date", b""),
    (b"etag", b""),
    (b"expect", b""),
    (b"expires", b""),
    (b"from", b""),
    (b"host", b""),
    (b"if-match", b""),
    (b"if-modified-since", b""),
    (b"if-none-match", b""),
    (b"if-range", b""),
    (b"if-unmodified-since", b""),
    (b"last-modified", b""),
    (b"link", b""),
    (b"location", b""),
    (b"max-forwards", b""),
    (b"proxy-authenticate", b""),
    (b"proxy-authorization", b""),
    (b"range", b""),
    (b"referer", b""),
    (b"refresh", b""),
    (b"retry-after", b""),
    (b"server", b""),
    (b"set-cookie", b""),
    (b"strict-transport-security", b""),
    (b"transfer-encoding", b""),
    (b"user-agent", b""),
    (b"vary", b""),
    (b"via", b""),
    (b"www-authenticate", b""),
];

/// Dynamic table entries, newest first.
type Table = VecDeque<(Box<[u8]>, Box<[u8]>)>;

/// A header block could not be decoded: the compression context is lost, so
/// the connection ends with `COMPRESSION_ERROR`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct DecodeError;

/// Decodes header blocks, keeping the connection's decoding context.
#[derive(Debug)]
pub struct Decoder {
    /// Newest first.
    table: Table,
    /// Its size as RFC 7541 §4.1 counts it.
    size: usize,
    /// Its current limit (the last size update).
    max: usize,
    /// The most a size update may ask for (our setting).
    allowed: usize,
    /// Huffman-decoded names and values.
    name_buf: Vec<u8>,
    value_buf: Vec<u8>,
}

/// An entry's size (§4.1).
fn entry_size(name: &[u8], value: &[u8]) -> usize {
    name.len() + value.len() + 32
}

/// Reads an integer with an `n`-bit prefix at `b[*pos]` (§5.1).
fn integer(b: &[u8], pos: &mut usize, n: u8) -> Result<usize, DecodeError> {
    let mask = (1usize << n) - 1;
    let first = usize::from(*b.get(*pos).ok_or(DecodeError)?) & mask;
    *pos += 1;
    if first < mask {
        return Ok(first);
    }
    let mut v = mask;
    let mut shift = 0;
    loop {
        let byte = *b.get(*pos).ok_or(DecodeError)?;
        *pos += 1;
        // Past 28 bits no sane header needs: refuse before overflowing.
        if shift > 21 {
            return Err(DecodeError);
        }
        v += usize::from(byte & 0x7f) << shift;
        shift += 7;
        if byte & 0x80 == 0 {
            return Ok(v);
        }
    }
}

/// Reads a string literal (§5.2) into `buf` (Huffman-coded ones decoded).
fn string(b: &[u8], pos: &mut usize, buf: &mut Vec<u8>) -> Result<(), DecodeError> {
    let huffman = b.get(*pos).ok_or(DecodeError)? & 0x80 != 0;
    let len = integer(b, pos, 7)?;
    let end = pos
        .checked_add(len)
        .filter(|e| *e <= b.len())
        .ok_or(DecodeError)?;
    let raw = &b[*pos..end];
    *pos = end;
    buf.clear();
    if huffman {
        super::huffman::decode(raw, buf).map_err(|_| DecodeError)?;
    } else {
        buf.extend_from_slice(raw);
    }
    Ok(())
}

/// Entry `index` of the static table or `table` (index 62 and up).
fn lookup(table: &Table, index: usize) -> Result<(&[u8], &[u8]), DecodeError> {
    match index {
        0 => Err(DecodeError),
        1..=61 => Ok(STATIC[index - 1]),
        _ => table
            .get(index - 62)
            .map(|(n, v)| (&n[..], &v[..]))
            .ok_or(DecodeError),
    }
}

impl Decoder {
    /// A decoder whose dynamic table may grow to `table_size` bytes (what our
    /// `SETTINGS_HEADER_TABLE_SIZE` says).
    pub fn new(table_size: usize) -> Decoder {
        Decoder {
            table: VecDeque::new(),
            size: 0,
            max: table_size,
            allowed: table_size,
            name_buf: Vec::new(),
            value_buf: Vec::new(),
        }
    }

    fn evict_to(&mut self, limit: usize) {
        while self.size > limit {
            let Some((n, v)) = self.table.pop_back() else {
                break;
            };
            self.size -= entry_size(&n, &v);
        }
    }

    fn insert(&mut self, name: Box<[u8]>, value: Box<[u8]>) {
        let s = entry_size(&name, &value);
        // An entry larger than the table empties it (§4.4).
        self.evict_to(self.max.saturating_sub(s));
        if s <= self.max {
            self.size += s;
            self.table.push_front((name, value));
        }
    }

    /// Decodes `block`, handing each field to `f`. Returns the decoded list's
    /// size as RFC 9113 §6.5.2 counts it (name + value + 32 per field), so
    /// the caller can refuse a list larger than it allows; `f` is no longer
    /// called once the size passes `max_list` (a small block that expands
    /// into a huge list costs no copying).
    pub fn decode(
        &mut self,
        block: &[u8],
        max_list: usize,
        mut f: impl FnMut(&[u8], &[u8]),
    ) -> Result<usize, DecodeError> {
        let mut pos = 0;
        let mut size = 0usize;
        let mut fields = 0usize;
        while pos < block.len() {
            let b = block[pos];
            if b & 0x80 != 0 {
                let i = integer(block, &mut pos, 7)?;
                let (n, v) = lookup(&self.table, i)?;
                size = size.saturating_add(entry_size(n, v));
                if size <= max_list {
                    f(n, v);
                }
            } else if b & 0xe0 == 0x20 {
                // A size update, only before the block's first field (§4.2).
                if fields > 0 {
                    return Err(DecodeError);
                }
                let m = integer(block, &mut pos, 5)?;
                if m > self.allowed {
                    return Err(DecodeError);
                }
                self.max = m;
                self.evict_to(m);
                continue;
            } else {
                let (prefix, index) = if b & 0x40 != 0 { (6, true) } else { (4, false) };
                let i = integer(block, &mut pos, prefix)?;
                if i == 0 {
                    string(block, &mut pos, &mut self.name_buf)?;
                } else {
                    let n = lookup(&self.table, i)?.0;
                    self.name_buf.clear();
                    self.name_buf.extend_from_slice(n);
                }
                string(block, &mut pos, &mut self.value_buf)?;
                size = size.saturating_add(entry_size(&self.name_buf, &self.value_buf));
                if size <= max_list {
                    f(&self.name_buf, &self.value_buf);
                }
                if index {
                    let n = Box::<[u8]>::from(&self.name_buf[..]);
                    let v = Box::<[u8]>::from(&self.value_buf[..]);
                    self.insert(n, v);
                }
            }
            fields += 1;
        }
        Ok(size)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hex(s: &str) -> Vec<u8> {
        let s: String = s.split_whitespace().collect();
        (0..s.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
            .collect()
    }

    fn all(d: &mut Decoder, b: &[u8]) -> Result<Vec<(String, String)>, DecodeError> {
        let mut v = Vec::new();
        d.decode(b, usize::MAX, |n, val| {
            v.push((
                String::from_utf8(n.to_vec()).unwrap(),
                String::from_utf8(val.to_vec()).unwrap(),
            ))
        })?;
        Ok(v)
    }

    fn pairs(list: &[(&str, &str)]) -> Vec<(String, String)> {
        list.iter()
            .map(|(n, v)| (n.to_string(), v.to_string()))
            .collect()
    }

    /// RFC 7541 C.3 (literals) and C.4 (the same requests, Huffman-coded).
    #[test]
    fn rfc_7541_request_examples() {
        for blocks in [
            [
                "8286 8441 0f77 7777 2e65 7861 6d70 6c65 2e63 6f6d",
                "8286 84be 5808 6e6f 2d63 6163 6865",
                "8287 85bf 400a 6375 7374 6f6d 2d6b 6579 0c63 7573 746f 6d2d 7661 6c75 65",
            ],
            [
                "8286 8441 8cf1 e3c2 e5f2 3a6b a0ab 90f4 ff",
                "8286 84be 5886 a8eb 1064 9cbf",
                "8287 85bf 4088 25a8 49e9 5ba9 7d7f 8925 a849 e95b b8e8 b4bf",
            ],
        ] {
            let mut d = Decoder::new(4096);
            let first = all(&mut d, &hex(blocks[0])).unwrap();
            let base = [
                (":method", "GET"),
                (":scheme", "http"),
                (":path", "/"),
                (":authority", "www.example.com"),
            ];
            assert_eq!(first, pairs(&base));
            assert_eq!(d.size, 57);
            let mut second = base.to_vec();
            second.push(("cache-control", "no-cache"));
            assert_eq!(all(&mut d, &hex(blocks[1])).unwrap(), pairs(&second));
            assert_eq!(d.size, 110);
            let third = [
                (":method", "GET"),
                (":scheme", "https"),
                (":path", "/index.html"),
                (":authority", "www.example.com"),
                ("custom-key", "custom-value"),
            ];
            assert_eq!(all(&mut d, &hex(blocks[2])).unwrap(), pairs(&third));
            assert_eq!(d.size, 164);
            assert_eq!(d.table.len(), 3);
        }
    }

    #[test]
    fn bad_blocks_are_errors() {
        let mut d = Decoder::new(4096);
        // Index 0, an index past the tables, a truncated string, a size
        // update after a field, one above our setting, an integer too long.
        for b in [
            &[0x80][..],
            &[0xc0][..],
            &[0x0f, 0x2f, 0x05, b'a'][..],
            &[0x82, 0x20][..],
            &[0x3f, 0xe2, 0x1f][..],
            &[0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01][..],
        ] {
            assert_eq!(all(&mut d, b), Err(DecodeError), "{b:x?}");
        }
        // Huffman padding that is not all ones.
        assert_eq!(all(&mut d, &[0x00, 0x81, 0x00, 0x00]), Err(DecodeError));
        // A size update first is fine and empties the table.
        let mut d = Decoder::new(4096);
        all(
            &mut d,
            &hex("4088 25a8 49e9 5ba9 7d7f 8925 a849 e95b b8e8 b4bf"),
        )
        .unwrap();
        assert_eq!(d.table.len(), 1);
        assert_eq!(
            all(&mut d, &[0x20, 0x82]).unwrap(),
            pairs(&[(":method", "GET")])
        );
        assert_eq!(d.table.len(), 0);
    }

    #[test]
    fn the_table_evicts_oldest_first() {
        let mut d = Decoder::new(100);
        // Two 32+1+30 = 63-byte entries do not fit in 100: the first goes.
        let mut b = Vec::new();
        for c in [b'a', b'b'] {
            b.extend_from_slice(&[0x40, 1, c, 30]);
            b.extend_from_slice(&[c; 30]);
        }
        all(&mut d, &b).unwrap();
        assert_eq!(d.table.len(), 1);
        assert_eq!(&*d.table[0].0, b"b");
        assert_eq!(all(&mut d, &[0xbe]).unwrap()[0].0, "b");
        assert_eq!(all(&mut d, &[0xbf]), Err(DecodeError));
    }
}
