//! Protocol-wide maxima. Decoding enforces them; a longer field is rejected with a typed error.

pub const CHAIN_ID_BYTES_MAX: u32 = 64;
pub const METHOD_BYTES_MAX: u32 = 64;
/// A call's arguments; large enough for a contract upload (`CODE_BYTES_MAX` plus its framing).
pub const ARGS_BYTES_MAX: u32 = CODE_BYTES_MAX + 1024;
/// The largest encoded signed transaction the mempool admits.
pub const TX_BYTES_MAX: usize = ARGS_BYTES_MAX as usize + 4 * 1024;
pub const BLOCK_TXS_MAX: u32 = 20_000;
/// The largest encoded block a leader builds or a validator votes for.
pub const BLOCK_BYTES_MAX: usize = 4 << 20;
pub const EVENTS_PER_RECEIPT_MAX: u32 = 256;
pub const EVENT_TOPIC_BYTES_MAX: u32 = 64;
pub const EVENT_DATA_BYTES_MAX: u32 = 4 * 1024;
/// The data of one audit-log leaf.
pub const AUDIT_LEAF_BYTES_MAX: u32 = 4 * 1024;
pub const OUTPUT_BYTES_MAX: u32 = 64 * 1024;
pub const MESSAGE_BYTES_MAX: u32 = 1024;
pub const VALIDATORS_MAX: u32 = 256;
/// A contract's wasm code; enough for a std-Rust contract.
pub const CODE_BYTES_MAX: u32 = 512 * 1024;
