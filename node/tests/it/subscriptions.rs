//! WebSocket subscriptions on a real node: committed blocks with their transactions and
//! events, events by topic prefix, and a gateway whose cached grant a revocation event
//! drops the moment it commits.

use shutong_sdk::builder;
use shutong_sdk::system_api::registry::OrgKind;
use shutong_types::Keypair;
use std::time::Duration;

const WAIT: Duration = Duration::from_secs(20);

#[tokio::test(flavor = "multi_thread")]
async fn blocks_and_events_arrive_as_they_commit() {
    let t = crate::common::TestNode::start().await;
    let mut blocks = t.client.subscribe_blocks().await.unwrap();
    let mut orgs = t.client.subscribe_events("org.").await.unwrap();
    let key = Keypair::from_seed("subscriber");
    let tx = t.sign(&key, builder::register_org("sub-org", "Subscribed Org", OrgKind::Enterprise)).await;
    let receipt = t.client.submit_and_wait(&tx, WAIT).await.unwrap();
    assert!(receipt.status.is_success());

    // The block notice names the transaction and carries its event.
    let notice = tokio::time::timeout(WAIT, async {
        loop {
            let block = blocks.next().await.unwrap().unwrap();
            if block.txs.contains(&tx.id()) {
                break block;
            }
        }
    })
    .await
    .unwrap();
    assert_eq!(notice.height, receipt.height);
    assert!(notice.events.iter().any(|e| e.tx_id == tx.id() && e.topic == "org.registered"));

    // The event feed carries only events under its prefix.
    let event = tokio::time::timeout(WAIT, orgs.next()).await.unwrap().unwrap().unwrap();
    assert_eq!((event.topic.as_str(), event.tx_id), ("org.registered", tx.id()));
    assert_eq!(hex::decode(&event.data_hex).unwrap(), b"sub-org");

    // A prefix longer than allowed is refused by name.
    let err = t.client.subscribe_events(&"x".repeat(65)).await.unwrap_err();
    assert!(err.to_string().contains("topic prefix"), "{err}");
    t.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_gateway_drops_a_revoked_grant_when_the_revocation_commits() {
    let t = crate::common::TestNode::start().await;
    let mut grants = t.client.subscribe_events("grant.").await.unwrap();
    t.tell_the_story().await;

    // The gateway had the grant cached (as issued) and listens to grant events.
    let issued = tokio::time::timeout(WAIT, grants.next()).await.unwrap().unwrap().unwrap();
    assert_eq!(issued.topic, "grant.issued");
    let id: u64 = String::from_utf8(hex::decode(&issued.data_hex).unwrap()).unwrap().parse().unwrap();
    let light = shutong_sdk::LightClient::new(
        crate::common::CHAIN_ID,
        shutong_types::Suite::Ed25519Blake3,
        vec![t.validator.public()],
    );
    let mut verifying = shutong_sdk::VerifyingClient::new(t.client.clone(), light);
    verifying.sync().await.unwrap();
    let mut gateway = shutong_sdk::gateway::Gateway::new(shutong_types::Suite::Ed25519Blake3);
    gateway.refresh_grant(&verifying, id).await.unwrap();
    assert!(gateway.grant(id).is_some());
    let revoked = tokio::time::timeout(WAIT, async {
        loop {
            let notice = grants.next().await.unwrap().unwrap();
            if notice.topic == "grant.revoked" && notice.data_hex == hex::encode(id.to_string()) {
                break notice;
            }
        }
    })
    .await
    .unwrap();
    assert!(gateway.grant(id).is_some());
    gateway.on_notice(&revoked);
    assert!(gateway.grant(id).is_none(), "dropped at the revocation in block {}", revoked.height);
    t.stop().await;
}
