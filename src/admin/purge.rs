//! `POST /cache/purge?key=K` or `?prefix=P`: removes stored responses from
//! every worker's cache (keys read `scheme://host/path?query`; without a
//! scheme, both); answered with how
//! many were removed once every worker has carried it out.

use std::sync::Arc;
use std::sync::mpsc::{Receiver, TryRecvError};
use std::time::{Duration, Instant};

use super::config::json;
use crate::cache::Purge;
use crate::exchange::{Io, Reply, RequestBody, RequestHead, Task};
use crate::handler::{Ctx, Handler};
use crate::http::{Method, Methods};
use crate::server::Reloader;

/// How often a waiting purge looks for its answers.
const POLL: Duration = Duration::from_millis(1);
/// How long the workers get to answer.
const PATIENCE: Duration = Duration::from_secs(10);

/// A query parameter's value, percent-decoded (`+` is a space).
fn param(query: Option<&str>, name: &str) -> Option<Result<String, ()>> {
    let raw = query?.split('&').find_map(|kv| {
        let (k, v) = kv.split_once('=').unwrap_or((kv, ""));
        (k == name).then_some(v)
    })?;
    let mut out = Vec::with_capacity(raw.len());
    let b = raw.as_bytes();
    let mut i = 0;
    while i < b.len() {
        match b[i] {
            b'%' => {
                let hex = b
                    .get(i + 1..i + 3)
                    .and_then(|h| std::str::from_utf8(h).ok());
                match hex.and_then(|h| u8::from_str_radix(h, 16).ok()) {
                    Some(v) => out.push(v),
                    None => return Some(Err(())),
                }
                i += 3;
            }
            b'+' => {
                out.push(b' ');
                i += 1;
            }
            c => {
                out.push(c);
                i += 1;
            }
        }
    }
    Some(String::from_utf8(out).map_err(|_| ()))
}

/// `POST /cache/purge`.
pub(super) struct PurgeCache(pub Arc<Reloader>);

impl Handler for PurgeCache {
    fn methods(&self) -> Methods {
        Methods::of(&[Method::Post])
    }

    fn handle(&mut self, req: &RequestHead, cx: &mut Ctx<'_, '_>) -> Reply {
        let bad = |m: &str| Reply::Ready(json(400, &serde_json::json!({ "error": m })));
        let p = match (param(req.query(), "key"), param(req.query(), "prefix")) {
            (Some(Ok(k)), None) if !k.is_empty() => Purge::Key(k),
            (None, Some(Ok(p))) => Purge::Prefix(p),
            (Some(Err(())), _) | (_, Some(Err(()))) => {
                return bad("the key or prefix is not valid percent-encoded UTF-8");
            }
            _ => {
                return bad(
                    "give key=host/path?query (percent-encoded; with http:// or https:// for one scheme) or prefix=… (prefix= alone purges everything)",
                );
            }
        };
        let (rx, workers) = self.0.purge(&p);
        Reply::Pending(Box::new(Waiting {
            rx,
            workers,
            answered: 0,
            purged: 0,
            until: cx.io.now() + PATIENCE,
        }))
    }
}

struct Waiting {
    rx: Receiver<usize>,
    workers: usize,
    answered: usize,
    purged: usize,
    until: Instant,
}

impl Task for Waiting {
    fn poll(&mut self, io: &mut Io, _body: &mut RequestBody) -> Option<Reply> {
        loop {
            match self.rx.try_recv() {
                Ok(n) => {
                    self.answered += 1;
                    self.purged += n;
                }
                Err(TryRecvError::Empty)
                    if self.answered < self.workers && io.now() < self.until =>
                {
                    io.wake_after(POLL);
                    return None;
                }
                Err(_) => break,
            }
            if self.answered == self.workers {
                break;
            }
        }
        let status = if self.answered == self.workers {
            200
        } else {
            503
        };
        Some(
            json(
                status,
                &serde_json::json!({ "purged": self.purged, "workers": self.answered, "of": self.workers }),
            )
            .into(),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn params() {
        let q = Some("key=shop.test%2Fa.js%3Fv%3D1&x=y+z");
        assert_eq!(param(q, "key"), Some(Ok("shop.test/a.js?v=1".into())));
        assert_eq!(param(q, "x"), Some(Ok("y z".into())));
        assert_eq!(param(q, "none"), None);
        assert_eq!(param(Some("key=%zz"), "key"), Some(Err(())));
        assert_eq!(param(Some("key=%ff"), "key"), Some(Err(())));
        assert_eq!(param(Some("prefix="), "prefix"), Some(Ok(String::new())));
    }
}
