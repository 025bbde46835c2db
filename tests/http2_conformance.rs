//! HTTP/2 beside the main end-to-end file: the `[http2]` switches
//! (`enabled`, `h2c`), a graceful stop with a stream in flight, and the
//! httpwg conformance suite against an h2c listener.

mod common;
use common::h2::{self, Conn};
use common::pki::Pki;
use common::*;
use std::io::{Read, Write};
use std::process::Command;
use std::time::{Duration, Instant};

/// A flat configuration with built-ins, an HTTPS listener and `http2`
/// lines in its `[http2]` table; also the CA.
fn switched(http2: &str) -> (Server, Pki) {
    let pki = Pki::new();
    let leaf = pki.issue("localhost", &["localhost"], "localhost", false);
    let cfg = format!(
        "builtins = true\nworkers = 1\n[access_log]\nenabled = false\n\
         [tls]\nlisten = \"127.0.0.1:0\"\ncert = {:?}\nkey = {:?}\n[http2]\n{http2}\n",
        leaf.cert, leaf.key
    );
    (Server::with_config(&cfg, &[]), pki)
}

fn tls_curl(server: &Server, pki: &Pki, path: &str) -> Got {
    let port = server.tls.unwrap().port();
    curl_got(&[
        "--http2",
        "--cacert",
        pki.ca_path().to_str().unwrap(),
        "--resolve",
        &format!("localhost:{port}:127.0.0.1"),
        &format!("https://localhost:{port}{path}"),
    ])
}

#[test]
fn http2_off_leaves_http11_over_tls() {
    let (server, pki) = switched("enabled = false");
    let g = tls_curl(&server, &pki, "/plaintext");
    assert_eq!((g.code, g.version.as_str()), (200, "1.1"), "{g:?}");
    assert_eq!(g.text(), "Hello, World!");
    let g = tls_curl(&server, &pki, "/tls-info");
    let info: serde_json::Value = serde_json::from_slice(&g.body).unwrap();
    assert_eq!(info["alpn"], "http/1.1", "{info}");
}

#[test]
fn h2c_off_refuses_prior_knowledge() {
    let (server, pki) = switched("h2c = false");
    let g = curl_got(&["--http2-prior-knowledge", &server.url("/plaintext")]);
    assert!(g.code != 200 || g.version != "2", "h2c answered: {g:?}");
    // The preface is an HTTP/1 request now: refused as one, or closed.
    let mut c = server.connect();
    let mut hello = h2::PREFACE.to_vec();
    hello.extend_from_slice(&h2::settings(&[]));
    c.write_all(&hello).unwrap();
    let mut got = Vec::new();
    let _ = c.read_to_end(&mut got);
    let text = String::from_utf8_lossy(&got);
    assert!(
        got.is_empty() || text.starts_with("HTTP/1.1 4") || text.starts_with("HTTP/1.1 5"),
        "{text:?}"
    );
    let g = curl_got(&["--http1.1", &server.url("/plaintext")]);
    assert_eq!(
        (g.code, g.version.as_str(), g.text().as_str()),
        (200, "1.1", "Hello, World!")
    );
    // TLS still offers h2.
    let g = tls_curl(&server, &pki, "/plaintext");
    assert_eq!((g.code, g.version.as_str()), (200, "2"), "{g:?}");
}

/// SIGTERM with a stream in flight: a GOAWAY (NO_ERROR, naming that
/// stream) comes at once, the stream still gets its whole response, an
/// idle connection gets a GOAWAY and is closed, and the process exits 0.
#[test]
fn graceful_stop_finishes_streams_after_goaway() {
    let mut server = Server::start(&["--builtins", "--workers", "1", "--access-log", "off"]);
    let mut idle = Conn::open(server.addr, &[]);
    assert_eq!(idle.get(1, "/plaintext").status, 200);
    let mut busy = Conn::open(server.addr, &[]);
    let t = Instant::now();
    busy.send_request(1, &h2::request("GET", "/delay?ms=1500", "localhost"));
    std::thread::sleep(Duration::from_millis(300));
    server.signal("TERM");
    let away = idle.goaway_within(Duration::from_secs(3));
    assert_eq!((away.code(), away.last_stream()), (h2::NO_ERROR, 1));
    assert!(
        idle.closed_within(Duration::from_secs(3)).is_some(),
        "idle connection left open"
    );
    let a = busy.answer(1);
    let away = a.goaway.as_ref().expect("a GOAWAY before the stream's end");
    assert_eq!((away.code(), away.last_stream()), (h2::NO_ERROR, 1));
    assert_eq!(a.status, 200, "{a:?}");
    assert_eq!(a.body, b"delayed 1500 ms\n");
    assert!(
        t.elapsed() >= Duration::from_millis(1500),
        "{:?}",
        t.elapsed()
    );
    assert!(
        busy.closed_within(Duration::from_secs(3)).is_some(),
        "connection left open after its last stream"
    );
    assert_eq!(server.wait_exit(Duration::from_secs(5)), Some(0));
}

/// `text` without ANSI colour sequences.
fn plain(text: &str) -> String {
    let mut out = String::new();
    let mut chars = text.chars();
    while let Some(c) = chars.next() {
        if c == '\u{1b}' {
            for d in chars.by_ref() {
                if d.is_ascii_alphabetic() {
                    break;
                }
            }
        } else {
            out.push(c);
        }
    }
    out
}

/// The httpwg suite (RFC 9113 and RFC 7541 cases) against an h2c listener
/// whose `/` answers 200 to every method with a body of at least 5 bytes
/// (one case reads the body 3 bytes, then 1, at a time).
#[test]
fn httpwg_conformance() {
    let found = std::env::split_paths(&std::env::var_os("PATH").unwrap_or_default())
        .any(|d| d.join("httpwg").is_file());
    assert!(
        found,
        "httpwg is not on the PATH; install it with `cargo install --locked httpwg-cli`"
    );
    let cfg = "workers = 1\n[access_log]\nenabled = false\n[[site]]\nname = \"wg\"\n\
               default = true\n[[site.route]]\npath = \"/\"\nhandler = \"respond\"\n\
               body = \"hello from peregrine\\n\"\n";
    let server = Server::with_config(cfg, &[]);
    let (st, out, err) = output_within(
        Command::new("httpwg").args(["-a", &server.addr.to_string(), "--frame-timeout", "1000"]),
        Duration::from_secs(120),
    );
    let text = plain(&format!("{out}{err}"));
    let summary = text
        .lines()
        .find(|l| l.contains("Passed "))
        .unwrap_or_else(|| panic!("no summary line from httpwg:\n{text}"));
    let (n, m) = summary
        .split("Passed ")
        .nth(1)
        .and_then(|r| r.split_whitespace().next())
        .and_then(|r| r.split_once('/'))
        .unwrap_or_else(|| panic!("cannot read {summary:?}"));
    let (n, m): (u32, u32) = (n.parse().unwrap(), m.parse().unwrap());
    assert!(
        n == m && m >= 107 && st.success(),
        "httpwg: {summary} ({st}); output:\n{text}"
    );
}

/// An idle HTTP/2 connection lasts `keep_alive_timeout`, whatever frames
/// without a request it receives: here the SETTINGS acknowledgement that
/// every client sends (it arrives after the first response) and a
/// WINDOW_UPDATE. The request-head clock (1 s here) must not run for them.
#[test]
fn idle_connection_is_kept_alive_after_control_frames() {
    let cfg = "builtins = true\nworkers = 1\n[access_log]\nenabled = false\n\
               [timeouts]\nrequest_headers_timeout = \"1s\"\nkeep_alive_timeout = \"60s\"\n";
    let server = Server::with_config(cfg, &[]);
    let mut c = Conn::open(server.addr, &[]);
    assert_eq!(c.get(1, "/plaintext").status, 200);
    // `answer` acknowledged the server's SETTINGS; one more control frame.
    c.write(&h2::window_update(0, 1000)).unwrap();
    let closed = c.closed_within(Duration::from_secs(3));
    assert!(
        closed.is_none(),
        "an idle connection was closed after {closed:?} (request_headers_timeout is 1 s, \
         keep_alive_timeout 60 s)"
    );
    let a = c.get(3, "/plaintext");
    assert_eq!(a.status, 200, "{a:?}");
}
