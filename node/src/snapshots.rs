//! Serving state sync's snapshots (ADR 014, "State sync"), on a thread of its own so that a
//! joining node's requests never take the consensus thread.
//!
//! A snapshot is the state at a height that is a multiple of `state_sync.snapshot_interval`:
//! the tree version the node keeps anyway, so nothing is copied. [`Router`] hands snapshot
//! requests to the [`Server`] and everything else to the consensus driver. The server
//! answers `SnapshotRequest` with the manifest of the snapshot at the height asked for (or
//! the newest), and `ChunkRequest` with one chunk of a snapshot it offered, which the
//! joining node checks against that manifest (`shutong_types::snapshot`).

use crate::chain::NetSink;
use crate::driver::Mailbox;
use shutong_consensus::wire::{Kind, NetMessage};
use shutong_execution::snapshot;
use shutong_p2p::Inbound;
use shutong_p2p::peer_guard::Misbehaviour;
use shutong_storage::Storage;
use shutong_types::Decode;
use shutong_types::snapshot::{Manifest, NIBBLES_MAX};
use std::sync::Arc;
use std::sync::mpsc::{Receiver, SyncSender, TrySendError};

/// Snapshot requests waiting for the server; more are dropped (the asker asks again).
pub const QUEUE_MAX: usize = 256;
/// The manifests kept for chunk requests: the snapshots offered last.
const OFFERS_KEPT: usize = 4;
/// About how many keys a chunk holds: a manifest splits on as few nibbles as keep chunks
/// under it, so that a chunk stays far below a message's 4 MiB.
const KEYS_PER_CHUNK: u64 = 4_096;

/// Hands snapshot requests to the snapshot server, and the rest to the driver.
#[derive(Debug)]
pub struct Router {
    pub consensus: Mailbox,
    pub snapshots: SyncSender<Inbound>,
}

impl shutong_p2p::Inbox for Router {
    fn deliver(&self, inbound: Inbound) -> bool {
        match Kind::of_bytes(&inbound.bytes) {
            Some(Kind::SnapshotRequest | Kind::ChunkRequest) => match self.snapshots.try_send(inbound) {
                Ok(()) => true,
                Err(TrySendError::Full(_) | TrySendError::Disconnected(_)) => false,
            },
            _ => self.consensus.deliver(inbound),
        }
    }
}

/// The snapshot server.
#[derive(Debug)]
pub struct Server {
    pub storage: Arc<Storage>,
    pub net: Arc<dyn NetSink>,
    /// Heights between snapshots; 0 serves none.
    pub interval: u64,
    /// The manifests offered last, by header height, oldest first.
    offered: Vec<(u64, Manifest)>,
}

impl Server {
    pub fn new(storage: Arc<Storage>, net: Arc<dyn NetSink>, interval: u64) -> Server {
        Server { storage, net, interval, offered: Vec::new() }
    }

    /// Answers requests until every sender is gone.
    pub fn run(mut self, requests: Receiver<Inbound>) {
        for inbound in requests {
            self.answer(inbound);
        }
    }

    fn answer(&mut self, inbound: Inbound) {
        let message = match NetMessage::decode(&inbound.bytes) {
            Ok(message) => message,
            Err(err) => {
                tracing::debug!(peer = %inbound.from, %err, "an undecodable snapshot request");
                self.net.penalise(inbound.from, Misbehaviour::Undecodable);
                return;
            }
        };
        match message {
            NetMessage::SnapshotRequest { height } => {
                if let Some((height, manifest)) = self.offer(height) {
                    self.net.send(inbound.from, &NetMessage::SnapshotOffer { height, manifest: Box::new(manifest) });
                }
            }
            NetMessage::ChunkRequest { version, nibbles, index } => {
                // Only snapshots on offer: a chunk of any other version would make this node
                // walk old trees for whoever asks.
                let offered = self.offered.iter().any(|(_, m)| (m.version, m.nibbles) == (version, nibbles));
                if !offered || index as usize >= 16usize.pow(nibbles.into()) {
                    return;
                }
                match snapshot::chunk(&*self.storage, version, nibbles, index as usize) {
                    Ok(entries) => self.net.send(inbound.from, &NetMessage::Chunk { version, index, entries }),
                    Err(err) => tracing::warn!(version, index, %err, "cannot read a snapshot chunk"),
                }
            }
            _ => {}
        }
    }

    /// The snapshot at header `asked` (0: the newest), if it is a snapshot height whose
    /// state this node keeps: its header height and manifest.
    fn offer(&mut self, asked: u64) -> Option<(u64, Manifest)> {
        if self.interval == 0 {
            return None;
        }
        let tip = self.storage.tip()?;
        let height = if asked == 0 { tip.height / self.interval * self.interval } else { asked };
        // Header `height` commits the state after block `height − 1`, which must be kept.
        let kept = height > 0
            && height <= tip.height
            && height > self.storage.pruned_below()
            && height >= self.storage.retained_from();
        if !kept || !height.is_multiple_of(self.interval) {
            return None;
        }
        if let Some((_, manifest)) = self.offered.iter().find(|(h, _)| *h == height) {
            return Some((height, manifest.clone()));
        }
        let keys = self.storage.state_keys_estimate();
        let nibbles = (0..NIBBLES_MAX).find(|n| keys / 16u64.pow((*n).into()) <= KEYS_PER_CHUNK).unwrap_or(NIBBLES_MAX);
        match snapshot::manifest(&*self.storage, height - 1, nibbles) {
            Ok(manifest) => {
                tracing::info!(height, nibbles, "state snapshot offered");
                if self.offered.len() == OFFERS_KEPT {
                    self.offered.remove(0);
                }
                self.offered.push((height, manifest.clone()));
                Some((height, manifest))
            }
            Err(err) => {
                tracing::warn!(height, %err, "cannot make a snapshot manifest");
                None
            }
        }
    }
}

#[cfg(test)]
pub(crate) mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use shutong_execution::genesis::{CommitteeMember, Genesis, GenesisValidator};
    use shutong_execution::{audit_log, state_tree};
    use shutong_p2p::PeerId;
    use shutong_storage::{Commit, Tip};
    use shutong_types::snapshot::{verify_chunk, verify_manifest};
    use shutong_types::transport::Member;
    use shutong_types::{Block, Encode, Keypair, Roots, Suite};
    use std::sync::Mutex;

    /// What the server sends, in order.
    #[derive(Debug, Default)]
    struct Recorder(Mutex<Vec<NetMessage>>);

    impl NetSink for Recorder {
        fn send(&self, _: PeerId, message: &NetMessage) {
            self.0.lock().unwrap().push(message.clone());
        }
        fn broadcast(&self, _: &NetMessage) {}
        fn penalise(&self, _: PeerId, _: Misbehaviour) {
            self.0.lock().unwrap().push(NetMessage::Blocks(Vec::new()));
        }
        fn set_validators(&self, _: Vec<Member>) {}
    }

    /// Commits a block of `writes` on top of `parent`, its header committing `parent`'s
    /// roots as a real header does; the audit leaves among `writes` are appended to the log.
    pub(crate) fn commit(storage: &Storage, parent: &Tip, writes: &shutong_vm::state::Writes) -> Tip {
        let height = parent.height + 1;
        let mut block = Block::empty(&storage.block(0).unwrap().header.chain_id, height, parent.hash);
        block.header.state_root = parent.state_root;
        block.header.receipts_root = parent.receipts_root;
        block.header.audit_root = parent.audit_root;
        block.header.audit_size = parent.audit_size;
        block.header.timestamp_ms = parent.timestamp_ms + 1;
        let tree = state_tree::update(storage, height, writes).unwrap();
        let leaves: Vec<shutong_types::Hash> = (parent.audit_size..)
            .map_while(|i| writes.get(&shutong_types::keyspace::audit_leaf(i)).cloned().flatten())
            .map(|data| shutong_types::auditlog::leaf_hash(storage.suite(), &data))
            .collect();
        let log = audit_log::append(storage, parent.audit_size, &leaves).unwrap();
        let roots = Roots { state: tree.root, receipts: parent.receipts_root, audit: log.root, audit_size: log.size };
        let tip = Tip::after(&block.header, roots);
        let commit = Commit { block: &block, certificate: None, receipts: &[], writes, tree: &tree, log: &log, tip };
        storage.commit(commit).unwrap();
        tip
    }

    #[test]
    fn the_newest_snapshot_is_offered_and_every_chunk_checks_against_its_header() {
        let dir = tempfile::tempdir().unwrap();
        let storage = Arc::new(Storage::open(dir.path(), Suite::Ed25519Blake3).unwrap());
        let validator = Keypair::from_seed("v");
        let committee = CommitteeMember::departments(&[Keypair::from_seed("admin").account()]);
        let genesis = Genesis::new("snapshots", 1_000, vec![GenesisValidator::new("v", validator.public())], committee);
        let tip = crate::init_storage(&storage, &genesis).unwrap();
        // Block 1 writes 20,000 keys; header 2 commits the state after it.
        let writes: shutong_vm::state::Writes =
            (0..20_000u32).map(|i| (format!("key-{i}").into_bytes(), Some(i.to_le_bytes().to_vec()))).collect();
        let tip = commit(&storage, &tip, &writes);
        let tip = commit(&storage, &tip, &Default::default());
        assert_eq!(tip.height, 2);
        let recorder = Arc::new(Recorder::default());
        let mut server = Server::new(Arc::clone(&storage), recorder.clone(), 2);
        let peer = shutong_p2p::peer_id(&Keypair::from_seed("joining").public()).unwrap();
        let ask = |server: &mut Server, message: NetMessage| {
            server.answer(Inbound { from: peer, bytes: message.encode() });
            recorder.0.lock().unwrap().pop()
        };

        let Some(NetMessage::SnapshotOffer { height, manifest }) =
            ask(&mut server, NetMessage::SnapshotRequest { height: 0 })
        else {
            panic!("no offer")
        };
        assert_eq!((height, manifest.version), (2, 1));
        assert_eq!(manifest.nibbles, 1, "20,000 keys in chunks of about 4,096 or fewer");
        let header = storage.block(height).unwrap().header;
        verify_manifest(Suite::Ed25519Blake3, &header.state_root, &manifest).unwrap();
        let mut keys = 0;
        for index in 0..manifest.subtrees.len() as u32 {
            let request = NetMessage::ChunkRequest { version: 1, nibbles: 1, index };
            let Some(NetMessage::Chunk { version, index: got, entries }) = ask(&mut server, request) else {
                panic!("no chunk {index}")
            };
            assert_eq!((version, got), (1, index));
            verify_chunk(Suite::Ed25519Blake3, &manifest, index as usize, &entries).unwrap();
            keys += entries.len();
        }
        assert!(keys > 20_000, "every key written, and genesis's: {keys}");

        // The same snapshot asked for by height; none at a height that is no snapshot's, or
        // above the tip.
        let Some(NetMessage::SnapshotOffer { height: 2, manifest: again }) =
            ask(&mut server, NetMessage::SnapshotRequest { height: 2 })
        else {
            panic!("no offer at height 2")
        };
        assert_eq!(again, manifest);
        for height in [1, 3, 4] {
            assert!(ask(&mut server, NetMessage::SnapshotRequest { height }).is_none(), "offered at {height}");
        }
        // Nothing but a snapshot on offer is served, and garbage is penalised.
        for request in [
            NetMessage::ChunkRequest { version: 0, nibbles: 1, index: 0 },
            NetMessage::ChunkRequest { version: 1, nibbles: 2, index: 0 },
            NetMessage::ChunkRequest { version: 1, nibbles: 1, index: 16 },
        ] {
            assert!(ask(&mut server, request.clone()).is_none(), "{request:?} was answered");
        }
        server.answer(Inbound { from: peer, bytes: vec![13, 1] });
        assert_eq!(recorder.0.lock().unwrap().len(), 1, "the garbage was penalised");
        // A node that serves no snapshots offers none.
        let mut off = Server::new(storage, recorder.clone(), 0);
        recorder.0.lock().unwrap().clear();
        assert!(ask(&mut off, NetMessage::SnapshotRequest { height: 0 }).is_none());
    }
}
