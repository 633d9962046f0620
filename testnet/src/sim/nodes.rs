//! The node's own consensus driver in the simulation: n validators, each a real
//! [`Driver`] (batches, compact proposals, block building and checking, block sync, the
//! write-ahead log, epochs) over its own RocksDB and the real VM, and full nodes running the
//! node's [`Follower`], exchanging the node's wire messages over the seeded network of
//! [`super`] in virtual time ([`SimClock`], [`SimNet`]).
//!
//! A run submits transactions to the validators' mempools as clients would, crashes and
//! restarts validators (a restart opens the same database, recovers from its write-ahead
//! log and admits again the transactions it had accepted and synced), partitions them,
//! loses, duplicates and delays messages before GST, makes one validator Byzantine
//! ([`Byzantine`]: it withholds its batches, is silent, votes twice, sends garbage,
//! equivocates as leader, or runs as twins),
//! and, if asked, has the governance committee remove a validator, which ends the epoch.
//!
//! Checked as it runs and at the end ([`NodeViolation`]): every node that committed a
//! height committed the same block there; an honest validator sent no vote it had not
//! written to its write-ahead log, and no two conflicting votes; within
//! [`LIVENESS_MS`] after GST every live honest node of the final set (the full node
//! included) is [`BLOCKS_AFTER_GST`] blocks past the highest height at GST, with every
//! accepted transaction in exactly one block. One seed reproduces one run
//! ([`NodeReport::trace`]).
//!
//! Storage is each node's real RocksDB in a temporary directory, opened with
//! [`Storage::open_simulated`]: a crash is a power cut, which loses what the process held
//! and every write made since the last synced one ([`Storage::power_cut`]).

use super::{DELTA_MS, Links, Partition, Rng};
use shutong_consensus::Message as ConsensusMessage;
use shutong_consensus::wire::NetMessage;
use shutong_execution::genesis::{CommitteeMember, Genesis, GenesisValidator};
use shutong_node::chain::{ChainStatus, NetSink};
use shutong_node::clock::Clock;
use shutong_node::config::Config;
use shutong_node::disk::DiskGuard;
use shutong_node::driver::Driver;
use shutong_node::driver::actor::Parts;
use shutong_node::follower::{self, Follower};
use shutong_node::mempool::Mempool;
use shutong_node::view::NodeView;
use shutong_p2p::peer_guard::Misbehaviour;
use shutong_p2p::{Inbound, PeerId};
use shutong_storage::Storage;
use shutong_types::transport::{Member, Transport};
use shutong_types::{Encode, Hash, Keypair, PublicKey, Suite};
use shutong_vm::{Vm, VmConfig};
use std::cmp::Reverse;
use std::collections::{BTreeMap, BinaryHeap, HashMap};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

const CHAIN_ID: &str = "shutong-sim";
/// Virtual time 0 on the nodes' wall clock.
const START_UNIX_MS: u64 = 1_800_000_000_000;
/// How long after GST every live node must have caught up, with every accepted transaction.
pub const LIVENESS_MS: u64 = 15_000;
/// New blocks required after GST.
pub const BLOCKS_AFTER_GST: u64 = 10;
/// The governance transactions' expiry height: fixed, so that a step sent again is the
/// same transaction (runs end far below it).
const GOVERNANCE_EXPIRY: u64 = 10_000;

/// How a Byzantine validator misbehaves. It runs the node's own driver; what it sends is
/// changed on its way out.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Byzantine {
    /// Never broadcasts its batches, yet proposes blocks made of them: the others must ask.
    WithholdBatches,
    /// Sends nothing at all.
    Silent,
    /// Each notarize vote goes out with a second one for another block, and each finalize
    /// vote with a nullify of the same view.
    DoubleVoter,
    /// Also sends random bytes, truncated messages and messages with a flipped bit.
    Garbage,
    /// As leader, proposes two blocks in one view: its own to the validators of even index,
    /// another (stamped a millisecond later, so another digest, with its own signed
    /// notarize vote) to those of odd index.
    Equivocator,
    /// Two drivers with one key and a database each: one talks only with the nodes of even
    /// index, the other only with those of odd index, each unaware of the other.
    Twins,
}

pub const BYZANTINE: [Byzantine; 6] = [
    Byzantine::WithholdBatches,
    Byzantine::Silent,
    Byzantine::DoubleVoter,
    Byzantine::Garbage,
    Byzantine::Equivocator,
    Byzantine::Twins,
];

/// One run of the driver simulation.
#[derive(Debug, Clone)]
pub struct NodeScenario {
    pub seed: u64,
    pub validators: usize,
    pub full_nodes: usize,
    /// A Byzantine validator and how it misbehaves; no client submits to it.
    pub byzantine: Option<(u32, Byzantine)>,
    pub crashes: Vec<super::Crash>,
    pub partitions: Vec<Partition>,
    pub links: Links,
    pub gst_ms: u64,
    /// Transactions the clients submit, spread over the run up to GST.
    pub txs: u64,
    /// Whether the committee replaces the last validator with the full node by governance
    /// (a new epoch, in which both switch roles live).
    pub epoch_change: bool,
    /// The chain's crypto suite: on `sm2-sm3` every node also has a transport key, bound
    /// to its SM2 key, that names its peer id.
    pub suite: Suite,
}

impl NodeScenario {
    /// A scenario drawn from `seed`: up to f validators crashed and restarted or one
    /// Byzantine, up to two partitions, lossy links before GST, and an epoch
    /// change in every other run.
    pub fn random(seed: u64, validators: usize) -> NodeScenario {
        let mut rng = Rng::new(seed ^ 0xd21e);
        let f = validators.saturating_sub(1) / 3;
        let mut order: Vec<u32> = (0..validators as u32).collect();
        for i in (1..order.len()).rev() {
            order.swap(i, rng.below(i as u64 + 1) as usize);
        }
        let byzantine =
            (f > 0 && rng.chance(500)).then(|| (order[0], BYZANTINE[rng.below(BYZANTINE.len() as u64) as usize]));
        let gst_ms = rng.between(1_000, 4_000);
        let crashed = f - usize::from(byzantine.is_some()) + usize::from(rng.chance(300));
        let crashes = order[1..]
            .iter()
            .take(crashed)
            .map(|&validator| {
                let at_ms = rng.between(0, gst_ms);
                super::Crash { validator, at_ms, restart_ms: rng.between(at_ms + 1, gst_ms + 1_000) }
            })
            .collect();
        let partitions = Partition::random(&mut rng, gst_ms, validators);
        let links = Links {
            latency_ms_max: rng.between(DELTA_MS, 300),
            loss_per_mille: rng.between(0, 150),
            duplicate_per_mille: rng.between(0, 50),
        };
        // The removed validator is the last and the full node takes its place; it must not
        // be the Byzantine one, whose removal would leave none to test. Governance refuses
        // to remove one of three (f = 0). Three validators need all three votes: not with a
        // silent one or twins among them.
        let epoch_change = rng.chance(500)
            && validators >= 4
            && byzantine.is_none_or(|(v, b)| {
                v != validators as u32 - 1 && (!matches!(b, Byzantine::Silent | Byzantine::Twins) || validators > 4)
            });
        NodeScenario {
            seed,
            validators,
            full_nodes: 1,
            byzantine,
            crashes,
            partitions,
            links,
            gst_ms,
            txs: 40,
            epoch_change,
            suite: Suite::Ed25519Blake3,
        }
    }
}

/// What a run showed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NodeReport {
    /// A hash of every event in the order it happened.
    pub trace: [u8; 32],
    /// The height every live node reached.
    pub height: u64,
    pub messages_sent: u64,
    pub messages_delivered: u64,
    pub messages_lost: u64,
    pub crashes: u64,
    /// Unsynced writes a crash (a power cut) lost.
    pub lost_to_power_cuts: u64,
    pub txs_accepted: u64,
    /// The epoch at the end (1 after a governance change).
    pub epoch: u64,
    /// Virtual ms from GST until every live node had caught up.
    pub caught_up_ms: u64,
    /// Messages the Byzantine validator withheld, added or altered (for twins: the votes
    /// the second one sent), so that a test sees that it misbehaved at all.
    pub byzantine_acts: u64,
    /// Equivocation records on chain at the end (a double voter's must land there).
    pub evidence: u64,
    /// Proofs of a later epoch that nodes sent to nodes behind it (`chain::Gate`).
    pub epoch_proofs: u64,
    /// Messages dropped because the receiver's or the sender's allow list refused the other
    /// (a removed validator that keeps sending).
    pub refused: u64,
    /// Whether the full node became a validator and the removed validator a full node,
    /// live, in a run with a validator-set change.
    pub switched_live: bool,
}

/// A broken property.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum NodeViolation {
    #[error("fork at height {height}: node {first_node} committed {first}, node {second_node} committed {second}")]
    Fork { height: u64, first: Hash, first_node: usize, second: Hash, second_node: usize },
    #[error("honest validator {node} sent a vote for view {view} that is not in its write-ahead log")]
    SentUnpersisted { node: usize, view: u64 },
    #[error("honest validator {node} signed conflicting votes in view {view}: {detail}")]
    ConflictingVotes { node: usize, view: u64, detail: String },
    #[error("transaction {id} is in {count} blocks")]
    Duplicated { id: Hash, count: u64 },
    #[error("{LIVENESS_MS} ms after GST: {detail}")]
    Stalled { detail: String },
    #[error("the simulation could not set up a node: {0}")]
    Setup(String),
}

/// The nodes' clock: virtual time, shared by every node of a run.
#[derive(Debug, Clone)]
pub struct SimClock {
    base: Instant,
    ms: Arc<AtomicU64>,
}

impl SimClock {
    fn new() -> SimClock {
        SimClock { base: Instant::now(), ms: Arc::new(AtomicU64::new(0)) }
    }

    fn set(&self, ms: u64) {
        self.ms.store(ms, Ordering::Relaxed);
    }

    fn ms(&self) -> u64 {
        self.ms.load(Ordering::Relaxed)
    }

    fn ms_of(&self, at: Instant) -> u64 {
        at.saturating_duration_since(self.base).as_millis() as u64
    }
}

impl Clock for SimClock {
    fn now(&self) -> Instant {
        self.base + Duration::from_millis(self.ms())
    }

    fn unix_ms(&self) -> u64 {
        START_UNIX_MS + self.ms()
    }
}

/// A message a node handed to the network: `None` for a broadcast to the validators.
type Sent = (Option<PeerId>, NetMessage);

/// A node's network: what it sends waits here until the runtime routes it.
#[derive(Debug, Default)]
pub struct SimNet {
    sent: Mutex<Vec<Sent>>,
    /// The set's peer ids: its validators' bound transport keys, as the real network's.
    validators: Mutex<Vec<PeerId>>,
    /// Peer ids of later epochs' validators let in ahead ([`NetSink::expect`]).
    expected: Mutex<Vec<PeerId>>,
    penalties: AtomicU64,
}

/// The peer ids the allow list takes for `members`, as `shutong_p2p::network`'s.
fn peer_ids(members: &[Member]) -> Vec<PeerId> {
    members.iter().filter_map(|m| m.peer_key(CHAIN_ID).ok()).filter_map(|k| shutong_p2p::peer_id(&k)).collect()
}

impl SimNet {
    fn take(&self) -> Vec<Sent> {
        std::mem::take(&mut *self.sent.lock().expect("sim net lock"))
    }
}

impl NetSink for SimNet {
    fn send(&self, to: PeerId, message: &NetMessage) {
        self.sent.lock().expect("sim net lock").push((Some(to), message.clone()));
    }

    fn broadcast(&self, message: &NetMessage) {
        self.sent.lock().expect("sim net lock").push((None, message.clone()));
    }

    fn penalise(&self, _: PeerId, _: Misbehaviour) {
        self.penalties.fetch_add(1, Ordering::Relaxed);
    }

    fn set_validators(&self, validators: Vec<Member>) {
        *self.validators.lock().expect("sim net lock") = peer_ids(&validators);
    }

    fn expect(&self, joining: Vec<Member>) {
        *self.expected.lock().expect("sim net lock") = peer_ids(&joining);
    }
}

/// A node's part: the node's own role (a validator's driver or a full node's follower,
/// switching when the set changes, as in a running node), or down.
enum Role {
    Up(shutong_node::role::Role),
    /// Crashed.
    Down,
}

struct SimNode {
    key: Keypair,
    peer: PeerId,
    dir: tempfile::TempDir,
    net: Arc<SimNet>,
    role: Role,
    storage: Option<Arc<Storage>>,
    /// What the last crash lost: the writes not yet synced, undone at the restart.
    lost: shutong_storage::PowerCut,
    mempool: Option<Arc<Mutex<Mempool>>>,
    view: Option<NodeView>,
    wake_gen: u64,
    validator: bool,
    byzantine: Option<Byzantine>,
}

impl SimNode {
    /// A node that is down until booted, with a fresh data directory.
    fn new(
        key: Keypair,
        peer: PeerId,
        validator: bool,
        byzantine: Option<Byzantine>,
    ) -> Result<SimNode, NodeViolation> {
        Ok(SimNode {
            key,
            peer,
            dir: tempfile::tempdir().map_err(setup)?,
            net: Arc::new(SimNet::default()),
            role: Role::Down,
            storage: None,
            lost: shutong_storage::PowerCut::default(),
            mempool: None,
            view: None,
            wake_gen: 0,
            validator,
            byzantine,
        })
    }
}

#[derive(Debug)]
enum Event {
    Deliver {
        to: usize,
        from: usize,
        bytes: Vec<u8>,
    },
    Wake {
        node: usize,
        generation: u64,
    },
    Crash {
        node: usize,
    },
    Restart {
        node: usize,
    },
    Submit {
        tx: usize,
        attempt: u64,
    },
    Govern,
    /// After GST: whether every live node has caught up.
    Check,
}

struct World {
    scenario: NodeScenario,
    rng: Rng,
    clock: SimClock,
    genesis: Genesis,
    vm: Arc<Vm>,
    cfg: Config,
    nodes: Vec<SimNode>,
    by_peer: HashMap<PeerId, usize>,
    /// With twins: the validator's node and its twin's (the last node).
    twins: Option<(usize, usize)>,
    queue: BinaryHeap<Reverse<(u64, u64, usize)>>,
    events: HashMap<usize, Event>,
    next_event: usize,
    trace: blake3::Hasher,
    committee: Vec<Keypair>,
    /// Each node's transport key and binding, on an SM chain.
    transports: Vec<Option<Transport>>,
    /// Signed transactions to submit, and which were accepted by a mempool.
    txs: Vec<(Vec<u8>, Hash)>,
    accepted: Vec<bool>,
    /// The node that accepted each transaction.
    accepted_by: Vec<Option<usize>>,
    /// The governance change: proposal id once proposed, done once carried.
    governance: Governance,
    /// The governance step's transaction, sent again until its receipt is seen, as a client
    /// does: a power cut may lose it where it was pending.
    governance_tx: Option<Vec<u8>>,
    report: NodeReport,
    violation: Option<NodeViolation>,
    /// The highest height at GST.
    gst_height: Option<u64>,
    /// Every vote an honest validator sent: (node, epoch, view, kind) → digest.
    votes: HashMap<(usize, u64, u64, u8), Hash>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Governance {
    Off,
    ToPropose,
    Proposed(Hash),
    Voted(Hash),
    Carried,
}

fn setup(e: impl std::fmt::Display) -> NodeViolation {
    NodeViolation::Setup(e.to_string())
}

/// Runs one scenario.
pub fn run(scenario: &NodeScenario) -> Result<NodeReport, NodeViolation> {
    let mut world = World::new(scenario.clone())?;
    world.run()
}

impl World {
    fn new(scenario: NodeScenario) -> Result<World, NodeViolation> {
        let rng = Rng::new(scenario.seed);
        let suite = scenario.suite;
        let keys: Vec<Keypair> = (0..scenario.validators + scenario.full_nodes)
            .map(|i| Keypair::from_seed_in(suite, &format!("sim-node-{i}")))
            .collect();
        // On an SM chain each node's peer id is its transport key's, bound to its key.
        let transports: Vec<Option<Transport>> = keys
            .iter()
            .enumerate()
            .map(|(i, k)| {
                let transport = Keypair::from_seed(&format!("sim-transport-{i}")).public();
                (suite == Suite::Sm2Sm3).then(|| Transport::bind(CHAIN_ID, k, &transport))
            })
            .collect();
        let committee: Vec<Keypair> =
            (0..3).map(|i| Keypair::from_seed_in(suite, &format!("sim-committee-{i}"))).collect();
        let validators = keys[..scenario.validators]
            .iter()
            .zip(&transports)
            .enumerate()
            .map(|(i, (k, transport))| GenesisValidator {
                transport: *transport,
                ..GenesisValidator::new(&format!("v{i}"), k.public())
            })
            .collect();
        let accounts: Vec<_> = committee.iter().map(Keypair::account).collect();
        let genesis =
            Genesis::new(CHAIN_ID, START_UNIX_MS - 1_000, validators, CommitteeMember::departments(&accounts));
        let vm = Arc::new(
            Vm::new(VmConfig { gas_schedule: genesis.gas_schedule, suite: genesis.suite, ..VmConfig::default() })
                .map_err(setup)?,
        );
        let mut cfg = Config::default();
        cfg.consensus.block_interval_ms = 100;
        cfg.consensus.leader_timeout_ms = 400;
        cfg.consensus.advance_timeout_ms = 600;
        cfg.consensus.rebroadcast_ms = 500;
        let mut nodes = Vec::new();
        let mut by_peer = HashMap::new();
        for (i, key) in keys.into_iter().enumerate() {
            let peer_key = transports[i].map_or_else(|| key.public(), |t| t.key);
            let peer = shutong_p2p::peer_id(&peer_key).ok_or_else(|| setup("a key without a peer id"))?;
            by_peer.insert(peer, i);
            let byzantine = scenario.byzantine.filter(|(v, _)| *v == i as u32).map(|(_, b)| b);
            nodes.push(SimNode::new(key, peer, i < scenario.validators, byzantine)?);
        }
        // The twin: one more node with the Byzantine validator's key, after the full nodes.
        let twins = match scenario.byzantine {
            Some((v, Byzantine::Twins)) => {
                let v = v as usize;
                let (key, peer) = (nodes[v].key.clone(), nodes[v].peer);
                nodes.push(SimNode::new(key, peer, true, Some(Byzantine::Twins))?);
                Some((v, nodes.len() - 1))
            }
            _ => None,
        };
        let mut world = World {
            rng,
            clock: SimClock::new(),
            genesis,
            vm,
            cfg,
            nodes,
            by_peer,
            twins,
            queue: BinaryHeap::new(),
            events: HashMap::new(),
            next_event: 0,
            trace: blake3::Hasher::new(),
            committee,
            transports,
            txs: Vec::new(),
            accepted: Vec::new(),
            accepted_by: Vec::new(),
            governance: if scenario.epoch_change { Governance::ToPropose } else { Governance::Off },
            governance_tx: None,
            report: NodeReport {
                trace: [0; 32],
                height: 0,
                messages_sent: 0,
                messages_delivered: 0,
                messages_lost: 0,
                crashes: 0,
                lost_to_power_cuts: 0,
                txs_accepted: 0,
                epoch: 0,
                caught_up_ms: 0,
                byzantine_acts: 0,
                evidence: 0,
                epoch_proofs: 0,
                refused: 0,
                switched_live: false,
            },
            violation: None,
            gst_height: None,
            votes: HashMap::new(),
            scenario,
        };
        for i in 0..world.nodes.len() {
            world.boot(i)?;
        }
        Ok(world)
    }

    /// Opens node `i`'s database (writing genesis the first time) and starts its driver or
    /// follower, as `shutong node run` does.
    fn boot(&mut self, i: usize) -> Result<(), NodeViolation> {
        let storage = Arc::new(
            Storage::open_simulated(&self.nodes[i].dir.path().join("data"), self.genesis.suite).map_err(setup)?,
        );
        // A crash is a power cut: what was written and not synced is gone.
        let lost = std::mem::take(&mut self.nodes[i].lost);
        storage.apply_power_cut(&lost).map_err(setup)?;
        let tip = shutong_node::init_storage(&storage, &self.genesis).map_err(setup)?;
        let view = NodeView { chain_id: CHAIN_ID.into(), storage: Arc::clone(&storage), vm: Arc::clone(&self.vm) };
        let mempool = Arc::new(Mutex::new(Mempool::new(self.cfg.mempool.clone())));
        shutong_node::readmit_pending(&storage, &view, &mempool);
        let epoch = shutong_execution::epochs::validators_for(&*storage, tip.height + 1)
            .ok_or_else(|| setup("no validator set"))?;
        self.nodes[i].net.set_validators(epoch.members());
        let executor = shutong_execution::executor::Executor::new(Arc::clone(&self.vm), storage.clone());
        let clock: Arc<dyn Clock> = Arc::new(self.clock.clone());
        let net: Arc<dyn NetSink> = self.nodes[i].net.clone();
        let status = Arc::new(ChainStatus::default());
        // Every node asks the validators of genesis and the full node for blocks.
        let sources = (0..self.nodes.len()).map(|v| self.nodes[v].peer).filter(|p| *p != self.nodes[i].peer).collect();
        let node = &mut self.nodes[i];
        let role = if epoch.validators.contains(&node.key.public()) {
            let engine = shutong_consensus::Config {
                chain_id: CHAIN_ID.into(),
                epoch: epoch.epoch,
                validators: epoch.validators.clone(),
                timeouts: self.cfg.consensus.timeouts(),
            };
            let parts = Parts {
                view: view.clone(),
                key: node.key.clone().into(),
                engine,
                executor,
                mempool: Arc::clone(&mempool),
                cfg: self.cfg.consensus.clone(),
                net,
                clock,
                status,
                disk: DiskGuard::new(0),
                mark: shutong_node::signing_mark::SigningMark::volatile(CHAIN_ID, node.key.public()),
            };
            let mut driver = Driver::new(parts).ok_or_else(|| setup("a validator key not in the set"))?;
            driver.start();
            shutong_node::role::Role::Validator(Box::new(driver))
        } else {
            // A full node, or a validator the committee removed: it follows the chain.
            shutong_node::role::Role::Follower(Box::new(Follower::new(follower::Parts {
                view: view.clone(),
                key: node.key.clone().into(),
                epoch,
                executor,
                mempool: Arc::clone(&mempool),
                net,
                clock,
                status,
                sources,
                block_interval_ms: self.cfg.consensus.block_interval_ms,
                disk: DiskGuard::new(0),
                mark: shutong_node::signing_mark::SigningMark::volatile(CHAIN_ID, node.key.public()),
            })))
        };
        node.role = Role::Up(role);
        node.storage = Some(storage);
        node.mempool = Some(mempool);
        node.view = Some(view);
        self.after_step(i);
        Ok(())
    }

    fn schedule(&mut self, at_ms: u64, event: Event) {
        let id = self.next_event;
        self.next_event += 1;
        self.events.insert(id, event);
        self.queue.push(Reverse((at_ms, id as u64, id)));
    }

    fn end_ms(&self) -> u64 {
        self.scenario.gst_ms + LIVENESS_MS
    }

    fn run(&mut self) -> Result<NodeReport, NodeViolation> {
        let s = self.scenario.clone();
        for crash in &s.crashes {
            self.schedule(crash.at_ms, Event::Crash { node: crash.validator as usize });
            self.schedule(crash.restart_ms, Event::Restart { node: crash.validator as usize });
        }
        self.sign_transactions();
        for tx in 0..self.txs.len() {
            let at = self.rng.between(0, s.gst_ms + 1_000);
            self.schedule(at, Event::Submit { tx, attempt: 0 });
        }
        if s.epoch_change {
            let at = self.rng.between(200, s.gst_ms);
            self.schedule(at, Event::Govern);
        }
        for at in (s.gst_ms..self.end_ms()).step_by(100) {
            self.schedule(at, Event::Check);
        }
        let mut caught_up_at = None;
        while let Some(Reverse((at, _, id))) = self.queue.pop() {
            if at > self.end_ms() {
                break;
            }
            self.clock.set(at);
            let event = self.events.remove(&id).expect("every queued event is stored");
            self.trace_event(at, &event);
            let check = matches!(event, Event::Check);
            if check && self.gst_height.is_none() {
                self.gst_height = Some(self.heights().iter().map(|(_, h)| *h).max().unwrap_or(0));
            }
            self.handle(event);
            if let Some(violation) = self.violation.take() {
                return Err(violation);
            }
            if check && self.caught_up().is_ok() {
                caught_up_at = Some(at);
                break;
            }
        }
        self.check_chain()?;
        match caught_up_at {
            Some(at) => self.report.caught_up_ms = at - s.gst_ms,
            None => {
                let detail = self.caught_up().err().unwrap_or_default();
                return Err(NodeViolation::Stalled { detail });
            }
        }
        self.report.trace = *self.trace.finalize().as_bytes();
        self.report.txs_accepted = self.accepted.iter().filter(|a| **a).count() as u64;
        let live = self.heights().first().map_or(0, |(i, _)| *i);
        self.report.evidence = self.evidence(live);
        self.report.switched_live = self.scenario.epoch_change;
        Ok(self.report.clone())
    }

    fn trace_event(&mut self, at: u64, event: &Event) {
        self.trace.update(&at.to_be_bytes());
        match event {
            Event::Deliver { to, from, bytes } => {
                self.trace.update(&[0, *to as u8, *from as u8]).update(blake3::hash(bytes).as_bytes());
            }
            Event::Wake { node, .. } => {
                self.trace.update(&[1, *node as u8]);
            }
            Event::Crash { node } => {
                self.trace.update(&[2, *node as u8]);
            }
            Event::Restart { node } => {
                self.trace.update(&[3, *node as u8]);
            }
            Event::Submit { tx, attempt } => {
                self.trace.update(&[4]).update(&(*tx as u64).to_be_bytes()).update(&attempt.to_be_bytes());
            }
            Event::Govern => {
                self.trace.update(&[5]);
            }
            Event::Check => {
                self.trace.update(&[6]);
            }
        }
    }

    fn handle(&mut self, event: Event) {
        match event {
            Event::Deliver { to, from, bytes } => {
                // A connection needs both ends to let the other in, as the allow lists do.
                if !self.lets_in(to, from) || !self.lets_in(from, to) {
                    self.report.refused += 1;
                    return;
                }
                let inbound = Inbound { from: self.nodes[from].peer, bytes };
                match &mut self.nodes[to].role {
                    Role::Up(role) => {
                        role.on_message(inbound);
                        role.tick();
                    }
                    Role::Down => return,
                }
                self.settle(to);
                self.report.messages_delivered += 1;
                self.after_step(to);
            }
            Event::Wake { node, generation } => {
                if generation != self.nodes[node].wake_gen {
                    return;
                }
                match &mut self.nodes[node].role {
                    Role::Up(role) => role.tick(),
                    Role::Down => return,
                }
                self.settle(node);
                self.after_step(node);
            }
            Event::Crash { node } => {
                self.power_cut(node);
                let n = &mut self.nodes[node];
                n.role = Role::Down;
                n.view = None;
                n.mempool = None;
                n.storage = None;
                n.net.take();
                n.wake_gen += 1;
                self.report.crashes += 1;
            }
            Event::Restart { node } => {
                if let Err(violation) = self.boot(node) {
                    self.violation = Some(violation);
                }
            }
            Event::Submit { tx, attempt } => self.submit(tx, attempt),
            Event::Govern => self.govern(),
            Event::Check => {
                if self.scenario.epoch_change {
                    self.resubmit_stranded();
                }
            }
        }
    }

    /// Node `i` loses its power: the transactions it accepted without a synced write since
    /// are gone from its disk. A client whose transaction that was would see no receipt and
    /// send it again, as the sim's clients do; it is counted in `NodeReport::lost_to_power_cuts`.
    fn power_cut(&mut self, i: usize) {
        let Some(storage) = &self.nodes[i].storage else { return };
        let cut = storage.power_cut();
        let committed = |id: &Hash| storage.receipt(id).is_some();
        let resubmit: Vec<usize> = cut
            .pending
            .iter()
            .filter(|(id, before)| before.is_none() && !committed(id))
            .filter_map(|(id, _)| self.txs.iter().position(|tx| tx.1 == *id))
            .collect();
        self.report.lost_to_power_cuts += cut.pending.len() as u64;
        self.nodes[i].lost = cut;
        let at = self.clock.ms() + 1_000;
        for tx in resubmit {
            self.accepted[tx] = false;
            self.schedule(at, Event::Submit { tx, attempt: 0 });
        }
    }

    /// Whether node `to`'s allow list takes node `from`: a listed full node always; else a
    /// key in the set `to` holds, or one it let in ahead of a later epoch.
    fn lets_in(&self, to: usize, from: usize) -> bool {
        if !self.nodes[from].validator {
            return true;
        }
        let peer = self.nodes[from].peer;
        let net = &self.nodes[to].net;
        net.validators.lock().expect("sim net lock").contains(&peer)
            || net.expected.lock().expect("sim net lock").contains(&peer)
    }

    /// Switches node `i` between validator and full node if a set change calls for it, as
    /// the node's consensus thread does after each step.
    fn settle(&mut self, i: usize) {
        let Role::Up(role) = std::mem::replace(&mut self.nodes[i].role, Role::Down) else { return };
        let me = self.nodes[i].peer;
        let sources = self.nodes.iter().map(|n| n.peer).filter(|p| *p != me).collect();
        let switch = shutong_node::role::Switch { consensus: self.cfg.consensus.clone(), sources };
        self.nodes[i].role = Role::Up(role.settle(&switch));
    }

    /// A validator the committee removed is refused by the others: what clients submitted
    /// there and it could not push out before its epoch ended is stranded, and a client
    /// that sees no receipt sends it to another validator (the same bytes), as a real one
    /// does after its timeout. Transactions accepted by any other node are never sent again:
    /// each must be committed as accepted.
    fn resubmit_stranded(&mut self) {
        let at = self.clock.ms() + 1_000;
        for tx in 0..self.txs.len() {
            let Some(i) = self.accepted_by[tx].filter(|_| self.accepted[tx]) else { continue };
            if !self.nodes[i].validator || !self.removed(i) {
                continue;
            }
            let id = self.txs[tx].1;
            if !self.nodes.iter().filter_map(|n| n.storage.as_ref()).any(|s| s.receipt(&id).is_some()) {
                self.accepted[tx] = false;
                self.schedule(at, Event::Submit { tx, attempt: 0 });
            }
        }
    }

    /// Routes what node `i` sent and schedules its next wake.
    fn after_step(&mut self, i: usize) {
        let sent = self.nodes[i].net.take();
        for (to, message) in sent {
            self.report.epoch_proofs += u64::from(matches!(message, NetMessage::EpochProof(_)));
            if let NetMessage::Consensus(ConsensusMessage::Vote(vote)) = &message
                && self.nodes[i].byzantine.is_none()
            {
                self.check_persisted(i, vote);
                self.check_conflicts(i, vote);
            }
            let mut out = vec![message.encode()];
            // What the validators of odd index get instead, from an equivocator.
            let mut odd: Option<Vec<u8>> = None;
            let is_vote = matches!(message, NetMessage::Consensus(ConsensusMessage::Vote(_)));
            let acted = match self.nodes[i].byzantine {
                Some(Byzantine::Silent) => {
                    self.report.byzantine_acts += 1;
                    continue;
                }
                Some(Byzantine::WithholdBatches) if to.is_none() && matches!(message, NetMessage::Batch(_)) => {
                    self.report.byzantine_acts += 1;
                    continue;
                }
                Some(Byzantine::DoubleVoter) => {
                    let second = self.double_vote(i, &message);
                    let acted = second.is_some();
                    out.extend(second);
                    acted
                }
                Some(Byzantine::Garbage) => {
                    let garbage = self.garbage(&out[0]);
                    out.push(garbage);
                    true
                }
                Some(Byzantine::Equivocator) if to.is_none() => {
                    odd = self.equivocate(i, &message);
                    odd.is_some()
                }
                Some(Byzantine::Twins) => is_vote && self.twins.is_some_and(|(_, b)| b == i),
                _ => false,
            };
            self.report.byzantine_acts += u64::from(acted);
            let targets: Vec<usize> = match to {
                // Twins share a peer id: the one that talks with `i` gets it.
                Some(peer) => self
                    .by_peer
                    .get(&peer)
                    .map(|&j| match self.twins {
                        Some((a, b)) if j == a && !self.talks(i, a) => b,
                        _ => j,
                    })
                    .into_iter()
                    .collect(),
                None => {
                    let validators = self.nodes[i].net.validators.lock().expect("sim net lock").clone();
                    (0..self.nodes.len()).filter(|j| *j != i && validators.contains(&self.nodes[*j].peer)).collect()
                }
            };
            for to in targets {
                match &odd {
                    Some(other) if to % 2 == 1 => self.send(i, to, other.clone()),
                    _ => {
                        for bytes in &out {
                            self.send(i, to, bytes.clone());
                        }
                    }
                }
            }
        }
        let next = match &self.nodes[i].role {
            Role::Up(role) => Some(role.next_wake(self.clock.now())),
            Role::Down => None,
        };
        let now = self.clock.ms();
        let at = next.map_or(now + 500, |at| self.clock.ms_of(at).max(now + 1));
        self.nodes[i].wake_gen += 1;
        let generation = self.nodes[i].wake_gen;
        self.schedule(at, Event::Wake { node: i, generation });
    }

    /// An honest validator never signs two notarizations, or two finalizations, of
    /// different blocks in one view, nor a nullification and a finalization of one view,
    /// across restarts too.
    fn check_conflicts(&mut self, i: usize, vote: &shutong_consensus::SignedVote) {
        use shutong_types::VoteKind;
        let s = vote.subject;
        let key = |kind: VoteKind| (i, s.epoch, s.view, kind as u8);
        let digest = *self.votes.entry(key(s.kind)).or_insert(s.digest);
        let detail = if digest != s.digest {
            Some(format!("two {:?} votes, for {digest} and {}", s.kind, s.digest))
        } else {
            let other = match s.kind {
                VoteKind::Nullify => Some(VoteKind::Finalize),
                VoteKind::Finalize => Some(VoteKind::Nullify),
                VoteKind::Notarize => None,
            };
            other.filter(|k| self.votes.contains_key(&key(*k))).map(|_| "a nullify and a finalize vote".to_string())
        };
        if let Some(detail) = detail {
            self.violation = Some(NodeViolation::ConflictingVotes { node: i, view: s.view, detail });
        }
    }

    /// A second vote that conflicts with `message` if it is a notarize (another block) or a
    /// finalize (a nullify of the view), signed with node `i`'s key.
    fn double_vote(&self, i: usize, message: &NetMessage) -> Option<Vec<u8>> {
        use shutong_types::{VoteKind, VoteSubject};
        let NetMessage::Consensus(ConsensusMessage::Vote(vote)) = message else { return None };
        let s = vote.subject;
        let subject = match s.kind {
            VoteKind::Notarize => VoteSubject {
                digest: Hash::of(shutong_types::Suite::Ed25519Blake3, "sim-double", &s.view.to_be_bytes()),
                ..s
            },
            VoteKind::Finalize => VoteSubject { kind: VoteKind::Nullify, digest: Hash::ZERO, ..s },
            VoteKind::Nullify => return None,
        };
        let signature = subject.sign(CHAIN_ID, &self.nodes[i].key);
        let conflicting = shutong_consensus::SignedVote { subject, signer: vote.signer, signature };
        Some(NetMessage::Consensus(ConsensusMessage::Vote(conflicting)).encode())
    }

    /// For a proposal node `i` broadcasts, another block of the same view: stamped a
    /// millisecond later (another digest, as valid), with a notarize vote for it signed with
    /// node `i`'s key. `None` for other messages and for the re-proposal of an epoch's last
    /// block, whose vote names the parent.
    fn equivocate(&self, i: usize, message: &NetMessage) -> Option<Vec<u8>> {
        let resign = |vote: &shutong_consensus::SignedVote, digest: Hash| {
            let subject = shutong_types::VoteSubject { digest, ..vote.subject };
            shutong_consensus::SignedVote {
                subject,
                signer: vote.signer,
                signature: subject.sign(CHAIN_ID, &self.nodes[i].key),
            }
        };
        let other = match message {
            NetMessage::CompactProposal(p) if p.vote.subject.digest == p.header.hash() => {
                let mut other = p.clone();
                other.header.timestamp_ms += 1;
                other.vote = resign(&p.vote, other.header.hash());
                NetMessage::CompactProposal(other)
            }
            NetMessage::Proposal { block, parent_view, vote } if vote.subject.digest == block.header.hash() => {
                let mut block = block.clone();
                block.header.timestamp_ms += 1;
                let vote = resign(vote, block.header.hash());
                NetMessage::Proposal { block, parent_view: *parent_view, vote }
            }
            _ => return None,
        };
        Some(other.encode())
    }

    /// Random bytes, or `bytes` cut short, or `bytes` with one bit flipped.
    fn garbage(&mut self, bytes: &[u8]) -> Vec<u8> {
        match self.rng.below(3) {
            0 => (0..self.rng.below(200)).map(|_| self.rng.below(256) as u8).collect(),
            1 => bytes[..self.rng.below(bytes.len() as u64) as usize].to_vec(),
            _ => {
                let mut flipped = bytes.to_vec();
                if !flipped.is_empty() {
                    let at = self.rng.below(flipped.len() as u64) as usize;
                    flipped[at] ^= 1 << self.rng.below(8);
                }
                flipped
            }
        }
    }

    fn check_persisted(&mut self, i: usize, vote: &shutong_consensus::SignedVote) {
        let Some(storage) = &self.nodes[i].storage else { return };
        let tip_view = storage.tip().map_or(0, |t| t.view);
        let logged = storage.wal().iter().any(|e| e.vote.subject == vote.subject);
        if !logged && vote.subject.view > tip_view {
            self.violation = Some(NodeViolation::SentUnpersisted { node: i, view: vote.subject.view });
        }
    }

    /// Whether `from` and `to` have a link: always, but for twins, one of which talks only
    /// with the nodes of even index and the other only with those of odd index.
    fn talks(&self, from: usize, to: usize) -> bool {
        let Some((a, b)) = self.twins else { return true };
        let half = |twin: usize, other: usize| other != a && other != b && other % 2 == usize::from(twin == b);
        match (from, to) {
            (twin, other) | (other, twin) if twin == a || twin == b => half(twin, other),
            _ => true,
        }
    }

    /// One message on the simulated link from `from` to `to`.
    fn send(&mut self, from: usize, to: usize, bytes: Vec<u8>) {
        if !self.talks(from, to) {
            return;
        }
        self.report.messages_sent += 1;
        let now = self.clock.ms();
        let s = self.scenario.clone();
        let before_gst = now < s.gst_ms;
        let cut = before_gst
            && s.partitions.iter().any(|p| {
                (p.from_ms..p.to_ms).contains(&now)
                    && from < p.side.len()
                    && to < p.side.len()
                    && p.side[from] != p.side[to]
            });
        if cut || (before_gst && self.rng.chance(s.links.loss_per_mille)) {
            self.report.messages_lost += 1;
            return;
        }
        let copies = if before_gst && self.rng.chance(s.links.duplicate_per_mille) { 2 } else { 1 };
        for _ in 0..copies {
            let delay =
                if before_gst { self.rng.between(1, s.links.latency_ms_max) } else { self.rng.between(1, DELTA_MS) };
            self.schedule(now + delay, Event::Deliver { to, from, bytes: bytes.clone() });
        }
    }

    /// The clients' transactions: each of four accounts proposes purposes it may not (it
    /// is not on the committee), so every one commits with an aborted receipt and uses its
    /// nonce.
    fn sign_transactions(&mut self) {
        use shutong_sdk::system_api::governance::Action;
        let per_client = self.scenario.txs.div_ceil(4);
        for c in 0..4u64 {
            let key = Keypair::from_seed_in(self.scenario.suite, &format!("sim-client-{c}"));
            let mut builder = shutong_sdk::TxBuilder::new(CHAIN_ID, key);
            builder.gas_limit = shutong_sdk::builder::GAS_LIMIT_DEFAULT;
            for nonce in 0..per_client {
                let action = Action::DefinePurpose {
                    code: format!("sim.{c}.{nonce}"),
                    legal_bases: 1,
                    description: "simulated".into(),
                };
                let tx =
                    builder.call(shutong_sdk::builder::propose(action), nonce, 100_000).expect("a key in memory signs");
                self.txs.push((tx.encode(), tx.id()));
            }
        }
        self.accepted = vec![false; self.txs.len()];
        self.accepted_by = vec![None; self.txs.len()];
    }

    /// A live validator drawn at random: an honest one, or one that withholds its batches
    /// (it takes clients' transactions, so that it has batches to withhold).
    fn pick_validator(&mut self) -> Option<usize> {
        let live: Vec<usize> = (0..self.nodes.len())
            .filter(|i| {
                let n = &self.nodes[*i];
                n.validator
                    && n.byzantine.is_none_or(|b| b == Byzantine::WithholdBatches)
                    && matches!(&n.role, Role::Up(role) if role.is_validator())
            })
            .collect();
        (!live.is_empty()).then(|| live[self.rng.below(live.len() as u64) as usize])
    }

    /// Hands a transaction to a validator's mempool as its RPC would (durable before it
    /// is acknowledged); a refusal (down, or a nonce not yet reachable) is tried again later.
    fn submit(&mut self, tx: usize, attempt: u64) {
        if self.accepted[tx] {
            return;
        }
        let picked = self.pick_validator();
        let admitted = picked.is_some_and(|i| self.admit(i, tx));
        if admitted {
            self.accepted[tx] = true;
            self.accepted_by[tx] = picked;
        } else if attempt < 200 {
            let at = self.clock.ms() + 100;
            self.schedule(at, Event::Submit { tx, attempt: attempt + 1 });
        }
    }

    fn admit(&mut self, i: usize, tx: usize) -> bool {
        let node = &self.nodes[i];
        let (Some(view), Some(mempool)) = (&node.view, &node.mempool) else { return false };
        let bytes = &self.txs[tx].0;
        let id = match mempool.lock().expect("mempool lock").admit(bytes, view) {
            Ok(id) => id,
            // Already pending there, or committed: accepted before.
            Err(shutong_node::mempool::AdmitError::NonceTooLow { .. }) => return true,
            Err(_) => return false,
        };
        view.storage.put_pending(&id, bytes).is_ok()
    }

    /// The committee replaces the last validator with the full node (with its proof of
    /// possession): the first seat proposes, the second's vote carries it once the proposal
    /// is committed. The full node starts voting and the removed validator turns full node,
    /// live (the others then refuse it: it is no listed full node). Each step's transaction
    /// is sent again until its receipt is seen (the same bytes: one nonce, one expiry).
    fn govern(&mut self) {
        use shutong_sdk::system_api::governance::Action;
        let Some(i) = self.pick_validator() else {
            let at = self.clock.ms() + 200;
            return self.schedule(at, Event::Govern);
        };
        let sign = |key: &Keypair, call, nonce| {
            let mut builder = shutong_sdk::TxBuilder::new(CHAIN_ID, key.clone());
            builder.gas_limit = shutong_sdk::builder::GAS_LIMIT_DEFAULT;
            builder.call(call, nonce, GOVERNANCE_EXPIRY).expect("a key in memory signs")
        };
        let storage = self.nodes[i].storage.clone().expect("a live validator has storage");
        let step = match self.governance {
            Governance::ToPropose => {
                let joining = &self.nodes[self.scenario.validators].key;
                let mut keys: Vec<PublicKey> =
                    (0..self.scenario.validators - 1).map(|v| self.nodes[v].key.public()).collect();
                keys.push(joining.public());
                let transport = self.transports[self.scenario.validators].map(|t| t.key);
                let proof = shutong_sdk::builder::possession(CHAIN_ID, &keys, joining, transport.as_ref())
                    .expect("a key in memory signs");
                let action = Action::SetValidators {
                    keys: keys.iter().map(PublicKey::to_key_bytes).collect(),
                    proofs: vec![proof],
                };
                let tx = sign(&self.committee[0], shutong_sdk::builder::propose(action), 0);
                Some((tx, Governance::Proposed as fn(Hash) -> Governance))
            }
            Governance::Proposed(id) => match storage.receipt(&id) {
                Some(receipt) => {
                    let proposal = <u64 as shutong_types::Decode>::decode(&receipt.output).unwrap_or(u64::MAX);
                    let next = Governance::Voted as fn(Hash) -> Governance;
                    Some((sign(&self.committee[1], shutong_sdk::builder::vote(proposal), 0), next))
                }
                None => None,
            },
            Governance::Voted(id) => {
                if storage.receipt(&id).is_some() {
                    self.governance = Governance::Carried;
                }
                None
            }
            Governance::Off | Governance::Carried => return,
        };
        let node = &self.nodes[i];
        let (view, mempool) = (node.view.as_ref().expect("live"), node.mempool.as_ref().expect("live"));
        let admit = |bytes: &[u8]| {
            let id = mempool.lock().expect("mempool lock").admit(bytes, view).ok()?;
            view.storage.put_pending(&id, bytes).ok()
        };
        match step {
            Some((tx, next)) => {
                let bytes = tx.encode();
                if admit(&bytes).is_some() {
                    self.governance = next(tx.id());
                    self.governance_tx = Some(bytes);
                }
            }
            // Not committed yet: pending here, elsewhere, or lost to a power cut.
            None if self.governance != Governance::Carried => {
                if let Some(bytes) = &self.governance_tx {
                    let _ = admit(bytes);
                }
            }
            None => {}
        }
        let at = self.clock.ms() + 200;
        self.schedule(at, Event::Govern);
    }

    /// Whether every live node of the final set has caught up: one height, past the blocks
    /// required after GST, with every accepted transaction committed; the reason if not.
    fn caught_up(&self) -> Result<(), String> {
        let heights = self.heights();
        let target = self.gst_height.unwrap_or(u64::MAX).saturating_add(BLOCKS_AFTER_GST);
        if heights.iter().any(|(_, h)| *h < target) {
            let roles: String = self
                .nodes
                .iter()
                .map(|n| match &n.role {
                    Role::Up(r) if r.is_validator() => 'V',
                    Role::Up(_) => 'F',
                    Role::Down => '-',
                })
                .collect();
            return Err(format!("heights {heights:?} (node, height), {target} required; roles {roles}"));
        }
        let live: Vec<usize> = heights.iter().map(|(i, _)| *i).collect();
        if self.governance != Governance::Off && self.governance != Governance::Carried {
            return Err(format!("the validator-set change is at {:?}", self.governance));
        }
        let storage = self.nodes[live[0]].storage.as_ref().expect("live");
        let missing = self
            .txs
            .iter()
            .zip(&self.accepted)
            .filter(|(tx, accepted)| **accepted && storage.receipt(&tx.1).is_none())
            .count();
        if missing > 0 {
            return Err(format!("{missing} accepted transactions not committed; heights {heights:?}"));
        }
        if self.scenario.epoch_change && self.epoch_of(live[0]) == 0 {
            return Err(format!("still in epoch 0; heights {heights:?}"));
        }
        if self.scenario.epoch_change {
            let (joined, removed) = (self.scenario.validators, self.scenario.validators - 1);
            let is_validator = |i: usize| matches!(&self.nodes[i].role, Role::Up(r) if r.is_validator());
            // The removed validator switches once it has committed its epoch's last block
            // (if it missed it, nobody lets it in to learn it any more).
            let left = self.nodes[removed].storage.as_ref().is_some_and(|s| {
                let tip = s.tip().map_or(0, |t| t.height);
                shutong_execution::epochs::validators_for(&**s, tip + 1)
                    .is_some_and(|e| !e.validators.contains(&self.nodes[removed].key.public()))
            });
            if !is_validator(joined) || (left && is_validator(removed)) {
                return Err("the full node is not a validator yet, or the removed validator still one".into());
            }
        }
        if matches!(self.scenario.byzantine, Some((_, Byzantine::DoubleVoter)))
            && self.report.byzantine_acts > 0
            && self.evidence(live[0]) == 0
        {
            return Err("the double voter's equivocation is not on chain yet".into());
        }
        Ok(())
    }

    /// The height of every live, honest node of the final set (a validator the committee
    /// removed stops at the end of its last epoch).
    fn heights(&self) -> Vec<(usize, u64)> {
        (0..self.nodes.len())
            .filter_map(|i| {
                let node = &self.nodes[i];
                if node.byzantine.is_some() || matches!(node.role, Role::Down) {
                    return None;
                }
                // A validator the committee removed is refused by the others (it is no listed
                // full node): it keeps asking, and is not expected to keep up.
                if node.validator && self.removed(i) {
                    return None;
                }
                let tip = node.storage.as_ref()?.tip().map_or(0, |t| t.height);
                Some((i, tip))
            })
            .collect()
    }

    /// Whether the set of the most advanced node no longer holds node `i`'s key.
    fn removed(&self, i: usize) -> bool {
        let top = self.nodes.iter().filter_map(|n| n.storage.as_ref()).max_by_key(|s| s.tip().map_or(0, |t| t.height));
        top.and_then(|s| shutong_execution::epochs::validators_for(&**s, s.tip().map_or(0, |t| t.height) + 1))
            .is_some_and(|e| !e.validators.contains(&self.nodes[i].key.public()))
    }

    /// The equivocation records in node `i`'s committed state.
    fn evidence(&self, i: usize) -> u64 {
        let Some(storage) = &self.nodes[i].storage else { return 0 };
        let prefix = shutong_types::keyspace::contract_storage(
            &shutong_execution::epochs::governance(),
            shutong_sdk::system_api::governance::EVIDENCE_PREFIX,
        );
        shutong_vm::state::StateReader::scan(&**storage, &prefix, None, 1_000).len() as u64
    }

    fn epoch_of(&self, i: usize) -> u64 {
        let Some(storage) = &self.nodes[i].storage else { return 0 };
        let next = storage.tip().map_or(1, |t| t.height + 1);
        shutong_execution::epochs::validators_for(&**storage, next).map_or(0, |e| e.epoch)
    }

    /// One block per height across every node that committed it, each transaction in at
    /// most one block.
    fn check_chain(&mut self) -> Result<(), NodeViolation> {
        let mut blocks: BTreeMap<u64, (Hash, usize)> = BTreeMap::new();
        let mut top = 0;
        for (i, node) in self.nodes.iter().enumerate() {
            // Crashed nodes' databases are closed; reopen them to read.
            let storage = match &node.storage {
                Some(storage) => Arc::clone(storage),
                None => Arc::new(Storage::open(&node.dir.path().join("data"), self.genesis.suite).map_err(setup)?),
            };
            let tip = storage.tip().map_or(0, |t| t.height);
            top = top.max(tip);
            for height in 1..=tip {
                let hash = storage.block(height).map(|b| b.header.hash()).unwrap_or(Hash::ZERO);
                match blocks.get(&height) {
                    Some((first, first_node)) if *first != hash => {
                        return Err(NodeViolation::Fork {
                            height,
                            first: *first,
                            first_node: *first_node,
                            second: hash,
                            second_node: i,
                        });
                    }
                    Some(_) => {}
                    None => {
                        blocks.insert(height, (hash, i));
                    }
                }
            }
        }
        let (_, longest) = blocks.last_key_value().map_or((0, (Hash::ZERO, 0)), |(h, v)| (*h, *v));
        let longest = &self.nodes[longest.1];
        let storage = match &longest.storage {
            Some(storage) => Arc::clone(storage),
            None => Arc::new(Storage::open(&longest.dir.path().join("data"), self.genesis.suite).map_err(setup)?),
        };
        let mut seen: HashMap<Hash, u64> = HashMap::new();
        for height in 1..=top {
            for tx in storage.block(height).map(|b| b.txs).unwrap_or_default() {
                *seen.entry(tx.id()).or_default() += 1;
            }
        }
        if let Some((id, count)) = seen.into_iter().find(|(_, count)| *count > 1) {
            return Err(NodeViolation::Duplicated { id, count });
        }
        self.report.height = top;
        self.report.epoch = (0..self.nodes.len()).map(|i| self.epoch_of(i)).max().unwrap_or(0);
        Ok(())
    }
}
