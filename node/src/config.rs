//! The node's TOML configuration, validated once at start-up with errors that name the field.

use crate::mempool;
use serde::{Deserialize, Serialize};
use shutong_types::PublicKey;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// The validator key file, relative to the home directory unless absolute.
    pub key_file: PathBuf,
    /// The validator key in a PKCS#11 token instead of a file: a `pkcs11:` URI (RFC 7512;
    /// `shutong_api::pkcs11`) naming the module, the token, the key and where the PIN is
    /// read. When set, `key_file` is not read, and `p2p.transport_key_file` is required:
    /// the token never releases the secret libp2p's identity needs.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub key_uri: Option<String>,
    /// The database directory, relative to the home directory unless absolute.
    pub data_dir: PathBuf,
    pub rpc: RpcConfig,
    #[serde(default)]
    pub p2p: P2pConfig,
    pub consensus: ConsensusConfig,
    pub mempool: mempool::Config,
    pub log: LogConfig,
    #[serde(default)]
    pub storage: StorageConfig,
    #[serde(default)]
    pub state_sync: StateSyncConfig,
}

/// What this node offers nodes that join by state sync (ADR 014).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StateSyncConfig {
    /// Heights between the snapshots this node serves: the state at the newest multiple of
    /// it, read out of the state tree the node keeps anyway (no copy is made). 0 serves none.
    #[serde(default = "default_snapshot_interval")]
    pub snapshot_interval: u64,
}

fn default_snapshot_interval() -> u64 {
    1_000
}

impl Default for StateSyncConfig {
    fn default() -> StateSyncConfig {
        StateSyncConfig { snapshot_interval: default_snapshot_interval() }
    }
}

/// What the database keeps, and the room it needs.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StorageConfig {
    /// Keep everything for ever: an archive node, which answers for any height. Otherwise
    /// the node prunes what is older than `retention`.
    #[serde(default)]
    pub archive: bool,
    /// How long a pruning node keeps blocks, their receipts and certificates, and the state
    /// they prove, measured by header timestamps (the chain's time, not the node's clock):
    /// days, hours, minutes or seconds, as `180d`, `36h`, `90m`, `30s`. It may not be
    /// shorter than the chain's legal minimum (genesis `retention_min_secs`: 180 days, the
    /// Cybersecurity Law's six months, unless a test chain says less). Never pruned: the
    /// audit log and its auditors' indexes, genesis, each epoch's last block and the proofs
    /// that start each epoch, so auditors can prove any access event against the newest
    /// header however old it is (`docs/operations.md`, "Retention").
    #[serde(default = "default_retention")]
    pub retention: String,
    /// Retired: retention is set in time (`retention`), never by a block count. The key is
    /// still accepted (and ignored, with a warning) so that older configs load.
    #[serde(default, rename = "state_history_blocks", skip_serializing)]
    pub retired_state_history_blocks: Option<u64>,
    /// MiB the data directory's disk keeps free. Below it the node stops voting and
    /// committing, answers 503 on `/health` naming the disk, and goes on by itself once
    /// space is freed (`docs/operations.md`, "A full disk").
    #[serde(default = "default_min_free_mb")]
    pub min_free_mb: u64,
}

fn default_min_free_mb() -> u64 {
    256
}

fn default_retention() -> String {
    "180d".to_string()
}

impl Default for StorageConfig {
    fn default() -> StorageConfig {
        StorageConfig {
            archive: false,
            retention: default_retention(),
            retired_state_history_blocks: None,
            min_free_mb: default_min_free_mb(),
        }
    }
}

impl StorageConfig {
    /// The retention window in seconds; `None` on an archive node.
    pub fn retention_secs(&self) -> Result<Option<u64>, ConfigError> {
        if self.archive {
            return Ok(None);
        }
        parse_duration_secs(&self.retention).map(Some).map_err(|rule| ConfigError::Field {
            field: "storage.retention",
            value: self.retention.clone(),
            rule,
        })
    }

    /// Refuses a window shorter than the chain's legal minimum (genesis
    /// `retention_min_secs`).
    pub fn check_retention(&self, minimum_secs: u64) -> Result<(), ConfigError> {
        match self.retention_secs()? {
            Some(secs) if secs < minimum_secs => {
                Err(ConfigError::RetentionBelowMinimum { retention: self.retention.clone(), minimum_secs })
            }
            _ => Ok(()),
        }
    }
}

/// `180d`, `36h`, `90m` or `30s` in seconds.
pub fn parse_duration_secs(text: &str) -> Result<u64, &'static str> {
    let unit_at = text.find(|c: char| !c.is_ascii_digit()).unwrap_or(text.len());
    let (number, unit) = text.split_at(unit_at);
    let scale = match unit {
        "d" => 86_400,
        "h" => 3_600,
        "m" => 60,
        "s" => 1,
        _ => return Err("must be a whole number of days, hours, minutes or seconds: 180d, 36h, 90m, 30s"),
    };
    let number: u64 = number.parse().map_err(|_| "must start with a whole number, as in 180d")?;
    number.checked_mul(scale).filter(|secs| *secs > 0).ok_or("must be more than 0 and at most 10^12 days")
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RpcConfig {
    /// The address JSON-RPC, WebSocket subscriptions, `/metrics` and `/health` answer on.
    pub listen: SocketAddr,
    /// The largest request body the server reads.
    pub request_bytes_max: u32,
    /// The most concurrent connections.
    pub connections_max: u32,
    /// The gas a read-only query may use.
    pub query_gas_max: u64,
    /// Who may call what: `principals` (the default: anonymous callers reach status,
    /// headers and proofs only; everything else needs a request signed by a registered
    /// principal) or `open` (every method public: for a sandbox on one machine, never a
    /// network). `docs/rpc.md`, "Access control".
    #[serde(default)]
    pub access: AccessMode,
    /// How far a signed request's time may be from this node's clock, and how long its nonce
    /// is remembered to refuse a replay.
    #[serde(default = "default_auth_window_ms")]
    pub auth_window_ms: u64,
    /// The longest a call may take, and the longest a request body may take to arrive.
    #[serde(default = "default_call_timeout_ms")]
    pub call_timeout_ms: u64,
    /// Requests a second, per client address and per principal.
    #[serde(default)]
    pub rate: RateConfig,
    /// Serve HTTPS and WSS with this certificate and key (PEM files, relative to the home
    /// directory unless absolute); plain HTTP if absent.
    #[serde(default)]
    pub tls: Option<TlsConfig>,
}

/// `rpc.access`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum AccessMode {
    #[default]
    Principals,
    Open,
}

fn default_auth_window_ms() -> u64 {
    30_000
}

fn default_call_timeout_ms() -> u64 {
    10_000
}

/// Token buckets: each address and each principal may send `burst` requests at once and
/// `per_second` a second after that; more are refused with a code that says to retry.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RateConfig {
    /// Requests a second one client address may send, after its burst.
    pub per_address_per_second: u32,
    /// Requests one client address may send at once.
    pub per_address_burst: u32,
    /// Requests a second one signing principal may send, after its burst.
    pub per_principal_per_second: u32,
    /// Requests one signing principal may send at once.
    pub per_principal_burst: u32,
}

impl Default for RateConfig {
    fn default() -> Self {
        RateConfig {
            per_address_per_second: 1_000,
            per_address_burst: 2_000,
            per_principal_per_second: 500,
            per_principal_burst: 1_000,
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TlsConfig {
    /// The server certificate chain (PEM), relative to the home directory unless absolute.
    pub cert_file: PathBuf,
    /// Its private key (PEM), relative to the home directory unless absolute.
    pub key_file: PathBuf,
}

/// The peer-to-peer network. Peers are named by their node key: a connection from any key
/// that is neither a validator's nor in `full_nodes` is refused at the handshake.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct P2pConfig {
    /// The TCP address to accept peer connections on (port 0: any free port).
    pub listen: SocketAddr,
    /// Peers to dial and keep connected: usually every other validator.
    #[serde(default)]
    pub peers: Vec<PeerConfig>,
    /// Keys of full nodes (not validators) allowed to connect (on an `sm2-sm3` chain, their
    /// transport keys).
    #[serde(default)]
    pub full_nodes: Vec<PublicKey>,
    /// The key file of this node's ed25519 transport key, its p2p identity, relative to the
    /// home directory: required on an `sm2-sm3` chain (libp2p has no SM2 keys); on an
    /// `ed25519-blake3` chain, without it the node key is the p2p identity. A validator's is
    /// bound to its key in the validator record (genesis, or its proof when it joins).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub transport_key_file: Option<PathBuf>,
    /// Retired: a local testnet's faults are made outside the node, by its link proxy. The
    /// key is still accepted (and ignored, with a warning) so that configs written by older
    /// versions, which all carry it, load.
    #[serde(default, rename = "fault_injection", skip_serializing)]
    pub retired_fault_injection: Option<bool>,
}

impl Default for P2pConfig {
    fn default() -> Self {
        P2pConfig {
            listen: "127.0.0.1:26656".parse().expect("literal address"),
            peers: Vec::new(),
            full_nodes: Vec::new(),
            transport_key_file: None,
            retired_fault_injection: None,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PeerConfig {
    /// The peer's p2p identity: its transport key if it has one, else its node key.
    pub public_key: PublicKey,
    /// An IP address and port (names are not resolved: a permissioned network's peers are
    /// configured by address).
    pub address: SocketAddr,
}

/// The most configured peers or full nodes.
pub const PEERS_MAX: usize = 1_024;

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ConsensusConfig {
    /// The pause between one finalized block and the next proposal.
    pub block_interval_ms: u64,
    /// The most transactions in one block.
    pub block_txs_max: u32,
    /// The most gas a block's transactions may declare in all; bounds the memory and time
    /// one block's execution can take.
    pub block_gas_max: u64,
    /// `t_l`: how long a validator waits for a view's proposal before voting to skip it.
    /// Must exceed `block_interval_ms`, or a leader's own pause would skip its view.
    #[serde(default = "default_leader_timeout_ms")]
    pub leader_timeout_ms: u64,
    /// `t_a`: how long a validator waits for a view to end before voting to skip it.
    #[serde(default = "default_advance_timeout_ms")]
    pub advance_timeout_ms: u64,
    /// `t_r`: how often a validator stuck in a view re-sends its vote to skip it.
    #[serde(default = "default_rebroadcast_ms")]
    pub rebroadcast_ms: u64,
}

fn default_leader_timeout_ms() -> u64 {
    2_000
}

fn default_advance_timeout_ms() -> u64 {
    3_000
}

fn default_rebroadcast_ms() -> u64 {
    1_000
}

impl ConsensusConfig {
    /// The engine's timers.
    pub fn timeouts(&self) -> shutong_consensus::Timeouts {
        shutong_consensus::Timeouts {
            leader_ms: self.leader_timeout_ms,
            advance_ms: self.advance_timeout_ms,
            rebroadcast_ms: self.rebroadcast_ms,
            backoff_exponent_max: 3,
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LogConfig {
    /// `text` or `json`.
    pub format: String,
    /// A `tracing` filter such as `info` or `shutong_node=debug`.
    pub filter: String,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            key_file: PathBuf::from("keys/validator.json"),
            key_uri: None,
            data_dir: PathBuf::from("data"),
            rpc: RpcConfig {
                listen: "127.0.0.1:26657".parse().expect("literal address"),
                request_bytes_max: 2 << 20,
                connections_max: 256,
                query_gas_max: 50_000_000,
                access: AccessMode::Principals,
                auth_window_ms: default_auth_window_ms(),
                call_timeout_ms: default_call_timeout_ms(),
                rate: RateConfig::default(),
                tls: None,
            },
            p2p: P2pConfig::default(),
            consensus: ConsensusConfig {
                block_interval_ms: 200,
                block_txs_max: 5_000,
                block_gas_max: 500_000_000,
                leader_timeout_ms: default_leader_timeout_ms(),
                advance_timeout_ms: default_advance_timeout_ms(),
                rebroadcast_ms: default_rebroadcast_ms(),
            },
            mempool: mempool::Config::default(),
            log: LogConfig { format: "text".into(), filter: "info".into() },
            storage: StorageConfig::default(),
            state_sync: StateSyncConfig::default(),
        }
    }
}

/// The largest config file read.
pub const CONFIG_BYTES_MAX: u64 = 64 * 1024;

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read config file {path}: {source}")]
    Read { path: PathBuf, source: std::io::Error },
    #[error("config file {path} is not valid: {reason}")]
    Parse { path: PathBuf, reason: String },
    #[error("config field {field} = {value} is invalid: {rule}")]
    Field { field: &'static str, value: String, rule: &'static str },
    #[error("config field key_uri is invalid: {0}")]
    KeyUri(shutong_api::pkcs11::Pkcs11Error),
    #[error(
        "config field storage.retention = {retention} is shorter than this chain's legal minimum of {minimum_secs} s \
         (genesis retention_min_secs; 180 days is the Cybersecurity Law's six months): keep at least that, or set \
         storage.archive = true"
    )]
    RetentionBelowMinimum { retention: String, minimum_secs: u64 },
}

fn check<T: std::fmt::Display>(field: &'static str, value: T, ok: bool, rule: &'static str) -> Result<(), ConfigError> {
    if ok { Ok(()) } else { Err(ConfigError::Field { field, value: value.to_string(), rule }) }
}

impl Config {
    pub fn load(path: &Path) -> Result<Config, ConfigError> {
        let text = shutong_api::files::read_bounded(path, CONFIG_BYTES_MAX)
            .map_err(|source| ConfigError::Read { path: path.into(), source })?
            .ok_or_else(|| ConfigError::Parse {
                path: path.into(),
                reason: format!("larger than {CONFIG_BYTES_MAX} bytes"),
            })?;
        let cfg: Config =
            toml::from_str(&text).map_err(|e| ConfigError::Parse { path: path.into(), reason: e.to_string() })?;
        cfg.validate()?;
        Ok(cfg)
    }

    pub fn to_toml(&self) -> String {
        toml::to_string_pretty(self).expect("config serialises")
    }

    /// Checks every bound.
    pub fn validate(&self) -> Result<(), ConfigError> {
        if let Some(uri) = &self.key_uri {
            uri.parse::<shutong_api::pkcs11::Pkcs11Uri>().map_err(ConfigError::KeyUri)?;
            check(
                "p2p.transport_key_file",
                "(none)",
                self.p2p.transport_key_file.is_some(),
                "must name a transport key when key_uri names a key in a token: libp2p needs its identity's secret in memory",
            )?;
        }
        let rpc = &self.rpc;
        let tx_hex = 2 * shutong_types::limits::TX_BYTES_MAX as u32;
        check(
            "rpc.request_bytes_max",
            rpc.request_bytes_max,
            (tx_hex + 1024..=16 << 20).contains(&rpc.request_bytes_max),
            "must fit one hex-encoded transaction and be at most 16 MiB",
        )?;
        check(
            "rpc.connections_max",
            rpc.connections_max,
            (1..=10_000).contains(&rpc.connections_max),
            "must be 1 to 10000",
        )?;
        check(
            "rpc.query_gas_max",
            rpc.query_gas_max,
            (1_000_000..=1_000_000_000).contains(&rpc.query_gas_max),
            "must be 1e6 to 1e9",
        )?;
        check(
            "rpc.auth_window_ms",
            rpc.auth_window_ms,
            (1_000..=600_000).contains(&rpc.auth_window_ms),
            "must be 1000 to 600000",
        )?;
        check(
            "rpc.call_timeout_ms",
            rpc.call_timeout_ms,
            (100..=600_000).contains(&rpc.call_timeout_ms),
            "must be 100 to 600000",
        )?;
        let r = &rpc.rate;
        for (field, value) in [
            ("rpc.rate.per_address_per_second", r.per_address_per_second),
            ("rpc.rate.per_address_burst", r.per_address_burst),
            ("rpc.rate.per_principal_per_second", r.per_principal_per_second),
            ("rpc.rate.per_principal_burst", r.per_principal_burst),
        ] {
            check(field, value, (1..=1_000_000).contains(&value), "must be 1 to 1000000")?;
        }
        self.storage.retention_secs()?;
        let p = &self.p2p;
        check("p2p.peers", p.peers.len(), p.peers.len() <= PEERS_MAX, "must list at most 1024 peers")?;
        check("p2p.full_nodes", p.full_nodes.len(), p.full_nodes.len() <= PEERS_MAX, "must list at most 1024 keys")?;
        let mut keys: Vec<&PublicKey> = p.peers.iter().map(|peer| &peer.public_key).collect();
        keys.sort();
        check("p2p.peers", "a public key twice", keys.windows(2).all(|w| w[0] != w[1]), "must name each peer once")?;
        for peer in &p.peers {
            check(
                "p2p.peers.public_key",
                peer.public_key,
                shutong_p2p::peer_id(&peer.public_key).is_some(),
                "must be an ed25519 public key (on an sm2-sm3 chain, the peer's transport key)",
            )?;
            check("p2p.peers.address", peer.address, peer.address.port() != 0, "must have a port")?;
        }
        for key in &p.full_nodes {
            check(
                "p2p.full_nodes",
                key,
                shutong_p2p::peer_id(key).is_some(),
                "must be an ed25519 (transport) public key",
            )?;
        }
        let c = &self.consensus;
        check(
            "consensus.block_interval_ms",
            c.block_interval_ms,
            (1..=60_000).contains(&c.block_interval_ms),
            "must be 1 to 60000",
        )?;
        check(
            "consensus.block_txs_max",
            c.block_txs_max,
            (1..=shutong_types::limits::BLOCK_TXS_MAX).contains(&c.block_txs_max),
            "must be 1 to 20000",
        )?;
        check(
            "consensus.leader_timeout_ms",
            c.leader_timeout_ms,
            c.leader_timeout_ms > c.block_interval_ms && c.leader_timeout_ms <= 600_000,
            "must exceed consensus.block_interval_ms and be at most 600000",
        )?;
        check(
            "consensus.advance_timeout_ms",
            c.advance_timeout_ms,
            c.advance_timeout_ms >= c.leader_timeout_ms && c.advance_timeout_ms <= 600_000,
            "must be at least consensus.leader_timeout_ms and at most 600000",
        )?;
        check(
            "consensus.rebroadcast_ms",
            c.rebroadcast_ms,
            (50..=600_000).contains(&c.rebroadcast_ms),
            "must be 50 to 600000",
        )?;
        let m = &self.mempool;
        check(
            "consensus.block_gas_max",
            c.block_gas_max,
            (m.gas_limit_max..=10_000_000_000).contains(&c.block_gas_max),
            "must be at least mempool.gas_limit_max and at most 1e10",
        )?;
        check("mempool.txs_max", m.txs_max, (1..=1_000_000).contains(&m.txs_max), "must be 1 to 1000000")?;
        check(
            "mempool.sender_txs_max",
            m.sender_txs_max,
            (1..=100_000).contains(&m.sender_txs_max),
            "must be 1 to 100000",
        )?;
        check("mempool.expiry_blocks_max", m.expiry_blocks_max, m.expiry_blocks_max >= 1, "must be at least 1")?;
        check(
            "mempool.gas_limit_max",
            m.gas_limit_max,
            m.gas_limit_max >= crate::mempool::GAS_LIMIT_MIN,
            "must be at least the call base cost",
        )?;
        check(
            "log.format",
            &self.log.format,
            ["text", "json"].contains(&self.log.format.as_str()),
            "must be text or json",
        )?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_default_config_round_trips_and_validates() {
        let cfg = Config::default();
        let parsed: Config = toml::from_str(&cfg.to_toml()).unwrap();
        parsed.validate().unwrap();
    }

    #[test]
    fn a_bad_field_is_named() {
        let mut cfg = Config::default();
        cfg.consensus.block_interval_ms = 0;
        let err = cfg.validate().unwrap_err().to_string();
        assert!(err.contains("consensus.block_interval_ms"), "{err}");
    }

    #[test]
    fn retention_is_a_time_and_the_retired_block_count_is_ignored() {
        let mut cfg = Config::default();
        assert_eq!(cfg.storage.retention_secs().unwrap(), Some(180 * 86_400), "180 days by default");
        for (text, secs) in [("36h", 36 * 3_600), ("90m", 5_400), ("30s", 30)] {
            cfg.storage.retention = text.into();
            assert_eq!(cfg.storage.retention_secs().unwrap(), Some(secs));
        }
        for bad in ["180", "d", "0d", "-1d", "1.5d", "180 days", "99999999999999999999d"] {
            cfg.storage.retention = bad.into();
            let err = cfg.validate().unwrap_err().to_string();
            assert!(err.contains("storage.retention"), "{bad}: {err}");
        }
        cfg.storage.archive = true;
        assert_eq!(cfg.storage.retention_secs().unwrap(), None, "an archive ignores the window");
        let old: Config =
            toml::from_str(&Config::default().to_toml().replace("[storage]", "[storage]\nstate_history_blocks = 1000"))
                .unwrap();
        assert_eq!(old.storage.retired_state_history_blocks, Some(1000));
        assert!(!old.to_toml().contains("state_history_blocks"));
    }

    #[test]
    fn a_leader_timeout_below_the_block_interval_is_refused() {
        let mut cfg = Config::default();
        cfg.consensus.leader_timeout_ms = cfg.consensus.block_interval_ms;
        let err = cfg.validate().unwrap_err().to_string();
        assert!(err.contains("consensus.leader_timeout_ms"), "{err}");
    }

    #[test]
    fn a_peer_listed_twice_is_refused() {
        let mut cfg = Config::default();
        let peer = PeerConfig {
            public_key: shutong_types::Keypair::from_seed("peer").public(),
            address: "127.0.0.1:1".parse().unwrap(),
        };
        cfg.p2p.peers = vec![peer.clone(), peer];
        let err = cfg.validate().unwrap_err().to_string();
        assert!(err.contains("p2p.peers"), "{err}");
    }

    #[test]
    fn a_config_without_a_p2p_section_gets_the_default() {
        let text = Config::default().to_toml();
        let start = text.find("[p2p]").unwrap();
        let end = start + text[start..].find("\n\n").unwrap();
        let without = format!("{}{}", &text[..start], &text[end..]);
        let cfg: Config = toml::from_str(&without).unwrap();
        assert_eq!(cfg.p2p.listen, P2pConfig::default().listen);
    }

    #[test]
    fn unknown_fields_are_refused() {
        let text = Config::default().to_toml().replace("[rpc]", "[rpc]\nlisten_port = 1");
        let err = toml::from_str::<Config>(&text).unwrap_err().to_string();
        assert!(err.contains("listen_port"), "{err}");
    }
}

/// The configuration reference, `docs/configuration.md`, generated from the config types'
/// own source (their fields, doc comments and serde attributes) and their defaults, so it
/// cannot drift from them: the test fails when it does, and `SHUTONG_BLESS=1 cargo test -p
/// shutong-node --lib config::reference` writes it again.
#[cfg(test)]
mod reference {
    use super::Config;
    use std::collections::BTreeMap;

    struct Field {
        name: String,
        ty: String,
        doc: String,
        optional: bool,
    }

    /// Each `pub struct` of `source`, with its fields in order (the files are rustfmt'ed).
    fn structs(source: &str, into: &mut BTreeMap<String, Vec<Field>>) {
        let mut current: Option<(String, Vec<Field>)> = None;
        let (mut doc, mut attrs) = (Vec::<String>::new(), String::new());
        for line in source.lines() {
            let line = line.trim();
            if let Some(rest) = line.strip_prefix("pub struct ").and_then(|r| r.strip_suffix(" {")) {
                current = Some((rest.to_string(), Vec::new()));
            } else if line == "}" {
                if let Some((name, fields)) = current.take() {
                    into.insert(name, fields);
                }
            } else if current.is_none() {
                continue;
            } else if let Some(text) = line.strip_prefix("///") {
                doc.push(text.trim().to_string());
            } else if line.starts_with("#[serde(") {
                attrs.push_str(line);
            } else if let Some((name, ty)) = line.strip_prefix("pub ").and_then(|l| l.split_once(": ")) {
                let name = match attrs.split_once("rename = \"") {
                    Some((_, rest)) => rest.split('"').next().unwrap_or(name).to_string(),
                    None => name.to_string(),
                };
                let field = Field {
                    name,
                    ty: ty.trim_end_matches(',').to_string(),
                    doc: doc.join(" "),
                    optional: attrs.contains("default"),
                };
                let serialized = !attrs.contains("skip_serializing)") && !attrs.contains("skip_serializing,");
                if serialized && let Some((_, fields)) = current.as_mut() {
                    fields.push(field);
                }
                doc.clear();
                attrs.clear();
            }
        }
    }

    /// The struct a field's type names, if it is a section.
    fn section_type<'a>(ty: &'a str, types: &BTreeMap<String, Vec<Field>>) -> Option<(&'a str, bool)> {
        let inner = ty.trim_start_matches("Option<").trim_start_matches("Vec<").trim_end_matches('>');
        types.contains_key(inner).then_some((inner, ty.starts_with("Vec<")))
    }

    fn render(out: &mut String, path: &str, name: &str, types: &BTreeMap<String, Vec<Field>>, defaults: &toml::Value) {
        let mut sections = Vec::new();
        let mut rows = String::new();
        for field in &types[name] {
            let key = if path.is_empty() { field.name.clone() } else { format!("{path}.{}", field.name) };
            if let Some((inner, array)) = section_type(&field.ty, types) {
                sections.push((key, inner, array, field));
                continue;
            }
            let default = key.split('.').try_fold(defaults, |v, part| v.get(part)).map_or_else(
                || if field.optional { "(none)".to_string() } else { "(required)".into() },
                |v| format!("`{v}`"),
            );
            let doc = field.doc.replace('|', "\\|");
            rows.push_str(&format!("| `{}` | `{}` | {default} | {doc} |\n", field.name, field.ty));
        }
        if !rows.is_empty() {
            out.push_str("| key | type | default | meaning |\n|---|---|---|---|\n");
            out.push_str(&rows);
        }
        for (key, inner, array, field) in sections {
            let heading = if array { format!("[[{key}]]") } else { format!("[{key}]") };
            out.push_str(&format!("\n## `{heading}`\n\n"));
            if !field.doc.is_empty() {
                out.push_str(&format!("{}\n\n", field.doc));
            }
            let defaults = if array { &toml::Value::Table(Default::default()) } else { defaults };
            render(out, if array { "" } else { &key }, inner, types, defaults);
        }
    }

    fn reference() -> String {
        let mut types = BTreeMap::new();
        structs(include_str!("config.rs"), &mut types);
        // The mempool's struct is `Config` too: it is named as `Config`'s field names it.
        let mut mempool = BTreeMap::new();
        structs(include_str!("mempool.rs"), &mut mempool);
        types.extend(mempool.into_iter().map(|(name, fields)| (format!("mempool::{name}"), fields)));
        let defaults = toml::Value::try_from(Config::default()).expect("the default config serializes");
        let mut out = String::from(
            "# Configuration reference\n\n\
             A node reads `config.toml` in its home directory (`shutong init` writes one with these\n\
             defaults). Unknown keys are refused, and every value is checked at start, with an error\n\
             that names the key. This page is generated from the config types (`node/src/config.rs`,\n\
             `node/src/mempool.rs`): a test fails when it drifts from them, and\n\
             `SHUTONG_BLESS=1 cargo test -p shutong-node --lib config::reference` writes it again.\n\n\
             ## Top level\n\n",
        );
        render(&mut out, "", "Config", &types, &defaults);
        out
    }

    #[test]
    fn the_reference_matches_the_config_types() {
        let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../docs/configuration.md");
        let generated = reference();
        if std::env::var_os("SHUTONG_BLESS").is_some() {
            std::fs::write(path, &generated).expect("docs/configuration.md is writable");
        }
        let committed = std::fs::read_to_string(path).unwrap_or_default();
        assert!(
            committed == generated,
            "docs/configuration.md is out of date with the config types: run \
             SHUTONG_BLESS=1 cargo test -p shutong-node --lib config::reference"
        );
    }
}
