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
use shutong_types::Suite;
use shutong_types::snapshot::{Entries, Manifest, SnapshotError, verify_chunk};
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
}
