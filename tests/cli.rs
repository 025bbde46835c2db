//! The command line: config checking, bad input, startup failures, signals and
//! the bundled demo site.

mod common;
use common::*;
use std::process::{Command, Stdio};
use std::time::Duration;

fn run(args: &[&str]) -> (i32, String, String) {
    let out = Command::new(bin()).args(args).output().unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

fn config(text: &str) -> String {
    let p = tempdir("cli").join("peregrine.toml");
    std::fs::write(&p, text).unwrap();
    p.to_str().unwrap().to_string()
}

#[test]
fn check_accepts_a_good_config() {
    let p = config(
        "listen = [\"127.0.0.1:9000\", \"[::1]:9000\"]\nworkers = 2\n[timeouts]\nkeep_alive_timeout = \"75s\"\n",
    );
    let (code, out, _) = run(&["check", "--config", &p]);
    assert_eq!(code, 0);
    assert!(out.contains("ok (2 listeners, 2 workers)"), "{out}");
}

#[test]
fn check_names_the_bad_key_and_line() {
    let p = config("workers = 1\n\n[limits]\nmax_request_header_count = 5000\n");
    let (code, _, err) = run(&["check", "--config", &p]);
    assert_eq!(code, 2);
    assert!(
        err.contains(":4: limits.max_request_header_count: must be between 1 and 1024 (got 5000)"),
        "{err}"
    );
    let p = config("[timeouts]\nkeep_alive = 5\n");
    let (code, _, err) = run(&["check", "--config", &p]);
    assert_eq!(code, 2);
    assert!(
        err.contains(":2: timeouts.keep_alive: unknown field `keep_alive`"),
        "{err}"
    );
    let (code, _, err) = run(&["check", "--config", "/nonexistent/p.toml"]);
    assert_eq!(code, 2);
    assert!(err.contains("/nonexistent/p.toml: cannot read"), "{err}");
}

#[test]
fn serve_refuses_a_bad_config_with_exit_2() {
    let p = config("listen = \"localhost\"\n");
    let (code, _, err) = run(&["serve", "--config", &p]);
    assert_eq!(code, 2);
    assert!(
        err.contains(":1: listen: \"localhost\" is not an address"),
        "{err}"
    );
    assert!(!err.contains("panicked"));
}

#[test]
fn bad_flags_exit_2() {
    for args in [
        &["serve", "--workers", "0"][..],
        &["serve", "--listen", "nowhere"],
        &["serve", "--bogus"],
        &["frobnicate"],
    ] {
        let (code, _, err) = run(args);
        assert_eq!(code, 2, "{args:?}: {err}");
        assert!(!err.contains("panicked"), "{err}");
    }
}

#[test]
fn port_in_use_is_one_clear_line() {
    let holder = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = holder.local_addr().unwrap().to_string();
    let (code, _, err) = run(&["serve", "--listen", &addr]);
    assert_eq!(code, 1);
    assert_eq!(
        err.trim(),
        format!("peregrine: cannot listen on {addr}: Address already in use (os error 98)")
    );
}

#[test]
fn missing_root_is_one_clear_line() {
    let (code, _, err) = run(&[
        "serve",
        "--listen",
        "127.0.0.1:0",
        "--root",
        "/nonexistent/site",
    ]);
    assert_eq!(code, 1);
    assert_eq!(
        err.trim(),
        "peregrine: document root /nonexistent/site: No such file or directory (os error 2)"
    );
}

#[test]
fn sigint_stops_with_exit_0() {
    let mut s = Server::start(&["--builtins"]);
    assert_eq!(get(&s, "/plaintext").status, 200);
    s.signal("INT");
    assert_eq!(s.wait_exit(Duration::from_secs(10)), Some(0));
    assert!(s.stderr_text().contains("stopped"));
}

#[test]
fn sighup_is_ignored_without_stopping() {
    let s = Server::start(&["--builtins"]);
    s.signal("HUP");
    std::thread::sleep(Duration::from_millis(200));
    assert_eq!(get(&s, "/plaintext").status, 200);
}

#[test]
fn no_arguments_serves_the_demo_site_on_8080() {
    if std::net::TcpListener::bind("127.0.0.1:8080").is_err() {
        panic!("port 8080 is taken on this machine; this test needs it free");
    }
    let mut child = Command::new(bin())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut line = String::new();
    std::io::BufRead::read_line(
        &mut std::io::BufReader::new(child.stdout.take().unwrap()),
        &mut line,
    )
    .unwrap();
    let result = std::panic::catch_unwind(|| {
        assert!(
            line.contains("listening on http://127.0.0.1:8080/"),
            "{line}"
        );
        let s = std::net::TcpStream::connect("127.0.0.1:8080").unwrap();
        s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
        let mut s = s;
        std::io::Write::write_all(
            &mut s,
            b"GET / HTTP/1.1\r\nHost: a\r\n\r\nGET /plaintext HTTP/1.1\r\nHost: a\r\n\r\n",
        )
        .unwrap();
        let home = read_response(&mut s, false).unwrap();
        assert_eq!(home.status, 200);
        assert!(home.text().contains("Peregrine"));
        assert_eq!(
            read_response(&mut s, false).unwrap().text(),
            "Hello, World!"
        );
        // Compression is on: a text file of the demo is a candidate (its
        // compressed copy is made in the background, so the first answer
        // may still be the file itself).
        std::io::Write::write_all(
            &mut s,
            b"GET /4k.txt HTTP/1.1\r\nHost: a\r\nAccept-Encoding: gzip\r\n\r\n",
        )
        .unwrap();
        let text = read_response(&mut s, false).unwrap();
        assert_eq!(text.status, 200);
        assert_eq!(text.header("vary").as_deref(), Some("Accept-Encoding"));
    });
    let _ = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status();
    let _ = child.wait();
    result.unwrap();
}

/// A C program that forbids io_uring_setup (as container seccomp profiles do)
/// and runs the rest of its command line.
const NO_URING: &str = r#"
#include <errno.h>
#include <stddef.h>
#include <unistd.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <linux/filter.h>
#include <linux/seccomp.h>
int main(int argc, char **argv) {
    struct sock_filter f[] = {
        BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, nr)),
        BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, __NR_io_uring_setup, 0, 1),
        BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ERRNO | EPERM),
        BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW),
    };
    struct sock_fprog prog = { sizeof f / sizeof f[0], f };
    if (argc < 2 || prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) || prctl(PR_SET_SECCOMP, SECCOMP_MODE_FILTER, &prog))
        return 99;
    execv(argv[1], argv + 1);
    return 98;
}
"#;

#[test]
fn io_uring_unavailable_is_one_clear_line() {
    let dir = tempdir("nouring");
    let src = dir.join("no_uring.c");
    let exe = dir.join("no_uring");
    std::fs::write(&src, NO_URING).unwrap();
    let built = Command::new("cc")
        .args([src.to_str().unwrap(), "-o", exe.to_str().unwrap()])
        .status()
        .expect("a C compiler (cc) is needed to build the seccomp wrapper for this test");
    assert!(built.success());
    let out = Command::new(&exe)
        .args([bin(), "serve", "--listen", "127.0.0.1:0", "--admin", "off"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(
        err.starts_with("peregrine: io_uring is unavailable on this host")
            && err.contains("Operation not permitted"),
        "{err}"
    );
}
