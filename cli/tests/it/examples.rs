//! The SDK's worked examples (`examples/`) against a local testnet of four validator
//! processes on 127.0.0.1: a department publishes data and approves a request, an enterprise
//! asks for it and waits for the grant, the department's gateway serves, anchors and is
//! refused after a revocation, an enterprise deploys its own contract, and an auditor gets
//! the grant's history proven complete, through a validator other than the one the others
//! used.

use shutong_examples::{auditor, consumer, contract, provider};
use shutong_sdk::Signer;
use shutong_sdk::system_api::governance::Action;
use shutong_testnet::Cluster;
use std::path::Path;
use std::time::Duration;

const BIN: &str = env!("CARGO_BIN_EXE_shutong");

#[tokio::test(flavor = "multi_thread")]
async fn the_examples_run_against_a_local_testnet() {
    let mut cluster = Cluster::init(Path::new(BIN), 4, 100).unwrap();
    cluster.start_all().await.unwrap();
    cluster.wait_height(&[0, 1, 2, 3], 2, Duration::from_secs(90)).await.unwrap();
    let keys = tempfile::tempdir().unwrap();
    let client = cluster.client(0).unwrap();
    let genesis = cluster.members[0].home.join("genesis.json");

    // The governance committee (two of the testnet's three departments) defines the purpose
    // the story uses.
    let mut committee = Vec::new();
    for key in cluster.committee.keys.iter().take(cluster.committee.threshold as usize) {
        committee.push(Signer::connect(&client, key.clone()).await.unwrap());
    }
    let purpose = Action::DefinePurpose {
        code: "licensing".into(),
        legal_bases: 0b0011,
        description: "business licensing".into(),
    };
    shutong_examples::decide(&committee, purpose).await.unwrap();

    // A providing department (approved by the committee) and a consuming enterprise.
    provider::register(&client, &keys.path().join("market"), "market").await.unwrap();
    shutong_examples::decide(&committee, Action::ApproveOrg { id: "market".into() }).await.unwrap();
    for element in ["enterprise.uscc", "enterprise.name"] {
        let assign = Action::AssignSource { element: element.into(), org: "market".into() };
        shutong_examples::decide(&committee, assign).await.unwrap();
    }
    let market = provider::join(&client, &keys.path().join("market"), "market").await.unwrap();
    assert_eq!(provider::publish(&market).await.unwrap(), 1);
    let acme = consumer::join(&client, &keys.path().join("acme"), "acme").await.unwrap();
    let request =
        consumer::request(&acme, provider::RESOURCE, &["uscc", "name"], "licensing.renewal", 150).await.unwrap();
    let waiting = tokio::spawn({
        let client = cluster.client(2).unwrap();
        async move { consumer::wait_for_grant(&client, request, Duration::from_secs(60)).await }
    });
    let grant = provider::approve(&market, request, 30).await.unwrap();
    assert_eq!(waiting.await.unwrap().unwrap(), grant, "the enterprise sees the grant the bureau issued");

    // The gateway: 150 uses allowed, 152 asked; the 150 anchored in one batch, the 2
    // denials recorded one by one; revoked; refused.
    let served = provider::serve(&market, &genesis, grant, acme.analyst.account(), "licensing.renewal.online", 152)
        .await
        .unwrap();
    assert_eq!((served.permitted, served.denied), (150, 2), "{served:?}");
    assert_eq!(served.after_revocation, format!("grant {grant} is not loaded: read it from the chain"));

    // An enterprise deploys its own contract.
    let code = std::fs::read(concat!(env!("CARGO_MANIFEST_DIR"), "/../contracts/artifacts/cert-verify.wasm")).unwrap();
    contract::approve_code(&committee, &code).await.unwrap();
    let deployer = Signer::connect(
        &client,
        shutong_examples::key_in(keys.path(), "deployer", shutong_types::Suite::Ed25519Blake3).unwrap(),
    )
    .await
    .unwrap();
    let bank = Signer::connect(
        &client,
        shutong_examples::key_in(keys.path(), "bank", shutong_types::Suite::Ed25519Blake3).unwrap(),
    )
    .await
    .unwrap();
    // Only registered principals send transactions: both join as enterprises first.
    contract::join_enterprise(&deployer, "certs-co", "Certificates Co").await.unwrap();
    contract::join_enterprise(&bank, "bank", "Example Bank").await.unwrap();
    let address = contract::deploy(&deployer, &code, "certs").await.unwrap();
    let checked =
        contract::certify_and_check(&deployer, &bank, &address, "91310000MA1EXAMPLE", b"licence").await.unwrap();
    assert!(checked.genuine && checked.on_record.0, "{checked:?}");
    assert!(!checked.forged.0, "a forged document is not certified: {checked:?}");

    // The auditor asks validator 3, trusting only the genesis file.
    let three = cluster.client(3).unwrap();
    auditor::register(&three, &keys.path().join("inspect"), "inspect").await.unwrap();
    shutong_examples::decide(&committee, Action::ApproveOrg { id: "inspect".into() }).await.unwrap();
    let office = auditor::join(&three, &keys.path().join("inspect"), "inspect").await.unwrap();
    let trail = auditor::grant_history(&office, &genesis, grant, "annual inspection 2026-17").await.unwrap();
    assert_eq!(
        trail.kinds(),
        [
            "grant.issued",
            "request.approved",
            "grant.exhausted",
            "batch.anchored",
            "access.denied",
            "access.denied",
            "grant.revoked"
        ]
        .map(String::from)
        .to_vec(),
        "the grant's whole history, in order (the batch's uses exhaust the grant as they are counted)"
    );
    assert!(trail.items.iter().any(|i| i.index == served.anchor_leaf), "the anchored batch is in the trail");
    drop(cluster);
}
