//! A small HTTP/2 client over a plain `TcpStream`, frames written by hand:
//! what the attack and shutdown tests send is what no real client would.
//! Header blocks are literals without Huffman coding; responses are decoded
//! as the server encodes them (static and dynamic table, literals, no
//! Huffman).

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::{Duration, Instant};

/// The client connection preface.
pub const PREFACE: &[u8] = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";

pub const DATA: u8 = 0x0;
pub const HEADERS: u8 = 0x1;
pub const RST_STREAM: u8 = 0x3;
pub const SETTINGS: u8 = 0x4;
pub const PING: u8 = 0x6;
pub const GOAWAY: u8 = 0x7;
pub const WINDOW_UPDATE: u8 = 0x8;
pub const CONTINUATION: u8 = 0x9;

pub const END_STREAM: u8 = 0x1;
pub const ACK: u8 = 0x1;
pub const END_HEADERS: u8 = 0x4;

pub const NO_ERROR: u32 = 0x0;
pub const CANCEL: u32 = 0x8;
pub const ENHANCE_YOUR_CALM: u32 = 0xb;
pub const HTTP_1_1_REQUIRED: u32 = 0xd;

pub const SETTINGS_INITIAL_WINDOW_SIZE: u16 = 0x4;

/// One frame as received.
#[derive(Clone, Debug)]
pub struct Frame {
    pub kind: u8,
    pub flags: u8,
    pub stream: u32,
    pub payload: Vec<u8>,
}

impl Frame {
    pub fn has(&self, f: u8) -> bool {
        self.flags & f != 0
    }

    fn word(&self, at: usize) -> u32 {
        u32::from_be_bytes(self.payload[at..at + 4].try_into().unwrap())
    }

    /// The error code of a GOAWAY or RST_STREAM.
    pub fn code(&self) -> u32 {
        match self.kind {
            GOAWAY => self.word(4),
            RST_STREAM => self.word(0),
            k => panic!("frame type {k} has no error code"),
        }
    }

    /// The last stream a GOAWAY names.
    pub fn last_stream(&self) -> u32 {
        self.word(0) & 0x7fff_ffff
    }
}

/// A frame: the 9-byte header and `payload`.
pub fn frame(kind: u8, flags: u8, stream: u32, payload: &[u8]) -> Vec<u8> {
    let l = (payload.len() as u32).to_be_bytes();
    let mut out = vec![l[1], l[2], l[3], kind, flags];
    out.extend_from_slice(&stream.to_be_bytes());
    out.extend_from_slice(payload);
    out
}

/// A SETTINGS frame with `pairs`.
pub fn settings(pairs: &[(u16, u32)]) -> Vec<u8> {
    let mut p = Vec::new();
    for (id, v) in pairs {
        p.extend_from_slice(&id.to_be_bytes());
        p.extend_from_slice(&v.to_be_bytes());
    }
    frame(SETTINGS, 0, 0, &p)
}

/// An RST_STREAM with `code`.
pub fn rst_stream(stream: u32, code: u32) -> Vec<u8> {
    frame(RST_STREAM, 0, stream, &code.to_be_bytes())
}

/// A WINDOW_UPDATE of `n` for `stream` (0: the connection).
pub fn window_update(stream: u32, n: u32) -> Vec<u8> {
    frame(WINDOW_UPDATE, 0, stream, &n.to_be_bytes())
}

// ---- HPACK -------------------------------------------------------------------

/// An HPACK integer with an `n`-bit prefix; `first` holds the bits above it.
pub fn int(out: &mut Vec<u8>, first: u8, n: u8, mut v: usize) {
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

/// A string literal, not Huffman-coded.
pub fn string(out: &mut Vec<u8>, s: &[u8]) {
    int(out, 0, 7, s.len());
    out.extend_from_slice(s);
}

/// A literal field without indexing, with a literal name.
pub fn literal(out: &mut Vec<u8>, name: &str, value: &[u8]) {
    out.push(0x00);
    string(out, name.as_bytes());
    string(out, value);
}

/// A literal field with incremental indexing (it enters the dynamic table).
pub fn literal_indexed(out: &mut Vec<u8>, name: &str, value: &[u8]) {
    out.push(0x40);
    string(out, name.as_bytes());
    string(out, value);
}

/// A request's pseudo-header fields, `:scheme` http.
pub fn request(method: &str, path: &str, authority: &str) -> Vec<u8> {
    let mut b = Vec::new();
    literal(&mut b, ":method", method.as_bytes());
    literal(&mut b, ":scheme", b"http");
    literal(&mut b, ":path", path.as_bytes());
    literal(&mut b, ":authority", authority.as_bytes());
    b
}

/// RFC 7541 Appendix A.
const STATIC: [(&str, &str); 61] = [
    (":authority", ""),
    (":method", "GET"),
    (":method", "POST"),
    (":path", "/"),
    (":path", "/index.html"),
    (":scheme", "http"),
    (":scheme", "https"),
    (":status", "200"),
    (":status", "204"),
    (":status", "206"),
    (":status", "304"),
    (":status", "400"),
    (":status", "404"),
    (":status", "500"),
    ("accept-charset", ""),
    ("accept-encoding", "gzip, deflate"),
    ("accept-language", ""),
    ("accept-ranges", ""),
    ("accept", ""),
    ("access-control-allow-origin", ""),
    ("age", ""),
    ("allow", ""),
    ("authorization", ""),
    ("cache-control", ""),
    ("content-disposition", ""),
    ("content-encoding", ""),
    ("content-language", ""),
    ("content-length", ""),
    ("content-location", ""),
    ("content-range", ""),
    ("content-type", ""),
    ("cookie", ""),
    ("date", ""),
    ("etag", ""),
    ("expect", ""),
    ("expires", ""),
    ("from", ""),
    ("host", ""),
    ("if-match", ""),
    ("if-modified-since", ""),
    ("if-none-match", ""),
    ("if-range", ""),
    ("if-unmodified-since", ""),
    ("last-modified", ""),
    ("link", ""),
    ("location", ""),
    ("max-forwards", ""),
    ("proxy-authenticate", ""),
    ("proxy-authorization", ""),
    ("range", ""),
    ("referer", ""),
    ("refresh", ""),
    ("retry-after", ""),
    ("server", ""),
    ("set-cookie", ""),
    ("strict-transport-security", ""),
    ("transfer-encoding", ""),
    ("user-agent", ""),
    ("vary", ""),
    ("via", ""),
    ("www-authenticate", ""),
];

/// Reads an HPACK integer with an `n`-bit prefix at `*at`.
fn read_int(b: &[u8], at: &mut usize, n: u8) -> usize {
    let max = (1usize << n) - 1;
    let mut v = (b[*at] as usize) & max;
    *at += 1;
    if v < max {
        return v;
    }
    let mut shift = 0;
    loop {
        let c = b[*at];
        *at += 1;
        v += ((c & 0x7f) as usize) << shift;
        shift += 7;
        if c & 0x80 == 0 {
            return v;
        }
    }
}

fn read_string(b: &[u8], at: &mut usize) -> String {
    assert_eq!(b[*at] & 0x80, 0, "the server does not Huffman-code");
    let len = read_int(b, at, 7);
    let s = String::from_utf8_lossy(&b[*at..*at + len]).into_owned();
    *at += len;
    s
}

/// A response decoder's dynamic table (newest first).
#[derive(Debug, Default)]
pub struct Table(Vec<(String, String)>);

impl Table {
    fn entry(&self, i: usize) -> (String, String) {
        if i <= 61 {
            let (n, v) = STATIC[i - 1];
            (n.to_string(), v.to_string())
        } else {
            self.0[i - 62].clone()
        }
    }

    /// Decodes a response header block.
    pub fn decode(&mut self, b: &[u8]) -> Vec<(String, String)> {
        let mut at = 0;
        let mut out = Vec::new();
        while at < b.len() {
            let c = b[at];
            if c & 0x80 != 0 {
                out.push(self.entry(read_int(b, &mut at, 7)));
            } else if c & 0xe0 == 0x20 {
                if read_int(b, &mut at, 5) == 0 {
                    self.0.clear();
                }
            } else {
                let indexed = c & 0xc0 == 0x40;
                let i = read_int(b, &mut at, if indexed { 6 } else { 4 });
                let name = if i == 0 {
                    read_string(b, &mut at)
                } else {
                    self.entry(i).0
                };
                let value = read_string(b, &mut at);
                if indexed {
                    self.0.insert(0, (name.clone(), value.clone()));
                }
                out.push((name, value));
            }
        }
        out
    }
}

/// One stream's answer.
#[derive(Debug, Default)]
pub struct Answer {
    pub status: u16,
    pub fields: Vec<(String, String)>,
    pub body: Vec<u8>,
    pub data_frames: usize,
    /// The stream was reset with this code.
    pub reset: Option<u32>,
    /// A GOAWAY seen meanwhile.
    pub goaway: Option<Frame>,
}

impl Answer {
    pub fn field(&self, name: &str) -> Option<&str> {
        self.fields
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }
}

/// A raw HTTP/2 connection.
pub struct Conn {
    pub s: TcpStream,
    rbuf: Vec<u8>,
    pub table: Table,
}

impl Conn {
    /// Connects; nothing is sent.
    pub fn connect(addr: SocketAddr) -> Conn {
        let s = TcpStream::connect(addr).unwrap();
        s.set_nodelay(true).unwrap();
        s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
        Conn {
            s,
            rbuf: Vec::new(),
            table: Table::default(),
        }
    }

    /// Connects and sends the preface and a SETTINGS frame with `pairs`.
    pub fn open(addr: SocketAddr, pairs: &[(u16, u32)]) -> Conn {
        let mut c = Conn::connect(addr);
        let mut hello = PREFACE.to_vec();
        hello.extend_from_slice(&settings(pairs));
        c.write(&hello).unwrap();
        c
    }

    pub fn write(&mut self, b: &[u8]) -> std::io::Result<()> {
        self.s.write_all(b)
    }

    /// The next frame, `Ok(None)` at EOF (or a reset), an error after
    /// `limit` without one.
    pub fn next_within(&mut self, limit: Duration) -> std::io::Result<Option<Frame>> {
        let deadline = Instant::now() + limit;
        loop {
            if self.rbuf.len() >= 9 {
                let len = u32::from_be_bytes([0, self.rbuf[0], self.rbuf[1], self.rbuf[2]]);
                let end = 9 + len as usize;
                if self.rbuf.len() >= end {
                    let b = &self.rbuf;
                    let f = Frame {
                        kind: b[3],
                        flags: b[4],
                        stream: u32::from_be_bytes([b[5], b[6], b[7], b[8]]) & 0x7fff_ffff,
                        payload: b[9..end].to_vec(),
                    };
                    self.rbuf.drain(..end);
                    return Ok(Some(f));
                }
            }
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return Err(std::io::ErrorKind::TimedOut.into());
            }
            self.s.set_read_timeout(Some(left)).unwrap();
            let mut buf = [0u8; 65536];
            match super::read_some(&mut self.s, &mut buf) {
                Ok(0) => return Ok(None),
                Ok(n) => self.rbuf.extend_from_slice(&buf[..n]),
                Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset => return Ok(None),
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {
                    return Err(std::io::ErrorKind::TimedOut.into());
                }
                Err(e) => return Err(e),
            }
        }
    }

    /// Sends a request (HEADERS with `block`, END_STREAM) on `stream`.
    pub fn send_request(&mut self, stream: u32, block: &[u8]) {
        self.write(&frame(HEADERS, END_HEADERS | END_STREAM, stream, block))
            .unwrap();
    }

    /// A GET of `path` on `stream`, and its answer.
    pub fn get(&mut self, stream: u32, path: &str) -> Answer {
        self.send_request(stream, &request("GET", path, "localhost"));
        self.answer(stream)
    }

    /// Reads until `stream` ends (END_STREAM or RST_STREAM), acknowledging
    /// SETTINGS and crediting DATA on the way; panics if the connection ends
    /// first or nothing comes for 10 s.
    pub fn answer(&mut self, stream: u32) -> Answer {
        let mut a = Answer::default();
        loop {
            let f = match self.next_within(Duration::from_secs(10)) {
                Ok(Some(f)) => f,
                Ok(None) => panic!("connection closed before stream {stream} ended: {a:?}"),
                Err(e) => panic!("stream {stream}: {e} ({a:?})"),
            };
            match f.kind {
                SETTINGS if !f.has(ACK) => self.write(&frame(SETTINGS, ACK, 0, &[])).unwrap(),
                GOAWAY => a.goaway = Some(f.clone()),
                _ => {}
            }
            if f.kind == HEADERS {
                assert!(f.has(END_HEADERS), "the server sends blocks in one frame");
                let fields = self.table.decode(&f.payload);
                if f.stream == stream && a.status == 0 {
                    a.status = fields
                        .iter()
                        .find(|(n, _)| n == ":status")
                        .expect(":status first")
                        .1
                        .parse()
                        .unwrap();
                    a.fields = fields;
                }
            }
            if f.stream != stream {
                continue;
            }
            match f.kind {
                DATA => {
                    a.data_frames += 1;
                    a.body.extend_from_slice(&f.payload);
                    if !f.payload.is_empty() && !f.has(END_STREAM) {
                        let n = f.payload.len() as u32;
                        let mut w = window_update(0, n);
                        w.extend_from_slice(&window_update(stream, n));
                        self.write(&w).unwrap();
                    }
                }
                RST_STREAM => {
                    a.reset = Some(f.code());
                    return a;
                }
                _ => {}
            }
            if matches!(f.kind, DATA | HEADERS) && f.has(END_STREAM) {
                return a;
            }
        }
    }

    /// Reads (and drops) frames until a GOAWAY, which it returns; panics
    /// if the connection ends first or none comes within `limit`.
    pub fn goaway_within(&mut self, limit: Duration) -> Frame {
        let deadline = Instant::now() + limit;
        let mut seen = 0;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.next_within(left) {
                Ok(Some(f)) if f.kind == GOAWAY => return f,
                Ok(Some(_)) => seen += 1,
                Ok(None) => panic!("closed without a GOAWAY (after {seen} other frames)"),
                Err(e) => panic!("no GOAWAY within {limit:?} ({seen} other frames): {e}"),
            }
        }
    }

    /// How long until the server closes the connection (EOF or reset),
    /// reading and dropping what comes; `None` if still open after `limit`.
    pub fn closed_within(&mut self, limit: Duration) -> Option<Duration> {
        let t = Instant::now();
        loop {
            let left = limit.checked_sub(t.elapsed())?;
            self.s
                .set_read_timeout(Some(left.max(Duration::from_millis(1))))
                .unwrap();
            let mut buf = [0u8; 65536];
            match self.s.read(&mut buf) {
                Ok(0) => return Some(t.elapsed()),
                Ok(_) => {}
                Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset => {
                    return Some(t.elapsed());
                }
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                Err(_) => return None,
            }
        }
    }
}
