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
    /// The chain to create (a chain of one validator, made here). Not with --genesis.
    #[arg(long, required_unless_present = "genesis", conflicts_with = "genesis")]
    chain_id: Option<String>,
    /// Join a chain whose genesis the departments assembled (`shutong genesis new`): the
    /// home gets this genesis, the validator key in --key, and --peer for each other node.
    #[arg(long, requires = "key")]
    genesis: Option<PathBuf>,
    /// With --genesis: this node's validator key file (copied into the home).
    #[arg(long, requires = "genesis")]
    key: Option<PathBuf>,
    /// With --genesis, on an sm2-sm3 chain: this node's ed25519 transport key file, the one
    /// its genesis entry binds (copied into the home).
    #[arg(long, requires = "genesis")]
    transport_key: Option<PathBuf>,
    /// With --genesis: another node to dial, as PUBLIC_KEY@IP:PORT (its p2p identity: its
    /// transport key on an sm2-sm3 chain). Repeatable.
    #[arg(long = "peer", requires = "genesis")]
    peers: Vec<String>,
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
    /// Copy the node's database into DIR, encrypted under the passphrase in
    /// SHUTONG_BACKUP_PASSPHRASE (ChaCha20-Poly1305 under argon2id, or SM4-GCM under
    /// PBKDF2-HMAC-SM3 on an sm2-sm3 chain). A running node takes the copy itself, through
    /// the admin socket in its home, without stopping.
    Backup {
        #[arg(long)]
        home: PathBuf,
        /// A new or empty directory.
        #[arg(long)]
        to: PathBuf,
    },
    /// Bring a backup back into HOME, whose node is stopped and whose database directory
    /// is absent or empty. The backup is checked whole first: its chain, format, every file.
    Restore {
        #[arg(long)]
        from: PathBuf,
        #[arg(long)]
        home: PathBuf,
        /// EPOCH:VIEW: needed only when HOME has no signing.json (a new machine). The node
        /// will not vote at or below that view; take it from another validator's
        /// `shutong status` (epoch and consensus view) at the time of the restore.
        #[arg(long, value_parser = parse_floor)]
        signing_floor: Option<(u64, u64)>,
    },
}

fn parse_floor(text: &str) -> Result<(u64, u64), String> {
    let (epoch, view) = text.split_once(':').ok_or("expected EPOCH:VIEW, e.g. 0:1234")?;
    let number = |what: &str, s: &str| s.parse::<u64>().map_err(|e| format!("{what} {s:?}: {e}"));
    Ok((number("epoch", epoch)?, number("view", view)?))
}

/// The backup passphrase, from its environment variable.
fn backup_passphrase() -> anyhow::Result<String> {
    let env = shutong_node::backup::PASSPHRASE_ENV;
    match std::env::var(env) {
        Ok(passphrase) if !passphrase.is_empty() => Ok(passphrase),
        _ => anyhow::bail!("set {env} to the backup's passphrase (kept apart from the backup)"),
    }
}

pub(crate) fn backup(home: &Path, to: &Path) -> Shown {
    let passphrase = backup_passphrase()?;
    let done = shutong_node::backup::backup(home, to, &passphrase)?;
    let m = &done.manifest;
    let bytes: u64 = m.files.iter().map(|f| f.bytes).sum();
    let json = serde_json::json!({
        "to": to, "online": done.online, "chain_id": m.chain_id, "height": m.height,
        "block_hash": m.hash, "state_root": m.state_root, "files": m.files.len(), "bytes": bytes,
    });
    let text = format!(
        "backed up {} ({}) at height {} (block {}, state root {}) into {}: {} files, {} bytes{}",
        home.display(),
        m.chain_id,
        m.height,
        m.hash,
        m.state_root,
        to.display(),
        m.files.len(),
        bytes,
        if done.online { ", taken by the running node" } else { "" }
    );
    shown(json, text)
}

pub(crate) fn restore(from: &Path, home: &Path, signing_floor: Option<(u64, u64)>) -> Shown {
    let passphrase = backup_passphrase()?;
    let done = shutong_node::backup::restore(from, home, &passphrase, signing_floor)?;
    let m = &done.manifest;
    let json = serde_json::json!({
        "home": home, "chain_id": m.chain_id, "height": m.height, "block_hash": m.hash,
        "state_root": m.state_root, "signing_mark": {"epoch": done.mark.0, "view": done.mark.1},
    });
    let text = format!(
        "restored {} at height {} (block {}, state root {}); the validator votes only above view {} of epoch {} \
         it may have signed in before; start the node to sync on",
        home.display(),
        m.height,
        m.hash,
        m.state_root,
        done.mark.1,
        done.mark.0
    );
    shown(json, text)
}

/// Where `node init` writes an SM node's transport key, relative to its home.
const TRANSPORT_KEY_FILE: &str = "keys/transport.json";

/// `PUBLIC_KEY@IP:PORT`.
fn peer(arg: &str) -> anyhow::Result<shutong_node::config::PeerConfig> {
    let (key, address) = arg.split_once('@').with_context(|| format!("--peer {arg}: expected PUBLIC_KEY@IP:PORT"))?;
    let public_key = key.parse().map_err(|e| anyhow::anyhow!("--peer {arg}: {key:?} is not a public key: {e}"))?;
    let address = address.parse().map_err(|e| anyhow::anyhow!("--peer {arg}: {address:?} is not IP:PORT: {e}"))?;
    Ok(shutong_node::config::PeerConfig { public_key, address })
}

/// Copies a key file into the home, readable by its owner only (it may be sealed: it is
/// copied as it is).
fn copy_key(from: &Path, home: &Path, to: &Path) -> anyhow::Result<()> {
    let target = home.join(to);
    std::fs::copy(from, &target).with_context(|| format!("cannot copy {} to {}", from.display(), target.display()))?;
    std::fs::set_permissions(&target, std::os::unix::fs::PermissionsExt::from_mode(0o600))?;
    Ok(())
}

/// `init --genesis`: a home for one department's node on an assembled genesis.
fn init_from_genesis(args: &InitArgs, genesis_file: &Path, key_file: &Path) -> Shown {
    let home = &args.home;
    let genesis = Genesis::load(genesis_file)?;
    let key = keyfile::read(key_file)?;
    anyhow::ensure!(
        key.suite() == genesis.suite,
        "--key {} is an {} key, and chain {} is {}",
        key_file.display(),
        key.suite(),
        genesis.chain_id,
        genesis.suite
    );
    let validator = genesis.validators.iter().find(|v| v.public_key == key.public());
    let mut cfg = Config::default();
    cfg.rpc.listen = args.rpc_listen;
    cfg.p2p.listen = args.p2p_listen;
    cfg.consensus.block_interval_ms = args.block_interval_ms;
    cfg.p2p.peers = args.peers.iter().map(|p| peer(p)).collect::<anyhow::Result<_>>()?;
    match (&args.transport_key, validator.and_then(|v| v.transport.as_ref())) {
        (Some(file), bound) => {
            let transport = keyfile::read(file)?;
            if let Some(bound) = bound {
                anyhow::ensure!(
                    bound.key == transport.public(),
                    "--transport-key {} is {}, and genesis binds {} to this validator",
                    file.display(),
                    transport.public(),
                    bound.key
                );
            }
            cfg.p2p.transport_key_file = Some(PathBuf::from(TRANSPORT_KEY_FILE));
        }
        (None, Some(bound)) => anyhow::bail!(
            "genesis binds transport key {} to this validator: pass its key file with --transport-key",
            bound.key
        ),
        (None, None) => anyhow::ensure!(
            genesis.suite == shutong_types::Suite::Ed25519Blake3,
            "an sm2-sm3 node needs its ed25519 transport key: pass --transport-key"
        ),
    }
    cfg.validate()?;
    std::fs::create_dir_all(home.join("keys")).with_context(|| format!("cannot create {}", home.display()))?;
    copy_key(key_file, home, &cfg.key_file)?;
    if let Some(file) = &args.transport_key {
        copy_key(file, home, Path::new(TRANSPORT_KEY_FILE))?;
    }
    std::fs::write(home.join(GENESIS_FILE), serde_json::to_string_pretty(&genesis)?)?;
    std::fs::write(home.join(CONFIG_FILE), cfg.to_toml())?;
    let role = match validator {
        Some(v) => format!("validator {}", v.name),
        None => "a full node (its key is not a genesis validator)".to_string(),
    };
    let json = serde_json::json!({
        "home": home, "chain_id": genesis.chain_id, "genesis_hash": genesis.hash(),
        "key": key.public(), "validator": validator.map(|v| &v.name), "peers": cfg.p2p.peers.len(),
    });
    let text = format!(
        "initialised {} for chain {} (genesis hash {}) as {role}, dialling {} peers",
        home.display(),
        genesis.chain_id,
        genesis.hash(),
        cfg.p2p.peers.len()
    );
    shown(json, text)
}

pub(crate) fn init(args: InitArgs) -> Shown {
    let home = &args.home;
    anyhow::ensure!(
        !home.join(GENESIS_FILE).exists(),
        "{} already holds a node; choose another --home",
        home.display()
    );
    if let (Some(genesis), Some(key)) = (&args.genesis, &args.key) {
        return init_from_genesis(&args, genesis, key);
    }
    let chain_id = args.chain_id.clone().context("--chain-id is needed without --genesis")?;
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
        transport = Some(shutong_types::transport::Transport::bind(&chain_id, &validator, &key.public()));
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
        &chain_id,
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
