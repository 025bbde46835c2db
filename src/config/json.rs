//! The effective configuration as JSON (`GET /config` on the admin
//! listener): every setting with the value in effect, defaults included,
//! in the file's own key names. Durations are seconds; the admin token is
//! never shown, only whether one is set.

use std::path::Path;
use std::time::Duration;

use serde_json::{Value, json};

use super::Config;
use crate::http::MinRate;
use crate::site::spec::{HandlerSpec, Route, Rules, Site, StatusMatch};
use crate::upstream::spec::{HashKind, HeaderOps, UpstreamSpec};

fn secs(d: Duration) -> Value {
    json!(d.as_secs_f64())
}

fn path(p: &Path) -> Value {
    json!(p.display().to_string())
}

fn rate(r: &MinRate) -> Value {
    json!({ "bytes_per_second": r.bytes_per_second, "grace": secs(r.grace) })
}

fn pairs(v: &[(String, String)]) -> Value {
    Value::Object(
        v.iter()
            .map(|(k, v)| (k.clone(), Value::from(v.as_str())))
            .collect(),
    )
}

fn rules(r: &Rules, out: &mut serde_json::Map<String, Value>) {
    let mut headers = serde_json::Map::new();
    if !r.set.is_empty() {
        headers.insert("set".into(), pairs(&r.set));
    }
    if !r.add.is_empty() {
        headers.insert("add".into(), pairs(&r.add));
    }
    if !r.remove.is_empty() {
        headers.insert("remove".into(), json!(r.remove));
    }
    if !headers.is_empty() {
        out.insert("response_headers".into(), Value::Object(headers));
    }
    if !r.errors.is_empty() {
        let pages = r
            .errors
            .iter()
            .map(|(m, p)| {
                let k = match m {
                    StatusMatch::Code(c) => c.to_string(),
                    StatusMatch::Class(c) => format!("{c}xx"),
                };
                (k, Value::from(p.as_str()))
            })
            .collect();
        out.insert("errors".into(), Value::Object(pages));
    }
}

fn route(r: &Route) -> Value {
    let mut v = json!({ "path": r.path, "exact": r.exact });
    let o = v.as_object_mut().expect("an object");
    if let Some(m) = r.methods {
        o.insert("methods".into(), json!(m.allow_header()));
    }
    let (handler, more) = match &r.handler {
        HandlerSpec::Files(f) => (
            "files".to_string(),
            json!({
                "root": path(&f.root), "index": f.index, "browse": f.browse,
                "hide": f.hide, "dotfiles": f.dotfiles,
            }),
        ),
        HandlerSpec::Redirect { to, status } => (
            "redirect".into(),
            json!({ "to": to.source(), "status": status }),
        ),
        HandlerSpec::Respond {
            status,
            body,
            headers,
        } => (
            "respond".into(),
            json!({ "status": status, "body": body, "headers": pairs(headers) }),
        ),
        HandlerSpec::Builtins => ("builtins".into(), json!({})),
        HandlerSpec::Named { name, options } => (
            name.clone(),
            json!({ "options": serde_json::to_value(&options.0).unwrap_or(Value::Null) }),
        ),
        HandlerSpec::FastCgi { upstream } => ("fastcgi".into(), json!({ "upstream": upstream })),
        HandlerSpec::Proxy(p) => (
            "proxy".into(),
            json!({
                "upstream": p.upstream, "preserve_host": p.preserve_host,
                "strip_prefix": p.strip_prefix, "prefix": p.prefix,
                "header_up": header_ops(&p.header_up), "header_down": header_ops(&p.header_down),
                "trusted_proxies": p.trusted_proxies.iter()
                    .map(|c| format!("{}/{}", c.addr, c.prefix)).collect::<Vec<_>>(),
                "forwarded": p.forwarded, "via": p.via,
                "buffering": {
                    "response": if p.buffer_response { "buffer" } else { "stream" },
                    "max_memory": p.max_memory,
                },
            }),
        ),
    };
    o.insert("handler".into(), handler.into());
    if let Value::Object(m) = more {
        o.extend(m);
    }
    rules(&r.rules, o);
    if let Some(c) = &r.cache {
        o.insert("cache".into(), cache_rule(c));
    }
    v
}

fn cache_rule(c: &crate::cache::CacheRule) -> Value {
    use crate::cache::Bypass;
    let ttl: serde_json::Map<String, Value> = c
        .ttl
        .iter()
        .map(|(s, d)| {
            (
                s.map_or("any".into(), |s| s.to_string()),
                json!(d.as_secs()),
            )
        })
        .collect();
    json!({
        "ttl": ttl,
        "vary_by_query": c.vary_by_query,
        "stale_while_revalidate": c.stale_while_revalidate.as_secs_f64(),
        "stale_if_error": c.stale_if_error.as_secs_f64(),
        "lock": c.lock,
        "lock_timeout": c.lock_timeout.as_secs_f64(),
        "bypass_if": c.bypass_if.iter().map(|b| match b {
            Bypass::Header(n) => format!("header:{n}"),
            Bypass::Cookie(n) => format!("cookie:{n}"),
            Bypass::Query(n) => format!("query:{n}"),
        }).collect::<Vec<_>>(),
        "store_set_cookie": c.store_set_cookie,
    })
}

fn header_ops(h: &HeaderOps) -> Value {
    json!({ "set": pairs(&h.set), "add": pairs(&h.add), "remove": h.remove })
}

fn upstream(u: &UpstreamSpec) -> Value {
    let h = &u.health;
    let p = &u.passive;
    let k = &u.keepalive;
    let t = &u.timeouts;
    json!({
        "name": u.name,
        "servers": u.servers.iter().map(|s| json!({
            "address": s.name,
            "resolved": s.address.to_string(),
            "weight": s.weight,
            "backup": s.backup,
        })).collect::<Vec<_>>(),
        "lb_policy": u.policy.name(),
        "lb_key": u.lb_key,
        "hash": match u.hash { HashKind::Rendezvous => "rendezvous" },
        "health": {
            "uri": h.uri, "interval": secs(h.interval), "timeout": secs(h.timeout),
            "passes": h.passes, "fails": h.fails,
            "expect_status": h.expect_status.iter()
                .map(|(a, b)| if a == b { a.to_string() } else { format!("{a}-{b}") })
                .collect::<Vec<_>>().join(","),
            "expect_body": h.expect_body,
        },
        "passive": {
            "max_fails": p.max_fails, "fail_timeout": secs(p.fail_timeout),
            "unhealthy_status": p.unhealthy_status,
        },
        "retry": {
            "tries": u.retry.tries,
            "on": u.retry.on.iter().map(|o| o.name()).collect::<Vec<_>>(),
            "non_idempotent": u.retry.non_idempotent,
        },
        "slow_start": secs(u.slow_start),
        "sticky": u.sticky.as_ref().map(|s| json!({ "cookie": s.cookie })),
        "max_conns": u.max_conns,
        "keepalive": {
            "idle": k.idle, "max_requests": k.max_requests,
            "lifetime": secs(k.lifetime), "idle_timeout": secs(k.idle_timeout),
        },
        "timeouts": {
            "connect": secs(t.connect), "response_head": secs(t.response_head),
            "read_idle": secs(t.read_idle), "send_idle": secs(t.send_idle),
        },
        "tls": u.tls.as_ref().map(|t| json!({
            "server_name": t.server_name.as_ref().map(|n| n.to_str().into_owned()),
            "ca": t.ca.as_ref().map(|p| p.display().to_string()),
            "tls_verify": t.verify,
        })),
        "fastcgi": u.fastcgi.as_ref().map(|a| json!({
            "root": path(&a.root), "split_path_info": a.split_path_info, "index": a.index,
            "try_files": a.try_files, "params": pairs(&a.params), "keep_conn": a.keep_conn,
        })),
        "pool": u.pool.as_ref().map(|p| pool(p)),
    })
}

/// A `[[pool]]`'s settings; the environment's values are left out (they
/// may hold secrets), its names shown.
fn pool(p: &crate::pool::PoolSpec) -> Value {
    use crate::pool::spec::{Listen, StartMode};
    let r = &p.recycle;
    json!({
        "command": p.command,
        "listen": match &p.listen { Listen::Port => "127.0.0.1:{port}".to_string(), Listen::Unix(t) => format!("unix:{t}") },
        "instances": p.instances,
        "env": p.env.keys().collect::<Vec<_>>(),
        "cwd": p.cwd.as_deref().map(path),
        "ready": { "http": p.ready.http, "timeout": secs(p.ready.timeout), "interval": secs(p.ready.interval), "fails": p.ready.fails },
        "recycle": {
            "requests": r.requests, "time": secs(r.time), "memory": r.memory,
            "schedule": r.schedule.iter().map(|m| format!("{:02}:{:02}", m / 60, m % 60)).collect::<Vec<_>>(),
        },
        "rapid_fail": { "max_crashes": p.rapid_fail.max_crashes, "interval": secs(p.rapid_fail.interval) },
        "shutdown_timeout": secs(p.shutdown_timeout),
        "start": match p.start { StartMode::Always => "always", StartMode::OnDemand => "on_demand" },
        "idle_timeout": secs(p.idle_timeout),
        "log": path(&p.log),
    })
}

fn site(s: &Site) -> Value {
    let addrs = |l: &Option<Vec<std::net::SocketAddr>>| {
        l.as_ref()
            .map(|v| json!(v.iter().map(|a| a.to_string()).collect::<Vec<_>>()))
    };
    let mut v = json!({
        "name": s.name,
        "hosts": s.hosts,
        "listen": addrs(&s.listen),
        "tls_listen": addrs(&s.tls_listen),
        "tls": s.tls.as_ref().map(|t| json!({ "cert": path(&t.cert), "key": path(&t.key) })),
        "root": s.root.as_deref().map(path),
        "index": s.index,
        "default": s.default,
        "route": s.routes.iter().map(route).collect::<Vec<_>>(),
    });
    if let Some(z) = &s.compression {
        v["compression"] = compression(z);
    }
    rules(&s.rules, v.as_object_mut().expect("an object"));
    v
}

fn compression(z: &crate::site::compression::CompressionSpec) -> Value {
    let names = |v: &[crate::compress::Coding]| v.iter().map(|c| c.name()).collect::<Vec<_>>();
    json!({
        "encodings": names(&z.encodings),
        "min_length": z.min_length,
        "mime_types": z.mime_types,
        "levels": { "br": z.levels.br, "zstd": z.levels.zstd, "gzip": z.levels.gzip },
        "precompressed": names(&z.precompressed),
    })
}

/// The configuration `c` as JSON.
pub fn render(c: &Config) -> Value {
    let l = &c.limits;
    let t = &c.timeouts;
    let e = &c.engine;
    let tls = c.tls.as_ref().map(|t| {
        json!({
            "listen": t.listen.iter().map(|a| a.to_string()).collect::<Vec<_>>(),
            "cert": path(&t.cert),
            "key": path(&t.key),
            "sni": t.sni.iter().map(|s| json!({
                "names": s.names, "cert": path(&s.cert), "key": path(&s.key),
            })).collect::<Vec<_>>(),
            "min_version": match t.min_version {
                crate::tls::MinVersion::Tls12 => "1.2",
                crate::tls::MinVersion::Tls13 => "1.3",
            },
            "client_auth": match t.client_auth {
                crate::tls::ClientAuth::None => "none",
                crate::tls::ClientAuth::Optional => "optional",
                crate::tls::ClientAuth::Required => "required",
            },
            "client_ca": t.client_ca.as_deref().map(path),
            "redirect_http": t.redirect_http,
            "hsts": t.hsts.as_ref().map(|h| json!({
                "max_age": h.max_age,
                "include_subdomains": h.include_subdomains,
                "preload": h.preload,
            })),
            "session_resumption": t.session_resumption,
        })
    });
    json!({
        "source": c.source.as_deref().map(path),
        "listen": c.listen.iter().map(|a| a.to_string()).collect::<Vec<_>>(),
        "workers": c.workers,
        "root": c.root.as_deref().map(path),
        "builtins": c.builtins,
        "compression": c.compression.as_ref().map(compression),
        "cache": { "max_size": c.cache.max_size, "max_object_size": c.cache.max_object_size },
        "limits": {
            "max_request_line_size": l.max_request_line_size,
            "max_request_headers_total_size": l.max_request_headers_total_size,
            "max_request_header_count": l.max_request_header_count,
            "max_request_body_size": l.max_request_body_size,
            "max_connections": e.max_connections,
            "min_request_body_data_rate": rate(&l.min_request_body_data_rate),
            "min_response_data_rate": rate(&l.min_response_data_rate),
        },
        "timeouts": {
            "keep_alive_timeout": secs(t.keep_alive_timeout),
            "request_headers_timeout": secs(t.request_headers_timeout),
            "request_body_timeout": secs(t.request_body_timeout),
            "send_timeout": secs(t.send_timeout),
            "lingering_timeout": secs(t.lingering_timeout),
            "shutdown_timeout": secs(t.shutdown_timeout),
            "shutdown_delay": secs(t.shutdown_delay),
        },
        "engine": {
            "ring_entries": e.ring_entries,
            "buffer_count": e.buffer_count,
            "buffer_size": e.buffer_size,
            "multishot": e.multishot,
            "defer_taskrun": e.defer_taskrun,
            "file_chunk_size": e.file_chunk_size,
            "splice_min_size": e.splice_min_size,
            "listen_backlog": e.listen_backlog,
        },
        "admin": {
            "listen": c.admin.listen.map(|a| a.to_string()),
            "token": if c.admin.token.is_some() { "(set)" } else { "(none)" },
            "hosts": c.admin.hosts,
        },
        "metrics": { "enabled": c.metrics },
        "access_log": {
            "enabled": c.access_log.is_some(),
            "path": c.access_log.as_ref().and_then(|a| a.path.as_deref()).map(path),
            "format": c.access_log.as_ref().map(|a| match a.format {
                crate::accesslog::Format::Combined => "combined",
                crate::accesslog::Format::Json => "json",
            }),
        },
        "tls": tls,
        "site": c.sites.iter().map(site).collect::<Vec<_>>(),
        "upstream": c.upstreams.iter().map(upstream).collect::<Vec<_>>(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_table_with_defaults_and_no_token() {
        let c = super::super::parse(
            r#"
[timeouts]
shutdown_delay = "2s"
[admin]
token = "0123456789abcdef0123"
[[site]]
name = "a"
hosts = ["a.test"]
response_headers = { set = { "X-Site" = "a" } }
[[site.route]]
path = "/hi"
handler = "respond"
body = "hi\n"
[[site.route]]
path = "/old"
handler = "redirect"
to = "https://{host}/new{rest}"
"#,
            Some(Path::new("/etc/p.toml")),
        )
        .unwrap();
        let v = render(&c);
        assert_eq!(v["source"], "/etc/p.toml");
        assert_eq!(v["timeouts"]["shutdown_delay"], 2.0);
        assert_eq!(v["timeouts"]["keep_alive_timeout"], 130.0);
        assert_eq!(v["limits"]["max_request_line_size"], 8192);
        assert_eq!(v["admin"]["token"], "(set)");
        assert!(!v.to_string().contains("0123456789abcdef"));
        let site = &v["site"][0];
        assert_eq!(site["name"], "a");
        assert_eq!(site["response_headers"]["set"]["X-Site"], "a");
        assert_eq!(site["route"][0]["handler"], "respond");
        assert_eq!(site["route"][0]["body"], "hi\n");
        assert_eq!(site["route"][1]["to"], "https://{host}/new{rest}");
        assert_eq!(v["tls"], Value::Null);
    }
}
