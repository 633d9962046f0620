//! Shutong's API between clients and nodes: JSON-RPC types and codes, the bounded parameter parser, signed requests, key files, keys in PKCS#11 tokens and bounded file reads.
//!
//! The node's JSON-RPC server and the SDK's client both build on this crate: a method's
//! name, its parameters' parser, its result's shape and its error codes are defined once.

#![forbid(unsafe_code)]

pub mod audit_query;
pub mod auth;
pub mod backup;
pub mod files;
pub mod keyfile;
pub mod params;
pub mod pkcs11;
pub mod rpc;

pub use rpc::RpcCode;
