//! `[[fastcgi]]` tables and `handler = "fastcgi"` routes: what they parse
//! into, and errors that name the key and the line.

use std::path::Path;
use std::time::Duration;

use crate::config::parse;
use crate::site::spec::HandlerSpec;

fn err(text: &str) -> String {
    parse(text, Some(Path::new("/etc/p.toml")))
        .unwrap_err()
        .to_string()
}

const SITE: &str = "[[site]]\nname = \"a\"\ndefault = true\n[[site.route]]\npath = \"/\"\nhandler = \"fastcgi\"\nupstream = \"php\"\n";

#[test]
fn tables_and_routes() {
    let text = format!(
        r#"[[fastcgi]]
name = "php"
servers = ["unix:/run/php/php-fpm.sock", "127.0.0.1:9000"]
root = "public"
split_path_info = ".php"
index = "app.php"
try_files = ["{{path}}", "{{path}}/index.php", "/index.php"]
params = {{ APP_ENV = "prod" }}
keep_conn = false
connect_timeout = "2s"
read_timeout = "90s"
lb_policy = "least_requests"
passive = {{ max_fails = 3 }}
{SITE}"#
    );
    let c = parse(&text, Some(Path::new("/etc/p.toml"))).unwrap();
    let u = &c.upstreams[0];
    let a = u.fastcgi.as_ref().unwrap();
    assert_eq!(a.root, Path::new("/etc/public"), "relative to the file");
    assert_eq!(a.index, "app.php");
    assert_eq!(a.try_files.len(), 3);
    assert_eq!(a.params, vec![("APP_ENV".to_string(), "prod".to_string())]);
    assert!(!a.keep_conn);
    assert_eq!(u.timeouts.connect, Duration::from_secs(2));
    assert_eq!(u.timeouts.response_head, Duration::from_secs(90));
    assert_eq!(u.timeouts.read_idle, Duration::from_secs(90));
    assert_eq!(u.passive.max_fails, 3);
    assert_eq!(u.servers.len(), 2);
    assert_eq!(u.origin.key, "fastcgi[0]");
    assert!(
        matches!(&c.sites[0].routes[0].handler, HandlerSpec::FastCgi { upstream } if upstream == "php")
    );
    let j = crate::config::json::render(&c);
    assert_eq!(j["upstream"][0]["fastcgi"]["index"], "app.php");
    assert_eq!(j["site"][0]["route"][0]["handler"], "fastcgi");
    // Defaults.
    let c = parse(
        &format!(
            "[[fastcgi]]\nname = \"php\"\nservers = [\"127.0.0.1:9000\"]\nroot = \"/srv\"\n{SITE}"
        ),
        None,
    )
    .unwrap();
    let a = c.upstreams[0].fastcgi.as_ref().unwrap();
    assert_eq!(
        (a.split_path_info.as_str(), a.index.as_str(), a.keep_conn),
        (".php", "index.php", true)
    );
    assert!(a.try_files.is_empty());
}

#[test]
fn errors_name_key_and_line() {
    let fc = |extra: &str| {
        format!("[[fastcgi]]\nname = \"php\"\nservers = [\"127.0.0.1:9000\"]\n{extra}\n{SITE}")
    };
    let e = err(&fc(""));
    assert!(
        e.contains("/etc/p.toml:1") && e.contains("fastcgi[0].root: is required"),
        "{e}"
    );
    let e = err(&fc("root = \"/srv\"\nsplit_path_info = \"/x.php\""));
    assert!(
        e.contains(":5") && e.contains("fastcgi[0].split_path_info"),
        "{e}"
    );
    let e = err(&fc("root = \"/srv\"\ntry_files = [\"index.php\"]"));
    assert!(
        e.contains("fastcgi[0].try_files") && e.contains("{path}"),
        "{e}"
    );
    let e = err(&fc("root = \"/srv\"\nparams = { \"BAD-NAME\" = \"x\" }"));
    assert!(e.contains("fastcgi[0].params"), "{e}");
    // Active checks go over FastCGI (php-fpm's ping.path, or a script).
    let c = parse(
        &fc("root = \"/srv\"\nhealth = { uri = \"/ping\", expect_body = \"pong\" }"),
        None,
    )
    .unwrap();
    assert_eq!(c.upstreams[0].health.uri.as_deref(), Some("/ping"));
    let e = err(&fc("root = \"/srv\"\ntls = true"));
    assert!(e.contains("fastcgi[0].tls"), "{e}");
    let e = err(&fc("root = \"/srv\"\nread_timeout = \"forever\""));
    assert!(e.contains("fastcgi[0].read_timeout"), "{e}");
    let e = err("[[upstream]]\nname = \"app\"\nservers = [\"127.0.0.1:1\"]\nroot = \"/srv\"\n");
    assert!(
        e.contains(":4") && e.contains("upstream[0].root: applies only to a [[fastcgi]] table"),
        "{e}"
    );
    // Routes name the right kind of table.
    let e = err(&format!(
        "[[upstream]]\nname = \"php\"\nservers = [\"127.0.0.1:1\"]\n{SITE}"
    ));
    assert!(
        e.contains("\"php\" is not a [[fastcgi]] name (no [[fastcgi]] tables are defined)"),
        "{e}"
    );
    let e = err(&fc("root = \"/srv\"").replace("handler = \"fastcgi\"", "handler = \"proxy\""));
    assert!(e.contains("\"php\" is not an [[upstream]] name"), "{e}");
    let e = err(&fc("root = \"/srv\"").replace("upstream = \"php\"\n", ""));
    assert!(
        e.contains("route[0].upstream") && e.contains("[[fastcgi]]"),
        "{e}"
    );
    let e = err(
        "[[upstream]]\nname = \"php\"\nservers = [\"127.0.0.1:1\"]\n[[fastcgi]]\nname = \"php\"\nservers = [\"127.0.0.1:2\"]\nroot = \"/srv\"\n",
    );
    assert!(
        e.contains("fastcgi[0].name") && e.contains("must differ"),
        "{e}"
    );
}
