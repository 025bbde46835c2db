//! A per-worker open-file cache: open descriptors and their metadata, checked
//! against the file system again once they are older than `valid` (like nginx's
//! `open_file_cache` with `open_file_cache_valid`).

use std::cell::Cell;
use std::collections::HashMap;
use std::ffi::OsStr;
use std::fs::File;
use std::io;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::MetadataExt;
use std::path::Path;
use std::rc::Rc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use crate::runtime::sys::{open_beneath, set_blocking};

/// What a path names.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    /// A regular file.
    File,
    /// A directory.
    Dir,
    /// Anything else (FIFO, socket, device): never served.
    Other,
}

/// An open file and what responses need to know about it.
#[derive(Debug)]
pub struct Entry {
    /// The open descriptor.
    pub file: Rc<File>,
    /// What it is.
    pub kind: Kind,
    /// Size in bytes.
    pub size: u64,
    /// Modification time, whole seconds since the epoch.
    pub mtime: u64,
    /// Strong validator: `"<mtime hex>-<size hex>"`.
    pub etag: String,
    /// `Last-Modified` value.
    pub last_modified: String,
    /// `Content-Type` value.
    pub content_type: &'static str,
    dev: u64,
    ino: u64,
    checked: Cell<Instant>,
}

/// The cache. One per worker; no locks.
#[derive(Debug)]
pub struct FileCache {
    root: File,
    entries: HashMap<Box<[u8]>, Rc<Entry>>,
    valid: Duration,
    max_entries: usize,
}

impl FileCache {
    /// A cache over the directory `root`.
    pub fn new(root: &Path, valid: Duration, max_entries: usize) -> io::Result<FileCache> {
        let root = File::open(root)?;
        if !root.metadata()?.is_dir() {
            return Err(io::Error::new(
                io::ErrorKind::NotADirectory,
                "not a directory",
            ));
        }
        Ok(FileCache {
            root,
            entries: HashMap::new(),
            valid,
            max_entries,
        })
    }

    /// The entry for `rel` (relative, normalized; empty for the root itself).
    /// Paths that resolve outside the root fail with `EXDEV`.
    pub fn get(&mut self, rel: &[u8], now: Instant) -> io::Result<Rc<Entry>> {
        if let Some(e) = self.entries.get(rel)
            && now.saturating_duration_since(e.checked.get()) < self.valid
        {
            return Ok(e.clone());
        }
        let fresh = self.open(rel, now)?;
        if let Some(old) = self.entries.get(rel)
            && old.dev == fresh.dev
            && old.ino == fresh.ino
            && old.size == fresh.size
            && old.mtime == fresh.mtime
        {
            old.checked.set(now);
            return Ok(old.clone());
        }
        if self.entries.len() >= self.max_entries {
            self.entries.clear();
        }
        let fresh = Rc::new(fresh);
        self.entries.insert(rel.into(), fresh.clone());
        Ok(fresh)
    }

    fn open(&self, rel: &[u8], now: Instant) -> io::Result<Entry> {
        let path = if rel.is_empty() {
            Path::new(".")
        } else {
            Path::new(OsStr::from_bytes(rel))
        };
        let file = open_beneath(&self.root, path)?;
        let meta = file.metadata()?;
        let kind = if meta.is_file() {
            set_blocking(&file)?;
            Kind::File
        } else if meta.is_dir() {
            Kind::Dir
        } else {
            Kind::Other
        };
        let modified = meta.modified().unwrap_or(UNIX_EPOCH);
        let mtime = modified
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_secs());
        Ok(Entry {
            file: Rc::new(file),
            kind,
            size: meta.len(),
            mtime,
            etag: format!("\"{:x}-{:x}\"", mtime, meta.len()),
            last_modified: httpdate::fmt_http_date(UNIX_EPOCH + Duration::from_secs(mtime)),
            content_type: super::mime::content_type(rel),
            dev: meta.dev(),
            ino: meta.ino(),
            checked: Cell::new(now),
        })
    }
}

/// Seconds since the epoch of a `SystemTime`, for comparisons with [`Entry::mtime`].
pub fn epoch_secs(t: SystemTime) -> u64 {
    t.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tempdir(name: &str) -> std::path::PathBuf {
        let d = std::env::temp_dir().join(format!("peregrine-fc-{}-{name}", std::process::id()));
        let _ = std::fs::remove_dir_all(&d);
        std::fs::create_dir_all(&d).unwrap();
        d
    }

    #[test]
    fn caches_and_revalidates() {
        let d = tempdir("reval");
        std::fs::write(d.join("a.txt"), "one").unwrap();
        let mut c = FileCache::new(&d, Duration::from_secs(1), 16).unwrap();
        let t0 = Instant::now();
        let e1 = c.get(b"a.txt", t0).unwrap();
        assert_eq!(
            (e1.kind, e1.size, e1.content_type),
            (Kind::File, 3, "text/plain; charset=utf-8")
        );
        std::fs::write(d.join("a.txt"), "three").unwrap();
        // Within the validity window the old entry is served.
        assert_eq!(c.get(b"a.txt", t0).unwrap().size, 3);
        assert_eq!(
            c.get(b"a.txt", t0 + Duration::from_secs(2)).unwrap().size,
            5
        );
        assert_eq!(c.get(b"", t0).unwrap().kind, Kind::Dir);
        assert_eq!(
            c.get(b"missing", t0).unwrap_err().kind(),
            io::ErrorKind::NotFound
        );
        std::fs::remove_dir_all(&d).unwrap();
    }

    #[test]
    fn symlink_out_of_root_is_refused() {
        let d = tempdir("link");
        std::os::unix::fs::symlink("/etc/passwd", d.join("out")).unwrap();
        std::fs::write(d.join("in.txt"), "x").unwrap();
        std::os::unix::fs::symlink("in.txt", d.join("ok")).unwrap();
        let mut c = FileCache::new(&d, Duration::from_secs(1), 16).unwrap();
        let now = Instant::now();
        assert_eq!(
            c.get(b"out", now).unwrap_err().raw_os_error(),
            Some(libc::EXDEV)
        );
        assert_eq!(c.get(b"ok", now).unwrap().size, 1);
        std::fs::remove_dir_all(&d).unwrap();
    }
}
