//! What validators and full nodes share: committing a block (storage, metrics, mempool,
//! subscribers), the status the RPC reports, the network as the driver and the follower
//! speak to it ([`NetSink`]), and block sync's checks of what a peer sent: that blocks link
//! to the tip by hash ([`linked_run`]) and that a certificate finalizes one
//! ([`check_finalization`]).

use crate::clock::Clock;
use crate::mempool::Mempool;
use crate::view::NodeView;
use shutong_consensus::wire::{BATCH_TXS_MAX, BLOCKS_PER_MESSAGE_MAX, NetMessage};
use shutong_execution::executor::{BlockOutput, Executor};
use shutong_p2p::network::{Command, NetHandle};
use shutong_p2p::peer_guard::Misbehaviour;
use shutong_p2p::{Inbound, PeerId};
use shutong_storage::{Commit, Storage, StorageError, Tip};
use shutong_types::epoch::{EpochChange, KnownEpoch, ProvenValue};
use shutong_types::limits::BLOCK_BYTES_MAX;
use shutong_types::transport::Member;
use shutong_types::{Block, Certificate, Encode, Hash, PublicKey, VoteKind};
use std::collections::HashSet;
use std::sync::atomic::AtomicU64;
use std::sync::{Arc, Mutex};

/// The largest batch a node seals.
pub const BATCH_BYTES_MAX: usize = 1 << 20;

/// Where the driver and the follower send what they say to peers. The network
/// ([`NetHandle`]) in a node; a recorder in tests. Sending never waits.
pub trait NetSink: Send + Sync + std::fmt::Debug {
    fn send(&self, to: PeerId, message: &NetMessage);
    /// To every validator but this node.
    fn broadcast(&self, message: &NetMessage);
    /// A peer sent something no honest peer sends.
    fn penalise(&self, peer: PeerId, what: Misbehaviour);
    /// A new validator set: broadcast to it, and let its members in.
    fn set_validators(&self, validators: Vec<Member>);
    /// The validators a scheduled set change adds: let them in ahead of their epoch.
    fn expect(&self, _joining: Vec<Member>) {}
}

/// Who may connect beyond the set in force: the keys of later epochs this node knows of.
/// After each commit, the keys a scheduled change adds are let in ahead of their epoch: the
/// committed state is final, so a node between the decision and the activation height can
/// reach the validators joining there. A node further behind, which meets a peer of a
/// later epoch, asks it for the proof of each epoch it lacks ([`Gate::behind`]) and lets in
/// the validators of each epoch it could verify from the certified header and state proofs
/// alone (`shutong_types::epoch`), without executing up to them.
#[derive(Debug, Default)]
pub struct Gate {
    /// What the network was last told.
    joining: Vec<Member>,
    /// Epochs after the committed one, proven by peers, in order.
    ahead: Vec<KnownEpoch>,
    /// When an epoch proof was last asked for.
    asked: Option<std::time::Instant>,
}

/// How often a node behind asks for an epoch proof.
const EPOCH_ASK_EVERY: std::time::Duration = std::time::Duration::from_millis(500);

impl Gate {
    /// The epoch of the next height in committed state, as a proof's starting point.
    fn committed(storage: &shutong_storage::Storage) -> Option<KnownEpoch> {
        let tip = storage.tip()?;
        let epoch = shutong_execution::epochs::validators_for(storage, tip.height + 1)?;
        let start_height = storage.epoch_start(epoch.epoch).unwrap_or(0);
        Some(KnownEpoch {
            epoch: epoch.epoch,
            start_height,
            validators: epoch.validators,
            transports: epoch.transports,
        })
    }

    fn update(&mut self, storage: &shutong_storage::Storage, net: &dyn NetSink) {
        let mut joining = shutong_execution::epochs::joining(storage);
        for member in self.ahead.iter().flat_map(|e| Member::of_set(&e.validators, &e.transports)) {
            if !joining.contains(&member) {
                joining.push(member);
            }
        }
        if joining != self.joining {
            tracing::info!(keys = joining.len(), epochs_ahead = self.ahead.len(), "validators of later epochs let in");
            net.expect(joining.clone());
            self.joining = joining;
        }
    }

    pub fn after_commit(&mut self, storage: &shutong_storage::Storage, net: &dyn NetSink) {
        if !self.ahead.is_empty()
            && let Some(committed) = Gate::committed(storage)
        {
            self.ahead.retain(|e| e.epoch > committed.epoch);
        }
        self.update(storage, net);
    }

    /// `peer` runs an epoch later than this node's committed one: ask it to prove the next
    /// epoch this node does not know (at most every [`EPOCH_ASK_EVERY`]).
    pub fn behind(
        &mut self,
        peer: PeerId,
        storage: &shutong_storage::Storage,
        net: &dyn NetSink,
        now: std::time::Instant,
    ) {
        if self.asked.is_some_and(|at| now < at + EPOCH_ASK_EVERY) {
            return;
        }
        let Some(committed) = Gate::committed(storage) else { return };
        self.asked = Some(now);
        let epoch = self.ahead.last().map_or(committed.epoch, |e| e.epoch) + 1;
        net.send(peer, &NetMessage::EpochRequest { epoch });
    }

    /// A peer's proof of an epoch: checked against the newest epoch this node knows; if it
    /// holds, that epoch's validators are let in and the peer is asked for the next one.
    pub fn on_proof(
        &mut self,
        peer: PeerId,
        change: &EpochChange,
        chain_id: &str,
        storage: &shutong_storage::Storage,
        net: &dyn NetSink,
    ) {
        let Some(committed) = Gate::committed(storage) else { return };
        let base = self.ahead.last().cloned().unwrap_or(committed);
        if change.epoch != base.epoch + 1 {
            return;
        }
        match shutong_types::epoch::verify_change(chain_id, storage.suite(), &base, change) {
            Ok(next) => {
                tracing::info!(epoch = next.epoch, start_height = next.start_height, %peer, "a later epoch proven by a peer");
                self.ahead.push(next);
                self.update(storage, net);
                self.asked = None;
                net.send(peer, &NetMessage::EpochRequest { epoch: change.epoch + 1 });
            }
            Err(reason) => {
                tracing::warn!(epoch = change.epoch, %peer, %reason, "a peer's epoch proof does not hold");
                net.penalise(peer, Misbehaviour::Invalid);
            }
        }
    }
}

/// Answers a peer's `EpochRequest` with the proof, if this node has it.
pub fn serve_epoch(storage: &shutong_storage::Storage, net: &dyn NetSink, to: PeerId, epoch: u64) {
    if let Some(change) = epoch_change(storage, epoch) {
        net.send(to, &NetMessage::EpochProof(Box::new(change)));
    }
}

/// The proof that `epoch` began, from this node's committed blocks and state; `None` if it
/// has not begun here, or the state it needs is pruned.
pub fn epoch_change(storage: &shutong_storage::Storage, epoch: u64) -> Option<EpochChange> {
    let start = storage.epoch_start(epoch).filter(|s| *s > 0)?;
    let last = start - 1;
    let last_header = storage.block(last)?.header;
    let certificate = storage.certificate(last)?;
    // The proofs stored when the epoch began (a pruning node drops the state they came
    // from); else, proven now: header `last` carries the state after block `last − 1`.
    if let Some(stored) = storage.epoch_proofs(epoch) {
        let proven = |(value, proof)| ProvenValue { value, proof };
        return Some(EpochChange {
            epoch,
            start_height: start,
            last_header,
            certificate,
            validators: proven(stored.validators),
            pending: proven(stored.pending),
        });
    }
    let version = last.checked_sub(1)?;
    let prove = |key: Vec<u8>| {
        let (value, proof) = shutong_execution::state_tree::prove(storage, version, &key).ok()?;
        Some(ProvenValue { value, proof })
    };
    Some(EpochChange {
        epoch,
        start_height: start,
        last_header,
        certificate,
        validators: prove(shutong_execution::epochs::validators_key())?,
        pending: prove(shutong_execution::epochs::pending_key())?,
    })
}

impl NetSink for NetHandle {
    fn send(&self, to: PeerId, message: &NetMessage) {
        NetHandle::send(self, Command::Send(to, message.encode()));
    }

    fn broadcast(&self, message: &NetMessage) {
        NetHandle::send(self, Command::Broadcast(message.encode()));
    }

    fn penalise(&self, peer: PeerId, what: Misbehaviour) {
        NetHandle::send(self, Command::Penalise(peer, what));
    }

    fn set_validators(&self, validators: Vec<Member>) {
        NetHandle::send(self, Command::SetValidators(validators));
    }

    fn expect(&self, joining: Vec<Member>) {
        NetHandle::send(self, Command::Expect(joining));
    }
}

/// The sender of a peer's message and the message; `None` (logged, and the sender
/// penalised) for bytes that do not decode.
pub fn decode(inbound: Inbound, net: &dyn NetSink) -> Option<(PeerId, NetMessage)> {
    match <NetMessage as shutong_types::Decode>::decode(&inbound.bytes) {
        Ok(message) => Some((inbound.from, message)),
        Err(err) => {
            tracing::debug!(peer = %inbound.from, %err, "undecodable message dropped");
            net.penalise(inbound.from, Misbehaviour::Undecodable);
            None
        }
    }
}

pub fn encoded_len<T: Encode>(value: &T) -> usize {
    value.encode().len()
}

/// How many committed blocks a slow subscriber may fall behind before it misses some.
const NOTICES_BUFFERED: usize = 1_024;

/// What the status RPC shows of consensus, and the feed of committed blocks subscribers read.
#[derive(Debug)]
pub struct ChainStatus {
    pub view: AtomicU64,
    pub finalized_view: AtomicU64,
    /// Set when this node follows the chain as a full node rather than voting.
    pub full_node: std::sync::atomic::AtomicBool,
    pub committed: tokio::sync::broadcast::Sender<Arc<shutong_api::rpc::BlockNotice>>,
    pub metrics: crate::metrics::Metrics,
    /// Whether the disk takes writes ([`crate::disk`]).
    pub disk: crate::disk::DiskStatus,
}

impl Default for ChainStatus {
    fn default() -> ChainStatus {
        ChainStatus {
            view: AtomicU64::default(),
            finalized_view: AtomicU64::default(),
            full_node: std::sync::atomic::AtomicBool::new(false),
            committed: tokio::sync::broadcast::channel(NOTICES_BUFFERED).0,
            metrics: crate::metrics::Metrics::default(),
            disk: crate::disk::DiskStatus::default(),
        }
    }
}

/// The notice subscribers get of a committed block.
fn notice(block: &Block, output: &BlockOutput) -> shutong_api::rpc::BlockNotice {
    let header = &block.header;
    let events = output
        .receipts
        .iter()
        .flat_map(|r| {
            r.events.iter().map(move |e| shutong_api::rpc::EventNotice {
                height: header.height,
                tx_id: r.tx_id,
                contract: e.contract,
                topic: e.topic.clone(),
                data_hex: hex::encode(&e.data),
            })
        })
        .collect();
    shutong_api::rpc::BlockNotice {
        height: header.height,
        hash: header.hash(),
        timestamp_ms: header.timestamp_ms,
        txs: block.txs.iter().map(|tx| tx.id()).collect(),
        failed: output.receipts.iter().filter(|r| !r.status.is_success()).map(|r| r.tx_id).collect(),
        events,
    }
}

/// Writes a block and what executing it produced in one atomic batch, then updates the
/// metrics, the mempool and `pending_txs`, and tells subscribers. Validators and full
/// nodes commit through here. If the write fails nothing of the block is stored, and
/// nothing else happens.
pub fn commit_block(
    view: &NodeView,
    status: &ChainStatus,
    mempool: &Mutex<Mempool>,
    clock: &dyn Clock,
    block: &Block,
    certificate: Option<&Certificate>,
    output: &BlockOutput,
) -> Result<(), StorageError> {
    let header = &block.header;
    let started = clock.now();
    view.storage.commit(Commit::executed(block, certificate, output))?;
    let m = &status.metrics;
    m.block_commit.observe(clock.now().saturating_duration_since(started).as_secs_f64());
    m.observe_commit(header, output);
    let dropped = mempool.lock().expect("mempool lock poisoned").prune(view);
    // The block's own transactions left `pending_txs` in its commit batch; the rest that
    // left the pool (expired, or their nonce used by another) leave it now.
    if !dropped.is_empty() {
        let included: HashSet<Hash> = block.txs.iter().map(|tx| tx.id()).collect();
        for id in dropped.iter().filter(|id| !included.contains(*id)) {
            // Left behind, it is refused and forgotten when the node next starts.
            if let Err(err) = view.storage.forget_pending(id) {
                tracing::warn!(%err, "a transaction that left the pool stays in pending_txs");
                break;
            }
        }
    }
    if status.committed.receiver_count() > 0 {
        // A subscriber gone or lagging is its own affair: sending never blocks.
        let _ = status.committed.send(Arc::new(notice(block, output)));
    }
    if !block.txs.is_empty() || header.height.is_multiple_of(50) {
        tracing::info!(height = header.height, view = header.view, txs = block.txs.len(), gas = output.gas_used, state_root = %output.state_root, "committed block");
    } else {
        tracing::debug!(height = header.height, view = header.view, "committed empty block");
    }
    Ok(())
}

/// Whether a final block's header disagrees with the roots this node computed for its
/// parent (the tip); logged, since committing must then stop.
pub fn diverges(tip: &Tip, block: &Block) -> bool {
    let diverges = !block.header.commits(&tip.roots());
    if diverges {
        tracing::error!(
            height = block.header.height,
            header_state_root = %block.header.state_root,
            local_state_root = %tip.state_root,
            "a finalized block's header disagrees with this node's execution; committing stops"
        );
    }
    diverges
}

/// Executes a final block on the committed tip, timed; `None` (logged) if it cannot be now.
pub fn execute_final(
    executor: &Executor,
    status: &ChainStatus,
    clock: &dyn Clock,
    block: &Block,
) -> Option<BlockOutput> {
    let started = clock.now();
    match executor.execute(block) {
        Ok(output) => {
            status.metrics.block_execute.observe(clock.now().saturating_duration_since(started).as_secs_f64());
            Some(output)
        }
        Err(err) => {
            tracing::error!(height = block.header.height, %err, "finalized block could not be executed");
            None
        }
    }
}

/// Committed blocks from `from_height` on, each with its certificate if it has one, at most
/// `count` (and [`BLOCKS_PER_MESSAGE_MAX`]) of them and about [`BLOCK_BYTES_MAX`] in all.
pub fn committed_from(storage: &Storage, from_height: u64, count: u32) -> Vec<(Block, Option<Certificate>)> {
    let tip = storage.tip().map_or(0, |t| t.height);
    let mut blocks = Vec::new();
    let mut bytes = 0;
    let end = from_height.saturating_add(count.min(BLOCKS_PER_MESSAGE_MAX) as u64);
    for height in from_height..end.min(tip.saturating_add(1)) {
        let Some(block) = storage.block(height) else { break };
        bytes += encoded_len(&block);
        if bytes > BLOCK_BYTES_MAX && !blocks.is_empty() {
            break;
        }
        blocks.push((block, storage.certificate(height)));
    }
    blocks
}

/// Splits transactions, in order, into batches of at most [`BATCH_TXS_MAX`] transactions
/// and about [`BATCH_BYTES_MAX`] bytes.
pub fn split_into_batches(txs: Vec<shutong_types::SignedTransaction>) -> Vec<Vec<shutong_types::SignedTransaction>> {
    let mut batches = Vec::new();
    let mut batch = Vec::new();
    let mut bytes = 0;
    for tx in txs {
        let size = encoded_len(&tx);
        if !batch.is_empty() && (batch.len() == BATCH_TXS_MAX as usize || bytes + size > BATCH_BYTES_MAX) {
            batches.push(std::mem::take(&mut batch));
            bytes = 0;
        }
        bytes += size;
        batch.push(tx);
    }
    if !batch.is_empty() {
        batches.push(batch);
    }
    batches
}

/// A committed block a peer sent that links to the tip by hash.
#[derive(Debug)]
pub struct Linked {
    pub block: Block,
    pub certificate: Option<Certificate>,
    pub hash: Hash,
    /// What the caller's check said of this block ([`linked_run`]'s `finality`).
    pub finality: Option<Finality>,
}

/// The run of `blocks` (committed blocks a peer sent, in height order) that extends `tip`
/// and that something makes final. Blocks at or below the tip are skipped; the run links by
/// hash and height, and `finality` says of each linked block whether it is final (its
/// certificate's check, or the engine's own finalization): the run ends at the last final
/// block before the first `Invalid` or `LaterEpoch`. Only then are bodies checked, in
/// order, and the run ends at the first whose body is not its own: transactions other than
/// the ones its header names, or a signature that does not verify. A peer that altered a
/// body would otherwise pass it off under a real header: executing it would look like this
/// node diverging from the chain, and storing it would serve forged signatures. Checking
/// the headers' finality first means a peer cannot make this node verify the signatures
/// of blocks nothing finalizes.
pub fn linked_run(
    tip: &Tip,
    blocks: Vec<(Block, Option<Certificate>)>,
    mut finality: impl FnMut(&Hash, Option<&Certificate>) -> Option<Finality>,
) -> Vec<Linked> {
    let mut linked: Vec<Linked> = Vec::new();
    let mut previous = tip.hash;
    let mut final_end = 0;
    for (block, certificate) in blocks {
        if block.header.height <= tip.height {
            continue;
        }
        if block.header.parent != previous || block.header.height != tip.height + 1 + linked.len() as u64 {
            break;
        }
        previous = block.header.hash();
        let said = finality(&previous, certificate.as_ref());
        linked.push(Linked { block, certificate, hash: previous, finality: said });
        match said {
            Some(Finality::Final) => final_end = linked.len(),
            Some(Finality::Invalid | Finality::LaterEpoch) => break,
            None => {}
        }
    }
    linked.truncate(final_end);
    if let Some(bad) = linked.iter().position(|l| !body_is_its_own(&l.block)) {
        linked.truncate(bad);
    }
    linked
}

/// Whether `block`'s transactions are the ones its header names, each signed by its sender.
/// The header commits to transaction ids, which leave out the signature.
fn body_is_its_own(block: &Block) -> bool {
    Block::txs_root(block.header.suite, &block.txs) == block.header.txs_root
        && block.txs.iter().all(|tx| tx.verify(block.header.suite).is_ok())
}

/// What a certificate that came with a synced block says of it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Finality {
    /// A valid finalization of this block by a quorum of the epoch's validators.
    Final,
    /// A later epoch's certificate: its set is known once this epoch's end commits.
    LaterEpoch,
    /// Not a valid finalization of this block.
    Invalid,
}

/// Checks `certificate` as the finalization of the block `hash` by epoch `epoch`'s
/// `validators` on chain `chain_id`.
pub fn check_finalization(
    certificate: &Certificate,
    hash: &Hash,
    chain_id: &str,
    epoch: u64,
    validators: &[PublicKey],
) -> Finality {
    if certificate.subject.epoch != epoch {
        return Finality::LaterEpoch;
    }
    let quorum = shutong_types::quorum(validators.len());
    let valid = certificate.subject.kind == VoteKind::Finalize
        && certificate.subject.digest == *hash
        && certificate.verify(chain_id, validators, quorum).is_ok();
    if valid { Finality::Final } else { Finality::Invalid }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use shutong_types::{Keypair, Roots, VoteSubject};
    use std::sync::Mutex;

    fn all_final(_: &Hash, _: Option<&Certificate>) -> Option<Finality> {
        Some(Finality::Final)
    }

    fn chain(from: &Block, n: u64) -> Vec<Block> {
        let mut blocks = Vec::new();
        let mut parent = from.header.hash();
        for height in from.header.height + 1..=from.header.height + n {
            let block = Block::empty("sync", height, parent);
            parent = block.header.hash();
            blocks.push(block);
        }
        blocks
    }

    #[test]
    fn a_synced_run_links_to_the_tip_by_hash_and_height_and_stops_at_the_first_gap() {
        let genesis = Block::empty("sync", 0, Hash::of(shutong_types::Suite::Ed25519Blake3, "test", b"none"));
        let blocks = chain(&genesis, 5);
        let tip = Tip::after(
            &blocks[1].header,
            Roots { state: Hash([0; 32]), receipts: Hash([0; 32]), audit: Hash([0; 32]), audit_size: 0 },
        );
        let offered: Vec<_> = blocks.iter().cloned().map(|b| (b, None)).collect();
        let run = linked_run(&tip, offered.clone(), all_final);
        assert_eq!(run.iter().map(|l| l.block.header.height).collect::<Vec<_>>(), [3, 4, 5], "below the tip skipped");
        assert_eq!(run[0].hash, blocks[2].header.hash());
        // A block that claims the right parent but the wrong height ends the run.
        let mut forged = blocks[3].clone();
        forged.header.height = 9;
        let run = linked_run(&tip, vec![offered[2].clone(), (forged, None), offered[4].clone()], all_final);
        assert_eq!(run.len(), 1);
        // One that does not name the tip links nothing.
        assert!(linked_run(&tip, vec![offered[3].clone()], all_final).is_empty());
    }

    /// What a gate told the network.
    #[derive(Debug, Default)]
    struct Seen {
        expected: Mutex<Vec<Vec<Member>>>,
        sent: Mutex<Vec<NetMessage>>,
        penalties: std::sync::atomic::AtomicU64,
    }

    impl NetSink for Seen {
        fn send(&self, _: PeerId, message: &NetMessage) {
            self.sent.lock().unwrap().push(message.clone());
        }
        fn broadcast(&self, _: &NetMessage) {}
        fn penalise(&self, _: PeerId, _: Misbehaviour) {
            self.penalties.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        }
        fn set_validators(&self, _: Vec<Member>) {}
        fn expect(&self, joining: Vec<Member>) {
            self.expected.lock().unwrap().push(joining);
        }
    }

    #[test]
    fn a_node_behind_lets_in_the_validators_a_peer_proves_and_no_others() {
        use shutong_execution::epochs::{pending_key, validators_key};
        use shutong_execution::genesis::{CommitteeMember, Genesis, GenesisValidator};
        use shutong_system_api::governance::PendingSet;
        let keys: Vec<Keypair> = (0..4).map(|i| Keypair::from_seed(&format!("gate-{i}"))).collect();
        let old: Vec<PublicKey> = keys.iter().map(Keypair::public).collect();
        let validators = old.iter().enumerate().map(|(i, k)| GenesisValidator::new(&format!("v{i}"), *k)).collect();
        let committee = CommitteeMember::departments(&[Keypair::from_seed("gate-seat").account()]);
        let genesis = Genesis::new("gate", 1_000, validators, committee);
        let dir = tempfile::tempdir().unwrap();
        let storage = Storage::open(dir.path(), shutong_types::Suite::Ed25519Blake3).unwrap();
        crate::init_storage(&storage, &genesis).unwrap();

        // Elsewhere the chain went on: a change replacing validator 3 was scheduled to take
        // effect at 20, and header 19, the epoch's last, carries that state.
        let joining = Keypair::from_seed("gate-joining").public();
        let new: Vec<PublicKey> = old[..3].iter().copied().chain([joining]).collect();
        let mut writes = genesis.state();
        let pending = PendingSet {
            activation_height: 20,
            keys: new.iter().map(PublicKey::to_key_bytes).collect(),
            transports: vec![None; 4],
            proposer: [0; 32],
        };
        writes.insert(pending_key(), Some(pending.encode()));
        let mut tree = shutong_execution::state_tree::MemoryTree::new(shutong_types::Suite::Ed25519Blake3);
        let root = tree.apply(0, &writes).unwrap();
        let mut header = Block::empty("gate", 19, Hash::of(shutong_types::Suite::Ed25519Blake3, "test", b"18")).header;
        header.state_root = root;
        header.validator_set = shutong_types::validator_set_hash(shutong_types::Suite::Ed25519Blake3, &old);
        let certify = |signers: usize| {
            let subject = VoteSubject { kind: VoteKind::Finalize, epoch: 0, view: 30, digest: header.hash() };
            let votes: Vec<_> = (0..signers).map(|i| (i, subject.sign("gate", &keys[i]))).collect();
            Certificate::new(subject, 4, &votes)
        };
        let prove = |key: Vec<u8>| {
            let (value, proof) = shutong_execution::state_tree::prove(&tree, 0, &key).unwrap();
            ProvenValue { value, proof }
        };
        let change = EpochChange {
            epoch: 1,
            start_height: 20,
            last_header: header.clone(),
            certificate: certify(3),
            validators: prove(validators_key()),
            pending: prove(pending_key()),
        };
        let peer = shutong_p2p::peer_id(&old[0]).unwrap();
        let (net, mut gate) = (Seen::default(), Gate::default());

        // Behind: the node asks the peer for the epoch after its own.
        gate.behind(peer, &storage, &net, std::time::Instant::now());
        assert!(matches!(net.sent.lock().unwrap().last(), Some(NetMessage::EpochRequest { epoch: 1 })));
        // Forged: another scheduled set, or a header certified by two of four.
        let mut forged = change.clone();
        let other =
            PendingSet { keys: vec![Keypair::from_seed("gate-other").public().to_key_bytes()], ..pending.clone() };
        forged.pending.value = Some(other.encode());
        gate.on_proof(peer, &forged, "gate", &storage, &net);
        let mut uncertified = change.clone();
        uncertified.certificate = certify(2);
        gate.on_proof(peer, &uncertified, "gate", &storage, &net);
        assert_eq!(net.penalties.load(std::sync::atomic::Ordering::Relaxed), 2);
        assert!(net.expected.lock().unwrap().is_empty(), "nothing let in on a proof that does not hold");
        // The real proof: the joining validator is let in, and the peer asked for the next.
        gate.on_proof(peer, &change, "gate", &storage, &net);
        assert_eq!(net.expected.lock().unwrap().last(), Some(&Member::of_set(&new, &[])));
        assert!(matches!(net.sent.lock().unwrap().last(), Some(NetMessage::EpochRequest { epoch: 2 })));
    }

    #[test]
    fn a_synced_run_ends_at_its_last_final_block_and_no_later_body_is_checked() {
        let genesis = Block::empty("sync", 0, Hash::of(shutong_types::Suite::Ed25519Blake3, "test", b"none"));
        let blocks = chain(&genesis, 6);
        let tip = Tip::after(
            &genesis.header,
            Roots { state: Hash([0; 32]), receipts: Hash([0; 32]), audit: Hash([0; 32]), audit_size: 0 },
        );
        let offered: Vec<_> = blocks.iter().cloned().map(|b| (b, None)).collect();
        let at = |heights: &'static [u64]| {
            move |hash: &Hash, _: Option<&Certificate>| {
                heights.iter().any(|h| blocks[*h as usize - 1].header.hash() == *hash).then_some(Finality::Final)
            }
        };
        let heights = |run: Vec<Linked>| run.iter().map(|l| l.block.header.height).collect::<Vec<_>>();
        assert_eq!(heights(linked_run(&tip, offered.clone(), at(&[2, 4]))), [1, 2, 3, 4], "up to the last final one");
        assert!(linked_run(&tip, offered.clone(), |_, _| None).is_empty(), "nothing final, nothing taken");
        // A certificate that does not check ends the run where it stands.
        let mut seen = 0;
        let stop_at_third = |_: &Hash, _: Option<&Certificate>| {
            seen += 1;
            Some(if seen == 3 { Finality::Invalid } else { Finality::Final })
        };
        assert_eq!(heights(linked_run(&tip, offered.clone(), stop_at_third)), [1, 2]);
        // A forged signature after the last final block does not matter; one before it ends
        // the run there.
        let mut forged = offered.clone();
        let mut tx = signed_tx();
        tx.signature = shutong_types::Signature([7; 64]);
        forged[4].0.txs.push(tx);
        forged[4].0.header.txs_root = Block::txs_root(shutong_types::Suite::Ed25519Blake3, &forged[4].0.txs);
        let relinked: Vec<_> = {
            // Re-link the headers above the altered one so only its body is at fault.
            let mut parent = forged[3].0.header.hash();
            forged
                .into_iter()
                .enumerate()
                .map(|(i, (mut b, c))| {
                    if i >= 4 {
                        b.header.parent = parent;
                        parent = b.header.hash();
                    }
                    (b, c)
                })
                .collect()
        };
        let final_two =
            |hash: &Hash, _: Option<&Certificate>| (*hash == relinked[1].0.header.hash()).then_some(Finality::Final);
        assert_eq!(heights(linked_run(&tip, relinked.clone(), final_two)), [1, 2]);
        assert_eq!(heights(linked_run(&tip, relinked, all_final)), [1, 2, 3, 4], "the bad body ends the run");
    }

    fn signed_tx() -> shutong_types::SignedTransaction {
        let key = Keypair::from_seed("sender");
        let call = shutong_types::Call { contract: shutong_types::Address([1; 32]), method: "m".into(), args: vec![] };
        shutong_types::Transaction {
            chain_id: "sync".into(),
            sender: key.account(),
            nonce: 0,
            gas_limit: 1,
            expiry_height: 9,
            call,
        }
        .sign(&key)
    }

    #[test]
    fn a_synced_run_ends_at_a_real_header_over_a_body_not_its_own() {
        let genesis = Block::empty("sync", 0, Hash::of(shutong_types::Suite::Ed25519Blake3, "test", b"none"));
        let tip = Tip::after(
            &genesis.header,
            Roots { state: Hash([0; 32]), receipts: Hash([0; 32]), audit: Hash([0; 32]), audit_size: 0 },
        );
        let mut first = Block::empty("sync", 1, genesis.header.hash());
        first.txs.push(signed_tx());
        first.header.txs_root = Block::txs_root(shutong_types::Suite::Ed25519Blake3, &first.txs);
        let second = Block::empty("sync", 2, first.header.hash());
        let offer = |first: &Block| vec![(first.clone(), None), (second.clone(), None)];
        assert_eq!(linked_run(&tip, offer(&first), all_final).len(), 2, "the honest run links");
        // A transaction left out, or one another signer's: not the header's transactions.
        let mut dropped = first.clone();
        dropped.txs.clear();
        assert!(linked_run(&tip, offer(&dropped), all_final).is_empty());
        // The same transaction with a forged signature: the id is the same, the body is not.
        let mut forged = first.clone();
        forged.txs[0].signature = Keypair::from_seed("forger").sign(&forged.txs[0].id().0);
        assert_eq!(Block::txs_root(shutong_types::Suite::Ed25519Blake3, &forged.txs), first.header.txs_root);
        assert!(linked_run(&tip, offer(&forged), all_final).is_empty());
    }

    #[test]
    fn a_synced_certificate_is_final_only_for_its_block_epoch_and_quorum() {
        let keys: Vec<Keypair> = (0..4).map(|i| Keypair::from_seed(&format!("v{i}"))).collect();
        let validators: Vec<PublicKey> = keys.iter().map(Keypair::public).collect();
        let block = Block::empty("sync", 1, Hash::of(shutong_types::Suite::Ed25519Blake3, "test", b"parent"));
        let hash = block.header.hash();
        let certify = |signers: &[usize], kind, epoch| {
            let subject = VoteSubject { kind, epoch, view: 1, digest: hash };
            let votes: Vec<_> = signers.iter().map(|i| (*i, subject.sign("sync", &keys[*i]))).collect();
            Certificate::new(subject, 4, &votes)
        };
        let check = |c: &Certificate, h: &Hash| check_finalization(c, h, "sync", 0, &validators);
        assert_eq!(check(&certify(&[0, 1, 2], VoteKind::Finalize, 0), &hash), Finality::Final);
        assert_eq!(check(&certify(&[0, 1], VoteKind::Finalize, 0), &hash), Finality::Invalid, "below quorum");
        assert_eq!(check(&certify(&[0, 1, 2], VoteKind::Notarize, 0), &hash), Finality::Invalid);
        assert_eq!(
            check(
                &certify(&[0, 1, 2], VoteKind::Finalize, 0),
                &Hash::of(shutong_types::Suite::Ed25519Blake3, "x", b"y")
            ),
            Finality::Invalid
        );
        assert_eq!(check(&certify(&[0, 1, 2], VoteKind::Finalize, 1), &hash), Finality::LaterEpoch);
    }
}
