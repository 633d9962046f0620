//! A one-validator chain in this process, for tutorials and for testing applications
//! against a real node: RocksDB in a directory the caller owns, the system contracts, and
//! JSON-RPC (HTTP and WebSocket) on an ephemeral port of 127.0.0.1. It finalizes a block
//! every 20 ms. Its genesis admin governs it alone (threshold 1), so one key approves code
//! and defines purposes.

use crate::Error;
use crate::Node;
use crate::config::Config;
use shutong_execution::genesis::{Genesis, GenesisValidator};
use shutong_types::Keypair;
use std::path::{Path, PathBuf};

#[derive(Debug)]
pub struct Sandbox {
    node: Node,
    /// The genesis admin: governs the chain alone.
    pub admin: Keypair,
    /// The genesis file, what a light client trusts.
    pub genesis: PathBuf,
    /// The JSON-RPC address, `http://127.0.0.1:PORT`.
    pub rpc: String,
}

impl Sandbox {
    /// Starts a fresh chain with its data in `dir` (which should be empty).
    pub async fn start(dir: &Path) -> Result<Sandbox, Error> {
        let validator = Keypair::generate(shutong_types::Suite::Ed25519Blake3);
        let admin = Keypair::generate(shutong_types::Suite::Ed25519Blake3);
        let now_ms =
            std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_millis() as u64);
        let genesis = Genesis::new(
            "shutong-sandbox",
            now_ms,
            vec![GenesisValidator::new("sandbox", validator.public())],
            shutong_execution::genesis::CommitteeMember::departments(&[admin.account()]),
        );
        let mut cfg = Config::default();
        cfg.rpc.listen = std::net::SocketAddr::from(([127, 0, 0, 1], 0));
        cfg.p2p.listen = std::net::SocketAddr::from(([127, 0, 0, 1], 0));
        cfg.consensus.block_interval_ms = 20;
        std::fs::create_dir_all(dir).map_err(Error::io(dir))?;
        let genesis_path = dir.join(crate::GENESIS_FILE);
        let text = serde_json::to_string_pretty(&genesis).expect("a genesis serializes");
        std::fs::write(&genesis_path, text).map_err(Error::io(&genesis_path))?;
        let node = Node::start_with(dir, cfg, genesis, validator).await?;
        let rpc = format!("http://{}", node.rpc_addr);
        Ok(Sandbox { node, admin, genesis: genesis_path, rpc })
    }

    /// Stops the node and closes its database.
    pub async fn stop(self) {
        self.node.stop().await;
    }
}
