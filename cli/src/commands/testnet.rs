//! `shutong testnet`: a local multi-validator testnet on 127.0.0.1.

use crate::context::{Ctx, Outcome, Shown, shown};
use anyhow::{Context, bail};
use clap::{Args, Subcommand};
use shutong_sdk::Client;
use std::path::PathBuf;
use std::time::Duration;

#[derive(Subcommand)]
pub(crate) enum TestnetCommand {
    /// Create the validators' keys, genesis and configs (first time) and start every node;
    /// waits until the chain finalizes blocks.
    Up(TestnetParams),
    /// Only create the validators' keys, genesis and configs.
    Init(TestnetParams),
    /// Each node's height, view, peers and last finalized block.
    Status {
        #[command(flatten)]
        dir: TestnetDir,
        /// Refresh until interrupted: a live view (one JSON line per refresh with --output json).
        #[arg(long)]
        watch: bool,
        /// How often --watch refreshes.
        #[arg(long, default_value_t = 1000, value_parser = clap::value_parser!(u64).range(100..=60_000))]
        interval_ms: u64,
    },
    /// SIGKILL one node: a crash, not a shutdown.
    Kill {
        #[command(flatten)]
        dir: TestnetDir,
        #[arg(long)]
        node: usize,
    },
    /// Stop one node (SIGTERM; --kill for SIGKILL) and start it again on its data.
    Restart {
        #[command(flatten)]
        dir: TestnetDir,
        #[arg(long)]
        node: usize,
        #[arg(long)]
        kill: bool,
    },
    /// Stop every node (SIGTERM, then SIGKILL after 10 s). Data stays unless --purge.
    Down {
        #[command(flatten)]
        dir: TestnetDir,
        /// Also delete the testnet directory.
        #[arg(long)]
        purge: bool,
    },
    /// Stop one node, to watch the others go on.
    Stop {
        #[command(flatten)]
        dir: TestnetDir,
        /// The node's index (0 for validator-0).
        #[arg(long)]
        node: usize,
        /// SIGKILL instead of SIGTERM: a crash, not a shutdown.
        #[arg(long)]
        kill: bool,
    },
    /// Run the testnet's link proxy in the foreground (`up` starts it in the background):
    /// every byte between the nodes crosses it, with the faults `testnet link` sets.
    Proxy {
        #[command(flatten)]
        dir: TestnetDir,
    },
    /// Give links between nodes the faults of a real network: delay, jitter, bandwidth, a
    /// stall or blackhole (held) or a cut by reset. Applies within 200 ms; lasts until changed.
    Link {
        #[command(flatten)]
        dir: TestnetDir,
        /// The sending node (default: every node).
        #[arg(long)]
        from: Option<usize>,
        /// The receiving node (default: every node).
        #[arg(long)]
        to: Option<usize>,
        /// Also the other way (to → from).
        #[arg(long)]
        both_ways: bool,
        /// One-way delay.
        #[arg(long, default_value_t = 0, value_parser = clap::value_parser!(u64).range(0..=60_000))]
        delay_ms: u64,
        /// Up to this much more per chunk (bytes are never reordered).
        #[arg(long, default_value_t = 0, value_parser = clap::value_parser!(u64).range(0..=60_000))]
        jitter_ms: u64,
        /// Bytes per second.
        #[arg(long, value_parser = clap::value_parser!(u64).range(1..))]
        bandwidth: Option<u64>,
        /// up, held (a stall or blackhole: bytes wait, none lost) or reset (connections cut by RST).
        #[arg(long, default_value = "up")]
        state: LinkStateArg,
        /// Remove every fault instead.
        #[arg(long, conflicts_with_all = ["from", "to", "both_ways", "delay_ms", "jitter_ms", "bandwidth", "state"])]
        heal: bool,
    },
    /// Start one stopped node again.
    Start {
        #[command(flatten)]
        dir: TestnetDir,
        #[arg(long)]
        node: usize,
    },
    /// Offer the authz workload to a running testnet, open-loop, at one rate or in a sweep;
    /// prints committed tx/s, latency and node CPU per transaction for each rate.
    Load {
        #[command(flatten)]
        dir: TestnetDir,
        /// Offered tx/s (the first rate of a sweep).
        #[arg(long, default_value_t = 200.0)]
        rate: f64,
        /// Seconds at each rate.
        #[arg(long, default_value_t = 20)]
        seconds: u64,
        /// Sweep ×1.5 a step until committed throughput stops keeping up.
        #[arg(long)]
        sweep: bool,
        /// Where the runs go, as JSON.
        #[arg(long, default_value = "load.json")]
        out: PathBuf,
    },
    /// The end-to-end benchmark (`performance.md`): fresh testnets of this binary, the authz
    /// workload swept to saturation, latency, catch-up and bytes stored.
    Bench {
        /// Validator counts, comma separated, each a run (1 to 7).
        #[arg(long, value_delimiter = ',', default_value = "1,4")]
        validators: Vec<usize>,
        /// Seconds at each offered rate.
        #[arg(long, default_value_t = 15)]
        seconds: u64,
        /// The sweep's first offered rate, tx/s.
        #[arg(long, default_value_t = 100.0)]
        start_rate: f64,
        /// Where the figures go, as JSON.
        #[arg(long)]
        out: PathBuf,
        /// A RESULTS.md to append dated rows to.
        #[arg(long)]
        append: Option<PathBuf>,
        /// The `shutong` binary the validators run (default: this one), to compare builds
        /// under the same load.
        #[arg(long)]
        binary: Option<PathBuf>,
        /// The chains' crypto suite: ed25519-blake3, or sm2-sm3 (国密).
        #[arg(long, default_value = "ed25519-blake3", value_parser = parse_suite)]
        suite: shutong_types::Suite,
    },
    /// Finality (and, with --sweep-seconds, saturation) across an emulated WAN: fresh
    /// testnets whose links all carry a one-way delay, for each validator count and delay.
    Wan {
        /// Validator counts, comma separated (1 to 7).
        #[arg(long, value_delimiter = ',', default_value = "4,7")]
        validators: Vec<usize>,
        /// One-way delays between every pair, ms, comma separated.
        #[arg(long, value_delimiter = ',', default_value = "0,5,20,50")]
        delays_ms: Vec<u64>,
        /// Seconds of idle finality at each point.
        #[arg(long, default_value_t = 10)]
        seconds: u64,
        /// Also sweep the authz workload to saturation, this many seconds a step (0: no sweep).
        #[arg(long, default_value_t = 0)]
        sweep_seconds: u64,
        /// No proxy: the nodes dial each other directly (delays must be 0); calibrates the proxy.
        #[arg(long)]
        direct: bool,
        /// Where the figures go, as JSON.
        #[arg(long, default_value = "wan.json")]
        out: PathBuf,
    },
    /// The soak: fresh validators under load for as long as asked, with random faults
    /// (SIGKILL and restart, partitions, pauses); stops at the first loss, duplicate or fork.
    Soak {
        #[arg(long, default_value_t = 10)]
        minutes: u64,
        /// Offered tx/s.
        #[arg(long, default_value_t = 200.0)]
        rate: f64,
        /// 4 to 7: the faults need a quorum to remain.
        #[arg(long, default_value_t = 4)]
        validators: usize,
        #[arg(long, default_value_t = 60)]
        round_secs: u64,
        /// The fault schedule's seed.
        #[arg(long, default_value_t = 1)]
        seed: u64,
        /// Where the rounds go, as JSON.
        #[arg(long, default_value = "soak.json")]
        out: PathBuf,
        /// A test chain whose validators prune what is older than this many seconds, with
        /// an archive full node beside them; each round reports the bytes both store.
        #[arg(long)]
        retention_secs: Option<u64>,
    },
}

#[derive(Args)]
pub(crate) struct TestnetParams {
    #[command(flatten)]
    dir: TestnetDir,
    #[arg(long, default_value_t = 4)]
    validators: usize,
    /// Nodes that follow the chain without voting (they serve RPC and accept transactions).
    #[arg(long, default_value_t = 0)]
    full_nodes: usize,
    #[arg(long, default_value = "shutong-local")]
    chain_id: String,
    /// RPC ports are BASE+2i, p2p ports BASE+2i+1; 0 picks free ports.
    #[arg(long, default_value_t = 26600)]
    base_port: u16,
    #[arg(long, default_value_t = 200)]
    block_interval_ms: u64,
    /// Departments on the governance committee (keys/admin.json, keys/committee-1.json, ...).
    #[arg(long, default_value_t = 3)]
    committee: usize,
    /// How many of them must vote for a proposal.
    #[arg(long, default_value_t = 2)]
    committee_threshold: u32,
    /// Nodes dial each other directly, without the link proxy (no link faults): only to
    /// calibrate the proxy against direct links.
    #[arg(long)]
    direct: bool,
    /// The chain's crypto suite: ed25519-blake3, or sm2-sm3 (国密).
    #[arg(long, default_value = "ed25519-blake3", value_parser = parse_suite)]
    suite: shutong_types::Suite,
    /// A test chain whose nodes prune what is older than this many seconds (its genesis
    /// lowers the legal minimum, 180 days, to it). Only for trying pruning out.
    #[arg(long)]
    retention_secs: Option<u64>,
}

/// A suite by its name, as genesis files write it.
pub(crate) fn parse_suite(name: &str) -> Result<shutong_types::Suite, String> {
    shutong_types::Suite::from_name(name).ok_or_else(|| {
        let names: Vec<&str> = shutong_types::Suite::ALL.iter().map(|s| s.name()).collect();
        format!("unknown crypto suite {name:?}; one of {}", names.join(", "))
    })
}

impl TestnetParams {
    fn generate(self) -> anyhow::Result<shutong_testnet::layout::Layout> {
        let dir = self.dir.dir;
        let params = shutong_testnet::layout::Params {
            validators: self.validators,
            full_nodes: self.full_nodes,
            chain_id: self.chain_id,
            base_port: self.base_port,
            block_interval_ms: self.block_interval_ms,
            committee: self.committee,
            committee_threshold: self.committee_threshold,
            direct: self.direct,
            suite: self.suite,
            retention_secs: self.retention_secs,
        };
        shutong_testnet::layout::Layout::generate(&dir, &params)
    }
}

#[derive(Clone, Copy, clap::ValueEnum)]
pub(crate) enum LinkStateArg {
    Up,
    Held,
    Reset,
}

#[derive(Args)]
pub(crate) struct TestnetDir {
    /// Where the testnet's homes and layout live.
    #[arg(long, default_value = ".shutong-testnet")]
    dir: PathBuf,
}

pub(crate) fn rpc_url(addr: std::net::SocketAddr) -> String {
    format!("http://{addr}")
}

pub(crate) async fn run(command: TestnetCommand, ctx: &Ctx) -> Shown {
    use shutong_testnet::layout::{self as localnet, Layout};
    let binary = std::env::current_exe().context("cannot find the shutong binary")?;
    match command {
        TestnetCommand::Init(params) => {
            let dir = params.dir.dir.clone();
            let layout = params.generate()?;
            let full = layout.nodes.iter().filter(|n| n.full_node).count();
            let validators = layout.nodes.len() - full;
            let json = serde_json::json!({
                "dir": dir, "validators": validators, "full_nodes": full, "admin_key": layout.admin_key,
            });
            let text = format!(
                "created {validators} validators and {full} full nodes in {}; admin key {}",
                dir.display(),
                layout.admin_key.display()
            );
            shown(json, text)
        }
        TestnetCommand::Up(params) => {
            let dir = params.dir.dir.clone();
            let mut layout = if Layout::path(&dir).exists() { Layout::load(&dir)? } else { params.generate()? };
            localnet::ensure_proxy(&binary, &dir, &mut layout)?;
            for node in &mut layout.nodes {
                if node.pid.is_some_and(localnet::alive) {
                    continue;
                }
                node.pid = Some(localnet::spawn(&binary, node)?);
            }
            layout.save(&dir)?;
            // Up means finalizing: every node (full nodes too) has committed a block.
            let bar = ctx.spinner("waiting for every node to commit a block");
            let deadline = std::time::Instant::now() + Duration::from_secs(60);
            for node in &layout.nodes {
                bar.set_message(format!("waiting for {} to commit a block", node.name));
                let client = Client::new(&rpc_url(node.rpc))?;
                loop {
                    match client.status().await {
                        Ok(status) if status.height >= 1 => break,
                        _ if std::time::Instant::now() > deadline => {
                            bar.finish_and_clear();
                            bail!(
                                "{} has not committed a block after 60 s; its log is {}",
                                node.name,
                                node.home.join("node.log").display()
                            )
                        }
                        _ => tokio::time::sleep(Duration::from_millis(100)).await,
                    }
                }
            }
            bar.finish_and_clear();
            let (mut json, mut text) = testnet_status(&layout, &mut Sample::default()).await?;
            json["admin_key"] = serde_json::json!(layout.admin_key);
            text.push_str(&format!("\nadmin key {}", layout.admin_key.display()));
            shown(json, text)
        }
        TestnetCommand::Status { dir, watch, interval_ms } => {
            let layout = Layout::load(&dir.dir)?;
            let interval = Duration::from_millis(interval_ms);
            let mut sample = Sample::default();
            if !watch {
                // Two looks half a second apart give the committed rate.
                testnet_status(&layout, &mut sample).await?;
                tokio::time::sleep(Duration::from_millis(500)).await;
                let (json, text) = testnet_status(&layout, &mut sample).await?;
                return shown(json, text);
            }
            let terminal = std::io::IsTerminal::is_terminal(&std::io::stdout());
            loop {
                let (json, text) = testnet_status(&layout, &mut sample).await?;
                use std::io::Write;
                let shown = if ctx.globals.output == crate::context::Output::Json {
                    writeln!(std::io::stdout(), "{json}")
                } else {
                    // Clear the screen and redraw in place on a terminal; append otherwise.
                    let clear = if terminal { "\x1b[2J\x1b[H" } else { "" };
                    writeln!(std::io::stdout(), "{clear}{text}\n(every {interval_ms} ms; Ctrl-C to stop)")
                };
                if shown.is_err() {
                    // Whoever read the view has gone (a closed pipe).
                    return Ok(Outcome::Done);
                }
                tokio::select! {
                    _ = tokio::time::sleep(interval) => {}
                    _ = tokio::signal::ctrl_c() => return Ok(Outcome::Done),
                }
            }
        }
        TestnetCommand::Kill { dir, node } => testnet_stop(&dir, node, true),
        TestnetCommand::Restart { dir, node, kill } => {
            let Outcome::Show(stopped, _) = testnet_stop(&dir, node, kill)? else { return Ok(Outcome::Done) };
            let mut layout = Layout::load(&dir.dir)?;
            let entry = &mut layout.nodes[node];
            let pid = localnet::spawn(&binary, entry)?;
            entry.pid = Some(pid);
            let name = entry.name.clone();
            layout.save(&dir.dir)?;
            shown(
                serde_json::json!({"node": name, "stopped": stopped, "pid": pid}),
                format!("restarted {name} (pid {pid})"),
            )
        }
        TestnetCommand::Down { dir, purge } => {
            let dir = dir.dir;
            let mut layout = Layout::load(&dir)?;
            let mut stopped = Vec::new();
            for node in &mut layout.nodes {
                if let Some(pid) = node.pid.take().filter(|pid| localnet::alive(*pid)) {
                    localnet::stop(pid, Duration::from_secs(10));
                    stopped.push(node.name.clone());
                }
            }
            if let Some(pid) = layout.proxy_pid.take().filter(|pid| localnet::alive(*pid)) {
                localnet::stop(pid, Duration::from_secs(10));
                stopped.push("link proxy".into());
            }
            let mut text =
                format!("stopped {}", if stopped.is_empty() { "nothing".into() } else { stopped.join(", ") });
            if purge {
                std::fs::remove_dir_all(&dir).with_context(|| format!("cannot remove {}", dir.display()))?;
                text.push_str(&format!("\nremoved {}", dir.display()));
            } else {
                layout.save(&dir)?;
                text.push_str(&format!(
                    "\ndata kept in {}; `shutong testnet up --dir {}` starts it again",
                    dir.display(),
                    dir.display()
                ));
            }
            shown(serde_json::json!({"stopped": stopped, "purged": purge}), text)
        }
        TestnetCommand::Stop { dir, node, kill } => testnet_stop(&dir, node, kill),
        TestnetCommand::Proxy { dir } => {
            shutong_testnet::proxy::run_for(&dir.dir).await?;
            Ok(Outcome::Done)
        }
        TestnetCommand::Link { dir, from, to, both_ways, delay_ms, jitter_ms, bandwidth, state, heal } => {
            use shutong_testnet::proxy::{LinkFaults, LinkFile, LinkState};
            let layout = Layout::load(&dir.dir)?;
            let count = layout.nodes.len();
            for (flag, node) in [("--from", from), ("--to", to)] {
                if node.is_some_and(|n| n >= count) {
                    bail!("{flag} must be below {count}, the testnet's number of nodes");
                }
            }
            let mut file = LinkFile::load(&dir.dir)?;
            if heal {
                file = LinkFile::default();
            } else {
                let state = match state {
                    LinkStateArg::Up => LinkState::Up,
                    LinkStateArg::Held => LinkState::Held,
                    LinkStateArg::Reset => LinkState::Reset,
                };
                let faults = LinkFaults {
                    delay: Duration::from_millis(delay_ms),
                    jitter: Duration::from_millis(jitter_ms),
                    bandwidth,
                    state,
                };
                let pick = |n: Option<usize>| n.map_or_else(|| (0..count).collect::<Vec<_>>(), |n| vec![n]);
                for a in pick(from) {
                    for b in pick(to).into_iter().filter(|b| *b != a) {
                        file.set(a, b, faults);
                        if both_ways {
                            file.set(b, a, faults);
                        }
                    }
                }
            }
            file.save(&dir.dir)?;
            let text = format!("{} directions with faults (the proxy applies them within 200 ms)", file.links.len());
            shown(serde_json::to_value(&file)?, text)
        }
        TestnetCommand::Load { dir, rate, seconds, sweep, out } => {
            shutong_testnet::loadgen::run(shutong_testnet::loadgen::Args { dir: dir.dir, rate, seconds, sweep, out })
                .await?;
            Ok(Outcome::Done)
        }
        TestnetCommand::Bench { validators, seconds, start_rate, out, append, binary: other, suite } => {
            let binary = other.unwrap_or(binary);
            let args = shutong_testnet::bench::Args { binary, validators, seconds, start_rate, out, append, suite };
            shutong_testnet::bench::run(args).await?;
            Ok(Outcome::Done)
        }
        TestnetCommand::Wan { validators, delays_ms, seconds, sweep_seconds, direct, out } => {
            let args =
                shutong_testnet::wan::Args { binary, validators, delays_ms, seconds, sweep_seconds, direct, out };
            shutong_testnet::wan::run(args).await?;
            Ok(Outcome::Done)
        }
        TestnetCommand::Soak { minutes, rate, validators, round_secs, seed, out, retention_secs } => {
            let args = shutong_testnet::soak::Args {
                binary,
                minutes,
                rate,
                validators,
                round_secs,
                seed,
                out,
                retention_secs,
            };
            shutong_testnet::soak::run(args).await?;
            Ok(Outcome::Done)
        }
        TestnetCommand::Start { dir, node } => {
            let mut layout = Layout::load(&dir.dir)?;
            localnet::ensure_proxy(&binary, &dir.dir, &mut layout)?;
            let count = layout.nodes.len();
            let entry = layout.nodes.get_mut(node).with_context(|| format!("--node must be below {count}"))?;
            if entry.pid.is_some_and(localnet::alive) {
                bail!("{} is already running", entry.name);
            }
            let pid = localnet::spawn(&binary, entry)?;
            entry.pid = Some(pid);
            let name = entry.name.clone();
            layout.save(&dir.dir)?;
            shown(serde_json::json!({"node": name, "pid": pid}), format!("started {name} (pid {pid})"))
        }
    }
}

/// Stops (or kills) one node of the testnet in `dir`.
pub(crate) fn testnet_stop(dir: &TestnetDir, node: usize, kill: bool) -> Shown {
    use shutong_testnet::layout::{self as localnet, Layout};
    let mut layout = Layout::load(&dir.dir)?;
    let count = layout.nodes.len();
    let entry = layout.nodes.get_mut(node).with_context(|| format!("--node must be below {count}"))?;
    let pid = entry
        .pid
        .take()
        .filter(|pid| localnet::alive(*pid))
        .with_context(|| format!("{} is not running; `shutong testnet status` shows which are", entry.name))?;
    if kill {
        localnet::signal(pid, libc::SIGKILL);
    } else {
        localnet::stop(pid, Duration::from_secs(10));
    }
    let name = entry.name.clone();
    layout.save(&dir.dir)?;
    let verb = if kill { "killed" } else { "stopped" };
    shown(serde_json::json!({"node": name, "pid": pid, "killed": kill}), format!("{verb} {name} (pid {pid})"))
}

/// Each node's committed-transaction count when last looked at, for the rate.
#[derive(Default)]
pub(crate) struct Sample(std::collections::HashMap<String, (std::time::Instant, f64)>);

pub(crate) async fn testnet_status(
    layout: &shutong_testnet::layout::Layout,
    sample: &mut Sample,
) -> anyhow::Result<(serde_json::Value, String)> {
    let mut rows = Vec::new();
    let mut text = format!(
        "chain {}\n{:<13} {:>7} {:>7} {:>7} {:>5} {:>8} {:>8} {:>9}  {:<16}  {}",
        layout.chain_id,
        "node",
        "pid",
        "height",
        "view",
        "peers",
        "mempool",
        "tx/s",
        "finality",
        "last block",
        "state root"
    );
    for node in &layout.nodes {
        let running = node.pid.filter(|pid| shutong_testnet::layout::alive(*pid));
        let client = Client::new(&rpc_url(node.rpc))?;
        let (status, metrics) = match running {
            Some(_) => (client.status().await.ok(), client.metrics().await.ok()),
            None => (None, None),
        };
        let now = std::time::Instant::now();
        let committed = metrics.as_ref().and_then(|m| m.get("shutong_txs_committed_total").copied());
        let rate = match (committed, sample.0.get(&node.name)) {
            (Some(total), Some((then, before))) if total >= *before => {
                Some((total - before) / now.duration_since(*then).as_secs_f64().max(0.001))
            }
            _ => None,
        };
        if let Some(total) = committed {
            sample.0.insert(node.name.clone(), (now, total));
        }
        // Mean finality over the node's life, from the histogram's sum and count.
        let finality_ms = metrics.as_ref().and_then(|m| {
            let (sum, count) = (m.get("shutong_finality_seconds_sum")?, m.get("shutong_finality_seconds_count")?);
            (*count > 0.0).then(|| 1000.0 * sum / count)
        });
        let pid = running.map_or("-".to_string(), |p| p.to_string());
        match &status {
            Some(s) => text.push_str(&format!(
                "\n{:<13} {:>7} {:>7} {:>7} {:>5} {:>8} {:>8} {:>9}  {:<16}  {}",
                node.name,
                pid,
                s.height,
                s.consensus_view,
                s.peers,
                s.mempool_txs,
                rate.map_or("-".into(), |r| format!("{r:.0}")),
                finality_ms.map_or("-".into(), |f| format!("{f:.0} ms")),
                &s.block_hash.to_string()[..16],
                &s.state_root.to_string()[..16]
            )),
            None => text.push_str(&format!(
                "\n{:<13} {:>7} {}",
                node.name,
                pid,
                if running.is_some() { "not answering" } else { "stopped" }
            )),
        }
        rows.push(serde_json::json!({
            "name": node.name, "full_node": node.full_node, "pid": running, "rpc": rpc_url(node.rpc), "p2p": node.p2p, "status": status,
            "committed_tps": rate, "mean_finality_ms": finality_ms,
        }));
    }
    Ok((serde_json::json!({"chain_id": layout.chain_id, "nodes": rows}), text))
}
