//! Peregrine: a thread-per-core io_uring HTTP/1.1 server, usable as a library.
//!
//! ```text
//!             main.rs: CLI (clap) ──> config/ (TOML → validated Config, errors name key + line)
//!                  │
//!             server/: bind, spawn one Worker per core, signals, join; reload: a new
//!                  │   immutable generation, prepared then committed on every worker
//!                  │
//!    ┌─────────────┴──────────── per core, pinned, shares nothing mutable ───────────┐
//!    │ runtime/   the only place for `unsafe`                                        │
//!    │   ring       io_uring setup (SINGLE_ISSUER, DEFER_TASKRUN, COOP_TASKRUN),     │
//!    │              local backlog when the queue is full, one submit per loop tick   │
//!    │   op/        one file per ring operation; an operation owns what the kernel   │
//!    │              uses (buffer, file, address) until its completion hands it back  │
//!    │   worker/    the executor: token → slot → driver (server | client, one slab); │
//!    │              actions → operations; ClientIo/ClientApp for outgoing ones       │
//!    │   token · bufring · timer · listener · observe · logfile · sys                │
//!    │ driver/    sans-IO connection drivers: deadlines per reason, TLS + HTTP/1 or  │
//!    │            HTTP/2 (chosen by ALPN or the cleartext preface),                  │
//!    │            pausing, file bodies, lingering; the client side (connect, HTTP/1  │
//!    │            client role, response deadlines, a TLS layer under it; TCP or      │
//!    │            Unix sockets) — tested in simulated time                           │
//!    │ http/      sans-IO HTTP/1.1 codec (server and client roles): parse · body     │
//!    │            decoding · response framing · the exchange loop; `now` passed in   │
//!    │ http2/     sans-IO HTTP/2 server: frames · HPACK · request checks · flow      │
//!    │            control · streams as exchanges · flood budgets (ALPN h2, h2c)      │
//!    │ exchange/  RequestHead, streaming RequestBody, Reply, BodySource, Task, Io    │
//!    │ site/      listener + Host/SNI → site → route; header rules, error pages      │
//!    │ handler/   router + handlers (files, listings, respond, redirect, built-ins,  │
//!    │            proxy: rewriting, streaming, Upgrade and CONNECT tunnels)          │
//!    │ upstream/  per core: pools, balancers, health checks, retries (the Hub);      │
//!    │            per generation: the groups, health verdicts shared by atomics      │
//!    └───────────────────────────────────────────────────────────────────────────────┘
//!    load/  `peregrine load`: each thread a client application on its own worker
//! ```
//!
//! One request's path: a receive completion hands over a provided buffer →
//! [`driver::ServerConn::on_recv`] feeds it (through the rustls session over
//! HTTPS) to [`http::Conn::feed`], which parses the head into an owned
//! [`exchange::RequestHead`], asks [`site::Sites`] (listener and host →
//! site) and then that site's [`handler::Router`] for a
//! [`exchange::Reply`], and frames it into the connection's output buffer →
//! the receive buffer goes back to the kernel → the driver's
//! [`driver::Action::Send`] moves the buffer into a send operation, all
//! submitted with one `io_uring_enter` per loop tick → on its completion the
//! buffer comes back and the next pipelined request (if any) is answered. A
//! reply that comes later asks [`exchange::Io`] for a wake-up; a streamed body
//! is pulled from its [`exchange::BodySource`] as the socket takes it; a file
//! body is read through the ring in bounded chunks, or spliced. A proxied
//! request starts an exchange on the worker's [`upstream::Hub`], which picks
//! a server, takes a pooled connection (or has the executor connect one) and
//! wakes the server connection as the response head and body arrive; the
//! body streams back as a `BodySource`, the request body up as it arrives.
//! A large body piece is not copied behind its head: it goes out after the
//! output buffer in the same gather send ([`driver::Action::SendGather`]).
//!
//! Reload: [`server::Reloader`] builds a new [`site::Generation`] from the
//! file, binds the addresses it adds, and hands it to each worker's control
//! block; every worker builds its handlers, then every worker switches
//! between two events of its loop. A request in flight keeps what its reply
//! owns; the connection's next request meets the new generation.
//!
//! Ownership rule: the kernel owns a buffer from submission until its
//! completion, and the operation object holding it lives in the connection's
//! slot until then. A closing connection cancels exactly its operations and
//! stays in the slab until the last completion arrives; the generation in
//! `user_data` makes a late completion for a reused slot harmless.
//!
//! Embedding: build a [`Server`] from a [`config::Config`] (whose
//! `[[site]]` routes may name handlers registered with [`Server::handler`]),
//! or give it a router factory (called once per worker thread), and run it:
//!
//! ```no_run
//! use peregrine::handler::{Plaintext, Router};
//! let server = peregrine::Server::new(peregrine::config::Config::default())
//!     .router(|| Router::new().route("/plaintext", Plaintext));
//! server.run(|running| println!("on {:?}", running.local_addrs())).unwrap();
//! ```
#![deny(
    unsafe_code,
    unsafe_op_in_unsafe_fn,
    clippy::undocumented_unsafe_blocks,
    clippy::missing_safety_doc,
    clippy::multiple_unsafe_ops_per_block
)]
#![warn(missing_docs)]

pub mod accesslog;
pub mod admin;
pub mod cache;
pub mod compress;
pub mod config;
pub mod driver;
pub mod exchange;
pub mod fastcgi;
pub mod filter;
pub mod guard;
pub mod handler;
pub mod http;
pub mod http2;
pub mod ipnet;
pub mod limit;
pub mod load;
pub mod metrics;
pub mod pool;
pub mod runtime;
pub mod server;
pub mod site;
pub mod tls;
pub mod upstream;

pub use server::{Running, Server};
