//! Judging one request against a [`Guard`].

use std::net::IpAddr;
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use super::Guard;
use super::note::{Guarded, Held, Kind, Refused};
use super::spec::{DenyAction, ZoneKey};
use crate::exchange::RequestHead;
use crate::http::Response;
use crate::limit::{Decision, Entry, Zone, ip_key, key_hash};

/// What the guards say about a request.
#[derive(Debug)]
pub enum Verdict {
    /// Let it through.
    Pass,
    /// Let it through after this long (a rate limit without `nodelay`).
    Delay(Duration),
    /// Answer this instead (boxed: a refusal is rare, and a small verdict
    /// is cheap to return on every request).
    Refuse(Box<Response>),
    /// Close the connection without an answer.
    Abort,
}

/// Nanoseconds since the first time any worker asked (one clock for every
/// worker, as the limit tables are shared).
pub(super) fn nanos(now: Instant) -> u64 {
    static EPOCH: OnceLock<Instant> = OnceLock::new();
    thread_local! {
        // A worker's clock moves once per turn of its loop: the requests of
        // one turn share the conversion.
        static LAST: std::cell::Cell<Option<(Instant, u64)>> = const { std::cell::Cell::new(None) };
    }
    LAST.with(|last| match last.get() {
        Some((t, n)) if t == now => n,
        _ => {
            let epoch = *EPOCH.get_or_init(|| now - Duration::from_secs(1));
            let n = now.saturating_duration_since(epoch).as_nanos() as u64;
            last.set(Some((now, n)));
            n
        }
    })
}

/// The entries one request has found, so a zone that several of its
/// limits share (`limit_conn` and `limit_req` on one key) is searched once.
#[derive(Default)]
struct Found<'a> {
    last: Option<(u64, Entry<'a>)>,
}

impl<'a> Found<'a> {
    fn entry(&mut self, zone: &'a Zone, key: u64, t: u64) -> Option<Entry<'a>> {
        if let Some((k, e)) = self.last
            && k == key
            && e.of(zone)
        {
            return Some(e);
        }
        let e = zone.entry(key, t)?;
        self.last = Some((key, e));
        Some(e)
    }
}

fn deny(action: DenyAction, kind: Kind, dry_run: bool, g: &mut Guarded) -> Option<Verdict> {
    let status = action.status();
    note(
        g,
        Refused {
            kind,
            status: status.unwrap_or(0),
            sub: 0,
            zone: None,
            dry_run,
        },
    );
    if dry_run {
        return None;
    }
    Some(match status {
        Some(s) => Verdict::Refuse(Box::new(Response::error(s, None))),
        None => Verdict::Abort,
    })
}

/// Records `r` unless a refusal is recorded already.
fn note(g: &mut Guarded, r: Refused) {
    if g.refused.is_none() {
        g.refused = Some(r);
    }
}

fn retry_after(ns: u64) -> String {
    ns.div_ceil(1_000_000_000).max(1).to_string()
}

impl Guard {
    /// The key of `key` for `req` (`client`: the client address's key);
    /// `None`: the request is not limited by it (a header key the request
    /// lacks, or no address known).
    #[inline]
    fn key(&self, key: &ZoneKey, req: &RequestHead, client: Option<u64>) -> Option<u64> {
        match key {
            ZoneKey::ClientIp => client,
            ZoneKey::PeerIp => req.peer.map(|p| ip_key(p.ip())),
            ZoneKey::Header(h) => req.header(h).map(key_hash),
            ZoneKey::Site => Some(self.site_key),
            ZoneKey::Route => Some(self.route_key),
        }
    }

    /// Judges `req` from `client` at `now`, leaving notes and held slots in
    /// `g`.
    pub fn check(
        &self,
        req: &RequestHead,
        client: Option<IpAddr>,
        now: Instant,
        g: &mut Guarded,
    ) -> Verdict {
        g.judged = true;
        if let Some(ip) = client
            && let Some(action) = self.denies(ip)
            && let Some(v) = deny(action, Kind::Ip, false, g)
        {
            return v;
        }
        let t = nanos(now);
        let ck = client.map(ip_key);
        if let (Some(d), Some(ck)) = (&self.dynamic, ck)
            && let Some(v) = self.dynamic(d, ck, t, g)
        {
            return v;
        }
        if let Some(f) = &self.filter
            && let Err(r) = f.check(req)
        {
            note(
                g,
                Refused {
                    kind: Kind::Filter(r.reason),
                    status: r.status,
                    sub: r.sub,
                    zone: None,
                    dry_run: false,
                },
            );
            return Verdict::Refuse(Box::new(Response::error(r.status, None)));
        }
        let mut found = Found::default();
        for c in &self.conn {
            let Some(key) = self.key(&c.key, req, ck) else {
                continue;
            };
            let Some(e) = found.entry(&c.zone, key, t) else {
                continue; // untracked: let through
            };
            match e.enter(c.max) {
                Some(token) => g.holds.push(Held::new(c.zone.clone(), token)),
                None => {
                    let r = Refused {
                        kind: Kind::Conn,
                        status: c.status,
                        sub: 0,
                        zone: Some(c.index),
                        dry_run: c.dry_run,
                    };
                    note(g, r);
                    if !c.dry_run {
                        return Verdict::Refuse(Box::new(Response::error(c.status, None)));
                    }
                }
            }
        }
        let mut wait = 0u64;
        for l in &self.req {
            let Some(key) = self.key(&l.key, req, ck) else {
                continue;
            };
            let Some(e) = found.entry(&l.zone, key, t) else {
                continue;
            };
            match e.request(t, &l.rate) {
                Decision::Allow => {}
                Decision::Delay(ns) => wait = wait.max(ns),
                Decision::Reject { retry_after_ns } => {
                    let r = Refused {
                        kind: Kind::Req,
                        status: l.status,
                        sub: 0,
                        zone: Some(l.index),
                        dry_run: l.dry_run,
                    };
                    note(g, r);
                    if !l.dry_run {
                        let resp = Response::error(l.status, None)
                            .header("Retry-After", retry_after(retry_after_ns));
                        return Verdict::Refuse(Box::new(resp));
                    }
                }
            }
        }
        if wait > 0 {
            Verdict::Delay(Duration::from_nanos(wait))
        } else {
            Verdict::Pass
        }
    }

    /// `dynamic_ip_security`: a banned client is refused; one over a limit
    /// is banned and refused.
    fn dynamic(&self, d: &super::Dynamic, key: u64, t: u64, g: &mut Guarded) -> Option<Verdict> {
        let s = &d.spec;
        // A client the table cannot track is let through.
        let e = d.zone.entry(key, t)?;
        if e.banned(t).is_some() {
            return deny(s.deny_action, Kind::Dynamic, s.dry_run, g);
        }
        if let Some((max, interval)) = s.max_rate
            && e.count(t, interval, max)
        {
            if !s.dry_run {
                e.ban(t, s.ban_ns);
            }
            return deny(s.deny_action, Kind::Dynamic, s.dry_run, g);
        }
        if let Some(max) = s.max_concurrent {
            match e.enter(max) {
                Some(token) => g.holds.push(Held::new(d.zone.clone(), token)),
                None => {
                    if !s.dry_run {
                        e.ban(t, s.ban_ns);
                    }
                    return deny(s.deny_action, Kind::Dynamic, s.dry_run, g);
                }
            }
        }
        None
    }
}
