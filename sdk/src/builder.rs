//! Transaction builders for the system contracts.

use shutong_system_api::names;
use shutong_system_api::registry::{OrgKind, OrgStatus, RegisterOrg, UpdateOrg};
use shutong_types::{Address, Call, Encode, Keypair, SignedTransaction, Transaction};

/// Default gas limit of a system-contract call: ample for the registry's methods (about
/// 25,000 to 35,000), small enough that many fit a block's gas limit.
pub const GAS_LIMIT_DEFAULT: u64 = 1_000_000;
/// Default validity window, in blocks from the current height.
pub const EXPIRY_BLOCKS_DEFAULT: u64 = 600;

/// Builds and signs transactions for one account on one chain.
#[derive(Debug, Clone)]
pub struct TxBuilder {
    pub chain_id: String,
    pub key: Keypair,
    pub gas_limit: u64,
}

impl TxBuilder {
    pub fn new(chain_id: &str, key: Keypair) -> TxBuilder {
        TxBuilder { chain_id: chain_id.to_string(), key, gas_limit: GAS_LIMIT_DEFAULT }
    }

    /// Signs a call with `nonce`, valid up to and including `expiry_height`.
    pub fn call(&self, call: Call, nonce: u64, expiry_height: u64) -> SignedTransaction {
        Transaction {
            chain_id: self.chain_id.clone(),
            sender: self.key.account(),
            nonce,
            gas_limit: self.gas_limit,
            expiry_height,
            call,
        }
        .sign(&self.key)
    }
}

/// The registry's address.
pub fn registry() -> Address {
    Address::system(names::REGISTRY)
}

pub fn register_org(id: &str, name: &str, kind: OrgKind) -> Call {
    let args = RegisterOrg { id: id.to_string(), name: name.to_string(), kind };
    Call { contract: registry(), method: "register".into(), args: args.encode() }
}

pub fn update_org(id: &str, name: Option<&str>, status: Option<OrgStatus>) -> Call {
    let args = UpdateOrg { id: id.to_string(), name: name.map(str::to_string), status };
    Call { contract: registry(), method: "update".into(), args: args.encode() }
}

/// The governance system contract's address.
pub fn governance() -> Address {
    Address::system(names::GOVERNANCE)
}

/// Schedules a new validator set (governance admins only); it takes effect
/// `CHANGE_DELAY_BLOCKS` blocks after the block that includes this call.
pub fn set_validators(keys: &[shutong_types::PublicKey]) -> Call {
    let args = shutong_system_api::governance::SetValidators { keys: keys.iter().map(|k| k.0).collect() };
    Call { contract: governance(), method: "set_validators".into(), args: args.encode() }
}
