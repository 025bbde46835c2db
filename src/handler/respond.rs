//! The `respond` handler: a fixed status, header fields and body, built
//! once from the configuration and shared by every response.

use std::rc::Rc;

use super::{Ctx, Handler};
use crate::exchange::{Reply, RequestHead};
use crate::http::response::Text;
use crate::http::{Body, Methods, Response};

/// Answers every request with the same response.
#[derive(Clone, Debug)]
pub struct Respond {
    status: u16,
    body: Rc<[u8]>,
    content_type: Option<Text>,
    headers: Vec<(Text, Text)>,
}

impl Respond {
    /// A response with `status` and `body`; `text/plain` unless `headers`
    /// name a `Content-Type` (or the body is empty).
    ///
    /// # Panics
    /// When the status is not three digits or a header is invalid (the
    /// configuration has checked both).
    pub fn new(status: u16, body: &str, headers: &[(String, String)]) -> Respond {
        let mut content_type: Option<Text> =
            (!body.is_empty()).then_some(Text::Borrowed("text/plain; charset=utf-8"));
        let mut rest = Vec::new();
        for (n, v) in headers {
            if n.eq_ignore_ascii_case("content-type") {
                content_type = Some(Text::Owned(v.clone()));
            } else {
                rest.push((Text::Owned(n.clone()), Text::Owned(v.clone())));
            }
        }
        // Validated once here, by building it.
        let _ = Respond::build(status, &content_type, &rest, Body::Empty);
        Respond {
            status,
            body: Rc::from(body.as_bytes()),
            content_type,
            headers: rest,
        }
    }

    fn build(status: u16, ct: &Option<Text>, headers: &[(Text, Text)], body: Body) -> Response {
        let mut r = Response::new(status);
        if let Some(ct) = ct {
            r = r.content_type(ct.clone());
        }
        for (n, v) in headers {
            r = r.header(n.clone(), v.clone());
        }
        r.body(body)
    }
}

impl Handler for Respond {
    fn methods(&self) -> Methods {
        Methods::ANY
    }

    fn handle(&mut self, _req: &RequestHead, _cx: &mut Ctx<'_, '_>) -> Reply {
        let body = if self.body.is_empty() {
            Body::Empty
        } else {
            Body::Shared(self.body.clone())
        };
        Reply::Ready(Respond::build(
            self.status,
            &self.content_type,
            &self.headers,
            body,
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::exchange::Io;

    #[test]
    fn fixed_response() {
        let mut h = Respond::new(
            201,
            "ok\n",
            &[
                ("X-A".into(), "1".into()),
                ("content-type".into(), "text/x".into()),
            ],
        );
        let mut io = Io::new(std::time::Instant::now());
        let mut cx = Ctx {
            prefix: "/",
            rest: "",
            io: &mut io,
        };
        let Reply::Ready(r) = h.handle(&RequestHead::default(), &mut cx) else {
            panic!()
        };
        assert_eq!(r.status(), 201);
        assert_eq!(r.header_value("x-a"), Some("1"));
        assert_eq!(r.header_value("content-type"), Some("text/x"));
        assert_eq!(r.body_ref().len(), 3);
        let mut empty = Respond::new(204, "", &[]);
        let Reply::Ready(r) = empty.handle(&RequestHead::default(), &mut cx) else {
            panic!()
        };
        assert_eq!(r.header_value("content-type"), None);
        assert!(r.body_ref().is_empty());
    }
}
