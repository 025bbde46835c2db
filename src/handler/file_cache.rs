//! A per-worker open-file cache: open descriptors and their metadata, checked
//! against the file system again once they are older than `valid` (like nginx's
//! `open_file_cache` with `open_file_cache_valid`).
//!
//! The check opens nothing: each component of the path is `fstatat`-ed under
//! the root without following symlinks, and when none is a symlink (so the
//! path resolves beneath the root just as the `RESOLVE_BENEATH` open did) and
//! it names the inode behind the cached descriptor, that descriptor is kept.
//! Only a replaced file, or a path through a symlink, is opened again; if that
//! open fails for want of descriptors (`EMFILE`, `ENFILE`), the cached one is
//! still served while the path (symlinks followed) names the same unchanged
//! file.

use std::cell::Cell;
use std::collections::HashMap;
use std::ffi::OsStr;
use std::fs::{File, Metadata};
use std::io;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::MetadataExt;
use std::path::Path;
use std::rc::Rc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use crate::runtime::sys::{PathStat, open_beneath, set_blocking, stat_at};

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
        let old = match self.entries.get(rel) {
            Some(e) if now.saturating_duration_since(e.checked.get()) < self.valid => {
                return Ok(e.clone());
            }
            Some(e) => e.clone(),
            None => {
                let fresh = self.open(rel, now)?;
                return Ok(self.insert(rel, fresh));
            }
        };
        match self.stat_beneath(rel) {
            Err(e) => {
                self.entries.remove(rel);
                return Err(e);
            }
            Ok(Some(st)) if st.dev == old.dev && st.ino == old.ino => {
                if st.size == old.size && st.mtime == old.mtime {
                    old.checked.set(now);
                    return Ok(old);
                }
                // Changed in place: the descriptor held still reads the file.
                let meta = old.file.metadata()?;
                let fresh = entry(old.file.clone(), &meta, rel, now);
                return Ok(self.insert(rel, fresh));
            }
            // Replaced, or reached through a symlink: only an open can tell.
            Ok(_) => {}
        }
        match self.open(rel, now) {
            Ok(fresh) if same_file(&old, fresh.dev, fresh.ino, fresh.size, fresh.mtime) => {
                old.checked.set(now);
                Ok(old)
            }
            Ok(fresh) => Ok(self.insert(rel, fresh)),
            Err(e) if out_of_descriptors(&e) && self.still_names(rel, &old) => Ok(old),
            Err(e) => Err(e),
        }
    }

    fn insert(&mut self, rel: &[u8], entry: Entry) -> Rc<Entry> {
        if self.entries.len() >= self.max_entries && !self.entries.contains_key(rel) {
            self.entries.clear();
        }
        let entry = Rc::new(entry);
        self.entries.insert(rel.into(), entry.clone());
        entry
    }

    /// Stats every component of `rel` under the root without following
    /// symlinks. `Some` (the last component) when none is a symlink, so the
    /// path resolves beneath the root exactly as [`open_beneath`] would
    /// resolve it; `None` when one is. An error is the one the open would
    /// fail with (`ENOENT`, `ENOTDIR`, `EACCES`), as no symlink precedes it.
    fn stat_beneath(&self, rel: &[u8]) -> io::Result<Option<PathStat>> {
        let ends = rel
            .iter()
            .enumerate()
            .filter(|(_, b)| **b == b'/')
            .map(|(i, _)| i)
            .chain([rel.len()]);
        let mut last = None;
        for end in ends {
            let st = stat_at(&self.root, Path::new(OsStr::from_bytes(&rel[..end])), false)?;
            if st.symlink {
                return Ok(None);
            }
            last = Some(st);
        }
        Ok(last)
    }

    /// Whether `rel`, symlinks followed, still names `old`'s file unchanged.
    /// Used only to keep a descriptor already held when no new one can be
    /// had; it never leads to opening anything.
    fn still_names(&self, rel: &[u8], old: &Entry) -> bool {
        stat_at(&self.root, Path::new(OsStr::from_bytes(rel)), true)
            .is_ok_and(|st| same_file(old, st.dev, st.ino, st.size, st.mtime))
    }

    fn open(&self, rel: &[u8], now: Instant) -> io::Result<Entry> {
        let path = if rel.is_empty() {
            Path::new(".")
        } else {
            Path::new(OsStr::from_bytes(rel))
        };
        let file = open_beneath(&self.root, path)?;
        let meta = file.metadata()?;
        if meta.is_file() {
            set_blocking(&file)?;
        }
        Ok(entry(Rc::new(file), &meta, rel, now))
    }
}

fn same_file(e: &Entry, dev: u64, ino: u64, size: u64, mtime: u64) -> bool {
    (e.dev, e.ino, e.size, e.mtime) == (dev, ino, size, mtime)
}

fn out_of_descriptors(e: &io::Error) -> bool {
    matches!(e.raw_os_error(), Some(libc::EMFILE | libc::ENFILE))
}

/// An entry for the open `file` of `rel`, described by `meta` (its `fstat`).
fn entry(file: Rc<File>, meta: &Metadata, rel: &[u8], now: Instant) -> Entry {
    let kind = if meta.is_file() {
        Kind::File
    } else if meta.is_dir() {
        Kind::Dir
    } else {
        Kind::Other
    };
    let mtime = epoch_secs(meta.modified().unwrap_or(UNIX_EPOCH));
    Entry {
        file,
        kind,
        size: meta.len(),
        mtime,
        etag: format!("\"{:x}-{:x}\"", mtime, meta.len()),
        last_modified: httpdate::fmt_http_date(UNIX_EPOCH + Duration::from_secs(mtime)),
        content_type: super::mime::content_type(rel),
        dev: meta.dev(),
        ino: meta.ino(),
        checked: Cell::new(now),
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

    #[test]
    fn revalidation_follows_replacements_and_removals() {
        let d = tempdir("replace");
        std::fs::create_dir(d.join("sub")).unwrap();
        std::fs::write(d.join("sub/a.txt"), "one").unwrap();
        let mut c = FileCache::new(&d, Duration::from_secs(1), 16).unwrap();
        let t0 = Instant::now();
        let later = |n: u64| t0 + Duration::from_secs(n);
        let e1 = c.get(b"sub/a.txt", t0).unwrap();
        // Unchanged: the same entry (and descriptor) is kept.
        assert!(Rc::ptr_eq(&e1, &c.get(b"sub/a.txt", later(2)).unwrap()));
        // Changed in place: same descriptor, new metadata.
        std::fs::write(d.join("sub/a.txt"), "four").unwrap();
        let e2 = c.get(b"sub/a.txt", later(4)).unwrap();
        assert_eq!(e2.size, 4);
        assert!(Rc::ptr_eq(&e1.file, &e2.file));
        // Replaced by another file: opened again.
        std::fs::write(d.join("new.txt"), "fifty").unwrap();
        std::fs::rename(d.join("new.txt"), d.join("sub/a.txt")).unwrap();
        let e3 = c.get(b"sub/a.txt", later(6)).unwrap();
        assert_eq!(e3.size, 5);
        assert!(!Rc::ptr_eq(&e2.file, &e3.file));
        // Removed: not found, and the entry is dropped.
        std::fs::remove_file(d.join("sub/a.txt")).unwrap();
        assert_eq!(
            c.get(b"sub/a.txt", later(8)).unwrap_err().kind(),
            io::ErrorKind::NotFound
        );
        assert!(!c.entries.contains_key(b"sub/a.txt".as_slice()));
        std::fs::remove_dir_all(&d).unwrap();
    }

    #[test]
    fn symlinks_are_checked_again_beneath_the_root() {
        let d = tempdir("relink");
        let outside = tempdir("relink-out");
        std::fs::create_dir(d.join("real")).unwrap();
        std::fs::write(d.join("real/f.txt"), "in").unwrap();
        std::os::unix::fs::symlink("real", d.join("dir")).unwrap();
        std::os::unix::fs::symlink("real/f.txt", d.join("file")).unwrap();
        let mut c = FileCache::new(&d, Duration::from_secs(1), 16).unwrap();
        let t0 = Instant::now();
        assert_eq!(c.get(b"dir/f.txt", t0).unwrap().size, 2);
        assert_eq!(c.get(b"file", t0).unwrap().size, 2);
        // Still inside: kept.
        let t1 = t0 + Duration::from_secs(2);
        assert_eq!(c.get(b"dir/f.txt", t1).unwrap().size, 2);
        assert_eq!(c.get(b"file", t1).unwrap().size, 2);
        // The directory moves out of the root, leaving a symlink to it: the
        // same inode, now outside, is no longer served.
        std::fs::rename(d.join("real"), outside.join("real")).unwrap();
        std::fs::remove_file(d.join("dir")).unwrap();
        std::os::unix::fs::symlink(outside.join("real"), d.join("dir")).unwrap();
        let t2 = t0 + Duration::from_secs(4);
        assert_eq!(
            c.get(b"dir/f.txt", t2).unwrap_err().raw_os_error(),
            Some(libc::EXDEV)
        );
        std::fs::remove_file(d.join("file")).unwrap();
        std::os::unix::fs::symlink(outside.join("real/f.txt"), d.join("file")).unwrap();
        assert_eq!(
            c.get(b"file", t2).unwrap_err().raw_os_error(),
            Some(libc::EXDEV)
        );
        std::fs::remove_dir_all(&d).unwrap();
        std::fs::remove_dir_all(&outside).unwrap();
    }
}
