//! The in-process suite: real nodes (RocksDB, the VM, libp2p, JSON-RPC) started inside the
//! test process, and the in-process chain (`DevChain`) for the contracts' rules. One binary,
//! so RocksDB, wasmtime and libp2p are linked once; `cli/tests/it` holds the tests that run
//! the `shutong` binary as a process.

#![allow(clippy::unwrap_used)]

mod common;

mod access;
mod authz;
mod catalog;
mod executor;
mod lifecycle;
mod metrics;
mod p2p;
mod recovery;
mod rpc;
mod subscriptions;
