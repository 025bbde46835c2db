//! A connection driver's actions turned into ring operations, and the
//! cancels of a closing connection's operations in flight.

use std::os::fd::AsFd;

use super::conn::with_driver;
use super::slot::{Driver, Recv};
use super::{PIPE_SIZE, Worker};
use crate::driver::Action;
use crate::http::Service;
use crate::runtime::log;
use crate::runtime::op::{self, connect::Connect, read::Read, send::Send, splice::SpliceIn};
use crate::runtime::sys::{self, Pipe};
use crate::runtime::token::{Op, Token};

impl<S: Service> Worker<S> {
    pub(super) fn act(&mut self, slot: usize, a: Action) {
        let c = &mut self.conns[slot];
        let generation = c.generation;
        match a {
            Action::Connect { addr } => {
                let Driver::Client(o) = &mut c.driver else {
                    unreachable!("a connect asked for by an accepted connection");
                };
                assert!(o.connect.is_none(), "a second connect in flight");
                let tok = Token::new(Op::Connect, slot, generation).pack();
                match Connect::start(c.fd.as_fd(), &addr, tok) {
                    Ok((connect, e)) => {
                        o.connect = Some(connect);
                        self.push(e);
                    }
                    // Its Close is the driver's next action.
                    Err(e) => o.on_connected(Err(e.raw_os_error().unwrap_or(libc::EINVAL))),
                }
            }
            Action::Send { buf, from } => {
                // A driver asks for one operation of a kind at a time; a
                // second would drop the first's buffer while the kernel has it.
                assert!(c.ops.send.is_none(), "a second send in flight");
                let tok = Token::new(Op::Send, slot, generation).pack();
                let (send, e) = Send::start(c.fd.as_fd(), buf, from, tok);
                c.ops.send = Some(send);
                self.push(e);
            }
            Action::SendGather { buf, from, tail } => {
                assert!(c.ops.send.is_none(), "a second send in flight");
                let tok = Token::new(Op::Send, slot, generation).pack();
                let (send, e) = Send::start_gather(c.fd.as_fd(), buf, from, tail, tok);
                c.ops.send = Some(send);
                self.push(e);
            }
            Action::ReadFile {
                file,
                offset,
                len,
                buf,
                tag,
            } => {
                let reads = c.ops.read.get_or_insert_with(Box::default);
                let i = reads
                    .free()
                    .expect("at most MAX_READS file reads in flight");
                let tok = Token::new(Op::Read, slot, generation)
                    .with_sub(i as u8)
                    .pack();
                let (read, e) = Read::start(file, offset, len, buf, tok);
                reads.0[i] = Some((read, tag));
                self.push(e);
            }
            Action::SpliceIn {
                file,
                offset,
                len,
                then_out,
            } => {
                if c.pipe.is_none() {
                    match self.pipes.pop().map_or_else(|| Pipe::new(PIPE_SIZE), Ok) {
                        Ok(p) => self.conns[slot].pipe = Some(Box::new(p)),
                        Err(e) => {
                            log(&format!(
                                "worker {}: cannot make a pipe, copying instead: {e}",
                                self.id
                            ));
                            with_driver!(self, slot, |d, cx| d.splice_unavailable(&mut cx));
                            return;
                        }
                    }
                }
                let c = &mut self.conns[slot];
                assert!(c.ops.splice_in.is_none(), "a second splice in flight");
                let p = c.pipe.as_ref().expect("pipe");
                let len = len.min(p.cap) as u32;
                let tok = Token::new(Op::SpliceIn, slot, generation).pack();
                let (sp, e) = SpliceIn::start(file, offset, p.wr.as_fd(), len, tok);
                c.ops.splice_in = Some(sp);
                if then_out {
                    assert!(!c.ops.splice_out, "a second splice out in flight");
                    // Both in one submission: the splice out starts when the
                    // splice in completes in full (a short one breaks the link).
                    let out_tok = Token::new(Op::SpliceOut, slot, generation).pack();
                    let out = op::splice::out(p.rd.as_fd(), c.fd.as_fd(), len, out_tok);
                    c.ops.splice_out = true;
                    self.push(e.flags(io_uring::squeue::Flags::IO_LINK));
                    self.push(out);
                } else {
                    self.push(e);
                }
            }
            Action::SpliceOut { len } => {
                assert!(!c.ops.splice_out, "a second splice out in flight");
                let p = c.pipe.as_ref().expect("pipe");
                let tok = Token::new(Op::SpliceOut, slot, generation).pack();
                let e = op::splice::out(p.rd.as_fd(), c.fd.as_fd(), len as u32, tok);
                c.ops.splice_out = true;
                self.push(e);
            }
            Action::PollOut => {
                assert!(!c.ops.poll, "a second poll in flight");
                let tok = Token::new(Op::PollOut, slot, generation).pack();
                let e = op::poll::writable(c.fd.as_fd(), tok);
                c.ops.poll = true;
                self.push(e);
            }
            Action::ShutdownWrite => sys::shutdown_write(c.fd.as_fd()),
            Action::Close { why, note } => {
                if let Some(n) = note {
                    log(&format!("worker {}: {n}", self.id));
                }
                c.closing = true;
                self.closing += 1;
                // Outgoing connections are not the server's to count.
                if self.obs.metrics && matches!(c.driver, Driver::Server(_)) {
                    self.obs.stats.counters.closed(why);
                }
                self.cancel_all(slot);
            }
        }
    }

    /// Cancels exactly the operations in flight on a closing slot.
    pub(super) fn cancel_all(&mut self, slot: usize) {
        let c = &mut self.conns[slot];
        let g = c.generation;
        let mut targets = [0u64; 6 + super::slot::MAX_READS];
        let mut n = 0;
        let mut add = |op: Op, on: bool| {
            if on {
                targets[n] = Token::new(op, slot, g).pack();
                n += 1;
            }
        };
        add(
            Op::Connect,
            matches!(&c.driver, Driver::Client(o) if o.connect.is_some()),
        );
        add(recv_op(&c.driver), c.ops.recv == Recv::Armed);
        add(Op::Send, c.ops.send.is_some());
        add(Op::SpliceIn, c.ops.splice_in.is_some());
        add(Op::SpliceOut, c.ops.splice_out);
        add(Op::PollOut, c.ops.poll);
        if let Some(r) = &c.ops.read {
            for (i, _) in r.0.iter().enumerate().filter(|(_, r)| r.is_some()) {
                targets[n] = Token::new(Op::Read, slot, g).with_sub(i as u8).pack();
                n += 1;
            }
        }
        if c.ops.recv == Recv::Armed {
            c.ops.recv = Recv::Cancelling;
        }
        for t in &targets[..n] {
            self.cancel(*t, Some(slot));
        }
    }

    pub(super) fn arm_recv(&mut self, slot: usize) {
        let c = &mut self.conns[slot];
        let op = recv_op(&c.driver);
        let tok = Token::new(op, slot, c.generation).pack();
        let ring = if op == Op::RecvUp {
            &self.upbufs
        } else {
            &self.bufs
        };
        let e = op::recv::entry(
            c.fd.as_fd(),
            ring.bgid(),
            ring.buf_size(),
            self.multishot_recv,
            tok,
        );
        c.ops.recv = Recv::Armed;
        self.push(e);
    }
}

/// The receive operation of a connection: outgoing ones use the ring of
/// larger buffers.
pub(super) fn recv_op(d: &Driver) -> Op {
    match d {
        Driver::Server(_) => Op::Recv,
        Driver::Client(_) => Op::RecvUp,
    }
}
