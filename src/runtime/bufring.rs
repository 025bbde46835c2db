//! A provided-buffer ring: receive buffers the kernel picks from as data
//! arrives, so an idle connection holds no buffer of its own.

use std::io;
use std::sync::atomic::{AtomicU16, Ordering};

use io_uring::types::BufRingEntry;

use super::ring::Ring;

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

    /// The first `len` bytes of buffer `bid`, which the kernel has filled and
    /// handed to us in a completion.
    pub fn get(&self, bid: u16, len: usize) -> &[u8] {
        assert!(bid < self.count && len <= self.size as usize);
        // SAFETY: `bid` is in range so the slice lies inside `mem`; the buffer is
        // ours (the kernel handed it over in a completion and will not touch it
        // until `recycle` returns it).
        unsafe {
            std::slice::from_raw_parts(self.mem.add(usize::from(bid) * self.size as usize), len)
        }
    }

    /// Gives buffer `bid` back to the kernel.
    pub fn recycle(&mut self, bid: u16) {
        self.put(bid);
        self.publish();
    }

    fn put(&mut self, bid: u16) {
        let idx = usize::from(self.tail & (self.count - 1));
        // SAFETY: `idx < count`, inside the entries mapping; the kernel reads only
        // entries before the published tail, and this one is past it.
        let e = unsafe { &mut *self.entries.add(idx) };
        // SAFETY: `bid < count`, so the address is inside `mem`.
        e.set_addr(unsafe { self.mem.add(usize::from(bid) * self.size as usize) } as u64);
        e.set_len(self.size);
        e.set_bid(bid);
        self.tail = self.tail.wrapping_add(1);
    }

    fn publish(&self) {
        // SAFETY: the tail field lives inside the first entry of the mapping, as
        // the kernel ABI lays it out; it is only accessed atomically.
        let tail = unsafe { &*(BufRingEntry::tail(self.entries) as *const AtomicU16) };
        tail.store(self.tail, Ordering::Release);
    }
}

impl Drop for BufRing {
    fn drop(&mut self) {
        // SAFETY: both mappings were made in `new` with these lengths and are not
        // used after this.
        unsafe {
            libc::munmap(self.entries.cast(), self.entries_len);
            libc::munmap(self.mem.cast(), self.mem_len);
        }
    }
}
