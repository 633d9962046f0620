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
//! With `--retention-secs N` the chain is a test chain whose validators prune what is older
//! than N seconds, beside one archive full node; each round then also samples the bytes
//! both keep on disk and the audit log's size, so that the bytes stored per access event
//! of a pruning and an archive node can be compared, and a pruning node's disk seen to
//! level off.
//!
//! `shutong testnet soak` runs it; `scripts/soak.sh --minutes 60` builds the release binary
//! and runs it.

use crate::Cluster;
use crate::faults::{self, Tally};
use crate::load::{self, Shape, World};
use anyhow::Context;
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
    /// With `--retention-secs`: what validator 0 (pruning) and the archive node store.
    #[serde(skip_serializing_if = "Option::is_none")]
    storage: Option<StorageSample>,
}

/// The bytes two nodes keep in their databases after a round, and the audit log's size.
#[derive(Debug, Clone, Copy, serde::Serialize)]
struct StorageSample {
    height: u64,
    retained_from: u64,
    audit_events: u64,
    pruning_bytes: u64,
    archive_bytes: u64,
}

/// The bytes of the database files under `data` (the compiled-code cache apart).
fn database_bytes(data: &std::path::Path) -> u64 {
    let Ok(entries) = std::fs::read_dir(data) else { return 0 };
    entries
        .flatten()
        .filter(|e| e.file_name() != "code-cache")
        .map(|e| match e.metadata() {
            Ok(m) if m.is_dir() => database_bytes(&e.path()),
            Ok(m) => m.len(),
            Err(_) => 0,
        })
        .sum()
}

async fn storage_sample(cluster: &Cluster, clients: &[Client], archive: usize) -> anyhow::Result<StorageSample> {
    let status = clients[0].status().await?;
    let block = clients[0].block(status.height).await?.context("the tip's block")?;
    Ok(StorageSample {
        height: status.height,
        retained_from: status.retained_from,
        audit_events: block.header.audit_size,
        pruning_bytes: database_bytes(&cluster.members[0].home.join("data")),
        archive_bytes: database_bytes(&cluster.members[archive].home.join("data")),
    })
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
    /// A test chain whose validators prune what is older than this, with an archive full
    /// node beside them.
    pub retention_secs: Option<u64>,
}

/// Runs the soak: stops at the first loss, duplicate or fork.
pub async fn run(args: Args) -> anyhow::Result<()> {
    let Args { binary, minutes, rate, validators, round_secs, seed, out, retention_secs } = args;
    anyhow::ensure!((4..=7).contains(&validators), "--validators: 4 to 7 (faults need a quorum to remain)");
    anyhow::ensure!(round_secs >= 1 && rate >= 1.0, "--round-secs ≥ 1 and --rate ≥ 1");
    anyhow::ensure!(binary.exists(), "no shutong binary at {}", binary.display());
    let mut cluster = match retention_secs {
        None => Cluster::init(&binary, validators, 200)?,
        Some(secs) => {
            let cluster = Cluster::init_pruning(&binary, validators, 1, 200, secs)?;
            let config = cluster.members[validators].home.join(shutong_node::CONFIG_FILE);
            let text = std::fs::read_to_string(&config)?.replace("archive = false", "archive = true");
            std::fs::write(&config, text)?;
            cluster
        }
    };
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
        let storage = match retention_secs {
            Some(_) => Some(storage_sample(&cluster, &clients, validators).await?),
            None => None,
        };
        if let Some(s) = storage {
            println!(
                "  storage at height {} (kept from {}), {} audit events: pruning {:.1} MB ({:.0} B/event), archive {:.1} MB ({:.0} B/event)",
                s.height,
                s.retained_from,
                s.audit_events,
                s.pruning_bytes as f64 / 1e6,
                s.pruning_bytes as f64 / s.audit_events.max(1) as f64,
                s.archive_bytes as f64 / 1e6,
                s.archive_bytes as f64 / s.audit_events.max(1) as f64,
            );
        }
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
            storage,
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
