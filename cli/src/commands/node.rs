//! `shutong init` and `shutong node run`: a node's home, and the node itself.

use crate::context::{Shown, shown};
use anyhow::Context;
use clap::{Args, Subcommand};
use shutong_execution::genesis::{Genesis, GenesisValidator};
use shutong_node::config::Config;
use shutong_node::{CONFIG_FILE, GENESIS_FILE, Node};
use shutong_sdk::keyfile;
use shutong_types::{AccountId, Keypair};
use std::path::{Path, PathBuf};

#[derive(Args)]
pub(crate) struct InitArgs {
    #[arg(long)]
    home: PathBuf,
    #[arg(long)]
    chain_id: String,
    /// A governance committee member's account (hex), the seat of a department of its own
    /// (`committee-0`, `committee-1`, ...); repeatable. Without one, a committee of one is
    /// created with its key at HOME/keys/admin.json.
    #[arg(long = "admin")]
    admins: Vec<AccountId>,
    /// How many of the committee's departments must vote for a proposal (default: a
    /// majority).
    #[arg(long)]
    threshold: Option<u32>,
    #[arg(long, default_value = "127.0.0.1:26657")]
    rpc_listen: std::net::SocketAddr,
    #[arg(long, default_value = "127.0.0.1:26656")]
    p2p_listen: std::net::SocketAddr,
    #[arg(long, default_value_t = 200)]
    block_interval_ms: u64,
    /// The chain's crypto suite: ed25519-blake3, or sm2-sm3 (国密).
    #[arg(long, default_value = "ed25519-blake3", value_parser = super::testnet::parse_suite)]
    suite: shutong_types::Suite,
}

#[derive(Subcommand)]
pub(crate) enum NodeCommand {
    /// Run the node in the foreground until interrupted.
    Run {
        #[arg(long)]
        home: PathBuf,
    },
}

/// Where `node init` writes an SM node's transport key, relative to its home.
const TRANSPORT_KEY_FILE: &str = "keys/transport.json";

pub(crate) fn init(args: InitArgs) -> Shown {
    let home = &args.home;
    anyhow::ensure!(
        !home.join(GENESIS_FILE).exists(),
        "{} already holds a node; choose another --home",
        home.display()
    );
    std::fs::create_dir_all(home.join("keys")).with_context(|| format!("cannot create {}", home.display()))?;
    let mut cfg = Config::default();
    cfg.rpc.listen = args.rpc_listen;
    cfg.p2p.listen = args.p2p_listen;
    cfg.consensus.block_interval_ms = args.block_interval_ms;
    cfg.validate()?;
    let validator = Keypair::generate(args.suite);
    keyfile::write(&home.join(&cfg.key_file), &validator, false)?;
    // On an SM chain the node's p2p identity is an ed25519 transport key bound to its key.
    let mut transport = None;
    if args.suite == shutong_types::Suite::Sm2Sm3 {
        let key = Keypair::generate(shutong_types::Suite::Ed25519Blake3);
        let file = PathBuf::from(TRANSPORT_KEY_FILE);
        keyfile::write(&home.join(&file), &key, false)?;
        cfg.p2p.transport_key_file = Some(file);
        transport = Some(shutong_types::transport::Transport::bind(&args.chain_id, &validator, &key.public()));
    }
    let mut admins = args.admins.clone();
    let mut admin_file = None;
    if admins.is_empty() {
        let admin = Keypair::generate(args.suite);
        let path = home.join("keys/admin.json");
        keyfile::write(&path, &admin, false)?;
        admins.push(admin.account());
        admin_file = Some(path);
    }
    let now_ms = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH)?.as_millis() as u64;
    let mut genesis = Genesis::new(
        &args.chain_id,
        now_ms,
        vec![GenesisValidator { transport, ..GenesisValidator::new("validator-0", validator.public()) }],
        shutong_execution::genesis::CommitteeMember::departments(&admins),
    );
    if let Some(threshold) = args.threshold {
        genesis.governance_threshold = threshold;
    }
    genesis.validate()?;
    std::fs::write(home.join(GENESIS_FILE), serde_json::to_string_pretty(&genesis)?)?;
    std::fs::write(home.join(CONFIG_FILE), cfg.to_toml())?;
    let json = serde_json::json!({"home": home, "chain_id": genesis.chain_id, "validator": validator.public(), "admin_key": admin_file});
    let mut text =
        format!("initialised {} for chain {}\nvalidator {}", home.display(), genesis.chain_id, validator.public());
    if let Some(path) = &admin_file {
        text.push_str(&format!("\nadmin key {}", path.display()));
    }
    shown(json, text)
}

pub(crate) async fn run(home: &Path) -> anyhow::Result<()> {
    let cfg = Config::load(&home.join(CONFIG_FILE))?;
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .or_else(|_| tracing_subscriber::EnvFilter::try_new(&cfg.log.filter))
        .context("log.filter is not a valid tracing filter")?;
    let ansi = std::io::IsTerminal::is_terminal(&std::io::stderr());
    let builder = tracing_subscriber::fmt().with_env_filter(filter).with_target(false).with_ansi(ansi);
    if cfg.log.format == "json" {
        builder.json().init();
    } else {
        builder.init();
    }
    let node = Node::start(home).await?;
    let mut terminate = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())?;
    let failed = node.failed();
    let failure = tokio::select! {
        _ = tokio::signal::ctrl_c() => None,
        _ = terminate.recv() => None,
        reason = failed => Some(reason),
    };
    tracing::info!("shutting down");
    node.stop().await;
    match failure {
        // Exits non-zero: a supervisor must not restart it on a disk that fails writes.
        Some(reason) => anyhow::bail!("the node stopped: {reason}"),
        None => Ok(()),
    }
}
