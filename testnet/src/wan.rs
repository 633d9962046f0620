//! Finality and throughput across a wide-area network, emulated by the link proxy: for each
//! validator count and one-way delay δ between every pair, a fresh testnet whose links all
//! carry δ; idle finality (p50 / p99 from a block's timestamp to its commit at validator 0),
//! its ratio to the protocol's 3δ bound (`consensus.md`: a block is final three message
//! delays after it is proposed), and, if asked, the saturation of the authz workload swept
//! as in the end-to-end benchmark. The proxy's own CPU per second is reported beside.
//!
//! `--direct` runs the same with no proxy at all (every δ must be 0): the calibration the
//! proxy is measured against.

use crate::Cluster;
use crate::load::{Shape, World};
use crate::proxy::LinkFaults;
use anyhow::Context;
use shutong_sdk::Client;
use std::path::PathBuf;
use std::time::Duration;

/// What `shutong testnet wan` runs.
#[derive(Debug, Clone)]
pub struct Args {
    pub binary: PathBuf,
    /// Validator counts, each a run (1 to 7).
    pub validators: Vec<usize>,
    /// One-way delays between every pair, ms.
    pub delays_ms: Vec<u64>,
    /// Seconds of idle finality per run.
    pub seconds: u64,
    /// Also sweep the authz workload to saturation, this many seconds a step (0: no sweep).
    pub sweep_seconds: u64,
    /// No proxy: the nodes dial each other directly (every delay must be 0).
    pub direct: bool,
    pub out: PathBuf,
}

#[derive(Debug, serde::Serialize)]
struct Point {
    validators: usize,
    delay_ms: u64,
    direct: bool,
    blocks: usize,
    idle_finality_p50_ms: f64,
    idle_finality_p99_ms: f64,
    /// p50 ÷ 3δ; none at δ = 0.
    p50_over_3_delta: Option<f64>,
    saturation_tps: Option<f64>,
    /// CPU the proxy used per second of the idle measurement, ms.
    proxy_cpu_ms_per_s: Option<f64>,
}

async fn point(args: &Args, validators: usize, delay_ms: u64) -> anyhow::Result<Point> {
    let mut cluster = if args.direct {
        Cluster::init_direct(&args.binary, shutong_types::Suite::Ed25519Blake3, validators, 0, 200)?
    } else {
        Cluster::init(&args.binary, validators, 200)?
    };
    cluster.links().set_all(validators, LinkFaults::delayed(Duration::from_millis(delay_ms)));
    cluster.start_all().await?;
    let all: Vec<usize> = (0..validators).collect();
    cluster.wait_height(&all, 3, Duration::from_secs(120)).await?;
    let clients: Vec<Client> = all.iter().map(|i| cluster.client(*i)).collect::<Result<_, _>>()?;
    let cpu_before = cluster.proxy_cpu_time();
    let (blocks, p50, p99) = crate::bench::idle_finality(&clients[0], args.seconds).await?;
    let proxy_cpu_ms_per_s = match (cpu_before, cluster.proxy_cpu_time()) {
        (Some(a), Some(b)) if !args.direct => Some((b - a).as_secs_f64() * 1000.0 / args.seconds as f64),
        _ => None,
    };
    let saturation_tps = if args.sweep_seconds == 0 {
        None
    } else {
        let pids: Vec<u32> = all.iter().filter_map(|i| cluster.pid(*i)).collect();
        let mut world = World::build(&clients, &cluster.committee, Shape::default()).await?;
        let mut best: f64 = 0.0;
        let mut rate = 100.0;
        for _ in 0..crate::bench::SWEEP_STEPS_MAX {
            let height = clients[0].status().await?.height;
            let txs = world.sign((rate * args.sweep_seconds as f64) as u64, height);
            let report = crate::load::run(&clients, &clients[0], &pids, txs, rate, Duration::from_secs(20)).await?;
            crate::bench::line("sweep", &report);
            best = best.max(report.committed_tps);
            if !crate::bench::keeps_up(&report, rate) {
                break;
            }
            rate *= 1.5;
        }
        Some(best)
    };
    let three_delta = 3.0 * delay_ms as f64;
    Ok(Point {
        validators,
        delay_ms,
        direct: args.direct,
        blocks,
        idle_finality_p50_ms: p50,
        idle_finality_p99_ms: p99,
        p50_over_3_delta: (delay_ms > 0).then(|| p50 / three_delta),
        saturation_tps,
        proxy_cpu_ms_per_s,
    })
}

/// Runs every (validators, delay) point, prints a table and writes the points as JSON.
pub async fn run(args: Args) -> anyhow::Result<()> {
    anyhow::ensure!(args.validators.iter().all(|n| (1..=7).contains(n)), "--validators: 1 to 7 each");
    anyhow::ensure!(args.seconds >= 3, "--seconds ≥ 3");
    anyhow::ensure!(args.delays_ms.iter().all(|d| *d <= 1_000), "--delays-ms: at most 1,000 each");
    anyhow::ensure!(!args.direct || args.delays_ms.iter().all(|d| *d == 0), "--direct has no proxy to delay links");
    anyhow::ensure!(args.binary.exists(), "no shutong binary at {}", args.binary.display());
    println!(
        "wan: commit {}, {} validators × delays {:?} ms",
        crate::bench::commit(),
        args.validators.len(),
        args.delays_ms
    );
    println!("| n | δ | idle finality p50 / p99 | p50 ÷ 3δ | saturation | proxy CPU |");
    println!("|---|---|---|---|---|---|");
    let mut points = Vec::new();
    for &n in &args.validators {
        for &delay in &args.delays_ms {
            let p = point(&args, n, delay).await.with_context(|| format!("{n} validators, δ = {delay} ms"))?;
            println!(
                "| {n} | {} | {:.0} / {:.0} ms | {} | {} | {} |",
                if args.direct { "direct".to_string() } else { format!("{delay} ms") },
                p.idle_finality_p50_ms,
                p.idle_finality_p99_ms,
                p.p50_over_3_delta.map_or("-".into(), |r| format!("{r:.2}")),
                p.saturation_tps.map_or("-".into(), |s| format!("{s:.0} tx/s")),
                p.proxy_cpu_ms_per_s.map_or("-".into(), |c| format!("{c:.1} ms/s")),
            );
            points.push(p);
        }
    }
    std::fs::write(&args.out, serde_json::to_vec_pretty(&points)?)
        .with_context(|| format!("cannot write {}", args.out.display()))?;
    println!("figures written to {}", args.out.display());
    Ok(())
}
