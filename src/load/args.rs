//! Command-line options of `peregrine load` and their checks.
#![forbid(unsafe_code)]

use std::path::PathBuf;
use std::time::Duration;

use super::request::{self, Header};
use super::url::{self, Target};

/// Generate HTTP/1.1 load: open loop at a fixed rate (`--rate`), or closed
/// loop like wrk without it.
#[derive(clap::Args, Debug, Clone)]
pub struct LoadArgs {
    /// Target: `http://host[:port][/path][?query]` (IPv4, `[IPv6]` or a name).
    #[arg(value_parser = url::parse)]
    pub url: Target,
    /// Requests per second, all connections together (open loop); without
    /// it, a closed loop.
    ///
    /// Each request has an intended send time on a constant schedule and its
    /// latency is measured from that time, so a busy connection or a slow
    /// server makes it late and the lateness counts. Without --rate every
    /// connection sends its next request as soon as the previous response
    /// arrives, and latency is measured from the actual send.
    #[arg(long, short = 'R', value_name = "R", value_parser = parse_rate, allow_negative_numbers = true)]
    pub rate: Option<f64>,
    /// Connections to keep open, divided among the threads.
    #[arg(long, short, value_name = "C", default_value_t = 10, value_parser = clap::value_parser!(u32).range(1..=1_000_000))]
    pub connections: u32,
    /// How long to send: 10s, 500ms, 2m, or bare seconds.
    #[arg(long, short, value_name = "D", default_value = "10s", value_parser = parse_duration)]
    pub duration: Duration,
    /// Event loops, each pinned to one of the CPUs the process may use.
    #[arg(long, short, value_name = "T", default_value_t = 1, value_parser = clap::value_parser!(u16).range(1..=1024))]
    pub threads: u16,
    /// Requests in flight per connection (HTTP/1.1 pipelining).
    ///
    /// Closed loop: N requests are written at once, and the next N once all N
    /// are answered. Open loop: a request is never written before its
    /// intended time; a connection writes every due request it has room for
    /// (up to N unanswered) in one write.
    #[arg(long, value_name = "N", default_value_t = 1, value_parser = clap::value_parser!(u32).range(1..=1024))]
    pub pipeline: u32,
    /// Request method.
    #[arg(long, short, value_name = "M", default_value = "GET", value_parser = request::parse_method)]
    pub method: String,
    /// Request body.
    #[arg(long, value_name = "STRING", conflicts_with = "body_file")]
    pub body: Option<String>,
    /// Request body, read from a file.
    #[arg(long, value_name = "FILE")]
    pub body_file: Option<PathBuf>,
    /// Extra request header, 'Name: value' (repeatable).
    #[arg(long = "header", short = 'H', value_name = "NAME: VALUE", value_parser = request::parse_header)]
    pub headers: Vec<Header>,
    /// A request unanswered this long counts as a timeout; its connection is
    /// closed and opened again.
    #[arg(long, value_name = "DUR", default_value = "10s", value_parser = parse_duration)]
    pub timeout: Duration,
    /// Stop after this many requests in all (or at --duration, if sooner).
    #[arg(long, short = 'n', value_name = "N", value_parser = clap::value_parser!(u64).range(1..))]
    pub requests: Option<u64>,
    /// Write the latency percentiles in HdrHistogram's .hgrm text form (ms).
    #[arg(long, value_name = "FILE")]
    pub hgrm: Option<PathBuf>,
    /// Write the latency histogram, V2-compressed and base64-encoded (µs).
    #[arg(long, value_name = "FILE")]
    pub histogram: Option<PathBuf>,
}

/// Validated options.
#[derive(Clone, Debug)]
pub struct Options {
    /// The target.
    pub target: Target,
    /// Open-loop rate, or `None` for a closed loop.
    pub rate: Option<f64>,
    /// Total connections.
    pub connections: usize,
    /// Threads (no more than connections).
    pub threads: usize,
    /// Pipeline depth.
    pub pipeline: usize,
    /// Sending window.
    pub duration: Duration,
    /// Per-request timeout.
    pub timeout: Duration,
    /// Request budget.
    pub requests: Option<u64>,
    /// The encoded request.
    pub request: Vec<u8>,
    /// Whether the method is HEAD (responses have no body).
    pub head: bool,
    /// Output files.
    pub hgrm: Option<PathBuf>,
    /// V2 histogram output file.
    pub histogram: Option<PathBuf>,
}

/// Parses `10s`, `500ms`, `2m`, `1h` or bare (possibly fractional) seconds;
/// zero is refused.
pub fn parse_duration(s: &str) -> Result<Duration, String> {
    let t = s.trim();
    let split = t
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(t.len());
    let (num, unit) = t.split_at(split);
    let scale = match unit {
        "" | "s" => 1.0,
        "ms" => 1e-3,
        "us" | "µs" => 1e-6,
        "m" => 60.0,
        "h" => 3600.0,
        _ => {
            return Err(format!(
                "{s:?} is not a duration (use e.g. 10s, 500ms, 2m or bare seconds)"
            ));
        }
    };
    let n: f64 = num.parse().map_err(|_| {
        format!("{s:?} is not a duration (use e.g. 10s, 500ms, 2m or bare seconds)")
    })?;
    let secs = n * scale;
    if !(secs > 0.0 && secs < 1e9) {
        return Err(format!("{s:?}: must be greater than zero"));
    }
    Ok(Duration::from_secs_f64(secs))
}

/// Parses a request rate: a positive number.
pub fn parse_rate(s: &str) -> Result<f64, String> {
    match s.trim().parse::<f64>() {
        Ok(r) if r.is_finite() && r > 0.0 && r <= 1e9 => Ok(r),
        Ok(_) => Err(format!(
            "{s:?}: the rate must be greater than 0 requests per second (and at most 1e9)"
        )),
        Err(_) => Err(format!("{s:?} is not a number of requests per second")),
    }
}

impl LoadArgs {
    /// Checks what clap cannot and reads the body file. The error is a
    /// one-line message for a usage error (exit code 2).
    pub fn validate(self) -> Result<Options, String> {
        let connections = self.connections as usize;
        let threads = usize::from(self.threads);
        if threads > connections {
            return Err(format!(
                "--threads ({threads}) must not exceed --connections ({connections}): each thread needs a connection"
            ));
        }
        let body = match (&self.body, &self.body_file) {
            (Some(b), _) => b.as_bytes().to_vec(),
            (None, Some(p)) => std::fs::read(p)
                .map_err(|e| format!("--body-file {}: cannot read: {e}", p.display()))?,
            (None, None) => Vec::new(),
        };
        let request = request::encode(&self.method, &self.url, &self.headers, &body)?;
        Ok(Options {
            head: self.method.eq_ignore_ascii_case("HEAD"),
            target: self.url,
            rate: self.rate,
            connections,
            threads,
            pipeline: self.pipeline as usize,
            duration: self.duration,
            timeout: self.timeout,
            requests: self.requests,
            request,
            hgrm: self.hgrm,
            histogram: self.histogram,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[derive(Parser, Debug)]
    struct Cli {
        #[command(flatten)]
        args: LoadArgs,
    }

    fn parse(args: &[&str]) -> Result<Options, String> {
        let cli = Cli::try_parse_from(std::iter::once("load").chain(args.iter().copied()))
            .map_err(|e| e.to_string())?;
        cli.args.validate()
    }

    #[test]
    fn durations() {
        assert_eq!(parse_duration("10s"), Ok(Duration::from_secs(10)));
        assert_eq!(parse_duration("500ms"), Ok(Duration::from_millis(500)));
        assert_eq!(parse_duration("2m"), Ok(Duration::from_secs(120)));
        assert_eq!(parse_duration("1.5"), Ok(Duration::from_millis(1500)));
        for bad in ["0", "0s", "x", "5 s", "-1", "10d", ""] {
            assert!(parse_duration(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn rates() {
        assert_eq!(parse_rate("2000"), Ok(2000.0));
        assert_eq!(parse_rate("0.5"), Ok(0.5));
        for bad in ["0", "-5", "inf", "NaN", "fast"] {
            assert!(parse_rate(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn options() {
        let o = parse(&[
            "http://127.0.0.1:1/x",
            "--rate",
            "100",
            "-c",
            "4",
            "-t",
            "2",
            "-H",
            "A: b",
            "--body",
            "hi",
            "-m",
            "POST",
        ])
        .unwrap();
        assert_eq!(o.rate, Some(100.0));
        assert_eq!((o.connections, o.threads, o.pipeline), (4, 2, 1));
        assert_eq!(o.duration, Duration::from_secs(10));
        assert!(o.request.ends_with(b"A: b\r\nContent-Length: 2\r\n\r\nhi"));
        let e = parse(&["http://h/", "-c", "2", "-t", "3"]).unwrap_err();
        assert!(
            e.contains("--threads (3) must not exceed --connections (2)"),
            "{e}"
        );
        let e = parse(&["http://h/", "--body", "a", "--body-file", "f"]).unwrap_err();
        assert!(e.contains("cannot be used with"), "{e}");
        let e = parse(&["http://h/", "--body-file", "/nonexistent/b"]).unwrap_err();
        assert!(e.contains("--body-file /nonexistent/b: cannot read"), "{e}");
        for bad in [
            &["https://h/"][..],
            &["http://h/", "--rate", "0"],
            &["http://h/", "-c", "0"],
            &["http://h/", "--pipeline", "0"],
            &["http://h/", "-d", "0s"],
            &["http://h/", "-H", "bad"],
            &["http://h/", "-n", "0"],
        ] {
            assert!(parse(bad).is_err(), "{bad:?}");
        }
    }
}
