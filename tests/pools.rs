//! Application pools end to end: one Peregrine runs real processes (the
//! Python app of `tests/pool_app.py`, and another Peregrine) and proxies to
//! them: start and ready, a crash and its respawn, rapid-fail protection
//! (503s) and a manual recycle that brings the pool back, recycling by
//! request count under load with no failed request, an on-demand pool
//! started by its first request and stopped when idle, php-cgi processes
//! as a FastCGI pool, a reload that keeps unchanged pools and replaces
//! changed ones, the pool log, /status and /metrics, and a graceful stop
//! that stops every instance.

mod common;
use common::upstreams::wait_for;
use common::*;
use serde_json::Value;
use std::path::PathBuf;
use std::time::{Duration, Instant};

struct Setup {
    server: Server,
    /// The configuration file, and its text (for reloads).
    config: PathBuf,
    toml: String,
    /// The working directory of the `crashy` pool (its crash-at-start flag).
    crashy_dir: PathBuf,
    logs: PathBuf,
}

fn app() -> String {
    concat!(env!("CARGO_MANIFEST_DIR"), "/tests/pool_app.py").to_string()
}

fn setup() -> Setup {
    let dir = tempdir("pools");
    let crashy_dir = dir.join("crashy");
    std::fs::create_dir_all(&crashy_dir).unwrap();
    let logs = dir.join("logs");
    let app = app();
    let route = |path: &str, pool: &str| {
        format!(
            "[[site.route]]\npath = \"{path}\"\nhandler = \"proxy\"\nupstream = \"{pool}\"\nstrip_prefix = \"{path}\"\n"
        )
    };
    let toml = format!(
        r#"[[pool]]
name = "api"
command = ["python3", "{app}", "{{port}}"]
instances = 2
ready = {{ http = "/healthz", timeout = "20s" }}
recycle = {{ requests = 60 }}
shutdown_timeout = "5s"
log = "{logs}/api.log"

[[pool]]
name = "crashy"
command = ["python3", "{app}", "{{port}}"]
cwd = "{crashy}"
ready = {{ http = "/healthz", timeout = "20s" }}
rapid_fail = {{ max_crashes = 2, interval = "60s" }}
log = "{logs}/crashy.log"

[[pool]]
name = "pinged"
command = ["python3", "{app}", "{{port}}"]
ready = {{ http = "/healthz", timeout = "20s", interval = "300ms", fails = 2 }}
log = "{logs}/pinged.log"

[[pool]]
name = "sock"
command = ["python3", "{app}", "{dir}/app-{{instance}}.sock"]
listen = "unix:{dir}/app-{{instance}}.sock"
ready = {{ http = "/healthz", timeout = "20s" }}
log = "{logs}/sock.log"

[[pool]]
name = "lazy"
command = ["python3", "{app}", "{{port}}"]
start = "on_demand"
idle_timeout = "2s"
ready = {{ http = "/healthz", timeout = "20s" }}
log = "{logs}/lazy.log"

[[pool]]
name = "peer"
command = ["{bin}", "serve", "--listen", "127.0.0.1:{{port}}", "--builtins", "--admin", "off", "--workers", "1", "--access-log", "off"]
ready = {{ http = "/plaintext", timeout = "20s" }}
log = "{logs}/peer.log"

[[pool]]
name = "php"
command = ["php-cgi", "-b", "127.0.0.1:{{port}}"]
env = {{ PHP_FCGI_CHILDREN = "0" }}
instances = 2
root = "{php}"
log = "{logs}/php.log"

[[site]]
name = "app"
default = true
{api}{crashy_route}{lazy}{peer}{pinged}{sock}[[site.route]]
path = "/"
handler = "fastcgi"
upstream = "php"
"#,
        php = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/php"),
        logs = logs.display(),
        dir = dir.display(),
        crashy = crashy_dir.display(),
        bin = bin(),
        api = route("/api", "api"),
        crashy_route = route("/crashy", "crashy"),
        lazy = route("/lazy", "lazy"),
        peer = route("/peer", "peer"),
        pinged = route("/pinged", "pinged"),
        sock = route("/sock", "sock"),
    );
    let config = dir.join("peregrine.toml");
    std::fs::write(&config, &toml).unwrap();
    let server = Server::start(&["--config", config.to_str().unwrap(), "--workers", "2"]);
    Setup {
        server,
        config,
        toml,
        crashy_dir,
        logs,
    }
}

fn status(s: &Server) -> Value {
    serde_json::from_slice(&s.admin_get("/status").body).unwrap()
}

/// Pool `name` in `/status` (null before the supervisor's first look).
fn pool(s: &Server, name: &str) -> Value {
    status(s)["pools"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["name"] == name)
        .cloned()
        .unwrap_or(Value::Null)
}

/// The pids of a pool's instances in `state`.
fn pids(p: &Value, state: &str) -> Vec<u64> {
    p["instances"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|i| i["state"] == state)
        .filter_map(|i| i["pid"].as_u64())
        .collect()
}

fn serving(s: &Server, name: &str, n: usize) -> bool {
    let p = pool(s, name);
    p["state"] == "running" && pids(&p, "serving").len() == n
}

/// The pid of a one-instance pool's serving instance, from one look at
/// `/status`.
fn serving_pid(s: &Server, name: &str) -> Option<u64> {
    let p = pool(s, name);
    let pids = pids(&p, "serving");
    (p["state"] == "running" && pids.len() == 1).then(|| pids[0])
}

/// Waits for a one-instance pool to serve; the pid of its instance.
fn wait_pid(s: &Server, name: &str) -> u64 {
    let mut pid = None;
    assert!(
        wait_for(Duration::from_secs(20), || {
            pid = serving_pid(s, name);
            pid.is_some()
        }),
        "{}",
        pool(s, name)
    );
    pid.unwrap()
}

fn alive(pid: u64) -> bool {
    // A zombie is gone for our purposes: its reaper has not run yet.
    std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .is_ok_and(|s| !s.split(") ").nth(1).is_some_and(|r| r.starts_with('Z')))
}

fn start_and_ready(s: &Setup) {
    let srv = &s.server;
    assert!(
        wait_for(Duration::from_secs(20), || serving(srv, "api", 2)),
        "two api instances serve: {}",
        pool(srv, "api")
    );
    let p = pool(srv, "api");
    let pids = pids(&p, "serving");
    // Both instances answer, and each answer comes from one of them.
    let mut seen = std::collections::HashSet::new();
    for _ in 0..6 {
        let r = get(srv, "/api/hello");
        assert_eq!(r.status, 200, "{}", r.text());
        let text = r.text();
        assert!(text.contains("path=/hello"), "{text}");
        let pid: u64 = text
            .split_whitespace()
            .find_map(|w| w.strip_prefix("pid="))
            .unwrap()
            .parse()
            .unwrap();
        assert!(pids.contains(&pid), "{pid} is one of {pids:?}");
        seen.insert(pid);
    }
    assert_eq!(seen.len(), 2, "round robin over both instances");
    // Another Peregrine as a pool instance.
    assert!(wait_for(Duration::from_secs(20), || serving(
        srv, "peer", 1
    )));
    let r = get(srv, "/peer/plaintext");
    assert_eq!((r.status, r.text().as_str()), (200, "Hello, World!"));
    // Instances' output goes to the pool's log.
    let log = std::fs::read_to_string(s.logs.join("api.log")).unwrap();
    assert!(
        log.contains("listening on") && log.contains("GET /hello"),
        "{log}"
    );
}

fn crash_respawn_and_rapid_fail(s: &Setup) {
    let srv = &s.server;
    let first = wait_pid(srv, "crashy");
    // The instance dies under a request: that one fails (502), a new
    // instance takes over.
    let r = get(srv, "/crashy/crash");
    assert_eq!(r.status, 502, "{}", r.text());
    assert!(
        wait_for(Duration::from_secs(20), || serving_pid(srv, "crashy")
            .is_some_and(|p| p != first)),
        "respawned: {}",
        pool(srv, "crashy")
    );
    let p = pool(srv, "crashy");
    assert_eq!(p["restarts"], 1);
    assert_eq!(p["last_exit"], "exit status 3");
    assert_eq!(get(srv, "/crashy/").status, 200);
    // A release that cannot start: it crashes again and again, and
    // rapid-fail protection stops respawning; requests get 503 at once.
    std::fs::write(s.crashy_dir.join("crash-at-start"), b"").unwrap();
    assert_eq!(get(srv, "/crashy/crash").status, 502);
    assert!(
        wait_for(Duration::from_secs(20), || pool(srv, "crashy")["state"]
            == "failed"),
        "{}",
        pool(srv, "crashy")
    );
    let t = Instant::now();
    let r = get(srv, "/crashy/");
    assert_eq!(r.status, 503, "{}", r.text());
    assert!(t.elapsed() < Duration::from_secs(1), "refused at once");
    assert!(get(srv, "/crashy/").status == 503);
    // Fixed: a manual recycle brings it back.
    std::fs::remove_file(s.crashy_dir.join("crash-at-start")).unwrap();
    let r = srv.admin_post("/pools/crashy/recycle");
    assert_eq!(r.status, 202, "{}", r.text());
    assert!(wait_for(Duration::from_secs(20), || serving(
        srv, "crashy", 1
    )));
    assert_eq!(get(srv, "/crashy/").status, 200);
    assert_eq!(srv.admin_post("/pools/nope/recycle").status, 404);
}

fn unix_sockets(s: &Setup) {
    let srv = &s.server;
    assert!(wait_for(Duration::from_secs(20), || serving(
        srv, "sock", 1
    )));
    let p = pool(srv, "sock");
    let addr = p["instances"][0]["address"].as_str().unwrap().to_string();
    assert!(
        addr.starts_with("unix:") && addr.ends_with("/app-0.sock"),
        "{addr}"
    );
    let r = get(srv, "/sock/x");
    assert_eq!(r.status, 200, "{}", r.text());
    assert!(r.text().contains("app-0.sock"), "{}", r.text());
    // A recycle starts instance 1 on its own socket beside instance 0.
    assert_eq!(srv.admin_post("/pools/sock/recycle").status, 202);
    assert!(wait_for(Duration::from_secs(20), || {
        let p = pool(srv, "sock");
        p["instances"].as_array().is_some_and(|i| i.len() == 1)
            && p["instances"][0]["address"]
                .as_str()
                .is_some_and(|a| a.ends_with("/app-1.sock"))
    }));
    assert!(get(srv, "/sock/y").text().contains("app-1.sock"));
}

fn pings(s: &Setup) {
    let srv = &s.server;
    let first = wait_pid(srv, "pinged");
    // The application hangs (its health check fails) but does not exit:
    // the pings find it, and it is killed and started again.
    assert_eq!(get(srv, "/pinged/freeze").status, 200);
    assert!(
        wait_for(Duration::from_secs(20), || serving_pid(srv, "pinged")
            .is_some_and(|p| p != first)),
        "{}",
        pool(srv, "pinged")
    );
    let p = pool(srv, "pinged");
    assert_eq!(p["last_exit"], "2 probes in a row failed (signal 9)", "{p}");
    assert_eq!(p["restarts"], 1);
    assert!(!alive(first));
    assert_eq!(get(srv, "/pinged/").status, 200);
}

fn recycle_under_load(s: &Setup) {
    let srv = &s.server;
    assert!(wait_for(Duration::from_secs(20), || serving(srv, "api", 2)));
    let before = pids(&pool(srv, "api"), "serving");
    // 8 clients, 60 requests each (some slow): recycled every 60 requests
    // per instance, so instances are replaced several times meanwhile.
    let addr = srv.addr;
    let threads: Vec<_> = (0..8)
        .map(|t| {
            std::thread::spawn(move || {
                let mut c = common::upstreams::Client::new(addr);
                let mut failed = Vec::new();
                for i in 0..60 {
                    let path = if (i + t) % 10 == 0 {
                        "/api/slow"
                    } else {
                        "/api/x"
                    };
                    match c.get(path) {
                        Ok(r) if r.status == 200 => {}
                        Ok(r) => failed.push(format!("{} {}", r.status, r.text())),
                        Err(e) => failed.push(e.to_string()),
                    }
                }
                failed
            })
        })
        .collect();
    let failed: Vec<String> = threads
        .into_iter()
        .flat_map(|t| t.join().unwrap())
        .collect();
    assert!(failed.is_empty(), "failed requests: {failed:?}");
    assert!(wait_for(Duration::from_secs(20), || serving(srv, "api", 2)));
    let p = pool(srv, "api");
    let now = pids(&p, "serving");
    assert!(
        now.iter().all(|pid| !before.contains(pid)),
        "replaced: {before:?} then {now:?}"
    );
    assert_eq!(p["restarts"], 0, "recycling is no crash: {p}");
    // The replaced instances were stopped.
    assert!(wait_for(Duration::from_secs(10), || before
        .iter()
        .all(|&pid| !alive(pid))));
}

fn on_demand_and_idle(s: &Setup) {
    let srv = &s.server;
    let p = pool(srv, "lazy");
    assert_eq!(p["state"], "stopped");
    assert!(p["instances"].as_array().unwrap().is_empty());
    // The first request starts it and waits for it.
    let r = get(srv, "/lazy/first");
    assert_eq!(r.status, 200, "{}", r.text());
    let p = pool(srv, "lazy");
    let pid = pids(&p, "serving")[0];
    assert!(alive(pid));
    // Idle for 2 s: stopped until the next request.
    assert!(
        wait_for(Duration::from_secs(10), || pool(srv, "lazy")["state"]
            == "stopped"
            && !alive(pid)),
        "{}",
        pool(srv, "lazy")
    );
    assert_eq!(get(srv, "/lazy/again").status, 200);
}

fn fastcgi_pool(s: &Setup) {
    let srv = &s.server;
    assert!(
        wait_for(Duration::from_secs(20), || serving(srv, "php", 2)),
        "{}",
        pool(srv, "php")
    );
    let r = get(srv, "/env.php?x=1");
    assert_eq!(r.status, 200, "{}", r.text());
    let v: Value = serde_json::from_slice(&r.body).unwrap();
    assert_eq!(v["get"]["x"], "1");
    assert_eq!(v["server"]["SCRIPT_NAME"], "/env.php");
}

fn reload(s: &Setup) {
    let srv = &s.server;
    assert!(wait_for(Duration::from_secs(20), || serving(srv, "api", 2)
        && serving(srv, "peer", 1)));
    let api = pids(&pool(srv, "api"), "serving");
    let peer = pids(&pool(srv, "peer"), "serving");
    // The api pool's settings change, the peer pool's do not.
    let changed = s.toml.replacen(
        "recycle = { requests = 60 }",
        "recycle = { requests = 100000 }",
        1,
    );
    assert_ne!(changed, s.toml);
    std::fs::write(&s.config, &changed).unwrap();
    let r = srv.admin_post("/config/reload");
    assert_eq!(r.status, 200, "{}", r.text());
    // Requests keep being answered while the new instances start.
    for _ in 0..5 {
        assert_eq!(get(srv, "/api/during").status, 200);
    }
    assert!(wait_for(Duration::from_secs(20), || {
        let now = pids(&pool(srv, "api"), "serving");
        now.len() == 2 && now.iter().all(|p| !api.contains(p))
    }));
    assert!(wait_for(Duration::from_secs(10), || api
        .iter()
        .all(|&p| !alive(p))));
    assert_eq!(pids(&pool(srv, "peer"), "serving"), peer, "unchanged: kept");
    std::fs::write(&s.config, &s.toml).unwrap();
}

/// The text of the element with `id` in a rendered page.
fn text_of<'a>(dom: &'a str, id: &str) -> &'a str {
    let key = format!("id=\"{id}\"");
    let at = dom
        .find(&key)
        .unwrap_or_else(|| panic!("no #{id} in the page"));
    let open = at + dom[at..].find('>').unwrap() + 1;
    let close = open + dom[open..].find('<').unwrap();
    &dom[open..close]
}

fn dashboard(s: &Setup) {
    let srv = &s.server;
    common::chromium::chromium();
    assert!(wait_for(Duration::from_secs(20), || serving(srv, "api", 2)));
    let dom = common::chromium::rendered_dom(&format!("http://{}/", srv.admin.unwrap()));
    // The page lists the pools in the file's order, a reloaded one too.
    let st = status(srv);
    let pools = st["pools"].as_array().unwrap();
    let i = pools.iter().position(|p| p["name"] == "api").unwrap();
    assert_eq!(i, 0, "{st}");
    let api = &pools[i];
    assert_eq!(text_of(&dom, &format!("pool-{i}-name")), "api");
    assert_eq!(text_of(&dom, &format!("pool-{i}-state")), "running");
    for j in 0..2 {
        let pid = api["instances"][j]["pid"].as_u64().unwrap().to_string();
        assert_eq!(text_of(&dom, &format!("pool-{i}-{j}-pid")), pid);
        assert_eq!(text_of(&dom, &format!("pool-{i}-{j}-state")), "serving");
    }
}

fn metrics(s: &Setup) {
    let srv = &s.server;
    let m = srv.admin_get("/metrics").text();
    assert!(
        m.contains("peregrine_pool_instances{pool=\"api\",state=\"serving\"} 2"),
        "{m}"
    );
    assert!(m.contains("peregrine_pool_up{pool=\"peer\"} 1"));
    assert!(m.contains("peregrine_pool_restarts_total{pool=\"crashy\"}"));
    promtool_check(&m);
    let st = status(srv);
    let i = &st["pools"][0]["instances"][0];
    for k in ["pid", "state", "uptime_s", "requests", "address"] {
        assert!(!i[k].is_null(), "{k} in {i}");
    }
}

#[test]
fn application_pools() {
    let mut s = setup();
    run_checks(
        &s,
        &[
            ("start and ready", start_and_ready),
            (
                "crash, respawn, rapid fail, recycle",
                crash_respawn_and_rapid_fail,
            ),
            ("recycle under load", recycle_under_load),
            ("pings find a hung instance", pings),
            ("unix sockets", unix_sockets),
            ("on demand and idle", on_demand_and_idle),
            ("php-cgi as a FastCGI pool", fastcgi_pool),
            ("reload", reload),
            ("metrics and status", metrics),
            ("dashboard", dashboard),
        ],
    );
    // A graceful stop stops every instance.
    let st = status(&s.server);
    let all: Vec<u64> = st["pools"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|p| pids(p, "serving"))
        .collect();
    assert!(all.len() >= 8, "{st}");
    s.server.signal("TERM");
    assert_eq!(s.server.wait_exit(Duration::from_secs(20)), Some(0));
    for pid in all {
        assert!(!alive(pid), "instance {pid} is still running");
    }
    let err = s.server.stderr_text();
    assert!(err.contains("pool crashy"), "{err}");
}
