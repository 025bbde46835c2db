//! `[[upstream]]` tables and `proxy` routes: every key, the defaults, and
//! errors that name the key and the line (the routes' in `proxy_tests.rs`).

use std::net::IpAddr;
use std::path::Path;
use std::time::Duration;

use crate::config::parse;
use crate::config::proxy::{cidr, size_of};
use crate::site::spec::HandlerSpec;
use crate::upstream::spec::{
    Address, Cidr, Health, Keepalive, Passive, Policy, ProxySpec, Retry, RetryOn, UpstreamTimeouts,
};

fn err(text: &str) -> String {
    parse(text, Some(Path::new("p.toml")))
        .unwrap_err()
        .to_string()
}

/// A group named `app` with one server; `rest` starts on line 4.
fn up(rest: &str) -> String {
    format!("[[upstream]]\nname = \"app\"\nservers = [\"127.0.0.1:9001\"]\n{rest}")
}

/// A group and a site whose route proxies to it; `rest` starts on line 10.
fn route(rest: &str) -> String {
    up(&format!(
        "[[site]]\nhosts = [\"a.test\"]\n[[site.route]]\npath = \"/\"\nhandler = \"proxy\"\nupstream = \"app\"\n{rest}"
    ))
}

fn proxy_of(text: &str) -> ProxySpec {
    let c = parse(text, None).unwrap();
    match &c.sites[0].routes[0].handler {
        HandlerSpec::Proxy(p) => p.clone(),
        h => panic!("{h:?}"),
    }
}

const FULL: &str = r#"
[[site]]
hosts = ["a.test"]
[[site.route]]
path = "/api"
handler = "proxy"
upstream = "app"
preserve_host = false
strip_prefix = "/api"
prefix = "/v1"
header_up = { set = { "X-Env" = "prod" }, add = { "X-Tag" = "a" }, remove = ["Cookie2"] }
header_down = { remove = ["Server"] }
trusted_proxies = ["10.0.0.0/8", "::1", "127.0.0.1/32"]
forwarded = true
via = true
buffering = { response = "buffer", max_memory = "2MiB" }

[[upstream]]
name = "app"
servers = [
  "127.0.0.1:9001",
  { address = "[::1]:9002", weight = 3 },
  { address = "localhost:9003", backup = true },
]
lb_policy = "cookie"
lb_key = "session"
hash = "rendezvous"
health = { uri = "/healthz", interval = "5s", timeout = "250ms", passes = 3, fails = 4, expect_status = "200-299,404", expect_body = "ok" }
passive = { max_fails = 3, fail_timeout = "30s", unhealthy_status = ["500", 502, "503"] }
retry = { tries = 3, on = ["connect_error", "http_502"], non_idempotent = true }
slow_start = "10s"
sticky = { cookie = "SRV" }
max_conns = 100
keepalive = { idle = 8, max_requests = 500, lifetime = "10m", idle_timeout = "30s" }
timeouts = { connect = "1s", response_head = "20s", read_idle = 15, send_idle = "1m" }

[[upstream]]
name = "static.v2"
servers = ["127.0.0.1:9100"]
"#;

#[test]
fn every_upstream_key() {
    let c = parse(FULL, Some(Path::new("/etc/p.toml"))).unwrap();
    assert_eq!(c.upstreams.len(), 2);
    let u = &c.upstreams[0];
    assert_eq!(u.name, "app");
    let names: Vec<&str> = u.servers.iter().map(|s| s.name.as_str()).collect();
    assert_eq!(names, ["127.0.0.1:9001", "[::1]:9002", "localhost:9003"]);
    assert_eq!(
        u.servers[0].address,
        Address::Tcp("127.0.0.1:9001".parse().unwrap())
    );
    assert_eq!(
        u.servers[1].address,
        Address::Tcp("[::1]:9002".parse().unwrap())
    );
    let Address::Tcp(local) = u.servers[2].address else {
        panic!("{:?}", u.servers[2].address)
    };
    assert!(local.ip().is_loopback() && local.port() == 9003, "{local}");
    let flags: Vec<(u32, bool)> = u.servers.iter().map(|s| (s.weight, s.backup)).collect();
    assert_eq!(flags, [(1, false), (3, false), (1, true)]);
    assert_eq!(u.policy, Policy::Cookie);
    assert_eq!(u.lb_key, "session");
    let ms = Duration::from_millis;
    assert_eq!(
        u.health,
        Health {
            uri: Some("/healthz".into()),
            interval: ms(5000),
            timeout: ms(250),
            passes: 3,
            fails: 4,
            expect_status: vec![(200, 299), (404, 404)],
            expect_body: "ok".into(),
        }
    );
    assert_eq!(
        u.passive,
        Passive {
            max_fails: 3,
            fail_timeout: ms(30_000),
            unhealthy_status: vec![500, 502, 503],
        }
    );
    assert_eq!(
        u.retry,
        Retry {
            tries: 3,
            on: vec![RetryOn::ConnectError, RetryOn::Http502],
            non_idempotent: true,
        }
    );
    assert_eq!(u.slow_start, ms(10_000));
    assert_eq!(u.sticky.as_ref().map(|s| s.cookie.as_str()), Some("SRV"));
    assert_eq!(u.max_conns, 100);
    assert_eq!(
        u.keepalive,
        Keepalive {
            idle: 8,
            max_requests: 500,
            lifetime: ms(600_000),
            idle_timeout: ms(30_000),
        }
    );
    assert_eq!(
        u.timeouts,
        UpstreamTimeouts {
            connect: ms(1000),
            response_head: ms(20_000),
            read_idle: ms(15_000),
            send_idle: ms(60_000),
            tunnel_idle: ms(300_000),
        }
    );
    assert_eq!(u.origin.key, "upstream[0]");
    assert_eq!(u.origin.line, Some(18));
    assert_eq!(u.origin.file.as_deref(), Some(Path::new("/etc/p.toml")));
    assert_eq!(u.origin.line_of("retry"), Some(30));
    assert_eq!(c.upstreams[1].name, "static.v2");
}

#[test]
fn defaults() {
    let c = parse(&route(""), None).unwrap();
    let u = &c.upstreams[0];
    assert_eq!(u.servers[0].weight, 1);
    assert!(!u.servers[0].backup);
    assert_eq!(u.policy, Policy::RoundRobin);
    assert_eq!(u.lb_key, "");
    assert_eq!(u.health, Health::default());
    assert_eq!(u.health.uri, None, "no active checks");
    assert_eq!(u.passive, Passive::default());
    assert_eq!(u.passive.max_fails, 1);
    assert_eq!(u.retry, Retry::default());
    assert_eq!(u.slow_start, Duration::ZERO);
    assert_eq!(u.sticky, None);
    assert_eq!(u.max_conns, 0);
    assert_eq!(u.keepalive, Keepalive::default());
    assert_eq!(u.timeouts, UpstreamTimeouts::default());
    let p = proxy_of(&route(""));
    assert!(p.preserve_host && !p.forwarded && !p.via && !p.buffer_response && !p.connect);
    assert!(proxy_of(&route("connect = true\n")).connect);
    assert_eq!((p.strip_prefix.as_str(), p.prefix.as_str()), ("", ""));
    assert!(p.header_up.set.is_empty() && p.header_down.remove.is_empty());
    assert!(p.trusted_proxies.is_empty());
    assert_eq!(p.max_memory, 64 << 10);
    let sticky = parse(&up("sticky = {}\n"), None).unwrap();
    assert_eq!(
        sticky.upstreams[0].sticky.as_ref().unwrap().cookie,
        "PGAFFINITY"
    );
    let buffered = proxy_of(&route("buffering = { response = \"buffer\" }\n"));
    assert!(buffered.buffer_response);
    assert_eq!(buffered.max_memory, 1 << 20);
    let small = proxy_of(&route("buffering = { max_memory = 8192 }\n"));
    assert!(!small.buffer_response);
    assert_eq!(small.max_memory, 8192);
    assert_eq!(
        proxy_of(&route("buffering = { max_memory = \"4k\" }\n")).max_memory,
        4096
    );
    // No site uses the group: still read and checked.
    assert_eq!(parse(&up(""), None).unwrap().upstreams.len(), 1);
    let statuses = parse(&up("health = { uri = \"/\", expect_status = 204 }\n"), None).unwrap();
    assert_eq!(statuses.upstreams[0].health.expect_status, [(204, 204)]);
}

#[test]
fn every_policy_name() {
    for policy in Policy::ALL {
        let key = if matches!(policy, Policy::Header | Policy::Cookie) {
            "lb_key = \"x\"\n"
        } else {
            ""
        };
        let text = up(&format!("lb_policy = \"{}\"\n{key}", policy.name()));
        assert_eq!(parse(&text, None).unwrap().upstreams[0].policy, policy);
    }
}

#[test]
fn group_errors_name_key_and_line() {
    let cases: &[(&str, &str)] = &[
        (
            "lb_policy = \"fastest\"",
            "p.toml:4: upstream[0].lb_policy: \"fastest\" is not a policy (round_robin, least_requests, least_time, random, random_two, first, ip_hash, uri_hash, header, cookie)",
        ),
        (
            "lb_policy = \"header\"",
            "p.toml:4: upstream[0].lb_key: is required with lb_policy",
        ),
        (
            "lb_key = \"x\"",
            "p.toml:4: upstream[0].lb_key: applies only to lb_policy",
        ),
        (
            "lb_policy = \"header\"\nlb_key = \"bad key\"",
            "p.toml:5: upstream[0].lb_key: \"bad key\" is not a header or cookie name",
        ),
        (
            "hash = \"rendezvous\"",
            "p.toml:4: upstream[0].hash: applies only to the hash policies",
        ),
        (
            "lb_policy = \"ip_hash\"\nhash = \"ketama\"",
            "p.toml:5: upstream[0].hash: \"ketama\" is not a hash (rendezvous)",
        ),
        (
            "health = { interval = \"5s\" }",
            "p.toml:4: upstream[0].health.uri: is required",
        ),
        (
            "health = { uri = \"healthz\" }",
            "p.toml:4: upstream[0].health.uri: \"healthz\" must be a path",
        ),
        (
            "health = { uri = \"/h\", interval = \"soon\" }",
            "p.toml:4: upstream[0].health.interval: must be a duration",
        ),
        (
            "health = { uri = \"/h\", timeout = \"0s\" }",
            "p.toml:4: upstream[0].health.timeout: must be between 1ms and 7 days",
        ),
        (
            "health = { uri = \"/h\", passes = 0 }",
            "p.toml:4: upstream[0].health.passes: must be between 1 and 100 (got 0)",
        ),
        (
            "health = { uri = \"/h\", fails = 101 }",
            "p.toml:4: upstream[0].health.fails: must be between 1 and 100 (got 101)",
        ),
        (
            "health = { uri = \"/h\", expect_status = \"600\" }",
            "p.toml:4: upstream[0].health.expect_status: \"600\" is not a status from 100 to 599",
        ),
        (
            "health = { uri = \"/h\", expect_status = \"300-200\" }",
            "p.toml:4: upstream[0].health.expect_status: \"300-200\": the range runs backwards",
        ),
        (
            "health = { uri = \"/h\", expect_status = true }",
            "p.toml:4: upstream[0].health.expect_status: must be statuses",
        ),
        (
            "passive = { max_fails = -1 }",
            "p.toml:4: upstream[0].passive.max_fails: must be between 0 and 1000 (got -1)",
        ),
        (
            "passive = { fail_timeout = \"never\" }",
            "p.toml:4: upstream[0].passive.fail_timeout: must be a duration",
        ),
        (
            "passive = { unhealthy_status = [502,\n \"9\"] }",
            "p.toml:5: upstream[0].passive.unhealthy_status: \"9\" is not a status from 100 to 599",
        ),
        (
            "passive = { unhealthy_status = [502, 502] }",
            "p.toml:4: upstream[0].passive.unhealthy_status: 502 is listed twice",
        ),
        (
            "retry = { tries = 11 }",
            "p.toml:4: upstream[0].retry.tries: must be between 1 and 10 (got 11)",
        ),
        (
            "retry = { tries = 0 }",
            "p.toml:4: upstream[0].retry.tries: must be between 1 and 10 (got 0)",
        ),
        (
            "retry = { on = [\"http_500\"] }",
            "p.toml:4: upstream[0].retry.on: \"http_500\" is not one of connect_error, timeout, http_502, http_503, http_504",
        ),
        (
            "retry = { on = [\"timeout\", \"timeout\"] }",
            "p.toml:4: upstream[0].retry.on: \"timeout\" is listed twice",
        ),
        (
            "slow_start = \"fast\"",
            "p.toml:4: upstream[0].slow_start: must be a duration",
        ),
        (
            "sticky = { cookie = \"a b\" }",
            "p.toml:4: upstream[0].sticky.cookie: \"a b\" is not a cookie name",
        ),
        (
            "max_conns = -1",
            "p.toml:4: upstream[0].max_conns: must be between 0 and 1000000 (got -1)",
        ),
        (
            "keepalive = { idle = -1 }",
            "p.toml:4: upstream[0].keepalive.idle: must be between 0 and 100000 (got -1)",
        ),
        (
            "keepalive = { max_requests = 0 }",
            "p.toml:4: upstream[0].keepalive.max_requests: must be between 1 and",
        ),
        (
            "keepalive = { lifetime = \"forever\" }",
            "p.toml:4: upstream[0].keepalive.lifetime: must be a duration",
        ),
        (
            "keepalive = { idle_timeout = 0 }",
            "p.toml:4: upstream[0].keepalive.idle_timeout: must be between 1ms",
        ),
        (
            "timeouts = { connect = 0 }",
            "p.toml:4: upstream[0].timeouts.connect: must be between 1ms",
        ),
        (
            "timeouts = { response_head = \"x\" }",
            "p.toml:4: upstream[0].timeouts.response_head: must be a duration",
        ),
        (
            "timeouts = { read_idle = -1 }",
            "p.toml:4: upstream[0].timeouts.read_idle: must be a duration",
        ),
        (
            "timeouts = { send_idle = \"9d\" }",
            "p.toml:4: upstream[0].timeouts.send_idle: must be a duration",
        ),
        (
            "tls = 1",
            "p.toml:4: upstream[0].tls: must be true or false",
        ),
    ];
    for (rest, want) in cases {
        let got = err(&up(&format!("{rest}\n")));
        assert!(got.starts_with(want), "{rest}\n got: {got}\nwant: {want}");
    }
    // Unknown keys, found by the TOML reader.
    assert!(err(&up("health = { uri = \"/\", bogus = 1 }\n")).contains("unknown field `bogus`"));
    let weight = err(&up("weight = 2\n"));
    assert!(
        weight.starts_with("p.toml:4: upstream.weight: unknown field `weight`"),
        "{weight}"
    );
}

#[test]
fn names_are_required_checked_and_unique() {
    let servers = "servers = [\"127.0.0.1:9001\"]\n";
    assert_eq!(
        err(&format!("\n[[upstream]]\n{servers}")),
        "p.toml:2: upstream[0].name: is required"
    );
    assert!(
        err(&format!("[[upstream]]\nname = \"a b\"\n{servers}"))
            .starts_with("p.toml:2: upstream[0].name: \"a b\" is not a name")
    );
    assert!(err(&format!("[[upstream]]\nname = \"\"\n{servers}")).contains("is not a name"));
    assert_eq!(
        err(&format!(
            "{}[[upstream]]\nname = \"app\"\n{servers}",
            up("")
        )),
        "p.toml:5: upstream[1].name: \"app\" is the name of upstream[0] too; upstream, fastcgi and pool names must differ"
    );
    assert_eq!(
        err("[[upstream]]\nname = \"app\"\n"),
        "p.toml:1: upstream[0].servers: is required"
    );
}

#[test]
fn server_errors_name_the_entry() {
    let one = |s: &str| err(&format!("[[upstream]]\nname = \"app\"\nservers = [{s}]\n"));
    let cases: &[(&str, &str)] = &[
        (
            "\"127.0.0.1\"",
            "upstream[0].servers[0]: \"127.0.0.1\" needs a port",
        ),
        (
            "\"127.0.0.1:0\"",
            "upstream[0].servers[0]: \"127.0.0.1:0\": the port must not be 0",
        ),
        (
            "\"app:http\"",
            "upstream[0].servers[0]: \"app:http\": \"http\" is not a port",
        ),
        (
            "\"::1:80\"",
            "upstream[0].servers[0]: \"::1:80\": an IPv6 address is written in brackets",
        ),
        (
            "\"a b:80\"",
            "upstream[0].servers[0]: \"a b:80\": \"a b\" is not a host name or IP address",
        ),
        (
            "\"unix:\"",
            "upstream[0].servers[0]: \"unix:\": write the socket's path, like \"unix:/run/app.sock\"",
        ),
        (
            "\"https://a:443\"",
            "upstream[0].servers[0]: \"https://a:443\": write host:port, and tls = true in the [[upstream]] table",
        ),
        (
            "\"http://a:80\"",
            "upstream[0].servers[0]: \"http://a:80\": write host:port, without a scheme",
        ),
        (
            "{ address = \"127.0.0.1:1\", tls = true }",
            "upstream[0].servers[0].tls: TLS is set for the whole group: tls = true in the [[upstream]] table",
        ),
        (
            "{ address = \"127.0.0.1:1\", weight = 0 }",
            "upstream[0].servers[0].weight: must be a number from 1 to 1000",
        ),
        (
            "{ address = \"127.0.0.1:1\", weight = 1001 }",
            "upstream[0].servers[0].weight: must be a number from 1 to 1000",
        ),
        (
            "{ address = \"127.0.0.1:1\", backup = 1 }",
            "upstream[0].servers[0].backup: must be true or false",
        ),
        (
            "{ address = \"127.0.0.1:1\", wieght = 2 }",
            "upstream[0].servers[0].wieght: unknown key \"wieght\"",
        ),
        (
            "{ weight = 2 }",
            "upstream[0].servers[0].address: is required",
        ),
        (
            "{ address = 80 }",
            "upstream[0].servers[0].address: must be a string",
        ),
        ("42", "upstream[0].servers[0]: must be an address"),
        ("", "upstream[0].servers: needs at least one server"),
        (
            "{ address = \"127.0.0.1:1\", backup = true }",
            "upstream[0].servers: needs at least one server that is not a backup",
        ),
        (
            "\"127.0.0.1:1\", \"127.0.0.1:1\"",
            "upstream[0].servers[1]: \"127.0.0.1:1\" is listed twice",
        ),
    ];
    for (s, want) in cases {
        let want = format!("p.toml:3: {want}");
        let got = one(s);
        assert!(got.starts_with(&want), "{s}\n got: {got}\nwant: {want}");
    }
    // A name that does not resolve, on its own line.
    let got = err(
        "[[upstream]]\nname = \"app\"\nservers = [\n  \"127.0.0.1:1\",\n  \"no-such-host.invalid:80\",\n]\n",
    );
    assert!(
        got.starts_with("p.toml:5: upstream[0].servers[1]: \"no-such-host.invalid:80\": no-such-host.invalid cannot be resolved"),
        "{got}"
    );
}

#[test]
fn shown_in_the_effective_configuration() {
    let c = parse(FULL, None).unwrap();
    let v = crate::config::json::render(&c);
    let u = &v["upstream"][0];
    assert_eq!(u["name"], "app");
    assert_eq!(u["lb_policy"], "cookie");
    assert_eq!(u["servers"][1]["weight"], 3);
    assert_eq!(u["servers"][0]["resolved"], "127.0.0.1:9001");
    assert_eq!(u["health"]["expect_status"], "200-299,404");
    assert_eq!(u["retry"]["on"][1], "http_502");
    assert_eq!(u["timeouts"]["read_idle"], 15.0);
    let r = &v["site"][0]["route"][0];
    assert_eq!(r["handler"], "proxy");
    assert_eq!(r["upstream"], "app");
    assert_eq!(r["trusted_proxies"][1], "::1/128");
    assert_eq!(r["buffering"]["response"], "buffer");
    assert_eq!(r["buffering"]["max_memory"], 2 << 20);
}

#[path = "proxy_tests.rs"]
mod proxy;

#[path = "upstream_tls_tests.rs"]
mod transports;
