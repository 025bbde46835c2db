//! The transports of `[[upstream]]` servers: `unix:` socket paths, and the
//! TLS keys (`tls`, `server_name`, `ca`, `tls_verify`, `client_cert`,
//! `client_key`) with their defaults
//! and errors that name the key and the line.

use std::net::IpAddr;
use std::path::{Path, PathBuf};

use rustls::pki_types::ServerName;

use crate::config::parse;
use crate::upstream::spec::Address;

fn err(text: &str) -> String {
    parse(text, Some(Path::new("p.toml")))
        .unwrap_err()
        .to_string()
}

/// A directory with a CA certificate in `ca.pem` and a configuration file
/// path beside it.
fn with_ca() -> (PathBuf, PathBuf) {
    use std::sync::atomic::{AtomicUsize, Ordering};
    static N: AtomicUsize = AtomicUsize::new(0);
    let d = std::env::temp_dir().join(format!(
        "peregrine-upstream-tls-{}-{}",
        std::process::id(),
        N.fetch_add(1, Ordering::Relaxed)
    ));
    std::fs::create_dir_all(&d).unwrap();
    let key = rcgen::KeyPair::generate().unwrap();
    let mut p = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
    p.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
    std::fs::write(d.join("ca.pem"), p.self_signed(&key).unwrap().pem()).unwrap();
    let file = d.join("p.toml");
    (d, file)
}

#[test]
fn unix_socket_servers() {
    let c = parse(
        "[[upstream]]\nname = \"app\"\nservers = [\"unix:/run/app.sock\", { address = \"unix:sock/b.sock\", weight = 2 }]\n",
        Some(Path::new("/etc/peregrine/p.toml")),
    )
    .unwrap();
    let s = &c.upstreams[0].servers;
    assert_eq!(s[0].address, Address::Unix("/run/app.sock".into()));
    assert_eq!(s[0].name, "unix:/run/app.sock");
    // Relative paths are the file's directory's, as other paths are.
    assert_eq!(
        s[1].address,
        Address::Unix("/etc/peregrine/sock/b.sock".into())
    );
    assert_eq!(s[1].weight, 2);
    assert_eq!(s[0].host(), None);
    assert_eq!(s[0].host_header(), "localhost");
    assert_eq!(s[0].address.to_string(), "unix:/run/app.sock");

    let long = format!("unix:/{}", "s".repeat(107));
    let got = err(&format!(
        "[[upstream]]\nname = \"app\"\nservers = [\n  \"{long}\",\n]\n"
    ));
    assert_eq!(
        got,
        format!(
            "p.toml:4: upstream[0].servers[0]: \"{long}\": the socket path is 108 bytes long; a Unix socket path holds at most 107"
        )
    );
}

#[test]
fn tcp_servers_keep_their_host() {
    let c = parse(
        "[[upstream]]\nname = \"app\"\nservers = [\"[::1]:9002\", \"localhost:9003\", \"10.0.0.1:80\"]\n",
        None,
    )
    .unwrap();
    let s = &c.upstreams[0].servers;
    assert_eq!(s[0].address, Address::Tcp("[::1]:9002".parse().unwrap()));
    let hosts: Vec<Option<&str>> = s.iter().map(|s| s.host()).collect();
    assert_eq!(hosts, [Some("::1"), Some("localhost"), Some("10.0.0.1")]);
    assert_eq!(s[1].host_header(), "localhost:9003");
    assert!(c.upstreams[0].tls.is_none(), "plain HTTP by default");
}

#[test]
fn tls_defaults_and_names() {
    let (dir, file) = with_ca();
    let text = "[[upstream]]\nname = \"app\"\nservers = [\"localhost:8443\", \"127.0.0.1:8443\", \"[::1]:8443\"]\ntls = true\nca = \"ca.pem\"\n";
    let c = parse(text, Some(&file)).unwrap();
    let u = &c.upstreams[0];
    let t = u.tls.as_ref().expect("tls");
    assert!(t.verify, "verification is on by default");
    assert_eq!(t.server_name, None);
    assert_eq!(t.ca.as_deref(), Some(dir.join("ca.pem").as_path()));
    assert_eq!(t.config.alpn_protocols, [b"http/1.1".to_vec()]);
    // Each server is verified for its own host: a name, or an IP address.
    let names: Vec<ServerName<'static>> = u.servers.iter().map(|s| t.name_for(s)).collect();
    assert_eq!(
        names,
        [
            ServerName::try_from("localhost").unwrap().to_owned(),
            ServerName::IpAddress("127.0.0.1".parse::<IpAddr>().unwrap().into()),
            ServerName::IpAddress("::1".parse::<IpAddr>().unwrap().into()),
        ]
    );
    assert!(Address::Tcp("127.0.0.1:8443".parse().unwrap()) == u.servers[1].address);
    // Loading again builds a new configuration, but the settings compare
    // equal (a reload keeps the group's pool).
    let again = parse(text, Some(&file)).unwrap();
    assert_eq!(again.upstreams[0], *u);
    assert!(!std::sync::Arc::ptr_eq(
        &again.upstreams[0].tls.as_ref().unwrap().config,
        &t.config
    ));
    let v = crate::config::json::render(&c);
    assert_eq!(v["upstream"][0]["tls"]["tls_verify"], true);
    assert_eq!(
        v["upstream"][0]["tls"]["server_name"],
        serde_json::Value::Null
    );

    // An explicit server_name is used for every server; a Unix socket needs it.
    let text = format!(
        "[[upstream]]\nname = \"app\"\nservers = [\"unix:{}/s.sock\", \"127.0.0.1:1\"]\ntls = true\nserver_name = \"app.internal\"\nca = \"ca.pem\"\n",
        dir.display()
    );
    let c = parse(&text, Some(&file)).unwrap();
    let u = &c.upstreams[0];
    let t = u.tls.as_ref().unwrap();
    for s in &u.servers {
        assert_eq!(t.name_for(s), ServerName::try_from("app.internal").unwrap());
    }
    let v = crate::config::json::render(&c);
    assert_eq!(v["upstream"][0]["tls"]["server_name"], "app.internal");

    // Without verification a Unix socket needs no name.
    let text = "[[upstream]]\nname = \"app\"\nservers = [\"unix:/run/s.sock\"]\ntls = true\ntls_verify = false\n";
    let c = parse(text, None).unwrap();
    assert!(!c.upstreams[0].tls.as_ref().unwrap().verify);
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn tls_errors_name_the_key_and_the_line() {
    let up =
        |rest: &str| format!("[[upstream]]\nname = \"app\"\nservers = [\"127.0.0.1:1\"]\n{rest}");
    let cases: &[(&str, &str)] = &[
        (
            "tls = \"yes\"",
            "p.toml:4: upstream[0].tls: must be true or false",
        ),
        (
            "tls = true\ntls_verify = 0",
            "p.toml:5: upstream[0].tls_verify: must be true or false",
        ),
        (
            "server_name = \"a.test\"",
            "p.toml:4: upstream[0].server_name: applies only with tls = true",
        ),
        (
            "tls = false\nca = \"ca.pem\"",
            "p.toml:5: upstream[0].ca: applies only with tls = true",
        ),
        (
            "tls_verify = false",
            "p.toml:4: upstream[0].tls_verify: applies only with tls = true",
        ),
        (
            "tls = true\ntls_verify = false\nserver_name = \"not a name\"",
            "p.toml:6: upstream[0].server_name: \"not a name\" is not a DNS name or an IP address",
        ),
        (
            "tls = true\ntls_verify = false\nca = \"\"",
            "p.toml:6: upstream[0].ca: must be a file name",
        ),
        (
            "client_cert = \"c.pem\"\nclient_key = \"c.key\"",
            "p.toml:4: upstream[0].client_cert: applies only with tls = true",
        ),
        (
            "tls = true\ntls_verify = false\nclient_cert = \"c.pem\"",
            "p.toml:6: upstream[0].client_key: is required with client_cert",
        ),
        (
            "tls = true\ntls_verify = false\nclient_key = \"c.key\"",
            "p.toml:6: upstream[0].client_cert: is required with client_key",
        ),
        (
            "tls = true\ntls_verify = false\nclient_cert = \"\"\nclient_key = \"c.key\"",
            "p.toml:6: upstream[0].client_cert: must be a file name",
        ),
    ];
    for (rest, want) in cases {
        assert_eq!(&err(&up(rest)), want, "{rest}");
    }
    assert_eq!(
        err("[[upstream]]\nname = \"app\"\nservers = [\"unix:/run/s.sock\"]\n\ntls = true\n"),
        "p.toml:5: upstream[0].server_name: is required with tls = true when a server is a Unix socket \
         (unix:/run/s.sock is servers[0]): there is no host name to verify the certificate against"
    );

    let (dir, file) = with_ca();
    let missing = dir.join("missing.pem");
    let got = parse(&up("tls = true\n\nca = \"missing.pem\"\n"), Some(&file))
        .unwrap_err()
        .to_string();
    let want = format!(
        "{}:6: upstream[0].ca: {}: cannot open: ",
        file.display(),
        missing.display()
    );
    assert!(got.starts_with(&want), "{got}\nwant: {want}");

    let bad = dir.join("bad.pem");
    std::fs::write(&bad, "-----BEGIN CERTIFICATE-----\nMIIB\n").unwrap();
    let got = parse(&up("tls = true\nca = \"bad.pem\"\n"), Some(&file))
        .unwrap_err()
        .to_string();
    assert_eq!(
        got,
        format!(
            "{}:5: upstream[0].ca: {}: PEM block 1 is truncated: it has no \"-----END CERTIFICATE-----\" line",
            file.display(),
            bad.display()
        )
    );
    // The second group's error names the second group.
    let two = format!(
        "{}[[upstream]]\nname = \"b\"\nservers = [\"127.0.0.1:2\"]\ntls = true\nca = \"bad.pem\"\n",
        up("")
    );
    let got = parse(&two, Some(&file)).unwrap_err().to_string();
    assert!(
        got.starts_with(&format!("{}:8: upstream[1].ca: ", file.display())),
        "{got}"
    );
    // A client certificate that cannot be read names its key and line.
    let got = parse(
        &up("tls = true\nclient_cert = \"missing.pem\"\nclient_key = \"c.key\"\n"),
        Some(&file),
    )
    .unwrap_err()
    .to_string();
    let want = format!(
        "{}:5: upstream[0].client_cert: {}: cannot open: ",
        file.display(),
        missing.display()
    );
    assert!(got.starts_with(&want), "{got}\nwant: {want}");
    std::fs::remove_dir_all(&dir).unwrap();
}
