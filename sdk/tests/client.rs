//! The client's typed errors and retries, against a scripted JSON-RPC server on 127.0.0.1.

#![allow(clippy::unwrap_used)]

use jsonrpsee::server::{RpcModule, Server, ServerHandle};
use jsonrpsee::types::ErrorObjectOwned;
use shutong_sdk::rpc::{code, method};
use shutong_sdk::{Client, ClientError, Retry, RpcCode, TxBuilder};
use shutong_types::{Call, Keypair, Receipt};
use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

#[derive(Default)]
struct Calls {
    nonce: AtomicU32,
    receipt: AtomicU32,
}

const FAST: Retry = Retry { attempts: 4, first_delay: Duration::from_millis(1), max_delay: Duration::from_millis(4) };

/// `getNonce` answers "mempool full" twice, then 7; `status` always refuses a bad signature;
/// `submitTx` always reports a duplicate; `getReceipt` has a receipt only if `committed`.
async fn server(committed: bool) -> (String, ServerHandle, Arc<Calls>) {
    let server = Server::builder().build("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", server.local_addr().unwrap());
    let calls = Arc::new(Calls::default());
    let mut module = RpcModule::from_arc(Arc::clone(&calls));
    module
        .register_method(method::GET_NONCE, |_, calls, _| {
            if calls.nonce.fetch_add(1, Ordering::SeqCst) < 2 {
                Err(ErrorObjectOwned::owned(code::MEMPOOL_FULL, "the pool is full", None::<()>))
            } else {
                Ok(7u64)
            }
        })
        .unwrap();
    module
        .register_method(method::STATUS, |_, _, _| {
            Err::<u64, _>(ErrorObjectOwned::owned(code::BAD_SIGNATURE, "bad signature", None::<()>))
        })
        .unwrap();
    module
        .register_method(method::SUBMIT_TX, |_, _, _| {
            Err::<String, _>(ErrorObjectOwned::owned(code::TX_DUPLICATE, "already pending", None::<()>))
        })
        .unwrap();
    module
        .register_method(method::GET_RECEIPT, move |params, calls, _| {
            calls.receipt.fetch_add(1, Ordering::SeqCst);
            let (id,): (String,) = params.parse().unwrap();
            let receipt = Receipt {
                tx_id: id.parse().unwrap(),
                height: 3,
                index: 0,
                status: shutong_types::ExecStatus::Success,
                gas_used: 1,
                events: Vec::new(),
                output: Vec::new(),
            };
            Ok::<_, ErrorObjectOwned>(committed.then_some(receipt))
        })
        .unwrap();
    let handle = server.start(module);
    (url, handle, calls)
}

#[tokio::test]
async fn a_full_pool_is_retried_and_a_refusal_is_not() {
    let (url, handle, calls) = server(false).await;
    let account = Keypair::from_seed("k").account();

    // Without retries the first refusal comes back, typed.
    let plain = Client::new(&url).unwrap();
    let err = plain.nonce(&account).await.unwrap_err();
    assert_eq!(err.code(), Some(RpcCode::MempoolFull));
    assert!(err.is_transient());

    // With retries: one more refusal, then the answer.
    let retrying = Client::new(&url).unwrap().with_retry(FAST);
    assert_eq!(retrying.nonce(&account).await.unwrap(), 7);
    assert_eq!(calls.nonce.load(Ordering::SeqCst), 3);

    // A refusal of the request itself is never retried.
    let err = retrying.status().await.unwrap_err();
    assert_eq!(err.code(), Some(RpcCode::BadSignature));
    assert!(!err.is_transient());
    handle.stop().unwrap();
}

#[tokio::test]
async fn an_unreachable_node_is_retried_then_reported() {
    // A port nothing listens on.
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let client = Client::new(&format!("http://127.0.0.1:{port}")).unwrap().with_retry(FAST);
    let started = std::time::Instant::now();
    let err = client.nonce(&Keypair::from_seed("k").account()).await.unwrap_err();
    assert!(matches!(err, ClientError::Transport { .. }), "{err}");
    assert!(err.is_transient());
    assert!(started.elapsed() >= Duration::from_millis(1 + 2 + 4), "three waits between four tries");
}

#[tokio::test]
async fn a_duplicate_submission_waits_for_this_transactions_receipt() {
    let tx = TxBuilder::new("c", Keypair::from_seed("k"))
        .call(Call { contract: shutong_sdk::builder::registry(), method: "register".into(), args: vec![] }, 0, 10)
        .unwrap();
    // The pending transaction was this one: its receipt comes.
    let (url, handle, _) = server(true).await;
    let receipt = Client::new(&url).unwrap().submit_and_wait(&tx, Duration::from_secs(2)).await.unwrap();
    assert_eq!(receipt.tx_id, tx.id());
    handle.stop().unwrap();
    // Another transaction held the nonce: no receipt comes, and the refusal is given back.
    let (url, handle, calls) = server(false).await;
    let err = Client::new(&url).unwrap().submit_and_wait(&tx, Duration::from_millis(300)).await.unwrap_err();
    assert_eq!(err.code(), Some(RpcCode::TxDuplicate));
    assert!(calls.receipt.load(Ordering::SeqCst) >= 2, "it waited for the receipt");
    handle.stop().unwrap();
}

#[test]
fn every_code_the_node_sends_has_its_meaning() {
    let all = [
        code::TX_TOO_LARGE,
        code::TX_MALFORMED,
        code::WRONG_CHAIN,
        code::TX_EXPIRED,
        code::EXPIRY_TOO_FAR,
        code::NONCE_TOO_LOW,
        code::NONCE_TOO_HIGH,
        code::TX_DUPLICATE,
        code::BAD_SIGNATURE,
        code::MEMPOOL_FULL,
        code::UNKNOWN_CONTRACT,
        code::UNKNOWN_METHOD,
        code::GAS_LIMIT,
        code::NOT_FOUND,
        code::QUERY_FAILED,
        code::HEIGHT_UNAVAILABLE,
        code::QUERY_NOT_LOGGED,
        code::INVALID_PARAMS,
        code::INTERNAL,
        -32007,
    ];
    let kinds: std::collections::HashSet<String> =
        all.iter().map(|&c| format!("{:?}", RpcCode::from_code(c))).collect();
    assert_eq!(kinds.len(), all.len(), "each code its own meaning");
    assert!(!kinds.iter().any(|k| k.starts_with("Other")));
    assert_eq!(RpcCode::from_code(-1), RpcCode::Other(-1));
    assert_eq!(all.iter().filter(|&&c| RpcCode::from_code(c).is_transient()).count(), 1, "only a full pool");
}
