//! Sessions through the reverse proxy. WebSockets: the `Upgrade` handshake
//! goes to a real upstream (the stdlib upstream's `/ws` echo), and after its
//! `101` frames go through both ways, unframed by the proxy, across a
//! reload. CONNECT: a route with `connect = true` hands it to a forward
//! proxy upstream and tunnels after its 2xx. Sticky sessions: an affinity
//! cookie keeps a client on its server while that server is up.

mod common;

use std::io::{BufRead, BufReader, Read, Write};

use common::pki::{Pki, tls_connect};
use common::upstreams::Py;
use std::net::TcpStream;
use std::time::Duration;

/// The stdlib upstream (`tests/upstream.py`) named `name`, on a free port.
fn py(name: &str) -> Py {
    Py::start(name, &[])
}

fn config(up: u16, tunnel_idle: &str, tag: &str) -> String {
    format!(
        r#"
[[upstream]]
name = "app"
servers = ["127.0.0.1:{up}"]
timeouts = {{ tunnel_idle = "{tunnel_idle}" }}
[[site]]
name = "front"
hosts = ["localhost"]
default = true
[[site.route]]
path = "/tag"
handler = "respond"
body = "{tag}"
[[site.route]]
path = "/"
handler = "proxy"
upstream = "app"
"#
    )
}

/// A masked client frame.
fn frame(op: u8, data: &[u8]) -> Vec<u8> {
    let mask = [0x37, 0xfa, 0x21, 0x3d];
    let mut f = vec![0x80 | op];
    match data.len() {
        n if n < 126 => f.push(0x80 | n as u8),
        n if n < 1 << 16 => {
            f.push(0x80 | 126);
            f.extend_from_slice(&(n as u16).to_be_bytes());
        }
        n => {
            f.push(0x80 | 127);
            f.extend_from_slice(&(n as u64).to_be_bytes());
        }
    }
    f.extend_from_slice(&mask);
    f.extend(data.iter().enumerate().map(|(i, b)| b ^ mask[i % 4]));
    f
}

/// Reads one unmasked server frame: (opcode, payload).
fn read_frame(s: &mut impl Read) -> (u8, Vec<u8>) {
    let mut h = [0u8; 2];
    s.read_exact(&mut h).unwrap();
    let len = match h[1] & 0x7f {
        126 => {
            let mut b = [0u8; 2];
            s.read_exact(&mut b).unwrap();
            u16::from_be_bytes(b) as usize
        }
        127 => {
            let mut b = [0u8; 8];
            s.read_exact(&mut b).unwrap();
            u64::from_be_bytes(b) as usize
        }
        n => n as usize,
    };
    assert_eq!(h[1] & 0x80, 0, "server frames are not masked");
    let mut data = vec![0u8; len];
    s.read_exact(&mut data).unwrap();
    (h[0] & 0x0f, data)
}

/// Opens a WebSocket through the proxy; returns the stream and the head.
fn open(addr: std::net::SocketAddr) -> (BufReader<TcpStream>, String) {
    let mut s = TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    s.write_all(
        b"GET /ws HTTP/1.1\r\nHost: localhost\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\
          Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n",
    )
    .unwrap();
    let mut r = BufReader::new(s);
    let head = read_head(&mut r);
    (r, head)
}

/// Reads a response head, through its blank line.
fn read_head(r: &mut impl BufRead) -> String {
    let mut head = String::new();
    while !head.ends_with("\r\n\r\n") {
        assert!(
            r.read_line(&mut head).unwrap() > 0,
            "closed in the head: {head}"
        );
    }
    head
}

fn send(r: &mut BufReader<TcpStream>, bytes: &[u8]) {
    r.get_mut().write_all(bytes).unwrap();
}

fn closed(r: &mut BufReader<TcpStream>) -> bool {
    let mut b = [0u8; 1];
    matches!(r.read(&mut b), Ok(0) | Err(_))
}

#[test]
fn websocket_echo_through_the_proxy_survives_a_reload() {
    let up = py("ws-up");
    let dir = common::tempdir("ws");
    let path = dir.join("peregrine.toml");
    std::fs::write(&path, config(up.addr.port(), "2s", "one")).unwrap();
    let px = common::Server::start(&["--config", path.to_str().unwrap()]);

    let (mut ws, head) = open(px.addr);
    assert!(head.starts_with("HTTP/1.1 101 "), "{head}");
    let lower = head.to_ascii_lowercase();
    assert!(lower.contains("\r\nupgrade: websocket\r\n"), "{head}");
    assert!(lower.contains("\r\nconnection: upgrade\r\n"), "{head}");
    // RFC 6455's example key and its accept value.
    assert!(head.contains("Sec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo="));
    assert!(head.contains("X-Upstream: ws-up"), "{head}");
    assert!(!lower.contains("content-length") && !lower.contains("transfer-encoding"));

    // Text, a 200 KB binary frame (more than the proxy's windows), a ping.
    send(&mut ws, &frame(0x1, b"hello"));
    assert_eq!(read_frame(&mut ws), (0x1, b"hello".to_vec()));
    let big: Vec<u8> = (0..200_000u32).map(|i| (i * 7 % 251) as u8).collect();
    send(&mut ws, &frame(0x2, &big));
    let (op, got) = read_frame(&mut ws);
    assert_eq!(op, 0x2);
    assert!(got == big, "the big frame came back changed");
    send(&mut ws, &frame(0x9, b"p"));
    assert_eq!(read_frame(&mut ws), (0xA, b"p".to_vec()));

    // A reload (another body for /tag) leaves the open tunnel alone.
    std::fs::write(&path, config(up.addr.port(), "2s", "two")).unwrap();
    px.signal("HUP");
    let mut tag = String::new();
    for _ in 0..50 {
        tag = common::get(&px, "/tag").text();
        if tag == "two" {
            break;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    assert_eq!(tag, "two", "the reload took effect");
    send(&mut ws, &frame(0x1, b"after reload"));
    assert_eq!(read_frame(&mut ws), (0x1, b"after reload".to_vec()));

    // A close is echoed, then the upstream ends and so does the tunnel.
    send(&mut ws, &frame(0x8, &[0x03, 0xe8]));
    assert_eq!(read_frame(&mut ws), (0x8, vec![0x03, 0xe8]));
    assert!(closed(&mut ws));

    // A quiet tunnel ends after tunnel_idle (2 s here).
    let (mut ws, head) = open(px.addr);
    assert!(head.starts_with("HTTP/1.1 101 "), "{head}");
    let t = std::time::Instant::now();
    assert!(closed(&mut ws));
    let quiet = t.elapsed();
    assert!(
        quiet >= Duration::from_millis(1500) && quiet < Duration::from_secs(9),
        "{quiet:?}"
    );

    // A handshake the upstream refuses is an ordinary answer, and the
    // connection is then HTTP again.
    let mut s = px.connect();
    s.write_all(b"GET /other HTTP/1.1\r\nHost: localhost\r\nConnection: upgrade\r\nUpgrade: websocket\r\n\r\nGET /tag HTTP/1.1\r\nHost: localhost\r\n\r\n")
        .unwrap();
    let first = common::read_response(&mut s, false).unwrap();
    assert_eq!(first.status, 200);
    assert_eq!(first.text(), "ws-up GET /other\n");
    let second = common::read_response(&mut s, false).unwrap();
    assert_eq!(second.text(), "two");
    // CONNECT is refused.
    let mut s = px.connect();
    s.write_all(b"CONNECT example.com:443 HTTP/1.1\r\nHost: example.com:443\r\n\r\n")
        .unwrap();
    assert_eq!(common::read_response(&mut s, false).unwrap().status, 405);
}

/// One GET with an optional cookie: (upstream name, Set-Cookie value).
fn get_with(px: &common::Server, cookie: Option<&str>) -> (String, Option<String>) {
    let mut s = px.connect();
    let cookie = cookie.map_or(String::new(), |c| format!("Cookie: theme=dark; {c}\r\n"));
    write!(
        s,
        "GET /who HTTP/1.1\r\nHost: localhost\r\n{cookie}Connection: close\r\n\r\n"
    )
    .unwrap();
    let r = common::read_response(&mut s, false).unwrap();
    assert_eq!(r.status, 200, "{}", r.head);
    let name = r.text().split(' ').next().unwrap().to_string();
    (name, r.header("set-cookie"))
}

#[test]
fn sticky_cookie_keeps_a_client_on_its_server() {
    let a = py("a");
    let b = py("b");
    let config = format!(
        r#"
[[upstream]]
name = "app"
servers = ["127.0.0.1:{}", "127.0.0.1:{}"]
sticky = {{ cookie = "AFF" }}
retry = {{ tries = 2 }}
[[site]]
name = "front"
hosts = ["localhost"]
default = true
[[site.route]]
path = "/"
handler = "proxy"
upstream = "app"
"#,
        a.addr.port(),
        b.addr.port()
    );
    // Two workers: a value set by one core is honoured by the other.
    let px = common::Server::with_config(&format!("workers = 2\n{config}"), &[]);
    // Without a cookie: round robin, and each answer names its server.
    let (first, set) = get_with(&px, None);
    let set = set.expect("a Set-Cookie for a new client");
    assert!(set.starts_with("AFF="), "{set}");
    assert!(set.contains("; Path=/; HttpOnly; SameSite=Lax"), "{set}");
    let value = set.split(';').next().unwrap().to_string();
    let hex = value.strip_prefix("AFF=").unwrap();
    assert_eq!(hex.len(), 32);
    assert!(!hex.contains("127.0.0.1") && hex.bytes().all(|b| b.is_ascii_hexdigit()));
    // With it: the same server every time, and no new cookie.
    for _ in 0..10 {
        assert_eq!(get_with(&px, Some(&value)), (first.clone(), None));
    }
    // Both servers are reached by new clients, each with its own value
    // (each core balances on its own, so the other may take a few tries).
    let (second, other) = (0..20)
        .map(|_| get_with(&px, None))
        .find(|(name, _)| *name != first)
        .expect("new clients reach the other server too");
    assert_ne!(second, first);
    let other = other.expect("a cookie for the other server");
    assert_ne!(other.split(';').next().unwrap(), value);
    // A forged or stale value is ignored and replaced.
    let (_, set) = get_with(&px, Some("AFF=00000000000000000000000000000000"));
    assert!(set.is_some());
    // The cookie's server gone: the other answers and the cookie moves.
    let (gone, stays) = if first == "a" { (a, b) } else { (b, a) };
    drop(gone);
    let (name, set) = get_with(&px, Some(&value));
    assert_ne!(name, first);
    let moved = set.expect("the cookie moves to the server that answered");
    assert_ne!(moved.split(';').next().unwrap(), value);
    drop(stays);
}

/// Sends a CONNECT for `target` (with `extra` header lines); returns the
/// stream and the response head.
fn connect_to(
    addr: std::net::SocketAddr,
    target: &str,
    extra: &str,
) -> (BufReader<TcpStream>, String) {
    let mut s = TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    write!(
        s,
        "CONNECT {target} HTTP/1.1\r\nHost: {target}\r\n{extra}\r\n"
    )
    .unwrap();
    let mut r = BufReader::new(s);
    let head = read_head(&mut r);
    (r, head)
}

#[test]
fn connect_tunnels_through_a_forward_proxy_upstream() {
    let up = py("fwd");
    let pki = Pki::new();
    let leaf = pki.issue("proxy", &["proxy.test"], "proxy.test", false);
    let log = common::tempdir("connect-log").join("access.log");
    let config = format!(
        r#"
[access_log]
path = {log:?}
format = "json"
[tls]
listen = "127.0.0.1:0"
cert = {:?}
key = {:?}
[[upstream]]
name = "fwd"
servers = ["127.0.0.1:{}"]
timeouts = {{ tunnel_idle = "1s" }}
"#,
        leaf.cert,
        leaf.key,
        up.addr.port()
    );
    // Sites of one proxy route to the forward proxy.
    let site = |name: &str, host: &str, site_keys: &str, route_keys: &str| {
        format!(
            "[[site]]\nname = \"{name}\"\nhosts = [\"{host}\"]\n{site_keys}\n\
             [[site.route]]\npath = \"/\"\nhandler = \"proxy\"\nupstream = \"fwd\"\n{route_keys}\n"
        )
    };
    let config = [
        config,
        site("front", "localhost", "default = true", "connect = true"),
        site("other", "other.test", "", ""),
        site("secure", "proxy.test", "", "connect = true"),
    ]
    .concat();
    let mut px = common::Server::with_config(&config, &[]);

    // The upstream answers 200: the head has no framing fields, and bytes
    // go through both ways, unframed, until the client ends it.
    let (mut t, head) = connect_to(px.addr, "target.example:443", "");
    assert!(head.starts_with("HTTP/1.1 200 "), "{head}");
    assert!(head.contains("X-Upstream: fwd"), "{head}");
    let lower = head.to_ascii_lowercase();
    assert!(!lower.contains("content-length") && !lower.contains("transfer-encoding"));
    let mut line = String::new();
    t.read_line(&mut line).unwrap();
    assert_eq!(
        line,
        "TUNNEL fwd target.example:443 host=target.example:443 xff=127.0.0.1\n"
    );
    let big: Vec<u8> = (0..300_000u32).map(|i| (i * 13 % 251) as u8).collect();
    let writer = {
        let mut w = t.get_ref().try_clone().unwrap();
        let big = big.clone();
        std::thread::spawn(move || w.write_all(&big).unwrap())
    };
    let mut got = vec![0u8; big.len()];
    t.read_exact(&mut got).unwrap();
    writer.join().unwrap();
    assert!(got == big, "the tunnel changed the bytes");
    // What looks like HTTP is just bytes in a tunnel.
    send(&mut t, b"GET /tag HTTP/1.1\r\nHost: localhost\r\n\r\n");
    let mut echo = vec![0u8; 38];
    t.read_exact(&mut echo).unwrap();
    assert_eq!(echo, b"GET /tag HTTP/1.1\r\nHost: localhost\r\n\r\n");
    t.get_ref().shutdown(std::net::Shutdown::Write).unwrap();
    assert!(closed(&mut t), "the upstream's close ends the tunnel");

    // A quiet tunnel ends after tunnel_idle (1 s here).
    let (mut t, head) = connect_to(px.addr, "quiet.example:443", "");
    assert!(head.starts_with("HTTP/1.1 200 "), "{head}");
    let mut line = String::new();
    t.read_line(&mut line).unwrap();
    let at = std::time::Instant::now();
    assert!(closed(&mut t));
    let quiet = at.elapsed();
    assert!(
        quiet >= Duration::from_millis(800) && quiet < Duration::from_secs(8),
        "{quiet:?}"
    );

    // The upstream refuses: its answer, then the close (bytes the client
    // sent behind the CONNECT are never read as a request).
    let (mut t, head) = connect_to(px.addr, "deny.example:443", "");
    assert!(head.starts_with("HTTP/1.1 403 "), "{head}");
    assert!(head.contains("Connection: close"), "{head}");
    let mut body = String::new();
    t.read_to_string(&mut body).unwrap();
    assert_eq!(body, "denied\n");

    // A CONNECT with content is refused before it goes anywhere.
    let (_, head) = connect_to(px.addr, "target.example:443", "Content-Length: 3\r\n");
    assert!(head.starts_with("HTTP/1.1 400 "), "{head}");
    assert!(head.contains("Connection: close"), "{head}");
    // A site without `connect`: 405, its Allow without CONNECT.
    let (_, head) = connect_to(px.addr, "other.test:443", "");
    assert!(head.starts_with("HTTP/1.1 405 "), "{head}");
    // curl through the tunnel (`--proxytunnel`): the upstream relays to
    // itself, and curl gets its ordinary answer.
    let target = format!("http://127.0.0.1:{}/through", up.addr.port());
    let out = std::process::Command::new("curl")
        .args(["-sS", "--max-time", "10", "-p", "-x"])
        .arg(format!("http://{}", px.addr))
        .arg(&target)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(String::from_utf8_lossy(&out.stdout), "fwd GET /through\n");
    // Ordinary requests still go through the same route.
    assert_eq!(common::get(&px, "/x").text(), "fwd GET /x\n");

    // Over TLS the server name picks the site, whatever host the tunnel
    // goes to (no 421 for a Host that names another site).
    let client = pki.client(&[&rustls::version::TLS13], None);
    let t = tls_connect(px.tls.unwrap(), "proxy.test", &client).unwrap();
    let mut t = BufReader::new(t);
    t.get_mut()
        .write_all(b"CONNECT other.test:443 HTTP/1.1\r\nHost: other.test:443\r\n\r\n")
        .unwrap();
    let head = read_head(&mut t);
    assert!(head.starts_with("HTTP/1.1 200 "), "{head}");
    let mut line = String::new();
    t.read_line(&mut line).unwrap();
    assert_eq!(
        line,
        "TUNNEL fwd other.test:443 host=other.test:443 xff=127.0.0.1\n"
    );
    t.get_mut().write_all(b"through TLS").unwrap();
    let mut echo = [0u8; 11];
    t.read_exact(&mut echo).unwrap();
    assert_eq!(&echo, b"through TLS");
    drop(t);

    // Five CONNECTs and curl's GET reached the upstream, then /x and /count.
    assert!(common::get(&px, "/count").text().starts_with("requests=8 "));

    // Each tunnel has its access-log line once it ends, with the bytes that
    // went down it (the client's half-close ended the first).
    px.signal("TERM");
    assert_eq!(px.wait_exit(Duration::from_secs(10)), Some(0));
    let text = std::fs::read_to_string(&log).unwrap();
    let lines: Vec<serde_json::Value> = text
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .filter(|v: &serde_json::Value| v["method"] == "CONNECT")
        .collect();
    let status = |target: &str| -> Vec<(u64, u64)> {
        lines
            .iter()
            .filter(|v| v["target"] == target)
            .map(|v| {
                (
                    v["status"].as_u64().unwrap(),
                    v["body_bytes"].as_u64().unwrap(),
                )
            })
            .collect()
    };
    let first = status("target.example:443");
    assert_eq!(first.len(), 2, "{text}");
    assert!(first.contains(&(400, 50)), "{text}");
    let tunnel = first
        .iter()
        .find(|(s, _)| *s == 200)
        .expect("the tunnel's line");
    // The TUNNEL line, 300,000 bytes and the 38 of the request echoed.
    assert_eq!(tunnel.1, 68 + 300_000 + 38, "{text}");
    assert_eq!(status("deny.example:443"), [(403, 7)], "{text}");
    let mut other = status("other.test:443");
    other.sort();
    // Over TLS: the TUNNEL line and the 11 bytes echoed; in clear: 405.
    assert_eq!(other, [(200, 60 + 11), (405, 23)], "{text}");
}
