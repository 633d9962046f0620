//! The end-to-end benchmark (`performance.md`): real validator processes (the release
//! `shutong` binary) on 127.0.0.1, driven from outside through JSON-RPC with the authz
//! workload (`shutong_testnet::load`).
//!
//! For each validator count:
//! 1. idle block finality, for 10 s;
//! 2. a sweep of offered load, ×1.5 a step, until committed throughput stops keeping up
//!    (below 90 % of offered) or p50 latency passes 2 s; saturation is the highest
//!    committed rate;
//! 3. p50 / p99 submit-to-finality latency at 50 % and 90 % of saturation;
//! 4. catch-up: a full node started after all that syncs and executes every block from
//!    genesis to the validators' height (blocks a minute, transactions a second);
//! 5. what the chain stored: RocksDB's bytes (SST files and memtables, by column family)
//!    at validator 0 per committed transaction.
//!
//! In the same run it measures `c_sig` (ed25519 `verify_batch`, 1,024 per batch) and the
//! limit `L(n) = cores / (n × c_sig)`. It prints a summary and writes the figures as JSON
//! to the file it names. With `--append FILE` it also adds dated rows to that
//! `RESULTS.md`.
//!
//! `shutong testnet bench` runs it (`--validators 1,4 --seconds 15 --start-rate 100
//! --out FILE --append FILE`); `scripts/bench-e2e.sh` builds the release binary and runs it.

use crate::Cluster;
use crate::load::{self, Report, Shape, World};
use anyhow::Context;
use shutong_sdk::Client;
use std::path::PathBuf;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

/// What `shutong testnet bench` runs.
#[derive(Debug, Clone)]
pub struct Args {
    /// The `shutong` binary the validators run.
    pub binary: PathBuf,
    /// Validator counts, each a run (1 to 7).
    pub validators: Vec<usize>,
    /// Seconds at each offered rate (at least 3).
    pub seconds: u64,
    /// The first offered rate of the sweep, tx/s (at least 1).
    pub start_rate: f64,
    /// Where the figures go, as JSON.
    pub out: PathBuf,
    /// A `RESULTS.md` to append dated rows to.
    pub append: Option<PathBuf>,
    /// The chains' crypto suite.
    pub suite: shutong_types::Suite,
}

impl Args {
    fn check(&self) -> anyhow::Result<()> {
        anyhow::ensure!(self.validators.iter().all(|n| (1..=7).contains(n)), "--validators: 1 to 7 each");
        anyhow::ensure!(self.seconds >= 3 && self.start_rate >= 1.0, "--seconds ≥ 3 and --start-rate ≥ 1");
        anyhow::ensure!(self.binary.exists(), "no shutong binary at {}", self.binary.display());
        Ok(())
    }
}

/// `yyyy-mm-dd` today (UTC).
pub fn today() -> String {
    let days = SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs() / 86_400) as i64;
    // Howard Hinnant's civil-from-days.
    let z = days + 719_468;
    let (era, doe) = (z.div_euclid(146_097), z.rem_euclid(146_097));
    let yoe = (doe - doe / 1_460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    format!("{:04}-{month:02}-{day:02}", yoe + era * 400 + i64::from(month <= 2))
}

pub(crate) fn commit() -> String {
    std::process::Command::new("git")
        .args(["rev-parse", "--short", "HEAD"])
        .output()
        .ok()
        .filter(|o| o.status.success())
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
        .unwrap_or_else(|| "unknown".into())
}

fn cpu_model() -> String {
    std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|text| text.lines().find(|l| l.starts_with("model name")).map(|l| l.to_string()))
        .and_then(|l| l.split_once(':').map(|(_, m)| m.trim().to_string()))
        .unwrap_or_else(|| "unknown".into())
}

/// `c_sig` of `suite`: microseconds per signature as the node checks transactions. SM2 has no
/// batch verification, so both figures are its single verification (with the key cache
/// warm, as in a node).
fn c_sig(suite: shutong_types::Suite) -> (f64, f64) {
    if suite == shutong_types::Suite::Sm2Sm3 {
        let keys: Vec<shutong_types::Keypair> =
            (0..64).map(|i| shutong_types::Keypair::from_seed_in(suite, &format!("c_sig {i}"))).collect();
        let message = b"transaction of a few hundred bytes";
        let signed: Vec<_> = keys.iter().map(|k| (k.public(), k.sign(message))).collect();
        let started = Instant::now();
        for i in 0..1_000 {
            let (key, signature) = &signed[i % signed.len()];
            key.verify(message, signature).expect("valid signature");
        }
        let single = started.elapsed().as_secs_f64() * 1e6 / 1_000.0;
        return (single, single);
    }
    ed25519_c_sig()
}

/// ed25519's `c_sig`: in `verify_batch` of 1,024, and in single `verify_strict`.
fn ed25519_c_sig() -> (f64, f64) {
    use ed25519_dalek::{Signer, SigningKey, Verifier};
    let keys: Vec<SigningKey> =
        (0..1_024u32).map(|i| SigningKey::from_bytes(blake3::hash(&i.to_le_bytes()).as_bytes())).collect();
    let messages: Vec<Vec<u8>> =
        (0..1_024u32).map(|i| format!("transaction {i} of a few hundred bytes").into_bytes()).collect();
    let signatures: Vec<_> = keys.iter().zip(&messages).map(|(k, m)| k.sign(m)).collect();
    let publics: Vec<_> = keys.iter().map(|k| k.verifying_key()).collect();
    let refs: Vec<&[u8]> = messages.iter().map(|m| m.as_slice()).collect();
    let rounds = 8;
    let started = Instant::now();
    for _ in 0..rounds {
        ed25519_dalek::verify_batch(&refs, &signatures, &publics).expect("valid signatures");
    }
    let batch = started.elapsed().as_secs_f64() * 1e6 / (rounds * 1_024) as f64;
    let started = Instant::now();
    for i in 0..2_000 {
        publics[i % 1_024].verify(&messages[i % 1_024], &signatures[i % 1_024]).expect("valid signature");
    }
    let single = started.elapsed().as_secs_f64() * 1e6 / 2_000.0;
    (batch, single)
}

#[derive(Debug, serde::Serialize)]
struct Run {
    commit: String,
    date: String,
    machine: String,
    cores: usize,
    suite: shutong_types::Suite,
    validators: usize,
    tx_bytes_mean: f64,
    idle_finality_p50_ms: f64,
    idle_finality_p99_ms: f64,
    sweep: Vec<Report>,
    saturation_tps: f64,
    at_50: Report,
    at_90: Report,
    p50_ms: f64,
    p99_ms: f64,
    c_sig_us: f64,
    c_sig_single_us: f64,
    limit_tps: f64,
    ratio: f64,
    gas_limits: std::collections::BTreeMap<String, u64>,
    catch_up: CatchUp,
    storage: Stored,
}

/// A full node syncing the whole chain from genesis after the load.
#[derive(Debug, serde::Serialize)]
struct CatchUp {
    blocks: u64,
    txs: u64,
    seconds: f64,
    blocks_per_minute: f64,
    txs_per_second: f64,
}

/// What validator 0's RocksDB holds after the run.
#[derive(Debug, serde::Serialize)]
struct Stored {
    txs_committed: u64,
    bytes: u64,
    bytes_per_tx: f64,
    by_column_family: std::collections::BTreeMap<String, u64>,
}

/// Starts the cluster's full node (the member after the validators) and times its sync to
/// the height the validators are at now.
async fn catch_up(cluster: &mut Cluster, full: usize, observer: &Client) -> anyhow::Result<CatchUp> {
    let target = observer.status().await?.height;
    let metrics = observer.metrics().await?;
    let txs = metrics.get("shutong_txs_committed_total").copied().unwrap_or(0.0) as u64;
    let started = Instant::now();
    let client = cluster.start(full).await?;
    loop {
        if client.status().await.is_ok_and(|s| s.height >= target) {
            break;
        }
        anyhow::ensure!(started.elapsed() < Duration::from_secs(1_800), "the full node did not catch up in 30 minutes");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let seconds = started.elapsed().as_secs_f64();
    Ok(CatchUp {
        blocks: target,
        txs,
        seconds,
        blocks_per_minute: target as f64 * 60.0 / seconds,
        txs_per_second: txs as f64 / seconds,
    })
}

async fn stored(observer: &Client) -> anyhow::Result<Stored> {
    let metrics = observer.metrics().await?;
    let txs_committed = metrics.get("shutong_txs_committed_total").copied().unwrap_or(0.0) as u64;
    let mut by_column_family = std::collections::BTreeMap::new();
    for (name, value) in &metrics {
        let cf = ["shutong_db_sst_bytes{", "shutong_db_memtable_bytes{"]
            .iter()
            .find_map(|p| name.strip_prefix(p))
            .and_then(|rest| rest.split('"').nth(1));
        if let Some(cf) = cf {
            *by_column_family.entry(cf.to_string()).or_insert(0) += *value as u64;
        }
    }
    let bytes = by_column_family.values().sum();
    Ok(Stored { txs_committed, bytes, bytes_per_tx: bytes as f64 / txs_committed.max(1) as f64, by_column_family })
}

/// Block finality at `observer` for `seconds` (from a block's timestamp to its notice):
/// the blocks seen, p50 and p99 in ms.
pub(crate) async fn idle_finality(observer: &Client, seconds: u64) -> anyhow::Result<(usize, f64, f64)> {
    let mut blocks = observer.subscribe_blocks().await?;
    let deadline = Instant::now() + Duration::from_secs(seconds);
    let mut latencies = Vec::new();
    while Instant::now() < deadline {
        if let Ok(Some(notice)) = tokio::time::timeout(Duration::from_millis(500), blocks.next()).await {
            let notice = notice?;
            let seen = SystemTime::now().duration_since(UNIX_EPOCH)?.as_secs_f64() * 1000.0;
            latencies.push(seen - notice.timestamp_ms as f64);
        }
    }
    latencies.sort_by(f64::total_cmp);
    Ok((latencies.len(), load::percentile(&latencies, 50.0), load::percentile(&latencies, 99.0)))
}

pub(crate) fn line(label: &str, r: &Report) {
    let refused: u64 = r.refused.iter().filter(|(k, _)| !k.ends_with("(retried)")).map(|(_, v)| v).sum();
    let retried: u64 = r.refused.iter().filter(|(k, _)| k.ends_with("(retried)")).map(|(_, v)| v).sum();
    println!(
        "  {label:>10} offered {:>7.0} tx/s: committed {:>7.0} tx/s ({} of {}, {} refused, {retried} retried, {} failed, {} outstanding) | p50 {:>6.0} ms p99 {:>6.0} ms | node CPU {:.3} ms/tx | generator {:.0} % of a core",
        r.offered_tps,
        r.committed_tps,
        r.committed,
        r.sent,
        refused,
        r.failed,
        r.outstanding,
        r.p50_ms,
        r.p99_ms,
        r.node_cpu_ms_per_tx,
        100.0 * r.generator_cpu_share
    );
}

/// The most steps of a ×1.5 sweep.
pub(crate) const SWEEP_STEPS_MAX: usize = 14;

/// Whether a step of a sweep kept up with its offered `rate`: at least 90 % committed, with
/// p50 latency under 2 s.
pub(crate) fn keeps_up(report: &Report, rate: f64) -> bool {
    report.committed_tps >= 0.9 * rate && report.p50_ms < 2_000.0
}

async fn bench(
    binary: &std::path::Path,
    validators: usize,
    args: &Args,
    c_sig_us: f64,
    c_sig_single_us: f64,
) -> anyhow::Result<Run> {
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    println!("== {validators} validator(s)");
    // One full node beside the validators, started only for the catch-up at the end. Direct
    // links, no proxy: these figures compare across builds (`shutong testnet wan` measures the
    // proxy's own cost).
    let mut cluster = Cluster::init_direct(binary, args.suite, validators, 1, 200)?;
    for i in 0..validators {
        cluster.start(i).await?;
    }
    cluster.wait_height(&(0..validators).collect::<Vec<_>>(), 3, Duration::from_secs(60)).await?;
    let clients: Vec<Client> = (0..validators).map(|i| cluster.client(i)).collect::<Result<_, _>>()?;
    let observer = clients[0].clone();
    let pids: Vec<u32> = (0..validators).filter_map(|i| cluster.pid(i)).collect();

    let (_, idle_p50, idle_p99) = idle_finality(&observer, 10).await?;
    println!("  idle block finality p50 {idle_p50:.0} ms, p99 {idle_p99:.0} ms");

    let started = Instant::now();
    let mut world = World::build(&clients, &cluster.committee, Shape::default()).await?;
    println!("  world built in {:.1} s; gas limits {:?}", started.elapsed().as_secs_f64(), world.gas_limits());
    let drain = Duration::from_secs(20);

    let mut tx_bytes = Vec::new();
    let mut at_rate = async |world: &mut World, rate: f64| -> anyhow::Result<Report> {
        let height = observer.status().await?.height;
        let txs = world.sign((rate * args.seconds as f64) as u64, height);
        tx_bytes.extend(txs.iter().take(200).map(|(_, tx)| shutong_types::Encode::encode(tx).len() as f64));
        load::run(&clients, &observer, &pids, txs, rate, drain).await
    };

    let mut sweep = Vec::new();
    let mut rate = args.start_rate;
    for _ in 0..SWEEP_STEPS_MAX {
        let report = at_rate(&mut world, rate).await?;
        line("sweep", &report);
        let keeping_up = keeps_up(&report, rate);
        sweep.push(report);
        if !keeping_up {
            break;
        }
        rate *= 1.5;
    }
    let saturation = sweep.iter().map(|r| r.committed_tps).fold(0.0, f64::max);
    println!("  saturation {saturation:.0} tx/s");
    let at_50 = at_rate(&mut world, (saturation * 0.5).max(1.0)).await?;
    line("50 %", &at_50);
    let at_90 = at_rate(&mut world, (saturation * 0.9).max(1.0)).await?;
    line("90 %", &at_90);
    let storage = stored(&observer).await?;
    println!(
        "  stored: {:.0} bytes per committed transaction ({} bytes, {} transactions) at validator 0",
        storage.bytes_per_tx, storage.bytes, storage.txs_committed
    );
    let catch_up = catch_up(&mut cluster, validators, &observer).await?;
    println!(
        "  catch-up: a full node synced {} blocks ({} transactions) in {:.1} s: {:.0} blocks/min, {:.0} tx/s",
        catch_up.blocks, catch_up.txs, catch_up.seconds, catch_up.blocks_per_minute, catch_up.txs_per_second
    );
    let limit = cores as f64 * 1e6 / (validators as f64 * c_sig_us);
    let gas_limits = world.gas_limits().iter().map(|(k, v)| (k.name().to_string(), *v)).collect();
    drop(cluster);
    Ok(Run {
        commit: commit(),
        date: today(),
        machine: cpu_model(),
        cores,
        suite: args.suite,
        validators,
        tx_bytes_mean: tx_bytes.iter().sum::<f64>() / tx_bytes.len().max(1) as f64,
        idle_finality_p50_ms: idle_p50,
        idle_finality_p99_ms: idle_p99,
        saturation_tps: saturation,
        p50_ms: at_50.p50_ms,
        p99_ms: at_50.p99_ms,
        at_50,
        at_90,
        sweep,
        c_sig_us,
        c_sig_single_us,
        limit_tps: limit,
        ratio: saturation / limit,
        gas_limits,
        catch_up,
        storage,
    })
}

fn results_row(run: &Run) -> String {
    format!(
        "| {} | {} | {}{} | {:.0} | {:.0} / {:.0} ms | {:.0} / {:.0} ms | {:.0} / {:.0} ms | {:.1} µs | {:.0} | **{:.1} %** | {:.2} ms | {:.0} B | {:.0} blocks/min ({:.0} tx/s) | {:.0} B |",
        run.date,
        run.commit,
        run.validators,
        if run.suite == shutong_types::Suite::Ed25519Blake3 { String::new() } else { format!(" ({})", run.suite) },
        run.saturation_tps,
        run.at_50.p50_ms,
        run.at_50.p99_ms,
        run.at_90.p50_ms,
        run.at_90.p99_ms,
        run.idle_finality_p50_ms,
        run.idle_finality_p99_ms,
        run.c_sig_us,
        run.limit_tps,
        100.0 * run.ratio,
        run.at_90.node_cpu_ms_per_tx,
        run.tx_bytes_mean,
        run.catch_up.blocks_per_minute,
        run.catch_up.txs_per_second,
        run.storage.bytes_per_tx,
    )
}

/// Rows before the catch-up and storage columns are in "## End to end, authz workload".
const SECTION: &str = "## End to end, authz workload, with catch-up and storage";

fn append_results(path: &std::path::Path, runs: &[Run]) -> anyhow::Result<()> {
    let mut text = std::fs::read_to_string(path).with_context(|| format!("cannot read {}", path.display()))?;
    let header = "| date | commit | validators | saturation tx/s | p50 / p99 at 50 % | p50 / p99 at 90 % | idle finality p50 / p99 | c_sig (batch) | L(n) tx/s | ratio | node CPU per tx (all nodes, 90 %) | mean tx size | full node catch-up from genesis | stored per tx |\n|---|---|---|---|---|---|---|---|---|---|---|---|---|---|\n";
    let rows: String = runs.iter().map(|r| results_row(r) + "\n").collect();
    match text.find(SECTION) {
        Some(at) => {
            // After the section's table: the first blank line after its header row.
            let table = text[at..].find("| date |").map(|i| at + i).context("the section has no table")?;
            let end = text[table..].find("\n\n").map_or(text.len(), |i| table + i + 1);
            text.insert_str(end, &rows);
        }
        None => {
            text.push_str(&format!(
                "\n{SECTION} (`testnet/src/bench.rs`, `scripts/bench-e2e.sh`)\n\nValidator processes on 127.0.0.1 on this machine, release build, block interval 200 ms; the authz workload of `performance.md` (70 % access records, 10 % anchors, 10 % lifecycle, 10 % catalog and membership) from {} gateway, analyst and admin accounts, signed before each run and submitted open-loop over JSON-RPC across the validators; every signature checked by every validator and every transaction executed in the VM. Saturation: the highest committed rate of a ×1.5 sweep; latency from submission to the block's notice at validator 0. `c_sig` and L(n) = cores / (n × c_sig) are measured in the same run. Catch-up: after the run a full node starts from an empty disk and syncs and executes every block to the validators' height. Stored: validator 0's RocksDB bytes (SST files and memtables, all column families) per committed transaction. Full figures in the JSON each run names.\n\n{header}{rows}",
                "about 100"
            ));
        }
    }
    std::fs::write(path, text).with_context(|| format!("cannot write {}", path.display()))
}

/// Runs the benchmark: prints the summary, writes the figures to `args.out`, and appends
/// rows to `args.append` if given.
pub async fn run(args: Args) -> anyhow::Result<()> {
    args.check()?;
    let binary = &args.binary;
    let (c_sig_us, c_sig_single_us) = c_sig(args.suite);
    println!(
        "e2e: commit {}, {} ({} cores), suite {}, binary {}\nc_sig {c_sig_us:.1} µs a signature as checked ({c_sig_single_us:.1} µs single)",
        commit(),
        cpu_model(),
        std::thread::available_parallelism().map_or(0, |n| n.get()),
        args.suite,
        binary.display()
    );
    let mut runs = Vec::new();
    for &n in &args.validators {
        let run = bench(binary, n, &args, c_sig_us, c_sig_single_us).await?;
        println!(
            "  {n} validator(s): saturation {:.0} tx/s = {:.1} % of L({n}) = {:.0} tx/s; at 50 %: p50 {:.0} ms, p99 {:.0} ms",
            run.saturation_tps,
            100.0 * run.ratio,
            run.limit_tps,
            run.p50_ms,
            run.p99_ms
        );
        runs.push(run);
    }
    std::fs::write(&args.out, serde_json::to_vec_pretty(&runs)?)
        .with_context(|| format!("cannot write {}", args.out.display()))?;
    println!("figures written to {}", args.out.display());
    if let Some(results) = &args.append {
        append_results(results, &runs)?;
        println!("rows appended to {}", results.display());
    }
    Ok(())
}
