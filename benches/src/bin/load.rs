//! The load generator, against a running local testnet (`shutong testnet up`): builds the
//! authz workload's world with the testnet's admin key, then offers the mix open-loop at one
//! rate, or sweeps rates ×1.5 until committed throughput stops keeping up. For each rate it
//! prints committed tx/s, p50 / p99 submit-to-finality latency, refusals and failures, and
//! the CPU seconds per transaction of all the testnet's node processes; it writes the runs as
//! JSON to `--out`.
//!
//! `cargo run --release -p shutong-benches --bin load -- --dir .shutong-testnet --rate 500 --seconds 20`
//! (`--sweep` to sweep from `--rate`).

use anyhow::Context;
use shutong_node::localnet::{self, Layout};
use shutong_sdk::{Client, keyfile};
use shutong_testnet::load::{self, Report, Shape, World};
use std::path::PathBuf;
use std::time::Duration;

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() -> anyhow::Result<()> {
    let (mut dir, mut rate, mut seconds, mut sweep) = (PathBuf::from(".shutong-testnet"), 200.0f64, 20u64, false);
    let mut out = PathBuf::from("load.json");
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        if flag == "--sweep" {
            sweep = true;
            continue;
        }
        let value = it.next().with_context(|| format!("{flag} needs a value"))?;
        match flag.as_str() {
            "--dir" => dir = PathBuf::from(value),
            "--rate" => rate = value.parse().context("--rate")?,
            "--seconds" => seconds = value.parse().context("--seconds")?,
            "--out" => out = PathBuf::from(value),
            other => anyhow::bail!("unknown flag {other}; flags: --dir DIR --rate R --seconds S --sweep --out FILE"),
        }
    }
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
    let pids: Vec<u32> = layout.nodes.iter().filter_map(|n| n.pid.filter(|p| localnet::alive(*p))).collect();
    anyhow::ensure!(pids.len() == layout.nodes.len(), "not every node of the testnet runs (`shutong testnet status`)");
    let committee = shutong_testnet::Committee::load(&dir)?;
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
