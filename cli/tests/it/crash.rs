//! The real `shutong` process, killed with SIGKILL in the middle of a stream of transactions
//! and restarted: no committed block is lost or changed, the state root is the one it had,
//! and every transaction ends up committed exactly once.

use shutong_codec::{Decode, Encode};
use shutong_sdk::system_api::registry::{GetOrg, Org, OrgKind};
use shutong_sdk::{TxBuilder, builder, keyfile};
use shutong_testnet::layout::free_port;
use shutong_testnet::{NodeProcess, init};
use shutong_types::{ExecStatus, Hash, SignedTransaction};
use std::collections::BTreeMap;
use std::path::Path;
use std::time::Duration;

const BIN: &str = env!("CARGO_BIN_EXE_shutong");
const TXS: u64 = 400;

async fn block_hashes(client: &shutong_sdk::Client, up_to: u64) -> BTreeMap<u64, Hash> {
    let mut out = BTreeMap::new();
    for height in 0..=up_to {
        let block = client.block(height).await.unwrap().unwrap_or_else(|| panic!("block {height} is missing"));
        out.insert(height, block.hash);
    }
    out
}

#[tokio::test(flavor = "multi_thread")]
async fn sigkill_mid_stream_loses_no_committed_block() {
    let dir = tempfile::tempdir().unwrap();
    let home = dir.path().join("node");
    let port = free_port(&mut Default::default()).unwrap();
    init(Path::new(BIN), &home, "shutong-crash", port, 10).unwrap();
    let admin = keyfile::read(&home.join("keys/admin.json")).unwrap();
    let mut node = NodeProcess::spawn(Path::new(BIN), &home, port).unwrap();
    let client = node.wait_ready(Duration::from_secs(30)).await.unwrap().signed_for("shutong-crash", admin.clone());

    let txb = TxBuilder::new("shutong-crash", admin.clone());
    let txs: Vec<SignedTransaction> = (0..TXS)
        .map(|i| txb.call(builder::register_org(&format!("org-{i}"), "Org", OrgKind::Enterprise), i, 100_000).unwrap())
        .collect();

    // Stream until about half the transactions are committed, then kill without warning.
    let mut sent = 0;
    loop {
        if sent < txs.len() {
            client.submit(&txs[sent]).await.unwrap();
            sent += 1;
        }
        if client.nonce(&admin.account()).await.unwrap() >= TXS / 2 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
    let before = client.status().await.unwrap();
    let hashes_before = block_hashes(&client, before.height).await;
    let nonce_before = client.nonce(&admin.account()).await.unwrap();
    node.kill();

    let mut node = NodeProcess::spawn(Path::new(BIN), &home, port).unwrap();
    let client = node.wait_ready(Duration::from_secs(30)).await.unwrap().signed_for("shutong-crash", admin.clone());
    let after = client.status().await.unwrap();
    assert!(after.height >= before.height, "height went back from {} to {}", before.height, after.height);
    assert_eq!(block_hashes(&client, before.height).await, hashes_before, "a committed block changed or vanished");
    assert!(client.nonce(&admin.account()).await.unwrap() >= nonce_before);
    // The root after block `before.height` is what the node reported before the kill; the
    // next block's header carries it.
    let next = loop {
        if let Some(block) = client.block(before.height + 1).await.unwrap() {
            break block;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    assert_eq!(next.header.state_root, before.state_root, "the state root after the last committed block changed");

    // The mempool is not durable: resubmit what is not committed, as a client would.
    let committed = client.nonce(&admin.account()).await.unwrap();
    for tx in &txs[committed as usize..] {
        client.submit(tx).await.unwrap();
    }
    let last = client.wait_for_receipt(&txs[TXS as usize - 1].id(), Duration::from_secs(60)).await.unwrap();
    assert_eq!(last.status, ExecStatus::Success);
    for (i, tx) in txs.iter().enumerate() {
        let receipt = client.receipt(&tx.id()).await.unwrap().unwrap_or_else(|| panic!("tx {i} has no receipt"));
        assert_eq!(receipt.status, ExecStatus::Success, "tx {i}");
    }
    assert_eq!(client.nonce(&admin.account()).await.unwrap(), TXS, "each transaction committed exactly once");
    let org =
        client.query(&builder::registry(), "get", &GetOrg { id: format!("org-{}", TXS - 1) }.encode()).await.unwrap();
    assert_eq!(Org::decode(&org).unwrap().id, format!("org-{}", TXS - 1));
    node.terminate(Duration::from_secs(10));
}
