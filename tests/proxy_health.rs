//! Upstream health through the reverse proxy with real upstreams under
//! load: a server killed mid-load costs at most the requests it had in
//! flight and none after; started again, the active check brings it back
//! and slow start ramps its share; backups serve only while no primary is
//! up.

mod common;

use std::time::{Duration, Instant};

use common::upstreams::*;

/// The share of the answers from `name` among the records in `[from, to)`.
fn share(recs: &[Rec], name: &str, from: Instant, to: Instant) -> (f64, usize) {
    let window: Vec<&Rec> = recs.iter().filter(|r| r.at >= from && r.at < to).collect();
    let hits = window
        .iter()
        .filter(|r| r.answer.as_deref() == Ok(name))
        .count();
    (hits as f64 / window.len().max(1) as f64, window.len())
}

#[test]
fn failover_then_recovery_with_slow_start() {
    let (a_addr, b_addr) = (free_addr(), free_addr());
    let _a = peer("a", a_addr);
    let mut b = peer("b", b_addr);
    // The passive time-out is far longer than the test: only the active
    // check can bring `b` back.
    let keys = r#"health = { uri = "/healthz", interval = "300ms", timeout = "1s", passes = 2, fails = 1 }
passive = { max_fails = 1, fail_timeout = "60s" }
slow_start = "6s""#;
    let px = common::Server::with_config(
        &proxy_config(2, &[("app", list(&[a_addr, b_addr]), keys)]),
        &[],
    );
    let threads = 4;
    let load = Load::start(px.addr, "/app/x", threads);
    load.wait_more(400, Duration::from_secs(30));

    // Killed mid-load: at most the requests in flight fail, and none once
    // the proxy has noticed.
    b.child.kill().unwrap();
    b.child.wait().unwrap();
    let dead = Instant::now();
    load.wait_more(1000, Duration::from_secs(30));
    std::thread::sleep(Duration::from_millis(1500)); // checks notice it
    load.wait_more(500, Duration::from_secs(30));

    // Started again on its address: the active check brings it back.
    let _b = peer("b", b_addr);
    let restarted = Instant::now();
    assert!(
        wait_for(Duration::from_secs(20), || load.seen_since("b", restarted)),
        "b is not used again after its restart"
    );
    std::thread::sleep(Duration::from_secs(8));
    let recs = load.finish();

    let failed: Vec<&Rec> = recs.iter().filter(|r| r.answer.is_err()).collect();
    assert!(
        failed.len() <= threads,
        "{} requests failed, more than were in flight: {failed:?}",
        failed.len()
    );
    // The process is gone, but its io_uring instance lets go of the
    // listening socket a little later, so a connect just after the kill may
    // still be taken and then reset; a second is far more than that.
    let detected = dead + Duration::from_secs(1);
    let late: Vec<&Rec> = failed
        .iter()
        .copied()
        .filter(|r| r.at >= detected)
        .collect();
    let when: Vec<String> = late
        .iter()
        .map(|r| {
            format!(
                "{:?} after the kill, {:?} after the restart: {:?}",
                r.at - dead,
                r.at.checked_duration_since(restarted),
                r.answer
            )
        })
        .collect();
    assert!(
        late.is_empty(),
        "requests made after the kill failed: {when:?}"
    );
    let (b_dead, n) = share(&recs, "b", dead, restarted);
    assert!(n > 1000 && b_dead == 0.0, "{n} requests, b {b_dead}");

    // Slow start: b's weight ramps from a tenth of a's to all of it over
    // 6 s. Its first second back it gets well under the half it gets at
    // the end.
    let back = recs
        .iter()
        .find(|r| r.at >= restarted && r.answer.as_deref() == Ok("b"))
        .unwrap()
        .at;
    let end = recs.last().unwrap().at;
    let (early, n_early) = share(&recs, "b", back, back + Duration::from_secs(1));
    let (late, n_late) = share(&recs, "b", back + Duration::from_millis(6500), end);
    eprintln!("slow start: b {early:.3} of {n_early} at first, {late:.3} of {n_late} at the end");
    assert!(n_early >= 50 && n_late >= 50, "{n_early} {n_late}");
    assert!(early < 0.3, "b took {early} of the requests right back");
    assert!(
        late > 0.4,
        "b took only {late} of the requests after the ramp"
    );
}

#[test]
fn backups_serve_only_while_no_primary_is_up() {
    let (a_addr, b_addr, c_addr) = (free_addr(), free_addr(), free_addr());
    let mut a = peer("a", a_addr);
    let mut b = peer("b", b_addr);
    let _c = peer("c", c_addr);
    let servers =
        format!("[\"{a_addr}\", \"{b_addr}\", {{ address = \"{c_addr}\", backup = true }}]");
    let keys = r#"health = { uri = "/healthz", interval = "300ms", timeout = "1s", passes = 1, fails = 1 }
passive = { max_fails = 1, fail_timeout = "60s" }
retry = { tries = 3 }"#;
    let px = common::Server::with_config(&proxy_config(2, &[("app", servers, keys)]), &[]);
    let ask = |n: usize| -> Tally {
        let mut t = Tally::default();
        for _ in 0..n {
            // A fresh connection each time: both cores take their share.
            match Client::new(px.addr).get("/app/x") {
                Ok(r) if r.status == 200 => t.add(&who(&r)),
                Ok(r) => t.add(&format!("{} {}", r.status, r.text())),
                Err(e) => t.add(&e.to_string()),
            }
        }
        t
    };
    let t = ask(100);
    assert_eq!(t.get("a") + t.get("b"), 100, "{t:?}");
    assert!(t.get("a") >= 40 && t.get("b") >= 40, "{t:?}");

    // Both primaries gone: the backup answers, and no request fails (a
    // refused connect is retried on the next server, the backup last).
    for p in [&mut a, &mut b] {
        p.child.kill().unwrap();
        p.child.wait().unwrap();
    }
    let t = ask(100);
    assert_eq!(t.get("c"), 100, "{t:?}");
    // The checks notice (a restart they never saw the outage of is left to
    // the passive time-out).
    std::thread::sleep(Duration::from_secs(2));

    // One primary back: the active check brings it back, the backup is
    // left again.
    let _a = peer("a", a_addr);
    let back = wait_for(Duration::from_secs(20), || {
        Client::new(px.addr)
            .get("/app/x")
            .is_ok_and(|r| r.text() == "a")
    });
    assert!(back, "a is not used again after its restart");
    // Let every core's checks agree.
    std::thread::sleep(Duration::from_secs(1));
    let t = ask(100);
    assert_eq!(t.get("a"), 100, "{t:?}");
}
