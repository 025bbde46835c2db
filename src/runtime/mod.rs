//! The io_uring runtime: rings, provided buffers, listeners, timers, one file
//! per ring operation and the worker loop. The only module allowed `unsafe`
//! (the crate root denies it everywhere else); each block says why it holds.
#![allow(unsafe_code)]

pub mod bufring;
pub mod listener;
pub mod logfile;
pub mod observe;
pub mod op;
pub mod ring;
pub mod sys;
pub mod timer;
pub mod token;
pub mod worker;

/// Engine settings for each worker.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Engine {
    /// Submission queue entries per ring (completion queue: 4×).
    pub ring_entries: u32,
    /// Receive buffers in each worker's provided-buffer ring (a power of two).
    pub buffer_count: u16,
    /// Size of each receive buffer in bytes.
    pub buffer_size: u32,
    /// Use multishot accept and receive (falls back on its own where the kernel
    /// lacks them; `false` forces single-shot operations).
    pub multishot: bool,
    /// Ask for `SINGLE_ISSUER | DEFER_TASKRUN` (falls back when refused).
    pub defer_taskrun: bool,
    /// Most connections a worker holds; 0 means no limit but the fd limit.
    pub max_connections: usize,
    /// At `max_connections`, a new connection closes the longest-held one
    /// that has no request in progress (idle, or still sending its head)
    /// instead of being refused: idle connections cannot lock others out.
    pub evict_idle_at_limit: bool,
    /// Largest piece of a file body read per ring operation.
    pub file_chunk_size: usize,
    /// Listen backlog of each socket.
    pub listen_backlog: i32,
    /// File bodies at least this large are spliced from the page cache to the
    /// socket (plain HTTP only) instead of read and sent; 0 turns splicing off.
    pub splice_min_size: usize,
}

impl Default for Engine {
    fn default() -> Self {
        Engine {
            ring_entries: 4096,
            buffer_count: 1024,
            buffer_size: 4096,
            multishot: true,
            defer_taskrun: true,
            max_connections: 0,
            evict_idle_at_limit: false,
            file_chunk_size: 128 * 1024,
            listen_backlog: 4096,
            splice_min_size: 64 * 1024,
        }
    }
}

/// Writes one line to standard error, prefixed with the program name.
pub fn log(msg: &str) {
    use std::io::Write;
    // Never panics: a closed stderr must not take a worker down.
    let _ = writeln!(std::io::stderr(), "peregrine: {msg}");
}
