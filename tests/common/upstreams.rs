//! Real upstream servers for the proxy tests and the clients that talk to
//! the proxy in front of them: Peregrine instances whose `/` answers their
//! own name, the Python upstream of `tests/upstream.py` that misbehaves on
//! cue, a keep-alive client, and the proxy's memory as `/proc` reports it.

use std::io::{BufRead, BufReader, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use super::{Resp, Server, read_response};

/// A loopback address with a port that was free a moment ago.
pub fn free_addr() -> SocketAddr {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
}

/// The configuration of a Peregrine upstream named `name`: one worker, no
/// access log, bodies up to 4 GB; `/` answers `name`, `/b/…` are the built-in handlers, and
/// `extra` is appended (more routes of the same site).
pub fn peer_config(name: &str, extra: &str) -> String {
    format!(
        r#"workers = 1
[access_log]
enabled = false
[limits]
max_request_body_size = 4000000000
[[site]]
name = "{name}"
default = true
[[site.route]]
path = "/"
handler = "respond"
body = "{name}"
[[site.route]]
path = "/b"
handler = "builtins"
{extra}"#
    )
}

/// A Peregrine upstream named `name` listening on `addr` (a fixed address,
/// so that it can be killed and started again there).
pub fn peer(name: &str, addr: SocketAddr) -> Server {
    peer_with(name, addr, "")
}

/// [`peer`] with more configuration (see [`peer_config`]).
pub fn peer_with(name: &str, addr: SocketAddr, extra: &str) -> Server {
    let a = addr.to_string();
    // Binding may race with the port's previous owner going away.
    for _ in 0..50 {
        if TcpListener::bind(addr).is_ok() {
            break;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    Server::with_config(
        &peer_config(name, extra),
        &["--listen", &a, "--admin", "off"],
    )
}

/// The Python upstream of `tests/upstream.py`, killed on drop.
pub struct Py {
    pub child: Child,
    pub addr: SocketAddr,
}

impl Py {
    /// Starts `tests/upstream.py --name NAME ARGS` on a free port.
    pub fn start(name: &str, args: &[&str]) -> Py {
        let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/upstream.py");
        let mut child = Command::new("python3")
            .arg(script)
            .args(["--port", "0", "--name", name])
            .args(args)
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("python3 runs tests/upstream.py");
        let mut line = String::new();
        BufReader::new(child.stdout.take().unwrap())
            .read_line(&mut line)
            .unwrap();
        let port: u16 = line
            .strip_prefix("PORT ")
            .and_then(|p| p.trim().parse().ok())
            .unwrap_or_else(|| panic!("upstream.py said {line:?}"));
        Py {
            child,
            addr: SocketAddr::from(([127, 0, 0, 1], port)),
        }
    }

    /// Its `/count` answer: (requests, connections) so far, this one
    /// included.
    pub fn count(&self) -> (u64, u64) {
        let mut c = Client::new(self.addr);
        let r = c.get("/count").unwrap();
        let text = r.text();
        let num = |k: &str| -> u64 {
            text.split_whitespace()
                .find_map(|w| w.strip_prefix(k))
                .and_then(|v| v.parse().ok())
                .unwrap_or_else(|| panic!("{text:?}"))
        };
        (num("requests="), num("connections="))
    }
}

impl Drop for Py {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A keep-alive HTTP/1.1 client that opens a new connection when the
/// server closed the last one.
pub struct Client {
    addr: SocketAddr,
    conn: Option<TcpStream>,
    /// Read time-out of each response.
    pub timeout: Duration,
}

impl Client {
    pub fn new(addr: SocketAddr) -> Client {
        Client {
            addr,
            conn: None,
            timeout: Duration::from_secs(30),
        }
    }

    /// A GET; the connection is kept.
    pub fn get(&mut self, path: &str) -> std::io::Result<Resp> {
        self.send("GET", path, &[], &[])
    }

    /// One request with `headers` (whole lines, without CRLF) and `body`
    /// (a `Content-Length` is added when the method is not GET).
    pub fn send(
        &mut self,
        method: &str,
        path: &str,
        headers: &[&str],
        body: &[u8],
    ) -> std::io::Result<Resp> {
        let mut req = format!("{method} {path} HTTP/1.1\r\nHost: localhost\r\n");
        for h in headers {
            req.push_str(h);
            req.push_str("\r\n");
        }
        if method != "GET" {
            req.push_str(&format!("Content-Length: {}\r\n", body.len()));
        }
        req.push_str("\r\n");
        let mut bytes = req.into_bytes();
        bytes.extend_from_slice(body);
        if self.conn.is_none() {
            let s = TcpStream::connect(self.addr)?;
            s.set_nodelay(true)?;
            self.conn = Some(s);
        }
        let s = self.conn.as_mut().unwrap();
        s.set_read_timeout(Some(self.timeout))?;
        let r = s
            .write_all(&bytes)
            .and_then(|()| read_response(s, method == "HEAD"));
        let keep = r.as_ref().is_ok_and(|r| {
            !r.header("connection")
                .is_some_and(|v| v.eq_ignore_ascii_case("close"))
        });
        if !keep {
            self.conn = None;
        }
        r
    }
}

/// The resident memory of process `pid`, in KiB (`VmRSS`).
pub fn rss_kib(pid: i32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .expect("VmRSS in /proc/PID/status")
}

/// Waits until `f` holds, polling, for at most `limit`.
pub fn wait_for(limit: Duration, mut f: impl FnMut() -> bool) -> bool {
    let t = Instant::now();
    while t.elapsed() < limit {
        if f() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    f()
}

/// Counts answers by body: (body, how many), in first-seen order.
#[derive(Debug, Default)]
pub struct Tally(pub Vec<(String, u64)>);

impl Tally {
    pub fn add(&mut self, key: &str) {
        match self.0.iter_mut().find(|(k, _)| k == key) {
            Some((_, n)) => *n += 1,
            None => self.0.push((key.to_string(), 1)),
        }
    }

    pub fn get(&self, key: &str) -> u64 {
        self.0.iter().find(|(k, _)| k == key).map_or(0, |(_, n)| *n)
    }

    pub fn total(&self) -> u64 {
        self.0.iter().map(|(_, n)| n).sum()
    }
}

/// A proxy configuration: `workers` workers, no access log, and for each
/// `(name, servers, keys)` an `[[upstream]]` group `name` with `servers`
/// (a TOML array) and the extra `keys` (TOML lines), proxied from the
/// route `/name` with that prefix stripped.
pub fn proxy_config(workers: usize, groups: &[(&str, String, &str)]) -> String {
    let mut ups = String::new();
    let mut routes = String::new();
    for (name, servers, keys) in groups {
        ups.push_str(&format!(
            "[[upstream]]\nname = \"{name}\"\nservers = {servers}\n{keys}\n"
        ));
        routes.push_str(&format!(
            "[[site.route]]\npath = \"/{name}\"\nhandler = \"proxy\"\nupstream = \"{name}\"\nstrip_prefix = \"/{name}\"\n"
        ));
    }
    format!(
        "workers = {workers}\n[access_log]\nenabled = false\n[limits]\nmax_request_body_size = 4000000000\n{ups}[[site]]\nname = \"front\"\ndefault = true\n{routes}"
    )
}

/// `["a", "b"]` for TOML.
pub fn list(addrs: &[SocketAddr]) -> String {
    let items: Vec<String> = addrs.iter().map(|a| format!("\"{a}\"")).collect();
    format!("[{}]", items.join(", "))
}

/// Which upstream answered: the `X-Upstream` field of the Python upstream,
/// else the body (a Peregrine upstream's `/` answers its name).
pub fn who(r: &Resp) -> String {
    r.header("x-upstream").unwrap_or_else(|| r.text())
}

/// One request of a [`Load`]: when it started and what came back (who
/// answered, or the failure).
#[derive(Clone, Debug)]
pub struct Rec {
    pub at: Instant,
    pub answer: Result<String, String>,
}

/// Client threads asking `path` on keep-alive connections until stopped.
pub struct Load {
    stop: std::sync::Arc<std::sync::atomic::AtomicBool>,
    recs: std::sync::Arc<std::sync::Mutex<Vec<Rec>>>,
    threads: Vec<std::thread::JoinHandle<()>>,
}

impl Load {
    pub fn start(addr: SocketAddr, path: &str, threads: usize) -> Load {
        use std::sync::atomic::{AtomicBool, Ordering};
        use std::sync::{Arc, Mutex};
        let stop = Arc::new(AtomicBool::new(false));
        let recs = Arc::new(Mutex::new(Vec::new()));
        let threads = (0..threads)
            .map(|_| {
                let (stop, recs, path) = (stop.clone(), recs.clone(), path.to_string());
                std::thread::spawn(move || {
                    let mut c = Client::new(addr);
                    while !stop.load(Ordering::Relaxed) {
                        let at = Instant::now();
                        let answer = match c.get(&path) {
                            Ok(r) if r.status == 200 => Ok(who(&r)),
                            Ok(r) => Err(format!("{} {}", r.status, r.text())),
                            Err(e) => Err(e.to_string()),
                        };
                        recs.lock().unwrap().push(Rec { at, answer });
                    }
                })
            })
            .collect();
        Load {
            stop,
            recs,
            threads,
        }
    }

    /// The requests made so far.
    pub fn count(&self) -> usize {
        self.recs.lock().unwrap().len()
    }

    /// Waits until `n` more requests than now were made (at most `limit`).
    pub fn wait_more(&self, n: usize, limit: Duration) {
        let goal = self.count() + n;
        assert!(
            wait_for(limit, || self.count() >= goal),
            "the load stalled at {} requests",
            self.count()
        );
    }

    /// Whether some request since `from` was answered by `name`.
    pub fn seen_since(&self, name: &str, from: Instant) -> bool {
        self.recs
            .lock()
            .unwrap()
            .iter()
            .any(|r| r.at >= from && r.answer.as_deref() == Ok(name))
    }

    /// Stops the clients; every request made, in the order they started.
    pub fn finish(self) -> Vec<Rec> {
        self.stop.store(true, std::sync::atomic::Ordering::Relaxed);
        for t in self.threads {
            t.join().unwrap();
        }
        let mut recs = std::mem::take(&mut *self.recs.lock().unwrap());
        recs.sort_by_key(|r| r.at);
        recs
    }
}

/// nginx as an upstream (`/usr/sbin/nginx`, no root needed): `/` answers
/// `nginx`, `/healthz` `ok`; stopped on drop.
pub struct Nginx {
    pub child: Child,
    pub addr: SocketAddr,
}

impl Nginx {
    pub fn start() -> Nginx {
        let dir = super::tempdir("nginx");
        let addr = free_addr();
        let d = dir.display();
        let conf = format!(
            r#"daemon off;
master_process off;
worker_processes 1;
pid {d}/nginx.pid;
error_log {d}/error.log;
events {{ worker_connections 256; }}
http {{
    access_log off;
    client_body_temp_path {d}/body;
    proxy_temp_path {d}/proxy;
    fastcgi_temp_path {d}/fastcgi;
    uwsgi_temp_path {d}/uwsgi;
    scgi_temp_path {d}/scgi;
    server {{
        listen {addr};
        default_type text/plain;
        location / {{ return 200 "nginx"; }}
        location = /healthz {{ return 200 "ok"; }}
    }}
}}
"#
        );
        std::fs::write(dir.join("nginx.conf"), conf).unwrap();
        let child = Command::new("nginx")
            .args(["-p", &d.to_string(), "-c"])
            .arg(dir.join("nginx.conf"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("nginx runs");
        let up = wait_for(Duration::from_secs(10), || TcpStream::connect(addr).is_ok());
        assert!(up, "nginx did not listen on {addr}: {d}/error.log");
        Nginx { child, addr }
    }
}

impl Drop for Nginx {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
