//! A provided-buffer ring: receive buffers the kernel picks from as data
//! arrives, so an idle connection holds no buffer of its own.

use std::io;
use std::sync::atomic::{AtomicU16, Ordering};

use io_uring::types::BufRingEntry;

use super::ring::Ring;

/// A provided buffer the kernel filled and handed over in a completion. Only
/// a receive completion makes one (`op::recv`), and giving it back
/// ([`BufRing::recycle`]) consumes it, so a buffer can be read only while it
/// is ours and never after the kernel may write it again.
#[derive(Debug)]
#[must_use = "a handed-over buffer must be recycled"]
pub struct Handout {
    bid: u16,
    len: usize,
}

impl Handout {
    /// A buffer named by a completion: `bid` with `len` bytes in it.
    pub(in crate::runtime) fn from_completion(bid: u16, len: usize) -> Handout {
        Handout { bid, len }
    }

    /// Bytes in it.
    pub fn len(&self) -> usize {
        self.len
    }

    /// Whether it holds no bytes.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }
}

/// Buffers registered with one ring under one group id.
pub struct BufRing {
    /// The ring of `io_uring_buf` entries (page-aligned mapping).
    entries: *mut BufRingEntry,
    entries_len: usize,
    /// The buffers themselves, `count * size` bytes.
    mem: *mut u8,
    mem_len: usize,
    count: u16,
    size: u32,
    tail: u16,
    bgid: u16,
}

fn map(len: usize) -> io::Result<*mut libc::c_void> {
    // SAFETY: an anonymous private mapping with no address hint; checked below.
    let p = unsafe {
        libc::mmap(
            std::ptr::null_mut(),
            len,
            libc::PROT_READ | libc::PROT_WRITE,
            libc::MAP_PRIVATE | libc::MAP_ANONYMOUS,
            -1,
            0,
        )
    };
    if p == libc::MAP_FAILED {
        Err(io::Error::last_os_error())
    } else {
        Ok(p)
    }
}

impl BufRing {
    /// Allocates `count` buffers of `size` bytes and registers them as group
    /// `bgid`. `count` must be a power of two no larger than 32768.
    pub fn new(ring: &Ring, bgid: u16, count: u16, size: u32) -> io::Result<BufRing> {
        assert!(
            count.is_power_of_two() && count <= 32768,
            "buffer count must be a power of two ≤ 32768"
        );
        let entries_len =
            (usize::from(count) * std::mem::size_of::<BufRingEntry>()).next_multiple_of(4096);
        let mem_len = usize::from(count) * size as usize;
        let entries = map(entries_len)?.cast::<BufRingEntry>();
        let mem = match map(mem_len) {
            Ok(m) => m.cast::<u8>(),
            Err(e) => {
                // SAFETY: unmapping the mapping made just above.
                unsafe { libc::munmap(entries.cast(), entries_len) };
                return Err(e);
            }
        };
        let mut br = BufRing {
            entries,
            entries_len,
            mem,
            mem_len,
            count,
            size,
            tail: 0,
            bgid,
        };
        // SAFETY: `entries` is a page-aligned mapping of `count` entries that lives
        // as long as `br`; the worker drops its ring (which unregisters it) before
        // the buffer ring.
        unsafe {
            ring.inner().submitter().register_buf_ring_with_flags(
                entries as u64,
                count,
                bgid,
                0,
            )?;
        }
        for bid in 0..count {
            br.put(bid);
        }
        br.publish();
        Ok(br)
    }

    /// The group id to name in receive operations.
    pub fn bgid(&self) -> u16 {
        self.bgid
    }

    /// Size of each buffer.
    pub fn buf_size(&self) -> u32 {
        self.size
    }

    /// The bytes of a buffer the kernel handed over.
    pub fn get(&self, h: &Handout) -> &[u8] {
        assert!(h.bid < self.count && h.len <= self.size as usize);
        let start = usize::from(h.bid) * self.size as usize;
        // SAFETY: `bid < count` and `len <= size`, so the range lies inside
        // `mem` (a live mapping of `count * size` bytes until drop). The
        // kernel does not write this buffer: it handed it over in a
        // completion (a `Handout` exists only for that), and it gets it back
        // only through `recycle`, which consumes the `Handout` — the slice
        // borrows it, so it cannot outlive the buffer being ours.
        let p = unsafe { self.mem.add(start) };
        // SAFETY: as above: `len` initialized bytes at `p`, not written while
        // the slice lives.
        unsafe { std::slice::from_raw_parts(p, h.len) }
    }

    /// Gives a handed-over buffer back to the kernel.
    pub fn recycle(&mut self, h: Handout) {
        self.put(h.bid);
        self.publish();
    }

    fn put(&mut self, bid: u16) {
        let idx = usize::from(self.tail & (self.count - 1));
        // SAFETY: `idx < count`, so the address is inside the entries mapping.
        let p = unsafe { self.entries.add(idx) };
        // SAFETY: `p` points at an initialized entry inside the mapping; the
        // kernel reads only entries before the published tail, and this one
        // is past it, so nothing else accesses it while the borrow lives.
        let e = unsafe { &mut *p };
        // SAFETY: `bid < count`, so the address is inside `mem`.
        e.set_addr(unsafe { self.mem.add(usize::from(bid) * self.size as usize) } as u64);
        e.set_len(self.size);
        e.set_bid(bid);
        self.tail = self.tail.wrapping_add(1);
    }

    fn publish(&self) {
        // SAFETY: `entries` is the start of the live, page-aligned mapping, as
        // `tail` requires.
        let p = unsafe { BufRingEntry::tail(self.entries) } as *const AtomicU16;
        // SAFETY: the tail field lives inside the first entry of the mapping,
        // 2-byte aligned as the kernel ABI lays it out, and is only accessed
        // atomically (here and by the kernel).
        let tail = unsafe { &*p };
        tail.store(self.tail, Ordering::Release);
    }
}

impl Drop for BufRing {
    fn drop(&mut self) {
        // SAFETY: the mapping was made in `new` with this length and is not
        // used after this (the ring that reads it is dropped first).
        unsafe { libc::munmap(self.entries.cast(), self.entries_len) };
        // SAFETY: as above, for the buffers.
        unsafe { libc::munmap(self.mem.cast(), self.mem_len) };
    }
}
