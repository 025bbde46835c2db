//! One request and its answer, independent of the protocol that carried it.
//!
//! A protocol codec (HTTP/1 today, HTTP/2 later) never calls a handler itself:
//! it yields an exchange — an owned [`RequestHead`] and a [`RequestBody`] that
//! streams — and frames whatever [`Reply`] comes back. A reply is ready at once
//! ([`Reply::Ready`]), streams a body of known or unknown length
//! ([`Reply::Stream`] with a pulled [`BodySource`]), or comes later
//! ([`Reply::Pending`] with a [`Task`] the connection polls again when the time
//! it asked for through [`Io`] has come, or when request body bytes arrive).
//!
//! Everything here is sans-IO: time is passed in, nothing blocks, and the same
//! types are driven by unit tests in simulated time.
#![forbid(unsafe_code)]

mod body;
mod head;
mod reply;

pub use body::RequestBody;
pub use head::RequestHead;
pub use reply::{BodySource, Chunk, Io, Reply, Task, UpstreamNote, Waker};
