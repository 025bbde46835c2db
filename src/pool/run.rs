//! One pool's supervision, sans-IO: which instances to start, probe,
//! publish, drain, signal and respawn, driven by the supervisor thread
//! ([`super::supervisor`]) with what happened to the processes and the
//! time, and unit-tested in simulated time.
//!
//! Each instance slot has two lanes of the group: a replacement starts on
//! the free one, takes traffic once ready, and only then does the instance
//! it replaces stop taking requests, drain and receive SIGTERM (SIGKILL
//! after `shutdown_timeout`).

use std::collections::VecDeque;
use std::sync::Arc;
use std::time::{Duration, Instant};

use super::cells::PoolCells;
use super::spec::PoolSpec;
use super::status::{InstanceStatus, PoolStatus};

/// How often a starting instance is probed.
const PROBE_EVERY: Duration = Duration::from_millis(100);
/// The first respawn delay after a crash; it doubles with each crash in a
/// row, up to [`MAX_BACKOFF`].
const BACKOFF: Duration = Duration::from_millis(100);
const MAX_BACKOFF: Duration = Duration::from_secs(5);
/// How often instances' memory is looked at (with `recycle.memory`).
const MEMORY_EVERY: Duration = Duration::from_secs(1);

/// What the supervisor is asked to do.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Action {
    /// Start instance `id` (answer [`Run::spawned`]).
    Spawn {
        /// The instance.
        id: u32,
    },
    /// Probe instance `id` at `ident` (answer [`Run::probed`]).
    Probe {
        /// The instance.
        id: u32,
        /// Its port (or its number, for a Unix socket).
        ident: u32,
    },
    /// SIGTERM to the process group of `pid`.
    Term {
        /// The group leader.
        pid: u32,
    },
    /// SIGKILL to the process group of `pid`.
    Kill {
        /// The group leader.
        pid: u32,
    },
}

/// Where an instance is in its life.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Phase {
    /// Started, not ready yet.
    Starting,
    /// Ready: its lane takes requests.
    Serving,
    /// Replaced or stopping: no new requests; waits for those in flight.
    Draining,
    /// Sent SIGTERM (and SIGKILL once `killed`).
    Stopping {
        /// SIGKILL was sent too.
        killed: bool,
    },
}

impl Phase {
    /// The name `/status` shows.
    pub fn name(self) -> &'static str {
        match self {
            Phase::Starting => "starting",
            Phase::Serving => "serving",
            Phase::Draining => "draining",
            Phase::Stopping { .. } => "stopping",
        }
    }
}

#[derive(Debug)]
struct Instance {
    id: u32,
    slot: usize,
    lane: usize,
    pid: Option<u32>,
    ident: u32,
    phase: Phase,
    born: Instant,
    since: Instant,
    /// The lane's request count when the instance took it.
    base: u64,
    probing: bool,
    next_probe: Instant,
    /// To be replaced (by request count, time, memory, schedule or hand).
    recycle: bool,
    /// (Serving) Probes failed in a row.
    missed: u32,
    /// Why it is being killed, when it did not fail on its own.
    killed_for: Option<String>,
}

/// One pool under supervision.
#[derive(Debug)]
pub struct Run {
    spec: Arc<PoolSpec>,
    cells: Arc<PoolCells>,
    insts: Vec<Instance>,
    next_id: u32,
    /// Recent crashes, for rapid-fail protection.
    crashes: VecDeque<Instant>,
    /// Crashes since an instance last became ready (the respawn backoff).
    in_a_row: u32,
    respawn_at: Instant,
    /// Rapid-fail protection stopped the pool.
    failed: bool,
    /// Instances are wanted (false: on demand and not asked, or idle).
    running: bool,
    /// The pool is being stopped for good.
    stopping: bool,
    seen_demand: u64,
    idle_total: u64,
    idle_since: Instant,
    minute: Option<u16>,
    restarts: u64,
    last_exit: Option<String>,
    /// When memory is looked at next.
    memory_at: Instant,
}

impl Run {
    /// A pool to supervise; `always` pools start at the first tick.
    pub fn new(spec: Arc<PoolSpec>, cells: Arc<PoolCells>, now: Instant) -> Run {
        let running = spec.start == super::spec::StartMode::Always;
        let seen_demand = cells.demand();
        Run {
            spec,
            cells,
            insts: Vec::new(),
            next_id: 0,
            crashes: VecDeque::new(),
            in_a_row: 0,
            respawn_at: now,
            failed: false,
            running,
            stopping: false,
            seen_demand,
            idle_total: 0,
            idle_since: now,
            minute: None,
            restarts: 0,
            last_exit: None,
            memory_at: now,
        }
    }

    /// Its settings.
    pub fn spec(&self) -> &Arc<PoolSpec> {
        &self.spec
    }

    /// The cells its group reads.
    pub fn cells(&self) -> &Arc<PoolCells> {
        &self.cells
    }

    /// Stopped for good and every instance gone.
    pub fn finished(&self) -> bool {
        self.stopping && self.insts.is_empty()
    }

    /// Stops every instance (drained first) and starts none again.
    pub fn stop(&mut self, now: Instant) {
        self.stopping = true;
        self.running = false;
        for i in 0..self.insts.len() {
            self.retire(i, now);
        }
    }

    /// Replaces every instance (`POST /pools/{name}/recycle`); after
    /// rapid-fail protection stopped the pool, starts it again.
    pub fn recycle(&mut self, now: Instant) {
        if self.stopping {
            return;
        }
        if self.failed {
            self.failed = false;
            self.crashes.clear();
            self.in_a_row = 0;
            self.respawn_at = now;
            self.cells.set_refusing(false);
        }
        self.running = true;
        self.idle_since = now;
        for i in &mut self.insts {
            if i.phase == Phase::Serving {
                i.recycle = true;
            }
        }
    }

    /// The process of `id` was started as `pid`, listening at `ident` (a
    /// port, or the instance number for a Unix socket); `Err` says why it
    /// could not be.
    pub fn spawned(&mut self, id: u32, r: Result<(u32, u32), String>, now: Instant) {
        let Some(k) = self.find(id) else { return };
        match r {
            Ok((pid, ident)) => {
                let i = &mut self.insts[k];
                i.pid = Some(pid);
                i.ident = ident;
                i.since = now;
                i.next_probe = now;
            }
            Err(e) => {
                self.insts.remove(k);
                self.crashed(format!("cannot start: {e}"), now);
            }
        }
    }

    /// The probe of `id` answered (`true`: ready).
    pub fn probed(&mut self, id: u32, ok: bool, now: Instant) {
        let Some(k) = self.find(id) else { return };
        self.insts[k].probing = false;
        let ping = &self.spec.ready;
        if self.insts[k].phase == Phase::Serving {
            let i = &mut self.insts[k];
            i.next_probe = now + ping.interval;
            i.missed = if ok { 0 } else { i.missed + 1 };
            return;
        }
        if !ok || self.insts[k].phase != Phase::Starting {
            self.insts[k].next_probe = now + PROBE_EVERY;
            return;
        }
        self.insts[k].next_probe = now + ping.interval;
        let (slot, lane, ident) = (self.insts[k].slot, self.insts[k].lane, self.insts[k].ident);
        self.insts[k].phase = Phase::Serving;
        self.insts[k].since = now;
        self.in_a_row = 0;
        self.cells.publish(lane, true, ident);
        // The instance it replaces stops taking requests now.
        for j in 0..self.insts.len() {
            let o = &self.insts[j];
            if o.slot == slot && o.id != id && o.phase == Phase::Serving {
                self.retire(j, now);
            }
        }
    }

    /// The process of `id` exited; `how` says with what.
    pub fn exited(&mut self, id: u32, how: String, now: Instant) {
        let Some(k) = self.find(id) else { return };
        let i = self.insts.remove(k);
        let expected = matches!(i.phase, Phase::Draining | Phase::Stopping { .. });
        if i.phase == Phase::Serving {
            self.cells.publish(i.lane, false, i.ident);
        }
        if let Some(why) = i.killed_for {
            self.last_exit = Some(format!("{why} ({how})"));
        } else if expected {
            self.last_exit = Some(how);
        } else {
            self.crashed(how, now);
        }
    }

    fn crashed(&mut self, how: String, now: Instant) {
        self.last_exit = Some(how);
        self.restarts += 1;
        self.in_a_row = self.in_a_row.saturating_add(1);
        let backoff = BACKOFF.saturating_mul(1 << (self.in_a_row - 1).min(6));
        self.respawn_at = now + backoff.min(MAX_BACKOFF);
        let rf = &self.spec.rapid_fail;
        if rf.max_crashes == 0 {
            return;
        }
        self.crashes.push_back(now);
        while self
            .crashes
            .front()
            .is_some_and(|t| now.saturating_duration_since(*t) > rf.interval)
        {
            self.crashes.pop_front();
        }
        if self.crashes.len() > rf.max_crashes as usize && !self.failed {
            crate::runtime::log(&format!(
                "pool {}: {} crashes within {} s; not respawning (POST /pools/{}/recycle starts it again)",
                self.spec.name,
                self.crashes.len(),
                rf.interval.as_secs(),
                self.spec.name
            ));
            self.failed = true;
            self.cells.set_refusing(true);
            for k in 0..self.insts.len() {
                self.retire(k, now);
            }
        }
    }

    fn find(&self, id: u32) -> Option<usize> {
        self.insts.iter().position(|i| i.id == id)
    }

    /// Instance `k` takes no new requests and drains (or stops at once
    /// when it was not serving yet).
    fn retire(&mut self, k: usize, now: Instant) {
        let i = &mut self.insts[k];
        match i.phase {
            Phase::Serving => {
                self.cells.publish(i.lane, false, i.ident);
                i.phase = Phase::Draining;
                i.since = now;
            }
            Phase::Starting => {
                i.phase = Phase::Draining;
                i.since = now;
            }
            _ => {}
        }
    }

    /// Moves everything on; `minute` is the time of day (UTC) in minutes,
    /// `rss` reads a process's resident memory.
    pub fn tick(
        &mut self,
        now: Instant,
        minute: u16,
        rss: &dyn Fn(u32) -> Option<u64>,
        out: &mut Vec<Action>,
    ) {
        self.watch_demand(now);
        self.schedule(minute);
        self.limits(now, rss);
        for k in 0..self.insts.len() {
            self.step(k, now, out);
        }
        if self.running && !self.failed && !self.stopping && now >= self.respawn_at {
            for slot in 0..self.spec.instances {
                self.fill_slot(slot, now, out);
            }
        }
    }

    fn watch_demand(&mut self, now: Instant) {
        let demand = self.cells.demand();
        if demand != self.seen_demand {
            self.seen_demand = demand;
            if !self.running && !self.stopping && !self.failed {
                self.running = true;
                self.idle_since = now;
            }
        }
        let idle = self.spec.idle_timeout;
        if !self.running || idle.is_zero() {
            return;
        }
        let lanes = 0..self.cells.lanes();
        let total: u64 = lanes.clone().map(|l| self.cells.requests(l)).sum();
        let busy = lanes.into_iter().any(|l| self.cells.active(l) > 0);
        if total != self.idle_total || busy {
            self.idle_total = total;
            self.idle_since = now;
        } else if now.saturating_duration_since(self.idle_since) >= idle {
            crate::runtime::log(&format!(
                "pool {}: idle for {} s; stopping its instances until the next request",
                self.spec.name,
                idle.as_secs()
            ));
            self.running = false;
            for k in 0..self.insts.len() {
                self.retire(k, now);
            }
        }
    }

    fn schedule(&mut self, minute: u16) {
        let before = self.minute.replace(minute);
        if before.is_some_and(|b| b != minute) && self.spec.recycle.schedule.contains(&minute) {
            for i in &mut self.insts {
                if i.phase == Phase::Serving {
                    i.recycle = true;
                }
            }
        }
    }

    fn limits(&mut self, now: Instant, rss: &dyn Fn(u32) -> Option<u64>) {
        let r = &self.spec.recycle;
        // Memory is read (every process of the instance's group) once a
        // second at most.
        let memory = r.memory > 0 && now >= self.memory_at;
        if memory {
            self.memory_at = now + MEMORY_EVERY;
        }
        for i in &mut self.insts {
            if i.phase != Phase::Serving || i.recycle {
                continue;
            }
            let requests = self.cells.requests(i.lane).saturating_sub(i.base);
            let by_requests = r.requests > 0 && requests >= r.requests;
            let by_time = !r.time.is_zero() && now.saturating_duration_since(i.born) >= r.time;
            let by_memory = memory && i.pid.and_then(rss).is_some_and(|m| m >= r.memory);
            i.recycle = by_requests || by_time || by_memory;
        }
    }

    fn step(&mut self, k: usize, now: Instant, out: &mut Vec<Action>) {
        let timeout = self.spec.shutdown_timeout;
        let ready_timeout = self.spec.ready.timeout;
        let (interval, fails) = (self.spec.ready.interval, self.spec.ready.fails);
        let i = &mut self.insts[k];
        let Some(pid) = i.pid else { return };
        match i.phase {
            Phase::Starting => {
                if now.saturating_duration_since(i.born) >= ready_timeout {
                    i.phase = Phase::Stopping { killed: true };
                    i.since = now;
                    out.push(Action::Kill { pid });
                    let how = format!("not ready within {} ms", ready_timeout.as_millis());
                    i.killed_for = Some(how.clone());
                    self.crashed(how, now);
                } else if !i.probing && now >= i.next_probe {
                    i.probing = true;
                    out.push(Action::Probe {
                        id: i.id,
                        ident: i.ident,
                    });
                }
            }
            // A serving instance that stopped answering its probes is
            // killed (and started again) like one that crashed.
            Phase::Serving if fails > 0 && i.missed >= fails => {
                self.cells.publish(i.lane, false, i.ident);
                i.phase = Phase::Stopping { killed: true };
                i.since = now;
                out.push(Action::Kill { pid });
                let how = format!("{} probes in a row failed", i.missed);
                i.killed_for = Some(how.clone());
                self.crashed(how, now);
            }
            Phase::Serving if !interval.is_zero() && !i.probing && now >= i.next_probe => {
                i.probing = true;
                out.push(Action::Probe {
                    id: i.id,
                    ident: i.ident,
                });
            }
            Phase::Draining => {
                let drained = self.cells.active(i.lane) == 0;
                if drained || now.saturating_duration_since(i.since) >= timeout {
                    i.phase = Phase::Stopping { killed: false };
                    i.since = now;
                    out.push(Action::Term { pid });
                }
            }
            Phase::Stopping { killed: false }
                if now.saturating_duration_since(i.since) >= timeout =>
            {
                i.phase = Phase::Stopping { killed: true };
                out.push(Action::Kill { pid });
            }
            _ => {}
        }
    }

    /// Starts an instance for `slot` when it has none, or a replacement
    /// when its instance is to be recycled, on a lane no process holds.
    fn fill_slot(&mut self, slot: usize, now: Instant, out: &mut Vec<Action>) {
        let mine = || self.insts.iter().filter(move |i| i.slot == slot);
        let starting = mine().any(|i| i.phase == Phase::Starting);
        let serving = mine().find(|i| i.phase == Phase::Serving);
        let wanted = match serving {
            None => !starting,
            Some(s) => s.recycle && !starting,
        };
        if !wanted {
            return;
        }
        let n = self.spec.instances;
        let Some(lane) = [slot, slot + n]
            .into_iter()
            .find(|l| !self.insts.iter().any(|i| i.lane == *l))
        else {
            return;
        };
        let id = self.next_id;
        self.next_id += 1;
        self.insts.push(Instance {
            id,
            slot,
            lane,
            pid: None,
            ident: 0,
            phase: Phase::Starting,
            born: now,
            since: now,
            base: self.cells.requests(lane),
            probing: false,
            next_probe: now,
            recycle: false,
            missed: 0,
            killed_for: None,
        });
        out.push(Action::Spawn { id });
    }

    /// What `/status` shows of it.
    pub fn status(&self, now: Instant) -> PoolStatus {
        let state = if self.failed {
            "failed"
        } else if self.stopping {
            "stopping"
        } else if !self.running {
            "stopped"
        } else if self.insts.iter().any(|i| i.phase == Phase::Serving) {
            "running"
        } else {
            "starting"
        };
        PoolStatus {
            name: self.spec.name.clone(),
            state,
            restarts: self.restarts,
            last_exit: self.last_exit.clone(),
            instances: self
                .insts
                .iter()
                .map(|i| InstanceStatus {
                    id: i.id,
                    pid: i.pid,
                    state: i.phase.name(),
                    address: self.address(i.ident, i.id),
                    uptime: now.saturating_duration_since(i.born),
                    requests: self.cells.requests(i.lane).saturating_sub(i.base),
                })
                .collect(),
        }
    }

    fn address(&self, ident: u32, id: u32) -> String {
        match self.spec.socket_path(id) {
            Some(p) => format!("unix:{}", p.display()),
            None => format!("127.0.0.1:{ident}"),
        }
    }
}

#[cfg(test)]
#[path = "run_tests.rs"]
mod tests;
