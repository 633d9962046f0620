//! Seeded simulations of the consensus protocol with Byzantine validators, crashes and
//! restarts, partitions and lossy links. Safety, the honest-validator rules and liveness
//! after GST are checked in every run (see `shutong_testnet::sim`). The last tests run the
//! node's own driver and follower the same way (`shutong_testnet::sim::nodes`);
//! `SHUTONG_DRIVER_SIM_SEEDS` sets how many seeds their mixed test runs (default 48).
//!
//! `SHUTONG_SIM_SEEDS` sets how many seeds the mixed-fault test runs (default 1,000, split
//! over n = 4, 7 and 16); `SHUTONG_SIM_FIRST_SEED` where they start. A long run:
//! `SHUTONG_SIM_SEEDS=100000 cargo test --release -p shutong-testnet --test simulation -- mixed`.

use shutong_testnet::sim::nodes::{self, BYZANTINE, Byzantine, NodeReport, NodeScenario};
use shutong_testnet::sim::{self, Fault, Report, Scenario};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

fn env_u64(name: &str, default: u64) -> u64 {
    std::env::var(name).ok().and_then(|v| v.parse().ok()).unwrap_or(default)
}

/// Runs the scenarios on every core; panics with each failing seed and what broke.
fn run_all(scenarios: Vec<Scenario>) -> Vec<Report> {
    run_each(scenarios, sim::run, |s| format!("seed {} (n = {}, faults {:?})", s.seed, s.validators, s.faults))
}

/// Runs `run` on each scenario on every core; panics with each failing one, `described`,
/// and what broke.
fn run_each<S: Sync + Send + 'static, R: Send + 'static, E: std::fmt::Display + std::fmt::Debug + Send + 'static>(
    scenarios: Vec<S>,
    run: fn(&S) -> Result<R, E>,
    described: fn(&S) -> String,
) -> Vec<R> {
    let threads = std::thread::available_parallelism().map_or(2, |n| n.get());
    let scenarios = Arc::new(scenarios);
    let next = Arc::new(AtomicU64::new(0));
    let results = Arc::new(Mutex::new(Vec::new()));
    let workers: Vec<_> = (0..threads)
        .map(|_| {
            let (scenarios, next, results) = (scenarios.clone(), next.clone(), results.clone());
            std::thread::spawn(move || {
                loop {
                    let i = next.fetch_add(1, Ordering::Relaxed) as usize;
                    let Some(scenario) = scenarios.get(i) else { return };
                    let outcome = run(scenario);
                    results.lock().expect("results lock").push((i, outcome));
                }
            })
        })
        .collect();
    for worker in workers {
        worker.join().expect("simulation worker panicked");
    }
    let mut results = std::mem::take(&mut *results.lock().expect("results lock"));
    results.sort_by_key(|(i, _)| *i);
    let failures: Vec<String> = results
        .iter()
        .filter_map(|(i, outcome)| outcome.as_ref().err().map(|v| format!("{}: {v}", described(&scenarios[*i]))))
        .collect();
    assert!(failures.is_empty(), "{} of {} runs failed:\n{}", failures.len(), results.len(), failures.join("\n"));
    results.into_iter().map(|(_, outcome)| outcome.expect("failures were reported above")).collect()
}

fn summarize(name: &str, reports: &[Report]) {
    let max = |f: fn(&Report) -> u64| reports.iter().map(f).max().unwrap_or(0);
    let sum = |f: fn(&Report) -> u64| reports.iter().map(f).sum::<u64>();
    eprintln!(
        "{name}: {} runs; liveness after GST max {} ms; views between finalizations after GST max {}; \
         messages {}; refused {}; undecodable {}; evidence {}",
        reports.len(),
        max(|r| r.liveness_ms),
        max(|r| r.views_between_finalizations_max),
        sum(|r| r.messages),
        sum(|r| r.refused),
        sum(|r| r.undecodable),
        sum(|r| r.evidence),
    );
}

#[test]
fn mixed_faults_never_fork_and_finalize_after_gst() {
    let seeds = env_u64("SHUTONG_SIM_SEEDS", 1_000);
    let first = env_u64("SHUTONG_SIM_FIRST_SEED", 0);
    // Half the runs with 4 validators, a third with 7, the rest with 16.
    let scenarios: Vec<Scenario> = (first..first + seeds)
        .map(|seed| {
            let n = match seed % 6 {
                0..=2 => 4,
                3 | 4 => 7,
                _ => 16,
            };
            Scenario::random(seed, n)
        })
        .collect();
    let reports = run_all(scenarios);
    summarize("mixed", &reports);
    // Every run made progress after GST (checked in the run) and the bound on views held.
    assert!(reports.iter().all(|r| r.height_min >= 5));
}

fn named(fault: Fault, seeds: std::ops::Range<u64>) {
    let scenarios: Vec<Scenario> =
        seeds.flat_map(|seed| [4, 7].map(|n| Scenario::random(seed, n).with_fault(fault))).collect();
    let reports = run_all(scenarios);
    summarize(&format!("{fault:?}"), &reports);
}

#[test]
fn an_equivocating_leader_never_forks_the_chain() {
    named(Fault::Equivocator, 10_000..10_040);
}

#[test]
fn double_voters_are_caught_with_evidence_and_never_fork_the_chain() {
    let scenarios: Vec<Scenario> =
        (20_000..20_040).map(|seed| Scenario::random(seed, 4).with_fault(Fault::DoubleVoter)).collect();
    let reports = run_all(scenarios);
    summarize("DoubleVoter", &reports);
    assert!(reports.iter().all(|r| r.evidence > 0), "every run's double voter was reported");
}

#[test]
fn silent_validators_do_not_stop_the_chain() {
    named(Fault::Silent, 30_000..30_040);
}

#[test]
fn malformed_messages_are_refused_and_change_nothing() {
    let scenarios: Vec<Scenario> =
        (40_000..40_040).map(|seed| Scenario::random(seed, 4).with_fault(Fault::Malformed)).collect();
    let reports = run_all(scenarios);
    summarize("Malformed", &reports);
    assert!(reports.iter().map(|r| r.undecodable + r.refused).sum::<u64>() > 1_000);
}

#[test]
fn twins_never_fork_the_chain() {
    named(Fault::Twins, 50_000..50_040);
}

#[test]
fn validators_crashing_between_persist_and_send_restart_from_their_log() {
    let scenarios: Vec<Scenario> = (60_000..60_060)
        .map(|seed| {
            let mut scenario = Scenario::random(seed, 7);
            scenario.faults.clear();
            let gst_ms = scenario.gst_ms;
            scenario.crashes = (0..2)
                .map(|i| sim::Crash {
                    validator: (seed as u32 + i * 3) % 7,
                    at_ms: gst_ms / 4 + u64::from(i) * 100,
                    restart_ms: gst_ms / 2,
                })
                .collect();
            scenario
        })
        .collect();
    let reports = run_all(scenarios);
    summarize("crash-restart", &reports);
}

#[test]
fn one_seed_reproduces_one_trace() {
    for seed in [1, 2, 3] {
        let scenario = Scenario::random(seed, 7);
        let first = sim::run(&scenario).expect("run passes");
        let second = sim::run(&scenario).expect("run passes");
        assert_eq!(first, second, "seed {seed} gave two different runs");
    }
    let a = sim::run(&Scenario::random(1, 7)).expect("run passes");
    let b = sim::run(&Scenario::random(2, 7)).expect("run passes");
    assert_ne!(a.trace, b.trace);
}

// ---- The node's own driver (`shutong_testnet::sim::nodes`) ----------------------------------

fn described(s: &NodeScenario) -> String {
    format!(
        "seed {} (n = {}, byzantine {:?}, crashes {}, partitions {}, epoch change {})",
        s.seed,
        s.validators,
        s.byzantine,
        s.crashes.len(),
        s.partitions.len(),
        s.epoch_change
    )
}

fn summarize_nodes(name: &str, reports: &[NodeReport], started: std::time::Instant) {
    let sum = |f: fn(&NodeReport) -> u64| reports.iter().map(f).sum::<u64>();
    let max = |f: fn(&NodeReport) -> u64| reports.iter().map(f).max().unwrap_or(0);
    eprintln!(
        "{name}: {} runs in {:.1} s; messages sent {}, delivered {}, lost {}; crashes {} (unsynced writes lost {}); \
         transactions {}; epoch changes {} (live role switches {}, epoch proofs sent {}, refused {}); evidence records {}; \
         caught up after GST max {} ms; heights up to {}",
        reports.len(),
        started.elapsed().as_secs_f64(),
        sum(|r| r.messages_sent),
        sum(|r| r.messages_delivered),
        sum(|r| r.messages_lost),
        sum(|r| r.crashes),
        sum(|r| r.lost_to_power_cuts),
        sum(|r| r.txs_accepted),
        sum(|r| r.epoch),
        sum(|r| u64::from(r.switched_live)),
        sum(|r| r.epoch_proofs),
        sum(|r| r.refused),
        sum(|r| r.evidence),
        max(|r| r.caught_up_ms),
        max(|r| r.height),
    );
}

#[test]
fn real_drivers_never_fork_lose_or_repeat_a_transaction_and_catch_up_after_gst() {
    let started = std::time::Instant::now();
    let seeds = env_u64("SHUTONG_DRIVER_SIM_SEEDS", 48);
    let first = env_u64("SHUTONG_SIM_FIRST_SEED", 0);
    let scenarios: Vec<NodeScenario> =
        (first..first + seeds).map(|seed| NodeScenario::random(seed, if seed % 3 == 2 { 7 } else { 4 })).collect();
    let reports = run_each(scenarios, nodes::run, described);
    summarize_nodes("drivers", &reports, started);
    assert!(reports.iter().all(|r| r.txs_accepted > 0 && r.height > 0));
}

/// The same runs on an `sm2-sm3` chain: SM2 votes and transactions, SM3 hashes, and peer
/// ids from the transport keys the validators' SM2 keys bound, through crashes, partitions
/// and a validator-set change whose joining node binds its own.
#[test]
fn an_sm_chain_never_forks_and_changes_its_set_through_bound_transport_keys() {
    let started = std::time::Instant::now();
    let scenarios: Vec<NodeScenario> = (500..508)
        .map(|seed| {
            let mut s = NodeScenario::random(seed, 4);
            s.suite = shutong_types::Suite::Sm2Sm3;
            if seed % 2 == 0 {
                s.byzantine = None;
                s.epoch_change = true;
            }
            s
        })
        .collect();
    let reports = run_each(scenarios, nodes::run, described);
    summarize_nodes("sm2-sm3", &reports, started);
    assert!(reports.iter().all(|r| r.txs_accepted > 0 && r.height > 0));
    let changed = reports.iter().filter(|r| r.epoch > 0 && r.switched_live).count();
    assert!(changed >= 4, "set changes carried and switched live: {changed} of 8");
}

#[test]
fn a_validator_withholding_its_batches_does_not_stop_the_chain() {
    let started = std::time::Instant::now();
    let scenarios: Vec<NodeScenario> = (100..104)
        .map(|seed| {
            let mut s = NodeScenario::random(seed, 4);
            s.byzantine = Some((seed as u32 % 4, Byzantine::WithholdBatches));
            s.crashes.clear();
            s.epoch_change = false;
            s
        })
        .collect();
    let reports = run_each(scenarios, nodes::run, described);
    summarize_nodes("withholder", &reports, started);
    let withheld: Vec<u64> = reports.iter().map(|r| r.byzantine_acts).collect();
    assert!(withheld.iter().all(|n| *n > 0), "batches withheld per run: {withheld:?}");
}

#[test]
fn each_kind_of_byzantine_validator_changes_nothing_for_the_honest_ones() {
    let started = std::time::Instant::now();
    let scenarios: Vec<NodeScenario> = (300..312)
        .map(|seed| {
            let n = if seed % 2 == 0 { 4 } else { 7 };
            let mut s = NodeScenario::random(seed, n);
            s.byzantine = Some((seed as u32 % n as u32, BYZANTINE[(seed as usize / 2) % BYZANTINE.len()]));
            s.crashes.clear();
            s.epoch_change = false;
            s
        })
        .collect();
    let kinds: Vec<_> = scenarios.iter().map(|s| s.byzantine).collect();
    let reports = run_each(scenarios, nodes::run, described);
    summarize_nodes("byzantine kinds", &reports, started);
    for (kind, report) in kinds.iter().zip(&reports) {
        assert!(report.byzantine_acts > 0, "{kind:?} never misbehaved");
        // A double voter's conflicting votes reach every validator: the evidence lands on
        // chain, recorded once per view whoever reports it.
        if matches!(kind, Some((_, Byzantine::DoubleVoter))) {
            assert!(report.evidence > 0, "{kind:?}: no evidence on chain");
        }
    }
    eprintln!(
        "byzantine kinds: acts {:?}",
        kinds.iter().zip(&reports).map(|(k, r)| (k.map(|(_, b)| b), r.byzantine_acts)).collect::<Vec<_>>()
    );
}

/// The committee replaces a validator with the full node (its proof of possession with the
/// proposal) while others crash and restart: the full node starts voting and the removed
/// validator follows the chain, both without a restart.
#[test]
fn the_committee_replaces_a_validator_while_others_crash_and_restart() {
    let started = std::time::Instant::now();
    let scenarios: Vec<NodeScenario> = (200..204)
        .map(|seed| {
            let mut s = NodeScenario::random(seed, 4);
            s.byzantine = None;
            s.epoch_change = true;
            s
        })
        .collect();
    let reports = run_each(scenarios, nodes::run, described);
    summarize_nodes("epoch change", &reports, started);
    assert!(reports.iter().all(|r| r.epoch == 1 && r.switched_live), "every run ended in the new epoch");
    // The removed validator is no listed full node: it keeps asking, and is refused.
    assert!(
        reports.iter().all(|r| r.refused > 0),
        "refused per run: {:?}",
        reports.iter().map(|r| r.refused).collect::<Vec<_>>()
    );
}

/// The seeds that found bugs (docs/simulation.md, "What it found"), kept passing: an
/// altered block body from a garbage sender (42), a full node polling only a removed
/// validator (1,000,185), validators that missed the end of an epoch (1,000,376 with n = 7,
/// 1,000,446), a governance step lost to a power cut (1,001,179).
#[test]
fn the_seeds_that_found_bugs_pass() {
    let started = std::time::Instant::now();
    // Each as it was drawn when it failed: the kinds of Byzantine validator have grown since.
    // (Seed 21, the first, was drawn by an earlier generator; the resend it led to has its
    // own tests in the mempool.)
    type Found = (u64, usize, Option<(u32, Byzantine)>);
    let found: [Found; 5] = [
        (42, 4, Some((1, Byzantine::Garbage))),
        (1_000_185, 4, Some((0, Byzantine::DoubleVoter))),
        (1_000_376, 7, None),
        (1_000_446, 4, None),
        (1_001_179, 4, None),
    ];
    let scenarios: Vec<NodeScenario> = found
        .into_iter()
        .map(|(seed, n, byzantine)| {
            let mut s = NodeScenario::random(seed, n);
            s.byzantine = byzantine;
            s.epoch_change = true;
            s
        })
        .collect();
    let reports = run_each(scenarios, nodes::run, described);
    summarize_nodes("found bugs", &reports, started);
}

#[test]
fn one_seed_reproduces_one_driver_run() {
    let scenario = NodeScenario::random(7, 4);
    let first = nodes::run(&scenario).expect("run passes");
    let second = nodes::run(&scenario).expect("run passes");
    assert_eq!(first, second, "one seed gave two different runs");
    let other = nodes::run(&NodeScenario::random(8, 4)).expect("run passes");
    assert_ne!(first.trace, other.trace);
}
