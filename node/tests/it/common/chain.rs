//! The tests' view of [`shutong_node::devchain::DevChain`]: a temporary directory, the
//! test genesis admin, and panics instead of errors.

use shutong_node::devchain::DevChain;
use shutong_storage::{Storage, Tip};
use shutong_types::keyspace::Instance;
use shutong_types::{Address, Call, Keypair, Receipt};
use std::sync::Arc;

/// A one-machine chain in a temporary directory.
pub struct Chain {
    _dir: tempfile::TempDir,
    inner: DevChain,
    pub storage: Arc<Storage>,
    pub tip: Tip,
}

impl Chain {
    pub fn new() -> Chain {
        Chain::with_policy("governance")
    }

    pub fn with_policy(upload_policy: &str) -> Chain {
        let dir = tempfile::tempdir().unwrap();
        let inner = DevChain::open(dir.path(), &admin().account(), upload_policy).unwrap();
        let storage = Arc::clone(&inner.storage);
        let tip = inner.tip;
        Chain { _dir: dir, inner, storage, tip }
    }

    /// Runs `call` signed by `key` in a block of its own and returns its receipt.
    pub fn run(&mut self, key: &Keypair, call: Call, gas_limit: u64) -> Receipt {
        let receipt = self.inner.run(key, call, gas_limit).unwrap();
        self.tip = self.inner.tip;
        receipt
    }

    pub fn instance(&self, address: &Address) -> Option<Instance> {
        self.inner.instance(address)
    }
}

/// The genesis admin (also the governance admin).
pub fn admin() -> Keypair {
    Keypair::from_seed("admin")
}

impl super::story::Runner for Chain {
    fn run(&mut self, key: &Keypair, call: Call, gas: u64) -> Receipt {
        Chain::run(self, key, call, gas)
    }

    fn now_ms(&mut self) -> u64 {
        self.tip.timestamp_ms
    }

    fn admin(&self) -> Keypair {
        admin()
    }
}
