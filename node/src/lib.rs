//! Shutong's running node: config, mempool, metrics, the consensus driver, the full-node follower and the JSON-RPC server.
//!
//! [`Node::start`] opens storage (writing genesis on first start), starts the consensus
//! driver ([`driver`], an actor on its own thread) or the full node's follower, the network
//! task and the JSON-RPC server on tokio, and returns a handle that stops them.

pub mod admin;
pub mod backup;
pub mod chain;
pub mod clock;
pub mod config;
pub mod devchain;
pub mod disk;
pub mod driver;
pub mod error;
pub mod evidence;
pub mod follower;
pub mod mempool;
pub mod metrics;
pub mod role;
pub mod rpc;
pub mod sandbox;
pub mod signing_mark;
pub mod snapshots;
pub mod state_sync;
pub mod view;

use config::Config;
pub use error::Error;
use shutong_execution::genesis::Genesis;
use shutong_execution::{audit_log, epochs, executor, state_tree};
use shutong_p2p::network;
use shutong_storage::{Commit, Storage, Tip};
use shutong_types::{Keypair, Roots, Signer, merkle_root};
use shutong_vm::{Vm, VmConfig};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

/// File names inside a node's home directory.
pub const CONFIG_FILE: &str = "config.toml";
pub const GENESIS_FILE: &str = "genesis.json";

/// A running node.
#[derive(Debug)]
pub struct Node {
    pub rpc_addr: SocketAddr,
    rpc: jsonrpsee::server::ServerHandle,
    mailbox: driver::Mailbox,
    chain: Option<std::thread::JoinHandle<()>>,
    network: tokio::task::JoinHandle<()>,
    storage: Arc<Storage>,
    status: Arc<chain::ChainStatus>,
    /// The operator's control socket ([`admin`]) and its path.
    admin: tokio::task::JoinHandle<()>,
    admin_socket: PathBuf,
}

/// Resolves `path` against the home directory unless it is absolute.
pub fn in_home(home: &Path, path: &Path) -> PathBuf {
    if path.is_absolute() { path.to_path_buf() } else { home.join(path) }
}

/// Writes genesis into an empty database, or checks that a used one belongs to `genesis`.
pub fn init_storage(storage: &Storage, genesis: &Genesis) -> Result<Tip, Error> {
    let block = genesis.block();
    if let Some(tip) = storage.tip() {
        let stored = storage.block(0).ok_or(Error::NoGenesisBlock)?;
        if stored.header != block.header {
            return Err(Error::OtherGenesis { chain_id: stored.header.chain_id });
        }
        return Ok(tip);
    }
    let writes = genesis.state();
    let tree = state_tree::update(&state_tree::MemoryTree::new(genesis.suite), 0, &writes)?;
    let log = audit_log::append(&audit_log::MemoryTiles::new(genesis.suite), 0, &[])?;
    let receipts = merkle_root::<[u8; 32]>(genesis.suite, &[]);
    let roots = Roots { state: tree.root, receipts, audit: log.root, audit_size: log.size };
    let tip = Tip::after(&block.header, roots);
    storage.commit(Commit {
        block: &block,
        certificate: None,
        receipts: &[],
        writes: &writes,
        tree: &tree,
        log: &log,
        tip,
    })?;
    Ok(tip)
}

/// Admits again the transactions this node accepted before it stopped and has not seen
/// committed; forgets those now refused (committed or expired meanwhile).
pub fn readmit_pending(storage: &Storage, view: &view::NodeView, mempool: &Mutex<mempool::Mempool>) {
    let pending = storage.pending();
    if pending.is_empty() {
        return;
    }
    let mut pool = mempool.lock().expect("mempool lock poisoned");
    let (mut kept, mut dropped) = (0, 0);
    for (id, bytes) in pending {
        match pool.admit(&bytes, view) {
            Ok(_) => kept += 1,
            Err(_) => {
                if let Err(err) = storage.forget_pending(&id) {
                    tracing::warn!(%err, "a refused pending transaction stays in pending_txs");
                }
                dropped += 1;
            }
        }
    }
    tracing::info!(kept, dropped, "pending transactions from before the restart admitted again");
}

/// This node's p2p identity: the ed25519 transport key in `p2p.transport_key_file` (required
/// on an `sm2-sm3` chain and for a key in a token), else its own `ed25519-blake3` key file's.
fn transport_key(home: &Path, cfg: &Config, genesis: &Genesis, key: Option<&Keypair>) -> Result<Keypair, Error> {
    let file = match (&cfg.p2p.transport_key_file, key) {
        (None, Some(key)) if genesis.suite == shutong_types::Suite::Ed25519Blake3 => return Ok(key.clone()),
        (None, _) => return Err(Error::NoTransportKey),
        (Some(file), _) => file,
    };
    let path = in_home(home, file);
    let transport = shutong_api::keyfile::read(&path)?;
    if transport.suite() != shutong_types::Suite::Ed25519Blake3 {
        return Err(Error::TransportKeySuite { path, suite: transport.suite() });
    }
    Ok(transport)
}

/// How many RPC queries may run contract code at once.
const QUERIES_AT_ONCE: u32 = 32;
/// The consensus thread executes blocks: its stack is far above the VM's native backstop.
const CONSENSUS_STACK_BYTES: usize = 16 << 20;

impl Node {
    /// Starts a node from its home directory, signing with the key `key_uri` names in a
    /// token, else with the key in `key_file`.
    pub async fn start(home: &Path) -> Result<Node, Error> {
        let cfg = Config::load(&home.join(CONFIG_FILE))?;
        let genesis = Genesis::load(&home.join(GENESIS_FILE))?;
        match cfg.key_uri.as_deref() {
            Some(uri) => {
                let uri = uri.parse().map_err(crate::config::ConfigError::KeyUri)?;
                genesis.validate()?;
                let signer = shutong_api::pkcs11::Pkcs11Signer::open(&uri)?;
                tracing::info!(key = %signer.public(), token = %uri.token, object = %uri.object, "validator key in a PKCS#11 token");
                let transport = transport_key(home, &cfg, &genesis, None)?;
                Node::start_signing(home, cfg, genesis, Arc::new(signer), transport).await
            }
            None => {
                let key = shutong_api::keyfile::read(&in_home(home, &cfg.key_file))?;
                Node::start_with(home, cfg, genesis, key).await
            }
        }
    }

    /// Starts a node signing with `key`, a key file's key.
    pub async fn start_with(home: &Path, cfg: Config, genesis: Genesis, key: Keypair) -> Result<Node, Error> {
        cfg.validate()?;
        genesis.validate()?;
        let transport = transport_key(home, &cfg, &genesis, Some(&key))?;
        Node::start_signing(home, cfg, genesis, Arc::new(key), transport).await
    }

    /// Starts a node whose validator key is `key` (in memory or in a token) and whose p2p
    /// identity is `transport`.
    pub async fn start_signing(
        home: &Path,
        cfg: Config,
        genesis: Genesis,
        key: Arc<dyn Signer>,
        transport: Keypair,
    ) -> Result<Node, Error> {
        cfg.validate()?;
        genesis.validate()?;
        // Everything a bad config can break is checked before the database is opened.
        let tls = match &cfg.rpc.tls {
            Some(tls) => Some(rpc::tls_acceptor(&in_home(home, &tls.cert_file), &in_home(home, &tls.key_file))?),
            None => None,
        };
        let mark =
            signing_mark::SigningMark::open(&home.join(signing_mark::SIGNING_FILE), &genesis.chain_id, key.public())?;
        cfg.storage.check_retention(genesis.retention_min_secs)?;
        let retention = match cfg.storage.retention_secs()? {
            None => shutong_storage::Retention::Archive,
            Some(secs) => shutong_storage::Retention::Window { window_ms: secs.saturating_mul(1_000) },
        };
        if cfg.storage.retired_state_history_blocks.is_some() {
            tracing::warn!(
                "storage.state_history_blocks is retired and ignored: retention is set in time (storage.retention)"
            );
        }
        let storage = Arc::new(Storage::open_with(&in_home(home, &cfg.data_dir), genesis.suite, retention)?);
        let storage_handle = Arc::clone(&storage);
        let tip = init_storage(&storage, &genesis)?;
        tracing::info!(chain_id = %genesis.chain_id, height = tip.height, state_root = %tip.state_root, "storage open");
        // Two VMs with the same engine settings: the executor's runs one transaction at a
        // time and so never runs out of pooled instances; queries and admission checks use
        // the other, whose pool may be exhausted by load without touching consensus.
        let vm_cfg = VmConfig {
            code_cache_dir: Some(in_home(home, &cfg.data_dir).join("code-cache")),
            gas_schedule: genesis.gas_schedule,
            suite: genesis.suite,
            ..VmConfig::default()
        };
        let vm = Arc::new(Vm::new(vm_cfg.clone())?);
        let query_vm = Arc::new(Vm::new(VmConfig {
            pooled_instances: QUERIES_AT_ONCE * (shutong_vm::CALL_DEPTH_MAX as u32 + 1),
            ..vm_cfg
        })?);
        let view = view::NodeView { chain_id: genesis.chain_id.clone(), storage: Arc::clone(&storage), vm: query_vm };
        let mempool = Arc::new(Mutex::new(mempool::Mempool::new(cfg.mempool.clone())));
        readmit_pending(&storage, &view, &mempool);
        let current = epochs::validators_for(&*storage, tip.height + 1).ok_or(Error::NoGovernance)?;
        let engine_cfg = shutong_consensus::Config {
            chain_id: genesis.chain_id.clone(),
            epoch: current.epoch,
            validators: current.validators.clone(),
            timeouts: cfg.consensus.timeouts(),
        };
        let executor = executor::Executor::new(Arc::clone(&vm), storage.clone());
        let validators = current.members();
        let is_validator = current.validators.contains(&key.public());
        if let Some(me) = validators.iter().find(|m| m.key == key.public())
            && me.peer_key(&genesis.chain_id).ok() != Some(transport.public())
        {
            let bound = me.transport.map_or_else(|| "none".to_string(), |t| t.key.to_string());
            return Err(Error::TransportNotBound { key: key.public(), transport: transport.public(), bound });
        }
        // Validators are let in while they are in the set this node's state holds; listed
        // full nodes always. Genesis keys have no standing of their own.
        let allowed = cfg.p2p.full_nodes.clone();
        let peers: Vec<network::Peer> =
            cfg.p2p.peers.iter().map(|p| network::Peer { key: p.public_key, address: p.address }).collect();
        let (mailbox, inbox) = driver::mailbox();
        // Snapshot requests are answered off the consensus thread.
        let (snapshot_requests, snapshot_inbox) = std::sync::mpsc::sync_channel(snapshots::QUEUE_MAX);
        let router = snapshots::Router { consensus: mailbox.clone(), snapshots: snapshot_requests };
        if cfg.p2p.retired_fault_injection.is_some() {
            tracing::warn!(
                "p2p.fault_injection is retired and ignored: a local testnet's faults are now made by its link proxy"
            );
        }
        let (net, network) =
            network::start(&transport, &genesis.chain_id, cfg.p2p.listen, &allowed, &validators, &peers, router)?;
        let chain_status = Arc::new(chain::ChainStatus::default());
        let net_stats = Arc::clone(&net.stats);
        let net: Arc<dyn chain::NetSink> = Arc::new(net);
        let server = snapshots::Server::new(Arc::clone(&storage), Arc::clone(&net), cfg.state_sync.snapshot_interval);
        std::thread::Builder::new()
            .name("snapshots".into())
            .spawn(move || server.run(snapshot_inbox))
            .map_err(|source| Error::Thread { thread: "snapshots", source })?;
        let clock: Arc<dyn clock::Clock> = Arc::new(clock::SystemClock);
        // A full node asks its configured peers for blocks; so does a validator once a set
        // change removed it.
        let sources: Vec<_> = peers.iter().filter_map(|p| shutong_p2p::peer_id(&p.key)).collect();
        let switch = role::Switch { consensus: cfg.consensus.clone(), sources: sources.clone() };
        let role = if is_validator {
            let parts = driver::actor::Parts {
                view: view.clone(),
                key: Arc::clone(&key),
                engine: engine_cfg,
                executor,
                mempool: Arc::clone(&mempool),
                cfg: cfg.consensus.clone(),
                net,
                clock: Arc::clone(&clock),
                status: Arc::clone(&chain_status),
                disk: disk::DiskGuard::new(cfg.storage.min_free_mb),
                mark,
            };
            let mut driver = driver::Driver::new(parts).ok_or(Error::NotValidator { key: key.public() })?;
            // Recovery from the write-ahead log finishes before anything is served.
            driver.start();
            role::Role::Validator(Box::new(driver))
        } else {
            if peers.is_empty() {
                return Err(Error::FullNodeWithoutPeers { key: key.public(), epoch: current.epoch });
            }
            tracing::info!(epoch = current.epoch, "this key is not a validator's: running as a full node");
            role::Role::Follower(Box::new(follower::Follower::new(follower::Parts {
                view: view.clone(),
                key: Arc::clone(&key),
                epoch: current,
                executor,
                mempool: Arc::clone(&mempool),
                net,
                clock: Arc::clone(&clock),
                status: Arc::clone(&chain_status),
                sources,
                block_interval_ms: cfg.consensus.block_interval_ms,
                disk: disk::DiskGuard::new(cfg.storage.min_free_mb),
                mark,
            })))
        };
        let driver = move || role.run(inbox, clock, switch);
        let ctx = rpc::RpcContext {
            view,
            mempool,
            query_gas_max: cfg.rpc.query_gas_max,
            chain: Arc::clone(&chain_status),
            net: net_stats,
            exec_vm: Arc::clone(&vm),
            stale_ms: cfg.consensus.block_interval_ms.saturating_mul(20).max(10_000),
        };
        let admin_socket = home.join(admin::ADMIN_SOCKET);
        let admin = admin::serve(&admin_socket, Arc::clone(&storage_handle)).map_err(Error::io(&admin_socket))?;
        let (rpc_addr, rpc) = rpc::serve(&cfg.rpc, tls, ctx, genesis.validator_keys()).await?;
        tracing::info!(%rpc_addr, "json-rpc listening");
        let chain = std::thread::Builder::new()
            .name("consensus".into())
            .stack_size(CONSENSUS_STACK_BYTES)
            .spawn(driver)
            .map_err(|source| Error::Thread { thread: "consensus", source })?;
        Ok(Node {
            rpc_addr,
            rpc,
            mailbox,
            chain: Some(chain),
            network,
            storage: storage_handle,
            status: chain_status,
            admin,
            admin_socket,
        })
    }

    /// Stops block production and the RPC server, and waits until the database is closed,
    /// so the same data directory can be opened again at once.
    /// Resolves when a disk failure stops the node (`disk`), with the reason; the binary
    /// then exits non-zero rather than run on without its database.
    pub fn failed(&self) -> impl std::future::Future<Output = String> + Send + 'static {
        let mut stopped = self.status.disk.stopped();
        async move {
            let reason = stopped.wait_for(Option::is_some).await.ok().and_then(|reason| reason.clone());
            match reason {
                Some(reason) => reason,
                // The status outlives the node: never, in practice; then wait forever.
                None => std::future::pending().await,
            }
        }
    }

    pub async fn stop(mut self) {
        // The shutdown waits for room: the driver drains its mailbox, so it is never lost.
        let mailbox = self.mailbox.clone();
        let _ = tokio::task::spawn_blocking(move || mailbox.shutdown()).await;
        if let Some(chain) = self.chain.take() {
            let _ = tokio::task::spawn_blocking(move || chain.join()).await;
        }
        self.network.abort();
        self.admin.abort();
        let _ = std::fs::remove_file(&self.admin_socket);
        let _ = self.rpc.stop();
        self.rpc.clone().stopped().await;
        // Connection tasks may still hold the RPC context for a moment after the server stops.
        let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(10);
        while Arc::strong_count(&self.storage) > 1 && tokio::time::Instant::now() < deadline {
            tokio::time::sleep(std::time::Duration::from_millis(10)).await;
        }
        if Arc::strong_count(&self.storage) > 1 {
            tracing::warn!("storage still referenced 10 s after stop; the database closes when the last user ends");
        }
    }
}
