//! The reverse proxy end to end: a Peregrine upstream with the built-in
//! handlers behind a Peregrine proxy, over real sockets with curl.

mod common;

#[test]
fn proxies_gets_bodies_and_failures() {
    let up = common::Server::start(&["--builtins"]);
    let py = common::upstreams::Py::start("cut", &[]);
    let (_dead, dead_addr) = common::refusing_addr();
    let config = format!(
        r#"
[access_log]
format = "json"
[[upstream]]
name = "app"
servers = ["{up}"]
[[upstream]]
name = "gone"
servers = ["{dead_addr}"]
[[upstream]]
name = "cut"
servers = ["{py}"]
[[site]]
name = "front"
hosts = ["localhost"]
default = true
[[site.route]]
path = "/gone"
handler = "proxy"
upstream = "gone"
[[site.route]]
path = "/cut"
handler = "proxy"
upstream = "cut"
strip_prefix = "/cut"
[[site.route]]
path = "/"
handler = "proxy"
upstream = "app"
"#,
        up = up.addr,
        py = py.addr,
    );
    let px = common::Server::with_config(&config, &[]);
    let base = format!("http://{}", px.addr);
    for _ in 0..3 {
        let (body, code) = common::curl(&[&format!("{base}/plaintext")]);
        assert_eq!((body.as_str(), code.as_str()), ("Hello, World!", "200"));
    }
    // A body streams up and back.
    let data = "x".repeat(100_000);
    let (body, code) = common::curl(&["--data-binary", &data, &format!("{base}/echo")]);
    assert_eq!(code, "200");
    assert_eq!(body.len(), data.len());
    // An unknown-length response is chunked through.
    let (body, code) = common::curl(&[
        "-N",
        &format!("{base}/stream?chunks=4&size=3&interval_ms=5"),
    ]);
    assert_eq!((body.len(), code.as_str()), (12, "200"));
    // Large chunks are re-framed intact (each piece goes out behind its
    // chunk-size line uncopied), and so is the same body to an HTTP/1.0
    // client, delimited by the close.
    let direct = common::curl(&[&format!("http://{}/chunked?n=5&size=70000", py.addr)]);
    assert_eq!(direct.0.len(), 350_000);
    for extra in [&[][..], &["-0"][..]] {
        let url = format!("{base}/cut/chunked?n=5&size=70000");
        let mut args: Vec<&str> = extra.to_vec();
        args.push(&url);
        assert_eq!(common::curl(&args), direct, "{extra:?}");
    }
    // A server that refuses connections: 502 with the reason.
    let (body, code) = common::curl(&[&format!("{base}/gone/x")]);
    assert_eq!(code, "502", "{body}");
    assert!(body.contains("cannot connect"), "{body}");
    // The upstream closes mid-body: the client's answer is cut short.
    let (body, _) = common::curl(&[&format!("{base}/cut/close-mid-body")]);
    assert!(body.len() < 1000, "{}", body.len());
    // The access log names the server that answered, and why none did, or
    // why its body was cut short.
    let mut log = String::new();
    for _ in 0..50 {
        log = px.stdout_text();
        if log.contains("connect_error") && log.contains("close-mid-body") {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    let lines: Vec<serde_json::Value> = log
        .lines()
        .filter(|l| l.starts_with('{'))
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let ok = lines
        .iter()
        .find(|v| v["target"] == "/plaintext")
        .expect("a line");
    assert_eq!(ok["upstream"], up.addr.to_string());
    assert!(ok.get("upstream_error").is_none());
    let gone = lines
        .iter()
        .find(|v| v["target"] == "/gone/x")
        .expect("a line");
    assert_eq!(gone["status"], 502);
    assert_eq!(gone["upstream_error"], "connect_error");
    assert_eq!(gone["upstream"], dead_addr.to_string());
    let cut = lines
        .iter()
        .find(|v| v["target"] == "/cut/close-mid-body")
        .expect("a line");
    assert_eq!(
        (cut["status"].as_u64(), cut["upstream_error"].as_str()),
        (Some(200), Some("closed"))
    );
    assert_eq!(cut["upstream"], py.addr.to_string());
    // Pooled upstream connections do not hold a stopping server up.
    let mut px = px;
    px.signal("TERM");
    let t = std::time::Instant::now();
    assert_eq!(px.wait_exit(std::time::Duration::from_secs(8)), Some(0));
    assert!(
        t.elapsed() < std::time::Duration::from_secs(5),
        "{:?}",
        t.elapsed()
    );
}
