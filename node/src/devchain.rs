//! A chain on one machine without consensus: a node's RocksDB and executor, one block per
//! transaction, committed at once. For tests and benchmarks of contracts through the real VM
//! and storage; never part of a running node.

use crate::Error;
use crate::init_storage;
use shutong_codec::Decode;
use shutong_execution::executor::Executor;
use shutong_execution::genesis::{Genesis, GenesisValidator};
use shutong_storage::{Commit, Storage, Tip};
use shutong_types::keyspace::{self, Instance};
use shutong_types::{
    AccountId, Address, Block, BlockHeader, Call, Keypair, Receipt, Suite, Transaction, validator_set_hash,
};
use shutong_vm::{Vm, VmConfig};
use std::collections::HashMap;
use std::path::Path;
use std::sync::Arc;

pub const CHAIN_ID: &str = "shutong-dev";

/// A node's database and executor, committing one block per [`DevChain::run`].
pub struct DevChain {
    pub storage: Arc<Storage>,
    pub vm: Arc<Vm>,
    executor: Executor,
    pub tip: Tip,
    validator: Keypair,
    nonces: HashMap<AccountId, u64>,
}

impl std::fmt::Debug for DevChain {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DevChain").field("height", &self.tip.height).finish_non_exhaustive()
    }
}

impl DevChain {
    /// A new chain in `dir` whose genesis admin is `admin` and upload policy `upload_policy`.
    pub fn open(dir: &Path, admin: &AccountId, upload_policy: &str) -> Result<DevChain, Error> {
        DevChain::open_with(dir, &[*admin], 1, upload_policy)
    }

    /// A new chain in `dir` with a governance committee of `admins`, each the seat of a
    /// department of its own (`committee-0`, `committee-1`, ...), deciding by `threshold`
    /// organisations' votes.
    pub fn open_with(dir: &Path, admins: &[AccountId], threshold: u32, upload_policy: &str) -> Result<DevChain, Error> {
        let storage = Arc::new(Storage::open(dir, Suite::Ed25519Blake3)?);
        let validator = Keypair::from_seed("dev-validator");
        let mut genesis = Genesis::new(
            CHAIN_ID,
            1_000,
            vec![GenesisValidator::new("v", validator.public())],
            shutong_execution::genesis::CommitteeMember::departments(admins),
        );
        genesis.upload_policy = upload_policy.to_string();
        genesis.governance_threshold = threshold;
        genesis.validate()?;
        let tip = init_storage(&storage, &genesis)?;
        let vm = Arc::new(Vm::new(VmConfig::default())?);
        let executor = Executor::new(Arc::clone(&vm), storage.clone());
        Ok(DevChain { storage, vm, executor, tip, validator, nonces: HashMap::new() })
    }

    /// Signs `call` by `key` with its next nonce, runs it in a block of its own one second
    /// after the last, and commits the block.
    pub fn run(&mut self, key: &Keypair, call: Call, gas_limit: u64) -> Result<Receipt, Error> {
        let nonce = self.nonces.entry(key.account()).or_insert(0);
        let tx = Transaction {
            chain_id: CHAIN_ID.into(),
            sender: key.account(),
            nonce: *nonce,
            gas_limit,
            expiry_height: self.tip.height + 100,
            call,
        }
        .sign(key);
        *nonce += 1;
        let txs = vec![tx];
        let header = BlockHeader {
            chain_id: CHAIN_ID.into(),
            protocol_version: shutong_types::PROTOCOL_VERSION,
            suite: Suite::Ed25519Blake3,
            height: self.tip.height + 1,
            view: self.tip.view + 1,
            parent: self.tip.hash,
            proposer: self.validator.public(),
            timestamp_ms: self.tip.timestamp_ms + 1_000,
            txs_root: Block::txs_root(Suite::Ed25519Blake3, &txs),
            state_root: self.tip.state_root,
            receipts_root: self.tip.receipts_root,
            audit_root: self.tip.audit_root,
            audit_size: self.tip.audit_size,
            validator_set: validator_set_hash(Suite::Ed25519Blake3, &[self.validator.public()]),
        };
        let block = Block { header, txs };
        let output = self.executor.execute(&block)?;
        let commit = Commit::executed(&block, None, &output);
        let tip = commit.tip;
        self.storage.commit(commit)?;
        self.tip = tip;
        Ok(output.receipts.into_iter().next().expect("a block of one transaction has one receipt"))
    }

    /// The contract instance at `address`.
    pub fn instance(&self, address: &Address) -> Option<Instance> {
        self.storage.state_get(&keyspace::instance(address)).and_then(|b| Instance::decode(&b).ok())
    }
}
