//! What happens when an upstream connection ends under an exchange: the
//! failure it means, passive health, and whether the exchange is sent again.

use std::time::Instant;

use super::{Hub, Phase};
use crate::driver::ClientEnd;
use crate::upstream::balance::Pick;
use crate::upstream::exchange::Failure;
use crate::upstream::spec::RetryOn;

impl Hub {
    /// A connection ended: its exchange, if any, fails or is retried.
    pub(super) fn ended(&mut self, c: usize, why: ClientEnd, now: Instant) {
        let u = self.conns.remove(c);
        let g = &mut self.groups[u.group];
        g.idle.retain(|&i| i != c);
        let s = &mut g.servers[u.server];
        s.open = s.open.saturating_sub(1);
        let Some(ei) = u.exchange else { return };
        let e = &mut self.exchanges[ei];
        e.conn = None;
        if matches!(e.phase, Phase::Done | Phase::Failed(_)) {
            return;
        }
        let f = match why {
            ClientEnd::ConnectFailed(errno) => Failure::Connect(errno),
            ClientEnd::Tls(t) => Failure::Tls(t),
            ClientEnd::ConnectTimeout => Failure::ConnectTimeout,
            ClientEnd::ResponseTimeout if e.phase == Phase::Body => Failure::ReadTimeout,
            ClientEnd::ResponseTimeout => Failure::HeadTimeout,
            ClientEnd::Malformed(_) | ClientEnd::Unsolicited => Failure::Invalid,
            ClientEnd::SendFailed(_) if e.phase != Phase::Body => Failure::Send,
            ClientEnd::Upgraded => Failure::Upgraded,
            _ => Failure::Closed,
        };
        let server = e.server;
        let before_head = e.phase != Phase::Body;
        // A pooled connection the server had closed: nothing of this request
        // reached it.
        let stale = u.uses > 0 && before_head && matches!(f, Failure::Closed | Failure::Send);
        self.finished(u.group, server, None);
        let g = &mut self.groups[u.group];
        g.servers[server].stats.failure(f);
        if !stale && why != ClientEnd::Local {
            g.balancer.failed(server, now);
        }
        if before_head && self.may_retry_after(ei, f, stale) {
            self.retry(ei, stale, f, now);
        } else {
            self.exchanges[ei].phase = Phase::Failed(f);
            self.wake(ei);
        }
        self.serve_queue(u.group, now);
    }

    /// Whether an exchange may be sent again (nothing of it is lost and the
    /// method allows it).
    pub(super) fn may_retry(&self, ei: usize, stale: bool) -> bool {
        let e = &self.exchanges[ei];
        let spec = &self.groups[e.group].shared.spec.retry;
        let resendable = !e.body_started;
        let method_ok = e.idempotent || spec.non_idempotent || !e.handed;
        let budget = if stale {
            !e.stale_retry
        } else {
            e.attempts < spec.tries
        };
        resendable && method_ok && budget
    }

    fn may_retry_after(&self, ei: usize, f: Failure, stale: bool) -> bool {
        if stale {
            return self.may_retry(ei, true);
        }
        let e = &self.exchanges[ei];
        let on = &self.groups[e.group].shared.spec.retry.on;
        let listed = match f {
            Failure::Connect(_) | Failure::Tls(_) => on.contains(&RetryOn::ConnectError),
            f if f.is_timeout() => on.contains(&RetryOn::Timeout),
            _ => false,
        };
        listed && self.may_retry(ei, false)
    }

    /// Sends an exchange again: on a fresh connection to the same server
    /// after a stale pooled one, else to a server not tried yet.
    pub(super) fn retry(&mut self, ei: usize, stale: bool, f: Failure, now: Instant) {
        let e = &mut self.exchanges[ei];
        if stale {
            e.stale_retry = true;
        } else {
            e.attempts += 1;
            e.tried.push(e.server);
            // The next server's pooled connection may be stale too.
            e.stale_retry = false;
        }
        if e.handed {
            e.up_queue = e.head.clone();
            e.handed = false;
        }
        e.phase = Phase::Waiting;
        e.attempt_at = now;
        let (gi, server) = (e.group, e.server);
        let next = if stale && self.reclaim(gi, server) {
            Some(server)
        } else {
            let tried = std::mem::take(&mut self.exchanges[ei].tried);
            let pick = Pick {
                client_ip: self.exchanges[ei].client_ip,
                uri: "",
                key: None,
                sticky: None,
                exclude: &tried,
            };
            let next = self.pick_claimed(gi, &pick, now);
            self.exchanges[ei].tried = tried;
            next
        };
        match next {
            Some(s) => {
                self.exchanges[ei].server = s;
                self.assign(ei, s, stale, now);
            }
            // No other server: the last failure is the answer.
            None => {
                self.exchanges[ei].phase = Phase::Failed(f);
                self.wake(ei);
            }
        }
    }
}

#[cfg(test)]
#[path = "hub_tests.rs"]
mod tests;
