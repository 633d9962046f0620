//! State sync's snapshot of the state tree, as it travels and as a joining node checks it
//! without trusting the sender (ADR 014, "State sync"). The serving side, which reads a
//! snapshot out of the versioned tree, is `shutong_execution::snapshot`.
//!
//! The state root depends only on the set of (key, value) pairs ([`crate::smt`]), so the
//! tree splits into `16^n` subtrees by the first `n` nibbles of the key hashes:
//! - the [`Manifest`] gives, for each such prefix, what its subtree holds ([`Subtree`]:
//!   nothing, one leaf, or more, with its hash). Folded up, they must give the state root a
//!   certified header commits to, so the manifest is checked once, against the header;
//! - a chunk is every (key, value) under one prefix, in key-hash order. Hashed back into its
//!   subtree, it must give the manifest's entry for that prefix exactly, so each chunk is
//!   checked on its own, as it arrives, from any peer. A chunk that was cut, padded, edited
//!   or moved to another prefix fails, and says which.

use crate::hash::Hash;
use crate::smt::{self, Subtree};
use crate::suite::Suite;
use shutong_codec::{Decode, DecodeError, Encode, Reader, write};

/// The most nibbles a manifest may split on: 4,096 chunks.
pub const NIBBLES_MAX: u8 = 3;

/// A chunk's entries: (key, value) pairs in key-hash order.
pub type Entries = Vec<(Vec<u8>, Vec<u8>)>;

/// What a snapshot's chunks must add up to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Manifest {
    /// The state version: the state after this block, which header `version + 1` commits.
    pub version: u64,
    /// How many nibbles of the key hash name a chunk (0 to [`NIBBLES_MAX`]).
    pub nibbles: u8,
    /// One per prefix, in prefix order: `16^nibbles` of them.
    pub subtrees: Vec<Subtree>,
}

impl Encode for Manifest {
    fn encode_to(&self, out: &mut Vec<u8>) {
        write::u64(out, self.version);
        write::u8(out, self.nibbles);
        write::seq(out, &self.subtrees, |out, s| s.encode_to(out));
    }
}

impl Decode for Manifest {
    fn decode_from(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        let version = r.u64()?;
        let nibbles = r.u8()?;
        if nibbles > NIBBLES_MAX {
            return Err(DecodeError::TooLong {
                what: "manifest.nibbles",
                len: nibbles.into(),
                max: NIBBLES_MAX.into(),
            });
        }
        let subtrees = r.seq("manifest.subtrees", 16u32.pow(nibbles.into()), Subtree::decode_from)?;
        Ok(Manifest { version, nibbles, subtrees })
    }
}

/// Why a snapshot's piece is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SnapshotError {
    #[error("the manifest has {found} subtrees, and {nibbles} nibbles need {needed}")]
    ManifestShape { nibbles: u8, found: usize, needed: usize },
    #[error("the manifest folds to state root {found}, not the {expected} the certified header commits to")]
    ManifestRoot { expected: Hash, found: Hash },
    #[error("chunk {index} does not exist: the manifest has {chunks}")]
    NoSuchChunk { index: usize, chunks: usize },
    #[error("chunk {index} holds key {key} whose hash is not under its prefix")]
    OutsidePrefix { index: usize, key: String },
    #[error("chunk {index} is not in key-hash order, or holds a key twice (at key {key})")]
    Order { index: usize, key: String },
    #[error(
        "chunk {index} hashes to {found:?}, and the manifest says {expected:?}: a leaf is missing, added or altered"
    )]
    ChunkMismatch { index: usize, expected: Subtree, found: Subtree },
}

/// Nibble `i` of a key hash.
pub fn nibble(hash: &Hash, i: usize) -> usize {
    let byte = hash.0[i / 2];
    (if i.is_multiple_of(2) { byte >> 4 } else { byte & 0x0f }) as usize
}

/// The prefix index of `hash` among `16^nibbles`.
pub fn prefix_of(hash: &Hash, nibbles: u8) -> usize {
    (0..nibbles as usize).fold(0, |acc, i| acc * 16 + nibble(hash, i))
}

/// Checks a manifest against the state root a certified header commits to.
pub fn verify_manifest(suite: Suite, state_root: &Hash, manifest: &Manifest) -> Result<(), SnapshotError> {
    let needed = 16usize.pow(manifest.nibbles.min(NIBBLES_MAX).into());
    if manifest.nibbles > NIBBLES_MAX || manifest.subtrees.len() != needed {
        return Err(SnapshotError::ManifestShape { nibbles: manifest.nibbles, found: manifest.subtrees.len(), needed });
    }
    let found = Subtree::fold(suite, manifest.subtrees.clone()).map_or(smt::EMPTY, |s| s.hash());
    if found != *state_root {
        return Err(SnapshotError::ManifestRoot { expected: *state_root, found });
    }
    Ok(())
}

/// Checks chunk `index` against a manifest already checked by [`verify_manifest`].
pub fn verify_chunk(
    suite: Suite,
    manifest: &Manifest,
    index: usize,
    entries: &[(Vec<u8>, Vec<u8>)],
) -> Result<(), SnapshotError> {
    let expected =
        *manifest.subtrees.get(index).ok_or(SnapshotError::NoSuchChunk { index, chunks: manifest.subtrees.len() })?;
    let mut leaves = Vec::with_capacity(entries.len());
    for (key, value) in entries {
        let key_hash = smt::key_hash(suite, key);
        let shown = || hex::encode(&key[..key.len().min(64)]);
        if prefix_of(&key_hash, manifest.nibbles) != index {
            return Err(SnapshotError::OutsidePrefix { index, key: shown() });
        }
        if leaves.last().is_some_and(|(last, _)| *last >= key_hash) {
            return Err(SnapshotError::Order { index, key: shown() });
        }
        leaves.push((key_hash, smt::value_hash(suite, value)));
    }
    let found = Subtree::of_leaves(suite, &leaves, 4 * manifest.nibbles as usize);
    if found != expected {
        return Err(SnapshotError::ChunkMismatch { index, expected, found });
    }
    Ok(())
}
