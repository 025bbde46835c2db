//! Built-in dynamic handlers: `/plaintext`, `/json`, `/echo` and `/tls-info`.

use super::{Ctx, Handler};
use crate::exchange::{BodySource, Chunk, Io, Reply, RequestBody, RequestHead};
use crate::http::{Body, Method, Methods, Response};

/// `GET /plaintext` → `Hello, World!` as text/plain.
#[derive(Clone, Copy, Debug, Default)]
pub struct Plaintext;

impl Handler for Plaintext {
    fn handle(&mut self, _req: &RequestHead, _cx: &mut Ctx<'_, '_>) -> Reply {
        Reply::Ready(
            Response::new(200)
                .content_type("text/plain")
                .body(Body::Static(b"Hello, World!")),
        )
    }
}

/// `GET /json` → `{"message":"Hello, World!"}`.
#[derive(Clone, Copy, Debug, Default)]
pub struct Json;

impl Handler for Json {
    fn handle(&mut self, _req: &RequestHead, _cx: &mut Ctx<'_, '_>) -> Reply {
        Reply::Ready(
            Response::new(200)
                .content_type("application/json")
                .body(Body::Static(br#"{"message":"Hello, World!"}"#)),
        )
    }
}

/// `POST /echo` → the request body back, with the request's Content-Type,
/// streamed: each piece goes out as it arrives, so an upload of any size
/// costs the server no more than the body window.
#[derive(Clone, Copy, Debug, Default)]
pub struct Echo;

impl Handler for Echo {
    fn methods(&self) -> Methods {
        Methods::of(&[Method::Post, Method::Put])
    }

    fn accepts_body(&self) -> bool {
        true
    }

    fn handle(&mut self, req: &RequestHead, _cx: &mut Ctx<'_, '_>) -> Reply {
        let ct = req
            .header_str("content-type")
            .filter(|v| !v.bytes().any(|b| b.is_ascii_control()))
            .unwrap_or("application/octet-stream");
        let head = Response::new(200).content_type(ct.to_string());
        // The declared length is the answer's; a chunked upload is echoed chunked.
        let len = match req.header_str("content-length") {
            Some(v) => v.trim().parse::<u64>().ok(),
            None if req.header("transfer-encoding").is_some() => None,
            None => Some(0),
        };
        Reply::Stream(head, Box::new(EchoBody { len }))
    }
}

/// The request body, piece by piece, as it arrives.
#[derive(Debug)]
struct EchoBody {
    len: Option<u64>,
}

impl BodySource for EchoBody {
    fn content_length(&self) -> Option<u64> {
        self.len
    }

    fn poll_chunk(&mut self, _io: &mut Io, body: &mut RequestBody, max: usize) -> Chunk {
        if body.available() > 0 {
            let mut piece = Vec::with_capacity(body.available().min(max));
            body.take_into(&mut piece, max);
            Chunk::Bytes(piece)
        } else if body.is_complete() {
            Chunk::End
        } else {
            Chunk::Pending
        }
    }
}

/// `GET /tls-info` → what the connection's TLS session looks like, as JSON
/// (`{"tls":false}` over plain HTTP).
#[derive(Clone, Copy, Debug, Default)]
pub struct TlsInfoHandler;

impl Handler for TlsInfoHandler {
    fn handle(&mut self, req: &RequestHead, _cx: &mut Ctx<'_, '_>) -> Reply {
        let v = match req.tls() {
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
        Reply::Ready(
            Response::new(200)
                .content_type("application/json")
                .header("Cache-Control", "no-store")
                .body(Body::Bytes(serde_json::to_vec(&v).unwrap_or_default())),
        )
    }
}

/// Every built-in handler with its path: `/plaintext`, `/json`, `/echo`,
/// `/tls-info`, `/delay`, `/stream` and `/sse`.
pub fn all() -> Vec<(&'static str, Box<dyn Handler>)> {
    vec![
        ("/plaintext", Box::new(Plaintext)),
        ("/json", Box::new(Json)),
        ("/echo", Box::new(Echo)),
        ("/tls-info", Box::new(TlsInfoHandler)),
        ("/delay", Box::new(super::Delay)),
        ("/stream", Box::new(super::Stream)),
        ("/sse", Box::new(super::Sse)),
    ]
}
