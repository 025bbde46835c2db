//! Judging one request against a [`Guard`].

use std::net::IpAddr;
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use super::Guard;
use super::note::{Guarded, Held, Kind, Refused};
use super::spec::{DenyAction, ZoneKey};
use crate::exchange::RequestHead;
use crate::http::Response;
use crate::limit::{Decision, key_hash};

/// What the guards say about a request.
#[derive(Debug)]
pub enum Verdict {
    /// Let it through.
    Pass,
    /// Let it through after this long (a rate limit without `nodelay`).
    Delay(Duration),
    /// Answer this instead.
    Refuse(Response),
    /// Close the connection without an answer.
    Abort,
}

/// Nanoseconds since the first time any worker asked (one clock for every
/// worker, as the limit tables are shared).
pub(super) fn nanos(now: Instant) -> u64 {
    static EPOCH: OnceLock<Instant> = OnceLock::new();
    let epoch = *EPOCH.get_or_init(|| now - Duration::from_secs(1));
    now.saturating_duration_since(epoch).as_nanos() as u64
}

/// The bytes of an address as a key (IPv4-mapped IPv6 as IPv4).
fn ip_key(ip: IpAddr) -> u64 {
    match ip {
        IpAddr::V4(a) => key_hash(&a.octets()),
        IpAddr::V6(a) => match a.to_ipv4_mapped() {
            Some(v4) => key_hash(&v4.octets()),
            None => key_hash(&a.octets()),
        },
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
        Some(s) => Verdict::Refuse(Response::error(s, None)),
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
    /// The key of `key` for `req`; `None`: the request is not limited by it
    /// (a header key the request lacks, or no address known).
    fn key(&self, key: &ZoneKey, req: &RequestHead, client: Option<IpAddr>) -> Option<u64> {
        match key {
            ZoneKey::ClientIp => client.map(ip_key),
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
        if let (Some(d), Some(ip)) = (&self.dynamic, client)
            && let Some(v) = self.dynamic(d, ip, t, g)
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
            return Verdict::Refuse(Response::error(r.status, None));
        }
        for c in &self.conn {
            let Some(key) = self.key(&c.key, req, client) else {
                continue;
            };
            match c.zone.enter(key, t, c.max) {
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
                        return Verdict::Refuse(Response::error(c.status, None));
                    }
                }
            }
        }
        let mut wait = 0u64;
        for l in &self.req {
            let Some(key) = self.key(&l.key, req, client) else {
                continue;
            };
            match l.zone.request(key, t, &l.rate) {
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
                        return Verdict::Refuse(resp);
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
    fn dynamic(&self, d: &super::Dynamic, ip: IpAddr, t: u64, g: &mut Guarded) -> Option<Verdict> {
        let key = ip_key(ip);
        let s = &d.spec;
        if d.zone.banned(key, t).is_some() {
            return deny(s.deny_action, Kind::Dynamic, s.dry_run, g);
        }
        if let Some((max, interval)) = s.max_rate
            && d.zone.count(key, t, interval, max)
        {
            if !s.dry_run {
                d.zone.ban(key, t, s.ban_ns);
            }
            return deny(s.deny_action, Kind::Dynamic, s.dry_run, g);
        }
        if let Some(max) = s.max_concurrent {
            match d.zone.enter(key, t, max) {
                Some(token) => g.holds.push(Held::new(d.zone.clone(), token)),
                None => {
                    if !s.dry_run {
                        d.zone.ban(key, t, s.ban_ns);
                    }
                    return deny(s.deny_action, Kind::Dynamic, s.dry_run, g);
                }
            }
        }
        None
    }
}
