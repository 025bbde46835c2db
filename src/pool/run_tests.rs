use super::*;
use crate::pool::spec::StartMode;

fn spec(instances: usize) -> PoolSpec {
    crate::pool::spec::sample(instances)
}

fn run(s: PoolSpec, t0: Instant) -> Run {
    let cells = PoolCells::new(s.lanes());
    Run::new(Arc::new(s), cells, t0)
}

fn tick(r: &mut Run, now: Instant) -> Vec<Action> {
    let mut out = Vec::new();
    r.tick(now, 0, &|_| None, &mut out);
    out
}

/// Starts every action: spawns get pid 1000 + id and port 9000 + id,
/// probes answer `ready`.
fn answer(r: &mut Run, acts: &[Action], ready: bool, now: Instant) {
    for a in acts {
        match *a {
            Action::Spawn { id } => r.spawned(id, Ok((1000 + id, 9000 + id)), now),
            Action::Probe { id, .. } => r.probed(id, ready, now),
            _ => {}
        }
    }
}

fn serving(r: &Run) -> Vec<u32> {
    (0..r.cells.lanes())
        .map(|l| r.cells.view(l))
        .filter(|v| v.serving)
        .map(|v| v.ident)
        .collect()
}

#[test]
fn instances_start_and_serve_once_ready() {
    let t0 = Instant::now();
    let mut r = run(spec(2), t0);
    let a = tick(&mut r, t0);
    assert_eq!(a, vec![Action::Spawn { id: 0 }, Action::Spawn { id: 1 }]);
    answer(&mut r, &a, false, t0);
    let a = tick(&mut r, t0);
    assert_eq!(
        a,
        vec![
            Action::Probe { id: 0, ident: 9000 },
            Action::Probe { id: 1, ident: 9001 }
        ]
    );
    // Not ready yet: probed again after the interval, not before.
    answer(&mut r, &a, false, t0);
    assert!(tick(&mut r, t0 + Duration::from_millis(50)).is_empty());
    assert_eq!(r.status(t0).state, "starting");
    let t1 = t0 + PROBE_EVERY;
    let a = tick(&mut r, t1);
    answer(&mut r, &a, true, t1);
    assert_eq!(serving(&r), vec![9000, 9001]);
    let st = r.status(t1 + Duration::from_secs(3));
    assert_eq!(st.state, "running");
    assert_eq!(st.instances[0].pid, Some(1000));
    assert_eq!(st.instances[0].uptime, Duration::from_millis(3100));
    assert!(tick(&mut r, t1).is_empty());
}

fn started(instances: usize, s: impl FnOnce(&mut PoolSpec)) -> (Run, Instant) {
    let t0 = Instant::now();
    let mut sp = spec(instances);
    s(&mut sp);
    let mut r = run(sp, t0);
    let a = tick(&mut r, t0);
    answer(&mut r, &a, true, t0);
    let a = tick(&mut r, t0);
    answer(&mut r, &a, true, t0);
    assert_eq!(serving(&r).len(), instances);
    (r, t0)
}

#[test]
fn a_crash_is_respawned_after_a_backoff() {
    let (mut r, t0) = started(1, |_| {});
    r.exited(0, "exit status 3".into(), t0);
    assert!(serving(&r).is_empty());
    assert!(tick(&mut r, t0 + Duration::from_millis(50)).is_empty());
    let t1 = t0 + BACKOFF;
    let a = tick(&mut r, t1);
    assert_eq!(a, vec![Action::Spawn { id: 1 }]);
    answer(&mut r, &a, true, t1);
    let a = tick(&mut r, t1);
    answer(&mut r, &a, true, t1);
    assert_eq!(serving(&r), vec![9001]);
    let st = r.status(t1);
    assert_eq!(
        (st.restarts, st.last_exit.as_deref()),
        (1, Some("exit status 3"))
    );
}

#[test]
fn rapid_fail_stops_respawning_until_recycled() {
    let (mut r, mut t) = started(1, |_| {});
    for id in 0..3 {
        r.exited(id, "signal 11".into(), t);
        t += Duration::from_secs(1);
        let a = tick(&mut r, t);
        answer(&mut r, &a, true, t);
    }
    // Three crashes within the minute, two allowed: stopped.
    assert_eq!(r.status(t).state, "failed");
    assert!(r.cells.refusing());
    assert!(tick(&mut r, t + Duration::from_secs(30)).is_empty());
    r.recycle(t);
    assert!(!r.cells.refusing());
    let a = tick(&mut r, t);
    assert_eq!(a.len(), 1);
    answer(&mut r, &a, true, t);
    let a = tick(&mut r, t);
    answer(&mut r, &a, true, t);
    assert_eq!(r.status(t).state, "running");
}

#[test]
fn recycling_overlaps_and_drains() {
    let (mut r, t0) = started(1, |s| s.recycle.requests = 3);
    let seen = r.cells.view(0);
    for _ in 0..3 {
        assert!(r.cells.claim(0, seen));
    }
    r.cells.release(0);
    r.cells.release(0);
    // The replacement starts on the other lane; the old one still serves.
    let a = tick(&mut r, t0);
    assert_eq!(a, vec![Action::Spawn { id: 1 }]);
    answer(&mut r, &a, true, t0);
    assert_eq!(serving(&r), vec![9000]);
    let a = tick(&mut r, t0);
    answer(&mut r, &a, true, t0);
    // Ready: the new lane serves, the old drains its last request.
    assert_eq!(serving(&r), vec![9001]);
    assert!(tick(&mut r, t0).is_empty());
    assert_eq!(r.status(t0).instances[0].state, "draining");
    r.cells.release(0);
    let a = tick(&mut r, t0);
    assert_eq!(a, vec![Action::Term { pid: 1000 }]);
    r.exited(0, "exit status 0".into(), t0);
    let st = r.status(t0);
    assert_eq!((st.restarts, st.instances.len()), (0, 1));
    // The lane keeps counting, the instance starts from zero.
    assert_eq!(st.instances[0].requests, 0);
}

#[test]
fn a_stuck_drain_is_ended_then_killed() {
    let (mut r, t0) = started(1, |_| {});
    let seen = r.cells.view(0);
    assert!(r.cells.claim(0, seen));
    r.stop(t0);
    assert!(tick(&mut r, t0 + Duration::from_secs(1)).is_empty());
    let t1 = t0 + Duration::from_secs(5);
    assert_eq!(tick(&mut r, t1), vec![Action::Term { pid: 1000 }]);
    assert!(tick(&mut r, t1 + Duration::from_secs(1)).is_empty());
    assert_eq!(
        tick(&mut r, t1 + Duration::from_secs(5)),
        vec![Action::Kill { pid: 1000 }]
    );
    assert!(!r.finished());
    r.exited(0, "signal 9".into(), t1);
    assert!(r.finished());
}

#[test]
fn on_demand_starts_at_the_first_request_and_stops_when_idle() {
    let t0 = Instant::now();
    let mut sp = spec(1);
    sp.start = StartMode::OnDemand;
    sp.idle_timeout = Duration::from_secs(60);
    let mut r = run(sp, t0);
    assert!(tick(&mut r, t0).is_empty());
    assert_eq!(r.status(t0).state, "stopped");
    assert!(!r.cells.refusing());
    r.cells.want();
    let a = tick(&mut r, t0);
    assert_eq!(a, vec![Action::Spawn { id: 0 }]);
    answer(&mut r, &a, true, t0);
    let a = tick(&mut r, t0);
    answer(&mut r, &a, true, t0);
    let seen = r.cells.view(0);
    assert!(r.cells.claim(0, seen));
    r.cells.release(0);
    let t1 = t0 + Duration::from_secs(30);
    assert!(tick(&mut r, t1).is_empty());
    let t2 = t1 + Duration::from_secs(60);
    assert_eq!(tick(&mut r, t2), vec![Action::Term { pid: 1000 }]);
    assert!(serving(&r).is_empty());
    r.exited(0, "exit status 0".into(), t2);
    assert_eq!(r.status(t2).state, "stopped");
    r.cells.want();
    assert_eq!(tick(&mut r, t2), vec![Action::Spawn { id: 1 }]);
}

#[test]
fn an_instance_never_ready_counts_as_a_crash() {
    let t0 = Instant::now();
    let mut r = run(spec(1), t0);
    let a = tick(&mut r, t0);
    answer(&mut r, &a, false, t0);
    let t1 = t0 + Duration::from_secs(10);
    let a = tick(&mut r, t1);
    assert_eq!(a, vec![Action::Kill { pid: 1000 }]);
    assert_eq!(r.status(t1).restarts, 1);
    assert_eq!(
        r.status(t1).last_exit.as_deref(),
        Some("not ready within 10000 ms")
    );
}

#[test]
fn a_spawn_failure_is_a_crash() {
    let t0 = Instant::now();
    let mut r = run(spec(1), t0);
    let a = tick(&mut r, t0);
    assert_eq!(a, vec![Action::Spawn { id: 0 }]);
    r.spawned(0, Err("No such file or directory".into()), t0);
    let st = r.status(t0);
    assert_eq!(st.restarts, 1);
    assert!(st.instances.is_empty());
    assert!(st.last_exit.unwrap().contains("No such file"));
}

#[test]
fn time_memory_and_schedule_recycle() {
    let (mut r, t0) = started(1, |s| s.recycle.time = Duration::from_secs(3600));
    assert!(tick(&mut r, t0 + Duration::from_secs(60)).is_empty());
    let a = tick(&mut r, t0 + Duration::from_secs(3600));
    assert_eq!(a, vec![Action::Spawn { id: 1 }]);

    let (mut r, t0) = started(1, |s| s.recycle.memory = 100 << 20);
    let mut out = Vec::new();
    let t1 = t0 + MEMORY_EVERY;
    r.tick(t1, 0, &|_| Some(50 << 20), &mut out);
    assert!(out.is_empty());
    // Looked at once a second.
    let over = |pid| (pid == 1000).then_some(200 << 20);
    r.tick(t1 + Duration::from_millis(500), 0, &over, &mut out);
    assert!(out.is_empty());
    r.tick(t1 + MEMORY_EVERY, 0, &over, &mut out);
    assert_eq!(out, vec![Action::Spawn { id: 1 }]);

    let (mut r, t0) = started(1, |s| s.recycle.schedule = vec![3 * 60]);
    let mut out = Vec::new();
    r.tick(t0, 3 * 60 - 1, &|_| None, &mut out);
    assert!(out.is_empty());
    r.tick(t0, 3 * 60, &|_| None, &mut out);
    assert_eq!(out, vec![Action::Spawn { id: 1 }]);
}

#[test]
fn a_serving_instance_that_stops_answering_is_killed_and_replaced() {
    let (mut r, t0) = started(1, |s| s.ready.interval = Duration::from_secs(10));
    // Probed every interval while it serves; one miss is forgiven.
    let mut t = t0;
    for ok in [true, false, true, false, false, false] {
        t += Duration::from_secs(10);
        let a = tick(&mut r, t);
        assert_eq!(a, vec![Action::Probe { id: 0, ident: 9000 }]);
        r.probed(0, ok, t);
    }
    assert_eq!(tick(&mut r, t), vec![Action::Kill { pid: 1000 }]);
    assert!(serving(&r).is_empty());
    r.exited(0, "signal 9".into(), t);
    let st = r.status(t);
    assert_eq!(st.restarts, 1);
    assert_eq!(
        st.last_exit.as_deref(),
        Some("3 probes in a row failed (signal 9)")
    );
    let a = tick(&mut r, t + BACKOFF);
    assert_eq!(a, vec![Action::Spawn { id: 1 }]);
}

#[test]
fn a_manual_recycle_replaces_every_instance() {
    let (mut r, t0) = started(2, |_| {});
    r.recycle(t0);
    let a = tick(&mut r, t0);
    assert_eq!(a, vec![Action::Spawn { id: 2 }, Action::Spawn { id: 3 }]);
    answer(&mut r, &a, true, t0);
    let a = tick(&mut r, t0);
    answer(&mut r, &a, true, t0);
    assert_eq!(serving(&r), vec![9002, 9003]);
    let a = tick(&mut r, t0);
    assert_eq!(
        a,
        vec![Action::Term { pid: 1000 }, Action::Term { pid: 1001 }]
    );
}
