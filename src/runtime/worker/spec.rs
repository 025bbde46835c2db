//! What a worker needs to start ([`Spec`]) and how the thread that started
//! it asks it to stop, reopen its logs or take a new configuration
//! ([`Control`]).

use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use socket2::Socket;

use super::Role;
use super::reload::Order;
use crate::driver::Settings;
use crate::http::Limits;
use crate::metrics::Slot as MetricsSlot;
use crate::runtime::Engine;
use crate::runtime::sys::EventFd;
use crate::site::Generation;

/// Requests to a worker from the thread that started it. Only the wake-up
/// path reads it: nothing here is touched per request.
#[derive(Debug)]
pub struct Control {
    pub(super) stop: AtomicBool,
    pub(super) reopen: AtomicBool,
    /// Reload steps, in the order given.
    pub(super) orders: Mutex<Vec<Order>>,
    pub(super) wake: EventFd,
}

impl Control {
    /// A control block with its wake-up eventfd.
    pub fn new() -> std::io::Result<Arc<Control>> {
        Ok(Arc::new(Control {
            stop: AtomicBool::new(false),
            reopen: AtomicBool::new(false),
            orders: Mutex::new(Vec::new()),
            wake: EventFd::new()?,
        }))
    }

    /// Asks the worker to stop gracefully.
    pub fn stop(&self) {
        self.stop.store(true, Ordering::Release);
        self.wake.wake();
    }

    /// Asks the worker to reopen its log files.
    pub fn reopen_logs(&self) {
        self.reopen.store(true, Ordering::Release);
        self.wake.wake();
    }

    /// Queues a reload step for the worker.
    pub fn order(&self, o: Order) {
        self.orders
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .push(o);
        self.wake.wake();
    }
}

/// What a worker needs to start.
pub struct Spec {
    /// Worker index (for logs and metric labels).
    pub id: usize,
    /// Listening sockets owned by this worker, by configured address, with
    /// what they serve.
    pub listeners: Vec<(SocketAddr, Socket, Role)>,
    /// Size limits.
    pub limits: Limits,
    /// Timeouts and minimum data rates of connections.
    pub settings: Settings,
    /// How long a graceful stop waits for requests in flight.
    pub shutdown_timeout: Duration,
    /// Engine settings.
    pub engine: Engine,
    /// Stop and reopen requests.
    pub control: Arc<Control>,
    /// Where to publish measurements (none: the worker keeps none).
    pub metrics: Option<MetricsSlot>,
    /// The generation whose sites' names label the measurements and whose
    /// access logs (the global one and the sites' own) this worker writes;
    /// `None`: no site counters and no access log.
    pub sites: Option<Arc<Generation>>,
    /// The TLS configuration, for HTTPS listeners.
    pub tls: Option<Arc<rustls::ServerConfig>>,
    /// Header lines added to HTTPS responses (HSTS).
    pub tls_headers: String,
}
