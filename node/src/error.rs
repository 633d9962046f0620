//! What starting the node, or one of its in-process chains, can fail with. Each variant
//! names the file, field, key or address at fault; the binary adds nothing but the exit.

use shutong_api::keyfile::KeyFileError;
use shutong_execution::audit_log::LogError;
use shutong_execution::executor::ExecError;
use shutong_execution::genesis::GenesisError;
use shutong_execution::state_tree::TreeError;
use shutong_p2p::NetError;
use shutong_storage::StorageError;
use shutong_types::PublicKey;
use shutong_vm::VmError;
use std::net::SocketAddr;
use std::path::PathBuf;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error(transparent)]
    Config(#[from] crate::config::ConfigError),
    #[error(transparent)]
    Genesis(#[from] GenesisError),
    #[error(transparent)]
    Key(#[from] KeyFileError),
    /// The validator key in a PKCS#11 token (`key_uri`) cannot be used.
    #[error("key_uri: {0}")]
    Token(#[from] shutong_api::pkcs11::Pkcs11Error),
    #[error(transparent)]
    Storage(#[from] StorageError),
    #[error(transparent)]
    SigningMark(#[from] crate::signing_mark::MarkError),
    #[error(transparent)]
    Vm(#[from] VmError),
    #[error(transparent)]
    Net(#[from] NetError),
    #[error("the genesis state does not build: {0}")]
    GenesisTree(#[from] TreeError),
    #[error("the genesis audit log does not build: {0}")]
    GenesisLog(#[from] LogError),
    #[error("a block could not be executed: {0}")]
    Execute(#[from] ExecError),
    #[error("the database has a tip but no genesis block")]
    NoGenesisBlock,
    #[error("the database was created for another genesis (chain {chain_id}); use a new data directory")]
    OtherGenesis { chain_id: String },
    #[error("the state has no governance contract: the database is from an older version")]
    NoGovernance,
    #[error("key {key} is not a validator")]
    NotValidator { key: PublicKey },
    #[error(
        "key {key} is not in the current validator set (epoch {epoch}), so this node runs as a full node, \
         and a full node needs p2p.peers to sync from"
    )]
    FullNodeWithoutPeers { key: PublicKey, epoch: u64 },
    #[error(
        "this chain runs sm2-sm3, whose validators and full nodes need an ed25519 transport key: set p2p.transport_key_file"
    )]
    NoTransportKey,
    #[error("p2p.transport_key_file {path} holds an {suite} key; a transport key is ed25519")]
    TransportKeySuite { path: PathBuf, suite: shutong_types::Suite },
    #[error(
        "this node's transport key {transport} is not the one bound to its validator key {key} in the set in force ({bound}): \
         p2p.transport_key_file names another key"
    )]
    TransportNotBound { key: PublicKey, transport: PublicKey, bound: String },
    #[error("rpc.tls.{field} {path}: {reason}")]
    Tls { field: &'static str, path: PathBuf, reason: String },
    #[error("cannot listen for RPC on {address}: {reason}")]
    RpcListen { address: SocketAddr, reason: String },
    #[error("cannot start the {thread} thread: {source}")]
    Thread { thread: &'static str, source: std::io::Error },
    #[error("{path}: {source}")]
    Io { path: PathBuf, source: std::io::Error },
    #[error(transparent)]
    Backup(#[from] shutong_api::backup::BackupError),
    #[error(transparent)]
    Admin(#[from] crate::admin::AdminError),
    #[error("the backup is of chain {backup}, and this home is of chain {home}: restore it into a home of its chain")]
    BackupOfAnotherChain { backup: String, home: String },
    #[error(
        "this home has no signing high-water mark ({path}), so nothing says in which views its validator signed \
         after the backup was taken: pass --signing-floor EPOCH:VIEW with the epoch and consensus view another \
         validator's `shutong status` shows now (the node will not vote at or below it), or restore the mark"
    )]
    RestoreWithoutMark { path: PathBuf },
    #[error("this home keeps its signing high-water mark {path}, which is never lowered: drop --signing-floor")]
    RestoreFloorOverMark { path: PathBuf },
    #[error("the database directory {path} is not empty: move it aside (the node must be stopped) and restore again")]
    RestoreOverData { path: PathBuf },
    #[error("the restored database holds {found}, not the {named} its manifest names: it was removed")]
    RestoredTip { found: String, named: String },
}

impl Error {
    /// Maps an I/O failure on `path` to [`Error::Io`], for `map_err`.
    pub fn io(path: &std::path::Path) -> impl FnOnce(std::io::Error) -> Error + '_ {
        move |source| Error::Io { path: path.to_path_buf(), source }
    }
}
