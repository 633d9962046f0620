//! The authenticated state map: a compact binary sparse Merkle tree over the suite's hash
//! (BLAKE3 or SM3), keyed by the hash of each state key.
//!
//! The tree is defined over the 256-bit key hashes (bit 0 is the top bit of byte 0):
//! - an empty subtree hashes to [`EMPTY`] (32 zero bytes, which no blake3 output equals in
//!   practice);
//! - a subtree that holds exactly one leaf hashes to that leaf's hash, wherever the leaf sits
//!   (the path above a lone leaf is compressed away);
//! - any other subtree hashes to `node_hash(left, right)`.
//!
//! So the root depends only on the set of (key, value) pairs, never on the order they were
//! written in, and a proof is the leaf found on the key's path (or none) plus one sibling per
//! level down to it: about log2(number of keys) hashes. Leaves, inner nodes, keys and values
//! are hashed in four domains (four BLAKE3 keys, or four SM3 tags), so no hash of one kind
//! can pass for another.
//! The node stores the tree sixteen children to a node (as Jellyfish does); that is a storage
//! layout and changes no hash.

use crate::hash::Hash;
use crate::suite::Suite;
use shutong_codec::{Decode, DecodeError, Encode, Reader, write};
use std::sync::OnceLock;

/// The hash of an empty subtree.
pub const EMPTY: Hash = Hash::ZERO;

/// No proof is deeper than the key hash is long.
pub const DEPTH_MAX: usize = 256;

struct Keys {
    key: [u8; 32],
    value: [u8; 32],
    leaf: [u8; 32],
    node: [u8; 32],
}

const KEY_TAG: &str = "shutong/state-tree/key/v1";
const VALUE_TAG: &str = "shutong/state-tree/value/v1";
const LEAF_TAG: &str = "shutong/state-tree/leaf/v1";
const NODE_TAG: &str = "shutong/state-tree/node/v1";

fn keys() -> &'static Keys {
    static KEYS: OnceLock<Keys> = OnceLock::new();
    KEYS.get_or_init(|| Keys {
        key: blake3::derive_key(KEY_TAG, &[]),
        value: blake3::derive_key(VALUE_TAG, &[]),
        leaf: blake3::derive_key(LEAF_TAG, &[]),
        node: blake3::derive_key(NODE_TAG, &[]),
    })
}

/// `data` in one of the tree's domains: BLAKE3 keyed with the tag's derived key, or SM3
/// under the tag ([`Hash::of`]).
fn domain(suite: Suite, tag: &'static str, key: fn(&Keys) -> &[u8; 32], data: &[u8]) -> Hash {
    match suite {
        Suite::Ed25519Blake3 => Hash(*blake3::keyed_hash(key(keys()), data).as_bytes()),
        Suite::Sm2Sm3 => Hash::of(suite, tag, data),
    }
}

/// Where a state key sits in the tree.
pub fn key_hash(suite: Suite, key: &[u8]) -> Hash {
    domain(suite, KEY_TAG, |k| &k.key, key)
}

pub fn value_hash(suite: Suite, value: &[u8]) -> Hash {
    domain(suite, VALUE_TAG, |k| &k.value, value)
}

/// Two hashes as one 64-byte block (for BLAKE3, one compression and no streaming state).
fn pair(suite: Suite, tag: &'static str, key: fn(&Keys) -> &[u8; 32], left: &Hash, right: &Hash) -> Hash {
    let mut block = [0u8; 64];
    block[..32].copy_from_slice(&left.0);
    block[32..].copy_from_slice(&right.0);
    domain(suite, tag, key, &block)
}

pub fn leaf_hash(suite: Suite, key_hash: &Hash, value_hash: &Hash) -> Hash {
    pair(suite, LEAF_TAG, |k| &k.leaf, key_hash, value_hash)
}

pub fn node_hash(suite: Suite, left: &Hash, right: &Hash) -> Hash {
    pair(suite, NODE_TAG, |k| &k.node, left, right)
}

/// Bit `i` of a key hash, counted from the top bit of the first byte.
pub fn bit(hash: &Hash, i: usize) -> bool {
    hash.0[i / 8] & (0x80 >> (i % 8)) != 0
}

/// The leaf a proof ends at: the key's own, or another key's leaf where the key's would be.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct ProofLeaf {
    pub key_hash: Hash,
    pub value_hash: Hash,
}

/// A proof that a key has a value, or has none, under a state root.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct StateProof {
    /// The leaf on the key's path, if the path ends at a leaf rather than an empty subtree.
    pub leaf: Option<ProofLeaf>,
    /// The sibling of each subtree on the key's path, from the root down.
    pub siblings: Vec<Hash>,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum StateProofError {
    #[error("the proof has {0} levels; no key hash has more than 256 bits")]
    TooDeep(usize),
    #[error("the proof shows no value for the key, but the answer claims one")]
    MissingValue,
    #[error("the proof's leaf is for another key, but the answer claims the key has a value")]
    OtherKey,
    #[error("the value's hash {actual} is not the proof leaf's {proven}: the value was changed")]
    ValueMismatch { proven: Hash, actual: Hash },
    #[error("the proof shows the key holds a value, but the answer claims it has none")]
    PresentKey,
    #[error("the proof's leaf does not lie on the key's path")]
    LeafOffPath,
    #[error("the proof leads to root {computed}, not the certified {expected}")]
    RootMismatch { expected: Hash, computed: Hash },
}

impl StateProof {
    /// Checks that under `root` of a chain of `suite`, `key` holds `value` (or, for `None`,
    /// holds nothing).
    pub fn verify(&self, suite: Suite, root: &Hash, key: &[u8], value: Option<&[u8]>) -> Result<(), StateProofError> {
        let depth = self.siblings.len();
        if depth > DEPTH_MAX {
            return Err(StateProofError::TooDeep(depth));
        }
        let kh = key_hash(suite, key);
        match (value, &self.leaf) {
            (Some(_), None) => return Err(StateProofError::MissingValue),
            (Some(value), Some(leaf)) => {
                if leaf.key_hash != kh {
                    return Err(StateProofError::OtherKey);
                }
                let actual = value_hash(suite, value);
                if actual != leaf.value_hash {
                    return Err(StateProofError::ValueMismatch { proven: leaf.value_hash, actual });
                }
            }
            (None, Some(leaf)) => {
                if leaf.key_hash == kh {
                    return Err(StateProofError::PresentKey);
                }
                // Another key's leaf can stand where this key's would be only if both share
                // the path down to it.
                if (0..depth).any(|i| bit(&leaf.key_hash, i) != bit(&kh, i)) {
                    return Err(StateProofError::LeafOffPath);
                }
            }
            (None, None) => {}
        }
        let computed = self.root_for(suite, &kh);
        if computed != *root {
            return Err(StateProofError::RootMismatch { expected: *root, computed });
        }
        Ok(())
    }

    /// The root these siblings lead to from the proof's leaf along `key_hash`'s path.
    pub fn root_for(&self, suite: Suite, key_hash: &Hash) -> Hash {
        let mut current = match &self.leaf {
            Some(leaf) => leaf_hash(suite, &leaf.key_hash, &leaf.value_hash),
            None => EMPTY,
        };
        for (i, sibling) in self.siblings.iter().enumerate().rev() {
            current = if bit(key_hash, i) {
                node_hash(suite, sibling, &current)
            } else {
                node_hash(suite, &current, sibling)
            };
        }
        current
    }
}

impl Encode for StateProof {
    fn encode_to(&self, out: &mut Vec<u8>) {
        write::option(out, &self.leaf, |out, leaf| {
            leaf.key_hash.encode_to(out);
            leaf.value_hash.encode_to(out);
        });
        write::seq(out, &self.siblings, |out, h| h.encode_to(out));
    }
}

impl Decode for StateProof {
    fn decode_from(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        let leaf = r.option("state_proof.leaf", |r| {
            Ok(ProofLeaf { key_hash: Hash::decode_from(r)?, value_hash: Hash::decode_from(r)? })
        })?;
        let siblings = r.seq("state_proof.siblings", DEPTH_MAX as u32, Hash::decode_from)?;
        Ok(StateProof { leaf, siblings })
    }
}

/// The root of the tree holding exactly `entries`, computed from scratch: the definition the
/// node's incremental tree must agree with (tests and tools, not the node's hot path).
pub fn root_of<'a>(suite: Suite, entries: impl IntoIterator<Item = (&'a [u8], &'a [u8])>) -> Hash {
    let mut leaves: Vec<(Hash, Hash)> =
        entries.into_iter().map(|(k, v)| (key_hash(suite, k), value_hash(suite, v))).collect();
    leaves.sort_unstable_by_key(|(k, _)| *k);
    leaves.dedup_by_key(|(k, _)| *k);
    subtree_root(suite, &leaves, 0)
}

fn subtree_root(suite: Suite, leaves: &[(Hash, Hash)], depth: usize) -> Hash {
    match leaves {
        [] => EMPTY,
        [(k, v)] => leaf_hash(suite, k, v),
        _ => {
            let split = leaves.partition_point(|(k, _)| !bit(k, depth));
            let left = subtree_root(suite, &leaves[..split], depth + 1);
            node_hash(suite, &left, &subtree_root(suite, &leaves[split..], depth + 1))
        }
    }
}

/// What a subtree holds, as far as the hash above it is concerned: nothing, one leaf
/// (whose hash is the subtree's, wherever it sits), or more (the node over its halves).
/// State sync checks a snapshot's chunks and its manifest with these.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Subtree {
    Empty,
    Lone(Hash),
    Many(Hash),
}

impl Subtree {
    pub fn hash(&self) -> Hash {
        match self {
            Subtree::Empty => EMPTY,
            Subtree::Lone(hash) | Subtree::Many(hash) => *hash,
        }
    }

    /// The subtree over two sibling subtrees.
    pub fn join(suite: Suite, left: Subtree, right: Subtree) -> Subtree {
        match (left, right) {
            (Subtree::Empty, Subtree::Empty) => Subtree::Empty,
            (Subtree::Lone(hash), Subtree::Empty) | (Subtree::Empty, Subtree::Lone(hash)) => Subtree::Lone(hash),
            (left, right) => Subtree::Many(node_hash(suite, &left.hash(), &right.hash())),
        }
    }

    /// The subtree holding exactly `leaves` (key hash, value hash), every key hash sharing
    /// its first `depth` bits: sorted by key hash and without a key twice.
    pub fn of_leaves(suite: Suite, leaves: &[(Hash, Hash)], depth: usize) -> Subtree {
        match leaves {
            [] => Subtree::Empty,
            [(k, v)] => Subtree::Lone(leaf_hash(suite, k, v)),
            _ => Subtree::Many(subtree_root(suite, leaves, depth)),
        }
    }

    /// Folds a level of `2^k` sibling subtrees, left to right, up to the one over them all.
    /// `None` if the level is empty or not a power of two long.
    pub fn fold(suite: Suite, mut level: Vec<Subtree>) -> Option<Subtree> {
        if !level.len().is_power_of_two() {
            return None;
        }
        while level.len() > 1 {
            level = level.chunks(2).map(|pair| Subtree::join(suite, pair[0], pair[1])).collect();
        }
        level.pop()
    }
}

impl Encode for Subtree {
    fn encode_to(&self, out: &mut Vec<u8>) {
        match self {
            Subtree::Empty => write::u8(out, 0),
            Subtree::Lone(hash) => {
                write::u8(out, 1);
                hash.encode_to(out);
            }
            Subtree::Many(hash) => {
                write::u8(out, 2);
                hash.encode_to(out);
            }
        }
    }
}

impl Decode for Subtree {
    fn decode_from(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        match r.u8()? {
            0 => Ok(Subtree::Empty),
            1 => Ok(Subtree::Lone(Hash::decode_from(r)?)),
            2 => Ok(Subtree::Many(Hash::decode_from(r)?)),
            tag => Err(DecodeError::InvalidTag { what: "subtree.kind", tag }),
        }
    }
}

/// A proof for `key` in the tree holding exactly `entries`, built from scratch (tests and
/// tools; the node builds proofs from its stored nodes).
pub fn prove_in<'a>(suite: Suite, entries: impl IntoIterator<Item = (&'a [u8], &'a [u8])>, key: &[u8]) -> StateProof {
    let mut leaves: Vec<(Hash, Hash)> =
        entries.into_iter().map(|(k, v)| (key_hash(suite, k), value_hash(suite, v))).collect();
    leaves.sort_unstable_by_key(|(k, _)| *k);
    leaves.dedup_by_key(|(k, _)| *k);
    let kh = key_hash(suite, key);
    let mut siblings = Vec::new();
    let mut range = &leaves[..];
    let mut depth = 0;
    while range.len() > 1 {
        let split = range.partition_point(|(k, _)| !bit(k, depth));
        let (left, right) = range.split_at(split);
        if bit(&kh, depth) {
            siblings.push(subtree_root(suite, left, depth + 1));
            range = right;
        } else {
            siblings.push(subtree_root(suite, right, depth + 1));
            range = left;
        }
        depth += 1;
    }
    let leaf = range.first().map(|(k, v)| ProofLeaf { key_hash: *k, value_hash: *v });
    StateProof { leaf, siblings }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn entries(n: usize) -> Vec<(Vec<u8>, Vec<u8>)> {
        (0..n).map(|i| (format!("key-{i}").into_bytes(), format!("value-{i}").into_bytes())).collect()
    }

    fn refs(e: &[(Vec<u8>, Vec<u8>)]) -> impl Iterator<Item = (&[u8], &[u8])> {
        e.iter().map(|(k, v)| (k.as_slice(), v.as_slice()))
    }

    #[test]
    fn present_and_absent_keys_prove_and_every_lie_is_named() {
        for &suite in Suite::ALL {
            let e = entries(50);
            let root = root_of(suite, refs(&e));
            for (k, v) in &e {
                let proof = prove_in(suite, refs(&e), k);
                proof.verify(suite, &root, k, Some(v)).unwrap();
                assert_eq!(proof.verify(suite, &root, k, None), Err(StateProofError::PresentKey));
                let lie = proof.verify(suite, &root, k, Some(b"other"));
                assert!(matches!(lie, Err(StateProofError::ValueMismatch { .. })), "{lie:?}");
            }
            for i in 0..50 {
                let absent = format!("absent-{i}").into_bytes();
                let proof = prove_in(suite, refs(&e), &absent);
                proof.verify(suite, &root, &absent, None).unwrap();
                let claim = proof.verify(suite, &root, &absent, Some(b"x"));
                assert!(matches!(claim, Err(StateProofError::MissingValue | StateProofError::OtherKey)), "{claim:?}");
            }
        }
    }

    #[test]
    fn a_changed_sibling_or_root_fails_with_the_roots_named() {
        for &suite in Suite::ALL {
            let e = entries(20);
            let root = root_of(suite, refs(&e));
            let (k, v) = &e[3];
            let mut proof = prove_in(suite, refs(&e), k);
            proof.siblings[0].0[0] ^= 1;
            assert!(
                matches!(proof.verify(suite, &root, k, Some(v)), Err(StateProofError::RootMismatch { expected, .. }) if expected == root)
            );
            let proof = prove_in(suite, refs(&e), k);
            let other = root_of(suite, refs(&e[1..]));
            assert!(matches!(proof.verify(suite, &other, k, Some(v)), Err(StateProofError::RootMismatch { .. })));
            let deep = StateProof { leaf: proof.leaf, siblings: vec![EMPTY; 257] };
            assert_eq!(deep.verify(suite, &root, k, Some(v)), Err(StateProofError::TooDeep(257)));
        }
    }

    #[test]
    fn the_root_is_the_set_not_the_order_and_the_empty_tree_proves_absence() {
        for &suite in Suite::ALL {
            let e = entries(30);
            let mut reversed = e.clone();
            reversed.reverse();
            assert_eq!(root_of(suite, refs(&e)), root_of(suite, refs(&reversed)));
            assert_ne!(root_of(suite, refs(&e)), root_of(suite, refs(&e[..29])));
            assert_eq!(root_of(suite, std::iter::empty()), EMPTY);
            prove_in(suite, std::iter::empty(), b"k").verify(suite, &EMPTY, b"k", None).unwrap();
            let one = entries(1);
            assert_eq!(
                root_of(suite, refs(&one)),
                leaf_hash(suite, &key_hash(suite, &one[0].0), &value_hash(suite, &one[0].1))
            );
        }
    }

    #[test]
    fn proofs_round_trip_the_codec() {
        for &suite in Suite::ALL {
            let e = entries(10);
            let proof = prove_in(suite, refs(&e), b"key-4");
            assert_eq!(StateProof::decode(&proof.encode()).unwrap(), proof);
        }
    }

    #[test]
    fn a_proof_of_one_suite_fails_under_the_other() {
        let e = entries(10);
        let root = root_of(Suite::Ed25519Blake3, refs(&e));
        assert_ne!(root, root_of(Suite::Sm2Sm3, refs(&e)));
        let proof = prove_in(Suite::Ed25519Blake3, refs(&e), b"key-4");
        proof.verify(Suite::Ed25519Blake3, &root, b"key-4", Some(b"value-4")).unwrap();
        assert!(proof.verify(Suite::Sm2Sm3, &root, b"key-4", Some(b"value-4")).is_err());
    }
}
