//! Header compression (RFC 7541). Decoding is in [`super::hpack_decode`];
//! encoding responses is here: names and
//! common values come from the static table; fields whose values repeat
//! (`server`, `date`, `content-type`) go into the client's dynamic table,
//! mirrored here; everything else is a literal that is not indexed.

pub use super::hpack_decode::{DecodeError, Decoder};

/// Static-table index of a (lowercase) field name (RFC 7541 Appendix A).
fn static_name(name: &[u8]) -> Option<u8> {
    Some(match name {
        b"accept-charset" => 15,
        b"accept-encoding" => 16,
        b"accept-language" => 17,
        b"accept-ranges" => 18,
        b"accept" => 19,
        b"access-control-allow-origin" => 20,
        b"age" => 21,
        b"allow" => 22,
        b"authorization" => 23,
        b"cache-control" => 24,
        b"content-disposition" => 25,
        b"content-encoding" => 26,
        b"content-language" => 27,
        b"content-length" => 28,
        b"content-location" => 29,
        b"content-range" => 30,
        b"content-type" => 31,
        b"cookie" => 32,
        b"date" => 33,
        b"etag" => 34,
        b"expect" => 35,
        b"expires" => 36,
        b"from" => 37,
        b"host" => 38,
        b"if-match" => 39,
        b"if-modified-since" => 40,
        b"if-none-match" => 41,
        b"if-range" => 42,
        b"if-unmodified-since" => 43,
        b"last-modified" => 44,
        b"link" => 45,
        b"location" => 46,
        b"max-forwards" => 47,
        b"proxy-authenticate" => 48,
        b"proxy-authorization" => 49,
        b"range" => 50,
        b"referer" => 51,
        b"refresh" => 52,
        b"retry-after" => 53,
        b"server" => 54,
        b"set-cookie" => 55,
        b"strict-transport-security" => 56,
        b"transfer-encoding" => 57,
        b"user-agent" => 58,
        b"vary" => 59,
        b"via" => 60,
        b"www-authenticate" => 61,
        _ => return None,
    })
}

/// Appends an HPACK integer with an `n`-bit prefix; `first` holds the bits
/// above the prefix (RFC 7541 §5.1).
fn integer(out: &mut Vec<u8>, first: u8, n: u8, mut v: usize) {
    let max = (1usize << n) - 1;
    if v < max {
        out.push(first | v as u8);
        return;
    }
    out.push(first | max as u8);
    v -= max;
    while v >= 128 {
        out.push((v % 128) as u8 | 0x80);
        v /= 128;
    }
    out.push(v as u8);
}

/// Appends a string literal, not Huffman-coded.
fn string(out: &mut Vec<u8>, s: &[u8]) {
    integer(out, 0, 7, s.len());
    out.extend_from_slice(s);
}

/// An indexed name, its newest value and that entry's insertion number.
type Live = (Box<[u8]>, Box<[u8]>, u64);

/// Encodes response header blocks for one connection.
#[derive(Debug, Default)]
pub struct Encoder {
    /// The client's table size changed: a size update opens the next block.
    resize: Option<usize>,
    /// The sizes of what we put in the client's dynamic table, newest
    /// first: mirrored exactly, since the client evicts the same way (RFC
    /// 7541 §4.4).
    sizes: std::collections::VecDeque<usize>,
    /// The newest value of each name we index, with its insertion number
    /// (older values of a name are never referred to again).
    live: Vec<Live>,
    /// Entries inserted and evicted so far.
    inserted: u64,
    evicted: u64,
    /// The table's size (§4.1) and the most we let it hold.
    size: usize,
    max: usize,
    /// Lowercased names, reused.
    scratch: Vec<u8>,
}

impl Encoder {
    /// An encoder for a client whose table holds the default 4,096 bytes.
    pub fn new() -> Encoder {
        Encoder {
            max: 4096,
            ..Encoder::default()
        }
    }

    /// The client said `SETTINGS_HEADER_TABLE_SIZE`.
    pub fn set_table_size(&mut self, size: usize) {
        let size = size.min(4096);
        if size != self.max || self.resize.is_some() {
            // Emptied (by an update to 0) and sized again at the next block.
            self.resize = Some(size);
            self.max = size;
            self.evicted += self.sizes.len() as u64;
            self.sizes.clear();
            self.live.clear();
            self.size = 0;
        }
    }

    /// Starts a block: a pending table size update goes first.
    pub fn begin(&mut self, out: &mut Vec<u8>) {
        if let Some(size) = self.resize.take() {
            integer(out, 0x20, 5, 0);
            if size > 0 {
                integer(out, 0x20, 5, size);
            }
        }
    }

    /// A field whose value repeats across responses (`server`, `date`,
    /// `content-type`, a listener's fields): an index once it is in the
    /// table, else a literal that adds it. `name` is lowercase.
    pub fn indexed(&mut self, out: &mut Vec<u8>, name: &[u8], value: &[u8]) {
        let at = self.live.iter().position(|(n, _, _)| **n == *name);
        if let Some(k) = at {
            let (_, v, seq) = &self.live[k];
            if **v == *value && *seq >= self.evicted {
                integer(out, 0x80, 7, 62 + (self.inserted - 1 - seq) as usize);
                return;
            }
        }
        let s = 32 + name.len() + value.len();
        if s > self.max {
            self.field(out, name, value);
            return;
        }
        match static_name(name) {
            Some(i) => integer(out, 0x40, 6, i as usize),
            None => {
                out.push(0x40);
                string(out, name);
            }
        }
        string(out, value);
        while self.size + s > self.max {
            let Some(old) = self.sizes.pop_back() else {
                break;
            };
            self.size -= old;
            self.evicted += 1;
        }
        self.sizes.push_front(s);
        self.size += s;
        let entry = (name.into(), value.into(), self.inserted);
        self.inserted += 1;
        match at {
            Some(k) => self.live[k] = entry,
            None => self.live.push(entry),
        }
    }

    /// `:status`.
    pub fn status(&mut self, out: &mut Vec<u8>, status: u16) {
        let index = match status {
            200 => 8,
            204 => 9,
            206 => 10,
            304 => 11,
            400 => 12,
            404 => 13,
            500 => 14,
            _ => 0,
        };
        if index > 0 {
            out.push(0x80 | index);
        } else {
            integer(out, 0x00, 4, 8);
            string(out, itoa::Buffer::new().format(status).as_bytes());
        }
    }

    /// Any other field, as a literal not indexed; the name is lowercased.
    pub fn field(&mut self, out: &mut Vec<u8>, name: &[u8], value: &[u8]) {
        let lower: &[u8] = if name.iter().any(u8::is_ascii_uppercase) {
            self.scratch.clear();
            self.scratch.extend(name.iter().map(u8::to_ascii_lowercase));
            &self.scratch
        } else {
            name
        };
        match static_name(lower) {
            Some(i) => integer(out, 0x00, 4, i as usize),
            None => {
                out.push(0x00);
                string(out, lower);
            }
        }
        string(out, value);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn decode_all(d: &mut Decoder, block: &[u8]) -> Vec<(Vec<u8>, Vec<u8>)> {
        let mut v = Vec::new();
        d.decode(block, usize::MAX, |n, val| {
            v.push((n.to_vec(), val.to_vec()))
        })
        .unwrap();
        v
    }

    #[test]
    fn encoded_blocks_decode() {
        let mut e = Encoder::new();
        let mut d = Decoder::new(4096);
        for _ in 0..2 {
            let mut b = Vec::new();
            e.begin(&mut b);
            e.status(&mut b, 200);
            e.indexed(&mut b, b"server", b"peregrine/0.1.0");
            e.field(&mut b, b"Content-Type", b"text/plain");
            e.field(&mut b, b"X-Custom-Header-That-Is-Long", b"v");
            e.status(&mut b, 418);
            let f = decode_all(&mut d, &b);
            assert_eq!(f[0], (b":status".to_vec(), b"200".to_vec()));
            assert_eq!(f[1], (b"server".to_vec(), b"peregrine/0.1.0".to_vec()));
            assert_eq!(f[2], (b"content-type".to_vec(), b"text/plain".to_vec()));
            assert_eq!(
                f[3],
                (b"x-custom-header-that-is-long".to_vec(), b"v".to_vec())
            );
            assert_eq!(f[4], (b":status".to_vec(), b"418".to_vec()));
        }
        // The second block found Server in the dynamic table: one byte.
        let mut b = Vec::new();
        e.indexed(&mut b, b"server", b"peregrine/0.1.0");
        assert_eq!(b, [0x80 | 62]);
    }

    #[test]
    fn table_size_update_opens_the_next_block() {
        let mut e = Encoder::new();
        let mut d = Decoder::new(4096);
        let mut b = Vec::new();
        e.indexed(&mut b, b"server", b"peregrine");
        decode_all(&mut d, &b);
        e.set_table_size(0);
        let mut b = Vec::new();
        e.begin(&mut b);
        e.indexed(&mut b, b"server", b"peregrine");
        assert_eq!(b[0], 0x20);
        let f = decode_all(&mut d, &b);
        assert_eq!(f, vec![(b"server".to_vec(), b"peregrine".to_vec())]);
    }

    #[test]
    fn large_integers_and_list_bound() {
        let mut b = Vec::new();
        integer(&mut b, 0, 5, 1337);
        assert_eq!(b, [31, 154, 10]); // RFC 7541 C.1.2
        let mut e = Encoder::new();
        let mut block = Vec::new();
        for _ in 0..100 {
            e.field(&mut block, b"x-a", &[b'v'; 100]);
        }
        let mut d = Decoder::new(4096);
        let mut seen = 0;
        let size = d.decode(&block, 1000, |_, _| seen += 1).unwrap();
        assert_eq!(size, 100 * (3 + 100 + 32));
        assert_eq!(seen, 7);
        assert_eq!(d.decode(&[0xff, 0xff], 1000, |_, _| {}), Err(DecodeError));
    }

    #[test]
    fn repeated_fields_are_indexed_and_the_table_mirrors_evictions() {
        // A small client table: entries of 32 + 4 + 29 = 65 bytes, two fit.
        let mut e = Encoder::new();
        e.set_table_size(150);
        let mut d = Decoder::new(150);
        for second in 0..5 {
            for _ in 0..3 {
                let date = format!("Sun, 06 Nov 1994 08:49:3{second} GMT");
                let mut b = Vec::new();
                e.begin(&mut b);
                e.indexed(&mut b, b"date", date.as_bytes());
                e.indexed(&mut b, b"content-type", b"text/plain");
                let f = decode_all(&mut d, &b);
                assert_eq!(f[0], (b"date".to_vec(), date.clone().into_bytes()));
                assert_eq!(f[1], (b"content-type".to_vec(), b"text/plain".to_vec()));
            }
            assert!(e.size <= 150);
        }
        // The same pair again is one byte.
        let mut b = Vec::new();
        e.indexed(&mut b, b"content-type", b"text/plain");
        assert_eq!(b.len(), 1);
        // An entry larger than the table is a plain literal.
        let mut b = Vec::new();
        e.indexed(&mut b, b"x-long", &[b'v'; 200]);
        assert_eq!(decode_all(&mut d, &b)[0].1.len(), 200);
    }
}
