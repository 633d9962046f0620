//! A crash after this validator's finalize vote was made durable but before the block was
//! committed: on restart the block is recovered from the write-ahead log, not replaced.

use shutong_consensus::SignedVote;
use shutong_node::{Node, init_storage};
use shutong_sdk::Client;
use shutong_storage::{Storage, WalEntry};
use shutong_types::{Block, BlockHeader, Decode, PublicKey, VoteKind, VoteSubject, merkle_root, validator_set_hash};

#[tokio::test(flavor = "multi_thread")]
async fn a_finalized_but_uncommitted_block_is_recovered_from_the_wal() {
    let t = crate::common::TestNode::start().await;
    let (home, genesis, validator, cfg, admin) = (t.home, t.genesis, t.validator, t.cfg, t.admin);
    t.node.expect("running").stop().await;
    let storage = Storage::open(&home.path().join(&cfg.data_dir), shutong_types::Suite::Ed25519Blake3).unwrap();
    let tip = init_storage(&storage, &genesis).unwrap();
    let view = tip.view + 5;
    let header = BlockHeader {
        chain_id: genesis.chain_id.clone(),
        protocol_version: shutong_types::PROTOCOL_VERSION,
        suite: shutong_types::Suite::Ed25519Blake3,
        height: tip.height + 1,
        view,
        parent: tip.hash,
        proposer: validator.public(),
        timestamp_ms: tip.timestamp_ms + 1,
        txs_root: merkle_root::<[u8; 32]>(shutong_types::Suite::Ed25519Blake3, &[]),
        state_root: tip.state_root,
        receipts_root: tip.receipts_root,
        audit_root: tip.audit_root,
        audit_size: tip.audit_size,
        validator_set: validator_set_hash(shutong_types::Suite::Ed25519Blake3, &[validator.public()]),
    };
    let block = Block { header, txs: vec![] };
    let digest = block.header.hash();
    for (kind, with_block) in [(VoteKind::Notarize, Some(block.clone())), (VoteKind::Finalize, None)] {
        let subject = VoteSubject { kind, epoch: 0, view, digest };
        let vote = SignedVote { subject, signer: 0, signature: subject.sign(&genesis.chain_id, &validator) };
        storage.persist_vote(&WalEntry { vote, block: with_block }).unwrap();
    }
    drop(storage);

    let node = Node::start_with(home.path(), cfg, genesis.clone(), validator.clone()).await.unwrap();
    let client = Client::new(&format!("http://{}", node.rpc_addr)).unwrap().signed_for(&genesis.chain_id, admin);
    let recovered = client.block(tip.height + 1).await.unwrap().expect("block recovered");
    assert_eq!(recovered.hash, digest);
    let certificate = shutong_types::Certificate::decode(&hex::decode(&recovered.certificate_hex).unwrap()).unwrap();
    let validators: Vec<PublicKey> = vec![validator.public()];
    certificate.verify(&genesis.chain_id, &validators, 1).unwrap();
    // The next block is proposed in a later view: the recovered view is never voted again.
    let next = loop {
        if let Some(b) = client.block(tip.height + 2).await.unwrap() {
            break b;
        }
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    };
    assert!(next.header.view > view);
    node.stop().await;
}
