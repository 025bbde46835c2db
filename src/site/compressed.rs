//! A body compressed as it is sent: the bytes of a response in memory, or
//! what another body source produces, through a streaming encoder. Each
//! pull compresses a bounded amount, so one large response does not hold
//! up the other connections of its worker; what a streamed source has made
//! so far is flushed to the client whenever the source has to wait.

use std::rc::Rc;

use crate::compress::Encoder;
use crate::exchange::{BodySource, Chunk, Io, RequestBody};

/// Input bytes one body compresses per turn of the worker's loop at most
/// (about a third of a millisecond at gzip 5): the connection may pull
/// several times a turn, as sends complete, and must not compress the
/// whole body in one.
const BUDGET: usize = 16 * 1024;

/// Input bytes asked of the inner source (or taken of the body) at a time.
const PIECE: usize = 16 * 1024;
/// Compressed bytes worth handing to the connection at once.
const ENOUGH: usize = 16 * 1024;

enum Input {
    /// A body in memory and how far it has been compressed.
    Bytes { data: Rc<[u8]>, at: usize },
    /// Another source.
    Source(Box<dyn BodySource>),
}

/// The compressed body (see the module docs).
pub struct Compressed {
    input: Input,
    encoder: Encoder,
    out: Vec<u8>,
    finished: bool,
    /// Input went in since the last flush.
    unflushed: bool,
    /// The turn (the loop's time) of the last pull, and input compressed
    /// in it.
    turn: Option<std::time::Instant>,
    spent: usize,
}

impl Compressed {
    /// `data` compressed by `encoder`.
    pub fn bytes(data: Rc<[u8]>, encoder: Encoder) -> Compressed {
        Compressed::new(Input::Bytes { data, at: 0 }, encoder)
    }

    /// What `source` produces, compressed by `encoder`.
    pub fn source(source: Box<dyn BodySource>, encoder: Encoder) -> Compressed {
        Compressed::new(Input::Source(source), encoder)
    }

    fn new(input: Input, encoder: Encoder) -> Compressed {
        Compressed {
            input,
            encoder,
            out: Vec::new(),
            finished: false,
            unflushed: false,
            turn: None,
            spent: 0,
        }
    }

    /// The compressed bytes so far, as a chunk.
    fn emit(&mut self) -> Chunk {
        Chunk::Bytes(std::mem::take(&mut self.out))
    }

    fn failed(e: std::io::Error) -> Chunk {
        Chunk::Failed(format!("compressing the body: {e}"))
    }

    /// The end of the input: the encoder's rest and trailer.
    fn finish(&mut self) -> Chunk {
        self.finished = true;
        match self.encoder.finish(&mut self.out) {
            Ok(()) if self.out.is_empty() => Chunk::End,
            Ok(()) => self.emit(),
            Err(e) => Compressed::failed(e),
        }
    }
}

impl BodySource for Compressed {
    fn poll_chunk(&mut self, io: &mut Io, body: &mut RequestBody, max: usize) -> Chunk {
        if self.finished {
            return if self.out.is_empty() {
                Chunk::End
            } else {
                self.emit()
            };
        }
        let enough = ENOUGH.min(max.max(1));
        let now = io.now();
        if self.turn != Some(now) {
            self.turn = Some(now);
            self.spent = 0;
        }
        while self.spent < BUDGET && self.out.len() < enough {
            let pushed = match &mut self.input {
                Input::Bytes { data, at } => {
                    if *at == data.len() {
                        return self.finish();
                    }
                    let end = (*at + PIECE).min(data.len());
                    let r = self.encoder.push(&data[*at..end], &mut self.out);
                    self.spent += end - *at;
                    *at = end;
                    r
                }
                Input::Source(s) => match s.poll_chunk(io, body, PIECE) {
                    Chunk::Bytes(b) => {
                        self.spent += b.len();
                        let r = self.encoder.push(&b, &mut self.out);
                        s.recycle(b);
                        r
                    }
                    Chunk::Static(b) => {
                        self.spent += b.len();
                        self.encoder.push(b, &mut self.out)
                    }
                    Chunk::End => return self.finish(),
                    Chunk::Pending => {
                        // The source waits: what it made so far goes out
                        // now, decodable, as it would have uncompressed.
                        if self.unflushed {
                            self.unflushed = false;
                            if let Err(e) = self.encoder.flush(&mut self.out) {
                                return Compressed::failed(e);
                            }
                        }
                        return if self.out.is_empty() {
                            Chunk::Pending
                        } else {
                            self.emit()
                        };
                    }
                    Chunk::File(_) => {
                        return Chunk::Failed(
                            "a file piece cannot be compressed on the worker".into(),
                        );
                    }
                    Chunk::Failed(e) => return Chunk::Failed(e),
                },
            };
            if let Err(e) = pushed {
                return Compressed::failed(e);
            }
            self.unflushed = true;
        }
        if self.out.is_empty() {
            // This turn's budget is spent (or the encoder kept all it
            // took): come back on the next turn of the loop for more.
            io.wake_at(now);
            return Chunk::Pending;
        }
        self.emit()
    }

    fn trailers(&mut self) -> Vec<(crate::http::response::Text, crate::http::response::Text)> {
        match &mut self.input {
            Input::Source(s) => s.trailers(),
            Input::Bytes { .. } => Vec::new(),
        }
    }

    fn stop(&mut self) {
        if let Input::Source(s) = &mut self.input {
            s.stop();
        }
    }

    fn recycle(&mut self, mut buf: Vec<u8>) {
        if self.out.is_empty() {
            buf.clear();
            self.out = buf;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::compress::Coding;
    use std::io::Read;

    fn gunzip(b: &[u8]) -> Vec<u8> {
        let mut out = Vec::new();
        flate2::read::GzDecoder::new(b)
            .read_to_end(&mut out)
            .unwrap();
        out
    }

    /// Pulls `c` to its end, a turn of the loop per pull: the bytes, and
    /// how many pulls it took.
    fn drain(c: &mut Compressed) -> (Vec<u8>, usize) {
        let t0 = std::time::Instant::now();
        let mut body = RequestBody::empty();
        let (mut all, mut pulls) = (Vec::new(), 0);
        loop {
            pulls += 1;
            let mut io = Io::new(t0 + std::time::Duration::from_millis(pulls as u64));
            match c.poll_chunk(&mut io, &mut body, 64 * 1024) {
                Chunk::Bytes(b) => {
                    all.extend_from_slice(&b);
                    c.recycle(b);
                }
                Chunk::Pending => {}
                Chunk::End => return (all, pulls),
                other => panic!("{other:?}"),
            }
            assert!(pulls < 100_000);
        }
    }

    #[test]
    fn a_large_body_is_compressed_a_bounded_piece_per_pull() {
        let data: Vec<u8> = (0..1_000_000u32)
            .flat_map(|i| (i % 251).to_le_bytes())
            .collect();
        let mut c = Compressed::bytes(data.clone().into(), Encoder::new(Coding::Gzip, 5));
        let (z, pulls) = drain(&mut c);
        assert_eq!(gunzip(&z), data);
        // 4 MB at 16 KiB of input a turn at most.
        assert!(pulls >= data.len() / BUDGET, "{pulls} pulls");
        // Pulled again in the same turn, a body past its budget waits for
        // the next turn (and asks to be woken for it).
        let mut c = Compressed::bytes(data.into(), Encoder::new(Coding::Gzip, 5));
        let mut io = Io::new(std::time::Instant::now());
        let mut body = RequestBody::empty();
        let mut pulls = 0;
        while !matches!(c.poll_chunk(&mut io, &mut body, 64 * 1024), Chunk::Pending) {
            pulls += 1;
            assert!(pulls <= 2, "the turn's budget holds");
        }
        assert_eq!(io.wake(), Some(io.now()));
    }

    /// A source that makes `n` pieces, waiting before each.
    struct Slow {
        left: usize,
        waiting: bool,
    }

    impl BodySource for Slow {
        fn poll_chunk(&mut self, _io: &mut Io, _b: &mut RequestBody, _max: usize) -> Chunk {
            if self.left == 0 {
                return Chunk::End;
            }
            self.waiting = !self.waiting;
            if self.waiting {
                return Chunk::Pending;
            }
            self.left -= 1;
            Chunk::Static(b"piece of text ")
        }
    }

    #[test]
    fn what_a_waiting_source_made_goes_out_decodable() {
        let src = Slow {
            left: 3,
            waiting: false,
        };
        let mut c = Compressed::source(Box::new(src), Encoder::new(Coding::Gzip, 5));
        let mut io = Io::new(std::time::Instant::now());
        let mut body = RequestBody::empty();
        assert!(matches!(
            c.poll_chunk(&mut io, &mut body, 4096),
            Chunk::Pending
        ));
        // The first piece, flushed when the source waits again: a gzip
        // stream's start that decodes to it.
        let Chunk::Bytes(first) = c.poll_chunk(&mut io, &mut body, 4096) else {
            panic!("the first piece")
        };
        let mut d = flate2::write::GzDecoder::new(Vec::new());
        std::io::Write::write_all(&mut d, &first).unwrap();
        std::io::Write::flush(&mut d).unwrap();
        assert_eq!(d.get_ref().as_slice(), b"piece of text ");
        let (rest, _) = drain(&mut c);
        assert_eq!(gunzip(&[first, rest].concat()), b"piece of text ".repeat(3));
    }

    #[test]
    fn a_file_piece_fails_rather_than_corrupting() {
        struct FileSource;
        impl BodySource for FileSource {
            fn poll_chunk(&mut self, _io: &mut Io, _b: &mut RequestBody, _max: usize) -> Chunk {
                let file = std::rc::Rc::new(std::fs::File::open("/dev/null").unwrap());
                Chunk::File(crate::http::FileBody {
                    file,
                    offset: 0,
                    len: 1,
                })
            }
        }
        let mut c = Compressed::source(Box::new(FileSource), Encoder::new(Coding::Br, 4));
        let mut io = Io::new(std::time::Instant::now());
        assert!(matches!(
            c.poll_chunk(&mut io, &mut RequestBody::empty(), 4096),
            Chunk::Failed(_)
        ));
    }
}
