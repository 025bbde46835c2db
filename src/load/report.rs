//! Text output: the per-second progress line and the final summary.
#![forbid(unsafe_code)]

use std::fmt::Write;

use hdrhistogram::Histogram;

use super::stats::Stats;

/// The percentiles in the summary: label and quantile.
pub const PERCENTILES: [(&str, f64); 6] = [
    ("p50", 0.50),
    ("p75", 0.75),
    ("p90", 0.90),
    ("p99", 0.99),
    ("p99.9", 0.999),
    ("p99.99", 0.9999),
];

/// Microseconds as milliseconds with three decimals.
pub fn ms(us: u64) -> String {
    format!("{}.{:03}", us / 1000, us % 1000)
}

/// One progress line: second `second` (0-based) done, with `rate`
/// responses a second in it, `errors` so far, and that second's latencies.
pub fn progress_line(second: u64, rate: f64, errors: u64, h: &Histogram<u64>) -> String {
    let p99 = if h.is_empty() {
        "-".to_string()
    } else {
        format!("{} ms", ms(h.value_at_quantile(0.99)))
    };
    format!(
        "[{:>4}s] {rate:>9.0} req/s, {errors} error{} so far, p99 {p99}",
        second + 1,
        if errors == 1 { "" } else { "s" }
    )
}

/// How the run was set up, for the summary's first lines.
#[derive(Clone, Debug)]
pub struct Setup {
    /// The URL.
    pub url: String,
    /// The address it resolved to.
    pub addr: std::net::SocketAddr,
    /// Open-loop rate, or `None` for a closed loop.
    pub rate: Option<f64>,
    /// Connections, threads and pipeline depth.
    pub connections: usize,
    /// Threads.
    pub threads: usize,
    /// Requests per connection write.
    pub pipeline: usize,
}

/// The final summary.
pub fn summary(setup: &Setup, s: &Stats) -> String {
    let mut o = String::new();
    let mode = match setup.rate {
        Some(r) => format!("open loop at {} req/s", trim_float(r)),
        None => "closed loop".to_string(),
    };
    let plural = |n: usize, w: &str| format!("{n} {w}{}", if n == 1 { "" } else { "s" });
    let _ = writeln!(o, "{} ({mode})", setup.url);
    let _ = writeln!(
        o,
        "  {}, {}, {}, pipeline {}",
        setup.addr,
        plural(setup.connections, "connection"),
        plural(setup.threads, "thread"),
        setup.pipeline
    );
    let secs = s.elapsed_ns as f64 / 1e9;
    let rate = if secs > 0.0 {
        s.completed as f64 / secs
    } else {
        0.0
    };
    let _ = writeln!(
        o,
        "requests:    {} completed ({} 2xx), {} unsent",
        s.completed, s.ok, s.unsent
    );
    let places = if secs < 1.0 { 6 } else { 3 };
    let _ = writeln!(o, "duration:    {secs:.places$} s");
    let _ = writeln!(o, "throughput:  {rate:.1} req/s");
    let _ = writeln!(
        o,
        "received:    {} bytes ({} body bytes), {:.2} MB/s",
        s.bytes,
        s.body_bytes,
        if secs > 0.0 {
            s.bytes as f64 / secs / 1e6
        } else {
            0.0
        }
    );
    let origin = if setup.rate.is_some() {
        "from each request's intended send time"
    } else {
        "from each request's send"
    };
    let _ = writeln!(o, "latency (ms, {origin}):");
    let h = &s.latency;
    if h.is_empty() {
        let _ = writeln!(o, "  (no responses)");
    } else {
        for (label, q) in PERCENTILES {
            let _ = writeln!(o, "  {label:<8}{:>12}", ms(h.value_at_quantile(q)));
        }
        let _ = writeln!(o, "  {:<8}{:>12}", "max", ms(h.max()));
        let _ = writeln!(
            o,
            "  {:<8}{:>12}  (stdev {:.3})",
            "mean",
            format!("{:.3}", h.mean() / 1000.0),
            h.stdev() / 1000.0
        );
    }
    let e = &s.errors;
    let _ = writeln!(
        o,
        "errors:      {} (connect {}, read {}, write {}, timeout {}, status 3xx {}, status 4xx {}, status 5xx {}, status other {}, parse {})",
        e.total(),
        e.connect,
        e.read,
        e.write,
        e.timeout,
        e.status_3xx,
        e.status_4xx,
        e.status_5xx,
        e.status_other,
        e.parse
    );
    if s.unsent > 0 {
        let _ = writeln!(
            o,
            "note:        {} scheduled requests were still waiting for a free connection at the end; \
             the target rate was not sustained (add connections or lower the rate)",
            s.unsent
        );
    }
    o
}

fn trim_float(v: f64) -> String {
    if v.fract() == 0.0 && v.abs() < 1e15 {
        format!("{}", v as i64)
    } else {
        format!("{v}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::load::stats::ErrorKind;

    #[test]
    fn millis() {
        assert_eq!(ms(0), "0.000");
        assert_eq!(ms(1_234_567), "1234.567");
        assert_eq!(ms(999), "0.999");
    }

    #[test]
    fn progress() {
        let mut h = crate::load::stats::histogram();
        for v in 1..=100 {
            h.record(v * 10).unwrap();
        }
        assert_eq!(
            progress_line(0, 2000.0, 1, &h),
            "[   1s]      2000 req/s, 1 error so far, p99 0.990 ms"
        );
        let empty = crate::load::stats::histogram();
        assert_eq!(
            progress_line(9, 0.0, 3, &empty),
            "[  10s]         0 req/s, 3 errors so far, p99 -"
        );
    }

    #[test]
    fn summary_lines() {
        let setup = Setup {
            url: "http://127.0.0.1:8080/".into(),
            addr: "127.0.0.1:8080".parse().unwrap(),
            rate: Some(2000.0),
            connections: 8,
            threads: 1,
            pipeline: 1,
        };
        let mut s = Stats::default();
        s.response(1_000_000, 200, 13);
        s.response(2_000_000, 500, 13);
        s.errors.add(ErrorKind::Timeout, 3);
        s.bytes = 300;
        s.unsent = 4;
        s.elapsed_ns = 2_000_000_000;
        let t = summary(&setup, &s);
        assert!(t.starts_with("http://127.0.0.1:8080/ (open loop at 2000 req/s)\n  127.0.0.1:8080, 8 connections, 1 thread, pipeline 1\n"), "{t}");
        assert!(
            t.contains("requests:    2 completed (1 2xx), 4 unsent\n"),
            "{t}"
        );
        assert!(
            t.contains("duration:    2.000 s\nthroughput:  1.0 req/s\n"),
            "{t}"
        );
        assert!(t.contains("received:    300 bytes (26 body bytes)"), "{t}");
        assert!(t.contains("  p50            1.000\n"), "{t}");
        assert!(t.contains("  max            2.000\n"), "{t}");
        assert!(t.contains("errors:      4 (connect 0, read 0, write 0, timeout 3, status 3xx 0, status 4xx 0, status 5xx 1, status other 0, parse 0)"), "{t}");
        assert!(t.contains("note:        4 scheduled"), "{t}");
    }
}
