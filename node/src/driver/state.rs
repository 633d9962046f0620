//! The driver's bookkeeping, as synchronous parts with their bounds, each tested here
//! without a network, a clock or an engine: the timers, the blocks held until they are
//! committed, the batches held for proposals that name them, and what waits for what.

use super::{BATCH_AGE_MAX, BATCHES_BYTES_MAX, HELD_BLOCKS_MAX, HELD_BYTES_MAX, WAITING_MAX, WANTED_MAX};
use shutong_consensus::wire::{BATCHES_PER_MESSAGE_MAX, Batch, CompactProposal};
use shutong_consensus::{SignedVote, Timer};
use shutong_execution::executor::BlockOutput;
use shutong_p2p::PeerId;
use shutong_storage::Tip;
use shutong_types::{Block, Certificate, Hash, Roots, SignedTransaction};
use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::Arc;
use std::time::Instant;

/// A block the engine asked this validator to build.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Requested {
    pub view: u64,
    pub parent: Hash,
    pub parent_view: u64,
    /// Blocks are paced: built no earlier than `block_interval_ms` after the request.
    pub ready_at: Instant,
}

/// This validator's latest proposal.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OwnProposal {
    pub view: u64,
    pub digest: Hash,
    pub parent_view: u64,
}

/// A proposal whose parent this node has not got yet.
#[derive(Debug)]
pub struct WaitingProposal {
    pub block: Block,
    pub parent_view: u64,
    pub vote: SignedVote,
    pub from: PeerId,
}

/// A compact proposal waiting for the batches it names.
#[derive(Debug)]
pub struct WaitingCompact {
    pub proposal: CompactProposal,
    pub from: PeerId,
}

/// The engine's latest finalization, until it is committed.
#[derive(Debug, Clone)]
pub struct Target {
    pub view: u64,
    pub digest: Hash,
    pub certificate: Certificate,
}

/// What a block is built on, or checked against: its parent and the state after it.
#[derive(Debug, Clone)]
pub struct ParentState {
    pub view: u64,
    pub height: u64,
    pub timestamp_ms: u64,
    pub roots: Roots,
    /// The outputs of the uncommitted blocks up to and including the parent, oldest first.
    pub layers: Vec<Arc<BlockOutput>>,
}

impl ParentState {
    /// The state after the committed tip.
    pub fn of_tip(tip: &Tip) -> ParentState {
        ParentState {
            view: tip.view,
            height: tip.height,
            timestamp_ms: tip.timestamp_ms,
            roots: tip.roots(),
            layers: Vec::new(),
        }
    }

    /// The state after `block`, whose execution on this state gave `output`.
    pub fn then(mut self, block: &Block, output: Arc<BlockOutput>) -> ParentState {
        self.view = block.header.view;
        self.height = block.header.height;
        self.timestamp_ms = block.header.timestamp_ms;
        self.roots = Roots {
            state: output.state_root,
            receipts: output.receipts_root,
            audit: output.log.root,
            audit_size: output.log.size,
        };
        self.layers.push(output);
        self
    }
}

// ---- Timers ------------------------------------------------------------------------------

/// The engine's pending timers, by deadline.
#[derive(Debug, Default)]
pub struct Timers {
    /// (deadline, sequence) → (view, timer); the sequence keeps equal deadlines apart.
    pending: BTreeMap<(Instant, u64), (u64, Timer)>,
    seq: u64,
}

impl Timers {
    /// Schedules `timer` of `view` at `at`, and drops the timers of views left behind
    /// `current` (harmless, but they need not pile up).
    pub fn schedule(&mut self, at: Instant, view: u64, timer: Timer, current: u64) {
        self.seq += 1;
        self.pending.insert((at, self.seq), (view, timer));
        self.pending.retain(|_, (v, _)| *v + 1 >= current);
    }

    /// The earliest deadline.
    pub fn next(&self) -> Option<Instant> {
        self.pending.keys().next().map(|(at, _)| *at)
    }

    /// The earliest timer due at `now`, removed.
    pub fn pop_due(&mut self, now: Instant) -> Option<(u64, Timer)> {
        let entry = self.pending.first_entry()?;
        (entry.key().0 <= now).then(|| entry.remove())
    }

    pub fn clear(&mut self) {
        self.pending.clear();
    }

    pub fn len(&self) -> usize {
        self.pending.len()
    }

    pub fn is_empty(&self) -> bool {
        self.pending.is_empty()
    }
}

// ---- Blocks held until committed ---------------------------------------------------------

/// A block held in memory until it is committed, with its execution once something needed it.
#[derive(Debug)]
pub struct Held {
    pub block: Arc<Block>,
    pub bytes: usize,
    pub output: Option<Arc<BlockOutput>>,
}

/// The blocks held that are not committed yet, within [`HELD_BLOCKS_MAX`] and
/// [`HELD_BYTES_MAX`]: whatever is held may be executed, so its cost is bounded whoever
/// sent it.
#[derive(Debug, Default)]
pub struct HeldBlocks {
    blocks: HashMap<Hash, Held>,
    bytes: usize,
}

/// Where walking back from a digest to the tip ended.
#[derive(Debug, PartialEq, Eq)]
pub enum Path {
    /// The digests to commit, oldest first.
    Complete(Vec<Hash>),
    /// This block is neither held nor committed.
    Missing(Hash),
    /// The digest is not a descendant of the tip: it is committed already, or it conflicts.
    NotAbove,
}

impl HeldBlocks {
    /// Holds `block` (`bytes` encoded, named `hash`); false if that would pass a bound.
    pub fn insert(&mut self, hash: Hash, block: Block, bytes: usize) -> bool {
        if self.blocks.contains_key(&hash) {
            return true;
        }
        if self.blocks.len() >= HELD_BLOCKS_MAX || self.bytes + bytes > HELD_BYTES_MAX {
            return false;
        }
        self.bytes += bytes;
        self.blocks.insert(hash, Held { block: Arc::new(block), bytes, output: None });
        true
    }

    pub fn get(&self, hash: &Hash) -> Option<&Held> {
        self.blocks.get(hash)
    }

    /// Records the execution of a held block.
    pub fn set_output(&mut self, hash: &Hash, output: Arc<BlockOutput>) {
        if let Some(held) = self.blocks.get_mut(hash) {
            held.output = Some(output);
        }
    }

    pub fn contains(&self, hash: &Hash) -> bool {
        self.blocks.contains_key(hash)
    }

    pub fn len(&self) -> usize {
        self.blocks.len()
    }

    pub fn is_empty(&self) -> bool {
        self.blocks.is_empty()
    }

    pub fn bytes(&self) -> usize {
        self.bytes
    }

    /// Forgets the blocks at or below `height` (committed, or off the committed chain).
    pub fn prune_to(&mut self, height: u64) {
        let mut freed = 0;
        self.blocks.retain(|_, held| {
            let keep = held.block.header.height > height;
            if !keep {
                freed += held.bytes;
            }
            keep
        });
        self.bytes -= freed;
    }

    /// The held blocks from `tip` up to `digest`, if `digest` descends from it;
    /// `committed` says whether a digest this node does not hold is committed.
    pub fn path_to(&self, tip: &Tip, digest: &Hash, committed: impl Fn(&Hash) -> bool) -> Path {
        let mut path = Vec::new();
        let mut cursor = *digest;
        while cursor != tip.hash {
            match self.blocks.get(&cursor) {
                Some(held) if held.block.header.height > tip.height => {
                    path.push(cursor);
                    cursor = held.block.header.parent;
                }
                Some(_) => return Path::NotAbove,
                None if committed(&cursor) => return Path::NotAbove,
                None => return Path::Missing(cursor),
            }
        }
        path.reverse();
        Path::Complete(path)
    }
}

// ---- Batches ------------------------------------------------------------------------------

/// A batch held for proposals that may name it.
#[derive(Debug)]
struct HeldBatch {
    batch: Arc<Batch>,
    /// The committed height when it arrived; old batches are dropped.
    height: u64,
    bytes: usize,
}

/// The batches held (this node's and its peers'), within [`BATCHES_BYTES_MAX`] and for
/// [`BATCH_AGE_MAX`] committed blocks, and where each of their transactions is.
#[derive(Debug, Default)]
pub struct Batches {
    held: HashMap<Hash, HeldBatch>,
    bytes: usize,
    /// Where each transaction of a held batch is: (batch digest, index).
    located: HashMap<Hash, (Hash, u32)>,
}

/// Why a compact proposal's transactions cannot be rebuilt.
#[derive(Debug, PartialEq, Eq)]
pub enum Rebuild {
    /// These batches are not held: ask the proposer.
    Missing(Vec<Hash>),
    /// A position names no transaction of its batches (the proposer's fault).
    BadPosition { batch: u32, index: u32 },
}

impl Batches {
    pub fn contains(&self, digest: &Hash) -> bool {
        self.held.contains_key(digest)
    }

    pub fn get(&self, digest: &Hash) -> Option<&Batch> {
        self.held.get(digest).map(|h| &*h.batch)
    }

    pub fn len(&self) -> usize {
        self.held.len()
    }

    pub fn is_empty(&self) -> bool {
        self.held.is_empty()
    }

    /// Whether a held batch carries transaction `id`.
    pub fn locates(&self, id: &Hash) -> bool {
        self.located.contains_key(id)
    }

    /// Holds `batch` (`bytes` encoded) at committed height `height` and indexes its
    /// transactions; false if it is over the memory bound.
    pub fn store(&mut self, batch: Batch, bytes: usize, height: u64) -> bool {
        let digest = batch.digest();
        if self.held.contains_key(&digest) {
            return true;
        }
        if self.bytes + bytes > BATCHES_BYTES_MAX {
            return false;
        }
        for (i, tx) in batch.txs.iter().enumerate() {
            self.located.entry(tx.id()).or_insert((digest, i as u32));
        }
        self.bytes += bytes;
        self.held.insert(digest, HeldBatch { batch: Arc::new(batch), height, bytes });
        true
    }

    /// Drops the batches that arrived more than [`BATCH_AGE_MAX`] blocks before `tip`.
    pub fn prune(&mut self, tip: u64) {
        let old: Vec<Hash> =
            self.held.iter().filter(|(_, b)| b.height + BATCH_AGE_MAX < tip).map(|(d, _)| *d).collect();
        for digest in old {
            if let Some(held) = self.held.remove(&digest) {
                self.bytes -= held.bytes;
                for tx in &held.batch.txs {
                    let id = tx.id();
                    if self.located.get(&id).is_some_and(|(d, _)| *d == digest) {
                        self.located.remove(&id);
                    }
                }
            }
        }
    }

    /// `block` by batch digests, if every transaction is in a held batch and it names at
    /// most [`BATCHES_PER_MESSAGE_MAX`] batches.
    pub fn compact(&self, block: &Block, parent_view: u64, vote: &SignedVote) -> Option<CompactProposal> {
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
        (batches.len() <= BATCHES_PER_MESSAGE_MAX as usize).then(|| CompactProposal {
            header: block.header.clone(),
            batches,
            positions,
            parent_view,
            vote: vote.clone(),
        })
    }

    /// The transactions a compact proposal names, in order.
    pub fn rebuild(&self, proposal: &CompactProposal) -> Result<Vec<SignedTransaction>, Rebuild> {
        let missing: Vec<Hash> = proposal.batches.iter().filter(|d| !self.contains(d)).copied().collect();
        if !missing.is_empty() {
            return Err(Rebuild::Missing(missing));
        }
        let mut txs = Vec::with_capacity(proposal.positions.len());
        for &(batch, index) in &proposal.positions {
            let tx = proposal
                .batches
                .get(batch as usize)
                .and_then(|digest| self.held.get(digest))
                .and_then(|held| held.batch.txs.get(index as usize));
            match tx {
                Some(tx) => txs.push(tx.clone()),
                None => return Err(Rebuild::BadPosition { batch, index }),
            }
        }
        Ok(txs)
    }
}

// ---- What waits ---------------------------------------------------------------------------

/// Proposals waiting for a parent, compact proposals waiting for batches (each by view,
/// at most [`WAITING_MAX`]), and the digests asked for (at most [`WANTED_MAX`]).
#[derive(Debug, Default)]
pub struct Waiting {
    pub parents: BTreeMap<u64, WaitingProposal>,
    pub batches: BTreeMap<u64, WaitingCompact>,
    wanted: HashSet<Hash>,
}

impl Waiting {
    /// Keeps a proposal until its parent arrives; false (dropped) if too many wait.
    pub fn for_parent(&mut self, view: u64, proposal: WaitingProposal) -> bool {
        if self.parents.len() >= WAITING_MAX {
            return false;
        }
        self.parents.insert(view, proposal);
        true
    }

    /// Keeps a compact proposal until its batches arrive; false (dropped) if too many wait.
    pub fn for_batches(&mut self, view: u64, proposal: WaitingCompact) -> bool {
        if self.batches.len() >= WAITING_MAX {
            return false;
        }
        self.batches.insert(view, proposal);
        true
    }

    /// Notes that `digest` was asked for. Past [`WANTED_MAX`] the oldest askings are
    /// forgotten (all at once: an answer to them is then ignored and asked for again).
    pub fn want(&mut self, digest: Hash) {
        if self.wanted.len() >= WANTED_MAX {
            self.wanted.clear();
        }
        self.wanted.insert(digest);
    }

    /// Whether `digest` was asked for; it is not any more.
    pub fn take_wanted(&mut self, digest: &Hash) -> bool {
        self.wanted.remove(digest)
    }

    /// Forgets what waits for views at or below `finalized`.
    pub fn prune_to(&mut self, finalized: u64) {
        self.parents = self.parents.split_off(&(finalized + 1));
        self.batches = self.batches.split_off(&(finalized + 1));
    }

    /// Forgets every waiting proposal (a new epoch's engine starts afresh).
    pub fn clear_proposals(&mut self) {
        self.parents.clear();
        self.batches.clear();
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use crate::clock::Clock;
    use shutong_types::{Keypair, Transaction, VoteKind, VoteSubject};
    use std::time::Duration;

    fn chain(n: u64) -> Vec<Block> {
        let mut blocks = vec![Block::empty("state", 0, Hash::of(shutong_types::Suite::Ed25519Blake3, "test", b"none"))];
        for height in 1..=n {
            let parent = blocks.last().unwrap().header.hash();
            blocks.push(Block::empty("state", height, parent));
        }
        blocks
    }

    fn tip(block: &Block) -> Tip {
        Tip::after(
            &block.header,
            Roots { state: Hash([0; 32]), receipts: Hash([0; 32]), audit: Hash([0; 32]), audit_size: 0 },
        )
    }

    fn tx(nonce: u64) -> SignedTransaction {
        let key = Keypair::from_seed("sender");
        let call = shutong_types::Call { contract: shutong_types::Address([1; 32]), method: "m".into(), args: vec![] };
        Transaction { chain_id: "state".into(), sender: key.account(), nonce, gas_limit: 1, expiry_height: 9, call }
            .sign(&key)
    }

    fn vote(block: &Block) -> SignedVote {
        let key = Keypair::from_seed("leader");
        let subject = VoteSubject { kind: VoteKind::Notarize, epoch: 0, view: 3, digest: block.header.hash() };
        SignedVote { subject, signer: 0, signature: subject.sign("state", &key) }
    }

    #[test]
    fn timers_fire_in_deadline_order_only_when_due_and_old_views_are_dropped() {
        let t0 = crate::clock::SystemClock.now();
        let mut timers = Timers::default();
        timers.schedule(t0 + Duration::from_millis(30), 5, Timer::Advance, 5);
        timers.schedule(t0 + Duration::from_millis(10), 5, Timer::Leader, 5);
        timers.schedule(t0 + Duration::from_millis(10), 5, Timer::Rebroadcast, 5);
        assert_eq!(timers.next(), Some(t0 + Duration::from_millis(10)));
        assert_eq!(timers.pop_due(t0), None, "nothing is due before its deadline");
        let due = t0 + Duration::from_millis(10);
        assert_eq!(timers.pop_due(due), Some((5, Timer::Leader)), "equal deadlines keep their order");
        assert_eq!(timers.pop_due(due), Some((5, Timer::Rebroadcast)));
        assert_eq!(timers.pop_due(due), None);
        // Entering view 7 drops view 5's timers; view 6's stay one view longer.
        timers.schedule(t0 + Duration::from_millis(50), 6, Timer::Leader, 7);
        timers.schedule(t0 + Duration::from_millis(60), 7, Timer::Leader, 7);
        assert_eq!(timers.len(), 2);
        assert_eq!(timers.pop_due(t0 + Duration::from_secs(1)), Some((6, Timer::Leader)));
    }

    #[test]
    fn held_blocks_are_bounded_and_walk_back_to_the_tip() {
        let blocks = chain(4);
        let mut held = HeldBlocks::default();
        for b in &blocks[2..] {
            assert!(held.insert(b.header.hash(), b.clone(), 100));
        }
        assert_eq!((held.len(), held.bytes()), (3, 300));
        let tip1 = tip(&blocks[1]);
        let hashes: Vec<Hash> = blocks.iter().map(|b| b.header.hash()).collect();
        let none = |_: &Hash| false;
        assert_eq!(held.path_to(&tip1, &hashes[4], none), Path::Complete(hashes[2..].to_vec()));
        assert_eq!(held.path_to(&tip1, &hashes[1], none), Path::Complete(vec![]), "the tip itself");
        // From block 2's tip, block 2 is committed: a path through it is not above the tip.
        let tip2 = tip(&blocks[2]);
        let committed = |h: &Hash| *h == hashes[2] || *h == hashes[1];
        assert_eq!(held.path_to(&tip2, &hashes[4], committed), Path::Complete(hashes[3..].to_vec()));
        let mut gap = HeldBlocks::default();
        gap.insert(hashes[4], blocks[4].clone(), 1);
        assert_eq!(gap.path_to(&tip1, &hashes[4], none), Path::Missing(hashes[3]));
        held.prune_to(3);
        assert_eq!((held.len(), held.bytes()), (1, 100));
        let mut full = HeldBlocks::default();
        assert!(!full.insert(hashes[0], blocks[0].clone(), HELD_BYTES_MAX + 1), "over the byte bound");
        assert!(full.is_empty());
    }

    #[test]
    fn batches_are_bounded_aged_out_and_rebuild_compact_proposals() {
        let mut batches = Batches::default();
        let author = Keypair::from_seed("author").public();
        let one = Batch { author, seq: 1, txs: vec![tx(0), tx(1)] };
        let two = Batch { author, seq: 2, txs: vec![tx(2)] };
        assert!(batches.store(one.clone(), 10, 1));
        assert!(batches.store(two.clone(), 10, 5));
        assert!(!batches.store(Batch { author, seq: 3, txs: vec![] }, BATCHES_BYTES_MAX, 5), "over the bound");
        let mut block = chain(1).pop().unwrap();
        block.txs = vec![tx(2), tx(0)];
        let v = vote(&block);
        let compact = batches.compact(&block, 2, &v).unwrap();
        assert_eq!(compact.batches, vec![two.digest(), one.digest()]);
        assert_eq!(compact.positions, vec![(0, 0), (1, 0)]);
        assert_eq!(batches.rebuild(&compact).unwrap(), block.txs);
        let mut bad = compact.clone();
        bad.positions[1] = (1, 7);
        assert_eq!(batches.rebuild(&bad), Err(Rebuild::BadPosition { batch: 1, index: 7 }));
        // Batch one arrived at height 1: past the age bound it goes, and so does its index.
        batches.prune(1 + BATCH_AGE_MAX + 1);
        assert!(!batches.contains(&one.digest()) && batches.contains(&two.digest()));
        assert!(!batches.locates(&tx(0).id()) && batches.locates(&tx(2).id()));
        assert_eq!(batches.rebuild(&compact), Err(Rebuild::Missing(vec![one.digest()])));
        assert!(batches.compact(&block, 2, &v).is_none(), "a transaction no held batch carries");
    }

    #[test]
    fn what_waits_is_bounded_and_forgotten_once_its_view_is_final() {
        let mut waiting = Waiting::default();
        let block = chain(1).pop().unwrap();
        let from = PeerId::random();
        for view in 1..=WAITING_MAX as u64 {
            let proposal = WaitingProposal { block: block.clone(), parent_view: 0, vote: vote(&block), from };
            assert!(waiting.for_parent(view, proposal));
        }
        let one_more = WaitingProposal { block: block.clone(), parent_view: 0, vote: vote(&block), from };
        assert!(!waiting.for_parent(1_000, one_more), "the bound holds");
        waiting.prune_to(10);
        assert_eq!(waiting.parents.keys().next(), Some(&11));
        waiting.want(block.header.hash());
        assert!(waiting.take_wanted(&block.header.hash()) && !waiting.take_wanted(&block.header.hash()));
    }
}
