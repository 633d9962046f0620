//! The JSON-RPC 2.0 interface shared by the node's server and its clients: method names,
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
    pub const GET_HEADER: &str = "shutong_getHeader";
    pub const GET_FINALIZED: &str = "shutong_getFinalized";
    pub const GET_EPOCH: &str = "shutong_getEpoch";
    pub const GET_STATE_PROOF: &str = "shutong_getStateProof";
    pub const GET_AUDIT_PROOF: &str = "shutong_getAuditProof";
    pub const GET_CONSISTENCY_PROOF: &str = "shutong_getConsistencyProof";
    pub const AUDIT_QUERY: &str = "shutong_auditQuery";
    /// WebSocket only: every committed block (`BlockNotice`), as it commits.
    pub const SUBSCRIBE_BLOCKS: &str = "shutong_subscribeBlocks";
    pub const BLOCK_NOTIFICATION: &str = "shutong_block";
    pub const UNSUBSCRIBE_BLOCKS: &str = "shutong_unsubscribeBlocks";
    /// WebSocket only: every committed event whose topic starts with the given prefix
    /// (`EventNotice`); `grant.` follows every grant change.
    pub const SUBSCRIBE_EVENTS: &str = "shutong_subscribeEvents";
    pub const EVENT_NOTIFICATION: &str = "shutong_event";
    pub const UNSUBSCRIBE_EVENTS: &str = "shutong_unsubscribeEvents";
}

/// One table of every code a node answers with: the [`code`] constants, the [`RpcCode`]
/// variants and their metric labels come from it, so they cannot drift apart.
macro_rules! codes {
    ($($(#[$doc:meta])* $variant:ident = $name:ident = $value:literal, $label:literal;)*) => {
        /// Application error codes (JSON-RPC reserves -32768..-32000 for itself, and jsonrpsee
        /// uses -32700..-32600 and a few in -32000..-32099; these sit in -39999..-39000).
        pub mod code {
            $($(#[$doc])* pub const $name: i32 = $value;)*
        }

        /// What a node's refusal means, one variant per code of [`code`].
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
        pub enum RpcCode {
            $($(#[$doc])* $variant,)*
            /// A code this build does not know.
            Other(i32),
        }

        impl RpcCode {
            pub fn from_code(code: i32) -> RpcCode {
                match code {
                    $($value => RpcCode::$variant,)*
                    other => RpcCode::Other(other),
                }
            }

            /// The number on the wire.
            pub fn code(self) -> i32 {
                match self {
                    $(RpcCode::$variant => $value,)*
                    RpcCode::Other(code) => code,
                }
            }

            /// A short name, for metric labels and logs.
            pub fn label(self) -> &'static str {
                match self {
                    $(RpcCode::$variant => $label,)*
                    RpcCode::Other(_) => "other",
                }
            }
        }
    };
}

codes! {
    TxTooLarge = TX_TOO_LARGE = -39001, "too_large";
    TxMalformed = TX_MALFORMED = -39002, "malformed";
    WrongChain = WRONG_CHAIN = -39003, "wrong_chain";
    TxExpired = TX_EXPIRED = -39004, "expired";
    ExpiryTooFar = EXPIRY_TOO_FAR = -39005, "expiry_too_far";
    NonceTooLow = NONCE_TOO_LOW = -39006, "nonce_too_low";
    NonceTooHigh = NONCE_TOO_HIGH = -39007, "nonce_too_high";
    TxDuplicate = TX_DUPLICATE = -39008, "duplicate";
    BadSignature = BAD_SIGNATURE = -39009, "bad_signature";
    MempoolFull = MEMPOOL_FULL = -39010, "mempool_full";
    UnknownContract = UNKNOWN_CONTRACT = -39011, "unknown_contract";
    UnknownMethod = UNKNOWN_METHOD = -39012, "unknown_method";
    GasLimit = GAS_LIMIT = -39013, "gas_limit";
    /// The node's disk is full or failed, so it cannot keep the transaction durably: try
    /// another node, or this one once `/health` is ok again.
    StorageUnavailable = STORAGE_UNAVAILABLE = -39014, "storage_unavailable";
    NotFound = NOT_FOUND = -39020, "not_found";
    QueryFailed = QUERY_FAILED = -39021, "query_failed";
    /// The height asked for is 0 (for a proof) or above the tip.
    HeightUnavailable = HEIGHT_UNAVAILABLE = -39022, "height_unavailable";
    /// An audit query without a committed `audit.log_query` transaction that records it.
    QueryNotLogged = QUERY_NOT_LOGGED = -39023, "query_not_logged";
    /// The height is older than this pruning node's retention window: the message names
    /// the oldest height it can prove against. Ask an archive node.
    Pruned = PRUNED = -39024, "pruned";
    /// The method needs a request signed by a registered principal, and this one was not
    /// signed (`Client::signed_by`).
    Unauthenticated = UNAUTHENTICATED = -39030, "unauthenticated";
    /// The request's signature headers are malformed, its signature does not verify, its
    /// time is outside the node's window, or it was sent before.
    AuthInvalid = AUTH_INVALID = -39031, "auth_invalid";
    /// The signer is not registered, or lacks the role the method needs.
    Forbidden = FORBIDDEN = -39032, "forbidden";
    /// Too many requests from this address or principal: slow down and retry.
    RateLimited = RATE_LIMITED = -39033, "rate_limited";
    /// The call ran over the node's time limit.
    CallTimeout = TIMEOUT = -39034, "timeout";
    InvalidParams = INVALID_PARAMS = -32602, "invalid_params";
    Internal = INTERNAL = -32603, "internal";
    /// The request body was over the server's limit (the server's own code).
    RequestTooLarge = REQUEST_TOO_LARGE = -32007, "request_too_large";
}

impl RpcCode {
    /// Whether the same request may succeed later unchanged: the pool was full, the
    /// caller was over its rate, or the node's disk could not take it. Everything else a node refuses is about the request itself,
    /// and repeating it changes nothing. (A retried signed request is signed anew.)
    pub fn is_transient(self) -> bool {
        matches!(self, RpcCode::MempoolFull | RpcCode::RateLimited | RpcCode::StorageUnavailable)
    }
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
    /// The chain's crypto suite (absent from nodes older than the field: `ed25519-blake3`).
    #[serde(default)]
    pub suite: shutong_types::Suite,
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
    /// True on a full node: it follows the chain by block sync and does not vote.
    #[serde(default)]
    pub full_node: bool,
    /// The oldest height whose block, receipts and state this node still holds (genesis and
    /// each epoch's last block are always kept): 1 on an archive node.
    #[serde(default)]
    pub retained_from: u64,
    /// True on an archive node, which never prunes.
    #[serde(default)]
    pub archive: bool,
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

/// `shutong_getHeader` and `shutong_getFinalized`: a committed header in its canonical
/// encoding, with the certificate that finalized it if it has one of its own (a block
/// finalized through a descendant has none; walk up to the next one that does).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct HeaderInfo {
    pub height: u64,
    pub header_hex: String,
    #[serde(default)]
    pub certificate_hex: Option<String>,
}

/// `shutong_getStateProof`: a key's value in the state whose root header `height` carries
/// (the state after block `height − 1`), with its proof.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StateProofInfo {
    pub height: u64,
    pub key_hex: String,
    pub value_hex: Option<String>,
    /// A `shutong_types::smt::StateProof`, canonically encoded.
    pub proof_hex: String,
}

/// `shutong_getAuditProof`: an audit-log leaf and its inclusion proof in the log whose root
/// and size header `height` carries.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AuditProofInfo {
    pub height: u64,
    pub index: u64,
    /// The leaf (`shutong_types::keyspace::AuditLeaf`), canonically encoded.
    pub leaf_hex: String,
    /// A `shutong_types::auditlog::InclusionProof`, canonically encoded.
    pub proof_hex: String,
}

/// `shutong_getConsistencyProof`: that the log of `from` leaves is a prefix of the log
/// header `height` commits to.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ConsistencyInfo {
    pub height: u64,
    /// A `shutong_types::auditlog::ConsistencyProof`, canonically encoded.
    pub proof_hex: String,
}

/// `shutong_getEpoch`: how epoch `epoch` (≥ 1) began, in a form a light client checks with
/// nothing but the previous epoch's validators: the previous epoch's last header and its own
/// finalization certificate, and proofs of the governance contract's current set and
/// scheduled change in the state that header commits to.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct EpochInfo {
    pub epoch: u64,
    pub start_height: u64,
    pub last_header: HeaderInfo,
    pub validators: StateProofInfo,
    pub pending: StateProofInfo,
}

/// `shutong_auditQuery`: an auditor's question. `by` is `resource`, `grant`, `org`,
/// `principal`, `purpose` or `time`; `value` is what it must equal (unused for `time`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AuditQuery {
    pub by: String,
    #[serde(default)]
    pub value: String,
    pub from_ms: u64,
    pub to_ms: u64,
    /// The header to prove against (the newest committed if absent).
    #[serde(default)]
    pub height: Option<u64>,
    /// Where the previous page ended.
    #[serde(default)]
    pub cursor: Option<String>,
    /// Items per page, 1 to 100 (100 if absent).
    #[serde(default)]
    pub limit: Option<u32>,
    /// The committed `audit.log_query` transaction that records this question.
    pub log_tx: Hash,
}

/// `shutong_auditQuery`: one page of matching leaves, each with its inclusion proof in the
/// log header `height` commits to, oldest first; `next` is the cursor of the next page. The
/// first page also carries what proves where the answer starts, the last one what proves
/// where it ends ([`Completeness`]).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AuditPage {
    pub height: u64,
    pub items: Vec<AuditProofInfo>,
    pub next: Option<String>,
    #[serde(default, flatten)]
    pub completeness: Completeness,
}

/// What proves an answer complete. Every entry of the system contracts is numbered without
/// gaps in the sequence of each selector it answers (the log itself numbers every leaf, for
/// `time`), so an answer is complete when its items hold consecutive numbers, `before`
/// holds the number just below the first (or the first is 0), and `after` holds the number
/// just above the last, or `count` shows that none follows in the header's state.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Completeness {
    /// The matching leaf just before the period, if one precedes it (first page).
    #[serde(default)]
    pub before: Option<AuditProofInfo>,
    /// The matching leaf just after the period, if the header's log holds one (last page).
    #[serde(default)]
    pub after: Option<AuditProofInfo>,
    /// The selector's entry count in the header's state, when no leaf follows (last page;
    /// not for `time`, whose count is the header's log size).
    #[serde(default)]
    pub count: Option<StateProofInfo>,
}

/// A committed block, as subscribers see it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BlockNotice {
    pub height: u64,
    pub hash: Hash,
    pub timestamp_ms: u64,
    /// The block's transaction ids, in order.
    pub txs: Vec<Hash>,
    /// The ids of those whose call failed (aborted, out of gas, …): committed, nonce used,
    /// nothing else changed.
    #[serde(default)]
    pub failed: Vec<Hash>,
    /// Every event its successful transactions emitted, in order.
    pub events: Vec<EventNotice>,
}

/// One committed event.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct EventNotice {
    pub height: u64,
    pub tx_id: Hash,
    pub contract: shutong_types::Address,
    pub topic: String,
    pub data_hex: String,
}
