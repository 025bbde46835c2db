//! Access log lines (`peregrine::accesslog::Formatter`) for requests parsed
//! from arbitrary bytes, in both formats.
//!
//! Properties:
//! - it never panics;
//! - a `combined` line is one line of printable ASCII with exactly the six
//!   quotes of its three quoted fields (escaping leaves none inside them),
//!   and it carries the request target escaped nginx-style;
//! - a JSON line is one valid JSON object whose fields hold the request's
//!   method, target, host, referer and user agent (lossily decoded).
#![no_main]

use std::time::{Duration, Instant};

use libfuzzer_sys::fuzz_target;
use peregrine::accesslog::{Format, Formatter};
use peregrine::http::Limits;
use peregrine::http::conn::Served;
use peregrine::http::parse::{header_buf, parse_head};

fn clf_escape(v: &[u8]) -> String {
    let mut s = String::new();
    for &c in v {
        if c == b'"' || c == b'\\' || !(0x20..0x7f).contains(&c) {
            s.push_str(&format!("\\x{c:02X}"));
        } else {
            s.push(char::from(c));
        }
    }
    s
}

fuzz_target!(|data: &[u8]| {
    let mut storage = header_buf();
    let Ok(Some(head)) = parse_head(data, &mut storage, &Limits::default()) else {
        return;
    };
    let req = head.req.to_head();
    let peer = Some("[2001:db8::1]:5555".parse().unwrap());
    let ev = Served {
        req: Some(&req),
        peer,
        status: 200,
        body_len: data.len() as u64,
        started: Instant::now(),
        error: None,
        file: false,
        stream: false,
        site: None,
        upstream: None,
        refused: None,
    };
    let unix = u64::from(data[0]) << 24;

    let mut out = Vec::new();
    Formatter::new(Format::Combined).line(&ev, peer, unix, Duration::from_micros(7), &mut out);
    let line = out.strip_suffix(b"\n").expect("a line");
    assert!(
        line.iter().all(|b| (0x20..0x7f).contains(b)),
        "{:?}",
        String::from_utf8_lossy(line)
    );
    assert_eq!(line.iter().filter(|b| **b == b'"').count(), 6);
    let line = std::str::from_utf8(line).unwrap();
    let request = format!(
        "\"{} {} ",
        req.method.as_str(),
        clf_escape(req.target().as_bytes())
    );
    assert!(line.contains(&request), "{line:?}");

    let mut out = Vec::new();
    Formatter::new(Format::Json).line(&ev, peer, unix, Duration::from_micros(7), &mut out);
    let line = out.strip_suffix(b"\n").expect("a line");
    assert!(!line.contains(&b'\n'));
    let v: serde_json::Value = serde_json::from_slice(line).expect("valid JSON");
    assert_eq!(v["method"], req.method.as_str());
    assert_eq!(v["target"], req.target());
    assert_eq!(v["status"], 200);
    assert_eq!(v["latency_us"], 7);
    assert_eq!(v["remote_addr"], "2001:db8::1");
    if let Some(h) = req.host() {
        assert_eq!(v["host"], h);
    }
    for (header, key) in [("referer", "referer"), ("user-agent", "user_agent")] {
        match req.header(header) {
            Some(value) => assert_eq!(v[key], *String::from_utf8_lossy(value)),
            None => assert!(v.get(key).is_none()),
        }
    }
});
