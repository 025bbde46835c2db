use super::*;
use crate::fastcgi::record::read_pairs;
use crate::http::Method;

fn app(try_files: &[&str]) -> FastCgiApp {
    FastCgiApp {
        root: "/srv/app".into(),
        split_path_info: ".php".into(),
        index: "index.php".into(),
        try_files: try_files.iter().map(|s| s.to_string()).collect(),
        params: vec![("APP_ENV".into(), "prod".into())],
        keep_conn: true,
    }
}

/// A file system with these files (and their directories).
fn fs(files: &'static [&'static str]) -> impl Fn(&Path) -> Option<Kind> {
    move |p: &Path| {
        let p = p.to_str().unwrap();
        if files.iter().any(|f| format!("/srv/app{f}") == p) {
            Some(Kind::File)
        } else if files
            .iter()
            .any(|f| format!("/srv/app{f}").starts_with(&format!("{}/", p.trim_end_matches('/'))))
        {
            Some(Kind::Dir)
        } else {
            None
        }
    }
}

const FILES: &[&str] = &[
    "/index.php",
    "/info.php",
    "/sub/index.php",
    "/uploads/x.jpg",
    "/a.php.txt",
];

#[test]
fn scripts() {
    let a = app(&[]);
    let r = |p: &str| a.resolve(p, fs(FILES)).map(|s| (s.name, s.path_info));
    assert_eq!(r("/info.php"), Some(("/info.php".into(), "".into())));
    assert_eq!(
        r("/index.php/a/b"),
        Some(("/index.php".into(), "/a/b".into()))
    );
    assert_eq!(r("/"), Some(("/index.php".into(), "".into())));
    assert_eq!(r("/sub/"), Some(("/sub/index.php".into(), "".into())));
    assert_eq!(r("/sub"), Some(("/sub/index.php".into(), "".into())));
    assert_eq!(r("/in%66o.php"), Some(("/info.php".into(), "".into())));
    // Not scripts: other files, the cgi.fix_pathinfo hole, traversal.
    assert_eq!(r("/uploads/x.jpg"), None);
    assert_eq!(r("/uploads/x.jpg/.php"), None);
    assert_eq!(r("/uploads/x.jpg/x.php"), None);
    assert_eq!(r("/a.php.txt"), None);
    assert_eq!(r("/../etc/passwd.php"), None);
    assert_eq!(r("/sub/%2e%2e/info.php"), None);
    assert_eq!(r("/info.php%00.txt"), None);
    assert_eq!(r("/missing.php"), None);
    // A front controller.
    let a = app(&["{path}", "{path}/index.php", "/index.php"]);
    let s = a.resolve("/blog/post/1", fs(FILES)).unwrap();
    assert_eq!((s.name.as_str(), s.path_info.as_str()), ("/index.php", ""));
    assert_eq!(s.filename, Path::new("/srv/app/index.php"));
    let s = a.resolve("/info.php", fs(FILES)).unwrap();
    assert_eq!(s.name, "/info.php");
    let s = a.resolve("/sub", fs(FILES)).unwrap();
    assert_eq!(s.name, "/sub/index.php");
}

#[test]
fn cgi_variables() {
    let a = app(&[]);
    let mut req = RequestHead::new(Method::Post, "/index.php/x/y?q=1&r=2");
    req.set_host(b"shop.test:8080");
    req.push_header("Content-Type", b"application/x-www-form-urlencoded");
    req.push_header("Content-Length", b"7");
    req.push_header("Cookie", b"a=1");
    req.push_header("cookie", b"b=2");
    req.push_header("Proxy", b"http://evil");
    req.push_header("X_Forwarded_For", b"spoof");
    req.push_header("X-Custom", b"v");
    req.peer = Some("10.0.0.9:5555".parse().unwrap());
    req.local = Some("127.0.0.1:8080".parse().unwrap());
    let s = a.resolve(req.path(), fs(FILES)).unwrap();
    let pairs = read_pairs(params(&a, &req, &s).bytes()).unwrap();
    let get = |n: &str| {
        pairs
            .iter()
            .find(|(k, _)| k == n.as_bytes())
            .map(|(_, v)| String::from_utf8(v.clone()).unwrap())
    };
    assert_eq!(
        get("SCRIPT_FILENAME").as_deref(),
        Some("/srv/app/index.php")
    );
    assert_eq!(get("SCRIPT_NAME").as_deref(), Some("/index.php"));
    assert_eq!(get("PATH_INFO").as_deref(), Some("/x/y"));
    assert_eq!(get("PATH_TRANSLATED").as_deref(), Some("/srv/app/x/y"));
    assert_eq!(
        get("REQUEST_URI").as_deref(),
        Some("/index.php/x/y?q=1&r=2")
    );
    assert_eq!(get("QUERY_STRING").as_deref(), Some("q=1&r=2"));
    assert_eq!(get("REQUEST_METHOD").as_deref(), Some("POST"));
    assert_eq!(get("SERVER_NAME").as_deref(), Some("shop.test"));
    assert_eq!(get("SERVER_PORT").as_deref(), Some("8080"));
    assert_eq!(get("REMOTE_ADDR").as_deref(), Some("10.0.0.9"));
    assert_eq!(get("REMOTE_PORT").as_deref(), Some("5555"));
    assert_eq!(get("DOCUMENT_ROOT").as_deref(), Some("/srv/app"));
    assert_eq!(
        get("CONTENT_TYPE").as_deref(),
        Some("application/x-www-form-urlencoded")
    );
    assert_eq!(get("CONTENT_LENGTH").as_deref(), Some("7"));
    assert_eq!(get("HTTP_COOKIE").as_deref(), Some("a=1; b=2"));
    assert_eq!(get("HTTP_X_CUSTOM").as_deref(), Some("v"));
    assert_eq!(get("HTTP_HOST").as_deref(), Some("shop.test:8080"));
    assert_eq!(get("HTTP_PROXY"), None, "httpoxy");
    assert_eq!(
        get("HTTP_X_FORWARDED_FOR"),
        None,
        "names with '_' are dropped"
    );
    assert_eq!(get("HTTP_CONTENT_TYPE"), None);
    assert_eq!(get("HTTPS"), None);
    assert_eq!(get("APP_ENV").as_deref(), Some("prod"));
    assert_eq!(get("GATEWAY_INTERFACE").as_deref(), Some("CGI/1.1"));
    assert_eq!(get("SERVER_PROTOCOL").as_deref(), Some("HTTP/1.1"));
}
