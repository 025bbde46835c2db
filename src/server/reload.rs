//! Reloading the configuration: read and check it, build a new generation,
//! bind the addresses it adds, hand it to every worker in two steps
//! (prepare everywhere, then commit everywhere), and only then count it as
//! in effect. Anything that fails before the commit changes nothing.
//!
//! Listeners are compared by configured address: a kept address keeps each
//! worker's socket and its accept queue; a new one is bound (one socket per
//! worker) before the workers hear of it; a removed one is closed by each
//! worker as it commits, and the reload answers after that.

use std::net::SocketAddr;
use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use socket2::Socket;

use crate::config::{Config, ConfigError};
use crate::metrics::Lifecycle;
use crate::runtime::listener::bind_group;
use crate::runtime::log;
use crate::runtime::worker::{Bind, Control, Order, Role, Update};
use crate::site::{Generation, Plan, plan};

/// Where a reload reads the configuration from.
pub type Source = Arc<dyn Fn() -> Result<Config, ConfigError> + Send + Sync>;

/// How long workers get to build a generation's handlers, and to commit.
const WORKER_WAIT: Duration = Duration::from_secs(30);

/// Why a reload did not take effect. The configuration in effect stays.
#[derive(Debug)]
#[non_exhaustive]
pub enum ReloadError {
    /// The file does not parse or does not check (a key, a line).
    Config(ConfigError),
    /// A new listen address cannot be bound.
    Bind {
        /// The address.
        addr: SocketAddr,
        /// Why.
        error: std::io::Error,
    },
    /// A worker could not build the new handlers.
    Worker(String),
    /// The server is stopping.
    Stopping,
}

impl std::fmt::Display for ReloadError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ReloadError::Config(e) => e.fmt(f),
            ReloadError::Bind { addr, error } => write!(f, "cannot listen on {addr}: {error}"),
            ReloadError::Worker(m) => f.write_str(m),
            ReloadError::Stopping => f.write_str("the server is stopping"),
        }
    }
}

impl std::error::Error for ReloadError {}

impl ReloadError {
    /// The error as the admin listener reports it: the whole message, and
    /// the file, line and key when it has them.
    pub fn to_json(&self) -> serde_json::Value {
        let mut v = serde_json::json!({ "error": self.to_string() });
        if let ReloadError::Config(e) = self {
            v["file"] = e.file.as_ref().map(|p| p.display().to_string()).into();
            v["line"] = e.line.into();
            v["key"] = e.key.clone().into();
            v["message"] = e.message.clone().into();
        }
        v
    }
}

/// A listener of the generation in effect: as planned, and where it is bound.
#[derive(Clone, Copy, Debug)]
pub(super) struct Bound {
    pub plan: plan::Listener,
    /// The bound address (port 0 replaced by the real port).
    pub addr: SocketAddr,
}

/// A listener of a plan, with one socket per worker when it is new.
pub(super) type Group = (Bound, Option<Vec<Socket>>);

/// The plan's listeners, bound: a kept address reuses what `kept` has
/// (`None` sockets), a new one is bound once per worker. Nothing is kept
/// when one fails: the sockets bound so far close.
pub(super) fn bind(
    plan: &Plan,
    kept: &[Bound],
    workers: usize,
    backlog: i32,
) -> Result<Vec<Group>, ReloadError> {
    let mut out = Vec::with_capacity(plan.listeners.len());
    for l in &plan.listeners {
        if let Some(k) = kept.iter().find(|k| k.plan.addr == l.addr) {
            out.push((
                Bound {
                    plan: *l,
                    addr: k.addr,
                },
                None,
            ));
            continue;
        }
        let (socks, addr) =
            bind_group(l.addr, workers, backlog).map_err(|error| ReloadError::Bind {
                addr: l.addr,
                error,
            })?;
        out.push((Bound { plan: *l, addr }, Some(socks)));
    }
    Ok(out)
}

/// What each listener serves, and the port plain ones redirect to when
/// `[tls] redirect_http` is on (the first HTTPS listener's).
pub(super) fn roles(plan: &Plan, bound: &[Bound]) -> (Vec<Role>, Option<u16>) {
    let redirect = plan
        .tls
        .as_ref()
        .filter(|t| t.redirect_http)
        .and_then(|_| bound.iter().find(|b| b.plan.tls))
        .map(|b| b.addr.port());
    let roles = bound
        .iter()
        .map(|b| match redirect {
            _ if b.plan.tls => Role::Tls,
            Some(p) => Role::Redirect(p),
            None => Role::Plain,
        })
        .collect();
    (roles, redirect)
}

/// The header lines HTTPS responses carry (HSTS).
pub(super) fn tls_headers(plan: &Plan) -> String {
    plan.tls
        .as_ref()
        .and_then(|t| t.hsts.as_ref())
        .map(|h| h.header_line())
        .unwrap_or_default()
}

/// The configuration in effect, as `GET /config` shows it.
#[derive(Debug)]
pub struct Effective {
    /// Its generation number.
    pub number: u64,
    /// The configuration.
    pub config: Config,
    /// Where each listener is bound: (configured, bound, HTTPS).
    pub listeners: Vec<(SocketAddr, SocketAddr, bool)>,
}

struct State {
    generation: Arc<Generation>,
    bound: Vec<Bound>,
}

/// Reloads the configuration of a running server, one reload at a time.
pub struct Reloader {
    state: Mutex<State>,
    effective: Mutex<Arc<Effective>>,
    source: Source,
    names: Vec<String>,
    /// A program's own router answers every request (no `[[site]]`).
    own_router: bool,
    controls: Vec<Arc<Control>>,
    life: Arc<Lifecycle>,
    pools: Arc<crate::pool::Supervisor>,
}

impl std::fmt::Debug for Reloader {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Reloader")
            .field("controls", &self.controls.len())
            .finish_non_exhaustive()
    }
}

/// What [`Reloader::new`] takes over from a starting server.
pub(super) struct Start {
    pub config: Config,
    pub generation: Arc<Generation>,
    pub bound: Vec<Bound>,
    pub source: Source,
    pub names: Vec<String>,
    pub own_router: bool,
    pub controls: Vec<Arc<Control>>,
    pub life: Arc<Lifecycle>,
    pub pools: Arc<crate::pool::Supervisor>,
}

fn effective(number: u64, config: Config, bound: &[Bound]) -> Arc<Effective> {
    Arc::new(Effective {
        number,
        config,
        listeners: bound
            .iter()
            .map(|b| (b.plan.addr, b.addr, b.plan.tls))
            .collect(),
    })
}

impl Reloader {
    pub(super) fn new(s: Start) -> Reloader {
        Reloader {
            effective: Mutex::new(effective(s.life.generation(), s.config, &s.bound)),
            state: Mutex::new(State {
                generation: s.generation,
                bound: s.bound,
            }),
            source: s.source,
            names: s.names,
            own_router: s.own_router,
            controls: s.controls,
            life: s.life,
            pools: s.pools,
        }
    }

    /// The configuration in effect.
    pub fn effective(&self) -> Arc<Effective> {
        self.effective
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    /// Has every worker carry out `p`: each answers on the receiver how many
    /// responses it removed; the second value is how many will answer.
    pub fn purge(&self, p: &crate::cache::Purge) -> (std::sync::mpsc::Receiver<usize>, usize) {
        let (tx, rx) = std::sync::mpsc::channel();
        for c in &self.controls {
            c.order(Order::Purge(p.clone(), tx.clone()));
        }
        (rx, self.controls.len())
    }

    /// The supervisor of the application pools.
    pub fn pools(&self) -> &crate::pool::Supervisor {
        &self.pools
    }

    /// Reads the configuration again and puts it in effect on every worker;
    /// returns the new generation's number. On error nothing has changed.
    pub fn reload(&self) -> Result<u64, ReloadError> {
        let mut state = self.state.lock().unwrap_or_else(|p| p.into_inner());
        let r = self.try_reload(&mut state);
        self.life.reloaded(r.as_ref().ok().copied());
        r
    }

    fn try_reload(&self, state: &mut State) -> Result<u64, ReloadError> {
        if self
            .life
            .draining
            .load(std::sync::atomic::Ordering::Acquire)
        {
            return Err(ReloadError::Stopping);
        }
        let old = self.effective();
        let mut cfg = (self.source)().map_err(ReloadError::Config)?;
        if self.own_router && !cfg.sites.is_empty() {
            return Err(ReloadError::Config(ConfigError::key(
                "site",
                "this server's own router answers every request; [[site]] tables cannot be added by a reload",
            )));
        }
        for w in restart_only(&old.config, &mut cfg) {
            log(&format!("reload: {w}"));
        }
        let names: Vec<&str> = self.names.iter().map(String::as_str).collect();
        let generation = Arc::new(
            Generation::build_after(&cfg, &names, Some(&state.generation))
                .map_err(ReloadError::Config)?,
        );
        for w in &generation.warnings {
            log(&format!("warning: {w}"));
        }
        let plan = &generation.plan;
        let workers = self.controls.len();
        let mut groups = bind(plan, &state.bound, workers, cfg.engine.listen_backlog)?;
        let bound: Vec<Bound> = groups.iter().map(|(b, _)| *b).collect();
        let (roles, redirect_port) = roles(plan, &bound);
        let number = old.number + 1;
        let (tx, rx) = mpsc::channel();
        for c in &self.controls {
            let listeners = groups
                .iter_mut()
                .zip(&roles)
                .map(|((b, socks), role)| Bind {
                    addr: b.plan.addr,
                    socket: socks.as_mut().map(|s| s.remove(0)),
                    role: *role,
                })
                .collect();
            let update = Update {
                number,
                generation: generation.clone(),
                listeners,
                limits: cfg.limits.clone(),
                settings: super::driver_settings(&cfg),
                shutdown_timeout: cfg.timeouts.shutdown_timeout,
                tls_headers: tls_headers(plan),
                redirect_port,
            };
            c.order(Order::Prepare(Box::new(update), tx.clone()));
        }
        drop(tx);
        if let Err(e) = self.wait_prepared(&rx) {
            for c in &self.controls {
                c.order(Order::Abort);
            }
            return Err(e);
        }
        let (tx, rx) = mpsc::channel();
        for c in &self.controls {
            c.order(Order::Commit(tx.clone()));
        }
        drop(tx);
        for _ in &self.controls {
            if rx.recv_timeout(WORKER_WAIT).is_err() {
                log("reload: a worker did not confirm its commit in time");
                break;
            }
        }
        // Pools whose settings changed start anew; removed ones stop.
        self.pools.install(crate::pool::of(&generation.upstreams));
        state.generation = generation;
        state.bound = bound;
        *self.effective.lock().unwrap_or_else(|p| p.into_inner()) =
            effective(number, cfg, &state.bound);
        Ok(number)
    }

    /// Waits for every worker's answer to `Prepare`.
    fn wait_prepared(&self, rx: &mpsc::Receiver<Result<(), String>>) -> Result<(), ReloadError> {
        for _ in &self.controls {
            match rx.recv_timeout(WORKER_WAIT) {
                Ok(Ok(())) => {}
                Ok(Err(e)) => return Err(ReloadError::Worker(e)),
                Err(_) => {
                    return Err(ReloadError::Worker(
                        "a worker did not prepare the new configuration in time".into(),
                    ));
                }
            }
        }
        Ok(())
    }
}

/// Settings a running server cannot change: each one the new file changes
/// is put back as it is and named in a warning (a restart applies it).
fn restart_only(old: &Config, new: &mut Config) -> Vec<String> {
    let mut out = Vec::new();
    let mut keep = |changed: bool, key: &str| {
        if changed {
            out.push(format!(
                "{key} changed; it takes effect at the next restart"
            ));
        }
    };
    keep(old.workers != new.workers, "workers");
    keep(old.engine != new.engine, "engine");
    keep(old.admin != new.admin, "admin");
    keep(old.metrics != new.metrics, "metrics");
    keep(old.access_log != new.access_log, "access_log");
    new.workers = old.workers;
    new.engine = old.engine.clone();
    new.admin = old.admin.clone();
    new.metrics = old.metrics;
    new.access_log = old.access_log.clone();
    out
}
