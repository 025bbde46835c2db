//! `[[pool]]` tables: what they parse into, and errors that name the key
//! and the line.

use std::path::Path;
use std::time::Duration;

use crate::config::parse;
use crate::pool::spec::{Listen, StartMode};

fn err(text: &str) -> String {
    parse(text, Some(Path::new("/etc/p.toml")))
        .unwrap_err()
        .to_string()
}

const SITE: &str = "[[site]]\nname = \"a\"\ndefault = true\n[[site.route]]\npath = \"/\"\nhandler = \"proxy\"\nupstream = \"api\"\n";

#[test]
fn a_pool_and_its_lanes() {
    let text = format!(
        r#"[[pool]]
name = "api"
command = ["./api-server", "--port", "{{port}}"]
instances = 2
env = {{ RUST_LOG = "info" }}
cwd = "/srv/api"
ready = {{ http = "/healthz", timeout = "30s", interval = "5s", fails = 2 }}
recycle = {{ requests = 1000, time = "29h", memory = "512MiB", schedule = ["03:30", "15:00"] }}
rapid_fail = {{ max_crashes = 5, interval = "5m" }}
shutdown_timeout = "30s"
start = "on_demand"
idle_timeout = "20m"
lb_policy = "least_requests"
retry = {{ tries = 3 }}
{SITE}"#
    );
    let c = parse(&text, Some(Path::new("/etc/p.toml"))).unwrap();
    let u = &c.upstreams[0];
    let p = u.pool.as_ref().unwrap();
    assert_eq!(p.command[0], "/srv/api/./api-server", "relative to cwd");
    assert_eq!(
        p.argv(9001, 0),
        vec!["/srv/api/./api-server", "--port", "9001"]
    );
    assert_eq!(p.instances, 2);
    assert_eq!(u.servers.len(), 4, "two lanes an instance");
    assert_eq!(u.servers[3].name, "api#3");
    assert_eq!(p.ready.http.as_deref(), Some("/healthz"));
    assert_eq!(
        (p.ready.interval, p.ready.fails),
        (Duration::from_secs(5), 2)
    );
    assert_eq!(p.recycle.requests, 1000);
    assert_eq!(p.recycle.time, Duration::from_secs(29 * 3600));
    assert_eq!(p.recycle.memory, 512 << 20);
    assert_eq!(p.recycle.schedule, vec![210, 900]);
    assert_eq!(p.rapid_fail.max_crashes, 5);
    assert_eq!(p.rapid_fail.interval, Duration::from_secs(300));
    assert_eq!(p.start, StartMode::OnDemand);
    assert_eq!(p.idle_timeout, Duration::from_secs(1200));
    assert_eq!(p.log, Path::new("/etc/logs/pool-api.log"));
    assert_eq!(u.retry.tries, 3);
    assert_eq!(u.origin.key, "pool[0]");
    let j = crate::config::json::render(&c);
    assert_eq!(j["upstream"][0]["pool"]["instances"], 2);
    assert_eq!(j["upstream"][0]["pool"]["env"][0], "RUST_LOG");
    assert_eq!(j["upstream"][0]["pool"]["recycle"]["schedule"][0], "03:30");
    // Defaults.
    let c = parse(
        &format!("[[pool]]\nname = \"api\"\ncommand = [\"app\", \"{{port}}\"]\n{SITE}"),
        None,
    )
    .unwrap();
    let p = c.upstreams[0].pool.as_ref().unwrap();
    assert_eq!(p.command[0], "app", "a bare name is looked up in PATH");
    assert_eq!((p.instances, p.listen.clone()), (1, Listen::Port));
    assert_eq!(p.ready.timeout, Duration::from_secs(30));
    assert_eq!(p.ready.http, None);
    assert_eq!(
        (p.ready.interval, p.ready.fails),
        (Duration::from_secs(10), 3)
    );
    assert_eq!(p.shutdown_timeout, Duration::from_secs(30));
    assert_eq!(p.start, StartMode::Always);
    assert_eq!(p.idle_timeout, Duration::ZERO);
    assert_eq!(p.rapid_fail.max_crashes, 5);
    // A Unix socket; {port} then not needed.
    let c = parse(
        &format!("[[pool]]\nname = \"api\"\ncommand = [\"app\"]\nlisten = \"unix:/run/a/{{instance}}.sock\"\n{SITE}"),
        None,
    )
    .unwrap();
    let p = c.upstreams[0].pool.as_ref().unwrap();
    assert_eq!(p.socket_path(3).unwrap(), Path::new("/run/a/3.sock"));
}

#[test]
fn a_fastcgi_pool() {
    let text = "[[pool]]\nname = \"php\"\ncommand = [\"php-cgi\", \"-b\", \"127.0.0.1:{port}\"]\nroot = \"/srv/www\"\n[[site]]\nname = \"a\"\ndefault = true\n[[site.route]]\npath = \"/\"\nhandler = \"fastcgi\"\nupstream = \"php\"\n";
    let c = parse(text, None).unwrap();
    let u = &c.upstreams[0];
    assert!(u.pool.is_some() && u.fastcgi.is_some());
    let e = err(&text.replace("root = ", "ready = { http = \"/ping\" }\nroot = "));
    assert!(
        e.contains("pool[0].ready.http") && e.contains("do not speak HTTP"),
        "{e}"
    );
}

#[test]
fn errors_name_the_key_and_line() {
    let base = "[[pool]]\nname = \"api\"\ncommand = [\"app\", \"{port}\"]\n";
    let with = |extra: &str| format!("{base}{extra}{SITE}");
    let cases = [
        (
            with("servers = [\"127.0.0.1:1\"]\n"),
            ":4: pool[0].servers",
            "set instances",
        ),
        (with("tls = true\n"), "pool[0].tls", "without TLS"),
        (
            with("health = { uri = \"/h\" }\n"),
            "pool[0].health",
            "ready = {",
        ),
        (
            with("instances = 0\n"),
            "pool[0].instances",
            "between 1 and 64",
        ),
        (
            with("start = \"lazy\"\n"),
            ":4: pool[0].start",
            "always, on_demand",
        ),
        (
            with("listen = \"unix:/run/a.sock\"\n"),
            "pool[0].listen",
            "{instance}",
        ),
        (
            with("listen = \"127.0.0.1:9000\"\n"),
            "pool[0].listen",
            "unix:",
        ),
        (
            with("recycle = { schedule = [\"25:00\"] }\n"),
            "pool[0].recycle.schedule",
            "time of day",
        ),
        (
            with("recycle = { memory = \"lots\" }\n"),
            "pool[0].recycle.memory",
            "512MiB",
        ),
        (
            with("ready = { http = \"healthz\" }\n"),
            "pool[0].ready.http",
            "is a path",
        ),
        (with("log = \"\"\n"), "pool[0].log", "must not be empty"),
        (with("colour = 1\n"), "unknown field", "colour"),
    ];
    for (text, at, what) in cases {
        let e = err(&text);
        assert!(e.contains(at) && e.contains(what), "{at}: {e}");
    }
    let e = err(&format!("[[pool]]\nname = \"api\"\n{SITE}"));
    assert!(
        e.contains("pool[0].command") && e.contains("is required"),
        "{e}"
    );
    let e = err(&format!(
        "[[pool]]\nname = \"api\"\ncommand = [\"app\"]\n{SITE}"
    ));
    assert!(e.contains("pool[0].command") && e.contains("{port}"), "{e}");
    let e = err(&format!(
        "[[upstream]]\nname = \"api\"\nservers = [\"127.0.0.1:1\"]\ninstances = 2\n{SITE}"
    ));
    assert!(
        e.contains("upstream[0].instances") && e.contains("[[pool]]"),
        "{e}"
    );
    let e = err(&format!(
        "[[upstream]]\nname = \"api\"\nservers = [\"127.0.0.1:1\"]\n{base}{SITE}"
    ));
    assert!(
        e.contains("pool[0].name") && e.contains("names must differ"),
        "{e}"
    );
}
