//! Built-in handlers that answer later or stream, proving the exchange path
//! (and used by tests and benchmarks): `/delay`, `/stream` and `/sse`.

use std::time::{Duration, Instant};

use super::{Ctx, Handler};
use crate::exchange::{BodySource, Chunk, Io, Reply, RequestBody, RequestHead, Task};
use crate::http::{Body, Response};

/// Longest `/delay` (and `/stream`, `/sse` interval) accepted, in ms.
pub const MAX_DELAY_MS: u64 = 60_000;
/// Most chunks or events one `/stream` or `/sse` response sends.
pub const MAX_CHUNKS: u64 = 100_000;
/// Largest `/stream` chunk, in bytes.
pub const MAX_CHUNK_SIZE: u64 = 1 << 20;

/// The value of `name` in a query string (`a=1&b=2`).
fn param<'a>(query: Option<&'a str>, name: &str) -> Option<&'a str> {
    query?.split('&').find_map(|kv| {
        let (k, v) = kv.split_once('=').unwrap_or((kv, ""));
        (k == name).then_some(v)
    })
}

/// A numeric query parameter within `0..=max`, `default` when absent; the
/// error is the answer for a bad value.
fn number(query: Option<&str>, name: &str, default: u64, max: u64) -> Result<u64, Response> {
    match param(query, name) {
        None => Ok(default),
        Some(v) => match v.parse::<u64>() {
            Ok(n) if n <= max => Ok(n),
            _ => Err(Response::error(
                400,
                Some(&format!("{name} must be a whole number from 0 to {max}")),
            )),
        },
    }
}

/// `GET /delay?ms=N` → `200` after N ms (at most 60,000), from a wake-up on
/// the worker's ring; the worker goes on serving meanwhile.
#[derive(Clone, Copy, Debug, Default)]
pub struct Delay;

impl Handler for Delay {
    fn handle(&mut self, req: &RequestHead, cx: &mut Ctx<'_, '_>) -> Reply {
        let ms = match number(req.query(), "ms", 0, MAX_DELAY_MS) {
            Ok(ms) => ms,
            Err(r) => return Reply::Ready(r),
        };
        Reply::Pending(Box::new(DelayTask {
            until: cx.io.now() + Duration::from_millis(ms),
            ms,
        }))
    }
}

struct DelayTask {
    until: Instant,
    ms: u64,
}

impl Task for DelayTask {
    fn poll(&mut self, io: &mut Io, _body: &mut RequestBody) -> Option<Reply> {
        if io.now() < self.until {
            io.wake_at(self.until);
            return None;
        }
        let text = format!("delayed {} ms\n", self.ms);
        Some(Reply::Ready(
            Response::new(200)
                .content_type("text/plain")
                .header("Cache-Control", "no-store")
                .body(Body::Bytes(text.into_bytes())),
        ))
    }
}

/// `GET /stream?chunks=N&size=S&interval_ms=T` → N chunks of S bytes, T ms
/// apart, chunked, each flushed as it is produced.
#[derive(Clone, Copy, Debug, Default)]
pub struct Stream;

impl Handler for Stream {
    fn handle(&mut self, req: &RequestHead, cx: &mut Ctx<'_, '_>) -> Reply {
        let q = req.query();
        let parsed = (|| {
            Ok::<_, Response>((
                number(q, "chunks", 10, MAX_CHUNKS)?,
                number(q, "size", 16, MAX_CHUNK_SIZE)?,
                number(q, "interval_ms", 100, MAX_DELAY_MS)?,
            ))
        })();
        let (chunks, size, interval) = match parsed {
            Ok(p) => p,
            Err(r) => return Reply::Ready(r),
        };
        let head = Response::new(200)
            .content_type("application/octet-stream")
            .header("Cache-Control", "no-store");
        Reply::Stream(
            head,
            Box::new(Ticker {
                left: chunks,
                next: cx.io.now(),
                every: Duration::from_millis(interval),
                made: 0,
                piece: Piece::Bytes(size as usize),
            }),
        )
    }
}

/// `GET /sse?events=N&interval_ms=T` → `text/event-stream`, one event per
/// interval.
#[derive(Clone, Copy, Debug, Default)]
pub struct Sse;

impl Handler for Sse {
    fn handle(&mut self, req: &RequestHead, cx: &mut Ctx<'_, '_>) -> Reply {
        let q = req.query();
        let parsed = (|| {
            Ok::<_, Response>((
                number(q, "events", 10, MAX_CHUNKS)?,
                number(q, "interval_ms", 1000, MAX_DELAY_MS)?,
            ))
        })();
        let (events, interval) = match parsed {
            Ok(p) => p,
            Err(r) => return Reply::Ready(r),
        };
        let head = Response::new(200)
            .content_type("text/event-stream")
            .header("Cache-Control", "no-store");
        Reply::Stream(
            head,
            Box::new(Ticker {
                left: events,
                next: cx.io.now(),
                every: Duration::from_millis(interval),
                made: 0,
                piece: Piece::Event,
            }),
        )
    }
}

/// What each tick of a [`Ticker`] produces.
enum Piece {
    /// This many bytes of a repeating pattern.
    Bytes(usize),
    /// One server-sent event with its id.
    Event,
}

/// Produces a piece every `every`, `left` more times.
struct Ticker {
    left: u64,
    next: Instant,
    every: Duration,
    made: u64,
    piece: Piece,
}

impl BodySource for Ticker {
    fn poll_chunk(&mut self, io: &mut Io, _body: &mut RequestBody, _max: usize) -> Chunk {
        if self.left == 0 {
            return Chunk::End;
        }
        if io.now() < self.next {
            io.wake_at(self.next);
            return Chunk::Pending;
        }
        self.left -= 1;
        self.made += 1;
        self.next += self.every;
        match self.piece {
            Piece::Bytes(n) => {
                let mut b = Vec::with_capacity(n);
                let line = format!("chunk {}\n", self.made);
                while b.len() < n {
                    let take = (n - b.len()).min(line.len());
                    b.extend_from_slice(&line.as_bytes()[..take]);
                }
                Chunk::Bytes(b)
            }
            Piece::Event => Chunk::Bytes(
                format!("id: {0}\nevent: tick\ndata: {{\"n\":{0}}}\n\n", self.made).into_bytes(),
            ),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ticker_waits_between_pieces() {
        let t0 = Instant::now();
        let mut t = Ticker {
            left: 2,
            next: t0,
            every: Duration::from_millis(50),
            made: 0,
            piece: Piece::Bytes(20),
        };
        let mut body = RequestBody::default();
        let mut io = Io::new(t0);
        match t.poll_chunk(&mut io, &mut body, 1024) {
            Chunk::Bytes(b) => assert_eq!(b, b"chunk 1\nchunk 1\nchun"),
            c => panic!("{c:?}"),
        }
        assert!(matches!(
            t.poll_chunk(&mut io, &mut body, 1024),
            Chunk::Pending
        ));
        assert_eq!(io.wake(), Some(t0 + Duration::from_millis(50)));
        let mut io = Io::new(t0 + Duration::from_millis(50));
        assert!(matches!(
            t.poll_chunk(&mut io, &mut body, 1024),
            Chunk::Bytes(_)
        ));
        assert!(matches!(t.poll_chunk(&mut io, &mut body, 1024), Chunk::End));
    }

    #[test]
    fn delay_answers_when_due() {
        let t0 = Instant::now();
        let mut d = DelayTask {
            until: t0 + Duration::from_millis(5),
            ms: 5,
        };
        let mut body = RequestBody::default();
        let mut io = Io::new(t0);
        assert!(d.poll(&mut io, &mut body).is_none());
        assert_eq!(io.wake(), Some(t0 + Duration::from_millis(5)));
        let mut io = Io::new(t0 + Duration::from_millis(5));
        assert!(matches!(d.poll(&mut io, &mut body), Some(Reply::Ready(_))));
    }

    #[test]
    fn bad_numbers_are_refused() {
        assert_eq!(
            number(Some("ms=70000"), "ms", 0, MAX_DELAY_MS)
                .unwrap_err()
                .status(),
            400
        );
        assert_eq!(
            number(Some("ms=x"), "ms", 0, MAX_DELAY_MS)
                .unwrap_err()
                .status(),
            400
        );
        assert_eq!(number(Some("a=1"), "ms", 7, MAX_DELAY_MS).unwrap(), 7);
    }
}
