//! Provenance on a real node: an auditor's light client reads the audit log and state with
//! proofs, and catches a node whose RocksDB was changed behind its back: a changed state
//! value, a changed audit leaf, and a rewritten log.

#![allow(clippy::unwrap_used)]

mod common;

use shutong_codec::{Decode, Encode};
use shutong_node::state_tree::{Node, NodeKey};
use shutong_sdk::light::LightError;
use shutong_sdk::system_api::names;
use shutong_types::Address;
use shutong_types::auditlog::LogProofError;
use shutong_types::keyspace;
use shutong_types::smt::StateProofError;
use std::path::Path;

fn org_key(id: &str) -> Vec<u8> {
    let mut key = b"org/".to_vec();
    key.extend_from_slice(id.as_bytes());
    keyspace::contract_storage(&Address::system(names::REGISTRY), &key)
}

/// Opens a stopped node's database directly, as someone with access to its disk could.
fn open_raw(path: &Path) -> rocksdb::DB {
    let names = rocksdb::DB::list_cf(&rocksdb::Options::default(), path).unwrap();
    rocksdb::DB::open_cf(&rocksdb::Options::default(), path, names).unwrap()
}

/// Changes the newest stored state-tree leaf of `key`: its value, not its recorded hash.
fn change_tree_value(db: &rocksdb::DB, key: &[u8]) {
    let cf = db.cf_handle("state_tree").unwrap();
    let mut newest: Option<(NodeKey, Vec<u8>)> = None;
    for item in db.iterator_cf(cf, rocksdb::IteratorMode::Start) {
        let (node_key, bytes) = item.unwrap();
        if let Ok(Node::Leaf(leaf)) = Node::decode(&bytes)
            && leaf.key == key
        {
            let node_key = NodeKey::from_bytes(&node_key).unwrap();
            if newest.as_ref().is_none_or(|(k, _)| k.version <= node_key.version) {
                let mut changed = (*leaf).clone();
                changed.value = b"a value nobody wrote".to_vec();
                newest = Some((node_key, Node::Leaf(changed.into()).encode()));
            }
        }
    }
    let (node_key, bytes) = newest.expect("the key has a leaf");
    db.put_cf(cf, node_key.to_bytes(), bytes).unwrap();
}

#[tokio::test(flavor = "multi_thread")]
async fn an_auditor_verifies_the_log_and_catches_a_changed_database() {
    let mut t = common::TestNode::start().await;
    let mut runner = common::RpcRunner {
        handle: tokio::runtime::Handle::current(),
        client: t.client.clone(),
        chain_id: common::CHAIN_ID.into(),
        nonces: Default::default(),
        admin: t.admin.clone(),
    };
    tokio::task::spawn_blocking(move || common::story::authorisation_story(&mut runner)).await.unwrap();

    // The auditor trusts the genesis validator and nothing else.
    let validators = vec![t.validator.public()];
    let (mut before, leaves) = common::verified_audit_log(&t.client, common::CHAIN_ID, validators.clone()).await;
    let audit = Address::system(names::AUDIT);
    assert!(leaves.iter().filter(|l| l.contract == audit && l.data.starts_with(b"audit.access")).count() >= 5);
    let market = before.state(&org_key("market")).await.unwrap().expect("the organisation is proven present");
    assert!(before.state(&org_key("nobody")).await.unwrap().is_none(), "an absent key is proven absent");

    // Behind the node's back: a state value and an audit leaf are changed.
    t.node.take().unwrap().stop().await;
    {
        let db = open_raw(&t.home.path().join(&t.cfg.data_dir));
        change_tree_value(&db, &org_key("market"));
        let state = db.cf_handle("state").unwrap();
        let mut leaf =
            keyspace::AuditLeaf::decode(&db.get_cf(state, keyspace::audit_leaf(3)).unwrap().unwrap()).unwrap();
        leaf.data = b"audit.access: nothing to see".to_vec();
        db.put_cf(state, keyspace::audit_leaf(3), leaf.encode()).unwrap();
    }
    t.start_again().await;

    // A new auditor: the changed value and the changed leaf fail their proofs, and nothing
    // else does.
    let light = shutong_sdk::LightClient::new(common::CHAIN_ID, validators.clone());
    let mut fresh = shutong_sdk::VerifyingClient::new(t.client.clone(), light);
    fresh.sync().await.unwrap();
    let err = fresh.state(&org_key("market")).await.unwrap_err();
    assert!(matches!(err, LightError::State { source: StateProofError::ValueMismatch { .. }, .. }), "{err}");
    let err = fresh.audit_leaf(3).await.unwrap_err();
    assert!(matches!(err, LightError::Log { index: 3, source: LogProofError::RootMismatch { .. } }), "{err}");
    assert!(fresh.state(&org_key("acme")).await.unwrap().is_some());
    assert_eq!(fresh.audit_leaf(4).await.unwrap(), leaves[4]);
    // The log itself was not rewritten: the earlier auditor's view extends.
    before.client = t.client.clone();
    before.sync().await.unwrap();
    let known = before.light.latest().unwrap().header.clone();

    // Now the log is rewritten: the node that covers the log's first leaves (the last hash
    // of the first tile) is changed, and the node goes on appending over it.
    t.node.take().unwrap().stop().await;
    {
        let db = open_raw(&t.home.path().join(&t.cfg.data_dir));
        let tiles = db.cf_handle("audit_log").unwrap();
        let tile_key = [0u8; 9];
        let mut tile = db.get_cf(tiles, tile_key).unwrap().unwrap();
        let last = tile.len() - 1;
        tile[last] ^= 0xff;
        db.put_cf(tiles, tile_key, tile).unwrap();
    }
    t.start_again().await;
    let height = t.client.status().await.unwrap().height;
    while t.client.status().await.unwrap().height < height + 2 {
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    // Its newest header commits a log root that no proof joins to the one seen before.
    before.client = t.client.clone();
    let err = before.sync().await.unwrap_err();
    assert!(matches!(err, LightError::Inconsistent { .. }), "{err}");
    assert!(before.light.latest().unwrap().header.height == known.height, "nothing was accepted");
    assert!(!market.is_empty());
    t.stop().await;
}
