//! `[[site]]` and `[[site.route]]`: the model they parse into, and errors
//! that name the key and the line.

use std::path::Path;

use crate::config::parse;
use crate::http::{Method, Methods};
use crate::site::spec::{HandlerSpec, StatusMatch};
use crate::site::{Generation, Plan};

fn err(text: &str) -> String {
    parse(text, Some(Path::new("p.toml")))
        .unwrap_err()
        .to_string()
}

const TWO_SITES: &str = r#"
[[site]]
name = "shop"
hosts = ["Shop.Test", "*.shop.test"]
listen = ["127.0.0.1:8080"]
root = "shop"
index = ["index.html", "index.htm"]
response_headers = { set = { "X-Frame-Options" = "DENY" }, remove = ["X-Powered-By"] }
errors = { 404 = "/errors/404.html", "5xx" = "/errors/5xx.html" }

[[site.route]]
path = "/api"
methods = ["get", "POST"]
handler = "respond"
status = 201
body = "ok\n"
headers = { "Content-Type" = "text/plain" }

[[site.route]]
path = "/old"
handler = "redirect"
to = "https://{host}/new{rest}{query}"
status = 308

[[site.route]]
path = "/media"
handler = "files"
root = "/mnt/media"
browse = true
hide = ["*.bak"]

[[site]]
name = "blog"
hosts = ["blog.test"]
default = true

[[site.route]]
path = "/"
exact = true
handler = "builtins"
"#;

#[test]
fn two_sites() {
    let c = parse(TWO_SITES, Some(Path::new("/etc/p/p.toml"))).unwrap();
    assert_eq!(c.sites.len(), 2);
    let shop = &c.sites[0];
    assert_eq!(shop.hosts, ["shop.test", "*.shop.test"]);
    assert_eq!(shop.root.as_deref(), Some(Path::new("/etc/p/shop")));
    assert_eq!(shop.index, ["index.html", "index.htm"]);
    assert_eq!(shop.rules.set, [("X-Frame-Options".into(), "DENY".into())]);
    assert_eq!(shop.rules.errors.len(), 2);
    assert!(
        shop.rules
            .errors
            .contains(&(StatusMatch::Class(5), "/errors/5xx.html".into()))
    );
    assert_eq!(shop.origin.line, Some(2), "the [[site]] line");
    let api = &shop.routes[0];
    assert_eq!(
        api.methods,
        Some(Methods::of(&[Method::Get, Method::Head, Method::Post]))
    );
    assert_eq!(api.origin.key, "site[0].route[0]");
    assert_eq!(api.origin.line, Some(14));
    match &api.handler {
        HandlerSpec::Respond {
            status,
            body,
            headers,
        } => {
            assert_eq!((*status, body.as_str()), (201, "ok\n"));
            assert_eq!(
                headers,
                &[("Content-Type".to_string(), "text/plain".to_string())]
            );
        }
        h => panic!("{h:?}"),
    }
    match &shop.routes[2].handler {
        HandlerSpec::Files(f) => {
            assert_eq!(f.root, Path::new("/mnt/media"));
            assert!(f.browse && !f.dotfiles);
            assert_eq!(
                f.index,
                ["index.html", "index.htm"],
                "the site's index list"
            );
        }
        h => panic!("{h:?}"),
    }
    let blog = &c.sites[1];
    assert!(blog.default && blog.routes[0].exact);
    // No top-level listen: only the sites' addresses.
    assert!(c.listen.is_empty());
    let plan = Plan::new(&c).unwrap();
    assert_eq!(plan.listeners.len(), 1);
    // The shop's root answers what its routes do not claim.
    assert_eq!(plan.sites[0].routes.len(), 4);
    assert_eq!(plan.sites[0].routes[3].path, "/");
    assert_eq!(plan.bindings[0].named("a.shop.test"), Some(0));
    assert_eq!(plan.bindings[0].site_for(Some("x.test")), Some(1));
}

#[test]
fn the_readme_example_is_valid() {
    let readme = include_str!("../../README.md");
    let section = &readme[readme.find("## Sites and routes").unwrap()..];
    let start = section.find("```toml\n").unwrap() + 8;
    let text = &section[start..start + section[start..].find("```").unwrap()];
    let c = parse(text, None).unwrap();
    assert_eq!(c.sites.len(), 2);
    let plan = Plan::new(&c).unwrap();
    assert_eq!(plan.listeners.len(), 3);
    assert_eq!(plan.tls.unwrap().sni[0].names.len(), 2);
}

#[test]
fn flat_configuration_is_one_default_site() {
    let c = parse("root = \"/srv\"\nbuiltins = true\n", None).unwrap();
    assert!(c.sites.is_empty());
    let plan = Plan::new(&c).unwrap();
    assert_eq!(plan.sites.len(), 1);
    let s = &plan.sites[0];
    assert!(s.default && s.hosts.is_empty());
    assert_eq!(s.routes[0].handler, HandlerSpec::Builtins);
    match &s.routes[1].handler {
        HandlerSpec::Files(f) => assert!(f.dotfiles, "served as before sites existed"),
        h => panic!("{h:?}"),
    }
    assert!(plan.bindings[0].nameless());
    assert_eq!(plan.bindings[0].default_site(), Some(0));
}

#[test]
fn handlers_are_checked() {
    assert_eq!(
        err(
            "[[site]]\nhosts = [\"a.test\"]\n[[site.route]]\npath = \"/p\"\nhandler = \"fastcgi\"\n"
        ),
        "p.toml:3: site[0].route[0].upstream: is required for handler = \"fastcgi\": the name of a [[fastcgi]] table"
    );
    assert!(
        err("[[site]]\nhosts = [\"a.test\"]\n[[site.route]]\npath = \"/p\"\nhandler = \"proxy\"\n")
            .starts_with(
                "p.toml:3: site[0].route[0].upstream: is required for handler = \"proxy\""
            )
    );
    let c = parse(
        "[[site]]\nhosts = [\"a.test\"]\n[[site.route]]\npath = \"/p\"\nhandler = \"mine\"\noptions = { n = 3 }\n",
        Some(Path::new("p.toml")),
    )
    .unwrap();
    assert_eq!(
        Generation::build(&c, &[]).unwrap_err().to_string(),
        "p.toml:5: site[0].route[0].handler: unknown handler \"mine\" (known: files, redirect, respond, builtins, proxy, fastcgi)"
    );
    let g = Generation::build(&c, &["mine"]).unwrap();
    match &g.plan.sites[0].routes[0].handler {
        HandlerSpec::Named { name, options } => {
            assert_eq!(name, "mine");
            assert_eq!(options.0["n"].as_integer(), Some(3));
        }
        h => panic!("{h:?}"),
    }
    assert_eq!(
        err(
            "[[site]]\nhosts = [\"a.test\"]\n[[site.route]]\npath = \"/p\"\nhandler = \"respond\"\nto = \"/x\"\n"
        ),
        "p.toml:6: site[0].route[0].to: does not apply to handler = \"respond\""
    );
    assert_eq!(
        err(
            "[[site]]\nhosts = [\"a.test\"]\n[[site.route]]\npath = \"p\"\nhandler = \"respond\"\n"
        ),
        "p.toml:4: site[0].route[0].path: must be a path starting with '/' (no query)"
    );
    assert!(
        err("[[site]]\nhosts = [\"a.test\"]\n[[site.route]]\npath = \"/\"\n")
            .starts_with("p.toml:3: site[0].route[0].handler: is required")
    );
    assert!(
        err("[[site]]\nhosts = [\"a.test\"]\n[[site.route]]\npath = \"/\"\nhandler = \"respond\"\nmethods = [\"FETCH\"]\n")
            .starts_with("p.toml:6: site[0].route[0].methods: \"FETCH\" is not a method")
    );
    assert!(
        err("[[site]]\nhosts = [\"a.test\"]\n[[site.route]]\npath = \"/\"\nhandler = \"respond\"\nstatus = 99\n")
            .starts_with("p.toml:6: site[0].route[0].status: must be a status from 200 to 599")
    );
    assert!(
        err("[[site]]\nhosts = [\"a.test\"]\n[[site.route]]\npath = \"/\"\nhandler = \"files\"\n")
            .starts_with("p.toml:3: site[0].route[0].root: is required")
    );
}

#[test]
fn shadowed_routes() {
    let site = "[[site]]\nhosts = [\"a.test\"]\n";
    let r = |path: &str, extra: &str| {
        format!("[[site.route]]\npath = \"{path}\"\nhandler = \"respond\"\n{extra}")
    };
    assert_eq!(
        err(&format!("{site}{}{}", r("/api", ""), r("/api/", ""))),
        "p.toml:7: site[0].route[1].path: \"/api/\" is routed by site[0].route[0] already, for the same methods"
    );
    let get = "methods = [\"GET\"]\n";
    let post = "methods = [\"POST\"]\n";
    assert!(
        parse(
            &format!("{site}{}{}", r("/api", get), r("/api", post)),
            None
        )
        .is_ok()
    );
    assert!(
        parse(
            &format!("{site}{}{}", r("/api", get), r("/api", "exact = true\n")),
            None
        )
        .is_ok()
    );
    assert!(parse(&format!("{site}{}{}", r("/api", get), r("/api", "")), None).is_ok());
    assert!(err(&format!("{site}{}{}", r("/api", ""), r("/api", post))).contains("is routed by"));
}

#[test]
fn redirect_placeholders() {
    assert_eq!(
        err(
            "[[site]]\nhosts = [\"a.test\"]\n[[site.route]]\npath = \"/old\"\nhandler = \"redirect\"\nto = \"https://{hostname}/\"\n"
        ),
        "p.toml:6: site[0].route[0].to: unknown placeholder {hostname} (known: {host} {path} {rest} {query} {uri} {scheme})"
    );
    assert!(
        err("[[site]]\nhosts = [\"a.test\"]\n[[site.route]]\npath = \"/old\"\nhandler = \"redirect\"\nto = \"/new\"\nstatus = 200\n")
            .starts_with("p.toml:7: site[0].route[0].status: must be 301, 302, 303, 307 or 308")
    );
}

#[test]
fn routes_outside_any_site() {
    assert_eq!(
        err("workers = 1\n[[site.route]]\npath = \"/\"\nhandler = \"respond\"\n"),
        "p.toml:2: site.route: a route outside any site: put a [[site]] table (name, hosts) before it"
    );
    assert_eq!(
        err("[[route]]\npath = \"/\"\n"),
        "p.toml:1: route: a route outside any site: write [[site.route]] after a [[site]] table"
    );
}

#[test]
fn defaults_and_host_names() {
    let two_defaults = "[[site]]\nname = \"a\"\ndefault = true\n[[site]]\nname = \"b\"\nhosts = [\"b.test\"]\ndefault = true\n";
    assert_eq!(
        err(two_defaults),
        "p.toml:7: site[1].default: site[0] (\"a\") is the default site on http listener 127.0.0.1:8080 already; one default per listener"
    );
    // On different listeners, each may have its default.
    let apart = "[[site]]\nname = \"a\"\ndefault = true\nlisten = \"127.0.0.1:1\"\n[[site]]\nname = \"b\"\nhosts = [\"b.test\"]\ndefault = true\nlisten = \"127.0.0.1:2\"\n";
    assert!(parse(apart, None).is_ok());
    assert_eq!(
        err("[[site]]\nhosts = [\"a.test\"]\n[[site]]\nhosts = [\"b.test\", \"A.test\"]\n"),
        "p.toml:4: site[1].hosts: \"a.test\" is a host of site[0] (\"a.test\") too, on http listener 127.0.0.1:8080; a name belongs to one site per listener"
    );
    assert!(
        err("[[site]]\nhosts = [\"a.test\", \"a.test\"]\n")
            .starts_with("p.toml:2: site[0].hosts: \"a.test\" is listed twice")
    );
    assert!(
        err("[[site]]\nhosts = [\"a.test:80\"]\n")
            .starts_with("p.toml:2: site[0].hosts: \"a.test:80\" is not a host name")
    );
    assert!(
        err("[[site]]\nhosts = [\"*.*.test\"]\n")
            .starts_with("p.toml:2: site[0].hosts: \"*.*.test\" is not a host name")
    );
    assert!(
        err("[[site]]\nname = \"x\"\n")
            .starts_with("p.toml:1: site[0].hosts: a site needs host names")
    );
    assert!(
        err("[[site]]\nname = \"x\"\nhosts = [\"a.test\"]\n[[site]]\nname = \"x\"\nhosts = [\"b.test\"]\n")
            .starts_with("p.toml:5: site[1].name: \"x\" is the name of site[0] too")
    );
}

#[test]
fn rules_and_pages() {
    assert!(
        err("[[site]]\nhosts = [\"a.test\"]\nerrors = { 404 = \"/e.html\" }\n")
            .starts_with("p.toml:3: site[0].errors: error pages are files under the site's root")
    );
    assert!(
        err("[[site]]\nhosts = [\"a.test\"]\nroot = \"r\"\nerrors = { 200 = \"/e.html\" }\n")
            .starts_with("p.toml:4: site[0].errors.200: must be a status from 400 to 599")
    );
    assert!(
        err("[[site]]\nhosts = [\"a.test\"]\nresponse_headers = { set = { \"Content-Length\" = \"1\" } }\n")
            .contains("site[0].response_headers.set: Content-Length is written by the server")
    );
    assert!(
        err("[[site]]\nhosts = [\"a.test\"]\nresponse_headers = { add = { \"Bad Name\" = \"1\" } }\n")
            .contains("\"Bad Name\" is not a header name")
    );
    assert!(
        err("root = \"x\"\n[[site]]\nhosts = [\"a.test\"]\n")
            .starts_with("p.toml:1: root: a file with [[site]] tables sets root per site")
    );
}

#[test]
fn site_certificates_join_tls() {
    let c = parse(
        "[[site]]\nhosts = [\"a.test\"]\ntls_listen = \"127.0.0.1:8443\"\ntls = { cert = \"a.pem\", key = \"a.key\" }\n",
        Some(Path::new("/p/p.toml")),
    )
    .unwrap();
    let plan = Plan::new(&c).unwrap();
    let t = plan.tls.unwrap();
    assert_eq!(
        t.cert,
        Path::new("/p/a.pem"),
        "the first site certificate is the default"
    );
    assert_eq!(t.sni[0].names, ["a.test"]);
    assert_eq!(t.sni[0].origin, "site[0].tls");
    assert_eq!(plan.listeners[0].addr, "127.0.0.1:8443".parse().unwrap());
    assert!(plan.listeners[0].tls);
    assert!(
        err("[[site]]\nhosts = [\"a.test\"]\ntls = { cert = \"a.pem\", key = \"a.key\" }\n")
            .starts_with("p.toml:3: site[0].tls: the site is on no TLS listener")
    );
    assert!(
        err("[[site]]\nhosts = [\"a.test\"]\ntls_listen = \"127.0.0.1:8443\"\n")
            .starts_with("p.toml:3: site[0].tls_listen: HTTPS needs a certificate")
    );
}
