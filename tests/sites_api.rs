//! Sites from outside the server: `peregrine check` on site configurations
//! (whole-generation errors with key and line, certificate warnings), and
//! named handlers registered through the library.

mod common;
use common::pki::Pki;
use common::*;
use std::io::Write;
use std::net::{SocketAddr, TcpStream};
use std::process::Command;
use std::time::Duration;

fn get(addr: SocketAddr, host: &str, path: &str) -> Resp {
    let mut s = TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    s.write_all(
        format!("GET {path} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n").as_bytes(),
    )
    .unwrap();
    read_response(&mut s, false).unwrap()
}

fn check(text: &str) -> (i32, String, String) {
    let p = tempdir("sites-check").join("p.toml");
    std::fs::write(&p, text).unwrap();
    let out = Command::new(bin())
        .args(["check", "--config", p.to_str().unwrap()])
        .output()
        .unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn check_validates_sites() {
    let pki = Pki::new();
    let shop = pki.issue("shop", &["shop.test"], "shop.test", false);
    let root = tempdir("sites-check-root");
    let good = format!(
        "workers = 1\n[[site]]\nname = \"shop\"\nhosts = [\"shop.test\", \"www.shop.test\"]\ntls_listen = \"127.0.0.1:8443\"\ntls = {{ cert = {:?}, key = {:?} }}\nroot = {root:?}\n",
        shop.cert, shop.key
    );
    let (code, out, err) = check(&good);
    assert_eq!(code, 0, "{err}");
    assert!(
        out.contains(": ok (2 listeners, 1 worker, 1 site)"),
        "{out}"
    );
    assert!(
        err.contains(":4: site[0].hosts: the certificate ")
            && err.contains("does not cover \"www.shop.test\" (it names shop.test)"),
        "{err}"
    );
    assert!(!err.contains("\"shop.test\" ("), "{err}");
    // Whole-generation checks name the key and the line.
    let (code, _, err) = check(&format!(
        "{good}[[site.route]]\npath = \"/x\"\nhandler = \"thing\"\n"
    ));
    assert_eq!(code, 2);
    assert!(
        err.contains(":10: site[0].route[0].handler: unknown handler \"thing\""),
        "{err}"
    );
    let (code, _, err) = check(&format!(
        "{good}[[site.route]]\npath = \"/m\"\nhandler = \"files\"\nroot = \"/nonexistent/media\"\n"
    ));
    assert_eq!(code, 2);
    assert!(
        err.contains(":11: site[0].route[0].root: document root /nonexistent/media"),
        "{err}"
    );
    let (code, _, err) = check(&format!("{good}errors = {{ 404 = \"/404.html\" }}\n"));
    assert_eq!(code, 2);
    assert!(
        err.contains(":8: site[0].errors.404: \"/404.html\": "),
        "{err}"
    );
    let (code, _, err) = check(&format!(
        "{good}[[site]]\nname = \"b\"\nhosts = [\"WWW.shop.test\"]\n"
    ));
    assert_eq!(code, 2);
    assert!(
        err.contains(":10: site[1].hosts: \"www.shop.test\" is a host of site[0] (\"shop\") too"),
        "{err}"
    );
}

/// A named handler: answers with the greeting its route's options give.
struct Hello {
    greeting: String,
    site: String,
    calls: u32,
}

impl peregrine::handler::Handler for Hello {
    fn handle(
        &mut self,
        _req: &peregrine::exchange::RequestHead,
        cx: &mut peregrine::handler::Ctx<'_, '_>,
    ) -> peregrine::exchange::Reply {
        self.calls += 1;
        let body = format!(
            "{} from {} at {} ({})\n",
            self.greeting, self.site, cx.rest, self.calls
        );
        peregrine::http::Response::new(200)
            .body(peregrine::http::Body::Bytes(body.into_bytes()))
            .into()
    }
}

#[test]
fn named_handlers_from_the_library() {
    let text = "workers = 1\n[admin]\nlisten = \"off\"\n[access_log]\nenabled = false\n[[site]]\nname = \"app\"\nhosts = [\"app.test\"]\nlisten = \"127.0.0.1:0\"\n[[site.route]]\npath = \"/hello\"\nhandler = \"hello\"\noptions = { greeting = \"hi\" }\n[[site.route]]\npath = \"/bad\"\nhandler = \"hello\"\n";
    let config = peregrine::config::parse(text, None).unwrap();
    let make = |a: &peregrine::site::RouteArgs<'_>| {
        let greeting = a
            .options
            .get("greeting")
            .and_then(|v| v.as_str())
            .ok_or("options.greeting is required")?;
        Ok(Hello {
            greeting: greeting.to_string(),
            site: a.site.to_string(),
            calls: 0,
        })
    };
    // A factory's error names the route.
    let e = peregrine::Server::new(config.clone())
        .handler("hello", make)
        .start()
        .unwrap_err();
    assert_eq!(
        e,
        "line 16: site[0].route[1]: handler \"hello\": options.greeting is required"
    );
    // Unregistered: refused before anything is bound.
    let e = peregrine::Server::new(config.clone()).start().unwrap_err();
    assert!(e.contains("unknown handler \"hello\""), "{e}");
    // A program's router cannot stand in for sites.
    let e = peregrine::Server::new(config)
        .router(peregrine::handler::Router::new)
        .start()
        .unwrap_err();
    assert!(e.contains("cannot be combined with [[site]]"), "{e}");

    let text = text.replace("[[site.route]]\npath = \"/bad\"\nhandler = \"hello\"\n", "");
    let config = peregrine::config::parse(&text, None).unwrap();
    let running = peregrine::Server::new(config)
        .handler("hello", make)
        .start()
        .unwrap();
    let addr = running.local_addrs()[0];
    let r = get(addr, "app.test", "/hello/there");
    assert_eq!(r.text(), "hi from app at /there (1)\n");
    let r = get(addr, "app.test", "/hello");
    assert_eq!(r.text(), "hi from app at  (2)\n", "per-worker state");
    assert_eq!(get(addr, "other.test", "/hello").status, 404);
    running.stop();
    running.join().unwrap();
}
