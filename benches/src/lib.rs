//! Shutong's cross-crate criterion benchmarks.
//!
//! Fixtures shared by the benches: a node's storage with genesis in a temporary directory,
//! its VM and executor, and signed registry transactions.

use shutong_codec::Encode;
use shutong_execution::executor::Executor;
use shutong_execution::genesis::{Genesis, GenesisValidator};
use shutong_node::init_storage;
use shutong_sdk::system_api::registry::{GetOrg, OrgKind, RegisterOrg};
use shutong_sdk::{TxBuilder, builder};
use shutong_storage::{Storage, Tip};
use shutong_types::keyspace::{self, Instance};
use shutong_types::{AccountId, Block, BlockHeader, Hash, Keypair, SignedTransaction, merkle_root, validator_set_hash};
use shutong_vm::{CallContext, Vm, VmConfig};
use std::sync::Arc;

pub const CHAIN_ID: &str = "shutong-bench";

/// A fresh node database with genesis, and an executor over it.
#[allow(missing_debug_implementations)]
pub struct Fixture {
    pub dir: tempfile::TempDir,
    pub storage: Arc<Storage>,
    pub vm: Arc<Vm>,
    pub executor: Executor,
    pub genesis: Genesis,
    pub tip: Tip,
    pub validator: Keypair,
}

impl Default for Fixture {
    fn default() -> Self {
        Fixture::new()
    }
}

impl Fixture {
    pub fn new() -> Fixture {
        let dir = tempfile::tempdir().expect("temp dir");
        let storage = Arc::new(Storage::open(dir.path(), shutong_types::Suite::Ed25519Blake3).expect("storage opens"));
        let validator = Keypair::from_seed("bench-validator");
        let genesis = Genesis::new(
            CHAIN_ID,
            1_795_000_000_000,
            vec![GenesisValidator::new("v0", validator.public())],
            shutong_execution::genesis::CommitteeMember::departments(&[Keypair::from_seed("bench-admin").account()]),
        );
        let tip = init_storage(&storage, &genesis).expect("genesis");
        let vm = Arc::new(Vm::new(VmConfig::default()).expect("vm"));
        let executor = Executor::new(Arc::clone(&vm), storage.clone());
        // Compile the system contracts into the VM's cache, as a running node has them, so
        // that benches measure calls and commits, not cranelift.
        for contract in &genesis.contracts {
            vm.has_method(contract.code_hash, &*storage, "get").expect("system contract compiles");
        }
        Fixture { dir, storage, vm, executor, genesis, tip, validator }
    }

    /// Block 1 with `txs`, on genesis.
    pub fn block(&self, txs: Vec<SignedTransaction>) -> Block {
        let header = BlockHeader {
            chain_id: CHAIN_ID.into(),
            protocol_version: shutong_types::PROTOCOL_VERSION,
            suite: shutong_types::Suite::Ed25519Blake3,
            height: 1,
            view: 1,
            parent: self.tip.hash,
            proposer: self.validator.public(),
            timestamp_ms: self.tip.timestamp_ms + 1,
            txs_root: Block::txs_root(shutong_types::Suite::Ed25519Blake3, &txs),
            state_root: self.tip.state_root,
            receipts_root: merkle_root::<[u8; 32]>(shutong_types::Suite::Ed25519Blake3, &[]),
            audit_root: self.tip.audit_root,
            audit_size: self.tip.audit_size,
            validator_set: validator_set_hash(shutong_types::Suite::Ed25519Blake3, &[self.validator.public()]),
        };
        Block { header, txs }
    }
}

/// `count` registrations from `count` different accounts (nonce 0 each), ids from `first`.
pub fn signed_registrations(count: usize, first: usize) -> Vec<SignedTransaction> {
    (first..first + count)
        .map(|i| {
            let key = Keypair::from_seed(&format!("bench-account-{i}"));
            let call = builder::register_org(&format!("org-{i}"), "Benchmark Organisation", OrgKind::Enterprise);
            TxBuilder::new(CHAIN_ID, key).call(call, 0, 1_000).expect("a key file signs")
        })
        .collect()
}

/// A registry call ready to run: a context, the code hash (the code is warmed into the VM's
/// cache here), the method and its arguments.
pub fn registry_call(fixture: &Fixture, method: &str) -> (CallContext, Hash, String, Vec<u8>) {
    registry_call_with(fixture, method)
}

fn registry_call_with(fixture: &Fixture, method: &str) -> (CallContext, Hash, String, Vec<u8>) {
    let address = builder::registry();
    let instance = fixture.storage.state_get(&keyspace::instance(&address)).expect("registry instance");
    let instance = <Instance as shutong_codec::Decode>::decode(&instance).expect("instance decodes");
    let code = fixture.storage.state_get(&keyspace::code(&instance.code_hash)).expect("registry code");
    fixture.vm.validate(&code).expect("registry compiles");
    let ctx = CallContext { origin: AccountId([7; 32]), contract: address, height: 1, time_ms: 1 };
    // Warm the module cache so the bench measures calls, not compiles.
    let base: Arc<dyn shutong_vm::state::StateReader> = fixture.storage.clone();
    let id = format!("bench-org-{method}");
    let args = RegisterOrg { id: id.clone(), name: "Bench".into(), kind: OrgKind::Enterprise }.encode();
    let out = fixture
        .vm
        .call(ctx.clone(), "register", args.clone(), 10_000_000, shutong_vm::state::Overlay::new(base))
        .expect("no watchdog or pool failure");
    assert!(out.status.is_success());
    if method == "get" {
        // Commit the organisation so `get` finds it.
        let writes = out.block.into_writes();
        let tip = Tip { height: 0, ..fixture.tip };
        let block = fixture.genesis.block();
        // Straight into the flat state the VM reads; the bench needs no state tree.
        fixture
            .storage
            .commit(shutong_storage::Commit {
                block: &block,
                certificate: None,
                receipts: &[],
                writes: &writes,
                tree: &Default::default(),
                log: &Default::default(),
                tip,
            })
            .expect("commit");
        return (ctx, instance.code_hash, "get".into(), GetOrg { id }.encode());
    }
    (ctx, instance.code_hash, method.into(), args)
}
