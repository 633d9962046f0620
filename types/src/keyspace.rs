//! The layout of the state key space. Every state key starts with a one-byte space tag.

use crate::hash::Hash;
use crate::keys::{AccountId, Address};
use shutong_codec::{Decode, DecodeError, Encode, Reader, write};

pub const CONTRACT_STORAGE: u8 = 0x01;
pub const ACCOUNT_NONCE: u8 = 0x02;
pub const CODE: u8 = 0x03;
pub const INSTANCE: u8 = 0x04;

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
