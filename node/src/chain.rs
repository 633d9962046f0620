//! The consensus driver: carries out the consensus engine's effects against storage, the
//! mempool and the executor, and builds this validator's proposals.
//!
//! It runs on its own thread: execution is synchronous CPU work. The host contract of
//! `shutong_consensus` holds here: a vote is synced to the write-ahead log before any later
//! effect, and finalized blocks are executed and committed in height order.

use crate::config::ConsensusConfig;
use crate::executor::Executor;
use crate::mempool::Mempool;
use crate::storage::{Commit, Storage, Tip, WalEntry};
use crate::view::NodeView;
use shutong_consensus::{Config as EngineConfig, Ed25519, Effect, Engine, Finalized, Input, Timer};
use shutong_types::{Block, BlockHeader, Certificate, Hash, Keypair, VoteKind, validator_set_hash};
use std::collections::BTreeMap;
use std::sync::mpsc::{Receiver, RecvTimeoutError};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

/// The longest the driver sleeps without checking for shutdown.
const IDLE_WAKE: Duration = Duration::from_millis(500);

/// A block the engine asked this validator to build.
#[derive(Debug, Clone, Copy)]
struct Requested {
    view: u64,
    parent: Hash,
    /// Blocks are paced: built no earlier than `block_interval_ms` after the request.
    ready_at: Instant,
}

pub struct Chain {
    view: NodeView,
    key: Keypair,
    engine: Engine<Ed25519>,
    executor: Executor,
    mempool: Arc<Mutex<Mempool>>,
    cfg: ConsensusConfig,
    requested: Option<Requested>,
    /// The block this validator proposed in the current view.
    proposed: Option<Block>,
    /// Pending timers by deadline (the sequence number keeps equal deadlines apart).
    timers: BTreeMap<(Instant, u64), (u64, Timer)>,
    timer_seq: u64,
}

impl std::fmt::Debug for Chain {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Chain").field("view", &self.engine.view()).finish_non_exhaustive()
    }
}

fn now_ms() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_millis() as u64)
}

impl Chain {
    pub fn new(
        view: NodeView,
        key: Keypair,
        engine_cfg: EngineConfig,
        executor: Executor,
        mempool: Arc<Mutex<Mempool>>,
        cfg: ConsensusConfig,
    ) -> Option<Chain> {
        let engine = Engine::new(engine_cfg, key.clone(), Ed25519)?;
        Some(Chain {
            view,
            key,
            engine,
            executor,
            mempool,
            cfg,
            requested: None,
            proposed: None,
            timers: BTreeMap::new(),
            timer_seq: 0,
        })
    }

    fn storage(&self) -> &Storage {
        &self.view.storage
    }

    /// Runs until `shutdown` receives a message or its sender is dropped. Call
    /// [`Chain::start`] first.
    pub fn run(mut self, shutdown: Receiver<()>) {
        loop {
            let now = Instant::now();
            let next_timer = self.timers.keys().next().map(|(at, _)| *at);
            let next_build = self.requested.map(|r| r.ready_at);
            let wake = [next_timer, next_build].into_iter().flatten().min().unwrap_or(now + IDLE_WAKE);
            match shutdown.recv_timeout(wake.saturating_duration_since(now).min(IDLE_WAKE)) {
                Err(RecvTimeoutError::Timeout) => {}
                Ok(()) | Err(RecvTimeoutError::Disconnected) => return,
            }
            self.fire_timers();
            if let Some(requested) = self.requested.filter(|r| r.ready_at <= Instant::now()) {
                self.requested = None;
                self.propose(requested);
            }
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

    fn propose(&mut self, requested: Requested) {
        let tip = self.view.tip();
        if requested.parent != tip.hash {
            // Only the committed tip can be built on until block sync fetches other blocks.
            tracing::warn!(view = requested.view, parent = %requested.parent, tip = %tip.hash, "cannot build on a parent that is not the committed tip");
            return;
        }
        let block = self.build(requested.view, tip);
        let digest = block.header.hash();
        self.proposed = Some(block);
        self.step(Input::Propose { view: requested.view, digest });
    }

    fn step(&mut self, input: Input) {
        match self.engine.step(input) {
            Ok(effects) => self.apply(effects),
            Err(err) => tracing::warn!(%err, "consensus input refused"),
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
        let own_votes = wal.into_iter().map(|e| e.vote).collect();
        let finalized =
            Finalized { view: tip.view, digest: tip.hash, certificate: self.storage().certificate(tip.height) };
        self.step(Input::Start { finalized, own_votes });
        tracing::info!(height = tip.height, view = self.engine.view(), "consensus started");
    }

    /// A block this validator proposed and finalized, whose commit a crash cut off.
    fn recover_finalized(&mut self, tip: &Tip, wal: &[WalEntry]) -> Option<u64> {
        let cfg = self.engine.config().clone();
        for entry in wal.iter().filter(|e| e.vote.subject.kind == VoteKind::Finalize && e.vote.subject.view > tip.view)
        {
            let subject = entry.vote.subject;
            let stored = wal
                .iter()
                .filter(|e| e.vote.subject.view == subject.view && e.vote.subject.digest == subject.digest)
                .find_map(|e| e.block.clone());
            // Without the block (another leader's proposal), block sync must fetch it.
            let Some(block) = stored else { continue };
            if block.header.parent != tip.hash || block.header.height != tip.height + 1 {
                continue;
            }
            let votes = [(entry.vote.signer as usize, entry.vote.signature)];
            let certificate = Certificate::new(subject, cfg.validators.len(), &votes);
            if certificate.verify(&cfg.chain_id, &cfg.validators, cfg.quorum()).is_err() {
                // Not a quorum on its own: the other validators' votes are needed (block sync).
                continue;
            }
            let height = block.header.height;
            self.commit(&block, &certificate);
            return Some(height);
        }
        None
    }

    fn build(&self, view: u64, tip: Tip) -> Block {
        let txs: Vec<_> = {
            let pool = self.mempool.lock().expect("mempool lock poisoned");
            pool.select(self.cfg.block_txs_max as usize, self.cfg.block_gas_max, &self.view)
                .into_iter()
                .map(|tx| (*tx).clone())
                .collect()
        };
        let header = BlockHeader {
            chain_id: self.view.chain_id.clone(),
            height: tip.height + 1,
            view,
            parent: tip.hash,
            proposer: self.key.public(),
            timestamp_ms: now_ms().max(tip.timestamp_ms + 1),
            txs_root: Block::txs_root(&txs),
            state_root: tip.state_root,
            receipts_root: tip.receipts_root,
            audit_root: Hash::ZERO,
            audit_size: 0,
            validator_set: validator_set_hash(&self.engine.config().validators),
        };
        Block { header, txs }
    }

    fn apply(&mut self, effects: Vec<Effect>) {
        for effect in effects {
            match effect {
                Effect::PersistVote(vote) => {
                    let own_proposal = self
                        .proposed
                        .as_ref()
                        .filter(|b| vote.subject.kind == VoteKind::Notarize && b.header.hash() == vote.subject.digest);
                    self.storage().persist_vote(&WalEntry { vote, block: own_proposal.cloned() });
                }
                // Sending to other validators comes with the peer-to-peer network; with one
                // validator there is nobody to send to.
                Effect::BroadcastVote(_)
                | Effect::BroadcastProposal(_)
                | Effect::BroadcastCertificate(_)
                | Effect::RequestCertificates { .. } => {}
                Effect::ScheduleTimer { view, timer, after_ms } => {
                    self.timer_seq += 1;
                    let at = Instant::now() + Duration::from_millis(after_ms);
                    self.timers.insert((at, self.timer_seq), (view, timer));
                    // Timers of views left behind are harmless but need not pile up.
                    let current = self.engine.view();
                    self.timers.retain(|_, (v, _)| *v + 1 >= current);
                }
                Effect::RequestProposal { view, parent, .. } => {
                    let ready_at = Instant::now() + Duration::from_millis(self.cfg.block_interval_ms);
                    self.requested = Some(Requested { view, parent, ready_at });
                }
                Effect::Finalized { view, digest, certificate } => {
                    let block = self.proposed.take().filter(|b| b.header.hash() == digest);
                    let block = block.unwrap_or_else(|| panic!("finalized block {digest} of view {view} is not held"));
                    self.commit(&block, &certificate);
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

    /// Executes a finalized block and commits it with its results in one atomic batch.
    fn commit(&mut self, block: &Block, certificate: &Certificate) {
        let tip = self.view.tip();
        let started = std::time::Instant::now();
        let output = self.executor.execute(block, &tip.state_root);
        let header = &block.header;
        let new_tip = Tip {
            height: header.height,
            view: header.view,
            hash: header.hash(),
            timestamp_ms: header.timestamp_ms,
            state_root: output.state_root,
            receipts_root: output.receipts_root,
        };
        self.storage().commit(Commit {
            block,
            certificate: Some(certificate),
            receipts: &output.receipts,
            writes: &output.writes,
            tip: new_tip,
        });
        self.mempool.lock().expect("mempool lock poisoned").prune(&self.view);
        let level_info = !block.txs.is_empty() || header.height.is_multiple_of(50);
        let elapsed_us = started.elapsed().as_micros() as u64;
        if level_info {
            tracing::info!(height = header.height, txs = block.txs.len(), gas = output.gas_used, elapsed_us, state_root = %output.state_root, "committed block");
        } else {
            tracing::debug!(height = header.height, elapsed_us, "committed empty block");
        }
    }
}
