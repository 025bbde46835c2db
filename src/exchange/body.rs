//! A request body that streams from the connection to the handler.

/// Body bytes received for an exchange and not yet taken by its handler.
///
/// The connection decodes into it up to [`RequestBody::WINDOW`] bytes; while
/// it is that full, the connection stops consuming input (and soon stops
/// receiving), so a handler that reads slowly slows the client down instead
/// of making the server buffer the whole body.
#[derive(Debug, Default)]
pub struct RequestBody {
    buf: Vec<u8>,
    /// Where the untaken bytes start in `buf`.
    start: usize,
    /// The last body byte has been decoded.
    done: bool,
    /// The body's length as declared (`Content-Length`), if any.
    declared: Option<u64>,
    /// Bytes handed to the handler so far.
    taken: u64,
}

impl RequestBody {
    /// Most bytes held for a handler before the connection stops reading.
    pub const WINDOW: usize = 64 * 1024;

    /// A body of `declared` bytes (`None`: chunked, length unknown).
    pub fn new(declared: Option<u64>) -> RequestBody {
        RequestBody {
            declared,
            ..RequestBody::default()
        }
    }

    /// The complete, empty body of a request that has none.
    pub fn empty() -> RequestBody {
        RequestBody {
            done: true,
            declared: Some(0),
            ..RequestBody::default()
        }
    }

    /// An already complete body (for tests and protocols that buffer).
    pub fn complete(bytes: &[u8]) -> RequestBody {
        RequestBody {
            buf: bytes.to_vec(),
            done: true,
            declared: Some(bytes.len() as u64),
            ..RequestBody::default()
        }
    }

    /// The declared length, when the request had one.
    pub fn declared_len(&self) -> Option<u64> {
        self.declared
    }

    /// Bytes waiting to be taken.
    pub fn available(&self) -> usize {
        self.buf.len() - self.start
    }

    /// Whether every byte of the body has arrived (some may not be taken yet).
    pub fn is_complete(&self) -> bool {
        self.done
    }

    /// Whether the whole body has been taken.
    pub fn is_finished(&self) -> bool {
        self.done && self.available() == 0
    }

    /// Bytes handed out so far.
    pub fn taken(&self) -> u64 {
        self.taken
    }

    /// Takes up to `max` waiting bytes, appending them to `out`; returns how
    /// many.
    pub fn take_into(&mut self, out: &mut Vec<u8>, max: usize) -> usize {
        let n = self.available().min(max);
        out.extend_from_slice(&self.buf[self.start..self.start + n]);
        self.consume(n);
        n
    }

    /// The waiting bytes, without taking them.
    pub fn peek(&self) -> &[u8] {
        &self.buf[self.start..]
    }

    /// Marks `n` waiting bytes as taken.
    pub fn consume(&mut self, n: usize) {
        let n = n.min(self.available());
        self.start += n;
        self.taken += n as u64;
        if self.start == self.buf.len() {
            self.buf.clear();
            self.start = 0;
        }
    }

    /// Room left before the window is full.
    pub(crate) fn room(&self) -> usize {
        Self::WINDOW.saturating_sub(self.available())
    }

    /// The buffer the connection decodes into (compacted first).
    pub(crate) fn sink(&mut self) -> &mut Vec<u8> {
        if self.start > 0 {
            self.buf.drain(..self.start);
            self.start = 0;
        }
        &mut self.buf
    }

    /// The connection saw the last body byte.
    pub(crate) fn finish(&mut self) {
        self.done = true;
    }

    /// Drops what is waiting and frees the buffer (the handler is done).
    pub(crate) fn discard(&mut self) {
        self.buf = Vec::new();
        self.start = 0;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn take_and_window() {
        let mut b = RequestBody::new(Some(10));
        b.sink().extend_from_slice(b"hello");
        assert_eq!(b.available(), 5);
        assert_eq!(b.room(), RequestBody::WINDOW - 5);
        let mut out = Vec::new();
        assert_eq!(b.take_into(&mut out, 2), 2);
        assert_eq!(out, b"he");
        assert_eq!(b.peek(), b"llo");
        b.sink().extend_from_slice(b"world");
        b.finish();
        assert!(!b.is_finished());
        b.take_into(&mut out, usize::MAX);
        assert_eq!(out, b"helloworld");
        assert!(b.is_finished());
        assert_eq!(b.taken(), 10);
    }
}
