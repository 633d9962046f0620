//! A JSON-RPC client for a Shutong node, with submit-and-wait.

pub use crate::rpc::RpcCode;
use crate::rpc::{BlockInfo, BlockNotice, EventNotice, Status, method};
use jsonrpsee::core::client::ClientT;
use jsonrpsee::core::client::SubscriptionClientT;
use jsonrpsee::http_client::{HttpBackend, HttpClient, HttpClientBuilder, RpcLogger, RpcService};
use jsonrpsee::rpc_params;
use shutong_types::{AccountId, Address, Encode, Hash, Receipt, SignedTransaction, Signer};
use std::sync::{Arc, OnceLock};
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
    /// The client's signer could not sign (a key in a token that was removed or locked).
    #[error(transparent)]
    Signer(#[from] shutong_types::SignerError),
}

impl ClientError {
    /// The refusal's meaning, if the node refused.
    pub fn code(&self) -> Option<RpcCode> {
        match self {
            ClientError::Rpc { code, .. } => Some(RpcCode::from_code(*code)),
            _ => None,
        }
    }

    /// Whether retrying the same request may help: the node could not be reached, or its
    /// pool was full.
    pub fn is_transient(&self) -> bool {
        match self {
            ClientError::Transport { .. } => true,
            ClientError::Rpc { .. } => self.code().is_some_and(RpcCode::is_transient),
            ClientError::Timeout { .. } | ClientError::Malformed(_) | ClientError::Signer(_) => false,
        }
    }
}

/// How a client retries a request that failed for a transient reason: up to `attempts`
/// tries in all, waiting `first_delay`, then twice as long each time up to `max_delay`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Retry {
    pub attempts: u32,
    pub first_delay: Duration,
    pub max_delay: Duration,
}

impl Retry {
    /// No retries.
    pub const NONE: Retry = Retry { attempts: 1, first_delay: Duration::ZERO, max_delay: Duration::ZERO };
}

impl Default for Retry {
    /// Five tries over about three seconds.
    fn default() -> Retry {
        Retry { attempts: 5, first_delay: Duration::from_millis(200), max_delay: Duration::from_secs(2) }
    }
}

/// The key a client signs its requests with, and the chain they are for (learnt from the
/// node's public status on first use).
#[derive(Debug)]
struct Identity {
    key: Arc<dyn Signer>,
    chain_id: OnceLock<String>,
    /// The last failure of `key` to sign a request: the HTTP layer can only report it as
    /// a transport error, so the client looks here to give it as [`ClientError::Signer`].
    failed: std::sync::Mutex<Option<shutong_types::SignerError>>,
}

/// How the signing layer's failure starts, as the HTTP transport reports it.
const SIGNING_FAILED: &str = "cannot sign the request";

/// Signs each HTTP request with the client's identity, once its chain id is known
/// ([`crate::auth`]); an anonymous client's requests pass unchanged.
#[derive(Debug, Clone)]
struct SignLayer(Option<Arc<Identity>>);

impl<S> tower::Layer<S> for SignLayer {
    type Service = SignRequests<S>;
    fn layer(&self, inner: S) -> SignRequests<S> {
        SignRequests { inner, identity: self.0.clone() }
    }
}

#[derive(Debug, Clone)]
struct SignRequests<S> {
    inner: S,
    identity: Option<Arc<Identity>>,
}

type HttpRequest = jsonrpsee::http_client::HttpRequest;

impl<S> tower::Service<HttpRequest> for SignRequests<S>
where
    S: tower::Service<HttpRequest> + Clone + Send + 'static,
    S::Future: Send,
    S::Error: From<jsonrpsee::http_client::transport::Error>,
{
    type Response = S::Response;
    type Error = S::Error;
    type Future = std::pin::Pin<Box<dyn std::future::Future<Output = Result<S::Response, S::Error>> + Send>>;

    fn poll_ready(&mut self, cx: &mut std::task::Context<'_>) -> std::task::Poll<Result<(), S::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: HttpRequest) -> Self::Future {
        // The service that was polled ready is the one that is called.
        let clone = self.inner.clone();
        let mut inner = std::mem::replace(&mut self.inner, clone);
        let signing =
            self.identity.as_ref().and_then(|id| id.chain_id.get().map(|chain| (Arc::clone(id), chain.clone())));
        let Some((identity, chain_id)) = signing else {
            return Box::pin(inner.call(request));
        };
        Box::pin(async move {
            use http_body_util::BodyExt;
            let (mut parts, body) = request.into_parts();
            // The body is the request's JSON text, already in memory: reading it cannot fail,
            // but if it did the request would not be sent.
            let body = body
                .collect()
                .await
                .map_err(|e| jsonrpsee::http_client::transport::Error::Url(format!("unreadable request body: {e}")))?
                .to_bytes();
            // A signer that fails (a token removed) sends nothing: the request fails.
            let auth = crate::auth::RequestAuth::try_sign(&*identity.key, &chain_id, &body).map_err(|e| {
                let text = format!("{SIGNING_FAILED}: {e}");
                *identity.failed.lock().unwrap_or_else(std::sync::PoisonError::into_inner) = Some(e);
                jsonrpsee::http_client::transport::Error::Url(text)
            })?;
            for (name, value) in auth.headers() {
                if let Ok(value) = http::HeaderValue::from_str(&value) {
                    parts.headers.insert(name, value);
                }
            }
            inner.call(http::Request::from_parts(parts, body.to_vec().into())).await
        })
    }
}

type Http = HttpClient<RpcLogger<RpcService<SignRequests<HttpBackend>>>>;

/// The largest body the client reads from a plain GET (`/metrics`, `/health`).
pub const GET_BODY_BYTES_MAX: usize = 8 << 20;

type GetClient = hyper_util::client::legacy::Client<
    hyper_rustls::HttpsConnector<hyper_util::client::legacy::connect::HttpConnector>,
    http_body_util::Empty<bytes::Bytes>,
>;

/// One HTTP(S) client for every plain GET of the process: HTTP/1.1, TLS verified against
/// the platform's roots, as the JSON-RPC client does.
fn get_client() -> &'static GetClient {
    static CLIENT: OnceLock<GetClient> = OnceLock::new();
    CLIENT.get_or_init(|| {
        use rustls_platform_verifier::BuilderVerifierExt;
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let tls = rustls::ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .expect("ring supports the default protocol versions")
            .with_platform_verifier()
            .with_no_client_auth();
        let https =
            hyper_rustls::HttpsConnectorBuilder::new().with_tls_config(tls).https_or_http().enable_http1().build();
        hyper_util::client::legacy::Client::builder(hyper_util::rt::TokioExecutor::new()).build(https)
    })
}

/// A connection to one node's JSON-RPC endpoint: anonymous ([`Client::new`]), which reaches
/// the public methods (status and proofs), or signing each request as a registered
/// principal ([`Client::signed_by`]), which reaches what the principal's roles allow.
#[derive(Debug, Clone)]
pub struct Client {
    url: String,
    http: Http,
    identity: Option<Arc<Identity>>,
    retry: Retry,
}

impl Client {
    pub fn new(url: &str) -> Result<Client, ClientError> {
        Self::build(url, None)
    }

    fn build(url: &str, identity: Option<Arc<Identity>>) -> Result<Client, ClientError> {
        let http = HttpClientBuilder::default()
            .request_timeout(Duration::from_secs(30))
            .set_http_middleware(tower::ServiceBuilder::new().layer(SignLayer(identity.clone())))
            .build(url)
            .map_err(|e| ClientError::Transport { url: url.to_string(), reason: e.to_string() })?;
        Ok(Client { url: url.to_string(), http, identity, retry: Retry::NONE })
    }

    /// This client, signing every request with `key`: the node answers it as the principal
    /// whose key it is (`docs/rpc.md`, "Access control").
    pub fn signed_by(&self, key: impl Into<Arc<dyn Signer>>) -> Client {
        let chain_id = OnceLock::new();
        if let Some(known) = self.identity.as_ref().and_then(|id| id.chain_id.get()) {
            let _ = chain_id.set(known.clone());
        }
        self.signing(key.into(), chain_id)
    }

    /// [`Client::signed_by`] for a chain the caller already knows.
    pub fn signed_for(&self, chain_id: &str, key: impl Into<Arc<dyn Signer>>) -> Client {
        self.signing(key.into(), OnceLock::from(chain_id.to_string()))
    }

    fn signing(&self, key: Arc<dyn Signer>, chain_id: OnceLock<String>) -> Client {
        let client =
            Self::build(&self.url, Some(Arc::new(Identity { key, chain_id, failed: std::sync::Mutex::default() })))
                .expect("the URL was accepted when this client was built");
        Client { retry: self.retry, ..client }
    }

    /// The key this client signs its requests with, if any.
    pub fn key(&self) -> Option<&Arc<dyn Signer>> {
        self.identity.as_ref().map(|id| &id.key)
    }

    /// Learns the chain id a signing client signs for, from the node's public status.
    async fn ready_to_sign(&self) -> Result<(), ClientError> {
        if let Some(identity) = &self.identity
            && identity.chain_id.get().is_none()
        {
            let status: Status = self.call_once(method::STATUS, rpc_params![]).await?;
            let _ = identity.chain_id.set(status.chain_id);
        }
        Ok(())
    }

    /// This client, retrying transient failures (an unreachable node, a full pool) as
    /// `retry` says; never a refusal of the request itself.
    pub fn with_retry(mut self, retry: Retry) -> Client {
        self.retry = retry;
        self
    }

    async fn call<T: serde::de::DeserializeOwned>(
        &self,
        name: &str,
        params: jsonrpsee::core::params::ArrayParams,
    ) -> Result<T, ClientError> {
        let mut delay = self.retry.first_delay;
        let mut attempt = 1;
        loop {
            let result = match self.ready_to_sign().await {
                Ok(()) => self.call_once(name, params.clone()).await,
                Err(err) => Err(err),
            };
            match result {
                Err(err) if err.is_transient() && attempt < self.retry.attempts => {
                    tracing::debug!(method = name, attempt, %err, "retrying");
                    tokio::time::sleep(delay).await;
                    delay = (delay * 2).min(self.retry.max_delay);
                    attempt += 1;
                }
                result => return result,
            }
        }
    }

    async fn call_once<T: serde::de::DeserializeOwned>(
        &self,
        name: &str,
        params: jsonrpsee::core::params::ArrayParams,
    ) -> Result<T, ClientError> {
        self.http.request(name, params).await.map_err(|err| match err {
            jsonrpsee::core::ClientError::Call(obj) => {
                ClientError::Rpc { code: obj.code(), message: obj.message().to_string() }
            }
            jsonrpsee::core::ClientError::ParseError(e) => ClientError::Malformed(e.to_string()),
            other => {
                let reason = other.to_string();
                let failed = reason
                    .contains(SIGNING_FAILED)
                    .then_some(self.identity.as_ref())
                    .flatten()
                    .and_then(|id| id.failed.lock().unwrap_or_else(std::sync::PoisonError::into_inner).take());
                match failed {
                    // Not transient: the request was never sent.
                    Some(err) => ClientError::Signer(err),
                    None => ClientError::Transport { url: self.url.clone(), reason },
                }
            }
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

    /// Submits `tx` and waits for its receipt. If the node already holds a transaction of
    /// the same sender and nonce (a retried submission whose first answer was lost, or the
    /// same transaction sent twice), it waits for this one's receipt, and gives back the
    /// duplicate refusal if none comes: then the pending one was another transaction.
    pub async fn submit_and_wait(&self, tx: &SignedTransaction, timeout: Duration) -> Result<Receipt, ClientError> {
        let tx_id = match self.submit(tx).await {
            Ok(id) => id,
            Err(err) if err.code() == Some(RpcCode::TxDuplicate) => {
                return match self.wait_for_receipt(&tx.id(), timeout).await {
                    Err(ClientError::Timeout { .. }) => Err(err),
                    other => other,
                };
            }
            Err(err) => return Err(err),
        };
        self.wait_for_receipt(&tx_id, timeout).await
    }
}

/// A live feed from a node over WebSocket; ends when the node closes it.
#[derive(Debug)]
pub struct Subscription<T> {
    // The connection lives as long as the feed.
    _ws: jsonrpsee::ws_client::WsClient,
    inner: jsonrpsee::core::client::Subscription<T>,
}

impl<T: serde::de::DeserializeOwned> Subscription<T> {
    /// The next item, or `None` once the node ended the feed (it closed, or this subscriber
    /// fell too far behind: subscribe again and catch up from blocks).
    pub async fn next(&mut self) -> Option<Result<T, ClientError>> {
        self.inner.next().await.map(|item| item.map_err(|e| ClientError::Malformed(e.to_string())))
    }
}

impl Client {
    /// The node's WebSocket address: its JSON-RPC address with `ws` for `http`.
    pub fn ws_url(&self) -> String {
        match self.url.split_once("://") {
            Some(("https", rest)) => format!("wss://{rest}"),
            Some((_, rest)) => format!("ws://{rest}"),
            None => format!("ws://{}", self.url),
        }
    }

    async fn subscribe<T: serde::de::DeserializeOwned>(
        &self,
        method_name: &str,
        params: jsonrpsee::core::params::ArrayParams,
        unsubscribe: &str,
    ) -> Result<Subscription<T>, ClientError> {
        let url = self.ws_url();
        let transport =
            |e: jsonrpsee::core::ClientError| ClientError::Transport { url: url.clone(), reason: e.to_string() };
        self.ready_to_sign().await?;
        let mut headers = jsonrpsee::http_client::HeaderMap::new();
        if let Some(identity) = &self.identity
            && let Some(chain_id) = identity.chain_id.get()
        {
            // The handshake's body is empty; the connection then acts as the principal.
            for (name, value) in crate::auth::RequestAuth::try_sign(&*identity.key, chain_id, b"")?.headers() {
                if let Ok(value) = http::HeaderValue::from_str(&value) {
                    headers.insert(name, value);
                }
            }
        }
        let ws = jsonrpsee::ws_client::WsClientBuilder::default()
            .set_headers(headers)
            .build(&url)
            .await
            .map_err(transport)?;
        let inner = ws.subscribe(method_name, params, unsubscribe).await.map_err(|err| match err {
            jsonrpsee::core::ClientError::Call(obj) => {
                ClientError::Rpc { code: obj.code(), message: obj.message().to_string() }
            }
            other => transport(other),
        })?;
        Ok(Subscription { _ws: ws, inner })
    }

    /// Every block as it commits.
    pub async fn subscribe_blocks(&self) -> Result<Subscription<BlockNotice>, ClientError> {
        self.subscribe(method::SUBSCRIBE_BLOCKS, rpc_params![], method::UNSUBSCRIBE_BLOCKS).await
    }

    /// Every grant change as it is committed (`grant.issued`, `grant.revoked`,
    /// `grant.suspended`, …; the data is the grant's id): what a gateway listens to.
    pub async fn subscribe_grant_changes(&self) -> Result<Subscription<EventNotice>, ClientError> {
        self.subscribe_events("grant.").await
    }

    /// Every committed event whose topic starts with `prefix` (`grant.` for every grant
    /// change, `""` for all).
    pub async fn subscribe_events(&self, prefix: &str) -> Result<Subscription<EventNotice>, ClientError> {
        self.subscribe(method::SUBSCRIBE_EVENTS, rpc_params![prefix], method::UNSUBSCRIBE_EVENTS).await
    }
}

/// A node's `GET /metrics`, parsed: each sample's name with its labels (as written, e.g.
/// `shutong_p2p_bytes_in_total{kind="batch"}`) and its value.
pub type Metrics = std::collections::BTreeMap<String, f64>;

impl Client {
    /// An HTTP GET of `path` on the node's RPC address, over TLS for an `https` address:
    /// the status code and the body (at most [`GET_BODY_BYTES_MAX`], within 5 s).
    async fn http_get(&self, path: &str) -> Result<(u16, String), ClientError> {
        use http_body_util::BodyExt;
        let transport = |reason: String| ClientError::Transport { url: self.url.clone(), reason };
        let url = format!("{}{path}", self.url.trim_end_matches('/'));
        let uri: http::Uri = url.parse().map_err(|e| transport(format!("{url} is not a URL: {e}")))?;
        let exchange = async {
            let response = get_client().get(uri).await.map_err(|e| transport(e.to_string()))?;
            let status = response.status().as_u16();
            let body = http_body_util::Limited::new(response.into_body(), GET_BODY_BYTES_MAX)
                .collect()
                .await
                .map_err(|e| transport(format!("GET {path}: {e}")))?
                .to_bytes();
            Ok::<_, ClientError>((status, String::from_utf8_lossy(&body).into_owned()))
        };
        tokio::time::timeout(Duration::from_secs(5), exchange)
            .await
            .map_err(|_| transport(format!("no answer to GET {path} within 5 s")))?
    }

    /// The node's metrics (`docs/metrics.md`).
    pub async fn metrics(&self) -> Result<Metrics, ClientError> {
        let (status, body) = self.http_get("/metrics").await?;
        if status != 200 {
            return Err(ClientError::Malformed(format!("GET /metrics answered HTTP {status}")));
        }
        Ok(body
            .lines()
            .filter(|l| !l.starts_with('#'))
            .filter_map(|l| l.rsplit_once(' '))
            .filter_map(|(name, value)| value.parse::<f64>().ok().map(|v| (name.to_string(), v)))
            .collect())
    }

    /// The node's health check: whether it is healthy (HTTP 200) and what it said.
    pub async fn health(&self) -> Result<(bool, serde_json::Value), ClientError> {
        let (status, body) = self.http_get("/health").await?;
        let json = serde_json::from_str(&body).map_err(|e| ClientError::Malformed(format!("GET /health: {e}")))?;
        Ok((status == 200, json))
    }
}
