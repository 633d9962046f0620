//! The driver's event loop: one message at a time, then [`Driver::tick`].

use super::state::{
    Batches, HeldBlocks, OwnProposal, ParentState, Path, Rebuild, Requested, Target, Timers, Waiting, WaitingCompact,
    WaitingProposal,
};
use super::{
    ANCESTORS_ASKED, BATCH_INTERVAL, BLOCK_ENVELOPE_BYTES, CLOCK_DRIFT_MS, PARENT_RETRY, RESEND_EVERY, SYNC_RETRY,
};
use crate::chain::{
    self, ChainStatus, Finality, NetSink, commit_block, committed_from, diverges, encoded_len, execute_final,
    split_into_batches,
};
use crate::clock::Clock;
use crate::config::ConsensusConfig;
use crate::disk::DiskGuard;
use crate::mempool::{AdmitError, ChainView, Mempool};
use crate::signing_mark::SigningMark;
use crate::view::NodeView;
use shutong_consensus::wire::{BLOCKS_PER_MESSAGE_MAX, Batch, CompactProposal, NetMessage};
use shutong_consensus::{
    Config as EngineConfig, Ed25519, Effect, Engine, Finalized, Input, Message as ConsensusMessage, Proposal,
    SignedVote, VIEW_LOOKAHEAD,
};
use shutong_execution::epochs::Epoch;
use shutong_execution::executor::{BlockOutput, Executor};
use shutong_p2p::peer_guard::Misbehaviour;
use shutong_p2p::{Inbound, PeerId};
use shutong_storage::{Storage, Tip, WalEntry};
use shutong_types::limits::BLOCK_BYTES_MAX;
use shutong_types::transport::Member;
use shutong_types::{
    AccountId, Address, Block, BlockHeader, Certificate, Hash, PublicKey, Signer, VoteKind, validator_set_hash,
};
use shutong_vm::state::StateReader;
use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};
use std::time::Instant;

/// Why a proposal was not handed to the engine.
#[derive(Debug)]
enum Reject {
    ParentMissing(Hash),
    Invalid(InvalidBlock),
}

/// What makes a block invalid, whoever sent it: each names the offending values.
#[derive(Debug, thiserror::Error)]
pub enum InvalidBlock {
    #[error("chain id {0:?}")]
    WrongChain(String),
    #[error("protocol version {version} and suite {suite}, not this chain's {expected_version} and {expected_suite}")]
    Protocol { version: u32, suite: &'static str, expected_version: u32, expected_suite: &'static str },
    #[error("{txs} transactions or {bytes} bytes is over the limit")]
    TooLarge { txs: usize, bytes: usize },
    #[error("declares {gas} gas, over the block limit")]
    TooMuchGas { gas: u64 },
    #[error("transactions root does not match")]
    TxsRoot,
    #[error("proposer {proposer} is not the leader of view {view}")]
    NotLeader { proposer: PublicKey, view: u64 },
    #[error("validator set hash is not the current set's")]
    ValidatorSet,
    #[error("parent view is {actual}, not the claimed {claimed}")]
    ParentView { actual: u64, claimed: u64 },
    #[error("height {height} is beyond the end of epoch {epoch}")]
    BeyondEpoch { height: u64, epoch: u64 },
    #[error("height {height} does not follow the parent's {parent}")]
    Height { height: u64, parent: u64 },
    #[error("timestamp {timestamp_ms} is not after its parent's or is in the future")]
    Timestamp { timestamp_ms: u64 },
    #[error("state, receipts or audit-log root is not the one after the parent")]
    Roots,
    #[error("transaction {0} appears twice")]
    DuplicateTx(Hash),
    #[error("transaction {id} is for chain {chain_id:?}")]
    TxWrongChain { id: Hash, chain_id: String },
    #[error("transaction {id}: {error}")]
    TxSignature { id: Hash, error: shutong_types::TxAuthError },
}

/// Block sync's progress: when to ask next, and whom.
#[derive(Debug, Default)]
struct Sync {
    at: Option<Instant>,
    peer: usize,
    /// When a peer in a later epoch was last asked for blocks ([`Driver::sync_to_later_epoch`]).
    later_epoch_at: Option<Instant>,
}

/// The consensus driver of one validator.
pub struct Driver {
    view: NodeView,
    key: Arc<dyn Signer>,
    engine: Engine<Ed25519>,
    executor: Executor,
    mempool: Arc<Mutex<Mempool>>,
    cfg: ConsensusConfig,
    net: Arc<dyn NetSink>,
    clock: Arc<dyn Clock>,
    /// The other validators, to ask for blocks in turn.
    peers: Vec<PeerId>,
    status: Arc<ChainStatus>,
    requested: Option<Requested>,
    proposed: Option<OwnProposal>,
    held: HeldBlocks,
    /// The digest the engine accepted as a proposal in each view, so a leader's second
    /// (equivocating) proposal only reaches the engine as a vote.
    proposals: BTreeMap<u64, Hash>,
    waiting: Waiting,
    target: Option<Target>,
    /// Finalization certificates that came with synced blocks, checked.
    certified: HashMap<Hash, Certificate>,
    sync: Sync,
    batches: Batches,
    batch_seq: u64,
    next_seal: Instant,
    /// When the transactions clients submitted here that are still pending are next
    /// considered for sending again ([`Mempool::resend_due`]).
    next_resend: Instant,
    /// Set when this node's execution disagreed with a finalized header: it stops committing.
    diverged: bool,
    /// Set when a validator-set change removed this node's key: it stops taking part.
    retired: bool,
    gate: crate::chain::Gate,
    /// The chain's crypto suite, from its genesis block: every header names it.
    suite: shutong_types::Suite,
    /// Validators this node reported equivocating in this epoch: one proof is enough for the
    /// committee to act, so a validator that goes on is not reported view after view.
    reported: HashSet<u32>,
    timers: Timers,
    disk: DiskGuard,
    /// The signing high-water mark, outside the database ([`crate::signing_mark`]).
    mark: SigningMark,
    /// This validator's votes whose write-ahead-log write failed, by view and kind: never
    /// sent, however often the engine asks, until written when the disk has room again.
    unsaved: BTreeMap<(u64, u8), SignedVote>,
}

impl std::fmt::Debug for Driver {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Driver").field("view", &self.engine.view()).finish_non_exhaustive()
    }
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

    fn suite(&self) -> shutong_types::Suite {
        self.view.suite()
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

/// What a driver is made of.
#[derive(Debug)]
pub struct Parts {
    pub view: NodeView,
    /// This node's validator key: a key file's, or one in a token.
    pub key: Arc<dyn Signer>,
    pub engine: EngineConfig,
    pub executor: Executor,
    pub mempool: Arc<Mutex<Mempool>>,
    pub cfg: ConsensusConfig,
    pub net: Arc<dyn NetSink>,
    pub clock: Arc<dyn Clock>,
    pub status: Arc<ChainStatus>,
    /// Holds votes and commits back while the disk is full ([`crate::disk`]).
    pub disk: DiskGuard,
    /// The signing high-water mark ([`crate::signing_mark`]).
    pub mark: SigningMark,
}

/// The peer ids of the other validators of a set: their bound transport keys (on an
/// ed25519 chain, their own keys); a validator whose binding does not check has none.
fn peers_of(chain_id: &str, validators: &[Member], me: &PublicKey) -> Vec<PeerId> {
    validators
        .iter()
        .filter(|m| m.key != *me)
        .filter_map(|m| m.peer_key(chain_id).ok())
        .filter_map(|k| shutong_p2p::peer_id(&k))
        .collect()
}

impl Driver {
    /// A driver for `parts`; `None` if its key is not one of the engine's validators.
    pub fn new(parts: Parts) -> Option<Driver> {
        let Parts { view, key, engine, executor, mempool, cfg, net, clock, status, disk, mark } = parts;
        let suite = view.storage.suite();
        // The set's transport keys are in the state the engine's set was read from.
        let members = shutong_execution::epochs::validators_for(&*view.storage, view.tip().height + 1)
            .filter(|e| e.validators == engine.validators)
            .map_or_else(|| Member::of_set(&engine.validators, &[]), |e| e.members());
        let peers = peers_of(&view.chain_id, &members, &key.public());
        let engine = Engine::new(engine, Arc::clone(&key), Ed25519)?;
        status.full_node.store(false, Ordering::Relaxed);
        let now = clock.now();
        Some(Driver {
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
            held: HeldBlocks::default(),
            proposals: BTreeMap::new(),
            waiting: Waiting::default(),
            target: None,
            certified: HashMap::new(),
            sync: Sync::default(),
            batches: Batches::default(),
            batch_seq: clock.unix_ms(),
            next_seal: now,
            next_resend: now + RESEND_EVERY,
            diverged: false,
            retired: false,
            gate: crate::chain::Gate::default(),
            suite,
            reported: HashSet::new(),
            timers: Timers::default(),
            disk,
            mark,
            unsaved: BTreeMap::new(),
            clock,
        })
    }

    fn storage(&self) -> &Storage {
        &self.view.storage
    }

    fn validators(&self) -> &[PublicKey] {
        &self.engine.config().validators
    }

    /// The current view of the engine.
    pub fn engine_view(&self) -> u64 {
        self.engine.view()
    }

    /// Whether a validator-set change removed this node's key: it should follow the chain
    /// as a full node ([`Driver::into_follower`]).
    pub fn retired(&self) -> bool {
        self.retired
    }

    /// The full node this validator becomes once a set change removed it: it follows the
    /// chain from `sources` with the set of the next height, without a restart.
    pub fn into_follower(self, sources: Vec<PeerId>) -> crate::follower::Follower {
        let tip = self.view.tip();
        let epoch = shutong_execution::epochs::validators_for(self.storage(), tip.height + 1).unwrap_or_else(|| {
            Epoch { epoch: self.engine.config().epoch, validators: self.validators().to_vec(), transports: Vec::new() }
        });
        tracing::info!(epoch = epoch.epoch, height = tip.height, "left the validator set: following as a full node");
        let Driver { view, key, executor, mempool, cfg, net, clock, status, disk, mark, .. } = self;
        crate::follower::Follower::new(crate::follower::Parts {
            view,
            key,
            epoch,
            executor,
            mempool,
            net,
            clock,
            status,
            sources,
            block_interval_ms: cfg.block_interval_ms,
            disk,
            mark,
        })
    }

    /// Whether a disk failure stopped this node (`crate::disk`).
    pub fn stopped(&self) -> bool {
        self.status.disk.stopped().borrow().is_some()
    }

    /// Whether a write may be tried now ([`DiskGuard::writable`]).
    fn disk_writable(&mut self) -> bool {
        self.disk.writable(&self.view.storage, &self.status.disk, &*self.clock)
    }

    fn disk_failed(&mut self, err: &shutong_storage::StorageError) {
        self.disk.failed(err, &self.view.storage, &self.status.disk);
    }

    /// The earliest moment something is due: a timer, the paced proposal, block sync, the
    /// next batch.
    pub fn next_wake(&self) -> Option<Instant> {
        [self.timers.next(), self.requested.map(|r| r.ready_at), self.sync.at, Some(self.next_seal)]
            .into_iter()
            .flatten()
            .min()
    }

    /// Does what is due at the clock's time: seals a batch, fires timers, builds the paced
    /// proposal, asks for missing blocks, and publishes the view for the status RPC.
    pub fn tick(&mut self) {
        if self.stopped() {
            return;
        }
        if self.disk.is_full() && self.disk_writable() {
            self.save_unsaved_votes();
            self.try_commit();
        }
        let now = self.clock.now();
        if self.next_seal <= now {
            self.seal();
            self.next_seal = now + BATCH_INTERVAL;
        }
        if self.next_resend <= now {
            let due = self.mempool.lock().expect("mempool lock poisoned").resend_due();
            self.seal_txs(due.iter().map(|tx| (**tx).clone()).collect());
            self.next_resend = now + RESEND_EVERY;
        }
        if self.retired {
            return;
        }
        self.fire_timers();
        if let Some(requested) = self.requested.filter(|r| r.ready_at <= self.clock.now()) {
            self.propose(requested);
        }
        if self.sync.at.is_some_and(|at| at <= self.clock.now()) {
            self.sync();
        }
        self.status.view.store(self.engine.view(), Ordering::Relaxed);
        self.status.finalized_view.store(self.engine.finalized().view, Ordering::Relaxed);
    }

    fn fire_timers(&mut self) {
        while let Some((view, timer)) = self.timers.pop_due(self.clock.now()) {
            self.status.metrics.observe_timeout(timer);
            self.step(Input::Timeout { view, timer });
            if timer == shutong_consensus::Timer::Advance {
                self.poll_for_blocks();
            }
        }
    }

    /// A view ended without a certificate: the chain may have gone on without this
    /// validator (it missed the end of its epoch while down, and a set change removed it, so
    /// no validator sends it anything any more). It asks the next peer for committed blocks
    /// from its tip, at most once per [`SYNC_RETRY`]; what comes back is checked as any
    /// synced block is.
    fn poll_for_blocks(&mut self) {
        if self.peers.is_empty() {
            return;
        }
        let peer = self.peers[self.sync.peer % self.peers.len()];
        self.sync.peer = self.sync.peer.wrapping_add(1);
        self.sync_to_later_epoch(peer);
    }

    fn step(&mut self, input: Input) {
        match self.engine.step(input) {
            Ok(effects) => self.apply(effects),
            Err(err) => tracing::debug!(%err, "consensus input refused"),
        }
    }

    /// [`Self::step`] for a peer's message: a refusal that no honest peer causes costs the
    /// peer points (`shutong_p2p::peer_guard`). A stale or early message is refused without
    /// blame.
    fn step_from(&mut self, from: PeerId, input: Input) {
        use shutong_consensus::Error;
        match self.engine.step(input) {
            Ok(effects) => self.apply(effects),
            Err(Error::WrongEpoch { message_epoch, epoch }) if message_epoch > epoch => self.sync_to_later_epoch(from),
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
                    self.net.penalise(from, what);
                }
            }
        }
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
        // A mark made from nothing (a new home, or one from before the mark) takes the log's
        // votes in first.
        if let Some(last) = wal.iter().map(|e| (e.vote.subject.epoch, e.vote.subject.view)).max()
            && let Err(err) = self.mark.advance(last.0, last.1)
        {
            tracing::error!(%err, "cannot write the signing high-water mark: not voting until it can be written");
            self.mark_failed(err);
        }
        let epoch = self.engine.config().epoch;
        let own_votes: Vec<SignedVote> = wal.into_iter().map(|e| e.vote).filter(|v| v.subject.epoch == epoch).collect();
        let finalized = self.finalized_tip(&tip);
        let vote_floor = self.vote_floor(&finalized, &own_votes);
        self.step(Input::Start { finalized, own_votes, vote_floor });
        tracing::info!(height = tip.height, view = self.engine.view(), epoch, "consensus started");
        // A block recovered from the log may have ended the epoch.
        self.maybe_switch_epoch();
    }

    /// The view the engine must not sign at or below in its epoch: the signing high-water
    /// mark's, when the write-ahead log and the last finalization are behind it (a restored
    /// database, [`crate::signing_mark`]).
    fn vote_floor(&self, finalized: &Finalized, own_votes: &[SignedVote]) -> u64 {
        let epoch = self.engine.config().epoch;
        let logged = own_votes.iter().map(|v| v.subject.view).max().unwrap_or(0).max(finalized.view);
        let floor = self.mark.floor(epoch, logged);
        if floor > 0 {
            let (mark_epoch, mark_view) = self.mark.mark();
            tracing::warn!(
                epoch,
                logged_view = logged,
                mark_epoch,
                mark_view,
                "the write-ahead log is behind the signing high-water mark (a restored database): \
                 not voting in this epoch at or below view {}",
                if floor == u64::MAX { "any".to_string() } else { floor.to_string() }
            );
        }
        floor
    }

    /// The committed tip as the engine's starting finalization: the view that finalized it
    /// (its own, or a later one that re-proposed it) and its certificate.
    fn finalized_tip(&self, tip: &Tip) -> Finalized {
        let certificate = self.storage().certificate(tip.height);
        let view = certificate.as_ref().map_or(tip.view, |c| c.subject.view.max(tip.view));
        Finalized { view, digest: tip.hash, certificate }
    }

    /// The validator set for `height`, in the state after `parent`.
    fn epoch_at(&self, parent: &ParentState, height: u64) -> Option<Epoch> {
        let state = self.executor.state_after(parent.layers.clone());
        shutong_execution::epochs::validators_for(&*state, height)
    }

    /// After the last block of an epoch is committed, restarts the engine in the next epoch
    /// with the new set, from that block and its finalization.
    fn maybe_switch_epoch(&mut self) {
        self.gate.after_commit(&self.view.storage, &*self.net);
        let tip = self.view.tip();
        let Some(next) = shutong_execution::epochs::validators_for(self.storage(), tip.height + 1) else { return };
        if next.epoch == self.engine.config().epoch {
            return;
        }
        let finalized = self.finalized_tip(&tip);
        tracing::info!(
            epoch = next.epoch,
            from_height = tip.height + 1,
            validators = next.validators.len(),
            "validator set changed: new epoch"
        );
        let members = next.members();
        self.net.set_validators(members.clone());
        self.peers = peers_of(&self.view.chain_id, &members, &self.key.public());
        let cfg = EngineConfig {
            chain_id: self.view.chain_id.clone(),
            epoch: next.epoch,
            validators: next.validators,
            timeouts: self.engine.config().timeouts,
        };
        let Some(engine) = Engine::new(cfg, Arc::clone(&self.key), Ed25519) else {
            tracing::warn!(
                epoch = next.epoch,
                "this node's key is not in the new validator set: it no longer takes part in consensus"
            );
            self.retired = true;
            return;
        };
        self.engine = engine;
        self.requested = None;
        self.proposed = None;
        self.proposals.clear();
        self.reported.clear();
        self.waiting.clear_proposals();
        self.timers.clear();
        self.target = None;
        let epoch = self.engine.config().epoch;
        let own_votes: Vec<SignedVote> =
            self.storage().wal().into_iter().map(|e| e.vote).filter(|v| v.subject.epoch == epoch).collect();
        let vote_floor = self.vote_floor(&finalized, &own_votes);
        self.step(Input::Start { finalized, own_votes, vote_floor });
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

    /// Holds a block that is not committed yet; returns its digest. Blocks over the limits or
    /// the memory bounds are not held (they will be asked for again if needed).
    fn hold(&mut self, block: Block) -> Hash {
        let hash = block.header.hash();
        if self.held.contains(&hash) || block.header.height <= self.view.tip().height {
            return hash;
        }
        let bytes = encoded_len(&block);
        // Whatever is held may be executed, so its cost must be bounded whoever sent it.
        if let Err(reason) = self.within_limits(&block, bytes) {
            tracing::warn!(%hash, %reason, "block over the limits not held");
            return hash;
        }
        if !self.held.insert(hash, block, bytes) {
            tracing::warn!(%hash, held = self.held.len(), "too many uncommitted blocks held; dropping one");
        }
        hash
    }

    /// The checks that bound what executing a block costs: transaction count, bytes and
    /// declared gas, and that the transactions are the ones the header names.
    fn within_limits(&self, block: &Block, bytes: usize) -> Result<(), InvalidBlock> {
        if block.header.chain_id != self.view.chain_id {
            return Err(InvalidBlock::WrongChain(block.header.chain_id.clone()));
        }
        if block.txs.len() > self.cfg.block_txs_max as usize || bytes > BLOCK_BYTES_MAX {
            return Err(InvalidBlock::TooLarge { txs: block.txs.len(), bytes });
        }
        let gas: u64 = block.txs.iter().map(|tx| tx.tx.gas_limit).fold(0, u64::saturating_add);
        if gas > self.cfg.block_gas_max {
            return Err(InvalidBlock::TooMuchGas { gas });
        }
        if Block::txs_root(self.suite, &block.txs) != block.header.txs_root {
            return Err(InvalidBlock::TxsRoot);
        }
        Ok(())
    }

    fn is_known(&self, hash: &Hash) -> bool {
        *hash == self.view.tip().hash || self.held.contains(hash)
    }

    fn path_to(&self, digest: &Hash) -> Path {
        let storage = self.storage();
        self.held.path_to(&self.view.tip(), digest, |hash| storage.block_by_hash(hash).is_some())
    }

    /// The state after `parent` (the tip, or a held block, executed now if it was not yet).
    fn parent_state(&mut self, parent: &Hash) -> Option<ParentState> {
        // The uncommitted chain from the tip to `parent`, oldest first.
        let Path::Complete(chain) = self.path_to(parent) else { return None };
        let mut state = ParentState::of_tip(&self.view.tip());
        for hash in chain {
            let held = self.held.get(&hash).expect("walked above");
            let block = Arc::clone(&held.block);
            let output = match &held.output {
                Some(output) => Arc::clone(output),
                None => {
                    let started = self.clock.now();
                    let output = match self.executor.execute_after(&block, state.layers.clone()) {
                        Ok(output) => {
                            let took = self.clock.now().saturating_duration_since(started);
                            self.status.metrics.block_execute.observe(took.as_secs_f64());
                            Arc::new(output)
                        }
                        Err(err) => {
                            // Not the block's fault as far as anyone can prove: this node just
                            // cannot execute it now. It neither votes on nor builds over it.
                            tracing::error!(height = block.header.height, %err, "block could not be executed");
                            return None;
                        }
                    };
                    self.held.set_output(&hash, Arc::clone(&output));
                    output
                }
            };
            state = state.then(&block, output);
        }
        Some(state)
    }

    // ---- Messages from peers --------------------------------------------------------------

    /// Handles one peer's message.
    pub fn on_message(&mut self, inbound: Inbound) {
        let Some((from, message)) = chain::decode(inbound, &*self.net) else { return };
        if self.retired
            && !matches!(
                message,
                NetMessage::BlockRequest { .. }
                    | NetMessage::SyncRequest { .. }
                    | NetMessage::BatchRequest(_)
                    | NetMessage::EpochRequest { .. }
            )
        {
            return;
        }
        match message {
            NetMessage::Consensus(ConsensusMessage::Vote(vote)) => self.step_from(from, Input::Vote(vote)),
            NetMessage::Consensus(ConsensusMessage::Certificate(certificate)) => {
                self.step_from(from, Input::Certificate(certificate))
            }
            NetMessage::Consensus(ConsensusMessage::CertificateRequest { views }) => {
                let mut sent = HashSet::new();
                for view in views {
                    for certificate in self.engine.certificates(view) {
                        if sent.insert(certificate.subject) {
                            self.net.send(from, &NetMessage::Consensus(ConsensusMessage::Certificate(certificate)));
                        }
                    }
                }
            }
            NetMessage::Proposal { block, parent_view, vote } => self.on_proposal(from, block, parent_view, vote),
            NetMessage::BlockRequest { digest, ancestors } => self.serve_blocks(from, digest, ancestors),
            NetMessage::Blocks(blocks) => self.on_blocks(blocks),
            NetMessage::SyncRequest { from_height, count } => {
                // Answered even when there is nothing new, so a full node polling for blocks
                // hears at once that it is caught up.
                let blocks = committed_from(self.storage(), from_height, count);
                self.net.send(from, &NetMessage::SyncBlocks(blocks));
            }
            NetMessage::SyncBlocks(blocks) => self.on_sync_blocks(from, blocks),
            NetMessage::Batch(batch) => self.on_batch(batch),
            NetMessage::CompactProposal(proposal) => self.on_compact_proposal(from, proposal),
            NetMessage::BatchRequest(digests) => {
                for digest in digests {
                    if let Some(batch) = self.batches.get(&digest) {
                        self.net.send(from, &NetMessage::Batch(batch.clone()));
                    }
                }
            }
            NetMessage::EpochRequest { epoch } => chain::serve_epoch(self.storage(), &*self.net, from, epoch),
            NetMessage::EpochProof(change) => {
                self.gate.on_proof(from, &change, &self.view.chain_id, &self.view.storage, &*self.net)
            }
            // Snapshot requests go to the snapshot server (`crate::snapshots`); offers and
            // chunks are for a node joining by state sync.
            NetMessage::SnapshotRequest { .. }
            | NetMessage::SnapshotOffer { .. }
            | NetMessage::ChunkRequest { .. }
            | NetMessage::Chunk { .. } => {}
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
        for txs in split_into_batches(txs) {
            self.batch_seq += 1;
            let batch = Batch { author: self.key.public(), seq: self.batch_seq, txs };
            self.net.broadcast(&NetMessage::Batch(batch.clone()));
            self.store_batch(batch);
        }
    }

    /// Holds a batch and indexes its transactions; false if it is over the memory bound.
    fn store_batch(&mut self, batch: Batch) -> bool {
        let digest = batch.digest();
        let bytes = encoded_len(&batch);
        let stored = self.batches.store(batch, bytes, self.view.tip().height);
        if !stored {
            tracing::warn!(%digest, held = self.batches.len(), "too many batches held; dropping one");
        }
        stored
    }

    /// Another validator's batch: held for proposals, and its transactions admitted to the
    /// mempool (which checks each, signature included) so that any leader can include them.
    fn on_batch(&mut self, batch: Batch) {
        if batch.txs.is_empty() || self.batches.contains(&batch.digest()) {
            return;
        }
        {
            let mut pool = self.mempool.lock().expect("mempool lock poisoned");
            for tx in &batch.txs {
                // Refusals are expected (already committed, a duplicate nonce) and harmless:
                // a proposal that includes an invalid one is refused when it is checked.
                let _ = pool.admit_from_peer(&shutong_types::Encode::encode(tx), &self.view);
            }
        }
        if self.store_batch(batch) {
            self.retry_waiting_batches();
        }
    }

    fn on_compact_proposal(&mut self, from: PeerId, proposal: CompactProposal) {
        let view = proposal.vote.subject.view;
        if view <= self.engine.finalized().view || view > self.engine.view() + VIEW_LOOKAHEAD {
            return;
        }
        match self.batches.rebuild(&proposal) {
            Ok(txs) => {
                let block = Block { header: proposal.header, txs };
                self.on_proposal(from, block, proposal.parent_view, proposal.vote);
            }
            Err(Rebuild::Missing(missing)) => {
                self.waiting.for_batches(view, WaitingCompact { proposal, from });
                self.net.send(from, &NetMessage::BatchRequest(missing));
            }
            Err(Rebuild::BadPosition { batch, index }) => {
                tracing::warn!(view, peer = %from, batch, index, "proposal names a transaction its batches do not have");
            }
        }
    }

    fn retry_waiting_batches(&mut self) {
        let ready: Vec<u64> = self
            .waiting
            .batches
            .iter()
            .filter(|(_, w)| w.proposal.batches.iter().all(|d| self.batches.contains(d)))
            .map(|(view, _)| *view)
            .collect();
        for view in ready {
            if let Some(WaitingCompact { proposal, from }) = self.waiting.batches.remove(&view) {
                self.on_compact_proposal(from, proposal);
            }
        }
    }

    // ---- Proposals from other leaders --------------------------------------------------------

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
            return self.on_reproposal(from, parent_view, vote);
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
                self.waiting.for_parent(view, WaitingProposal { block, parent_view, vote, from });
                self.request_block(from, parent);
            }
            Err(Reject::Invalid(reason)) => {
                tracing::warn!(view, %digest, peer = %from, %reason, "invalid proposal: not voting for it");
                self.net.penalise(from, Misbehaviour::Invalid);
                // The leader's own vote still counts toward evidence if it equivocates.
                self.proposals.insert(view, digest);
            }
        }
    }

    /// A later view's leader proposing again the last block of the epoch, which may only be
    /// finalized, never extended, in this epoch (`docs/network.md`). The engine checks that
    /// it is notarized in `parent_view` with every view since nullified. Only a block this
    /// node already holds (it checked it as a proposal, or fetched it as a notarized parent)
    /// or has committed may be re-proposed to it.
    fn on_reproposal(&mut self, from: PeerId, parent_view: u64, vote: SignedVote) {
        let view = vote.subject.view;
        let digest = vote.subject.digest;
        if self.proposals.contains_key(&view) {
            return self.step_from(from, Input::Vote(vote));
        }
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
        let invalid = |why: InvalidBlock| Err(Reject::Invalid(why));
        let header = &block.header;
        self.within_limits(block, encoded_len(block)).map_err(Reject::Invalid)?;
        if header.protocol_version != shutong_types::PROTOCOL_VERSION || header.suite != self.suite {
            return invalid(InvalidBlock::Protocol {
                version: header.protocol_version,
                suite: header.suite.name(),
                expected_version: shutong_types::PROTOCOL_VERSION,
                expected_suite: self.suite.name(),
            });
        }
        let leader = self.engine.config().leader(header.view) as usize;
        if header.proposer != self.validators()[leader] {
            return invalid(InvalidBlock::NotLeader { proposer: header.proposer, view: header.view });
        }
        if header.validator_set != validator_set_hash(self.suite, self.validators()) {
            return invalid(InvalidBlock::ValidatorSet);
        }
        let parent = self.parent_state(&header.parent).ok_or(Reject::ParentMissing(header.parent))?;
        if parent.view != parent_view {
            return invalid(InvalidBlock::ParentView { actual: parent.view, claimed: parent_view });
        }
        let epoch = self.engine.config().epoch;
        if self.epoch_at(&parent, header.height).is_none_or(|e| e.epoch != epoch) {
            return invalid(InvalidBlock::BeyondEpoch { height: header.height, epoch });
        }
        if header.height != parent.height + 1 {
            return invalid(InvalidBlock::Height { height: header.height, parent: parent.height });
        }
        if header.timestamp_ms <= parent.timestamp_ms || header.timestamp_ms > self.clock.unix_ms() + CLOCK_DRIFT_MS {
            return invalid(InvalidBlock::Timestamp { timestamp_ms: header.timestamp_ms });
        }
        if !header.commits(&parent.roots) {
            return invalid(InvalidBlock::Roots);
        }
        let mut ids = HashSet::with_capacity(block.txs.len());
        let pool = self.mempool.lock().expect("mempool lock poisoned");
        for tx in &block.txs {
            let id = tx.id();
            if !ids.insert(id) {
                return invalid(InvalidBlock::DuplicateTx(id));
            }
            if tx.tx.chain_id != self.view.chain_id {
                return invalid(InvalidBlock::TxWrongChain { id, chain_id: tx.tx.chain_id.clone() });
            }
            // The mempool admitted only transactions whose signature it checked.
            if !pool.contains(&id)
                && let Err(error) = tx.verify(self.suite)
            {
                return invalid(InvalidBlock::TxSignature { id, error });
            }
        }
        Ok(())
    }

    fn retry_waiting(&mut self) {
        let ready: Vec<u64> = self
            .waiting
            .parents
            .iter()
            .filter(|(_, w)| self.is_known(&w.block.header.parent))
            .map(|(view, _)| *view)
            .collect();
        for view in ready {
            if let Some(WaitingProposal { block, parent_view, vote, from }) = self.waiting.parents.remove(&view) {
                self.on_proposal(from, block, parent_view, vote);
            }
        }
    }

    // ---- Fetching and serving blocks ---------------------------------------------------------

    fn request_block(&mut self, from: PeerId, digest: Hash) {
        self.waiting.want(digest);
        self.net.send(from, &NetMessage::BlockRequest { digest, ancestors: ANCESTORS_ASKED });
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
            self.net.send(to, &NetMessage::Blocks(blocks));
        }
    }

    /// Blocks asked for by digest: each is taken only if it, or a block it is the parent
    /// of, was asked for, so a peer cannot fill memory with blocks nobody wanted.
    fn on_blocks(&mut self, blocks: Vec<Block>) {
        let mut taken = false;
        for block in blocks {
            let hash = block.header.hash();
            if !self.waiting.take_wanted(&hash) {
                continue;
            }
            let parent = block.header.parent;
            self.hold(block);
            taken = true;
            if !self.is_known(&parent) && self.storage().block_by_hash(&parent).is_none() {
                self.waiting.want(parent);
            }
        }
        if taken {
            self.after_new_blocks();
        }
    }

    /// Committed blocks from a peer: taken while they link to the tip, up to the last one a
    /// certificate with it or the engine's own finalization makes final (what it links to
    /// is final too); the certificates are kept for the commit.
    fn on_sync_blocks(&mut self, from: PeerId, blocks: Vec<(Block, Option<Certificate>)>) {
        let cfg = self.engine.config().clone();
        let target = self.target.as_ref().map(|t| t.digest);
        let mut later = false;
        let run = chain::linked_run(&self.view.tip(), blocks, |hash, certificate| match certificate {
            Some(c) => {
                let said = chain::check_finalization(c, hash, &cfg.chain_id, cfg.epoch, &cfg.validators);
                later |= said == Finality::LaterEpoch;
                Some(said)
            }
            None => (target == Some(*hash)).then_some(Finality::Final),
        });
        if later {
            // The peer is in a later epoch: learn its validators ahead of executing there.
            self.gate.behind(from, &self.view.storage, &*self.net, self.clock.now());
        }
        let mut certified = false;
        for linked in run {
            let hash = self.hold(linked.block);
            if !self.held.contains(&hash) {
                break;
            }
            if let (Some(certificate), Some(Finality::Final)) = (linked.certificate, linked.finality) {
                certified = true;
                self.certified.insert(hash, certificate);
            }
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

    // ---- Finality and commits ---------------------------------------------------------------

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
        let held = &self.held;
        self.certified.retain(|hash, _| held.get(hash).is_some_and(|h| h.block.header.height > tip.height));
        let Some(target) = self.target.clone() else {
            self.sync.at = None;
            return;
        };
        if target.view <= tip.view {
            // Committed already, by block sync.
            self.target = None;
            self.sync.at = None;
            return;
        }
        match self.path_to(&target.digest) {
            Path::Complete(path) => {
                self.target = None;
                self.sync.at = None;
                if !self.commit_path(&path, Some(&target.certificate)) && self.disk.is_full() {
                    // Committed once the disk has room again.
                    self.target = Some(target);
                }
            }
            Path::Missing(_) => {
                if self.sync.at.is_none() {
                    self.sync.at = Some(self.clock.now());
                }
            }
            Path::NotAbove => {
                tracing::error!(
                    view = target.view,
                    digest = %target.digest,
                    tip = %tip.hash,
                    "a finalized block does not extend the committed chain"
                );
                self.target = None;
            }
        }
    }

    /// Asks the next peer for what is missing: committed blocks from the tip on, and the
    /// finalized block's ancestors by digest (for blocks peers have not committed yet).
    fn sync(&mut self) {
        self.sync.at = None;
        let Some(target) = self.target.clone() else { return };
        let missing = match self.path_to(&target.digest) {
            Path::Missing(missing) => missing,
            _ => return self.commit_final(),
        };
        if self.peers.is_empty() {
            return;
        }
        let peer = self.peers[self.sync.peer % self.peers.len()];
        self.sync.peer = self.sync.peer.wrapping_add(1);
        let tip = self.view.tip();
        tracing::debug!(%peer, from_height = tip.height + 1, %missing, "block sync");
        self.net.send(peer, &NetMessage::SyncRequest { from_height: tip.height + 1, count: BLOCKS_PER_MESSAGE_MAX });
        self.request_block(peer, missing);
        self.sync.at = Some(self.clock.now() + SYNC_RETRY);
    }

    /// A peer's consensus message of a later epoch (or views that time out,
    /// [`Self::poll_for_blocks`]): this validator may have missed the end of its
    /// epoch (it was down or cut off while the others finalized it), and no certificate of
    /// its own epoch will come any more to make it sync. It asks that peer for committed
    /// blocks from its tip on, at most once per [`SYNC_RETRY`]; the answer's certificates are
    /// checked as any synced block's, so a peer that lied about its epoch gains nothing.
    fn sync_to_later_epoch(&mut self, from: PeerId) {
        let now = self.clock.now();
        if self.sync.later_epoch_at.is_some_and(|at| now < at + SYNC_RETRY) {
            return;
        }
        self.sync.later_epoch_at = Some(now);
        self.gate.behind(from, &self.view.storage, &*self.net, now);
        let tip = self.view.tip();
        tracing::debug!(peer = %from, from_height = tip.height + 1, "block sync: a peer is in a later epoch, or views time out");
        self.net.send(from, &NetMessage::SyncRequest { from_height: tip.height + 1, count: BLOCKS_PER_MESSAGE_MAX });
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
                None => match execute_final(&self.executor, &self.status, &*self.clock, &block) {
                    Some(output) => Arc::new(output),
                    None => return false,
                },
            };
            let last = i + 1 == path.len();
            if !self.commit(&block, if last { certificate } else { None }, &output) {
                return false;
            }
        }
        let height = self.view.tip().height;
        self.held.prune_to(height);
        let finalized = self.engine.finalized().view;
        self.proposals = self.proposals.split_off(&(finalized + 1));
        self.waiting.prune_to(finalized);
        self.batches.prune(height);
        self.unsaved = self.unsaved.split_off(&(finalized + 1, 0));
        true
    }

    /// Writes a block and what executing it produced in one atomic batch; false if the
    /// disk has no room or refused it (nothing of the block is then stored).
    fn commit(&mut self, block: &Block, certificate: Option<&Certificate>, output: &BlockOutput) -> bool {
        if !self.disk_writable() {
            return false;
        }
        match commit_block(&self.view, &self.status, &self.mempool, &*self.clock, block, certificate, output) {
            Ok(()) => true,
            Err(err) => {
                self.disk_failed(&err);
                false
            }
        }
    }

    // ---- This validator's proposals ---------------------------------------------------------

    fn propose(&mut self, requested: Requested) {
        if requested.view != self.engine.view() {
            self.requested = None;
            return;
        }
        let Some(parent) = self.parent_state(&requested.parent) else {
            // The parent is notarized but this node missed it: fetch it and try again.
            self.waiting.want(requested.parent);
            self.net.broadcast(&NetMessage::BlockRequest { digest: requested.parent, ancestors: ANCESTORS_ASKED });
            self.requested = Some(Requested { ready_at: self.clock.now() + PARENT_RETRY, ..requested });
            return;
        };
        self.requested = None;
        let epoch = self.engine.config().epoch;
        if self.epoch_at(&parent, parent.height + 1).is_none_or(|e| e.epoch != epoch) {
            // The parent is the epoch's last block: propose it again until a view finalizes it.
            self.proposals.insert(requested.view, requested.parent);
            self.proposed = Some(OwnProposal {
                view: requested.view,
                digest: requested.parent,
                parent_view: requested.parent_view,
            });
            self.step(Input::Propose { view: requested.view, digest: requested.parent });
            return;
        }
        self.seal();
        let block = self.build(requested.view, requested.parent, &parent);
        // Anything selected that no held batch carries (its batch was dropped as old) goes
        // out in a new batch ahead of the proposal.
        let unbatched: Vec<_> = block.txs.iter().filter(|tx| !self.batches.locates(&tx.id())).cloned().collect();
        self.seal_txs(unbatched);
        let digest = self.hold(block);
        self.proposals.insert(requested.view, digest);
        self.proposed = Some(OwnProposal { view: requested.view, digest, parent_view: requested.parent_view });
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
                    bytes + BLOCK_ENVELOPE_BYTES <= BLOCK_BYTES_MAX
                })
                .map(|tx| (*tx).clone())
                .collect()
        };
        let header = BlockHeader {
            chain_id: self.view.chain_id.clone(),
            protocol_version: shutong_types::PROTOCOL_VERSION,
            suite: self.suite,
            height: parent.height + 1,
            view,
            parent: parent_hash,
            proposer: self.key.public(),
            timestamp_ms: self.clock.unix_ms().max(parent.timestamp_ms + 1),
            txs_root: Block::txs_root(self.suite, &txs),
            state_root: parent.roots.state,
            receipts_root: parent.roots.receipts,
            audit_root: parent.roots.audit,
            audit_size: parent.roots.audit_size,
            validator_set: validator_set_hash(self.suite, self.validators()),
        };
        Block { header, txs }
    }

    // ---- The engine's effects ---------------------------------------------------------------

    fn apply(&mut self, effects: Vec<Effect>) {
        for effect in effects {
            match effect {
                Effect::PersistVote(vote) => {
                    self.status.metrics.observe_signed();
                    self.save_vote(vote)
                }
                Effect::BroadcastVote(vote) if self.is_saved(&vote) => {
                    self.net.broadcast(&NetMessage::Consensus(ConsensusMessage::Vote(vote)));
                }
                Effect::BroadcastProposal(vote) if self.is_saved(&vote) => self.broadcast_proposal(vote),
                Effect::BroadcastVote(_) | Effect::BroadcastProposal(_) => {}
                Effect::BroadcastCertificate(certificate) => {
                    self.net.broadcast(&NetMessage::Consensus(ConsensusMessage::Certificate(certificate)));
                }
                Effect::RequestCertificates { views } => {
                    self.net.broadcast(&NetMessage::Consensus(ConsensusMessage::CertificateRequest { views }));
                }
                Effect::ScheduleTimer { view, timer, after_ms } => {
                    let at = self.clock.now() + std::time::Duration::from_millis(after_ms);
                    self.timers.schedule(at, view, timer, self.engine.view());
                }
                Effect::RequestProposal { view, parent, parent_view } => {
                    let ready_at = self.clock.now() + std::time::Duration::from_millis(self.cfg.block_interval_ms);
                    self.requested = Some(Requested { view, parent, parent_view, ready_at });
                }
                Effect::Finalized { view, digest, certificate } => {
                    self.target = Some(Target { view, digest, certificate });
                    self.try_commit();
                }
                Effect::Evidence(evidence) => self.report(&evidence),
                Effect::SigningFailed { view, kind, reason } => {
                    tracing::error!(view, ?kind, %reason, "this validator's signer failed: the vote is skipped");
                    self.status.metrics.observe_signing_failure(reason);
                }
            }
        }
    }

    /// Puts equivocation evidence on chain ([`crate::evidence`]).
    fn report(&mut self, evidence: &shutong_consensus::Evidence) {
        let (signer, view) = (evidence.first.signer, evidence.first.subject.view);
        if !self.reported.insert(signer) {
            return;
        }
        let offender = self.validators().get(signer as usize).copied();
        let mut pool = self.mempool.lock().expect("mempool lock poisoned");
        match crate::evidence::report(evidence, &*self.key, &mut pool, &self.view) {
            Ok(tx) => {
                tracing::warn!(signer, ?offender, view, %tx, "validator signed conflicting votes: reported on chain")
            }
            Err(err) => {
                tracing::warn!(signer, ?offender, view, %err, "validator signed conflicting votes; the report was refused")
            }
        }
    }

    /// The write-ahead-log entry of `vote`: with the block if it is this validator's own
    /// proposal, which it may have to propose again after a restart.
    fn wal_entry(&self, vote: SignedVote) -> WalEntry {
        let own_proposal = match self.proposed {
            Some(own)
                if vote.subject.kind == VoteKind::Notarize
                    && vote.subject.view == own.view
                    && vote.subject.digest == own.digest =>
            {
                self.held.get(&own.digest).map(|h| (*h.block).clone())
            }
            _ => None,
        };
        WalEntry { vote, block: own_proposal }
    }

    /// Makes a vote durable before it may be sent; if the disk cannot take it, the vote is
    /// kept back ([`Driver::is_saved`] is then false for it).
    fn save_vote(&mut self, vote: SignedVote) {
        let subject = vote.subject;
        if self.disk_writable() {
            match self.make_durable(&vote) {
                Ok(()) => return,
                Err(err) => self.disk_failed(&err),
            }
        }
        tracing::warn!(view = subject.view, kind = ?subject.kind, "a vote the disk did not take is not sent");
        self.unsaved.insert((subject.view, subject.kind as u8), vote);
    }

    /// Writes `vote` to the write-ahead log, then raises the signing high-water mark to its
    /// view: both before it may be sent.
    fn make_durable(&mut self, vote: &SignedVote) -> Result<(), shutong_storage::StorageError> {
        self.storage().persist_vote(&self.wal_entry(vote.clone()))?;
        let subject = vote.subject;
        self.mark.advance(subject.epoch, subject.view).map_err(|err| mark_error(&self.mark, err))
    }

    /// A failed write of the mark, as the disk guard knows failed writes.
    fn mark_failed(&mut self, err: std::io::Error) {
        let err = mark_error(&self.mark, err);
        self.disk_failed(&err);
    }

    /// Whether `vote` reached the write-ahead log, and so may be sent.
    fn is_saved(&self, vote: &SignedVote) -> bool {
        !self.unsaved.contains_key(&(vote.subject.view, vote.subject.kind as u8))
    }

    /// Writes the votes held back while the disk was full, in view order, so the engine's
    /// rebroadcasts may send them; stops at the first the disk refuses.
    fn save_unsaved_votes(&mut self) {
        while let Some((&key, vote)) = self.unsaved.first_key_value() {
            let vote = vote.clone();
            match self.make_durable(&vote) {
                Ok(()) => {
                    self.unsaved.remove(&key);
                }
                Err(err) => {
                    self.disk_failed(&err);
                    return;
                }
            }
        }
    }

    /// Sends this validator's proposal: by batch digests when every transaction is in a
    /// held batch, else whole.
    fn broadcast_proposal(&mut self, vote: SignedVote) {
        let block = match self.held.get(&vote.subject.digest) {
            Some(held) => Some((*held.block).clone()),
            None => self.storage().block_by_hash(&vote.subject.digest),
        };
        match (block, self.proposed) {
            (Some(block), Some(own)) if own.view == vote.subject.view && own.digest == vote.subject.digest => {
                match self.batches.compact(&block, own.parent_view, &vote) {
                    Some(compact) => self.net.broadcast(&NetMessage::CompactProposal(compact)),
                    None => self.net.broadcast(&NetMessage::Proposal { block, parent_view: own.parent_view, vote }),
                }
            }
            _ => tracing::error!(view = vote.subject.view, "the engine proposed a block this node does not hold"),
        }
    }
}

/// A failed write of the signing high-water mark, as a refused write: a full disk holds
/// votes back, anything else stops the node ([`crate::disk`]).
fn mark_error(mark: &SigningMark, err: std::io::Error) -> shutong_storage::StorageError {
    shutong_storage::StorageError::Write {
        what: "the signing high-water mark",
        path: mark.path().map_or_else(|| "memory".to_string(), |p| p.display().to_string()),
        no_space: err.kind() == std::io::ErrorKind::StorageFull,
        reason: err.to_string(),
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use crate::clock::ManualClock;
    use shutong_execution::genesis::{CommitteeMember, Genesis, GenesisValidator};
    use shutong_types::{Keypair, VoteKind, VoteSubject};
    use shutong_vm::{Vm, VmConfig};
    use std::time::Duration;

    const START_MS: u64 = 1_795_000_000_000;

    /// Every message the driver sends, in order: `None` for a broadcast.
    #[derive(Debug, Default)]
    struct Recorder(Mutex<Vec<(Option<PeerId>, NetMessage)>>);

    impl Recorder {
        fn sent(&self) -> Vec<(Option<PeerId>, NetMessage)> {
            self.0.lock().unwrap().clone()
        }
    }

    impl NetSink for Recorder {
        fn send(&self, to: PeerId, message: &NetMessage) {
            self.0.lock().unwrap().push((Some(to), message.clone()));
        }
        fn broadcast(&self, message: &NetMessage) {
            self.0.lock().unwrap().push((None, message.clone()));
        }
        fn penalise(&self, _: PeerId, _: Misbehaviour) {}
        fn set_validators(&self, _: Vec<Member>) {}
    }

    /// Validator 0 of `n` (keys `v0`..), on a fresh database under `dir`, driven by `clock`.
    fn driver(dir: &std::path::Path, n: usize, clock: &ManualClock) -> (Driver, Arc<Recorder>, Arc<Storage>) {
        let keys: Vec<Keypair> = (0..n).map(|i| Keypair::from_seed(&format!("v{i}"))).collect();
        let validators = keys.iter().enumerate().map(|(i, k)| GenesisValidator::new(&format!("v{i}"), k.public()));
        let committee = CommitteeMember::departments(&[Keypair::from_seed("admin").account()]);
        let genesis = Genesis::new("driver-test", START_MS - 1_000, validators.collect(), committee);
        let storage = Arc::new(Storage::open(&dir.join("data"), shutong_types::Suite::Ed25519Blake3).unwrap());
        crate::init_storage(&storage, &genesis).unwrap();
        let vm = Arc::new(Vm::new(VmConfig::default()).unwrap());
        let view = NodeView { chain_id: genesis.chain_id.clone(), storage: Arc::clone(&storage), vm: Arc::clone(&vm) };
        let epoch = shutong_execution::epochs::validators_for(&*storage, 1).unwrap();
        let cfg = crate::config::Config::default();
        let engine = EngineConfig {
            chain_id: genesis.chain_id.clone(),
            epoch: epoch.epoch,
            validators: epoch.validators,
            timeouts: cfg.consensus.timeouts(),
        };
        let recorder = Arc::new(Recorder::default());
        let parts = Parts {
            view,
            key: keys[0].clone().into(),
            engine,
            executor: Executor::new(vm, storage.clone()),
            mempool: Arc::new(Mutex::new(Mempool::new(cfg.mempool.clone()))),
            cfg: cfg.consensus.clone(),
            net: recorder.clone(),
            clock: Arc::new(clock.clone()),
            status: Arc::new(ChainStatus::default()),
            disk: DiskGuard::new(0),
            mark: SigningMark::open(&dir.join(crate::signing_mark::SIGNING_FILE), &genesis.chain_id, keys[0].public())
                .unwrap(),
        };
        (Driver::new(parts).unwrap(), recorder, storage)
    }

    #[test]
    fn a_lone_validator_builds_its_block_only_when_its_clock_says_so() {
        let dir = tempfile::tempdir().unwrap();
        let clock = ManualClock::new(START_MS);
        let (mut driver, recorder, storage) = driver(dir.path(), 1, &clock);
        let interval = Duration::from_millis(crate::config::Config::default().consensus.block_interval_ms);
        driver.start();
        driver.tick();
        assert_eq!(storage.tip().unwrap().height, 0, "the block is paced");
        assert_eq!(driver.next_wake(), Some(clock.now() + BATCH_INTERVAL.min(interval)));
        clock.advance(interval - Duration::from_millis(1));
        driver.tick();
        assert_eq!(storage.tip().unwrap().height, 0, "a millisecond early");
        clock.advance(Duration::from_millis(1));
        driver.tick();
        // One validator is a quorum: its proposal is notarized and finalized at once.
        let tip = storage.tip().unwrap();
        assert_eq!(tip.height, 1);
        let block = storage.block(1).unwrap();
        assert_eq!(block.header.timestamp_ms, clock.unix_ms(), "stamped with the clock's time");
        let proposed = recorder
            .sent()
            .iter()
            .any(|(to, m)| to.is_none() && matches!(m, NetMessage::CompactProposal(p) if p.header == block.header));
        assert!(proposed, "the proposal went to the network sink: {:?}", recorder.sent());
    }

    #[test]
    fn a_message_of_a_later_epoch_makes_a_validator_sync_from_its_sender() {
        let dir = tempfile::tempdir().unwrap();
        let clock = ManualClock::new(START_MS);
        let (mut driver, recorder, _) = driver(dir.path(), 4, &clock);
        driver.start();
        driver.tick();
        let peer = PeerId::random();
        let vote = |view: u64| {
            let subject = VoteSubject { kind: VoteKind::Nullify, epoch: 1, view, digest: Hash::ZERO };
            let key = Keypair::from_seed("v1");
            SignedVote { subject, signer: 1, signature: subject.sign("driver-test", &key) }
        };
        let send = |driver: &mut Driver, view: u64| {
            let message = NetMessage::Consensus(ConsensusMessage::Vote(vote(view)));
            driver.on_message(Inbound { from: peer, bytes: shutong_types::Encode::encode(&message) });
        };
        let asked = |recorder: &Recorder| {
            recorder
                .sent()
                .iter()
                .filter(|(to, m)| *to == Some(peer) && matches!(m, NetMessage::SyncRequest { from_height: 1, .. }))
                .count()
        };
        assert_eq!(asked(&recorder), 0);
        send(&mut driver, 7);
        assert_eq!(asked(&recorder), 1, "the sender was asked for blocks from the tip on");
        send(&mut driver, 8);
        assert_eq!(asked(&recorder), 1, "not again within {SYNC_RETRY:?}");
        clock.advance(SYNC_RETRY);
        send(&mut driver, 9);
        assert_eq!(asked(&recorder), 2);
    }

    #[test]
    fn a_silent_leader_is_nullified_exactly_when_the_clock_passes_its_timeout() {
        let dir = tempfile::tempdir().unwrap();
        let clock = ManualClock::new(START_MS);
        // Validator 0 of 4; view 1's leader is validator 1, which never speaks.
        let (mut driver, recorder, storage) = driver(dir.path(), 4, &clock);
        let leader_timeout = Duration::from_millis(crate::config::Config::default().consensus.leader_timeout_ms);
        let nullified = |recorder: &Recorder| {
            recorder.sent().iter().any(|(to, m)| {
                to.is_none()
                    && matches!(m, NetMessage::Consensus(ConsensusMessage::Vote(v))
                        if v.subject.kind == VoteKind::Nullify && v.subject.view == 1)
            })
        };
        driver.start();
        driver.tick();
        assert_eq!(driver.engine_view(), 1);
        clock.advance(leader_timeout - Duration::from_millis(1));
        driver.tick();
        assert!(!nullified(&recorder), "the leader still has a millisecond");
        clock.advance(Duration::from_millis(1));
        driver.tick();
        assert!(nullified(&recorder), "{:?}", recorder.sent());
        // The vote was made durable before it was handed to the network.
        let wal = storage.wal();
        assert!(wal.iter().any(|e| e.vote.subject.kind == VoteKind::Nullify && e.vote.subject.view == 1));
        assert_eq!(storage.tip().unwrap().height, 0, "nothing was finalized without the others");
    }

    #[test]
    fn a_validator_on_a_restored_database_does_not_vote_again_where_it_voted() {
        let dir = tempfile::tempdir().unwrap();
        let clock = ManualClock::new(START_MS);
        let leader_timeout = Duration::from_millis(crate::config::Config::default().consensus.leader_timeout_ms);
        let nullifies = |recorder: &Recorder, view: u64| {
            recorder
                .sent()
                .iter()
                .filter(|(_, m)| {
                    matches!(m, NetMessage::Consensus(ConsensusMessage::Vote(v))
                        if v.subject.kind == VoteKind::Nullify && v.subject.view == view)
                })
                .count()
        };
        // Validator 0 of 4 nullifies view 1, whose leader is silent.
        let (mut first, recorder, storage) = driver(dir.path(), 4, &clock);
        first.start();
        clock.advance(leader_timeout);
        first.tick();
        assert_eq!(nullifies(&recorder, 1), 1);
        let mark = crate::signing_mark::read(&dir.path().join(crate::signing_mark::SIGNING_FILE)).unwrap().unwrap();
        assert_eq!((mark.epoch, mark.view), (0, 1), "the mark was raised before the vote left");
        drop((first, storage));
        // Its database is replaced by one from before that vote (a backup at genesis); the
        // mark in the home stays.
        std::fs::remove_dir_all(dir.path().join("data")).unwrap();
        let (mut driver, recorder, storage) = driver(dir.path(), 4, &clock);
        assert!(storage.wal().is_empty());
        driver.start();
        assert_eq!(driver.engine_view(), 1);
        clock.advance(leader_timeout * 2);
        driver.tick();
        assert_eq!(nullifies(&recorder, 1), 0, "view 1 was signed in before the restore: {:?}", recorder.sent());
        // The others' nullification moves it on, and it votes again above the mark.
        let keys: Vec<Keypair> = (0..4).map(|i| Keypair::from_seed(&format!("v{i}"))).collect();
        let subject = VoteSubject { kind: VoteKind::Nullify, epoch: 0, view: 1, digest: shutong_types::Hash::ZERO };
        let signatures: Vec<_> = (1..4).map(|i| (i, subject.sign("driver-test", &keys[i]))).collect();
        let certificate = shutong_types::Certificate::new(subject, 4, &signatures);
        let message = NetMessage::Consensus(ConsensusMessage::Certificate(certificate));
        let peer = shutong_p2p::peer_id(&keys[1].public()).unwrap();
        driver.on_message(Inbound { from: peer, bytes: shutong_types::Encode::encode(&message) });
        assert_eq!(driver.engine_view(), 2);
        // Its timeouts back off after a nullified view.
        clock.advance(leader_timeout * 4);
        driver.tick();
        assert!(nullifies(&recorder, 2) > 0, "view 2 is above the mark: {:?}", recorder.sent());
    }

    #[test]
    fn a_vote_the_disk_does_not_take_is_never_sent_until_it_is_written() {
        let dir = tempfile::tempdir().unwrap();
        let clock = ManualClock::new(START_MS);
        let (mut driver, recorder, storage) = driver(dir.path(), 4, &clock);
        // No disk has an exbibyte free: every write is held back as on a full disk.
        driver.disk = DiskGuard::new(1 << 40);
        let timeouts = crate::config::Config::default().consensus;
        let votes = |recorder: &Recorder| {
            recorder
                .sent()
                .iter()
                .filter(|(_, m)| matches!(m, NetMessage::Consensus(ConsensusMessage::Vote(_))))
                .count()
        };
        driver.start();
        driver.tick();
        // The leader of view 1 is silent: the nullify vote is signed, then rebroadcast.
        clock.advance(Duration::from_millis(timeouts.leader_timeout_ms));
        driver.tick();
        for _ in 0..3 {
            clock.advance(Duration::from_millis(timeouts.rebroadcast_ms));
            driver.tick();
        }
        assert_eq!(votes(&recorder), 0, "{:?}", recorder.sent());
        assert!(storage.wal().is_empty());
        let health = driver.status.disk.fault().unwrap();
        assert!(health.contains(&dir.path().join("data").display().to_string()), "{health}");
        // Space freed: the held-back vote is written at the next probe, then sent by the
        // engine's next rebroadcast.
        driver.disk.set_reserve_bytes(0);
        clock.advance(Duration::from_millis(timeouts.rebroadcast_ms));
        driver.tick();
        assert!(storage.wal().iter().any(|e| e.vote.subject.kind == VoteKind::Nullify && e.vote.subject.view == 1));
        clock.advance(Duration::from_millis(timeouts.rebroadcast_ms));
        driver.tick();
        assert!(votes(&recorder) > 0, "{:?}", recorder.sent());
        assert_eq!(driver.status.disk.fault(), None);
    }
}
