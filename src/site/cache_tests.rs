//! The cache layer driven in simulated time: a handler that counts its
//! calls and answers later when told, the worker's store, and `Io` at
//! chosen instants.

use std::cell::{Cell, RefCell};
use std::rc::Rc;
use std::time::{Duration, Instant};

use super::*;
use crate::cache::{CacheRule, Store};
use crate::exchange::{RequestBody, Task, Waker};

/// Answers `200` with `Cache-Control: max-age=10` and `ETag: "e"` (or
/// 304 to a matching `If-None-Match`, or 503 while `failing`), later when
/// `deferred` (when `release` is set).
struct Upstream {
    calls: Rc<Cell<u32>>,
    deferred: bool,
    release: Rc<Cell<bool>>,
    failing: Rc<Cell<bool>>,
}

fn answer(req: &RequestHead, n: u32, failing: bool) -> Response {
    if failing {
        return Response::error(503, None);
    }
    if req.header("if-none-match") == Some(b"\"e\"") {
        return Response::new(304).header("ETag", "\"e\"").header(
            "Cache-Control",
            "max-age=10, stale-while-revalidate=5, stale-if-error=60",
        );
    }
    Response::new(200)
        .header(
            "Cache-Control",
            "max-age=10, stale-while-revalidate=5, stale-if-error=60",
        )
        .header("ETag", "\"e\"")
        .body(Body::Bytes(format!("answer {n}").into_bytes()))
}

struct Later2 {
    req: RequestHead,
    n: u32,
    release: Rc<Cell<bool>>,
    failing: bool,
}

impl Task for Later2 {
    fn poll(&mut self, _io: &mut Io, _body: &mut RequestBody) -> Option<Reply> {
        self.release
            .get()
            .then(|| answer(&self.req, self.n, self.failing).into())
    }
}

impl Handler for Upstream {
    fn handle(&mut self, req: &RequestHead, _cx: &mut Ctx<'_, '_>) -> Reply {
        self.calls.set(self.calls.get() + 1);
        let n = self.calls.get();
        if self.deferred {
            return Reply::Pending(Box::new(Later2 {
                req: req.clone(),
                n,
                release: self.release.clone(),
                failing: self.failing.get(),
            }));
        }
        answer(req, n, self.failing.get()).into()
    }
}

struct Rig {
    cache: Rc<RouteCache>,
    store: Rc<RefCell<Store>>,
    calls: Rc<Cell<u32>>,
    release: Rc<Cell<bool>>,
    failing: Rc<Cell<bool>>,
    t0: Instant,
}

fn rig(deferred: bool, rule: CacheRule) -> Rig {
    let calls = Rc::new(Cell::new(0));
    let release = Rc::new(Cell::new(false));
    let failing = Rc::new(Cell::new(false));
    let h: Box<dyn Handler> = Box::new(Upstream {
        calls: calls.clone(),
        deferred,
        release: release.clone(),
        failing: failing.clone(),
    });
    let store = Rc::new(RefCell::new(Store::new(1 << 20, 1 << 16)));
    let origin = Origin {
        handler: Rc::new(RefCell::new(h)),
        prefix: "/".into(),
        rules: None,
        compression: None,
    };
    Rig {
        cache: RouteCache::new(rule, origin, store.clone()),
        store,
        calls,
        release,
        failing,
        t0: Instant::now(),
    }
}

fn req() -> RequestHead {
    let mut r = RequestHead::new(Method::Get, "/a?x=1");
    r.set_host(b"h");
    r
}

fn ready(r: Reply) -> Response {
    match r {
        Reply::Ready(r) => r,
        // A reply that is itself pending (a waiter that went up): polled
        // until it answers (its upstream is released).
        Reply::Pending(mut t) => {
            let mut body = RequestBody::empty();
            for _ in 0..4 {
                if let Some(r) = t.poll(&mut Io::new(Instant::now()), &mut body) {
                    return ready(r);
                }
            }
            panic!("never answered")
        }
        other => panic!("not ready: {other:?}"),
    }
}

fn status(r: &Response) -> &str {
    r.header_value("cache-status").unwrap_or("")
}

fn text(r: &Response) -> String {
    match &r.body {
        Body::Shared(b) => String::from_utf8_lossy(b).into_owned(),
        Body::Bytes(b) => String::from_utf8_lossy(b).into_owned(),
        _ => String::new(),
    }
}

#[test]
fn fresh_stale_and_revalidated_in_simulated_time() {
    let r = rig(false, CacheRule::default());
    let at = |s: u64| r.t0 + Duration::from_secs(s);
    let mut io = Io::new(at(0));
    let a = ready(r.cache.call(&req(), &mut io));
    assert!(status(&a).contains("fwd=uri-miss") && status(&a).contains("stored"));
    let b = ready(r.cache.call(&req(), &mut Io::new(at(3))));
    assert_eq!(status(&b), "peregrine; hit; ttl=7");
    assert_eq!(b.header_value("age"), Some("3"));
    assert_eq!(text(&b), "answer 1");
    assert_eq!(r.calls.get(), 1);
    // Stale within stale-while-revalidate: served, and a refresh queued.
    let c = ready(r.cache.call(&req(), &mut Io::new(at(12))));
    assert!(
        status(&c).contains("ttl=-2; detail=stale-while-revalidate"),
        "{}",
        status(&c)
    );
    assert!(r.store.borrow().has_jobs());
    let mut jobs = r.store.borrow_mut().take_jobs();
    assert_eq!(jobs.len(), 1);
    assert!(
        jobs[0].poll(&mut Io::new(at(12))),
        "the refresh ends at once"
    );
    assert_eq!(r.calls.get(), 2, "revalidated with If-None-Match");
    assert_eq!(r.store.borrow().stats().revalidated, 1);
    let d = ready(r.cache.call(&req(), &mut Io::new(at(13))));
    assert_eq!(
        status(&d),
        "peregrine; hit; ttl=9",
        "fresh again from the 304"
    );
    assert_eq!(text(&d), "answer 1");
    // Past stale-while-revalidate: revalidated in line.
    let e = ready(r.cache.call(&req(), &mut Io::new(at(40))));
    assert_eq!(status(&e), "peregrine; fwd=stale; fwd-status=304");
    // Failing upstream within stale-if-error: the stale copy.
    r.failing.set(true);
    let f = ready(r.cache.call(&req(), &mut Io::new(at(70))));
    assert_eq!(f.status(), 200);
    assert!(
        status(&f).contains("fwd-status=503; ttl=-20; detail=stale-if-error"),
        "{}",
        status(&f)
    );
    // Past it: the error.
    let g = ready(r.cache.call(&req(), &mut Io::new(at(200))));
    assert_eq!(g.status(), 503);
}

#[test]
fn concurrent_misses_wait_for_the_first() {
    let r = rig(true, CacheRule::default());
    let now = r.t0;
    let w1 = Waker {
        slot: 1,
        generation: 1,
    };
    let w2 = Waker {
        slot: 2,
        generation: 1,
    };
    let mut body = RequestBody::empty();
    let Reply::Pending(mut first) = r
        .cache
        .call(&req(), &mut Io::with_upstreams(now, Some(w1), None))
    else {
        panic!("the miss goes up");
    };
    let Reply::Pending(mut second) = r
        .cache
        .call(&req(), &mut Io::with_upstreams(now, Some(w2), None))
    else {
        panic!("waits");
    };
    let mut io2 = Io::with_upstreams(now, Some(w2), None);
    assert!(second.poll(&mut io2, &mut body).is_none());
    assert_eq!(
        io2.wake(),
        Some(now + Duration::from_secs(5)),
        "lock_timeout"
    );
    assert_eq!(r.calls.get(), 1);
    r.release.set(true);
    let a = ready(first.poll(&mut Io::new(now), &mut body).unwrap());
    assert!(status(&a).contains("stored"));
    let mut wakes = Vec::new();
    r.store.borrow_mut().take_wakes(&mut wakes);
    assert_eq!(wakes, vec![w2], "the waiter is polled again");
    let b = ready(second.poll(&mut Io::new(now), &mut body).unwrap());
    assert!(status(&b).ends_with("; collapsed"), "{}", status(&b));
    assert_eq!(text(&b), "answer 1");
    assert_eq!(r.calls.get(), 1);
}

#[test]
fn a_cancelled_fill_frees_its_waiters() {
    let r = rig(true, CacheRule::default());
    let now = r.t0;
    let mut body = RequestBody::empty();
    let Reply::Pending(first) = r.cache.call(&req(), &mut Io::new(now)) else {
        panic!()
    };
    let Reply::Pending(mut second) = r.cache.call(&req(), &mut Io::new(now)) else {
        panic!()
    };
    drop(first);
    // The waiter goes up itself, and takes the fill.
    r.release.set(true);
    let b = ready(second.poll(&mut Io::new(now), &mut body).unwrap());
    assert!(status(&b).contains("stored"), "{}", status(&b));
    assert_eq!(r.calls.get(), 2);
    // A waiter whose fill takes too long goes up without waiting again.
    let r = rig(true, CacheRule::default());
    r.release.set(false);
    let Reply::Pending(_held) = r.cache.call(&req(), &mut Io::new(now)) else {
        panic!()
    };
    let Reply::Pending(mut late) = r.cache.call(&req(), &mut Io::new(now)) else {
        panic!()
    };
    let out = late.poll(&mut Io::new(now + Duration::from_secs(6)), &mut body);
    assert!(
        matches!(out, Some(Reply::Pending(_))),
        "forwarded on its own"
    );
    assert_eq!(r.calls.get(), 2);
}
