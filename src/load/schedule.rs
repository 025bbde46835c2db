//! The open-loop schedule: when each request is meant to be sent, and on
//! which connection.
//!
//! Request `n` (n = 0, 1, 2, …, over the whole run and every thread) is due
//! `n / rate` seconds after the start and belongs to connection `n mod C`.
//! Each connection therefore sends at `rate / C` per second, the connections
//! are evenly staggered, and the union is a constant-rate stream. A thread
//! owning connections `first .. first + count` walks its share of that
//! sequence in order, without looking at the others.
#![forbid(unsafe_code)]

/// One thread's walk through the global schedule.
#[derive(Clone, Debug)]
pub struct Schedule {
    interval_ns: f64,
    total: u64,
    first: u64,
    count: u64,
    /// Round (`n / total`) and offset within this thread's connections.
    round: u64,
    offset: u64,
    /// Requests in the whole run, when bounded.
    limit: Option<u64>,
    /// No request is due at or after this many nanoseconds.
    end_ns: u64,
}

impl Schedule {
    /// The schedule at `rate` requests per second over `total` connections,
    /// for the thread that owns `first .. first + count`, ending after
    /// `end_ns` nanoseconds or `limit` requests in all.
    pub fn new(
        rate: f64,
        total: usize,
        first: usize,
        count: usize,
        end_ns: u64,
        limit: Option<u64>,
    ) -> Schedule {
        assert!(rate > 0.0 && count > 0 && first + count <= total);
        Schedule {
            interval_ns: 1e9 / rate,
            total: total as u64,
            first: first as u64,
            count: count as u64,
            round: 0,
            offset: 0,
            limit,
            end_ns,
        }
    }

    /// The global index of the next request.
    fn index(&self) -> u64 {
        self.round * self.total + self.first + self.offset
    }

    /// The next request: the connection (an index into this thread's share)
    /// and its intended send time in nanoseconds after the start; `None` when
    /// the schedule is over.
    pub fn peek(&self) -> Option<(usize, u64)> {
        let n = self.index();
        if self.limit.is_some_and(|l| n >= l) {
            return None;
        }
        let at = (n as f64 * self.interval_ns).round() as u64;
        (at < self.end_ns).then_some((self.offset as usize, at))
    }

    /// Moves past the request `peek` returned.
    pub fn advance(&mut self) {
        self.offset += 1;
        if self.offset == self.count {
            self.offset = 0;
            self.round += 1;
        }
    }

    /// Takes the next request if it is due at or before `now_ns`.
    pub fn next_due(&mut self, now_ns: u64) -> Option<(usize, u64)> {
        let (conn, at) = self.peek().filter(|&(_, at)| at <= now_ns)?;
        self.advance();
        Some((conn, at))
    }
}

/// Part `i` of `total` split into `parts` nearly equal whole parts (the first
/// `total % parts` parts get one more).
pub fn share(total: u64, parts: u64, i: u64) -> u64 {
    total / parts + u64::from(i < total % parts)
}

/// The first index of part `i` when `total` items are split by [`share`].
pub fn share_start(total: u64, parts: u64, i: u64) -> u64 {
    (0..i).map(|j| share(total, parts, j)).sum()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn drain(s: &mut Schedule) -> Vec<(usize, u64)> {
        let mut v = Vec::new();
        while let Some(x) = s.next_due(u64::MAX) {
            v.push(x);
        }
        v
    }

    #[test]
    fn constant_rate_round_robin() {
        // 1000 req/s over 4 connections for 10 ms: one every millisecond.
        let mut s = Schedule::new(1000.0, 4, 0, 4, 10_000_000, None);
        let v = drain(&mut s);
        assert_eq!(v.len(), 10);
        for (n, &(conn, at)) in v.iter().enumerate() {
            assert_eq!(conn, n % 4);
            assert_eq!(at, n as u64 * 1_000_000);
        }
    }

    #[test]
    fn threads_partition_the_sequence() {
        // 7 connections split 3 + 4 between two threads: the union of their
        // schedules is the single-thread schedule.
        let end = 1_000_000_000;
        let mut a = Schedule::new(333.0, 7, 0, 3, end, None);
        let mut b = Schedule::new(333.0, 7, 3, 4, end, None);
        let mut all: Vec<(usize, u64)> = drain(&mut a);
        all.extend(drain(&mut b).into_iter().map(|(c, t)| (c + 3, t)));
        all.sort_by_key(|&(_, t)| t);
        let mut one = Schedule::new(333.0, 7, 0, 7, end, None);
        assert_eq!(all, drain(&mut one));
        assert_eq!(all.len(), 333);
    }

    #[test]
    fn only_due_requests_and_limits() {
        let mut s = Schedule::new(2.0, 1, 0, 1, u64::MAX, Some(3));
        assert_eq!(s.next_due(0), Some((0, 0)));
        assert_eq!(s.next_due(499_999_999), None);
        assert_eq!(s.peek(), Some((0, 500_000_000)));
        assert_eq!(s.next_due(2_000_000_000), Some((0, 500_000_000)));
        assert_eq!(s.next_due(2_000_000_000), Some((0, 1_000_000_000)));
        assert_eq!(s.next_due(u64::MAX), None, "limit of 3 reached");
        // A fractional rate far into a long run keeps its spacing.
        let mut s = Schedule::new(3.0, 1, 0, 1, u64::MAX, None);
        for _ in 0..3_000_000 {
            s.advance();
        }
        assert_eq!(s.peek(), Some((0, 1_000_000_000_000_000)));
    }

    #[test]
    fn shares() {
        assert_eq!(
            (0..3).map(|i| share(10, 3, i)).collect::<Vec<_>>(),
            [4, 3, 3]
        );
        assert_eq!(share_start(10, 3, 2), 7);
        assert_eq!(share(2, 4, 3), 0);
    }
}
