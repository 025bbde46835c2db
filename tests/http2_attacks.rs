//! Attacks on HTTP/2, run for real against one h2c server with a raw frame
//! client: Rapid Reset, a CONTINUATION flood, an HPACK bomb, PING and
//! SETTINGS floods, a zero-window stall and slowloris. Each must end the
//! way the server promises (GOAWAY ENHANCE_YOUR_CALM, a 431, a timeout)
//! while the server stays up and another connection — one already open,
//! and a fresh curl — is served as before.

mod common;
use common::h2::{self, Conn, frame};
use common::*;
use std::time::{Duration, Instant};

struct Setup {
    server: Server,
}

/// One worker (so attacker and bystander share it), built-ins, an 8 MiB
/// file, 2 s send and request-head timeouts, no minimum response rate (so
/// only the send timeout ends a stalled response).
fn setup() -> Setup {
    let root = tempdir("h2attacks");
    write_random(&root.join("big.bin"), 8 << 20);
    let cfg = format!(
        "builtins = true\nworkers = 1\nroot = {root:?}\n\
         [access_log]\nenabled = false\n\
         [timeouts]\nsend_timeout = \"2s\"\nrequest_headers_timeout = \"2s\"\n\
         [limits]\nmin_response_data_rate = 0\n"
    );
    Setup {
        server: Server::with_config(&cfg, &[]),
    }
}

#[test]
fn http2_attacks() {
    let s = setup();
    run_checks(
        &s,
        &[
            ("rapid_reset", rapid_reset),
            ("continuation_flood", continuation_flood),
            ("hpack_bomb", hpack_bomb),
            ("ping_flood", ping_flood),
            ("settings_flood", settings_flood),
            ("zero_window_stall", zero_window_stall),
            ("slowloris", slowloris),
        ],
    );
}

/// An h2c connection opened (and served once) before an attack, with a
/// stream in flight through it: `/delay?ms=…`, longer than the attack.
struct Bystander(Conn, u64);

impl Bystander {
    fn new(s: &Setup, ms: u64) -> Bystander {
        let mut c = Conn::open(s.server.addr, &[]);
        assert_eq!(c.get(1, "/plaintext").status, 200);
        let path = format!("/delay?ms={ms}");
        c.send_request(3, &h2::request("GET", &path, "localhost"));
        Bystander(c, ms)
    }

    /// After the attack: the server runs, the stream in flight is answered
    /// whole, the connection serves another, and a fresh curl is served,
    /// quickly.
    fn still_served(self, s: &Setup) {
        let Bystander(mut c, ms) = self;
        let proc = format!("/proc/{}", s.server.pid());
        assert!(std::path::Path::new(&proc).exists(), "the server is gone");
        let a = c.answer(3);
        let want = format!("delayed {ms} ms\n");
        assert_eq!(
            (a.status, a.body.as_slice()),
            (200, want.as_bytes()),
            "{a:?}"
        );
        let t = Instant::now();
        let a = c.get(5, "/plaintext");
        assert_eq!(
            (a.status, a.body.as_slice()),
            (200, &b"Hello, World!"[..]),
            "{a:?}"
        );
        assert!(a.goaway.is_none(), "{a:?}");
        let g = curl_got(&["--http2-prior-knowledge", &s.server.url("/json")]);
        assert_eq!((g.code, g.version.as_str()), (200, "2"), "{g:?}");
        assert!(t.elapsed() < Duration::from_secs(3), "{:?}", t.elapsed());
    }
}

/// The server answers GOAWAY ENHANCE_YOUR_CALM and closes.
fn calmed(c: &mut Conn) {
    let g = c.goaway_within(Duration::from_secs(5));
    assert_eq!(g.code(), h2::ENHANCE_YOUR_CALM, "{g:?}");
    assert!(
        c.closed_within(Duration::from_secs(8)).is_some(),
        "still open after the GOAWAY"
    );
}

fn get_block() -> Vec<u8> {
    h2::request("GET", "/plaintext", "localhost")
}

/// 1000 streams opened and reset at once (CVE-2023-44487).
fn rapid_reset(s: &Setup) {
    let by = Bystander::new(s, 300);
    let mut c = Conn::open(s.server.addr, &[]);
    let mut burst = Vec::new();
    for i in 0..1000u32 {
        let id = 2 * i + 1;
        burst.extend(frame(
            h2::HEADERS,
            h2::END_HEADERS | h2::END_STREAM,
            id,
            &get_block(),
        ));
        burst.extend(h2::rst_stream(id, h2::CANCEL));
    }
    let _ = c.write(&burst);
    calmed(&mut c);
    by.still_served(s);
}

/// A header block that never ends: thousands of small CONTINUATIONs, and
/// (another connection) 16 KiB ones; the server's memory stays put.
fn continuation_flood(s: &Setup) {
    let by = Bystander::new(s, 300);
    let rss = upstreams::rss_kib(s.server.pid());
    let mut field = Vec::new();
    h2::literal(&mut field, "x-flood", b"y");
    for (piece, count) in [(field, 10_000), (vec![b'a'; 16_384], 300)] {
        let mut c = Conn::open(s.server.addr, &[]);
        c.write(&frame(h2::HEADERS, h2::END_STREAM, 1, &get_block()))
            .unwrap();
        let one = frame(h2::CONTINUATION, 0, 1, &piece);
        for _ in 0..count / 100 {
            if c.write(&one.repeat(100)).is_err() {
                break;
            }
        }
        calmed(&mut c);
    }
    let grown = upstreams::rss_kib(s.server.pid()).saturating_sub(rss);
    assert!(grown < 16 * 1024, "the server grew by {grown} KiB");
    by.still_served(s);
}

/// A 4000-byte value entered into the dynamic table, then a block naming
/// it 500 times (2 MB decoded from 500 bytes): that stream is answered
/// 431 and the connection goes on.
fn hpack_bomb(s: &Setup) {
    let by = Bystander::new(s, 300);
    let mut c = Conn::open(s.server.addr, &[]);
    let mut b = get_block();
    h2::literal_indexed(&mut b, "x-bomb", &[b'a'; 4000]);
    c.send_request(1, &b);
    assert_eq!(c.answer(1).status, 200);
    let mut b = get_block();
    b.extend(std::iter::repeat_n(0x80 | 62, 500));
    c.send_request(3, &b);
    let a = c.answer(3);
    assert_eq!(a.status, 431, "{a:?}");
    let a = c.get(5, "/plaintext");
    assert_eq!(
        (a.status, a.body.as_slice()),
        (200, &b"Hello, World!"[..]),
        "{a:?}"
    );
    assert!(a.goaway.is_none(), "{a:?}");
    by.still_served(s);
}

/// 5000 PINGs in one write.
fn ping_flood(s: &Setup) {
    let by = Bystander::new(s, 300);
    let mut c = Conn::open(s.server.addr, &[]);
    let _ = c.write(&frame(h2::PING, 0, 0, b"12345678").repeat(5000));
    calmed(&mut c);
    by.still_served(s);
}

/// 5000 SETTINGS frames in one write.
fn settings_flood(s: &Setup) {
    let by = Bystander::new(s, 300);
    let mut c = Conn::open(s.server.addr, &[]);
    let _ = c.write(&h2::settings(&[]).repeat(5000));
    calmed(&mut c);
    by.still_served(s);
}

/// A stream window of 0 and a large file never credited: the head comes,
/// no data, and `send_timeout` (2 s) ends the connection.
fn zero_window_stall(s: &Setup) {
    let by = Bystander::new(s, 3000);
    let mut c = Conn::open(s.server.addr, &[(h2::SETTINGS_INITIAL_WINDOW_SIZE, 0)]);
    c.send_request(1, &h2::request("GET", "/big.bin", "localhost"));
    let t = Instant::now();
    let (mut status, mut data) = (None, 0);
    let closed = loop {
        let left = Duration::from_secs(10).saturating_sub(t.elapsed());
        match c.next_within(left) {
            Ok(Some(f)) if f.kind == h2::HEADERS && f.stream == 1 => {
                status = c.table.decode(&f.payload).first().cloned();
            }
            Ok(Some(f)) if f.kind == h2::DATA => data += f.payload.len(),
            Ok(Some(_)) => {}
            Ok(None) => break t.elapsed(),
            Err(e) => panic!("still open after {:?}: {e}", t.elapsed()),
        }
    };
    assert_eq!(status, Some((":status".into(), "200".into())));
    assert_eq!(data, 0, "DATA past a zero window");
    assert!(
        closed >= Duration::from_millis(1500) && closed < Duration::from_secs(8),
        "closed after {closed:?}, send_timeout is 2 s"
    );
    by.still_served(s);
}

/// Connections that stop partway: in the preface, in the first frame's
/// header, and in a header block (HEADERS without END_HEADERS). Each is
/// closed by `request_headers_timeout` (2 s).
fn slowloris(s: &Setup) {
    let by = Bystander::new(s, 3000);
    let mut block = h2::PREFACE.to_vec();
    block.extend(h2::settings(&[]));
    block.extend(frame(h2::HEADERS, h2::END_STREAM, 1, &get_block()));
    let starts: [Vec<u8>; 3] = [
        h2::PREFACE[..12].to_vec(),
        [h2::PREFACE, &h2::settings(&[])[..5]].concat(),
        block,
    ];
    let addr = s.server.addr;
    let cut: Vec<_> = starts
        .into_iter()
        .map(|start| {
            std::thread::spawn(move || {
                let mut c = Conn::connect(addr);
                let t = Instant::now();
                c.write(&start).unwrap();
                let closed = c.closed_within(Duration::from_secs(10));
                (closed.map(|_| t.elapsed()), start.len())
            })
        })
        .collect();
    for h in cut {
        let (closed, sent) = h.join().unwrap();
        let closed = closed.unwrap_or_else(|| panic!("{sent} bytes sent: never closed"));
        assert!(
            closed >= Duration::from_millis(1500) && closed < Duration::from_secs(8),
            "{sent} bytes sent: closed after {closed:?}, request_headers_timeout is 2 s"
        );
    }
    by.still_served(s);
}
