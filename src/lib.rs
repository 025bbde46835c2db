//! Peregrine: a thread-per-core io_uring HTTP/1.1 server, usable as a library.
//!
//! ```text
//!             main.rs: CLI (clap) ──> config/ (TOML → validated Config, errors name key + line)
//!                  │
//!             server.rs: bind, spawn one Worker per core, signals, join
//!                  │
//!    ┌─────────────┴──────────── per core, pinned, shares nothing mutable ───────────┐
//!    │ runtime/   the only place for `unsafe`                                        │
//!    │   ring       io_uring setup (SINGLE_ISSUER, DEFER_TASKRUN, COOP_TASKRUN),     │
//!    │              local backlog when the queue is full, one submit per loop tick   │
//!    │   token      user_data = op | generation | slot                               │
//!    │   bufring    provided-buffer ring feeding multishot recv                      │
//!    │   listener   SO_REUSEPORT socket per worker, multishot accept                 │
//!    │   timer      wheel for header / idle / body / write deadlines, one timeout    │
//!    │   worker     the loop: reap CQEs → drive conns → queue sends → submit        │
//!    │   sys        openat2, eventfd, signals, rlimits                               │
//!    │ conn/      connection slots (fd, in-flight ops, output buffer, deadlines)     │
//!    │ http/      sans-IO HTTP/1.1: parse (httparse) · decode body · encode head ·   │
//!    │            conn state machine; `now` is passed in, no fds, no clock reads     │
//!    │ handler/   router + handlers (static files, built-ins)                        │
//!    └───────────────────────────────────────────────────────────────────────────────┘
//! ```
//!
//! One request's path: a receive completion names a provided buffer →
//! [`http::Conn::feed`] parses the head (and body), calls the [`handler::Router`],
//! and encodes the response into the connection's output buffer → the receive
//! buffer goes back to the kernel → one send per connection, all submitted with
//! one `io_uring_enter` per loop tick → on the send completion, the next
//! pipelined request (if any) is answered. A file body is read through the ring
//! in bounded chunks into the same output buffer between sends.
//!
//! Ownership rule: the kernel owns a buffer from submission until its
//! completion. A closing connection stays in the slab until its in-flight count
//! reaches zero; the generation in `user_data` makes a late completion for a
//! reused slot harmless.
//!
//! Embedding: build a [`Server`] from a [`config::Config`], give it a router
//! factory (called once per worker thread), and run it:
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
pub mod config;
pub mod driver;
pub mod exchange;
pub mod handler;
pub mod http;
pub mod load;
pub mod metrics;
pub mod runtime;
pub mod server;
pub mod tls;

pub use server::{Running, Server};
