//! Counts of what the guards refused: filtered requests by reason, denied
//! addresses by kind, and limit refusals by zone (dry runs apart), with the
//! zones' shared tables read when the counts are shown.

use std::fmt::Write;
use std::sync::Arc;

use crate::filter::Reason;
use crate::guard::{Kind, Refused};
use crate::limit::Zone;

/// A zone's shared table (equal when it is the same table).
#[derive(Clone, Debug)]
pub struct Table(pub Arc<Zone>);

impl PartialEq for Table {
    fn eq(&self, o: &Table) -> bool {
        Arc::ptr_eq(&self.0, &o.0)
    }
}

impl Eq for Table {}

/// One zone's refusals.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ZoneCounts {
    /// The zone's name (its label).
    pub name: Arc<str>,
    /// `limit_req` refusals, `limit_req` dry runs, `limit_conn` refusals,
    /// `limit_conn` dry runs.
    pub refused: [u64; 4],
    /// The table, while the zone is in the generation in effect (its keys,
    /// evictions and untracked requests are the whole server's, not a
    /// worker's).
    pub table: Option<Table>,
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

    /// Makes `zones` the current zones, by index: a name seen before keeps
    /// its counts; one no longer current lets go of its table.
    pub fn set_zones<'a>(&mut self, zones: impl IntoIterator<Item = (&'a str, &'a Arc<Zone>)>) {
        let mut old = std::mem::take(&mut self.zones);
        for (n, table) in zones {
            let mut z = match old.iter().position(|z| &*z.name == n) {
                Some(i) => old.remove(i),
                None => ZoneCounts {
                    name: n.into(),
                    refused: [0; 4],
                    table: None,
                },
            };
            z.table = Some(Table(table.clone()));
            self.zones.push(z);
        }
        self.current = self.zones.len();
        for z in &mut old {
            z.table = None;
        }
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
                    if t.table.is_none() {
                        t.table = z.table.clone();
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
        let tables: Vec<(String, &Zone)> = self
            .zones
            .iter()
            .filter_map(|z| Some((super::prometheus::label(&z.name), &*z.table.as_ref()?.0)))
            .collect();
        type Figure = fn(&Zone) -> u64;
        let figures: [(&str, &str, &str, Figure); 4] = [
            (
                "peregrine_limit_zone_keys",
                "gauge",
                "Keys a limit zone's table holds now.",
                |z| z.keys() as u64,
            ),
            (
                "peregrine_limit_zone_capacity",
                "gauge",
                "Keys a limit zone's table can hold.",
                |z| z.capacity() as u64,
            ),
            (
                "peregrine_limit_zone_evictions_total",
                "counter",
                "Keys a full limit zone evicted (the least recently used of a bucket) to make room.",
                Zone::evictions,
            ),
            (
                "peregrine_limit_zone_untracked_total",
                "counter",
                "Requests a limit zone let through untracked: every slot of their bucket held a key with requests in progress.",
                Zone::untracked,
            ),
        ];
        for (metric, kind, help, f) in figures {
            super::prometheus::head(out, metric, kind, help);
            for (name, z) in &tables {
                let _ = writeln!(out, "{metric}{{zone=\"{name}\"}} {}", f(z));
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
                (z.name.to_string(), {
                    let mut o = serde_json::json!({
                        "limit_req": z.refused[0],
                        "limit_req_dry_run": z.refused[1],
                        "limit_conn": z.refused[2],
                        "limit_conn_dry_run": z.refused[3],
                    });
                    if let Some(Table(t)) = &z.table {
                        o["keys"] = t.keys().into();
                        o["capacity"] = t.capacity().into();
                        o["evictions"] = t.evictions().into();
                        o["untracked"] = t.untracked().into();
                    }
                    o
                })
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
