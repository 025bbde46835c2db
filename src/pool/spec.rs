//! The configuration model of an `[[pool]]`: the processes Peregrine runs
//! for an upstream group, as parsed from the file (plain, validated,
//! immutable data).

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Duration;

/// Where an instance listens.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Listen {
    /// `127.0.0.1:{port}`, a free port chosen for each instance started.
    Port,
    /// `unix:` and a path with `{instance}` in it.
    Unix(String),
}

/// When a pool's instances start.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum StartMode {
    /// With the server (and again after a crash).
    #[default]
    Always,
    /// When the first request comes.
    OnDemand,
}

/// `ready`: when an instance takes traffic.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Ready {
    /// `http`: the path a `GET` must answer 2xx or 3xx on; `None`: once
    /// the address accepts a connection.
    pub http: Option<String>,
    /// `timeout`: an instance not ready by then counts as a crash.
    pub timeout: Duration,
    /// `interval`: how often a serving instance is probed again (zero:
    /// never), as IIS pings its worker processes.
    pub interval: Duration,
    /// `fails`: probes failed in a row after which a serving instance is
    /// killed and started again (counted as a crash).
    pub fails: u32,
}

/// `recycle`: when an instance is replaced (IIS's names); zero is off.
#[derive(Clone, Debug, PartialEq, Eq, Default)]
pub struct Recycle {
    /// `requests`: after this many requests.
    pub requests: u64,
    /// `time`: after this long up.
    pub time: Duration,
    /// `memory`: once its resident memory passes this many bytes.
    pub memory: u64,
    /// `schedule`: at these times of day (UTC), as minutes past midnight.
    pub schedule: Vec<u16>,
}

/// `rapid_fail`: stop respawning after `max_crashes` within `interval`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RapidFail {
    /// `max_crashes`: crashes allowed within the interval (0: off).
    pub max_crashes: u32,
    /// `interval`.
    pub interval: Duration,
}

/// One `[[pool]]`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PoolSpec {
    /// The group's name (routes say `upstream = "name"`).
    pub name: String,
    /// The program and its arguments; `{port}` and `{instance}` replaced.
    pub command: Vec<String>,
    /// Where instances listen.
    pub listen: Listen,
    /// How many instances serve at once.
    pub instances: usize,
    /// Variables added to the environment (with `PORT` for a port).
    pub env: BTreeMap<String, String>,
    /// The working directory (`None`: the server's).
    pub cwd: Option<PathBuf>,
    /// When an instance is ready.
    pub ready: Ready,
    /// When an instance is replaced.
    pub recycle: Recycle,
    /// When respawning stops.
    pub rapid_fail: RapidFail,
    /// From SIGTERM to SIGKILL, and the longest an instance drains.
    pub shutdown_timeout: Duration,
    /// `start`.
    pub start: StartMode,
    /// `idle_timeout`: instances stop after this long without a request
    /// (zero: never); the next request starts them again.
    pub idle_timeout: Duration,
    /// `log`: the file instances' stdout and stderr are appended to.
    pub log: PathBuf,
}

impl PoolSpec {
    /// Lanes of the group: each instance slot has two, so a replacement
    /// can start beside the instance it replaces.
    pub fn lanes(&self) -> usize {
        self.instances * 2
    }

    /// The command with `{port}` and `{instance}` replaced.
    pub fn argv(&self, port: u16, instance: u32) -> Vec<String> {
        self.command
            .iter()
            .map(|a| fill(a, port, instance))
            .collect()
    }

    /// The Unix socket path of `instance` (with `listen = "unix:…"`).
    pub fn socket_path(&self, instance: u32) -> Option<PathBuf> {
        match &self.listen {
            Listen::Unix(t) => Some(PathBuf::from(fill(t, 0, instance))),
            Listen::Port => None,
        }
    }
}

/// `s` with `{port}` and `{instance}` replaced.
pub fn fill(s: &str, port: u16, instance: u32) -> String {
    s.replace("{port}", &port.to_string())
        .replace("{instance}", &instance.to_string())
}

/// A pool for tests: `instances` instances of `app {port}` on ports, a
/// `/healthz` probe with a 10 s ready timeout (and no probes once ready),
/// 2 crashes a minute allowed.
#[cfg(test)]
pub fn sample(instances: usize) -> PoolSpec {
    PoolSpec {
        name: "api".into(),
        command: vec!["app".into(), "{port}".into()],
        listen: Listen::Port,
        instances,
        env: BTreeMap::new(),
        cwd: None,
        ready: Ready {
            http: Some("/healthz".into()),
            timeout: Duration::from_secs(10),
            interval: Duration::ZERO,
            fails: 3,
        },
        recycle: Recycle::default(),
        rapid_fail: RapidFail {
            max_crashes: 2,
            interval: Duration::from_secs(60),
        },
        shutdown_timeout: Duration::from_secs(5),
        start: StartMode::Always,
        idle_timeout: Duration::ZERO,
        log: PathBuf::from("/dev/null"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn placeholders_are_filled() {
        assert_eq!(fill("--port={port}", 8001, 3), "--port=8001");
        assert_eq!(fill("/run/a/{instance}.sock", 0, 7), "/run/a/7.sock");
        assert_eq!(fill("plain", 1, 1), "plain");
    }
}
