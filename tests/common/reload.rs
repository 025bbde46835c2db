//! The reload test's server, configuration files, admin calls and the
//! clients that keep asking while it reloads (see `tests/reload.rs`).

use std::io::Write;
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::Duration;

use super::pki::{Leaf, Pki};
pub use super::pki::{Tls, tls_connect};
use super::*;

pub const TOKEN: &str = "reload-test-token-0123456789";

/// The configuration: sites `a` and `b` whose `/v` answers `<site> <tag>`
/// with an `X-Config: <tag>` header set by the site (a response from a
/// half-applied configuration would disagree), an HTTPS listener with the
/// certificate in `cert.pem`, and when `extra` is set a third site on its
/// own listener.
pub fn config(dir: &Path, tag: &str, extra: Option<u16>) -> String {
    let mut c = format!(
        r#"workers = 2
[access_log]
enabled = false
[admin]
token = "{TOKEN}"
[timeouts]
shutdown_delay = "1500ms"
[tls]
listen = "127.0.0.1:0"
cert = "{cert}"
key = "{key}"

[[site]]
name = "a"
hosts = ["a.test"]
default = true
response_headers = {{ set = {{ "X-Config" = "{tag}" }} }}
[[site.route]]
path = "/v"
handler = "respond"
body = "a {tag}\n"

[[site]]
name = "b"
hosts = ["b.test"]
response_headers = {{ set = {{ "X-Config" = "{tag}" }} }}
[[site.route]]
path = "/v"
handler = "respond"
body = "b {tag}\n"
"#,
        cert = dir.join("cert.pem").display(),
        key = dir.join("cert.key").display(),
    );
    if let Some(port) = extra {
        c.push_str(&format!(
            r#"
[[site]]
name = "extra"
hosts = ["extra.test"]
listen = ["127.0.0.1:{port}"]
[[site.route]]
path = "/"
handler = "respond"
body = "extra\n"
"#
        ));
    }
    c
}

pub struct Setup {
    pub server: Server,
    pub dir: PathBuf,
    pub file: PathBuf,
    pub pki: Pki,
    pub tls: SocketAddr,
}

impl Setup {
    pub fn write(&self, text: &str) {
        // Written whole, then renamed: a reader never sees half a file.
        let tmp = self.dir.join("next.toml");
        std::fs::write(&tmp, text).unwrap();
        std::fs::rename(&tmp, &self.file).unwrap();
    }

    pub fn install_cert(&self, leaf: &Leaf) {
        std::fs::copy(&leaf.cert, self.dir.join("cert.pem")).unwrap();
        std::fs::copy(&leaf.key, self.dir.join("cert.key")).unwrap();
    }

    /// `POST /config/reload` with the token: (status, JSON answer).
    pub fn reload(&self) -> (u16, serde_json::Value) {
        let r = admin(&self.server, "POST", "/config/reload", Some(TOKEN));
        (r.status, serde_json::from_slice(&r.body).unwrap())
    }
}

pub fn setup() -> Setup {
    let pki = Pki::new();
    let dir = tempdir("reload");
    let leaf = pki.issue(
        "one",
        &["a.test", "b.test", "localhost"],
        "reload one",
        false,
    );
    std::fs::copy(&leaf.cert, dir.join("cert.pem")).unwrap();
    std::fs::copy(&leaf.key, dir.join("cert.key")).unwrap();
    let file = dir.join("peregrine.toml");
    std::fs::write(&file, config(&dir, "one", None)).unwrap();
    let server = Server::start(&["--config", file.to_str().unwrap()]);
    let tls = server.tls.expect("an HTTPS listener");
    Setup {
        server,
        dir,
        file,
        pki,
        tls,
    }
}

/// One request to the admin listener, with the token when given.
pub fn admin(s: &Server, method: &str, path: &str, token: Option<&str>) -> Resp {
    let mut c = TcpStream::connect(s.admin.unwrap()).unwrap();
    c.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
    let auth = token.map_or(String::new(), |t| format!("Authorization: Bearer {t}\r\n"));
    write!(
        c,
        "{method} {path} HTTP/1.1\r\nHost: localhost\r\n{auth}Content-Length: 0\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    read_response(&mut c, false).unwrap()
}

pub fn admin_json(s: &Server, path: &str) -> serde_json::Value {
    let r = admin(s, "GET", path, Some(TOKEN));
    assert_eq!(r.status, 200, "{path}: {}", r.text());
    serde_json::from_slice(&r.body).unwrap()
}

pub fn metric(s: &Server, line_start: &str) -> String {
    let text = admin(s, "GET", "/metrics", Some(TOKEN)).text();
    text.lines()
        .find(|l| l.starts_with(line_start))
        .unwrap_or_else(|| panic!("no {line_start} in\n{text}"))
        .rsplit(' ')
        .next()
        .unwrap()
        .to_string()
}

pub fn keep_alive(addr: SocketAddr) -> TcpStream {
    let c = TcpStream::connect(addr).unwrap();
    c.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    c.set_nodelay(true).unwrap();
    c
}

/// A GET on an open connection.
pub fn ask(c: &mut TcpStream, host: &str, path: &str) -> std::io::Result<Resp> {
    write!(c, "GET {path} HTTP/1.1\r\nHost: {host}\r\n\r\n")?;
    read_response(c, false)
}

/// A GET on a fresh connection.
pub fn fetch(addr: SocketAddr, host: &str, path: &str) -> Resp {
    ask(&mut keep_alive(addr), host, path).unwrap()
}

/// Checks one answer of `/v`: 200, the right site, and body and header of
/// the same generation. Returns the tag.
pub fn check(r: &Resp, site: &str) -> Result<String, String> {
    let text = r.text();
    let tag = text
        .strip_prefix(&format!("{site} "))
        .and_then(|t| t.strip_suffix('\n'))
        .ok_or_else(|| format!("{site}: {} {text:?}", r.status))?;
    if r.status != 200 || r.header("x-config").as_deref() != Some(tag) {
        return Err(format!(
            "half-applied: {} {:?} {text:?}",
            r.status,
            r.header("x-config")
        ));
    }
    Ok(tag.to_string())
}

/// Clients that keep asking while the test reloads: keep-alive connections
/// to both sites, a fresh connection per request, and an HTTPS connection.
pub struct Load {
    pub stop: Arc<AtomicBool>,
    pub served: Arc<AtomicU64>,
    pub errors: Arc<Mutex<Vec<String>>>,
    pub threads: Vec<JoinHandle<()>>,
}

impl Load {
    pub fn start(s: &Setup) -> Load {
        let stop = Arc::new(AtomicBool::new(false));
        let served = Arc::new(AtomicU64::new(0));
        let errors = Arc::new(Mutex::new(Vec::new()));
        let mut threads = Vec::new();
        let addr = s.server.addr;
        for (site, fresh) in [("a", false), ("b", false), ("a", true)] {
            let (stop, served, errors) = (stop.clone(), served.clone(), errors.clone());
            threads.push(std::thread::spawn(move || {
                let host = format!("{site}.test");
                let mut c = keep_alive(addr);
                while !stop.load(Ordering::Relaxed) {
                    if fresh {
                        c = keep_alive(addr);
                    }
                    let r = ask(&mut c, &host, "/v").map_err(|e| e.to_string());
                    match r.and_then(|r| check(&r, site)) {
                        Ok(_) => served.fetch_add(1, Ordering::Relaxed),
                        Err(e) => {
                            errors.lock().unwrap().push(e);
                            return;
                        }
                    };
                }
            }));
        }
        let cfg = s.pki.client(ALL, None);
        let tls = s.tls;
        let (stop2, served2, errors2) = (stop.clone(), served.clone(), errors.clone());
        threads.push(std::thread::spawn(move || {
            let mut c = tls_connect(tls, "b.test", &cfg).unwrap();
            while !stop2.load(Ordering::Relaxed) {
                let r = tls_ask(&mut c, "b.test").map_err(|e| e.to_string());
                match r.and_then(|r| check(&r, "b")) {
                    Ok(_) => served2.fetch_add(1, Ordering::Relaxed),
                    Err(e) => {
                        errors2.lock().unwrap().push(format!("tls: {e}"));
                        return;
                    }
                };
            }
        }));
        Load {
            stop,
            served,
            errors,
            threads,
        }
    }

    /// Stops the clients; every answer was whole and consistent.
    pub fn finish(self) -> u64 {
        self.stop.store(true, Ordering::Relaxed);
        for t in self.threads {
            t.join().unwrap();
        }
        let errors = self.errors.lock().unwrap();
        assert!(errors.is_empty(), "{errors:?}");
        self.served.load(Ordering::Relaxed)
    }
}

pub const ALL: &[&rustls::SupportedProtocolVersion] =
    &[&rustls::version::TLS13, &rustls::version::TLS12];

pub fn tls_ask(c: &mut Tls, host: &str) -> std::io::Result<Resp> {
    write!(c, "GET /v HTTP/1.1\r\nHost: {host}\r\n\r\n")?;
    read_response(c, false)
}

pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}
