//! Compression end to end: one server, its answers fetched raw with curl
//! and decoded by Python's gzip, brotli and zstandard modules (and by curl
//! `--compressed`), for every negotiation rule, the responses that must not
//! be compressed, streamed bodies and precompressed sidecar files.

mod common;
use common::*;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

struct Setup {
    server: Server,
    root: std::path::PathBuf,
    /// The upstream the `/up` route proxies to (serving the same root).
    _upstream: Server,
    /// The text the `/text` route answers.
    text: String,
    /// The sidecars' bytes.
    br: Vec<u8>,
    gz: Vec<u8>,
}

/// Python with the Debian modules (a Python of its own on PATH may lack them).
fn python() -> &'static str {
    if std::path::Path::new("/usr/bin/python3").exists() {
        "/usr/bin/python3"
    } else {
        "python3"
    }
}

/// `bytes` decoded by Python's module for `coding`.
fn decode(coding: &str, bytes: &[u8]) -> Vec<u8> {
    let code = match coding {
        "gzip" => {
            "import gzip,sys; sys.stdout.buffer.write(gzip.decompress(sys.stdin.buffer.read()))"
        }
        "br" => {
            "import brotli,sys; sys.stdout.buffer.write(brotli.decompress(sys.stdin.buffer.read()))"
        }
        // The frame may not carry its size (a streamed body): read it whole.
        "zstd" => {
            "import zstandard,sys; sys.stdout.buffer.write(zstandard.ZstdDecompressor().stream_reader(sys.stdin.buffer).read())"
        }
        c => panic!("no decoder for {c}"),
    };
    let mut child = Command::new(python())
        .args(["-c", code])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("python runs");
    use std::io::Write;
    child.stdin.take().unwrap().write_all(bytes).unwrap();
    let o = child.wait_with_output().unwrap();
    assert!(
        o.status.success(),
        "{coding}: {}",
        String::from_utf8_lossy(&o.stderr)
    );
    o.stdout
}

fn setup() -> Setup {
    let dir = tempdir("compression");
    let root = dir.join("root");
    std::fs::create_dir_all(&root).unwrap();
    let js = "function f(x) { return x * 2; }\n".repeat(200);
    std::fs::write(root.join("app.js"), &js).unwrap();
    std::fs::write(root.join("plain.js"), &js).unwrap();
    std::fs::write(root.join("stale.js"), &js).unwrap();
    // A page whose script fetches /text and writes what the browser saw:
    // the decoded text's length and the bytes on the wire.
    std::fs::write(
        root.join("page.html"),
        r#"<!doctype html><title>t</title><body>waiting<script>
fetch('/text').then(r => r.text().then(t => {
  const e = performance.getEntriesByName(new URL('/text', location).href)[0];
  document.body.textContent = 'len=' + t.length + ' enc=' + e.encodedBodySize +
    ' dec=' + e.decodedBodySize + ' ce=' + r.headers.get('content-encoding') + '.';
}));
</script>"#,
    )
    .unwrap();
    // Sidecars: any bytes do (they are served as they are), told apart.
    let br = b"sidecar in br".repeat(10);
    let gz = b"sidecar in gzip".repeat(10);
    std::fs::write(root.join("app.js.br"), &br).unwrap();
    std::fs::write(root.join("app.js.gz"), &gz).unwrap();
    std::fs::write(root.join("stale.js.br"), b"old").unwrap();
    // The stale sidecar is older than its file.
    let old = std::time::SystemTime::now() - Duration::from_secs(3600);
    std::fs::File::options()
        .write(true)
        .open(root.join("stale.js.br"))
        .unwrap()
        .set_modified(old)
        .unwrap();
    let upstream = Server::start(&["--root", root.to_str().unwrap()]);
    let text = "All work and no play makes Jack a dull boy.\n".repeat(100);
    let big = "0123456789abcdef".repeat(8192);
    let toml = format!(
        r#"
[[upstream]]
name = "up"
servers = ["{up}"]

[[site]]
name = "main"
default = true
root = "{root}"

[site.compression]
encodings = ["br", "zstd", "gzip"]
min_length = 1024
precompressed = ["br", "gzip"]

[[site.route]]
path = "/text"
handler = "respond"
body = "{text}"
headers = {{ "Content-Type" = "text/plain; charset=utf-8", "ETag" = "\"t1\"" }}

[[site.route]]
path = "/text-off"
handler = "respond"
body = "{text}"
headers = {{ "Content-Type" = "text/plain" }}
compression = false

[[site.route]]
path = "/big"
handler = "respond"
body = "{big}"
headers = {{ "Content-Type" = "text/plain" }}

[[site.route]]
path = "/short"
handler = "respond"
body = "short"
headers = {{ "Content-Type" = "text/plain" }}

[[site.route]]
path = "/image"
handler = "respond"
body = "{text}"
headers = {{ "Content-Type" = "image/png" }}

[[site.route]]
path = "/notransform"
handler = "respond"
body = "{text}"
headers = {{ "Content-Type" = "text/plain", "Cache-Control" = "public, no-transform" }}

[[site.route]]
path = "/b"
handler = "builtins"

[[site.route]]
path = "/up"
handler = "proxy"
upstream = "up"
strip_prefix = "/up"
"#,
        up = upstream.addr,
        root = root.display(),
        text = text.replace('\n', "\\n"),
    );
    let server = Server::with_config(&toml, &[]);
    Setup {
        server,
        root,
        _upstream: upstream,
        text,
        br,
        gz,
    }
}

fn get(t: &Setup, path: &str, accept: Option<&str>) -> Got {
    let url = t.server.url(path);
    let h;
    let mut args = vec![url.as_str()];
    if let Some(a) = accept {
        h = format!("Accept-Encoding: {a}");
        args.extend(["-H", h.as_str()]);
    }
    curl_got(&args)
}

fn negotiation(t: &Setup) {
    for (accept, want) in [
        ("br", Some("br")),
        ("zstd", Some("zstd")),
        ("gzip", Some("gzip")),
        ("x-gzip", Some("gzip")),
        ("gzip, deflate, br, zstd", Some("br")),
        ("gzip;q=1, br;q=0.5", Some("gzip")),
        ("br;q=0, gzip", Some("gzip")),
        ("*", Some("br")),
        ("*;q=0.1, zstd;q=0.5", Some("zstd")),
        ("deflate", None),
        ("identity", None),
        ("br;q=0, zstd;q=0, gzip;q=0", None),
        // Identity refused and nothing offered acceptable: identity anyway,
        // as nginx and Caddy answer.
        ("*;q=0", None),
    ] {
        let g = get(t, "/text", Some(accept));
        assert_eq!(g.code, 200, "{accept}");
        assert_eq!(g.header("content-encoding").as_deref(), want, "{accept}");
        assert_eq!(
            g.header("vary").as_deref(),
            Some("Accept-Encoding"),
            "{accept}"
        );
        let body = match want {
            Some(c) => {
                assert!(
                    g.body.len() < t.text.len() / 4,
                    "{accept}: {} bytes",
                    g.body.len()
                );
                assert_eq!(g.header("etag").as_deref(), Some("W/\"t1\""), "{accept}");
                decode(c, &g.body)
            }
            None => {
                assert_eq!(g.header("etag").as_deref(), Some("\"t1\""), "{accept}");
                g.body.clone()
            }
        };
        assert_eq!(String::from_utf8(body).unwrap(), t.text, "{accept}");
    }
    // No Accept-Encoding: identity, and the answer still varies.
    let g = get(t, "/text", None);
    assert_eq!(g.header("content-encoding"), None);
    assert_eq!(g.header("vary").as_deref(), Some("Accept-Encoding"));
    // A small body compressed at once has its length.
    let g = get(t, "/text", Some("gzip"));
    assert_eq!(
        g.header("content-length")
            .map(|l| l.parse::<usize>().unwrap()),
        Some(g.body.len())
    );
    // curl decodes what it asks for.
    for c in ["br", "zstd", "gzip"] {
        let url = t.server.url("/text");
        let g = curl_got(&["--compressed", "-H", &format!("Accept-Encoding: {c}"), &url]);
        assert_eq!(g.text(), t.text, "{c}");
    }
}

/// Headless Chromium loads a page whose script fetches a compressed answer.
fn chromium_decodes(t: &Setup) {
    let dom = common::chromium::rendered_dom(&t.server.url("/page.html"));
    let field = |name: &str| -> String {
        let at = dom
            .find(&format!("{name}="))
            .unwrap_or_else(|| panic!("no {name} in {dom}"));
        dom[at + name.len() + 1..]
            .split([' ', '.'])
            .next()
            .unwrap()
            .to_string()
    };
    assert_eq!(field("len"), t.text.len().to_string(), "{dom}");
    assert_eq!(field("dec"), t.text.len().to_string(), "{dom}");
    let enc: usize = field("enc").parse().unwrap();
    assert!(enc > 0 && enc < t.text.len() / 4, "{dom}");
    assert!(
        ["gzip", "br", "zstd"].contains(&field("ce").as_str()),
        "{dom}"
    );
}

fn what_is_not_compressed(t: &Setup) {
    // Below min_length, a type not listed, no-transform: as they are, and
    // (not being candidates) without Vary.
    for path in ["/short", "/image", "/notransform", "/text-off"] {
        let g = get(t, path, Some("gzip, br"));
        assert_eq!(g.code, 200, "{path}");
        assert_eq!(g.header("content-encoding"), None, "{path}");
        assert_eq!(g.header("vary"), None, "{path}");
    }
    // HEAD tells the identity length truly, and that the answer varies.
    let url = t.server.url("/text");
    let g = curl_got(&["-I", "-H", "Accept-Encoding: gzip", &url]);
    assert_eq!(g.code, 200);
    assert_eq!(g.header("content-encoding"), None);
    assert_eq!(g.header("vary").as_deref(), Some("Accept-Encoding"));
    assert_eq!(
        g.header("content-length").as_deref(),
        Some(t.text.len().to_string().as_str())
    );
}

/// Asks for `path` in `coding` until a compressed copy comes (each worker
/// makes its own, once): the copy's answer.
fn copy_of(t: &Setup, path: &str, coding: &str) -> Got {
    let started = Instant::now();
    loop {
        let g = get(t, path, Some(coding));
        assert_eq!(g.code, 200);
        assert_eq!(g.header("vary").as_deref(), Some("Accept-Encoding"));
        if g.header("content-encoding").is_some() {
            return g;
        }
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "no copy of {path} yet"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn files_without_sidecars(t: &Setup) {
    let js = "function f(x) { return x * 2; }\n".repeat(200);
    // Sent as it is until the background copy is ready, then the copy.
    for c in ["br", "zstd", "gzip"] {
        let g = copy_of(t, "/plain.js", c);
        assert_eq!(g.header("content-encoding").as_deref(), Some(c));
        assert_eq!(g.header("content-length"), Some(g.body.len().to_string()));
        assert!(g.header("etag").unwrap().ends_with(&format!(".{c}\"")));
        assert_eq!(String::from_utf8(decode(c, &g.body)).unwrap(), js, "{c}");
    }
    // HEAD: the identity length.
    let url = t.server.url("/plain.js");
    let g = curl_got(&["-I", "-H", "Accept-Encoding: gzip", &url]);
    assert_eq!(g.header("content-encoding"), None);
    assert_eq!(g.header("content-length").as_deref(), Some("6400"));
    // A changed file is copied anew (its validator changed).
    std::fs::write(t.root.join("plain.js"), "let y = 1;\n".repeat(300)).unwrap();
    std::thread::sleep(Duration::from_millis(1100)); // the open-file cache's check
    let g = copy_of(t, "/plain.js", "gzip");
    assert_eq!(
        decode("gzip", &g.body),
        "let y = 1;\n".repeat(300).as_bytes()
    );
}

fn large_and_streamed(t: &Setup) {
    // 128 KiB in memory: compressed as it is sent, chunked.
    let want = "0123456789abcdef".repeat(8192);
    for c in ["br", "zstd", "gzip"] {
        let g = get(t, "/big", Some(c));
        assert_eq!(g.header("content-encoding").as_deref(), Some(c));
        assert_eq!(
            g.header("transfer-encoding").as_deref(),
            Some("chunked"),
            "{c}"
        );
        assert_eq!(String::from_utf8(decode(c, &g.body)).unwrap(), want, "{c}");
    }
    // A streamed body (server-sent events, text/*): each event reaches the
    // client as it is made, decodable.
    let plain = curl_got(&[&t.server.url("/b/sse?events=3&interval_ms=10")]);
    assert_eq!(plain.header("content-encoding"), None);
    let url = t.server.url("/b/sse?events=3&interval_ms=400");
    let started = Instant::now();
    let mut child = Command::new("curl")
        .args(["-sSN", "--compressed", "-H", "Accept-Encoding: gzip", &url])
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut out = child.stdout.take().unwrap();
    let mut first = [0u8; 1];
    use std::io::Read;
    out.read_exact(&mut first).unwrap();
    let first_at = started.elapsed();
    let mut rest = Vec::new();
    out.read_to_end(&mut rest).unwrap();
    child.wait().unwrap();
    let all = started.elapsed();
    assert_eq!([&first[..], &rest].concat(), plain.body);
    assert!(
        first_at + Duration::from_millis(500) < all,
        "first byte at {first_at:?}, all at {all:?}"
    );
    // The same raw, in each coding.
    for c in ["br", "zstd", "gzip"] {
        let g = get(t, "/b/sse?events=3&interval_ms=10", Some(c));
        assert_eq!(g.header("content-encoding").as_deref(), Some(c));
        assert_eq!(decode(c, &g.body), plain.body, "{c}");
    }
    // A proxied answer (its length known upstream) is compressed as it
    // streams through; so is one over HTTP/2.
    let js = "function f(x) { return x * 2; }\n".repeat(200);
    for c in ["br", "zstd", "gzip"] {
        let g = get(t, "/up/plain.js", Some(c));
        assert_eq!(g.code, 200, "{c}");
        assert_eq!(g.header("content-encoding").as_deref(), Some(c));
        assert_eq!(g.header("vary").as_deref(), Some("Accept-Encoding"));
        assert!(
            g.header("content-length")
                .is_none_or(|l| l.parse::<usize>().unwrap() == g.body.len()),
            "{c}"
        );
        assert_eq!(String::from_utf8(decode(c, &g.body)).unwrap(), js, "{c}");
    }
    let url = t.server.url("/text");
    let g = curl_got(&["--http2-prior-knowledge", "-H", "Accept-Encoding: br", &url]);
    assert_eq!(g.version, "2");
    assert_eq!(g.header("content-encoding").as_deref(), Some("br"));
    assert_eq!(String::from_utf8(decode("br", &g.body)).unwrap(), t.text);
    // A binary stream is not a candidate.
    let g = get(t, "/b/stream?chunks=2&size=100&interval_ms=1", Some("gzip"));
    assert_eq!(g.header("content-encoding"), None);
    assert_eq!(g.body.len(), 200);
}

fn sidecars(t: &Setup) {
    let g = get(t, "/app.js", Some("gzip, br"));
    assert_eq!(g.header("content-encoding").as_deref(), Some("br"));
    assert_eq!(g.body, t.br);
    assert_eq!(
        g.header("content-type").as_deref(),
        Some("text/javascript; charset=utf-8")
    );
    assert_eq!(g.header("vary").as_deref(), Some("Accept-Encoding"));
    let br_tag = g.header("etag").unwrap();
    assert!(br_tag.ends_with(".br\""), "{br_tag}");
    assert_eq!(g.header("content-length"), Some(t.br.len().to_string()));
    // gzip only: the .gz; none: the file itself, varying.
    let g = get(t, "/app.js", Some("gzip"));
    assert_eq!(g.header("content-encoding").as_deref(), Some("gzip"));
    assert_eq!(g.body, t.gz);
    let g = get(t, "/app.js", Some("deflate"));
    assert_eq!(g.header("content-encoding"), None);
    assert_eq!(g.body.len(), 6400);
    assert_eq!(g.header("vary").as_deref(), Some("Accept-Encoding"));
    // Validators and ranges are the sidecar's.
    let url = t.server.url("/app.js");
    let g = curl_got(&[
        "-H",
        "Accept-Encoding: br",
        "-H",
        &format!("If-None-Match: {br_tag}"),
        &url,
    ]);
    assert_eq!(g.code, 304);
    let g = curl_got(&["-H", "Accept-Encoding: br", "-r", "0-9", &url]);
    assert_eq!(g.code, 206);
    assert_eq!(g.body, &t.br[..10]);
    assert_eq!(g.header("content-encoding").as_deref(), Some("br"));
    // A sidecar older than its file is not served: the file is, then its
    // compressed copy.
    let g = get(t, "/stale.js", Some("br"));
    assert_ne!(g.body, b"old");
    let g = copy_of(t, "/stale.js", "br");
    assert_eq!(decode("br", &g.body).len(), 6400);
}

#[test]
fn compression_end_to_end() {
    let t = setup();
    run_checks(
        &t,
        &[
            ("negotiation", negotiation),
            ("what is not compressed", what_is_not_compressed),
            ("large and streamed bodies", large_and_streamed),
            ("precompressed sidecars", sidecars),
            ("files without sidecars", files_without_sidecars),
            ("chromium decodes", chromium_decodes),
        ],
    );
}
