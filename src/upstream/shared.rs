//! An `[[upstream]]` group as a configuration generation holds it, shared
//! by every worker: its settings, the health verdicts of its active checks
//! and, with `sticky`, the cookie value of each server.

use std::sync::Arc;

use super::health::HealthCells;
use super::spec::UpstreamSpec;
use crate::pool::PoolCells;

/// An `[[upstream]]` group as a configuration generation holds it: shared by
/// every worker.
#[derive(Debug)]
pub struct Upstream {
    /// Its settings.
    pub spec: UpstreamSpec,
    /// Active-check verdicts, one per server, written by the core that
    /// checks the server and read by all.
    pub health: Arc<HealthCells>,
    /// Its position in the generation (which core checks which server).
    pub position: usize,
    /// With `sticky`: the cookie value naming each server.
    pub sticky_values: Vec<String>,
    /// A `[[pool]]`'s lanes, shared with the supervisor; kept across
    /// reloads while the pool's settings are the same.
    pub pool: Option<Arc<PoolCells>>,
}

impl Upstream {
    /// The group for `spec`; `previous` keeps its health cells when the
    /// servers are the same.
    pub fn new(spec: UpstreamSpec, position: usize, previous: Option<&Upstream>) -> Upstream {
        let health = match previous {
            Some(p) if p.spec.servers == spec.servers => p.health.clone(),
            _ => HealthCells::new(spec.servers.len()),
        };
        let sticky_values = match &spec.sticky {
            Some(_) => {
                let secret = super::sticky::process_secret();
                spec.servers
                    .iter()
                    .map(|s| super::sticky::cookie_value(secret, &s.name))
                    .collect()
            }
            None => Vec::new(),
        };
        let pool = spec.pool.as_ref().map(|p| {
            previous
                .filter(|prev| prev.spec.pool.as_ref() == Some(p))
                .and_then(|prev| prev.pool.clone())
                .unwrap_or_else(|| PoolCells::new(p.lanes()))
        });
        Upstream {
            spec,
            health,
            position,
            sticky_values,
            pool,
        }
    }
}
