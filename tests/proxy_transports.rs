//! The reverse proxy's transports end to end: servers on Unix sockets (the
//! stdlib upstream in `tests/upstream.py`), a Peregrine HTTPS upstream
//! reached over TLS with its certificate verified, and an IPv6 upstream.

mod common;

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use common::pki::Pki;

/// A `tests/upstream.py` listening on a Unix socket, killed on drop.
struct PyUpstream {
    child: Child,
}

impl PyUpstream {
    fn unix(path: &Path, name: &str, extra: &[&str]) -> PyUpstream {
        let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/upstream.py");
        let mut child = Command::new("python3")
            .arg(script)
            .args(["--unix", path.to_str().unwrap(), "--name", name])
            .args(extra)
            .stdout(Stdio::piped())
            .spawn()
            .expect("python3 runs");
        let mut line = String::new();
        BufReader::new(child.stdout.take().unwrap())
            .read_line(&mut line)
            .unwrap();
        assert_eq!(line.trim(), format!("UNIX {}", path.display()));
        PyUpstream { child }
    }
}

impl Drop for PyUpstream {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn route(path: &str, upstream: &str) -> String {
    format!(
        "[[site.route]]\npath = \"{path}\"\nhandler = \"proxy\"\nupstream = \"{upstream}\"\nstrip_prefix = \"{}\"\n",
        path.trim_end_matches('/')
    )
}

const SITE: &str = "[[site]]\nname = \"front\"\nhosts = [\"localhost\"]\ndefault = true\n";

#[test]
fn unix_socket_servers_are_balanced_checked_and_streamed() {
    let dir = common::tempdir("unix");
    let sock = |n: &str| -> PathBuf { dir.join(format!("{n}.sock")) };
    let _a = PyUpstream::unix(&sock("a"), "ua", &[]);
    let _b = PyUpstream::unix(&sock("b"), "ub", &[]);
    let _sick = PyUpstream::unix(&sock("sick"), "usick", &["--fail-health"]);
    // One worker: round robin is per core.
    let config = format!(
        r#"
workers = 1
[[upstream]]
name = "pair"
servers = ["unix:{a}", {{ address = "unix:{b}" }}]
health = {{ uri = "/healthz", interval = "100ms", timeout = "1s" }}
[[upstream]]
name = "sick"
servers = ["unix:{sick}"]
health = {{ uri = "/healthz", interval = "100ms", timeout = "1s", fails = 1 }}
[[upstream]]
name = "gone"
servers = ["unix:{gone}"]
{SITE}{sick_route}{gone_route}
[[site.route]]
path = "/"
handler = "proxy"
upstream = "pair"
preserve_host = false
"#,
        a = sock("a").display(),
        b = sock("b").display(),
        sick = sock("sick").display(),
        gone = sock("gone").display(),
        sick_route = route("/sick/", "sick"),
        gone_route = route("/gone/", "gone"),
    );
    let px = common::Server::with_config(&config, &[]);
    let base = format!("http://{}", px.addr);
    // Checks run over the same sockets: the failing one is taken out.
    std::thread::sleep(Duration::from_millis(600));

    let mut seen = Vec::new();
    for i in 0..4 {
        let (body, code) = common::curl(&[&format!("{base}/x{i}")]);
        assert_eq!(code, "200", "{body}");
        seen.push(body.split(' ').next().unwrap().to_string());
        assert_eq!(body.split_once(' ').unwrap().1, format!("GET /x{i}\n"));
    }
    assert_eq!(seen, ["ua", "ub", "ua", "ub"], "the two servers take turns");

    // A Unix socket has no host: `localhost` goes up, as nginx sends.
    let (body, code) = common::curl(&[&format!("{base}/headers")]);
    assert_eq!(code, "200");
    let fields: Vec<(String, String)> = serde_json::from_str(&body).unwrap();
    let host: Vec<&str> = fields
        .iter()
        .filter(|(n, _)| n.eq_ignore_ascii_case("host"))
        .map(|(_, v)| v.as_str())
        .collect();
    assert_eq!(host, ["localhost"]);

    let data: String = (0..100_000)
        .map(|i| (b'a' + (i % 26) as u8) as char)
        .collect();
    let (body, code) = common::curl(&["--data-binary", &data, &format!("{base}/echo")]);
    assert_eq!(code, "200");
    assert!(body == data, "{} bytes came back", body.len());

    let (body, code) = common::curl(&[&format!("{base}/sick/x")]);
    assert_eq!(code, "503", "{body}");
    assert!(body.contains("no upstream server is available"), "{body}");

    // No socket at the path: a failed connect, with the reason.
    let (body, code) = common::curl(&[&format!("{base}/gone/x")]);
    assert_eq!(code, "502", "{body}");
    assert!(
        body.contains("cannot connect to the upstream server"),
        "{body}"
    );
    assert!(body.contains("No such file or directory"), "{body}");
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn an_https_upstream_with_its_certificate_verified() {
    let pki = Pki::new();
    let leaf = pki.issue("up", &["up.test", "127.0.0.1"], "up.test", false);
    let upstream = common::Server::with_config(
        &format!(
            "builtins = true\n[access_log]\nenabled = false\n[tls]\nlisten = \"127.0.0.1:0\"\ncert = {:?}\nkey = {:?}\n",
            leaf.cert, leaf.key
        ),
        &[],
    );
    let tls = upstream.tls.expect("an https listener");
    let plain = upstream.addr;
    let ca = pki.ca_path();
    let group = |name: &str, server: &str, keys: &str| {
        format!("[[upstream]]\nname = \"{name}\"\nservers = [\"{server}\"]\ntls = true\n{keys}\n")
    };
    let mut config = [
        group(
            "secure",
            &tls.to_string(),
            &format!(
                "ca = {ca:?}\nserver_name = \"up.test\"\nhealth = {{ uri = \"/plaintext\", interval = \"100ms\" }}"
            ),
        ),
        group("by_ip", &tls.to_string(), &format!("ca = {ca:?}")),
        group(
            "wrong_name",
            &tls.to_string(),
            &format!("ca = {ca:?}\nserver_name = \"other.test\""),
        ),
        group(
            "unverified",
            &tls.to_string(),
            "tls_verify = false\nserver_name = \"other.test\"",
        ),
        group("not_tls", &plain.to_string(), &format!("ca = {ca:?}")),
    ]
    .concat();
    // The system's roots do not include the test CA (where there are any).
    let system = std::env::var_os("SSL_CERT_FILE").is_some()
        || peregrine::tls::SYSTEM_BUNDLES
            .iter()
            .any(|p| Path::new(p).is_file());
    if system {
        config.push_str(&group(
            "system_roots",
            &tls.to_string(),
            "server_name = \"up.test\"",
        ));
    }
    config.push_str(SITE);
    let routes = [
        ("/by_ip/", "by_ip"),
        ("/wrong/", "wrong_name"),
        ("/system/", "system_roots"),
        ("/unverified/", "unverified"),
        ("/not_tls/", "not_tls"),
        ("/", "secure"),
    ];
    for (path, up) in routes {
        if system || up != "system_roots" {
            config.push_str(&route(path, up));
        }
    }
    let px = common::Server::with_config(&config, &[]);
    let base = format!("http://{}", px.addr);
    // Health checks run over TLS too: a broken one would take it out.
    std::thread::sleep(Duration::from_millis(500));

    for _ in 0..3 {
        let (body, code) = common::curl(&[&format!("{base}/plaintext")]);
        assert_eq!((body.as_str(), code.as_str()), ("Hello, World!", "200"));
    }
    // The upstream saw TLS with the name verified as SNI.
    let (body, code) = common::curl(&[&format!("{base}/tls-info")]);
    assert_eq!(code, "200", "{body}");
    let info: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(info["server_name"], "up.test");
    assert_eq!(info["alpn"], "http/1.1");

    let data: String = (0..100_000)
        .map(|i| (b'A' + (i % 26) as u8) as char)
        .collect();
    let (body, code) = common::curl(&["--data-binary", &data, &format!("{base}/echo")]);
    assert_eq!(code, "200");
    assert!(body == data, "{} bytes came back", body.len());

    // An IP address is verified against the certificate's IP addresses.
    let (body, code) = common::curl(&[&format!("{base}/by_ip/plaintext")]);
    assert_eq!((body.as_str(), code.as_str()), ("Hello, World!", "200"));
    let (body, code) = common::curl(&[&format!("{base}/unverified/plaintext")]);
    assert_eq!((body.as_str(), code.as_str()), ("Hello, World!", "200"));

    let mut fails = vec![
        (
            "/wrong/plaintext",
            "the certificate is not valid for the server name",
        ),
        (
            "/not_tls/plaintext",
            "the server does not speak TLS correctly",
        ),
    ];
    if system {
        fails.push((
            "/system/plaintext",
            "the certificate is not signed by a trusted CA",
        ));
    }
    for (path, why) in fails {
        let (body, code) = common::curl(&[&format!("{base}{path}")]);
        assert_eq!(code, "502", "{path}: {body}");
        assert!(
            body.contains("cannot connect to the upstream server: TLS handshake failed: "),
            "{path}: {body}"
        );
        assert!(body.contains(why), "{path}: {body}");
    }
    // The proxy still serves after the failures.
    let (body, code) = common::curl(&[&format!("{base}/plaintext")]);
    assert_eq!((body.as_str(), code.as_str()), ("Hello, World!", "200"));
}

#[test]
fn an_ipv6_upstream() {
    if std::net::TcpListener::bind("[::1]:0").is_err() {
        eprintln!("skipped: no IPv6 loopback here");
        return;
    }
    let up = common::Server::start(&["--builtins", "--listen", "[::1]:0"]);
    let v6 = *up
        .addrs
        .iter()
        .find(|a| a.is_ipv6())
        .expect("an IPv6 listener");
    let config = format!(
        "[[upstream]]\nname = \"v6\"\nservers = [\"[::1]:{}\"]\n{SITE}{}",
        v6.port(),
        route("/", "v6")
    );
    let px = common::Server::with_config(&config, &[]);
    let base = format!("http://{}", px.addr);
    let (body, code) = common::curl(&[&format!("{base}/plaintext")]);
    assert_eq!((body.as_str(), code.as_str()), ("Hello, World!", "200"));
    let data = "z".repeat(100_000);
    let (body, code) = common::curl(&["--data-binary", &data, &format!("{base}/echo")]);
    assert_eq!(code, "200");
    assert!(body == data, "{} bytes came back", body.len());
}

#[test]
fn a_client_certificate_for_an_upstream_that_requires_one() {
    let pki = Pki::new();
    let leaf = pki.issue("up", &["up.test"], "up.test", false);
    let client = pki.issue("proxy-client", &["proxy.test"], "front proxy", false);
    let upstream = common::Server::with_config(
        &format!(
            "builtins = true\n[access_log]\nenabled = false\n[tls]\nlisten = \"127.0.0.1:0\"\ncert = {:?}\nkey = {:?}\nclient_auth = \"required\"\nclient_ca = {:?}\n",
            leaf.cert,
            leaf.key,
            pki.ca_path()
        ),
        &[],
    );
    let tls = upstream.tls.expect("an https listener");
    let ca = pki.ca_path();
    let group = |name: &str, keys: &str| {
        format!(
            "[[upstream]]\nname = \"{name}\"\nservers = [\"{tls}\"]\ntls = true\nca = {ca:?}\nserver_name = \"up.test\"\n{keys}\n"
        )
    };
    let config = [
        group(
            "mutual",
            &format!(
                "client_cert = {:?}\nclient_key = {:?}",
                client.cert, client.key
            ),
        ),
        group("anonymous", ""),
        SITE.to_string(),
        route("/anonymous/", "anonymous"),
        route("/", "mutual"),
    ]
    .concat();
    let px = common::Server::with_config(&config, &[]);
    let base = format!("http://{}", px.addr);
    // The upstream saw the proxy's certificate, on every connection.
    for _ in 0..3 {
        let (body, code) = common::curl(&[&format!("{base}/tls-info")]);
        assert_eq!(code, "200", "{body}");
        let info: serde_json::Value = serde_json::from_str(&body).unwrap();
        assert_eq!(info["client_subject"], "CN=front proxy", "{body}");
    }
    let (body, code) = common::curl(&[&format!("{base}/plaintext")]);
    assert_eq!((body.as_str(), code.as_str()), ("Hello, World!", "200"));
    // Without one the upstream refuses the handshake: 502, and the proxy
    // goes on.
    let (body, code) = common::curl(&[&format!("{base}/anonymous/plaintext")]);
    assert_eq!(code, "502", "{body}");
    let (body, code) = common::curl(&[&format!("{base}/plaintext")]);
    assert_eq!((body.as_str(), code.as_str()), ("Hello, World!", "200"));

    // A key that is not the certificate's is a configuration error naming
    // the key and its line.
    let bad = [
        group(
            "mutual",
            &format!(
                "client_cert = {:?}\nclient_key = {:?}",
                client.cert, leaf.key
            ),
        ),
        SITE.to_string(),
        route("/", "mutual"),
    ]
    .concat();
    let path = common::tempdir("mtls-bad").join("p.toml");
    std::fs::write(&path, bad).unwrap();
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_peregrine"))
        .args(["check", "--config", path.to_str().unwrap()])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains(":8: upstream[0].client_key: ")
            && err.contains("does not belong to the certificate"),
        "{err}"
    );
}
