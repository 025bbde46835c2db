//! `user_data` encoding: which operation a completion belongs to.
//!
//! Layout: `op` in the top 8 bits, a 24-bit generation, and a 32-bit slot. The
//! generation makes a late completion for a reused connection slot harmless.

/// What kind of operation a completion is for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u8)]
pub enum Op {
    /// Multishot (or single) accept; slot = listener index.
    Accept = 1,
    /// Receive on a connection.
    Recv = 2,
    /// Send on a connection.
    Send = 3,
    /// File read for a response body.
    Read = 4,
    /// A cancel request; its completion is ignored.
    Cancel = 5,
    /// The worker's periodic timer.
    Timer = 6,
    /// The worker's wake-up eventfd read.
    Wake = 7,
    /// An access-log write.
    Log = 8,
    /// Splice of file pages into a connection's pipe.
    SpliceIn = 9,
    /// Splice from a connection's pipe to its socket.
    SpliceOut = 10,
    /// Wait for a full socket to take more (between splices).
    PollOut = 11,
    /// Connecting an outgoing connection.
    Connect = 12,
    /// Receive on an outgoing connection (into the larger buffers of
    /// [`super::worker`]'s second ring).
    RecvUp = 13,
}

/// A decoded `user_data`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Token {
    /// The operation.
    pub op: Op,
    /// Generation of the slot's occupant when the operation was issued.
    pub generation: u32,
    /// Slab slot (or listener index).
    pub slot: u32,
    /// Which of several operations of one kind on the slot (file reads:
    /// 0..16).
    pub sub: u8,
}

const GEN_MASK: u32 = (1 << 24) - 1;

impl Token {
    /// A token for `op` on `slot` at generation `generation` (truncated to 24 bits).
    pub fn new(op: Op, slot: usize, generation: u32) -> Token {
        Token {
            op,
            generation: generation & GEN_MASK,
            slot: slot as u32,
            sub: 0,
        }
    }

    /// The same token for operation number `sub` (below 16) of its kind.
    pub fn with_sub(mut self, sub: u8) -> Token {
        debug_assert!(sub < 16);
        self.sub = sub & 0xf;
        self
    }

    /// Packs into `user_data`.
    pub fn pack(self) -> u64 {
        // Bits 60..64: sub; 56..60: op (every op is below 16).
        u64::from(self.sub & 0xf) << 60
            | (self.op as u64) << 56
            | u64::from(self.generation & GEN_MASK) << 32
            | u64::from(self.slot)
    }

    /// Unpacks a `user_data`; `None` for values this worker never issued.
    pub fn unpack(v: u64) -> Option<Token> {
        let op = match ((v >> 56) & 0xf) as u8 {
            1 => Op::Accept,
            2 => Op::Recv,
            3 => Op::Send,
            4 => Op::Read,
            5 => Op::Cancel,
            6 => Op::Timer,
            7 => Op::Wake,
            8 => Op::Log,
            9 => Op::SpliceIn,
            10 => Op::SpliceOut,
            11 => Op::PollOut,
            12 => Op::Connect,
            13 => Op::RecvUp,
            _ => return None,
        };
        Some(Token {
            op,
            generation: (v >> 32) as u32 & GEN_MASK,
            slot: v as u32,
            sub: (v >> 60) as u8,
        })
    }
}

/// Advances a generation counter within 24 bits.
pub fn next_gen(generation: u32) -> u32 {
    generation.wrapping_add(1) & GEN_MASK
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip() {
        let t = Token::new(Op::Send, 123_456, 0xAB_CDEF);
        assert_eq!(Token::unpack(t.pack()), Some(t));
        assert_eq!(Token::new(Op::Recv, 1, 0x1FF_FFFF).generation, 0xFF_FFFF);
        assert_eq!(Token::unpack(0), None);
        assert_eq!(next_gen(GEN_MASK), 0);
    }
}
