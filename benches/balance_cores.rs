//! How close per-core `least_requests` and `least_time` come to one global
//! balancer: a discrete-event simulation with the real `Balancer`.
//!
//! Each worker core balances with its own counts (nothing is shared on the
//! request path), so with N cores a core sees only its share of the requests
//! in flight. This runs the same arrivals through 1 balancer (the global
//! optimum of the policy) and through N per-core balancers that each get a
//! random 1/N of the requests (as `SO_REUSEPORT` spreads connections), and
//! prints the mean and p99 time in system and each server's share.
//!
//!     cargo bench --bench balance_cores
//!
//! Servers: three, with 4 request slots each (an application's thread pool)
//! and exponential service times with means 2, 4 and 8 ms; arrivals are
//! Poisson at 80% of the group's capacity. Deterministic (fixed seeds).

use std::collections::VecDeque;
use std::time::{Duration, Instant};

use peregrine::upstream::balance::{Balancer, Pick};

const SLOTS: usize = 4;
const MEANS_MS: [f64; 3] = [2.0, 4.0, 8.0];
const REQUESTS: usize = 200_000;
const LOAD: f64 = 0.8;

/// A small deterministic generator (splitmix64).
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    fn unit(&mut self) -> f64 {
        (self.next() >> 11) as f64 / (1u64 << 53) as f64
    }

    fn exp(&mut self, mean: f64) -> f64 {
        -mean * (1.0 - self.unit()).ln()
    }
}

/// One upstream server: busy slots and a queue of (request, arrival).
#[derive(Default)]
struct Server {
    busy: usize,
    queue: VecDeque<usize>,
}

struct Outcome {
    mean_ms: f64,
    p99_ms: f64,
    share: [f64; 3],
}

fn balancers(policy: &str, cores: usize) -> Vec<Balancer> {
    let toml = format!(
        "[[upstream]]\nname = \"g\"\nservers = [\"127.0.0.1:1\", \"127.0.0.1:2\", \"127.0.0.1:3\"]\n\
         lb_policy = \"{policy}\"\n"
    );
    let config = peregrine::config::parse(&toml, None).expect("the group parses");
    let spec = &config.upstreams[0];
    (0..cores)
        .map(|c| Balancer::new(spec, 0x5eed ^ c as u64))
        .collect()
}

fn simulate(policy: &str, cores: usize) -> Outcome {
    let t0 = Instant::now();
    let at = |ms: f64| t0 + Duration::from_secs_f64(ms / 1000.0);
    let capacity: f64 = MEANS_MS.iter().map(|m| SLOTS as f64 / m).sum();
    let gap = 1.0 / (capacity * LOAD);
    let mut rng = Rng(42);
    let mut bal = balancers(policy, cores);
    let mut servers: Vec<Server> = (0..3).map(|_| Server::default()).collect();
    // Per request: arrival, core, server, service time.
    let mut arrival = vec![0.0; REQUESTS];
    let mut core_of = vec![0usize; REQUESTS];
    let mut server_of = vec![0usize; REQUESTS];
    let mut service = vec![0.0; REQUESTS];
    let mut started = vec![0.0; REQUESTS];
    let mut times = Vec::with_capacity(REQUESTS);
    let mut count = [0usize; 3];
    // Completions: (time, request), kept sorted by time (a small heap).
    let mut done: std::collections::BinaryHeap<std::cmp::Reverse<(u64, usize)>> =
        Default::default();
    let key = |ms: f64| (ms * 1e6) as u64;
    let pick = Pick {
        client_ip: None,
        uri: "/",
        key: None,
        sticky: None,
        exclude: &[],
    };
    let mut next_arrival = 0.0;
    let mut issued = 0;
    let mut finished = 0;
    while finished < REQUESTS {
        let next_done = done.peek().map(|r| r.0.0);
        if issued < REQUESTS && next_done.is_none_or(|d| key(next_arrival) <= d) {
            let now = next_arrival;
            let r = issued;
            issued += 1;
            next_arrival += rng.exp(gap);
            let core = (rng.next() % cores as u64) as usize;
            let s = bal[core].pick(&pick, at(now)).expect("a server");
            bal[core].started(s);
            arrival[r] = now;
            core_of[r] = core;
            server_of[r] = s;
            service[r] = rng.exp(MEANS_MS[s]);
            count[s] += 1;
            let srv = &mut servers[s];
            if srv.busy < SLOTS {
                srv.busy += 1;
                started[r] = now;
                done.push(std::cmp::Reverse((key(now + service[r]), r)));
            } else {
                srv.queue.push_back(r);
            }
        } else {
            let std::cmp::Reverse((_, r)) = done.pop().expect("a completion");
            let now = started[r] + service[r];
            let s = server_of[r];
            // The time to the response head is what least_time averages.
            bal[core_of[r]].finished(s, Some(Duration::from_secs_f64((now - arrival[r]) / 1e3)));
            times.push(now - arrival[r]);
            finished += 1;
            let srv = &mut servers[s];
            match srv.queue.pop_front() {
                Some(q) => {
                    started[q] = now;
                    done.push(std::cmp::Reverse((key(now + service[q]), q)));
                }
                None => srv.busy -= 1,
            }
        }
    }
    times.sort_by(f64::total_cmp);
    let n = times.len() as f64;
    Outcome {
        mean_ms: times.iter().sum::<f64>() / n,
        p99_ms: times[(n * 0.99) as usize],
        share: count.map(|c| c as f64 / REQUESTS as f64),
    }
}

fn main() {
    println!(
        "3 servers x {SLOTS} slots, service means {MEANS_MS:?} ms, load {:.0}%, {REQUESTS} requests",
        LOAD * 100.0
    );
    println!(
        "{:<15} {:>5} {:>9} {:>9} {:>8}  shares",
        "policy", "cores", "mean ms", "p99 ms", "vs 1"
    );
    for policy in ["least_requests", "least_time", "round_robin", "random_two"] {
        let global = simulate(policy, 1).mean_ms;
        for cores in [1, 2, 4, 16] {
            let o = simulate(policy, cores);
            println!(
                "{policy:<15} {cores:>5} {:>9.2} {:>9.2} {:>7.2}x  {:.2} {:.2} {:.2}",
                o.mean_ms,
                o.p99_ms,
                o.mean_ms / global,
                o.share[0],
                o.share[1],
                o.share[2]
            );
        }
    }
}
