//! Server configuration: defaults, the TOML file format and validation. Errors
//! name the offending key and, for files, the line.
#![forbid(unsafe_code)]

mod cache;
mod compression;
mod fastcgi;
mod file;
mod filtering;
mod http2;
pub mod json;
mod pool;
mod proxy;
mod rate;
mod route;
mod security;
mod site;
mod site_log;
mod tls;
mod upstream;
mod upstream_checks;
mod upstream_tls;

use std::fmt;
use std::net::SocketAddr;
use std::path::PathBuf;

use crate::accesslog;
use crate::http::{Limits, Timeouts};
use crate::runtime::Engine;

pub use file::parse;

/// The default listen address.
pub const DEFAULT_LISTEN: &str = "127.0.0.1:8080";
/// The default admin listener address.
pub const DEFAULT_ADMIN: &str = "127.0.0.1:9901";

/// The admin listener.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Admin {
    /// Where it listens; `None` turns it off.
    pub listen: Option<SocketAddr>,
    /// Bearer token required on every request, when set. Required when
    /// `listen` is not a loopback address.
    pub token: Option<String>,
    /// Host names (lowercase) the listener answers to besides IP literals and
    /// `localhost`; any other `Host` is answered 421.
    pub hosts: Vec<String>,
}

impl Admin {
    /// Checks that a non-loopback admin address has a token.
    pub fn validate(&self) -> Result<(), String> {
        match (self.listen, &self.token) {
            (Some(a), None) if !a.ip().is_loopback() => Err(format!(
                "listening on {a} (not loopback) needs admin.token, so that metrics and status are not open to the network"
            )),
            (_, Some(t)) if t.len() < 16 || t.bytes().any(|b| !b.is_ascii_graphic()) => {
                Err("must be at least 16 visible ASCII characters".into())
            }
            _ => Ok(()),
        }
    }

    /// Checks one `admin.hosts` entry, a DNS name without port or wildcard,
    /// and returns it in lowercase.
    pub fn host_name(name: &str) -> Result<String, String> {
        if name.parse::<std::net::Ipv4Addr>().is_ok() {
            return Err(format!(
                "{name:?} is an IP address; IP addresses are always accepted, list host names only"
            ));
        }
        let label_ok = |l: &str| {
            (1..=63).contains(&l.len())
                && l.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
                && !l.starts_with('-')
                && !l.ends_with('-')
        };
        if name.len() > 253 || !name.split('.').all(label_ok) {
            return Err(format!(
                "{name:?} is not a host name (letters, digits, hyphens and dots; no port or wildcard)"
            ));
        }
        Ok(name.to_ascii_lowercase())
    }
}

/// A validated configuration.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Config {
    /// Plain-HTTP addresses to listen on (sites add their own `listen`
    /// addresses to these).
    pub listen: Vec<SocketAddr>,
    /// Worker threads (one ring each); defaults to the CPUs this process may run on.
    pub workers: usize,
    /// Document root for static files, if any.
    pub root: Option<PathBuf>,
    /// Serve `/plaintext`, `/json` and `/echo`.
    pub builtins: bool,
    /// `[compression]` of the flat configuration's one site.
    pub compression: Option<crate::site::compression::CompressionSpec>,
    /// `[cache]`: the response store.
    pub cache: crate::cache::StoreSpec,
    /// Request size limits.
    pub limits: Limits,
    /// Timeouts.
    pub timeouts: Timeouts,
    /// Engine settings; `engine.max_connections` is the total for the server.
    pub engine: Engine,
    /// The admin listener (metrics, status, dashboard).
    pub admin: Admin,
    /// Keep latency histograms and counters.
    pub metrics: bool,
    /// The access log; `None` turns it off.
    pub access_log: Option<accesslog::Config>,
    /// HTTPS listeners and their certificates.
    pub tls: Option<crate::tls::Settings>,
    /// Sites, from `[[site]]` tables; empty: one default site made of
    /// `root` and `builtins` (the flat configuration).
    pub sites: Vec<crate::site::Site>,
    /// `[[upstream]]` groups that proxy routes send requests to.
    pub upstreams: Vec<crate::upstream::spec::UpstreamSpec>,
    /// `[server.client_ip]`: where clients' addresses come from.
    pub client_ip: crate::guard::spec::ClientIpSpec,
    /// `[[limit.zone]]` tables.
    pub zones: Vec<crate::guard::spec::ZoneSpec>,
    /// The file this configuration came from.
    pub source: Option<PathBuf>,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            listen: vec![DEFAULT_LISTEN.parse().expect("valid default address")],
            workers: available_cpus(),
            root: None,
            builtins: false,
            compression: None,
            cache: crate::cache::StoreSpec::default(),
            limits: Limits::default(),
            timeouts: Timeouts::default(),
            engine: Engine::default(),
            admin: Admin {
                listen: Some(DEFAULT_ADMIN.parse().expect("valid default address")),
                token: None,
                hosts: Vec::new(),
            },
            metrics: true,
            access_log: Some(accesslog::Config {
                path: None,
                format: accesslog::Format::Combined,
            }),
            tls: None,
            sites: Vec::new(),
            upstreams: Vec::new(),
            client_ip: Default::default(),
            zones: Vec::new(),
            source: None,
        }
    }
}

/// Reads and parses the configuration file at `path`.
pub fn load(path: &std::path::Path) -> Result<Config, ConfigError> {
    let text = std::fs::read_to_string(path).map_err(|e| ConfigError {
        file: Some(path.to_path_buf()),
        line: None,
        key: None,
        message: format!("cannot read: {e}"),
    })?;
    parse(&text, Some(path))
}

/// CPUs this process may run on (its affinity mask), at least 1.
pub fn available_cpus() -> usize {
    core_affinity::get_core_ids().map_or(1, |ids| ids.len().max(1))
}

/// A configuration error: which key, where, and what is wrong.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ConfigError {
    /// The file, when the error is in one.
    pub file: Option<PathBuf>,
    /// 1-based line in the file, when known.
    pub line: Option<usize>,
    /// Dotted key, e.g. `limits.max_request_line_size`, when known.
    pub key: Option<String>,
    /// What is wrong.
    pub message: String,
}

impl ConfigError {
    /// An error about `key` that is not tied to a file position (e.g. a flag).
    pub fn key(key: &str, message: impl Into<String>) -> ConfigError {
        ConfigError {
            file: None,
            line: None,
            key: Some(key.to_string()),
            message: message.into(),
        }
    }
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match (&self.file, self.line) {
            (Some(p), Some(l)) => write!(f, "{}:{}: ", p.display(), l)?,
            (Some(p), None) => write!(f, "{}: ", p.display())?,
            (None, Some(l)) => write!(f, "line {l}: ")?,
            (None, None) => {}
        }
        if let Some(k) = &self.key {
            write!(f, "{k}: ")?;
        }
        f.write_str(&self.message)
    }
}

impl std::error::Error for ConfigError {}

/// Parses a listen address such as `127.0.0.1:8080`, `[::1]:8080` or `:8080`
/// (all IPv4 interfaces).
pub fn parse_listen(s: &str) -> Result<SocketAddr, String> {
    let s = s.trim();
    let full = if s.starts_with(':') {
        format!("0.0.0.0{s}")
    } else {
        s.to_string()
    };
    full.parse()
        .map_err(|_| format!("{s:?} is not an address like 127.0.0.1:8080 or [::1]:8080"))
}
