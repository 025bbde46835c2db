//! Redirects: the `redirect` route handler (a target built from the
//! request), and the handler behind a plain-HTTP listener when HTTPS is
//! enforced (every request answered 308 with the same path and query on
//! `https://`).

use super::{Ctx, Handler};
use crate::exchange::{Reply, RequestHead};
use crate::http::{Methods, Response};
use crate::site::template::{Part, Template, Values};

/// Answers with a redirect to a target built from the request: `{host}`,
/// `{path}`, `{rest}`, `{query}`, `{uri}` and `{scheme}` are filled in.
#[derive(Clone, Debug)]
pub struct Redirect {
    to: Template,
    status: u16,
    needs_host: bool,
}

impl Redirect {
    /// A redirect to `to` with `status` (301, 302, 303, 307 or 308).
    pub fn new(to: Template, status: u16) -> Redirect {
        Redirect {
            needs_host: to.uses(Part::Host),
            to,
            status,
        }
    }

    fn answer(&self, req: &RequestHead, rest: &str) -> Response {
        let host = req.host().map(host_name).unwrap_or("");
        if self.needs_host && host.is_empty() {
            return Response::error(400, Some("a Host header is needed for this redirect"));
        }
        let location = self.to.render(&Values {
            host,
            path: req.path(),
            rest,
            query: req.query(),
            scheme: if req.tls().is_some() { "https" } else { "http" },
        });
        Response::error(self.status, None).header("Location", location)
    }
}

impl Handler for Redirect {
    fn methods(&self) -> Methods {
        Methods::ANY
    }

    fn handle(&mut self, req: &RequestHead, cx: &mut Ctx<'_, '_>) -> Reply {
        Reply::Ready(self.answer(req, cx.rest))
    }
}

/// A `Host` value without its port: `"[::1]:80"` → `"[::1]"`,
/// `"example.com:80"` → `"example.com"`.
fn host_name(host: &str) -> &str {
    match host.rfind(':') {
        Some(i) if !host[i..].contains(']') => &host[..i],
        _ => host,
    }
}

/// Answers every request with a permanent redirect to HTTPS.
#[derive(Clone, Copy, Debug)]
pub struct HttpsRedirect {
    /// The HTTPS port (omitted from the URL when 443).
    pub port: u16,
}

impl HttpsRedirect {
    fn answer(&self, req: &RequestHead) -> Response {
        let Some(host) = req.host().filter(|h| !h.is_empty()) else {
            return Response::error(400, Some("a Host header is needed to redirect to https"));
        };
        let name = host_name(host);
        let mut location = format!("https://{name}");
        if self.port != 443 {
            location.push(':');
            location.push_str(&self.port.to_string());
        }
        location.push_str(req.path());
        if let Some(q) = req.query() {
            location.push('?');
            location.push_str(q);
        }
        Response::error(308, None).header("Location", location)
    }
}

impl Handler for HttpsRedirect {
    fn methods(&self) -> Methods {
        Methods::ANY
    }

    // A body is refused from the head: the client sends it to HTTPS instead.
    fn accepts_body(&self) -> bool {
        true
    }

    fn admit(&mut self, req: &RequestHead, _cx: &Ctx<'_, '_>) -> Option<Response> {
        Some(self.answer(req))
    }

    fn handle(&mut self, req: &RequestHead, _cx: &mut Ctx<'_, '_>) -> Reply {
        Reply::Ready(self.answer(req))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::http::Limits;
    use crate::http::parse::{header_buf, parse_head};

    fn location(raw: &[u8], port: u16) -> (u16, Option<String>) {
        let limits = Limits::default();
        let mut storage = header_buf();
        let head = parse_head(raw, &mut storage, &limits).unwrap().unwrap();
        let r = HttpsRedirect { port }.answer(&head.req.to_head());
        (r.status(), r.header_value("location").map(str::to_string))
    }

    #[test]
    fn keeps_path_and_query() {
        assert_eq!(
            location(
                b"GET /a/b?x=1 HTTP/1.1\r\nHost: example.com:8080\r\n\r\n",
                8443
            ),
            (308, Some("https://example.com:8443/a/b?x=1".into()))
        );
        assert_eq!(
            location(b"GET / HTTP/1.1\r\nHost: [::1]:80\r\n\r\n", 443),
            (308, Some("https://[::1]/".into()))
        );
        assert_eq!(location(b"GET / HTTP/1.0\r\n\r\n", 443).0, 400);
    }

    #[test]
    fn template_redirect() {
        let limits = Limits::default();
        let mut storage = header_buf();
        let raw = b"GET /old/x?q=1 HTTP/1.1\r\nHost: shop.test:8080\r\n\r\n";
        let head = parse_head(raw, &mut storage, &limits).unwrap().unwrap();
        let to = Template::parse("https://{host}/new{rest}{query}").unwrap();
        let r = Redirect::new(to.clone(), 301).answer(&head.req.to_head(), "/x");
        assert_eq!(r.status(), 301);
        assert_eq!(
            r.header_value("location"),
            Some("https://shop.test/new/x?q=1")
        );
        let bare = b"GET /old HTTP/1.0\r\n\r\n";
        let head = parse_head(bare, &mut storage, &limits).unwrap().unwrap();
        let r = Redirect::new(to, 301).answer(&head.req.to_head(), "");
        assert_eq!(r.status(), 400);
        let plain = Template::parse("/new{rest}").unwrap();
        let r = Redirect::new(plain, 308).answer(&head.req.to_head(), "");
        assert_eq!(r.header_value("location"), Some("/new"));
    }
}
