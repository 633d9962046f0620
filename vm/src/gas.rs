//! The gas schedule. Gas is wasmtime fuel: one unit per wasm operator (wasmtime's default
//! operator costs), plus the host-call charges below, taken before the host does any work.
//! The schedule has a version; changing any number is a consensus change and needs a new one.

/// The version of this schedule.
pub const SCHEDULE_VERSION: u32 = 1;

/// Charged on every host call.
pub const HOST_CALL_BASE: u64 = 50;
/// Charged per byte a host call reads from or writes to guest memory.
pub const PER_BYTE: u64 = 1;
/// Extra for a storage read, plus `PER_BYTE` per byte of key and value.
pub const STORAGE_READ_BASE: u64 = 500;
/// Extra for a storage write or removal, plus `STORAGE_WRITE_PER_BYTE` per byte of key and value.
pub const STORAGE_WRITE_BASE: u64 = 2_000;
pub const STORAGE_WRITE_PER_BYTE: u64 = 10;
/// Extra for an event, plus `PERSISTED_PER_BYTE` per byte of topic and data.
pub const EVENT_BASE: u64 = 500;
/// Per byte of anything a call makes the node keep: events and output. With storage writes
/// at the same rate, a block's gas limit bounds the bytes its execution can accumulate
/// (`block_gas_max / 10`).
pub const PERSISTED_PER_BYTE: u64 = 10;
/// Charged once per call, for instantiation.
pub const CALL_BASE: u64 = 10_000;
