//! What the supervisor publishes of its pools for `/status`, `/metrics`
//! and the dashboard.

use std::sync::{Arc, Mutex};
use std::time::Duration;

/// One instance.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct InstanceStatus {
    /// Its number in the pool (the `{instance}` placeholder).
    pub id: u32,
    /// Its process, once started.
    pub pid: Option<u32>,
    /// starting, serving, draining or stopping.
    pub state: &'static str,
    /// Where it listens.
    pub address: String,
    /// How long since it was started.
    pub uptime: Duration,
    /// Requests sent to it.
    pub requests: u64,
}

/// One pool.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PoolStatus {
    /// Its name.
    pub name: String,
    /// running, starting, stopped (on demand or idle), failed (rapid-fail
    /// protection) or stopping.
    pub state: &'static str,
    /// Instances started again after a crash.
    pub restarts: u64,
    /// How the last instance to exit ended.
    pub last_exit: Option<String>,
    /// Its processes.
    pub instances: Vec<InstanceStatus>,
}

/// The latest view of every pool, written by the supervisor and read by
/// the admin listener.
pub type Board = Arc<Mutex<Vec<PoolStatus>>>;

/// A copy of the board's contents.
pub fn read(board: &Board) -> Vec<PoolStatus> {
    board.lock().unwrap_or_else(|p| p.into_inner()).clone()
}

impl PoolStatus {
    /// The `/status` JSON of the pool.
    pub fn to_json(&self) -> serde_json::Value {
        let instances: Vec<serde_json::Value> = self
            .instances
            .iter()
            .map(|i| {
                serde_json::json!({
                    "id": i.id,
                    "pid": i.pid,
                    "state": i.state,
                    "address": i.address,
                    "uptime_s": i.uptime.as_secs(),
                    "requests": i.requests,
                })
            })
            .collect();
        serde_json::json!({
            "name": self.name,
            "state": self.state,
            "restarts": self.restarts,
            "last_exit": self.last_exit,
            "instances": instances,
        })
    }
}

/// The `peregrine_pool_*` metrics of every pool, in the text format.
pub fn prometheus(pools: &[PoolStatus], out: &mut String) {
    use std::fmt::Write;
    if pools.is_empty() {
        return;
    }
    out.push_str("# HELP peregrine_pool_instances Instances of an application pool, by state.\n");
    out.push_str("# TYPE peregrine_pool_instances gauge\n");
    for p in pools {
        for state in ["starting", "serving", "draining", "stopping"] {
            let n = p.instances.iter().filter(|i| i.state == state).count();
            let _ = writeln!(
                out,
                "peregrine_pool_instances{{pool=\"{}\",state=\"{state}\"}} {n}",
                p.name
            );
        }
    }
    out.push_str("# HELP peregrine_pool_up Whether the pool serves (1) or not (0: stopped, starting or failed).\n");
    out.push_str("# TYPE peregrine_pool_up gauge\n");
    for p in pools {
        let up = u8::from(p.state == "running");
        let _ = writeln!(out, "peregrine_pool_up{{pool=\"{}\"}} {up}", p.name);
    }
    out.push_str("# HELP peregrine_pool_restarts_total Instances started again after a crash.\n");
    out.push_str("# TYPE peregrine_pool_restarts_total counter\n");
    for p in pools {
        let _ = writeln!(
            out,
            "peregrine_pool_restarts_total{{pool=\"{}\"}} {}",
            p.name, p.restarts
        );
    }
    out.push_str("# HELP peregrine_pool_instance_requests Requests sent to a running instance.\n");
    out.push_str("# TYPE peregrine_pool_instance_requests gauge\n");
    for p in pools {
        for i in &p.instances {
            let _ = writeln!(
                out,
                "peregrine_pool_instance_requests{{pool=\"{}\",instance=\"{}\",pid=\"{}\"}} {}",
                p.name,
                i.id,
                i.pid.unwrap_or(0),
                i.requests
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_json_and_metrics() {
        let p = PoolStatus {
            name: "api".into(),
            state: "running",
            restarts: 2,
            last_exit: Some("exit status 1".into()),
            instances: vec![InstanceStatus {
                id: 3,
                pid: Some(4242),
                state: "serving",
                address: "127.0.0.1:9000".into(),
                uptime: Duration::from_secs(61),
                requests: 17,
            }],
        };
        let j = p.to_json();
        assert_eq!(j["instances"][0]["pid"], 4242);
        assert_eq!(j["instances"][0]["uptime_s"], 61);
        assert_eq!(j["last_exit"], "exit status 1");
        let mut m = String::new();
        prometheus(&[p], &mut m);
        assert!(m.contains("peregrine_pool_instances{pool=\"api\",state=\"serving\"} 1\n"));
        assert!(m.contains("peregrine_pool_up{pool=\"api\"} 1\n"));
        assert!(m.contains("peregrine_pool_restarts_total{pool=\"api\"} 2\n"));
        assert!(m.contains("instance=\"3\",pid=\"4242\"} 17\n"));
        let mut none = String::new();
        prometheus(&[], &mut none);
        assert!(none.is_empty());
    }
}
