//! Starting and stopping a server: bind every address once per worker, spawn
//! one pinned worker per core, wait for signals, drain, join.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::{Arc, Mutex, mpsc};

use socket2::Socket;
use std::thread::JoinHandle;

use crate::admin;
use crate::config::Config;
use crate::handler::redirect::HttpsRedirect;
use crate::handler::{Handler, Router, StaticFiles, builtins};
use crate::metrics::Registry;
use crate::runtime::listener::bind_group;
use crate::runtime::ring::check_available;
use crate::runtime::worker::Role;
use crate::runtime::worker::{Control, Spec, TlsSlot, Worker};
use crate::runtime::{log, sys};
use crate::site::{Generation, RouteArgs, Sites};
use crate::tls;

type Factory = Arc<dyn Fn() -> Router + Send + Sync>;

/// A server to be started.
pub struct Server {
    config: Config,
    /// A program's own router for the flat configuration.
    factory: Option<Factory>,
    /// Named handlers routes may use (`handler = "name"`).
    named: crate::site::Registry,
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
fn driver_settings(cfg: &Config) -> crate::driver::Settings {
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
        }
    }

    /// Uses routers made by `make`, called once on each worker thread, so
    /// handlers can keep per-core state. The router answers every request;
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
        let tls_slot: Option<TlsSlot> = generation.tls.clone().map(|t| Arc::new(Mutex::new(t)));
        let mut groups: Vec<(Vec<Socket>, Role)> = Vec::new();
        let mut addrs = Vec::new();
        let mut tls_addrs: Vec<SocketAddr> = Vec::new();
        // TLS listeners come first in the plan (requests carry the index).
        for l in &plan.listeners {
            let a = l.addr;
            let (socks, bound) =
                bind_group(a, workers, cfg.engine.listen_backlog).map_err(|e| {
                    let what = if l.tls { " (tls)" } else { "" };
                    format!("cannot listen on {a}{what}: {e}")
                })?;
            let role = match &plan.tls {
                _ if l.tls => Role::Tls,
                Some(t) if t.redirect_http => Role::Redirect(tls_addrs[0].port()),
                _ => Role::Plain,
            };
            groups.push((socks, role));
            if l.tls {
                tls_addrs.push(bound);
            } else {
                addrs.push(bound);
            }
        }
        let plain_role = match &plan.tls {
            Some(t) if t.redirect_http => Role::Redirect(tls_addrs[0].port()),
            _ => Role::Plain,
        };
        let tls_headers = plan
            .tls
            .as_ref()
            .and_then(|t| t.hsts.as_ref())
            .map(|h| h.header_line())
            .unwrap_or_default();
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
                .map(|(g, role)| (g.remove(0), *role))
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
                tls: tls_slot.clone(),
                tls_headers: tls_headers.clone(),
            };
            let core = (!cores.is_empty()).then(|| cores[id % cores.len()]);
            let factory = self.factory.clone();
            let named = self.named.clone();
            let generation = generation.clone();
            let ready = ready_tx.clone();
            let redirect_port = match plain_role {
                Role::Redirect(p) => Some(p),
                _ => None,
            };
            let t = std::thread::Builder::new()
                .name(format!("peregrine-w{id}"))
                .spawn(move || {
                    if let Some(core) = core {
                        core_affinity::set_for_current(core);
                    }
                    // Plain listeners that enforce HTTPS answer with this router.
                    let redirect = redirect_port.map(|port| {
                        Box::new(Router::new().route("/", HttpsRedirect { port }))
                            as Box<dyn crate::http::Service>
                    });
                    let sites = match factory {
                        Some(make) => Ok(Sites::with_router(generation, make())),
                        None => Sites::new(generation, &named),
                    };
                    let started = sites.and_then(|sites| {
                        Worker::new(spec, sites, redirect)
                            .map_err(|e| format!("worker {id} cannot start: {e}"))
                    });
                    match started {
                        Ok(w) => {
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
        let mut admin_addr = None;
        if let Some((sock, bound)) = admin_sock {
            admin_addr = Some(bound);
            let control =
                Control::new().map_err(|e| format!("cannot create a wake-up eventfd: {e}"))?;
            controls.push(control.clone());
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
                listeners: vec![(sock, Role::Plain)],
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
            let t = std::thread::Builder::new()
                .name("peregrine-admin".into())
                .spawn(
                    move || match Worker::new(spec, admin::router(reg, auth), None) {
                        Ok(w) => {
                            let _ = ready.send(Ok(()));
                            w.run().map_err(|e| format!("admin listener failed: {e}"))
                        }
                        Err(e) => {
                            let e = format!("admin listener cannot start: {e}");
                            let _ = ready.send(Err(e.clone()));
                            Err(e)
                        }
                    },
                )
                .map_err(|e| format!("cannot spawn the admin thread: {e}"))?;
            threads.push(t);
        }
        drop(ready_tx);
        let expected = threads.len();
        let running = Running {
            addrs,
            tls_addrs,
            tls_slot,
            tls_settings: plan.tls.clone(),
            admin_addr,
            registry,
            controls,
            threads,
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

/// A started server.
#[derive(Debug)]
pub struct Running {
    addrs: Vec<SocketAddr>,
    tls_addrs: Vec<SocketAddr>,
    tls_slot: Option<TlsSlot>,
    tls_settings: Option<tls::Settings>,
    admin_addr: Option<SocketAddr>,
    registry: Arc<Registry>,
    controls: Vec<Arc<Control>>,
    threads: Vec<JoinHandle<Result<(), String>>>,
    workers: usize,
    nofile: u64,
    root: Option<PathBuf>,
}

impl Running {
    /// The bound addresses, with real ports.
    pub fn local_addrs(&self) -> &[SocketAddr] {
        &self.addrs
    }

    /// The bound HTTPS addresses.
    pub fn tls_addrs(&self) -> &[SocketAddr] {
        &self.tls_addrs
    }

    /// Loads the certificates again and hands the new configuration to the
    /// workers; connections already open keep their sessions. On error the old
    /// configuration stays and the error says why.
    pub fn reload_tls(&self) -> Result<(), String> {
        let (Some(slot), Some(settings)) = (&self.tls_slot, &self.tls_settings) else {
            return Err("no tls configured".into());
        };
        let tickets = slot
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .ticketer
            .clone();
        let fresh = tls::build(settings, Some(tickets))?;
        *slot.lock().unwrap_or_else(|p| p.into_inner()) = fresh;
        for c in &self.controls {
            c.reload_tls();
        }
        Ok(())
    }

    /// The admin listener's address, when it is on.
    pub fn admin_addr(&self) -> Option<SocketAddr> {
        self.admin_addr
    }

    /// The workers' published measurements.
    pub fn registry(&self) -> &Arc<Registry> {
        &self.registry
    }

    /// Asks every worker to reopen its log files (after rotation).
    pub fn reopen_logs(&self) {
        for c in &self.controls {
            c.reopen_logs();
        }
    }

    /// Number of workers.
    pub fn workers(&self) -> usize {
        self.workers
    }

    /// The open-file limit in effect.
    pub fn nofile_limit(&self) -> u64 {
        self.nofile
    }

    /// The document root, if any.
    pub fn root(&self) -> Option<&PathBuf> {
        self.root.as_ref()
    }

    /// Asks every worker to stop gracefully: stop accepting, finish requests in
    /// flight (up to `shutdown_timeout`), close idle connections.
    pub fn stop(&self) {
        for c in &self.controls {
            c.stop();
        }
    }

    /// Waits for every worker to finish.
    pub fn join(self) -> Result<(), String> {
        let mut result = Ok(());
        for t in self.threads {
            match t.join() {
                Ok(Ok(())) => {}
                Ok(Err(e)) => result = Err(e),
                Err(_) => result = Err("a worker panicked".into()),
            }
        }
        result
    }

    /// Blocks until SIGINT, SIGTERM or SIGQUIT, then stops gracefully and joins.
    /// A second such signal exits at once. The calling thread must have blocked
    /// the signals (see [`sys::block_signals`]) before the server started.
    pub fn serve_until_signal(self) -> Result<(), String> {
        loop {
            match sys::wait_signal() {
                libc::SIGUSR1 => {
                    log("reopening log files");
                    self.reopen_logs();
                }
                libc::SIGHUP => match self.reload_tls() {
                    Ok(()) => log("reloaded tls certificates"),
                    Err(e) if self.tls_slot.is_none() => {
                        log(&format!("SIGHUP: {e}; nothing to reload"))
                    }
                    Err(e) => log(&format!(
                        "tls reload failed, keeping the old certificates: {e}"
                    )),
                },
                _ => break,
            }
        }
        log("stopping: finishing requests in flight");
        self.stop();
        std::thread::spawn(|| {
            let _ = sys::wait_signal();
            log("second signal: exiting now");
            std::process::exit(1);
        });
        self.join()
    }
}
