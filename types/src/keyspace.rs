//! The layout of the state key space. Every state key starts with a one-byte space tag.

use crate::hash::Hash;
use crate::keys::{AccountId, Address};
use shutong_codec::{Decode, DecodeError, Encode, Reader, write};

pub const CONTRACT_STORAGE: u8 = 0x01;
pub const ACCOUNT_NONCE: u8 = 0x02;
pub const CODE: u8 = 0x03;
pub const INSTANCE: u8 = 0x04;
pub const AUDIT_LEAF: u8 = 0x05;
pub const AUDIT_LOG_SIZE: u8 = 0x06;
pub const CODE_INFO: u8 = 0x07;
pub const CONTRACT_INFO: u8 = 0x08;
pub const PARAM: u8 = 0x09;

/// What the chain records about uploaded code (`shutong_system_api::lifecycle::CodeInfo`).
pub fn code_info(code_hash: &Hash) -> Vec<u8> {
    let mut out = vec![CODE_INFO];
    out.extend_from_slice(&code_hash.0);
    out
}

/// An instance's creator, label and heights (`shutong_system_api::lifecycle::ContractInfo`).
pub fn contract_info(address: &Address) -> Vec<u8> {
    let mut out = vec![CONTRACT_INFO];
    out.extend_from_slice(&address.0);
    out
}

/// A chain parameter set at genesis, by name.
pub fn param(name: &str) -> Vec<u8> {
    let mut out = vec![PARAM];
    out.extend_from_slice(name.as_bytes());
    out
}

/// Chain parameter names.
pub mod params {
    /// Who may upload code (`shutong_system_api::lifecycle::policy`), as UTF-8.
    pub const UPLOAD_POLICY: &str = "upload_policy";
    /// The gas schedule version, a `u32`.
    pub const GAS_SCHEDULE: &str = "gas_schedule";
}

/// A contract's storage key as seen by the chain: the contract sees only `key`.
pub fn contract_storage(address: &Address, key: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(33 + key.len());
    out.push(CONTRACT_STORAGE);
    out.extend_from_slice(&address.0);
    out.extend_from_slice(key);
    out
}

/// The next nonce of an account (a `u64`, absent means 0).
pub fn account_nonce(account: &AccountId) -> Vec<u8> {
    let mut out = vec![ACCOUNT_NONCE];
    out.extend_from_slice(&account.0);
    out
}

/// A contract's wasm code, by its hash.
pub fn code(code_hash: &Hash) -> Vec<u8> {
    let mut out = vec![CODE];
    out.extend_from_slice(&code_hash.0);
    out
}

/// A contract instance's metadata ([`Instance`]), by its address.
pub fn instance(address: &Address) -> Vec<u8> {
    let mut out = vec![INSTANCE];
    out.extend_from_slice(&address.0);
    out
}

/// The audit-log leaf with sequence number `index` (an [`AuditLeaf`]); big-endian, so the
/// log scans in order.
pub fn audit_leaf(index: u64) -> Vec<u8> {
    let mut out = vec![AUDIT_LEAF];
    out.extend_from_slice(&index.to_be_bytes());
    out
}

/// How many leaves the audit log holds (a `u64`, absent means 0).
pub fn audit_log_size() -> Vec<u8> {
    vec![AUDIT_LOG_SIZE]
}

/// One leaf of the audit log: which contract appended what, in which block.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct AuditLeaf {
    pub contract: Address,
    pub height: u64,
    pub time_ms: u64,
    pub data: Vec<u8>,
}

impl Encode for AuditLeaf {
    fn encode_to(&self, out: &mut Vec<u8>) {
        self.contract.encode_to(out);
        write::u64(out, self.height);
        write::u64(out, self.time_ms);
        write::bytes(out, &self.data);
    }
}

impl Decode for AuditLeaf {
    fn decode_from(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        Ok(AuditLeaf {
            contract: Address::decode_from(r)?,
            height: r.u64()?,
            time_ms: r.u64()?,
            data: r.byte_vec("audit_leaf.data", crate::limits::AUDIT_LEAF_BYTES_MAX)?,
        })
    }
}

/// A contract instance: which code it runs and who administers it.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Instance {
    pub code_hash: Hash,
    pub admin: AccountId,
    pub frozen: bool,
}

impl Encode for Instance {
    fn encode_to(&self, out: &mut Vec<u8>) {
        self.code_hash.encode_to(out);
        self.admin.encode_to(out);
        write::bool(out, self.frozen);
    }
}

impl Decode for Instance {
    fn decode_from(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        Ok(Instance {
            code_hash: Hash::decode_from(r)?,
            admin: AccountId::decode_from(r)?,
            frozen: r.bool("instance.frozen")?,
        })
    }
}
