//! The gas schedule. Gas is wasmtime fuel: a cost per wasm operator (the table
//! [`Schedule::operator_cost`] builds), plus the host-call charges below, taken before the
//! host does any work.
//!
//! A schedule has a version, and the chain's genesis names the version it runs
//! (`vm.gas_schedule` in the genesis file). Changing any number here, or anything wasmtime
//! charges per operator, changes gas and so the state root: it needs a new version, added
//! next to the old one, never an edit of a released one. The test
//! `operator_costs_are_pinned` fails if a wasmtime upgrade changes the operator table
//! underneath us.

use shutong_types::Suite;
use wasmtime::{OperatorCost, VariableOperatorCost};

/// One version of the cost table.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Schedule {
    pub version: u32,
    /// Charged once per call, for instantiation.
    pub call_base: u64,
    /// Charged on every host call.
    pub host_call_base: u64,
    /// Per byte a host call copies between guest memory and the host.
    pub per_byte: u64,
    /// Extra for a storage read, plus `per_byte` per byte of key and value.
    pub storage_read_base: u64,
    /// Extra for a storage write or removal, plus `persisted_per_byte` per byte of key and value.
    pub storage_write_base: u64,
    /// Per byte of anything a call makes the node keep: storage writes, events, audit
    /// leaves and output. A block's gas limit so bounds what its execution accumulates
    /// (`block_gas_max / persisted_per_byte` bytes).
    pub persisted_per_byte: u64,
    /// Extra for an event.
    pub event_base: u64,
    /// Extra for starting a prefix iteration, and for each entry it returns (plus
    /// `per_byte` per byte of key and value).
    pub iter_base: u64,
    pub iter_per_entry: u64,
    /// Hashing: base plus per byte hashed.
    pub blake3_base: u64,
    pub blake3_per_byte: u64,
    /// One ed25519 signature check (about 50 µs on the reference machine), plus
    /// `per_byte` per byte of message.
    pub ed25519_verify: u64,
    /// SM3 (the `hash` host call on an `sm2-sm3` chain): base plus per byte hashed.
    pub sm3_base: u64,
    pub sm3_per_byte: u64,
    /// One SM2 signature check, plus `per_byte` per byte of key and message.
    pub sm2_verify: u64,
    /// Extra for appending an audit-log leaf.
    pub audit_append_base: u64,
    /// Extra for a cross-contract call, beyond what the callee itself uses.
    pub cross_call_base: u64,
    /// Per 64 KiB page a `memory.grow` asks for.
    pub memory_grow_per_page: u8,
    /// Every lifecycle operation (upload, instantiate, migrate, freeze, unfreeze).
    pub lifecycle_base: u64,
    /// Per byte of uploaded code: storing it, and validating and compiling it on every node.
    pub upload_per_byte: u64,
}

/// Version 1, the first.
pub const V1: Schedule = Schedule {
    version: 1,
    call_base: 10_000,
    host_call_base: 50,
    per_byte: 1,
    storage_read_base: 500,
    storage_write_base: 2_000,
    persisted_per_byte: 10,
    event_base: 500,
    iter_base: 1_000,
    iter_per_entry: 200,
    blake3_base: 100,
    blake3_per_byte: 1,
    ed25519_verify: 50_000,
    sm3_base: 300,
    sm3_per_byte: 5,
    sm2_verify: 250_000,
    audit_append_base: 1_000,
    cross_call_base: 5_000,
    memory_grow_per_page: 64,
    lifecycle_base: 20_000,
    upload_per_byte: 50,
};

/// Every schedule this build knows, oldest first.
pub const SCHEDULES: &[&Schedule] = &[&V1];

/// The schedule a new chain gets.
pub const CURRENT: u32 = 1;

/// The schedule with `version`, if this build knows it.
pub fn schedule(version: u32) -> Option<&'static Schedule> {
    SCHEDULES.iter().copied().find(|s| s.version == version)
}

impl Schedule {
    /// Hashing `len` bytes with the suite's hash (the `hash` host call).
    pub fn hash_cost(&self, suite: Suite, len: usize) -> u64 {
        match suite {
            Suite::Ed25519Blake3 => self.blake3_base + self.blake3_per_byte * len as u64,
            Suite::Sm2Sm3 => self.sm3_base + self.sm3_per_byte * len as u64,
        }
    }

    /// One signature check in the suite (the `verify_signature` host call).
    pub fn verify_cost(&self, suite: Suite) -> u64 {
        match suite {
            Suite::Ed25519Blake3 => self.ed25519_verify,
            Suite::Sm2Sm3 => self.sm2_verify,
        }
    }

    /// wasmtime's per-operator fuel table for this schedule: one unit per operator, nothing
    /// for the control and no-op instructions that compile to no code, and per-byte or
    /// per-page charges for the bulk operators whose work depends on an operand.
    pub fn operator_cost(&self) -> OperatorCost {
        let mut cost = OperatorCost::new();
        cost.variable =
            VariableOperatorCost { memory_grow_per_page: self.memory_grow_per_page, ..VariableOperatorCost::new() };
        cost
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// blake3 of the operator table's debug form, for version 1. If a wasmtime upgrade
    /// changes any operator's cost, this fails: gas would change under a released schedule.
    const V1_OPERATOR_TABLE: &str = "1833eb49f92b9e11b3bb0b9a331cb7ca617372407d9fbcf57e6d6ab73de2c04a";

    #[test]
    fn operator_costs_are_pinned() {
        let table = format!("{:?}", V1.operator_cost());
        let digest = blake3::hash(table.as_bytes()).to_hex().to_string();
        assert_eq!(digest, V1_OPERATOR_TABLE, "the operator cost table of schedule 1 changed");
    }

    #[test]
    fn versions_are_unique_and_current_is_known() {
        let mut versions: Vec<u32> = SCHEDULES.iter().map(|s| s.version).collect();
        versions.dedup();
        assert_eq!(versions.len(), SCHEDULES.len());
        assert!(schedule(CURRENT).is_some());
        assert!(schedule(0).is_none());
    }
}
