//! Reading the certificate and key files the configuration names, bounded in
//! size and refusing anything that is not a regular file (a FIFO would block,
//! `/dev/zero` would never end).

use std::fmt;
use std::fs::{File, OpenOptions};
use std::io::Read;
use std::os::unix::fs::{FileTypeExt, OpenOptionsExt};
use std::path::Path;

/// The largest certificate, key or CA bundle file accepted.
pub(super) const MAX_FILE_SIZE: u64 = 1 << 20;

/// A file named by a configuration key, for error messages:
/// `tls.cert: /etc/peregrine/cert.pem`.
#[derive(Clone, Copy)]
pub struct Source<'a> {
    /// The configuration key that names the file (`tls.cert`).
    pub key: &'a str,
    /// The file's path as configured.
    pub path: &'a Path,
}

impl fmt::Display for Source<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.key, self.path.display())
    }
}

/// What kind of file `t` is, in words, when it is not a regular file.
fn not_regular(t: std::fs::FileType) -> Option<&'static str> {
    Some(if t.is_file() {
        return None;
    } else if t.is_dir() {
        "a directory"
    } else if t.is_fifo() {
        "a FIFO"
    } else if t.is_char_device() {
        "a character device"
    } else if t.is_block_device() {
        "a block device"
    } else if t.is_socket() {
        "a socket"
    } else {
        "not a regular file"
    })
}

fn too_large(src: Source<'_>, size: u64) -> String {
    format!(
        "{src}: file is too large ({size} bytes; the limit is {} bytes)",
        MAX_FILE_SIZE
    )
}

/// Reads the whole of `src.path`: a regular file (symbolic links followed) of
/// at most [`MAX_FILE_SIZE`] bytes. Opening does not block on a FIFO, and no
/// more than the limit plus one byte is ever read.
pub(super) fn read(src: Source<'_>) -> Result<Vec<u8>, String> {
    let file: File = OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NONBLOCK | libc::O_NOCTTY)
        .open(src.path)
        .map_err(|e| format!("{src}: cannot open: {e}"))?;
    let meta = file
        .metadata()
        .map_err(|e| format!("{src}: cannot stat: {e}"))?;
    if let Some(what) = not_regular(meta.file_type()) {
        return Err(format!("{src}: is {what}, not a regular file"));
    }
    if meta.len() > MAX_FILE_SIZE {
        return Err(too_large(src, meta.len()));
    }
    let mut data = Vec::with_capacity(meta.len() as usize);
    file.take(MAX_FILE_SIZE + 1)
        .read_to_end(&mut data)
        .map_err(|e| format!("{src}: cannot read: {e}"))?;
    if data.len() as u64 > MAX_FILE_SIZE {
        // It grew after the size check.
        return Err(too_large(src, data.len() as u64));
    }
    Ok(data)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn src(p: &Path) -> Source<'_> {
        Source {
            key: "tls.cert",
            path: p,
        }
    }

    #[test]
    fn regular_files_only_and_bounded() {
        let dir = std::env::temp_dir().join(format!("peregrine-files-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let small = dir.join("small.pem");
        std::fs::write(&small, b"hello").unwrap();
        assert_eq!(read(src(&small)).unwrap(), b"hello");

        let exact = dir.join("exact.pem");
        std::fs::write(&exact, vec![b'x'; MAX_FILE_SIZE as usize]).unwrap();
        assert_eq!(read(src(&exact)).unwrap().len() as u64, MAX_FILE_SIZE);

        let big = dir.join("big.pem");
        std::fs::write(&big, vec![b'x'; MAX_FILE_SIZE as usize + 1]).unwrap();
        let e = read(src(&big)).unwrap_err();
        assert!(
            e.starts_with(&format!("tls.cert: {}: file is too large", big.display())),
            "{e}"
        );

        let e = read(src(Path::new("/dev/zero"))).unwrap_err();
        assert_eq!(
            e,
            "tls.cert: /dev/zero: is a character device, not a regular file"
        );
        let e = read(src(&dir)).unwrap_err();
        assert!(e.ends_with("is a directory, not a regular file"), "{e}");
        let e = read(src(&dir.join("missing.pem"))).unwrap_err();
        assert!(e.contains("missing.pem: cannot open: "), "{e}");
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
