//! Embedding Peregrine with a handler of your own.
//!
//! Run: `cargo run --release --example custom_handler`, then
//! `curl http://127.0.0.1:8080/hello/world` and `curl http://127.0.0.1:8080/count`.

use peregrine::config::Config;
use peregrine::exchange::{Reply, RequestHead};
use peregrine::handler::{Ctx, Handler, Plaintext, Router};
use peregrine::http::{Body, Response};
use peregrine::server::Server;

/// Greets whoever the rest of the path names.
struct Hello;

impl Handler for Hello {
    fn handle(&mut self, _req: &RequestHead, cx: &mut Ctx<'_, '_>) -> Reply {
        let name = cx.rest.trim_start_matches('/');
        let name = if name.is_empty() { "stranger" } else { name };
        Response::new(200)
            .content_type("text/plain; charset=utf-8")
            .body(Body::Bytes(format!("Hello, {name}!\n").into_bytes()))
            .into()
    }
}

/// Counts requests. Handlers are built once per worker, so this counter is
/// per core and needs no lock.
#[derive(Default)]
struct Counter(u64);

impl Handler for Counter {
    fn handle(&mut self, _req: &RequestHead, _cx: &mut Ctx<'_, '_>) -> Reply {
        self.0 += 1;
        Response::new(200)
            .content_type("text/plain")
            .header("Cache-Control", "no-store")
            .body(Body::Bytes(
                format!("{} requests on this worker\n", self.0).into_bytes(),
            ))
            .into()
    }
}

fn main() {
    let config = Config::default();
    let server = Server::new(config).router(|| {
        Router::new()
            .route("/hello", Hello)
            .route("/count", Counter::default())
            .route("/plaintext", Plaintext)
    });
    let result = server.run(|running| {
        for a in running.local_addrs() {
            println!("custom_handler example listening on http://{a}/");
        }
    });
    if let Err(e) = result {
        eprintln!("{e}");
        std::process::exit(1);
    }
}
