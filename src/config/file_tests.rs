//! Parsing configuration files: every section, and errors that name the
//! key and the line.

use super::*;

fn err(text: &str) -> String {
    parse(text, Some(Path::new("p.toml")))
        .unwrap_err()
        .to_string()
}

#[test]
fn full_file() {
    let c = parse(
        r#"
listen = ["127.0.0.1:9000", "[::1]:9000"]
workers = 3
root = "site"
builtins = true
[limits]
max_request_line_size = 4096
max_request_body_size = 1000
[timeouts]
keep_alive_timeout = "2m"
request_headers_timeout = 1.5
shutdown_timeout = "500ms"
shutdown_delay = "5s"
[engine]
multishot = false
buffer_count = 512
"#,
        Some(Path::new("/etc/peregrine/p.toml")),
    )
    .unwrap();
    assert_eq!(c.listen.len(), 2);
    assert_eq!(c.workers, 3);
    assert_eq!(c.root.as_deref(), Some(Path::new("/etc/peregrine/site")));
    assert!(c.builtins);
    assert_eq!(c.limits.max_request_line_size, 4096);
    assert_eq!(c.limits.max_request_body_size, 1000);
    assert_eq!(c.timeouts.keep_alive_timeout, Duration::from_secs(120));
    assert_eq!(
        c.timeouts.request_headers_timeout,
        Duration::from_millis(1500)
    );
    assert_eq!(c.timeouts.shutdown_timeout, Duration::from_millis(500));
    assert_eq!(c.timeouts.shutdown_delay, Duration::from_secs(5));
    assert!(!c.engine.multishot);
    assert_eq!(c.engine.buffer_count, 512);
    assert!(c.metrics);
    assert_eq!(c.admin.listen, Some("127.0.0.1:9901".parse().unwrap()));
}

#[test]
fn observability_sections() {
    let c = parse(
        "[admin]\nlisten = \"off\"\n[metrics]\nenabled = false\n[access_log]\npath = \"logs/access.log\"\nformat = \"json\"\n",
        Some(Path::new("/srv/p.toml")),
    )
    .unwrap();
    assert_eq!(c.admin.listen, None);
    assert!(!c.metrics);
    let log = c.access_log.unwrap();
    assert_eq!(log.path.as_deref(), Some(Path::new("/srv/logs/access.log")));
    assert_eq!(log.format, crate::accesslog::Format::Json);
    assert!(
        parse("[access_log]\nenabled = false\n", None)
            .unwrap()
            .access_log
            .is_none()
    );
    assert!(
        err("[access_log]\nformat = \"xml\"\n").starts_with("p.toml:2: access_log.format: must be")
    );
    assert!(err("[admin]\nlisten = \"0.0.0.0:9901\"\n").starts_with(
        "p.toml:2: admin.token: listening on 0.0.0.0:9901 (not loopback) needs admin.token"
    ));
    assert!(
        err("[admin]\nlisten = \"0.0.0.0:9901\"\ntoken = \"short\"\n")
            .starts_with("p.toml:3: admin.token: must be at least 16")
    );
    let ok = parse(
        "[admin]\nlisten = \"0.0.0.0:9901\"\ntoken = \"0123456789abcdef\"\n",
        None,
    )
    .unwrap();
    assert_eq!(ok.admin.token.as_deref(), Some("0123456789abcdef"));
}

#[test]
fn admin_hosts() {
    let c = parse(
        "[admin]\nhosts = [\"Ops.Example.com\", \"metrics-1\"]\n",
        None,
    )
    .unwrap();
    assert_eq!(c.admin.hosts, ["ops.example.com", "metrics-1"]);
    assert_eq!(
        err("[admin]\nhosts = [\n  \"ok.example\",\n  \"ops.example.com:9901\",\n]\n"),
        "p.toml:4: admin.hosts: \"ops.example.com:9901\" is not a host name (letters, digits, hyphens and dots; no port or wildcard)"
    );
    for bad in [
        "",
        "*.example.com",
        "a..b",
        "-a.example",
        "a.example.",
        "[::1]",
    ] {
        assert!(
            err(&format!("[admin]\nhosts = [{bad:?}]\n")).starts_with("p.toml:2: admin.hosts: "),
            "{bad:?}"
        );
    }
    assert!(err("[admin]\nhosts = [\"127.0.0.1\"]\n").contains("IP addresses are always accepted"));
    assert!(err("[admin]\nhosts = \"ops.example.com\"\n").starts_with("p.toml:2: admin.hosts: "));
}

#[test]
fn errors_name_key_and_line() {
    assert_eq!(
        err("workers = 2\n[limits]\nmax_request_line_size = 0\n"),
        "p.toml:3: limits.max_request_line_size: must be between 64 and 1048576 (got 0)"
    );
    assert_eq!(
        err("workers = 0\n"),
        "p.toml:1: workers: must be a number from 1 to 1024, or \"auto\""
    );
    assert!(
        err("listen = \"nonsense\"\n")
            .starts_with("p.toml:1: listen: \"nonsense\" is not an address")
    );
    assert!(
        err("\n[timeouts]\nsend_timeout = \"soon\"\n")
            .starts_with("p.toml:3: timeouts.send_timeout: must be a duration")
    );
    assert!(
        err("[engine]\nbuffer_count = 100\n")
            .contains("engine.buffer_count: must be a power of two")
    );
    let unknown = err("workers = 1\nwokers = 2\n");
    assert!(
        unknown.starts_with("p.toml:2: wokers: unknown field `wokers`"),
        "{unknown}"
    );
    let typed = err("[limits]\nmax_request_header_count = \"many\"\n");
    assert!(
        typed.starts_with("p.toml:2: limits.max_request_header_count:"),
        "{typed}"
    );
    let syntax = err("workers = \n");
    assert!(syntax.starts_with("p.toml:1:"), "{syntax}");
}

#[test]
fn tls_section() {
    let c = parse(
        "[tls]\nlisten = \"127.0.0.1:8443\"\ncert = \"c.pem\"\nkey = \"k.pem\"\nmin_version = \"1.3\"\nredirect_http = true\nhsts = { max_age = 600, preload = true }\n[[tls.sni]]\nnames = [\"a.test\", \"*.b.test\"]\ncert = \"a.pem\"\nkey = \"a.key\"\n",
        Some(Path::new("/etc/p/p.toml")),
    )
    .unwrap();
    let t = c.tls.unwrap();
    assert_eq!(t.listen, vec!["127.0.0.1:8443".parse().unwrap()]);
    assert_eq!(t.cert, Path::new("/etc/p/c.pem"));
    assert_eq!(t.min_version, crate::tls::MinVersion::Tls13);
    assert!(t.redirect_http);
    assert_eq!(
        t.hsts.unwrap().header_line(),
        "Strict-Transport-Security: max-age=600; preload\r\n"
    );
    assert_eq!(t.sni[0].names, vec!["a.test", "*.b.test"]);
    assert!(
        err("[tls]\nlisten = \"127.0.0.1:1\"\ncert = \"c\"\n")
            .starts_with("p.toml:1: tls.key: is required")
    );
    assert!(
        err("[tls]\nlisten = \"127.0.0.1:1\"\ncert = \"c\"\nkey = \"k\"\nmin_version = \"1.0\"\n")
            .starts_with("p.toml:5: tls.min_version: must be")
    );
    assert!(err("[tls]\nlisten = \"127.0.0.1:1\"\ncert = \"c\"\nkey = \"k\"\nclient_auth = \"required\"\n").contains("tls.client_ca: is required"));
}

#[test]
fn minimum_rates() {
    let c = parse(
        "[limits]\nmin_request_body_data_rate = 0\nmin_response_data_rate = { bytes_per_second = 1000, grace = \"2s\" }\n",
        None,
    )
    .unwrap();
    assert_eq!(c.limits.min_request_body_data_rate.bytes_per_second, 0);
    assert_eq!(c.limits.min_response_data_rate.bytes_per_second, 1000);
    assert_eq!(
        c.limits.min_response_data_rate.grace,
        Duration::from_secs(2)
    );
    let d = parse("[limits]\nmin_response_data_rate = 50\n", None).unwrap();
    assert_eq!(
        d.limits.min_response_data_rate.grace,
        Duration::from_secs(5)
    );
    assert_eq!(
        err("[limits]\nmin_request_body_data_rate = -1\n"),
        "p.toml:2: limits.min_request_body_data_rate: bytes_per_second must be between 0 (off) and 1073741824 (got -1)"
    );
    assert_eq!(
        err("[limits]\nmin_response_data_rate = { bytes_per_second = 1, grace = \"x\" }\n"),
        "p.toml:2: limits.min_response_data_rate: grace must be a duration up to a day, like \"5s\""
    );
}

#[test]
fn durations() {
    assert_eq!(parse_duration("30s"), Some(Duration::from_secs(30)));
    assert_eq!(parse_duration("250ms"), Some(Duration::from_millis(250)));
    assert_eq!(parse_duration("1h"), Some(Duration::from_secs(3600)));
    assert_eq!(parse_duration("x"), None);
    assert_eq!(parse_duration("5 days"), None);
}
