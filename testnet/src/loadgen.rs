//! The load generator, against a running local testnet (`shutong testnet up`): builds the
//! authz workload's world with the testnet's admin key, then offers the mix open-loop at one
//! rate, or sweeps rates ×1.5 until committed throughput stops keeping up. For each rate it
//! prints committed tx/s, p50 / p99 submit-to-finality latency, refusals and failures, and
//! the CPU seconds per transaction of all the testnet's node processes; it writes the runs as
//! JSON to `--out`.
//!
//! `shutong testnet load --dir .shutong-testnet --rate 500 --seconds 20` (`--sweep` to
//! sweep from `--rate`).

use crate::layout::{self, Layout};
use crate::load::{self, Report, Shape, World};
use anyhow::Context;
use shutong_sdk::{Client, keyfile};
use std::path::PathBuf;
use std::time::Duration;

/// What `shutong testnet load` runs.
#[derive(Debug, Clone)]
pub struct Args {
    /// The testnet's directory (its `testnet.json`).
    pub dir: PathBuf,
    /// Offered load, tx/s: the one rate, or the first of the sweep.
    pub rate: f64,
    /// Seconds at each rate.
    pub seconds: u64,
    /// Sweep ×1.5 a step until committed throughput stops keeping up.
    pub sweep: bool,
    /// Where the runs go, as JSON.
    pub out: PathBuf,
}

/// Offers the load; prints a line per rate and writes the runs to `args.out`.
pub async fn run(args: Args) -> anyhow::Result<()> {
    let Args { dir, mut rate, seconds, sweep, out } = args;
    anyhow::ensure!(rate >= 1.0 && seconds >= 1, "--rate ≥ 1 and --seconds ≥ 1");
    let layout =
        Layout::load(&dir).with_context(|| format!("no testnet in {} (`shutong testnet up`)", dir.display()))?;
    let admin = keyfile::read(&layout.admin_key)?;
    // Every request is signed, as the admin (a registered caller): access control is part of
    // what is measured.
    let clients: Vec<Client> = layout
        .nodes
        .iter()
        .map(|n| Client::new(&format!("http://{}", n.rpc)).map(|c| c.signed_for(&layout.chain_id, admin.clone())))
        .collect::<Result<_, _>>()?;
    let pids: Vec<u32> = layout.nodes.iter().filter_map(|n| n.pid.filter(|p| layout::alive(*p))).collect();
    anyhow::ensure!(pids.len() == layout.nodes.len(), "not every node of the testnet runs (`shutong testnet status`)");
    let committee = crate::Committee::load(&dir)?;
    let mut world = World::build(&clients, &committee, Shape::default()).await?;
    let mut runs: Vec<Report> = Vec::new();
    loop {
        let height = clients[0].status().await?.height;
        let txs = world.sign((rate * seconds as f64) as u64, height);
        let report = load::run(&clients, &clients[0], &pids, txs, rate, Duration::from_secs(30)).await?;
        println!(
            "offered {:.0} tx/s: committed {:.0} tx/s ({} of {}, {} failed, refusals {:?}) | p50 {:.0} ms p99 {:.0} ms | node CPU {:.3} ms/tx",
            rate,
            report.committed_tps,
            report.committed,
            report.sent,
            report.failed,
            report.refused,
            report.p50_ms,
            report.p99_ms,
            report.node_cpu_ms_per_tx
        );
        let keeping_up = report.committed_tps >= 0.9 * rate && report.p50_ms < 2_000.0;
        runs.push(report);
        if !sweep || !keeping_up || runs.len() >= 14 {
            break;
        }
        rate *= 1.5;
    }
    std::fs::write(&out, serde_json::to_vec_pretty(&runs)?)?;
    println!("runs written to {}", out.display());
    Ok(())
}
