//! Reading a file range into the spare capacity of an owned buffer.

use std::fs::File;
use std::os::fd::AsRawFd;
use std::rc::Rc;

use io_uring::{opcode, squeue, types};

/// A file read in flight: it owns the buffer the kernel writes and the file.
#[derive(Debug)]
pub struct Read {
    /// INVARIANT: neither moved, resized nor freed until the completion; the
    /// kernel writes at most `len` bytes after its length, within capacity.
    buf: Vec<u8>,
    len: usize,
    _file: Rc<File>,
}

impl Read {
    /// Starts reading `len` bytes of `file` at `offset` after `buf`'s length
    /// (capacity is reserved here).
    pub fn start(
        file: Rc<File>,
        offset: u64,
        len: usize,
        mut buf: Vec<u8>,
        user_data: u64,
    ) -> (Read, squeue::Entry) {
        buf.reserve(len);
        let spare = buf.spare_capacity_mut();
        let e = opcode::Read::new(
            types::Fd(file.as_raw_fd()),
            spare.as_mut_ptr().cast(),
            len as u32,
        )
        .offset(offset)
        .build()
        .user_data(user_data);
        (
            Read {
                buf,
                len,
                _file: file,
            },
            e,
        )
    }

    /// The completion arrived: the buffer back with the bytes read added to
    /// its length, and the result (bytes read, or a negative errno).
    pub fn complete(self, res: i32) -> (Vec<u8>, i32) {
        let mut buf = self.buf;
        if res > 0 {
            let n = (res as usize).min(self.len);
            let len = buf.len();
            debug_assert!(len + n <= buf.capacity());
            // SAFETY: the read was given the spare capacity starting at `len`
            // for at most `self.len` bytes (reserved in `start`, and the
            // buffer was not touched since, per the field's invariant); the
            // kernel reports it wrote `n ≤ self.len` bytes there, so
            // `len + n` bytes are initialized and within capacity.
            unsafe { buf.set_len(len + n) };
        }
        (buf, res)
    }
}
