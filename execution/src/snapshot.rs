//! The serving side of state sync's snapshots: reading a snapshot's manifest and chunks out
//! of the versioned state tree a node keeps anyway, so that no copy is made. The format, and
//! how a joining node checks it against a certified header without trusting the sender, are
//! in `shutong_types::snapshot` (ADR 014, "State sync").

use crate::state_tree::{Child, Internal, Node, NodeKey, TreeError, TreeReader};
use shutong_types::smt::Subtree;
use shutong_types::snapshot::nibble;
pub use shutong_types::snapshot::{Entries, Manifest, NIBBLES_MAX, SnapshotError, verify_chunk, verify_manifest};

fn load(reader: &dyn TreeReader, key: &NodeKey) -> Result<Node, TreeError> {
    reader.tree_node(key)?.ok_or_else(|| TreeError::Missing(key.clone()))
}

fn child_key(parent: &NodeKey, child: &Child, nibble: usize) -> NodeKey {
    let mut path = parent.path.clone();
    path.push(nibble as u8);
    NodeKey { version: child.version, path }
}

/// The manifest of the tree of `version`, split on `nibbles` nibbles.
pub fn manifest(reader: &dyn TreeReader, version: u64, nibbles: u8) -> Result<Manifest, TreeError> {
    let nibbles = nibbles.min(NIBBLES_MAX);
    let mut subtrees = vec![Subtree::Empty; 16usize.pow(nibbles.into())];
    let root = NodeKey::root(version);
    let node = load(reader, &root)?;
    frontier(reader, &root, node, nibbles, 0, &mut subtrees)?;
    Ok(Manifest { version, nibbles, subtrees })
}

/// Fills the entries under `key` (whose prefix index among those of its depth is `base`).
fn frontier(
    reader: &dyn TreeReader,
    key: &NodeKey,
    node: Node,
    nibbles: u8,
    base: usize,
    out: &mut [Subtree],
) -> Result<(), TreeError> {
    let depth = key.path.len();
    let span = 16usize.pow((nibbles as usize - depth) as u32);
    match node {
        Node::Empty => {}
        Node::Leaf(leaf) => {
            // A lone leaf stands for every prefix its key hash extends, below where it sits.
            let below = (depth..nibbles as usize).fold(0, |acc, i| acc * 16 + nibble(&leaf.key_hash, i));
            out[base * span + below] = Subtree::Lone(leaf.hash(reader.suite()));
        }
        Node::Internal(inner) if depth == nibbles as usize => out[base] = classify(&inner),
        Node::Internal(inner) => {
            for (i, child) in inner.children().iter().enumerate() {
                if let Some(child) = child {
                    let next = child_key(key, child, i);
                    frontier(reader, &next, load(reader, &next)?, nibbles, base * 16 + i, out)?;
                }
            }
        }
    }
    Ok(())
}

/// An inner node as a subtree: one leaf below it alone is that leaf.
fn classify(inner: &Internal) -> Subtree {
    let mut children = inner.children().iter().flatten();
    match (children.next(), children.next()) {
        (None, _) => Subtree::Empty,
        (Some(only), None) if only.leaf => Subtree::Lone(only.hash),
        _ => Subtree::Many(inner.hash()),
    }
}

/// Chunk `index` of the tree of `version` split on `nibbles` nibbles: every (key, value)
/// under that prefix, in key-hash order.
pub fn chunk(reader: &dyn TreeReader, version: u64, nibbles: u8, index: usize) -> Result<Entries, TreeError> {
    let nibbles = nibbles.min(NIBBLES_MAX) as usize;
    let prefix: Vec<usize> = (0..nibbles).map(|i| (index >> (4 * (nibbles - 1 - i))) & 0x0f).collect();
    let mut key = NodeKey::root(version);
    let mut node = load(reader, &key)?;
    let mut out = Vec::new();
    for (depth, &want) in prefix.iter().enumerate() {
        match node {
            Node::Empty => return Ok(out),
            Node::Leaf(leaf) => {
                if (depth..nibbles).all(|i| nibble(&leaf.key_hash, i) == prefix[i]) {
                    out.push((leaf.key.clone(), leaf.value.clone()));
                }
                return Ok(out);
            }
            Node::Internal(inner) => match &inner.children()[want] {
                None => return Ok(out),
                Some(child) => {
                    key = child_key(&key, child, want);
                    node = load(reader, &key)?;
                }
            },
        }
    }
    collect(reader, &key, node, &mut out)?;
    Ok(out)
}

/// Every leaf under `node`, in key-hash order.
fn collect(reader: &dyn TreeReader, key: &NodeKey, node: Node, out: &mut Entries) -> Result<(), TreeError> {
    match node {
        Node::Empty => {}
        Node::Leaf(leaf) => out.push((leaf.key.clone(), leaf.value.clone())),
        Node::Internal(inner) => {
            for (i, child) in inner.children().iter().enumerate() {
                if let Some(child) = child {
                    let next = child_key(key, child, i);
                    collect(reader, &next, load(reader, &next)?, out)?;
                }
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use crate::state_tree::MemoryTree;
    use shutong_types::{Decode, Encode, Hash, Suite, smt};
    use shutong_vm::state::Writes;

    fn tree(suite: Suite, keys: usize) -> (MemoryTree, Hash, Entries) {
        let mut tree = MemoryTree::new(suite);
        let entries: Vec<(Vec<u8>, Vec<u8>)> =
            (0..keys).map(|i| (format!("key-{i}").into_bytes(), format!("value-{}", i * 7).into_bytes())).collect();
        // Three versions, so that nodes of several versions make up the last one.
        let mut root = smt::EMPTY;
        for (v, part) in entries.chunks(keys.div_ceil(3).max(1)).enumerate() {
            let writes: Writes = part.iter().map(|(k, v)| (k.clone(), Some(v.clone()))).collect();
            root = tree.apply(v as u64, &writes).unwrap();
        }
        (tree, root, entries)
    }

    /// The last version [`tree`] wrote.
    fn version(keys: usize) -> u64 {
        3.min(keys as u64) - 1
    }

    #[test]
    fn a_snapshot_of_any_size_and_split_rebuilds_the_state_root() {
        for suite in [Suite::Ed25519Blake3, Suite::Sm2Sm3] {
            for keys in [1usize, 2, 17, 600] {
                let (tree, root, entries) = tree(suite, keys);
                assert_eq!(root, smt::root_of(suite, entries.iter().map(|(k, v)| (&k[..], &v[..]))));
                for nibbles in 0..=2u8 {
                    let manifest = manifest(&tree, version(keys), nibbles).unwrap();
                    assert_eq!(Manifest::decode(&manifest.encode()).unwrap(), manifest);
                    verify_manifest(suite, &root, &manifest).unwrap();
                    let mut all = Vec::new();
                    for index in 0..manifest.subtrees.len() {
                        let chunk = chunk(&tree, version(keys), nibbles, index).unwrap();
                        verify_chunk(suite, &manifest, index, &chunk).unwrap();
                        all.extend(chunk);
                    }
                    let mut expected = entries.clone();
                    expected.sort();
                    all.sort();
                    assert_eq!(all, expected, "{keys} keys on {nibbles} nibbles");
                }
            }
        }
    }

    #[test]
    fn a_lying_manifest_or_chunk_is_refused_by_name() {
        let suite = Suite::Ed25519Blake3;
        let (tree, root, _) = tree(suite, 600);
        let manifest = manifest(&tree, 2, 2).unwrap();
        let index = manifest.subtrees.iter().position(|s| matches!(s, Subtree::Many(_))).unwrap();
        let good = chunk(&tree, 2, 2, index).unwrap();
        assert!(good.len() >= 2);

        // The manifest: an entry changed, or the wrong shape.
        let mut lying = manifest.clone();
        lying.subtrees[index] = Subtree::Many(Hash([7; 32]));
        assert!(matches!(verify_manifest(suite, &root, &lying), Err(SnapshotError::ManifestRoot { .. })));
        let mut short = manifest.clone();
        short.subtrees.pop();
        assert!(matches!(verify_manifest(suite, &root, &short), Err(SnapshotError::ManifestShape { .. })));
        assert!(matches!(verify_manifest(suite, &Hash([1; 32]), &manifest), Err(SnapshotError::ManifestRoot { .. })));

        // A chunk: a leaf dropped, a value altered, a key added from another prefix, the
        // order changed, another prefix's chunk.
        let check = |entries: &[(Vec<u8>, Vec<u8>)]| verify_chunk(suite, &manifest, index, entries).unwrap_err();
        assert!(matches!(check(&good[1..]), SnapshotError::ChunkMismatch { .. }));
        let mut altered = good.clone();
        altered[0].1.push(b'!');
        let err = check(&altered);
        assert!(err.to_string().contains(&format!("chunk {index} hashes to")), "{err}");
        let other = (0..manifest.subtrees.len()).find(|i| *i != index).unwrap();
        let mut padded = good.clone();
        padded.extend(chunk(&tree, 2, 2, other).unwrap().into_iter().take(1));
        assert!(matches!(check(&padded), SnapshotError::OutsidePrefix { .. }), "{padded:?}");
        let mut reordered = good.clone();
        reordered.swap(0, 1);
        assert!(matches!(check(&reordered), SnapshotError::Order { .. }));
        let mut twice = good.clone();
        twice.insert(1, good[0].clone());
        assert!(matches!(check(&twice), SnapshotError::Order { .. }));
        assert!(matches!(
            verify_chunk(suite, &manifest, 99_999, &good),
            Err(SnapshotError::NoSuchChunk { index: 99_999, chunks: 256 })
        ));
        // A manifest naming more nibbles than allowed does not decode.
        let mut bytes = manifest.encode();
        bytes[8] = NIBBLES_MAX + 1;
        assert!(Manifest::decode(&bytes).is_err());
    }
}
