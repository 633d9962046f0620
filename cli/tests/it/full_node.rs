//! Full nodes: processes whose key is not in the validator set follow the chain by block
//! sync. One started late catches up from genesis to the same blocks and state as the
//! validators; a transaction submitted to a full node is pushed to the validators and
//! committed; a killed full node comes back and catches up; and the validators finalize
//! without it (it never votes), while it stops when the validators stop.

use shutong_sdk::system_api::registry::OrgKind;
use shutong_sdk::{Client, TxBuilder, builder, keyfile};
use shutong_testnet::Cluster;
use std::path::Path;
use std::time::Duration;

const BIN: &str = env!("CARGO_BIN_EXE_shutong");
const WAIT: Duration = Duration::from_secs(90);

async fn status(client: &Client) -> shutong_sdk::rpc::Status {
    client.status().await.unwrap()
}

/// Nodes `nodes` agree on the block hash and state root at `height`.
async fn agree_at(cluster: &Cluster, nodes: &[usize], height: u64) {
    let first = cluster.client(nodes[0]).unwrap().block(height).await.unwrap().unwrap();
    for &i in &nodes[1..] {
        let other = cluster.client(i).unwrap().block(height).await.unwrap();
        let other = other.unwrap_or_else(|| panic!("{} lacks block {height}", cluster.members[i].name));
        assert_eq!(other.hash, first.hash, "{} differs at height {height}", cluster.members[i].name);
        assert_eq!(other.header.state_root, first.header.state_root);
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_full_node_follows_forwards_transactions_and_catches_up() {
    let mut cluster = Cluster::init_with_full_nodes(Path::new(BIN), 4, 1, 100).unwrap();
    assert!(cluster.members[4].full_node && cluster.members[4].name == "full-0");
    for i in 0..4 {
        cluster.start(i).await.unwrap();
    }
    // Blocks with transactions before the full node exists, so it must sync and execute them.
    let admin = keyfile::read(&cluster.admin_key).unwrap();
    let txb = TxBuilder::new(&cluster.chain_id, admin.clone());
    let v0 = cluster.client(0).unwrap();
    let nonce = v0.nonce(&admin.account()).await.unwrap();
    let before =
        txb.call(builder::register_org("jingan", "Jing'an Data Bureau", OrgKind::Department), nonce, 10_000).unwrap();
    let receipt = v0.submit_and_wait(&before, Duration::from_secs(30)).await.unwrap();
    assert!(receipt.status.is_success(), "{:?}", receipt.status);
    cluster.wait_height(&[0, 1, 2, 3], 40, WAIT).await.unwrap();

    // The late full node catches up to the validators: same blocks, same state.
    let full = cluster.start(4).await.unwrap();
    let target = status(&v0).await.height;
    cluster.wait_height(&[4], target, WAIT).await.unwrap();
    let info = status(&full).await;
    assert!(info.full_node, "the node should say it is a full node");
    assert!(!status(&v0).await.full_node);
    assert_eq!(info.validators.len(), 4, "a full node knows the validator set and is not in it");
    agree_at(&cluster, &[0, 4], target).await;
    let synced = full.receipt(&before.id()).await.unwrap().expect("the full node has the receipt it executed");
    assert_eq!(synced.status, receipt.status);

    // It keeps following as new blocks are finalized.
    let later = status(&v0).await.height + 10;
    cluster.wait_height(&[4], later, WAIT).await.unwrap();

    // A transaction submitted to the full node is pushed to the validators and committed.
    let tx =
        txb.call(builder::register_org("xuhui", "Xuhui Data Bureau", OrgKind::Department), nonce + 1, 10_000).unwrap();
    let via_full = full.submit_and_wait(&tx, Duration::from_secs(30)).await.unwrap();
    assert!(via_full.status.is_success(), "{:?}", via_full.status);
    let on_validator = v0.receipt(&tx.id()).await.unwrap().expect("validator 0 committed the forwarded transaction");
    assert_eq!(on_validator.status, via_full.status);

    // Killed and restarted, it catches up on its own data.
    cluster.kill(4);
    let past = status(&v0).await.height + 20;
    cluster.wait_height(&[0], past, WAIT).await.unwrap();
    cluster.start(4).await.unwrap();
    cluster.wait_height(&[4], past, WAIT).await.unwrap();
    agree_at(&cluster, &[0, 1, 4], past).await;

    // It never votes: with two of four validators down the chain stops, full node or not.
    cluster.kill(2);
    cluster.kill(3);
    cluster.wait_timeouts(0, 2, WAIT).await.unwrap();
    let stalled = status(&cluster.client(0).unwrap()).await.height;
    cluster.wait_timeouts(0, 3, WAIT).await.unwrap();
    assert_eq!(status(&cluster.client(0).unwrap()).await.height, stalled, "two of four validators cannot finalize");
    let follower = status(&cluster.client(4).unwrap()).await.height;
    assert!(follower <= stalled, "the full node is at {follower}, past the validators' {stalled}");
}
