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
use shutong_consensus::{Config as EngineConfig, Effect, Engine, Input};
use shutong_types::{Block, BlockHeader, Certificate, Hash, Keypair, VoteKind, validator_set_hash};
use std::sync::mpsc::{Receiver, RecvTimeoutError};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

pub struct Chain {
    view: NodeView,
    key: Keypair,
    engine: Engine,
    executor: Executor,
    mempool: Arc<Mutex<Mempool>>,
    cfg: ConsensusConfig,
    /// The proposal this validator was asked to build: (view, parent, height).
    pending: Option<(u64, Hash, u64)>,
    /// The block this validator proposed in the current view.
    proposed: Option<Block>,
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
        let engine = Engine::new(engine_cfg, key.clone())?;
        Some(Chain { view, key, engine, executor, mempool, cfg, pending: None, proposed: None })
    }

    fn storage(&self) -> &Storage {
        &self.view.storage
    }

    /// Runs until `shutdown` receives a message or its sender is dropped. Call
    /// [`Chain::start`] first.
    pub fn run(mut self, shutdown: Receiver<()>) {
        loop {
            let interval = Duration::from_millis(self.cfg.block_interval_ms);
            match shutdown.recv_timeout(interval) {
                Err(RecvTimeoutError::Timeout) => {}
                Ok(()) | Err(RecvTimeoutError::Disconnected) => return,
            }
            let Some((view, parent, height)) = self.pending.take() else { continue };
            let block = self.build(view, parent, height);
            let digest = block.header.hash();
            self.proposed = Some(block);
            match self.engine.step(Input::Proposal { view, digest, parent, height }) {
                Ok(effects) => self.apply(effects),
                Err(err) => tracing::error!(%err, view, height, "own proposal refused by the consensus engine"),
            }
        }
    }

    /// Recovers from the write-ahead log, then starts the engine in the first view after
    /// every view this validator has voted in, so a restart never votes twice in one view.
    pub fn start(&mut self) {
        let effects = self.recover_and_enter();
        self.apply(effects);
    }

    fn recover_and_enter(&mut self) -> Vec<Effect> {
        let mut tip = self.view.tip();
        let wal = self.storage().wal();
        if let Some(block) = self.recover_finalized(&tip, &wal) {
            tip = self.view.tip();
            tracing::info!(height = block, "recovered a finalized block from the write-ahead log");
        }
        let last_voted = wal.iter().map(|e| e.vote.subject.view).max().unwrap_or(0);
        let view = tip.view.max(last_voted) + 1;
        tracing::info!(height = tip.height, view, "consensus starting");
        self.engine.step(Input::Start { view, parent: tip.hash, height: tip.height }).expect("start is always accepted")
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

    fn build(&self, view: u64, parent: Hash, height: u64) -> Block {
        let tip = self.view.tip();
        assert_eq!((tip.hash, tip.height + 1), (parent, height), "the engine builds on the committed tip");
        let txs: Vec<_> = {
            let pool = self.mempool.lock().expect("mempool lock poisoned");
            pool.select(self.cfg.block_txs_max as usize, self.cfg.block_gas_max, &self.view)
                .into_iter()
                .map(|tx| (*tx).clone())
                .collect()
        };
        let header = BlockHeader {
            chain_id: self.view.chain_id.clone(),
            height,
            view,
            parent,
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
                // One validator has nobody to send to; multi-validator networking sends here.
                Effect::BroadcastVote(_) => {}
                Effect::RequestProposal { view, parent, height } => self.pending = Some((view, parent, height)),
                Effect::Finalized { height, digest, certificate } => {
                    let block = self.proposed.take().filter(|b| b.header.hash() == digest);
                    let block =
                        block.unwrap_or_else(|| panic!("finalized block {digest} at height {height} is not held"));
                    self.commit(&block, &certificate);
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
