//! A JSON-RPC client for a Shutong node, with submit-and-wait.

use crate::rpc::{BlockInfo, Status, method};
use jsonrpsee::core::client::ClientT;
use jsonrpsee::http_client::{HttpClient, HttpClientBuilder};
use jsonrpsee::rpc_params;
use shutong_types::{AccountId, Address, Encode, Hash, Receipt, SignedTransaction};
use std::time::Duration;

#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    /// The node refused the request; `code` is one of [`crate::rpc::code`].
    #[error("node refused ({code}): {message}")]
    Rpc { code: i32, message: String },
    #[error("cannot reach the node at {url}: {reason}")]
    Transport { url: String, reason: String },
    #[error("no receipt for transaction {tx_id} after {waited:?}")]
    Timeout { tx_id: Hash, waited: Duration },
    #[error("node sent a malformed answer: {0}")]
    Malformed(String),
}

/// A connection to one node's JSON-RPC endpoint.
#[derive(Debug, Clone)]
pub struct Client {
    url: String,
    http: HttpClient,
}

impl Client {
    pub fn new(url: &str) -> Result<Client, ClientError> {
        let http = HttpClientBuilder::default()
            .request_timeout(Duration::from_secs(30))
            .build(url)
            .map_err(|e| ClientError::Transport { url: url.to_string(), reason: e.to_string() })?;
        Ok(Client { url: url.to_string(), http })
    }

    async fn call<T: serde::de::DeserializeOwned>(
        &self,
        name: &str,
        params: jsonrpsee::core::params::ArrayParams,
    ) -> Result<T, ClientError> {
        self.http.request(name, params).await.map_err(|err| match err {
            jsonrpsee::core::ClientError::Call(obj) => {
                ClientError::Rpc { code: obj.code(), message: obj.message().to_string() }
            }
            jsonrpsee::core::ClientError::ParseError(e) => ClientError::Malformed(e.to_string()),
            other => ClientError::Transport { url: self.url.clone(), reason: other.to_string() },
        })
    }

    /// Calls any method by name: for methods without a typed wrapper, and for tools.
    pub async fn call_raw<T: serde::de::DeserializeOwned>(
        &self,
        name: &str,
        params: jsonrpsee::core::params::ArrayParams,
    ) -> Result<T, ClientError> {
        self.call(name, params).await
    }

    pub async fn status(&self) -> Result<Status, ClientError> {
        self.call(method::STATUS, rpc_params![]).await
    }

    /// Submits a signed transaction; returns its id once the node admitted it.
    pub async fn submit(&self, tx: &SignedTransaction) -> Result<Hash, ClientError> {
        self.submit_raw(&tx.encode()).await
    }

    /// Submits raw transaction bytes, as they are: for tools and tests.
    pub async fn submit_raw(&self, bytes: &[u8]) -> Result<Hash, ClientError> {
        self.call(method::SUBMIT_TX, rpc_params![hex::encode(bytes)]).await
    }

    pub async fn receipt(&self, tx_id: &Hash) -> Result<Option<Receipt>, ClientError> {
        self.call(method::GET_RECEIPT, rpc_params![tx_id.to_hex()]).await
    }

    /// `shutong_getReceipt` with the id as given, unchecked: for tools and tests.
    pub async fn receipt_raw_param(&self, tx_id: &str) -> Result<Option<Receipt>, ClientError> {
        self.call(method::GET_RECEIPT, rpc_params![tx_id]).await
    }

    pub async fn block(&self, height: u64) -> Result<Option<BlockInfo>, ClientError> {
        self.call(method::GET_BLOCK, rpc_params![height]).await
    }

    /// The account's next nonce, counting only committed transactions.
    pub async fn nonce(&self, account: &AccountId) -> Result<u64, ClientError> {
        self.call(method::GET_NONCE, rpc_params![account.to_hex()]).await
    }

    /// Runs a contract method read-only against the latest committed state.
    pub async fn query(&self, contract: &Address, method_name: &str, args: &[u8]) -> Result<Vec<u8>, ClientError> {
        let out: String =
            self.call(method::QUERY, rpc_params![contract.to_hex(), method_name, hex::encode(args)]).await?;
        hex::decode(out).map_err(|e| ClientError::Malformed(e.to_string()))
    }

    /// Uploaded code's metadata, if the code is on chain.
    pub async fn code(&self, code_hash: &Hash) -> Result<Option<crate::rpc::CodeInfo>, ClientError> {
        self.call(method::GET_CODE, rpc_params![code_hash.to_hex()]).await
    }

    /// A contract instance's metadata, if there is one at `address`.
    pub async fn contract(&self, address: &Address) -> Result<Option<crate::rpc::ContractInfo>, ClientError> {
        self.call(method::GET_CONTRACT, rpc_params![address.to_hex()]).await
    }

    /// Polls for the receipt of `tx_id` until it appears or `timeout` passes.
    pub async fn wait_for_receipt(&self, tx_id: &Hash, timeout: Duration) -> Result<Receipt, ClientError> {
        let start = tokio::time::Instant::now();
        let mut delay = Duration::from_millis(20);
        loop {
            if let Some(receipt) = self.receipt(tx_id).await? {
                return Ok(receipt);
            }
            if start.elapsed() >= timeout {
                return Err(ClientError::Timeout { tx_id: *tx_id, waited: start.elapsed() });
            }
            tokio::time::sleep(delay).await;
            delay = (delay * 2).min(Duration::from_millis(200));
        }
    }

    /// Submits `tx` and waits for its receipt.
    pub async fn submit_and_wait(&self, tx: &SignedTransaction, timeout: Duration) -> Result<Receipt, ClientError> {
        let tx_id = self.submit(tx).await?;
        self.wait_for_receipt(&tx_id, timeout).await
    }
}
