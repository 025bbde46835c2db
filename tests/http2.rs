//! HTTP/2 end to end: curl, nghttp, h2load, headless Chromium and a raw
//! frame client against one real server, over TLS (ALPN h2) and cleartext
//! (h2c by prior knowledge), for every kind of handler, beside HTTP/1.1,
//! with a site that wants HTTP/1.1 and the access log. The `[http2]`
//! switches, a graceful stop and httpwg are in `http2_conformance.rs`, the
//! attacks in `http2_attacks.rs`.

mod common;
use common::chromium::{rendered_dom_with, tail};
use common::h2::{self, Conn};
use common::pki::Pki;
use common::*;
use std::io::Write;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

#[derive(Clone, Copy, Debug, PartialEq)]
enum Via {
    /// `--http2` over TLS (ALPN).
    Tls,
    /// `--http2-prior-knowledge` over the plain listener.
    H2c,
}

/// The bundled demo site.
fn demo_site() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("site")
}

struct Setup {
    server: Server,
    _upstream: Server,
    pki: Pki,
    tls: SocketAddr,
    /// The temp root served under `/files`.
    root: PathBuf,
    big: Vec<u8>,
}

const BIG: usize = (3 << 20) + 123;

/// One server for most checks: a plain and an HTTPS listener, the demo
/// site with the built-ins at `/`, a temp root at `/files` (a 3 MiB file, a
/// page for Chromium), a redirect, a `respond` route, a proxy route to a
/// Peregrine upstream, and a second site, `legacy.test`, with `http2 = false`.
fn setup() -> Setup {
    let pki = Pki::new();
    let leaf = pki.issue(
        "localhost",
        &["localhost", "legacy.test", "127.0.0.1"],
        "localhost",
        false,
    );
    let up = Server::start(&[
        "--builtins",
        "--workers",
        "1",
        "--access-log",
        "off",
        "--admin",
        "off",
    ]);
    let root = tempdir("h2root");
    let big = write_random(&root.join("big.bin"), BIG);
    std::fs::create_dir(root.join("page")).unwrap();
    std::fs::write(
        root.join("page/index.html"),
        "<!doctype html><html><body><p id=\"proto\">pending</p><script>\n\
         addEventListener('load', () => {\n\
           const e = performance.getEntriesByType('navigation')[0] || performance.getEntries()[0];\n\
           document.getElementById('proto').textContent = 'proto=' + e.nextHopProtocol;\n\
         });\n</script></body></html>\n",
    )
    .unwrap();
    let cfg = format!(
        r#"workers = 2
[tls]
listen = "127.0.0.1:0"
cert = {cert:?}
key = {key:?}
[[upstream]]
name = "app"
servers = ["{up}"]
[[site]]
name = "main"
hosts = ["localhost"]
default = true
root = {demo:?}
[[site.route]]
path = "/"
handler = "builtins"
[[site.route]]
path = "/files"
handler = "files"
root = {root:?}
[[site.route]]
path = "/old"
handler = "redirect"
to = "https://{{host}}/new{{rest}}{{query}}"
status = 308
[[site.route]]
path = "/hello"
handler = "respond"
status = 201
body = "hello over h2\n"
headers = {{ "X-Hello" = "yes" }}
[[site.route]]
path = "/up"
handler = "proxy"
upstream = "app"
strip_prefix = "/up"
[[site]]
name = "legacy"
hosts = ["legacy.test"]
http2 = false
[[site.route]]
path = "/"
handler = "respond"
body = "legacy site\n"
"#,
        cert = leaf.cert,
        key = leaf.key,
        up = up.addr,
        demo = demo_site(),
    );
    let server = Server::with_config(&cfg, &[]);
    let tls = server.tls.expect("an HTTPS listener");
    Setup {
        server,
        _upstream: up,
        pki,
        tls,
        root,
        big,
    }
}

impl Setup {
    fn url(&self, via: Via, host: &str, path: &str) -> String {
        match via {
            Via::Tls => format!("https://{host}:{}{path}", self.tls.port()),
            Via::H2c => format!("http://{}{path}", self.server.addr),
        }
    }

    /// curl over `via` to `host` (over TLS, resolved to the listener and
    /// checked against the test CA).
    fn fetch_host(&self, via: Via, host: &str, path: &str, extra: &[&str]) -> Got {
        let url = self.url(via, host, path);
        let ca = self.pki.ca_path();
        let resolve = format!("{host}:{}:127.0.0.1", self.tls.port());
        let mut args: Vec<&str> = match via {
            Via::Tls => vec![
                "--http2",
                "--cacert",
                ca.to_str().unwrap(),
                "--resolve",
                &resolve,
            ],
            Via::H2c => vec!["--http2-prior-knowledge"],
        };
        args.extend_from_slice(extra);
        args.push(&url);
        curl_got(&args)
    }

    fn fetch(&self, via: Via, path: &str, extra: &[&str]) -> Got {
        self.fetch_host(via, "localhost", path, extra)
    }

    /// A GET over `via` that must be a 200 over HTTP/2; its body.
    fn body_h2(&self, via: Via, path: &str) -> Vec<u8> {
        let g = self.fetch(via, path, &[]);
        assert_eq!(
            (g.code, g.version.as_str()),
            (200, "2"),
            "{via:?} {path}: {g:?}"
        );
        g.body
    }
}

#[test]
fn http2_end_to_end() {
    let s = setup();
    run_checks(
        &s,
        &[
            ("curl_over_tls_and_h2c", curl_over_tls_and_h2c),
            ("http11_beside_h2c", http11_beside_h2c),
            ("every_handler_over_h2", every_handler_over_h2),
            (
                "flow_control_with_small_windows",
                flow_control_with_small_windows,
            ),
            (
                "nghttp_multiplexes_one_connection",
                nghttp_multiplexes_one_connection,
            ),
            ("h2load_tls_and_h2c", h2load_tls_and_h2c),
            ("site_without_http2", site_without_http2),
            ("chromium_sees_h2", chromium_sees_h2),
            ("access_log_says_http2", access_log_says_http2),
        ],
    );
}

/// The demo site's files and the built-ins, over TLS and h2c, answered
/// over HTTP/2; ALPN said h2.
fn curl_over_tls_and_h2c(s: &Setup) {
    for via in [Via::Tls, Via::H2c] {
        for file in ["4k.txt", "style.css", "docs/index.html"] {
            let disk = std::fs::read(demo_site().join(file)).unwrap();
            assert_eq!(s.body_h2(via, &format!("/{file}")), disk, "{via:?} {file}");
        }
        let index = std::fs::read(demo_site().join("index.html")).unwrap();
        assert_eq!(s.body_h2(via, "/"), index, "{via:?} /");
        assert_eq!(s.body_h2(via, "/plaintext"), b"Hello, World!");
        assert_eq!(s.body_h2(via, "/json"), br#"{"message":"Hello, World!"}"#);
    }
    let info: serde_json::Value =
        serde_json::from_slice(&s.body_h2(Via::Tls, "/tls-info")).unwrap();
    assert_eq!(info["alpn"], "h2", "{info}");
    assert_eq!(info["server_name"], "localhost", "{info}");
}

/// HTTP/1.1 on the plain listener that takes h2c, including requests that
/// start like the preface ("P…") and arrive a byte at a time.
fn http11_beside_h2c(s: &Setup) {
    let g = curl_got(&["--http1.1", &s.url(Via::H2c, "", "/plaintext")]);
    assert_eq!((g.code, g.version.as_str()), (200, "1.1"), "{g:?}");
    assert_eq!(g.text(), "Hello, World!");
    assert_eq!(get(&s.server, "/json").status, 200);
    let mut c = s.server.connect();
    for b in b"PO" {
        c.write_all(&[*b]).unwrap();
        std::thread::sleep(Duration::from_millis(30));
    }
    c.write_all(
        b"ST /echo HTTP/1.1\r\nHost: t\r\nContent-Length: 3\r\nConnection: close\r\n\r\nabc",
    )
    .unwrap();
    let r = read_response(&mut c, false).unwrap();
    assert_eq!((r.status, r.text().as_str()), (200, "abc"), "{}", r.head);
    // "PRI" then something else is HTTP/1 too (and refused as such).
    let r = exchange(
        &s.server,
        b"PRIX / HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n",
    );
    assert!(r.status >= 400, "{}", r.head);
}

/// Files (large ones in pieces), HEAD, 404, redirect, respond, echo,
/// delay, stream and the proxy, each over TLS and h2c.
fn every_handler_over_h2(s: &Setup) {
    let upload = s.root.join("upload.bin");
    let sent = write_random(&upload, 1 << 20);
    let at_upload = format!("@{}", upload.display());
    for via in [Via::Tls, Via::H2c] {
        let host = if via == Via::Tls {
            "localhost"
        } else {
            "127.0.0.1"
        };
        let big = s.body_h2(via, "/files/big.bin");
        assert!(
            big == s.big,
            "{via:?}: big.bin differs ({} bytes)",
            big.len()
        );
        let g = s.fetch(via, "/files/big.bin", &["-I"]);
        assert_eq!((g.code, g.version.as_str()), (200, "2"), "{g:?}");
        assert_eq!(
            g.header("content-length"),
            Some(BIG.to_string()),
            "{}",
            g.head
        );
        let g = s.fetch(via, "/files/no-such-file", &[]);
        assert_eq!((g.code, g.version.as_str()), (404, "2"), "{g:?}");
        let g = s.fetch(via, "/old/x?y=1", &[]);
        assert_eq!((g.code, g.version.as_str()), (308, "2"), "{g:?}");
        let want = format!("https://{host}/new/x?y=1");
        assert_eq!(
            g.header("location").as_deref(),
            Some(want.as_str()),
            "{}",
            g.head
        );
        let g = s.fetch(via, "/hello", &[]);
        assert_eq!((g.code, g.version.as_str()), (201, "2"), "{g:?}");
        assert_eq!(g.text(), "hello over h2\n");
        assert_eq!(g.header("x-hello").as_deref(), Some("yes"), "{}", g.head);
        let args = [
            "--data-binary",
            &at_upload,
            "-H",
            "Content-Type: application/x-test",
        ];
        let g = s.fetch(via, "/echo", &args);
        assert_eq!((g.code, g.version.as_str()), (200, "2"), "{g:?}");
        assert!(
            g.body == sent,
            "{via:?}: echo of {} bytes came back as {}",
            sent.len(),
            g.body.len()
        );
        assert_eq!(
            g.header("content-type").as_deref(),
            Some("application/x-test")
        );
        let t = Instant::now();
        assert_eq!(s.body_h2(via, "/delay?ms=300"), b"delayed 300 ms\n");
        assert!(
            t.elapsed() >= Duration::from_millis(300),
            "{:?}",
            t.elapsed()
        );
        let want: Vec<u8> = (1..=5)
            .flat_map(|k| {
                format!("chunk {k}\n")
                    .into_bytes()
                    .into_iter()
                    .cycle()
                    .take(10)
            })
            .collect();
        assert_eq!(
            s.body_h2(via, "/stream?chunks=5&size=10&interval_ms=20"),
            want
        );
        // Through the proxy to the upstream (HTTP/1.1 there).
        assert_eq!(s.body_h2(via, "/up/plaintext"), b"Hello, World!");
        let g = s.fetch(via, "/up/echo", &args);
        assert_eq!((g.code, g.version.as_str()), (200, "2"), "{g:?}");
        assert!(
            g.body == sent,
            "{via:?}: proxied echo came back as {} bytes",
            g.body.len()
        );
    }
    // HEAD seen frame by frame: the head with its length, no DATA.
    let mut c = Conn::open(s.server.addr, &[]);
    c.send_request(1, &h2::request("HEAD", "/files/big.bin", "localhost"));
    let a = c.answer(1);
    assert_eq!(a.status, 200, "{a:?}");
    assert_eq!(a.field("content-length"), Some(BIG.to_string().as_str()));
    assert!(a.body.is_empty(), "HEAD got {} body bytes", a.body.len());
    assert_eq!(c.get(3, "/plaintext").body, b"Hello, World!");
}

/// nghttp with 16 KiB stream and 32 KiB connection windows: the 3 MiB
/// file arrives whole, over many WINDOW_UPDATEs.
fn flow_control_with_small_windows(s: &Setup) {
    for url in [
        format!("https://127.0.0.1:{}/files/big.bin", s.tls.port()),
        format!("http://{}/files/big.bin", s.server.addr),
    ] {
        let o = Command::new("nghttp")
            .args(["-w", "14", "-W", "15", &url])
            .output()
            .expect("nghttp (Debian package nghttp2-client) must be installed");
        assert!(
            o.status.success(),
            "{url}: {}",
            String::from_utf8_lossy(&o.stderr)
        );
        assert!(o.stdout == s.big, "{url}: got {} bytes", o.stdout.len());
    }
}

/// Several URLs on one nghttp connection: one SETTINGS exchange, every
/// response 200 on its own stream.
fn nghttp_multiplexes_one_connection(s: &Setup) {
    let paths = [
        "/plaintext",
        "/json",
        "/4k.txt",
        "/",
        "/files/big.bin",
        "/delay?ms=50",
    ];
    for base in [
        format!("https://127.0.0.1:{}", s.tls.port()),
        format!("http://{}", s.server.addr),
    ] {
        let urls: Vec<String> = paths.iter().map(|p| format!("{base}{p}")).collect();
        let (st, out, err) = output_within(
            Command::new("nghttp").arg("-nv").args(&urls),
            Duration::from_secs(30),
        );
        assert!(st.success(), "{base}: {err}\n{out}");
        // One connection, one SETTINGS each way, each acknowledged once.
        let count = |a: &str, b: &str| {
            out.lines()
                .filter(|l| l.contains(a) && l.contains(b))
                .count()
        };
        assert_eq!(count("] Connected", ""), 1, "{out}");
        for dir in ["send", "recv"] {
            let settings = format!("{dir} SETTINGS frame");
            assert_eq!(count(&settings, "flags=0x00"), 1, "{out}");
            assert_eq!(count(&settings, "flags=0x01"), 1, "{out}");
        }
        let mut streams: Vec<&str> = out
            .lines()
            .filter(|l| l.contains(":status: 200"))
            .filter_map(|l| l.split("stream_id=").nth(1)?.split(')').next())
            .collect();
        assert_eq!(streams.len(), paths.len(), "{out}");
        streams.sort();
        streams.dedup();
        assert_eq!(streams.len(), paths.len(), "one stream per request: {out}");
        assert!(!out.contains("recv GOAWAY"), "{out}");
    }
}

/// h2load, 2000 requests over 4 connections, 16 streams each at once.
fn h2load_tls_and_h2c(s: &Setup) {
    for (url, proto) in [
        (
            format!("https://127.0.0.1:{}/plaintext", s.tls.port()),
            "h2",
        ),
        (format!("http://{}/plaintext", s.server.addr), "h2c"),
    ] {
        let (st, out, err) = output_within(
            Command::new("h2load").args(["-n", "2000", "-c", "4", "-m", "16", &url]),
            Duration::from_secs(60),
        );
        assert!(st.success(), "{url}: {err}\n{out}");
        assert!(
            out.contains("2000 succeeded, 0 failed, 0 errored, 0 timeout"),
            "{out}"
        );
        assert!(out.contains("status codes: 2000 2xx"), "{out}");
        assert!(
            out.contains(&format!("Application protocol: {proto}\n")),
            "{out}"
        );
    }
}

/// `legacy.test` has `http2 = false`: curl is told HTTP_1_1_REQUIRED and
/// gets the answer over HTTP/1.1; on one h2c connection that stream is
/// reset and another site's is answered.
fn site_without_http2(s: &Setup) {
    let g = s.fetch_host(Via::Tls, "legacy.test", "/", &["-v"]);
    assert_eq!((g.code, g.version.as_str()), (200, "1.1"), "{g:?}");
    assert_eq!(g.text(), "legacy site\n");
    // It was asked over h2 first (ALPN offers h2 for every site).
    assert!(g.stderr.contains("HTTP_1_1_REQUIRED"), "{}", g.stderr);
    let g = s.fetch(Via::Tls, "/hello", &[]);
    assert_eq!((g.code, g.version.as_str()), (201, "2"), "{g:?}");
    let mut c = Conn::open(s.server.addr, &[]);
    c.send_request(1, &h2::request("GET", "/", "legacy.test"));
    let a = c.answer(1);
    assert_eq!(a.reset, Some(h2::HTTP_1_1_REQUIRED), "{a:?}");
    let a = c.get(3, "/hello");
    assert_eq!(
        (a.status, a.body.as_slice()),
        (201, &b"hello over h2\n"[..]),
        "{a:?}"
    );
    assert!(a.goaway.is_none(), "{a:?}");
}

/// Chromium loads a page over TLS; the page's navigation entry says h2.
fn chromium_sees_h2(s: &Setup) {
    let url = format!("https://localhost:{}/files/page/", s.tls.port());
    let dom = rendered_dom_with(
        &url,
        &[
            "--ignore-certificate-errors",
            "--host-resolver-rules=MAP localhost 127.0.0.1",
        ],
    );
    assert!(dom.contains("proto=h2<"), "the page did not see h2:\n{dom}");
}

/// The access log names the protocol: HTTP/2.0 for h2 and h2c, HTTP/1.1
/// for the retried legacy request.
fn access_log_says_http2(s: &Setup) {
    let want = [
        "\"GET /json HTTP/2.0\" 200",
        "\"POST /echo HTTP/2.0\" 200",
        "\"GET /files/big.bin HTTP/2.0\" 200",
        "\"GET /plaintext HTTP/1.1\" 200",
        "\"GET / HTTP/1.1\" 200",
    ];
    let mut log = String::new();
    for _ in 0..50 {
        log = s.server.stdout_text();
        if want.iter().all(|w| log.contains(w)) {
            break;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    for w in want {
        assert!(log.contains(w), "no {w} in the access log:\n{}", tail(&log));
    }
}
