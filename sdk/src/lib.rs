//! Shutong's client SDK: keys, transaction builders, JSON-RPC client and submit-and-wait.
//!
//! ```no_run
//! # async fn demo() -> Result<(), Box<dyn std::error::Error>> {
//! use shutong_sdk::{builder, Client, TxBuilder};
//! use shutong_sdk::system_api::registry::OrgKind;
//! use shutong_types::Keypair;
//!
//! let client = Client::new("http://127.0.0.1:26657")?;
//! let status = client.status().await?;
//! let key = Keypair::generate();
//! let tx = TxBuilder::new(&status.chain_id, key.clone()).call(
//!     builder::register_org("jingan-data", "Jing'an Data Bureau", OrgKind::Department),
//!     client.nonce(&key.account()).await?,
//!     status.height + builder::EXPIRY_BLOCKS_DEFAULT,
//! );
//! let receipt = client.submit_and_wait(&tx, std::time::Duration::from_secs(10)).await?;
//! assert!(receipt.status.is_success());
//! # Ok(()) }
//! ```

#![forbid(unsafe_code)]

pub mod builder;
pub mod client;
pub mod gateway;
pub mod keyfile;
pub mod light;
pub mod reads;
pub mod rpc;
pub mod signer;

pub use builder::TxBuilder;
pub use client::{Client, ClientError, Retry, RpcCode};
pub use light::{LightClient, LightError, VerifyingClient};
pub use shutong_system_api as system_api;
pub use signer::{SendError, Signer};
