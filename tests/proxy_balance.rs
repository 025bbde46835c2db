//! Load balancing through the reverse proxy with real upstreams: each
//! policy's distribution over two Peregrine upstreams weighted 3:1, nginx
//! and Peregrine in one group, the retry rules (a GET is sent again, a POST once sent is not), passive
//! health by response status, and a single-server group that is never
//! taken out.

mod common;

use std::net::SocketAddr;

use common::upstreams::*;

/// Sends `paths` through `threads` keep-alive connections (each thread a
/// share, in order); returns (path, who answered) for each, or panics on a
/// failure.
fn ask_all(
    addr: SocketAddr,
    paths: &[String],
    headers: &[&str],
    threads: usize,
) -> Vec<(String, String)> {
    let chunks: Vec<Vec<String>> = paths
        .chunks(paths.len().div_ceil(threads))
        .map(<[String]>::to_vec)
        .collect();
    let hs: Vec<String> = headers.iter().map(|h| h.to_string()).collect();
    let handles: Vec<_> = chunks
        .into_iter()
        .map(|chunk| {
            let hs = hs.clone();
            std::thread::spawn(move || {
                let mut c = Client::new(addr);
                chunk
                    .into_iter()
                    .map(|p| {
                        // `{p}` in a header line is the path's own key.
                        let lines: Vec<String> = hs.iter().map(|h| h.replace("{p}", &p)).collect();
                        let refs: Vec<&str> = lines.iter().map(String::as_str).collect();
                        let r = c.send("GET", &p, &refs, &[]).unwrap();
                        assert_eq!(r.status, 200, "{p}: {}", r.text());
                        (p, who(&r))
                    })
                    .collect::<Vec<_>>()
            })
        })
        .collect();
    handles
        .into_iter()
        .flat_map(|h| h.join().unwrap())
        .collect()
}

fn tally(answers: &[(String, String)]) -> Tally {
    let mut t = Tally::default();
    for (_, w) in answers {
        t.add(w);
    }
    t
}

/// `a`'s share of the answers is `want` within `tolerance`.
fn assert_share(policy: &str, t: &Tally, want: f64, tolerance: f64) {
    let share = t.get("a") as f64 / t.total() as f64;
    assert!(
        (share - want).abs() <= tolerance,
        "{policy}: a answered {share:.3} of the requests, not {want} ± {tolerance}: {t:?}"
    );
}

/// Every repeated path went to the server it went to the first time.
fn assert_sticky(policy: &str, answers: &[(String, String)]) {
    let mut first = std::collections::HashMap::new();
    for (p, w) in answers {
        let was = first.entry(p.clone()).or_insert_with(|| w.clone());
        assert_eq!(was, w, "{policy}: {p} moved");
    }
}

#[test]
fn each_policy_spreads_by_weight() {
    let (a_addr, b_addr) = (free_addr(), free_addr());
    // `/slow/delay` is the built-in delay on `a`; `b` answers it at once.
    let _a = peer_with(
        "a",
        a_addr,
        "[[site.route]]\npath = \"/slow\"\nhandler = \"builtins\"\n",
    );
    let _b = peer_with(
        "b",
        b_addr,
        "[[site.route]]\npath = \"/slow\"\nhandler = \"respond\"\nbody = \"b\"\n",
    );
    let weighted = format!(
        "[{{ address = \"{a_addr}\", weight = 3 }}, {{ address = \"{b_addr}\", weight = 1 }}]"
    );
    let policy = |p: &str| format!("lb_policy = \"{p}\"");
    let (rr, lr, rnd, r2, first, ip, uri, lt) = (
        policy("round_robin"),
        policy("least_requests"),
        policy("random"),
        policy("random_two"),
        policy("first"),
        policy("ip_hash"),
        policy("uri_hash"),
        policy("least_time"),
    );
    let groups = [
        ("rr", weighted.clone(), rr.as_str()),
        ("lr", weighted.clone(), lr.as_str()),
        ("random", weighted.clone(), rnd.as_str()),
        ("r2", weighted.clone(), r2.as_str()),
        ("first", weighted.clone(), first.as_str()),
        ("ip", weighted.clone(), ip.as_str()),
        ("uri", weighted.clone(), uri.as_str()),
        (
            "header",
            weighted.clone(),
            "lb_policy = \"header\"\nlb_key = \"X-Key\"",
        ),
        (
            "cookie",
            weighted.clone(),
            "lb_policy = \"cookie\"\nlb_key = \"k\"",
        ),
        ("lt", weighted.clone(), lt.as_str()),
    ];
    let px = common::Server::with_config(&proxy_config(2, &groups), &[]);
    let addr = px.addr;
    let same = |prefix: &str, n: usize| -> Vec<String> { vec![format!("/{prefix}/x"); n] };
    let distinct = |prefix: &str, n: usize| -> Vec<String> {
        (0..n).map(|i| format!("/{prefix}/k{i}")).collect()
    };

    // Smooth weighted round robin: 3:1 within 5 % over 4,000 requests,
    // whatever the cores and connections.
    let t = tally(&ask_all(addr, &same("rr", 4000), &[], 4));
    assert_eq!(t.total(), 4000);
    assert!(t.get("a").abs_diff(3000) <= 150, "round_robin: {t:?}");

    // One request at a time: nothing is in flight when a server is picked,
    // so least_requests falls back on the weighted round robin and
    // random_two on its first draw by weight.
    let t = tally(&ask_all(addr, &same("lr", 1000), &[], 1));
    assert!(t.get("a").abs_diff(750) <= 38, "least_requests: {t:?}");
    let t = tally(&ask_all(addr, &same("r2", 2000), &[], 1));
    assert_share("random_two", &t, 0.75, 0.05);
    let t = tally(&ask_all(addr, &same("random", 2000), &[], 4));
    assert_share("random", &t, 0.75, 0.05);

    // `first`: the first server while it is up; ip_hash: one client
    // address, one server.
    let t = tally(&ask_all(addr, &same("first", 200), &[], 2));
    assert_eq!(t.get("a"), 200, "first: {t:?}");
    let t = tally(&ask_all(addr, &same("ip", 200), &[], 2));
    assert!(t.0.len() == 1 && t.total() == 200, "ip_hash: {t:?}");

    // Hash policies: keys spread by weight, each key stays on its server.
    let mut keys = distinct("uri", 2000);
    keys.extend(distinct("uri", 300));
    let answers = ask_all(addr, &keys, &[], 4);
    assert_sticky("uri_hash", &answers);
    assert_share("uri_hash", &tally(&answers[..2000]), 0.75, 0.05);
    let mut keys = distinct("header", 2000);
    keys.extend(distinct("header", 300));
    let answers = ask_all(addr, &keys, &["X-Key: {p}"], 4);
    assert_sticky("header", &answers);
    assert_share("header", &tally(&answers[..2000]), 0.75, 0.05);
    let mut keys = distinct("cookie", 2000);
    keys.extend(distinct("cookie", 300));
    let answers = ask_all(addr, &keys, &["Cookie: a=1; k={p}; z=2"], 4);
    assert_sticky("cookie", &answers);
    assert_share("cookie", &tally(&answers[..2000]), 0.75, 0.05);
    // Without the header the header policy is a round robin.
    let t = tally(&ask_all(addr, &same("header", 400), &[], 2));
    assert!(t.get("a").abs_diff(300) <= 15, "header without key: {t:?}");

    // least_time: `a` takes 30 ms for `/slow/delay`, `b` answers at once; after
    // a sample of each, `b` gets nearly everything despite its weight.
    let mut t = Tally::default();
    let mut c = Client::new(addr);
    for _ in 0..300 {
        let r = c.get("/lt/slow/delay?ms=30").unwrap();
        assert_eq!(r.status, 200);
        t.add(if r.text() == "b" { "b" } else { "a" });
    }
    assert!(t.get("b") >= 270, "least_time: {t:?}");
}

#[test]
fn nginx_and_peregrine_share_a_group() {
    let nginx = Nginx::start();
    let peer_addr = free_addr();
    let _p = peer("peregrine", peer_addr);
    let keys = r#"health = { uri = "/healthz", interval = "500ms" }"#;
    let px = common::Server::with_config(
        &proxy_config(1, &[("app", list(&[nginx.addr, peer_addr]), keys)]),
        &[],
    );
    // 2,400 requests, half of them to nginx: more than the 1,000 it serves
    // on one connection before it closes it (keepalive_requests).
    let t = tally(&ask_all(px.addr, &vec!["/app/x".to_string(); 2400], &[], 2));
    assert_eq!((t.get("nginx"), t.get("peregrine")), (1200, 1200), "{t:?}");
}

#[test]
fn retries_follow_the_rules() {
    let live_addr = free_addr();
    let _live = peer("live", live_addr);
    let dead = free_addr();
    let py = Py::start("py", &[]);
    let servers = list(&[dead, live_addr]);
    let stall = list(&[py.addr, live_addr]);
    // Passive health off: the round robin keeps alternating between the
    // two, so half the first attempts go to the bad one.
    let off = "passive = { max_fails = 0 }";
    let no_retry = format!("{off}\nretry = {{ tries = 1 }}");
    let head_1s = format!("{off}\ntimeouts = {{ response_head = \"1s\" }}");
    let head_1s_np = format!("{head_1s}\nretry = {{ non_idempotent = true }}");
    let groups = [
        ("dead", servers.clone(), off),
        ("dead1", servers.clone(), no_retry.as_str()),
        ("stall", stall.clone(), head_1s.as_str()),
        ("stallnp", stall.clone(), head_1s_np.as_str()),
    ];
    let px = common::Server::with_config(&proxy_config(1, &groups), &[]);
    let mut c = Client::new(px.addr);

    // A refused connect sent nothing: any method goes to the next server.
    for method in ["GET", "POST", "GET", "POST"] {
        for _ in 0..5 {
            let body: &[u8] = if method == "POST" { b"data" } else { b"" };
            let r = c.send(method, "/dead/x", &[], body).unwrap();
            assert_eq!((r.status, r.text().as_str()), (200, "live"), "{method}");
        }
    }
    // With tries = 1 the refused ones are answered 502.
    let mut codes = Tally::default();
    for _ in 0..10 {
        let r = c.get("/dead1/x").unwrap();
        codes.add(&r.status.to_string());
        if r.status == 502 {
            assert!(r.text().contains("cannot connect"), "{}", r.text());
        }
    }
    assert_eq!((codes.get("200"), codes.get("502")), (5, 5), "{codes:?}");

    // A request the upstream took and never answered: a GET is sent again
    // to the other server, a POST (even without a body) is not (504) unless
    // non_idempotent.
    let (before, _) = py.count();
    for _ in 0..4 {
        let r = c.get("/stall/stall?ms=5000").unwrap();
        assert_eq!((r.status, r.text().as_str()), (200, "live"));
    }
    let (after, _) = py.count();
    let stalled_gets = after - before - 1;
    assert!(stalled_gets >= 1, "no GET reached the stalling server");
    let mut codes = Tally::default();
    for _ in 0..4 {
        let r = c.send("POST", "/stall/stall?ms=5000", &[], b"").unwrap();
        codes.add(&r.status.to_string());
        if r.status == 504 {
            assert!(r.text().contains("did not answer in time"), "{}", r.text());
        } else {
            assert_eq!((r.status, r.text().as_str()), (200, "live"));
        }
    }
    let (after_posts, _) = py.count();
    let stalled_posts = after_posts - after - 1;
    assert!(codes.get("504") >= 1, "{codes:?}");
    assert_eq!(
        codes.get("504"),
        stalled_posts,
        "each POST the stalling server took was answered 504: {codes:?}"
    );
    for _ in 0..4 {
        let r = c.send("POST", "/stallnp/stall?ms=5000", &[], b"").unwrap();
        assert_eq!((r.status, r.text().as_str()), (200, "live"));
    }
    let (last, _) = py.count();
    let stalled_posts = last - after_posts - 1;
    assert!(stalled_posts >= 1, "no POST reached the stalling server");
    // Even so, a request whose body went up is not sent again: the body
    // is not kept.
    let mut codes = Tally::default();
    for _ in 0..4 {
        let r = c
            .send("POST", "/stallnp/stall?ms=5000", &[], b"gone")
            .unwrap();
        codes.add(&r.status.to_string());
    }
    let stalled = py.count().0 - last - 1;
    assert_eq!(codes.get("504"), stalled, "{codes:?}");
    assert_eq!(codes.get("200") + codes.get("504"), 4, "{codes:?}");
}

#[test]
fn passive_health_by_status_and_the_single_server() {
    let sick = Py::start("sick", &["--fail-health"]);
    let well = Py::start("well", &[]);
    let solo_addr = free_addr();
    let pair = list(&[sick.addr, well.addr]);
    let groups = [
        (
            "pair",
            pair.clone(),
            "passive = { max_fails = 1, fail_timeout = \"30s\", unhealthy_status = [503] }",
        ),
        (
            "retry503",
            pair.clone(),
            "passive = { max_fails = 0 }\nretry = { on = [\"http_503\"] }",
        ),
        (
            "other",
            pair.clone(),
            "passive = { max_fails = 1, fail_timeout = \"30s\", unhealthy_status = [500] }",
        ),
        (
            "solo",
            list(&[solo_addr]),
            "passive = { max_fails = 1, fail_timeout = \"30s\" }",
        ),
        (
            "solo_sick",
            list(&[sick.addr]),
            "passive = { max_fails = 1, fail_timeout = \"30s\", unhealthy_status = [503] }",
        ),
    ];
    let px = common::Server::with_config(&proxy_config(2, &groups), &[]);
    let ask = |path: &str, n: usize| -> Tally {
        let mut t = Tally::default();
        // A fresh connection each time: both cores take their share.
        for _ in 0..n {
            let mut c = Client::new(px.addr);
            let r = c.get(path).unwrap();
            t.add(&format!("{} {}", r.status, who(&r)));
        }
        t
    };

    // A 503 takes the sick server out (on each core that sees one).
    let t = ask("/pair/healthz", 40);
    assert!(t.get("503 sick") <= 2, "{t:?}");
    assert_eq!(t.get("200 well") + t.get("503 sick"), 40, "{t:?}");
    // Retried on 503: the client never sees it.
    let t = ask("/retry503/healthz", 20);
    assert_eq!(t.get("200 well"), 20, "{t:?}");
    // A status not listed takes nobody out.
    let t = ask("/other/healthz", 20);
    assert!(t.get("503 sick") >= 6, "{t:?}");
    assert_eq!(t.get("200 well") + t.get("503 sick"), 20, "{t:?}");

    // A single server is never taken out: its 503s keep coming from it,
    // not from the proxy (which would say no server is available).
    let (before, _) = sick.count();
    let t = ask("/solo_sick/healthz", 10);
    assert_eq!(t.get("503 sick"), 10, "{t:?}");
    assert_eq!(sick.count().0 - before - 1, 10);
    // Down, it is still tried (502, cannot connect); up again, it serves
    // at once, well within the 30 s a failure would take it out for.
    for _ in 0..6 {
        let r = Client::new(px.addr).get("/solo/x").unwrap();
        assert_eq!(r.status, 502, "{}", r.text());
        assert!(r.text().contains("cannot connect"), "{}", r.text());
    }
    let _solo = peer("solo", solo_addr);
    for _ in 0..6 {
        let r = Client::new(px.addr).get("/solo/x").unwrap();
        assert_eq!((r.status, r.text().as_str()), (200, "solo"));
    }
}
