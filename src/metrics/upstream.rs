//! Upstream servers as the workers see them: each worker reports its groups
//! with its snapshot ([`UpstreamReport`], built by the worker's upstream
//! engine when it publishes); readers merge the reports by group and server
//! name ([`add_upstreams`]) and show them in `/metrics` ([`prometheus`]) and
//! `/status` ([`status`]).

use std::fmt::Write;
use std::sync::Arc;

use serde_json::{Map, Value, json};

use super::prometheus::{head, label};
use crate::upstream::stats::{FAILURE_NAMES, HEAD_BUCKETS_US, ServerStats};

const CLASSES: [&str; 5] = ["1xx", "2xx", "3xx", "4xx", "5xx"];

/// Whether requests may go to a server.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Health {
    /// Active checks are configured and have no verdict yet (requests may
    /// go to it meanwhile).
    #[default]
    Unknown,
    /// Usable: not marked down by the active checks, not taken out after
    /// passive failures.
    Up,
    /// Marked down by the active checks, or taken out after passive
    /// failures (on at least one worker).
    Down,
}

impl Health {
    /// Its name in `/status`.
    pub fn as_str(self) -> &'static str {
        match self {
            Health::Unknown => "unknown",
            Health::Up => "up",
            Health::Down => "down",
        }
    }

    /// Two workers' views as one: down if either sees it down, else up if
    /// either has a verdict.
    pub fn merge(self, o: Health) -> Health {
        match (self, o) {
            (Health::Down, _) | (_, Health::Down) => Health::Down,
            (Health::Up, _) | (_, Health::Up) => Health::Up,
            _ => Health::Unknown,
        }
    }
}

/// One server of a group, as one worker (or the sum of several) sees it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ServerReport {
    /// The address as configured (the `server` label).
    pub name: Arc<str>,
    /// Its configured weight.
    pub weight: u32,
    /// A backup server.
    pub backup: bool,
    /// Part of the configuration in effect (a server only an earlier
    /// generation had keeps its counts, and has no health).
    pub live: bool,
    /// Whether requests may go to it.
    pub health: Health,
    /// Connections open or being opened, health checks' included.
    pub open: u64,
    /// Of those, idle in the keep-alive pool.
    pub idle: u64,
    /// What was counted.
    pub stats: ServerStats,
}

/// One `[[upstream]]` group, as one worker (or the sum of several) sees it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct UpstreamReport {
    /// The group's name (the `upstream` label).
    pub name: Arc<str>,
    /// Its `lb_policy`.
    pub policy: &'static str,
    /// Part of the configuration in effect.
    pub live: bool,
    /// Its servers, in the order configured.
    pub servers: Vec<ServerReport>,
}

/// Adds `from` into `into`, group by group and server by server, by name
/// (one new to `into` is appended): counts and connections add up, health
/// merges ([`Health::merge`]), and the configuration in effect gives the
/// policy, weight and backup flag.
pub fn add_upstreams(into: &mut Vec<UpstreamReport>, from: &[UpstreamReport]) {
    for u in from {
        let Some(t) = into.iter_mut().find(|t| t.name == u.name) else {
            into.push(u.clone());
            continue;
        };
        if u.live && !t.live {
            t.policy = u.policy;
            t.live = true;
        }
        for s in &u.servers {
            let Some(ts) = t.servers.iter_mut().find(|ts| ts.name == s.name) else {
                t.servers.push(s.clone());
                continue;
            };
            ts.stats.add(&s.stats);
            ts.open += s.open;
            ts.idle += s.idle;
            if s.live && !ts.live {
                ts.weight = s.weight;
                ts.backup = s.backup;
                ts.health = s.health;
                ts.live = true;
            } else if s.live {
                ts.health = ts.health.merge(s.health);
            }
        }
    }
}

/// The upstream series of `/metrics`, summed over the workers; nothing
/// when no upstream is configured.
pub fn prometheus(o: &mut String, all: &[UpstreamReport]) {
    let servers: Vec<(String, &ServerReport)> = all
        .iter()
        .flat_map(|u| {
            let up = label(&u.name);
            u.servers.iter().map(move |s| {
                let l = format!("upstream=\"{up}\",server=\"{}\"", label(&s.name));
                (l, s)
            })
        })
        .collect();
    if servers.is_empty() {
        return;
    }
    let n = "peregrine_upstream_requests_total";
    head(
        o,
        n,
        "counter",
        "Requests sent to each upstream server, retries included.",
    );
    for (l, s) in &servers {
        let _ = writeln!(o, "{n}{{{l}}} {}", s.stats.requests);
    }
    let n = "peregrine_upstream_responses_total";
    head(
        o,
        n,
        "counter",
        "Complete responses from each upstream server, by status class.",
    );
    for (l, s) in &servers {
        for (i, class) in CLASSES.iter().enumerate() {
            let v = s.stats.responses[i];
            let _ = writeln!(o, "{n}{{{l},class=\"{class}\"}} {v}");
        }
    }
    let n = "peregrine_upstream_failures_total";
    head(
        o,
        n,
        "counter",
        "Requests to each upstream server that got no complete response, by kind.",
    );
    for (l, s) in &servers {
        for (i, kind) in FAILURE_NAMES.iter().enumerate() {
            let v = s.stats.failures[i];
            let _ = writeln!(o, "{n}{{{l},kind=\"{kind}\"}} {v}");
        }
    }
    let n = "peregrine_upstream_health";
    head(
        o,
        n,
        "gauge",
        "1 while requests may go to the server, 0 while the active checks mark it down or passive failures took it out on some worker.",
    );
    for (l, s) in servers.iter().filter(|(_, s)| s.live) {
        let _ = writeln!(o, "{n}{{{l}}} {}", u8::from(s.health != Health::Down));
    }
    let n = "peregrine_upstream_connections";
    head(
        o,
        n,
        "gauge",
        "Connections to each upstream server: open (connecting, busy, idle and health checks') and idle in the keep-alive pool.",
    );
    for (l, s) in &servers {
        let _ = writeln!(o, "{n}{{{l},state=\"open\"}} {}", s.open);
        let _ = writeln!(o, "{n}{{{l},state=\"idle\"}} {}", s.idle);
    }
    let n = "peregrine_upstream_checks_total";
    head(
        o,
        n,
        "counter",
        "Active health checks of each upstream server, by result.",
    );
    for (l, s) in &servers {
        let [pass, fail] = s.stats.checks;
        let _ = writeln!(o, "{n}{{{l},result=\"pass\"}} {pass}");
        let _ = writeln!(o, "{n}{{{l},result=\"fail\"}} {fail}");
    }
    let n = "peregrine_upstream_head_seconds";
    head(
        o,
        n,
        "histogram",
        "Time from the start of an attempt on an upstream server (a new connection's connect included) to its response head.",
    );
    for (l, s) in &servers {
        let mut below = 0;
        for (le, count) in HEAD_BUCKETS_US.iter().zip(s.stats.head_buckets) {
            below += count;
            let le = *le as f64 / 1e6;
            let _ = writeln!(o, "{n}_bucket{{{l},le=\"{le}\"}} {below}");
        }
        let heads = s.stats.heads;
        let _ = writeln!(o, "{n}_bucket{{{l},le=\"+Inf\"}} {heads}");
        let _ = writeln!(o, "{n}_sum{{{l}}} {}", s.stats.head_us as f64 / 1e6);
        let _ = writeln!(o, "{n}_count{{{l}}} {heads}");
    }
}

/// The `upstreams` array of `/status`: the groups and servers of the
/// configuration in effect, summed over the workers.
pub fn status(all: &[UpstreamReport]) -> Value {
    let groups = all.iter().filter(|u| u.live).map(|u| {
        let servers: Vec<Value> = u
            .servers
            .iter()
            .filter(|s| s.live)
            .map(server_status)
            .collect();
        json!({"name": &*u.name, "policy": u.policy, "servers": servers})
    });
    Value::Array(groups.collect())
}

fn server_status(s: &ServerReport) -> Value {
    let st = &s.stats;
    let r = &st.responses;
    let mut failures = Map::new();
    for (i, kind) in FAILURE_NAMES.iter().enumerate() {
        failures.insert((*kind).into(), st.failures[i].into());
    }
    json!({
        "address": &*s.name,
        "weight": s.weight,
        "backup": s.backup,
        "health": s.health.as_str(),
        "requests": st.requests,
        "responses": {"1xx": r[0], "2xx": r[1], "3xx": r[2], "4xx": r[3], "5xx": r[4]},
        "failed": st.failed(),
        "failures": failures,
        "checks": {"pass": st.checks[0], "fail": st.checks[1]},
        "connections": {"open": s.open, "idle": s.idle},
        "heads": st.heads,
        "head_mean_ms": st.head_mean_us() as f64 / 1000.0,
    })
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;
    use crate::upstream::Failure;

    fn server(name: &str, health: Health, requests: u64) -> ServerReport {
        ServerReport {
            name: name.into(),
            weight: 1,
            backup: false,
            live: true,
            health,
            open: 1,
            idle: 1,
            stats: ServerStats {
                requests,
                ..ServerStats::default()
            },
        }
    }

    fn group(name: &str, servers: Vec<ServerReport>) -> UpstreamReport {
        UpstreamReport {
            name: name.into(),
            policy: "round_robin",
            live: true,
            servers,
        }
    }

    #[test]
    fn health_merges_to_the_worse_verdict() {
        use Health::*;
        assert_eq!(Up.merge(Down), Down);
        assert_eq!(Down.merge(Unknown), Down);
        assert_eq!(Unknown.merge(Up), Up);
        assert_eq!(Unknown.merge(Unknown), Unknown);
    }

    #[test]
    fn reports_add_up_by_name() {
        let mut all = Vec::new();
        let w0 = [group(
            "app",
            vec![server("a:1", Health::Up, 3), server("b:1", Health::Up, 1)],
        )];
        let mut w1 = [
            group(
                "app",
                vec![server("b:1", Health::Down, 2), server("a:1", Health::Up, 4)],
            ),
            group("api", vec![server("c:1", Health::Unknown, 0)]),
        ];
        w1[0].servers[1].stats.failure(Failure::Connect(111));
        add_upstreams(&mut all, &w0);
        add_upstreams(&mut all, &w1);
        assert_eq!(all.len(), 2);
        let app = &all[0];
        assert_eq!(&*app.servers[0].name, "a:1");
        assert_eq!(app.servers[0].stats.requests, 7);
        assert_eq!(app.servers[0].stats.failures[0], 1);
        assert_eq!((app.servers[0].open, app.servers[0].idle), (2, 2));
        assert_eq!(app.servers[0].health, Health::Up);
        assert_eq!(app.servers[1].health, Health::Down);
        assert_eq!(all[1].servers[0].health, Health::Unknown);
    }

    #[test]
    fn an_earlier_generation_adds_counts_but_not_health() {
        let mut old = group("app", vec![server("a:1", Health::Unknown, 5)]);
        old.live = false;
        old.policy = "first";
        old.servers[0].live = false;
        old.servers[0].weight = 9;
        let mut new = group("app", vec![server("a:1", Health::Down, 1)]);
        new.servers[0].weight = 2;
        let mut all = Vec::new();
        add_upstreams(&mut all, &[old, new]);
        let a = &all[0].servers[0];
        assert_eq!((all[0].policy, all[0].live), ("round_robin", true));
        assert_eq!((a.stats.requests, a.weight, a.live), (6, 2, true));
        assert_eq!(a.health, Health::Down);
    }

    #[test]
    fn exposition_has_every_series_with_cumulative_buckets() {
        let mut s = server("10.0.0.1:80", Health::Down, 4);
        s.stats.response(200);
        s.stats.response(200);
        s.stats.response(503);
        s.stats.failure(Failure::Connect(111));
        s.stats.checks(false);
        s.stats.head_time(Duration::from_micros(80));
        s.stats.head_time(Duration::from_millis(2));
        s.stats.head_time(Duration::from_secs(100));
        let mut gone = server("x\"y", Health::Unknown, 0);
        gone.live = false;
        let mut text = String::new();
        prometheus(&mut text, &[group("app", vec![s, gone])]);
        let l = "upstream=\"app\",server=\"10.0.0.1:80\"";
        for line in [
            "# TYPE peregrine_upstream_requests_total counter".to_string(),
            format!("peregrine_upstream_requests_total{{{l}}} 4"),
            format!("peregrine_upstream_responses_total{{{l},class=\"2xx\"}} 2"),
            format!("peregrine_upstream_responses_total{{{l},class=\"5xx\"}} 1"),
            format!("peregrine_upstream_failures_total{{{l},kind=\"connect_error\"}} 1"),
            format!("peregrine_upstream_failures_total{{{l},kind=\"head_timeout\"}} 0"),
            format!("peregrine_upstream_health{{{l}}} 0"),
            format!("peregrine_upstream_connections{{{l},state=\"open\"}} 1"),
            format!("peregrine_upstream_connections{{{l},state=\"idle\"}} 1"),
            format!("peregrine_upstream_checks_total{{{l},result=\"fail\"}} 1"),
            "# TYPE peregrine_upstream_head_seconds histogram".to_string(),
            format!("peregrine_upstream_head_seconds_bucket{{{l},le=\"0.0001\"}} 1"),
            format!("peregrine_upstream_head_seconds_bucket{{{l},le=\"0.0025\"}} 2"),
            format!("peregrine_upstream_head_seconds_bucket{{{l},le=\"60\"}} 2"),
            format!("peregrine_upstream_head_seconds_bucket{{{l},le=\"+Inf\"}} 3"),
            format!("peregrine_upstream_head_seconds_sum{{{l}}} 100.00208"),
            format!("peregrine_upstream_head_seconds_count{{{l}}} 3"),
        ] {
            assert!(text.contains(&format!("{line}\n")), "{line}\n{text}");
        }
        // A server of an earlier generation keeps its counters, has no
        // health, and its name is escaped.
        assert!(
            text.contains(
                "peregrine_upstream_requests_total{upstream=\"app\",server=\"x\\\"y\"} 0\n"
            )
        );
        assert_eq!(text.matches("peregrine_upstream_health{").count(), 1);
        let mut none = String::new();
        prometheus(&mut none, &[]);
        assert!(none.is_empty());
    }

    #[test]
    fn status_lists_the_configuration_in_effect() {
        let mut a = server("a:1", Health::Up, 2);
        a.stats.response(200);
        a.stats.head_time(Duration::from_micros(1500));
        a.stats.head_time(Duration::from_micros(500));
        a.backup = true;
        let mut b = server("b:1", Health::Down, 1);
        b.stats.failure(Failure::ConnectTimeout);
        let mut gone = server("c:1", Health::Unknown, 9);
        gone.live = false;
        let mut old = group("old", vec![]);
        old.live = false;
        let v = status(&[group("app", vec![a, b, gone]), old]);
        let groups = v.as_array().unwrap();
        assert_eq!(groups.len(), 1);
        assert_eq!(groups[0]["name"], "app");
        assert_eq!(groups[0]["policy"], "round_robin");
        let s = groups[0]["servers"].as_array().unwrap();
        assert_eq!(s.len(), 2);
        assert_eq!(s[0]["address"], "a:1");
        assert_eq!(s[0]["backup"], true);
        assert_eq!(s[0]["health"], "up");
        assert_eq!(s[0]["requests"], 2);
        assert_eq!(s[0]["responses"]["2xx"], 1);
        assert_eq!(s[0]["connections"]["idle"], 1);
        assert_eq!(s[0]["head_mean_ms"], 1.0);
        assert_eq!(s[1]["health"], "down");
        assert_eq!(s[1]["failed"], 1);
        assert_eq!(s[1]["failures"]["connect_timeout"], 1);
        assert_eq!(s[1]["failures"]["connect_error"], 0);
    }
}
