//! One load connection's bookkeeping, without I/O: its link state, the
//! requests queued for it and in flight on it, the pipelining rules, and its
//! responses as the HTTP/1 client role reads them.
#![forbid(unsafe_code)]

use std::collections::VecDeque;
use std::fmt;

use crate::http::client::{ClientError, Event, ResponseLimits, ResponseReader};

/// Reconnect delays after failed attempts: doubling from the first to the last.
const BACKOFF_FIRST_NS: u64 = 10_000_000;
const BACKOFF_MAX_NS: u64 = 1_000_000_000;

/// Where the connection stands.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Link {
    /// No socket; (re)connect at this time.
    Down {
        /// When to try.
        retry_at: u64,
    },
    /// Connecting since this time.
    Connecting {
        /// When the attempt started.
        since: u64,
    },
    /// Connected.
    Open,
    /// Being closed; the ring reports when it is done.
    Closing,
}

/// A request written and not yet answered.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Sent {
    /// Latency origin: the intended send time (open loop) or the send.
    pub origin: u64,
    /// When it was written, for the timeout.
    pub sent: u64,
}

/// One complete response, as the statistics see it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Response {
    /// Status code.
    pub status: u16,
    /// Body bytes (decoded, for a chunked body).
    pub body_len: u64,
    /// The connection cannot carry another request after this response.
    pub close: bool,
}

/// Why a connection's responses cannot be read further.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ReadError {
    /// The bytes are not an HTTP/1.1 response.
    Http(ClientError),
    /// `101 Switching Protocols`: the load generator speaks HTTP/1.1 only.
    Upgrade,
}

impl From<ClientError> for ReadError {
    fn from(e: ClientError) -> Self {
        ReadError::Http(e)
    }
}

impl fmt::Display for ReadError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ReadError::Http(e) => e.fmt(f),
            ReadError::Upgrade => f.write_str("unexpected 101 Switching Protocols"),
        }
    }
}

/// One connection's state.
#[derive(Debug)]
pub struct Conn {
    /// Link state.
    pub link: Link,
    /// Reads its responses.
    reader: ResponseReader,
    /// Body bytes of the response being read.
    body_len: u64,
    /// Open loop: intended send times of requests due but not yet written.
    pub queued: VecDeque<u64>,
    /// Requests written and not yet answered, oldest first.
    pub outstanding: VecDeque<Sent>,
    /// Closed loop with a request budget: requests left to send.
    pub budget: Option<u64>,
    /// Failed connection attempts in a row.
    pub failures: u32,
    /// The server said it closes after a response already read.
    pub close_after: bool,
}

impl Conn {
    /// A connection not yet opened; `head` when the requests are HEAD.
    pub fn new(head: bool, budget: Option<u64>) -> Conn {
        let mut reader = ResponseReader::new(ResponseLimits::default());
        reader.set_head_request(head);
        Conn {
            link: Link::Down { retry_at: 0 },
            reader,
            body_len: 0,
            queued: VecDeque::new(),
            outstanding: VecDeque::new(),
            budget,
            failures: 0,
            close_after: false,
        }
    }

    /// Reads received bytes, appending each complete response to `out`.
    /// After an error the connection cannot be read further.
    pub fn read(&mut self, mut data: &[u8], out: &mut Vec<Response>) -> Result<(), ReadError> {
        loop {
            let p = self.reader.feed(data)?;
            match p.event {
                Event::NeedInput => return Ok(()),
                Event::Head => self.body_len = 0,
                Event::Body(r) => self.body_len += r.len() as u64,
                Event::Complete { reuse } => out.push(self.finished(!reuse)),
                Event::Upgraded => return Err(ReadError::Upgrade),
            }
            data = &data[p.consumed..];
        }
    }

    /// The server closed the connection: the response it delimits, if any.
    /// Resets the reader.
    pub fn read_eof(&mut self) -> Result<Option<Response>, ClientError> {
        Ok(self.reader.eof()?.then(|| self.finished(true)))
    }

    /// Forgets any partial response, for a new connection.
    pub fn reset_reader(&mut self) {
        self.reader.reset();
        self.body_len = 0;
    }

    fn finished(&self, close: bool) -> Response {
        Response {
            status: self.reader.head().status,
            body_len: self.body_len,
            close,
        }
    }

    /// How many requests may be written now with `pipeline` allowed in
    /// flight. Open loop: due requests, while fewer than `pipeline` are
    /// unanswered. Closed loop: a batch of `pipeline` (or what is left of the
    /// budget) once the previous batch is all answered.
    pub fn sendable(&self, pipeline: usize, open_loop: bool) -> usize {
        if self.link != Link::Open || self.close_after {
            return 0;
        }
        if open_loop {
            pipeline
                .saturating_sub(self.outstanding.len())
                .min(self.queued.len())
        } else if self.outstanding.is_empty() {
            let left = self.budget.map_or(usize::MAX, |b| b as usize);
            pipeline.min(left)
        } else {
            0
        }
    }

    /// Records `n` requests (from [`Conn::sendable`]) as written at `now`.
    pub fn take(&mut self, n: usize, now: u64, open_loop: bool) {
        for _ in 0..n {
            let origin = match open_loop {
                true => self.queued.pop_front().unwrap_or(now),
                false => now,
            };
            self.outstanding.push_back(Sent { origin, sent: now });
        }
        if let Some(b) = self.budget.as_mut() {
            *b = b.saturating_sub(n as u64);
        }
    }

    /// Whether the oldest unanswered request was written `timeout_ns` ago.
    pub fn timed_out(&self, now: u64, timeout_ns: u64) -> bool {
        self.outstanding
            .front()
            .is_some_and(|s| now.saturating_sub(s.sent) >= timeout_ns)
    }

    /// Forgets the unanswered requests and any partial response, for a
    /// connection being closed; returns how many requests were lost. Queued
    /// (unwritten) requests stay for the next connection.
    pub fn give_up(&mut self) -> u64 {
        let lost = self.outstanding.len() as u64;
        self.outstanding.clear();
        self.reset_reader();
        self.close_after = false;
        self.link = Link::Closing;
        lost
    }

    /// When to reconnect after the connection closed at `now`: at once, or
    /// later after failed attempts.
    pub fn retry_at(&self, now: u64) -> u64 {
        match self.failures {
            0 => now,
            n => now + (BACKOFF_FIRST_NS << (n - 1).min(10)).min(BACKOFF_MAX_NS),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn open(budget: Option<u64>) -> Conn {
        let mut c = Conn::new(false, budget);
        c.link = Link::Open;
        c
    }

    #[test]
    fn open_loop_sends_due_requests_up_to_the_pipeline() {
        let mut c = open(None);
        assert_eq!(c.sendable(4, true), 0, "nothing due");
        c.queued.extend([10, 20, 30, 40, 50, 60]);
        assert_eq!(c.sendable(4, true), 4);
        c.take(4, 100, true);
        assert_eq!(c.sendable(4, true), 0, "four unanswered");
        assert_eq!(
            c.outstanding.front(),
            Some(&Sent {
                origin: 10,
                sent: 100
            })
        );
        c.outstanding.pop_front();
        assert_eq!(c.sendable(4, true), 1, "room for one");
        c.take(1, 200, true);
        assert_eq!(c.outstanding.back().unwrap().origin, 50);
        assert_eq!(c.queued, [60]);
    }

    #[test]
    fn closed_loop_sends_whole_batches_within_the_budget() {
        let mut c = open(Some(5));
        assert_eq!(c.sendable(3, false), 3);
        c.take(3, 7, false);
        assert_eq!(c.outstanding[2], Sent { origin: 7, sent: 7 });
        c.outstanding.pop_front();
        assert_eq!(c.sendable(3, false), 0, "batch not all answered");
        c.outstanding.clear();
        assert_eq!(c.sendable(3, false), 2, "budget left");
        c.take(2, 8, false);
        c.outstanding.clear();
        assert_eq!(c.sendable(3, false), 0);
        assert_eq!(open(None).sendable(3, false), 3);
    }

    #[test]
    fn closed_or_closing_connections_send_nothing() {
        let mut c = open(None);
        c.queued.push_back(1);
        c.close_after = true;
        assert_eq!(c.sendable(1, true), 0);
        c.close_after = false;
        c.link = Link::Connecting { since: 0 };
        assert_eq!(c.sendable(1, true), 0);
    }

    #[test]
    fn reads_responses_across_reads() {
        let mut c = open(None);
        let mut out = Vec::new();
        let input = b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhello\
HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3;x=y\r\nabc\r\n0\r\n\r\n\
HTTP/1.1 503 Busy\r\nConnection: close\r\nContent-Length: 1\r\n\r\nx";
        let (a, b) = input.split_at(50);
        c.read(a, &mut out).unwrap();
        assert_eq!(out.len(), 1);
        c.read(b, &mut out).unwrap();
        let r = |status, body_len, close| Response {
            status,
            body_len,
            close,
        };
        assert_eq!(out, [r(200, 5, false), r(200, 3, false), r(503, 1, true)]);
        assert_eq!(c.read_eof(), Ok(None));

        out.clear();
        c.read(b"HTTP/1.0 200 OK\r\n\r\nuntil", &mut out).unwrap();
        c.read(b" close", &mut out).unwrap();
        assert!(out.is_empty());
        assert_eq!(c.read_eof(), Ok(Some(r(200, 11, true))));

        c.read(b"HTTP/1.1 200 OK\r\nContent-Length: 9\r\n\r\nabc", &mut out)
            .unwrap();
        assert_eq!(c.read_eof(), Err(ClientError::Truncated));
        let e = c.read(b"HTTP/1.1 101 Switching Protocols\r\n\r\n", &mut out);
        assert_eq!(e, Err(ReadError::Upgrade));
        c.reset_reader();
        let e = c.read(b"SMTP ready\r\n\r\n", &mut out).unwrap_err();
        assert_eq!(e.to_string(), "malformed status line");

        let mut head = Conn::new(true, None);
        head.read(b"HTTP/1.1 200 OK\r\nContent-Length: 13\r\n\r\n", &mut out)
            .unwrap();
        assert_eq!(out.last(), Some(&r(200, 0, false)));
    }

    #[test]
    fn timeouts_give_up_and_backoff() {
        let mut c = open(None);
        c.queued.extend([1, 2]);
        c.take(1, 100, true);
        assert!(!c.timed_out(199, 100));
        assert!(c.timed_out(200, 100));
        assert_eq!(c.give_up(), 1);
        assert_eq!(c.link, Link::Closing);
        assert_eq!(
            c.queued,
            [2],
            "unwritten requests wait for the next connection"
        );
        assert_eq!(c.retry_at(5), 5);
        c.failures = 1;
        assert_eq!(c.retry_at(0), BACKOFF_FIRST_NS);
        c.failures = 3;
        assert_eq!(c.retry_at(0), 4 * BACKOFF_FIRST_NS);
        c.failures = 40;
        assert_eq!(c.retry_at(0), BACKOFF_MAX_NS);
    }
}
