//! The guards at the edges of a connection and of a configuration: PROXY
//! protocol v1 and v2 headers naming the client, addresses refused at
//! accept before a TLS handshake, a rate limit held across workers under
//! `peregrine load`, and a reload changing the rules under load.

mod common;
use common::pki::Pki;
use common::*;
use std::io::{Read, Write};
use std::net::{IpAddr, SocketAddr};
use std::process::Command;
use std::time::{Duration, Instant};

const TOKEN: &str = "security-edge-token-0123456789";

fn last_log(server: &Server, target: &str) -> serde_json::Value {
    let want = format!("\"target\":\"{target}\"");
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let text = server.stdout_text();
        if let Some(l) = text.lines().rev().find(|l| l.contains(&want)) {
            return serde_json::from_str(l).unwrap();
        }
        assert!(
            Instant::now() < deadline,
            "no log line for {target}: {text}"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// A PROXY v2 header for a TCP connection from `src` to `dst`.
fn v2(src: SocketAddr, dst: SocketAddr, local: bool) -> Vec<u8> {
    let mut h = b"\r\n\r\n\0\r\nQUIT\n".to_vec();
    h.push(if local { 0x20 } else { 0x21 });
    let mut addrs = Vec::new();
    let fam = match (src.ip(), dst.ip()) {
        (IpAddr::V4(s), IpAddr::V4(d)) => {
            addrs.extend_from_slice(&s.octets());
            addrs.extend_from_slice(&d.octets());
            0x11
        }
        (IpAddr::V6(s), IpAddr::V6(d)) => {
            addrs.extend_from_slice(&s.octets());
            addrs.extend_from_slice(&d.octets());
            0x21
        }
        _ => panic!("mixed families"),
    };
    addrs.extend_from_slice(&src.port().to_be_bytes());
    addrs.extend_from_slice(&dst.port().to_be_bytes());
    h.push(fam);
    h.extend_from_slice(&(addrs.len() as u16).to_be_bytes());
    h.extend_from_slice(&addrs);
    h
}

fn send(server: &Server, parts: &[&[u8]]) -> Vec<u8> {
    let mut s = server.connect();
    for p in parts {
        s.write_all(p).unwrap();
        std::thread::sleep(Duration::from_millis(30));
    }
    let mut got = Vec::new();
    let _ = s.read_to_end(&mut got);
    got
}

#[test]
fn proxy_protocol_names_the_client() {
    let dir = tempdir("proxy-protocol");
    std::fs::write(dir.join("index.html"), "home\n").unwrap();
    let toml = format!(
        r#"
[access_log]
format = "json"
[server.client_ip]
proxy_protocol = true
[[site]]
name = "main"
default = true
root = "{}"
[site.ip_security]
rules = [{{ deny = "203.0.113.0/24" }}]
"#,
        dir.display()
    );
    let server = Server::with_config(&toml, &[]);
    let get = |t: &str| format!("GET {t} HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n");
    // v1, then the request.
    let req = get("/index.html?v1");
    let got = send(
        &server,
        &[
            b"PROXY TCP4 192.0.2.5 127.0.0.1 5555 80\r\n",
            req.as_bytes(),
        ],
    );
    assert!(
        got.starts_with(b"HTTP/1.1 200"),
        "{}",
        String::from_utf8_lossy(&got)
    );
    assert_eq!(
        last_log(&server, "/index.html?v1")["remote_addr"],
        "192.0.2.5"
    );
    // v1 split inside the header, in the same packet as the request.
    let req = get("/index.html?split");
    let whole = format!("PROXY TCP6 2001:db8::5 ::1 5555 80\r\n{req}");
    let got = send(&server, &[&whole.as_bytes()[..9], &whole.as_bytes()[9..]]);
    assert!(
        got.starts_with(b"HTTP/1.1 200"),
        "{}",
        String::from_utf8_lossy(&got)
    );
    assert_eq!(
        last_log(&server, "/index.html?split")["remote_addr"],
        "2001:db8::5"
    );
    // The named address is the one the rules judge.
    let req = get("/index.html?denied");
    let got = send(
        &server,
        &[
            b"PROXY TCP4 203.0.113.5 127.0.0.1 5555 80\r\n",
            req.as_bytes(),
        ],
    );
    assert!(
        got.starts_with(b"HTTP/1.1 403"),
        "{}",
        String::from_utf8_lossy(&got)
    );
    // v2 with IPv6, and LOCAL (a health check: the peer stays the peer).
    let src: SocketAddr = "[2001:db8::7]:4000".parse().unwrap();
    let dst: SocketAddr = "[2001:db8::1]:443".parse().unwrap();
    let req = get("/index.html?v2");
    let got = send(&server, &[&v2(src, dst, false), req.as_bytes()]);
    assert!(
        got.starts_with(b"HTTP/1.1 200"),
        "{}",
        String::from_utf8_lossy(&got)
    );
    assert_eq!(
        last_log(&server, "/index.html?v2")["remote_addr"],
        "2001:db8::7"
    );
    let req = get("/index.html?local");
    let got = send(&server, &[&v2(src, dst, true), req.as_bytes()]);
    assert!(
        got.starts_with(b"HTTP/1.1 200"),
        "{}",
        String::from_utf8_lossy(&got)
    );
    assert_eq!(
        last_log(&server, "/index.html?local")["remote_addr"],
        "127.0.0.1"
    );
    // No header, or a broken one: closed without an answer.
    let got = send(&server, &[get("/index.html?none").as_bytes()]);
    assert!(got.is_empty(), "{}", String::from_utf8_lossy(&got));
    let got = send(&server, &[b"PROXY TCP4 1.2.3.4 5.6.7.8 99999 80\r\n"]);
    assert!(got.is_empty(), "{}", String::from_utf8_lossy(&got));
}

#[test]
fn refused_addresses_are_closed_before_a_tls_handshake() {
    let pki = Pki::new();
    let leaf = pki.issue("localhost", &["localhost"], "localhost", false);
    let dir = tempdir("accept-deny");
    std::fs::write(dir.join("index.html"), "home\n").unwrap();
    let toml = format!(
        r#"
[tls]
listen = ["127.0.0.1:0"]
cert = "{}"
key = "{}"
[[site]]
name = "main"
default = true
root = "{}"
[site.ip_security]
rules = [{{ deny = "127.0.0.3" }}]
"#,
        leaf.cert.display(),
        leaf.key.display(),
        dir.display()
    );
    let server = Server::with_config(&toml, &[]);
    let tls = server.tls.expect("an HTTPS listener");
    // Denied: no ServerHello, the connection just ends.
    let mut s = connect_from("127.0.0.3", tls);
    let _ = s.write_all(b"\x16\x03\x01\x00\x05hello");
    let mut buf = Vec::new();
    let _ = s.read_to_end(&mut buf);
    assert!(buf.is_empty(), "{} bytes answered", buf.len());
    // Others complete the handshake.
    let url = format!("https://localhost:{}/index.html", tls.port());
    let resolve = format!("localhost:{}:127.0.0.1", tls.port());
    let ca = pki.ca_path();
    let (body, code) = curl(&[
        "--cacert",
        ca.to_str().unwrap(),
        "--resolve",
        &resolve,
        &url,
    ]);
    assert_eq!((body.as_str(), code.as_str()), ("home\n", "200"));
    // Over plain HTTP a refused address is answered 403 (forbidden).
    let mut s = connect_from("127.0.0.3", server.addr);
    s.write_all(b"GET /index.html HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n")
        .unwrap();
    assert_eq!(read_response(&mut s, false).unwrap().status, 403);
    // Workers publish their counts about once a second.
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let m = server.admin_get("/metrics").text();
        let denied: u64 = m
            .lines()
            .filter(|l| l.starts_with("peregrine_connections_closed_total") && l.contains("denied"))
            .map(|l| l.rsplit(' ').next().unwrap().parse::<u64>().unwrap())
            .sum();
        if denied >= 1 {
            break;
        }
        assert!(Instant::now() < deadline, "no denied close counted: {m}");
        std::thread::sleep(Duration::from_millis(200));
    }
}

fn limited_config(root: &std::path::Path, rate: &str, deny: &str) -> String {
    format!(
        r#"
workers = 2
[admin]
token = "{TOKEN}"
[access_log]
enabled = false
[[limit.zone]]
name = "per_ip"
key = "client_ip"
[[site]]
name = "main"
default = true
root = "{}"
[[site.limit_req]]
zone = "per_ip"
rate = "{rate}"
burst = 10
nodelay = true
[site.ip_security]
rules = [{deny}]
"#,
        root.display()
    )
}

/// `peregrine load` against `url`: (completed, 2xx, connect/read/write errors).
fn load(url: &str, rate: &str, secs: &str) -> (u64, u64, String) {
    let (status, out, err) = output_within(
        Command::new(bin()).args(["load", "-R", rate, "-d", secs, "-c", "8", url]),
        Duration::from_secs(30),
    );
    assert!(status.success(), "{out}{err}");
    let line = out.lines().find(|l| l.starts_with("requests:")).unwrap();
    let nums: Vec<u64> = line
        .split(|c: char| !c.is_ascii_digit())
        .filter(|s| !s.is_empty())
        .map(|s| s.parse().unwrap())
        .collect();
    let errors = out
        .lines()
        .find(|l| l.starts_with("errors:"))
        .unwrap()
        .to_string();
    // "N completed (M 2xx), U unsent"
    (nums[0], nums[1], errors)
}

#[test]
fn a_rate_limit_holds_across_workers_and_reloads() {
    let dir = tempdir("limits");
    let root = dir.join("root");
    std::fs::create_dir_all(&root).unwrap();
    std::fs::write(root.join("index.html"), "home\n").unwrap();
    let file = dir.join("peregrine.toml");
    std::fs::write(&file, limited_config(&root, "100r/s", "")).unwrap();
    let server = Server::start(&["--config", file.to_str().unwrap()]);
    let url = server.url("/index.html");
    // 1000 r/s for 3 s from many connections (spread over both workers):
    // 100 r/s pass, plus the burst.
    let (done, ok, errors) = load(&url, "1000", "3s");
    assert!(done >= 2900, "{done} {errors}");
    let want = 100.0 * 3.0 + 10.0;
    assert!(
        (ok as f64 - want).abs() <= want * 0.05 + 5.0,
        "{ok} of {done} passed"
    );
    assert!(errors.contains("connect 0, read 0, write 0"), "{errors}");
    // A reload keeps the zone's state and takes the new rate; under load.
    let reload = || {
        let r = common::reload::admin(&server, "POST", "/config/reload", Some(TOKEN));
        assert_eq!(r.status, 200, "{}", r.text());
    };
    std::fs::write(&file, limited_config(&root, "200r/s", "")).unwrap();
    let u = url.clone();
    let during = std::thread::spawn(move || load(&u, "1000", "3s"));
    std::thread::sleep(Duration::from_millis(1000));
    reload();
    let (done, ok, errors) = during.join().unwrap();
    assert!(done >= 2900, "{done} {errors}");
    assert!(errors.contains("connect 0, read 0, write 0"), "{errors}");
    // About 1 s at 100 r/s and 2 s at 200 r/s.
    assert!((440..=560).contains(&ok), "{ok} of {done} passed");
    // Rules changed by a reload apply to the next requests.
    std::fs::write(
        &file,
        limited_config(&root, "200r/s", "{ deny = \"127.0.0.0/8\" }"),
    )
    .unwrap();
    reload();
    assert_eq!(get(&server, "/index.html").status, 403);
}
