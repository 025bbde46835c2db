//! The open-file cache when the server is out of file descriptors: cached
//! files are checked again without opening anything, and go on being served.

mod common;
use common::*;
use std::io::{BufRead, BufReader, Write};
use std::net::{SocketAddr, TcpStream};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// The descriptor limit the server runs under.
const NOFILE: usize = 64;

/// A server started under `ulimit -n NOFILE`, stopped by PID on drop.
struct Limited {
    child: Child,
    addr: SocketAddr,
}

impl Limited {
    fn start(root: &std::path::Path) -> Limited {
        let mut child = Command::new("sh")
            .arg("-c")
            .arg(format!("ulimit -n {NOFILE} && exec \"$@\""))
            .arg("sh")
            .arg(bin())
            .args(["serve", "--listen", "127.0.0.1:0", "--workers", "1"])
            .args(["--admin", "off", "--root", root.to_str().unwrap()])
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let mut out = BufReader::new(child.stdout.take().unwrap());
        let mut line = String::new();
        out.read_line(&mut line).unwrap();
        // Keep reading what it prints (access log lines) so stdout stays open.
        std::thread::spawn(move || std::io::copy(&mut out, &mut std::io::sink()));
        let addr = line
            .split("http://")
            .nth(1)
            .and_then(|r| r.split('/').next())
            .and_then(|a| a.parse().ok())
            .unwrap_or_else(|| panic!("no address in {line:?}"));
        Limited { child, addr }
    }

    /// How many of the descriptor numbers below the limit are in use (ones
    /// inherited above it do not count against it).
    fn used_slots(&self) -> usize {
        std::fs::read_dir(format!("/proc/{}/fd", self.child.id())).map_or(0, |d| {
            d.filter_map(|e| e.ok()?.file_name().to_str()?.parse::<usize>().ok())
                .filter(|fd| *fd < NOFILE)
                .count()
        })
    }
}

impl Drop for Limited {
    fn drop(&mut self) {
        let _ = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status();
        let t = Instant::now();
        while t.elapsed() < Duration::from_secs(5) {
            if self.child.try_wait().ok().flatten().is_some() {
                return;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn get(c: &mut TcpStream, path: &str) -> Resp {
    c.write_all(format!("GET {path} HTTP/1.1\r\nHost: a\r\n\r\n").as_bytes())
        .unwrap();
    read_response(c, false).unwrap_or_else(|e| panic!("GET {path}: {e}"))
}

#[test]
fn cached_files_are_served_while_out_of_descriptors() {
    let root = tempdir("nofile");
    std::fs::write(root.join("a.txt"), "hello").unwrap();
    std::fs::write(root.join("edit.txt"), "before").unwrap();
    std::fs::write(root.join("gone.txt"), "soon gone").unwrap();
    std::os::unix::fs::symlink("a.txt", root.join("link.txt")).unwrap();
    let server = Limited::start(&root);
    let mut c = TcpStream::connect(server.addr).unwrap();
    c.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    for (path, body) in [
        ("/a.txt", "hello"),
        ("/link.txt", "hello"),
        ("/edit.txt", "before"),
        ("/gone.txt", "soon gone"),
    ] {
        let r = get(&mut c, path);
        assert_eq!((r.status, r.text().as_str()), (200, body), "{path}");
    }
    let cached_at = Instant::now();
    // Idle connections until every descriptor is taken (the rest wait in the
    // listen backlog).
    let mut idle = Vec::new();
    for _ in 0..2 * NOFILE {
        idle.push(TcpStream::connect_timeout(&server.addr, Duration::from_secs(2)).unwrap());
    }
    let t = Instant::now();
    while server.used_slots() < NOFILE && t.elapsed() < Duration::from_secs(5) {
        std::thread::sleep(Duration::from_millis(20));
    }
    assert_eq!(server.used_slots(), NOFILE, "descriptors not exhausted");
    std::fs::write(root.join("edit.txt"), "after, longer").unwrap();
    std::fs::remove_file(root.join("gone.txt")).unwrap();
    // Past the cache's one-second validity, so every entry is checked again.
    std::thread::sleep(Duration::from_millis(1500).saturating_sub(cached_at.elapsed()));
    for (path, status, body) in [
        ("/a.txt", 200, "hello"),
        ("/link.txt", 200, "hello"),
        ("/edit.txt", 200, "after, longer"),
        ("/a.txt", 200, "hello"),
    ] {
        let r = get(&mut c, path);
        assert_eq!((r.status, r.text().as_str()), (status, body), "{path}");
    }
    assert_eq!(server.used_slots(), NOFILE, "descriptors freed meanwhile");
    // A removed file is found missing without an open (which would fail with
    // EMFILE); dropping its entry closes its descriptor.
    assert_eq!(get(&mut c, "/gone.txt").status, 404);
    drop(idle);
    drop(c);
    drop(server);
    std::fs::remove_dir_all(&root).unwrap();
}
