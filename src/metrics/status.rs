//! The `/status` JSON document.

use hdrhistogram::Histogram;
use serde_json::{Map, Value, json};

use super::{CloseReason, PARSE_ERROR_KINDS, Registry, SiteCounts, Snapshot, merge};

fn ms(us: u64) -> f64 {
    (us as f64 / 1000.0 * 1000.0).round() / 1000.0
}

/// Latency summary in milliseconds.
fn summary(h: &Histogram<u64>) -> Value {
    if h.is_empty() {
        return json!({"count": 0, "p50": 0.0, "p90": 0.0, "p99": 0.0, "p999": 0.0, "max": 0.0, "mean": 0.0});
    }
    json!({
        "count": h.len(),
        "p50": ms(h.value_at_quantile(0.5)),
        "p90": ms(h.value_at_quantile(0.9)),
        "p99": ms(h.value_at_quantile(0.99)),
        "p999": ms(h.value_at_quantile(0.999)),
        "max": ms(h.max()),
        "mean": (h.mean() / 1000.0 * 1000.0).round() / 1000.0,
    })
}

/// The percentile curve (percentile, ms) for plotting.
pub fn curve(h: &Histogram<u64>) -> Vec<(f64, f64)> {
    const POINTS: [f64; 14] = [
        0.0, 25.0, 50.0, 75.0, 90.0, 95.0, 99.0, 99.5, 99.9, 99.95, 99.99, 99.999, 99.9999, 100.0,
    ];
    if h.is_empty() {
        return Vec::new();
    }
    POINTS
        .iter()
        .map(|p| (*p, ms(h.value_at_quantile(p / 100.0))))
        .collect()
}

fn section(s: &Snapshot) -> Value {
    let c = &s.stats.counters;
    let mut closed = Map::new();
    for (i, r) in CloseReason::ALL.iter().enumerate() {
        closed.insert(r.as_str().into(), c.closed[i].into());
    }
    let mut errors = Map::new();
    for (i, k) in PARSE_ERROR_KINDS.iter().enumerate() {
        if c.parse_errors[i] > 0 {
            errors.insert((*k).into(), c.parse_errors[i].into());
        }
    }
    json!({
        "connections": {
            "active": s.gauges.active,
            "reading": s.gauges.reading,
            "writing": s.gauges.writing,
            "waiting": s.gauges.waiting,
            "http2": s.gauges.http2,
            "http2_streams": s.gauges.http2_streams,
            "accepted": c.accepted,
            "closed": closed,
        },
        "requests": c.requests(),
        "http2_responses": c.http2_responses,
        "status": {"1xx": c.status[0], "2xx": c.status[1], "3xx": c.status[2], "4xx": c.status[3], "5xx": c.status[4]},
        "bytes": {"in": c.bytes_in, "out": c.bytes_out},
        "latency_ms": summary(&s.stats.latency),
        "recent_latency_ms": summary(&s.stats.recent),
        "ttfb_ms": summary(&s.stats.ttfb),
        "parse_errors": errors,
    })
}

/// Per site (by name): its responses, in total
/// and by status class.
fn sites(all: &[SiteCounts]) -> Value {
    let mut m = Map::new();
    for s in all {
        let c = &s.status;
        m.insert(
            s.name.to_string(),
            json!({
                "requests": s.requests(),
                "status": {"1xx": c[0], "2xx": c[1], "3xx": c[2], "4xx": c[3], "5xx": c[4]},
            }),
        );
    }
    Value::Object(m)
}

/// The whole document: totals, per worker, per site, and the merged
/// percentile curve.
pub fn render(reg: &Registry, snaps: &[Snapshot]) -> Value {
    let total = merge(snaps);
    let mut totals = section(&total);
    totals["workers"] = snaps.len().into();
    let workers: Vec<Value> = snaps
        .iter()
        .map(|s| {
            let mut v = section(s);
            v["worker"] = s.worker.into();
            v
        })
        .collect();
    let taken = total
        .taken
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0.0, |d| d.as_secs_f64());
    json!({
        "version": env!("CARGO_PKG_VERSION"),
        "uptime_seconds": (reg.started.elapsed().as_secs_f64() * 1000.0).round() / 1000.0,
        "started": httpdate::fmt_http_date(reg.started_wall),
        "snapshot_unix": taken,
        "config": reg.config_path,
        "generation": reg.life.generation(),
        "reloads": {
            "ok": reg.life.reloads_ok.load(std::sync::atomic::Ordering::Acquire),
            "error": reg.life.reloads_error.load(std::sync::atomic::Ordering::Acquire),
        },
        "ready": reg.life.ready(),
        "totals": totals,
        "workers": workers,
        "sites": sites(&total.stats.sites),
        "upstreams": super::upstream::status(&total.upstreams),
        "guards": total.stats.guards.status(),
        "cache": super::cache::status(&total.cache),
        "pools": crate::pool::status::read(&reg.pools).iter().map(|p| p.to_json()).collect::<Vec<_>>(),
        "percentiles": curve(&total.stats.latency),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn document_shape() {
        let reg = Registry::new(2, Some("/etc/p.toml".into()));
        let mut snaps = reg.snapshots();
        snaps[0].stats.status(200);
        snaps[0].stats.latency(std::time::Duration::from_millis(2));
        snaps[1].stats.status(404);
        snaps[1].gauges.active = 3;
        snaps[0].gauges.http2 = 1;
        snaps[1].gauges.http2_streams = 5;
        snaps[1].stats.counters.http2_responses = 7;
        let v = render(&reg, &snaps);
        assert_eq!(v["totals"]["connections"]["http2"], 1);
        assert_eq!(v["totals"]["connections"]["http2_streams"], 5);
        assert_eq!(v["totals"]["http2_responses"], 7);
        assert_eq!(v["totals"]["requests"], 2);
        assert_eq!(v["totals"]["status"]["4xx"], 1);
        assert_eq!(v["totals"]["connections"]["active"], 3);
        assert_eq!(v["workers"][1]["worker"], 1);
        assert_eq!(v["config"], "/etc/p.toml");
        assert_eq!(v["generation"], 1);
        assert_eq!(v["reloads"]["error"], 0);
        assert_eq!(v["ready"], false);
        let max = v["totals"]["latency_ms"]["max"].as_f64().unwrap();
        assert!((2.0..2.01).contains(&max), "{max}");
        assert_eq!(v["percentiles"].as_array().unwrap().len(), 14);
        assert_eq!(v["sites"], json!({}));
        assert_eq!(v["upstreams"], json!([]));
        snaps[0].stats.sites = vec![SiteCounts::new("shop")];
        snaps[0].stats.sites[0].status = [0, 1, 0, 2, 0];
        snaps[1].stats.sites = vec![SiteCounts::new("shop"), SiteCounts::new("blog")];
        snaps[1].stats.sites[0].status = [0, 1, 0, 0, 0];
        let v = render(&reg, &snaps);
        assert_eq!(v["sites"]["shop"]["requests"], 4);
        assert_eq!(v["sites"]["shop"]["status"]["2xx"], 2);
        assert_eq!(v["sites"]["shop"]["status"]["4xx"], 2);
        assert_eq!(v["sites"]["blog"]["requests"], 0);
    }

    #[test]
    fn upstreams_are_summed_over_the_workers() {
        use super::super::upstream::{Health, ServerReport, UpstreamReport};
        let reg = Registry::new(2, None);
        let mut snaps = reg.snapshots();
        for (i, s) in snaps.iter_mut().enumerate() {
            let mut server = ServerReport {
                name: "10.0.0.1:80".into(),
                weight: 2,
                backup: false,
                live: true,
                health: if i == 0 { Health::Up } else { Health::Down },
                open: 1,
                idle: 0,
                stats: Default::default(),
            };
            server.stats.requests = 3;
            server.stats.response(200);
            s.upstreams = vec![UpstreamReport {
                name: "app".into(),
                policy: "least_time",
                live: true,
                servers: vec![server],
            }];
        }
        let v = render(&reg, &snaps);
        let s = &v["upstreams"][0]["servers"][0];
        assert_eq!(v["upstreams"][0]["policy"], "least_time");
        assert_eq!(s["requests"], 6);
        assert_eq!(s["responses"]["2xx"], 2);
        assert_eq!(s["connections"]["open"], 2);
        assert_eq!(s["health"], "down", "one worker has it out");
        assert!(v["workers"][0].get("upstreams").is_none());
    }
}
