//! Built-in dynamic handlers: `/plaintext`, `/json` and `/echo`.

use super::{Ctx, Handler};
use crate::http::{Body, Method, Methods, Request, Response};

/// `GET /plaintext` → `Hello, World!` as text/plain.
#[derive(Clone, Copy, Debug, Default)]
pub struct Plaintext;

impl Handler for Plaintext {
    fn handle(&mut self, _req: &Request<'_>, _cx: &Ctx<'_>) -> Response {
        Response::new(200)
            .content_type("text/plain")
            .body(Body::Static(b"Hello, World!"))
    }
}

/// `GET /json` → `{"message":"Hello, World!"}`.
#[derive(Clone, Copy, Debug, Default)]
pub struct Json;

impl Handler for Json {
    fn handle(&mut self, _req: &Request<'_>, _cx: &Ctx<'_>) -> Response {
        Response::new(200)
            .content_type("application/json")
            .body(Body::Static(br#"{"message":"Hello, World!"}"#))
    }
}

/// `POST /echo` → the request body back, with the request's Content-Type.
#[derive(Clone, Copy, Debug, Default)]
pub struct Echo;

impl Handler for Echo {
    fn methods(&self) -> Methods {
        Methods::of(&[Method::Post, Method::Put])
    }

    fn accepts_body(&self) -> bool {
        true
    }

    fn handle(&mut self, req: &Request<'_>, _cx: &Ctx<'_>) -> Response {
        let ct = req
            .header_str("content-type")
            .filter(|v| !v.bytes().any(|b| b.is_ascii_control()))
            .unwrap_or("application/octet-stream");
        Response::new(200)
            .content_type(ct.to_string())
            .body(Body::Bytes(req.body.to_vec()))
    }
}

/// `GET /tls-info` → what the connection's TLS session looks like, as JSON
/// (`{"tls":false}` over plain HTTP).
#[derive(Clone, Copy, Debug, Default)]
pub struct TlsInfoHandler;

impl Handler for TlsInfoHandler {
    fn handle(&mut self, req: &Request<'_>, _cx: &Ctx<'_>) -> Response {
        let v = match req.tls {
            None => serde_json::json!({ "tls": false }),
            Some(t) => serde_json::json!({
                "tls": true,
                "version": t.version,
                "cipher": t.cipher,
                "server_name": t.server_name,
                "alpn": t.alpn,
                "client_subject": t.client_subject,
                "resumed": t.resumed,
            }),
        };
        Response::new(200)
            .content_type("application/json")
            .header("Cache-Control", "no-store")
            .body(Body::Bytes(serde_json::to_vec(&v).unwrap_or_default()))
    }
}
