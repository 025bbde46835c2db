//! Sites and routes end to end: one server with three sites on two plain and
//! two HTTPS listeners, asked over real sockets (raw requests, curl with
//! `--resolve`, a rustls client for SNI) about every handler kind, host
//! matching rule, error page, header rule and listing.

mod common;
use common::pki::{Leaf, Pki, Tls, tls_connect};
use common::*;
use std::io::Write;
use std::net::{SocketAddr, TcpStream};
use std::path::Path;
use std::process::Command;
use std::sync::Arc;
use std::time::Duration;

use rustls::ClientConfig;

const ALL: &[&rustls::SupportedProtocolVersion] =
    &[&rustls::version::TLS13, &rustls::version::TLS12];

struct Setup {
    server: Server,
    pki: Pki,
    client: Arc<ClientConfig>,
    /// 127.0.0.1 (the `--listen` one): shop and special, no default site.
    plain1: SocketAddr,
    /// 127.0.0.2: shop, special, and blog as the default.
    plain2: SocketAddr,
    /// 127.0.0.1 over TLS: shop and special, no default.
    tls1: SocketAddr,
    /// 127.0.0.2 over TLS: all three, blog the default.
    tls2: SocketAddr,
    shop: Leaf,
    blog: Leaf,
}

fn write(root: &Path, rel: &str, body: &str) {
    let p = root.join(rel);
    std::fs::create_dir_all(p.parent().unwrap()).unwrap();
    std::fs::write(p, body).unwrap();
}

fn setup() -> Setup {
    let pki = Pki::new();
    let default = pki.issue("localhost", &["localhost"], "localhost", false);
    let shop = pki.issue("shop", &["shop.test", "*.shop.test"], "shop.test", false);
    let blog = pki.issue("blog", &["blog.test"], "blog.test", false);
    let dir = tempdir("sites");
    let (shop_root, media, blog_root) = (dir.join("shop"), dir.join("media"), dir.join("blog"));
    write(&shop_root, "index.html", "shop home\n");
    write(&shop_root, "docs/index.htm", "docs in htm\n");
    write(&shop_root, "errors/404.html", "<h1>shop 404</h1>\n");
    write(&shop_root, "errors/4xx.html", "<h1>shop 4xx</h1>\n");
    write(&shop_root, "errors/5xx.html", "<h1>shop 5xx</h1>\n");
    write(&media, "b.txt", "bb\n");
    write(&media, "a.txt", "a\n");
    write(&media, "old.bak", "secret backup\n");
    write(&media, ".hidden", "dot\n");
    write(&media, "sub/x.txt", "x\n");
    write(&blog_root, "index.html", "blog home\n");
    write(&blog_root, ".secret", "s\n");
    write(&blog_root, ".well-known/acme", "token\n");
    let cfg = format!(
        r#"workers = 2
[access_log]
enabled = false
[tls]
listen = "127.0.0.1:0"
cert = {dc:?}
key = {dk:?}

[[site]]
name = "shop"
hosts = ["shop.test", "*.shop.test"]
tls = {{ cert = {sc:?}, key = {sk:?} }}
root = {shop_root:?}
index = ["index.html", "index.htm"]
response_headers = {{ set = {{ "X-Site" = "shop" }}, remove = ["Accept-Ranges"] }}
errors = {{ 404 = "/errors/404.html", "5xx" = "/errors/5xx.html" }}

[[site.route]]
path = "/api"
methods = ["GET", "POST"]
handler = "respond"
status = 201
body = "api\n"
headers = {{ "X-Api" = "1" }}

[[site.route]]
path = "/down"
handler = "respond"
status = 503

[[site.route]]
path = "/gone"
exact = true
handler = "respond"
status = 410
errors = {{ "4xx" = "/errors/4xx.html" }}

[[site.route]]
path = "/old"
handler = "redirect"
to = "https://{{host}}/new{{rest}}{{query}}"
status = 308

[[site.route]]
path = "/media"
handler = "files"
root = {media:?}
browse = true
hide = ["*.bak"]
response_headers = {{ set = {{ "Cache-Control" = "no-store" }} }}

[[site.route]]
path = "/bench"
handler = "builtins"

[[site]]
name = "special"
hosts = ["a.shop.test"]

[[site.route]]
path = "/"
handler = "respond"
body = "special\n"

[[site]]
name = "blog"
hosts = ["blog.test"]
listen = ["127.0.0.2:0"]
tls_listen = ["127.0.0.2:0"]
tls = {{ cert = {bc:?}, key = {bk:?} }}
default = true
root = {blog_root:?}
"#,
        dc = default.cert,
        dk = default.key,
        sc = shop.cert,
        sk = shop.key,
        bc = blog.cert,
        bk = blog.key,
    );
    let server = Server::with_config(&cfg, &[]);
    assert_eq!(server.addrs.len(), 2, "{:?}", server.addrs);
    assert_eq!(server.tls_addrs.len(), 2, "{:?}", server.tls_addrs);
    let client = pki.client(ALL, None);
    Setup {
        plain1: server.addrs[0],
        plain2: server.addrs[1],
        tls1: server.tls_addrs[0],
        tls2: server.tls_addrs[1],
        server,
        pki,
        client,
        shop,
        blog,
    }
}

/// One request (`head` lines after the request line) on a new connection.
fn ask(addr: SocketAddr, line: &str, head: &str) -> Resp {
    let mut s = TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    s.write_all(format!("{line}\r\n{head}Connection: close\r\n\r\n").as_bytes())
        .unwrap();
    read_response(&mut s, line.starts_with("HEAD ")).unwrap()
}

fn get(addr: SocketAddr, host: &str, path: &str) -> Resp {
    ask(
        addr,
        &format!("GET {path} HTTP/1.1"),
        &format!("Host: {host}\r\n"),
    )
}

fn tls(addr: SocketAddr, sni: &str, cfg: &Arc<ClientConfig>) -> Tls {
    tls_connect(addr, sni, cfg).unwrap()
}

fn tls_get(s: &mut Tls, host: &str, path: &str) -> Resp {
    s.write_all(format!("GET {path} HTTP/1.1\r\nHost: {host}\r\n\r\n").as_bytes())
        .unwrap();
    read_response(s, false).unwrap()
}

fn peer_cert(s: &Tls) -> Vec<u8> {
    s.conn.peer_certificates().unwrap()[0].as_ref().to_vec()
}

fn curl(args: &[&str]) -> String {
    let out = Command::new("curl")
        .args(["-s", "-i", "--max-time", "10"])
        .args(args)
        .output()
        .expect("curl");
    assert!(out.status.success(), "curl {args:?}: {out:?}");
    String::from_utf8_lossy(&out.stdout).into_owned()
}

#[test]
fn sites_end_to_end() {
    let s = setup();
    host_matching(&s);
    handlers(&s);
    header_rules_and_error_pages(&s);
    files_and_listings(&s);
    tls_and_sni(&s);
    with_curl(&s);
    assert!(
        !s.server.stderr_text().contains("warning"),
        "{}",
        s.server.stderr_text()
    );
}

fn host_matching(s: &Setup) {
    // Exact, then the one-label wildcard; an exact name beats the wildcard.
    assert_eq!(get(s.plain1, "shop.test", "/").text(), "shop home\n");
    assert_eq!(get(s.plain1, "SHOP.test:80", "/").text(), "shop home\n");
    assert_eq!(get(s.plain1, "b.shop.test", "/").text(), "shop home\n");
    assert_eq!(get(s.plain1, "a.shop.test", "/").text(), "special\n");
    // No site, no default: 404 over plain HTTP.
    let r = get(s.plain1, "x.b.shop.test", "/");
    assert_eq!(r.status, 404);
    assert!(
        r.text().contains("no site here for this host"),
        "{}",
        r.text()
    );
    assert_eq!(
        get(s.plain1, "blog.test", "/").status,
        404,
        "blog is not on .1"
    );
    // On 127.0.0.2 the blog is the default.
    assert_eq!(get(s.plain2, "blog.test", "/").text(), "blog home\n");
    assert_eq!(get(s.plain2, "unknown.test", "/").text(), "blog home\n");
    assert_eq!(get(s.plain2, "shop.test", "/").text(), "shop home\n");
    let r = ask(s.plain2, "GET / HTTP/1.0", "");
    assert_eq!(r.text(), "blog home\n", "no Host: the default");
    // Absolute-form targets match by their authority, not the Host field.
    let r = ask(
        s.plain2,
        "GET http://a.shop.test/ HTTP/1.1",
        "Host: blog.test\r\n",
    );
    assert_eq!(r.text(), "special\n");
}

fn handlers(s: &Setup) {
    // respond, with its method filter (GET brings HEAD).
    let r = get(s.plain1, "shop.test", "/api/v1");
    assert_eq!((r.status, r.text().as_str()), (201, "api\n"));
    assert_eq!(r.header("x-api").as_deref(), Some("1"));
    assert_eq!(
        r.header("content-type").as_deref(),
        Some("text/plain; charset=utf-8")
    );
    let mut c = TcpStream::connect(s.plain1).unwrap();
    c.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    c.write_all(b"POST /api HTTP/1.1\r\nHost: shop.test\r\nContent-Length: 3\r\n\r\nabc")
        .unwrap();
    assert_eq!(read_response(&mut c, false).unwrap().status, 201);
    let r = ask(s.plain1, "HEAD /api HTTP/1.1", "Host: shop.test\r\n");
    assert_eq!(r.status, 201);
    let r = ask(s.plain1, "DELETE /api HTTP/1.1", "Host: shop.test\r\n");
    assert_eq!(r.status, 405);
    assert_eq!(
        r.header("allow").as_deref(),
        Some("GET, HEAD, POST, OPTIONS")
    );
    // redirect, with placeholders.
    let r = get(s.plain1, "shop.test:8080", "/old/a/b?x=1");
    assert_eq!(r.status, 308);
    assert_eq!(
        r.header("location").as_deref(),
        Some("https://shop.test/new/a/b?x=1")
    );
    // builtins under a prefix.
    assert_eq!(
        get(s.plain1, "shop.test", "/bench/plaintext").text(),
        "Hello, World!"
    );
    assert_eq!(get(s.plain1, "shop.test", "/plaintext").status, 404);
    // exact: only the path itself.
    assert_eq!(get(s.plain1, "shop.test", "/gone").status, 410);
    assert_eq!(get(s.plain1, "shop.test", "/gone/x").status, 404);
}

fn header_rules_and_error_pages(s: &Setup) {
    let r = get(s.plain1, "shop.test", "/");
    assert_eq!(r.header("x-site").as_deref(), Some("shop"));
    assert_eq!(
        r.header("accept-ranges"),
        None,
        "removed by the site's rule"
    );
    assert!(r.header("etag").is_some());
    let r = get(s.plain1, "shop.test", "/media/a.txt");
    assert_eq!(r.header("cache-control").as_deref(), Some("no-store"));
    assert_eq!(
        r.header("x-site").as_deref(),
        Some("shop"),
        "site rules too"
    );
    assert_eq!(get(s.plain1, "a.shop.test", "/").header("x-site"), None);
    // Error pages: by status, by class, the route's own over the site's.
    let r = get(s.plain1, "shop.test", "/nothing-here");
    assert_eq!(r.status, 404);
    assert_eq!(r.text(), "<h1>shop 404</h1>\n");
    assert_eq!(
        r.header("content-type").as_deref(),
        Some("text/html; charset=utf-8")
    );
    assert_eq!(r.header("x-site").as_deref(), Some("shop"));
    let r = get(s.plain1, "shop.test", "/down");
    assert_eq!((r.status, r.text().as_str()), (503, "<h1>shop 5xx</h1>\n"));
    let r = get(s.plain1, "shop.test", "/gone");
    assert_eq!((r.status, r.text().as_str()), (410, "<h1>shop 4xx</h1>\n"));
    // The 405 keeps its Allow and gets no page (none for 405 or 4xx).
    let r = ask(s.plain1, "DELETE /api HTTP/1.1", "Host: shop.test\r\n");
    assert!(r.header("allow").is_some());
    assert!(r.text().starts_with("405 Method Not Allowed"));
    // HEAD of an error page: the page's length, no body.
    let r = ask(s.plain1, "HEAD /nope HTTP/1.1", "Host: shop.test\r\n");
    assert_eq!(r.status, 404);
    assert_eq!(r.header("content-length").as_deref(), Some("18"));
}

fn files_and_listings(s: &Setup) {
    // Index lists: index.htm when there is no index.html.
    assert_eq!(get(s.plain1, "shop.test", "/docs/").text(), "docs in htm\n");
    let r = get(s.plain1, "shop.test", "/media");
    assert_eq!(r.status, 301);
    assert_eq!(r.header("location").as_deref(), Some("/media/"));
    let r = get(s.plain1, "shop.test", "/media/");
    assert_eq!(r.status, 200);
    let html = r.text();
    assert!(r.header("content-type").unwrap().starts_with("text/html"));
    let (sub, a, b) = (
        html.find(">sub/</a>").expect("sub/ listed"),
        html.find(">a.txt</a>").expect("a.txt listed"),
        html.find(">b.txt</a>").expect("b.txt listed"),
    );
    assert!(sub < a && a < b, "directories first, then by name: {html}");
    assert!(
        html.contains("<a href=\"a.txt\">a.txt</a></td><td>2</td>"),
        "{html}"
    );
    assert!(html.contains(" GMT</td>"), "dates: {html}");
    assert!(
        !html.contains("old.bak") && !html.contains(".hidden"),
        "{html}"
    );
    let r = ask(
        s.plain1,
        "GET /media/ HTTP/1.1",
        "Host: shop.test\r\nAccept: application/json\r\n",
    );
    let v: serde_json::Value = serde_json::from_slice(&r.body).unwrap();
    let names: Vec<&str> = v["entries"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["sub", "a.txt", "b.txt"]);
    assert_eq!(v["entries"][2]["size"], 3);
    assert_eq!(v["entries"][0]["dir"], true);
    // Hidden names are never served: globs, and dotfiles by default.
    assert_eq!(get(s.plain1, "shop.test", "/media/old.bak").status, 404);
    assert_eq!(get(s.plain1, "shop.test", "/media/.hidden").status, 404);
    assert_eq!(get(s.plain1, "shop.test", "/media/sub/x.txt").text(), "x\n");
    assert_eq!(get(s.plain2, "blog.test", "/.secret").status, 404);
    assert_eq!(
        get(s.plain2, "blog.test", "/.well-known/acme").text(),
        "token\n"
    );
    // Without browse, a directory without an index is refused.
    assert_eq!(get(s.plain1, "shop.test", "/errors/").status, 403);
}

fn tls_and_sni(s: &Setup) {
    // SNI picks the site's certificate; Host must name the same site.
    let mut c = tls(s.tls1, "shop.test", &s.client);
    assert_eq!(peer_cert(&c), s.shop.der.as_ref());
    assert_eq!(tls_get(&mut c, "shop.test", "/").text(), "shop home\n");
    let r = tls_get(&mut c, "a.shop.test", "/");
    assert_eq!(r.status, 421, "Host names another site than the SNI's");
    // The wildcard certificate serves the exact-name site beside it.
    let mut c = tls(s.tls1, "a.shop.test", &s.client);
    assert_eq!(peer_cert(&c), s.shop.der.as_ref());
    assert_eq!(tls_get(&mut c, "a.shop.test", "/").text(), "special\n");
    // The blog's certificate on the listener it is on, and its default.
    let mut c = tls(s.tls2, "blog.test", &s.client);
    assert_eq!(peer_cert(&c), s.blog.der.as_ref());
    assert_eq!(tls_get(&mut c, "blog.test", "/").text(), "blog home\n");
    let mut c = tls(s.tls2, "localhost", &s.client);
    assert_eq!(tls_get(&mut c, "localhost", "/").text(), "blog home\n");
    // No site and no default on 127.0.0.1 over TLS: 421.
    let mut c = tls(s.tls1, "localhost", &s.client);
    let r = tls_get(&mut c, "localhost", "/");
    assert_eq!(r.status, 421);
    let r = tls_get(&mut c, "blog.test", "/");
    assert_eq!(r.status, 421, "the blog is not on this listener");
}

fn with_curl(s: &Setup) {
    let port = s.plain1.port();
    let out = curl(&[
        "--resolve",
        &format!("shop.test:{port}:127.0.0.1"),
        &format!("http://shop.test:{port}/api"),
    ]);
    assert!(out.starts_with("HTTP/1.1 201"), "{out}");
    assert!(out.ends_with("\r\n\r\napi\n"), "{out}");
    let port = s.tls2.port();
    let ca = s.pki.ca_path();
    let out = curl(&[
        "--cacert",
        ca.to_str().unwrap(),
        "--resolve",
        &format!("blog.test:{port}:127.0.0.2"),
        &format!("https://blog.test:{port}/"),
    ]);
    assert!(out.ends_with("blog home\n"), "{out}");
}
