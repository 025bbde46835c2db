//! Compressing files off the workers: a small pool of background threads
//! fed by a channel. A worker hands over an open file and the coding it
//! wants, and goes on serving; the compressed bytes come back on the
//! worker's own channel, which it reads when it next serves a file. Brotli
//! at quality 11 runs at well under 1 MB/s, so this work must never run on
//! a worker's loop.

use std::fs::File;
use std::os::unix::fs::FileExt;
use std::sync::mpsc::{Receiver, Sender, channel};
use std::sync::{Arc, Mutex, OnceLock};

use super::{Coding, compress};

/// Background threads compressing files.
const THREADS: usize = 2;

/// One file to compress.
pub struct Job {
    /// The file, open (a descriptor of its own).
    pub file: File,
    /// Its length when the job was made (the bytes compressed are those).
    pub len: u64,
    /// The coding and level.
    pub coding: Coding,
    /// The level.
    pub level: u32,
    /// What the result is filed under.
    pub key: u64,
    /// Where the result goes.
    pub reply: Sender<Done>,
}

/// A job's result.
pub struct Done {
    /// The job's key.
    pub key: u64,
    /// The compressed bytes, or why there are none.
    pub result: Result<Arc<[u8]>, String>,
}

/// Starts the pool on first use; the job channel's sending end (a
/// `Sender` may be used from every worker at once).
fn jobs() -> &'static Sender<Job> {
    static JOBS: OnceLock<Sender<Job>> = OnceLock::new();
    JOBS.get_or_init(|| {
        let (tx, rx) = channel::<Job>();
        let rx = Arc::new(Mutex::new(rx));
        for i in 0..THREADS {
            let rx = rx.clone();
            let spawned = std::thread::Builder::new()
                .name(format!("peregrine-compress-{i}"))
                .spawn(move || run(&rx));
            if let Err(e) = spawned {
                eprintln!("peregrine: cannot start a compression thread: {e}");
            }
        }
        tx
    })
}

fn run(rx: &Mutex<Receiver<Job>>) {
    loop {
        // The lock is held only to take one job, never while compressing.
        let job = match rx.lock() {
            Ok(r) => r.recv(),
            Err(_) => return,
        };
        let Ok(job) = job else { return };
        let result = read_all(&job.file, job.len)
            .map(|bytes| Arc::from(compress(job.coding, job.level, &bytes)))
            .map_err(|e| e.to_string());
        // A worker that is gone has no use for it.
        let _ = job.reply.send(Done {
            key: job.key,
            result,
        });
    }
}

/// The first `len` bytes of `file`.
fn read_all(file: &File, len: u64) -> std::io::Result<Vec<u8>> {
    let mut buf = vec![0u8; len as usize];
    file.read_exact_at(&mut buf, 0)?;
    Ok(buf)
}

/// Hands `job` to the pool (a channel send: it never blocks).
pub fn submit(job: Job) -> Result<(), String> {
    jobs()
        .send(job)
        .map_err(|_| "the compression pool has stopped".to_string())
}
