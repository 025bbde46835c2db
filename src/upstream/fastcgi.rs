//! What the hub does differently for `[[fastcgi]]` groups: their
//! servers' error streams go to the log, and a kept connection is given
//! up when a request waits on a new one.

use super::Hub;
use crate::driver::ClientConn;
use crate::upstream::exchange::Phase;

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

    /// Whether a request to the FastCGI server of `c` waits on a connection
    /// that has never answered: a FastCGI process serves one connection
    /// at a time for as long as it is kept open, so a connection opened
    /// while every process holds one waits in the server's backlog; `c`
    /// is closed instead of kept, and its process takes that one.
    pub(super) fn fastcgi_waits(&self, c: usize) -> bool {
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
                    matches!(self.exchanges[e].phase, Phase::Waiting | Phase::Sent)
                })
        })
    }
}
