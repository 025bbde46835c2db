//! The response cache as the workers report it: `/metrics` series by
//! worker and the `/status` section with the hit ratio.

use std::fmt::Write;

use serde_json::{Value, json};

use super::Snapshot;
use super::prometheus::head;
use crate::cache::CacheStats;

/// Hits (fresh and stale) among the requests the cache looked up.
pub fn hit_ratio(c: &CacheStats) -> Option<f64> {
    let looked = c.hits + c.stale + c.misses + c.revalidated;
    (looked > 0).then(|| (c.hits + c.stale + c.revalidated) as f64 / looked as f64)
}

/// The `peregrine_cache_*` series.
pub fn prometheus(out: &mut String, snaps: &[Snapshot]) {
    type Pick = fn(&CacheStats) -> u64;
    let series: [(&str, &str, &str, Pick); 11] = [
        (
            "peregrine_cache_hits_total",
            "counter",
            "Requests answered from the cache while fresh.",
            |c| c.hits,
        ),
        (
            "peregrine_cache_misses_total",
            "counter",
            "Requests the cache had no usable response for.",
            |c| c.misses,
        ),
        (
            "peregrine_cache_stale_total",
            "counter",
            "Requests answered with a stale response (while revalidating, or on an upstream error).",
            |c| c.stale,
        ),
        (
            "peregrine_cache_revalidated_total",
            "counter",
            "Stale responses the upstream confirmed with 304.",
            |c| c.revalidated,
        ),
        (
            "peregrine_cache_bypass_total",
            "counter",
            "Requests that bypassed the cache (bypass_if).",
            |c| c.bypass,
        ),
        (
            "peregrine_cache_stores_total",
            "counter",
            "Responses stored.",
            |c| c.stores,
        ),
        (
            "peregrine_cache_evictions_total",
            "counter",
            "Responses evicted to make room.",
            |c| c.evictions,
        ),
        (
            "peregrine_cache_purged_total",
            "counter",
            "Responses removed by a purge.",
            |c| c.purged,
        ),
        ("peregrine_cache_bytes", "gauge", "Bytes stored.", |c| {
            c.bytes
        }),
        (
            "peregrine_cache_objects",
            "gauge",
            "Responses stored.",
            |c| c.objects,
        ),
        (
            "peregrine_cache_capacity_bytes",
            "gauge",
            "The worker's share of [cache] max_size.",
            |c| c.capacity,
        ),
    ];
    for (name, kind, help, pick) in series {
        head(out, name, kind, help);
        for s in snaps {
            let _ = writeln!(out, "{name}{{worker=\"{}\"}} {}", s.worker, pick(&s.cache));
        }
    }
}

/// The `/status` section.
pub fn status(c: &CacheStats) -> Value {
    json!({
        "hits": c.hits,
        "misses": c.misses,
        "stale": c.stale,
        "revalidated": c.revalidated,
        "bypass": c.bypass,
        "stores": c.stores,
        "evictions": c.evictions,
        "purged": c.purged,
        "bytes": c.bytes,
        "objects": c.objects,
        "capacity_bytes": c.capacity,
        "hit_ratio": hit_ratio(c),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ratio() {
        let mut c = CacheStats::default();
        assert_eq!(hit_ratio(&c), None);
        c.hits = 6;
        c.stale = 1;
        c.misses = 2;
        c.revalidated = 1;
        assert_eq!(hit_ratio(&c), Some(0.8));
        assert_eq!(status(&c)["hit_ratio"], 0.8);
    }
}
