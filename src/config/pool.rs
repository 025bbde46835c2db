//! `[[pool]]` tables: an upstream group whose servers are processes
//! Peregrine runs (`command`, `instances`, `env`, `cwd`, `listen`, `ready`,
//! `recycle`, `rapid_fail`, `shutdown_timeout`, `start`, `idle_timeout`,
//! `log`); every error naming its key and line.

use std::ops::Range;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use serde::Deserialize;
use toml::{Spanned, Value};

use super::ConfigError;
use super::file::{Ctx, Secs, relative};
use super::upstream::RawUpstream;
use crate::pool::spec::{Listen, PoolSpec, RapidFail, Ready, Recycle, StartMode};
use crate::upstream::spec::{Address, ServerSpec};

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawReady {
    http: Option<Spanned<String>>,
    timeout: Option<Spanned<Secs>>,
    interval: Option<Spanned<Secs>>,
    fails: Option<Spanned<i64>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawRecycle {
    requests: Option<Spanned<i64>>,
    time: Option<Spanned<Secs>>,
    memory: Option<Spanned<Value>>,
    schedule: Option<Spanned<Vec<Spanned<String>>>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawRapidFail {
    max_crashes: Option<Spanned<i64>>,
    interval: Option<Spanned<Secs>>,
}

/// The first pool key of a table, with its span.
fn first_key(p: &RawUpstream) -> Option<(&'static str, Range<usize>)> {
    let spans = [
        ("command", p.command.as_ref().map(Spanned::span)),
        ("listen", p.listen.as_ref().map(Spanned::span)),
        ("instances", p.instances.as_ref().map(Spanned::span)),
        ("env", p.env.as_ref().map(Spanned::span)),
        ("cwd", p.cwd.as_ref().map(Spanned::span)),
        ("ready", p.ready.as_ref().map(Spanned::span)),
        ("recycle", p.recycle.as_ref().map(Spanned::span)),
        ("rapid_fail", p.rapid_fail.as_ref().map(Spanned::span)),
        (
            "shutdown_timeout",
            p.shutdown_timeout.as_ref().map(Spanned::span),
        ),
        ("start", p.start.as_ref().map(Spanned::span)),
        ("idle_timeout", p.idle_timeout.as_ref().map(Spanned::span)),
        ("log", p.log.as_ref().map(Spanned::span)),
    ];
    spans.into_iter().find_map(|(k, s)| s.map(|s| (k, s)))
}

/// A pool and its lanes, as the group's servers.
pub(super) type Pool = (Arc<PoolSpec>, Vec<ServerSpec>);

/// The pool of a `[[pool]]` table and its lanes as the group's servers;
/// `None` for other tables, which must not have pool keys.
pub(super) fn pool(
    cx: &Ctx<'_>,
    table: &str,
    i: usize,
    r: &RawUpstream,
    span: Range<usize>,
    file: Option<&Path>,
) -> Result<Option<Pool>, ConfigError> {
    let k = |key: &str| format!("{table}[{i}].{key}");
    let p = r;
    if table != "pool" {
        if let Some((name, at)) = first_key(p) {
            return Err(cx.err(at, &k(name), "applies only to a [[pool]] table"));
        }
        return Ok(None);
    }
    if let Some(s) = &r.servers {
        return Err(cx.err(
            s.span(),
            &k("servers"),
            "a pool's servers are the instances it runs: set instances = N",
        ));
    }
    if let Some(t) = &r.tls {
        return Err(cx.err(
            t.span(),
            &k("tls"),
            "pool instances are reached on loopback or a Unix socket, without TLS",
        ));
    }
    if let Some(h) = &r.health {
        return Err(cx.err(
            h.span(),
            &k("health"),
            "a pool checks its instances with ready = { http = \"/path\" } and replaces those that exit; passive checks (passive = { … }) apply",
        ));
    }
    let name = r.name.as_ref().map_or("", |n| n.get_ref().as_str());
    let command = match &p.command {
        None => return Err(cx.err(
            span,
            &k("command"),
            "is required: the program and its arguments, like [\"./app\", \"--port\", \"{port}\"]",
        )),
        Some(c) if c.get_ref().is_empty() || c.get_ref()[0].is_empty() => {
            return Err(cx.err(c.span(), &k("command"), "needs a program"));
        }
        Some(c) => c.get_ref().clone(),
    };
    let cwd = p.cwd.as_ref().map(|c| relative(c.get_ref(), file));
    let mut command = command;
    if command[0].contains('/') && Path::new(&command[0]).is_relative() {
        let base = cwd.clone().unwrap_or_else(|| relative(".", file));
        command[0] = base.join(&command[0]).display().to_string();
    }
    let listen = match &p.listen {
        None => Listen::Port,
        Some(l) => match l.get_ref().strip_prefix("unix:") {
            Some(path) if path.contains("{instance}") => {
                Listen::Unix(relative(path, file).display().to_string())
            }
            Some(_) => {
                return Err(cx.err(
                    l.span(),
                    &k("listen"),
                    "needs {instance} in the path: a replacement starts beside the instance it replaces",
                ));
            }
            None => {
                return Err(cx.err(
                    l.span(),
                    &k("listen"),
                    "is \"unix:/path/{instance}.sock\"; leave it out for a loopback port ({port})",
                ));
            }
        },
    };
    if listen == Listen::Port && !command.iter().any(|a| a.contains("{port}")) {
        let at = p.command.as_ref().map_or(span.clone(), Spanned::span);
        let env_port = p
            .env
            .as_ref()
            .is_some_and(|e| e.get_ref().values().any(|v| v.contains("{port}")));
        if !env_port {
            return Err(cx.err(
                at,
                &k("command"),
                "needs {port} (in an argument or an env value): where the instance listens; PORT is set too, but the command must say it uses it",
            ));
        }
    }
    let instances = cx.int(&p.instances, &k("instances"), 1, 64)?.unwrap_or(1) as usize;
    let env = p
        .env
        .as_ref()
        .map(|e| e.get_ref().clone())
        .unwrap_or_default();
    let fastcgi = r.root.is_some();
    let ready = match &p.ready {
        None => Ready {
            http: None,
            timeout: Duration::from_secs(30),
            interval: Duration::from_secs(10),
            fails: 3,
        },
        Some(rd) => {
            let rd = rd.get_ref();
            let http = match &rd.http {
                Some(h) if fastcgi => {
                    return Err(cx.err(
                        h.span(),
                        &k("ready.http"),
                        "FastCGI instances do not speak HTTP: they are ready once they accept a connection",
                    ));
                }
                Some(h) if !h.get_ref().starts_with('/') => {
                    return Err(cx.err(h.span(), &k("ready.http"), "is a path, like \"/healthz\""));
                }
                Some(h) => Some(h.get_ref().clone()),
                None => None,
            };
            let timeout = cx
                .secs(&rd.timeout, &k("ready.timeout"), Duration::from_millis(100))?
                .unwrap_or(Duration::from_secs(30));
            let interval = cx
                .secs(&rd.interval, &k("ready.interval"), Duration::ZERO)?
                .unwrap_or(Duration::from_secs(10));
            let fails = cx.int(&rd.fails, &k("ready.fails"), 0, 1000)?.unwrap_or(3) as u32;
            Ready {
                http,
                timeout,
                interval,
                fails,
            }
        }
    };
    let recycle = match &p.recycle {
        None => Recycle::default(),
        Some(rc) => recycle(cx, rc.get_ref(), &k("recycle"))?,
    };
    let rapid_fail = {
        let raw = p.rapid_fail.as_ref().map(Spanned::get_ref);
        let max = match raw {
            Some(rf) => cx.int(&rf.max_crashes, &k("rapid_fail.max_crashes"), 0, 10_000)?,
            None => None,
        };
        let interval = match raw {
            Some(rf) => cx.secs(
                &rf.interval,
                &k("rapid_fail.interval"),
                Duration::from_secs(1),
            )?,
            None => None,
        };
        RapidFail {
            max_crashes: max.unwrap_or(5) as u32,
            interval: interval.unwrap_or(Duration::from_secs(300)),
        }
    };
    let shutdown_timeout = cx
        .secs(
            &p.shutdown_timeout,
            &k("shutdown_timeout"),
            Duration::from_millis(100),
        )?
        .unwrap_or(Duration::from_secs(30));
    let start = match &p.start {
        None => StartMode::Always,
        Some(s) if s.get_ref() == "always" => StartMode::Always,
        Some(s) if s.get_ref() == "on_demand" => StartMode::OnDemand,
        Some(s) => {
            return Err(cx.err(
                s.span(),
                &k("start"),
                format!("{:?} is not a start mode (always, on_demand)", s.get_ref()),
            ));
        }
    };
    let idle_timeout = cx
        .secs(&p.idle_timeout, &k("idle_timeout"), Duration::ZERO)?
        .unwrap_or(Duration::ZERO);
    let log = match &p.log {
        Some(l) if l.get_ref().is_empty() => {
            return Err(cx.err(l.span(), &k("log"), "must not be empty"));
        }
        Some(l) => relative(l.get_ref(), file),
        None => relative(&format!("logs/pool-{name}.log"), file),
    };
    let spec = PoolSpec {
        name: name.to_string(),
        command,
        listen,
        instances,
        env,
        cwd,
        ready,
        recycle,
        rapid_fail,
        shutdown_timeout,
        start,
        idle_timeout,
        log,
    };
    // The lanes: the hub gives each the address of its instance of the day.
    let lanes = (0..spec.lanes())
        .map(|l| ServerSpec {
            name: format!("{name}#{l}"),
            address: Address::Unix(std::path::PathBuf::new()),
            weight: 1,
            backup: false,
        })
        .collect();
    Ok(Some((Arc::new(spec), lanes)))
}

fn recycle(cx: &Ctx<'_>, rc: &RawRecycle, key: &str) -> Result<Recycle, ConfigError> {
    let k = |n: &str| format!("{key}.{n}");
    let requests = cx
        .int(&rc.requests, &k("requests"), 0, i64::MAX)?
        .unwrap_or(0) as u64;
    let time = cx
        .secs(&rc.time, &k("time"), Duration::ZERO)?
        .unwrap_or(Duration::ZERO);
    let memory = match &rc.memory {
        None => 0,
        Some(v) => super::proxy::size_of(v.get_ref()).ok_or_else(|| {
            cx.err(
                v.span(),
                &k("memory"),
                "must be a size like \"512MiB\" (bytes as a number, or KiB, MiB, GiB; 0 is off)",
            )
        })?,
    };
    let mut schedule = Vec::new();
    for t in rc.schedule.iter().flat_map(|s| s.get_ref()) {
        let m = t.get_ref().split_once(':').and_then(|(h, m)| {
            let (h, m): (u16, u16) = (h.parse().ok()?, m.parse().ok()?);
            (h < 24 && m < 60).then_some(h * 60 + m)
        });
        match m {
            Some(m) => schedule.push(m),
            None => {
                return Err(cx.err(
                    t.span(),
                    &k("schedule"),
                    format!(
                        "{:?} is not a time of day like \"03:30\" (UTC)",
                        t.get_ref()
                    ),
                ));
            }
        }
    }
    Ok(Recycle {
        requests,
        time,
        memory,
        schedule,
    })
}

#[cfg(test)]
#[path = "pool_tests.rs"]
mod tests;
