//! One account acting on one chain: signs each call with the account's next nonce, submits
//! it, waits until a block with it is finalized, and hands back what the call returned.
//!
//! ```
//! # #[tokio::main(flavor = "multi_thread", worker_threads = 2)]
//! # async fn main() -> anyhow::Result<()> {
//! # let dir = tempfile::tempdir()?;
//! # let sandbox = shutong_node::sandbox::Sandbox::start(dir.path()).await?;
//! # let client = shutong_sdk::Client::new(&sandbox.rpc)?.signed_by(sandbox.admin.clone());
//! # let key = shutong_types::Keypair::generate(shutong_types::Suite::Ed25519Blake3);
//! use shutong_sdk::{Signer, builder};
//! use shutong_sdk::system_api::registry::OrgKind;
//! let me = Signer::connect(&client, key).await?;
//! let receipt = me.send(builder::register_org("jingan-data", "Jing'an Data Bureau", OrgKind::Department)).await?;
//! assert!(receipt.status.is_success());
//! // The same call again fails in the contract: `execute` makes that an error.
//! let again = me.execute(builder::register_org("jingan-data", "Again", OrgKind::Department)).await;
//! assert!(again.unwrap_err().aborted().is_some());
//! # sandbox.stop().await;
//! # Ok(()) }
//! ```
//!
//! The nonce is asked of the node before each call, which counts committed transactions
//! only: a `Signer` sends one call at a time. To have many transactions of one account in
//! flight, number them yourself with [`crate::TxBuilder`].

use crate::{Client, ClientError, TxBuilder, builder};
use shutong_codec::Decode;
use shutong_types::{Call, ExecStatus, Hash, Receipt, Signer as KeySigner};
use std::sync::Arc;
use std::time::Duration;

/// Why a call did not take effect.
#[derive(Debug, thiserror::Error)]
pub enum SendError {
    /// The node could not be asked, refused the transaction, or no receipt came in time.
    #[error(transparent)]
    Client(#[from] ClientError),
    /// The transaction was finalized but the call failed: only the nonce advanced.
    #[error("transaction {tx_id} failed: {status:?}")]
    Failed { tx_id: Hash, status: ExecStatus },
    /// The call succeeded but its output is not the type asked for.
    #[error("transaction {tx_id} returned something that is not a {expected}")]
    Output { tx_id: Hash, expected: &'static str },
}

impl SendError {
    /// The contract's own message, if it aborted the call.
    pub fn aborted(&self) -> Option<&str> {
        match self {
            SendError::Failed { status: ExecStatus::Aborted(message), .. } => Some(message),
            _ => None,
        }
    }
}

#[derive(Debug, Clone)]
pub struct Signer {
    client: Client,
    builder: TxBuilder,
    /// Blocks from the current height the transaction stays valid.
    pub expiry_blocks: u64,
    /// How long to wait for a receipt.
    pub timeout: Duration,
}

impl Signer {
    /// Asks the node which chain it serves, and signs for that chain from now on.
    pub async fn connect(client: &Client, key: impl Into<Arc<dyn KeySigner>>) -> Result<Signer, ClientError> {
        let status = client.status().await?;
        Ok(Signer::new(client, &status.chain_id, key))
    }

    /// A signer for `chain_id`, without asking the node. Its requests are signed by its key
    /// too, so the node answers it as the principal it is.
    pub fn new(client: &Client, chain_id: &str, key: impl Into<Arc<dyn KeySigner>>) -> Signer {
        let key = key.into();
        Signer {
            client: client.signed_for(chain_id, Arc::clone(&key)),
            builder: TxBuilder::new(chain_id, key),
            expiry_blocks: builder::EXPIRY_BLOCKS_DEFAULT,
            timeout: Duration::from_secs(30),
        }
    }

    /// The same account with another gas limit for each transaction.
    pub fn with_gas_limit(mut self, gas_limit: u64) -> Signer {
        self.builder.gas_limit = gas_limit;
        self
    }

    pub fn key(&self) -> &Arc<dyn KeySigner> {
        &self.builder.key
    }

    pub fn account(&self) -> shutong_types::AccountId {
        self.builder.key.account()
    }

    pub fn client(&self) -> &Client {
        &self.client
    }

    /// Signs, submits and waits; the receipt says whether the call succeeded.
    pub async fn send(&self, call: Call) -> Result<Receipt, ClientError> {
        let status = self.client.status().await?;
        let nonce = self.client.nonce(&self.account()).await?;
        let tx = self.builder.call(call, nonce, status.height.saturating_add(self.expiry_blocks))?;
        self.client.submit_and_wait(&tx, self.timeout).await
    }

    /// Like [`Signer::send`], but a failed call is an error: the output of a successful one.
    pub async fn execute(&self, call: Call) -> Result<Vec<u8>, SendError> {
        let receipt = self.send(call).await?;
        match receipt.status {
            ExecStatus::Success => Ok(receipt.output),
            status => Err(SendError::Failed { tx_id: receipt.tx_id, status }),
        }
    }

    /// Like [`Signer::execute`], decoding the output as `T` (a request or grant id, an
    /// event record).
    pub async fn execute_as<T: Decode>(&self, call: Call) -> Result<T, SendError> {
        let receipt = self.send(call).await?;
        match receipt.status {
            ExecStatus::Success => T::decode(&receipt.output)
                .map_err(|_| SendError::Output { tx_id: receipt.tx_id, expected: std::any::type_name::<T>() }),
            status => Err(SendError::Failed { tx_id: receipt.tx_id, status }),
        }
    }
}
