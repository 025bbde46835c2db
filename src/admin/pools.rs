//! `POST /pools/{name}/recycle`: replaces every instance of an application
//! pool (new ones start, take traffic once ready, the old ones drain and
//! stop), and starts again a pool that rapid-fail protection stopped.

use std::sync::Arc;
use std::sync::mpsc::{Receiver, TryRecvError};
use std::time::{Duration, Instant};

use super::config::json;
use crate::exchange::{Io, Reply, RequestBody, RequestHead, Task};
use crate::handler::{Ctx, Handler};
use crate::http::{Method, Methods};
use crate::server::Reloader;

/// How often a waiting request looks for the supervisor's answer.
const POLL: Duration = Duration::from_millis(5);
/// How long the supervisor gets to answer.
const PATIENCE: Duration = Duration::from_secs(5);

/// `POST /pools/{name}/recycle`.
pub(super) struct RecyclePool(pub Arc<Reloader>);

/// The pool a `/pools/{name}/recycle` path names.
fn pool_name(path: &str) -> Option<&str> {
    let name = path.strip_prefix("/pools/")?.strip_suffix("/recycle")?;
    (!name.is_empty() && !name.contains('/')).then_some(name)
}

impl Handler for RecyclePool {
    fn methods(&self) -> Methods {
        Methods::of(&[Method::Post])
    }

    fn handle(&mut self, req: &RequestHead, cx: &mut Ctx<'_, '_>) -> Reply {
        let Some(name) = pool_name(req.path()) else {
            return Reply::Ready(json(
                404,
                &serde_json::json!({ "error": "POST /pools/{name}/recycle" }),
            ));
        };
        let rx = self.0.pools().recycle(name);
        Reply::Pending(Box::new(Waiting {
            rx,
            name: name.to_string(),
            until: cx.io.now() + PATIENCE,
        }))
    }
}

struct Waiting {
    rx: Receiver<Result<(), String>>,
    name: String,
    until: Instant,
}

impl Task for Waiting {
    fn poll(&mut self, io: &mut Io, _body: &mut RequestBody) -> Option<Reply> {
        let (status, body) = match self.rx.try_recv() {
            Err(TryRecvError::Empty) if io.now() < self.until => {
                io.wake_after(POLL);
                return None;
            }
            Ok(Ok(())) => (
                202,
                serde_json::json!({ "pool": self.name, "recycling": true }),
            ),
            Ok(Err(e)) => (404, serde_json::json!({ "error": e })),
            Err(_) => (
                503,
                serde_json::json!({ "error": "the pool supervisor did not answer" }),
            ),
        };
        Some(json(status, &body).into())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths() {
        assert_eq!(pool_name("/pools/api/recycle"), Some("api"));
        assert_eq!(pool_name("/pools//recycle"), None);
        assert_eq!(pool_name("/pools/a/b/recycle"), None);
        assert_eq!(pool_name("/pools/api"), None);
    }
}
