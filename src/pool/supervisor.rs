//! The supervisor: one thread (not a worker) that starts, probes, signals
//! and reaps every pool's processes, carrying out what each [`Run`] asks
//! and publishing their state on the [`Board`]. Probes run on short-lived
//! threads of their own, so a slow instance delays nothing else.

use std::collections::HashMap;
use std::fs::OpenOptions;
use std::io::{Read, Write};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::mpsc::{self, Receiver, RecvTimeoutError, Sender};
use std::thread::JoinHandle;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use super::cells::PoolCells;
use super::run::{Action, Run};
use super::spec::{Listen, PoolSpec};
use super::status::Board;
use crate::runtime::{log, sys};

/// How often the runs are moved on while any exists.
const TICK: Duration = Duration::from_millis(50);

enum Msg {
    Install(Vec<(Arc<PoolSpec>, Arc<PoolCells>)>),
    Recycle(String, Sender<Result<(), String>>),
    Probed { run: usize, id: u32, ok: bool },
    Stop,
}

/// The handle of the supervisor thread.
#[derive(Debug)]
pub struct Supervisor {
    tx: Sender<Msg>,
    thread: std::sync::Mutex<Option<JoinHandle<()>>>,
}

impl Supervisor {
    /// Starts the thread with the pools of the first generation; it
    /// publishes their state on `board`.
    pub fn start(
        pools: Vec<(Arc<PoolSpec>, Arc<PoolCells>)>,
        board: Board,
    ) -> std::io::Result<Supervisor> {
        let (tx, rx) = mpsc::channel();
        let me = tx.clone();
        let thread = std::thread::Builder::new()
            .name("peregrine-pools".into())
            .spawn(move || Shell::new(board, me).run(rx))?;
        let _ = tx.send(Msg::Install(pools));
        Ok(Supervisor {
            tx,
            thread: std::sync::Mutex::new(Some(thread)),
        })
    }

    /// A reload's pools: new cells start a new run, runs whose cells are
    /// gone drain and stop.
    pub fn install(&self, pools: Vec<(Arc<PoolSpec>, Arc<PoolCells>)>) {
        let _ = self.tx.send(Msg::Install(pools));
    }

    /// Replaces every instance of pool `name` (and starts a pool that
    /// rapid-fail protection stopped); the answer comes on the receiver
    /// within a tick.
    pub fn recycle(&self, name: &str) -> Receiver<Result<(), String>> {
        let (tx, rx) = mpsc::channel();
        if let Err(mpsc::SendError(Msg::Recycle(_, tx))) =
            self.tx.send(Msg::Recycle(name.to_string(), tx))
        {
            let _ = tx.send(Err("the pools are stopped".into()));
        }
        rx
    }

    /// Starts stopping every instance (see [`Supervisor::stop`]).
    pub fn stop_soon(&self) {
        let _ = self.tx.send(Msg::Stop);
    }

    /// Stops every instance (drained, SIGTERM, SIGKILL after each pool's
    /// `shutdown_timeout`) and waits for the thread.
    pub fn stop(&self) {
        let _ = self.tx.send(Msg::Stop);
        let t = self.thread.lock().unwrap_or_else(|p| p.into_inner()).take();
        if let Some(t) = t {
            let _ = t.join();
        }
    }
}

struct Shell {
    runs: Vec<(usize, Run)>,
    next_run: usize,
    children: HashMap<(usize, u32), Child>,
    board: Board,
    me: Sender<Msg>,
    stopping: bool,
}

impl Shell {
    fn new(board: Board, me: Sender<Msg>) -> Shell {
        Shell {
            runs: Vec::new(),
            next_run: 0,
            children: HashMap::new(),
            board,
            me,
            stopping: false,
        }
    }

    fn run(mut self, rx: Receiver<Msg>) {
        loop {
            let wait = if self.runs.is_empty() {
                Duration::from_secs(1)
            } else {
                TICK
            };
            match rx.recv_timeout(wait) {
                Ok(m) => self.on(m),
                Err(RecvTimeoutError::Timeout) => {}
                Err(RecvTimeoutError::Disconnected) => self.stop_all(),
            }
            while let Ok(m) = rx.try_recv() {
                self.on(m);
            }
            self.step();
            if self.stopping && self.runs.is_empty() {
                return;
            }
        }
    }

    fn on(&mut self, m: Msg) {
        let now = Instant::now();
        match m {
            Msg::Install(pools) if !self.stopping => {
                for (_, r) in &mut self.runs {
                    if !pools.iter().any(|(_, c)| Arc::ptr_eq(c, r.cells())) {
                        r.stop(now);
                    }
                }
                for (spec, cells) in &pools {
                    if !self.runs.iter().any(|(_, r)| Arc::ptr_eq(cells, r.cells())) {
                        let run = Run::new(spec.clone(), cells.clone(), now);
                        self.runs.push((self.next_run, run));
                        self.next_run += 1;
                    }
                }
                // In the configuration's order (those stopping last), so
                // /status lists pools as the file does.
                let rank = |r: &Run| {
                    pools
                        .iter()
                        .position(|(_, c)| Arc::ptr_eq(c, r.cells()))
                        .unwrap_or(usize::MAX)
                };
                self.runs.sort_by_key(|(_, r)| rank(r));
            }
            Msg::Install(_) => {}
            Msg::Recycle(name, reply) => {
                let live = self
                    .runs
                    .iter_mut()
                    .filter(|(_, r)| r.spec().name == name && !r.finished())
                    .last();
                let _ = reply.send(match live {
                    Some((_, r)) => {
                        r.recycle(now);
                        Ok(())
                    }
                    None => Err(format!("no pool is named {name:?}")),
                });
            }
            Msg::Probed { run, id, ok } => {
                if let Some((_, r)) = self.runs.iter_mut().find(|(k, _)| *k == run) {
                    r.probed(id, ok, now);
                }
            }
            Msg::Stop => self.stop_all(),
        }
    }

    fn stop_all(&mut self) {
        self.stopping = true;
        let now = Instant::now();
        for (_, r) in &mut self.runs {
            r.stop(now);
        }
    }

    fn step(&mut self) {
        let now = Instant::now();
        let minute = (SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_secs())
            % 86_400
            / 60) as u16;
        self.reap(now);
        let mut acts = Vec::new();
        for k in 0..self.runs.len() {
            self.runs[k].1.tick(now, minute, &rss, &mut acts);
            let run = self.runs[k].0;
            for a in acts.drain(..) {
                self.act(k, run, a, now);
            }
        }
        self.runs.retain(|(_, r)| !r.finished());
        let view = self.runs.iter().map(|(_, r)| r.status(now)).collect();
        *self.board.lock().unwrap_or_else(|p| p.into_inner()) = view;
    }

    fn reap(&mut self, now: Instant) {
        let mut gone = Vec::new();
        for (&(run, id), child) in &mut self.children {
            if let Ok(Some(status)) = child.try_wait() {
                gone.push((run, id, child.id(), describe(status)));
            }
        }
        for (run, id, pid, how) in gone {
            self.children.remove(&(run, id));
            if let Some((_, r)) = self.runs.iter_mut().find(|(k, _)| *k == run) {
                log(&format!(
                    "pool {}: instance {id} (pid {pid}) exited: {how}",
                    r.spec().name
                ));
                r.exited(id, how, now);
            }
        }
    }

    fn act(&mut self, k: usize, run: usize, a: Action, now: Instant) {
        match a {
            Action::Spawn { id } => {
                let spec = self.runs[k].1.spec().clone();
                let r = match spawn(&spec, id) {
                    Ok((child, ident)) => {
                        let pid = child.id();
                        self.children.insert((run, id), child);
                        Ok((pid, ident))
                    }
                    Err(e) => {
                        log(&format!(
                            "pool {}: cannot start instance {id}: {e}",
                            spec.name
                        ));
                        Err(e)
                    }
                };
                self.runs[k].1.spawned(id, r, now);
            }
            Action::Probe { id, ident } => {
                let spec = self.runs[k].1.spec().clone();
                let me = self.me.clone();
                let t = std::thread::Builder::new()
                    .name("peregrine-probe".into())
                    .spawn(move || {
                        let ok = probe(&spec, id, ident);
                        let _ = me.send(Msg::Probed { run, id, ok });
                    });
                if t.is_err() {
                    self.runs[k].1.probed(id, false, now);
                }
            }
            Action::Term { pid } => {
                let _ = sys::signal_group(pid, libc::SIGTERM);
            }
            Action::Kill { pid } => {
                let _ = sys::signal_group(pid, libc::SIGKILL);
                if let Some(c) = self.children.values_mut().find(|c| c.id() == pid) {
                    let _ = c.kill();
                }
            }
        }
    }
}

/// How a process ended, for `/status` and the log.
fn describe(s: std::process::ExitStatus) -> String {
    use std::os::unix::process::ExitStatusExt;
    match (s.code(), s.signal()) {
        (Some(c), _) => format!("exit status {c}"),
        (None, Some(sig)) => format!("signal {sig}"),
        _ => s.to_string(),
    }
}

/// A free loopback port (another process may take it before the instance
/// binds it; the instance then fails to start and is started again).
fn free_port() -> std::io::Result<u16> {
    Ok(std::net::TcpListener::bind("127.0.0.1:0")?
        .local_addr()?
        .port())
}

/// Starts instance `id`: returns the child and its ident (port or id).
fn spawn(spec: &PoolSpec, id: u32) -> Result<(Child, u32), String> {
    let (port, ident) = match &spec.listen {
        Listen::Port => {
            let p = free_port().map_err(|e| format!("no free port: {e}"))?;
            (p, u32::from(p))
        }
        Listen::Unix(_) => (0, id),
    };
    if let Some(p) = spec.socket_path(id) {
        // A socket left by an instance that died.
        let _ = std::fs::remove_file(&p);
    }
    let argv = spec.argv(port, id);
    if let Some(dir) = spec.log.parent() {
        let _ = std::fs::create_dir_all(dir);
    }
    let log_file = OpenOptions::new()
        .create(true)
        .append(true)
        .open(&spec.log)
        .map_err(|e| format!("cannot open the log {}: {e}", spec.log.display()))?;
    let err_file = log_file.try_clone().map_err(|e| e.to_string())?;
    let mut cmd = Command::new(&argv[0]);
    cmd.args(&argv[1..])
        .envs(
            spec.env
                .iter()
                .map(|(k, v)| (k, super::spec::fill(v, port, id))),
        )
        .env("PEREGRINE_POOL", &spec.name)
        .env("PEREGRINE_INSTANCE", id.to_string())
        .stdin(Stdio::null())
        .stdout(log_file)
        .stderr(err_file);
    if port != 0 {
        cmd.env("PORT", port.to_string());
    }
    if let Some(d) = &spec.cwd {
        cmd.current_dir(d);
    }
    std::os::unix::process::CommandExt::process_group(&mut cmd, 0);
    sys::die_with_parent(&mut cmd);
    let child = cmd.spawn().map_err(|e| format!("{}: {e}", argv[0]))?;
    Ok((child, ident))
}

/// Whether instance `id` is ready: it accepts a connection and, with
/// `ready.http`, answers a GET of it with 2xx or 3xx.
fn probe(spec: &PoolSpec, id: u32, ident: u32) -> bool {
    let limit = Duration::from_secs(2);
    let mut conn: Box<dyn ReadWrite> = match spec.socket_path(id) {
        Some(p) => match std::os::unix::net::UnixStream::connect(p) {
            Ok(s) => {
                let _ = s.set_read_timeout(Some(limit));
                let _ = s.set_write_timeout(Some(limit));
                Box::new(s)
            }
            Err(_) => return false,
        },
        None => {
            let Ok(port) = u16::try_from(ident) else {
                return false;
            };
            let addr = std::net::SocketAddr::from(([127, 0, 0, 1], port));
            match std::net::TcpStream::connect_timeout(&addr, limit) {
                Ok(s) => {
                    let _ = s.set_read_timeout(Some(limit));
                    let _ = s.set_write_timeout(Some(limit));
                    Box::new(s)
                }
                Err(_) => return false,
            }
        }
    };
    let Some(path) = &spec.ready.http else {
        return true;
    };
    let req = format!("GET {path} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n");
    if conn.write_all(req.as_bytes()).is_err() {
        return false;
    }
    let mut head = [0u8; 64];
    let mut n = 0;
    while n < 12 {
        match conn.read(&mut head[n..]) {
            Ok(0) | Err(_) => break,
            Ok(k) => n += k,
        }
    }
    status_ok(&head[..n])
}

/// Whether a response starting with `head` has a 2xx or 3xx status.
fn status_ok(head: &[u8]) -> bool {
    let Some(rest) = head
        .strip_prefix(b"HTTP/1.1 ")
        .or_else(|| head.strip_prefix(b"HTTP/1.0 "))
    else {
        return false;
    };
    matches!(rest.first(), Some(b'2' | b'3')) && rest.len() >= 3
}

trait ReadWrite: Read + Write {}
impl<T: Read + Write> ReadWrite for T {}

/// The resident memory of the process group `pgid` (an instance and the
/// processes it started, such as its workers) in bytes; `None` when it has
/// no process.
fn rss(pgid: u32) -> Option<u64> {
    let mut total = None;
    for e in std::fs::read_dir("/proc").ok()?.flatten() {
        let Some(pid) = e.file_name().to_str().and_then(|n| n.parse::<u32>().ok()) else {
            continue;
        };
        if (pid == pgid || group_of(pid) == Some(pgid))
            && let Some(m) = rss_of(pid)
        {
            *total.get_or_insert(0) += m;
        }
    }
    total
}

/// The process group of `pid`.
fn group_of(pid: u32) -> Option<u32> {
    let s = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // After the command's closing parenthesis: state, ppid, pgrp.
    s[s.rfind(')')? + 1..]
        .split_whitespace()
        .nth(2)?
        .parse()
        .ok()
}

/// The resident memory of one process in bytes.
fn rss_of(pid: u32) -> Option<u64> {
    let s = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let line = s.lines().find(|l| l.starts_with("VmRSS:"))?;
    let kb: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kb * 1024)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statuses_and_memory() {
        assert!(status_ok(b"HTTP/1.1 200 OK\r\n"));
        assert!(status_ok(b"HTTP/1.0 302 Found"));
        assert!(!status_ok(b"HTTP/1.1 503 Busy"));
        assert!(!status_ok(b"HTTP/1.1 2"));
        assert!(!status_ok(b"garbage"));
        assert!(rss_of(std::process::id()).is_some_and(|m| m > 0));
        assert_eq!(rss(u32::MAX), None);
        // A group leader and its child count together.
        use std::os::unix::process::CommandExt;
        let mut leader = std::process::Command::new("sh")
            .args(["-c", "sleep 5 & sleep 5"])
            .process_group(0)
            .spawn()
            .unwrap();
        let pgid = leader.id();
        std::thread::sleep(Duration::from_millis(200));
        let one = rss_of(pgid).unwrap();
        let all = rss(pgid).unwrap();
        assert!(all > one, "{all} > {one}");
        let _ = sys::signal_group(pgid, libc::SIGKILL);
        let _ = leader.wait();
    }
}
