//! The audit log's Merkle tree, in the manner of RFC 9162 (Certificate Transparency 2.0):
//! the tree over leaves `D[0..n)` is `MTH`, split at the largest power of two below `n`;
//! inclusion proofs (`PATH`) and consistency proofs (`PROOF`, `SUBPROOF`) are built and
//! checked with the RFC's algorithms (sections 2.1.3 and 2.1.4).
//!
//! The hash is the suite's instead of SHA-256, and RFC 9162's one-byte prefixes (0x00 for a
//! leaf, 0x01 for an inner node) are two domains instead, `shutong/audit-log/leaf/v1` and
//! `shutong/audit-log/node/v1` (BLAKE3 keys derived from them, or SM3 tags): the same
//! separation of leaf from node hashes. The empty tree's root is the leaf domain's hash of no
//! bytes.

use crate::hash::Hash;
use crate::suite::Suite;
use shutong_codec::{Decode, DecodeError, Encode, Reader, write};
use std::sync::OnceLock;

/// No proof over a `u64`-sized log needs more hashes than this.
pub const PATH_MAX: usize = 65;

const LEAF_TAG: &str = "shutong/audit-log/leaf/v1";
const NODE_TAG: &str = "shutong/audit-log/node/v1";

fn keys() -> &'static ([u8; 32], [u8; 32]) {
    static KEYS: OnceLock<([u8; 32], [u8; 32])> = OnceLock::new();
    KEYS.get_or_init(|| (blake3::derive_key(LEAF_TAG, &[]), blake3::derive_key(NODE_TAG, &[])))
}

/// The hash of one leaf's bytes (RFC 9162: `HASH(0x00 || d)`).
pub fn leaf_hash(suite: Suite, data: &[u8]) -> Hash {
    match suite {
        Suite::Ed25519Blake3 => Hash(*blake3::keyed_hash(&keys().0, data).as_bytes()),
        Suite::Sm2Sm3 => Hash::of(suite, LEAF_TAG, data),
    }
}

/// The hash of an inner node (RFC 9162: `HASH(0x01 || left || right)`), for BLAKE3 one
/// 64-byte block.
pub fn node_hash(suite: Suite, left: &Hash, right: &Hash) -> Hash {
    let mut block = [0u8; 64];
    block[..32].copy_from_slice(&left.0);
    block[32..].copy_from_slice(&right.0);
    match suite {
        Suite::Ed25519Blake3 => Hash(*blake3::keyed_hash(&keys().1, &block).as_bytes()),
        Suite::Sm2Sm3 => Hash::of(suite, NODE_TAG, &block),
    }
}

/// The root of the empty log.
pub fn empty_root(suite: Suite) -> Hash {
    leaf_hash(suite, &[])
}

/// The largest power of two strictly below `n` (n ≥ 2).
fn split(n: u64) -> u64 {
    1 << (63 - (n - 1).leading_zeros())
}

/// Where a log's complete subtrees come from: `node(level, index)` is the root of leaves
/// `[index·2^level, (index+1)·2^level)`, or `None` if the source does not hold it; `suite`
/// is the hash they were made with.
pub trait LogNodes {
    fn suite(&self) -> Suite;
    fn node(&self, level: u32, index: u64) -> Option<Hash>;
}

/// `MTH(D[start..end))` for a range whose left parts are aligned complete subtrees, as every
/// range in RFC 9162's recursions is.
pub fn range_root(nodes: &dyn LogNodes, start: u64, end: u64) -> Option<Hash> {
    let n = end - start;
    if n == 0 {
        return Some(empty_root(nodes.suite()));
    }
    if n.is_power_of_two() && start.is_multiple_of(n) {
        return nodes.node(n.trailing_zeros(), start >> n.trailing_zeros());
    }
    let k = split(n);
    Some(node_hash(nodes.suite(), &range_root(nodes, start, start + k)?, &range_root(nodes, start + k, end)?))
}

/// The root of the log's first `size` leaves.
pub fn root(nodes: &dyn LogNodes, size: u64) -> Option<Hash> {
    range_root(nodes, 0, size)
}

/// A proof that leaf `index` is in the log of `size` leaves.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct InclusionProof {
    pub index: u64,
    pub size: u64,
    /// Sibling hashes from the leaf up.
    pub path: Vec<Hash>,
}

/// A proof that the log of `from` leaves is a prefix of the log of `to` leaves.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct ConsistencyProof {
    pub from: u64,
    pub to: u64,
    pub path: Vec<Hash>,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LogProofError {
    #[error("leaf {index} is not in a log of {size} leaves")]
    IndexOutOfRange { index: u64, size: u64 },
    #[error("a log of {to} leaves cannot extend one of {from}")]
    Shrunk { from: u64, to: u64 },
    #[error("the proof has {actual} hashes; a proof of this shape has {expected}")]
    PathLength { actual: usize, expected: usize },
    #[error("the proof leads to root {computed}, not the certified {expected}")]
    RootMismatch { expected: Hash, computed: Hash },
    #[error("the proof does not lead to the earlier root {expected} (computed {computed}): the log was rewritten")]
    OldRootMismatch { expected: Hash, computed: Hash },
    #[error(
        "the proof does not lead to the later root {expected} (computed {computed}): the later log does not extend the earlier one"
    )]
    NotExtended { expected: Hash, computed: Hash },
}

/// The number of hashes an inclusion proof for `index` in a log of `size` has: one per
/// iteration of the RFC's verifier until the last node's index reaches 0 (index < size).
fn inclusion_len(index: u64, size: u64) -> usize {
    let (mut fnode, mut snode, mut count) = (index, size - 1, 0usize);
    while snode > 0 {
        count += 1;
        if fnode & 1 == 0 && fnode == snode {
            while fnode & 1 == 0 && fnode != 0 {
                fnode >>= 1;
                snode >>= 1;
            }
        }
        fnode >>= 1;
        snode >>= 1;
    }
    count
}

impl InclusionProof {
    /// Checks that a leaf with hash `leaf` is at `self.index` in the log whose root is `root`
    /// at `self.size` leaves (RFC 9162, 2.1.3.2).
    pub fn verify(&self, suite: Suite, leaf: &Hash, root: &Hash) -> Result<(), LogProofError> {
        let (index, size) = (self.index, self.size);
        if index >= size {
            return Err(LogProofError::IndexOutOfRange { index, size });
        }
        let expected = inclusion_len(index, size);
        if self.path.len() != expected {
            return Err(LogProofError::PathLength { actual: self.path.len(), expected });
        }
        let (mut fnode, mut snode, mut r) = (index, size - 1, *leaf);
        for p in &self.path {
            if fnode & 1 == 1 || fnode == snode {
                r = node_hash(suite, p, &r);
                if fnode & 1 == 0 {
                    while fnode & 1 == 0 && fnode != 0 {
                        fnode >>= 1;
                        snode >>= 1;
                    }
                }
            } else {
                r = node_hash(suite, &r, p);
            }
            fnode >>= 1;
            snode >>= 1;
        }
        if r != *root {
            return Err(LogProofError::RootMismatch { expected: *root, computed: r });
        }
        Ok(())
    }
}

impl ConsistencyProof {
    /// Checks that the log with root `old` at `self.from` leaves is a prefix of the log with
    /// root `new` at `self.to` leaves (RFC 9162, 2.1.4.2).
    pub fn verify(&self, suite: Suite, old: &Hash, new: &Hash) -> Result<(), LogProofError> {
        let (from, to) = (self.from, self.to);
        if from > to {
            return Err(LogProofError::Shrunk { from, to });
        }
        if from == 0 || from == to {
            if !self.path.is_empty() {
                return Err(LogProofError::PathLength { actual: self.path.len(), expected: 0 });
            }
            let expected_old = if from == 0 { empty_root(suite) } else { *new };
            if *old != expected_old {
                return Err(LogProofError::OldRootMismatch { expected: *old, computed: expected_old });
            }
            return Ok(());
        }
        let mut path: Vec<Hash> = Vec::with_capacity(self.path.len() + 1);
        if from.is_power_of_two() {
            path.push(*old);
        }
        path.extend_from_slice(&self.path);
        let (mut fnode, mut snode) = (from - 1, to - 1);
        while fnode & 1 == 1 {
            fnode >>= 1;
            snode >>= 1;
        }
        let Some((first, rest)) = path.split_first() else {
            return Err(LogProofError::PathLength { actual: 0, expected: 1 });
        };
        let (mut fr, mut sr) = (*first, *first);
        for c in rest {
            if snode == 0 {
                return Err(LogProofError::PathLength { actual: self.path.len(), expected: self.path.len() - 1 });
            }
            if fnode & 1 == 1 || fnode == snode {
                fr = node_hash(suite, c, &fr);
                sr = node_hash(suite, c, &sr);
                if fnode & 1 == 0 {
                    while fnode & 1 == 0 && fnode != 0 {
                        fnode >>= 1;
                        snode >>= 1;
                    }
                }
            } else {
                sr = node_hash(suite, &sr, c);
            }
            fnode >>= 1;
            snode >>= 1;
        }
        if snode != 0 {
            return Err(LogProofError::PathLength { actual: self.path.len(), expected: self.path.len() + 1 });
        }
        if fr != *old {
            return Err(LogProofError::OldRootMismatch { expected: *old, computed: fr });
        }
        if sr != *new {
            return Err(LogProofError::NotExtended { expected: *new, computed: sr });
        }
        Ok(())
    }
}

/// The inclusion proof of leaf `index` in the log of `size` leaves (RFC 9162 `PATH`).
pub fn prove_inclusion(nodes: &dyn LogNodes, index: u64, size: u64) -> Option<InclusionProof> {
    if index >= size {
        return None;
    }
    let mut path = Vec::new();
    path_of(nodes, index, 0, size, &mut path)?;
    Some(InclusionProof { index, size, path })
}

fn path_of(nodes: &dyn LogNodes, m: u64, start: u64, end: u64, out: &mut Vec<Hash>) -> Option<()> {
    let n = end - start;
    if n <= 1 {
        return Some(());
    }
    let k = split(n);
    if m < k {
        path_of(nodes, m, start, start + k, out)?;
        out.push(range_root(nodes, start + k, end)?);
    } else {
        path_of(nodes, m - k, start + k, end, out)?;
        out.push(range_root(nodes, start, start + k)?);
    }
    Some(())
}

/// The consistency proof from `from` leaves to `to` leaves (RFC 9162 `PROOF`).
pub fn prove_consistency(nodes: &dyn LogNodes, from: u64, to: u64) -> Option<ConsistencyProof> {
    if from > to {
        return None;
    }
    let mut path = Vec::new();
    if from > 0 && from < to {
        subproof(nodes, from, 0, to, true, &mut path)?;
    }
    Some(ConsistencyProof { from, to, path })
}

fn subproof(nodes: &dyn LogNodes, m: u64, start: u64, end: u64, whole: bool, out: &mut Vec<Hash>) -> Option<()> {
    let n = end - start;
    if m == n {
        if !whole {
            out.push(range_root(nodes, start, end)?);
        }
        return Some(());
    }
    let k = split(n);
    if m <= k {
        subproof(nodes, m, start, start + k, whole, out)?;
        out.push(range_root(nodes, start + k, end)?);
    } else {
        subproof(nodes, m - k, start + k, end, false, out)?;
        out.push(range_root(nodes, start, start + k)?);
    }
    Some(())
}

/// A log held in memory, level by level: for tests, tools and a gateway's own batches.
#[derive(Debug, Clone)]
pub struct MemoryLog {
    suite: Suite,
    levels: Vec<Vec<Hash>>,
}

impl MemoryLog {
    pub fn new(suite: Suite) -> MemoryLog {
        MemoryLog { suite, levels: Vec::new() }
    }

    pub fn size(&self) -> u64 {
        self.levels.first().map_or(0, |l| l.len() as u64)
    }

    /// Appends a leaf by its hash and returns its index.
    pub fn push(&mut self, leaf: Hash) -> u64 {
        let index = self.size();
        let mut hash = leaf;
        let mut i = index;
        for level in 0.. {
            if self.levels.len() <= level {
                self.levels.push(Vec::new());
            }
            self.levels[level].push(hash);
            if i & 1 == 0 {
                break;
            }
            let left = self.levels[level][(i - 1) as usize];
            hash = node_hash(self.suite, &left, &hash);
            i >>= 1;
        }
        index
    }

    pub fn root(&self) -> Hash {
        root(self, self.size()).expect("a memory log holds every complete subtree")
    }
}

impl LogNodes for MemoryLog {
    fn suite(&self) -> Suite {
        self.suite
    }

    fn node(&self, level: u32, index: u64) -> Option<Hash> {
        self.levels.get(level as usize)?.get(usize::try_from(index).ok()?).copied()
    }
}

impl Encode for InclusionProof {
    fn encode_to(&self, out: &mut Vec<u8>) {
        write::u64(out, self.index);
        write::u64(out, self.size);
        write::seq(out, &self.path, |out, h| h.encode_to(out));
    }
}

impl Decode for InclusionProof {
    fn decode_from(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        Ok(InclusionProof {
            index: r.u64()?,
            size: r.u64()?,
            path: r.seq("inclusion_proof.path", PATH_MAX as u32, Hash::decode_from)?,
        })
    }
}

impl Encode for ConsistencyProof {
    fn encode_to(&self, out: &mut Vec<u8>) {
        write::u64(out, self.from);
        write::u64(out, self.to);
        write::seq(out, &self.path, |out, h| h.encode_to(out));
    }
}

impl Decode for ConsistencyProof {
    fn decode_from(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        Ok(ConsistencyProof {
            from: r.u64()?,
            to: r.u64()?,
            path: r.seq("consistency_proof.path", PATH_MAX as u32, Hash::decode_from)?,
        })
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn log(suite: Suite, n: u64) -> MemoryLog {
        let mut log = MemoryLog::new(suite);
        for i in 0..n {
            log.push(leaf_hash(suite, format!("leaf {i}").as_bytes()));
        }
        log
    }

    /// MTH straight from RFC 9162's definition, over leaf hashes.
    fn mth(suite: Suite, leaves: &[Hash]) -> Hash {
        match leaves.len() {
            0 => empty_root(suite),
            1 => leaves[0],
            n => {
                let k = split(n as u64) as usize;
                node_hash(suite, &mth(suite, &leaves[..k]), &mth(suite, &leaves[k..]))
            }
        }
    }

    #[test]
    fn roots_match_the_rfc_definition_at_every_size() {
        for &suite in Suite::ALL {
            let full = log(suite, 70);
            let leaves: Vec<Hash> = (0..70).map(|i| full.node(0, i).unwrap()).collect();
            for n in 0..=70u64 {
                assert_eq!(root(&full, n).unwrap(), mth(suite, &leaves[..n as usize]), "size {n}");
            }
        }
    }

    #[test]
    fn every_inclusion_proves_and_a_changed_leaf_path_or_root_is_caught() {
        for &suite in Suite::ALL {
            let full = log(suite, 37);
            for size in 1..=37u64 {
                let r = root(&full, size).unwrap();
                for index in 0..size {
                    let leaf = full.node(0, index).unwrap();
                    let proof = prove_inclusion(&full, index, size).unwrap();
                    proof.verify(suite, &leaf, &r).unwrap();
                    let other = leaf_hash(suite, b"forged");
                    assert!(matches!(proof.verify(suite, &other, &r), Err(LogProofError::RootMismatch { .. })));
                    if !proof.path.is_empty() {
                        let mut bad = proof.clone();
                        bad.path[0].0[5] ^= 0x40;
                        assert!(matches!(bad.verify(suite, &leaf, &r), Err(LogProofError::RootMismatch { .. })));
                        let mut short = proof.clone();
                        short.path.pop();
                        assert!(matches!(short.verify(suite, &leaf, &r), Err(LogProofError::PathLength { .. })));
                    }
                }
                let beyond = InclusionProof { index: size, size, path: Vec::new() };
                assert_eq!(beyond.verify(suite, &r, &r), Err(LogProofError::IndexOutOfRange { index: size, size }));
            }
        }
    }

    #[test]
    fn every_consistency_proves_and_a_rewritten_log_is_caught() {
        for &suite in Suite::ALL {
            let full = log(suite, 33);
            let mut rewritten = MemoryLog::new(suite);
            for i in 0..33u64 {
                let data = if i == 4 { "rewritten".to_string() } else { format!("leaf {i}") };
                rewritten.push(leaf_hash(suite, data.as_bytes()));
            }
            for to in 0..=33u64 {
                let new = root(&full, to).unwrap();
                for from in 0..=to {
                    let old = root(&full, from).unwrap();
                    let proof = prove_consistency(&full, from, to).unwrap();
                    proof.verify(suite, &old, &new).unwrap_or_else(|e| panic!("{from} -> {to}: {e}"));
                    // The same sizes, but the later log rewrote leaf 4: its proof cannot join
                    // the earlier root.
                    if from > 4 {
                        let forged = prove_consistency(&rewritten, from, to).unwrap();
                        let forged_new = root(&rewritten, to).unwrap();
                        assert!(
                            matches!(
                                forged.verify(suite, &old, &forged_new),
                                Err(LogProofError::OldRootMismatch { .. } | LogProofError::NotExtended { .. })
                            ),
                            "{from} -> {to}"
                        );
                    }
                }
            }
            let shrunk = ConsistencyProof { from: 5, to: 4, path: Vec::new() };
            assert_eq!(
                shrunk.verify(suite, &empty_root(suite), &empty_root(suite)),
                Err(LogProofError::Shrunk { from: 5, to: 4 })
            );
        }
    }

    #[test]
    fn proofs_round_trip_the_codec() {
        for &suite in Suite::ALL {
            let full = log(suite, 21);
            let inclusion = prove_inclusion(&full, 13, 21).unwrap();
            assert_eq!(InclusionProof::decode(&inclusion.encode()).unwrap(), inclusion);
            let consistency = prove_consistency(&full, 6, 21).unwrap();
            assert_eq!(ConsistencyProof::decode(&consistency.encode()).unwrap(), consistency);
        }
    }
}
