//! The authenticated state map, stored in RocksDB: the compact sparse Merkle tree of
//! [`shutong_types::smt`], laid out sixteen children to a node (Jellyfish-style) so that a
//! lookup or a proof in a tree of a million keys reads about five nodes.
//!
//! - Every node is immutable and stored under `(version, nibble path)`, where the version is
//!   the height of the block that wrote it. A block's changes write new nodes along the
//!   changed paths and leave every other node shared with the version before.
//! - The root of every version is stored at `(version, [])`, so the tree as of any retained
//!   height is found from its height alone.
//! - A node replaced at version v is recorded as stale since v: no tree of version ≥ v uses
//!   it, so pruning versions below v may delete it ([`TreeUpdate::stale`]).
//! - Leaves keep their key and value, so any retained version answers "what did key K hold
//!   at height h", with a proof.
//!
//! Inside a node, the sixteen children form a four-level binary subtree with the same
//! hashing as the whole tree (an empty half hashes to `EMPTY`, a half with one leaf to that
//! leaf), so a proof is binary: one sibling per bit, as [`StateProof`] expects.

use shutong_codec::{Decode, DecodeError, Encode, Reader, write};
use shutong_types::limits::{ARGS_BYTES_MAX, CODE_BYTES_MAX};
use shutong_types::smt::{self, EMPTY, ProofLeaf, StateProof};
use shutong_types::{Hash, Suite};
use shutong_vm::state::Writes;
use std::collections::HashMap;
use std::sync::Arc;

/// The longest path in nibbles (a 256-bit key hash).
const PATH_NIBBLES_MAX: usize = 64;
/// The largest key a stored leaf may hold: contract storage keys are far shorter.
const KEY_BYTES_MAX: u32 = 64 * 1024;
/// The largest value: code is the largest thing in state.
const VALUE_BYTES_MAX: u32 = if CODE_BYTES_MAX > ARGS_BYTES_MAX { CODE_BYTES_MAX } else { ARGS_BYTES_MAX };

/// Where a node is stored: the version that wrote it and its position as nibbles from the
/// root (each 0..16).
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct NodeKey {
    pub version: u64,
    pub path: Vec<u8>,
}

impl NodeKey {
    pub fn root(version: u64) -> NodeKey {
        NodeKey { version, path: Vec::new() }
    }

    fn child(version: u64, path: &[u8], nibble: u8) -> NodeKey {
        let mut p = Vec::with_capacity(path.len() + 1);
        p.extend_from_slice(path);
        p.push(nibble);
        NodeKey { version, path: p }
    }

    /// `version ‖ nibble count ‖ nibbles packed two to a byte`: nodes of one version sort
    /// together, so a block's nodes are written side by side and pruned by range.
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(9 + self.path.len().div_ceil(2));
        out.extend_from_slice(&self.version.to_be_bytes());
        out.push(self.path.len() as u8);
        for pair in self.path.chunks(2) {
            out.push(pair[0] << 4 | pair.get(1).copied().unwrap_or(0));
        }
        out
    }

    pub fn from_bytes(bytes: &[u8]) -> Option<NodeKey> {
        let version = u64::from_be_bytes(bytes.get(..8)?.try_into().ok()?);
        let len = *bytes.get(8)? as usize;
        let packed = bytes.get(9..)?;
        if len > PATH_NIBBLES_MAX || packed.len() != len.div_ceil(2) {
            return None;
        }
        let path = (0..len).map(|i| if i % 2 == 0 { packed[i / 2] >> 4 } else { packed[i / 2] & 0x0f }).collect();
        Some(NodeKey { version, path })
    }
}

/// Nibble `i` of a key hash.
fn nibble(hash: &Hash, i: usize) -> u8 {
    let byte = hash.0[i / 2];
    if i.is_multiple_of(2) { byte >> 4 } else { byte & 0x0f }
}

/// A stored leaf: one key and its value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Leaf {
    pub key_hash: Hash,
    pub value_hash: Hash,
    pub key: Vec<u8>,
    pub value: Vec<u8>,
}

impl Leaf {
    fn new(suite: Suite, key: &[u8], key_hash: Hash, value: &[u8]) -> Leaf {
        Leaf { key_hash, value_hash: smt::value_hash(suite, value), key: key.to_vec(), value: value.to_vec() }
    }

    pub fn hash(&self, suite: Suite) -> Hash {
        smt::leaf_hash(suite, &self.key_hash, &self.value_hash)
    }
}

/// A reference from a node to a child: where it is stored, its hash, and whether it is a
/// leaf.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Child {
    pub version: u64,
    pub hash: Hash,
    pub leaf: bool,
}

/// A node with up to sixteen children, and the hashes of the binary subtree over them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Internal {
    children: [Option<Child>; 16],
    /// Heap-ordered: `[1]` spans all sixteen children, `[2]`, `[3]` the halves, `[4..8]` the
    /// quarters, `[8..16]` the pairs (`[0]` is unused). Derived from `children` when the node
    /// is made, so proofs and lookups never hash again.
    inner: [Hash; 16],
}

impl Internal {
    pub fn new(suite: Suite, children: [Option<Child>; 16]) -> Internal {
        let mut node = Internal { children, inner: [EMPTY; 16] };
        for idx in (1..16usize).rev() {
            let level = idx.ilog2() as usize;
            let width = 16 >> level;
            let lo = (idx - (1 << level)) * width;
            node.inner[idx] = match node.count(lo, lo + width) {
                (0, _) => EMPTY,
                (1, Some((_, child))) if child.leaf => child.hash,
                _ => smt::node_hash(
                    suite,
                    &node.range_hash(lo, lo + width / 2),
                    &node.range_hash(lo + width / 2, lo + width),
                ),
            };
        }
        node
    }

    pub fn children(&self) -> &[Option<Child>; 16] {
        &self.children
    }

    pub fn hash(&self) -> Hash {
        self.inner[1]
    }

    /// Children in `[lo, hi)`, and the first of them.
    fn count(&self, lo: usize, hi: usize) -> (usize, Option<(usize, Child)>) {
        let mut count = 0;
        let mut first = None;
        for (i, child) in self.children[lo..hi].iter().enumerate() {
            if let Some(child) = child {
                count += 1;
                first.get_or_insert((lo + i, *child));
            }
        }
        (count, first)
    }

    /// The hash of the binary subtree over children `[lo, hi)`, an aligned power-of-two
    /// range: a lone leaf's hash, `EMPTY` for none, else the node over its halves.
    fn range_hash(&self, lo: usize, hi: usize) -> Hash {
        let width = hi - lo;
        if width == 1 {
            return self.children[lo].map_or(EMPTY, |c| c.hash);
        }
        self.inner[16 / width + lo / width]
    }
}

/// A stored node.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Node {
    /// The root of an empty tree.
    Empty,
    Leaf(Arc<Leaf>),
    Internal(Internal),
}

impl Node {
    pub fn hash(&self, suite: Suite) -> Hash {
        match self {
            Node::Empty => EMPTY,
            Node::Leaf(leaf) => leaf.hash(suite),
            Node::Internal(node) => node.hash(),
        }
    }
}

impl Encode for Node {
    fn encode_to(&self, out: &mut Vec<u8>) {
        match self {
            Node::Empty => write::u8(out, 0),
            Node::Leaf(leaf) => {
                write::u8(out, 1);
                leaf.key_hash.encode_to(out);
                leaf.value_hash.encode_to(out);
                write::bytes(out, &leaf.key);
                write::bytes(out, &leaf.value);
            }
            Node::Internal(node) => {
                write::u8(out, 2);
                let (mut present, mut leaves) = (0u16, 0u16);
                for (i, child) in node.children.iter().enumerate() {
                    if let Some(child) = child {
                        present |= 1 << i;
                        if child.leaf {
                            leaves |= 1 << i;
                        }
                    }
                }
                write::u16(out, present);
                write::u16(out, leaves);
                for child in node.children.iter().flatten() {
                    write::u64(out, child.version);
                    child.hash.encode_to(out);
                }
            }
        }
    }
}

impl Node {
    /// Decodes a stored node of a tree over `suite` (an inner node's binary subtree hashes
    /// are recomputed, never read).
    pub fn decode_in(suite: Suite, bytes: &[u8]) -> Result<Node, DecodeError> {
        let mut r = Reader::new(bytes);
        let node = Node::decode_from(suite, &mut r)?;
        r.finish()?;
        Ok(node)
    }

    fn decode_from(suite: Suite, r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        match r.u8()? {
            0 => Ok(Node::Empty),
            1 => Ok(Node::Leaf(Arc::new(Leaf {
                key_hash: Hash::decode_from(r)?,
                value_hash: Hash::decode_from(r)?,
                key: r.byte_vec("tree_leaf.key", KEY_BYTES_MAX)?,
                value: r.byte_vec("tree_leaf.value", VALUE_BYTES_MAX)?,
            }))),
            2 => {
                let present = r.u16()?;
                let leaves = r.u16()?;
                if leaves & !present != 0 || present.count_ones() < 1 {
                    return Err(DecodeError::InvalidTag { what: "tree_node.children", tag: 2 });
                }
                let mut children: [Option<Child>; 16] = [None; 16];
                for (i, slot) in children.iter_mut().enumerate() {
                    if present & (1 << i) != 0 {
                        let version = r.u64()?;
                        let hash = Hash::decode_from(r)?;
                        *slot = Some(Child { version, hash, leaf: leaves & (1 << i) != 0 });
                    }
                }
                Ok(Node::Internal(Internal::new(suite, children)))
            }
            tag => Err(DecodeError::InvalidTag { what: "tree_node", tag }),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TreeError {
    #[error("state tree node {0:?} is missing: that height is pruned or the database is damaged")]
    Missing(NodeKey),
    #[error("state tree node {key:?} does not decode ({reason}): the database is damaged")]
    Corrupt { key: NodeKey, reason: String },
    #[error("state tree node {0:?} is not the kind its parent names: the database is damaged")]
    WrongKind(NodeKey),
}

/// Where tree nodes are read from: the database, or the database with uncommitted blocks'
/// nodes on top.
pub trait TreeReader: Send + Sync {
    /// The suite the tree hashes with.
    fn suite(&self) -> Suite;
    fn tree_node(&self, key: &NodeKey) -> Result<Option<Node>, TreeError>;
}

fn load(reader: &dyn TreeReader, key: &NodeKey) -> Result<Node, TreeError> {
    reader.tree_node(key)?.ok_or_else(|| TreeError::Missing(key.clone()))
}

fn load_internal(reader: &dyn TreeReader, key: &NodeKey) -> Result<Internal, TreeError> {
    match load(reader, key)? {
        Node::Internal(node) => Ok(node),
        _ => Err(TreeError::WrongKind(key.clone())),
    }
}

fn load_leaf(reader: &dyn TreeReader, key: &NodeKey) -> Result<Arc<Leaf>, TreeError> {
    match load(reader, key)? {
        Node::Leaf(leaf) => Ok(leaf),
        _ => Err(TreeError::WrongKind(key.clone())),
    }
}

/// What one block's writes do to the tree.
#[derive(Debug, Clone, Default)]
pub struct TreeUpdate {
    pub version: u64,
    pub root: Hash,
    /// The nodes this version writes.
    pub nodes: HashMap<NodeKey, Node>,
    /// The nodes this version replaces: stale since `version`.
    pub stale: Vec<NodeKey>,
}

/// One write, by key hash.
struct Write<'a> {
    key_hash: Hash,
    key: &'a [u8],
    value: Option<&'a [u8]>,
}

/// A subtree after the update, before its parent places it.
enum Sub {
    Empty,
    /// A lone leaf; `stored` is where it is stored now, if it is an old leaf.
    Leaf {
        leaf: Arc<Leaf>,
        stored: Option<NodeKey>,
    },
    /// An internal node, stored at `(version, its path)`.
    Internal {
        hash: Hash,
        version: u64,
    },
}

/// A child slot while a node is rebuilt.
enum Slot {
    Keep(Child),
    New(Sub),
}

struct Updater<'a> {
    reader: &'a dyn TreeReader,
    version: u64,
    out: TreeUpdate,
}

/// Applies `writes` to the tree of `version - 1` (none for version 0) and returns the nodes of
/// `version`.
pub fn update(reader: &dyn TreeReader, version: u64, writes: &Writes) -> Result<TreeUpdate, TreeError> {
    let mut sorted: Vec<Write<'_>> = writes
        .iter()
        .map(|(key, value)| Write { key_hash: smt::key_hash(reader.suite(), key), key, value: value.as_deref() })
        .collect();
    sorted.sort_unstable_by_key(|w| w.key_hash);
    let mut u = Updater { reader, version, out: TreeUpdate { version, ..TreeUpdate::default() } };
    let previous = match version.checked_sub(1) {
        None => Node::Empty,
        Some(before) => {
            let key = NodeKey::root(before);
            let node = load(reader, &key)?;
            u.out.stale.push(key);
            node
        }
    };
    let mut path = Vec::with_capacity(PATH_NIBBLES_MAX);
    let old_root = NodeKey::root(version.wrapping_sub(1));
    let sub = match previous {
        Node::Empty => u.merge(&mut path, None, &sorted)?,
        Node::Leaf(leaf) => u.merge(&mut path, Some((leaf, old_root)), &sorted)?,
        Node::Internal(node) if sorted.is_empty() => {
            // Nothing changes: the version still gets its own root node, a copy.
            let hash = node.hash();
            u.out.nodes.insert(NodeKey::root(version), Node::Internal(node));
            Sub::Internal { hash, version }
        }
        Node::Internal(node) => u.descend(&mut path, node, &sorted)?,
    };
    u.out.root = match sub {
        Sub::Empty => {
            u.out.nodes.insert(NodeKey::root(version), Node::Empty);
            EMPTY
        }
        Sub::Leaf { leaf, stored } => {
            // A lone leaf is the root, stored there (moved up if it was deeper).
            u.out.stale.extend(stored);
            let hash = leaf.hash(reader.suite());
            u.out.nodes.insert(NodeKey::root(version), Node::Leaf(leaf));
            hash
        }
        Sub::Internal { hash, .. } => hash,
    };
    // A node can be found stale twice (an old root leaf that is also overwritten).
    u.out.stale.sort_unstable();
    u.out.stale.dedup();
    Ok(u.out)
}

impl Updater<'_> {
    /// The subtree at `path` that held at most the leaf `existing`, after `writes`.
    fn merge(
        &mut self,
        path: &mut Vec<u8>,
        existing: Option<(Arc<Leaf>, NodeKey)>,
        writes: &[Write<'_>],
    ) -> Result<Sub, TreeError> {
        let mut leaves: Vec<(Arc<Leaf>, Option<NodeKey>)> = Vec::with_capacity(writes.len() + 1);
        let mut existing = existing;
        if let Some((leaf, key)) = &existing
            && writes.binary_search_by_key(&leaf.key_hash, |w| w.key_hash).is_ok()
        {
            // Overwritten or deleted.
            self.out.stale.push(key.clone());
            existing = None;
        }
        let mut kept = existing;
        for w in writes {
            let Some(value) = w.value else { continue };
            if let Some((leaf, key)) = kept.take_if(|(leaf, _)| leaf.key_hash < w.key_hash) {
                leaves.push((leaf, Some(key)));
            }
            leaves.push((Arc::new(Leaf::new(self.reader.suite(), w.key, w.key_hash, value)), None));
        }
        if let Some((leaf, key)) = kept {
            leaves.push((leaf, Some(key)));
        }
        Ok(self.build(path, leaves))
    }

    /// The subtree at `path` holding exactly `leaves` (sorted by key hash).
    fn build(&mut self, path: &mut Vec<u8>, mut leaves: Vec<(Arc<Leaf>, Option<NodeKey>)>) -> Sub {
        match leaves.len() {
            0 => return Sub::Empty,
            1 => {
                let (leaf, stored) = leaves.pop().expect("one leaf");
                return Sub::Leaf { leaf, stored };
            }
            _ => {}
        }
        let depth = path.len();
        let mut slots: [Option<Slot>; 16] = Default::default();
        let mut rest = leaves;
        for n in (0..16u8).rev() {
            let split = rest.partition_point(|(leaf, _)| nibble(&leaf.key_hash, depth) < n);
            let group = rest.split_off(split);
            if !group.is_empty() {
                path.push(n);
                let sub = self.build(path, group);
                path.pop();
                slots[n as usize] = Some(Slot::New(sub));
            }
        }
        self.place(path, slots).expect("built subtrees hold their leaves")
    }

    /// The subtree at `path`, an internal node before, after `writes` (not empty).
    fn descend(&mut self, path: &mut Vec<u8>, node: Internal, writes: &[Write<'_>]) -> Result<Sub, TreeError> {
        let depth = path.len();
        let mut slots: [Option<Slot>; 16] = Default::default();
        let mut rest = writes;
        for n in 0..16u8 {
            let split = rest.partition_point(|w| nibble(&w.key_hash, depth) == n);
            let (group, after) = rest.split_at(split);
            rest = after;
            let child = node.children[n as usize];
            if group.is_empty() {
                slots[n as usize] = child.map(Slot::Keep);
                continue;
            }
            let key = NodeKey::child(child.map_or(0, |c| c.version), path, n);
            path.push(n);
            let sub = match child {
                None => self.merge(path, None, group)?,
                Some(c) if c.leaf => {
                    let leaf = load_leaf(self.reader, &key)?;
                    self.merge(path, Some((leaf, key)), group)?
                }
                Some(_) => {
                    let inner = load_internal(self.reader, &key)?;
                    self.out.stale.push(key);
                    self.descend(path, inner, group)?
                }
            };
            path.pop();
            slots[n as usize] = Some(Slot::New(sub));
        }
        self.place(path, slots)
    }

    /// Writes the node at `path` with these children, or passes a lone leaf up.
    fn place(&mut self, path: &[u8], slots: [Option<Slot>; 16]) -> Result<Sub, TreeError> {
        let mut live: Vec<(usize, Slot)> = Vec::with_capacity(16);
        for (n, slot) in slots.into_iter().enumerate() {
            match slot {
                None | Some(Slot::New(Sub::Empty)) => {}
                Some(slot) => live.push((n, slot)),
            }
        }
        match live.len() {
            0 => return Ok(Sub::Empty),
            1 => match live.pop().expect("one child") {
                (_, Slot::New(sub @ Sub::Leaf { .. })) => return Ok(sub),
                (n, Slot::Keep(child)) if child.leaf => {
                    let key = NodeKey::child(child.version, path, n as u8);
                    let leaf = load_leaf(self.reader, &key)?;
                    return Ok(Sub::Leaf { leaf, stored: Some(key) });
                }
                other => live.push(other),
            },
            _ => {}
        }
        let mut children: [Option<Child>; 16] = [None; 16];
        for (n, slot) in live {
            children[n] = Some(match slot {
                Slot::Keep(child) => child,
                Slot::New(Sub::Internal { hash, version }) => Child { version, hash, leaf: false },
                Slot::New(Sub::Leaf { leaf, stored }) => {
                    let hash = leaf.hash(self.reader.suite());
                    match stored {
                        // Still where it was: shared, not rewritten.
                        Some(key) if key.path.len() == path.len() + 1 && key.path[..path.len()] == *path => {
                            debug_assert_eq!(key.path[path.len()] as usize, n);
                            Child { version: key.version, hash, leaf: true }
                        }
                        stored => {
                            if let Some(key) = stored {
                                self.out.stale.push(key);
                            }
                            self.out.nodes.insert(NodeKey::child(self.version, path, n as u8), Node::Leaf(leaf));
                            Child { version: self.version, hash, leaf: true }
                        }
                    }
                }
                Slot::New(Sub::Empty) => unreachable!("empty slots were dropped"),
            });
        }
        let node = Internal::new(self.reader.suite(), children);
        let hash = node.hash();
        self.out.nodes.insert(NodeKey { version: self.version, path: path.to_vec() }, Node::Internal(node));
        Ok(Sub::Internal { hash, version: self.version })
    }
}

/// The value of `key` in the tree of `version`, with its proof against that version's root.
pub fn prove(reader: &dyn TreeReader, version: u64, key: &[u8]) -> Result<(Option<Vec<u8>>, StateProof), TreeError> {
    let key_hash = smt::key_hash(reader.suite(), key);
    let mut siblings = Vec::new();
    let mut node_key = NodeKey::root(version);
    let mut node = load(reader, &node_key)?;
    let end = |leaf: Option<Arc<Leaf>>, siblings: Vec<Hash>| {
        let value = leaf.as_ref().filter(|l| l.key_hash == key_hash).map(|l| l.value.clone());
        let leaf = leaf.map(|l| ProofLeaf { key_hash: l.key_hash, value_hash: l.value_hash });
        (value, StateProof { leaf, siblings })
    };
    loop {
        let inner = match node {
            Node::Empty => return Ok(end(None, siblings)),
            Node::Leaf(leaf) => return Ok(end(Some(leaf), siblings)),
            Node::Internal(inner) => inner,
        };
        let n = nibble(&key_hash, node_key.path.len()) as usize;
        let (mut lo, mut hi) = (0usize, 16usize);
        let next = loop {
            match inner.count(lo, hi) {
                (0, _) => return Ok(end(None, siblings)),
                (1, Some((i, child))) if child.leaf => {
                    let leaf = load_leaf(reader, &NodeKey::child(child.version, &node_key.path, i as u8))?;
                    return Ok(end(Some(leaf), siblings));
                }
                (_, Some((i, child))) if hi - lo == 1 => break NodeKey::child(child.version, &node_key.path, i as u8),
                _ => {
                    let mid = (lo + hi) / 2;
                    if n < mid {
                        siblings.push(inner.range_hash(mid, hi));
                        hi = mid;
                    } else {
                        siblings.push(inner.range_hash(lo, mid));
                        lo = mid;
                    }
                }
            }
        };
        node = Node::Internal(load_internal(reader, &next)?);
        node_key = next;
    }
}

/// The root hash of the tree of `version`.
pub fn root(reader: &dyn TreeReader, version: u64) -> Result<Hash, TreeError> {
    Ok(load(reader, &NodeKey::root(version))?.hash(reader.suite()))
}

/// Tree nodes in memory: for tests and benchmarks of the tree alone.
#[derive(Debug, Default)]
pub struct MemoryTree {
    pub suite: Suite,
    pub nodes: HashMap<NodeKey, Node>,
}

impl MemoryTree {
    pub fn new(suite: Suite) -> MemoryTree {
        MemoryTree { suite, nodes: HashMap::new() }
    }

    /// Applies `writes` as `version` and returns the new root.
    pub fn apply(&mut self, version: u64, writes: &Writes) -> Result<Hash, TreeError> {
        let update = update(self, version, writes)?;
        self.nodes.extend(update.nodes);
        Ok(update.root)
    }
}

impl TreeReader for MemoryTree {
    fn suite(&self) -> Suite {
        self.suite
    }

    fn tree_node(&self, key: &NodeKey) -> Result<Option<Node>, TreeError> {
        Ok(self.nodes.get(key).cloned())
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use std::collections::BTreeMap;

    /// The tree's logic is the same under both suites; the SM suite's hashes are the ones
    /// less exercised elsewhere, so these tests run on it.
    const SUITE: Suite = Suite::Sm2Sm3;

    /// A reference model: the whole map, hashed from scratch by the definition.
    fn model_root(map: &BTreeMap<Vec<u8>, Vec<u8>>) -> Hash {
        smt::root_of(SUITE, map.iter().map(|(k, v)| (k.as_slice(), v.as_slice())))
    }

    fn key(i: u64) -> Vec<u8> {
        format!("k{i}").into_bytes()
    }

    /// A deterministic pseudo-random sequence (splitmix64).
    fn rng(seed: &mut u64) -> u64 {
        *seed = seed.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = *seed;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    #[test]
    fn random_inserts_updates_and_deletes_keep_the_root_the_definitions_and_every_version_proves() {
        let mut tree = MemoryTree::new(SUITE);
        let mut model = BTreeMap::new();
        let mut history = Vec::new();
        let mut seed = 7;
        for version in 0..60u64 {
            let mut writes = Writes::new();
            let count = rng(&mut seed) % 40;
            for _ in 0..count {
                let k = key(rng(&mut seed) % 120);
                if rng(&mut seed).is_multiple_of(4) {
                    writes.insert(k, None);
                } else {
                    writes.insert(k, Some(rng(&mut seed).to_be_bytes().to_vec()));
                }
            }
            for (k, v) in &writes {
                match v {
                    Some(v) => model.insert(k.clone(), v.clone()),
                    None => model.remove(k),
                };
            }
            let root = tree.apply(version, &writes).unwrap();
            assert_eq!(root, model_root(&model), "version {version}");
            history.push((root, model.clone()));
        }
        // Every version still answers, with proofs, for present and absent keys.
        for (version, (root, map)) in history.iter().enumerate() {
            for i in 0..130 {
                let k = key(i);
                let (value, proof) = prove(&tree, version as u64, &k).unwrap();
                assert_eq!(value.as_ref(), map.get(&k), "version {version} key {i}");
                proof.verify(SUITE, root, &k, value.as_deref()).unwrap();
            }
        }
    }

    #[test]
    fn deleting_down_to_one_key_and_to_none_collapses_the_tree() {
        let mut tree = MemoryTree::new(SUITE);
        let mut writes: Writes = (0..40).map(|i| (key(i), Some(vec![i as u8]))).collect();
        tree.apply(0, &writes).unwrap();
        writes = (1..40).map(|i| (key(i), None)).collect();
        let root = tree.apply(1, &writes).unwrap();
        assert_eq!(root, smt::leaf_hash(SUITE, &smt::key_hash(SUITE, &key(0)), &smt::value_hash(SUITE, &[0])));
        assert!(matches!(tree.nodes[&NodeKey::root(1)], Node::Leaf(_)), "a lone leaf is the root");
        let (value, proof) = prove(&tree, 1, &key(0)).unwrap();
        assert_eq!(value, Some(vec![0]));
        assert!(proof.siblings.is_empty());
        let root = tree.apply(2, &[(key(0), None)].into_iter().collect()).unwrap();
        assert_eq!(root, EMPTY);
        prove(&tree, 2, &key(0)).unwrap().1.verify(SUITE, &EMPTY, &key(0), None).unwrap();
        // An empty block keeps the root and still writes the version's root node.
        assert_eq!(tree.apply(3, &Writes::new()).unwrap(), EMPTY);
        assert_eq!(root_of_version(&tree, 3), EMPTY);
    }

    fn root_of_version(tree: &MemoryTree, version: u64) -> Hash {
        root(tree, version).unwrap()
    }

    #[test]
    fn stale_nodes_are_exactly_those_no_later_version_uses() {
        let mut tree = MemoryTree::new(SUITE);
        let mut stale: Vec<(u64, NodeKey)> = Vec::new();
        let mut seed = 11;
        for version in 0..30u64 {
            let writes: Writes = (0..20)
                .map(|_| {
                    let k = key(rng(&mut seed) % 200);
                    let v = if rng(&mut seed).is_multiple_of(5) { None } else { Some(vec![version as u8]) };
                    (k, v)
                })
                .collect();
            let update = update(&tree, version, &writes).unwrap();
            stale.extend(update.stale.iter().map(|k| (version, k.clone())));
            tree.nodes.extend(update.nodes);
        }
        // Prune everything stale since ≤ 20: versions 20.. must still prove every key.
        let before: Vec<Hash> = (20..30).map(|v| root_of_version(&tree, v)).collect();
        for (since, key) in &stale {
            if *since <= 20 {
                assert!(tree.nodes.remove(key).is_some(), "stale node {key:?} was stored");
            }
        }
        for (i, v) in (20..30u64).enumerate() {
            for k in 0..200 {
                let (value, proof) = prove(&tree, v, &key(k)).unwrap();
                proof.verify(SUITE, &before[i], &key(k), value.as_deref()).unwrap();
            }
        }
        // And version 19's root is gone.
        assert!(matches!(prove(&tree, 19, &key(0)), Err(TreeError::Missing(_))));
    }

    #[test]
    fn node_keys_and_nodes_round_trip_and_garbage_is_refused() {
        let key = NodeKey { version: 42, path: vec![1, 15, 0, 7, 3] };
        assert_eq!(NodeKey::from_bytes(&key.to_bytes()), Some(key));
        assert_eq!(NodeKey::from_bytes(&[0; 5]), None);
        let mut tree = MemoryTree::new(SUITE);
        tree.apply(0, &(0..30).map(|i| (super::tests::key(i), Some(vec![1, 2]))).collect()).unwrap();
        for node in tree.nodes.values() {
            assert_eq!(&Node::decode_in(SUITE, &node.encode()).unwrap(), node);
        }
        assert!(Node::decode_in(SUITE, &[9]).is_err());
        assert!(Node::decode_in(SUITE, &[2, 0, 0, 0, 0]).is_err(), "an internal node without children");
    }
}
