//! A route's response cache (`cache = { … }`): GET and HEAD answered from
//! the worker's store while fresh, revalidated when stale, misses for one
//! key coalesced, stale answers on upstream errors, `Cache-Status` and
//! `Age` on every answer; POST, PUT, DELETE and PATCH invalidate their target.
//!
//! The layer sits outside the route's handler, header rules and
//! compression ([`Origin`]): what is stored is what the client got, so a
//! compressed variant is compressed once and served many times.

use std::cell::RefCell;
use std::rc::Rc;
use std::time::{Instant, SystemTime};

use super::cached::{Capture, OnHead, Refresh, WaitFill};
use crate::cache::key::{has_param, key, vary_names, vary_value};
use crate::cache::policy::{Freshness, fields, http_date, judge};
use crate::cache::{Bypass, CacheRule, Handle, Store, Stored};
use crate::exchange::{Io, Reply, RequestHead};
use crate::handler::conditional::{Outcome, Preconditions, Range, Validators, range};
use crate::handler::{Ctx, Handler};
use crate::http::response::Text;
use crate::http::{Body, Method, Response};
use crate::site::compression::Compression;
use crate::site::rules::Applied;

/// How a route answers what the cache cannot: its handler, then its
/// header rules, then its compression.
pub struct Origin {
    /// The route's handler.
    pub handler: Rc<RefCell<Box<dyn Handler>>>,
    /// The route's prefix.
    pub prefix: String,
    /// Its header rules and error pages.
    pub rules: Option<Rc<Applied>>,
    /// Its compression.
    pub compression: Option<Rc<Compression>>,
}

impl Origin {
    /// The route's answer to `req`.
    pub fn call(&self, req: &RequestHead, io: &mut Io) -> Reply {
        let path = req.path();
        let rest = if self.prefix == "/" {
            path
        } else {
            path.get(self.prefix.len()..).unwrap_or("")
        };
        let mut cx = Ctx {
            prefix: &self.prefix,
            rest,
            io,
        };
        let reply = self.handler.borrow_mut().handle(req, &mut cx);
        let reply = match &self.rules {
            Some(a) => a.reply(reply),
            None => reply,
        };
        match &self.compression {
            Some(c) => c.reply(req, reply),
            None => reply,
        }
    }
}

/// The cache of one route.
pub struct RouteCache {
    pub(super) rule: CacheRule,
    pub(super) origin: Origin,
    pub(super) store: Rc<RefCell<Store>>,
}

/// What the cache knows about a request it forwards.
pub(super) struct Fill {
    pub key: String,
    pub req: Box<RequestHead>,
    /// The stale response being revalidated.
    pub stale: Option<(Handle, Rc<Stored>)>,
    /// This exchange holds the key's fill (`lock`).
    pub locked: bool,
    /// How `Cache-Status` names the forward.
    pub fwd: &'static str,
    /// The request carried `Authorization`.
    pub authorized: bool,
}

/// Seconds since the epoch now.
fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

fn cookie_has(req: &RequestHead, name: &str) -> bool {
    req.headers()
        .filter(|(n, _)| n.eq_ignore_ascii_case("cookie"))
        .flat_map(|(_, v)| v.split(|b| *b == b';'))
        .any(|pair| {
            let pair = pair.trim_ascii();
            let n = pair.split(|b| *b == b'=').next().unwrap_or(b"");
            n.trim_ascii() == name.as_bytes()
        })
}

/// Whether `item` is the variant for `req`.
fn vary_matches(item: &Stored, req: &RequestHead) -> bool {
    item.vary.iter().all(|(n, v)| vary_value(req, n) == *v)
}

/// `r` with this cache's `Cache-Status` member appended.
pub(super) fn with_status(mut r: Response, status: String) -> Response {
    r.headers
        .push((Text::Borrowed("Cache-Status"), Text::Owned(status)));
    r
}

impl RouteCache {
    /// A cache for a route answered by `origin`, in the worker's `store`.
    pub fn new(rule: CacheRule, origin: Origin, store: Rc<RefCell<Store>>) -> Rc<RouteCache> {
        Rc::new(RouteCache {
            rule,
            origin,
            store,
        })
    }

    fn bypassed(&self, req: &RequestHead) -> bool {
        self.rule.bypass_if.iter().any(|b| match b {
            Bypass::Header(n) => req.header(n).is_some(),
            Bypass::Cookie(n) => cookie_has(req, n),
            Bypass::Query(n) => has_param(req, n),
        })
    }

    /// The answer to `req`.
    pub fn call(self: &Rc<Self>, req: &RequestHead, io: &mut Io) -> Reply {
        match req.method {
            Method::Get | Method::Head => {}
            Method::Post | Method::Put | Method::Delete | Method::Patch => {
                return self.invalidating(req, io);
            }
            _ => return self.origin.call(req, io),
        }
        if self.bypassed(req) {
            self.store.borrow_mut().count().bypass += 1;
            let reply = self.origin.call(req, io);
            return OnHead::map(reply, |r| with_status(r, "peregrine; fwd=bypass".into()));
        }
        self.lookup(req, io, true, false)
    }

    /// Looks `req` up; `may_lock`: a miss may take the key's fill;
    /// `collapsed`: the request waited for another's fill.
    pub(super) fn lookup(
        self: &Rc<Self>,
        req: &RequestHead,
        io: &mut Io,
        may_lock: bool,
        collapsed: bool,
    ) -> Reply {
        let mut k = String::with_capacity(64);
        key(req, self.rule.vary_by_query.as_deref(), &mut k);
        let authorized = req.header("authorization").is_some();
        let now = io.now();
        let found = if authorized {
            // Never answered from the store (RFC 9111 §3.5); its answer is
            // stored when it says it may be shared.
            Err(false)
        } else {
            self.store
                .borrow_mut()
                .lookup(&k, |item| vary_matches(item, req))
        };
        let (h, item) = match found {
            Ok(found) => found,
            Err(vary_miss) => {
                let mut store = self.store.borrow_mut();
                store.count().misses += 1;
                // A HEAD or a range is forwarded as it is and not stored;
                // only a plain GET fills.
                let fills = req.method == Method::Get && req.header("range").is_none();
                let locked = if fills && self.rule.lock && may_lock && !authorized {
                    if !store.lock(&k) {
                        drop(store);
                        return Reply::Pending(Box::new(WaitFill::new(
                            self.clone(),
                            Box::new(req.clone()),
                            k,
                            now + self.rule.lock_timeout,
                        )));
                    }
                    true
                } else {
                    false
                };
                drop(store);
                let fill = Fill {
                    key: k,
                    req: Box::new(req.clone()),
                    stale: None,
                    locked,
                    fwd: if vary_miss { "vary-miss" } else { "uri-miss" },
                    authorized,
                };
                let reply = self.origin.call(req, io);
                return self.on_reply(reply, fill, io);
            }
        };
        let ttl = item.ttl(now);
        if ttl > 0 && !item.fresh.no_cache {
            self.store.borrow_mut().count().hits += 1;
            let collapsed = if collapsed { "; collapsed" } else { "" };
            return self
                .serve(
                    req,
                    &item,
                    now,
                    format!("peregrine; hit; ttl={ttl}{collapsed}"),
                )
                .into();
        }
        let stale_for = (-ttl) as u64;
        if !item.fresh.no_cache && stale_for <= item.fresh.stale_while_revalidate {
            let mut store = self.store.borrow_mut();
            store.count().stale += 1;
            if store.start_refresh(h) {
                store.spawn(Box::new(Refresh::new(
                    self.clone(),
                    Box::new(req.clone()),
                    k,
                    (h, item.clone()),
                )));
            }
            drop(store);
            let status = format!("peregrine; hit; ttl={ttl}; detail=stale-while-revalidate");
            return self.serve(req, &item, now, status).into();
        }
        self.revalidate(req, io, k, (h, item))
    }

    /// Forwards `req` with the stored response's validators.
    pub(super) fn revalidate(
        self: &Rc<Self>,
        req: &RequestHead,
        io: &mut Io,
        k: String,
        stale: (Handle, Rc<Stored>),
    ) -> Reply {
        let mut up = req.clone();
        up.retain_headers(|n| {
            ![
                "if-none-match",
                "if-modified-since",
                "if-match",
                "if-unmodified-since",
                "if-range",
            ]
            .iter()
            .any(|c| n.eq_ignore_ascii_case(c))
        });
        if let Some(t) = stale.1.header("etag") {
            up.push_header("If-None-Match", t.as_bytes());
        }
        if let Some(d) = stale.1.header("last-modified") {
            up.push_header("If-Modified-Since", d.as_bytes());
        }
        let fill = Fill {
            key: k,
            req: Box::new(req.clone()),
            stale: Some(stale),
            locked: false,
            fwd: "stale",
            authorized: false,
        };
        let reply = self.origin.call(&up, io);
        self.on_reply(reply, fill, io)
    }

    /// Takes the origin's reply to a forwarded request: now, or when it
    /// comes.
    pub(super) fn on_reply(self: &Rc<Self>, reply: Reply, fill: Fill, io: &mut Io) -> Reply {
        match reply {
            Reply::Ready(r) => self.complete(r, None, fill, io.now()),
            Reply::Stream(r, src) => self.complete(r, Some(src), fill, io.now()),
            Reply::Pending(task) => Reply::Pending(Box::new(super::cached::Later {
                task,
                fill: Some(fill),
                cache: self.clone(),
            })),
        }
    }

    /// The response to a forwarded request came: store it, freshen the
    /// stale copy with it, or serve the stale copy instead of an error.
    pub(super) fn complete(
        self: &Rc<Self>,
        r: Response,
        src: Option<Box<dyn crate::exchange::BodySource>>,
        mut fill: Fill,
        now: Instant,
    ) -> Reply {
        let status = r.status();
        if let Some((h, item)) = fill.stale.take() {
            if status == 304 {
                if fill.locked {
                    self.store.borrow_mut().unlock(&fill.key);
                }
                let fresh = self.freshened(&item, &r, now);
                let mut store = self.store.borrow_mut();
                store.count().revalidated += 1;
                let item = match fresh {
                    Some(f) => {
                        let f = Rc::new(f);
                        // The store keeps its own copy (it is small:
                        // the body is shared).
                        store.replace(h, clone_stored(&f));
                        f
                    }
                    None => {
                        store.end_refresh(h);
                        item
                    }
                };
                drop(store);
                let s = "peregrine; fwd=stale; fwd-status=304".to_string();
                return self.serve(&fill.req, &item, now, s).into();
            }
            if status >= 500 && (-item.ttl(now)) as u64 <= item.fresh.stale_if_error {
                if fill.locked {
                    self.store.borrow_mut().unlock(&fill.key);
                }
                let mut store = self.store.borrow_mut();
                store.count().stale += 1;
                store.end_refresh(h);
                drop(store);
                // The upstream's answer is dropped (its connection with it,
                // if it was mid-body).
                drop(src);
                let ttl = item.ttl(now);
                let s = format!(
                    "peregrine; fwd=stale; fwd-status={status}; ttl={ttl}; detail=stale-if-error"
                );
                return self.serve(&fill.req, &item, now, s).into();
            }
            self.store.borrow_mut().end_refresh(h);
        }
        let fwd = format!("peregrine; fwd={}; fwd-status={status}", fill.fwd);
        let verdict = if fill.req.method == Method::Get && fill.req.header("range").is_none() {
            judge(&r, &self.rule, fill.authorized, unix_now())
        } else {
            Err("method")
        };
        let max = self.store.borrow().max_object();
        let too_big = |n: u64| n > max;
        let body_len = match (&src, &r.body) {
            (Some(s), _) => s.content_length(),
            (None, Body::File(_)) => None,
            (None, b) => Some(b.len()),
        };
        let storable = match verdict {
            Ok(f) if matches!(r.body, Body::File(_)) && src.is_none() => Err(("file", f)),
            Ok(f) if body_len.is_some_and(too_big) => Err(("too large", f)),
            Ok(f) => Ok(f),
            Err(e) => Err((e, Freshness::default())),
        };
        let fresh = match storable {
            Ok(f) => f,
            Err((why, _)) => {
                if fill.locked {
                    self.store.borrow_mut().unlock(&fill.key);
                }
                let s = if why == "method" {
                    fwd
                } else {
                    format!("{fwd}; detail={}", why.replace(' ', "-"))
                };
                let r = with_status(r, s);
                return match src {
                    Some(src) => Reply::Stream(r, src),
                    None => Reply::Ready(r),
                };
            }
        };
        let (mut head, mut headers) = split(r, self.rule.store_set_cookie);
        let vary = vary_names(fields(&head, "vary"))
            .into_iter()
            .map(|n| {
                let v = vary_value(&fill.req, &n);
                (n, v)
            })
            .collect();
        let content_type = head.content_type.clone();
        let pending = Stored {
            status,
            content_type,
            headers: std::mem::take(&mut headers),
            body: Rc::from(&[][..]),
            vary,
            stored_at: now,
            fresh,
        };
        let status_text = format!("{fwd}; stored");
        match src {
            None => {
                let body = std::mem::take(&mut head.body);
                let bytes: Rc<[u8]> = match body {
                    Body::Static(b) => Rc::from(b),
                    Body::Bytes(b) => Rc::from(b),
                    Body::Shared(b) => b,
                    Body::Empty | Body::File(_) => Rc::from(&[][..]),
                };
                let mut store = self.store.borrow_mut();
                store.insert(
                    &fill.key,
                    Stored {
                        body: bytes.clone(),
                        ..pending
                    },
                );
                if fill.locked {
                    store.unlock(&fill.key);
                }
                drop(store);
                Reply::Ready(with_status(head.body(Body::Shared(bytes)), status_text))
            }
            Some(src) => {
                let capture =
                    Capture::new(src, self.store.clone(), fill.key, fill.locked, pending, max);
                Reply::Stream(with_status(head, status_text), Box::new(capture))
            }
        }
    }

    /// `item` freshened by the 304 `r` (RFC 9111 §4.3.4): its fields
    /// replaced by the 304's, its age starting again. `None`: the new
    /// fields forbid storing it.
    fn freshened(&self, item: &Stored, r: &Response, now: Instant) -> Option<Stored> {
        const SKIP: [&str; 5] = [
            "content-length",
            "content-encoding",
            "transfer-encoding",
            "cache-status",
            "age",
        ];
        let fresh: Vec<&(Text, Text)> = r
            .headers
            .iter()
            .filter(|(n, _)| !SKIP.iter().any(|x| n.eq_ignore_ascii_case(x)))
            .collect();
        let mut headers = item.headers.clone();
        headers.retain(|(m, _)| !fresh.iter().any(|(n, _)| m.eq_ignore_ascii_case(n)));
        headers.extend(fresh.into_iter().cloned());
        let mut probe = Response::new(item.status);
        probe.headers = headers;
        let fresh = judge(&probe, &self.rule, false, unix_now()).ok()?;
        Some(Stored {
            status: item.status,
            content_type: item.content_type.clone(),
            headers: probe.headers,
            body: item.body.clone(),
            vary: item.vary.clone(),
            stored_at: now,
            fresh,
        })
    }

    /// A stored response as the answer to `req`: 304 or 412 when its
    /// preconditions say so, a byte range when it asks for one.
    pub(super) fn serve(
        &self,
        req: &RequestHead,
        item: &Stored,
        now: Instant,
        status: String,
    ) -> Response {
        let mut age = itoa::Buffer::new();
        let age = Text::Owned(age.format(item.age(now)).to_string());
        let pre = Preconditions::from_fields(req.headers());
        let tag = item.header("etag");
        let validators = Validators {
            etag: tag,
            last_modified: item
                .header("last-modified")
                .and_then(|d| http_date(d.as_bytes())),
        };
        let mut outcome = Outcome::Proceed { range: true };
        if (200..300).contains(&item.status) {
            outcome = pre.evaluate(req.method, Some(&validators));
        }
        match outcome {
            Outcome::NotModified => {
                let mut r = Response::new(304);
                for (n, v) in &item.headers {
                    if [
                        "etag",
                        "last-modified",
                        "cache-control",
                        "expires",
                        "vary",
                        "content-location",
                    ]
                    .iter()
                    .any(|x| n.eq_ignore_ascii_case(x))
                    {
                        r.headers.push((n.clone(), v.clone()));
                    }
                }
                r.headers.push((Text::Borrowed("Age"), age));
                with_status(r, status)
            }
            Outcome::PreconditionFailed => with_status(Response::error(412, None), status),
            Outcome::Proceed { range: ranged } => {
                let mut r = Response::new(item.status);
                r.content_type = item.content_type.clone();
                r.headers = item.headers.clone();
                r.headers.push((Text::Borrowed("Age"), age));
                let full = item.body.len() as u64;
                let part = req
                    .header("range")
                    .filter(|_| ranged && item.status == 200 && req.method == Method::Get)
                    .map(|h| range(h, full));
                match part {
                    Some(Range::Part { start, len }) => {
                        r.status = 206;
                        let end = start + len - 1;
                        r.headers.push((
                            Text::Borrowed("Content-Range"),
                            Text::Owned(format!("bytes {start}-{end}/{full}")),
                        ));
                        let bytes = item.body[start as usize..(start + len) as usize].to_vec();
                        r.body = Body::Bytes(bytes);
                    }
                    Some(Range::Unsatisfiable) => {
                        let r = Response::error(416, None)
                            .header("Content-Range", format!("bytes */{full}"));
                        return with_status(r, status);
                    }
                    Some(Range::Full) | None => r.body = Body::Shared(item.body.clone()),
                }
                with_status(r, status)
            }
        }
    }

    /// A method that changes state (POST, PUT, DELETE, PATCH): forwarded, and a success removes what is stored
    /// for its target (RFC 9111 §4.4).
    fn invalidating(self: &Rc<Self>, req: &RequestHead, io: &mut Io) -> Reply {
        let mut k = String::new();
        key(req, self.rule.vary_by_query.as_deref(), &mut k);
        let store = self.store.clone();
        let reply = self.origin.call(req, io);
        OnHead::map(reply, move |r| {
            if r.status() < 400 {
                store.borrow_mut().remove_key(&k);
            }
            with_status(r, "peregrine; fwd=method".into())
        })
    }
}

/// A copy of `s` (its body shared).
fn clone_stored(s: &Stored) -> Stored {
    Stored {
        status: s.status,
        content_type: s.content_type.clone(),
        headers: s.headers.clone(),
        body: s.body.clone(),
        vary: s.vary.clone(),
        stored_at: s.stored_at,
        fresh: s.fresh,
    }
}

/// The response as sent, and the fields stored: without framing, `Age`
/// (counted in the freshness) or, when told, `Set-Cookie`.
fn split(r: Response, drop_cookies: bool) -> (Response, Vec<(Text, Text)>) {
    let kept = r
        .headers
        .iter()
        .filter(|(n, _)| {
            let framing = ["content-length", "transfer-encoding", "age"]
                .iter()
                .any(|x| n.eq_ignore_ascii_case(x));
            let cookie = drop_cookies && n.eq_ignore_ascii_case("set-cookie");
            !framing && !cookie
        })
        .cloned()
        .collect();
    (r, kept)
}

#[cfg(test)]
#[path = "cache_tests.rs"]
mod tests;
