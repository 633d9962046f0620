//! The executor on a real database: receipts, gas and writes of one block with every kind
//! of outcome, and the same results on two independent nodes.

use shutong_codec::Decode;
use shutong_execution::executor::{BlockOutput, Executor, decode_nonce};
use shutong_execution::genesis::{Genesis, GenesisValidator};
use shutong_node::init_storage;
use shutong_sdk::system_api::registry::OrgKind;
use shutong_sdk::{TxBuilder, builder};
use shutong_storage::Storage;
use shutong_types::keyspace;
use shutong_types::{Address, Block, BlockHeader, Call, ExecStatus, Hash, Keypair, validator_set_hash};
use shutong_vm::{Vm, VmConfig};
use std::sync::Arc;

fn run(block_of: impl Fn(&Genesis, Hash, Hash, u64) -> Block) -> (BlockOutput, Hash) {
    let dir = tempfile::tempdir().unwrap();
    let storage = Arc::new(Storage::open(dir.path(), shutong_types::Suite::Ed25519Blake3).unwrap());
    let validator = Keypair::from_seed("v");
    let genesis = Genesis::new(
        "exec-test",
        1_000,
        vec![GenesisValidator::new("v", validator.public())],
        shutong_execution::genesis::CommitteeMember::departments(&[Keypair::from_seed("admin").account()]),
    );
    let tip = init_storage(&storage, &genesis).unwrap();
    let executor = Executor::new(Arc::new(Vm::new(VmConfig::default()).unwrap()), storage.clone());
    let block = block_of(&genesis, tip.hash, tip.state_root, tip.timestamp_ms);
    (executor.execute(&block).unwrap(), tip.state_root)
}

fn block(genesis: &Genesis, parent: Hash, state_root: Hash, time: u64) -> Block {
    let a = TxBuilder::new("exec-test", Keypair::from_seed("a"));
    let mut a_poor = a.clone();
    a_poor.gas_limit = 15_000;
    let b = TxBuilder::new("exec-test", Keypair::from_seed("b"));
    let register = |id: &str| builder::register_org(id, "Org", OrgKind::Enterprise);
    let nowhere = Call { contract: Address([0xee; 32]), method: "x".into(), args: vec![] };
    let txs = vec![
        a.call(register("alpha"), 0, 10).unwrap(),
        a.call(register("again"), 0, 10).unwrap(),
        a_poor.call(register("poor"), 1, 10).unwrap(),
        b.call(nowhere, 0, 10).unwrap(),
        b.call(register("alpha"), 1, 10).unwrap(),
    ];
    let header = BlockHeader {
        chain_id: genesis.chain_id.clone(),
        protocol_version: shutong_types::PROTOCOL_VERSION,
        suite: shutong_types::Suite::Ed25519Blake3,
        height: 1,
        view: 1,
        parent,
        proposer: genesis.validators[0].public_key,
        timestamp_ms: time + 1,
        txs_root: Block::txs_root(shutong_types::Suite::Ed25519Blake3, &txs),
        state_root,
        receipts_root: Hash::ZERO,
        audit_root: Hash::ZERO,
        audit_size: 0,
        validator_set: validator_set_hash(shutong_types::Suite::Ed25519Blake3, &genesis.validator_keys()),
    };
    Block { header, txs }
}

#[test]
fn each_outcome_gets_its_receipt_gas_and_writes() {
    let (out, before) = run(block);
    let statuses: Vec<&ExecStatus> = out.receipts.iter().map(|r| &r.status).collect();
    assert_eq!(statuses[0], &ExecStatus::Success);
    assert!(matches!(statuses[1], ExecStatus::Rejected(m) if m.contains("nonce 0 is not the next nonce 1")));
    assert_eq!(statuses[2], &ExecStatus::OutOfGas);
    assert_eq!(statuses[3], &ExecStatus::UnknownContract);
    assert_eq!(statuses[4], &ExecStatus::Aborted("organisation alpha already exists".into()));
    let gas: Vec<u64> = out.receipts.iter().map(|r| r.gas_used).collect();
    assert!(gas[0] > 10_000);
    // A rejected nonce costs nothing; a call to no contract costs the call's base charge.
    assert_eq!((gas[1], gas[2], gas[3]), (0, 15_000, shutong_vm::gas::V1.call_base));
    assert!(gas[4] > 10_000);
    assert_eq!(out.gas_used, gas.iter().sum::<u64>());
    assert_eq!(out.receipts[0].events.len(), 1);
    assert!(out.receipts[2..].iter().all(|r| r.events.is_empty()));
    for (seed, nonce) in [("a", 2), ("b", 2)] {
        let key = keyspace::account_nonce(&Keypair::from_seed(seed).account());
        assert_eq!(decode_nonce(out.writes.get(&key).cloned().flatten()), nonce, "nonce of {seed}");
    }
    let org_keys = out.writes.keys().filter(|k| k[0] == keyspace::CONTRACT_STORAGE).count();
    // The organisation and its admin's index entry (`registry::admin_key`).
    assert_eq!(org_keys, 2, "only the successful registration wrote contract storage");
    assert_ne!(out.state_root, before);
    for (i, r) in out.receipts.iter().enumerate() {
        assert_eq!((r.height, r.index as usize), (1, i));
        let _ = shutong_types::Receipt::decode(&shutong_codec::Encode::encode(r)).unwrap();
    }
}

#[test]
fn two_nodes_compute_the_same_results() {
    let (one, _) = run(block);
    let (two, _) = run(block);
    assert_eq!(one.receipts, two.receipts);
    assert_eq!(one.writes, two.writes);
    assert_eq!((one.state_root, one.receipts_root), (two.state_root, two.receipts_root));
}
