//! A local multi-validator testnet on loopback: the layout `shutong testnet` writes (one
//! home per validator with its key, config and the shared genesis) and the processes it
//! starts and stops.
//!
//! The layout is recorded in `DIR/testnet.json`, which `status`, `down` and the test harness
//! in `shutong-testnet` read.

use crate::proxy::Route;
use anyhow::{Context, bail};
use serde::{Deserialize, Serialize};
use shutong_execution::genesis::{CommitteeMember, Genesis, GenesisValidator};
use shutong_node::config::{Config, PeerConfig};
use shutong_node::{CONFIG_FILE, GENESIS_FILE};
use shutong_types::transport::Transport;
use shutong_types::{Keypair, PublicKey};
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::{Path, PathBuf};

/// The layout file inside a testnet directory.
pub const LAYOUT_FILE: &str = "testnet.json";
/// Where an SM node's transport key is, relative to its home.
pub const TRANSPORT_KEY_FILE: &str = "keys/transport.json";
/// The most validators `shutong testnet` starts on one machine.
pub const VALIDATORS_MAX: usize = 64;
/// The most full nodes `shutong testnet` starts beside them.
pub const FULL_NODES_MAX: usize = 16;

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct LayoutNode {
    pub name: String,
    pub home: PathBuf,
    pub public_key: PublicKey,
    /// On an `sm2-sm3` chain, the node's ed25519 transport key (its p2p identity), in
    /// `keys/transport.json`, bound to `public_key` in genesis for a validator.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub transport_key: Option<PublicKey>,
    pub rpc: SocketAddr,
    pub p2p: SocketAddr,
    /// The process id while `shutong testnet up` has it running.
    #[serde(default)]
    pub pid: Option<u32>,
    /// A full node: not in genesis, follows the chain without voting.
    #[serde(default)]
    pub full_node: bool,
}

impl LayoutNode {
    /// The key that names this node's peer id: its transport key on an SM chain.
    pub fn peer_key(&self) -> PublicKey {
        self.transport_key.unwrap_or(self.public_key)
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Layout {
    pub chain_id: String,
    /// The key of the first committee seat (a registered caller the tools sign as).
    pub admin_key: PathBuf,
    /// The keys of the governance committee's seats, one department each, in genesis order.
    pub committee_keys: Vec<PathBuf>,
    /// How many of the committee's departments must vote for a proposal.
    pub committee_threshold: u32,
    pub nodes: Vec<LayoutNode>,
    /// The link proxy's routes: each node reaches each validator only through its own
    /// listener there (`proxy.rs`). Empty in layouts written before the proxy.
    #[serde(default)]
    pub links: Vec<Route>,
    /// The `shutong testnet proxy` process while `shutong testnet up` has it running.
    #[serde(default)]
    pub proxy_pid: Option<u32>,
}

/// Node `i` listens for peers on an address of its own, 127.0.0.(2 + i), so that where a
/// connection comes from says who opened it: the nodes dial from 127.0.0.1 and the link
/// proxy from [`crate::proxy::SOURCE`].
pub fn node_ip(i: usize) -> IpAddr {
    IpAddr::V4(Ipv4Addr::new(127, 0, 0, 2 + i as u8))
}

/// The routes through the link proxy: from every node to every validator but itself, each
/// listening on a port of 127.0.0.1 that `port` gives.
fn routes(nodes: &[LayoutNode], mut port: impl FnMut() -> anyhow::Result<u16>) -> anyhow::Result<Vec<Route>> {
    let mut routes = Vec::new();
    for from in 0..nodes.len() {
        for (to, target) in nodes.iter().enumerate().filter(|(to, n)| *to != from && !n.full_node) {
            let listen = SocketAddr::from(([127, 0, 0, 1], port()?));
            routes.push(Route { from, to, listen, target: target.p2p });
        }
    }
    Ok(routes)
}

/// The departments of a local testnet's governance committee, in seat order: id and name.
pub const COMMITTEE: [(&str, &str); 5] = [
    ("jingan-office", "静安区政府办公室 District Office"),
    ("jingan-data", "静安区数据局 Data Bureau"),
    ("jingan-finance", "静安区财政局 Finance Bureau"),
    ("jingan-justice", "静安区司法局 Justice Bureau"),
    ("jingan-audit", "静安区审计局 Audit Bureau"),
];

/// What `generate` needs.
#[derive(Debug, Clone)]
pub struct Params {
    pub validators: usize,
    /// Nodes that follow the chain without voting (`full-0`, `full-1`, ...), after the
    /// validators in the layout.
    pub full_nodes: usize,
    pub chain_id: String,
    /// RPC and p2p ports are `base_port + 2i` and `base_port + 2i + 1`; 0 picks free ports.
    pub base_port: u16,
    pub block_interval_ms: u64,
    /// The committee's size (1 to `COMMITTEE.len()` departments) and threshold.
    pub committee: usize,
    pub committee_threshold: u32,
    /// Nodes dial each other directly, without the link proxy: only to calibrate it.
    pub direct: bool,
    /// The chain's crypto suite: every key of the layout is of it.
    pub suite: shutong_types::Suite,
    /// A test chain whose nodes prune: its legal minimum (genesis `retention_min_secs`) and
    /// every node's `storage.retention`, in seconds. `None`: the default 180 days.
    pub retention_secs: Option<u64>,
}

/// Where `free_port` looks: below Linux's ephemeral range (32768 to 60999), so that the port
/// of a stopped node is not handed to some outgoing connection before the node restarts
/// (the OS's own choice, port 0, comes from that range, and a restart then can fail to
/// listen).
const FREE_PORTS: std::ops::Range<u16> = 20_000..32_000;

/// A port on 127.0.0.1 that nothing listens on now and that is not in `taken`.
pub fn free_port(taken: &mut std::collections::HashSet<u16>) -> anyhow::Result<u16> {
    free_port_on(IpAddr::V4(Ipv4Addr::LOCALHOST), taken)
}

/// A port on `ip` that nothing listens on now and that is not in `taken`.
pub fn free_port_on(ip: IpAddr, taken: &mut std::collections::HashSet<u16>) -> anyhow::Result<u16> {
    let nanos = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH)?.subsec_nanos();
    let span = (FREE_PORTS.end - FREE_PORTS.start) as u32;
    let start = nanos.wrapping_mul(2_654_435_761).wrapping_add(std::process::id()) % span;
    for i in 0..span {
        let port = FREE_PORTS.start + ((start + i * 7_919) % span) as u16;
        if !taken.contains(&port) && std::net::TcpListener::bind((ip, port)).is_ok() {
            taken.insert(port);
            return Ok(port);
        }
    }
    bail!("no free port on {ip} between {} and {}", FREE_PORTS.start, FREE_PORTS.end)
}

impl Layout {
    pub fn path(dir: &Path) -> PathBuf {
        dir.join(LAYOUT_FILE)
    }

    pub fn load(dir: &Path) -> anyhow::Result<Layout> {
        let path = Layout::path(dir);
        let text = shutong_api::files::read_bounded(&path, 1 << 20)
            .with_context(|| format!("no testnet in {} (run `shutong testnet up` first)", dir.display()))?
            .with_context(|| format!("{} is too large", path.display()))?;
        serde_json::from_str(&text).with_context(|| format!("{} is not a testnet layout", path.display()))
    }

    pub fn save(&self, dir: &Path) -> anyhow::Result<()> {
        let path = Layout::path(dir);
        let tmp = path.with_extension("json.tmp");
        std::fs::write(&tmp, serde_json::to_string_pretty(self)?)?;
        std::fs::rename(&tmp, &path).with_context(|| format!("cannot write {}", path.display()))
    }

    /// Writes `validators` + `full_nodes` homes under `dir` (which must not hold a testnet
    /// yet): keys, one genesis with every validator, and configs in which every node dials
    /// every validator, and validators let the full nodes in.
    pub fn generate(dir: &Path, params: &Params) -> anyhow::Result<Layout> {
        if !(1..=VALIDATORS_MAX).contains(&params.validators) {
            bail!("--validators must be 1 to {VALIDATORS_MAX}, not {}", params.validators);
        }
        if Layout::path(dir).exists() {
            bail!("{} already holds a testnet; use `shutong testnet down --purge` first", dir.display());
        }
        if params.full_nodes > FULL_NODES_MAX {
            bail!("--full-nodes must be at most {FULL_NODES_MAX}, not {}", params.full_nodes);
        }
        let count = params.validators + params.full_nodes;
        // Two ports a node, then one for each route through the link proxy.
        let ports = 2 * count + count * params.validators;
        if params.base_port != 0 && (params.base_port as usize) + ports > u16::MAX as usize {
            bail!("--base-port {} leaves no room for {count} nodes and their links", params.base_port);
        }
        if !(1..=COMMITTEE.len()).contains(&params.committee) {
            bail!("--committee must be 1 to {}, not {}", COMMITTEE.len(), params.committee);
        }
        std::fs::create_dir_all(dir.join("keys")).with_context(|| format!("cannot create {}", dir.display()))?;
        let mut committee = Vec::new();
        let mut committee_keys = Vec::new();
        for (i, (org, name)) in COMMITTEE.iter().take(params.committee).enumerate() {
            let key = Keypair::generate(params.suite);
            // The first seat's key is also `keys/admin.json`, the key the tools sign as.
            let path =
                dir.join(if i == 0 { "keys/admin.json".to_string() } else { format!("keys/committee-{i}.json") });
            shutong_sdk::keyfile::write(&path, &key, false)?;
            committee.push(CommitteeMember::new(org, name, key.account()));
            committee_keys.push(path);
        }
        let admin_key = committee_keys[0].clone();
        let mut nodes = Vec::new();
        let mut keys = Vec::new();
        let mut taken = std::collections::HashSet::new();
        for i in 0..count {
            let (rpc_port, p2p_port) = if params.base_port == 0 {
                (free_port(&mut taken)?, free_port_on(node_ip(i), &mut taken)?)
            } else {
                (params.base_port + 2 * i as u16, params.base_port + 2 * i as u16 + 1)
            };
            let key = Keypair::generate(params.suite);
            let home = dir.join(format!("node{i}"));
            std::fs::create_dir_all(home.join("keys"))?;
            shutong_sdk::keyfile::write(&home.join("keys/validator.json"), &key, false)?;
            let mut transport_key = None;
            if params.suite == shutong_types::Suite::Sm2Sm3 {
                let transport = Keypair::generate(shutong_types::Suite::Ed25519Blake3);
                shutong_sdk::keyfile::write(&home.join(TRANSPORT_KEY_FILE), &transport, false)?;
                transport_key = Some(transport.public());
            }
            let full_node = i >= params.validators;
            nodes.push(LayoutNode {
                name: if full_node { format!("full-{}", i - params.validators) } else { format!("validator-{i}") },
                home,
                public_key: key.public(),
                transport_key,
                rpc: SocketAddr::from(([127, 0, 0, 1], rpc_port)),
                p2p: SocketAddr::new(node_ip(i), p2p_port),
                pid: None,
                full_node,
            });
            keys.push(key);
        }
        let now_ms = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH)?.as_millis() as u64;
        let validators = nodes
            .iter()
            .zip(&keys)
            .filter(|(n, _)| !n.full_node)
            .map(|(n, key)| GenesisValidator {
                transport: n.transport_key.map(|t| Transport::bind(&params.chain_id, key, &t)),
                ..GenesisValidator::new(&n.name, n.public_key)
            })
            .collect();
        let full_keys: Vec<PublicKey> = nodes.iter().filter(|n| n.full_node).map(LayoutNode::peer_key).collect();
        let mut next = params.base_port as usize + 2 * count;
        let links = if params.direct {
            Vec::new()
        } else {
            routes(&nodes, || {
                if params.base_port == 0 {
                    free_port(&mut taken)
                } else {
                    next += 1;
                    Ok((next - 1) as u16)
                }
            })?
        };
        let mut genesis = Genesis::new(&params.chain_id, now_ms, validators, committee);
        genesis.governance_threshold = params.committee_threshold;
        if let Some(secs) = params.retention_secs {
            genesis.retention_min_secs = secs;
        }
        genesis.validate()?;
        let genesis_json = serde_json::to_string_pretty(&genesis)?;
        for (i, node) in nodes.iter().enumerate() {
            let mut cfg = Config::default();
            cfg.rpc.listen = node.rpc;
            // And where the load generator runs, from this one address, signing as the admin:
            // the rates are the most the config allows, so they measure the node, not the
            // limiter. Access control itself stays on.
            cfg.rpc.rate = shutong_node::config::RateConfig {
                per_address_per_second: 1_000_000,
                per_address_burst: 1_000_000,
                per_principal_per_second: 1_000_000,
                per_principal_burst: 1_000_000,
            };
            cfg.p2p.listen = node.p2p;
            // Everyone dials the validators, through the link proxy; full nodes sync from them.
            cfg.p2p.peers = if params.direct {
                nodes
                    .iter()
                    .filter(|other| other.public_key != node.public_key && !other.full_node)
                    .map(|other| PeerConfig { public_key: other.peer_key(), address: other.p2p })
                    .collect()
            } else {
                links
                    .iter()
                    .filter(|route| route.from == i)
                    .map(|route| PeerConfig { public_key: nodes[route.to].peer_key(), address: route.listen })
                    .collect()
            };
            cfg.p2p.full_nodes = full_keys.clone();
            if node.transport_key.is_some() {
                cfg.p2p.transport_key_file = Some(PathBuf::from(TRANSPORT_KEY_FILE));
            }
            cfg.consensus.block_interval_ms = params.block_interval_ms;
            if let Some(secs) = params.retention_secs {
                cfg.storage.retention = format!("{secs}s");
            }
            cfg.validate()?;
            std::fs::write(node.home.join(CONFIG_FILE), cfg.to_toml())?;
            std::fs::write(node.home.join(GENESIS_FILE), &genesis_json)?;
        }
        let layout = Layout {
            chain_id: params.chain_id.clone(),
            admin_key,
            committee_keys,
            committee_threshold: params.committee_threshold,
            nodes,
            links,
            proxy_pid: None,
        };
        layout.save(dir)?;
        Ok(layout)
    }
}

/// Whether a process with this id is alive (and not a zombie we could reap).
pub fn alive(pid: u32) -> bool {
    let Ok(pid) = i32::try_from(pid) else { return false };
    #[allow(unsafe_code)]
    // SAFETY: signal 0 only checks that the process exists; nothing is delivered.
    let exists = unsafe { libc::kill(pid, 0) } == 0;
    if !exists {
        return false;
    }
    // A zombie has exited: /proc shows state Z.
    std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .map(|stat| stat.rsplit(')').next().is_none_or(|rest| !rest.trim_start().starts_with('Z')))
        .unwrap_or(true)
}

/// Sends `signal` to a process.
pub fn signal(pid: u32, signal: i32) {
    if let Ok(pid) = i32::try_from(pid) {
        #[allow(unsafe_code)]
        // SAFETY: sending a signal has no memory-safety effects on this process.
        unsafe {
            libc::kill(pid, signal);
        }
    }
}

/// Starts `shutong node run` for `node` in the background, in its own process group (so a
/// Ctrl-C in the terminal that ran `up` does not reach it), with output in `home/node.log`.
pub fn spawn(binary: &Path, node: &LayoutNode) -> anyhow::Result<u32> {
    use std::os::unix::process::CommandExt;
    let log = node.home.join("node.log");
    let out = std::fs::OpenOptions::new().create(true).append(true).open(&log)?;
    let child = std::process::Command::new(binary)
        .args(["node", "run", "--home"])
        .arg(&node.home)
        .stdin(std::process::Stdio::null())
        .stdout(out.try_clone()?)
        .stderr(out)
        .process_group(0)
        .spawn()
        .with_context(|| format!("cannot start {}", binary.display()))?;
    Ok(child.id())
}

/// SIGTERM, then SIGKILL if the process has not exited after `grace`.
pub fn stop(pid: u32, grace: std::time::Duration) {
    signal(pid, libc::SIGTERM);
    let start = std::time::Instant::now();
    while start.elapsed() < grace {
        if !alive(pid) {
            return;
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    signal(pid, libc::SIGKILL);
}

/// Starts `shutong testnet proxy` for the testnet in `dir` unless it runs already (or the
/// layout predates the proxy), in its own process group with output in `DIR/proxy.log`, and
/// waits until it listens. Records its pid in `layout`; the caller saves it.
pub fn ensure_proxy(binary: &Path, dir: &Path, layout: &mut Layout) -> anyhow::Result<()> {
    use std::os::unix::process::CommandExt;
    let Some(first) = layout.links.first().map(|route| route.listen) else { return Ok(()) };
    if layout.proxy_pid.is_some_and(alive) {
        return Ok(());
    }
    let log = dir.join("proxy.log");
    let out = std::fs::OpenOptions::new().create(true).append(true).open(&log)?;
    let child = std::process::Command::new(binary)
        .args(["testnet", "proxy", "--dir"])
        .arg(dir)
        .stdin(std::process::Stdio::null())
        .stdout(out.try_clone()?)
        .stderr(out)
        .process_group(0)
        .spawn()
        .with_context(|| format!("cannot start the link proxy with {}", binary.display()))?;
    let pid = child.id();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while std::net::TcpStream::connect(first).is_err() {
        if !alive(pid) || std::time::Instant::now() > deadline {
            stop(pid, std::time::Duration::from_secs(1));
            bail!("the link proxy did not start listening on {first}; see {}", log.display());
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    layout.proxy_pid = Some(pid);
    Ok(())
}
