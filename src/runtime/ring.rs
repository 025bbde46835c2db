//! io_uring setup with flag fallbacks, a local backlog for a full submission
//! queue, and completion draining.

use std::collections::VecDeque;
use std::io;
use std::time::Duration;

use io_uring::{IoUring, squeue, types};

/// A completion copied out of the ring.
#[derive(Clone, Copy, Debug)]
pub struct Cqe {
    /// The operation's `user_data`.
    pub user_data: u64,
    /// Result: bytes, a new fd, or a negated errno.
    pub res: i32,
    /// `IORING_CQE_F_*` flags.
    pub flags: u32,
}

/// Which setup flags the kernel accepted.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Setup {
    /// `SINGLE_ISSUER | DEFER_TASKRUN` (Linux 6.1+).
    DeferTaskrun,
    /// `COOP_TASKRUN` only (Linux 5.19+).
    CoopTaskrun,
    /// No optional flags.
    Plain,
}

impl Setup {
    /// A short description for the startup log.
    pub fn describe(self) -> &'static str {
        match self {
            Setup::DeferTaskrun => "SINGLE_ISSUER|DEFER_TASKRUN",
            Setup::CoopTaskrun => "COOP_TASKRUN (kernel refused SINGLE_ISSUER|DEFER_TASKRUN)",
            Setup::Plain => "no setup flags (kernel refused COOP_TASKRUN)",
        }
    }
}

/// One worker's ring.
pub struct Ring {
    ring: IoUring,
    backlog: VecDeque<squeue::Entry>,
    setup: Setup,
}

impl Ring {
    /// Creates a ring of `entries` submission slots, with the best setup flags
    /// the kernel accepts unless `defer_taskrun` is false. Must be called on the
    /// thread that will submit (`SINGLE_ISSUER`).
    pub fn new(entries: u32, defer_taskrun: bool) -> io::Result<Ring> {
        let cq = entries.saturating_mul(4);
        let attempts: &[Setup] = if defer_taskrun {
            &[Setup::DeferTaskrun, Setup::CoopTaskrun, Setup::Plain]
        } else {
            &[Setup::CoopTaskrun, Setup::Plain]
        };
        let mut last = None;
        for &setup in attempts {
            let mut b = IoUring::builder();
            b.setup_cqsize(cq).setup_clamp().setup_submit_all();
            match setup {
                Setup::DeferTaskrun => {
                    b.setup_single_issuer().setup_defer_taskrun();
                }
                Setup::CoopTaskrun => {
                    b.setup_coop_taskrun().setup_taskrun_flag();
                }
                Setup::Plain => {}
            }
            match b.build(entries) {
                Ok(ring) => {
                    return Ok(Ring {
                        ring,
                        backlog: VecDeque::new(),
                        setup,
                    });
                }
                Err(e) if e.raw_os_error() == Some(libc::EINVAL) => last = Some(e),
                Err(e) => return Err(e),
            }
        }
        Err(last.unwrap_or_else(|| io::Error::from_raw_os_error(libc::EINVAL)))
    }

    /// The setup flags in use.
    pub fn setup(&self) -> Setup {
        self.setup
    }

    /// The underlying ring, for registration calls.
    pub fn inner(&self) -> &IoUring {
        &self.ring
    }

    /// Queues an entry. When the submission queue is full it is flushed to the
    /// kernel first; if it is still full the entry waits in a local backlog.
    ///
    /// # Safety
    /// Every buffer and fd the entry points at must stay valid until its
    /// completion (or the ring's destruction).
    pub unsafe fn push(&mut self, entry: squeue::Entry) {
        if !self.backlog.is_empty() {
            self.backlog.push_back(entry);
            return;
        }
        // SAFETY: the caller upholds the entry's validity contract.
        if unsafe { self.ring.submission().push(&entry) }.is_ok() {
            return;
        }
        let _ = self.ring.submit();
        // SAFETY: as above.
        if let Err(_full) = unsafe { self.ring.submission().push(&entry) } {
            self.backlog.push_back(entry);
        }
    }

    /// Moves backlogged entries into the submission queue while there is room.
    fn drain_backlog(&mut self) {
        while let Some(e) = self.backlog.front() {
            // SAFETY: entries in the backlog were pushed under `push`'s contract,
            // which still holds until their completion.
            if unsafe { self.ring.submission().push(e) }.is_err() {
                let _ = self.ring.submit();
                // SAFETY: as above.
                if unsafe { self.ring.submission().push(e) }.is_err() {
                    return;
                }
            }
            self.backlog.pop_front();
        }
    }

    /// Submits everything queued and waits for at least one completion, or
    /// until `timeout` passes when one is given.
    pub fn submit_and_wait(&mut self, timeout: Option<Duration>) -> io::Result<()> {
        self.drain_backlog();
        let r = match timeout {
            None => self.ring.submit_and_wait(1),
            Some(t) => {
                let ts = types::Timespec::from(t);
                let args = types::SubmitArgs::new().timespec(&ts);
                self.ring.submitter().submit_with_args(1, &args)
            }
        };
        match r {
            Ok(_) => Ok(()),
            Err(e) => match e.raw_os_error() {
                Some(libc::EINTR) | Some(libc::ETIME) | Some(libc::EBUSY) | Some(libc::EAGAIN) => {
                    Ok(())
                }
                _ => Err(e),
            },
        }
    }

    /// Copies every available completion into `out`.
    pub fn reap(&mut self, out: &mut Vec<Cqe>) {
        let mut cq = self.ring.completion();
        cq.sync();
        for c in &mut cq {
            out.push(Cqe {
                user_data: c.user_data(),
                res: c.result(),
                flags: c.flags(),
            });
        }
    }
}

/// Checks that io_uring can be used at all; the error explains why not.
pub fn check_available() -> Result<(), String> {
    match IoUring::new(8) {
        Ok(_) => Ok(()),
        Err(e) => {
            let disabled = std::fs::read_to_string("/proc/sys/kernel/io_uring_disabled")
                .map(|s| format!(" (kernel.io_uring_disabled = {})", s.trim()))
                .unwrap_or_default();
            Err(format!(
                "io_uring is unavailable on this host{disabled}: {e}; peregrine needs Linux 5.19+ with io_uring enabled (kernel {})",
                super::sys::kernel_release()
            ))
        }
    }
}
