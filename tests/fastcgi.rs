//! FastCGI end to end: a real php-fpm (started here with its own
//! configuration in a temporary directory) running the small application
//! in `tests/php`, behind one Peregrine: GET with a query, a POST form, a
//! 20 MB multipart upload, cookies and headers, `Status: 404`, a
//! `Location` redirect, a response streamed with `flush()`, PATH_INFO, a
//! front controller behind `try_files`, the script-path rules, stderr in
//! the error log, and php-fpm stopped mid-load (502s, then recovery once it
//! is back).

mod common;
use common::upstreams::wait_for;
use common::*;
use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// The php-fpm binary (Debian names it after its version).
fn php_fpm() -> PathBuf {
    for dir in ["/usr/sbin", "/usr/bin"] {
        if let Ok(entries) = std::fs::read_dir(dir) {
            let mut found: Vec<PathBuf> = entries
                .flatten()
                .map(|e| e.path())
                .filter(|p| {
                    p.file_name()
                        .and_then(|n| n.to_str())
                        .is_some_and(|n| n.starts_with("php-fpm"))
                })
                .collect();
            found.sort();
            if let Some(p) = found.pop() {
                return p;
            }
        }
    }
    panic!("php-fpm is not installed (Debian: apt-get install php-fpm)");
}

/// A php-fpm listening on `sock`, killed on drop.
struct Fpm {
    child: Child,
    dir: PathBuf,
    sock: PathBuf,
}

impl Fpm {
    fn start(dir: &Path, sock: &Path) -> Fpm {
        let _ = std::fs::remove_file(sock);
        let conf = dir.join("php-fpm.conf");
        std::fs::write(
            &conf,
            format!(
                "[global]\nerror_log = {dir}/php-fpm.log\ndaemonize = no\n\
                 [app]\nlisten = {sock}\npm = static\npm.max_children = 4\nping.path = /ping\n\
                 catch_workers_output = yes\ndecorate_workers_output = no\nclear_env = no\n\
                 php_admin_value[upload_max_filesize] = 32M\nphp_admin_value[post_max_size] = 40M\n\
                 php_admin_value[output_buffering] = 0\nphp_admin_flag[log_errors] = on\n",
                dir = dir.display(),
                sock = sock.display()
            ),
        )
        .unwrap();
        use std::os::unix::process::CommandExt;
        // Its own process group, so that a stop takes its workers too.
        let child = Command::new(php_fpm())
            .process_group(0)
            .args(["-F", "-R", "-n", "-y"])
            .arg(&conf)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("php-fpm starts");
        assert!(
            wait_for(Duration::from_secs(10), || sock.exists()),
            "php-fpm never listened: {}",
            std::fs::read_to_string(dir.join("php-fpm.log")).unwrap_or_default()
        );
        Fpm {
            child,
            dir: dir.to_path_buf(),
            sock: sock.to_path_buf(),
        }
    }

    /// Kills the master and its workers at once (a crash, not a graceful
    /// stop).
    fn stop(&mut self) {
        let group = format!("-{}", self.child.id());
        let _ = Command::new("kill").args(["-KILL", "--", &group]).status();
        let _ = self.child.wait();
    }
}

impl Drop for Fpm {
    fn drop(&mut self) {
        self.stop();
    }
}

struct Setup {
    server: Server,
    fpm: std::cell::RefCell<Fpm>,
}

fn setup() -> Setup {
    let dir = tempdir("fastcgi");
    let sock = dir.join("php.sock");
    let fpm = Fpm::start(&dir, &sock);
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/php");
    let config = format!(
        r#"workers = 1
[limits]
max_request_body_size = 50000000
[[fastcgi]]
name = "php"
servers = ["unix:{sock}"]
root = "{root}"
params = {{ APP_ENV = "test" }}
passive = {{ max_fails = 0 }}
[[fastcgi]]
name = "checked"
servers = ["unix:{sock}", "unix:{dead}"]
root = "{root}"
health = {{ uri = "/ping", interval = "200ms", expect_body = "pong" }}
[[fastcgi]]
name = "front"
servers = ["unix:{sock}"]
root = "{root}"
try_files = ["{{path}}", "{{path}}/index.php", "/index.php"]
[[site]]
name = "app"
default = true
[[site.route]]
path = "/"
handler = "fastcgi"
upstream = "php"
[[site.route]]
path = "/app"
handler = "fastcgi"
upstream = "front"
"#,
        sock = sock.display(),
        root = root.display(),
        dead = dir.join("none.sock").display(),
    );
    let server = Server::with_config(&config, &[]);
    Setup {
        server,
        fpm: std::cell::RefCell::new(fpm),
    }
}

/// Active checks over FastCGI: php-fpm's ping answers `pong`, a socket
/// nobody listens on is down.
fn active_checks(st: &Setup) {
    let health = || {
        let v: serde_json::Value =
            serde_json::from_slice(&st.server.admin_get("/status").body).unwrap();
        let g = v["upstreams"]
            .as_array()
            .unwrap()
            .iter()
            .find(|u| u["name"] == "checked")
            .cloned()
            .unwrap();
        (
            g["servers"][0]["health"].clone(),
            g["servers"][1]["health"].clone(),
            g["servers"][0]["checks"]["pass"].as_u64().unwrap_or(0),
        )
    };
    assert!(
        wait_for(Duration::from_secs(10), || {
            let (a, b, passes) = health();
            a == "up" && b == "down" && passes >= 2
        }),
        "{:?}",
        health()
    );
}

fn json(r: &Resp) -> serde_json::Value {
    serde_json::from_slice(&r.body).unwrap_or_else(|e| panic!("{e}: {}", r.text()))
}

fn ask(s: &Server, req: &str) -> Resp {
    exchange(s, req.as_bytes())
}

fn get_and_query(st: &Setup) {
    let r = ask(
        &st.server,
        "GET /env.php?a=1&b=two HTTP/1.1\r\nHost: shop.test\r\nX-Test: yes\r\nProxy: http://evil\r\nConnection: close\r\n\r\n",
    );
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(
        r.header("content-type").as_deref(),
        Some("application/json")
    );
    let v = json(&r);
    let s = &v["server"];
    assert_eq!(v["get"]["a"], "1");
    assert_eq!(v["get"]["b"], "two");
    assert_eq!(s["SCRIPT_NAME"], "/env.php");
    assert!(
        s["SCRIPT_FILENAME"]
            .as_str()
            .unwrap()
            .ends_with("tests/php/env.php")
    );
    assert_eq!(s["REQUEST_URI"], "/env.php?a=1&b=two");
    assert_eq!(s["QUERY_STRING"], "a=1&b=two");
    assert_eq!(s["REQUEST_METHOD"], "GET");
    assert_eq!(s["SERVER_NAME"], "shop.test");
    assert_eq!(s["HTTP_HOST"], "shop.test");
    assert_eq!(s["REMOTE_ADDR"], "127.0.0.1");
    assert_eq!(s["HTTP_X_TEST"], "yes");
    assert_eq!(s["HTTP_PROXY"], serde_json::Value::Null, "httpoxy");
    assert_eq!(s["APP_ENV"], "test");
    assert_eq!(s["SERVER_PROTOCOL"], "HTTP/1.1");
    // HEAD: the head only.
    let r = exchange(
        &st.server,
        b"HEAD /env.php HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n",
    );
    assert_eq!(r.status, 200);
    assert!(r.body.is_empty());
}

fn post_form_cookies_headers(st: &Setup) {
    let body = "name=Ada+Lovelace&lang=en";
    let r = ask(
        &st.server,
        &format!(
            "POST /env.php HTTP/1.1\r\nHost: t\r\nContent-Type: application/x-www-form-urlencoded\r\n\
             Content-Length: {}\r\nCookie: theme=dark\r\nCookie: id=7\r\nConnection: close\r\n\r\n{body}",
            body.len()
        ),
    );
    let v = json(&r);
    assert_eq!(v["post"]["name"], "Ada Lovelace");
    assert_eq!(v["post"]["lang"], "en");
    assert_eq!(v["cookie"]["theme"], "dark");
    assert_eq!(v["cookie"]["id"], "7");
    assert_eq!(v["server"]["CONTENT_LENGTH"], body.len().to_string());
    let r = ask(
        &st.server,
        "GET /cookie.php HTTP/1.1\r\nHost: t\r\nCookie: theme=light\r\nConnection: close\r\n\r\n",
    );
    assert_eq!(r.status, 200);
    assert!(
        r.header("set-cookie").unwrap().starts_with("sid=abc123"),
        "{}",
        r.head
    );
    assert_eq!(r.header("x-seen").as_deref(), Some("light"));
    // A chunked body cannot be handed to FastCGI.
    let r = ask(
        &st.server,
        "POST /env.php HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n3\r\nabc\r\n0\r\n\r\n",
    );
    assert_eq!(r.status, 411);
}

fn upload_20mb(st: &Setup) {
    let dir = tempdir("upload");
    let file = dir.join("big.bin");
    let data = write_random(&file, 20 << 20);
    let md5 = {
        let o = Command::new("md5sum").arg(&file).output().unwrap();
        String::from_utf8_lossy(&o.stdout)
            .split_whitespace()
            .next()
            .unwrap()
            .to_string()
    };
    let (body, code) = curl(&[
        "-F",
        &format!("doc=@{}", file.display()),
        "-F",
        "note=hello",
        &st.server.url("/upload.php"),
    ]);
    assert_eq!(code, "200", "{body}");
    let v: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(v["files"]["doc"]["size"], data.len());
    assert_eq!(v["files"]["doc"]["md5"], md5);
    assert_eq!(v["post"]["note"], "hello");
}

fn statuses_and_redirects(st: &Setup) {
    let r = get(&st.server, "/status.php");
    assert_eq!(r.status, 404);
    assert_eq!(r.header("x-app").as_deref(), Some("missing"));
    assert_eq!(r.text(), "no such thing\n");
    let r = get(&st.server, "/redirect.php");
    assert_eq!(r.status, 302);
    assert_eq!(r.header("location").as_deref(), Some("/elsewhere"));
}

fn streamed(st: &Setup) {
    let mut c = st.server.connect();
    c.write_all(b"GET /stream.php HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n")
        .unwrap();
    let t = Instant::now();
    let mut buf = vec![0u8; 4096];
    let mut got = Vec::new();
    let mut first_at = None;
    loop {
        let n = c.read(&mut buf).unwrap();
        if n == 0 {
            break;
        }
        got.extend_from_slice(&buf[..n]);
        if first_at.is_none() && String::from_utf8_lossy(&got).contains("part 0") {
            first_at = Some(t.elapsed());
        }
    }
    let total = t.elapsed();
    let text = String::from_utf8_lossy(&got);
    assert!(text.contains("part 2"), "{text}");
    assert!(
        text.to_ascii_lowercase()
            .contains("transfer-encoding: chunked")
    );
    let first = first_at.unwrap();
    assert!(
        first + Duration::from_millis(400) < total,
        "first part at {first:?}, all at {total:?}"
    );
}

fn path_info_and_front_controller(st: &Setup) {
    let v = json(&get(&st.server, "/env.php/a/b?x=1"));
    assert_eq!(v["server"]["SCRIPT_NAME"], "/env.php");
    assert_eq!(v["server"]["PATH_INFO"], "/a/b");
    let r = get(&st.server, "/app/blog/post/7?page=2");
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(
        r.text(),
        "front /app/blog/post/7?page=2 script=/index.php\n"
    );
    // The route's prefix is part of the path under the root (as nginx's
    // `root`): /app/sub/ is not a directory there, so the front controller.
    assert_eq!(
        get(&st.server, "/app/sub/").text(),
        "front /app/sub/ script=/index.php\n"
    );
    assert_eq!(get(&st.server, "/sub/").text(), "sub index\n");
    // Only scripts run, only under the root.
    assert_eq!(get(&st.server, "/nope.php").status, 404);
    assert_eq!(get(&st.server, "/uploads/x.jpg").status, 404);
    assert_eq!(get(&st.server, "/uploads/x.jpg/.php").status, 404);
    assert_eq!(get(&st.server, "/uploads/x.jpg/x.php").status, 404);
    assert_eq!(get(&st.server, "/plain.txt").status, 404);
    let r = get(&st.server, "/sub/..%2f..%2fCargo.toml.php");
    assert!(r.status == 404 || r.status == 400, "{}", r.status);
}

fn stderr_logged(st: &Setup) {
    assert_eq!(get(&st.server, "/warn.php").text(), "warned\n");
    assert!(
        wait_for(Duration::from_secs(5), || st
            .server
            .stderr_text()
            .contains("peregrine-test-stderr-line")),
        "stderr: {}",
        st.server.stderr_text()
    );
}

/// Twice as many concurrent requests as php-fpm has processes: a kept
/// connection holds its process, so connections are given up for the
/// requests waiting on new ones, and every request is answered at once.
fn more_requests_than_processes(st: &Setup) {
    let addr = st.server.addr;
    let t = Instant::now();
    let threads: Vec<_> = (0..8)
        .map(|_| {
            std::thread::spawn(move || {
                (0..4)
                    .map(|_| {
                        let mut c = TcpStream::connect(addr).unwrap();
                        c.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
                        c.write_all(
                            b"GET /slow.php HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n",
                        )
                        .unwrap();
                        read_response(&mut c, false).map(|r| r.status).unwrap_or(0)
                    })
                    .collect::<Vec<u16>>()
            })
        })
        .collect();
    let statuses: Vec<u16> = threads
        .into_iter()
        .flat_map(|t| t.join().unwrap())
        .collect();
    assert!(statuses.iter().all(|s| *s == 200), "{statuses:?}");
    // 32 requests of 50 ms on 4 processes: about 0.4 s.
    assert!(t.elapsed() < Duration::from_secs(5), "{:?}", t.elapsed());
}

fn fpm_stopped_mid_load(st: &Setup) {
    let addr = st.server.addr;
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let counts = std::sync::Arc::new(std::sync::Mutex::new((0u32, 0u32, 0u32)));
    let threads: Vec<_> = (0..4)
        .map(|_| {
            let (stop, counts) = (stop.clone(), counts.clone());
            std::thread::spawn(move || {
                while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                    let Ok(mut c) = TcpStream::connect(addr) else {
                        counts.lock().unwrap().2 += 1;
                        std::thread::sleep(Duration::from_millis(50));
                        continue;
                    };
                    c.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
                    c.write_all(b"GET /slow.php HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n")
                        .unwrap();
                    let r = read_response(&mut c, false);
                    let mut n = counts.lock().unwrap();
                    match r {
                        Ok(r) if r.status == 200 && r.text() == "slow ok\n" => n.0 += 1,
                        Ok(r) if r.status == 502 || r.status == 503 || r.status == 504 => n.1 += 1,
                        other => {
                            eprintln!("unexpected: {other:?}");
                            n.2 += 1
                        }
                    }
                }
            })
        })
        .collect();
    std::thread::sleep(Duration::from_millis(500));
    let (dir, sock) = {
        let mut f = st.fpm.borrow_mut();
        f.stop();
        (f.dir.clone(), f.sock.clone())
    };
    std::thread::sleep(Duration::from_millis(700));
    let during = *counts.lock().unwrap();
    *st.fpm.borrow_mut() = Fpm::start(&dir, &sock);
    let recovered = wait_for(Duration::from_secs(10), || {
        let Ok(mut c) = TcpStream::connect(addr) else {
            return false;
        };
        c.set_read_timeout(Some(Duration::from_secs(2))).unwrap();
        let _ = c.write_all(b"GET /slow.php HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n");
        read_response(&mut c, false).is_ok_and(|r| r.text() == "slow ok\n")
    });
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    for t in threads {
        t.join().unwrap();
    }
    let (ok, gateway, other) = *counts.lock().unwrap();
    assert!(
        during.1 > 0,
        "502s while php-fpm was down: {during:?}; server: {}",
        st.server.stderr_text()
    );
    assert!(ok > during.0, "answers again after: {ok} vs {}", during.0);
    assert_eq!(
        other, 0,
        "every answer was the script's or a gateway error ({ok} ok, {gateway} 5xx)"
    );
    assert!(recovered, "server: {}", st.server.stderr_text());
}

#[test]
fn php_fpm_end_to_end() {
    let st = setup();
    run_checks(
        &st,
        &[
            ("get_and_query", get_and_query),
            ("post_form_cookies_headers", post_form_cookies_headers),
            ("upload_20mb", upload_20mb),
            ("statuses_and_redirects", statuses_and_redirects),
            ("streamed", streamed),
            (
                "path_info_and_front_controller",
                path_info_and_front_controller,
            ),
            ("stderr_logged", stderr_logged),
            ("more_requests_than_processes", more_requests_than_processes),
            ("active_checks", active_checks),
            ("fpm_stopped_mid_load", fpm_stopped_mid_load),
        ],
    );
}
