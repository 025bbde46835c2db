//! Streaming encoders for the supported codings, sans IO: bytes go in,
//! compressed bytes are appended to a caller's buffer, and nothing here
//! touches a socket.

use std::io::{self, Write};

use super::Coding;

/// Brotli's internal buffer: output reaches our Vec in pieces this big.
const BROTLI_BUFFER: usize = 4096;
/// Brotli window, log2 bytes: 4 MiB, what common clients decode comfortably.
const BROTLI_LGWIN: u32 = 22;

/// The backend state. Each writer writes into its own Vec, which is drained
/// into the caller's buffer after every call so memory stays bounded.
enum Inner {
    Gzip(flate2::write::GzEncoder<Vec<u8>>),
    // Boxed: brotli's state is several kilobytes, the others are pointers.
    Br(Box<brotli::CompressorWriter<Vec<u8>>>),
    Zstd(zstd::stream::write::Encoder<'static, Vec<u8>>),
    /// `finish` has run; the stream is complete.
    Finished,
    /// The backend could not be set up; every call reports it.
    Unavailable,
}

/// A streaming encoder for one response body.
pub struct Encoder {
    coding: Coding,
    inner: Inner,
}

impl Encoder {
    /// An encoder for `coding` at compression `level`.
    ///
    /// level: gzip 1..=9, br 0..=11, zstd 1..=19 (clamped).
    pub fn new(coding: Coding, level: u32) -> Encoder {
        let inner = match coding {
            Coding::Gzip => Inner::Gzip(gzip(level)),
            Coding::Br => Inner::Br(Box::new(brotli(level))),
            Coding::Zstd => zstd(level).map_or(Inner::Unavailable, Inner::Zstd),
        };
        Encoder { coding, inner }
    }

    /// The coding this encoder produces.
    pub fn coding(&self) -> Coding {
        self.coding
    }

    /// Compresses `input`, appending whatever compressed bytes are ready to
    /// `out` (may append nothing: encoders buffer).
    pub fn push(&mut self, input: &[u8], out: &mut Vec<u8>) -> io::Result<()> {
        self.with_writer(out, |writer| writer.write_all(input))
    }

    /// Emits what is buffered so far so a client can decode it (a sync
    /// flush: gzip Z_SYNC_FLUSH, brotli flush, zstd flush) — for streamed
    /// bodies whose chunks must reach the client as produced.
    pub fn flush(&mut self, out: &mut Vec<u8>) -> io::Result<()> {
        self.with_writer(out, |writer| writer.flush())
    }

    /// Ends the stream, appending the rest and the trailer. After it,
    /// push/flush/finish return an error.
    pub fn finish(&mut self, out: &mut Vec<u8>) -> io::Result<()> {
        // Take the state first so that even a failed finish leaves the
        // encoder closed: a half-written trailer cannot be resumed.
        let rest = match std::mem::replace(&mut self.inner, Inner::Finished) {
            Inner::Gzip(writer) => writer.finish()?,
            // into_inner writes brotli's final block; into a Vec it cannot fail.
            Inner::Br(writer) => writer.into_inner(),
            Inner::Zstd(writer) => writer.finish()?,
            Inner::Finished => return Err(finished()),
            Inner::Unavailable => return Err(unavailable()),
        };
        out.extend_from_slice(&rest);
        Ok(())
    }

    /// Runs `op` on the live writer, then moves what it produced to `out`.
    fn with_writer(
        &mut self,
        out: &mut Vec<u8>,
        op: impl FnOnce(&mut dyn Write) -> io::Result<()>,
    ) -> io::Result<()> {
        let writer: &mut dyn Write = match &mut self.inner {
            Inner::Gzip(w) => w,
            Inner::Br(w) => w.as_mut(),
            Inner::Zstd(w) => w,
            Inner::Finished => return Err(finished()),
            Inner::Unavailable => return Err(unavailable()),
        };
        let result = op(writer);
        // Drain even after an error so no produced byte is left behind.
        self.drain(out);
        result
    }

    /// Moves the backend's pending output to `out`, keeping its buffer
    /// small between calls.
    fn drain(&mut self, out: &mut Vec<u8>) {
        let pending = match &mut self.inner {
            Inner::Gzip(w) => w.get_mut(),
            Inner::Br(w) => w.get_mut(),
            Inner::Zstd(w) => w.get_mut(),
            Inner::Finished | Inner::Unavailable => return,
        };
        out.append(pending);
    }
}

/// The whole `input` compressed in one call.
///
/// # Panics
///
/// Only if the zstd backend cannot allocate its context, which an
/// allocation failure elsewhere would already have aborted on.
pub fn compress(coding: Coding, level: u32, input: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    let mut encoder = Encoder::new(coding, level);
    encoder
        .push(input, &mut out)
        .and_then(|()| encoder.finish(&mut out))
        .expect("compressing into memory cannot fail once the encoder exists");
    out
}

/// A gzip writer; flate2's `flush` is a Z_SYNC_FLUSH, as `flush` needs.
fn gzip(level: u32) -> flate2::write::GzEncoder<Vec<u8>> {
    let level = flate2::Compression::new(level.clamp(1, 9));
    flate2::write::GzEncoder::new(Vec::new(), level)
}

/// A brotli writer at quality `level`.
fn brotli(level: u32) -> brotli::CompressorWriter<Vec<u8>> {
    brotli::CompressorWriter::new(Vec::new(), BROTLI_BUFFER, level.min(11), BROTLI_LGWIN)
}

/// A zstd writer; creating its context is the one step that can fail.
fn zstd(level: u32) -> io::Result<zstd::stream::write::Encoder<'static, Vec<u8>>> {
    // The clamp keeps the cast lossless: 19 fits any i32.
    let level = level.clamp(1, 19) as i32;
    zstd::stream::write::Encoder::new(Vec::new(), level)
}

/// The error for any call after `finish`.
fn finished() -> io::Error {
    io::Error::other("compressed stream already finished")
}

/// The error for an encoder whose backend could not be created.
fn unavailable() -> io::Error {
    io::Error::other("compression backend could not be initialised")
}
