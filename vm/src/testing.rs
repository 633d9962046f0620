//! Deploying contracts into an in-memory state, for tests and benches.

use crate::Vm;
use crate::state::{MemoryState, Overlay};
use shutong_codec::Encode;
use shutong_types::keyspace::{self, Instance};
use shutong_types::{AccountId, Address};
use std::sync::Arc;

/// A state holding `contracts` (address and code), each administered by `admin`.
pub fn deployed(contracts: &[(Address, &[u8])], admin: AccountId) -> MemoryState {
    let mut state = MemoryState::default();
    for (address, code) in contracts {
        let code_hash = Vm::code_hash(shutong_types::Suite::Ed25519Blake3, code);
        state.0.insert(keyspace::code(&code_hash), code.to_vec());
        state.0.insert(keyspace::instance(address), Instance { code_hash, admin, frozen: false }.encode());
    }
    state
}

/// An overlay over [`deployed`].
pub fn overlay(contracts: &[(Address, &[u8])], admin: AccountId) -> Overlay {
    Overlay::new(Arc::new(deployed(contracts, admin)))
}
