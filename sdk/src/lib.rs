//! Shutong's client SDK: how enterprises, departments and auditors meet the chain: client, signer, builders, typed reads, light client and the data gateway.
//!
//! Start with the [`tutorial`]: five chapters of programs that run, as doc tests, against a
//! real node.
//!
//! | module | what it is for |
//! |---|---|
//! | [`client`] | [`Client`]: JSON-RPC to one node, submit and wait, WebSocket subscriptions to blocks and events, typed errors for every RPC code, retries for transient failures only |
//! | [`signer`] | [`Signer`]: one account on one chain; signs with the next nonce, submits, waits, returns the call's output |
//! | [`builder`] | a typed builder for every system-contract operation and the contract lifecycle (upload, instantiate, migrate, freeze) |
//! | [`reads`] | a typed read for every system-contract query |
//! | [`auth`] | signed requests: how a client proves which principal sends a request (from `shutong-api`) |
//! | [`keyfile`] | key files readable by their owner only, optionally sealed under a passphrase (from `shutong-api`) |
//! | [`pkcs11`] | keys in a PKCS#11 token, named by a `pkcs11:` URI: a [`shutong_types::Signer`] like a key file's key, which every builder and client takes (from `shutong-api`) |
//! | [`light`] | [`LightClient`] and [`VerifyingClient`]: every answer checked against headers the validators finalized, trusting only the genesis file; offline audit bundles |
//! | [`gateway`] | the policy enforcement point a department runs beside its database |
//! | [`params`] | every method's parameters, parsed with bounds: the one parser the node uses (from `shutong-api`) |
//! | [`rpc`] | the JSON-RPC wire types and the one table of error codes (`docs/rpc.md` documents every method; from `shutong-api`) |
//!
//! ```
//! use shutong_sdk::system_api::registry::OrgKind;
//! use shutong_sdk::{Client, Signer, builder, reads};
//! use shutong_types::Keypair;
//! # #[tokio::main(flavor = "multi_thread", worker_threads = 2)]
//! # async fn main() -> anyhow::Result<()> {
//! # let dir = tempfile::tempdir()?;
//! # let sandbox = shutong_node::sandbox::Sandbox::start(dir.path()).await?;
//! # let rpc = sandbox.rpc.clone();
//! let client = Client::new(&rpc)?; // e.g. "http://127.0.0.1:26657"
//! let me = Signer::connect(&client, Keypair::generate(shutong_types::Suite::Ed25519Blake3)).await?;
//! me.execute(builder::register_org("jingan-data", "Jing'an Data Co", OrgKind::Enterprise)).await?;
//! // Reads, like writes, are signed by a registered principal: here, the signer's own client.
//! assert_eq!(me.client().read(reads::org("jingan-data")).await?.kind, OrgKind::Enterprise);
//! # sandbox.stop().await;
//! # Ok(()) }
//! ```

#![forbid(unsafe_code)]

pub mod builder;
pub mod client;
pub mod gateway;
pub mod light;
pub mod reads;
pub mod signer;
pub mod tutorial;

/// The API a client shares with the node (`shutong-api`), re-exported so that an SDK user
/// needs one dependency.
pub use shutong_api::{auth, files, keyfile, params, pkcs11, rpc};

pub use builder::TxBuilder;
pub use client::{Client, ClientError, Retry, RpcCode};
pub use light::{LightClient, LightError, VerifyingClient};
pub use shutong_system_api as system_api;
pub use signer::{SendError, Signer};
