//! The end-to-end benchmark: N real validator processes on 127.0.0.1 (the release `shutong`
//! binary), measured from outside through JSON-RPC.
//!
//! - Idle: blocks per second, and block finality latency: from the leader's block timestamp
//!   (taken when it built the block) to the moment validator-0 reports the block committed,
//!   polled every 2 ms.
//! - Under load, for each offered rate: transactions pre-signed by 64 accounts (registry
//!   registrations, ~250 bytes) are submitted open-loop at the rate, spread over every
//!   validator's RPC; the latency of each is from its submission to the moment validator-0
//!   reports the block holding it committed. Committed throughput, p50 / p99 latency, and the
//!   CPU seconds all node processes used per committed transaction.
//!
//! `cargo run --release -p shutong-benches --bin e2e -- [validators] [seconds] [rates...]`,
//! for example `... --bin e2e -- 4 20 100 400 800`. `SHUTONG_BIN` names the binary (default:
//! the release build in `$CARGO_TARGET_DIR`, or `~/.cache/shutong-target`).

use anyhow::Context;
use shutong_sdk::system_api::registry::OrgKind;
use shutong_sdk::{Client, TxBuilder, builder};
use shutong_testnet::Cluster;
use shutong_types::{Hash, Keypair, SignedTransaction};
use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

fn now_ms() -> f64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map_or(0.0, |d| d.as_secs_f64() * 1000.0)
}

fn percentile(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let rank = ((p / 100.0) * (sorted.len() - 1) as f64).round() as usize;
    sorted[rank.min(sorted.len() - 1)]
}

/// CPU seconds (user + system) a process has used, from /proc.
fn cpu_seconds(pid: u32) -> f64 {
    let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else { return 0.0 };
    let Some(rest) = stat.rsplit(')').next() else { return 0.0 };
    let fields: Vec<&str> = rest.split_whitespace().collect();
    // After the command: state is field 3, utime 14 and stime 15 (1-based, whole line).
    let ticks = |i: usize| fields.get(i - 3).and_then(|f| f.parse::<f64>().ok()).unwrap_or(0.0);
    // SAFETY: sysconf has no preconditions.
    #[allow(unsafe_code)]
    let hz = unsafe { libc::sysconf(libc::_SC_CLK_TCK) } as f64;
    (ticks(14) + ticks(15)) / hz
}

struct Observed {
    /// Height → (commit seen at validator-0 in ms since the epoch, header timestamp, tx ids).
    blocks: Vec<(u64, f64, u64, Vec<Hash>)>,
    elapsed: Duration,
}

/// Polls validator-0 until `until` returns true or `max` passes, recording each new block.
async fn observe(client: &Client, max: Duration, mut until: impl FnMut(&Observed) -> bool) -> anyhow::Result<Observed> {
    let start = Instant::now();
    let mut height = client.status().await?.height;
    let mut observed = Observed { blocks: Vec::new(), elapsed: Duration::ZERO };
    while start.elapsed() < max && !until(&observed) {
        let tip = client.status().await?.height;
        let seen = now_ms();
        for h in height + 1..=tip {
            let block = client.block(h).await?.with_context(|| format!("block {h} vanished"))?;
            // Blocks committed together in one poll share the time they were seen.
            observed.blocks.push((h, seen, block.header.timestamp_ms, block.txs));
        }
        height = tip;
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
    observed.elapsed = start.elapsed();
    Ok(observed)
}

fn block_latencies(observed: &Observed) -> Vec<f64> {
    let mut latencies: Vec<f64> = observed.blocks.iter().map(|(_, seen, ts, _)| seen - *ts as f64).collect();
    latencies.sort_by(f64::total_cmp);
    latencies
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let validators: usize = args.first().map_or(Ok(4), |a| a.parse()).context("validators")?;
    let seconds: u64 = args.get(1).map_or(Ok(20), |a| a.parse()).context("seconds")?;
    let rates: Vec<u64> = if args.len() > 2 {
        args[2..].iter().map(|a| a.parse()).collect::<Result<_, _>>().context("rates")?
    } else {
        vec![100, 400]
    };
    let binary = match std::env::var_os("SHUTONG_BIN") {
        Some(path) => PathBuf::from(path),
        None => {
            let target = std::env::var_os("CARGO_TARGET_DIR").map(PathBuf::from).unwrap_or_else(|| {
                PathBuf::from(std::env::var_os("HOME").unwrap_or_default()).join(".cache/shutong-target")
            });
            target.join("release/shutong")
        }
    };
    anyhow::ensure!(binary.exists(), "no shutong binary at {} (build it with --release)", binary.display());
    println!(
        "e2e: {validators} validators, {seconds} s per phase, binary {}, {} cores",
        binary.display(),
        std::thread::available_parallelism().map_or(0, |n| n.get())
    );

    // c_sig in this run: one transaction's signature check, single verification.
    let key = Keypair::generate();
    let sample = TxBuilder::new("e2e", key).call(builder::register_org("c-sig", "x", OrgKind::Enterprise), 0, 10);
    let started = Instant::now();
    for _ in 0..2_000 {
        sample.verify()?;
    }
    let c_sig_us = started.elapsed().as_secs_f64() * 1e6 / 2_000.0;
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get()) as f64;
    let limit = cores * 1e6 / (validators as f64 * c_sig_us);
    println!("c_sig {c_sig_us:.1} µs (single verification); L({validators}) = {limit:.0} tx/s on {cores} cores");

    let mut cluster = Cluster::init(&binary, validators, 200)?;
    cluster.start_all().await?;
    cluster.wait_height(&(0..validators).collect::<Vec<_>>(), 3, Duration::from_secs(60)).await?;
    let observer = cluster.client(0)?;
    let pids: Vec<u32> = (0..validators).filter_map(|i| cluster.pid(i)).collect();
    let node_cpu = || pids.iter().map(|p| cpu_seconds(*p)).sum::<f64>();

    // Idle.
    let cpu_before = node_cpu();
    let idle = observe(&observer, Duration::from_secs(seconds), |_| false).await?;
    let cpu_idle = node_cpu() - cpu_before;
    let latencies = block_latencies(&idle);
    println!(
        "| idle | {:.1} blocks/s | block finality p50 {:.0} ms, p99 {:.0} ms | {} blocks | node CPU {:.0} % of one core |",
        idle.blocks.len() as f64 / idle.elapsed.as_secs_f64(),
        percentile(&latencies, 50.0),
        percentile(&latencies, 99.0),
        idle.blocks.len(),
        100.0 * cpu_idle / idle.elapsed.as_secs_f64()
    );

    let clients: Vec<Client> = (0..validators).map(|i| cluster.client(i)).collect::<Result<_, _>>()?;
    for (run, rate) in rates.into_iter().enumerate() {
        let total = rate * seconds;
        let keys: Vec<Keypair> = (0..64).map(|_| Keypair::generate()).collect();
        let txs: Vec<SignedTransaction> = (0..total)
            .map(|i| {
                let key = &keys[(i % 64) as usize];
                let mut txb = TxBuilder::new(&cluster.chain_id, key.clone());
                // A registration uses ~25,000 gas; the default limit would let only 500 fit
                // a block's gas budget.
                txb.gas_limit = 100_000;
                let call = builder::register_org(&format!("r{run}-org-{i}"), "Benchmark Org", OrgKind::Enterprise);
                txb.call(call, i / 64, 10_000)
            })
            .collect();
        let submitted: Arc<Mutex<HashMap<Hash, f64>>> = Arc::new(Mutex::new(HashMap::new()));
        let errors = Arc::new(Mutex::new(0u64));
        let cpu_before = node_cpu();
        let load_cpu_before = cpu_seconds(std::process::id());
        let sender = {
            let (clients, submitted, errors) = (clients.clone(), submitted.clone(), errors.clone());
            tokio::spawn(async move {
                let mut tick = tokio::time::interval(Duration::from_secs_f64(1.0 / rate as f64));
                tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Burst);
                let in_flight = Arc::new(tokio::sync::Semaphore::new(512));
                for (i, tx) in txs.into_iter().enumerate() {
                    tick.tick().await;
                    let permit = in_flight.clone().acquire_owned().await.expect("semaphore open");
                    let client = clients[i % clients.len()].clone();
                    let (submitted, errors) = (submitted.clone(), errors.clone());
                    tokio::spawn(async move {
                        let at = now_ms();
                        match client.submit(&tx).await {
                            Ok(id) => {
                                submitted.lock().expect("lock").insert(id, at);
                            }
                            Err(_) => *errors.lock().expect("lock") += 1,
                        }
                        drop(permit);
                    });
                }
            })
        };
        let wanted = total as usize;
        let loaded = observe(&observer, Duration::from_secs(seconds + 30), |o| {
            o.blocks.iter().map(|b| b.3.len()).sum::<usize>() >= wanted
        })
        .await?;
        sender.await?;
        let cpu = node_cpu() - cpu_before;
        let load_cpu = cpu_seconds(std::process::id()) - load_cpu_before;
        let submitted = submitted.lock().expect("lock").clone();
        let mut latencies = Vec::new();
        let (mut first, mut last) = (f64::MAX, 0f64);
        for (_, seen, _, ids) in &loaded.blocks {
            for id in ids {
                if let Some(at) = submitted.get(id) {
                    latencies.push(seen - at);
                    first = first.min(*at);
                    last = last.max(*seen);
                }
            }
        }
        latencies.sort_by(f64::total_cmp);
        let committed = latencies.len();
        let window_s = ((last - first) / 1000.0).max(0.001);
        let block_lat = block_latencies(&loaded);
        println!(
            "| offered {rate} tx/s | committed {committed} of {total} ({} refused) | {:.0} tx/s | tx latency p50 {:.0} ms, p99 {:.0} ms | {:.1} blocks/s, block finality p50 {:.0} ms, p99 {:.0} ms | node CPU {:.2} ms/tx | load generator CPU {:.0} % of one core |",
            *errors.lock().expect("lock"),
            committed as f64 / window_s,
            percentile(&latencies, 50.0),
            percentile(&latencies, 99.0),
            loaded.blocks.len() as f64 / loaded.elapsed.as_secs_f64(),
            percentile(&block_lat, 50.0),
            percentile(&block_lat, 99.0),
            1000.0 * cpu / committed.max(1) as f64,
            100.0 * load_cpu / loaded.elapsed.as_secs_f64(),
        );
    }
    Ok(())
}
