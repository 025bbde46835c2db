//! Upstreams that misbehave, through the reverse proxy: time-outs (504
//! before the head; a stalled body cuts the connection), malformed and
//! smuggling responses (502, and nothing of them reaches the client
//! connection), responses cut mid-body (the client's connection is cut
//! too, never ended cleanly), event streams that flush as they arrive, and
//! a reload that changes the server list under load.

mod common;

use std::io::Write;
use std::net::TcpStream;
use std::time::{Duration, Instant};

use common::upstreams::*;
use common::*;

/// Everything the server sends on `s` until it closes (or `limit`
/// passes: then `None`).
fn read_to_close(s: &mut TcpStream, limit: Duration) -> Option<Vec<u8>> {
    s.set_read_timeout(Some(limit)).unwrap();
    let mut all = Vec::new();
    let mut buf = [0u8; 4096];
    loop {
        match read_some(s, &mut buf) {
            Ok(0) => return Some(all),
            Ok(n) => all.extend_from_slice(&buf[..n]),
            Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset => return Some(all),
            Err(_) => return None,
        }
    }
}

fn contains(hay: &[u8], needle: &[u8]) -> bool {
    hay.windows(needle.len()).any(|w| w == needle)
}

#[test]
fn timeouts_bad_responses_and_cuts() {
    let py = Py::start("py", &[]);
    let one = list(&[py.addr]);
    let groups = [
        (
            "slow",
            one.clone(),
            "retry = { tries = 1 }\ntimeouts = { response_head = \"1s\", read_idle = \"1s\" }",
        ),
        ("bad", one.clone(), "retry = { tries = 1 }"),
    ];
    let px = Server::with_config(&proxy_config(1, &groups), &[]);

    // No head in time: 504, and the client's connection goes on.
    let mut c = px.connect();
    c.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
    c.write_all(b"GET /slow/stall?ms=4000 HTTP/1.1\r\nHost: t\r\n\r\n")
        .unwrap();
    let r = read_response(&mut c, false).unwrap();
    assert_eq!(r.status, 504, "{}", r.text());
    assert!(r.text().contains("did not answer in time"), "{}", r.text());
    c.write_all(b"GET /slow/x HTTP/1.1\r\nHost: t\r\n\r\n")
        .unwrap();
    let r = read_response(&mut c, false).unwrap();
    assert_eq!((r.status, r.text().as_str()), (200, "py GET /x\n"));

    // The body stalls past read_idle: the head (and half the body) went
    // out, so the client's connection is cut short of Content-Length.
    let mut c = px.connect();
    c.write_all(b"GET /slow/stall-body?ms=4000 HTTP/1.1\r\nHost: t\r\n\r\n")
        .unwrap();
    let head = read_head(&mut c).unwrap();
    assert_eq!(head.status, 200);
    let len: usize = head.header("content-length").unwrap().parse().unwrap();
    let body = read_to_close(&mut c, Duration::from_secs(20)).expect("the connection is cut");
    assert!(body.len() < len, "{} of {len} bytes", body.len());
    assert!(body.starts_with(b"py stalled body\n"), "{body:?}");

    // An invalid head: 502. The request pipelined behind it gets its own
    // answer (or the connection closes); nothing of the bad response shows.
    let mut c = px.connect();
    c.write_all(
        b"GET /bad/garbage HTTP/1.1\r\nHost: t\r\n\r\nGET /bad/next HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n",
    )
    .unwrap();
    let all = read_to_close(&mut c, Duration::from_secs(20)).expect("closed");
    let text = String::from_utf8_lossy(&all);
    assert!(text.starts_with("HTTP/1.1 502 "), "{text}");
    assert!(text.contains("invalid response"), "{text}");
    assert!(!contains(&all, b"hello"), "{text}");
    assert!(!contains(&all, b"zz"), "{text}");
    let second = text.matches("HTTP/1.1 ").count();
    assert!(
        second == 1 || text.ends_with("py GET /next\n"),
        "the pipelined request: {text}"
    );

    // Content-Length and Transfer-Encoding both, then a second response
    // in the same bytes: at most the chunked body reaches the client, and
    // never the smuggled response.
    let mut c = px.connect();
    c.write_all(
        b"GET /bad/smuggle HTTP/1.1\r\nHost: t\r\n\r\nGET /bad/next HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n",
    )
    .unwrap();
    let all = read_to_close(&mut c, Duration::from_secs(20)).expect("closed");
    let text = String::from_utf8_lossy(&all);
    assert!(!contains(&all, b"smuggled"), "{text}");
    let mut rd = &all[..];
    let first = read_response(&mut rd, false).unwrap();
    assert!(
        first.status == 502 || (first.status == 200 && first.text() == "hello"),
        "{text}"
    );
    assert!(
        first.header("content-length").is_none() || first.header("transfer-encoding").is_none(),
        "both framings reach the client: {text}"
    );
    if !rd.is_empty() {
        let next = read_response(&mut rd, false).unwrap();
        assert_eq!(next.text(), "py GET /next\n", "{text}");
        assert!(rd.is_empty(), "{text}");
    }

    // The upstream closes mid-body: the client gets the head and the
    // bytes that came, then its connection is closed short.
    let mut c = px.connect();
    c.write_all(b"GET /bad/close-mid-body HTTP/1.1\r\nHost: t\r\n\r\n")
        .unwrap();
    let head = read_head(&mut c).unwrap();
    assert_eq!(
        (head.status, head.header("content-length").as_deref()),
        (200, Some("1000"))
    );
    let body = read_to_close(&mut c, Duration::from_secs(20)).expect("the connection is cut");
    assert_eq!(body.len(), 10, "{body:?}");

    // A connection the upstream closes after a keep-alive answer: the next
    // request goes on a fresh one, unharmed.
    let mut c = Client::new(px.addr);
    for _ in 0..3 {
        let r = c.get("/bad/keepalive-close").unwrap();
        assert_eq!(
            (r.status, r.text().as_str()),
            (200, "py GET /keepalive-close\n")
        );
    }
}

#[test]
fn chunked_cut_and_event_streams() {
    let steady = Py::start("steady", &[]);
    let doomed = Py::start("doomed", &[]);
    let groups = [
        ("steady", list(&[steady.addr]), ""),
        ("doomed", list(&[doomed.addr]), "retry = { tries = 1 }"),
    ];
    let px = Server::with_config(&proxy_config(1, &groups), &[]);

    // Events flush as they come: the first is here long before the second
    // is sent (4 s later), the stream is chunked and ends cleanly.
    let mut c = px.connect();
    c.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
    let t = Instant::now();
    c.write_all(b"GET /steady/sse?n=2&ms=4000 HTTP/1.1\r\nHost: t\r\n\r\n")
        .unwrap();
    let head = read_head(&mut c).unwrap();
    assert_eq!(head.status, 200);
    assert_eq!(
        head.header("content-type").as_deref(),
        Some("text/event-stream")
    );
    assert_eq!(head.header("transfer-encoding").as_deref(), Some("chunked"));
    let mut first = Vec::new();
    while !first.ends_with(b"\n\n") {
        first.extend(read_chunk(&mut c).unwrap().expect("an event"));
    }
    let waited = t.elapsed();
    assert_eq!(first, b"id: 0\ndata: steady event 0\n\n");
    assert!(
        waited < Duration::from_secs(3),
        "the first event came after {waited:?}"
    );
    let mut rest = Vec::new();
    while let Some(piece) = read_chunk(&mut c).unwrap() {
        rest.extend(piece);
    }
    assert_eq!(rest, b"id: 1\ndata: steady event 1\n\n");

    // The upstream dies inside a chunked body: the client's connection is
    // cut, and the body never gets its last chunk.
    let mut c = px.connect();
    c.write_all(b"GET /doomed/sse?n=50&ms=200 HTTP/1.1\r\nHost: t\r\n\r\n")
        .unwrap();
    let head = read_head(&mut c).unwrap();
    assert_eq!(head.header("transfer-encoding").as_deref(), Some("chunked"));
    let piece = read_chunk(&mut c).unwrap().expect("the first event");
    assert!(piece.starts_with(b"id: 0\n"), "{piece:?}");
    drop(doomed);
    let rest = read_to_close(&mut c, Duration::from_secs(20)).expect("the connection is cut");
    assert!(
        !contains(&rest, b"0\r\n\r\n"),
        "the cut body was ended cleanly: {:?}",
        String::from_utf8_lossy(&rest)
    );
}

#[test]
fn reload_moves_traffic_to_new_servers_under_load() {
    let addrs: Vec<_> = (0..4).map(|_| free_addr()).collect();
    let mut old: Vec<Server> = ["a", "b"]
        .iter()
        .zip(&addrs)
        .map(|(n, a)| peer(n, *a))
        .collect();
    let _new: Vec<Server> = ["c", "d"]
        .iter()
        .zip(&addrs[2..])
        .map(|(n, a)| peer(n, *a))
        .collect();
    let dir = tempdir("proxy-reload");
    let file = dir.join("peregrine.toml");
    let write = |servers: &[std::net::SocketAddr]| {
        let text = proxy_config(2, &[("app", list(servers), "")]);
        let tmp = dir.join("next.toml");
        std::fs::write(&tmp, text).unwrap();
        std::fs::rename(&tmp, &file).unwrap();
    };
    write(&addrs[..2]);
    let px = Server::start(&["--config", file.to_str().unwrap()]);
    let load = Load::start(px.addr, "/app/x", 4);
    load.wait_more(500, Duration::from_secs(30));

    write(&addrs[2..]);
    let asked = Instant::now();
    let r = reload::admin(&px, "POST", "/config/reload", None);
    assert_eq!(r.status, 200, "{}", r.text());
    let v: serde_json::Value = serde_json::from_slice(&r.body).unwrap();
    assert_eq!(v["generation"], 2, "{v}");
    let reloaded = Instant::now();
    load.wait_more(500, Duration::from_secs(30));
    // The old servers go away: nothing uses them any more.
    for s in &mut old {
        s.child.kill().unwrap();
        s.child.wait().unwrap();
    }
    let gone = Instant::now();
    load.wait_more(500, Duration::from_secs(30));
    let recs = load.finish();

    let failed: Vec<&Rec> = recs.iter().filter(|r| r.answer.is_err()).collect();
    assert!(failed.is_empty(), "{} failed: {failed:?}", failed.len());
    let mut before = Tally::default();
    let mut after = Tally::default();
    for r in &recs {
        let who = r.answer.as_deref().unwrap();
        // Requests made while the reload was under way may go either way.
        if r.at < asked {
            before.add(who);
        } else if r.at >= reloaded {
            after.add(who);
        }
    }
    assert!(before.get("a") > 50 && before.get("b") > 50, "{before:?}");
    assert_eq!(
        before.get("a") + before.get("b"),
        before.total(),
        "{before:?}"
    );
    assert!(after.get("c") > 200 && after.get("d") > 200, "{after:?}");
    assert_eq!(
        after.get("c") + after.get("d"),
        after.total(),
        "requests after the reload answered went to the old servers: {after:?}"
    );
    assert!(recs.iter().filter(|r| r.at >= gone).count() >= 500);
}
