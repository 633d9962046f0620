//! The consensus driver: carries out the consensus engine's effects against storage, the
//! mempool, the executor and the network, checks other leaders' blocks before the engine
//! may vote for them, builds this validator's own, and fetches blocks it lacks.
//!
//! It runs on its own thread: execution is synchronous CPU work. The host contract of
//! `shutong_consensus` holds here: a vote is synced to the write-ahead log before any later
//! effect (so before it can be sent), and finalized blocks are executed and committed in
//! height order.
//!
//! Blocks that are proposed but not yet final are held in memory, executed on demand on top
//! of their uncommitted ancestors (a header carries the state root after its parent, so a
//! child can only be checked, or built, once its parent has run). A block is committed when
//! a finalization certificate covers it or a descendant.
//!
//! A node that lacks blocks gets them two ways. A proposal whose parent it missed makes it
//! ask the proposer for the parent by digest. A finalization it cannot connect to its tip
//! (it was down, or partitioned) makes it ask peers, in turn, for committed blocks from its
//! tip on; each answer is linked to the tip by hash and made final by a certificate it
//! carries or by the finalization the engine already holds.

use crate::config::ConsensusConfig;
use crate::mempool::{AdmitError, ChainView, Mempool};
use crate::view::NodeView;
use shutong_consensus::wire::{BATCH_TXS_MAX, BLOCKS_PER_MESSAGE_MAX, Batch, CompactProposal, NetMessage};
use shutong_consensus::{
    Config as EngineConfig, Ed25519, Effect, Engine, Finalized, Input, Message, Proposal, SignedVote, Timer,
    VIEW_LOOKAHEAD,
};
use shutong_execution::epochs::Epoch;
use shutong_execution::executor::{BlockOutput, Executor};
use shutong_p2p::PeerId;
use shutong_p2p::network::{Command, Inbound, NetHandle};
use shutong_storage::{Commit, Storage, Tip, WalEntry};
use shutong_types::limits::BLOCK_BYTES_MAX;
use shutong_types::{
    AccountId, Address, Block, BlockHeader, Certificate, Encode, Hash, Keypair, PublicKey, Roots, VoteKind,
    validator_set_hash,
};
use shutong_vm::state::StateReader;
use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::{Receiver, RecvTimeoutError};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

/// The longest the driver sleeps without looking at its timers.
const IDLE_WAKE: Duration = Duration::from_millis(500);
/// How far ahead of this node's clock a proposal's timestamp may be.
pub const CLOCK_DRIFT_MS: u64 = 5_000;
/// Bounds on the blocks held in memory that are not committed yet.
const HELD_BLOCKS_MAX: usize = 2_048;
const HELD_BYTES_MAX: usize = 256 << 20;
/// Bounds on proposals waiting for their parent, and on digests asked for.
const WAITING_MAX: usize = 64;
const WANTED_MAX: usize = 1_024;
/// How often block sync asks again while a finalized block cannot be connected to the tip.
const SYNC_RETRY: Duration = Duration::from_millis(500);
/// How often transactions clients submitted here are sealed into a batch and pushed.
const BATCH_INTERVAL: Duration = Duration::from_millis(20);
/// The largest batch this node seals.
const BATCH_BYTES_MAX: usize = 1 << 20;
/// Bounds on the batches held: by bytes, and by age in committed blocks.
const BATCHES_BYTES_MAX: usize = 256 << 20;
const BATCH_AGE_MAX: u64 = 256;

/// A batch held for proposals that may name it.
#[derive(Debug)]
struct HeldBatch {
    batch: Arc<Batch>,
    /// The committed height when it arrived; old batches are dropped.
    height: u64,
    bytes: usize,
}

/// What reaches the driver's thread.
#[derive(Debug)]
pub enum Event {
    Net(Inbound),
    Shutdown,
}

/// How many incoming messages may wait for the driver.
pub const MAILBOX_MAX: usize = 8_192;

/// The driver's mailbox, as the network's inbox: a full mailbox drops the message.
#[derive(Debug, Clone)]
pub struct Mailbox(pub std::sync::mpsc::SyncSender<Event>);

impl shutong_p2p::Inbox for Mailbox {
    fn deliver(&self, inbound: Inbound) -> bool {
        self.0.try_send(Event::Net(inbound)).is_ok()
    }
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
}

impl Default for ChainStatus {
    fn default() -> ChainStatus {
        ChainStatus {
            view: AtomicU64::default(),
            finalized_view: AtomicU64::default(),
            full_node: std::sync::atomic::AtomicBool::new(false),
            committed: tokio::sync::broadcast::channel(NOTICES_BUFFERED).0,
            metrics: crate::metrics::Metrics::default(),
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
/// nodes commit through here.
pub(crate) fn commit_block(
    view: &NodeView,
    status: &ChainStatus,
    mempool: &Mutex<Mempool>,
    block: &Block,
    certificate: Option<&Certificate>,
    output: &BlockOutput,
) {
    let header = &block.header;
    let started = Instant::now();
    view.storage.commit(Commit::executed(block, certificate, output));
    let m = &status.metrics;
    m.block_commit.observe(started.elapsed().as_secs_f64());
    m.observe_commit(header, output);
    let dropped = mempool.lock().expect("mempool lock poisoned").prune(view);
    // The block's own transactions left `pending_txs` in its commit batch; the rest that
    // left the pool (expired, or their nonce used by another) leave it now.
    if !dropped.is_empty() {
        let included: HashSet<Hash> = block.txs.iter().map(|tx| tx.id()).collect();
        for id in dropped.iter().filter(|id| !included.contains(*id)) {
            view.storage.forget_pending(id);
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
}

/// Whether a final block's header disagrees with the roots this node computed for its
/// parent (the tip); logged, since committing must then stop.
pub(crate) fn diverges(tip: &Tip, block: &Block) -> bool {
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
pub(crate) fn execute_final(executor: &Executor, status: &ChainStatus, block: &Block) -> Option<BlockOutput> {
    let started = Instant::now();
    match executor.execute(block) {
        Ok(output) => {
            status.metrics.block_execute.observe(started.elapsed().as_secs_f64());
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
pub(crate) fn committed_from(storage: &Storage, from_height: u64, count: u32) -> Vec<(Block, Option<Certificate>)> {
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
pub(crate) fn split_into_batches(
    txs: Vec<shutong_types::SignedTransaction>,
) -> Vec<Vec<shutong_types::SignedTransaction>> {
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

/// A block the engine asked this validator to build.
#[derive(Debug, Clone, Copy)]
struct Requested {
    view: u64,
    parent: Hash,
    parent_view: u64,
    /// Blocks are paced: built no earlier than `block_interval_ms` after the request.
    ready_at: Instant,
}

/// A block held in memory until it is committed, with its execution once something needed it.
#[derive(Debug)]
struct Held {
    block: Arc<Block>,
    bytes: usize,
    output: Option<Arc<BlockOutput>>,
}

/// What a block is built on, or checked against: its parent and the state after it.
#[derive(Debug, Clone)]
struct ParentState {
    view: u64,
    height: u64,
    timestamp_ms: u64,
    state_root: Hash,
    receipts_root: Hash,
    audit_root: Hash,
    audit_size: u64,
    /// The outputs of the uncommitted blocks up to and including the parent, oldest first.
    layers: Vec<Arc<BlockOutput>>,
}

impl ParentState {
    fn roots(&self) -> Roots {
        Roots {
            state: self.state_root,
            receipts: self.receipts_root,
            audit: self.audit_root,
            audit_size: self.audit_size,
        }
    }
}

/// Why a proposal was not handed to the engine.
#[derive(Debug)]
enum Reject {
    ParentMissing(Hash),
    Invalid(String),
}

/// Where walking back from a finalized digest to the tip ended.
enum Path {
    /// The digests to commit, oldest first.
    Complete(Vec<Hash>),
    Missing(Hash),
    /// The digest is not a descendant of the tip: it is committed already, or it conflicts.
    NotAbove,
}

pub struct Chain {
    view: NodeView,
    key: Keypair,
    engine: Engine<Ed25519>,
    executor: Executor,
    mempool: Arc<Mutex<Mempool>>,
    cfg: ConsensusConfig,
    net: NetHandle,
    peers: Vec<PeerId>,
    status: Arc<ChainStatus>,
    requested: Option<Requested>,
    /// The view, digest and parent view of this validator's latest proposal.
    proposed: Option<(u64, Hash, u64)>,
    held: HashMap<Hash, Held>,
    held_bytes: usize,
    /// The digest the engine accepted as a proposal in each view, so a leader's second
    /// (equivocating) proposal only reaches the engine as a vote.
    proposals: BTreeMap<u64, Hash>,
    waiting: BTreeMap<u64, (Block, u64, SignedVote, PeerId)>,
    wanted: HashSet<Hash>,
    /// The engine's latest finalization, until it is committed.
    target: Option<(u64, Hash, Certificate)>,
    /// Finalization certificates that came with synced blocks, checked.
    certified: HashMap<Hash, Certificate>,
    sync_at: Option<Instant>,
    sync_peer: usize,
    batches: HashMap<Hash, HeldBatch>,
    batches_bytes: usize,
    /// Where each transaction of a held batch is: (batch digest, index).
    located: HashMap<Hash, (Hash, u32)>,
    batch_seq: u64,
    next_seal: Instant,
    /// Compact proposals waiting for batches, by view.
    waiting_batches: BTreeMap<u64, (CompactProposal, PeerId)>,
    /// Set when this node's execution disagreed with a finalized header: it stops committing.
    diverged: bool,
    /// Set when a validator-set change removed this node's key: it stops taking part.
    retired: bool,
    /// Pending timers by deadline (the sequence number keeps equal deadlines apart).
    timers: BTreeMap<(Instant, u64), (u64, Timer)>,
    timer_seq: u64,
}

impl std::fmt::Debug for Chain {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Chain").field("view", &self.engine.view()).finish_non_exhaustive()
    }
}

fn encoded_len<T: Encode>(value: &T) -> usize {
    value.encode().len()
}

pub(crate) fn now_ms() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_millis() as u64)
}

/// Admission's view of the chain as it will be after a not yet committed parent: nonces
/// come from the state after it, so a block never repeats what an ancestor holds.
struct AfterParent<'a> {
    view: &'a NodeView,
    state: Arc<dyn StateReader>,
    next_height: u64,
}

impl ChainView for AfterParent<'_> {
    fn chain_id(&self) -> &str {
        &self.view.chain_id
    }

    fn next_height(&self) -> u64 {
        self.next_height
    }

    fn committed_nonce(&self, account: &AccountId) -> u64 {
        shutong_execution::executor::decode_nonce(self.state.get(&shutong_types::keyspace::account_nonce(account)))
    }

    fn check_call(&self, contract: &Address, method: &str) -> Result<(), AdmitError> {
        self.view.check_call(contract, method)
    }
}

impl Chain {
    pub fn new(
        view: NodeView,
        key: Keypair,
        engine_cfg: EngineConfig,
        executor: Executor,
        mempool: Arc<Mutex<Mempool>>,
        cfg: ConsensusConfig,
        net: NetHandle,
        status: Arc<ChainStatus>,
    ) -> Option<Chain> {
        let me = key.public();
        let peers = engine_cfg.validators.iter().filter(|k| **k != me).filter_map(shutong_p2p::peer_id).collect();
        let engine = Engine::new(engine_cfg, key.clone(), Ed25519)?;
        Some(Chain {
            view,
            key,
            engine,
            executor,
            mempool,
            cfg,
            net,
            peers,
            status,
            requested: None,
            proposed: None,
            held: HashMap::new(),
            held_bytes: 0,
            proposals: BTreeMap::new(),
            waiting: BTreeMap::new(),
            wanted: HashSet::new(),
            target: None,
            certified: HashMap::new(),
            sync_at: None,
            sync_peer: 0,
            batches: HashMap::new(),
            batches_bytes: 0,
            located: HashMap::new(),
            batch_seq: now_ms(),
            next_seal: Instant::now(),
            waiting_batches: BTreeMap::new(),
            diverged: false,
            retired: false,
            timers: BTreeMap::new(),
            timer_seq: 0,
        })
    }

    fn storage(&self) -> &Storage {
        &self.view.storage
    }

    fn validators(&self) -> &[PublicKey] {
        &self.engine.config().validators
    }

    /// Runs until [`Event::Shutdown`] arrives or every sender is dropped. Call
    /// [`Chain::start`] first.
    pub fn run(mut self, events: Receiver<Event>) {
        loop {
            let now = Instant::now();
            let next_timer = self.timers.keys().next().map(|(at, _)| *at);
            let next_build = self.requested.map(|r| r.ready_at);
            let wake = [next_timer, next_build, self.sync_at, Some(self.next_seal)]
                .into_iter()
                .flatten()
                .min()
                .unwrap_or(now + IDLE_WAKE);
            match events.recv_timeout(wake.saturating_duration_since(now).min(IDLE_WAKE)) {
                Ok(Event::Net(inbound)) => self.on_message(inbound),
                Err(RecvTimeoutError::Timeout) => {}
                Ok(Event::Shutdown) | Err(RecvTimeoutError::Disconnected) => return,
            }
            if self.next_seal <= Instant::now() {
                self.seal();
                self.next_seal = Instant::now() + BATCH_INTERVAL;
            }
            if self.retired {
                continue;
            }
            self.fire_timers();
            if let Some(requested) = self.requested.filter(|r| r.ready_at <= Instant::now()) {
                self.propose(requested);
            }
            if self.sync_at.is_some_and(|at| at <= Instant::now()) {
                self.sync();
            }
            self.status.view.store(self.engine.view(), Ordering::Relaxed);
            self.status.finalized_view.store(self.engine.finalized().view, Ordering::Relaxed);
        }
    }

    fn fire_timers(&mut self) {
        let now = Instant::now();
        while let Some(entry) = self.timers.first_entry() {
            if entry.key().0 > now {
                break;
            }
            let (view, timer) = entry.remove();
            self.step(Input::Timeout { view, timer });
        }
    }

    fn step(&mut self, input: Input) {
        match self.engine.step(input) {
            Ok(effects) => self.apply(effects),
            Err(err) => tracing::debug!(%err, "consensus input refused"),
        }
    }

    /// [`Self::step`] for a peer's message: a refusal that no honest peer causes costs the
    /// peer points (`shutong_p2p::peer_guard`). A stale or early message is refused without blame.
    fn step_from(&mut self, from: PeerId, input: Input) {
        use shutong_consensus::Error;
        use shutong_p2p::peer_guard::Misbehaviour;
        match self.engine.step(input) {
            Ok(effects) => self.apply(effects),
            Err(err) => {
                tracing::debug!(%err, peer = %from, "consensus input refused");
                let blame = match err {
                    Error::BadSignature { .. } => Some(Misbehaviour::BadSignature),
                    Error::UnknownSigner { .. }
                    | Error::NullifyWithDigest { .. }
                    | Error::NotLeader { .. }
                    | Error::ProposalVoteMismatch { .. }
                    | Error::ParentNotEarlier { .. } => Some(Misbehaviour::Invalid),
                    _ => None,
                };
                if let Some(what) = blame {
                    self.net.send(Command::Penalise(from, what));
                }
            }
        }
    }

    fn send(&self, to: PeerId, message: &NetMessage) {
        self.net.send(Command::Send(to, message.encode()));
    }

    fn broadcast(&self, message: &NetMessage) {
        self.net.send(Command::Broadcast(message.encode()));
    }

    /// Recovers from the write-ahead log, then starts the engine with this validator's own
    /// logged votes, so a restart never signs a vote that conflicts with one signed before.
    pub fn start(&mut self) {
        let mut tip = self.view.tip();
        let wal = self.storage().wal();
        if let Some(block) = self.recover_finalized(&tip, &wal) {
            tip = self.view.tip();
            tracing::info!(height = block, "recovered a finalized block from the write-ahead log");
        }
        // Own proposals in the log may be the parent of what the others built on.
        for entry in &wal {
            if let Some(block) = &entry.block
                && block.header.height > tip.height
            {
                self.hold(block.clone());
            }
        }
        let epoch = self.engine.config().epoch;
        let own_votes = wal.into_iter().map(|e| e.vote).filter(|v| v.subject.epoch == epoch).collect();
        let certificate = self.storage().certificate(tip.height);
        // The view that finalized the tip: its own, or a later one that re-proposed it.
        let view = certificate.as_ref().map_or(tip.view, |c| c.subject.view.max(tip.view));
        let finalized = Finalized { view, digest: tip.hash, certificate };
        self.step(Input::Start { finalized, own_votes });
        tracing::info!(height = tip.height, view = self.engine.view(), epoch, "consensus started");
        // A block recovered from the log may have ended the epoch.
        self.maybe_switch_epoch();
    }

    /// The validator set for `height`, in the state after `parent`.
    fn epoch_at(&self, parent: &ParentState, height: u64) -> Option<Epoch> {
        let state = self.executor.state_after(parent.layers.clone());
        shutong_execution::epochs::validators_for(&*state, height)
    }

    /// After the last block of an epoch is committed, restarts the engine in the next epoch
    /// with the new set, from that block and its finalization.
    fn maybe_switch_epoch(&mut self) {
        let tip = self.view.tip();
        let Some(next) = shutong_execution::epochs::validators_for(self.storage(), tip.height + 1) else { return };
        if next.epoch == self.engine.config().epoch {
            return;
        }
        let certificate = self.storage().certificate(tip.height);
        let view = certificate.as_ref().map_or(tip.view, |c| c.subject.view.max(tip.view));
        let finalized = Finalized { view, digest: tip.hash, certificate };
        tracing::info!(
            epoch = next.epoch,
            from_height = tip.height + 1,
            validators = next.validators.len(),
            "validator set changed: new epoch"
        );
        self.net.send(Command::SetValidators(next.validators.clone()));
        let me = self.key.public();
        self.peers = next.validators.iter().filter(|k| **k != me).filter_map(shutong_p2p::peer_id).collect();
        let cfg = EngineConfig {
            chain_id: self.view.chain_id.clone(),
            epoch: next.epoch,
            validators: next.validators,
            timeouts: self.engine.config().timeouts,
        };
        let Some(engine) = Engine::new(cfg, self.key.clone(), Ed25519) else {
            tracing::warn!(
                epoch = next.epoch,
                "this node's key is not in the new validator set: it no longer takes part in consensus \
                 (it still serves blocks; restarted, it follows the chain as a full node)"
            );
            self.retired = true;
            return;
        };
        self.engine = engine;
        self.requested = None;
        self.proposed = None;
        self.proposals.clear();
        self.waiting.clear();
        self.waiting_batches.clear();
        self.timers.clear();
        self.target = None;
        let epoch = self.engine.config().epoch;
        let own_votes = self.storage().wal().into_iter().map(|e| e.vote).filter(|v| v.subject.epoch == epoch).collect();
        self.step(Input::Start { finalized, own_votes });
    }

    /// A block this validator proposed and finalized alone (a one-validator chain), whose
    /// commit a crash cut off.
    fn recover_finalized(&mut self, tip: &Tip, wal: &[WalEntry]) -> Option<u64> {
        let cfg = self.engine.config().clone();
        for entry in wal.iter().filter(|e| e.vote.subject.kind == VoteKind::Finalize && e.vote.subject.view > tip.view)
        {
            let subject = entry.vote.subject;
            let stored = wal
                .iter()
                .filter(|e| e.vote.subject.view == subject.view && e.vote.subject.digest == subject.digest)
                .find_map(|e| e.block.clone());
            // Without the block (another leader's proposal), block sync fetches it.
            let Some(block) = stored else { continue };
            if block.header.parent != tip.hash || block.header.height != tip.height + 1 {
                continue;
            }
            let votes = [(entry.vote.signer as usize, entry.vote.signature)];
            let certificate = Certificate::new(subject, cfg.validators.len(), &votes);
            if certificate.verify(&cfg.chain_id, &cfg.validators, cfg.quorum()).is_err() {
                // Not a quorum on its own: the other validators' votes are needed.
                continue;
            }
            let height = block.header.height;
            let hash = self.hold(block);
            if self.commit_path(&[hash], Some(&certificate)) {
                return Some(height);
            }
        }
        None
    }

    // ---- Blocks held in memory ----------------------------------------------------------

    /// Holds a block that is not committed yet; returns its digest. Blocks beyond the
    /// memory bounds are not held (they will be asked for again if needed).
    fn hold(&mut self, block: Block) -> Hash {
        let hash = block.header.hash();
        if self.held.contains_key(&hash) || block.header.height <= self.view.tip().height {
            return hash;
        }
        let bytes = encoded_len(&block);
        // Whatever is held may be executed, so its cost must be bounded whoever sent it.
        if let Err(reason) = self.within_limits(&block, bytes) {
            tracing::warn!(%hash, %reason, "block over the limits not held");
            return hash;
        }
        if self.held.len() >= HELD_BLOCKS_MAX || self.held_bytes + bytes > HELD_BYTES_MAX {
            tracing::warn!(%hash, held = self.held.len(), "too many uncommitted blocks held; dropping one");
            return hash;
        }
        self.held_bytes += bytes;
        self.held.insert(hash, Held { block: Arc::new(block), bytes, output: None });
        hash
    }

    /// The checks that bound what executing a block costs: transaction count, bytes and
    /// declared gas, and that the transactions are the ones the header names.
    fn within_limits(&self, block: &Block, bytes: usize) -> Result<(), String> {
        if block.header.chain_id != self.view.chain_id {
            return Err(format!("chain id {:?}", block.header.chain_id));
        }
        if block.txs.len() > self.cfg.block_txs_max as usize || bytes > BLOCK_BYTES_MAX {
            return Err(format!("{} transactions or {bytes} bytes is over the limit", block.txs.len()));
        }
        let gas: u64 = block.txs.iter().map(|tx| tx.tx.gas_limit).fold(0, u64::saturating_add);
        if gas > self.cfg.block_gas_max {
            return Err(format!("declares {gas} gas, over the block limit"));
        }
        if Block::txs_root(&block.txs) != block.header.txs_root {
            return Err("transactions root does not match".into());
        }
        Ok(())
    }

    fn is_known(&self, hash: &Hash) -> bool {
        *hash == self.view.tip().hash || self.held.contains_key(hash)
    }

    /// The state after `parent` (the tip, or a held block, executed now if it was not yet).
    fn parent_state(&mut self, parent: &Hash) -> Option<ParentState> {
        // The uncommitted chain from the tip to `parent`, oldest first.
        let Path::Complete(chain) = self.path_to(parent) else { return None };
        let tip = self.view.tip();
        let mut state = ParentState {
            view: tip.view,
            height: tip.height,
            timestamp_ms: tip.timestamp_ms,
            state_root: tip.state_root,
            receipts_root: tip.receipts_root,
            audit_root: tip.audit_root,
            audit_size: tip.audit_size,
            layers: Vec::new(),
        };
        for hash in chain {
            let held = self.held.get(&hash).expect("walked above");
            let block = Arc::clone(&held.block);
            let output = match &held.output {
                Some(output) => Arc::clone(output),
                None => {
                    let started = Instant::now();
                    let output = match self.executor.execute_after(&block, state.layers.clone()) {
                        Ok(output) => {
                            self.status.metrics.block_execute.observe(started.elapsed().as_secs_f64());
                            Arc::new(output)
                        }
                        Err(err) => {
                            // Not the block's fault as far as anyone can prove: this node just
                            // cannot execute it now. It neither votes on nor builds over it.
                            tracing::error!(height = block.header.height, %err, "block could not be executed");
                            return None;
                        }
                    };
                    self.held.get_mut(&hash).expect("walked above").output = Some(Arc::clone(&output));
                    output
                }
            };
            state.view = block.header.view;
            state.height = block.header.height;
            state.timestamp_ms = block.header.timestamp_ms;
            state.state_root = output.state_root;
            state.receipts_root = output.receipts_root;
            state.audit_root = output.log.root;
            state.audit_size = output.log.size;
            state.layers.push(output);
        }
        Some(state)
    }

    // ---- Messages from peers --------------------------------------------------------------

    fn on_message(&mut self, inbound: Inbound) {
        let Some((from, message)) = inbound.decode(&self.net) else { return };
        if self.retired
            && !matches!(
                message,
                NetMessage::BlockRequest { .. } | NetMessage::SyncRequest { .. } | NetMessage::BatchRequest(_)
            )
        {
            return;
        }
        match message {
            NetMessage::Consensus(Message::Vote(vote)) => self.step_from(from, Input::Vote(vote)),
            NetMessage::Consensus(Message::Certificate(certificate)) => {
                self.step_from(from, Input::Certificate(certificate))
            }
            NetMessage::Consensus(Message::CertificateRequest { views }) => {
                let mut sent = HashSet::new();
                for view in views {
                    for certificate in self.engine.certificates(view) {
                        if sent.insert(certificate.subject) {
                            self.send(from, &NetMessage::Consensus(Message::Certificate(certificate)));
                        }
                    }
                }
            }
            NetMessage::Proposal { block, parent_view, vote } => self.on_proposal(from, block, parent_view, vote),
            NetMessage::BlockRequest { digest, ancestors } => self.serve_blocks(from, digest, ancestors),
            NetMessage::Blocks(blocks) => self.on_blocks(blocks),
            NetMessage::SyncRequest { from_height, count } => self.serve_sync(from, from_height, count),
            NetMessage::SyncBlocks(blocks) => self.on_sync_blocks(blocks),
            NetMessage::Batch(batch) => self.on_batch(batch),
            NetMessage::CompactProposal(proposal) => self.on_compact_proposal(from, proposal),
            NetMessage::BatchRequest(digests) => {
                for digest in digests {
                    if let Some(held) = self.batches.get(&digest) {
                        self.send(from, &NetMessage::Batch((*held.batch).clone()));
                    }
                }
            }
        }
    }

    // ---- Batches ----------------------------------------------------------------------------

    /// Seals what clients submitted here since the last seal into batches and pushes them
    /// to every validator, ahead of any proposal that includes them.
    fn seal(&mut self) {
        let fresh = self.mempool.lock().expect("mempool lock poisoned").take_fresh();
        self.seal_txs(fresh.iter().map(|tx| (**tx).clone()).collect());
    }

    fn seal_txs(&mut self, txs: Vec<shutong_types::SignedTransaction>) {
        for batch in split_into_batches(txs) {
            self.push_batch(batch);
        }
    }

    fn push_batch(&mut self, txs: Vec<shutong_types::SignedTransaction>) {
        self.batch_seq += 1;
        let batch = Batch { author: self.key.public(), seq: self.batch_seq, txs };
        self.broadcast(&NetMessage::Batch(batch.clone()));
        self.store_batch(batch);
    }

    /// Holds a batch and indexes its transactions; false if it is over the memory bound.
    fn store_batch(&mut self, batch: Batch) -> bool {
        let digest = batch.digest();
        if self.batches.contains_key(&digest) {
            return true;
        }
        let bytes = encoded_len(&batch);
        if self.batches_bytes + bytes > BATCHES_BYTES_MAX {
            tracing::warn!(%digest, held = self.batches.len(), "too many batches held; dropping one");
            return false;
        }
        for (i, tx) in batch.txs.iter().enumerate() {
            self.located.entry(tx.id()).or_insert((digest, i as u32));
        }
        self.batches_bytes += bytes;
        let height = self.view.tip().height;
        self.batches.insert(digest, HeldBatch { batch: Arc::new(batch), height, bytes });
        true
    }

    /// Another validator's batch: held for proposals, and its transactions admitted to the
    /// mempool (which checks each, signature included) so that any leader can include them.
    fn on_batch(&mut self, batch: Batch) {
        if batch.txs.is_empty() || self.batches.contains_key(&batch.digest()) {
            return;
        }
        {
            let mut pool = self.mempool.lock().expect("mempool lock poisoned");
            for tx in &batch.txs {
                // Refusals are expected (already committed, a duplicate nonce) and harmless:
                // a proposal that includes an invalid one is refused when it is checked.
                let _ = pool.admit_from_peer(&tx.encode(), &self.view);
            }
        }
        if self.store_batch(batch) {
            self.retry_waiting_batches();
        }
    }

    fn prune_batches(&mut self) {
        let tip = self.view.tip().height;
        let old: Vec<Hash> =
            self.batches.iter().filter(|(_, b)| b.height + BATCH_AGE_MAX < tip).map(|(d, _)| *d).collect();
        for digest in old {
            if let Some(held) = self.batches.remove(&digest) {
                self.batches_bytes -= held.bytes;
                for tx in &held.batch.txs {
                    let id = tx.id();
                    if self.located.get(&id).is_some_and(|(d, _)| *d == digest) {
                        self.located.remove(&id);
                    }
                }
            }
        }
    }

    fn on_compact_proposal(&mut self, from: PeerId, proposal: CompactProposal) {
        let view = proposal.vote.subject.view;
        if view <= self.engine.finalized().view || view > self.engine.view() + VIEW_LOOKAHEAD {
            return;
        }
        let missing: Vec<Hash> = proposal.batches.iter().filter(|d| !self.batches.contains_key(d)).copied().collect();
        if !missing.is_empty() {
            if self.waiting_batches.len() < WAITING_MAX {
                self.waiting_batches.insert(view, (proposal, from));
            }
            self.send(from, &NetMessage::BatchRequest(missing));
            return;
        }
        let mut txs = Vec::with_capacity(proposal.positions.len());
        for (batch, index) in &proposal.positions {
            let tx = proposal
                .batches
                .get(*batch as usize)
                .and_then(|digest| self.batches.get(digest))
                .and_then(|held| held.batch.txs.get(*index as usize));
            match tx {
                Some(tx) => txs.push(tx.clone()),
                None => {
                    tracing::warn!(view, peer = %from, "proposal names a transaction its batches do not have");
                    return;
                }
            }
        }
        let block = Block { header: proposal.header, txs };
        self.on_proposal(from, block, proposal.parent_view, proposal.vote);
    }

    fn retry_waiting_batches(&mut self) {
        let ready: Vec<u64> = self
            .waiting_batches
            .iter()
            .filter(|(_, (p, _))| p.batches.iter().all(|d| self.batches.contains_key(d)))
            .map(|(view, _)| *view)
            .collect();
        for view in ready {
            if let Some((proposal, from)) = self.waiting_batches.remove(&view) {
                self.on_compact_proposal(from, proposal);
            }
        }
    }

    /// This validator's block by batch digests, if every transaction is in a held batch.
    fn compact(&self, block: &Block, parent_view: u64, vote: &SignedVote) -> Option<CompactProposal> {
        let mut batches = Vec::new();
        let mut index: HashMap<Hash, u32> = HashMap::new();
        let mut positions = Vec::with_capacity(block.txs.len());
        for tx in &block.txs {
            let (digest, i) = self.located.get(&tx.id())?;
            let b = *index.entry(*digest).or_insert_with(|| {
                batches.push(*digest);
                batches.len() as u32 - 1
            });
            positions.push((b, *i));
        }
        (batches.len() <= shutong_consensus::wire::BATCHES_PER_MESSAGE_MAX as usize).then(|| CompactProposal {
            header: block.header.clone(),
            batches,
            positions,
            parent_view,
            vote: vote.clone(),
        })
    }

    fn on_proposal(&mut self, from: PeerId, block: Block, parent_view: u64, vote: SignedVote) {
        let view = vote.subject.view;
        let digest = block.header.hash();
        if view <= self.engine.finalized().view || view > self.engine.view() + VIEW_LOOKAHEAD {
            return;
        }
        if vote.subject.kind != VoteKind::Notarize || vote.subject.digest != digest {
            tracing::debug!(peer = %from, view, "proposal whose vote does not match its block dropped");
            return;
        }
        if block.header.view != view {
            return self.on_reproposal(from, block, parent_view, vote);
        }
        match self.proposals.get(&view) {
            Some(first) if *first == digest => return,
            // A second block from one leader in one view: only its vote matters (evidence).
            Some(_) => return self.step_from(from, Input::Vote(vote)),
            None => {}
        }
        match self.check_proposal(&block, parent_view) {
            Ok(()) => {
                self.proposals.insert(view, digest);
                let parent = block.header.parent;
                self.hold(block);
                self.step_from(
                    from,
                    Input::Proposal { proposal: Proposal { view, digest, parent, parent_view }, vote },
                );
                // It may be the parent a later view's proposal is waiting for.
                self.retry_waiting();
            }
            Err(Reject::ParentMissing(parent)) => {
                if self.waiting.len() < WAITING_MAX {
                    self.waiting.insert(view, (block, parent_view, vote, from));
                }
                self.request_block(from, parent);
            }
            Err(Reject::Invalid(reason)) => {
                tracing::warn!(view, %digest, peer = %from, %reason, "invalid proposal: not voting for it");
                self.net.send(Command::Penalise(from, shutong_p2p::peer_guard::Misbehaviour::Invalid));
                // The leader's own vote still counts toward evidence if it equivocates.
                self.proposals.insert(view, digest);
            }
        }
    }

    /// A later view's leader proposing again the last block of the epoch, which may only be
    /// finalized, never extended, in this epoch (`docs/network.md`). The engine checks that
    /// it is notarized in `parent_view` with every view since nullified.
    fn on_reproposal(&mut self, from: PeerId, block: Block, parent_view: u64, vote: SignedVote) {
        let view = vote.subject.view;
        let digest = vote.subject.digest;
        if self.proposals.contains_key(&view) {
            return self.step_from(from, Input::Vote(vote));
        }
        // Only a block this node already holds (it checked it as a proposal, or fetched it as a
        // notarized parent) or has committed may be re-proposed to it.
        drop(block);
        let Some(state) = self.parent_state(&digest) else {
            tracing::debug!(view, %digest, "re-proposal of a block this node does not hold");
            return;
        };
        let epoch = self.engine.config().epoch;
        if self.epoch_at(&state, state.height + 1).is_none_or(|next| next.epoch == epoch) {
            tracing::warn!(view, %digest, peer = %from, "re-proposal of a block that does not end the epoch: not voting");
            self.proposals.insert(view, digest);
            return;
        }
        self.proposals.insert(view, digest);
        let proposal = Proposal { view, digest, parent: digest, parent_view };
        self.step_from(from, Input::Proposal { proposal, vote });
    }

    /// The host's part of rule 6: the block's contents are valid on top of its parent.
    fn check_proposal(&mut self, block: &Block, parent_view: u64) -> Result<(), Reject> {
        let invalid = |reason: String| Err(Reject::Invalid(reason));
        let header = &block.header;
        self.within_limits(block, encoded_len(block)).map_err(Reject::Invalid)?;
        let leader = self.engine.config().leader(header.view) as usize;
        if header.proposer != self.validators()[leader] {
            return invalid(format!("proposer {} is not the leader of view {}", header.proposer, header.view));
        }
        if header.validator_set != validator_set_hash(self.validators()) {
            return invalid("validator set hash is not the current set's".into());
        }
        let parent = self.parent_state(&header.parent).ok_or(Reject::ParentMissing(header.parent))?;
        if parent.view != parent_view {
            return invalid(format!("parent view is {}, not the claimed {parent_view}", parent.view));
        }
        let epoch = self.engine.config().epoch;
        if self.epoch_at(&parent, header.height).is_none_or(|e| e.epoch != epoch) {
            return invalid(format!("height {} is beyond the end of epoch {epoch}", header.height));
        }
        if header.height != parent.height + 1 {
            return invalid(format!("height {} does not follow the parent's {}", header.height, parent.height));
        }
        if header.timestamp_ms <= parent.timestamp_ms || header.timestamp_ms > now_ms() + CLOCK_DRIFT_MS {
            return invalid(format!("timestamp {} is not after its parent's or is in the future", header.timestamp_ms));
        }
        if !header.commits(&parent.roots()) {
            return invalid("state, receipts or audit-log root is not the one after the parent".into());
        }
        let mut ids = HashSet::with_capacity(block.txs.len());
        let pool = self.mempool.lock().expect("mempool lock poisoned");
        for tx in &block.txs {
            let id = tx.id();
            if !ids.insert(id) {
                return invalid(format!("transaction {id} appears twice"));
            }
            if tx.tx.chain_id != self.view.chain_id {
                return invalid(format!("transaction {id} is for chain {:?}", tx.tx.chain_id));
            }
            // The mempool admitted only transactions whose signature it checked.
            if !pool.contains(&id)
                && let Err(err) = tx.verify()
            {
                return invalid(format!("transaction {id}: {err}"));
            }
        }
        Ok(())
    }

    fn request_block(&mut self, from: PeerId, digest: Hash) {
        if self.wanted.len() >= WANTED_MAX {
            self.wanted.clear();
        }
        self.wanted.insert(digest);
        self.send(from, &NetMessage::BlockRequest { digest, ancestors: 16 });
    }

    fn serve_blocks(&self, to: PeerId, digest: Hash, ancestors: u32) {
        let mut blocks = Vec::new();
        let mut bytes = 0;
        let mut cursor = digest;
        while blocks.len() <= ancestors.min(BLOCKS_PER_MESSAGE_MAX - 1) as usize {
            let block = match self.held.get(&cursor) {
                Some(held) => (*held.block).clone(),
                None => match self.storage().block_by_hash(&cursor) {
                    Some(block) => block,
                    None => break,
                },
            };
            bytes += encoded_len(&block);
            if bytes > BLOCK_BYTES_MAX && !blocks.is_empty() {
                break;
            }
            cursor = block.header.parent;
            let genesis = block.header.height == 0;
            blocks.push(block);
            if genesis {
                break;
            }
        }
        if !blocks.is_empty() {
            self.send(to, &NetMessage::Blocks(blocks));
        }
    }

    /// Blocks asked for by digest: each is taken only if it, or a block it is the parent
    /// of, was asked for, so a peer cannot fill memory with blocks nobody wanted.
    fn on_blocks(&mut self, blocks: Vec<Block>) {
        let mut taken = false;
        for block in blocks {
            let hash = block.header.hash();
            if !self.wanted.remove(&hash) {
                continue;
            }
            let parent = block.header.parent;
            self.hold(block);
            taken = true;
            if !self.is_known(&parent) && self.storage().block_by_hash(&parent).is_none() {
                self.wanted.insert(parent);
            }
        }
        if taken {
            self.after_new_blocks();
        }
    }

    /// Answers even when there is nothing new, so a full node polling for blocks hears
    /// at once that it is caught up.
    fn serve_sync(&self, to: PeerId, from_height: u64, count: u32) {
        self.send(to, &NetMessage::SyncBlocks(committed_from(self.storage(), from_height, count)));
    }

    /// Committed blocks from a peer: taken while they link to the tip by hash; a
    /// certificate with one is checked and makes it (and so what it links to) final.
    fn on_sync_blocks(&mut self, blocks: Vec<(Block, Option<Certificate>)>) {
        let tip = self.view.tip();
        let mut previous = tip.hash;
        let mut certified = false;
        for (block, certificate) in blocks {
            if block.header.height <= tip.height {
                continue;
            }
            if block.header.parent != previous {
                break;
            }
            let hash = self.hold(block);
            if !self.held.contains_key(&hash) {
                break;
            }
            if let Some(certificate) = certificate {
                let cfg = self.engine.config();
                if certificate.subject.epoch != cfg.epoch {
                    // A later epoch's block: its set is known once this epoch's end commits.
                    break;
                }
                let ok = certificate.subject.kind == VoteKind::Finalize
                    && certificate.subject.digest == hash
                    && certificate.verify(&cfg.chain_id, &cfg.validators, cfg.quorum()).is_ok();
                if !ok {
                    tracing::warn!(%hash, "synced block came with an invalid certificate; dropping the rest");
                    break;
                }
                certified = true;
                self.certified.insert(hash, certificate);
            }
            previous = hash;
        }
        if certified || self.target.is_some() {
            self.after_new_blocks();
        }
    }

    /// New blocks may complete a waiting proposal, this validator's own pending proposal,
    /// or a path to a finalized block.
    fn after_new_blocks(&mut self) {
        self.try_commit();
        self.retry_waiting();
    }

    fn retry_waiting(&mut self) {
        let ready: Vec<u64> = self
            .waiting
            .iter()
            .filter(|(_, (block, ..))| self.is_known(&block.header.parent))
            .map(|(view, _)| *view)
            .collect();
        for view in ready {
            if let Some((block, parent_view, vote, from)) = self.waiting.remove(&view) {
                self.on_proposal(from, block, parent_view, vote);
            }
        }
    }

    // ---- Finality and commits ---------------------------------------------------------------

    fn path_to(&self, digest: &Hash) -> Path {
        let tip = self.view.tip();
        let mut path = Vec::new();
        let mut cursor = *digest;
        while cursor != tip.hash {
            match self.held.get(&cursor) {
                Some(held) if held.block.header.height > tip.height => {
                    path.push(cursor);
                    cursor = held.block.header.parent;
                }
                Some(_) => return Path::NotAbove,
                None if self.storage().block_by_hash(&cursor).is_some() => return Path::NotAbove,
                None => return Path::Missing(cursor),
            }
        }
        path.reverse();
        Path::Complete(path)
    }

    /// Commits as far as the finalizations held allow, and starts block sync if the
    /// engine's finalization cannot be reached yet; then moves to the next epoch if the
    /// last block of this one is committed.
    fn try_commit(&mut self) {
        self.commit_final();
        if !self.retired {
            self.maybe_switch_epoch();
        }
    }

    fn commit_final(&mut self) {
        if self.diverged {
            return;
        }
        // Synced blocks made final by their own certificates, highest first.
        let mut certified: Vec<(u64, Hash)> = self
            .certified
            .keys()
            .filter_map(|hash| self.held.get(hash).map(|h| (h.block.header.height, *hash)))
            .collect();
        certified.sort_unstable_by(|a, b| b.cmp(a));
        for (_, hash) in certified {
            if let Path::Complete(path) = self.path_to(&hash) {
                let certificate = self.certified.get(&hash).cloned();
                if self.commit_path(&path, certificate.as_ref())
                    && !self.retired
                    && let Some(certificate) = certificate
                {
                    // The engine may be behind what block sync committed: let it catch up.
                    self.step(Input::Certificate(certificate));
                }
                break;
            }
        }
        let tip = self.view.tip();
        self.certified.retain(|hash, _| self.held.get(hash).is_some_and(|h| h.block.header.height > tip.height));
        let Some((view, digest, certificate)) = self.target.clone() else {
            self.sync_at = None;
            return;
        };
        if view <= tip.view {
            // Committed already, by block sync.
            self.target = None;
            self.sync_at = None;
            return;
        }
        match self.path_to(&digest) {
            Path::Complete(path) => {
                self.target = None;
                self.sync_at = None;
                self.commit_path(&path, Some(&certificate));
            }
            Path::Missing(_) => {
                if self.sync_at.is_none() {
                    self.sync_at = Some(Instant::now());
                }
            }
            Path::NotAbove => {
                tracing::error!(view, %digest, tip = %tip.hash, "a finalized block does not extend the committed chain");
                self.target = None;
            }
        }
    }

    /// Asks the next peer for what is missing: committed blocks from the tip on, and the
    /// finalized block's ancestors by digest (for blocks peers have not committed yet).
    fn sync(&mut self) {
        self.sync_at = None;
        let Some((_, digest, _)) = self.target.clone() else { return };
        let missing = match self.path_to(&digest) {
            Path::Missing(missing) => missing,
            _ => return self.commit_final(),
        };
        if self.peers.is_empty() {
            return;
        }
        let peer = self.peers[self.sync_peer % self.peers.len()];
        self.sync_peer = self.sync_peer.wrapping_add(1);
        let tip = self.view.tip();
        tracing::debug!(%peer, from_height = tip.height + 1, %missing, "block sync");
        self.send(peer, &NetMessage::SyncRequest { from_height: tip.height + 1, count: BLOCKS_PER_MESSAGE_MAX });
        self.request_block(peer, missing);
        self.sync_at = Some(Instant::now() + SYNC_RETRY);
    }

    /// Commits the held blocks of `path` in order; the last one carries `certificate`.
    /// Returns false if this node's execution disagrees with a header (it then stops).
    fn commit_path(&mut self, path: &[Hash], certificate: Option<&Certificate>) -> bool {
        for (i, hash) in path.iter().enumerate() {
            let tip = self.view.tip();
            let Some(held) = self.held.get(hash) else { return false };
            let block = Arc::clone(&held.block);
            if diverges(&tip, &block) {
                self.diverged = true;
                return false;
            }
            let output = match &held.output {
                Some(output) => Arc::clone(output),
                // Retried with the next finalization; nothing is committed meanwhile.
                None => match execute_final(&self.executor, &self.status, &block) {
                    Some(output) => Arc::new(output),
                    None => return false,
                },
            };
            let last = i + 1 == path.len();
            self.commit(&block, if last { certificate } else { None }, &output);
        }
        let height = self.view.tip().height;
        let mut freed = 0;
        self.held.retain(|_, held| {
            let keep = held.block.header.height > height;
            if !keep {
                freed += held.bytes;
            }
            keep
        });
        self.held_bytes -= freed;
        let finalized = self.engine.finalized().view;
        self.proposals = self.proposals.split_off(&(finalized + 1));
        self.waiting = self.waiting.split_off(&(finalized + 1));
        self.waiting_batches = self.waiting_batches.split_off(&(finalized + 1));
        self.prune_batches();
        true
    }

    /// Writes a block and what executing it produced in one atomic batch.
    fn commit(&mut self, block: &Block, certificate: Option<&Certificate>, output: &BlockOutput) {
        commit_block(&self.view, &self.status, &self.mempool, block, certificate, output);
    }

    // ---- This validator's proposals ---------------------------------------------------------

    fn propose(&mut self, requested: Requested) {
        if requested.view != self.engine.view() {
            self.requested = None;
            return;
        }
        let Some(parent) = self.parent_state(&requested.parent) else {
            // The parent is notarized but this node missed it: fetch it and try again.
            self.wanted.insert(requested.parent);
            self.broadcast(&NetMessage::BlockRequest { digest: requested.parent, ancestors: 16 });
            self.requested = Some(Requested { ready_at: Instant::now() + Duration::from_millis(100), ..requested });
            return;
        };
        self.requested = None;
        let epoch = self.engine.config().epoch;
        if self.epoch_at(&parent, parent.height + 1).is_none_or(|e| e.epoch != epoch) {
            // The parent is the epoch's last block: propose it again until a view finalizes it.
            self.proposals.insert(requested.view, requested.parent);
            self.proposed = Some((requested.view, requested.parent, requested.parent_view));
            self.step(Input::Propose { view: requested.view, digest: requested.parent });
            return;
        }
        self.seal();
        let block = self.build(requested.view, requested.parent, &parent);
        // Anything selected that no held batch carries (its batch was dropped as old) goes
        // out in a new batch ahead of the proposal.
        let unbatched: Vec<_> = block.txs.iter().filter(|tx| !self.located.contains_key(&tx.id())).cloned().collect();
        self.seal_txs(unbatched);
        let digest = self.hold(block);
        self.proposals.insert(requested.view, digest);
        self.proposed = Some((requested.view, digest, requested.parent_view));
        self.step(Input::Propose { view: requested.view, digest });
    }

    fn build(&self, view: u64, parent_hash: Hash, parent: &ParentState) -> Block {
        let after = AfterParent {
            view: &self.view,
            state: self.executor.state_after(parent.layers.clone()),
            next_height: parent.height + 1,
        };
        let mut bytes = 0;
        let txs: Vec<_> = {
            let pool = self.mempool.lock().expect("mempool lock poisoned");
            pool.select(self.cfg.block_txs_max as usize, self.cfg.block_gas_max, &after)
                .into_iter()
                .take_while(|tx| {
                    bytes += encoded_len(&**tx);
                    bytes + (64 << 10) <= BLOCK_BYTES_MAX
                })
                .map(|tx| (*tx).clone())
                .collect()
        };
        let header = BlockHeader {
            chain_id: self.view.chain_id.clone(),
            height: parent.height + 1,
            view,
            parent: parent_hash,
            proposer: self.key.public(),
            timestamp_ms: now_ms().max(parent.timestamp_ms + 1),
            txs_root: Block::txs_root(&txs),
            state_root: parent.state_root,
            receipts_root: parent.receipts_root,
            audit_root: parent.audit_root,
            audit_size: parent.audit_size,
            validator_set: validator_set_hash(self.validators()),
        };
        Block { header, txs }
    }

    // ---- The engine's effects ---------------------------------------------------------------

    fn apply(&mut self, effects: Vec<Effect>) {
        for effect in effects {
            match effect {
                Effect::PersistVote(vote) => {
                    let own_proposal = match self.proposed {
                        Some((view, digest, _))
                            if vote.subject.kind == VoteKind::Notarize
                                && vote.subject.view == view
                                && vote.subject.digest == digest =>
                        {
                            self.held.get(&digest).map(|h| (*h.block).clone())
                        }
                        _ => None,
                    };
                    self.storage().persist_vote(&WalEntry { vote, block: own_proposal });
                }
                Effect::BroadcastVote(vote) => self.broadcast(&NetMessage::Consensus(Message::Vote(vote))),
                Effect::BroadcastProposal(vote) => {
                    let block = match self.held.get(&vote.subject.digest) {
                        Some(held) => Some((*held.block).clone()),
                        None => self.storage().block_by_hash(&vote.subject.digest),
                    };
                    match (block, self.proposed) {
                        (Some(block), Some((view, digest, parent_view)))
                            if view == vote.subject.view && digest == vote.subject.digest =>
                        {
                            match self.compact(&block, parent_view, &vote) {
                                Some(compact) => self.broadcast(&NetMessage::CompactProposal(compact)),
                                None => self.broadcast(&NetMessage::Proposal { block, parent_view, vote }),
                            }
                        }
                        _ => tracing::error!(
                            view = vote.subject.view,
                            "the engine proposed a block this node does not hold"
                        ),
                    }
                }
                Effect::BroadcastCertificate(certificate) => {
                    self.broadcast(&NetMessage::Consensus(Message::Certificate(certificate)));
                }
                Effect::RequestCertificates { views } => {
                    self.broadcast(&NetMessage::Consensus(Message::CertificateRequest { views }));
                }
                Effect::ScheduleTimer { view, timer, after_ms } => {
                    self.timer_seq += 1;
                    let at = Instant::now() + Duration::from_millis(after_ms);
                    self.timers.insert((at, self.timer_seq), (view, timer));
                    // Timers of views left behind are harmless but need not pile up.
                    let current = self.engine.view();
                    self.timers.retain(|_, (v, _)| *v + 1 >= current);
                }
                Effect::RequestProposal { view, parent, parent_view } => {
                    let ready_at = Instant::now() + Duration::from_millis(self.cfg.block_interval_ms);
                    self.requested = Some(Requested { view, parent, parent_view, ready_at });
                }
                Effect::Finalized { view, digest, certificate } => {
                    self.target = Some((view, digest, certificate));
                    self.try_commit();
                }
                Effect::Evidence(evidence) => {
                    tracing::warn!(
                        signer = evidence.first.signer,
                        view = evidence.first.subject.view,
                        "validator signed conflicting votes"
                    );
                }
            }
        }
    }
}
