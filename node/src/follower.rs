//! A full node: follows the chain without voting, and serves RPC and block sync.
//!
//! A node whose key is not in the current validator set runs this loop instead of the
//! consensus driver. It asks a peer for committed blocks from its tip on (the sync protocol
//! validators use to catch up), links each answer to its tip by hash, and commits a run of
//! blocks once a finalization certificate of the current epoch covers its last one: quorum
//! signatures over the block's digest, checked against the validator set its own state
//! holds, so a lying peer can delay it but not make it commit anything else. Each block is
//! executed here and its header must name the roots this node computed for its parent, as
//! on a validator; a disagreement stops committing.
//!
//! While caught up it asks again every half block interval, the next peer each time: a peer
//! that is itself behind (stopped, removed from the validator set, cut off) answers that it
//! has nothing new, and asking only it would keep this node behind for good. While behind
//! it asks the same peer again at once after each answer. Transactions clients submit here
//! are sealed into batches and pushed to the validators, as a validator pushes its own.

use crate::chain::{
    self, ChainStatus, Finality, NetSink, commit_block, committed_from, diverges, execute_final, split_into_batches,
};
use crate::clock::Clock;
use crate::config::ConsensusConfig;
use crate::disk::DiskGuard;
use crate::driver::Driver;
use crate::mempool::Mempool;
use crate::signing_mark::SigningMark;
use crate::view::NodeView;
use shutong_consensus::Config as EngineConfig;
use shutong_consensus::wire::{BLOCKS_PER_MESSAGE_MAX, Batch, NetMessage};
use shutong_execution::epochs::Epoch;
use shutong_execution::executor::Executor;
use shutong_p2p::{Inbound, PeerId};
use shutong_types::{Block, Certificate, Signer};
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// How long an asked peer has to answer before the next one is asked.
const ANSWER_TIMEOUT: Duration = Duration::from_secs(1);
use crate::driver::{BATCH_INTERVAL, RESEND_EVERY};

pub struct Follower {
    view: NodeView,
    key: Arc<dyn Signer>,
    executor: Executor,
    mempool: Arc<Mutex<Mempool>>,
    net: Arc<dyn NetSink>,
    clock: Arc<dyn Clock>,
    status: Arc<ChainStatus>,
    /// The validator set certificates are checked against: the one for the next height.
    epoch: Epoch,
    /// Whom to ask for blocks, in turn: the configured peers.
    sources: Vec<PeerId>,
    source: usize,
    /// The peer asked and when, until it answers.
    asked: Option<(PeerId, Instant)>,
    next_ask: Instant,
    poll_every: Duration,
    batch_seq: u64,
    next_seal: Instant,
    next_resend: Instant,
    diverged: bool,
    disk: DiskGuard,
    mark: SigningMark,
    gate: chain::Gate,
}

impl std::fmt::Debug for Follower {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Follower").field("epoch", &self.epoch.epoch).finish_non_exhaustive()
    }
}

/// What one answer did.
#[derive(Debug, PartialEq, Eq)]
enum Progress {
    /// Blocks were committed and the peer may have more.
    More,
    /// Nothing new: this node is caught up with the peer.
    CaughtUp,
    /// The answer could not be used (no link to the tip, no valid certificate).
    Useless,
}

/// What a follower is made of.
#[derive(Debug)]
pub struct Parts {
    pub view: NodeView,
    /// This node's validator key: a key file's, or one in a token.
    pub key: Arc<dyn Signer>,
    /// The validator set for the next height.
    pub epoch: Epoch,
    pub executor: Executor,
    pub mempool: Arc<Mutex<Mempool>>,
    pub net: Arc<dyn NetSink>,
    pub clock: Arc<dyn Clock>,
    pub status: Arc<ChainStatus>,
    /// Whom to ask for blocks, in turn.
    pub sources: Vec<PeerId>,
    pub block_interval_ms: u64,
    /// Holds commits back while the disk is full ([`crate::disk`]).
    pub disk: DiskGuard,
    /// The signing high-water mark, handed on if this node joins the set.
    pub mark: SigningMark,
}

impl Follower {
    pub fn new(parts: Parts) -> Follower {
        let Parts { view, key, epoch, executor, mempool, net, clock, status, sources, block_interval_ms, disk, mark } =
            parts;
        let now = clock.now();
        // Set before the RPC server starts, so `status` never calls a full node a validator.
        status.full_node.store(true, Ordering::Relaxed);
        let follower = Follower {
            view,
            key,
            executor,
            mempool,
            net,
            status,
            epoch,
            sources,
            source: 0,
            asked: None,
            next_ask: now,
            poll_every: Duration::from_millis((block_interval_ms / 2).clamp(20, 1_000)),
            batch_seq: clock.unix_ms(),
            next_seal: now,
            next_resend: now + RESEND_EVERY,
            diverged: false,
            disk,
            mark,
            gate: chain::Gate::default(),
            clock,
        };
        follower.show_tip();
        follower
    }

    /// Whether a disk failure stopped this node (`crate::disk`).
    pub fn stopped(&self) -> bool {
        self.status.disk.stopped().borrow().is_some()
    }

    /// Whether this node's key is in the set of the next height: it should vote from there
    /// on ([`Follower::into_driver`]).
    pub fn joined(&self) -> bool {
        self.epoch.validators.contains(&self.key.public())
    }

    /// The validator this full node becomes once a set change added its key: its engine
    /// starts on the committed tip (the last block of the epoch before), without a restart.
    /// Gives the follower back if the key is not in the set after all.
    pub fn into_driver(self, cfg: ConsensusConfig) -> Result<Driver, Box<Follower>> {
        if !self.joined() {
            return Err(Box::new(self));
        }
        let Follower { view, key, executor, mempool, net, clock, status, epoch, disk, mark, .. } = self;
        tracing::info!(
            epoch = epoch.epoch,
            height = view.tip().height,
            "joined the validator set: voting from here on"
        );
        let engine = EngineConfig {
            chain_id: view.chain_id.clone(),
            epoch: epoch.epoch,
            validators: epoch.validators,
            timeouts: cfg.timeouts(),
        };
        let parts =
            crate::driver::actor::Parts { view, key, engine, executor, mempool, cfg, net, clock, status, disk, mark };
        let mut driver = Driver::new(parts).expect("joined: the key is one of the engine's validators");
        driver.start();
        Ok(driver)
    }

    /// When something is next due: a batch to seal, or block sync to ask (again).
    pub fn next_wake(&self) -> Instant {
        let ask_at = match self.asked {
            Some((_, at)) => at + ANSWER_TIMEOUT,
            None => self.next_ask,
        };
        ask_at.min(self.next_seal)
    }

    /// Does what is due at the clock's time: seals a batch, asks for blocks.
    pub fn tick(&mut self) {
        let now = self.clock.now();
        if self.next_seal <= now {
            let fresh = self.mempool.lock().expect("mempool lock poisoned").take_fresh();
            self.seal(fresh);
            self.next_seal = now + BATCH_INTERVAL;
        }
        if self.next_resend <= now {
            // A batch lost on its way would leave the transaction here for good: a full
            // node never proposes.
            let due = self.mempool.lock().expect("mempool lock poisoned").resend_due();
            self.seal(due);
            self.next_resend = now + RESEND_EVERY;
        }
        match self.asked {
            Some((peer, at)) if at + ANSWER_TIMEOUT <= now => {
                tracing::debug!(%peer, "no answer to block sync; asking the next peer");
                self.asked = None;
                self.source = self.source.wrapping_add(1);
                self.ask();
            }
            None if self.next_ask <= now => self.ask(),
            _ => {}
        }
    }

    fn show_tip(&self) {
        let tip = self.view.tip();
        self.status.view.store(tip.view, Ordering::Relaxed);
        self.status.finalized_view.store(tip.view, Ordering::Relaxed);
    }

    fn ask(&mut self) {
        if self.diverged || self.sources.is_empty() {
            self.next_ask = self.clock.now() + self.poll_every;
            return;
        }
        let peer = self.sources[self.source % self.sources.len()];
        let from_height = self.view.tip().height + 1;
        self.net.send(peer, &NetMessage::SyncRequest { from_height, count: BLOCKS_PER_MESSAGE_MAX });
        self.asked = Some((peer, self.clock.now()));
    }

    /// Handles one message from a peer.
    pub fn on_message(&mut self, inbound: Inbound) {
        let Some((from, message)) = chain::decode(inbound, &*self.net) else { return };
        match message {
            NetMessage::SyncRequest { from_height, count } => {
                let blocks = committed_from(&self.view.storage, from_height, count);
                self.net.send(from, &NetMessage::SyncBlocks(blocks));
            }
            NetMessage::SyncBlocks(blocks) if self.asked.is_some_and(|(peer, _)| peer == from) => {
                self.asked = None;
                let progress = self.on_blocks(from, blocks);
                let now = self.clock.now();
                match progress {
                    Progress::More => self.next_ask = now,
                    Progress::CaughtUp | Progress::Useless => {
                        self.source = self.source.wrapping_add(1);
                        self.next_ask = now + self.poll_every;
                    }
                }
                if self.next_ask <= now {
                    self.ask();
                }
            }
            NetMessage::EpochRequest { epoch } => chain::serve_epoch(&self.view.storage, &*self.net, from, epoch),
            NetMessage::EpochProof(change) => {
                self.gate.on_proof(from, &change, &self.view.chain_id, &self.view.storage, &*self.net)
            }
            // Consensus traffic, batches and unasked answers are for validators.
            _ => {}
        }
    }

    /// Commits what of `blocks` links to the tip and is made final by a certificate of the
    /// current epoch, on its own block or a later one of the answer. A certificate of the
    /// next epoch ends the run: once this epoch's last block is committed, the next answer
    /// is checked against the next set.
    fn on_blocks(&mut self, from: PeerId, blocks: Vec<(Block, Option<Certificate>)>) -> Progress {
        let received = blocks.len();
        let (chain_id, epoch) = (&self.view.chain_id, &self.epoch);
        let mut later = false;
        let linked = chain::linked_run(&self.view.tip(), blocks, |hash, certificate| {
            let said =
                certificate.map(|c| chain::check_finalization(c, hash, chain_id, epoch.epoch, &epoch.validators));
            later |= said == Some(Finality::LaterEpoch);
            said
        });
        if later {
            // The peer is in a later epoch: learn its validators ahead of executing there.
            self.gate.behind(from, &self.view.storage, &*self.net, self.clock.now());
        }
        if linked.is_empty() {
            return if received == 0 { Progress::CaughtUp } else { Progress::Useless };
        }
        let mut committed = 0;
        let mut start = 0;
        for i in 0..linked.len() {
            // The run ends at its last final block: only those, and the blocks before them.
            if linked[i].finality != Some(Finality::Final) {
                continue;
            }
            for (j, run) in linked.iter().enumerate().take(i + 1).skip(start) {
                if !self.execute_and_commit(&run.block, if j == i { run.certificate.as_ref() } else { None }) {
                    return Progress::Useless;
                }
                committed += 1;
            }
            start = i + 1;
            // The block may have ended an epoch: later certificates are the next set's.
            if let Some(next) =
                shutong_execution::epochs::validators_for(&*self.view.storage, self.view.tip().height + 1)
                && next.epoch != self.epoch.epoch
            {
                tracing::info!(epoch = next.epoch, validators = next.validators.len(), "validator set changed");
                self.net.set_validators(next.members());
                self.epoch = next;
            }
        }
        self.gate.after_commit(&self.view.storage, &*self.net);
        self.show_tip();
        match committed {
            0 => Progress::Useless,
            // More may follow: a full answer, or one cut at an epoch's end.
            _ if received as u32 >= BLOCKS_PER_MESSAGE_MAX || start < received => Progress::More,
            _ => Progress::CaughtUp,
        }
    }

    /// Executes a final block on the tip and commits it; false if it cannot be (this node's
    /// execution disagrees with the header, which stops committing for good, or it failed).
    fn execute_and_commit(&mut self, block: &Block, certificate: Option<&Certificate>) -> bool {
        if diverges(&self.view.tip(), block) {
            self.diverged = true;
            return false;
        }
        if !self.disk.writable(&self.view.storage, &self.status.disk, &*self.clock) {
            return false;
        }
        let Some(output) = execute_final(&self.executor, &self.status, &*self.clock, block) else { return false };
        match commit_block(&self.view, &self.status, &self.mempool, &*self.clock, block, certificate, &output) {
            Ok(()) => true,
            Err(err) => {
                self.disk.failed(&err, &self.view.storage, &self.status.disk);
                false
            }
        }
    }

    /// Pushes `txs` (submitted here) to the validators in batches.
    fn seal(&mut self, txs: Vec<Arc<shutong_types::SignedTransaction>>) {
        if txs.is_empty() {
            return;
        }
        for txs in split_into_batches(txs.iter().map(|tx| (**tx).clone()).collect()) {
            self.batch_seq += 1;
            let batch = Batch { author: self.key.public(), seq: self.batch_seq, txs };
            self.net.broadcast(&NetMessage::Batch(batch));
        }
    }
}
