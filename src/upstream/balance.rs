//! Picking a server of a group for one request, on one worker core: plain
//! state and arithmetic, no I/O and no allocation per pick.
//!
//! Which servers may be picked, in order:
//!
//! 1. *Usable*: not marked down by the active checks ([`Balancer::set_active`])
//!    and not taken out by passive failures ([`Balancer::failed`]);
//! 2. not in the request's `exclude` list (servers already tried);
//! 3. below `max_conns` requests in flight on this core, when set;
//! 4. primaries when any of them passes 1–3, else backups.
//!
//! Among those, a valid sticky server wins; otherwise the group's policy
//! decides. Every policy weighs the servers by their *effective* weight:
//! the configured weight, ramped from a tenth to the whole over
//! `slow_start` after a server comes back.
//!
//! Hash policies use weighted rendezvous hashing: each server scores
//! `w / -ln(u)`, where `u` in (0, 1) hashes the key with the server's name,
//! and the highest score wins. A key maps to server `i` with probability
//! `w_i / Σw`, stays there while it is usable, and moves only when its
//! server goes away (or, during a slow start, to the server coming back).
//! Names, not positions, are hashed, so every core and every process agrees,
//! and adding or removing a server in the file moves only its own keys.

use std::net::IpAddr;
use std::time::{Duration, Instant};

use super::spec::{Policy, UpstreamSpec};

/// Fixed-point scale of effective weights: a full weight `w` counts
/// `w * SCALE`.
const SCALE: u64 = 1000;
/// Where a slow start begins, in thousandths of the weight.
const RAMP_FLOOR: u64 = 100;
/// The weight of a new sample in the moving average of the time to the
/// response head (1/8, as TCP smooths round-trip times).
const EWMA_ALPHA: f64 = 0.125;

/// What a request brings to a pick.
#[derive(Clone, Copy, Debug, Default)]
pub struct Pick<'a> {
    /// The client's address (`ip_hash`).
    pub client_ip: Option<IpAddr>,
    /// The request's path and query (`uri_hash`).
    pub uri: &'a str,
    /// The value of the `lb_key` header or cookie, found by the caller
    /// (`header`, `cookie`); `None` or empty: the request has none.
    pub key: Option<&'a [u8]>,
    /// The server named by a valid sticky cookie.
    pub sticky: Option<usize>,
    /// Servers already tried for this request.
    pub exclude: &'a [usize],
}

#[derive(Debug)]
struct Server {
    /// Configured weight.
    weight: u64,
    backup: bool,
    /// Hash of the server's name (rendezvous).
    id: u64,
    /// Smooth weighted round robin's running weight.
    current: i64,
    in_flight: u32,
    /// Moving average of the time to the head, in seconds; `None` before the
    /// first sample.
    ewma: Option<f64>,
    /// The active checks' verdict (up until told otherwise).
    active_up: bool,
    /// Passive failures in the window that began at `window`.
    fails: u32,
    window: Option<Instant>,
    /// Taken out by passive failures until then.
    down_until: Option<Instant>,
    /// The last slow start began then.
    ramp_from: Option<Instant>,
}

/// The balancer of one group on one worker core.
#[derive(Debug)]
pub struct Balancer {
    servers: Vec<Server>,
    policy: Policy,
    max_fails: u32,
    fail_timeout: Duration,
    slow_start: Duration,
    max_conns: u32,
    /// A single server (no backup either): passive failures never take it
    /// out, as there is nowhere else to send requests (nginx's rule).
    single: bool,
    rng: u64,
}

impl Balancer {
    /// A balancer for `spec`'s servers, all usable, at full weight; `seed`
    /// drives the random policies (give each core its own).
    pub fn new(spec: &UpstreamSpec, seed: u64) -> Balancer {
        let servers: Vec<Server> = spec
            .servers
            .iter()
            .map(|s| Server {
                weight: u64::from(s.weight.max(1)),
                backup: s.backup,
                id: hash(s.name.as_bytes()),
                current: 0,
                in_flight: 0,
                ewma: None,
                active_up: true,
                fails: 0,
                window: None,
                down_until: None,
                ramp_from: None,
            })
            .collect();
        Balancer {
            single: servers.len() == 1,
            servers,
            policy: spec.policy,
            max_fails: spec.passive.max_fails,
            fail_timeout: spec.passive.fail_timeout,
            slow_start: spec.slow_start,
            max_conns: spec.max_conns,
            rng: mix(seed ^ 0x9e37_79b9_7f4a_7c15) | 1,
        }
    }

    /// The server for a request, or `None` when no server may take it (the
    /// caller answers 503). Call [`Balancer::started`] once the request goes
    /// to it.
    pub fn pick(&mut self, p: &Pick<'_>, now: Instant) -> Option<usize> {
        let backup = self.tier(p, now)?;
        if let Some(s) = p.sticky
            && self.ok(s, backup, p, now)
        {
            return Some(s);
        }
        match self.policy {
            Policy::RoundRobin => self.round_robin(backup, p, now, |_, _| true),
            Policy::LeastRequests => self.least_requests(backup, p, now),
            Policy::LeastTime => self.least_time(backup, p, now),
            Policy::Random => self.random(backup, p, now, None),
            Policy::RandomTwo => self.random_two(backup, p, now),
            Policy::First => (0..self.servers.len()).find(|&i| self.ok(i, backup, p, now)),
            Policy::IpHash | Policy::UriHash | Policy::Header | Policy::Cookie => {
                let mut ip = [0u8; 16];
                let key: Option<&[u8]> = match self.policy {
                    Policy::IpHash => p.client_ip.map(|a| ip_bytes(a, &mut ip)),
                    Policy::UriHash => Some(p.uri.as_bytes()),
                    _ => p.key.filter(|k| !k.is_empty()),
                };
                match key {
                    Some(k) => self.rendezvous(hash(k), backup, p, now),
                    None => self.round_robin(backup, p, now, |_, _| true),
                }
            }
        }
    }

    /// A request went to `server`.
    pub fn started(&mut self, server: usize) {
        if let Some(s) = self.servers.get_mut(server) {
            s.in_flight = s.in_flight.saturating_add(1);
        }
    }

    /// A request to `server` is over (answered or failed); `head_time`, when
    /// known, is how long its response head took, averaged for `least_time`.
    pub fn finished(&mut self, server: usize, head_time: Option<Duration>) {
        let Some(s) = self.servers.get_mut(server) else {
            return;
        };
        s.in_flight = s.in_flight.saturating_sub(1);
        if let Some(t) = head_time {
            let t = t.as_secs_f64();
            s.ewma = Some(match s.ewma {
                None => t,
                Some(e) => e + EWMA_ALPHA * (t - e),
            });
        }
    }

    /// A request to `server` failed in a way that counts against it (a
    /// connect error, a time-out, an unhealthy status): `max_fails` of them
    /// within `fail_timeout` take it out for `fail_timeout`. Leaves the
    /// requests in flight alone: call [`Balancer::finished`] as well.
    pub fn failed(&mut self, server: usize, now: Instant) {
        let (max, window, ramp) = (self.max_fails, self.fail_timeout, self.slow_start);
        if max == 0 || self.single {
            return;
        }
        let Some(s) = self.servers.get_mut(server) else {
            return;
        };
        if s.down_until.is_some_and(|t| now < t) {
            return;
        }
        if s.window
            .is_none_or(|w| now.saturating_duration_since(w) > window)
        {
            s.window = Some(now);
            s.fails = 0;
        }
        s.fails += 1;
        if s.fails >= max {
            let back = now + window;
            s.down_until = Some(back);
            s.fails = 0;
            s.window = None;
            if !ramp.is_zero() {
                s.ramp_from = Some(back);
            }
        }
    }

    /// The active checks' verdict on `server`. A server coming back up is
    /// usable at once, whatever passive failures counted during the outage
    /// (the checks that passed since are the newer evidence), and starts
    /// its slow start now.
    pub fn set_active(&mut self, server: usize, up: bool, now: Instant) {
        let ramp = !self.slow_start.is_zero();
        let Some(s) = self.servers.get_mut(server) else {
            return;
        };
        if up && !s.active_up {
            s.fails = 0;
            s.window = None;
            s.down_until = None;
            if ramp {
                s.ramp_from = Some(now);
            }
        }
        s.active_up = up;
    }

    /// Whether `server` is up: not marked down by the active checks, nor out
    /// after passive failures.
    pub fn is_usable(&self, server: usize, now: Instant) -> bool {
        self.servers
            .get(server)
            .is_some_and(|s| s.active_up && s.down_until.is_none_or(|t| now >= t))
    }

    /// Requests in flight to `server` from this core.
    pub fn in_flight(&self, server: usize) -> u32 {
        self.servers.get(server).map_or(0, |s| s.in_flight)
    }

    /// The effective weight of `server` now, in thousandths of a unit of
    /// configured weight (its weight times 1000 when not in a slow start).
    pub fn effective_weight(&self, server: usize, now: Instant) -> u64 {
        self.servers.get(server).map_or(0, |s| self.eff(s, now))
    }

    fn eff(&self, s: &Server, now: Instant) -> u64 {
        let full = s.weight * SCALE;
        let Some(from) = s.ramp_from else {
            return full;
        };
        let ramp = self.slow_start.as_nanos();
        let gone = now.saturating_duration_since(from).as_nanos();
        if ramp == 0 || gone >= ramp {
            return full;
        }
        let share = u128::from(RAMP_FLOOR) + u128::from(SCALE - RAMP_FLOOR) * gone / ramp;
        (u128::from(s.weight) * share) as u64
    }

    /// Whether no server is open only because each usable one has
    /// `max_conns` requests in flight (a request may wait for one).
    pub fn saturated(&self, now: Instant) -> bool {
        self.max_conns > 0
            && (0..self.servers.len()).any(|i| self.is_usable(i, now))
            && (0..self.servers.len())
                .filter(|&i| self.is_usable(i, now))
                .all(|i| self.servers[i].in_flight >= self.max_conns)
    }

    /// Whether server `i` may take a request, ignoring its tier.
    fn open(&self, i: usize, p: &Pick<'_>, now: Instant) -> bool {
        self.is_usable(i, now)
            && !p.exclude.contains(&i)
            && (self.max_conns == 0 || self.servers[i].in_flight < self.max_conns)
    }

    /// Whether server `i` may take a request in the tier picked from
    /// (`backup`: the backups).
    fn ok(&self, i: usize, backup: bool, p: &Pick<'_>, now: Instant) -> bool {
        self.servers.get(i).is_some_and(|s| s.backup == backup) && self.open(i, p, now)
    }

    /// The tier to pick from: `Some(false)` the primaries, `Some(true)` the
    /// backups, `None` neither has a server open.
    fn tier(&self, p: &Pick<'_>, now: Instant) -> Option<bool> {
        let mut backups = false;
        for (i, s) in self.servers.iter().enumerate() {
            if self.open(i, p, now) {
                if !s.backup {
                    return Some(false);
                }
                backups = true;
            }
        }
        backups.then_some(true)
    }

    /// Smooth weighted round robin (nginx's) over the servers in the tier
    /// that `also` accepts: each adds its effective weight to its running
    /// weight, the highest is picked and gives back the sum.
    fn round_robin(
        &mut self,
        backup: bool,
        p: &Pick<'_>,
        now: Instant,
        also: impl Fn(&Balancer, usize) -> bool,
    ) -> Option<usize> {
        let mut total: i64 = 0;
        let mut best: Option<usize> = None;
        for i in 0..self.servers.len() {
            if !self.ok(i, backup, p, now) || !also(self, i) {
                continue;
            }
            let w = self.eff(&self.servers[i], now) as i64;
            self.servers[i].current += w;
            total += w;
            if best.is_none_or(|b| self.servers[i].current > self.servers[b].current) {
                best = Some(i);
            }
        }
        let b = best?;
        self.servers[b].current -= total;
        Some(b)
    }

    /// Fewest requests in flight per unit of weight; ties share by round
    /// robin.
    fn least_requests(&mut self, backup: bool, p: &Pick<'_>, now: Instant) -> Option<usize> {
        let load = |b: &Balancer, i: usize| {
            let s = &b.servers[i];
            (u128::from(s.in_flight), u128::from(b.eff(s, now)))
        };
        let mut best: Option<(u128, u128)> = None;
        for i in 0..self.servers.len() {
            if self.ok(i, backup, p, now) {
                let (f, w) = load(self, i);
                if best.is_none_or(|(bf, bw)| f * bw < bf * w) {
                    best = Some((f, w));
                }
            }
        }
        let (bf, bw) = best?;
        self.round_robin(backup, p, now, |b, i| {
            let (f, w) = load(b, i);
            f * bw == bf * w
        })
    }

    /// Lowest average time to the head times the requests in flight plus
    /// one, per unit of weight; ties share by round robin. A server not yet
    /// measured is tried first (else a lighter one behind a slow heavy one
    /// would never get the sample that shows it fast); while that first
    /// request is in flight it counts as fast as the fastest measured one.
    fn least_time(&mut self, backup: bool, p: &Pick<'_>, now: Instant) -> Option<usize> {
        let mut prior: Option<f64> = None;
        for i in 0..self.servers.len() {
            if self.ok(i, backup, p, now)
                && let Some(e) = self.servers[i].ewma
            {
                prior = Some(prior.map_or(e, |p| p.min(e)));
            }
        }
        let prior = prior.unwrap_or(1.0);
        let score = move |b: &Balancer, i: usize| {
            let s = &b.servers[i];
            let unmeasured = if s.in_flight == 0 { 0.0 } else { prior };
            s.ewma.unwrap_or(unmeasured) * (f64::from(s.in_flight) + 1.0) / b.eff(s, now) as f64
        };
        let mut best: Option<f64> = None;
        for i in 0..self.servers.len() {
            if self.ok(i, backup, p, now) {
                let v = score(self, i);
                if best.is_none_or(|b| v < b) {
                    best = Some(v);
                }
            }
        }
        let best = best?;
        self.round_robin(backup, p, now, move |b, i| score(b, i) == best)
    }

    /// A server drawn with probability proportional to its effective weight,
    /// `not` left out.
    fn random(
        &mut self,
        backup: bool,
        p: &Pick<'_>,
        now: Instant,
        not: Option<usize>,
    ) -> Option<usize> {
        let open = |b: &Balancer, i: usize| Some(i) != not && b.ok(i, backup, p, now);
        let total: u64 = (0..self.servers.len())
            .filter(|&i| open(self, i))
            .map(|i| self.eff(&self.servers[i], now))
            .sum();
        if total == 0 {
            return None;
        }
        let mut r = self.next() % total;
        for i in 0..self.servers.len() {
            if open(self, i) {
                let w = self.eff(&self.servers[i], now);
                if r < w {
                    return Some(i);
                }
                r -= w;
            }
        }
        None
    }

    /// Two servers drawn by weight; the one with fewer requests in flight
    /// per unit of weight (the first on a tie).
    fn random_two(&mut self, backup: bool, p: &Pick<'_>, now: Instant) -> Option<usize> {
        let a = self.random(backup, p, now, None)?;
        let Some(b) = self.random(backup, p, now, Some(a)) else {
            return Some(a);
        };
        let load = |i: usize| {
            let s = &self.servers[i];
            (u128::from(s.in_flight), u128::from(self.eff(s, now)))
        };
        let ((fa, wa), (fb, wb)) = (load(a), load(b));
        Some(if fb * wa < fa * wb { b } else { a })
    }

    /// The open server with the highest rendezvous score for the key hash
    /// `key`.
    fn rendezvous(&self, key: u64, backup: bool, p: &Pick<'_>, now: Instant) -> Option<usize> {
        let mut best: Option<(usize, f64)> = None;
        for i in 0..self.servers.len() {
            if !self.ok(i, backup, p, now) {
                continue;
            }
            let s = &self.servers[i];
            let score = self.eff(s, now) as f64 / -unit(mix(key ^ s.id)).ln();
            if best.is_none_or(|(_, b)| score > b) {
                best = Some((i, score));
            }
        }
        best.map(|(i, _)| i)
    }

    /// The next number of the generator (wyrand).
    fn next(&mut self) -> u64 {
        self.rng = self.rng.wrapping_add(0xa076_1d64_78bd_642f);
        let t = u128::from(self.rng) * u128::from(self.rng ^ 0xe703_7ed1_a0b4_28db);
        ((t >> 64) as u64) ^ (t as u64)
    }
}

/// `ip` as bytes in `buf` (an IPv4-mapped IPv6 address as its IPv4 one).
fn ip_bytes(ip: IpAddr, buf: &mut [u8; 16]) -> &[u8] {
    let ip = match ip {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(ip, IpAddr::V4),
        v4 => v4,
    };
    match ip {
        IpAddr::V4(a) => {
            buf[..4].copy_from_slice(&a.octets());
            &buf[..4]
        }
        IpAddr::V6(a) => {
            buf.copy_from_slice(&a.octets());
            &buf[..]
        }
    }
}

/// A 64-bit hash of `bytes`, the same in every process: FNV-1a, then
/// [`mix`].
fn hash(bytes: &[u8]) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for &b in bytes {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0000_0100_0000_01b3);
    }
    mix(h)
}

/// MurmurHash3's 64-bit finalizer: every input bit flips each output bit
/// with probability about one half.
fn mix(mut h: u64) -> u64 {
    h ^= h >> 33;
    h = h.wrapping_mul(0xff51_afd7_ed55_8ccd);
    h ^= h >> 33;
    h = h.wrapping_mul(0xc4ce_b9fe_1a85_ec53);
    h ^ (h >> 33)
}

/// `h` as a number in the open interval (0, 1).
fn unit(h: u64) -> f64 {
    ((h >> 11) as f64 + 0.5) / (1u64 << 53) as f64
}

#[cfg(test)]
#[path = "balance_tests.rs"]
pub(crate) mod tests;
