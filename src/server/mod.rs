//! Starting, reloading and stopping a server: bind every address once per
//! worker, spawn one pinned worker per core, wait for signals, reload
//! (see [`reload`]), drain, join.

pub mod reload;
mod running;

use std::sync::{Arc, mpsc};

use crate::admin;
use crate::config::Config;
use crate::handler::redirect::HttpsRedirect;
use crate::handler::{Handler, Router, StaticFiles, builtins};
use crate::metrics::Registry;
use crate::runtime::listener::bind_group;
use crate::runtime::ring::check_available;
use crate::runtime::worker::{Control, Role, Spec, Update, Worker};
use crate::runtime::{log, sys};
use crate::site::{Generation, RouteArgs, Sites};
pub use reload::{ReloadError, Reloader};
pub use running::Running;

type Factory = Arc<dyn Fn() -> Router + Send + Sync>;

/// A server to be started.
pub struct Server {
    config: Config,
    /// A program's own router for the flat configuration.
    factory: Option<Factory>,
    /// Named handlers routes may use (`handler = "name"`).
    named: crate::site::Registry,
    /// Where reloads read the configuration.
    source: Option<reload::Source>,
}

impl std::fmt::Debug for Server {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Server")
            .field("config", &self.config)
            .finish_non_exhaustive()
    }
}

/// The router a flat configuration (no `[[site]]`) describes: built-ins when
/// enabled, static files from the root when one is set.
pub fn default_router(config: &Config) -> Result<Router, String> {
    let mut r = Router::new();
    if config.builtins {
        for (path, h) in builtins::all() {
            r = r.route_with(path, h, Default::default());
        }
    }
    if let Some(root) = &config.root {
        let files =
            StaticFiles::new(root).map_err(|e| format!("document root {}: {e}", root.display()))?;
        r = r.route("/", files);
    }
    Ok(r)
}

/// What a connection driver keeps to, from the configuration.
pub(crate) fn driver_settings(cfg: &Config) -> crate::driver::Settings {
    let t = &cfg.timeouts;
    crate::driver::Settings {
        request_headers_timeout: t.request_headers_timeout,
        request_body_timeout: t.request_body_timeout,
        keep_alive_timeout: t.keep_alive_timeout,
        send_timeout: t.send_timeout,
        lingering_timeout: t.lingering_timeout,
        min_request_body_rate: cfg.limits.min_request_body_data_rate,
        min_response_rate: cfg.limits.min_response_data_rate,
    }
}

impl Server {
    /// A server for `config` with the sites and routes it describes.
    pub fn new(config: Config) -> Server {
        Server {
            config,
            factory: None,
            named: Default::default(),
            source: None,
        }
    }

    /// Uses routers made by `make`, called once on each worker thread (and
    /// again on each for every reload), so handlers can keep per-core state. The router answers every request;
    /// it cannot be combined with `[[site]]` tables (register named handlers
    /// with [`Server::handler`] for those).
    pub fn router<F>(mut self, make: F) -> Server
    where
        F: Fn() -> Router + Send + Sync + 'static,
    {
        self.factory = Some(Arc::new(make));
        self
    }

    /// Registers a handler that routes name with `handler = "name"`. `make`
    /// is called once per worker thread for each such route, with the
    /// route's site, path and `options` table.
    pub fn handler<F, H>(mut self, name: &str, make: F) -> Server
    where
        F: Fn(&RouteArgs<'_>) -> Result<H, String> + Send + Sync + 'static,
        H: Handler + 'static,
    {
        self.named.insert(
            name.to_string(),
            Arc::new(move |a: &RouteArgs<'_>| make(a).map(|h| Box::new(h) as Box<dyn Handler>)),
        );
        self
    }

    /// Reads the configuration for reloads (`SIGHUP`, `POST /config/reload`)
    /// from `source`. Without one, a reload reads the file the configuration
    /// came from again, or (without a file) uses the same configuration,
    /// which reloads the certificates.
    pub fn reload_from<F>(mut self, source: F) -> Server
    where
        F: Fn() -> Result<Config, crate::config::ConfigError> + Send + Sync + 'static,
    {
        self.source = Some(Arc::new(source));
        self
    }

    /// Binds, starts the workers and returns once all are serving. Errors are
    /// one-line messages for the user.
    pub fn start(self) -> Result<Running, String> {
        check_available()?;
        let cfg = &self.config;
        if self.factory.is_some() && !cfg.sites.is_empty() {
            return Err("Server::router answers every request and cannot be combined with [[site]] tables; register named handlers with Server::handler".into());
        }
        let names: Vec<&str> = self.named.keys().map(String::as_str).collect();
        // Sites, routes, roots, error pages and TLS are checked before
        // anything is bound.
        let generation = Arc::new(Generation::build(cfg, &names).map_err(|e| e.to_string())?);
        for w in &generation.warnings {
            log(&format!("warning: {w}"));
        }
        let plan = &generation.plan;
        let nofile = sys::raise_nofile_limit();
        let workers = cfg.workers.max(1);
        let mut groups =
            reload::bind(plan, &[], workers, cfg.engine.listen_backlog).map_err(|e| match e {
                reload::ReloadError::Bind { addr, error } => {
                    let tls = plan.listeners.iter().any(|l| l.addr == addr && l.tls);
                    let what = if tls { " (tls)" } else { "" };
                    format!("cannot listen on {addr}{what}: {error}")
                }
                e => e.to_string(),
            })?;
        let bound: Vec<reload::Bound> = groups.iter().map(|(b, _)| *b).collect();
        let (roles, redirect_port) = reload::roles(plan, &bound);
        let addrs = bound
            .iter()
            .filter(|b| !b.plan.tls)
            .map(|b| b.addr)
            .collect();
        let tls_addrs = bound
            .iter()
            .filter(|b| b.plan.tls)
            .map(|b| b.addr)
            .collect();
        let tls_headers = reload::tls_headers(plan);
        cfg.admin
            .validate()
            .map_err(|e| format!("admin.token: {e}"))?;
        let admin_sock = match cfg.admin.listen {
            Some(a) => {
                let (mut socks, bound) = bind_group(a, 1, 128)
                    .map_err(|e| format!("cannot listen on {a} (admin): {e}"))?;
                Some((socks.remove(0), bound))
            }
            None => None,
        };
        let registry = Arc::new(Registry::new(
            workers,
            cfg.source.as_ref().map(|p| p.display().to_string()),
        ));
        let pools = Arc::new(
            crate::pool::Supervisor::start(
                crate::pool::of(&generation.upstreams),
                registry.pools.clone(),
            )
            .map_err(|e| format!("cannot start the pool supervisor: {e}"))?,
        );
        let cores = core_affinity::get_core_ids().unwrap_or_default();
        let per_worker_max = match cfg.engine.max_connections {
            0 => 0,
            n => n.div_ceil(workers),
        };
        let (ready_tx, ready_rx) = mpsc::channel::<Result<(), String>>();
        let mut controls = Vec::new();
        let mut threads = Vec::new();
        for id in 0..workers {
            let control =
                Control::new().map_err(|e| format!("cannot create a wake-up eventfd: {e}"))?;
            controls.push(control.clone());
            let listeners = groups
                .iter_mut()
                .zip(&roles)
                .map(|((b, socks), role)| {
                    let sock = socks.as_mut().expect("bound at start").remove(0);
                    (b.plan.addr, sock, *role)
                })
                .collect();
            let mut engine = cfg.engine.clone();
            engine.max_connections = per_worker_max;
            let spec = Spec {
                id,
                listeners,
                limits: cfg.limits.clone(),
                settings: driver_settings(cfg),
                shutdown_timeout: cfg.timeouts.shutdown_timeout,
                engine,
                control,
                metrics: cfg.metrics.then(|| registry.workers[id].clone()),
                sites: Some(generation.clone()),
                tls: generation.tls.clone(),
                tls_headers: tls_headers.clone(),
            };
            let core = (!cores.is_empty()).then(|| cores[id % cores.len()]);
            let factory = self.factory.clone();
            let named = self.named.clone();
            let generation = generation.clone();
            let ready = ready_tx.clone();
            let t = std::thread::Builder::new()
                .name(format!("peregrine-w{id}"))
                .spawn(move || {
                    if let Some(core) = core {
                        core_affinity::set_for_current(core);
                    }
                    // Each generation's handlers are built here, on the
                    // worker's own thread: they keep per-core state.
                    let build = move |g: &Arc<Generation>, port: Option<u16>| {
                        let sites = match &factory {
                            Some(make) => Sites::with_router(g.clone(), make()),
                            None => Sites::new(g.clone(), &named)?,
                        };
                        Ok::<_, String>((sites, port.map(redirect_service)))
                    };
                    let build = Box::new(build);
                    let started =
                        build(&generation, redirect_port).and_then(|(sites, redirect)| {
                            Worker::new(spec, sites, redirect)
                                .map_err(|e| format!("worker {id} cannot start: {e}"))
                        });
                    match started {
                        Ok(w) => {
                            let w = w.reloads_with(Box::new(move |u: &Update| {
                                build(&u.generation, u.redirect_port)
                            }));
                            let _ = ready.send(Ok(()));
                            w.run().map_err(|e| format!("worker {id} failed: {e}"))
                        }
                        Err(e) => {
                            let _ = ready.send(Err(e.clone()));
                            Err(e)
                        }
                    }
                })
                .map_err(|e| format!("cannot spawn worker {id}: {e}"))?;
            threads.push(t);
        }
        let source: reload::Source = match (&self.source, &cfg.source) {
            (Some(s), _) => s.clone(),
            (None, Some(path)) => {
                let path = path.clone();
                Arc::new(move || crate::config::load(&path))
            }
            (None, None) => {
                let same = self.config.clone();
                Arc::new(move || Ok(same.clone()))
            }
        };
        let reloader = Arc::new(Reloader::new(reload::Start {
            config: self.config.clone(),
            generation: generation.clone(),
            bound,
            source,
            names: self.named.keys().cloned().collect(),
            own_router: self.factory.is_some(),
            controls: controls.clone(),
            life: registry.life.clone(),
            pools: pools.clone(),
        }));
        let mut admin_addr = None;
        let mut admin_control = None;
        let mut admin_thread = None;
        if let Some((sock, bound)) = admin_sock {
            admin_addr = Some(bound);
            let control =
                Control::new().map_err(|e| format!("cannot create a wake-up eventfd: {e}"))?;
            admin_control = Some(control.clone());
            let engine = crate::runtime::Engine {
                ring_entries: 256,
                buffer_count: 64,
                max_connections: 256,
                // Unauthenticated idle connections cannot lock the operator out.
                evict_idle_at_limit: true,
                ..cfg.engine.clone()
            };
            let spec = Spec {
                id: workers,
                listeners: vec![(bound, sock, Role::Plain)],
                limits: crate::http::Limits::default(),
                settings: driver_settings(cfg),
                shutdown_timeout: cfg.timeouts.shutdown_timeout,
                engine,
                control,
                metrics: None,
                sites: None,
                tls: None,
                tls_headers: String::new(),
            };
            let reg = registry.clone();
            let auth = admin::Access::new(&cfg.admin);
            let ready = ready_tx.clone();
            let config = reloader.clone();
            let t = std::thread::Builder::new()
                .name("peregrine-admin".into())
                .spawn(move || {
                    match Worker::new(spec, admin::router(reg, auth, Some(config)), None) {
                        Ok(w) => {
                            let _ = ready.send(Ok(()));
                            w.run().map_err(|e| format!("admin listener failed: {e}"))
                        }
                        Err(e) => {
                            let e = format!("admin listener cannot start: {e}");
                            let _ = ready.send(Err(e.clone()));
                            Err(e)
                        }
                    }
                })
                .map_err(|e| format!("cannot spawn the admin thread: {e}"))?;
            admin_thread = Some(t);
        }
        drop(ready_tx);
        let expected = threads.len() + usize::from(admin_thread.is_some());
        let running = Running {
            addrs,
            tls_addrs,
            reloader,
            admin_addr,
            registry,
            controls,
            threads,
            admin_control,
            admin_thread,
            pools,
            workers,
            nofile,
            root: cfg.root.clone(),
        };
        for _ in 0..expected {
            match ready_rx.recv() {
                Ok(Ok(())) => {}
                Ok(Err(e)) => {
                    running.stop();
                    let _ = running.join();
                    return Err(e);
                }
                Err(_) => {
                    running.stop();
                    let _ = running.join();
                    return Err("a worker exited during startup".into());
                }
            }
        }
        running
            .registry
            .life
            .started
            .store(true, std::sync::atomic::Ordering::Release);
        Ok(running)
    }

    /// Starts, blocks until SIGINT or SIGTERM, stops gracefully. For a binary
    /// embedding the server; the caller prints what it likes first via
    /// `on_start`.
    pub fn run(self, on_start: impl FnOnce(&Running)) -> Result<(), String> {
        sys::block_signals();
        let running = self.start()?;
        on_start(&running);
        running.serve_until_signal()
    }
}

/// The service of plain listeners that redirect to HTTPS on `port`.
fn redirect_service(port: u16) -> Box<dyn crate::http::Service> {
    Box::new(Router::new().route("/", HttpsRedirect { port }))
}
