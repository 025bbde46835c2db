//! [`IpRules`]: ordered CIDR rules, looked up by address in a binary prefix
//! trie; [`IpSet`]: a set of networks on the same trie.
//!
//! The trie is path-compressed: every node holds a prefix (bits and
//! length), at most two children (by the next bit), and the lowest index of
//! the rules whose network is exactly that prefix. A lookup walks from the
//! root while the node's prefix matches the address and keeps the lowest
//! index seen: every rule containing the address ends on that path, so the
//! minimum is the first rule in configuration order that matches. IPv4 and
//! IPv6 have separate roots; an IPv4-mapped IPv6 address is looked up as
//! IPv4. A lookup is at most 33 (IPv4) or 129 (IPv6) node visits, never
//! allocates, and a rule adds at most two nodes.

use std::fmt;
use std::net::IpAddr;

use super::cidr::{Cidr, mask};

/// "No rule" / "no child" in the arena.
const NONE: u32 = u32::MAX;

#[derive(Clone, Copy, Debug)]
struct Node {
    /// The prefix, left-aligned; bits after `len` are zero.
    bits: u128,
    len: u8,
    /// The lowest index of the rules ending exactly here, or [`NONE`].
    rule: u32,
    /// By the bit at position `len`; each child's prefix extends this one.
    child: [u32; 2],
}

impl Node {
    fn new(bits: u128, len: u8, rule: u32) -> Node {
        Node {
            bits: mask(bits, len),
            len,
            rule,
            child: [NONE; 2],
        }
    }
}

/// The bit at `pos` (0 = most significant) of a left-aligned key.
fn bit(bits: u128, pos: u8) -> usize {
    debug_assert!(pos < 128);
    ((bits >> (127 - u32::from(pos))) & 1) as usize
}

/// Ordered rules on networks, each carrying a value: [`first_match`] finds
/// the rule with the lowest index among those whose network contains an
/// address ("first match wins", as in nginx's `allow`/`deny` lists).
///
/// [`first_match`]: IpRules::first_match
#[derive(Clone)]
pub struct IpRules<T: Copy> {
    /// The arena; node 0 is the IPv4 root, node 1 the IPv6 root (both `/0`).
    nodes: Vec<Node>,
    values: Vec<T>,
}

const ROOT_V4: usize = 0;
const ROOT_V6: usize = 1;

impl<T: Copy> IpRules<T> {
    /// The rules in priority order: index 0 is tried first. Duplicate and
    /// overlapping networks are fine; the lowest index wins.
    ///
    /// # Panics
    ///
    /// With `u32::MAX` rules or more.
    pub fn new(rules: &[(Cidr, T)]) -> IpRules<T> {
        assert!(rules.len() < NONE as usize, "too many IP rules");
        let mut trie = IpRules {
            nodes: vec![Node::new(0, 0, NONE), Node::new(0, 0, NONE)],
            values: rules.iter().map(|&(_, v)| v).collect(),
        };
        for (i, (cidr, _)) in rules.iter().enumerate() {
            trie.insert(*cidr, i as u32);
        }
        trie
    }

    fn insert(&mut self, cidr: Cidr, index: u32) {
        let (v6, bits) = cidr.key();
        let len = cidr.prefix_len();
        let mut cur = if v6 { ROOT_V6 } else { ROOT_V4 };
        loop {
            // Here: `cur`'s prefix is a prefix of the new network's.
            let node = self.nodes[cur];
            if node.len == len {
                self.nodes[cur].rule = node.rule.min(index);
                return;
            }
            let side = bit(bits, node.len);
            let next = node.child[side];
            if next == NONE {
                self.nodes[cur].child[side] = self.push(Node::new(bits, len, index));
                return;
            }
            let child = self.nodes[next as usize];
            let common = ((child.bits ^ bits).leading_zeros() as u8)
                .min(child.len)
                .min(len);
            if common == child.len {
                cur = next as usize;
                continue;
            }
            // The new network and the child part ways (or the new one ends)
            // before the child's prefix does: a node at the common prefix
            // takes the child's place. `common > node.len`: both agree on
            // the bit at `node.len`.
            let mut fork = Node::new(bits, common, NONE);
            fork.child[bit(child.bits, common)] = next;
            let fork_at = self.push(fork);
            self.nodes[cur].child[side] = fork_at;
            if common == len {
                self.nodes[fork_at as usize].rule = index;
            } else {
                let leaf = self.push(Node::new(bits, len, index));
                self.nodes[fork_at as usize].child[bit(bits, common)] = leaf;
            }
            return;
        }
    }

    fn push(&mut self, node: Node) -> u32 {
        self.nodes.push(node);
        (self.nodes.len() - 1) as u32
    }

    /// The rule with the lowest index whose network contains `ip`, as its
    /// index and value; `None` when no rule does. An IPv4-mapped IPv6
    /// address is matched as IPv4.
    pub fn first_match(&self, ip: IpAddr) -> Option<(usize, T)> {
        let (v6, bits) = super::cidr::key(ip.to_canonical());
        let mut cur = if v6 { ROOT_V6 } else { ROOT_V4 };
        let mut best = NONE;
        loop {
            let node = &self.nodes[cur];
            if mask(bits ^ node.bits, node.len) != 0 {
                break;
            }
            best = best.min(node.rule);
            if node.len >= 128 {
                break;
            }
            match node.child[bit(bits, node.len)] {
                NONE => break,
                next => cur = next as usize,
            }
        }
        (best != NONE).then(|| (best as usize, self.values[best as usize]))
    }

    /// How many rules there are.
    pub fn len(&self) -> usize {
        self.values.len()
    }

    /// Whether there are no rules (nothing matches).
    pub fn is_empty(&self) -> bool {
        self.values.is_empty()
    }
}

impl<T: Copy> fmt::Debug for IpRules<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("IpRules")
            .field("rules", &self.values.len())
            .field("nodes", &self.nodes.len())
            .finish()
    }
}

/// A set of networks: whether an address lies in any of them.
#[derive(Clone, Debug)]
pub struct IpSet {
    rules: IpRules<()>,
}

impl IpSet {
    /// The union of `networks` (overlaps and duplicates are fine).
    pub fn new(networks: &[Cidr]) -> IpSet {
        let rules: Vec<(Cidr, ())> = networks.iter().map(|&c| (c, ())).collect();
        IpSet {
            rules: IpRules::new(&rules),
        }
    }

    /// Whether `ip` lies in one of the networks (an IPv4-mapped IPv6 address
    /// as IPv4).
    pub fn contains(&self, ip: IpAddr) -> bool {
        self.rules.first_match(ip).is_some()
    }

    /// Whether the set has no networks (contains nothing).
    pub fn is_empty(&self) -> bool {
        self.rules.is_empty()
    }
}

impl Default for IpSet {
    /// The empty set.
    fn default() -> IpSet {
        IpSet::new(&[])
    }
}

impl FromIterator<Cidr> for IpSet {
    fn from_iter<I: IntoIterator<Item = Cidr>>(iter: I) -> IpSet {
        IpSet::new(&iter.into_iter().collect::<Vec<_>>())
    }
}

#[cfg(test)]
#[path = "trie_tests.rs"]
mod tests;
