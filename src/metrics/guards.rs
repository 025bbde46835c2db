//! Counts of what the guards refused: filtered requests by reason, denied
//! addresses by kind, and limit refusals by zone (dry runs apart).

use std::fmt::Write;
use std::sync::Arc;

use crate::filter::Reason;
use crate::guard::{Kind, Refused};

/// One zone's refusals.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ZoneCounts {
    /// The zone's name (its label).
    pub name: Arc<str>,
    /// `limit_req` refusals, `limit_req` dry runs, `limit_conn` refusals,
    /// `limit_conn` dry runs.
    pub refused: [u64; 4],
}

/// What one worker's guards refused.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct GuardCounts {
    /// Filtered requests, by reason (in [`Reason::ALL`] order).
    pub filtered: [u64; Reason::ALL.len()],
    /// Requests refused by `ip_security`, by `dynamic_ip_security`, and the
    /// latter's dry runs.
    pub denied: [u64; 3],
    /// Limit refusals by zone.
    pub zones: Vec<ZoneCounts>,
    /// Zones of the current generation (the first `current` of `zones`).
    current: usize,
}

impl GuardCounts {
    /// Counts `r`.
    pub fn count(&mut self, r: &Refused) {
        match r.kind {
            Kind::Filter(reason) => {
                if let Some(i) = Reason::ALL.iter().position(|x| *x == reason) {
                    self.filtered[i] += 1;
                }
            }
            Kind::Ip => self.denied[0] += 1,
            Kind::Dynamic => self.denied[if r.dry_run { 2 } else { 1 }] += 1,
            Kind::Req | Kind::Conn => {
                let Some(z) = r.zone.map(usize::from).filter(|z| *z < self.current) else {
                    return;
                };
                let base = if r.kind == Kind::Req { 0 } else { 2 };
                self.zones[z].refused[base + usize::from(r.dry_run)] += 1;
            }
        }
    }

    /// Makes `names` the current zones, by index: a name seen before keeps
    /// its counts.
    pub fn set_zones<'a>(&mut self, names: impl IntoIterator<Item = &'a str>) {
        let mut old = std::mem::take(&mut self.zones);
        for n in names {
            let z = match old.iter().position(|z| &*z.name == n) {
                Some(i) => old.remove(i),
                None => ZoneCounts {
                    name: n.into(),
                    refused: [0; 4],
                },
            };
            self.zones.push(z);
        }
        self.current = self.zones.len();
        self.zones.append(&mut old);
    }

    /// Adds `o` into `self` (zones by name).
    pub fn add(&mut self, o: &GuardCounts) {
        for (a, b) in self.filtered.iter_mut().zip(o.filtered) {
            *a += b;
        }
        for (a, b) in self.denied.iter_mut().zip(o.denied) {
            *a += b;
        }
        for z in &o.zones {
            match self.zones.iter_mut().find(|t| t.name == z.name) {
                Some(t) => {
                    for (a, b) in t.refused.iter_mut().zip(z.refused) {
                        *a += b;
                    }
                }
                None => self.zones.push(z.clone()),
            }
        }
        self.current = self.zones.len();
    }

    /// Total requests filtered.
    pub fn filtered_total(&self) -> u64 {
        self.filtered.iter().sum()
    }

    /// The Prometheus exposition of these (summed) counts.
    pub fn prometheus(&self, out: &mut String) {
        super::prometheus::head(
            out,
            "peregrine_filtered_requests_total",
            "counter",
            "Requests refused by request filtering, by reason.",
        );
        for (i, r) in Reason::ALL.iter().enumerate() {
            let _ = writeln!(
                out,
                "peregrine_filtered_requests_total{{reason=\"{}\"}} {}",
                r.name(),
                self.filtered[i]
            );
        }
        super::prometheus::head(
            out,
            "peregrine_ip_denied_total",
            "counter",
            "Requests refused for the client's address: by ip_security, by dynamic_ip_security (banned), and the latter's dry runs.",
        );
        for (i, (kind, dry)) in [
            ("ip_security", false),
            ("dynamic_ip_security", false),
            ("dynamic_ip_security", true),
        ]
        .iter()
        .enumerate()
        {
            let _ = writeln!(
                out,
                "peregrine_ip_denied_total{{kind=\"{kind}\",dry_run=\"{dry}\"}} {}",
                self.denied[i]
            );
        }
        super::prometheus::head(
            out,
            "peregrine_limit_refusals_total",
            "counter",
            "Requests refused by limit_req and limit_conn, by zone (dry_run: only logged).",
        );
        for z in &self.zones {
            let name = super::prometheus::label(&z.name);
            for (i, (kind, dry)) in [
                ("limit_req", false),
                ("limit_req", true),
                ("limit_conn", false),
                ("limit_conn", true),
            ]
            .iter()
            .enumerate()
            {
                let _ = writeln!(
                    out,
                    "peregrine_limit_refusals_total{{zone=\"{name}\",kind=\"{kind}\",dry_run=\"{dry}\"}} {}",
                    z.refused[i]
                );
            }
        }
    }

    /// The `/status` object.
    pub fn status(&self) -> serde_json::Value {
        let filtered: serde_json::Map<String, serde_json::Value> = Reason::ALL
            .iter()
            .enumerate()
            .map(|(i, r)| (r.name().to_string(), self.filtered[i].into()))
            .collect();
        let zones: serde_json::Map<String, serde_json::Value> = self
            .zones
            .iter()
            .map(|z| {
                (
                    z.name.to_string(),
                    serde_json::json!({
                        "limit_req": z.refused[0],
                        "limit_req_dry_run": z.refused[1],
                        "limit_conn": z.refused[2],
                        "limit_conn_dry_run": z.refused[3],
                    }),
                )
            })
            .collect();
        serde_json::json!({
            "filtered": filtered,
            "filtered_total": self.filtered_total(),
            "ip_denied": self.denied[0],
            "banned": self.denied[1],
            "banned_dry_run": self.denied[2],
            "zones": zones,
        })
    }
}
