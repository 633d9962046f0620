//! The node over real JSON-RPC: the signed-call path, and bad input refused with its own
//! error code while the node keeps running and nothing is written.

use crate::common::{CHAIN_ID, TestNode, WAIT};
use shutong_codec::{Decode, Encode};
use shutong_sdk::rpc::code;
use shutong_sdk::system_api::registry::{GetOrg, Org, OrgKind};
use shutong_sdk::{ClientError, TxBuilder, builder};
use shutong_types::{Address, Call, ExecStatus, Keypair};

fn rpc_code(result: Result<shutong_types::Hash, ClientError>) -> i32 {
    match result {
        Err(ClientError::Rpc { code, .. }) => code,
        other => panic!("expected an rpc error, got {other:?}"),
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_signed_registration_is_committed_and_queryable_after_restart() {
    let mut t = TestNode::start().await;
    let tx = t.sign(&t.admin, builder::register_org("jingan-data", "Jing'an Data Bureau", OrgKind::Department)).await;
    let receipt = t.client.submit_and_wait(&tx, WAIT).await.unwrap();
    assert_eq!(receipt.status, ExecStatus::Success);
    assert_eq!(receipt.events[0].topic, "org.registered");
    let block = t.client.block(receipt.height).await.unwrap().unwrap();
    assert_eq!(block.txs, vec![tx.id()]);
    assert!(!block.certificate_hex.is_empty(), "a committed block carries its finalization certificate");
    let before = t.client.status().await.unwrap();

    t.restart().await;
    let after = t.client.status().await.unwrap();
    assert!(after.height >= before.height);
    let org = Org::decode(
        &t.client.query(&builder::registry(), "get", &GetOrg { id: "jingan-data".into() }.encode()).await.unwrap(),
    )
    .unwrap();
    assert_eq!(org.admin, t.admin.account().0);
    assert_eq!(t.client.nonce(&t.admin.account()).await.unwrap(), 1);
    t.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn bad_input_is_refused_with_its_own_code_and_writes_nothing() {
    bad_input_is_refused(shutong_types::Suite::Ed25519Blake3).await;
}

/// The same refusals on a 国密 chain, and a transaction signed with a key of the other
/// suite refused by name.
#[tokio::test(flavor = "multi_thread")]
async fn bad_input_is_refused_on_an_sm2_sm3_chain_too() {
    bad_input_is_refused(shutong_types::Suite::Sm2Sm3).await;
}

async fn bad_input_is_refused(suite: shutong_types::Suite) {
    let t = TestNode::start_in(suite, crate::common::config()).await;
    let admin = &t.admin;
    let committed = t.sign(admin, builder::register_org("first", "First", OrgKind::Enterprise)).await;
    t.client.submit_and_wait(&committed, WAIT).await.unwrap();
    let root = t.client.status().await.unwrap().state_root;
    let register = || builder::register_org("second", "Second", OrgKind::Enterprise);

    let mut bad_sig = t.sign(admin, register()).await;
    bad_sig.signature.0[5] ^= 0x40;
    assert_eq!(rpc_code(t.client.submit(&bad_sig).await), code::BAD_SIGNATURE);

    let mut wrong_chain = t.sign(admin, register()).await.tx;
    wrong_chain.chain_id = "another-chain".into();
    assert_eq!(rpc_code(t.client.submit(&wrong_chain.sign(admin)).await), code::WRONG_CHAIN);

    assert_eq!(rpc_code(t.client.submit(&committed).await), code::NONCE_TOO_LOW, "a replayed transaction");

    // A key of the other suite signs for nobody here, whatever its account holds.
    let other = match suite {
        shutong_types::Suite::Ed25519Blake3 => shutong_types::Suite::Sm2Sm3,
        shutong_types::Suite::Sm2Sm3 => shutong_types::Suite::Ed25519Blake3,
    };
    let stranger = shutong_types::Keypair::from_seed_in(other, "other-suite");
    let height = t.client.status().await.unwrap().height;
    let foreign = TxBuilder::new(CHAIN_ID, stranger).call(register(), 0, height + 10).unwrap();
    match t.client.submit(&foreign).await {
        Err(ClientError::Rpc { code: c, message }) => {
            assert_eq!(c, code::BAD_SIGNATURE, "{message}");
            assert!(message.contains(&format!("is an {other} key, but this chain runs {suite}")), "{message}");
        }
        other => panic!("a key of the other suite must be refused, got {other:?}"),
    }

    let mut expired = t.sign(admin, register()).await.tx;
    expired.expiry_height = 1;
    assert_eq!(rpc_code(t.client.submit(&expired.sign(admin)).await), code::TX_EXPIRED);

    assert_eq!(rpc_code(t.client.submit_raw(&[0xde, 0xad, 0xbe, 0xef]).await), code::TX_MALFORMED);
    assert_eq!(rpc_code(t.client.submit_raw(&vec![7u8; 600 * 1024]).await), code::TX_TOO_LARGE);
    // The server answers 413 and closes that connection: a client of its own, so the
    // shared client's pooled connection is not the one closed under it.
    let oversized = shutong_sdk::Client::new(&format!("http://{}", t.node.as_ref().unwrap().rpc_addr)).unwrap();
    match oversized.submit_raw(&vec![7u8; 1200 * 1024]).await {
        Err(ClientError::Rpc { code, message }) => assert_eq!(code, -32007, "{message}"),
        Err(ClientError::Transport { reason, .. }) => assert!(reason.contains("413"), "{reason}"),
        other => panic!("an oversized body must be refused, got {other:?}"),
    }

    let unknown_contract = Call { contract: Address([0xab; 32]), method: "register".into(), args: vec![] };
    assert_eq!(rpc_code(t.client.submit(&t.sign(admin, unknown_contract).await).await), code::UNKNOWN_CONTRACT);
    let unknown_method = Call { contract: builder::registry(), method: "no_such_method".into(), args: vec![] };
    assert_eq!(rpc_code(t.client.submit(&t.sign(admin, unknown_method).await).await), code::UNKNOWN_METHOD);

    let mut low_gas = TxBuilder::new(CHAIN_ID, admin.clone());
    low_gas.gas_limit = 1;
    let height = t.client.status().await.unwrap().height;
    assert_eq!(rpc_code(t.client.submit(&low_gas.call(register(), 1, height + 10).unwrap()).await), code::GAS_LIMIT);

    // Bad RPC parameters.
    match t.client.receipt_raw_param("not-hex").await {
        Err(ClientError::Rpc { code, .. }) => assert_eq!(code, code::INVALID_PARAMS),
        other => panic!("expected invalid params, got {other:?}"),
    }

    // Nothing above was written: the state root, the nonce and the mempool are as before,
    // once two more blocks are committed (anything admitted would be in one of them).
    let after = t.client.status().await.unwrap().height + 2;
    tokio::time::timeout(WAIT, async {
        while t.client.status().await.unwrap().height < after {
            tokio::time::sleep(std::time::Duration::from_millis(10)).await;
        }
    })
    .await
    .expect("the node goes on committing blocks");
    let status = t.client.status().await.unwrap();
    assert_eq!(status.state_root, root);
    assert_eq!(status.mempool_txs, 0);
    assert_eq!(t.client.nonce(&admin.account()).await.unwrap(), 1);
    t.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_contract_that_runs_out_of_gas_fails_charges_all_gas_and_keeps_no_writes() {
    let t = TestNode::start().await;
    let mut txb = TxBuilder::new(CHAIN_ID, t.admin.clone());
    txb.gas_limit = 15_000;
    let height = t.client.status().await.unwrap().height;
    let tx = txb.call(builder::register_org("hungry", "Hungry", OrgKind::Enterprise), 0, height + 50).unwrap();
    let receipt = t.client.submit_and_wait(&tx, WAIT).await.unwrap();
    assert_eq!((receipt.status, receipt.gas_used), (ExecStatus::OutOfGas, 15_000));
    assert!(receipt.events.is_empty());
    let err = t.client.query(&builder::registry(), "get", &GetOrg { id: "hungry".into() }.encode()).await.unwrap_err();
    assert!(
        matches!(err, ClientError::Rpc { code: code::QUERY_FAILED, ref message } if message == "organisation hungry not found"),
        "{err:?}"
    );
    assert_eq!(
        t.client.nonce(&t.admin.account()).await.unwrap(),
        1,
        "the nonce advances so the failed tx cannot be replayed"
    );
    let other = Keypair::from_seed("stranger");
    let update = t.sign(&other, builder::update_org("hungry", Some("x"), None)).await;
    let receipt = t.client.submit_and_wait(&update, WAIT).await.unwrap();
    assert_eq!(receipt.status, ExecStatus::Aborted("organisation hungry not found".into()));
    t.stop().await;
}
