//! The JSON-RPC 2.0 interface shared by the node's server and this client: method names,
//! error codes and the shapes of results. The reference is `docs/rpc.md`.

use serde::{Deserialize, Serialize};
use shutong_types::{BlockHeader, Hash, PublicKey};

/// Method names.
pub mod method {
    pub const STATUS: &str = "shutong_status";
    pub const SUBMIT_TX: &str = "shutong_submitTx";
    pub const GET_RECEIPT: &str = "shutong_getReceipt";
    pub const GET_BLOCK: &str = "shutong_getBlock";
    pub const GET_NONCE: &str = "shutong_getNonce";
    pub const QUERY: &str = "shutong_query";
    pub const GET_CODE: &str = "shutong_getCode";
    pub const GET_CONTRACT: &str = "shutong_getContract";
}

/// Application error codes (JSON-RPC reserves -32768..-32000 for itself, and jsonrpsee uses
/// -32700..-32600 and a few in -32000..-32099; these sit in -39999..-39000).
pub mod code {
    pub const TX_TOO_LARGE: i32 = -39001;
    pub const TX_MALFORMED: i32 = -39002;
    pub const WRONG_CHAIN: i32 = -39003;
    pub const TX_EXPIRED: i32 = -39004;
    pub const EXPIRY_TOO_FAR: i32 = -39005;
    pub const NONCE_TOO_LOW: i32 = -39006;
    pub const NONCE_TOO_HIGH: i32 = -39007;
    pub const TX_DUPLICATE: i32 = -39008;
    pub const BAD_SIGNATURE: i32 = -39009;
    pub const MEMPOOL_FULL: i32 = -39010;
    pub const UNKNOWN_CONTRACT: i32 = -39011;
    pub const UNKNOWN_METHOD: i32 = -39012;
    pub const GAS_LIMIT: i32 = -39013;
    pub const NOT_FOUND: i32 = -39020;
    pub const QUERY_FAILED: i32 = -39021;
    pub const INVALID_PARAMS: i32 = -32602;
    pub const INTERNAL: i32 = -32603;
}

/// `shutong_getCode`: uploaded code's metadata.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CodeInfo {
    pub code_hash: Hash,
    /// The account that uploaded it (zero for genesis code).
    pub uploader: shutong_types::AccountId,
    pub height: u64,
    pub size: u32,
    pub methods: Vec<String>,
}

/// `shutong_getContract`: an instance's metadata.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ContractInfo {
    pub address: shutong_types::Address,
    pub code_hash: Hash,
    pub admin: shutong_types::AccountId,
    pub frozen: bool,
    /// The account that instantiated it (zero for genesis contracts).
    pub creator: shutong_types::AccountId,
    pub label: String,
    pub created_height: u64,
    /// The height of its last migration (its creation height if none).
    pub code_height: u64,
}

/// `shutong_status`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Status {
    pub chain_id: String,
    pub height: u64,
    pub block_hash: Hash,
    pub state_root: Hash,
    pub timestamp_ms: u64,
    /// The view the last committed block was proposed in.
    pub view: u64,
    /// The view this node's consensus is in now.
    #[serde(default)]
    pub consensus_view: u64,
    /// The last view this node saw finalized (it may still be committing up to it).
    #[serde(default)]
    pub finalized_view: u64,
    /// Connected peers.
    #[serde(default)]
    pub peers: u64,
    pub validators: Vec<PublicKey>,
    pub mempool_txs: u64,
}

/// `shutong_getBlock`: the header, its hash, the block's transaction ids and its certificate.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BlockInfo {
    pub hash: Hash,
    pub header: BlockHeader,
    pub txs: Vec<Hash>,
    /// The canonical encoding of the block, hex.
    pub block_hex: String,
    /// The canonical encoding of its finalization certificate, hex; empty for genesis.
    pub certificate_hex: String,
}
