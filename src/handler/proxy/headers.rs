//! The heads a proxied exchange sends on: the request head written to the
//! upstream and the response head answered to the client. Pure functions of
//! the heads received and the route's [`ProxySpec`]; no I/O.
//!
//! Going up, the request line is rewritten (`strip_prefix`, then `prefix`;
//! always HTTP/1.1), `Host` is chosen, hop-by-hop fields (RFC 9110 §7.6.1)
//! and the names the request's `Connection` lists are dropped, the
//! `X-Forwarded-*`, `Forwarded` (RFC 7239) and `Via` fields are written, the
//! `header_up` rules applied and the body framing added. Coming down, the
//! upstream's fields are kept but for hop-by-hop ones, the framing and
//! `Date` and `Server` (the server writes its own, as nginx does), `Via` is
//! added and the `header_down` rules applied.
//!
//! Nothing written can break the framing: a field whose value holds CR, LF or
//! NUL, or whose name is not a token, is left out, and rules never write
//! hop-by-hop or framing fields.

use std::io::Write as _;
use std::net::IpAddr;

use crate::exchange::RequestHead;
use crate::http::client::{ResponseHead, is_token};
use crate::http::{Method, Response, Version};
use crate::upstream::spec::{HeaderOps, ProxySpec};

pub use crate::http::client::RequestBody as BodyFraming;

/// What the request head sent up depends on besides the request and the
/// route: facts of this hop and of the server picked.
#[derive(Clone, Copy, Debug)]
pub struct Forward<'a> {
    /// How the client reached us: `"http"` or `"https"`.
    pub scheme: &'a str,
    /// The upstream server's `host:port`, sent as `Host` when the client's
    /// is not preserved (or the request had none).
    pub server_host: &'a str,
    /// How the request body sent up is delimited.
    pub body: BodyFraming,
    /// The name this proxy gives itself in `Via`.
    pub via_name: &'a str,
    /// The protocol the client asks to switch to (its `Upgrade` value),
    /// passed on with `Connection: upgrade`.
    pub upgrade: Option<&'a [u8]>,
}

/// Hop-by-hop fields (RFC 9110 §7.6.1 and the older names still seen),
/// lower case.
const HOP_BY_HOP: [&str; 9] = [
    "connection",
    "keep-alive",
    "proxy-connection",
    "te",
    "transfer-encoding",
    "upgrade",
    "proxy-authenticate",
    "proxy-authorization",
    "trailer",
];

/// Whether `name` is a hop-by-hop field, meant for one connection only and
/// never forwarded (case-insensitive).
pub fn is_hop_by_hop(name: &str) -> bool {
    HOP_BY_HOP.iter().any(|h| h.eq_ignore_ascii_case(name))
}

/// Whether `name` is among the comma-separated names of the `Connection`
/// field values `connection` (case-insensitive), which makes it hop-by-hop
/// for this message.
pub fn connection_listed<'v>(connection: impl IntoIterator<Item = &'v [u8]>, name: &str) -> bool {
    !name.is_empty()
        && connection.into_iter().any(|v| {
            v.split(|&b| b == b',')
                .any(|t| t.trim_ascii().eq_ignore_ascii_case(name.as_bytes()))
        })
}

/// Fields of the request never copied up as received: hop-by-hop, framing,
/// and those written afresh.
fn replaced_up(name: &str) -> bool {
    is_hop_by_hop(name)
        || [
            "content-length",
            "host",
            // The body is sent up without waiting: the expectation was the
            // client's of this hop.
            "expect",
            "x-forwarded-for",
            "x-forwarded-proto",
            "x-forwarded-host",
            "forwarded",
        ]
        .iter()
        .any(|n| n.eq_ignore_ascii_case(name))
}

/// Fields of the response never copied down: hop-by-hop, framing, and those
/// the server's encoder writes itself.
fn replaced_down(name: &str) -> bool {
    is_hop_by_hop(name)
        || ["content-length", "date", "server"]
            .iter()
            .any(|n| n.eq_ignore_ascii_case(name))
}

/// A field value that cannot end its line early.
fn valid_value(v: &[u8]) -> bool {
    !v.iter().any(|&b| b == b'\r' || b == b'\n' || b == 0)
}

/// The `Via` received-protocol for `version`.
fn protocol(version: Version) -> &'static str {
    match version {
        Version::Http10 => "1.0",
        Version::Http11 => "1.1",
        Version::Http2 => "2",
    }
}

/// The peer's address, IPv4-mapped IPv6 written as IPv4.
/// Writes an address as text: IPv4 dotted without the formatter (this is
/// on every proxied request), IPv6 through it.
fn write_ip(o: &mut Vec<u8>, ip: IpAddr) {
    match ip {
        IpAddr::V4(v4) => {
            let mut b = itoa::Buffer::new();
            for (i, octet) in v4.octets().into_iter().enumerate() {
                if i > 0 {
                    o.push(b'.');
                }
                o.extend_from_slice(b.format(octet).as_bytes());
            }
        }
        IpAddr::V6(v6) => {
            let _ = write!(o, "{v6}");
        }
    }
}

fn client_ip(head: &RequestHead) -> Option<IpAddr> {
    head.peer.map(|p| unmapped(p.ip()))
}

/// IPv4-mapped IPv6 as IPv4.
fn unmapped(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(IpAddr::V6(v6), IpAddr::V4),
        v4 => v4,
    }
}

/// Appends the request head sent to the upstream for `head` to `out`: the
/// request line, `Host`, the client's end-to-end fields in order, then
/// `X-Forwarded-For`, `X-Forwarded-Proto`, `X-Forwarded-Host`, `Forwarded`
/// (when `spec.forwarded`) and `Via` (when `spec.via`), each subject to the
/// `header_up` rules, then the fields the rules add, the body framing and the
/// blank line.
///
/// The target is the path with `spec.strip_prefix` removed at a segment
/// boundary (`/api`: `/api/x` goes up as `/x`, `/api` as `/`, `/apix`
/// unchanged) and `spec.prefix` put before it, then the query verbatim;
/// an absolute-form target goes up in origin form, and a `CONNECT`'s
/// authority as it came (in `Host` too).
///
/// `X-Forwarded-For`, `X-Forwarded-Proto`, `X-Forwarded-Host` and
/// `Forwarded` received from a peer in `spec.trusted_proxies` are extended
/// (the first two) or kept; from any other peer they are replaced. Rules:
/// `remove` drops every field of a name, `set` writes its value in place of
/// the first field of that name (or after the others when there is none)
/// and drops the rest, `add` writes after everything; `Host` cannot be
/// removed, and rules naming hop-by-hop fields or `Content-Length` are
/// ignored.
pub fn upstream_request(
    head: &RequestHead,
    spec: &ProxySpec,
    ctx: &Forward<'_>,
    out: &mut Vec<u8>,
) {
    out.extend_from_slice(head.method.as_str().as_bytes());
    out.push(b' ');
    write_target(out, head, spec);
    out.extend_from_slice(b" HTTP/1.1\r\n");

    let mut f = Fields::new(out, &spec.header_up);
    let client_host = head.host().filter(|h| !h.is_empty());
    let host = match client_host {
        // A CONNECT names where it goes in its target and `Host` alike.
        Some(h) if spec.preserve_host || head.method == Method::Connect => h,
        _ => ctx.server_host,
    };
    f.host(host);

    let connection: Vec<&[u8]> = head
        .headers()
        .filter(|(n, _)| n.eq_ignore_ascii_case("connection"))
        .map(|(_, v)| v)
        .collect();
    let listed = |name: &str| connection_listed(connection.iter().copied(), name);
    for (name, value) in head.headers() {
        if replaced_up(name) || listed(name) || !is_token(name) {
            continue;
        }
        f.field(name, |o| o.extend_from_slice(value));
    }

    let peer = client_ip(head);
    let trusted = peer.is_some_and(|ip| spec.trusted_proxies.iter().any(|c| c.contains(ip)));
    // Extending a trusted chain adds the hop; starting one names the client
    // (as `[server.client_ip]` found it behind the proxies it trusts).
    let ip = if trusted {
        peer
    } else {
        head.client.map(unmapped).or(peer)
    };
    // Values received from a trusted peer, unless this hop was told to drop them.
    let prior = |name: &'static str| {
        head.headers()
            .filter(move |(n, _)| trusted && n.eq_ignore_ascii_case(name) && !listed(n))
            .map(|(_, v)| v.trim_ascii())
            .filter(|v| !v.is_empty())
    };
    // (Nothing is looked for when the peer is not trusted.)
    let has = |name| trusted && prior(name).next().is_some();

    // Trust needs a peer, so without one nothing is extended.
    if let Some(ip) = ip {
        let xff = has("x-forwarded-for");
        f.field("X-Forwarded-For", |o| {
            if xff {
                join(o, prior("x-forwarded-for"));
                o.extend_from_slice(b", ");
            }
            write_ip(o, ip);
        });
    }
    if has("x-forwarded-proto") {
        f.field("X-Forwarded-Proto", |o| join(o, prior("x-forwarded-proto")));
    } else {
        f.field("X-Forwarded-Proto", |o| {
            o.extend_from_slice(ctx.scheme.as_bytes())
        });
    }
    if has("x-forwarded-host") {
        f.field("X-Forwarded-Host", |o| join(o, prior("x-forwarded-host")));
    } else if let Some(h) = client_host {
        f.field("X-Forwarded-Host", |o| o.extend_from_slice(h.as_bytes()));
    }
    if spec.forwarded {
        f.field("Forwarded", |o| {
            if has("forwarded") {
                join(o, prior("forwarded"));
                o.extend_from_slice(b", ");
            }
            forwarded_element(o, ip, ctx.scheme, client_host);
        });
    }
    if spec.via {
        f.field("Via", |o| {
            o.extend_from_slice(protocol(head.version).as_bytes());
            o.push(b' ');
            o.extend_from_slice(ctx.via_name.as_bytes());
        });
    }
    f.finish();
    if let Some(v) = ctx.upgrade.filter(|v| valid_value(v)) {
        out.extend_from_slice(b"Upgrade: ");
        out.extend_from_slice(v);
        out.extend_from_slice(b"\r\nConnection: upgrade\r\n");
    }

    match ctx.body {
        BodyFraming::None => {}
        BodyFraming::Length(n) => {
            out.extend_from_slice(b"Content-Length: ");
            out.extend_from_slice(itoa::Buffer::new().format(n).as_bytes());
            out.extend_from_slice(b"\r\n");
        }
        BodyFraming::Chunked => out.extend_from_slice(b"Transfer-Encoding: chunked\r\n"),
    }
    out.extend_from_slice(b"\r\n");
}

/// Writes the rewritten target: stripped and prefixed path, then the query.
fn write_target(out: &mut Vec<u8>, head: &RequestHead, spec: &ProxySpec) {
    if head.method == Method::Connect {
        // The authority-form target goes up as it came.
        out.extend_from_slice(head.target().as_bytes());
        return;
    }
    let path = head.path();
    if path.starts_with('/') {
        let path = strip_path(path, &spec.strip_prefix);
        let prefix = spec.prefix.trim_end_matches('/');
        if !prefix.is_empty() && !prefix.starts_with('/') {
            out.push(b'/');
        }
        out.extend_from_slice(prefix.as_bytes());
        out.extend_from_slice(path.as_bytes());
    } else {
        // `*` (OPTIONS): nothing to rewrite.
        out.extend_from_slice(path.as_bytes());
    }
    if let Some(q) = head.query() {
        out.push(b'?');
        out.extend_from_slice(q.as_bytes());
    }
}

/// `path` without `strip` at its start, when `strip` ends at a segment
/// boundary of it (a trailing `/` of `strip` is not needed); `/` when nothing
/// is left.
fn strip_path<'p>(path: &'p str, strip: &str) -> &'p str {
    let strip = strip.trim_end_matches('/');
    if strip.is_empty() {
        return path;
    }
    match path.strip_prefix(strip) {
        Some("") => "/",
        Some(rest) if rest.starts_with('/') => rest,
        _ => path,
    }
}

/// Writes `values` separated by `, `.
fn join<'v>(o: &mut Vec<u8>, values: impl Iterator<Item = &'v [u8]>) {
    for (i, v) in values.enumerate() {
        if i > 0 {
            o.extend_from_slice(b", ");
        }
        o.extend_from_slice(v);
    }
}

/// Writes one RFC 7239 forwarded-element: `for`, `proto` and, when known,
/// `host`.
fn forwarded_element(o: &mut Vec<u8>, ip: Option<IpAddr>, proto: &str, host: Option<&str>) {
    o.extend_from_slice(b"for=");
    let _ = match ip {
        None => write!(o, "unknown"),
        Some(IpAddr::V4(v4)) => write!(o, "{v4}"),
        Some(IpAddr::V6(v6)) => write!(o, "\"[{v6}]\""),
    };
    o.extend_from_slice(b";proto=");
    param_value(o, proto);
    if let Some(h) = host {
        o.extend_from_slice(b";host=");
        param_value(o, h);
    }
}

/// Writes a parameter value as a token, or quoted when it is not one.
fn param_value(o: &mut Vec<u8>, v: &str) {
    if is_token(v) {
        o.extend_from_slice(v.as_bytes());
        return;
    }
    o.push(b'"');
    for &b in v.as_bytes() {
        if b == b'"' || b == b'\\' {
            o.push(b'\\');
        }
        o.push(b);
    }
    o.push(b'"');
}

/// The header section sent up, written field by field with the `header_up`
/// rules applied as it goes.
struct Fields<'a> {
    out: &'a mut Vec<u8>,
    ops: &'a HeaderOps,
    /// Which `set` rules have been written.
    set_done: Vec<bool>,
}

impl<'a> Fields<'a> {
    fn new(out: &'a mut Vec<u8>, ops: &'a HeaderOps) -> Fields<'a> {
        Fields {
            out,
            ops,
            set_done: vec![false; ops.set.len()],
        }
    }

    /// `Host`: replaced by a `set` rule, never removed.
    fn host(&mut self, host: &str) {
        if self.has_set("host") {
            self.write_set("host");
        } else {
            line(self.out, "Host", |o| o.extend_from_slice(host.as_bytes()));
        }
    }

    /// One field, as the rules have it: replaced by the `set` values of its
    /// name (the first field of that name only), removed, or written.
    fn field(&mut self, name: &str, value: impl FnOnce(&mut Vec<u8>)) {
        if self.has_set(name) {
            self.write_set(name);
        } else if !self.ops.remove.iter().any(|r| r.eq_ignore_ascii_case(name)) {
            line(self.out, name, value);
        }
    }

    fn has_set(&self, name: &str) -> bool {
        self.ops
            .set
            .iter()
            .any(|(n, _)| n.eq_ignore_ascii_case(name))
    }

    /// Writes the `set` values of `name` not yet written.
    fn write_set(&mut self, name: &str) {
        for (i, (n, v)) in self.ops.set.iter().enumerate() {
            if n.eq_ignore_ascii_case(name) && !self.set_done[i] {
                self.set_done[i] = true;
                if rule_allowed(n) {
                    line(self.out, n, |o| o.extend_from_slice(v.as_bytes()));
                }
            }
        }
    }

    /// The `set` values of names not met, then the `add` values.
    fn finish(mut self) {
        for i in 0..self.ops.set.len() {
            if !self.set_done[i] {
                let name = &self.ops.set[i].0;
                self.write_set(name);
            }
        }
        for (n, v) in &self.ops.add {
            if rule_allowed(n) {
                line(self.out, n, |o| o.extend_from_slice(v.as_bytes()));
            }
        }
    }
}

/// Whether a rule may write a field of `name`.
fn rule_allowed(name: &str) -> bool {
    is_token(name) && !is_hop_by_hop(name) && !name.eq_ignore_ascii_case("content-length")
}

/// Appends `name: value\r\n`, the value written by `value`; nothing when the
/// value would end the line early.
fn line(out: &mut Vec<u8>, name: &str, value: impl FnOnce(&mut Vec<u8>)) {
    let start = out.len();
    out.extend_from_slice(name.as_bytes());
    out.extend_from_slice(b": ");
    let v = out.len();
    value(out);
    if valid_value(&out[v..]) {
        out.extend_from_slice(b"\r\n");
    } else {
        out.truncate(start);
    }
}

/// The response answered to the client for the upstream's head `up`: its
/// status (the reason phrase is the standard one for it), its end-to-end
/// fields in order (hop-by-hop fields, names its `Connection` lists,
/// `Content-Length`, `Date` and `Server` left out; the server writes its
/// own `Date` and `Server`, as nginx does), `Via` when `spec.via`, then the
/// `header_down` rules: `remove`, then `set` (every field of the name
/// replaced), then `add`. Rules naming hop-by-hop fields, `Content-Length`,
/// `Date` or `Server` are ignored. Values that are not UTF-8 (obs-text) are
/// left out. The body and its framing are the caller's.
pub fn client_response(up: &ResponseHead, spec: &ProxySpec, via_name: &str) -> Response {
    let status = if (100..=999).contains(&up.status) {
        up.status
    } else {
        502
    };
    let mut resp = Response::new(status);
    let connection: Vec<&[u8]> = up
        .headers()
        .filter(|(n, _)| n.eq_ignore_ascii_case("connection"))
        .map(|(_, v)| v)
        .collect();
    for (name, value) in up.headers() {
        if replaced_down(name) || connection_listed(connection.iter().copied(), name) {
            continue;
        }
        if let Ok(value) = std::str::from_utf8(value) {
            resp = put(resp, name, value);
        }
    }
    // A switch names its protocol to the client too.
    if status == 101
        && let Some(v) = up.header_str("upgrade")
    {
        resp = put(resp, "Upgrade", v.trim());
        resp = put(resp, "Connection", "upgrade");
    }
    if spec.via {
        let via = format!("{} {via_name}", protocol(up.version));
        resp = put(resp, "Via", &via);
    }
    let ops = &spec.header_down;
    for name in &ops.remove {
        resp = resp.remove_header(name);
    }
    for (name, _) in &ops.set {
        if down_rule_allowed(name) {
            resp = resp.remove_header(name);
        }
    }
    for (name, value) in ops.set.iter().chain(&ops.add) {
        if down_rule_allowed(name) {
            resp = put(resp, name, value);
        }
    }
    resp
}

/// Whether a `header_down` rule may write a field of `name`.
fn down_rule_allowed(name: &str) -> bool {
    rule_allowed(name) && !replaced_down(name)
}

/// Adds a field to `resp` when its name and value are sound; the first
/// `Content-Type` becomes the content type, others are dropped.
fn put(resp: Response, name: &str, value: &str) -> Response {
    if !is_token(name) || !valid_value(value.as_bytes()) {
        return resp;
    }
    if name.eq_ignore_ascii_case("content-type") {
        if resp.header_value("content-type").is_some() {
            return resp;
        }
        return resp.content_type(value.to_owned());
    }
    resp.header(name.to_owned(), value.to_owned())
}

#[cfg(test)]
#[path = "headers_tests.rs"]
mod tests;

#[cfg(test)]
#[path = "headers_upgrade_tests.rs"]
mod upgrade_tests;
