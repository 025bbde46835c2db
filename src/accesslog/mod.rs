//! Access log lines in nginx `combined` format or JSON lines, each with the
//! request latency in microseconds as a final extra field. Formatting only:
//! the worker buffers lines and writes them through its ring.
#![forbid(unsafe_code)]

mod time;

use std::io::Write;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use crate::exchange::RequestHead;
use crate::http::Version;
use crate::http::conn::Served;

pub use time::{clf_time, iso_time};

/// Line format.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Format {
    /// nginx `combined` plus the latency in µs:
    /// `addr - - [time] "request" status bytes "referer" "user-agent" latency_us`
    Combined,
    /// One JSON object per line.
    Json,
}

/// Where and how to log.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Config {
    /// The file to append to; `None` means standard output.
    pub path: Option<PathBuf>,
    /// The line format.
    pub format: Format,
}

/// A line started when the response was produced; the body bytes sent and
/// the latency are added when the response is finished.
#[derive(Debug, Default)]
pub struct Pending {
    line: Vec<u8>,
    /// Where in `line` the body byte count goes.
    bytes_at: usize,
    /// Why the upstream cut the body short, when it did (JSON lines only;
    /// a failure before the head is in the line already).
    upstream_error: Option<&'static str>,
}

impl Pending {
    /// The upstream cut the body short for `reason`.
    pub fn fail(&mut self, reason: &'static str) {
        self.upstream_error = Some(reason);
    }
}

/// Formats lines for one worker.
#[derive(Debug)]
pub struct Formatter {
    format: Format,
    secs: u64,
    clf: String,
    iso: String,
}

impl Formatter {
    /// A formatter for `format`.
    pub fn new(format: Format) -> Formatter {
        Formatter {
            format,
            secs: u64::MAX,
            clf: String::new(),
            iso: String::new(),
        }
    }

    /// Starts the line for a response at wall-clock second `unix_secs`; the
    /// latency is added by [`Formatter::finish`] once the response is sent.
    pub fn start(&mut self, ev: &Served<'_>, peer: Option<SocketAddr>, unix_secs: u64) -> Pending {
        let mut line = Vec::with_capacity(256);
        let bytes_at = self.head(ev, peer, unix_secs, None, &mut line);
        Pending {
            line,
            bytes_at,
            upstream_error: None,
        }
    }

    /// Appends a whole line for a response whose latency is known.
    pub fn line(
        &mut self,
        ev: &Served<'_>,
        peer: Option<SocketAddr>,
        unix_secs: u64,
        latency: Duration,
        out: &mut Vec<u8>,
    ) {
        self.head(ev, peer, unix_secs, Some(ev.body_len), out);
        self.tail(latency, out);
    }

    /// Everything up to the latency, with `bytes` as the body size (none:
    /// left out, to be filled in later). Returns where the size goes.
    fn head(
        &mut self,
        ev: &Served<'_>,
        peer: Option<SocketAddr>,
        unix_secs: u64,
        bytes: Option<u64>,
        b: &mut Vec<u8>,
    ) -> usize {
        let put_bytes = |b: &mut Vec<u8>| {
            let at = b.len();
            if let Some(n) = bytes {
                b.extend_from_slice(itoa::Buffer::new().format(n).as_bytes());
            }
            at
        };
        let bytes_at;
        if unix_secs != self.secs {
            self.secs = unix_secs;
            self.clf = clf_time(unix_secs);
            self.iso = iso_time(unix_secs);
        }
        // The client's address: the one a trusted proxy named, else the peer's.
        let client = ev.req.and_then(|r| r.client).or(peer.map(|p| p.ip()));
        let addr = |b: &mut Vec<u8>| match client {
            Some(ip) => {
                let _ = write!(b, "{ip}");
            }
            None => b.push(b'-'),
        };
        match self.format {
            Format::Combined => {
                addr(b);
                b.extend_from_slice(b" - - [");
                b.extend_from_slice(self.clf.as_bytes());
                b.extend_from_slice(b"] \"");
                match ev.req {
                    Some(r) => request_line(b, r),
                    None => b.push(b'-'),
                }
                b.extend_from_slice(b"\" ");
                b.extend_from_slice(itoa::Buffer::new().format(ev.status).as_bytes());
                b.push(b' ');
                bytes_at = put_bytes(b);
                b.extend_from_slice(b" \"");
                clf_escape(b, ev.req.and_then(|r| r.header("referer")).unwrap_or(b"-"));
                b.extend_from_slice(b"\" \"");
                clf_escape(
                    b,
                    ev.req.and_then(|r| r.header("user-agent")).unwrap_or(b"-"),
                );
                b.extend_from_slice(b"\" ");
                if let Some(r) = ev.refused {
                    // One more quoted field, only on refused lines.
                    b.push(b'"');
                    if r.dry_run {
                        b.extend_from_slice(b"dry_run ");
                    }
                    b.extend_from_slice(r.code().as_bytes());
                    b.push(b' ');
                    b.extend_from_slice(r.kind.name().as_bytes());
                    b.extend_from_slice(b"\" ");
                }
            }
            Format::Json => {
                b.extend_from_slice(b"{\"time\":\"");
                b.extend_from_slice(self.iso.as_bytes());
                b.extend_from_slice(b"\",\"remote_addr\":\"");
                addr(b);
                b.extend_from_slice(b"\"");
                if let Some(r) = ev.req {
                    field(b, "method", r.method.as_str().as_bytes());
                    field(b, "target", r.target().as_bytes());
                    field(b, "protocol", version(r.version).as_bytes());
                    if let Some(h) = r.host() {
                        field(b, "host", h.as_bytes());
                    }
                }
                b.extend_from_slice(b",\"status\":");
                b.extend_from_slice(itoa::Buffer::new().format(ev.status).as_bytes());
                b.extend_from_slice(b",\"body_bytes\":");
                bytes_at = put_bytes(b);
                if let Some(r) = ev.req {
                    if let Some(v) = r.header("referer") {
                        field(b, "referer", v);
                    }
                    if let Some(v) = r.header("user-agent") {
                        field(b, "user_agent", v);
                    }
                }
                if let Some(u) = ev.upstream {
                    if let Some(s) = &u.server {
                        field(b, "upstream", s.as_bytes());
                    }
                    if let Some(f) = u.failure {
                        field(b, "upstream_error", f.as_bytes());
                    }
                }
                if let Some(e) = ev.error {
                    field(b, "error", e.to_string().as_bytes());
                }
                if let Some(r) = ev.refused {
                    field(b, "refused", r.code().as_bytes());
                    field(b, "refused_by", r.kind.name().as_bytes());
                    if r.dry_run {
                        b.extend_from_slice(b",\"dry_run\":true");
                    }
                }
                b.extend_from_slice(b",\"latency_us\":");
            }
        }
        bytes_at
    }

    fn tail(&self, latency: Duration, out: &mut Vec<u8>) {
        out.extend_from_slice(
            itoa::Buffer::new()
                .format(latency.as_micros() as u64)
                .as_bytes(),
        );
        if self.format == Format::Json {
            out.push(b'}');
        }
        out.push(b'\n');
    }

    /// Finishes a line with the body bytes sent and the latency, and
    /// appends it to `out`.
    pub fn finish(&self, p: Pending, bytes: u64, latency: Duration, out: &mut Vec<u8>) {
        let (before, after) = p.line.split_at(p.bytes_at.min(p.line.len()));
        out.extend_from_slice(before);
        out.extend_from_slice(itoa::Buffer::new().format(bytes).as_bytes());
        out.extend_from_slice(after);
        out.extend_from_slice(
            itoa::Buffer::new()
                .format(latency.as_micros() as u64)
                .as_bytes(),
        );
        if self.format == Format::Json {
            if let Some(e) = p.upstream_error {
                out.extend_from_slice(b",\"upstream_error\":\"");
                out.extend_from_slice(e.as_bytes());
                out.push(b'"');
            }
            out.push(b'}');
        }
        out.push(b'\n');
    }
}

fn version(v: Version) -> &'static str {
    match v {
        Version::Http10 => "HTTP/1.0",
        Version::Http11 => "HTTP/1.1",
        Version::Http2 => "HTTP/2.0",
    }
}

fn request_line(b: &mut Vec<u8>, r: &RequestHead) {
    b.extend_from_slice(r.method.as_str().as_bytes());
    b.push(b' ');
    clf_escape(b, r.target().as_bytes());
    b.push(b' ');
    b.extend_from_slice(version(r.version).as_bytes());
}

/// nginx's escaping for log variables: `"`, `\`, and bytes outside printable
/// ASCII become `\xHH`.
fn clf_escape(b: &mut Vec<u8>, v: &[u8]) {
    const HEX: &[u8; 16] = b"0123456789ABCDEF";
    for &c in v {
        if c == b'"' || c == b'\\' || !(0x20..0x7f).contains(&c) {
            b.extend_from_slice(&[
                b'\\',
                b'x',
                HEX[usize::from(c >> 4)],
                HEX[usize::from(c & 15)],
            ]);
        } else {
            b.push(c);
        }
    }
}

/// Appends `,"name":"value"` with JSON string escaping (bytes that are not
/// UTF-8 are replaced).
fn field(b: &mut Vec<u8>, name: &str, value: &[u8]) {
    b.extend_from_slice(b",\"");
    b.extend_from_slice(name.as_bytes());
    b.extend_from_slice(b"\":\"");
    for ch in String::from_utf8_lossy(value).chars() {
        match ch {
            '"' => b.extend_from_slice(b"\\\""),
            '\\' => b.extend_from_slice(b"\\\\"),
            c if (c as u32) < 0x20 => {
                b.extend_from_slice(format!("\\u{:04x}", c as u32).as_bytes())
            }
            c => {
                let mut tmp = [0u8; 4];
                b.extend_from_slice(c.encode_utf8(&mut tmp).as_bytes());
            }
        }
    }
    b.push(b'"');
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::http::parse::{header_buf, parse_head};
    use crate::http::{Error, Limits};
    use std::time::Instant;

    fn line(format: Format, raw: &[u8], status: u16) -> String {
        let limits = Limits::default();
        let mut storage = header_buf();
        let head = parse_head(raw, &mut storage, &limits).unwrap().unwrap();
        let req = head.req.to_head();
        let ev = Served {
            req: Some(&req),
            peer: None,
            status,
            body_len: 13,
            started: Instant::now(),
            error: None,
            file: false,
            stream: false,
            site: None,
            upstream: None,
            refused: None,
        };
        let mut f = Formatter::new(format);
        let p = f.start(&ev, Some("10.1.2.3:5555".parse().unwrap()), 784111777);
        let mut out = Vec::new();
        f.finish(p, 13, Duration::from_micros(250), &mut out);
        String::from_utf8(out).unwrap()
    }

    /// A streamed or file body logs the bytes actually sent, which are known
    /// only at the end (a body cut short logs what went out).
    #[test]
    fn later_bodies_log_the_bytes_sent() {
        let limits = Limits::default();
        let mut storage = header_buf();
        let raw = b"GET /stream HTTP/1.1\r\nHost: x\r\n\r\n";
        let req = parse_head(raw, &mut storage, &limits)
            .unwrap()
            .unwrap()
            .req
            .to_head();
        let ev = Served {
            req: Some(&req),
            peer: None,
            status: 200,
            body_len: 0,
            started: Instant::now(),
            error: None,
            file: false,
            stream: true,
            site: None,
            upstream: None,
            refused: None,
        };
        for (format, want) in [
            (Format::Combined, " 200 4096 \""),
            (Format::Json, "\"body_bytes\":4096,"),
        ] {
            let mut f = Formatter::new(format);
            let p = f.start(&ev, None, 0);
            let mut out = Vec::new();
            f.finish(p, 4096, Duration::from_micros(9), &mut out);
            let l = String::from_utf8(out).unwrap();
            assert!(l.contains(want), "{l}");
        }
    }

    #[test]
    fn combined() {
        let l = line(Format::Combined, b"GET /a?b=\"c\" HTTP/1.1\r\nHost: x\r\nUser-Agent: curl/8\r\nReferer: http://r/\r\n\r\n", 200);
        assert_eq!(
            l,
            "10.1.2.3 - - [06/Nov/1994:08:49:37 +0000] \"GET /a?b=\\x22c\\x22 HTTP/1.1\" 200 13 \"http://r/\" \"curl/8\" 250\n"
        );
    }

    #[test]
    fn json() {
        let l = line(
            Format::Json,
            b"POST /e HTTP/1.0\r\nUser-Agent: a\"b\r\n\r\n",
            404,
        );
        let v: serde_json::Value = serde_json::from_str(l.trim_end()).unwrap();
        assert_eq!(v["time"], "1994-11-06T08:49:37Z");
        assert_eq!(v["remote_addr"], "10.1.2.3");
        assert_eq!(v["method"], "POST");
        assert_eq!(v["protocol"], "HTTP/1.0");
        assert_eq!(v["status"], 404);
        assert_eq!(v["user_agent"], "a\"b");
        assert_eq!(v["latency_us"], 250);
    }

    #[test]
    fn refusal_without_request() {
        let ev = Served {
            req: None,
            peer: None,
            status: 400,
            body_len: 20,
            started: Instant::now(),
            error: Some(Error::MissingHost),
            file: false,
            stream: false,
            site: None,
            upstream: None,
            refused: None,
        };
        let mut f = Formatter::new(Format::Json);
        let p = f.start(&ev, None, 0);
        let mut out = Vec::new();
        f.finish(p, 20, Duration::from_micros(3), &mut out);
        let v: serde_json::Value = serde_json::from_slice(&out[..out.len() - 1]).unwrap();
        assert_eq!(v["error"], "missing host header");
        let mut f = Formatter::new(Format::Combined);
        let p = f.start(&ev, None, 0);
        out.clear();
        f.finish(p, 20, Duration::from_micros(3), &mut out);
        assert_eq!(
            String::from_utf8(out).unwrap(),
            "- - - [01/Jan/1970:00:00:00 +0000] \"-\" 400 20 \"-\" \"-\" 3\n"
        );
    }

    #[test]
    fn json_names_the_upstream_and_its_failure() {
        let limits = Limits::default();
        let mut storage = header_buf();
        let raw = b"GET /api HTTP/1.1\r\nHost: x\r\n\r\n";
        let head = parse_head(raw, &mut storage, &limits).unwrap().unwrap();
        let req = head.req.to_head();
        let note = crate::exchange::UpstreamNote {
            server: Some("10.0.0.7:9001".into()),
            failure: Some("head_timeout"),
        };
        let ev = Served {
            req: Some(&req),
            peer: None,
            status: 504,
            body_len: 0,
            started: Instant::now(),
            error: None,
            file: false,
            stream: false,
            site: None,
            upstream: Some(&note),
            refused: None,
        };
        let mut f = Formatter::new(Format::Json);
        let p = f.start(&ev, None, 784111777);
        let mut out = Vec::new();
        f.finish(p, 0, Duration::from_micros(250), &mut out);
        let v: serde_json::Value = serde_json::from_slice(out.trim_ascii_end()).unwrap();
        assert_eq!(v["upstream"], "10.0.0.7:9001");
        assert_eq!(v["upstream_error"], "head_timeout");
        assert_eq!(v["status"], 504);
    }

    /// A refused request's line says what refused it, with IIS's
    /// sub-status; a dry run says so.
    #[test]
    fn refused_lines_carry_the_sub_status() {
        let req = RequestHead::new(crate::http::Method::Get, "/a.bak");
        let refused = crate::guard::Refused {
            kind: crate::guard::Kind::Filter(crate::filter::Reason::Extension),
            status: 404,
            sub: 7,
            zone: None,
            dry_run: false,
        };
        let mut ev = Served {
            req: Some(&req),
            peer: Some("192.0.2.1:4000".parse().unwrap()),
            status: 404,
            body_len: 0,
            started: Instant::now(),
            error: None,
            file: false,
            stream: false,
            site: None,
            upstream: None,
            refused: Some(&refused),
        };
        let mut out = Vec::new();
        Formatter::new(Format::Json).line(
            &ev,
            ev.peer,
            784111777,
            Duration::from_micros(9),
            &mut out,
        );
        let v: serde_json::Value = serde_json::from_slice(out.trim_ascii_end()).unwrap();
        assert_eq!(v["refused"], "404.7");
        assert_eq!(v["refused_by"], "extension");
        assert_eq!(v["dry_run"], serde_json::Value::Null);
        let dry = crate::guard::Refused {
            kind: crate::guard::Kind::Req,
            status: 429,
            sub: 0,
            zone: Some(0),
            dry_run: true,
        };
        ev.refused = Some(&dry);
        ev.status = 200;
        let mut out = Vec::new();
        Formatter::new(Format::Combined).line(
            &ev,
            ev.peer,
            784111777,
            Duration::from_micros(9),
            &mut out,
        );
        let line = String::from_utf8(out).unwrap();
        assert!(
            line.ends_with("\"-\" \"-\" \"dry_run 429 limit_req\" 9\n"),
            "{line}"
        );
    }
}
