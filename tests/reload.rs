//! Reloading the configuration of one running server over real sockets,
//! while load runs against two sites: a route's body changes, a listener is
//! added and removed, a certificate changes, a bad file is refused (400
//! naming the file, line and key) and the old generation keeps serving;
//! generation numbers in the answers, `/status`, `/metrics` and `/config`;
//! `SIGHUP`; `peregrine load` at a fixed rate across reloads with no errors;
//! and finally `/readyz` during the shutdown delay.

mod common;

use std::net::{SocketAddr, TcpListener, TcpStream};
use std::process::Command;
use std::time::{Duration, Instant};

use common::reload::*;
use common::*;
#[test]
fn reload_end_to_end() {
    let s = setup();
    probes_and_generation_one(&s);
    let load = Load::start(&s);
    change_a_route(&s);
    bad_file_keeps_the_generation(&s);
    add_and_remove_a_listener(&s);
    change_the_certificate(&s);
    sighup_reloads(&s);
    let served = load.finish();
    assert!(served > 100, "only {served} requests during the reloads");
    fixed_rate_load_across_reloads(&s);
    readyz_during_the_shutdown_delay(s);
}

fn probes_and_generation_one(s: &Setup) {
    // The probes need no token; everything else does.
    let h = admin(&s.server, "GET", "/healthz", None);
    assert_eq!((h.status, h.text().as_str()), (200, "ok\n"));
    let r = admin(&s.server, "GET", "/readyz", None);
    assert_eq!((r.status, r.text().as_str()), (200, "ready\n"));
    assert_eq!(admin(&s.server, "GET", "/config", None).status, 401);
    assert_eq!(admin(&s.server, "POST", "/config/reload", None).status, 401);
    assert_eq!(
        admin(&s.server, "GET", "/config/reload", Some(TOKEN)).status,
        405
    );
    let st = admin_json(&s.server, "/status");
    assert_eq!(
        (st["generation"].as_u64(), st["ready"].as_bool()),
        (Some(1), Some(true))
    );
    assert_eq!(metric(&s.server, "peregrine_config_generation "), "1");
    let c = admin_json(&s.server, "/config");
    assert_eq!(c["generation"], 1);
    assert_eq!(c["config"]["site"][0]["route"][0]["body"], "a one\n");
    assert_eq!(c["config"]["timeouts"]["shutdown_delay"], 1.5);
    assert_eq!(c["config"]["admin"]["token"], "(set)");
    assert!(!c.to_string().contains(TOKEN));
    assert_eq!(
        check(&fetch(s.server.addr, "a.test", "/v"), "a"),
        Ok("one".into())
    );
}

fn change_a_route(s: &Setup) {
    let mut open = keep_alive(s.server.addr);
    assert_eq!(
        check(&ask(&mut open, "b.test", "/v").unwrap(), "b"),
        Ok("one".into())
    );
    s.write(&config(&s.dir, "two", None));
    let (status, v) = s.reload();
    assert_eq!((status, v["generation"].as_u64()), (200, Some(2)), "{v}");
    // Every worker has swapped when the answer comes: the next request, on
    // a kept-alive connection or a new one, meets the new generation.
    assert_eq!(
        check(&ask(&mut open, "b.test", "/v").unwrap(), "b"),
        Ok("two".into())
    );
    for _ in 0..8 {
        assert_eq!(
            check(&fetch(s.server.addr, "a.test", "/v"), "a"),
            Ok("two".into())
        );
    }
    assert_eq!(metric(&s.server, "peregrine_config_generation "), "2");
    assert_eq!(
        metric(&s.server, "peregrine_config_reloads_total{result=\"ok\"}"),
        "1"
    );
    assert_eq!(admin_json(&s.server, "/status")["generation"], 2);
    let c = admin_json(&s.server, "/config");
    assert_eq!(c["config"]["site"][1]["route"][0]["body"], "b two\n");
}

fn bad_file_keeps_the_generation(s: &Setup) {
    // An unknown key in an otherwise good file.
    let good = config(&s.dir, "three", None);
    let bad = good.replacen("[timeouts]\n", "[timeouts]\nshutdown_dealy = 1\n", 1);
    let line = bad
        .lines()
        .position(|l| l.starts_with("shutdown_dealy"))
        .unwrap()
        + 1;
    s.write(&bad);
    let (status, v) = s.reload();
    assert_eq!(status, 400, "{v}");
    assert_eq!(v["line"], line, "{v}");
    assert_eq!(v["key"], "timeouts.shutdown_dealy", "{v}");
    assert_eq!(v["file"], s.file.display().to_string(), "{v}");
    assert!(
        v["error"].as_str().unwrap().contains("unknown field"),
        "{v}"
    );
    // A handler that does not exist: the route's `body` no longer fits.
    let bad = good.replacen("handler = \"respond\"", "handler = \"respnod\"", 1);
    let line = bad
        .lines()
        .position(|l| l == "body = \"a three\\n\"")
        .unwrap()
        + 1;
    s.write(&bad);
    let (status, v) = s.reload();
    assert_eq!(status, 400, "{v}");
    assert_eq!(v["key"], "site[0].route[0].body", "{v}");
    assert_eq!(v["line"], line, "{v}");
    // Nothing changed.
    assert_eq!(
        check(&fetch(s.server.addr, "a.test", "/v"), "a"),
        Ok("two".into())
    );
    assert_eq!(admin_json(&s.server, "/status")["generation"], 2);
    assert_eq!(
        metric(
            &s.server,
            "peregrine_config_reloads_total{result=\"error\"}"
        ),
        "2"
    );
}

fn add_and_remove_a_listener(s: &Setup) {
    let port = free_port();
    let extra: SocketAddr = format!("127.0.0.1:{port}").parse().unwrap();
    // A connection the kernel has accepted but that has sent nothing yet
    // sits in the kept listener's queue (or its worker) across the reload.
    let mut queued = keep_alive(s.server.addr);
    s.write(&config(&s.dir, "three", Some(port)));
    let (status, v) = s.reload();
    assert_eq!((status, v["generation"].as_u64()), (200, Some(3)), "{v}");
    assert_eq!(
        check(&ask(&mut queued, "a.test", "/v").unwrap(), "a"),
        Ok("three".into())
    );
    assert_eq!(fetch(extra, "extra.test", "/").text(), "extra\n");
    // The old sites are on the new listener too (theirs is every listener).
    assert_eq!(
        check(&fetch(extra, "b.test", "/v"), "b"),
        Ok("three".into())
    );
    let listeners = admin_json(&s.server, "/config")["listeners"].clone();
    assert_eq!(listeners.as_array().unwrap().len(), 3, "{listeners}");

    // Taking a port someone else holds fails the reload; nothing changes.
    let taken = TcpListener::bind("127.0.0.1:0").unwrap();
    let busy = taken.local_addr().unwrap().port();
    s.write(&config(&s.dir, "four", Some(busy)));
    let (status, v) = s.reload();
    assert_eq!(status, 400, "{v}");
    assert!(
        v["error"]
            .as_str()
            .unwrap()
            .contains(&format!("cannot listen on 127.0.0.1:{busy}")),
        "{v}"
    );
    assert_eq!(fetch(extra, "extra.test", "/").text(), "extra\n");
    assert_eq!(
        check(&fetch(s.server.addr, "a.test", "/v"), "a"),
        Ok("three".into())
    );
    drop(taken);

    let mut idle_on_extra = keep_alive(extra);
    assert_eq!(
        ask(&mut idle_on_extra, "extra.test", "/").unwrap().text(),
        "extra\n"
    );
    s.write(&config(&s.dir, "four", None));
    let (status, v) = s.reload();
    assert_eq!((status, v["generation"].as_u64()), (200, Some(4)), "{v}");
    // Closed by the time the reload answers: new connections are refused,
    // and an idle one on it is closed.
    let refused = TcpStream::connect(extra).map(|_| ()).unwrap_err();
    assert_eq!(refused.kind(), std::io::ErrorKind::ConnectionRefused);
    assert!(closed(&mut idle_on_extra));
    assert_eq!(
        check(&fetch(s.server.addr, "b.test", "/v"), "b"),
        Ok("four".into())
    );
}

fn change_the_certificate(s: &Setup) {
    let cfg = s.pki.client(ALL, None);
    let mut open = tls_connect(s.tls, "a.test", &cfg).unwrap();
    assert_eq!(
        check(&tls_ask(&mut open, "a.test").unwrap(), "a"),
        Ok("four".into())
    );
    let fresh = s
        .pki
        .issue("two", &["a.test", "b.test"], "reload two", false);
    s.install_cert(&fresh);
    s.write(&config(&s.dir, "five", None));
    let (status, v) = s.reload();
    assert_eq!((status, v["generation"].as_u64()), (200, Some(5)), "{v}");
    // New connections get the new certificate (a fresh client config: no
    // session resumed); the open one goes on, on the new routes.
    let c = tls_connect(s.tls, "a.test", &s.pki.client(ALL, None)).unwrap();
    assert_eq!(c.conn.peer_certificates().unwrap()[0], fresh.der);
    assert_eq!(
        check(&tls_ask(&mut open, "a.test").unwrap(), "a"),
        Ok("five".into())
    );
    // A broken certificate is refused with its key; the new one stays.
    std::fs::write(s.dir.join("cert.pem"), "not a certificate\n").unwrap();
    let (status, v) = s.reload();
    assert_eq!(status, 400, "{v}");
    assert_eq!(v["key"], "tls.cert", "{v}");
    let c = tls_connect(s.tls, "a.test", &s.pki.client(ALL, None)).unwrap();
    assert_eq!(c.conn.peer_certificates().unwrap()[0], fresh.der);
    s.install_cert(&fresh);
}

fn sighup_reloads(s: &Setup) {
    s.write(&config(&s.dir, "six", None));
    s.server.signal("HUP");
    let t = Instant::now();
    while !s
        .server
        .stderr_text()
        .contains("reloaded the configuration: generation 6")
    {
        assert!(
            t.elapsed() < Duration::from_secs(10),
            "{}",
            s.server.stderr_text()
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    assert_eq!(
        check(&fetch(s.server.addr, "a.test", "/v"), "a"),
        Ok("six".into())
    );
    // A bad file on SIGHUP is logged with its key and line, and changes nothing.
    s.write("workers = \"many\"\n");
    s.server.signal("HUP");
    let t = Instant::now();
    let want = "reload failed, keeping generation 6: ";
    while !s.server.stderr_text().contains(want) {
        assert!(
            t.elapsed() < Duration::from_secs(10),
            "{}",
            s.server.stderr_text()
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    let log = s.server.stderr_text();
    let line = log.lines().find(|l| l.contains(want)).unwrap();
    assert!(line.contains("peregrine.toml:1: workers: "), "{line}");
    assert_eq!(
        check(&fetch(s.server.addr, "b.test", "/v"), "b"),
        Ok("six".into())
    );
}

/// The bounded version of `scripts/reload`: `peregrine load` at a fixed
/// rate for 5 s against both sites while the configuration is swapped 5
/// times; no errors, and each reload's body is served at once.
fn fixed_rate_load_across_reloads(s: &Setup) {
    let url = format!("http://{}/v", s.server.addr);
    let load = |host: &str| {
        Command::new(bin())
            .args([
                "load",
                &url,
                "--rate",
                "500",
                "--connections",
                "8",
                "--duration",
                "5s",
            ])
            .args(["-H", &format!("Host: {host}")])
            .output()
            .unwrap()
    };
    let (a, b) = std::thread::scope(|sc| {
        let a = sc.spawn(|| load("a.test"));
        let b = sc.spawn(|| load("b.test"));
        std::thread::sleep(Duration::from_millis(500));
        let first = admin_json(&s.server, "/status")["generation"]
            .as_u64()
            .unwrap();
        for i in 0..5u64 {
            let tag = format!("load{i}");
            s.write(&config(&s.dir, &tag, None));
            let (status, v) = s.reload();
            assert_eq!(
                (status, v["generation"].as_u64()),
                (200, Some(first + i + 1)),
                "{v}"
            );
            assert_eq!(
                check(&fetch(s.server.addr, "a.test", "/v"), "a"),
                Ok(tag.clone())
            );
            assert_eq!(check(&fetch(s.server.addr, "b.test", "/v"), "b"), Ok(tag));
            std::thread::sleep(Duration::from_millis(800));
        }
        (a.join().unwrap(), b.join().unwrap())
    });
    for out in [a, b] {
        let text = String::from_utf8_lossy(&out.stdout).into_owned();
        assert!(
            out.status.success(),
            "{text}{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let errors = text.lines().find(|l| l.starts_with("errors:")).unwrap();
        assert!(errors.starts_with("errors:      0 "), "{text}");
        let completed: u64 = text
            .lines()
            .find_map(|l| l.strip_prefix("requests:    "))
            .and_then(|l| l.split(' ').next())
            .and_then(|n| n.parse().ok())
            .unwrap();
        assert!(completed >= 2000, "{text}");
    }
}

fn readyz_during_the_shutdown_delay(mut s: Setup) {
    s.server.signal("TERM");
    let t = Instant::now();
    // Not ready at once, alive, and still serving until the delay is over.
    let mut seen = false;
    while t.elapsed() < Duration::from_millis(1000) {
        let r = admin(&s.server, "GET", "/readyz", None);
        if r.status == 503 {
            assert_eq!(r.text(), "stopping\n");
            seen = true;
            break;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    assert!(seen, "readyz never answered 503");
    assert_eq!(admin(&s.server, "GET", "/healthz", None).status, 200);
    assert_eq!(admin_json(&s.server, "/status")["ready"], false);
    assert_eq!(
        check(&fetch(s.server.addr, "a.test", "/v"), "a").map(|_| ()),
        Ok(())
    );
    assert_eq!(s.server.wait_exit(Duration::from_secs(10)), Some(0));
    assert!(
        t.elapsed() >= Duration::from_millis(1400),
        "exited after {:?}, before the shutdown delay",
        t.elapsed()
    );
}
