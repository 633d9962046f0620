//! RPC access control on a real node (`docs/rpc.md`, "Access control"): who may call what,
//! signed requests that are stale, replayed, tampered with or for another chain, rate limits,
//! body limits, and TLS. Every refusal names its reason and leaves the chain as it was.

use shutong_node::config::RateConfig;
use shutong_sdk::auth::RequestAuth;
use shutong_sdk::rpc::{AuditQuery, code};
use shutong_sdk::system_api::registry::OrgKind;
use shutong_sdk::{ClientError, RpcCode, Signer, TxBuilder, builder, reads};
use shutong_types::{Encode, Keypair};
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

fn refusal<T: std::fmt::Debug>(result: Result<T, ClientError>) -> (i32, String) {
    match result {
        Err(ClientError::Rpc { code, message }) => (code, message),
        other => panic!("expected a refusal, got {other:?}"),
    }
}

/// Sends one HTTP/1.1 request as it is and returns the status code and body.
async fn raw_http(addr: std::net::SocketAddr, body: &str, headers: &[(&str, String)]) -> (u16, String) {
    let mut stream = tokio::net::TcpStream::connect(addr).await.unwrap();
    let mut request = format!(
        "POST / HTTP/1.1\r\nHost: {addr}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n",
        body.len()
    );
    for (name, value) in headers {
        request.push_str(&format!("{name}: {value}\r\n"));
    }
    request.push_str("\r\n");
    stream.write_all(request.as_bytes()).await.unwrap();
    stream.write_all(body.as_bytes()).await.unwrap();
    let mut answer = Vec::new();
    tokio::time::timeout(Duration::from_secs(10), stream.read_to_end(&mut answer)).await.unwrap().unwrap();
    let text = String::from_utf8_lossy(&answer).to_string();
    let status = text.split(' ').nth(1).and_then(|s| s.parse().ok()).unwrap_or(0);
    let body = text.split_once("\r\n\r\n").map(|(_, b)| b.to_string()).unwrap_or_default();
    (status, body)
}

fn query_body(id: u32) -> String {
    let registry = shutong_types::Address::system(shutong_sdk::system_api::names::REGISTRY);
    format!(
        r#"{{"jsonrpc":"2.0","id":{id},"method":"shutong_query","params":["{}","get","{}"]}}"#,
        registry.to_hex(),
        hex::encode(shutong_sdk::system_api::registry::GetOrg { id: "nobody".into() }.encode())
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn anonymous_callers_reach_status_and_proofs_only_and_unknown_keys_only_their_registration() {
    let t = crate::common::TestNode::start().await;
    let anonymous = t.anonymous();

    // Public: status, headers, proofs.
    let status = anonymous.status().await.unwrap();
    let height = status.height;
    let header =
        anonymous.call_raw::<serde_json::Value>(shutong_sdk::rpc::method::GET_HEADER, jsonrpsee::rpc_params![1]);
    assert!(header.await.is_ok(), "headers are public");

    // Everything else needs a signed request, and the refusal says how to make one.
    let (code_, message) = refusal(anonymous.read(reads::org("nobody")).await);
    assert_eq!(code_, code::UNAUTHENTICATED);
    assert!(message.contains("x-shutong-signature") && message.contains("status, headers and proofs"), "{message}");
    assert_eq!(refusal(anonymous.block(1).await).0, code::UNAUTHENTICATED);
    assert_eq!(refusal(anonymous.nonce(&t.admin.account()).await).0, code::UNAUTHENTICATED);
    let tx = t.sign(&t.admin, builder::register_org("by-anon", "Anon", OrgKind::Enterprise)).await;
    assert_eq!(refusal(anonymous.submit(&tx).await).0, code::UNAUTHENTICATED);
    match anonymous.subscribe_blocks().await {
        Err(ClientError::Rpc { code, .. }) => assert_eq!(code, code::UNAUTHENTICATED),
        other => panic!("an anonymous subscription must be refused, got {other:?}"),
    }
    let before = t.client.status().await.unwrap();
    assert_eq!(before.mempool_txs, 0, "nothing an anonymous caller sent was admitted");

    // A valid signature by a key the chain does not know: not a principal.
    let stranger = Keypair::from_seed("stranger");
    let as_stranger = anonymous.signed_for(crate::common::CHAIN_ID, stranger.clone());
    let (code_, message) = refusal(as_stranger.read(reads::org("nobody")).await);
    assert_eq!(code_, code::FORBIDDEN);
    assert!(message.contains("not a registered principal"), "{message}");
    // It may not submit another's transaction, nor its own call of anything but registration.
    assert_eq!(refusal(as_stranger.submit(&tx).await).0, code::FORBIDDEN);
    let own_other = TxBuilder::new(crate::common::CHAIN_ID, stranger.clone())
        .call(builder::update_org("by-anon", Some("X"), None), 0, height + 100)
        .unwrap();
    let (code_, message) = refusal(as_stranger.submit(&own_other).await);
    assert_eq!(code_, code::FORBIDDEN);
    assert!(message.contains("only its own registration"), "{message}");
    assert_eq!(t.client.nonce(&stranger.account()).await.unwrap(), 0, "nothing of the stranger's was committed");
    // It may read its own nonce (to sign its registration), nobody else's.
    assert_eq!(as_stranger.nonce(&stranger.account()).await.unwrap(), 0);
    assert_eq!(refusal(as_stranger.nonce(&t.admin.account()).await).0, code::FORBIDDEN);
    assert_eq!(t.client.status().await.unwrap().mempool_txs, 0, "nor admitted");

    // Its own registration goes through; then it administers an organisation and may read.
    let me = Signer::new(&anonymous, crate::common::CHAIN_ID, stranger.clone());
    me.execute(builder::register_org("stranger-co", "Stranger Co", OrgKind::Enterprise)).await.unwrap();
    assert_eq!(me.client().read(reads::org("stranger-co")).await.unwrap().kind, OrgKind::Enterprise);

    // The committee's admin reads too; audit queries need the auditor role, which it lacks.
    assert!(t.client.read(reads::org("stranger-co")).await.is_ok());
    let query = AuditQuery {
        by: "grant".into(),
        value: "1".into(),
        from_ms: 0,
        to_ms: u64::MAX,
        log_tx: shutong_types::Hash::ZERO,
        height: None,
        limit: None,
        cursor: None,
    };
    let page = t
        .client
        .call_raw::<shutong_sdk::rpc::AuditPage>(shutong_sdk::rpc::method::AUDIT_QUERY, jsonrpsee::rpc_params![query])
        .await;
    let (code_, message) = refusal(page);
    assert_eq!(code_, code::FORBIDDEN);
    assert!(message.contains("auditor role"), "{message}");
    t.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stale_replayed_tampered_and_foreign_signatures_are_refused_with_their_reason() {
    let t = crate::common::TestNode::start().await;
    let addr = t.node.as_ref().unwrap().rpc_addr;
    let body = query_body(1);
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_millis() as u64;
    let signed = |body: &str, chain: &str, at: u64, nonce: u8| -> Vec<(&'static str, String)> {
        RequestAuth::sign_at(&t.admin, chain, body.as_bytes(), at, [nonce; 16]).headers().to_vec()
    };

    // A good signed request is answered (the organisation does not exist: the contract says so).
    let good = signed(&body, crate::common::CHAIN_ID, now, 1);
    let (status, answer) = raw_http(addr, &body, &good).await;
    assert_eq!(status, 200);
    assert!(answer.contains(&code::QUERY_FAILED.to_string()), "{answer}");
    // The same bytes again: a replay.
    let (_, answer) = raw_http(addr, &body, &good).await;
    assert!(answer.contains(&code::AUTH_INVALID.to_string()) && answer.contains("sent before"), "{answer}");
    // Another body under the same signature.
    let (_, answer) = raw_http(addr, &query_body(2), &signed(&body, crate::common::CHAIN_ID, now, 2)).await;
    assert!(answer.contains("does not verify"), "{answer}");
    // Signed for another chain.
    let (_, answer) = raw_http(addr, &body, &signed(&body, "another-chain", now, 3)).await;
    assert!(answer.contains("does not verify"), "{answer}");
    // Signed ten minutes ago.
    let (_, answer) = raw_http(addr, &body, &signed(&body, crate::common::CHAIN_ID, now - 600_000, 4)).await;
    assert!(answer.contains("check the clock"), "{answer}");
    // A malformed header is named.
    let mut bad = signed(&body, crate::common::CHAIN_ID, now, 5);
    bad[2].1 = "not-hex".into();
    let (_, answer) = raw_http(addr, &body, &bad).await;
    assert!(answer.contains("x-shutong-nonce"), "{answer}");
    // A signed body over the limit is refused before it is read whole.
    let huge = format!("{{\"pad\":\"{}\"}}", "x".repeat(3 << 20));
    let (status, _) = raw_http(addr, &huge, &signed(&huge, crate::common::CHAIN_ID, now, 6)).await;
    assert_eq!(status, 413);
    t.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_address_and_principal_has_its_rate() {
    let mut cfg = crate::common::config();
    cfg.rpc.rate = RateConfig {
        per_address_per_second: 1_000,
        per_address_burst: 1_000,
        per_principal_per_second: 5,
        per_principal_burst: 10,
    };
    let t = crate::common::TestNode::start_with(cfg).await;
    let mut limited = 0;
    for _ in 0..30 {
        if let Err(err) = t.client.nonce(&t.admin.account()).await {
            assert_eq!(err.code(), Some(RpcCode::RateLimited), "{err}");
            assert!(err.to_string().contains("slow down"), "{err}");
            limited += 1;
        }
    }
    assert!(limited >= 15, "only {limited} of 30 calls over a burst of 10 were limited");
    // Another principal has its own bucket.
    let other = Signer::new(&t.anonymous(), crate::common::CHAIN_ID, Keypair::from_seed("other"));
    other.execute(builder::register_org("other-co", "Other", OrgKind::Enterprise)).await.unwrap();
    t.stop().await;

    let mut cfg = crate::common::config();
    cfg.rpc.rate.per_address_per_second = 5;
    cfg.rpc.rate.per_address_burst = 10;
    let t = crate::common::TestNode::start_with(cfg).await;
    let anonymous = t.anonymous();
    let mut limited = 0;
    for _ in 0..30 {
        if let Err(err) = anonymous.status().await {
            assert_eq!(err.code(), Some(RpcCode::RateLimited), "{err}");
            limited += 1;
        }
    }
    assert!(limited >= 15, "only {limited} of 30 calls from one address over a burst of 10 were limited");
    t.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_tls_the_node_speaks_https_only() {
    let dir = tempfile::tempdir().unwrap();
    let made = rcgen::generate_simple_self_signed(vec!["localhost".to_string()]).unwrap();
    let (cert_file, key_file) = (dir.path().join("rpc.crt"), dir.path().join("rpc.key"));
    std::fs::write(&cert_file, made.cert.pem()).unwrap();
    std::fs::write(&key_file, made.key_pair.serialize_pem()).unwrap();
    let mut cfg = crate::common::config();
    cfg.rpc.tls = Some(shutong_node::config::TlsConfig { cert_file, key_file });
    let t = crate::common::TestNode::start_with(cfg).await;
    let addr = t.node.as_ref().unwrap().rpc_addr;

    let mut roots = rustls::RootCertStore::empty();
    roots.add(made.cert.der().clone()).unwrap();
    let config =
        rustls::ClientConfig::builder_with_provider(std::sync::Arc::new(rustls::crypto::ring::default_provider()))
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_root_certificates(roots)
            .with_no_client_auth();
    let connector = tokio_rustls::TlsConnector::from(std::sync::Arc::new(config));
    let tcp = tokio::net::TcpStream::connect(addr).await.unwrap();
    let name = rustls::pki_types::ServerName::try_from("localhost").unwrap();
    let mut tls = connector.connect(name, tcp).await.unwrap();
    let body = r#"{"jsonrpc":"2.0","id":1,"method":"shutong_status","params":[]}"#;
    let request = format!(
        "POST / HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    tls.write_all(request.as_bytes()).await.unwrap();
    let mut answer = Vec::new();
    let _ = tokio::time::timeout(Duration::from_secs(10), tls.read_to_end(&mut answer)).await.unwrap();
    let answer = String::from_utf8_lossy(&answer);
    assert!(answer.starts_with("HTTP/1.1 200") && answer.contains(crate::common::CHAIN_ID), "{answer}");

    // Plain HTTP on the TLS port gets no JSON-RPC answer.
    let (status, body) = raw_http(addr, body, &[]).await;
    assert!(status != 200 && !body.contains(crate::common::CHAIN_ID), "{status} {body}");
    t.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_tls_config_whose_files_are_missing_is_refused_before_anything_is_written() {
    let home = tempfile::tempdir().unwrap();
    let mut cfg = crate::common::config();
    cfg.rpc.tls = Some(shutong_node::config::TlsConfig { cert_file: "nope.crt".into(), key_file: "nope.key".into() });
    let validator = Keypair::from_seed("test-validator");
    let genesis = shutong_execution::genesis::Genesis::new(
        crate::common::CHAIN_ID,
        1_795_000_000_000,
        vec![shutong_execution::genesis::GenesisValidator::new("v0", validator.public())],
        shutong_execution::genesis::CommitteeMember::departments(&[Keypair::from_seed("test-admin").account()]),
    );
    let err = shutong_node::Node::start_with(home.path(), cfg.clone(), genesis, validator).await.err().unwrap();
    assert!(err.to_string().contains("rpc.tls.cert_file") && err.to_string().contains("nope.crt"), "{err}");
    assert!(!home.path().join(&cfg.data_dir).exists(), "the database was created");
}

/// A signer that always fails, as a token pulled out of its reader does, counting its tries.
#[derive(Debug)]
struct Unplugged(shutong_types::PublicKey, std::sync::atomic::AtomicU32);

impl shutong_types::Signer for Unplugged {
    fn public(&self) -> shutong_types::PublicKey {
        self.0
    }
    fn try_sign(&self, _: &[u8]) -> Result<shutong_types::Signature, shutong_types::SignerError> {
        self.1.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        Err(shutong_types::SignerError { key: self.0, reason: "the token is not present".into() })
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_request_its_key_cannot_sign_is_a_signer_error_and_is_not_retried() {
    let t = crate::common::TestNode::start().await;
    let unplugged = std::sync::Arc::new(Unplugged(t.admin.public(), Default::default()));
    let key: std::sync::Arc<dyn shutong_types::Signer> = unplugged.clone();
    let client = t.anonymous().signed_by(key).with_retry(shutong_sdk::Retry::default());
    let err = client.nonce(&t.admin.account()).await.unwrap_err();
    match &err {
        ClientError::Signer(e) => assert!(e.to_string().contains("the token is not present"), "{e}"),
        other => panic!("expected a signer error, got {other:?}"),
    }
    assert!(!err.is_transient());
    assert_eq!(unplugged.1.load(std::sync::atomic::Ordering::SeqCst), 1, "tried once, not retried");
}
