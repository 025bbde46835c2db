//! The admin listener's configuration and probe endpoints: `GET /config`
//! (the configuration in effect), `POST /config/reload` (answered when every
//! worker has the new generation), `GET /healthz` (alive) and `GET /readyz`
//! (503 before the workers are up and while stopping).

use std::sync::Arc;
use std::sync::mpsc::{self, Receiver, TryRecvError};
use std::time::Duration;

use crate::exchange::{Io, Reply, RequestBody, RequestHead, Task};
use crate::handler::{Ctx, Handler};
use crate::http::{Body, Method, Methods, Response};
use crate::metrics::Lifecycle;
use crate::server::{ReloadError, Reloader};

/// How often a waiting reload request looks for its answer.
const POLL: Duration = Duration::from_millis(2);

pub(super) fn json(status: u16, v: &serde_json::Value) -> Response {
    let mut body = serde_json::to_vec_pretty(v).unwrap_or_default();
    body.push(b'\n');
    Response::new(status)
        .content_type("application/json")
        .header("Cache-Control", "no-store")
        .body(Body::Bytes(body))
}

/// `GET /config`.
pub(super) struct Effective(pub Arc<Reloader>);

impl Handler for Effective {
    fn handle(&mut self, _req: &RequestHead, _cx: &mut Ctx<'_, '_>) -> Reply {
        let e = self.0.effective();
        let listeners: Vec<serde_json::Value> = e
            .listeners
            .iter()
            .map(|(configured, bound, tls)| {
                serde_json::json!({
                    "configured": configured.to_string(),
                    "bound": bound.to_string(),
                    "tls": tls,
                })
            })
            .collect();
        let doc = serde_json::json!({
            "generation": e.number,
            "listeners": listeners,
            "config": crate::config::json::render(&e.config),
        });
        json(200, &doc).into()
    }
}

/// `POST /config/reload`: the reload runs on its own thread (it reads files
/// and waits for the workers); the request waits for its answer without
/// blocking the admin loop.
pub(super) struct Reload(pub Arc<Reloader>);

impl Handler for Reload {
    fn methods(&self) -> Methods {
        Methods::of(&[Method::Post])
    }

    fn handle(&mut self, _req: &RequestHead, _cx: &mut Ctx<'_, '_>) -> Reply {
        let (tx, rx) = mpsc::channel();
        let reloader = self.0.clone();
        let spawned = std::thread::Builder::new()
            .name("peregrine-reload".into())
            .spawn(move || {
                let r = reloader.reload();
                match &r {
                    Ok(n) => {
                        crate::runtime::log(&format!("reloaded the configuration: generation {n}"))
                    }
                    Err(e) => crate::runtime::log(&format!("reload failed: {e}")),
                }
                let _ = tx.send(r);
            });
        match spawned {
            Ok(_) => Reply::Pending(Box::new(Waiting(rx))),
            Err(e) => Response::error(500, Some(&format!("cannot start the reload: {e}"))).into(),
        }
    }
}

struct Waiting(Receiver<Result<u64, ReloadError>>);

impl Task for Waiting {
    fn poll(&mut self, io: &mut Io, _body: &mut RequestBody) -> Option<Reply> {
        match self.0.try_recv() {
            Ok(Ok(n)) => Some(json(200, &serde_json::json!({ "generation": n })).into()),
            Ok(Err(e)) => {
                let status = match e {
                    ReloadError::Stopping => 503,
                    _ => 400,
                };
                Some(json(status, &e.to_json()).into())
            }
            Err(TryRecvError::Empty) => {
                io.wake_after(POLL);
                None
            }
            Err(TryRecvError::Disconnected) => {
                Some(Response::error(500, Some("the reload ended without an answer")).into())
            }
        }
    }
}

/// `GET /healthz`: the process answers.
pub(super) struct Healthz;

impl Handler for Healthz {
    fn handle(&mut self, _req: &RequestHead, _cx: &mut Ctx<'_, '_>) -> Reply {
        Response::new(200)
            .content_type("text/plain")
            .header("Cache-Control", "no-store")
            .body(Body::Static(b"ok\n"))
            .into()
    }
}

/// `GET /readyz`: 200 while traffic is welcome, 503 before every worker is
/// up and from the moment a stop begins.
pub(super) struct Readyz(pub Arc<Lifecycle>);

impl Handler for Readyz {
    fn handle(&mut self, _req: &RequestHead, _cx: &mut Ctx<'_, '_>) -> Reply {
        let (status, body): (u16, &'static [u8]) = if self.0.ready() {
            (200, b"ready\n")
        } else if self.0.draining.load(std::sync::atomic::Ordering::Acquire) {
            (503, b"stopping\n")
        } else {
            (503, b"starting\n")
        };
        Response::new(status)
            .content_type("text/plain")
            .header("Cache-Control", "no-store")
            .body(Body::Static(body))
            .into()
    }
}
