//! Fault injection under load, and the check that nothing was lost.
//!
//! A [`Schedule`] of faults runs against a [`Cluster`] while [`crate::load::run`] offers
//! transactions:
//! - SIGKILL a validator and restart it later;
//! - partition the validators into two groups that cannot hear each other, then heal;
//! - slow a validator by stopping and continuing its process in a duty cycle;
//! - give links the faults of a real network through the link proxy: a delay spike, a stall
//!   of one direction, a one-way cut (held, or reset).
//!
//! [`check`] then waits for the chain to settle and establishes, from the chain itself:
//! - every transaction a node accepted is in exactly one block;
//! - every running validator holds the same blocks, with the same state and audit-log roots.
//!
//! Validator 0 is the load generator's observer; a schedule leaves it running.

use crate::Cluster;
use crate::proxy::{LinkFaults, LinkState};
use anyhow::Context;
use shutong_types::Hash;
use std::collections::HashMap;
use std::time::{Duration, Instant};

/// One fault, at a time from the start of the load.
#[derive(Debug, Clone)]
pub enum Fault {
    /// SIGKILL validator `node`; start it again after `down`.
    Kill { node: usize, down: Duration },
    /// Cut `a` off from `b` for `lasting`, then heal.
    Partition { a: Vec<usize>, b: Vec<usize>, lasting: Duration },
    /// Stop validator `node` for `stopped`, continue it for `running`, for `lasting`.
    Slow { node: usize, stopped: Duration, running: Duration, lasting: Duration },
    /// Every link to and from `node` delayed by `delay` (plus up to a quarter of it in
    /// jitter) for `lasting`, then back to none.
    DelaySpike { node: usize, delay: Duration, lasting: Duration },
    /// The direction `from` → `to` held (bytes wait, none lost) for `lasting`.
    Stall { from: usize, to: usize, lasting: Duration },
    /// The direction `from` → `to` cut for `lasting`: held as a blackhole, or by reset.
    OneWayCut { from: usize, to: usize, reset: bool, lasting: Duration },
}

impl Fault {
    pub fn describe(&self) -> String {
        match self {
            Fault::Kill { node, down } => format!("SIGKILL validator-{node}, restart after {down:?}"),
            Fault::Partition { a, b, lasting } => format!("partition {a:?} | {b:?} for {lasting:?}"),
            Fault::Slow { node, stopped, running, lasting } => {
                format!(
                    "slow validator-{node} (stopped {stopped:?} of every {:?}) for {lasting:?}",
                    *stopped + *running
                )
            }
            Fault::DelaySpike { node, delay, lasting } => {
                format!("delay every link of validator-{node} by {delay:?} for {lasting:?}")
            }
            Fault::Stall { from, to, lasting } => format!("stall {from} -> {to} for {lasting:?}"),
            Fault::OneWayCut { from, to, reset, lasting } => {
                let how = if *reset { "by reset" } else { "as a blackhole" };
                format!("cut {from} -> {to} {how} for {lasting:?}")
            }
        }
    }
}

/// Faults and when they start.
pub type Schedule = Vec<(Duration, Fault)>;

/// A schedule of `count` faults drawn from `seed`, spread over `span`: kills and restarts,
/// partitions and slowdowns of validators other than 0, and link faults (delay spikes,
/// stalls, one-way cuts held or reset) between one of them and any other.
pub fn random_schedule(seed: u64, validators: usize, span: Duration, count: usize) -> Schedule {
    let mut rng = crate::sim::rng::Rng::new(seed);
    let gap = span / (count as u32 + 1);
    (0..count)
        .map(|k| {
            let at = gap * (k as u32 + 1) - gap / 2;
            let node = 1 + rng.below(validators.saturating_sub(1).max(1) as u64) as usize;
            let lasting = gap / 2;
            let other = (node + 1 + rng.below(validators.saturating_sub(1).max(1) as u64) as usize) % validators;
            let fault = match rng.below(6) {
                0 => Fault::Kill { node, down: lasting },
                1 if validators > 1 => {
                    // A minority cut off: the rest keep a quorum when there are four or more.
                    let b = vec![node];
                    let a = (0..validators).filter(|i| *i != node).collect();
                    Fault::Partition { a, b, lasting }
                }
                2 => Fault::Slow {
                    node,
                    stopped: Duration::from_millis(300),
                    running: Duration::from_millis(300),
                    lasting,
                },
                3 => Fault::DelaySpike { node, delay: Duration::from_millis(rng.between(50, 400)), lasting },
                4 if other != node => {
                    // Either way: a validator that cannot hear one peer, or one that is not heard.
                    let (from, to) = if rng.chance(500) { (node, other) } else { (other, node) };
                    Fault::Stall { from, to, lasting }
                }
                _ if other != node => {
                    let (from, to) = if rng.chance(500) { (node, other) } else { (other, node) };
                    Fault::OneWayCut { from, to, reset: rng.chance(500), lasting }
                }
                _ => Fault::Kill { node, down: lasting },
            };
            (at, fault)
        })
        .collect()
}

/// Runs `schedule` against `cluster`, from now; returns what it did, in order.
pub async fn inject(cluster: &mut Cluster, schedule: &Schedule) -> anyhow::Result<Vec<String>> {
    let start = Instant::now();
    let mut done = Vec::new();
    for (at, fault) in schedule {
        tokio::time::sleep((start + *at).saturating_duration_since(Instant::now())).await;
        match fault {
            Fault::Kill { node, down } => {
                cluster.kill(*node);
                tokio::time::sleep(*down).await;
                cluster.start(*node).await.with_context(|| format!("restarting validator-{node}"))?;
            }
            Fault::Partition { a, b, lasting } => {
                cluster.partition(a, b);
                tokio::time::sleep(*lasting).await;
                cluster.heal();
            }
            Fault::Slow { node, stopped, running, lasting } => {
                let until = Instant::now() + *lasting;
                while Instant::now() < until {
                    cluster.pause(*node, true);
                    tokio::time::sleep(*stopped).await;
                    cluster.pause(*node, false);
                    tokio::time::sleep(*running).await;
                }
            }
            Fault::DelaySpike { node, delay, lasting } => {
                let spike = LinkFaults { delay: *delay, jitter: *delay / 4, ..LinkFaults::default() };
                for other in (0..cluster.len()).filter(|o| o != node) {
                    cluster.links().set(*node, other, spike);
                    cluster.links().set(other, *node, spike);
                }
                tokio::time::sleep(*lasting).await;
                cluster.heal();
            }
            Fault::Stall { from, to, lasting } | Fault::OneWayCut { from, to, reset: false, lasting } => {
                cluster.links().set_state(*from, *to, LinkState::Held);
                tokio::time::sleep(*lasting).await;
                cluster.heal();
            }
            Fault::OneWayCut { from, to, reset: true, lasting } => {
                cluster.links().set_state(*from, *to, LinkState::Reset);
                tokio::time::sleep(*lasting).await;
                cluster.heal();
            }
        }
        done.push(format!("{:>6.1} s: {}", at.as_secs_f64(), fault.describe()));
    }
    Ok(done)
}

/// What the chain shows about a run's transactions.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub struct Tally {
    pub accepted: u64,
    /// In exactly one block.
    pub committed: u64,
    /// In no block.
    pub lost: u64,
    /// In more than one block.
    pub duplicated: u64,
    /// The height every running validator reached, with the same block.
    pub height: u64,
    pub validators_agreeing: usize,
}

/// Waits (up to `timeout`) until every running validator is at the same height with every
/// accepted transaction committed, then counts each accepted transaction's blocks in
/// validator 0's chain from `from_height`, and checks that every running validator holds
/// the same block there (so the same history, state and audit log).
pub async fn check(cluster: &Cluster, accepted: &[Hash], from_height: u64, timeout: Duration) -> anyhow::Result<Tally> {
    let running: Vec<usize> = (0..cluster.len()).filter(|i| cluster.is_running(*i)).collect();
    let observer = cluster.client(0)?;
    let deadline = Instant::now() + timeout;
    // Settle: no transaction pending anywhere, and every node at one height.
    let height = loop {
        let mut heights = Vec::new();
        let mut pending = 0;
        for &i in &running {
            if let Ok(status) = cluster.client(i)?.status().await {
                heights.push(status.height);
                pending += status.mempool_txs;
            }
        }
        let settled = heights.len() == running.len() && pending == 0 && heights.windows(2).all(|w| w[0] == w[1]);
        if settled {
            break heights[0];
        }
        anyhow::ensure!(
            Instant::now() < deadline,
            "not settled after {timeout:?}: heights {heights:?}, {pending} pending"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    let mut seen: HashMap<Hash, u64> = accepted.iter().map(|id| (*id, 0)).collect();
    for h in from_height..=height {
        let block = observer.block(h).await?.with_context(|| format!("validator-0 lacks block {h}"))?;
        for id in &block.txs {
            if let Some(count) = seen.get_mut(id) {
                *count += 1;
            }
        }
    }
    let tip = observer.block(height).await?.context("validator-0 lacks its tip")?;
    let mut agreeing = 0;
    for &i in &running {
        let theirs = cluster.client(i)?.block(height).await?.map(|b| b.hash);
        anyhow::ensure!(
            theirs == Some(tip.hash),
            "validator-{i} holds {theirs:?} at height {height}, not {}",
            tip.hash
        );
        agreeing += 1;
    }
    Ok(Tally {
        accepted: accepted.len() as u64,
        committed: seen.values().filter(|c| **c == 1).count() as u64,
        lost: seen.values().filter(|c| **c == 0).count() as u64,
        duplicated: seen.values().filter(|c| **c > 1).count() as u64,
        height,
        validators_agreeing: agreeing,
    })
}
