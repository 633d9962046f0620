//! A real node in this process for tests: RocksDB in a temporary directory, JSON-RPC on an
//! ephemeral loopback port.

#![allow(clippy::unwrap_used)]
#![allow(dead_code)]

pub mod chain;
pub mod story;

use shutong_execution::genesis::{Genesis, GenesisValidator};
use shutong_node::Node;
use shutong_node::config::Config;
use shutong_sdk::{Client, TxBuilder};
use shutong_types::{Call, Keypair, SignedTransaction};
use std::time::Duration;

pub const CHAIN_ID: &str = "shutong-test";

pub struct TestNode {
    pub node: Option<Node>,
    pub home: tempfile::TempDir,
    pub validator: Keypair,
    pub admin: Keypair,
    pub genesis: Genesis,
    pub cfg: Config,
    pub client: Client,
}

pub fn config() -> Config {
    let mut cfg = Config::default();
    cfg.rpc.listen = "127.0.0.1:0".parse().unwrap();
    cfg.p2p.listen = "127.0.0.1:0".parse().unwrap();
    cfg.consensus.block_interval_ms = 20;
    cfg
}

impl TestNode {
    /// A node with the test config; its `client` signs as the genesis admin (a member of the
    /// governance committee, so a registered caller).
    pub async fn start() -> TestNode {
        Self::start_with(config()).await
    }

    pub async fn start_with(cfg: Config) -> TestNode {
        Self::start_in(shutong_types::Suite::Ed25519Blake3, cfg).await
    }

    /// A node on a chain of `suite`: on `sm2-sm3` its validator and admin keys are SM2, and
    /// its p2p identity an ed25519 transport key bound in genesis.
    pub async fn start_in(suite: shutong_types::Suite, mut cfg: Config) -> TestNode {
        let home = tempfile::tempdir().unwrap();
        let validator = Keypair::from_seed_in(suite, "test-validator");
        let admin = Keypair::from_seed_in(suite, "test-admin");
        let mut v0 = GenesisValidator::new("v0", validator.public());
        if suite == shutong_types::Suite::Sm2Sm3 {
            let transport = Keypair::from_seed("test-transport");
            let file = home.path().join("transport.json");
            shutong_sdk::keyfile::write(&file, &transport, false).unwrap();
            cfg.p2p.transport_key_file = Some(file);
            v0.transport = Some(shutong_types::transport::Transport::bind(CHAIN_ID, &validator, &transport.public()));
        }
        let genesis = Genesis::new(
            CHAIN_ID,
            1_795_000_000_000,
            vec![v0],
            shutong_execution::genesis::CommitteeMember::departments(&[admin.account()]),
        );
        let node = Node::start_with(home.path(), cfg.clone(), genesis.clone(), validator.clone()).await.unwrap();
        let client = Client::new(&format!("http://{}", node.rpc_addr)).unwrap().signed_for(CHAIN_ID, admin.clone());
        TestNode { node: Some(node), home, validator, admin, genesis, cfg, client }
    }

    /// The node's RPC address as a URL.
    pub fn url(&self) -> String {
        format!("http://{}", self.node.as_ref().expect("node is running").rpc_addr)
    }

    /// A client that signs nothing: it reaches status, headers and proofs only.
    pub fn anonymous(&self) -> Client {
        Client::new(&self.url()).unwrap()
    }

    /// Stops the node and starts it again on the same database.
    pub async fn restart(&mut self) {
        self.node.take().expect("node is running").stop().await;
        self.start_again().await;
    }

    /// Starts the stopped node again on the same database.
    pub async fn start_again(&mut self) {
        assert!(self.node.is_none(), "the node is stopped");
        let node = Node::start_with(self.home.path(), self.cfg.clone(), self.genesis.clone(), self.validator.clone())
            .await
            .unwrap();
        self.client =
            Client::new(&format!("http://{}", node.rpc_addr)).unwrap().signed_for(CHAIN_ID, self.admin.clone());
        self.node = Some(node);
    }

    /// Signs `call` as `key` with its next committed nonce, expiring 100 blocks from now.
    pub async fn sign(&self, key: &Keypair, call: Call) -> SignedTransaction {
        let height = self.client.status().await.unwrap().height;
        let nonce = self.client.nonce(&key.account()).await.unwrap();
        TxBuilder::new(CHAIN_ID, key.clone()).call(call, nonce, height + 100).unwrap()
    }

    /// Tells the whole authorisation story (`story.rs`) on this node, as its genesis admin.
    pub async fn tell_the_story(&self) {
        let mut runner = RpcRunner {
            handle: tokio::runtime::Handle::current(),
            client: self.client.clone(),
            chain_id: CHAIN_ID.into(),
            nonces: Default::default(),
            admin: self.admin.clone(),
            voters: Vec::new(),
            suite: self.genesis.suite,
        };
        tokio::task::spawn_blocking(move || story::authorisation_story(&mut runner)).await.unwrap();
    }

    pub async fn stop(mut self) {
        if let Some(node) = self.node.take() {
            node.stop().await;
        }
    }
}

pub const WAIT: Duration = Duration::from_secs(20);

/// `GET path` on the node's RPC port (the probes: `/metrics`, `/health`); the body.
pub async fn http_get(addr: std::net::SocketAddr, path: &str) -> String {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut stream = tokio::net::TcpStream::connect(addr).await.unwrap();
    let request = format!("GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n");
    stream.write_all(request.as_bytes()).await.unwrap();
    let mut answer = Vec::new();
    tokio::time::timeout(WAIT, stream.read_to_end(&mut answer)).await.unwrap().unwrap();
    String::from_utf8_lossy(&answer).to_string()
}

/// Runs the story's calls over JSON-RPC: each one signed with the account's next nonce,
/// submitted to one node and waited for. Call it from a blocking thread.
pub struct RpcRunner {
    pub handle: tokio::runtime::Handle,
    pub client: Client,
    pub chain_id: String,
    pub nonces: std::collections::HashMap<shutong_types::AccountId, u64>,
    pub admin: Keypair,
    /// The committee seats that vote after `admin` proposes.
    pub voters: Vec<Keypair>,
    /// The chain's crypto suite.
    pub suite: shutong_types::Suite,
}

impl story::Runner for RpcRunner {
    fn run(&mut self, key: &Keypair, call: shutong_types::Call, gas: u64) -> shutong_types::Receipt {
        let account = key.account();
        let nonce = match self.nonces.get(&account) {
            Some(nonce) => *nonce,
            None => self.handle.block_on(self.client.nonce(&account)).unwrap(),
        };
        self.nonces.insert(account, nonce + 1);
        let mut txb = TxBuilder::new(&self.chain_id, key.clone());
        txb.gas_limit = gas;
        let tx = txb.call(call, nonce, 50_000).unwrap();
        self.handle.block_on(self.client.submit_and_wait(&tx, Duration::from_secs(30))).unwrap()
    }

    fn now_ms(&mut self) -> u64 {
        self.handle.block_on(self.client.status()).unwrap().timestamp_ms
    }

    fn admin(&self) -> Keypair {
        self.admin.clone()
    }

    fn voters(&self) -> Vec<Keypair> {
        self.voters.clone()
    }

    fn suite(&self) -> shutong_types::Suite {
        self.suite
    }
}

/// A light client trusting only `validators` (the genesis set, whose keys name the chain's
/// suite) syncs through `client` and reads every audit-log leaf, each checked against the
/// newest finalized header.
pub async fn verified_audit_log(
    client: &Client,
    chain_id: &str,
    validators: Vec<shutong_types::PublicKey>,
) -> (shutong_sdk::VerifyingClient, Vec<shutong_types::keyspace::AuditLeaf>) {
    let suite = validators[0].suite();
    let light = shutong_sdk::LightClient::new(chain_id, suite, validators);
    let mut verifying = shutong_sdk::VerifyingClient::new(client.clone(), light);
    let at = verifying.sync().await.unwrap();
    let mut leaves = Vec::new();
    for index in 0..at.header.audit_size {
        leaves.push(verifying.audit_leaf(index).await.unwrap());
    }
    (verifying, leaves)
}
