//! A started server: its addresses, reloads, log reopening, and the stop
//! (readiness off, the shutdown delay, the drain, the admin listener last).

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::thread::JoinHandle;

use super::reload::{self, ReloadError, Reloader};
use crate::metrics::Registry;
use crate::runtime::worker::Control;
use crate::runtime::{log, sys};

/// A started server.
#[derive(Debug)]
pub struct Running {
    pub(super) addrs: Vec<SocketAddr>,
    pub(super) tls_addrs: Vec<SocketAddr>,
    pub(super) reloader: Arc<Reloader>,
    pub(super) admin_addr: Option<SocketAddr>,
    pub(super) registry: Arc<Registry>,
    pub(super) controls: Vec<Arc<Control>>,
    pub(super) threads: Vec<JoinHandle<Result<(), String>>>,
    pub(super) admin_control: Option<Arc<Control>>,
    pub(super) admin_thread: Option<JoinHandle<Result<(), String>>>,
    pub(super) pools: Arc<crate::pool::Supervisor>,
    pub(super) workers: usize,
    pub(super) nofile: u64,
    pub(super) root: Option<PathBuf>,
}

impl Running {
    /// The bound addresses at start, with real ports.
    pub fn local_addrs(&self) -> &[SocketAddr] {
        &self.addrs
    }

    /// The bound HTTPS addresses at start.
    pub fn tls_addrs(&self) -> &[SocketAddr] {
        &self.tls_addrs
    }

    /// Reads the configuration again and hands the new generation to every
    /// worker; returns its number once every worker has it. Requests in
    /// flight finish on the generation they started with; open connections
    /// keep their TLS sessions. On error nothing changes.
    pub fn reload(&self) -> Result<u64, ReloadError> {
        self.reloader.reload()
    }

    /// The configuration in effect.
    pub fn effective(&self) -> Arc<reload::Effective> {
        self.reloader.effective()
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

    /// Asks every worker and the admin listener to stop gracefully: stop
    /// accepting, finish requests in flight (up to `shutdown_timeout`),
    /// close idle connections.
    pub fn stop(&self) {
        self.registry.life.draining.store(true, Ordering::Release);
        for c in self.controls.iter().chain(&self.admin_control) {
            c.stop();
        }
        self.pools.stop_soon();
    }

    /// Waits for every worker and the admin listener to finish.
    pub fn join(self) -> Result<(), String> {
        let mut result = Ok(());
        for t in self.threads.into_iter().chain(self.admin_thread) {
            match t.join() {
                Ok(Ok(())) => {}
                Ok(Err(e)) => result = Err(e),
                Err(_) => result = Err("a worker panicked".into()),
            }
        }
        self.pools.stop();
        result
    }

    /// Stops the way a load balancer needs: `/readyz` answers 503 at once
    /// while everything is still served for `shutdown_delay`; then the
    /// workers stop accepting and drain; the admin listener stops last, so
    /// it reports not-ready until the end.
    pub fn shutdown(self) -> Result<(), String> {
        self.registry.life.draining.store(true, Ordering::Release);
        let delay = self.reloader.effective().config.timeouts.shutdown_delay;
        if !delay.is_zero() {
            log(&format!(
                "not ready; still serving for the shutdown delay ({} ms)",
                delay.as_millis()
            ));
            std::thread::sleep(delay);
        }
        log("stopping: finishing requests in flight");
        for c in &self.controls {
            c.stop();
        }
        let mut result = Ok(());
        for t in self.threads {
            match t.join() {
                Ok(Ok(())) => {}
                Ok(Err(e)) => result = Err(e),
                Err(_) => result = Err("a worker panicked".into()),
            }
        }
        // The requests are done: the pools' instances stop.
        self.pools.stop();
        if let (Some(c), Some(t)) = (self.admin_control, self.admin_thread) {
            c.stop();
            match t.join() {
                Ok(Ok(())) => {}
                Ok(Err(e)) => result = Err(e),
                Err(_) => result = Err("the admin listener panicked".into()),
            }
        }
        result
    }

    /// Blocks until SIGINT, SIGTERM or SIGQUIT, then shuts down (see
    /// [`Running::shutdown`]). `SIGHUP` reloads the configuration, `SIGUSR1`
    /// reopens the log files. A second stopping signal exits at once. The
    /// calling thread must have blocked the signals (see
    /// [`sys::block_signals`]) before the server started.
    pub fn serve_until_signal(self) -> Result<(), String> {
        loop {
            match sys::wait_signal() {
                libc::SIGUSR1 => {
                    log("reopening log files");
                    self.reopen_logs();
                }
                libc::SIGHUP => match self.reload() {
                    Ok(n) => log(&format!("reloaded the configuration: generation {n}")),
                    Err(e) => log(&format!(
                        "reload failed, keeping generation {}: {e}",
                        self.registry.life.generation()
                    )),
                },
                _ => break,
            }
        }
        std::thread::spawn(|| {
            let _ = sys::wait_signal();
            log("second signal: exiting now");
            std::process::exit(1);
        });
        self.shutdown()
    }
}
