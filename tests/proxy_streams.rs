//! Large bodies through the reverse proxy, both ways, with the proxy's
//! memory watched: a 1 GiB download from a Peregrine upstream's static
//! files (a sparse file) with a client that stops reading for a while, and
//! a 1 GiB upload to a Peregrine upstream's `/echo` read back as it is
//! sent. The proxy's resident memory must stay within a bound far below
//! the body sizes.

mod common;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use common::upstreams::*;
use common::*;

const GIB: u64 = 1 << 30;
/// Growth of the proxy's resident memory allowed while a body streams.
const RSS_BOUND_KIB: u64 = 64 * 1024;

/// Samples a process's resident memory until stopped; keeps the peak.
struct RssWatch {
    stop: Arc<AtomicBool>,
    peak: Arc<AtomicU64>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl RssWatch {
    fn start(pid: i32) -> RssWatch {
        let stop = Arc::new(AtomicBool::new(false));
        let peak = Arc::new(AtomicU64::new(rss_kib(pid)));
        let (s, p) = (stop.clone(), peak.clone());
        let thread = std::thread::spawn(move || {
            while !s.load(Ordering::Relaxed) {
                p.fetch_max(rss_kib(pid), Ordering::Relaxed);
                std::thread::sleep(Duration::from_millis(20));
            }
        });
        RssWatch {
            stop,
            peak,
            thread: Some(thread),
        }
    }

    fn peak(&self) -> u64 {
        self.peak.load(Ordering::Relaxed)
    }
}

impl Drop for RssWatch {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// A pseudo-random block whose length divides no buffer size: byte `i` of
/// an upload is `block[i % block.len()]`.
fn block() -> Vec<u8> {
    let mut x: u64 = 0x2545_f491_4f6c_dd1d;
    (0..65_536 + 13)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x as u8
        })
        .collect()
}

/// Whether `piece`, found at offset `at` of the stream, is the pattern.
fn matches(block: &[u8], at: u64, piece: &[u8]) -> bool {
    let mut off = (at % block.len() as u64) as usize;
    let mut rest = piece;
    while !rest.is_empty() {
        let n = rest.len().min(block.len() - off);
        if rest[..n] != block[off..off + n] {
            return false;
        }
        rest = &rest[n..];
        off = 0;
    }
    true
}

fn proxy_to(up: std::net::SocketAddr) -> Server {
    let config = format!(
        r#"workers = 1
[access_log]
enabled = false
[limits]
max_request_body_size = 4000000000
[[upstream]]
name = "app"
servers = ["{up}"]
[[site]]
name = "front"
default = true
[[site.route]]
path = "/"
handler = "proxy"
upstream = "app"
"#
    );
    Server::with_config(&config, &[])
}

#[test]
fn one_gib_each_way_with_bounded_memory() {
    let files = tempdir("big");
    let big = std::fs::File::create(files.join("big.bin")).unwrap();
    big.set_len(GIB).unwrap(); // sparse: no disk used
    drop(big);
    let up_addr = free_addr();
    let _up = peer_with(
        "up",
        up_addr,
        &format!(
            "[[site.route]]\npath = \"/files\"\nhandler = \"files\"\nroot = \"{}\"\n",
            files.display()
        ),
    );
    let px = proxy_to(up_addr);
    // Warm up: the first requests allocate what a worker keeps.
    let mut c = Client::new(px.addr);
    for _ in 0..3 {
        assert_eq!(c.get("/").unwrap().text(), "up");
        let r = c.send("POST", "/b/echo", &[], &[7; 100_000]).unwrap();
        assert_eq!(r.body.len(), 100_000);
    }
    drop(c);
    download(&px);
    upload(&px);
}

fn download(px: &Server) {
    let watch = RssWatch::start(px.pid());
    let base = rss_kib(px.pid());
    let t = Instant::now();
    let mut s = px.connect();
    s.set_read_timeout(Some(Duration::from_secs(60))).unwrap();
    s.write_all(b"GET /files/big.bin HTTP/1.1\r\nHost: localhost\r\n\r\n")
        .unwrap();
    let head = read_head(&mut s).unwrap();
    assert_eq!(head.status, 200, "{}", head.head);
    assert_eq!(head.header("content-length"), Some(GIB.to_string()));
    let zeros = vec![0u8; 256 * 1024];
    let mut buf = vec![0u8; 256 * 1024];
    let mut got: u64 = 0;
    let mut paused = false;
    while got < GIB {
        let n = read_some(&mut s, &mut buf).unwrap();
        assert!(n > 0, "EOF after {got} bytes");
        assert!(buf[..n] == zeros[..n], "a non-zero byte near {got}");
        got += n as u64;
        if !paused && got >= 64 << 20 {
            // A client that stops reading: the proxy must stop reading the
            // upstream, not buffer the rest of the gigabyte.
            paused = true;
            std::thread::sleep(Duration::from_secs(2));
        }
    }
    // The connection is still usable: the body ended where it said.
    s.write_all(b"GET / HTTP/1.1\r\nHost: localhost\r\n\r\n")
        .unwrap();
    assert_eq!(read_response(&mut s, false).unwrap().text(), "up");
    let growth = watch.peak().saturating_sub(base);
    eprintln!(
        "download: 1 GiB in {:?}, proxy RSS {base} KiB + {growth} KiB",
        t.elapsed()
    );
    assert!(
        growth < RSS_BOUND_KIB,
        "the proxy grew by {growth} KiB during a 1 GiB download"
    );
}

fn upload(px: &Server) {
    let watch = RssWatch::start(px.pid());
    let base = rss_kib(px.pid());
    let t = Instant::now();
    let s = px.connect();
    s.set_read_timeout(Some(Duration::from_secs(60))).unwrap();
    let mut w = s.try_clone().unwrap();
    let writer = std::thread::spawn(move || {
        let block = block();
        write!(
            w,
            "POST /b/echo HTTP/1.1\r\nHost: localhost\r\nContent-Length: {GIB}\r\n\r\n"
        )
        .unwrap();
        let mut sent: u64 = 0;
        while sent < GIB {
            let off = (sent % block.len() as u64) as usize;
            let n = ((GIB - sent) as usize).min(block.len() - off);
            w.write_all(&block[off..off + n]).unwrap();
            sent += n as u64;
        }
    });
    let mut r: TcpStream = s;
    let head = read_head(&mut r).unwrap();
    assert_eq!(head.status, 200, "{}", head.head);
    assert_eq!(head.header("content-length"), Some(GIB.to_string()));
    let block = block();
    let mut buf = vec![0u8; 256 * 1024];
    let mut got: u64 = 0;
    let mut paused = false;
    while got < GIB {
        let n = read_some(&mut r, &mut buf).unwrap();
        assert!(n > 0, "EOF after {got} bytes");
        assert!(matches(&block, got, &buf[..n]), "wrong bytes near {got}");
        got += n as u64;
        if !paused && got >= 64 << 20 {
            // The echo cannot go down: the upload must stall, all the way
            // back to the client, rather than pile up in the proxy.
            paused = true;
            std::thread::sleep(Duration::from_secs(2));
        }
    }
    writer.join().unwrap();
    let growth = watch.peak().saturating_sub(base);
    eprintln!(
        "upload: 1 GiB up and back in {:?}, proxy RSS {base} KiB + {growth} KiB",
        t.elapsed()
    );
    assert!(
        growth < RSS_BOUND_KIB,
        "the proxy grew by {growth} KiB during a 1 GiB upload"
    );
    let mut rest = Vec::new();
    r.set_read_timeout(Some(Duration::from_millis(200)))
        .unwrap();
    let _ = r.read_to_end(&mut rest);
    assert!(rest.is_empty(), "bytes after the body: {}", rest.len());
}
