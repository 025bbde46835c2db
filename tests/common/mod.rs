//! Shared helpers for end-to-end tests: start the real binary on an ephemeral
//! loopback port, talk to it over real sockets.
#![allow(dead_code)]

pub mod chromium;
pub mod h2;
pub mod pki;
pub mod reload;
pub mod upstreams;

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// A running server process, stopped (SIGTERM, then SIGKILL) on drop.
pub struct Server {
    pub child: Child,
    pub addr: SocketAddr,
    /// The admin listener, unless the test turned it off.
    pub admin: Option<SocketAddr>,
    /// The first HTTPS listener, when one is configured.
    pub tls: Option<SocketAddr>,
    /// Every plain listener, in the order printed (the `--listen` one first).
    pub addrs: Vec<SocketAddr>,
    /// Every HTTPS listener, in the order printed.
    pub tls_addrs: Vec<SocketAddr>,
    pub stderr: PathBuf,
    /// Everything the server printed on stdout after its startup lines (the
    /// access log goes there by default).
    pub stdout: Arc<Mutex<String>>,
}

static COUNTER: AtomicUsize = AtomicUsize::new(0);

/// A fresh empty directory under the system temp dir.
/// An address that refuses connections for as long as the socket is kept:
/// bound, so no other process takes the port, but not listening.
pub fn refusing_addr() -> (socket2::Socket, SocketAddr) {
    let s = socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::STREAM, None).unwrap();
    s.bind(&SocketAddr::from(([127, 0, 0, 1], 0)).into())
        .unwrap();
    let addr = s.local_addr().unwrap().as_socket().unwrap();
    (s, addr)
}

pub fn tempdir(tag: &str) -> PathBuf {
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    let d = std::env::temp_dir().join(format!("peregrine-test-{}-{tag}-{n}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

pub fn bin() -> &'static str {
    env!("CARGO_BIN_EXE_peregrine")
}

impl Server {
    /// Starts `peregrine serve --listen 127.0.0.1:0 <args>` (plus an admin
    /// listener on an ephemeral port unless `args` names `--admin`) and waits
    /// for its startup lines.
    pub fn start(args: &[&str]) -> Server {
        let dir = tempdir("log");
        let stderr = dir.join("stderr.log");
        let admin_flag = args.contains(&"--admin");
        let mut cmd = Command::new(bin());
        cmd.arg("serve")
            .args(["--listen", "127.0.0.1:0"])
            .args(args);
        if !admin_flag {
            cmd.args(["--admin", "127.0.0.1:0"]);
        }
        let mut child = cmd
            .stdout(Stdio::piped())
            .stderr(std::fs::File::create(&stderr).unwrap())
            .spawn()
            .expect("spawn peregrine");
        let mut out = BufReader::new(child.stdout.take().unwrap());
        let mut addr = None;
        let mut admin = None;
        let mut tls = None;
        let mut addrs = Vec::new();
        let mut tls_addrs = Vec::new();
        let admin_expected = !(admin_flag && args.windows(2).any(|w| w == ["--admin", "off"]));
        while addr.is_none() || (admin_expected && admin.is_none()) {
            let mut line = String::new();
            if out.read_line(&mut line).unwrap() == 0 {
                let _ = child.kill();
                panic!(
                    "server exited at startup; stderr: {}",
                    std::fs::read_to_string(&stderr).unwrap_or_default()
                );
            }
            if let Some(rest) = line.split("https://").nth(1) {
                let a: SocketAddr = rest.split('/').next().unwrap().parse().unwrap();
                tls.get_or_insert(a);
                tls_addrs.push(a);
                continue;
            }
            let Some(rest) = line.split("http://").nth(1) else {
                continue;
            };
            let a: SocketAddr = rest.split('/').next().unwrap().parse().unwrap();
            if line.contains(" admin on ") {
                admin = Some(a);
            } else if line.contains("listening on") {
                addr.get_or_insert(a);
                addrs.push(a);
            }
        }
        let stdout = Arc::new(Mutex::new(String::new()));
        let sink = stdout.clone();
        std::thread::spawn(move || {
            let mut line = String::new();
            while out.read_line(&mut line).map(|n| n > 0).unwrap_or(false) {
                sink.lock().unwrap().push_str(&line);
                line.clear();
            }
        });
        Server {
            child,
            addr: addr.unwrap(),
            admin,
            tls,
            addrs,
            tls_addrs,
            stderr,
            stdout,
        }
    }

    /// What the server has printed on stdout since starting.
    pub fn stdout_text(&self) -> String {
        self.stdout.lock().unwrap().clone()
    }

    /// A GET to the admin listener.
    pub fn admin_get(&self, path: &str) -> Resp {
        let mut s = TcpStream::connect(self.admin.expect("admin listener on")).unwrap();
        s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
        s.write_all(
            format!("GET {path} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n")
                .as_bytes(),
        )
        .unwrap();
        read_response(&mut s, false).unwrap()
    }

    /// A POST without a body to the admin listener.
    pub fn admin_post(&self, path: &str) -> Resp {
        let mut s = TcpStream::connect(self.admin.expect("admin listener on")).unwrap();
        s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
        s.write_all(
            format!(
                "POST {path} HTTP/1.1\r\nHost: localhost\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
            )
            .as_bytes(),
        )
        .unwrap();
        read_response(&mut s, false).unwrap()
    }

    /// Starts with a TOML configuration (the listen address is added).
    pub fn with_config(toml: &str, extra: &[&str]) -> Server {
        let dir = tempdir("cfg");
        let path = dir.join("peregrine.toml");
        std::fs::write(&path, toml).unwrap();
        let p = path.to_str().unwrap().to_string();
        let mut args = vec!["--config", &p];
        args.extend_from_slice(extra);
        Server::start(&args)
    }

    pub fn connect(&self) -> TcpStream {
        let s = TcpStream::connect(self.addr).unwrap();
        s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
        s.set_nodelay(true).unwrap();
        s
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://{}{}", self.addr, path)
    }

    pub fn pid(&self) -> i32 {
        self.child.id() as i32
    }

    pub fn signal(&self, sig: &str) {
        let ok = Command::new("kill")
            .args(["-s", sig, &self.pid().to_string()])
            .status()
            .unwrap()
            .success();
        assert!(ok, "kill -s {sig}");
    }

    /// Waits up to `limit` for the process to exit; returns its exit code.
    pub fn wait_exit(&mut self, limit: Duration) -> Option<i32> {
        let t = Instant::now();
        while t.elapsed() < limit {
            if let Some(st) = self.child.try_wait().unwrap() {
                return st.code();
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        None
    }

    pub fn stderr_text(&self) -> String {
        std::fs::read_to_string(&self.stderr).unwrap_or_default()
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        if self.child.try_wait().ok().flatten().is_none() {
            let _ = Command::new("kill")
                .args(["-TERM", &self.pid().to_string()])
                .status();
            if self.wait_exit(Duration::from_secs(5)).is_none() {
                let _ = self.child.kill();
                let _ = self.child.wait();
            }
        }
    }
}

/// A parsed response.
#[derive(Debug, Clone)]
pub struct Resp {
    pub status: u16,
    pub head: String,
    pub body: Vec<u8>,
}

impl Resp {
    pub fn header(&self, name: &str) -> Option<String> {
        self.head.lines().skip(1).find_map(|l| {
            let (n, v) = l.split_once(':')?;
            n.eq_ignore_ascii_case(name).then(|| v.trim().to_string())
        })
    }

    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }
}

/// `read`, again when a signal interrupted it (an in-process server's
/// signal handling may interrupt the test's reads).
pub fn read_some<R: Read>(r: &mut R, buf: &mut [u8]) -> std::io::Result<usize> {
    loop {
        match r.read(buf) {
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            other => return other,
        }
    }
}

/// Reads one response from `r`; `head_request` when the request was HEAD.
pub fn read_response<R: Read>(r: &mut R, head_request: bool) -> std::io::Result<Resp> {
    let mut head = Vec::new();
    let mut byte = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") {
        let n = read_some(r, &mut byte)?;
        if n == 0 {
            return Err(std::io::Error::new(
                std::io::ErrorKind::UnexpectedEof,
                format!("eof in head after {:?}", String::from_utf8_lossy(&head)),
            ));
        }
        head.push(byte[0]);
    }
    let head = String::from_utf8(head).unwrap();
    let status: u16 = head[9..12].parse().unwrap();
    let mut resp = Resp {
        status,
        head,
        body: Vec::new(),
    };
    if head_request || status == 304 || status == 204 || status < 200 {
        return Ok(resp);
    }
    if let Some(len) = resp.header("content-length") {
        let mut body = vec![0; len.parse().unwrap()];
        r.read_exact(&mut body)?;
        resp.body = body;
    } else if resp.header("transfer-encoding").is_some() {
        while let Some(piece) = read_chunk(r)? {
            resp.body.extend_from_slice(&piece);
        }
    } else {
        r.read_to_end(&mut resp.body)?;
    }
    Ok(resp)
}

/// Reads one line ending in CRLF (without it).
fn read_line<R: Read>(r: &mut R) -> std::io::Result<String> {
    let mut line = Vec::new();
    let mut byte = [0u8; 1];
    while !line.ends_with(b"\r\n") {
        if read_some(r, &mut byte)? == 0 {
            return Err(std::io::ErrorKind::UnexpectedEof.into());
        }
        line.push(byte[0]);
    }
    line.truncate(line.len() - 2);
    Ok(String::from_utf8(line).unwrap())
}

/// Reads one chunk of a chunked body; `None` after the last chunk (and its
/// empty trailer section).
pub fn read_chunk<R: Read>(r: &mut R) -> std::io::Result<Option<Vec<u8>>> {
    let line = read_line(r)?;
    let size = usize::from_str_radix(line.split(';').next().unwrap().trim(), 16).unwrap();
    if size == 0 {
        while !read_line(r)?.is_empty() {}
        return Ok(None);
    }
    let mut data = vec![0; size];
    r.read_exact(&mut data)?;
    assert_eq!(read_line(r)?, "", "chunk data ends with CRLF");
    Ok(Some(data))
}

/// Reads a response head only (the body is left for the caller).
pub fn read_head<R: Read>(r: &mut R) -> std::io::Result<Resp> {
    let mut head = Vec::new();
    let mut byte = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") {
        if read_some(r, &mut byte)? == 0 {
            return Err(std::io::ErrorKind::UnexpectedEof.into());
        }
        head.push(byte[0]);
    }
    let head = String::from_utf8(head).unwrap();
    Ok(Resp {
        status: head[9..12].parse().unwrap(),
        head,
        body: Vec::new(),
    })
}

/// Sends `req` on a new connection and reads one response.
pub fn exchange(server: &Server, req: &[u8]) -> Resp {
    let mut s = server.connect();
    s.write_all(req).unwrap();
    read_response(&mut s, req.starts_with(b"HEAD ")).unwrap()
}

/// A simple GET on a new connection.
/// A request with `method` and extra header lines (Host `t`), on a new
/// connection; a POST carries an empty body.
pub fn request(s: &Server, method: &str, path: &str, headers: &[(&str, &str)]) -> Resp {
    let mut req = format!("{method} {path} HTTP/1.1\r\nHost: t\r\nConnection: close\r\n");
    for (n, v) in headers {
        req.push_str(&format!("{n}: {v}\r\n"));
    }
    if method == "POST" {
        req.push_str("Content-Length: 0\r\n");
    }
    req.push_str("\r\n");
    exchange(s, req.as_bytes())
}

pub fn get(server: &Server, path: &str) -> Resp {
    exchange(
        server,
        format!("GET {path} HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n").as_bytes(),
    )
}

/// Whether the server closed `s` (reads EOF, or a reset) within a few seconds.
pub fn closed(s: &mut TcpStream) -> bool {
    s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    let mut buf = [0u8; 1024];
    loop {
        match s.read(&mut buf) {
            Ok(0) => return true,
            Ok(_) => continue,
            Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset => return true,
            Err(_) => return false,
        }
    }
}

/// Writes a file of `len` pseudo-random bytes and returns its contents.
pub fn write_random(path: &Path, len: usize) -> Vec<u8> {
    let mut x: u64 = 0x9E37_79B9_7F4A_7C15 ^ len as u64;
    let data: Vec<u8> = (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x as u8
        })
        .collect();
    std::fs::write(path, &data).unwrap();
    data
}

/// Closes a socket with an RST instead of a FIN.
pub fn reset(s: TcpStream) {
    let sock = socket2::Socket::from(s);
    sock.set_linger(Some(Duration::ZERO)).unwrap();
}

/// `promtool check metrics` passes on `text` (a `/metrics` answer).
pub fn promtool_check(text: &str) {
    let file = tempdir("promtool").join("metrics.txt");
    std::fs::write(&file, text).unwrap();
    let out = Command::new("promtool")
        .args(["check", "metrics"])
        .stdin(std::fs::File::open(&file).unwrap())
        .output()
        .expect("promtool (Debian package prometheus) must be installed for this test");
    assert!(
        out.status.success(),
        "promtool: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// `curl -s` (20 s at most) with `args`: the body and the status code.
pub fn curl(args: &[&str]) -> (String, String) {
    let o = Command::new("curl")
        .args(["-s", "--max-time", "20", "-w", "\n%{http_code}"])
        .args(args)
        .output()
        .expect("curl runs");
    let text = String::from_utf8_lossy(&o.stdout).to_string();
    let (body, code) = text.rsplit_once('\n').unwrap_or(("", ""));
    (body.to_string(), code.to_string())
}

/// A named check of a shared setup.
pub type Check<T> = (&'static str, fn(&T));

/// Runs each named check against `setup`, going on after one fails (each
/// says how long it took on stderr); at the end, panics naming those that
/// failed. One server can so serve many independent checks.
pub fn run_checks<T>(setup: &T, checks: &[Check<T>]) {
    let mut failed = Vec::new();
    for (name, check) in checks {
        let t = Instant::now();
        let r = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| check(setup)));
        let verdict = if r.is_ok() { "ok" } else { "FAILED" };
        eprintln!("check {name}: {verdict} in {:.2?}", t.elapsed());
        if r.is_err() {
            failed.push(*name);
        }
    }
    assert!(failed.is_empty(), "checks that failed: {failed:?}");
}

/// Runs `cmd` to its end, `limit` at most (then it is killed and the test
/// fails with what it printed): its status, stdout and stderr.
pub fn output_within(
    cmd: &mut Command,
    limit: Duration,
) -> (std::process::ExitStatus, String, String) {
    let mut child = cmd
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("cannot run {cmd:?}: {e}"));
    let pipe = |mut r: Box<dyn Read + Send>| {
        std::thread::spawn(move || {
            let mut b = Vec::new();
            let _ = r.read_to_end(&mut b);
            String::from_utf8_lossy(&b).into_owned()
        })
    };
    let out = pipe(Box::new(child.stdout.take().unwrap()));
    let err = pipe(Box::new(child.stderr.take().unwrap()));
    let t = Instant::now();
    let status = loop {
        if let Some(st) = child.try_wait().unwrap() {
            break Some(st);
        }
        if t.elapsed() > limit {
            let _ = child.kill();
            let _ = child.wait();
            break None;
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    let (out, err) = (out.join().unwrap(), err.join().unwrap());
    match status {
        Some(st) => (st, out, err),
        None => panic!("{cmd:?} still ran after {limit:?}; stdout:\n{out}\nstderr:\n{err}"),
    }
}

/// What curl got: status, HTTP version (`2`, `1.1`), head and body.
#[derive(Debug)]
pub struct Got {
    pub code: u16,
    pub version: String,
    pub head: String,
    pub body: Vec<u8>,
    pub stderr: String,
}

impl Got {
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }

    /// A response header field (the last head, lowercase names over h2).
    pub fn header(&self, name: &str) -> Option<String> {
        let last = self.head.trim_end().rsplit("\r\n\r\n").next().unwrap_or("");
        last.lines().skip(1).find_map(|l| {
            let (n, v) = l.split_once(':')?;
            n.eq_ignore_ascii_case(name).then(|| v.trim().to_string())
        })
    }
}

/// `curl -sS` (20 s at most) with `args`.
pub fn curl_got(args: &[&str]) -> Got {
    let dir = tempdir("curl");
    let (head, body) = (dir.join("head"), dir.join("body"));
    let o = Command::new("curl")
        .args([
            "-sS",
            "--max-time",
            "20",
            "-w",
            "%{http_code} %{http_version}",
        ])
        .arg("-D")
        .arg(&head)
        .arg("-o")
        .arg(&body)
        .args(args)
        .output()
        .expect("curl runs");
    let w = String::from_utf8_lossy(&o.stdout).to_string();
    let (code, version) = w.split_once(' ').unwrap_or(("0", ""));
    let got = Got {
        code: code.parse().unwrap_or(0),
        version: version.to_string(),
        head: std::fs::read_to_string(&head).unwrap_or_default(),
        body: std::fs::read(&body).unwrap_or_default(),
        stderr: String::from_utf8_lossy(&o.stderr).into_owned(),
    };
    let _ = std::fs::remove_dir_all(&dir);
    got
}

/// A socket to `to` from source address `from` (loopback has all of 127/8).
pub fn connect_from(from: &str, to: SocketAddr) -> TcpStream {
    let s = socket2::Socket::new(
        socket2::Domain::for_address(to),
        socket2::Type::STREAM,
        None,
    )
    .unwrap();
    let src: std::net::IpAddr = from.parse().unwrap();
    s.bind(&SocketAddr::new(src, 0).into()).unwrap();
    s.connect(&to.into()).unwrap();
    let s: TcpStream = s.into();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    s
}
