//! Connection handling: many idle connections, resets, timeouts, descriptor
//! exhaustion and graceful stop.

mod common;
use common::*;
use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

fn fd_count(pid: i32) -> usize {
    std::fs::read_dir(format!("/proc/{pid}/fd"))
        .map(|d| d.count())
        .unwrap_or(0)
}

fn cpu_ticks(pid: i32) -> u64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap();
    let rest = &stat[stat.rfind(')').unwrap() + 2..];
    let f: Vec<&str> = rest.split(' ').collect();
    f[11].parse::<u64>().unwrap() + f[12].parse::<u64>().unwrap()
}

fn wait_for(limit: Duration, mut f: impl FnMut() -> bool) -> bool {
    let t = Instant::now();
    while t.elapsed() < limit {
        if f() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    false
}

#[test]
fn two_thousand_idle_connections_while_serving() {
    let s = Server::start(&["--builtins", "--workers", "2"]);
    let mut idle = Vec::new();
    for _ in 0..2000 {
        let mut c = s.connect();
        c.write_all(b"GET /plaintext HTTP/1.1\r\nHost: a\r\n\r\n")
            .unwrap();
        assert_eq!(read_response(&mut c, false).unwrap().status, 200);
        idle.push(c);
    }
    // New work is served while they sit idle.
    for _ in 0..50 {
        assert_eq!(get(&s, "/json").status, 200);
    }
    // And every idle connection still works.
    for c in idle.iter_mut().step_by(7) {
        c.write_all(b"GET /plaintext HTTP/1.1\r\nHost: a\r\n\r\n")
            .unwrap();
        assert_eq!(read_response(c, false).unwrap().text(), "Hello, World!");
    }
    assert!(fd_count(s.pid()) >= 2000);
    drop(idle);
    assert!(
        wait_for(Duration::from_secs(10), || fd_count(s.pid()) < 100),
        "connections not released"
    );
}

#[test]
fn resets_mid_request_and_mid_response_leave_the_server_serving() {
    let root = tempdir("reset");
    write_random(&root.join("big.bin"), 8 * 1024 * 1024);
    let s = Server::start(&[
        "--root",
        root.to_str().unwrap(),
        "--builtins",
        "--workers",
        "1",
    ]);
    // The open-file cache keeps big.bin open: open it before counting.
    assert_eq!(
        exchange(&s, b"HEAD /big.bin HTTP/1.1\r\nHost: a\r\n\r\n").status,
        200
    );
    let before = fd_count(s.pid());
    for i in 0..40 {
        let mut c = s.connect();
        match i % 4 {
            // Mid-head.
            0 => c.write_all(b"GET /plaintext HTTP/1.1\r\nHo").unwrap(),
            // Mid-body.
            1 => c
                .write_all(
                    b"POST /echo HTTP/1.1\r\nHost: a\r\nContent-Length: 100000\r\n\r\npartial",
                )
                .unwrap(),
            // Mid-response of a big file.
            2 => {
                c.write_all(b"GET /big.bin HTTP/1.1\r\nHost: a\r\n\r\n")
                    .unwrap();
                let mut buf = vec![0; 64 * 1024];
                c.read_exact(&mut buf).unwrap();
            }
            // Pipelined requests, then gone before reading anything.
            _ => c
                .write_all(&b"GET /big.bin HTTP/1.1\r\nHost: a\r\n\r\n".repeat(4))
                .unwrap(),
        }
        std::thread::sleep(Duration::from_millis(5));
        reset(c);
    }
    assert_eq!(get(&s, "/plaintext").text(), "Hello, World!");
    assert!(
        wait_for(Duration::from_secs(10), || fd_count(s.pid()) <= before),
        "fds leaked: {} > {before}",
        fd_count(s.pid())
    );
}

#[test]
fn headers_timeout_cuts_a_trickling_client() {
    let s = Server::with_config(
        "builtins = true\nworkers = 1\n[timeouts]\nrequest_headers_timeout = \"1s\"\n",
        &[],
    );
    let mut c = s.connect();
    let start = Instant::now();
    let mut got_408 = false;
    // One byte every 200 ms never finishes a head; the deadline counts from the first byte.
    for b in b"GET /plaintext HTTP/1.1\r\nHost: a\r\nX-Slow: "
        .iter()
        .cycle()
        .take(40)
    {
        if c.write_all(std::slice::from_ref(b)).is_err() {
            break;
        }
        std::thread::sleep(Duration::from_millis(200));
        c.set_nonblocking(true).unwrap();
        let mut buf = [0u8; 512];
        if let Ok(n) = c.read(&mut buf) {
            got_408 |= String::from_utf8_lossy(&buf[..n]).starts_with("HTTP/1.1 408");
            break;
        }
        c.set_nonblocking(false).unwrap();
    }
    let took = start.elapsed();
    assert!(got_408, "no 408 response");
    assert!(took < Duration::from_secs(4), "cut after {took:?}");
}

#[test]
fn idle_keep_alive_connection_is_closed() {
    let s = Server::with_config("builtins = true\n[timeouts]\nkeep_alive_timeout = 1\n", &[]);
    let mut c = s.connect();
    c.write_all(b"GET /plaintext HTTP/1.1\r\nHost: a\r\n\r\n")
        .unwrap();
    read_response(&mut c, false).unwrap();
    let t = Instant::now();
    assert!(closed(&mut c));
    assert!(
        t.elapsed() >= Duration::from_millis(800) && t.elapsed() < Duration::from_secs(4),
        "{:?}",
        t.elapsed()
    );
}

#[test]
fn stalled_reader_is_dropped_after_send_timeout() {
    let root = tempdir("stall");
    write_random(&root.join("big.bin"), 32 * 1024 * 1024);
    let s = Server::with_config(
        &format!(
            "root = {:?}\nworkers = 1\n[timeouts]\nsend_timeout = 1\n",
            root.to_str().unwrap()
        ),
        &[],
    );
    let sock = socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::STREAM, None).unwrap();
    sock.set_recv_buffer_size(4096).unwrap();
    sock.connect(&s.addr.into()).unwrap();
    let mut c: TcpStream = sock.into();
    c.write_all(b"GET /big.bin HTTP/1.1\r\nHost: a\r\n\r\n")
        .unwrap();
    std::thread::sleep(Duration::from_secs(4));
    // Whatever was queued arrives, then the connection ends well short of 32 MiB.
    let mut total = 0usize;
    let mut buf = vec![0u8; 1 << 16];
    c.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    let ended = loop {
        match c.read(&mut buf) {
            Ok(0) => break true,
            Ok(n) => total += n,
            Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset => break true,
            Err(_) => break false,
        }
    };
    assert!(ended, "still open after the send timeout");
    assert!(total < 32 * 1024 * 1024, "whole file arrived");
}

#[test]
fn descriptor_exhaustion_backs_off_and_recovers() {
    // Run with a small descriptor limit: accepts fail with EMFILE.
    let dir = tempdir("emfile");
    let script = dir.join("run.sh");
    std::fs::write(
        &script,
        format!(
            "ulimit -n 64\nexec {} serve --listen 127.0.0.1:0 --builtins --workers 1 --admin off\n",
            bin()
        ),
    )
    .unwrap();
    let mut child = std::process::Command::new("sh")
        .arg(&script)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut line = String::new();
    let mut stdout = std::io::BufReader::new(child.stdout.take().unwrap());
    std::io::BufRead::read_line(&mut stdout, &mut line).unwrap();
    // Keep reading what it prints (access log lines) so stdout stays open.
    std::thread::spawn(move || std::io::copy(&mut stdout, &mut std::io::sink()));
    let addr: std::net::SocketAddr = line
        .split("http://")
        .nth(1)
        .unwrap()
        .split('/')
        .next()
        .unwrap()
        .parse()
        .unwrap();
    let pid = child.id() as i32;
    let mut keep = Vec::new();
    let mut first = TcpStream::connect(addr).unwrap();
    first
        .set_read_timeout(Some(Duration::from_secs(5)))
        .unwrap();
    first
        .write_all(b"GET /plaintext HTTP/1.1\r\nHost: a\r\n\r\n")
        .unwrap();
    read_response(&mut first, false).unwrap();
    for _ in 0..100 {
        keep.push(TcpStream::connect(addr).unwrap());
    }
    let t0 = cpu_ticks(pid);
    std::thread::sleep(Duration::from_secs(2));
    let spent = cpu_ticks(pid) - t0;
    assert!(
        spent < 50,
        "server burned {spent} ticks while out of descriptors"
    );
    // An existing connection is still served.
    first
        .write_all(b"GET /plaintext HTTP/1.1\r\nHost: a\r\n\r\n")
        .unwrap();
    let again = read_response(&mut first, false);
    if !again.as_ref().is_ok_and(|r| r.status == 200) {
        let _ = child.kill();
        let out = child.wait_with_output().unwrap();
        panic!(
            "existing connection not served: {again:?}; stderr: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    drop(keep);
    // After descriptors free up, new connections are accepted again.
    let ok = wait_for(Duration::from_secs(10), || {
        let Ok(mut c) = TcpStream::connect(addr) else {
            return false;
        };
        c.set_read_timeout(Some(Duration::from_secs(2))).unwrap();
        c.write_all(b"GET /plaintext HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n")
            .is_ok()
            && read_response(&mut c, false).is_ok_and(|r| r.status == 200)
    });
    assert!(ok, "did not recover");
    let _ = std::process::Command::new("kill")
        .args(["-TERM", &pid.to_string()])
        .status();
    let out = child.wait_with_output().unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(
        err.matches("accept failed").count(),
        1,
        "logged once per episode: {err}"
    );
    assert!(err.contains("Too many open files"), "{err}");
}

#[test]
fn graceful_stop_finishes_requests_in_flight() {
    let root = tempdir("drain");
    let big = write_random(&root.join("big.bin"), 16 * 1024 * 1024);
    let mut s = Server::start(&[
        "--root",
        root.to_str().unwrap(),
        "--builtins",
        "--workers",
        "2",
    ]);
    // Requests in flight: big downloads read slowly, and a body still arriving.
    let mut downloads = Vec::new();
    for _ in 0..4 {
        let mut c = s.connect();
        c.write_all(b"GET /big.bin HTTP/1.1\r\nHost: a\r\n\r\n")
            .unwrap();
        let mut head = [0u8; 16];
        c.read_exact(&mut head).unwrap();
        downloads.push((c, head));
    }
    let mut upload = s.connect();
    upload
        .write_all(b"POST /echo HTTP/1.1\r\nHost: a\r\nContent-Length: 10\r\n\r\nhalf")
        .unwrap();
    let mut idle = s.connect();
    idle.write_all(b"GET /plaintext HTTP/1.1\r\nHost: a\r\n\r\n")
        .unwrap();
    read_response(&mut idle, false).unwrap();
    std::thread::sleep(Duration::from_millis(100));
    s.signal("TERM");
    // Idle connections are closed; new ones are refused once listeners close.
    assert!(closed(&mut idle));
    // The upload completes and gets its whole answer (streamed: its head
    // went out with the first piece, before the stop), then the connection
    // closes.
    std::thread::sleep(Duration::from_millis(200));
    upload.write_all(b"-rest!").unwrap();
    let r = read_response(&mut upload, false).unwrap();
    assert_eq!(r.text(), "half-rest!");
    assert!(closed(&mut upload));
    // Every download completes, byte for byte.
    for (mut c, head) in downloads {
        let mut rest = Vec::new();
        c.read_to_end(&mut rest).unwrap();
        let mut all = head.to_vec();
        all.extend_from_slice(&rest);
        let split = all.windows(4).position(|w| w == b"\r\n\r\n").unwrap() + 4;
        assert!(
            all[split..] == big[..],
            "download truncated: {} of {}",
            all.len() - split,
            big.len()
        );
    }
    assert_eq!(
        s.wait_exit(Duration::from_secs(10)),
        Some(0),
        "{}",
        s.stderr_text()
    );
    assert!(TcpStream::connect(s.addr).is_err());
}

#[test]
fn a_full_submission_queue_is_flushed_or_queued() {
    // Eight submission slots and hundreds of connections answering at once:
    // every tick has more operations than fit, so they wait in the backlog.
    let s = Server::with_config(
        "builtins = true\n[engine]\nring_entries = 8\n[access_log]\nenabled = false\n",
        &[],
    );
    let mut conns: Vec<TcpStream> = (0..300).map(|_| s.connect()).collect();
    for round in 0..3 {
        for c in conns.iter_mut() {
            c.write_all(
                b"GET /plaintext HTTP/1.1\r\nHost: a\r\n\r\nGET /json HTTP/1.1\r\nHost: a\r\n\r\n",
            )
            .unwrap();
        }
        for (i, c) in conns.iter_mut().enumerate() {
            assert_eq!(
                read_response(c, false).unwrap().text(),
                "Hello, World!",
                "round {round} conn {i}"
            );
            assert_eq!(read_response(c, false).unwrap().status, 200);
        }
    }
}

#[test]
fn spliced_downloads_cut_short_leave_later_ones_intact() {
    // Many large (spliced) downloads reset mid-way, then whole downloads: pipes
    // go back to the pool only empty, so later bodies are byte-exact.
    let root = tempdir("splice");
    let big = write_random(&root.join("big.bin"), 3 * 1024 * 1024 + 11);
    let s = Server::start(&[
        "--root",
        root.to_str().unwrap(),
        "--workers",
        "1",
        "--access-log",
        "off",
    ]);
    for i in 0..150 {
        let mut c = s.connect();
        c.write_all(b"GET /big.bin HTTP/1.1\r\nHost: a\r\n\r\n")
            .unwrap();
        let mut buf = vec![0u8; 1 + (i * 7919) % 300_000];
        let _ = c.read_exact(&mut buf);
        reset(c);
    }
    for _ in 0..20 {
        let mut c = s.connect();
        c.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
        c.write_all(b"GET /big.bin HTTP/1.1\r\nHost: a\r\n\r\n")
            .unwrap();
        let r = read_response(&mut c, false).expect("download completes");
        assert!(r.body == big, "download corrupted");
    }
}
