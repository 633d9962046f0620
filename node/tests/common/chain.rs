//! A node's database and executor without consensus: one block per transaction, committed
//! at once. For tests of contracts and the lifecycle through the real VM and RocksDB.

use shutong_codec::Decode;
use shutong_node::executor::Executor;
use shutong_node::genesis::{Genesis, GenesisValidator};
use shutong_node::init_storage;
use shutong_node::storage::{Commit, Storage, Tip};
use shutong_sdk::TxBuilder;
use shutong_types::keyspace::{self, Instance};
use shutong_types::{AccountId, Address, Block, BlockHeader, Call, Hash, Keypair, Receipt, validator_set_hash};
use shutong_vm::{Vm, VmConfig};
use std::collections::HashMap;
use std::sync::Arc;

pub const CHAIN: &str = "contracts-test";

/// A node's database and executor, committing one block per `run`.
pub struct Chain {
    _dir: tempfile::TempDir,
    pub storage: Arc<Storage>,
    executor: Executor,
    pub tip: Tip,
    validator: Keypair,
    nonces: HashMap<AccountId, u64>,
}

impl Chain {
    pub fn new() -> Chain {
        Chain::with_policy("governance")
    }

    pub fn with_policy(upload_policy: &str) -> Chain {
        let dir = tempfile::tempdir().unwrap();
        let storage = Arc::new(Storage::open(dir.path()).unwrap());
        let validator = Keypair::from_seed("v");
        let mut genesis = Genesis::new(
            CHAIN,
            1_000,
            vec![GenesisValidator { name: "v".into(), public_key: validator.public() }],
            vec![admin().account()],
        );
        genesis.upload_policy = upload_policy.to_string();
        let tip = init_storage(&storage, &genesis).unwrap();
        let executor = Executor::new(Arc::new(Vm::new(VmConfig::default()).unwrap()), storage.clone());
        Chain { _dir: dir, storage, executor, tip, validator, nonces: HashMap::new() }
    }

    /// Signs `call` by `key` with its next nonce and runs it in a block of its own.
    pub fn run(&mut self, key: &Keypair, call: Call, gas_limit: u64) -> Receipt {
        let nonce = self.nonces.entry(key.account()).or_insert(0);
        let mut builder = TxBuilder::new(CHAIN, key.clone());
        builder.gas_limit = gas_limit;
        let tx = builder.call(call, *nonce, self.tip.height + 100);
        *nonce += 1;
        let txs = vec![tx];
        let header = BlockHeader {
            chain_id: CHAIN.into(),
            height: self.tip.height + 1,
            view: self.tip.view + 1,
            parent: self.tip.hash,
            proposer: self.validator.public(),
            timestamp_ms: self.tip.timestamp_ms + 1_000,
            txs_root: Block::txs_root(&txs),
            state_root: self.tip.state_root,
            receipts_root: self.tip.receipts_root,
            audit_root: Hash::ZERO,
            audit_size: 0,
            validator_set: validator_set_hash(&[self.validator.public()]),
        };
        let block = Block { header, txs };
        let output = self.executor.execute(&block, &self.tip.state_root).unwrap();
        let tip = Tip {
            height: block.header.height,
            view: block.header.view,
            hash: block.header.hash(),
            timestamp_ms: block.header.timestamp_ms,
            state_root: output.state_root,
            receipts_root: output.receipts_root,
        };
        self.storage.commit(Commit {
            block: &block,
            certificate: None,
            receipts: &output.receipts,
            writes: &output.writes,
            tip,
        });
        self.tip = tip;
        output.receipts.into_iter().next().unwrap()
    }

    pub fn instance(&self, address: &Address) -> Option<Instance> {
        self.storage.state_get(&keyspace::instance(address)).map(|b| Instance::decode(&b).unwrap())
    }
}

/// The genesis admin (also the governance admin).
pub fn admin() -> Keypair {
    Keypair::from_seed("admin")
}
