//! An append-only log file written through the ring: lines accumulate in a
//! buffer, one write is in flight at a time, and the loop never blocks on disk.

use std::fs::{File, OpenOptions};
use std::io;
use std::os::fd::AsFd;
use std::os::fd::AsRawFd;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

use io_uring::{opcode, squeue, types};

/// Lines buffered beyond this while a write is stalled are dropped (and
/// counted) rather than growing memory without bound.
pub const MAX_BUFFERED: usize = 8 << 20;
/// A write starts once this much is buffered (and on every timer tick).
pub const FLUSH_AT: usize = 32 << 10;

fn open(path: Option<&Path>) -> io::Result<File> {
    match path {
        Some(p) => OpenOptions::new()
            .append(true)
            .create(true)
            .mode(0o644)
            .custom_flags(libc::O_CLOEXEC)
            .open(p),
        None => Ok(File::from(io::stdout().as_fd().try_clone_to_owned()?)),
    }
}

/// One worker's handle on the access log.
#[derive(Debug)]
pub struct LogFile {
    path: Option<PathBuf>,
    file: File,
    /// The previous file after a reopen, kept while a write on it is in flight.
    old: Option<File>,
    /// The buffer being written, and how much of it is done.
    writing: Option<(Vec<u8>, usize)>,
    spare: Vec<u8>,
    error_logged: bool,
    /// Bytes dropped because the log could not keep up or failed.
    pub dropped: u64,
}

impl LogFile {
    /// Opens `path` for appending (created 0644), or standard output.
    pub fn open(path: Option<&Path>) -> io::Result<LogFile> {
        Ok(LogFile {
            path: path.map(Path::to_path_buf),
            file: open(path)?,
            old: None,
            writing: None,
            spare: Vec::new(),
            error_logged: false,
            dropped: 0,
        })
    }

    /// The file's path (`None`: standard output).
    pub fn path(&self) -> Option<&Path> {
        self.path.as_deref()
    }

    /// Opens the path again (after logrotate moved the file). A failure keeps
    /// the current file.
    pub fn reopen(&mut self) -> io::Result<()> {
        let f = open(self.path.as_deref())?;
        let old = std::mem::replace(&mut self.file, f);
        if self.writing.is_some() {
            self.old = Some(old);
        }
        Ok(())
    }

    /// Whether no write is in flight.
    pub fn idle(&self) -> bool {
        self.writing.is_none()
    }

    /// Takes `buf`'s lines into a write when none is in flight; returns the
    /// entry to submit. Drops lines past [`MAX_BUFFERED`].
    pub fn start(&mut self, buf: &mut Vec<u8>, user_data: u64) -> Option<squeue::Entry> {
        if buf.is_empty() {
            return None;
        }
        if self.writing.is_some() {
            if buf.len() > MAX_BUFFERED {
                self.dropped += buf.len() as u64;
                buf.clear();
            }
            return None;
        }
        let data = std::mem::replace(buf, std::mem::take(&mut self.spare));
        self.writing = Some((data, 0));
        self.entry(user_data)
    }

    fn entry(&self, user_data: u64) -> Option<squeue::Entry> {
        let (data, done) = self.writing.as_ref()?;
        let fd = self.old.as_ref().unwrap_or(&self.file).as_raw_fd();
        let rest = &data[*done..];
        Some(
            opcode::Write::new(
                types::Fd(fd),
                rest.as_ptr(),
                rest.len().min(u32::MAX as usize) as u32,
            )
            .offset(u64::MAX)
            .build()
            .user_data(user_data),
        )
    }

    /// A write completed with `res`; returns an entry for the rest after a short
    /// write. Errors are reported once (through `report`) and the lines dropped.
    pub fn complete(
        &mut self,
        res: i32,
        user_data: u64,
        report: impl FnOnce(&str),
    ) -> Option<squeue::Entry> {
        let (data, done) = self.writing.as_mut()?;
        if res > 0 {
            *done += res as usize;
            if *done < data.len() {
                return self.entry(user_data);
            }
        } else {
            self.dropped += (data.len() - *done) as u64;
            if !self.error_logged {
                self.error_logged = true;
                let e = if res == 0 {
                    io::Error::from(io::ErrorKind::WriteZero)
                } else {
                    io::Error::from_raw_os_error(-res)
                };
                let to = self.path.as_ref().map_or_else(
                    || "standard output".to_string(),
                    |p| p.display().to_string(),
                );
                report(&format!(
                    "access log write to {to} failed: {e}; lines are dropped until it works again"
                ));
            }
        }
        if res > 0 {
            self.error_logged = false;
        }
        let (mut data, _) = self.writing.take()?;
        data.clear();
        self.spare = data;
        self.old = None;
        None
    }
}
