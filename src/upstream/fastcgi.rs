//! What the hub does differently for `[[fastcgi]]` groups: their
//! servers' error streams go to the log, and a kept connection is given
//! up when a request waits on a new one.

use std::time::{Duration, Instant};

use super::Hub;
use crate::driver::ClientConn;
use crate::upstream::exchange::Phase;

/// How long a request on a new connection waits before a kept connection
/// is given up for it: a new connection is normally taken by the next
/// process to come free within a few milliseconds; one that waits longer
/// waits behind kept connections.
const FRESH_PATIENCE: Duration = Duration::from_millis(20);

impl Hub {
    /// Logs what the FastCGI server of connection `c` wrote to its error
    /// stream.
    pub(super) fn log_stderr(&self, c: usize, d: &mut ClientConn) {
        let stderr = d.take_stderr();
        if stderr.is_empty() {
            return;
        }
        let u = &self.conns[c];
        let label = &self.groups[u.group].servers[u.server].label;
        for line in String::from_utf8_lossy(&stderr)
            .lines()
            .filter(|l| !l.trim().is_empty())
        {
            crate::runtime::log(&format!("fastcgi {label}: {line}"));
        }
    }

    /// Whether a request to the FastCGI server of `c` has waited (20 ms
    /// or more) on a connection that has never answered: a FastCGI process
    /// serves one connection at a time for as long as it is kept open, so
    /// a connection opened while every process holds one waits in the
    /// server's backlog; `c` is closed instead of kept, and its process
    /// takes that one. (Without the wait, each close would have the next
    /// request open a connection, and every connection would be new.)
    pub(super) fn fastcgi_waits(&self, c: usize, now: Instant) -> bool {
        let u = &self.conns[c];
        if self.groups[u.group].shared.spec.fastcgi.is_none() {
            return false;
        }
        self.conns.iter().any(|(i, o)| {
            i != c
                && o.group == u.group
                && o.server == u.server
                && o.uses == 0
                && !o.check
                && o.exchange.is_some_and(|e| {
                    let e = &self.exchanges[e];
                    matches!(e.phase, Phase::Waiting | Phase::Sent)
                        && now.saturating_duration_since(e.attempt_at) >= FRESH_PATIENCE
                })
        })
    }
}
