//! One load connection's bookkeeping, without I/O: its link state, the
//! requests queued for it, how many are unanswered, and the pipelining rules.
//! Reading the responses, pairing them with requests and the timeouts are
//! the client driver's (`driver::ClientConn`).
#![forbid(unsafe_code)]

use std::collections::VecDeque;

use crate::runtime::worker::ConnId;

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
    /// Connecting (the driver times the attempt out).
    Connecting(ConnId),
    /// Connected.
    Open(ConnId),
}

/// One connection's state.
#[derive(Debug)]
pub struct Conn {
    /// Link state.
    pub link: Link,
    /// Open loop: intended send times of requests due but not yet written.
    pub queued: VecDeque<u64>,
    /// Requests written and not yet answered.
    pub unanswered: usize,
    /// Closed loop with a request budget: requests left to send.
    pub budget: Option<u64>,
    /// Failed connection attempts in a row.
    pub failures: u32,
    /// The server said it closes after a response already read.
    pub close_after: bool,
}

impl Conn {
    /// A connection not yet opened.
    pub fn new(budget: Option<u64>) -> Conn {
        Conn {
            link: Link::Down { retry_at: 0 },
            queued: VecDeque::new(),
            unanswered: 0,
            budget,
            failures: 0,
            close_after: false,
        }
    }

    /// The connection's name on the worker, while it has one.
    pub fn id(&self) -> Option<ConnId> {
        match self.link {
            Link::Connecting(id) | Link::Open(id) => Some(id),
            Link::Down { .. } => None,
        }
    }

    /// How many requests may be written now with `pipeline` allowed in
    /// flight. Open loop: due requests, while fewer than `pipeline` are
    /// unanswered. Closed loop: a batch of `pipeline` (or what is left of the
    /// budget) once the previous batch is all answered.
    pub fn sendable(&self, pipeline: usize, open_loop: bool) -> usize {
        if !matches!(self.link, Link::Open(_)) || self.close_after {
            return 0;
        }
        if open_loop {
            pipeline
                .saturating_sub(self.unanswered)
                .min(self.queued.len())
        } else if self.unanswered == 0 {
            let left = self.budget.map_or(usize::MAX, |b| b as usize);
            pipeline.min(left)
        } else {
            0
        }
    }

    /// Records one request (of those [`Conn::sendable`] allows) as written at
    /// `now`; returns its latency origin: its intended send time (open loop)
    /// or `now`.
    pub fn take(&mut self, now: u64, open_loop: bool) -> u64 {
        let origin = match open_loop {
            true => self.queued.pop_front().unwrap_or(now),
            false => now,
        };
        self.unanswered += 1;
        if let Some(b) = self.budget.as_mut() {
            *b = b.saturating_sub(1);
        }
        origin
    }

    /// Takes back a request [`Conn::take`] recorded that could not be
    /// written after all.
    pub fn untake(&mut self, origin: u64, open_loop: bool) {
        self.unanswered -= 1;
        if let Some(b) = self.budget.as_mut() {
            *b += 1;
        }
        if open_loop {
            self.queued.push_front(origin);
        }
    }

    /// The connection ended at `now`: its unanswered requests are gone (the
    /// driver reported them) and it reconnects at once, or later after
    /// failed attempts. Queued (unwritten) requests stay for the next one.
    pub fn ended(&mut self, now: u64) {
        self.unanswered = 0;
        self.close_after = false;
        self.link = Link::Down {
            retry_at: self.retry_at(now),
        };
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
        let mut c = Conn::new(budget);
        c.link = Link::Open(ConnId::for_tests(1));
        c
    }

    #[test]
    fn open_loop_sends_due_requests_up_to_the_pipeline() {
        let mut c = open(None);
        assert_eq!(c.sendable(4, true), 0, "nothing due");
        c.queued.extend([10, 20, 30, 40, 50, 60]);
        assert_eq!(c.sendable(4, true), 4);
        let origins: Vec<u64> = (0..4).map(|_| c.take(100, true)).collect();
        assert_eq!(origins, [10, 20, 30, 40]);
        assert_eq!(c.sendable(4, true), 0, "four unanswered");
        c.unanswered -= 1;
        assert_eq!(c.sendable(4, true), 1, "room for one");
        assert_eq!(c.take(200, true), 50);
        assert_eq!(c.queued, [60]);
    }

    #[test]
    fn closed_loop_sends_whole_batches_within_the_budget() {
        let mut c = open(Some(5));
        assert_eq!(c.sendable(3, false), 3);
        for _ in 0..3 {
            assert_eq!(c.take(7, false), 7);
        }
        c.unanswered -= 1;
        assert_eq!(c.sendable(3, false), 0, "batch not all answered");
        c.unanswered = 0;
        assert_eq!(c.sendable(3, false), 2, "budget left");
        c.take(8, false);
        c.take(8, false);
        c.unanswered = 0;
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
        c.link = Link::Connecting(ConnId::for_tests(1));
        assert_eq!(c.sendable(1, true), 0);
        assert_eq!(c.id(), Some(ConnId::for_tests(1)));
    }

    #[test]
    fn an_end_keeps_unwritten_requests_and_backs_off() {
        let mut c = open(None);
        c.queued.extend([1, 2]);
        c.take(100, true);
        c.ended(5);
        assert_eq!(c.link, Link::Down { retry_at: 5 });
        assert_eq!((c.unanswered, c.id()), (0, None));
        assert_eq!(
            c.queued,
            [2],
            "unwritten requests wait for the next connection"
        );
        c.failures = 1;
        assert_eq!(c.retry_at(0), BACKOFF_FIRST_NS);
        c.failures = 3;
        assert_eq!(c.retry_at(0), 4 * BACKOFF_FIRST_NS);
        c.failures = 40;
        assert_eq!(c.retry_at(0), BACKOFF_MAX_NS);
    }
}
