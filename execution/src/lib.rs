//! Shutong's state-transition rules: the executor, the contract lifecycle, epochs, genesis, the state tree, the audit log and the auditors' indexes, with no storage, network or async runtime.
//!
//! Storage implements the readers these modules take ([`state_tree::TreeReader`],
//! [`audit_log::LogReader`], `shutong_vm::state::StateReader`); the node's driver and
//! the benches hand them a block and get back what to commit.

#![forbid(unsafe_code)]

pub mod audit_index;
pub mod audit_log;
pub mod epochs;
pub mod executor;
pub mod genesis;
pub mod lifecycle;
pub mod snapshot;
pub mod state_tree;
