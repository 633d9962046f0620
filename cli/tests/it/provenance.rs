//! Provenance on a real node: an auditor's light client reads the audit log and state with
//! proofs, and catches a node whose RocksDB was changed behind its back: a changed state
//! value, a changed audit leaf, and a rewritten log.

use shutong_codec::{Decode, Encode};
use shutong_execution::state_tree::{Node, NodeKey};
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
        if let Ok(Node::Leaf(leaf)) = Node::decode_in(shutong_types::Suite::Ed25519Blake3, &bytes)
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
    let mut t = crate::common::TestNode::start().await;
    t.tell_the_story().await;

    // The auditor trusts the genesis validator and nothing else.
    let validators = vec![t.validator.public()];
    let (mut before, leaves) =
        crate::common::verified_audit_log(&t.client, crate::common::CHAIN_ID, validators.clone()).await;
    let kinds: Vec<String> = leaves.iter().filter_map(shutong_sdk::light::entry_of).map(|e| e.kind).collect();
    assert!(kinds.iter().filter(|k| k.starts_with("access.")).count() >= 5, "{kinds:?}");
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
    let light =
        shutong_sdk::LightClient::new(crate::common::CHAIN_ID, shutong_types::Suite::Ed25519Blake3, validators.clone());
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

/// The auditor's questions of domain.md, on a real node: who used this resource, under which
/// grant, for what purpose; everything one organisation did; the full history of a grant.
/// Each answer is proven against a finalized header, and the question itself is in the log.
#[tokio::test(flavor = "multi_thread")]
async fn an_auditor_asks_who_used_which_data_and_every_answer_is_proven() {
    auditor_questions(shutong_types::Suite::Ed25519Blake3).await;
}

/// The same on a 国密 chain: every key SM2, every proof SM3, the bundle checked offline.
#[tokio::test(flavor = "multi_thread")]
async fn an_auditor_asks_on_an_sm2_sm3_chain_and_every_answer_is_proven() {
    auditor_questions(shutong_types::Suite::Sm2Sm3).await;
}

async fn auditor_questions(suite: shutong_types::Suite) {
    use shutong_sdk::builder::{self, audit_trail};
    use shutong_sdk::rpc::{AuditQuery, code};
    use shutong_sdk::system_api::audit::LogQuery;
    use shutong_sdk::system_api::registry::{OrgKind, PrincipalKind, PrincipalStatus, role};
    use shutong_types::{ExecStatus, Keypair};

    let t = crate::common::TestNode::start_in(suite, crate::common::config()).await;
    t.tell_the_story().await;

    // An inspection office with an auditor.
    let key = |seed: &str| Keypair::from_seed_in(suite, seed);
    let (office, auditor, analyst) = (key("inspect-admin"), key("inspector"), key("acme-analyst"));
    let run = |key: &Keypair, call| {
        let t = &t;
        let key = key.clone();
        async move { t.client.submit_and_wait(&t.sign(&key, call).await, crate::common::WAIT).await.unwrap() }
    };
    assert!(
        run(&office, builder::register_org("inspect", "District Inspection", OrgKind::Auditor))
            .await
            .status
            .is_success()
    );
    // An auditor is pending until the committee (here the node's admin alone) approves it.
    let approve = shutong_sdk::system_api::governance::Action::ApproveOrg { id: "inspect".into() };
    assert!(run(&t.admin, builder::propose(approve)).await.status.is_success());
    let set = builder::set_principal(
        "inspect",
        &auditor.account(),
        PrincipalKind::Person,
        role::AUDITOR,
        PrincipalStatus::Active,
    );
    assert!(run(&office, set).await.status.is_success());

    let ask = |by: &str, value: &str| LogQuery {
        by: by.into(),
        value: value.into(),
        from_ms: 0,
        to_ms: u64::MAX,
        reason: "inspection 2026-17".into(),
    };
    // Only an auditor may log a question.
    let refused = run(&analyst, audit_trail::log_query(&ask("org", "acme"))).await;
    assert!(matches!(refused.status, ExecStatus::Aborted(ref m) if m.contains("auditor role")), "{refused:?}");

    // The auditor's own client: audit queries need the auditor role, and each question must
    // be one this auditor logged.
    let as_auditor = t.client.signed_by(auditor.clone());
    let light = shutong_sdk::LightClient::new(crate::common::CHAIN_ID, suite, vec![t.validator.public()]);
    let mut verifying = shutong_sdk::VerifyingClient::new(as_auditor.clone(), light);
    let trail = |by: &'static str, value: String| {
        let run = &run;
        let auditor = auditor.clone();
        async move {
            let logged = run(&auditor, audit_trail::log_query(&ask(by, &value))).await;
            assert!(logged.status.is_success(), "{logged:?}");
            AuditQuery {
                by: by.into(),
                value,
                from_ms: 0,
                to_ms: u64::MAX,
                height: None,
                cursor: None,
                limit: Some(3),
                log_tx: logged.tx_id,
            }
        }
    };

    // Everything acme did or had done to it: its request, its grant, its uses.
    let by_org = trail("org", "acme".into()).await;
    verifying.sync().await.unwrap();
    let items = verifying.audit_trail(&by_org).await.unwrap();
    let kinds: Vec<&str> = items.iter().map(|i| i.entry.as_ref().unwrap().kind.as_str()).collect();
    assert!(kinds.starts_with(&["request.submitted"]), "{kinds:?}");
    let grant = items.iter().find(|i| i.entry.as_ref().unwrap().kind == "grant.issued").unwrap();
    let grant_id = grant.entry.as_ref().unwrap().grant;
    assert!(kinds.iter().filter(|k| **k == "access.permitted").count() == 3, "{kinds:?}");

    // The full history of the grant, in order, every item proven and about that grant, and
    // proven complete: the grant's entry count is proven in the same header.
    let by_grant = trail("grant", grant_id.to_string()).await;
    verifying.sync().await.unwrap();
    let history = verifying.audit_trail(&by_grant).await.unwrap();
    assert!(history.iter().enumerate().all(|(i, item)| item.entry.as_ref().unwrap().grant_seq == i as u64));
    let kinds: Vec<&str> = history.iter().map(|i| i.entry.as_ref().unwrap().kind.as_str()).collect();
    assert_eq!(kinds[0], "grant.issued", "{kinds:?}");
    for expected in ["access.permitted", "grant.exhausted", "access.denied", "violation.opened", "grant.revoked"] {
        assert!(kinds.contains(&expected), "{expected} missing from {kinds:?}");
    }
    assert!(history.iter().all(|i| i.entry.as_ref().unwrap().grant == grant_id));
    assert!(history.windows(2).all(|w| w[0].index < w[1].index));

    // The provider's gateway reads the grant and the user from the chain with proofs and
    // decides locally, with the contract's own rules: the grant is revoked.
    let mut gateway = shutong_sdk::gateway::Gateway::new(suite);
    let cached = gateway.refresh_grant(&verifying, grant_id).await.unwrap().unwrap();
    assert_eq!(cached.resource, "market/licence");
    gateway.refresh_member(&verifying, analyst.account().0).await.unwrap();
    let request = shutong_sdk::system_api::authz::Use {
        grant: grant_id,
        account: analyst.account().0,
        fields: vec!["uscc".into()],
        method: shutong_sdk::system_api::catalog::method::QUERY,
        purpose: "licensing.renewal".into(),
        count: 1,
    };
    let now = t.client.status().await.unwrap().timestamp_ms;
    assert_eq!(gateway.authorize(&request, now).reason, format!("grant {grant_id} is revoked"));

    // Who used the resource, for what purpose: the uses and denials, each naming its purpose.
    let by_resource = trail("resource", "market/licence".into()).await;
    verifying.sync().await.unwrap();
    let uses = verifying.audit_trail(&by_resource).await.unwrap();
    let marketing = uses.iter().filter(|i| i.entry.as_ref().unwrap().purpose == "marketing").count();
    assert_eq!(marketing, 2, "the denied use and its violation name the purpose asked for");

    // Who used the resource in a period (the question auditors ask most): proven complete by
    // the resource's own sequence, bounded by its entries just before and just after the
    // period. A node that drops one entry from the answer is caught, the entry named.
    let (from_ms, to_ms) = (uses[2].leaf.time_ms, uses[uses.len() - 3].leaf.time_ms);
    assert!(from_ms < to_ms, "the story's uses span several blocks");
    let question = LogQuery {
        by: "resource".into(),
        value: "market/licence".into(),
        from_ms,
        to_ms,
        reason: "inspection 2026-17".into(),
    };
    let logged = run(&auditor, audit_trail::log_query(&question)).await;
    assert!(logged.status.is_success(), "{logged:?}");
    let period = AuditQuery { from_ms, to_ms, log_tx: logged.tx_id, ..by_resource.clone() };
    let at = verifying.sync().await.unwrap();
    let (items, completeness) = verifying.audit_answer(&period).await.unwrap();
    assert!(items.iter().all(|i| (from_ms..=to_ms).contains(&i.leaf.time_ms)));
    assert!(completeness.before.is_some() && completeness.after.is_some(), "{completeness:?}");
    let selector = shutong_sdk::system_api::audit::Selector::Resource("market/licence".into());
    let numbers: Vec<u64> = items.iter().map(|i| i.entry.as_ref().unwrap().seq_of(&selector).unwrap()).collect();
    assert!(numbers.windows(2).all(|w| w[1] == w[0] + 1), "{numbers:?}");
    assert!(items.len() >= 3, "{numbers:?}");
    let mut dropped = items.clone();
    let gone = dropped.remove(1);
    let missing = gone.entry.as_ref().unwrap().seq_of(&selector).unwrap();
    let err = verifying.light.check_answer(&at, &period, &dropped, &completeness).unwrap_err().to_string();
    assert!(err.contains(&format!("entry {missing} is missing")), "{err}");
    assert!(err.contains("resource \"market/licence\""), "{err}");
    // The same through a node that really drops it, in front of the honest one.
    let proxy = std::sync::Arc::new(Proxy {
        upstream: as_auditor.clone(),
        lie: std::sync::Mutex::new(Lie::DroppedEntry),
        validator: t.validator.clone(),
    });
    let (url, server) = lying_node(proxy).await;
    let light = shutong_sdk::LightClient::new(crate::common::CHAIN_ID, suite, vec![t.validator.public()]);
    let mut lied_to = shutong_sdk::VerifyingClient::new(shutong_sdk::Client::new(&url).unwrap(), light);
    lied_to.sync().await.unwrap();
    let err = lied_to.audit_trail(&period).await.unwrap_err();
    assert!(matches!(err, LightError::Incomplete { .. }), "{err}");
    assert!(err.to_string().contains(&format!("entry {missing} is missing")), "{err}");
    server.stop().unwrap();

    // The auditor's own questions are in the log.
    let by_auditor = trail("principal", hex::encode(auditor.account().0)).await;
    verifying.sync().await.unwrap();
    let asked = verifying.audit_trail(&by_auditor).await.unwrap();
    assert!(
        asked.len() >= 3 && asked.iter().all(|i| i.entry.as_ref().unwrap().kind == "query.logged"),
        "{}",
        asked.len()
    );

    // The command line: the same question as a bundle, checked offline, and caught when
    // changed.
    cli_trail_and_offline_verify(&t, &auditor, grant_id);

    // A question that was not logged, or not the one logged, is not answered.
    let unlogged = AuditQuery { value: "partner".into(), ..by_org.clone() };
    let err = as_auditor
        .call_raw::<shutong_sdk::rpc::AuditPage>("shutong_auditQuery", jsonrpsee::rpc_params![unlogged])
        .await;
    assert!(
        matches!(err, Err(shutong_sdk::ClientError::Rpc { code: c, .. }) if c == code::QUERY_NOT_LOGGED),
        "{err:?}"
    );
    // Nor one another auditor logged: a second auditor of the office may not ride on it.
    let other = key("second-inspector");
    let set = builder::set_principal(
        "inspect",
        &other.account(),
        PrincipalKind::Person,
        role::AUDITOR,
        PrincipalStatus::Active,
    );
    assert!(run(&office, set).await.status.is_success());
    let err = t
        .client
        .signed_by(other)
        .call_raw::<shutong_sdk::rpc::AuditPage>("shutong_auditQuery", jsonrpsee::rpc_params![by_org.clone()])
        .await;
    assert!(
        matches!(&err, Err(shutong_sdk::ClientError::Rpc { code: c, message }) if *c == code::QUERY_NOT_LOGGED && message.contains("not this caller's")),
        "{err:?}"
    );
    t.stop().await;
}

const BIN: &str = env!("CARGO_BIN_EXE_shutong");

fn shutong(args: &[&str]) -> std::process::Output {
    std::process::Command::new(BIN).args(args).output().unwrap()
}

/// `shutong audit trail --export` and `shutong audit verify`, as an auditor runs them.
fn cli_trail_and_offline_verify(t: &crate::common::TestNode, auditor: &shutong_types::Keypair, grant: u64) {
    let dir = tempfile::tempdir().unwrap();
    let key = dir.path().join("auditor.json");
    shutong_sdk::keyfile::write(&key, auditor, false).unwrap();
    let genesis = dir.path().join("genesis.json");
    std::fs::write(&genesis, serde_json::to_string_pretty(&t.genesis).unwrap()).unwrap();
    let bundle = dir.path().join("bundle.json");
    let rpc = format!("http://{}", t.node.as_ref().unwrap().rpc_addr);
    let grant = grant.to_string();
    let out = shutong(&[
        "--output",
        "json",
        "audit",
        "trail",
        "--rpc",
        &rpc,
        "--key",
        key.to_str().unwrap(),
        "--genesis",
        genesis.to_str().unwrap(),
        "--grant",
        &grant,
        "--reason",
        "inspection 2026-17",
        "--export",
        bundle.to_str().unwrap(),
    ]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let answer: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let items = answer["items"].as_array().unwrap();
    assert!(items.len() >= 8, "{answer}");
    assert!(items.iter().all(|i| i["grant"].as_u64() == Some(grant.parse().unwrap())));
    assert_eq!(items[0]["kind"], "grant.issued");
    assert_eq!(answer["complete"], true, "a grant's whole history is proven complete");

    // Offline: no --rpc at all, the genesis file as the trust root.
    let out = shutong(&[
        "--output",
        "json",
        "audit",
        "verify",
        bundle.to_str().unwrap(),
        "--genesis",
        genesis.to_str().unwrap(),
    ]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let checked: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(checked["items"].as_array().unwrap().len(), items.len());

    // One entry changed in the bundle: refused, naming the leaf and the failed proof.
    let mut edited: serde_json::Value = serde_json::from_slice(&std::fs::read(&bundle).unwrap()).unwrap();
    let leaf = edited["items"][2]["leaf_hex"].as_str().unwrap().to_string();
    let flipped = format!("{}{}", &leaf[..leaf.len() - 2], if leaf.ends_with("00") { "01" } else { "00" });
    edited["items"][2]["leaf_hex"] = serde_json::Value::String(flipped);
    std::fs::write(&bundle, serde_json::to_vec(&edited).unwrap()).unwrap();
    let out = shutong(&["audit", "verify", bundle.to_str().unwrap()]);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("does not verify") && err.contains("audit-log proof for leaf"), "{err}");

    // One entry left out of the bundle: every remaining proof holds, but the history is
    // proven incomplete.
    let mut shorter: serde_json::Value = serde_json::from_slice(&std::fs::read(&bundle).unwrap()).unwrap();
    shorter["items"][2]["leaf_hex"] = serde_json::Value::String(leaf.clone());
    shorter["items"].as_array_mut().unwrap().remove(4);
    let short_bundle = dir.path().join("short.json");
    std::fs::write(&short_bundle, serde_json::to_vec(&shorter).unwrap()).unwrap();
    let out = shutong(&["audit", "verify", short_bundle.to_str().unwrap()]);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("is incomplete: entry 4 is missing"), "{err}");

    // A bundle from another chain's trust root is refused even if it checks on its own.
    let mut other = t.genesis.clone();
    other.chain_id = "another-chain".into();
    std::fs::write(&genesis, serde_json::to_string_pretty(&other).unwrap()).unwrap();
    edited["items"][2]["leaf_hex"] = serde_json::Value::String(leaf);
    std::fs::write(&bundle, serde_json::to_vec(&edited).unwrap()).unwrap();
    let out = shutong(&["audit", "verify", bundle.to_str().unwrap(), "--genesis", genesis.to_str().unwrap()]);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    // On an SM chain that genesis does not even load: its validators' transport bindings
    // name the real chain id.
    let refused = match t.genesis.suite {
        shutong_types::Suite::Ed25519Blake3 => "not the trusted ones",
        shutong_types::Suite::Sm2Sm3 => "is not bound to validator key",
    };
    assert!(err.contains(refused), "{err}");
}

/// How the lying node in front of the real one bends its answers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Lie {
    None,
    /// The newest header with its state root changed, under the real certificate.
    ForgedHeader,
    /// An older finalized header served as the newest: history cut short.
    Stale(u64),
    /// A header re-signed by the (colluding) validator with a log two leaves shorter.
    TruncatedLog,
    /// An audit leaf with its bytes changed.
    ForgedLeaf,
    /// An audit answer's page with its second item left out.
    DroppedEntry,
}

struct Proxy {
    upstream: shutong_sdk::Client,
    lie: std::sync::Mutex<Lie>,
    validator: shutong_types::Keypair,
}

async fn forward(proxy: &Proxy, method: &str, params: serde_json::Value) -> serde_json::Value {
    let mut array = jsonrpsee::core::params::ArrayParams::new();
    for value in params.as_array().cloned().unwrap_or_default() {
        array.insert(value).unwrap();
    }
    proxy.upstream.call_raw(method, array).await.unwrap()
}

/// A node in front of the real one that answers with the current lie.
async fn lying_node(proxy: std::sync::Arc<Proxy>) -> (String, jsonrpsee::server::ServerHandle) {
    use shutong_sdk::rpc::{HeaderInfo, method};
    use shutong_types::{BlockHeader, Certificate, VoteKind, VoteSubject};
    let server = jsonrpsee::server::Server::builder().build("127.0.0.1:0").await.unwrap();
    let addr = server.local_addr().unwrap();
    let mut module = jsonrpsee::RpcModule::from_arc(proxy);
    for name in [
        method::GET_FINALIZED,
        method::GET_EPOCH,
        method::GET_STATE_PROOF,
        method::GET_AUDIT_PROOF,
        method::GET_CONSISTENCY_PROOF,
        method::AUDIT_QUERY,
    ] {
        module
            .register_async_method(name, move |params, proxy, _| async move {
                let params: serde_json::Value = params.parse().unwrap_or(serde_json::Value::Array(vec![]));
                let lie = *proxy.lie.lock().unwrap();
                let mut answer = forward(&proxy, name, params).await;
                if name == method::GET_FINALIZED {
                    let mut info: HeaderInfo = serde_json::from_value(answer.clone()).unwrap();
                    let mut header = BlockHeader::decode(&hex::decode(&info.header_hex).unwrap()).unwrap();
                    match lie {
                        Lie::ForgedHeader => {
                            header.state_root =
                                shutong_types::Hash::of(shutong_types::Suite::Ed25519Blake3, "forged", b"root")
                        }
                        Lie::Stale(height) => {
                            let old: Option<HeaderInfo> = proxy
                                .upstream
                                .call_raw(method::GET_HEADER, jsonrpsee::rpc_params![height])
                                .await
                                .unwrap();
                            return Ok(serde_json::to_value(old.unwrap()).unwrap());
                        }
                        Lie::TruncatedLog => {
                            // The validator itself signs a header whose log lost its last leaves.
                            header.audit_size -= 2;
                            header.audit_root =
                                shutong_types::Hash::of(shutong_types::Suite::Ed25519Blake3, "truncated", b"log");
                            let subject = VoteSubject {
                                kind: VoteKind::Finalize,
                                epoch: 0,
                                view: header.view,
                                digest: header.hash(),
                            };
                            let signature = subject.sign(&header.chain_id, &proxy.validator);
                            info.certificate_hex =
                                Some(hex::encode(Certificate::new(subject, 1, &[(0, signature)]).encode()));
                        }
                        _ => {}
                    }
                    info.header_hex = hex::encode(header.encode());
                    answer = serde_json::to_value(info).unwrap();
                }
                if name == method::AUDIT_QUERY
                    && lie == Lie::DroppedEntry
                    && let Some(items) = answer["items"].as_array_mut().filter(|items| items.len() > 1)
                {
                    items.remove(1);
                }
                if name == method::GET_AUDIT_PROOF && lie == Lie::ForgedLeaf {
                    let leaf = answer["leaf_hex"].as_str().unwrap().replacen('0', "1", 1);
                    answer["leaf_hex"] = serde_json::Value::String(leaf);
                }
                Ok::<_, jsonrpsee::types::ErrorObjectOwned>(answer)
            })
            .unwrap();
    }
    (format!("http://{addr}"), server.start(module))
}

/// A node that lies, in front of an honest one: a forged header, a truncated history (an
/// old header as the newest, and a log cut short under a certificate the validator itself
/// signed), and forged data are each refused by the client, by name.
#[tokio::test(flavor = "multi_thread")]
async fn a_lying_node_is_caught_forging_headers_data_and_history() {
    let t = crate::common::TestNode::start().await;
    t.tell_the_story().await;
    let proxy = std::sync::Arc::new(Proxy {
        upstream: t.client.clone(),
        lie: std::sync::Mutex::new(Lie::None),
        validator: t.validator.clone(),
    });
    let (url, server) = lying_node(std::sync::Arc::clone(&proxy)).await;
    let light = shutong_sdk::LightClient::new(
        crate::common::CHAIN_ID,
        shutong_types::Suite::Ed25519Blake3,
        vec![t.validator.public()],
    );
    let mut client = shutong_sdk::VerifyingClient::new(shutong_sdk::Client::new(&url).unwrap(), light);
    let set_lie = |lie| *proxy.lie.lock().unwrap() = lie;

    // Honest answers through the proxy are accepted.
    let first = client.sync().await.unwrap();
    assert!(first.header.audit_size > 5);
    client.audit_leaf(2).await.unwrap();
    let wait_past = |height: u64| {
        let c = t.client.clone();
        async move {
            while c.status().await.unwrap().height < height {
                tokio::time::sleep(std::time::Duration::from_millis(20)).await;
            }
        }
    };
    wait_past(first.header.height + 3).await;

    set_lie(Lie::ForgedHeader);
    let err = client.sync().await.unwrap_err();
    assert!(matches!(err, LightError::WrongSubject { .. }), "{err}");

    set_lie(Lie::Stale(first.header.height - 3));
    let err = client.sync().await.unwrap_err();
    assert!(matches!(err, LightError::Regressed { .. }), "{err}");

    set_lie(Lie::TruncatedLog);
    let err = client.sync().await.unwrap_err();
    assert!(matches!(err, LightError::LogShrunk { known, claimed, .. } if claimed + 2 == known), "{err}");

    set_lie(Lie::ForgedLeaf);
    let err = client.audit_leaf(2).await.unwrap_err();
    assert!(matches!(err, LightError::Log { index: 2, source: LogProofError::RootMismatch { .. } }), "{err}");

    // Nothing a lie offered was accepted: the client still stands where it was, and honest
    // answers move it on.
    assert_eq!(client.light.latest().unwrap().header.height, first.header.height);
    set_lie(Lie::None);
    assert!(client.sync().await.unwrap().header.height > first.header.height);
    server.stop().unwrap();
    t.stop().await;
}
