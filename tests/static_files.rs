//! Static files: content types, directories, validators, ranges, big files,
//! and attempts to leave the document root.

mod common;
use common::*;
use std::io::Write;

struct Site {
    server: Server,
    big: Vec<u8>,
}

fn site() -> Site {
    let root = tempdir("root");
    std::fs::write(root.join("index.html"), "<h1>home</h1>").unwrap();
    std::fs::write(root.join("style.css"), "body{}").unwrap();
    std::fs::create_dir(root.join("docs")).unwrap();
    std::fs::write(root.join("docs/index.html"), "docs index").unwrap();
    std::fs::create_dir(root.join("empty")).unwrap();
    std::fs::write(root.join("a b.txt"), "space").unwrap();
    std::fs::write(root.join("empty.txt"), "").unwrap();
    let big = write_random(&root.join("big.bin"), 5 * 1024 * 1024 + 123);
    std::os::unix::fs::symlink("/etc/passwd", root.join("passwd-link")).unwrap();
    std::os::unix::fs::symlink("style.css", root.join("inside-link.css")).unwrap();
    let outside = tempdir("outside");
    std::fs::write(outside.join("secret.txt"), "secret").unwrap();
    std::os::unix::fs::symlink(&outside, root.join("outdir")).unwrap();
    let server = Server::start(&["--root", root.to_str().unwrap(), "--workers", "2"]);
    Site { server, big }
}

#[test]
fn files_and_types() {
    let s = site();
    let r = get(&s.server, "/");
    assert_eq!((r.status, r.text().as_str()), (200, "<h1>home</h1>"));
    assert_eq!(
        r.header("content-type").as_deref(),
        Some("text/html; charset=utf-8")
    );
    assert_eq!(r.header("accept-ranges").as_deref(), Some("bytes"));
    assert!(r.header("etag").is_some() && r.header("last-modified").is_some());
    assert_eq!(
        get(&s.server, "/style.css")
            .header("content-type")
            .as_deref(),
        Some("text/css; charset=utf-8")
    );
    assert_eq!(get(&s.server, "/a%20b.txt").text(), "space");
    let e = get(&s.server, "/empty.txt");
    assert_eq!(
        (e.status, e.header("content-length").as_deref()),
        (200, Some("0"))
    );
    assert_eq!(get(&s.server, "/missing.html").status, 404);
    assert_eq!(get(&s.server, "/inside-link.css").text(), "body{}");
}

#[test]
fn directories() {
    let s = site();
    let r = get(&s.server, "/docs?x=1");
    assert_eq!(r.status, 301);
    assert_eq!(r.header("location").as_deref(), Some("/docs/?x=1"));
    assert_eq!(get(&s.server, "/docs/").text(), "docs index");
    assert_eq!(get(&s.server, "/empty/").status, 403);
}

#[test]
fn big_file_streams_intact() {
    let s = site();
    let r = get(&s.server, "/big.bin");
    assert_eq!(r.status, 200);
    assert_eq!(r.body.len(), s.big.len());
    assert!(r.body == s.big, "body differs");
    // Several at once on one connection, pipelined, with HEAD in between.
    let mut c = s.server.connect();
    c.write_all(b"GET /big.bin HTTP/1.1\r\nHost: a\r\n\r\nHEAD /big.bin HTTP/1.1\r\nHost: a\r\n\r\nGET /style.css HTTP/1.1\r\nHost: a\r\n\r\n").unwrap();
    assert!(read_response(&mut c, false).unwrap().body == s.big);
    let h = read_response(&mut c, true).unwrap();
    assert_eq!(h.header("content-length"), Some(s.big.len().to_string()));
    assert_eq!(read_response(&mut c, false).unwrap().text(), "body{}");
}

#[test]
fn conditional_requests() {
    let s = site();
    let r = get(&s.server, "/style.css");
    let etag = r.header("etag").unwrap();
    let lm = r.header("last-modified").unwrap();
    let cond = |h: &str| {
        exchange(
            &s.server,
            format!("GET /style.css HTTP/1.1\r\nHost: a\r\n{h}\r\n\r\n").as_bytes(),
        )
    };
    let nm = cond(&format!("If-None-Match: \"nope\", {etag}"));
    assert_eq!(nm.status, 304);
    assert_eq!(nm.header("etag"), Some(etag.clone()));
    assert!(nm.body.is_empty());
    assert_eq!(cond("If-None-Match: \"nope\"").status, 200);
    assert_eq!(cond(&format!("If-Modified-Since: {lm}")).status, 304);
    assert_eq!(
        cond("If-Modified-Since: Thu, 01 Jan 1970 00:00:00 GMT").status,
        200
    );
    // If-None-Match wins over If-Modified-Since.
    assert_eq!(
        cond(&format!(
            "If-None-Match: \"other\"\r\nIf-Modified-Since: {lm}"
        ))
        .status,
        200
    );
}

#[test]
fn preconditions() {
    let s = site();
    let r = get(&s.server, "/style.css");
    let etag = r.header("etag").unwrap();
    let lm = r.header("last-modified").unwrap();
    let cond = |method: &str, h: &str| {
        exchange(
            &s.server,
            format!("{method} /style.css HTTP/1.1\r\nHost: a\r\n{h}\r\n\r\n").as_bytes(),
        )
    };
    let get = |h: &str| cond("GET", h);
    let ok = get(&format!("If-Match: \"nope\", {etag}"));
    assert_eq!((ok.status, ok.text().as_str()), (200, "body{}"));
    assert_eq!(get("If-Match: *").status, 200);
    let failed = get("If-Match: \"nope\"");
    assert_eq!(failed.status, 412, "{}", failed.head);
    assert_eq!(failed.header("etag"), Some(etag.clone()));
    assert_eq!(failed.header("last-modified"), Some(lm.clone()));
    assert!(!failed.text().contains("body{}"));
    // If-Match compares strongly: the weak form of the same tag fails.
    assert_eq!(get(&format!("If-Match: W/{etag}")).status, 412);
    assert_eq!(cond("HEAD", "If-Match: \"nope\"").status, 412);
    // If-Unmodified-Since: modified after a past date fails; a future one passes.
    let past = get("If-Unmodified-Since: Thu, 01 Jan 1970 00:00:00 GMT");
    assert_eq!(past.status, 412);
    assert_eq!(past.header("etag"), Some(etag.clone()));
    assert_eq!(
        get("If-Unmodified-Since: Fri, 01 Jan 2100 00:00:00 GMT").status,
        200
    );
    assert_eq!(get(&format!("If-Unmodified-Since: {lm}")).status, 200);
    // An invalid date is ignored; so is the date when If-Match is present.
    assert_eq!(get("If-Unmodified-Since: yesterday").status, 200);
    assert_eq!(
        get(&format!(
            "If-Match: {etag}\r\nIf-Unmodified-Since: Thu, 01 Jan 1970 00:00:00 GMT"
        ))
        .status,
        200
    );
    // If-Match is evaluated before If-None-Match.
    let both = get(&format!("If-Match: {etag}\r\nIf-None-Match: {etag}"));
    assert_eq!(both.status, 304);
    assert_eq!(
        get(&format!("If-None-Match: {etag}\r\nIf-Match: \"nope\"")).status,
        412
    );
    // A passing If-Match leaves ranges alone.
    let part = get(&format!("If-Match: {etag}\r\nRange: bytes=0-3"));
    assert_eq!((part.status, part.text().as_str()), (206, "body"));
}

#[test]
fn ranges() {
    let s = site();
    let range = |h: &str| {
        exchange(
            &s.server,
            format!("GET /big.bin HTTP/1.1\r\nHost: a\r\n{h}\r\n\r\n").as_bytes(),
        )
    };
    let total = s.big.len();
    let r = range("Range: bytes=10-19");
    assert_eq!(r.status, 206);
    assert_eq!(
        r.header("content-range"),
        Some(format!("bytes 10-19/{total}"))
    );
    assert_eq!(r.body, &s.big[10..20]);
    let r = range("Range: bytes=-100");
    assert_eq!(r.body, &s.big[total - 100..]);
    let r = range(&format!("Range: bytes={}-", total - 5));
    assert_eq!(r.body, &s.big[total - 5..]);
    let r = range(&format!("Range: bytes={total}-"));
    assert_eq!(r.status, 416);
    assert_eq!(r.header("content-range"), Some(format!("bytes */{total}")));
    // Multiple ranges and stale If-Range get the whole file.
    assert_eq!(range("Range: bytes=0-1,5-6").status, 200);
    assert_eq!(range("Range: bytes=0-1\r\nIf-Range: \"stale\"").status, 200);
    let etag = range("").header("etag").unwrap();
    assert_eq!(
        range(&format!("Range: bytes=0-1\r\nIf-Range: {etag}")).status,
        206
    );
    // A large range in the middle streams correctly.
    let r = range("Range: bytes=1000000-3999999");
    assert!(r.body == s.big[1_000_000..4_000_000]);
}

#[test]
fn traversal_is_refused() {
    let s = site();
    for path in [
        "/../etc/passwd",
        "/%2e%2e/%2e%2e/etc/passwd",
        "/docs/../../etc/passwd",
        "/..%2fetc%2fpasswd",
        "/docs%2f..%2f..%2fetc%2fpasswd",
        "/..\\..\\etc\\passwd",
        "/%5c..%5cetc%5cpasswd",
        "/style.css%00.html",
    ] {
        let r = get(&s.server, path);
        assert_eq!(r.status, 400, "{path}: {}", r.head);
        assert!(!r.text().contains("root:"), "{path}");
    }
    // Symlinks that lead outside the root are not followed.
    assert_eq!(get(&s.server, "/passwd-link").status, 404);
    assert_eq!(get(&s.server, "/outdir/secret.txt").status, 404);
}

#[test]
fn methods_on_files() {
    let s = site();
    let r = exchange(
        &s.server,
        b"POST /style.css HTTP/1.1\r\nHost: a\r\nContent-Length: 0\r\n\r\n",
    );
    assert_eq!(r.status, 405);
    assert_eq!(r.header("allow").as_deref(), Some("GET, HEAD, OPTIONS"));
    let r = exchange(&s.server, b"OPTIONS /style.css HTTP/1.1\r\nHost: a\r\n\r\n");
    assert_eq!(r.status, 204);
    assert_eq!(r.header("allow").as_deref(), Some("GET, HEAD, OPTIONS"));
}

#[test]
fn curl_downloads_the_big_file() {
    let s = site();
    let dir = tempdir("curl");
    let out = dir.join("big.bin");
    let st = std::process::Command::new("curl")
        .args([
            "-sS",
            "-f",
            "-o",
            out.to_str().unwrap(),
            &s.server.url("/big.bin"),
        ])
        .status()
        .unwrap();
    assert!(st.success());
    assert!(std::fs::read(&out).unwrap() == s.big);
}

#[test]
fn big_file_by_copy_when_splicing_is_off() {
    let root = tempdir("copy");
    let big = write_random(&root.join("big.bin"), 3 * 1024 * 1024 + 5);
    let s = Server::with_config(
        &format!(
            "root = {:?}\n[engine]\nsplice_min_size = 0\nfile_chunk_size = 65536\n",
            root.to_str().unwrap()
        ),
        &[],
    );
    let mut c = s.connect();
    c.write_all(b"GET /big.bin HTTP/1.1\r\nHost: a\r\n\r\nGET /big.bin HTTP/1.1\r\nHost: a\r\nRange: bytes=100-199999\r\n\r\n").unwrap();
    assert!(read_response(&mut c, false).unwrap().body == big);
    let r = read_response(&mut c, false).unwrap();
    assert_eq!(r.status, 206);
    assert!(r.body == big[100..200_000]);
}
