//! A minimal HTTP/1.1 plaintext server on `tokio-uring`, used by `scripts/bench`
//! as the peer "a Rust user would reach for".
//!
//! It is written the way a first tokio-uring server usually is: one runtime on
//! the current thread, one `accept` at a time, one task per connection, and per
//! round trip one `read` into an owned buffer and one `write_all` of an owned
//! buffer. Every operation is a separate single-shot submission: no multishot
//! accept or receive, no provided buffer rings, no batching beyond what the
//! runtime does on its own. It answers `GET /plaintext` with `Hello, World!`
//! and everything else with 404; keep-alive and pipelining are supported (every
//! complete request in the buffer is answered in order, then one write).
//!
//! It is a server, not a benchmark:
//!
//! ```text
//! cargo bench --bench tokio_uring_peer -- --listen 127.0.0.1:8080
//! ```
//!
//! Without `--listen` (as in a plain `cargo bench`) it prints a note and exits.

use std::cell::RefCell;
use std::io;
use std::net::SocketAddr;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use tokio::signal::unix::{SignalKind, signal};
use tokio_uring::buf::BoundedBuf;
use tokio_uring::net::{TcpListener, TcpStream};

/// Spare room a read gets; the buffer grows by this much when it is short.
const READ_CHUNK: usize = 4096;
/// Headers (or a body) larger than this close the connection.
const MAX_BUFFERED: usize = 64 * 1024;
const MAX_HEADERS: usize = 32;

fn main() {
    let mut listen = None;
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        if arg == "--listen" {
            listen = args.next();
        } else if let Some(v) = arg.strip_prefix("--listen=") {
            listen = Some(v.to_string());
        }
        // Anything else (`--bench` from cargo, filters) is ignored.
    }
    let Some(listen) = listen else {
        println!(
            "tokio_uring_peer: a benchmark peer server, not a benchmark; \
             run it with: cargo bench --bench tokio_uring_peer -- --listen 127.0.0.1:PORT"
        );
        return;
    };
    let addr: SocketAddr = match listen.parse() {
        Ok(addr) => addr,
        Err(e) => {
            eprintln!("tokio_uring_peer: bad --listen address {listen:?}: {e}");
            std::process::exit(2);
        }
    };
    if let Err(e) = tokio_uring::start(run(addr)) {
        eprintln!("tokio_uring_peer: {e}");
        std::process::exit(1);
    }
}

async fn run(addr: SocketAddr) -> io::Result<()> {
    let listener = TcpListener::bind(addr)?;
    for kind in [SignalKind::terminate(), SignalKind::interrupt()] {
        let mut sig = signal(kind)?;
        tokio_uring::spawn(async move {
            sig.recv().await;
            std::process::exit(0);
        });
    }
    println!(
        "tokio-uring peer listening on http://{}/",
        listener.local_addr()?
    );
    loop {
        match listener.accept().await {
            Ok((stream, _)) => {
                let _ = stream.set_nodelay(true);
                tokio_uring::spawn(serve(stream));
            }
            Err(e) => {
                eprintln!("tokio_uring_peer: accept: {e}");
                // Out of descriptors and the like: back off instead of spinning.
                std::thread::sleep(Duration::from_millis(10));
            }
        }
    }
}

/// One connection: read, answer every complete request, write, repeat.
async fn serve(stream: TcpStream) {
    let mut inbuf: Vec<u8> = Vec::with_capacity(READ_CHUNK);
    let mut out: Vec<u8> = Vec::with_capacity(READ_CHUNK);
    loop {
        if inbuf.capacity() - inbuf.len() < READ_CHUNK / 4 {
            inbuf.reserve(READ_CHUNK);
        }
        let start = inbuf.len();
        let (res, slice) = stream.read(inbuf.slice(start..)).await;
        inbuf = slice.into_inner();
        match res {
            Ok(0) | Err(_) => return,
            Ok(_) => {}
        }
        let (used, close) = answer_all(&inbuf, &mut out);
        inbuf.drain(..used);
        let close = close || inbuf.len() > MAX_BUFFERED;
        if !out.is_empty() {
            let (res, buf) = stream.write_all(out).await;
            out = buf;
            out.clear();
            if res.is_err() {
                return;
            }
        }
        if close {
            return;
        }
    }
}

/// Answers every complete request at the start of `input`, appending the
/// responses to `out`. Returns the bytes consumed and whether to close.
fn answer_all(input: &[u8], out: &mut Vec<u8>) -> (usize, bool) {
    let mut used = 0;
    loop {
        let mut headers = [httparse::EMPTY_HEADER; MAX_HEADERS];
        let mut req = httparse::Request::new(&mut headers);
        let head_len = match req.parse(&input[used..]) {
            Ok(httparse::Status::Complete(n)) => n,
            Ok(httparse::Status::Partial) => return (used, false),
            Err(_) => {
                respond(out, "400 Bad Request", b"bad request\n", true);
                return (input.len(), true);
            }
        };
        let (mut body_len, mut bad, mut keep_alive) = (0usize, false, req.version == Some(1));
        for h in req.headers.iter() {
            let value = std::str::from_utf8(h.value).unwrap_or("").trim();
            if h.name.eq_ignore_ascii_case("content-length") {
                match value.parse() {
                    Ok(n) => body_len = n,
                    Err(_) => bad = true,
                }
            } else if h.name.eq_ignore_ascii_case("transfer-encoding") {
                bad = true; // chunked bodies are not supported: answer and close
            } else if h.name.eq_ignore_ascii_case("connection") {
                let value = value.to_ascii_lowercase();
                if value.contains("close") {
                    keep_alive = false;
                } else if value.contains("keep-alive") {
                    keep_alive = true;
                }
            }
        }
        let close = bad || !keep_alive;
        if input.len() - used - head_len < body_len && !close {
            return (used, false); // wait for the rest of the body
        }
        if req.method == Some("GET") && req.path == Some("/plaintext") {
            respond(out, "200 OK", b"Hello, World!", close);
        } else {
            respond(out, "404 Not Found", b"not found\n", close);
        }
        used += head_len + body_len;
        if close || used >= input.len() {
            return (used.min(input.len()), close);
        }
    }
}

fn respond(out: &mut Vec<u8>, status: &str, body: &[u8], close: bool) {
    out.extend_from_slice(b"HTTP/1.1 ");
    out.extend_from_slice(status.as_bytes());
    out.extend_from_slice(b"\r\nServer: tokio-uring-peer\r\nDate: ");
    with_date(|date| out.extend_from_slice(date.as_bytes()));
    out.extend_from_slice(b"\r\nContent-Type: text/plain\r\nContent-Length: ");
    out.extend_from_slice(body.len().to_string().as_bytes());
    if close {
        out.extend_from_slice(b"\r\nConnection: close");
    }
    out.extend_from_slice(b"\r\n\r\n");
    out.extend_from_slice(body);
}

thread_local! {
    /// (second it was formatted for, `Date` header value).
    static DATE: RefCell<(u64, String)> = const { RefCell::new((0, String::new())) };
}

/// Calls `f` with the current `Date` header value, formatted once per second.
fn with_date(f: impl FnOnce(&str)) {
    let now = SystemTime::now();
    let secs = now.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs());
    DATE.with(|cell| {
        let mut cached = cell.borrow_mut();
        if cached.0 != secs || cached.1.is_empty() {
            *cached = (secs, httpdate::fmt_http_date(now));
        }
        f(&cached.1);
    });
}
