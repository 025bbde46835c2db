//! Thin, safe wrappers over the system calls the server makes outside the ring.

use std::ffi::CString;
use std::fs::File;
use std::io;
use std::os::fd::{AsRawFd, BorrowedFd, FromRawFd, OwnedFd, RawFd};
use std::os::unix::ffi::OsStrExt;
use std::path::Path;

fn cvt(ret: libc::c_int) -> io::Result<libc::c_int> {
    if ret < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(ret)
    }
}

/// Opens `rel` (a relative path) under the directory `dir` for reading, refusing
/// any resolution that leaves `dir`: `..` above it, absolute symlinks, or
/// symlinks that point outside (Linux `openat2` with `RESOLVE_BENEATH`).
/// Escapes fail with `EXDEV`.
///
/// The file is opened non-blocking so a FIFO cannot stall the caller; use
/// [`set_blocking`] before reading a regular file through the ring.
pub fn open_beneath(dir: &File, rel: &Path) -> io::Result<File> {
    let path = CString::new(rel.as_os_str().as_bytes())
        .map_err(|_| io::Error::from_raw_os_error(libc::EINVAL))?;
    // SAFETY: open_how is plain integer data; all-zero is a valid value.
    let mut how: libc::open_how = unsafe { std::mem::zeroed() };
    how.flags = (libc::O_RDONLY | libc::O_CLOEXEC | libc::O_NOCTTY | libc::O_NONBLOCK) as u64;
    how.resolve = libc::RESOLVE_BENEATH | libc::RESOLVE_NO_MAGICLINKS;
    // SAFETY: `path` is a valid NUL-terminated string and `how` a valid open_how
    // whose size is passed; both outlive the call. The kernel returns a new fd or
    // -1 with errno.
    let fd = unsafe {
        libc::syscall(
            libc::SYS_openat2,
            dir.as_raw_fd(),
            path.as_ptr(),
            &how as *const libc::open_how,
            std::mem::size_of::<libc::open_how>(),
        )
    };
    if fd < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: the kernel just returned this fd to us; nothing else owns it.
    Ok(File::from(unsafe { OwnedFd::from_raw_fd(fd as RawFd) }))
}

/// Clears `O_NONBLOCK` on a file, so ring reads of a regular file wait for the
/// disk in the kernel's workers instead of failing with `EAGAIN`.
pub fn set_blocking(file: &File) -> io::Result<()> {
    let fd = file.as_raw_fd();
    // SAFETY: fcntl on an fd we own, with integer arguments only.
    let flags = cvt(unsafe { libc::fcntl(fd, libc::F_GETFL) })?;
    // SAFETY: as above.
    cvt(unsafe { libc::fcntl(fd, libc::F_SETFL, flags & !libc::O_NONBLOCK) })?;
    Ok(())
}

/// Half-closes the sending side of a socket (`shutdown(SHUT_WR)`).
pub fn shutdown_write(fd: BorrowedFd<'_>) {
    // SAFETY: shutdown takes a descriptor and a constant and touches no
    // memory; the borrow guarantees the descriptor is open for the call, so
    // it cannot name another file. Its error (a peer already gone) does not
    // matter to a connection that is ending.
    unsafe { libc::shutdown(fd.as_raw_fd(), libc::SHUT_WR) };
}

/// An eventfd used to wake a worker's ring from another thread.
#[derive(Debug)]
pub struct EventFd(OwnedFd);

impl EventFd {
    /// A new non-blocking, close-on-exec eventfd.
    pub fn new() -> io::Result<EventFd> {
        // SAFETY: eventfd takes two integers and returns a new fd or -1.
        let fd = cvt(unsafe { libc::eventfd(0, libc::EFD_CLOEXEC | libc::EFD_NONBLOCK) })?;
        // SAFETY: the fd was just created and is owned by nobody else.
        Ok(EventFd(unsafe { OwnedFd::from_raw_fd(fd) }))
    }

    /// Adds one to the counter, waking a pending read.
    pub fn wake(&self) {
        let one: u64 = 1;
        // SAFETY: writes 8 bytes from a live u64 to an eventfd we own.
        unsafe { libc::write(self.0.as_raw_fd(), (&one as *const u64).cast(), 8) };
    }

    /// The raw fd, for a ring read.
    pub fn raw(&self) -> RawFd {
        self.0.as_raw_fd()
    }
}

/// Signals the server reacts to.
pub const SIGNALS: [libc::c_int; 5] = [
    libc::SIGINT,
    libc::SIGTERM,
    libc::SIGHUP,
    libc::SIGUSR1,
    libc::SIGQUIT,
];

fn signal_set() -> libc::sigset_t {
    // SAFETY: sigset_t is plain data; sigemptyset initializes it fully.
    let mut set: libc::sigset_t = unsafe { std::mem::zeroed() };
    // SAFETY: `set` is a valid, writable sigset_t.
    unsafe { libc::sigemptyset(&mut set) };
    for s in SIGNALS {
        // SAFETY: `set` is an initialized sigset_t and `s` a valid signal.
        unsafe { libc::sigaddset(&mut set, s) };
    }
    set
}

/// Blocks the server's signals in the calling thread (and threads it spawns
/// later), so that [`wait_signal`] can take them synchronously. Also ignores
/// SIGPIPE: a peer that goes away must be an error code, not a death.
pub fn block_signals() {
    let set = signal_set();
    // SAFETY: `set` is initialized; a null old-set pointer is allowed.
    unsafe { libc::pthread_sigmask(libc::SIG_BLOCK, &set, std::ptr::null_mut()) };
    // SAFETY: SIG_IGN for SIGPIPE installs no handler code.
    unsafe { libc::signal(libc::SIGPIPE, libc::SIG_IGN) };
}

/// Waits for one of the blocked server signals and returns its number.
pub fn wait_signal() -> libc::c_int {
    let set = signal_set();
    let mut sig: libc::c_int = 0;
    loop {
        // SAFETY: `set` is initialized and `sig` is a valid out-pointer.
        let r = unsafe { libc::sigwait(&set, &mut sig) };
        if r == 0 {
            return sig;
        }
    }
}

/// Raises the soft open-file limit to the hard limit; returns the new soft limit.
pub fn raise_nofile_limit() -> u64 {
    // SAFETY: rlimit is plain data filled by getrlimit.
    let mut lim: libc::rlimit = unsafe { std::mem::zeroed() };
    // SAFETY: valid resource id and out-pointer.
    if unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim) } != 0 {
        return 1024;
    }
    if lim.rlim_cur < lim.rlim_max {
        let want = libc::rlimit {
            rlim_cur: lim.rlim_max,
            rlim_max: lim.rlim_max,
        };
        // SAFETY: valid resource id and a pointer to an initialized rlimit.
        if unsafe { libc::setrlimit(libc::RLIMIT_NOFILE, &want) } == 0 {
            return want.rlim_cur;
        }
    }
    lim.rlim_cur
}

/// The kernel release string, e.g. `6.8.0-45-generic`.
pub fn kernel_release() -> String {
    std::fs::read_to_string("/proc/sys/kernel/osrelease")
        .map_or_else(|_| "unknown".into(), |s| s.trim().to_string())
}

/// The peer address of a connected socket.
pub fn peer_addr(fd: BorrowedFd<'_>) -> Option<std::net::SocketAddr> {
    socket2::SockRef::from(&fd).peer_addr().ok()?.as_socket()
}

/// A pipe used to splice file pages to a socket without copying them.
#[derive(Debug)]
pub struct Pipe {
    /// Read end.
    pub rd: OwnedFd,
    /// Write end.
    pub wr: OwnedFd,
    /// Capacity in bytes.
    pub cap: usize,
}

impl Pipe {
    /// A new pipe, grown towards `want` bytes of capacity where the system
    /// allows (`/proc/sys/fs/pipe-max-size`).
    pub fn new(want: usize) -> io::Result<Pipe> {
        let mut fds = [0 as libc::c_int; 2];
        // SAFETY: `fds` is a valid array of two ints for pipe2 to fill.
        cvt(unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC) })?;
        // SAFETY: pipe2 just returned this fd to us; nothing else owns it.
        let rd = unsafe { OwnedFd::from_raw_fd(fds[0]) };
        // SAFETY: as above, the write end.
        let wr = unsafe { OwnedFd::from_raw_fd(fds[1]) };
        // SAFETY: fcntl on an fd we own, with an integer argument.
        unsafe { libc::fcntl(wr.as_raw_fd(), libc::F_SETPIPE_SZ, want as libc::c_int) };
        // SAFETY: as above.
        let cap = cvt(unsafe { libc::fcntl(wr.as_raw_fd(), libc::F_GETPIPE_SZ) })? as usize;
        Ok(Pipe { rd, wr, cap })
    }
}

/// The CPU set the calling thread may run on.
pub fn current_affinity() -> Option<libc::cpu_set_t> {
    // SAFETY: cpu_set_t is plain data; sched_getaffinity fills it.
    let mut set: libc::cpu_set_t = unsafe { std::mem::zeroed() };
    // SAFETY: pid 0 is the calling thread; the size matches the set passed.
    let r = unsafe { libc::sched_getaffinity(0, std::mem::size_of::<libc::cpu_set_t>(), &mut set) };
    (r == 0).then_some(set)
}

impl Pipe {
    /// Whether the pipe holds no bytes (so it can be reused).
    pub fn is_empty(&self) -> bool {
        let mut n: libc::c_int = 0;
        // SAFETY: FIONREAD writes one int through a valid pointer; the fd is ours.
        let r = unsafe { libc::ioctl(self.rd.as_raw_fd(), libc::FIONREAD, &mut n) };
        r == 0 && n == 0
    }
}

/// What `fstatat` reports about a path: enough to tell whether it still names
/// the file behind a descriptor opened earlier.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PathStat {
    /// Device of the file system.
    pub dev: u64,
    /// Inode number.
    pub ino: u64,
    /// Size in bytes.
    pub size: u64,
    /// Modification time, whole seconds since the epoch (0 before it).
    pub mtime: u64,
    /// Whether the path itself is a symbolic link (only seen without
    /// following).
    pub symlink: bool,
}

/// `fstatat` of `rel` (a relative path; empty for `dir` itself) under the
/// directory `dir`. With `follow` false a symlink in the last component is
/// described rather than followed (`AT_SYMLINK_NOFOLLOW`); symlinks in earlier
/// components are always followed, so a caller that must stay beneath `dir`
/// checks each component. Creates no descriptor, so it works when the
/// process is out of them.
pub fn stat_at(dir: &File, rel: &Path, follow: bool) -> io::Result<PathStat> {
    let rel = if rel.as_os_str().is_empty() {
        Path::new(".")
    } else {
        rel
    };
    let path = CString::new(rel.as_os_str().as_bytes())
        .map_err(|_| io::Error::from_raw_os_error(libc::EINVAL))?;
    let flags = if follow { 0 } else { libc::AT_SYMLINK_NOFOLLOW };
    // SAFETY: stat is plain integer data; all-zero is a valid value.
    let mut st: libc::stat = unsafe { std::mem::zeroed() };
    // SAFETY: `dir` is borrowed for the call, so its fd stays open; `path` is a
    // valid NUL-terminated string and `st` a valid, writable stat of the type
    // fstatat expects, both outliving the call. The kernel only writes `st`.
    cvt(unsafe { libc::fstatat(dir.as_raw_fd(), path.as_ptr(), &mut st, flags) })?;
    Ok(PathStat {
        dev: st.st_dev,
        ino: st.st_ino,
        size: st.st_size.max(0) as u64,
        mtime: st.st_mtime.max(0) as u64,
        symlink: st.st_mode & libc::S_IFMT == libc::S_IFLNK,
    })
}

/// Sends `sig` to the process group `pgid`: a pool instance, started as the
/// leader of its own group, and whatever it started.
pub fn signal_group(pgid: u32, sig: libc::c_int) -> io::Result<()> {
    let Ok(pgid) = libc::pid_t::try_from(pgid) else {
        return Err(io::Error::from_raw_os_error(libc::ESRCH));
    };
    if pgid <= 1 {
        return Err(io::Error::from_raw_os_error(libc::ESRCH));
    }
    // SAFETY: kill has no memory effects; a negative pid names the group,
    // and pgid > 1 never names every process (-1) or our own group (0).
    match unsafe { libc::kill(-pgid, sig) } {
        0 => Ok(()),
        _ => Err(io::Error::last_os_error()),
    }
}

/// Has a child started by `cmd` get SIGTERM when the thread that started it
/// ends (the server dies without stopping its pools), and start with no
/// signals blocked (the server blocks its own to wait for them).
pub fn die_with_parent(cmd: &mut std::process::Command) {
    use std::os::unix::process::CommandExt;
    let hook = || {
        // SAFETY: prctl with PR_SET_PDEATHSIG takes a signal number and
        // touches no memory of ours.
        if unsafe { libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGTERM as libc::c_ulong) } != 0 {
            return Err(io::Error::last_os_error());
        }
        // SAFETY: sigset_t is plain data; sigemptyset initializes it fully.
        let mut set: libc::sigset_t = unsafe { std::mem::zeroed() };
        // SAFETY: `set` is a valid, writable sigset_t.
        unsafe { libc::sigemptyset(&mut set) };
        // SAFETY: `set` is initialized; a null old-set pointer is allowed.
        unsafe { libc::pthread_sigmask(libc::SIG_SETMASK, &set, std::ptr::null_mut()) };
        Ok(())
    };
    // SAFETY: the hook runs in the child between fork and exec; it calls
    // only async-signal-safe functions (prctl, sigemptyset,
    // pthread_sigmask) on a local set, allocates nothing and takes no lock.
    unsafe { cmd.pre_exec(hook) };
}
