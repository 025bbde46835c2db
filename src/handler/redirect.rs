//! The handler behind a plain-HTTP listener when HTTPS is enforced: every
//! request is answered 308 with the same path and query on `https://`.

use super::{Ctx, Handler};
use crate::exchange::{Reply, RequestHead};
use crate::http::{Method, Methods, Response};

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
        // Strip a port: "[::1]:80" → "[::1]", "example.com:80" → "example.com".
        let name = match host.rfind(':') {
            Some(i) if !host[i..].contains(']') => &host[..i],
            _ => host,
        };
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

/// Every method: whatever is asked over plain HTTP goes to HTTPS.
const ALL: &[Method] = &[
    Method::Get,
    Method::Head,
    Method::Post,
    Method::Put,
    Method::Delete,
    Method::Trace,
    Method::Patch,
];

impl Handler for HttpsRedirect {
    fn methods(&self) -> Methods {
        Methods::of(ALL)
    }

    // A body is refused from the head: the client sends it to HTTPS instead.
    fn accepts_body(&self) -> bool {
        true
    }

    fn admit(&mut self, req: &RequestHead, _cx: &Ctx<'_>) -> Option<Response> {
        Some(self.answer(req))
    }

    fn handle(&mut self, req: &RequestHead, _cx: &mut Ctx<'_>) -> Reply {
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
}
