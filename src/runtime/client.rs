//! Client connections on a ring, for the load generator: connect, send and
//! receive, each an io_uring operation, all submitted with one `io_uring_enter`
//! per [`Client::poll`].
//!
//! A client owns a fixed set of connection slots, all to one address. Each slot
//! has its own receive buffer (a plain `Recv`, one in flight at a time) and two
//! output buffers: the one a `Send` in flight points at, and one that collects
//! what is sent meanwhile. The caller sees [`Event`]s; received bytes stay in
//! the slot's buffer, readable with [`Client::received`], until the next poll
//! re-arms the receive.
//!
//! Ownership: the kernel owns a slot's receive buffer and in-flight output
//! buffer from submission until completion. Neither is moved, resized or freed
//! meanwhile; a closing slot keeps its socket and buffers until its in-flight
//! count is zero, and dropping a client waits for that (or leaks the buffers
//! rather than free memory the kernel may still write).

use std::io;
use std::net::SocketAddr;
use std::os::fd::AsRawFd;
use std::time::{Duration, Instant};

use io_uring::{opcode, types};
use socket2::{Domain, Protocol, SockAddr, Socket, Type};

use super::ring::{Cqe, Ring};

const OP_CONNECT: u64 = 1;
const OP_RECV: u64 = 2;
const OP_SEND: u64 = 3;
const OP_CANCEL: u64 = 4;
const GEN_MASK: u32 = (1 << 24) - 1;

fn pack(op: u64, slot: usize, generation: u32) -> u64 {
    op << 56 | u64::from(generation & GEN_MASK) << 32 | slot as u64 & 0xFFFF_FFFF
}

fn unpack(v: u64) -> (u64, usize, u32) {
    (
        v >> 56,
        (v & 0xFFFF_FFFF) as usize,
        (v >> 32) as u32 & GEN_MASK,
    )
}

/// What happened to a connection.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Event {
    /// The connection is established; a receive is armed.
    Connected,
    /// Connecting failed with this errno; the slot is idle again.
    ConnectFailed(i32),
    /// This many bytes arrived; read them with [`Client::received`] before
    /// the next poll.
    Data(usize),
    /// The peer closed its side.
    Eof,
    /// A receive failed with this errno.
    RecvFailed(i32),
    /// A send failed with this errno.
    SendFailed(i32),
    /// A [`Client::close`] finished: the socket is closed and the slot idle.
    Closed,
}

/// An event and the connection it is for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Completion {
    /// Connection slot.
    pub conn: usize,
    /// What happened.
    pub event: Event,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum State {
    Idle,
    Connecting,
    Open,
    Closing,
}

struct Slot {
    sock: Option<Socket>,
    state: State,
    generation: u32,
    inflight: u32,
    recv_armed: bool,
    /// No more receives: the peer closed or a receive failed.
    recv_done: bool,
    sending: bool,
    /// The buffer a send in flight points at, and how much of it went out.
    out: Vec<u8>,
    sent: usize,
    /// Bytes to send after `out`.
    next: Vec<u8>,
    inbuf: Box<[u8]>,
    in_len: usize,
}

/// A ring and its client connections.
pub struct Client {
    // Field order: the ring goes before the memory its operations point at.
    ring: Ring,
    slots: Vec<Slot>,
    /// Leaked once per client, so a connect in flight can never outlive it.
    addr: &'static SockAddr,
    domain: Domain,
    cqes: Vec<Cqe>,
    /// Events produced outside completions (a close with nothing in flight).
    pending: Vec<Completion>,
    /// Slots whose received data was handed out and whose receive is to be
    /// re-armed at the next poll.
    rearm: Vec<usize>,
}

impl Client {
    /// A ring with `conns` idle connection slots to `addr`, each with a
    /// `recv_buf`-byte receive buffer. Call on the thread that will poll.
    pub fn new(addr: SocketAddr, conns: usize, recv_buf: usize) -> io::Result<Client> {
        let entries = (conns * 2 + 16).next_power_of_two().clamp(64, 4096) as u32;
        let ring = Ring::new(entries, true)?;
        let slots = (0..conns)
            .map(|_| Slot {
                sock: None,
                state: State::Idle,
                generation: 0,
                inflight: 0,
                recv_armed: false,
                recv_done: false,
                sending: false,
                out: Vec::new(),
                sent: 0,
                next: Vec::new(),
                inbuf: vec![0u8; recv_buf.max(512)].into_boxed_slice(),
                in_len: 0,
            })
            .collect();
        Ok(Client {
            ring,
            slots,
            addr: Box::leak(Box::new(SockAddr::from(addr))),
            domain: Domain::for_address(addr),
            cqes: Vec::with_capacity(256),
            pending: Vec::new(),
            rearm: Vec::new(),
        })
    }

    /// Number of connection slots.
    pub fn len(&self) -> usize {
        self.slots.len()
    }

    /// Whether the client has no slots.
    pub fn is_empty(&self) -> bool {
        self.slots.is_empty()
    }

    fn push(&mut self, e: io_uring::squeue::Entry) {
        // SAFETY: every entry built in this file points only at memory that
        // outlives its operation: a slot's receive buffer (a boxed slice never
        // replaced) and in-flight output buffer (not touched while `sending`),
        // owned by `self` and freed only once no operation is in flight (see
        // `Drop`), and the leaked address. A slot's socket stays open while its
        // in-flight count is above zero.
        unsafe { self.ring.push(e) }
    }

    /// Starts connecting an idle slot. Fails at once only when no socket can
    /// be created (for instance, out of descriptors).
    pub fn connect(&mut self, conn: usize) -> io::Result<()> {
        let s = &mut self.slots[conn];
        assert_eq!(s.state, State::Idle, "connect on a slot in use");
        let sock = Socket::new(self.domain, Type::STREAM, Some(Protocol::TCP))?;
        sock.set_tcp_nodelay(true)?;
        s.generation = s.generation.wrapping_add(1) & GEN_MASK;
        s.state = State::Connecting;
        s.inflight += 1;
        s.recv_done = false;
        s.recv_armed = false;
        s.sending = false;
        s.out.clear();
        s.sent = 0;
        s.next.clear();
        s.in_len = 0;
        let fd = types::Fd(sock.as_raw_fd());
        s.sock = Some(sock);
        let e = opcode::Connect::new(fd, self.addr.as_ptr().cast(), self.addr.len())
            .build()
            .user_data(pack(OP_CONNECT, conn, s.generation));
        self.push(e);
        Ok(())
    }

    /// Whether the slot is connected and not closing.
    pub fn is_open(&self, conn: usize) -> bool {
        self.slots[conn].state == State::Open
    }

    /// Queues `data` to be sent on an open connection, after anything queued
    /// before. Returns false (and sends nothing) when the slot is not open.
    pub fn send(&mut self, conn: usize, data: &[u8]) -> bool {
        let s = &mut self.slots[conn];
        if s.state != State::Open || data.is_empty() {
            return false;
        }
        if s.sending {
            s.next.extend_from_slice(data);
        } else {
            s.out.clear();
            s.out.extend_from_slice(data);
            s.sent = 0;
            self.arm_send(conn);
        }
        true
    }

    /// The bytes of the connection's last [`Event::Data`]; valid until the
    /// next [`Client::poll`].
    pub fn received(&self, conn: usize) -> &[u8] {
        let s = &self.slots[conn];
        &s.inbuf[..s.in_len]
    }

    /// Closes a connection: cancels its operations, and once none is in
    /// flight closes the socket and reports [`Event::Closed`]. Does nothing on
    /// an idle or already closing slot.
    pub fn close(&mut self, conn: usize) {
        let s = &mut self.slots[conn];
        if matches!(s.state, State::Idle | State::Closing) {
            return;
        }
        s.state = State::Closing;
        if s.inflight > 0
            && let Some(sock) = &s.sock
        {
            let fd = types::Fd(sock.as_raw_fd());
            let e = opcode::AsyncCancel2::new(types::CancelBuilder::fd(fd).all())
                .build()
                .user_data(pack(OP_CANCEL, conn, s.generation));
            self.push(e);
        }
        self.maybe_finish(conn);
    }

    /// Number of operations in flight over all slots.
    pub fn inflight(&self) -> u32 {
        self.slots.iter().map(|s| s.inflight).sum()
    }

    /// Re-arms receives whose data was handed out, submits everything queued,
    /// waits for a completion or until `timeout` passes (`None`: no limit),
    /// and appends what happened to `out`.
    pub fn poll(&mut self, timeout: Option<Duration>, out: &mut Vec<Completion>) -> io::Result<()> {
        for conn in std::mem::take(&mut self.rearm) {
            self.arm_recv(conn);
        }
        let timeout = if self.pending.is_empty() {
            timeout
        } else {
            Some(Duration::ZERO)
        };
        self.ring.submit_and_wait(timeout)?;
        out.append(&mut self.pending);
        let mut cqes = std::mem::take(&mut self.cqes);
        cqes.clear();
        self.ring.reap(&mut cqes);
        for c in &cqes {
            self.complete(*c, out);
        }
        self.cqes = cqes;
        out.append(&mut self.pending);
        Ok(())
    }

    fn arm_recv(&mut self, conn: usize) {
        let s = &mut self.slots[conn];
        if s.state != State::Open || s.recv_armed || s.recv_done {
            return;
        }
        let fd = types::Fd(s.sock.as_ref().expect("open slot has a socket").as_raw_fd());
        let e = opcode::Recv::new(fd, s.inbuf.as_mut_ptr(), s.inbuf.len() as u32)
            .build()
            .user_data(pack(OP_RECV, conn, s.generation));
        s.recv_armed = true;
        s.inflight += 1;
        self.push(e);
    }

    fn arm_send(&mut self, conn: usize) {
        let s = &mut self.slots[conn];
        debug_assert!(!s.sending && s.sent < s.out.len());
        let fd = types::Fd(s.sock.as_ref().expect("open slot has a socket").as_raw_fd());
        let buf = &s.out[s.sent..];
        let e = opcode::Send::new(fd, buf.as_ptr(), buf.len().min(u32::MAX as usize) as u32)
            .flags(libc::MSG_NOSIGNAL)
            .build()
            .user_data(pack(OP_SEND, conn, s.generation));
        s.sending = true;
        s.inflight += 1;
        self.push(e);
    }

    fn maybe_finish(&mut self, conn: usize) {
        let s = &mut self.slots[conn];
        if s.state != State::Closing || s.inflight > 0 {
            return;
        }
        s.sock = None;
        s.state = State::Idle;
        s.out.clear();
        s.next.clear();
        s.sent = 0;
        s.in_len = 0;
        self.pending.push(Completion {
            conn,
            event: Event::Closed,
        });
    }

    fn complete(&mut self, cqe: Cqe, out: &mut Vec<Completion>) {
        let (op, conn, generation) = unpack(cqe.user_data);
        if op == OP_CANCEL {
            return;
        }
        let Some(s) = self.slots.get_mut(conn) else {
            return;
        };
        if s.generation != generation || s.inflight == 0 {
            return;
        }
        s.inflight -= 1;
        let closing = s.state == State::Closing;
        let mut emit = |event| out.push(Completion { conn, event });
        match op {
            OP_CONNECT => {
                if closing {
                    // Only counted down; the slot is being closed.
                } else if cqe.res >= 0 {
                    s.state = State::Open;
                    emit(Event::Connected);
                    self.arm_recv(conn);
                } else {
                    s.sock = None;
                    s.state = State::Idle;
                    emit(Event::ConnectFailed(-cqe.res));
                }
            }
            OP_RECV => {
                s.recv_armed = false;
                if closing {
                    // Only counted down; the slot is being closed.
                } else if cqe.res > 0 {
                    s.in_len = cqe.res as usize;
                    emit(Event::Data(cqe.res as usize));
                    self.rearm.push(conn);
                } else if cqe.res == 0 {
                    s.recv_done = true;
                    emit(Event::Eof);
                } else if matches!(-cqe.res, libc::EINTR | libc::EAGAIN) {
                    self.arm_recv(conn);
                } else {
                    s.recv_done = true;
                    emit(Event::RecvFailed(-cqe.res));
                }
            }
            OP_SEND => {
                s.sending = false;
                if closing {
                    // Only counted down; the slot is being closed.
                } else if cqe.res > 0 {
                    s.sent += cqe.res as usize;
                    if s.sent < s.out.len() {
                        self.arm_send(conn);
                    } else if !s.next.is_empty() {
                        std::mem::swap(&mut s.out, &mut s.next);
                        s.next.clear();
                        s.sent = 0;
                        self.arm_send(conn);
                    } else {
                        s.out.clear();
                        s.sent = 0;
                    }
                } else if matches!(-cqe.res, libc::EINTR | libc::EAGAIN) {
                    self.arm_send(conn);
                } else {
                    // A zero-byte send of a non-empty buffer would only repeat.
                    let errno = if cqe.res == 0 { libc::EPIPE } else { -cqe.res };
                    emit(Event::SendFailed(errno));
                }
            }
            _ => {}
        }
        self.maybe_finish(conn);
    }
}

impl Drop for Client {
    fn drop(&mut self) {
        for conn in 0..self.slots.len() {
            self.close(conn);
        }
        let deadline = Instant::now() + Duration::from_secs(2);
        let mut scratch = Vec::new();
        while self.inflight() > 0 && Instant::now() < deadline {
            scratch.clear();
            if self
                .poll(Some(Duration::from_millis(50)), &mut scratch)
                .is_err()
            {
                break;
            }
        }
        if self.inflight() > 0 {
            // The kernel may still write into these buffers: leak them (and
            // their sockets) rather than free memory it could touch.
            std::mem::forget(std::mem::take(&mut self.slots));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::{Read, Write};
    use std::net::TcpListener;

    #[test]
    fn user_data_round_trip() {
        let v = pack(OP_SEND, 70_000, 0x1AB_CDEF);
        assert_eq!(unpack(v), (OP_SEND, 70_000, 0xAB_CDEF));
    }

    fn wait_for(c: &mut Client, want: impl Fn(&Completion) -> bool) -> Vec<Completion> {
        let mut all = Vec::new();
        let deadline = Instant::now() + Duration::from_secs(5);
        while Instant::now() < deadline {
            let mut ev = Vec::new();
            c.poll(Some(Duration::from_millis(100)), &mut ev).unwrap();
            let done = ev.iter().any(&want);
            all.extend(ev);
            if done {
                return all;
            }
        }
        panic!("timed out; events so far: {all:?}");
    }

    #[test]
    fn connect_send_receive_close() {
        if super::super::ring::check_available().is_err() {
            return;
        }
        let l = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = l.local_addr().unwrap();
        let server = std::thread::spawn(move || {
            let (mut s, _) = l.accept().unwrap();
            let mut buf = [0u8; 5];
            s.read_exact(&mut buf).unwrap();
            s.write_all(b"pong!").unwrap();
            // Then close: the client sees its end of file.
        });
        let mut c = Client::new(addr, 1, 4096).unwrap();
        c.connect(0).unwrap();
        wait_for(&mut c, |e| e.event == Event::Connected);
        assert!(c.send(0, b"pi"));
        assert!(c.send(0, b"ng!"));
        let ev = wait_for(&mut c, |e| matches!(e.event, Event::Data(_)));
        assert_eq!(c.received(0), b"pong!", "{ev:?}");
        server.join().unwrap();
        wait_for(&mut c, |e| e.event == Event::Eof);
        c.close(0);
        wait_for(&mut c, |e| e.event == Event::Closed);
        assert_eq!(c.inflight(), 0);
    }

    #[test]
    fn refused_connect_and_close_while_receiving() {
        if super::super::ring::check_available().is_err() {
            return;
        }
        let l = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = l.local_addr().unwrap();
        drop(l);
        let mut c = Client::new(addr, 1, 4096).unwrap();
        c.connect(0).unwrap();
        let ev = wait_for(&mut c, |e| matches!(e.event, Event::ConnectFailed(_)));
        assert!(
            ev.contains(&Completion {
                conn: 0,
                event: Event::ConnectFailed(libc::ECONNREFUSED)
            }),
            "{ev:?}"
        );
        // A listener that never answers: closing cancels the pending receive.
        let l = TcpListener::bind("127.0.0.1:0").unwrap();
        let mut c = Client::new(l.local_addr().unwrap(), 1, 4096).unwrap();
        c.connect(0).unwrap();
        wait_for(&mut c, |e| e.event == Event::Connected);
        assert!(c.send(0, b"GET / HTTP/1.1\r\n\r\n"));
        c.close(0);
        wait_for(&mut c, |e| e.event == Event::Closed);
        assert_eq!(c.inflight(), 0);
        assert!(!c.is_open(0));
    }
}
