//! A deterministic simulation of Shutong's consensus: real engines and real ed25519
//! signatures over a simulated network, clock and disk, driven by one seed.
//!
//! The runtime is single-threaded and its only randomness is [`Rng`], so one seed
//! reproduces one trace exactly ([`Report::trace`]). It simulates links with latency,
//! jitter, loss, duplication and so reordering; partitions that heal; validators that crash
//! (also between persisting a vote and sending it) and restart from their write-ahead log;
//! and Byzantine validators ([`Fault`]). After the global stabilisation time (GST) the
//! network delivers every message within [`DELTA_MS`].
//!
//! A run fails with a [`Violation`] if honest validators finalize two different blocks at
//! one height (safety), if an honest validator signs two conflicting votes or sends a vote
//! it has not persisted, if evidence accuses an honest validator, or if after GST some
//! honest validator does not finalize [`Scenario::blocks_after_gst`] new blocks within the
//! liveness deadline ([`Scenario::liveness_deadline_ms`]).

pub mod nodes;
pub mod rng;
mod runtime;
mod wire;

pub use rng::Rng;
pub use runtime::run;
pub use wire::{SimBlock, SimMessage};

use shutong_consensus::Timeouts;

/// The largest message delay after GST.
pub const DELTA_MS: u64 = 50;

/// How a faulty validator misbehaves.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fault {
    /// Never sends anything.
    Silent,
    /// As leader, proposes two different blocks, each to half of the validators.
    Equivocator,
    /// Votes twice: a second notarize for another digest, a nullify next to each finalize.
    DoubleVoter,
    /// Also sends garbage: random bytes, truncated messages, forged signatures, bad signer
    /// indices, malformed certificates, proposals whose block does not match their vote.
    Malformed,
    /// Two processes with one key, each talking to its own half of the network.
    Twins,
}

pub const FAULTS: [Fault; 5] = [Fault::Silent, Fault::Equivocator, Fault::DoubleVoter, Fault::Malformed, Fault::Twins];

/// A network partition: while active, messages between the two sides are lost.
#[derive(Debug, Clone)]
pub struct Partition {
    pub from_ms: u64,
    pub to_ms: u64,
    /// Per validator: which side it is on.
    pub side: Vec<bool>,
}

impl Partition {
    /// Up to two partitions before `gst_ms`, each splitting the validators at random.
    pub fn random(rng: &mut Rng, gst_ms: u64, validators: usize) -> Vec<Partition> {
        (0..rng.below(3))
            .map(|_| {
                let from_ms = rng.between(0, gst_ms);
                Partition {
                    from_ms,
                    to_ms: rng.between(from_ms, gst_ms),
                    side: (0..validators).map(|_| rng.chance(500)).collect(),
                }
            })
            .collect()
    }
}

/// An honest validator's crash and restart.
#[derive(Debug, Clone, Copy)]
pub struct Crash {
    pub validator: u32,
    pub at_ms: u64,
    pub restart_ms: u64,
}

/// Link behaviour before GST (after it: no loss, delay within [`DELTA_MS`]).
#[derive(Debug, Clone, Copy)]
pub struct Links {
    pub latency_ms_max: u64,
    pub loss_per_mille: u64,
    pub duplicate_per_mille: u64,
}

/// One simulated run.
#[derive(Debug, Clone)]
pub struct Scenario {
    pub seed: u64,
    pub validators: usize,
    /// Faulty validators (at most f) and how each misbehaves.
    pub faults: Vec<(u32, Fault)>,
    pub crashes: Vec<Crash>,
    pub partitions: Vec<Partition>,
    pub links: Links,
    pub gst_ms: u64,
    pub timeouts: Timeouts,
    /// New blocks each honest validator must finalize after GST.
    pub blocks_after_gst: u64,
}

impl Scenario {
    /// A scenario drawn from `seed`: up to f faulty validators of random kinds, up to f
    /// honest crash-restarts, up to two partitions, lossy links, all before GST.
    pub fn random(seed: u64, validators: usize) -> Scenario {
        let mut rng = Rng::new(seed);
        let f = validators.saturating_sub(1) / 3;
        let mut order: Vec<u32> = (0..validators as u32).collect();
        for i in (1..order.len()).rev() {
            order.swap(i, rng.below(i as u64 + 1) as usize);
        }
        let faulty = rng.between(0, f as u64) as usize;
        let faults: Vec<(u32, Fault)> =
            order[..faulty].iter().map(|&v| (v, FAULTS[rng.below(FAULTS.len() as u64) as usize])).collect();
        let gst_ms = rng.between(1_000, 5_000);
        let crashes_count = rng.between(0, (f - faulty) as u64 + 1).min(validators as u64 - faulty as u64) as usize;
        let crashes = order[faulty..faulty + crashes_count]
            .iter()
            .map(|&validator| {
                let at_ms = rng.between(0, gst_ms / 2);
                Crash { validator, at_ms, restart_ms: rng.between(at_ms + 1, gst_ms) }
            })
            .collect();
        let partitions = Partition::random(&mut rng, gst_ms, validators);
        let links = Links {
            latency_ms_max: rng.between(DELTA_MS, 400),
            loss_per_mille: rng.between(0, 250),
            duplicate_per_mille: rng.between(0, 60),
        };
        let timeouts = Timeouts { leader_ms: 300, advance_ms: 450, rebroadcast_ms: 400, backoff_exponent_max: 2 };
        Scenario { seed, validators, faults, crashes, partitions, links, gst_ms, timeouts, blocks_after_gst: 5 }
    }

    /// The same scenario with every faulty validator misbehaving as `fault`, and exactly f
    /// of them.
    pub fn with_fault(mut self, fault: Fault) -> Scenario {
        let f = self.validators.saturating_sub(1) / 3;
        let mut rng = Rng::new(self.seed ^ 0xfa17);
        let mut chosen: Vec<u32> = self.faults.iter().map(|(v, _)| *v).collect();
        while chosen.len() < f {
            let v = rng.below(self.validators as u64) as u32;
            if !chosen.contains(&v) {
                chosen.push(v);
            }
        }
        self.crashes.retain(|c| !chosen.contains(&c.validator));
        self.faults = chosen.into_iter().map(|v| (v, fault)).collect();
        self
    }

    /// Once settled after GST, every cycle of n views has at most f failed views (faulty
    /// leaders), each ending within the backed-off `t_a` plus two message delays, and n − f
    /// views that finalize within four message delays (three plus building the block). The
    /// deadline allows settling, then two cycles more than the blocks required.
    pub fn liveness_deadline_ms(&self) -> u64 {
        let n = self.validators as u64;
        let f = n.saturating_sub(1) / 3;
        let (_, advance_ms_max) = self.timeouts.backed_off(self.timeouts.backoff_exponent_max);
        let cycle_ms = f * (advance_ms_max + 2 * DELTA_MS) + (n - f) * 4 * DELTA_MS;
        self.settle_ms() + (self.blocks_after_gst + 2) * cycle_ms
    }
}

impl Scenario {
    /// Once validators are in step after GST, every view with an honest leader finalizes
    /// its block: between two finalized blocks lie at most the f views of faulty leaders,
    /// plus one in which the last validators to arrive catch up.
    pub fn views_between_finalizations_max(&self) -> u64 {
        self.validators.saturating_sub(1) as u64 / 3 + 2
    }

    /// How long after GST validators may still be out of step: one backed-off `t_a` (the
    /// longest a validator waits in a view it entered before GST) plus one `t_r` and two
    /// message delays (the re-broadcast that brings it up to date). The view bound applies
    /// to blocks of the views from the highest one an honest validator is in at that time.
    pub fn settle_ms(&self) -> u64 {
        let (_, advance_ms_max) = self.timeouts.backed_off(self.timeouts.backoff_exponent_max);
        advance_ms_max + self.timeouts.rebroadcast_ms + 2 * DELTA_MS
    }
}

/// What a run showed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Report {
    /// A hash of every event in the order it happened.
    pub trace: [u8; 32],
    /// The lowest finalized height over the honest validators at the end.
    pub height_min: u64,
    /// The highest view any honest validator reached.
    pub view_max: u64,
    /// Virtual time from GST until every honest validator had its new blocks.
    pub liveness_ms: u64,
    /// The most views any honest validator went through between two finalized blocks after GST.
    pub views_between_finalizations_max: u64,
    /// The views of the blocks finalized after GST, at the validator with the largest gap.
    pub finalized_views: Vec<u64>,
    pub messages: u64,
    /// Inputs the engines refused (malformed or forged).
    pub refused: u64,
    /// Messages that did not decode.
    pub undecodable: u64,
    pub evidence: u64,
}

/// A broken property.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Violation {
    #[error(
        "fork at height {height}: validator {first_validator} finalized {first}, validator {second_validator} finalized {second}"
    )]
    Fork { height: u64, first: String, first_validator: u32, second: String, second_validator: u32 },
    #[error("honest validator {validator} signed conflicting votes in view {view}: {detail}")]
    ConflictingVotes { validator: u32, view: u64, detail: String },
    #[error("honest validator {validator} sent a vote in view {view} before persisting it")]
    SentUnpersisted { validator: u32, view: u64 },
    #[error("evidence accuses honest validator {validator} in view {view}")]
    FalseEvidence { validator: u32, view: u64 },
    #[error(
        "liveness: {views} views passed between two finalized blocks after GST, more than {bound} (views {finalized_views:?})"
    )]
    TooManyViews { views: u64, bound: u64, finalized_views: Vec<u64> },
    #[error(
        "liveness: {deadline_ms} ms after GST honest validator {validator} has finalized {new_blocks} new blocks; required {required}, and once settled a span of one full cycle of leaders ({state})"
    )]
    Stalled { validator: u32, new_blocks: u64, required: u64, deadline_ms: u64, state: String },
}
