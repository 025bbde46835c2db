//! What a server connection waits for, named once: its deadline, its gauge
//! and whether it may be evicted all follow from this.

use std::time::Instant;

use super::action::Gauge;
use super::server::{Phase, ServerConn};
use crate::http::Waiting;

/// The stage a server connection is in, by what it waits for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum State {
    /// The TLS handshake of a new connection (its clock is the first
    /// request head's: it runs from accept).
    Handshaking,
    /// A new connection's first request, no byte of it yet (from accept).
    AwaitingFirst,
    /// Between requests, no byte of the next yet, since this instant.
    Idle {
        /// When the previous exchange ended.
        since: Instant,
    },
    /// The rest of a request head, whose clock started at `since` (accept
    /// for the first request; its first byte, ciphertext included, later).
    ExpectRequest {
        /// When the head's clock started.
        since: Instant,
    },
    /// More of a request body.
    ReadingBody {
        /// When the last piece came.
        last: Instant,
    },
    /// The handler: an answer that comes later, a stream's source, or a body
    /// it has not taken yet. The client is not at fault: no deadline runs.
    Handler,
    /// An HTTP/2 response waits for the client's flow-control window.
    Stalled {
        /// Since when.
        since: Instant,
    },
    /// The client to take response bytes.
    Writing,
    /// The client to take a file body, read or spliced piece by piece.
    StreamingFile,
    /// Done with HTTP: what is left goes out, then the connection closes.
    Closing,
    /// The final response is out and our side is shut; input is read and
    /// dropped until the peer closes or `until` passes.
    Lingering {
        /// When lingering ends.
        until: Instant,
    },
    /// Closed: the executor cancels what is in flight and frees the slot.
    Closed,
}

impl ServerConn {
    /// The stage the connection is in.
    pub fn state(&self) -> State {
        match self.phase {
            Phase::Closed => return State::Closed,
            Phase::Lingering { until } => return State::Lingering { until },
            Phase::Open => {}
        }
        if self.file.is_some() {
            return State::StreamingFile;
        }
        if self.writing() {
            return State::Writing;
        }
        match self.http.waiting() {
            Waiting::Idle if !self.served => match &self.tls {
                Some(t) if t.session.is_handshaking() => State::Handshaking,
                _ => State::AwaitingFirst,
            },
            Waiting::Idle => match self.first_byte {
                Some(b) => State::ExpectRequest { since: b },
                None => State::Idle {
                    since: self.idle_since,
                },
            },
            Waiting::Head(_) if !self.served => State::ExpectRequest {
                since: self.accepted,
            },
            Waiting::Head(h) => State::ExpectRequest {
                since: self.first_byte.map_or(h, |b| b.min(h)),
            },
            Waiting::Body(last) => State::ReadingBody { last },
            Waiting::Handler => State::Handler,
            Waiting::Stalled(since) => State::Stalled { since },
            Waiting::Done => State::Closing,
        }
    }

    /// What the connection is doing, for the gauges (nginx `stub_status`).
    pub fn gauge(&self) -> Gauge {
        match self.state() {
            State::Handshaking | State::AwaitingFirst | State::Idle { .. } => Gauge::Waiting,
            State::ExpectRequest { .. } | State::ReadingBody { .. } => Gauge::Reading,
            State::Handler
            | State::Stalled { .. }
            | State::Writing
            | State::StreamingFile
            | State::Closing => Gauge::Writing,
            State::Lingering { .. } | State::Closed => Gauge::Ending,
        }
    }

    /// Whether the connection may be closed to make room: it has no
    /// request in progress.
    pub fn evictable(&self) -> bool {
        matches!(
            self.state(),
            State::Handshaking
                | State::AwaitingFirst
                | State::Idle { .. }
                | State::ExpectRequest { .. }
        )
    }
}
