//! The timeouts and limits of an outgoing connection, with their defaults.

use std::time::Duration;

use crate::http::client::ResponseLimits;

/// The timeouts and limits an outgoing connection keeps to.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ClientSettings {
    /// The connect must complete within this.
    pub connect_timeout: Duration,
    /// The oldest unanswered request must be answered completely this long
    /// after it was queued.
    pub response_timeout: Duration,
    /// What a response head may hold.
    pub limits: ResponseLimits,
    /// Response body bytes held for the owner ([`super::ClientConn::take_body`])
    /// before receiving pauses; 0: bodies are counted and dropped (the load
    /// generator). With it, `response_timeout` bounds the wait for a head
    /// since the last progress, and `read_idle` the time between two reads
    /// of a body (neither runs while the owner has not taken what arrived).
    pub deliver: usize,
    /// Longest quiet time inside a delivered response body.
    pub read_idle: Duration,
    /// Longest time queued request bytes may wait for the socket to take
    /// any of them (a peer that stopped reading).
    pub send_idle: Duration,
    /// Longest quiet time, both ways, of a connection switched to another
    /// protocol (see [`super::Request::upgrade`]).
    pub tunnel_idle: Duration,
    /// The peer is a FastCGI responder (`Some(keep_conn)`): requests are
    /// sent as records, and its records are read back as HTTP/1.1.
    pub fastcgi: Option<bool>,
}

impl Default for ClientSettings {
    fn default() -> Self {
        ClientSettings {
            connect_timeout: Duration::from_secs(10),
            response_timeout: Duration::from_secs(60),
            limits: ResponseLimits::default(),
            deliver: 0,
            read_idle: Duration::from_secs(60),
            send_idle: Duration::from_secs(60),
            tunnel_idle: Duration::from_secs(300),
            fastcgi: None,
        }
    }
}
