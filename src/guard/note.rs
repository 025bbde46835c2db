//! What a guard leaves with an exchange: the refusal the access log and the
//! metrics are told of, and the concurrency slots it holds until the
//! exchange ends.

use std::sync::Arc;

use crate::filter::Reason;
use crate::limit::{Token, Zone};

/// What refused a request.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    /// Request filtering, for this reason.
    Filter(Reason),
    /// `ip_security`.
    Ip,
    /// `dynamic_ip_security`: the client is banned (or was just banned).
    Dynamic,
    /// A `limit_conn` zone.
    Conn,
    /// A `limit_req` zone.
    Req,
}

impl Kind {
    /// Its name in logs and metrics.
    pub fn name(self) -> &'static str {
        match self {
            Kind::Filter(r) => r.name(),
            Kind::Ip => "ip_security",
            Kind::Dynamic => "dynamic_ip_security",
            Kind::Conn => "limit_conn",
            Kind::Req => "limit_req",
        }
    }
}

/// A refusal, or with `dry_run` what would have been refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Refused {
    /// What refused it.
    pub kind: Kind,
    /// The status answered (0: the connection was cut).
    pub status: u16,
    /// The IIS sub-status (`404.5` is 404 and 5), 0 for none.
    pub sub: u16,
    /// The limit zone (its index in the generation), for limits.
    pub zone: Option<u16>,
    /// Nothing was refused: the rule only logs.
    pub dry_run: bool,
}

impl Refused {
    /// `404.5`, `413.1`, `429`, as the access log writes it.
    pub fn code(&self) -> String {
        if self.sub == 0 {
            self.status.to_string()
        } else {
            format!("{}.{}", self.status, self.sub)
        }
    }
}

/// A request counted in a `limit_conn` (or dynamic) zone until its exchange
/// ends: dropping it leaves the zone.
#[derive(Debug)]
pub struct Held {
    zone: Arc<Zone>,
    token: Token,
}

impl Held {
    pub(super) fn new(zone: Arc<Zone>, token: Token) -> Held {
        Held { zone, token }
    }
}

impl Drop for Held {
    fn drop(&mut self) {
        self.zone.leave(self.token);
    }
}

/// What the guards left with one exchange.
#[derive(Debug, Default)]
pub struct Guarded {
    /// The refusal (or dry run), for the access log and metrics.
    pub refused: Option<Refused>,
    /// Concurrency slots held until the exchange ends.
    pub holds: Vec<Held>,
    /// The guards have judged this exchange (a request with a body is
    /// judged when its head is checked, not again when it is called).
    pub judged: bool,
    /// The largest request body allowed (a chunked body growing past it is
    /// cut), when a filter limits it below the server's limit.
    pub max_body: Option<u64>,
    /// A rate limit delays the exchange until then.
    pub delay_until: Option<std::time::Instant>,
}

impl Guarded {
    /// Forgets everything, leaving the zones it held (keeps capacity).
    pub fn clear(&mut self) {
        self.refused = None;
        self.holds.clear();
        self.judged = false;
        self.max_body = None;
        self.delay_until = None;
    }
}
