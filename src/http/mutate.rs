//! Test support: a deterministic PRNG and a byte mutator, shared by the
//! randomized split tests of both codec roles.

/// xorshift64*: deterministic and dependency-free.
pub(crate) struct Rng(pub(crate) u64);

impl Rng {
    pub(crate) fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    pub(crate) fn below(&mut self, n: usize) -> usize {
        (self.next() % n.max(1) as u64) as usize
    }
}

/// Up to four random edits of `input` (replace, insert, remove, or duplicate
/// a run), drawing new bytes from `bytes`; an empty input restarts at `first`.
pub(crate) fn mutate(rng: &mut Rng, input: &mut Vec<u8>, bytes: &[u8], first: u8) {
    for _ in 0..=rng.below(3) {
        if input.is_empty() {
            input.push(first);
        }
        let at = rng.below(input.len());
        match rng.below(4) {
            0 => input[at] = bytes[rng.below(bytes.len())],
            1 => input.insert(at, bytes[rng.below(bytes.len())]),
            2 => {
                input.remove(at);
            }
            _ => {
                let end = (at + rng.below(8)).min(input.len());
                let dup = input[at..end].to_vec();
                input.splice(at..at, dup);
            }
        }
    }
}

/// One to four seeds back to back, each mutated with probability 2/3 by
/// `mutate`: a pipelined input for a split test.
pub(crate) fn pipeline(
    rng: &mut Rng,
    seeds: &[&[u8]],
    mutate: impl Fn(&mut Rng, &mut Vec<u8>),
) -> Vec<u8> {
    let mut input = Vec::new();
    for _ in 0..=rng.below(3) {
        let mut one = seeds[rng.below(seeds.len())].to_vec();
        if rng.below(3) > 0 {
            mutate(rng, &mut one);
        }
        input.extend_from_slice(&one);
    }
    input
}
