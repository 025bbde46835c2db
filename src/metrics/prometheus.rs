//! Prometheus text exposition (format 0.0.4) of worker snapshots.

use std::fmt::Write;

use hdrhistogram::Histogram;

use super::upstream::add_upstreams;
use super::{CloseReason, PARSE_ERROR_KINDS, Registry, SiteCounts, Snapshot, add_sites};

/// Histogram bucket bounds in seconds.
pub const BUCKETS: [f64; 17] = [
    0.00005, 0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0,
    2.5, 5.0, 10.0,
];

const CLASSES: [&str; 5] = ["1xx", "2xx", "3xx", "4xx", "5xx"];

/// `v` as a label value: `\`, `"` and line feeds escaped.
pub(super) fn label(v: &str) -> String {
    let mut o = String::with_capacity(v.len());
    for c in v.chars() {
        match c {
            '\\' => o.push_str("\\\\"),
            '"' => o.push_str("\\\""),
            '\n' => o.push_str("\\n"),
            c => o.push(c),
        }
    }
    o
}

/// Responses by site and status class, summed over the workers.
fn sites(out: &mut String, snaps: &[Snapshot]) {
    let mut all: Vec<SiteCounts> = Vec::new();
    for s in snaps {
        add_sites(&mut all, &s.stats.sites);
    }
    if all.is_empty() {
        return;
    }
    head(
        out,
        "peregrine_site_requests_total",
        "counter",
        "HTTP responses sent by each site, by status class (answers given before a site is chosen count only in peregrine_http_requests_total).",
    );
    for site in &all {
        let name = label(&site.name);
        for (i, class) in CLASSES.iter().enumerate() {
            let _ = writeln!(
                out,
                "peregrine_site_requests_total{{site=\"{name}\",code=\"{class}\"}} {}",
                site.status[i]
            );
        }
    }
}

/// Upstream servers, summed over the workers.
fn upstreams(out: &mut String, snaps: &[Snapshot]) {
    let mut all = Vec::new();
    for s in snaps {
        add_upstreams(&mut all, &s.upstreams);
    }
    super::upstream::prometheus(out, &all);
}

pub(super) fn head(out: &mut String, name: &str, kind: &str, help: &str) {
    let _ = writeln!(out, "# HELP {name} {help}");
    let _ = writeln!(out, "# TYPE {name} {kind}");
}

fn histogram(
    out: &mut String,
    name: &str,
    help: &str,
    snaps: &[Snapshot],
    pick: impl Fn(&Snapshot) -> (&Histogram<u64>, u64),
) {
    head(out, name, "histogram", help);
    for s in snaps {
        let (h, sum_us) = pick(s);
        let w = s.worker;
        for le in BUCKETS {
            let le_us = (le * 1e6) as u64;
            let count = if h.is_empty() {
                0
            } else {
                h.count_between(0, le_us)
            };
            let _ = writeln!(out, "{name}_bucket{{worker=\"{w}\",le=\"{le}\"}} {count}");
        }
        let _ = writeln!(
            out,
            "{name}_bucket{{worker=\"{w}\",le=\"+Inf\"}} {}",
            h.len()
        );
        let _ = writeln!(out, "{name}_sum{{worker=\"{w}\"}} {}", sum_us as f64 / 1e6);
        let _ = writeln!(out, "{name}_count{{worker=\"{w}\"}} {}", h.len());
    }
}

fn counter(
    out: &mut String,
    name: &str,
    help: &str,
    snaps: &[Snapshot],
    value: impl Fn(&Snapshot) -> u64,
) {
    head(out, name, "counter", help);
    for s in snaps {
        let _ = writeln!(out, "{name}{{worker=\"{}\"}} {}", s.worker, value(s));
    }
}

fn gauge(
    out: &mut String,
    name: &str,
    help: &str,
    snaps: &[Snapshot],
    value: impl Fn(&Snapshot) -> u64,
) {
    head(out, name, "gauge", help);
    for s in snaps {
        let _ = writeln!(out, "{name}{{worker=\"{}\"}} {}", s.worker, value(s));
    }
}

/// The configuration generation in effect and the reloads so far.
fn config(o: &mut String, reg: &Registry) {
    use std::sync::atomic::Ordering::Acquire;
    let life = &reg.life;
    head(
        o,
        "peregrine_config_generation",
        "gauge",
        "Number of the configuration generation in effect (1 at start, one more per reload that took effect).",
    );
    let _ = writeln!(o, "peregrine_config_generation {}", life.generation());
    head(
        o,
        "peregrine_config_reloads_total",
        "counter",
        "Configuration reloads, by result (error: refused, the configuration in effect stayed).",
    );
    let _ = writeln!(
        o,
        "peregrine_config_reloads_total{{result=\"ok\"}} {}",
        life.reloads_ok.load(Acquire)
    );
    let _ = writeln!(
        o,
        "peregrine_config_reloads_total{{result=\"error\"}} {}",
        life.reloads_error.load(Acquire)
    );
}

/// Renders every worker's snapshot, each series labelled by worker.
pub fn render(reg: &Registry, snaps: &[Snapshot]) -> String {
    let mut o = String::with_capacity(16 * 1024);
    head(
        &mut o,
        "peregrine_build_info",
        "gauge",
        "Build information; the value is always 1.",
    );
    let _ = writeln!(
        o,
        "peregrine_build_info{{version=\"{}\"}} 1",
        env!("CARGO_PKG_VERSION")
    );
    head(
        &mut o,
        "peregrine_uptime_seconds",
        "gauge",
        "Seconds since the server started.",
    );
    let _ = writeln!(
        o,
        "peregrine_uptime_seconds {:.3}",
        reg.started.elapsed().as_secs_f64()
    );
    config(&mut o, reg);

    head(
        &mut o,
        "peregrine_http_requests_total",
        "counter",
        "HTTP responses sent, by status class.",
    );
    for s in snaps {
        for (i, class) in CLASSES.iter().enumerate() {
            let _ = writeln!(
                o,
                "peregrine_http_requests_total{{worker=\"{}\",code=\"{class}\"}} {}",
                s.worker, s.stats.counters.status[i]
            );
        }
    }
    sites(&mut o, snaps);
    upstreams(&mut o, snaps);
    super::cache::prometheus(&mut o, snaps);
    crate::pool::status::prometheus(&crate::pool::status::read(&reg.pools), &mut o);
    let mut guards = super::guards::GuardCounts::default();
    for s in snaps {
        guards.add(&s.stats.guards);
    }
    guards.prometheus(&mut o);
    histogram(
        &mut o,
        "peregrine_http_request_duration_seconds",
        "Time from the first byte of a request to the last byte of its response handed to the kernel.",
        snaps,
        |s| (&s.stats.latency, s.stats.counters.latency_sum_us),
    );
    histogram(
        &mut o,
        "peregrine_http_time_to_first_byte_seconds",
        "Time from the first byte of a request to the first byte of its response handed to the kernel.",
        snaps,
        |s| (&s.stats.ttfb, s.stats.counters.ttfb_sum_us),
    );
    counter(
        &mut o,
        "peregrine_http_received_bytes_total",
        "Bytes received from clients.",
        snaps,
        |s| s.stats.counters.bytes_in,
    );
    counter(
        &mut o,
        "peregrine_http_sent_bytes_total",
        "Bytes handed to the kernel for clients.",
        snaps,
        |s| s.stats.counters.bytes_out,
    );
    head(
        &mut o,
        "peregrine_http_parse_errors_total",
        "counter",
        "Requests refused by the protocol layer, by kind.",
    );
    for s in snaps {
        for (i, kind) in PARSE_ERROR_KINDS.iter().enumerate() {
            let _ = writeln!(
                o,
                "peregrine_http_parse_errors_total{{worker=\"{}\",kind=\"{kind}\"}} {}",
                s.worker, s.stats.counters.parse_errors[i]
            );
        }
    }
    counter(
        &mut o,
        "peregrine_connections_accepted_total",
        "Connections accepted.",
        snaps,
        |s| s.stats.counters.accepted,
    );
    counter(
        &mut o,
        "peregrine_http2_responses_total",
        "Responses sent over HTTP/2 (one per stream answered).",
        snaps,
        |s| s.stats.counters.http2_responses,
    );
    head(
        &mut o,
        "peregrine_connections_closed_total",
        "counter",
        "Connections closed, by reason.",
    );
    for s in snaps {
        for (i, r) in CloseReason::ALL.iter().enumerate() {
            let _ = writeln!(
                o,
                "peregrine_connections_closed_total{{worker=\"{}\",reason=\"{}\"}} {}",
                s.worker,
                r.as_str(),
                s.stats.counters.closed[i]
            );
        }
    }
    gauge(
        &mut o,
        "peregrine_connections_active",
        "Open client connections.",
        snaps,
        |s| s.gauges.active,
    );
    gauge(
        &mut o,
        "peregrine_connections_reading",
        "Connections reading a request.",
        snaps,
        |s| s.gauges.reading,
    );
    gauge(
        &mut o,
        "peregrine_connections_writing",
        "Connections writing a response.",
        snaps,
        |s| s.gauges.writing,
    );
    gauge(
        &mut o,
        "peregrine_connections_waiting",
        "Idle keep-alive connections.",
        snaps,
        |s| s.gauges.waiting,
    );
    gauge(
        &mut o,
        "peregrine_http2_connections",
        "Open client connections speaking HTTP/2.",
        snaps,
        |s| s.gauges.http2,
    );
    gauge(
        &mut o,
        "peregrine_http2_streams",
        "Streams open on HTTP/2 connections.",
        snaps,
        |s| s.gauges.http2_streams,
    );
    o
}

#[cfg(test)]
mod tests {
    use super::super::*;
    use super::*;

    #[test]
    fn histogram_is_cumulative_and_ends_in_inf() {
        let reg = Registry::new(1, None);
        let mut s = reg.snapshots().remove(0);
        s.stats.latency(std::time::Duration::from_micros(80));
        s.stats.latency(std::time::Duration::from_millis(3));
        s.stats.status(200);
        let text = render(&reg, &[s]);
        assert!(
            text.contains(
                "peregrine_http_request_duration_seconds_bucket{worker=\"0\",le=\"0.0001\"} 1\n"
            ),
            "{text}"
        );
        assert!(text.contains(
            "peregrine_http_request_duration_seconds_bucket{worker=\"0\",le=\"0.005\"} 2\n"
        ));
        assert!(text.contains(
            "peregrine_http_request_duration_seconds_bucket{worker=\"0\",le=\"+Inf\"} 2\n"
        ));
        assert!(text.contains("peregrine_http_request_duration_seconds_count{worker=\"0\"} 2\n"));
        assert!(
            text.contains("peregrine_http_request_duration_seconds_sum{worker=\"0\"} 0.00308\n")
        );
        assert!(text.contains("peregrine_http_requests_total{worker=\"0\",code=\"2xx\"} 1\n"));
        // No sites, no site series.
        assert!(!text.contains("peregrine_site_requests_total"));
    }

    #[test]
    fn sites_are_summed_over_workers_with_escaped_names() {
        let reg = Registry::new(2, None);
        let mut snaps = reg.snapshots();
        snaps[0].stats.sites = vec![SiteCounts::new("shop"), SiteCounts::new("a\"b\\c")];
        snaps[0].stats.sites[0].status = [0, 2, 0, 1, 0];
        snaps[1].stats.sites = vec![SiteCounts::new("shop")];
        snaps[1].stats.sites[0].status = [0, 3, 0, 0, 0];
        let text = render(&reg, &snaps);
        assert!(text.contains("# TYPE peregrine_site_requests_total counter\n"));
        assert!(
            text.contains("peregrine_site_requests_total{site=\"shop\",code=\"2xx\"} 5\n"),
            "{text}"
        );
        assert!(text.contains("peregrine_site_requests_total{site=\"shop\",code=\"4xx\"} 1\n"));
        assert!(
            text.contains("peregrine_site_requests_total{site=\"a\\\"b\\\\c\",code=\"5xx\"} 0\n")
        );
    }
}
