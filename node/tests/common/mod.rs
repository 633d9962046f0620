//! A real node in this process for tests: RocksDB in a temporary directory, JSON-RPC on an
//! ephemeral loopback port.

#![allow(clippy::unwrap_used)]
#![allow(dead_code)]

pub mod chain;
pub mod story;

use shutong_node::Node;
use shutong_node::config::Config;
use shutong_node::genesis::{Genesis, GenesisValidator};
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
    pub async fn start() -> TestNode {
        let home = tempfile::tempdir().unwrap();
        let validator = Keypair::from_seed("test-validator");
        let admin = Keypair::from_seed("test-admin");
        let genesis = Genesis::new(
            CHAIN_ID,
            1_795_000_000_000,
            vec![GenesisValidator { name: "v0".into(), public_key: validator.public() }],
            vec![admin.account()],
        );
        let cfg = config();
        let node = Node::start_with(home.path(), cfg.clone(), genesis.clone(), validator.clone()).await.unwrap();
        let client = Client::new(&format!("http://{}", node.rpc_addr)).unwrap();
        TestNode { node: Some(node), home, validator, admin, genesis, cfg, client }
    }

    /// Stops the node and starts it again on the same database.
    pub async fn restart(&mut self) {
        self.node.take().expect("node is running").stop().await;
        let node = Node::start_with(self.home.path(), self.cfg.clone(), self.genesis.clone(), self.validator.clone())
            .await
            .unwrap();
        self.client = Client::new(&format!("http://{}", node.rpc_addr)).unwrap();
        self.node = Some(node);
    }

    /// Signs `call` as `key` with its next committed nonce, expiring 100 blocks from now.
    pub async fn sign(&self, key: &Keypair, call: Call) -> SignedTransaction {
        let height = self.client.status().await.unwrap().height;
        let nonce = self.client.nonce(&key.account()).await.unwrap();
        TxBuilder::new(CHAIN_ID, key.clone()).call(call, nonce, height + 100)
    }

    pub async fn stop(mut self) {
        if let Some(node) = self.node.take() {
            node.stop().await;
        }
    }
}

pub const WAIT: Duration = Duration::from_secs(20);
