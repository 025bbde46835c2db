//! A worker's compressed copies of files that have no sidecar: made once,
//! at the best level, by the background pool
//! ([`crate::compress::background`]), kept in memory, and filed under the
//! file's path and validator so a changed file is compressed anew. Until a
//! copy is ready the file is sent as it is.

use std::collections::{HashMap, VecDeque};
use std::rc::Rc;
use std::sync::mpsc::{Receiver, Sender, channel};

use super::file_cache::Entry;
use crate::compress::Coding;
use crate::compress::background::{Done, Job, submit};

/// Files larger than this are not compressed (sent as they are).
pub const MAX_FILE: u64 = 16 * 1024 * 1024;
/// Compressed bytes a worker keeps; the oldest copies go first past it.
pub const MAX_BYTES: usize = 64 * 1024 * 1024;

/// What a job or a failure is for: the path below the root, the file's
/// validator, the coding.
type Key = (Box<[u8]>, String, Coding);

/// A file's copies, for one validator of it.
#[derive(Debug, Default)]
struct Copies {
    etag: String,
    by_coding: [Option<Rc<[u8]>>; 3],
}

fn slot(c: Coding) -> usize {
    match c {
        Coding::Br => 0,
        Coding::Zstd => 1,
        Coding::Gzip => 2,
    }
}

/// The best level of each coding: the work is done once, off the workers.
fn best(c: Coding) -> u32 {
    match c {
        Coding::Br => 11,
        Coding::Zstd => 19,
        Coding::Gzip => 9,
    }
}

/// One worker's copies (see the module docs).
#[derive(Debug)]
pub struct FileCompressor {
    /// Copies by path (looked up without building a key).
    ready: HashMap<Box<[u8]>, Copies>,
    /// Copies in the order they were filed, with their sizes.
    order: VecDeque<(Key, usize)>,
    bytes: usize,
    /// Jobs out, by number.
    pending: HashMap<u64, Key>,
    /// Files the pool could not compress (not asked again).
    failed: HashMap<Key, String>,
    next: u64,
    tx: Sender<Done>,
    rx: Receiver<Done>,
}

impl Default for FileCompressor {
    fn default() -> FileCompressor {
        let (tx, rx) = channel();
        FileCompressor {
            ready: HashMap::new(),
            order: VecDeque::new(),
            bytes: 0,
            pending: HashMap::new(),
            failed: HashMap::new(),
            next: 0,
            tx,
            rx,
        }
    }
}

impl FileCompressor {
    /// The copy of file `rel` (`e`) in coding `c` if it is ready; else one
    /// is asked for (once) and `None` is the answer for now.
    pub fn get(&mut self, rel: &[u8], e: &Entry, c: Coding) -> Option<Rc<[u8]>> {
        self.collect();
        if let Some(copies) = self.ready.get(rel)
            && copies.etag == e.etag
            && let Some(b) = &copies.by_coding[slot(c)]
        {
            return Some(b.clone());
        }
        let key: Key = (rel.into(), e.etag.clone(), c);
        if self.failed.contains_key(&key) || self.pending.values().any(|k| *k == key) {
            return None;
        }
        let Ok(file) = e.file.try_clone() else {
            return None;
        };
        let n = self.next;
        self.next += 1;
        let job = Job {
            file,
            len: e.size,
            coding: c,
            level: best(c),
            key: n,
            reply: self.tx.clone(),
        };
        if submit(job).is_ok() {
            self.pending.insert(n, key);
        }
        None
    }

    /// Files what the pool has sent back.
    fn collect(&mut self) {
        while let Ok(done) = self.rx.try_recv() {
            let Some(key) = self.pending.remove(&done.key) else {
                continue;
            };
            match done.result {
                Ok(bytes) => self.file(key, Rc::from(&bytes[..])),
                Err(e) => {
                    self.failed.insert(key, e);
                }
            }
        }
    }

    fn file(&mut self, key: Key, bytes: Rc<[u8]>) {
        let n = bytes.len();
        while self.bytes + n > MAX_BYTES {
            let Some(((path, etag, c), size)) = self.order.pop_front() else {
                break;
            };
            self.bytes -= size;
            if let Some(copies) = self.ready.get_mut(&path)
                && copies.etag == etag
            {
                copies.by_coding[slot(c)] = None;
                if copies.by_coding.iter().all(Option::is_none) {
                    self.ready.remove(&path);
                }
            }
        }
        if n > MAX_BYTES {
            return;
        }
        let copies = self.ready.entry(key.0.clone()).or_default();
        if copies.etag != key.1 {
            // The file changed: its older copies go (their bytes leave the
            // count when their turn in `order` comes).
            *copies = Copies {
                etag: key.1.clone(),
                by_coding: Default::default(),
            };
        }
        copies.by_coding[slot(key.2)] = Some(bytes);
        self.bytes += n;
        self.order.push_back((key, n));
    }

    /// Copies ready and bytes they hold (counted until their turn to
    /// leave comes).
    pub fn held(&self) -> (usize, usize) {
        let n = self
            .ready
            .values()
            .map(|c| c.by_coding.iter().flatten().count())
            .sum();
        (n, self.bytes)
    }

    /// Jobs still out.
    pub fn waiting(&self) -> usize {
        self.pending.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::handler::file_cache::FileCache;
    use std::time::{Duration, Instant};

    #[test]
    fn a_copy_is_made_once_in_the_background_and_kept_by_validator() {
        let dir = std::env::temp_dir().join(format!("peregrine-fc-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let text = "compress me, compress me\n".repeat(400);
        std::fs::write(dir.join("a.txt"), &text).unwrap();
        let mut files = FileCache::new(&dir, Duration::from_secs(1), 16).unwrap();
        let e = files.get(b"a.txt", Instant::now()).unwrap();
        let mut fc = FileCompressor::default();
        assert!(fc.get(b"a.txt", &e, Coding::Gzip).is_none());
        assert_eq!(fc.waiting(), 1);
        // Asked again while it is made: no second job.
        assert!(fc.get(b"a.txt", &e, Coding::Gzip).is_none());
        assert_eq!(fc.waiting(), 1);
        let started = Instant::now();
        let copy = loop {
            if let Some(c) = fc.get(b"a.txt", &e, Coding::Gzip) {
                break c;
            }
            assert!(started.elapsed() < Duration::from_secs(10));
            std::thread::sleep(Duration::from_millis(5));
        };
        let mut out = String::new();
        std::io::Read::read_to_string(&mut flate2::read::GzDecoder::new(&copy[..]), &mut out)
            .unwrap();
        assert_eq!(out, text);
        assert_eq!(fc.held(), (1, copy.len()));
        // Another coding is another copy.
        assert!(fc.get(b"a.txt", &e, Coding::Br).is_none());
        assert_eq!(fc.waiting(), 1);
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
