//! The joining side of state sync (ADR 014, "State sync"): which chunk of a snapshot to ask
//! of which peer, and what to do with what comes back. No I/O: the node sends the requests
//! this returns and hands it what arrives.
//!
//! The manifest has been checked against a certified header before a fetch starts, so every
//! chunk is checked on its own, as it arrives. A chunk that fails its check is refused, by
//! the name of the peer that sent it and the reason; that peer is asked for nothing more, and
//! the chunk is asked of another. A peer that does not answer in time is not blamed (it may
//! be busy or cut off): its chunks are asked of the others.

use shutong_p2p::PeerId;
use shutong_types::snapshot::{Entries, Manifest, SnapshotError, verify_chunk};
use shutong_types::{Hash, Suite};
use std::collections::{BTreeMap, BTreeSet, HashSet};
use std::time::{Duration, Instant};

/// How many chunks one peer is asked for at a time.
pub const IN_FLIGHT_PER_PEER: usize = 4;
/// How long a peer has to answer before its chunk is asked of another.
pub const ANSWER_TIMEOUT: Duration = Duration::from_secs(10);

/// A chunk a peer sent that did not check.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("peer {peer} sent a bad chunk {index} of snapshot version {version}: {reason}; it is asked of another peer")]
pub struct Refused {
    pub peer: PeerId,
    pub index: u32,
    pub version: u64,
    pub reason: SnapshotError,
}

/// Why a fetch cannot finish.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FetchError {
    #[error("no peer is left to ask for chunk {index}: every peer offering the snapshot lied or none offered it")]
    NoPeers { index: u32 },
}

/// The fetch of one snapshot's chunks.
#[derive(Debug)]
pub struct ChunkFetch {
    suite: Suite,
    manifest: Manifest,
    peers: Vec<PeerId>,
    /// Peers that sent a chunk that did not check: asked for nothing more.
    liars: HashSet<PeerId>,
    /// Chunks not asked for now, lowest first.
    waiting: BTreeSet<u32>,
    /// Chunks asked for: of whom, and when.
    asked: BTreeMap<u32, (PeerId, Instant)>,
    /// Chunks that checked.
    done: BTreeMap<u32, Entries>,
    /// The next peer to ask, round robin.
    next: usize,
}

impl ChunkFetch {
    /// A fetch of every chunk of `manifest` (already checked against a certified header)
    /// from `peers`, which offered the same snapshot.
    pub fn new(suite: Suite, manifest: Manifest, peers: Vec<PeerId>) -> ChunkFetch {
        let waiting = (0..manifest.subtrees.len() as u32).collect();
        ChunkFetch {
            suite,
            manifest,
            peers,
            liars: HashSet::new(),
            waiting,
            asked: BTreeMap::new(),
            done: BTreeMap::new(),
            next: 0,
        }
    }

    /// The chunks to ask for now, and of whom: those never asked, and those a peer did not
    /// answer within [`ANSWER_TIMEOUT`], each of an honest peer with room.
    pub fn requests(&mut self, now: Instant) -> Result<Vec<(PeerId, u32)>, FetchError> {
        let late: Vec<u32> =
            self.asked.iter().filter(|(_, (_, at))| now >= *at + ANSWER_TIMEOUT).map(|(index, _)| *index).collect();
        for index in late {
            if let Some((peer, _)) = self.asked.remove(&index) {
                tracing::debug!(%peer, index, "no chunk in time: asked of another peer");
            }
            self.waiting.insert(index);
        }
        let honest: Vec<PeerId> = self.peers.iter().filter(|p| !self.liars.contains(p)).copied().collect();
        if honest.is_empty() {
            if let Some(index) = self.waiting.first().or_else(|| self.asked.keys().next()) {
                return Err(FetchError::NoPeers { index: *index });
            }
            return Ok(Vec::new());
        }
        let mut out = Vec::new();
        while let Some(&index) = self.waiting.first() {
            let load = |peer: &PeerId| self.asked.values().filter(|(p, _)| p == peer).count();
            let Some(peer) = (0..honest.len())
                .map(|k| honest[(self.next + k) % honest.len()])
                .find(|peer| load(peer) < IN_FLIGHT_PER_PEER)
            else {
                break;
            };
            self.next = (self.next + 1) % honest.len();
            self.waiting.remove(&index);
            self.asked.insert(index, (peer, now));
            out.push((peer, index));
        }
        Ok(out)
    }

    /// A chunk from `from`. One not asked of that peer is ignored; one that does not check is
    /// refused, and its sender asked for nothing more.
    pub fn on_chunk(&mut self, from: PeerId, version: u64, index: u32, entries: Entries) -> Result<(), Box<Refused>> {
        if version != self.manifest.version || self.asked.get(&index).is_none_or(|(peer, _)| *peer != from) {
            return Ok(());
        }
        self.asked.remove(&index);
        match verify_chunk(self.suite, &self.manifest, index as usize, &entries) {
            Ok(()) => {
                self.done.insert(index, entries);
                Ok(())
            }
            Err(reason) => {
                self.liars.insert(from);
                // Whatever else it was asked for is asked of the others.
                let theirs: Vec<u32> = self.asked.iter().filter(|(_, (p, _))| *p == from).map(|(i, _)| *i).collect();
                for other in theirs {
                    self.asked.remove(&other);
                    self.waiting.insert(other);
                }
                self.waiting.insert(index);
                Err(Box::new(Refused { peer: from, index, version, reason }))
            }
        }
    }

    /// How many chunks checked, of how many.
    pub fn progress(&self) -> (usize, usize) {
        (self.done.len(), self.manifest.subtrees.len())
    }

    pub fn is_complete(&self) -> bool {
        self.done.len() == self.manifest.subtrees.len()
    }

    /// Every (key, value) of the snapshot, once complete: in key-hash order.
    pub fn into_entries(self) -> Option<Entries> {
        self.is_complete().then(|| self.done.into_values().flatten().collect())
    }
}

/// Why a fetched snapshot cannot be imported.
#[derive(Debug, thiserror::Error)]
pub enum ImportError {
    #[error("the database already holds blocks up to height {height}: state sync starts from an empty data directory")]
    NotEmpty { height: u64 },
    #[error("block {height} hashes to {found}, and the trusted header names {expected} as its parent")]
    Parent { height: u64, expected: Hash, found: Hash },
    #[error("the imported state's root is {found}, not the {expected} the trusted header commits to")]
    StateRoot { expected: Hash, found: Hash },
    #[error("audit leaf {index} of {size} is not in the imported state")]
    AuditLeafMissing { index: u64, size: u64 },
    #[error("the audit log rebuilt from the state has root {found}, not the {expected} the trusted header commits to")]
    AuditRoot { expected: Hash, found: Hash },
    #[error(transparent)]
    Tree(#[from] shutong_execution::state_tree::TreeError),
    #[error(transparent)]
    Log(#[from] shutong_execution::audit_log::LogError),
    #[error(transparent)]
    Storage(#[from] shutong_storage::StorageError),
}

/// A tree with nothing before `version`: the base an imported snapshot is built on.
struct EmptyBefore {
    suite: Suite,
    version: u64,
}

impl shutong_execution::state_tree::TreeReader for EmptyBefore {
    fn suite(&self) -> Suite {
        self.suite
    }

    fn tree_node(
        &self,
        key: &shutong_execution::state_tree::NodeKey,
    ) -> Result<Option<shutong_execution::state_tree::Node>, shutong_execution::state_tree::TreeError> {
        let base = self.version.checked_sub(1).map(shutong_execution::state_tree::NodeKey::root);
        Ok((Some(key) == base.as_ref()).then_some(shutong_execution::state_tree::Node::Empty))
    }
}

/// A log with no leaf yet.
struct EmptyLog(Suite);

impl shutong_execution::audit_log::LogReader for EmptyLog {
    fn suite(&self) -> Suite {
        self.0
    }

    fn log_tile(
        &self,
        _: &shutong_execution::audit_log::TileKey,
    ) -> Result<Option<std::sync::Arc<shutong_execution::audit_log::Tile>>, shutong_execution::audit_log::LogError>
    {
        Ok(None)
    }
}

/// Imports a fetched snapshot as the state after `block`, whose hash `header` (trusted,
/// certified) names as its parent: the state must hash to the header's state root, and the
/// audit log, rebuilt from the leaves the state holds, to its log root and size. The node
/// then syncs blocks from `header`'s height on.
pub fn import(
    storage: &shutong_storage::Storage,
    block: &shutong_types::Block,
    certificate: Option<&shutong_types::Certificate>,
    header: &shutong_types::BlockHeader,
    entries: Entries,
) -> Result<shutong_storage::Tip, ImportError> {
    let suite = storage.suite();
    if let Some(tip) = storage.tip().filter(|t| t.height > 0) {
        return Err(ImportError::NotEmpty { height: tip.height });
    }
    let height = block.header.height;
    let found = block.header.hash();
    if found != header.parent || header.height != height + 1 {
        return Err(ImportError::Parent { height, expected: header.parent, found });
    }
    let writes: shutong_vm::state::Writes = entries.into_iter().map(|(k, v)| (k, Some(v))).collect();
    let tree = shutong_execution::state_tree::update(&EmptyBefore { suite, version: height }, height, &writes)?;
    if tree.root != header.state_root {
        return Err(ImportError::StateRoot { expected: header.state_root, found: tree.root });
    }
    let mut leaves = Vec::with_capacity(header.audit_size.min(1 << 24) as usize);
    for index in 0..header.audit_size {
        let key = shutong_types::keyspace::audit_leaf(index);
        let data = writes
            .get(&key)
            .and_then(Option::as_ref)
            .ok_or(ImportError::AuditLeafMissing { index, size: header.audit_size })?;
        leaves.push(shutong_types::auditlog::leaf_hash(suite, data));
    }
    let log = shutong_execution::audit_log::append(&EmptyLog(suite), 0, &leaves)?;
    if log.root != header.audit_root {
        return Err(ImportError::AuditRoot { expected: header.audit_root, found: log.root });
    }
    // The header's commitments are those after its parent, the block imported.
    let tip = shutong_storage::Tip::after(&block.header, header.roots());
    storage.import_snapshot(shutong_storage::Commit {
        block,
        certificate,
        receipts: &[],
        writes: &writes,
        tree: &tree,
        log: &log,
        tip,
    })?;
    Ok(tip)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use shutong_execution::snapshot;
    use shutong_execution::state_tree::MemoryTree;
    use shutong_types::Keypair;

    fn peer(name: &str) -> PeerId {
        shutong_p2p::peer_id(&Keypair::from_seed(name).public()).unwrap()
    }

    /// A tree of 3,000 keys and its manifest on one nibble: 16 chunks.
    fn snapshot() -> (MemoryTree, Manifest, Entries) {
        let mut tree = MemoryTree::new(Suite::Ed25519Blake3);
        let entries: Entries =
            (0..3_000u32).map(|i| (format!("k{i}").into_bytes(), i.to_le_bytes().to_vec())).collect();
        let writes = entries.iter().map(|(k, v)| (k.clone(), Some(v.clone()))).collect();
        let root = tree.apply(0, &writes).unwrap();
        let manifest = snapshot::manifest(&tree, 0, 1).unwrap();
        snapshot::verify_manifest(Suite::Ed25519Blake3, &root, &manifest).unwrap();
        (tree, manifest, entries)
    }

    #[test]
    fn a_lying_peer_is_refused_by_name_and_its_chunks_come_from_the_others() {
        let (tree, manifest, mut entries) = snapshot();
        let (honest, liar, slow) = (peer("honest"), peer("liar"), peer("slow"));
        let mut fetch = ChunkFetch::new(Suite::Ed25519Blake3, manifest, vec![honest, liar, slow]);
        let start = Instant::now();
        let mut now = start;
        let mut refusals = Vec::new();
        while !fetch.is_complete() {
            let requests = fetch.requests(now).unwrap();
            for (to, index) in requests {
                let mut chunk = snapshot::chunk(&tree, 0, 1, index as usize).unwrap();
                if to == liar {
                    chunk[0].1.push(b'!');
                }
                if to != slow {
                    // An unasked copy from another peer is ignored.
                    assert_eq!(fetch.on_chunk(peer("stranger"), 0, index, chunk.clone()), Ok(()));
                    if let Err(refused) = fetch.on_chunk(to, 0, index, chunk) {
                        refusals.push(refused);
                    }
                }
            }
            // The slow peer never answers: its chunks are asked again after the timeout.
            now += ANSWER_TIMEOUT;
            assert!(now < start + ANSWER_TIMEOUT * 20, "the fetch does not finish: {:?}", fetch.progress());
        }
        assert_eq!(refusals.len(), 1, "the liar is asked once, then never again: {refusals:?}");
        let refused = &refusals[0];
        assert_eq!(refused.peer, liar);
        let text = refused.to_string();
        assert!(text.contains(&liar.to_string()) && text.contains("hashes to"), "{text}");
        let mut fetched = fetch.into_entries().unwrap();
        fetched.sort();
        entries.sort();
        assert_eq!(fetched, entries);
    }

    #[test]
    fn with_every_peer_lying_the_fetch_says_it_cannot_finish() {
        let (tree, manifest, _) = snapshot();
        let liar = peer("liar");
        let mut fetch = ChunkFetch::new(Suite::Ed25519Blake3, manifest, vec![liar]);
        let requests = fetch.requests(Instant::now()).unwrap();
        assert_eq!(requests.len(), IN_FLIGHT_PER_PEER, "one peer is asked for a few chunks at a time");
        let (_, index) = requests[0];
        let mut chunk = snapshot::chunk(&tree, 0, 1, index as usize).unwrap();
        chunk.pop();
        assert!(fetch.on_chunk(liar, 0, index, chunk).is_err());
        assert!(matches!(fetch.requests(Instant::now()), Err(FetchError::NoPeers { .. })));
        assert!(!fetch.is_complete() && fetch.into_entries().is_none());
    }

    #[test]
    fn a_fetched_snapshot_imports_to_the_same_roots_and_the_chain_goes_on() {
        use crate::snapshots::tests::commit;
        use shutong_storage::Storage;
        use shutong_types::keyspace;
        let suite = Suite::Ed25519Blake3;
        let committee =
            shutong_execution::genesis::CommitteeMember::departments(&[Keypair::from_seed("admin").account()]);
        let validator = shutong_execution::genesis::GenesisValidator::new("v", Keypair::from_seed("v").public());
        let genesis = shutong_execution::genesis::Genesis::new("import", 1_000, vec![validator], committee);
        let open = |dir: &std::path::Path| {
            let storage = Storage::open(dir, suite).unwrap();
            let tip = crate::init_storage(&storage, &genesis).unwrap();
            (storage, tip)
        };
        // The serving node: block 1 writes 500 keys and 10 audit leaves; header 2 commits
        // the state after it.
        let dirs: Vec<tempfile::TempDir> = (0..4).map(|_| tempfile::tempdir().unwrap()).collect();
        let (source, tip0) = open(dirs[0].path());
        let mut writes: shutong_vm::state::Writes =
            (0..500u32).map(|i| (format!("key-{i}").into_bytes(), Some(i.to_le_bytes().to_vec()))).collect();
        for i in 0..10u64 {
            writes.insert(keyspace::audit_leaf(i), Some(format!("leaf {i}").into_bytes()));
        }
        let tip1 = commit(&source, &tip0, &writes);
        let tip2 = commit(&source, &tip1, &Default::default());
        assert_eq!(tip1.audit_size, 10);
        let header = source.block(2).unwrap().header;
        let block = source.block(1).unwrap();
        let manifest = snapshot::manifest(&source, 1, 1).unwrap();
        let mut entries = Entries::new();
        for index in 0..manifest.subtrees.len() {
            entries.extend(snapshot::chunk(&source, 1, 1, index).unwrap());
        }

        // The joining node imports it and holds the same tip, state and log.
        let (target, _) = open(dirs[1].path());
        let tip = import(&target, &block, None, &header, entries.clone()).unwrap();
        assert_eq!(tip, tip1);
        assert_eq!(target.tip(), Some(tip1));
        let (value, proof) = shutong_execution::state_tree::prove(&target, 1, b"key-7").unwrap();
        proof.verify(suite, &header.state_root, b"key-7", value.as_deref()).unwrap();
        let inclusion = shutong_execution::audit_log::prove_inclusion(&target, 5, 10).unwrap();
        let leaf = shutong_types::auditlog::leaf_hash(suite, b"leaf 5");
        inclusion.verify(suite, &leaf, &header.audit_root).unwrap();
        assert_eq!(target.retained_from(), 1);
        // It goes on from there: the next blocks give both nodes the same roots.
        let next = commit(&target, &tip, &Default::default());
        assert_eq!(next, tip2);
        let more: shutong_vm::state::Writes =
            [(b"key-7".to_vec(), None), (keyspace::audit_leaf(10), Some(b"leaf 10".to_vec()))].into_iter().collect();
        assert_eq!(commit(&target, &next, &more), commit(&source, &tip2, &more));

        // What an import refuses: a database with blocks, another parent, another state.
        assert!(matches!(import(&target, &block, None, &header, entries.clone()), Err(ImportError::NotEmpty { .. })));
        let (fresh, _) = open(dirs[2].path());
        let other = source.block(2).unwrap();
        assert!(matches!(import(&fresh, &other, None, &header, entries.clone()), Err(ImportError::Parent { .. })));
        let mut altered = entries;
        altered[0].1.push(1);
        let err = import(&fresh, &block, None, &header, altered).unwrap_err();
        assert!(matches!(err, ImportError::StateRoot { .. }), "{err}");
        assert_eq!(fresh.tip().unwrap().height, 0, "a refused import writes nothing");
    }
}
