//! Upstream servers: the `[[upstream]]` groups proxied to, and each worker's
//! engine for them ([`Hub`]): per-core connection pools, balancers, health
//! checks and the proxied exchanges in flight.
//!
//! ```text
//! proxy handler ──start/forward/take_head/take_body──> Hub ──Cmd──> executor
//!        ▲                                               ▲            │
//!        └──── wake (the server connection) ─────────────┴── events ──┘
//! ```
#![forbid(unsafe_code)]

pub mod balance;
pub mod exchange;
pub mod health;
pub mod hub;
pub mod shared;
pub mod spec;
pub mod stats;
pub mod sticky;

pub use exchange::{ExchangeId, Failure, Ticket, UpBody};
pub use hub::{BodyPoll, Cmd, HUB_KEY, HeadPoll, Hub, Start, Upstream};
