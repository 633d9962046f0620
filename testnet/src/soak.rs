//! The soak run: validator processes (the release `shutong`) under the authz workload for as
//! long as asked, with random faults: SIGKILL and restart, partitions, slowdowns.
//!
//! In rounds of `--round-secs`, each round:
//! - offers load at `--rate` while a seeded schedule of faults runs;
//! - waits for the chain to settle;
//! - checks that every accepted transaction is in exactly one block and every validator holds the same blocks;
//! - samples each node's resident memory.
//!
//! It stops at the first loss, duplicate or fork. It prints a line per round and writes the
//! rounds as JSON to `--out`.
//!
//! `shutong testnet soak` runs it; `scripts/soak.sh --minutes 60` builds the release binary
//! and runs it.

use crate::Cluster;
use crate::faults::{self, Tally};
use crate::load::{self, Shape, World};
use shutong_sdk::Client;
use std::path::PathBuf;
use std::time::{Duration, Instant};

#[derive(Debug, serde::Serialize)]
struct Round {
    round: usize,
    faults: Vec<String>,
    offered: u64,
    accepted: u64,
    committed_tps: f64,
    p99_ms: f64,
    tally: Tally,
    /// Resident memory of each validator after the round, in MiB.
    rss_mib: Vec<f64>,
}

fn rss_mib(pid: u32) -> f64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()
        .and_then(|s| s.lines().find(|l| l.starts_with("VmRSS:")).map(str::to_string))
        .and_then(|l| l.split_whitespace().nth(1).and_then(|kb| kb.parse::<f64>().ok()))
        .map_or(0.0, |kb| kb / 1024.0)
}

/// What `shutong testnet soak` runs.
#[derive(Debug, Clone)]
pub struct Args {
    /// The `shutong` binary the validators run.
    pub binary: PathBuf,
    pub minutes: u64,
    /// Offered load, tx/s.
    pub rate: f64,
    /// 4 to 7: the faults need a quorum to remain.
    pub validators: usize,
    pub round_secs: u64,
    /// The first round's fault schedule seed; round r uses `seed + r`.
    pub seed: u64,
    /// Where the rounds go, as JSON.
    pub out: PathBuf,
}

/// Runs the soak: stops at the first loss, duplicate or fork.
pub async fn run(args: Args) -> anyhow::Result<()> {
    let Args { binary, minutes, rate, validators, round_secs, seed, out } = args;
    anyhow::ensure!((4..=7).contains(&validators), "--validators: 4 to 7 (faults need a quorum to remain)");
    anyhow::ensure!(round_secs >= 1 && rate >= 1.0, "--round-secs ≥ 1 and --rate ≥ 1");
    anyhow::ensure!(binary.exists(), "no shutong binary at {}", binary.display());
    let mut cluster = Cluster::init(&binary, validators, 200)?;
    cluster.start_all().await?;
    cluster.wait_height(&(0..validators).collect::<Vec<_>>(), 3, Duration::from_secs(60)).await?;
    let clients: Vec<Client> = (0..validators).map(|i| cluster.client(i)).collect::<Result<_, _>>()?;
    let mut world = World::build(&clients, &cluster.committee, Shape::default()).await?;
    println!("soak: {validators} validators, {rate} tx/s, {minutes} min in rounds of {round_secs} s, seed {seed}");

    let end = Instant::now() + Duration::from_secs(minutes * 60);
    let mut rounds = Vec::new();
    let mut round = 0;
    while Instant::now() < end {
        round += 1;
        let from = clients[0].status().await?.height;
        let txs = world.sign((rate * round_secs as f64) as u64, from);
        let span = Duration::from_secs(round_secs);
        let schedule = faults::random_schedule(seed.wrapping_add(round as u64), validators, span, 3);
        let (report, injected) = tokio::join!(
            load::run(&clients, &clients[0], &[], txs, rate, Duration::from_secs(60)),
            faults::inject(&mut cluster, &schedule)
        );
        let (report, injected) = (report?, injected?);
        let tally = faults::check(&cluster, &report.accepted_ids, from, Duration::from_secs(120)).await?;
        let rss: Vec<f64> = (0..validators).filter_map(|i| cluster.pid(i)).map(rss_mib).collect();
        println!(
            "round {round}: {} faults, {} accepted, {} committed once, {} lost, {} duplicated; {:.0} tx/s, p99 {:.0} ms; RSS {:?} MiB",
            injected.len(),
            tally.accepted,
            tally.committed,
            tally.lost,
            tally.duplicated,
            report.committed_tps,
            report.p99_ms,
            rss.iter().map(|r| r.round()).collect::<Vec<_>>()
        );
        let failed = tally.lost > 0 || tally.duplicated > 0;
        rounds.push(Round {
            round,
            faults: injected,
            offered: report.sent,
            accepted: report.accepted,
            committed_tps: report.committed_tps,
            p99_ms: report.p99_ms,
            tally,
            rss_mib: rss,
        });
        std::fs::write(&out, serde_json::to_vec_pretty(&rounds)?)?;
        anyhow::ensure!(!failed, "round {round} lost or duplicated transactions; see {}", out.display());
    }
    let total = |f: fn(&Round) -> u64| rounds.iter().map(f).sum::<u64>();
    println!(
        "soak done: {} rounds, {} faults, {} accepted, {} committed exactly once, 0 lost, 0 duplicated; rounds in {}",
        rounds.len(),
        rounds.iter().map(|r| r.faults.len()).sum::<usize>(),
        total(|r| r.tally.accepted),
        total(|r| r.tally.committed),
        out.display()
    );
    Ok(())
}
