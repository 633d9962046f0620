//! # Tutorial
//!
//! Five chapters, each a program that compiles and runs as a doc test against a real node:
//! a one-validator chain started in the test's own process (`shutong_node::sandbox`, in the
//! hidden lines). Against your chain, use its node's RPC address and your own keys; nothing
//! else changes.
//!
//! 1. [Keys](#1-keys)
//! 2. [From a call to a receipt](#2-from-a-call-to-a-receipt)
//! 3. [Sharing data: a department, an enterprise, a gateway, an auditor](#3-sharing-data)
//! 4. [Your own contract](#4-your-own-contract)
//! 5. [When things go wrong](#5-when-things-go-wrong)
//!
//! ## 1. Keys
//!
//! An account is an ed25519 key; its address (`AccountId`) is derived from the public key.
//! A key file is readable by its owner only; it may be sealed under a passphrase (argon2id
//! and ChaCha20-Poly1305), and reading it with the wrong passphrase fails by name.
//!
//! ```
//! use shutong_sdk::keyfile;
//! use shutong_types::Keypair;
//! # fn main() -> anyhow::Result<()> {
//! # let dir = tempfile::tempdir()?;
//! let key = Keypair::generate(shutong_types::Suite::Ed25519Blake3);
//! let path = dir.path().join("analyst.json");
//! keyfile::write(&path, &key, false)?;
//! assert_eq!(keyfile::read(&path)?.account(), key.account());
//! # #[cfg(unix)] {
//! use std::os::unix::fs::PermissionsExt;
//! assert_eq!(std::fs::metadata(&path)?.permissions().mode() & 0o777, 0o600);
//! # }
//!
//! let sealed = dir.path().join("cdo.json");
//! keyfile::write_encrypted(&sealed, &key, "correct horse battery staple", false)?;
//! assert_eq!(keyfile::read_with(&sealed, Some("correct horse battery staple"))?.account(), key.account());
//! assert!(keyfile::read_with(&sealed, Some("wrong")).is_err());
//! # Ok(()) }
//! ```
//!
//! ## 2. From a call to a receipt
//!
//! [`crate::Client`] speaks JSON-RPC to one node. A [`crate::Signer`] is one account on that
//! chain: it signs a call with the account's next nonce, submits it, waits until a block
//! holding it is finalized, and returns the call's output. Every system-contract operation
//! has a builder in [`crate::builder`]; every read has a typed form in [`crate::reads`].
//!
//! A node answers anyone its status, headers and proofs; everything else only to a
//! registered principal, who signs each request (`docs/rpc.md`, "Access control"). A
//! signer's client ([`crate::Signer::client`]) signs as the signer; [`Client::signed_by`]
//! makes any client sign. A key the chain does not know yet may send one thing: its own
//! registration of an organisation.
//!
//! ```
//! use shutong_sdk::system_api::registry::OrgKind;
//! use shutong_sdk::{Client, RpcCode, SendError, Signer, builder, reads};
//! use shutong_types::Keypair;
//! # #[tokio::main(flavor = "multi_thread", worker_threads = 2)]
//! # async fn main() -> anyhow::Result<()> {
//! # let dir = tempfile::tempdir()?;
//! # let sandbox = shutong_node::sandbox::Sandbox::start(dir.path()).await?;
//! # let rpc = sandbox.rpc.clone();
//! let client = Client::new(&rpc)?;
//! let status = client.status().await?;
//! println!("chain {} at height {}", status.chain_id, status.height);
//!
//! let bureau = Signer::connect(&client, Keypair::generate(shutong_types::Suite::Ed25519Blake3)).await?;
//! bureau.execute(builder::register_org("jingan-data", "Jing'an Data Co", OrgKind::Enterprise)).await?;
//! let org = bureau.client().read(reads::org("jingan-data")).await?;
//! assert_eq!(org.admin, bureau.account().0);
//!
//! // An unsigned read, and anything but its own registration from an unknown key, are
//! // refused by the node before they reach a contract.
//! assert_eq!(client.read(reads::org("jingan-data")).await.unwrap_err().code(), Some(RpcCode::Unauthenticated));
//! let stranger = Signer::connect(&client, Keypair::generate(shutong_types::Suite::Ed25519Blake3)).await?;
//! let refused = stranger.execute(builder::update_org("jingan-data", Some("hijacked"), None)).await;
//! assert!(matches!(refused, Err(SendError::Client(ref e)) if e.code() == Some(RpcCode::Forbidden)));
//!
//! // Another organisation's admin may not rename it either: the contract refuses, and says why.
//! let other = Signer::connect(&client, Keypair::generate(shutong_types::Suite::Ed25519Blake3)).await?;
//! other.execute(builder::register_org("other", "Another Co", OrgKind::Enterprise)).await?;
//! let refused = other.execute(builder::update_org("jingan-data", Some("hijacked"), None)).await;
//! assert!(matches!(refused, Err(SendError::Failed { .. })));
//! assert_eq!(refused.unwrap_err().aborted(), Some("only the admin of organisation jingan-data may update it"));
//! # sandbox.stop().await;
//! # Ok(()) }
//! ```
//!
//! ## 3. Sharing data
//!
//! The whole authorisation story, by the four parties in turn. A **department** registers
//! with an approver and a gateway key, and publishes a resource in the catalog. An
//! **enterprise** registers with an analyst, who asks for two fields for a purpose the
//! governance committee has defined. The department approves; the grant is on chain.
//!
//! The department's **gateway** then serves the analyst. It reads the grant and the
//! analyst's membership *with proofs* against finalized headers, decides each use locally,
//! records it, and anchors the batch on chain by its Merkle root; a revocation reaches it
//! over a WebSocket subscription and it refuses at once. An **auditor** puts a question on
//! the record and gets the grant's whole history, every entry proven and none missing,
//! trusting only the genesis validators; the answer exports as a bundle anyone can check
//! offline.
//!
//! ```
//! use shutong_sdk::builder::{self, access, audit_trail};
//! use shutong_sdk::gateway::{Gateway, Journaled, verify_event};
//! use shutong_sdk::light::Bundle;
//! use shutong_sdk::rpc::AuditQuery;
//! use shutong_sdk::system_api::audit::{AccessEvent, AnchorRecord, LogQuery};
//! use shutong_sdk::system_api::authz::{LegalBasis, RequestAccess, Terms, Use, duty};
//! use shutong_sdk::system_api::catalog::{Classification, Field, Publish, ShareType, method};
//! use shutong_sdk::system_api::governance::Action;
//! use shutong_sdk::system_api::registry::{OrgKind, PrincipalKind, PrincipalStatus, role};
//! use shutong_sdk::{Client, LightClient, Signer, VerifyingClient, reads};
//! use shutong_types::Keypair;
//! use std::time::Duration;
//! # #[tokio::main(flavor = "multi_thread", worker_threads = 2)]
//! # async fn main() -> anyhow::Result<()> {
//! # let dir = tempfile::tempdir()?;
//! # let sandbox = shutong_node::sandbox::Sandbox::start(dir.path()).await?;
//! # let (rpc, genesis) = (sandbox.rpc.clone(), sandbox.genesis.clone());
//! let client = Client::new(&rpc)?;
//! let signer = |key: Keypair| Signer::connect(&client, key);
//! # let committee = signer(sandbox.admin.clone()).await?;
//! let active = PrincipalStatus::Active;
//!
//! // Governance defines the purpose (the committee's admin; here it governs alone).
//! let licensing = Action::DefinePurpose {
//!     code: "licensing".into(),
//!     legal_bases: 1 << LegalBasis::DutyMandate as u8,
//!     description: "business licensing".into(),
//! };
//! committee.execute(builder::propose(licensing)).await?;
//!
//! // The department: an admin who also approves, and the gateway's key.
//! let market = signer(Keypair::generate(shutong_types::Suite::Ed25519Blake3)).await?;
//! let gateway_key = signer(Keypair::generate(shutong_types::Suite::Ed25519Blake3)).await?;
//! market.execute(builder::register_org("market", "Market Bureau", OrgKind::Department)).await?;
//! // A department is pending until the governance committee approves it.
//! committee.execute(builder::propose(Action::ApproveOrg { id: "market".into() })).await?;
//! let approver = role::ADMIN | role::DATA_PROVIDER | role::CDO;
//! market.execute(builder::set_principal("market", &market.account(), PrincipalKind::Person, approver, active)).await?;
//! let gw = gateway_key.account();
//! market.execute(builder::set_principal("market", &gw, PrincipalKind::Gateway, role::DATA_PROVIDER, active)).await?;
//! let field = |name: &str| Field {
//!     name: name.into(),
//!     data_type: "string".into(),
//!     classification: Classification::General,
//!     masking: String::new(),
//!     element: None,
//! };
//! market
//!     .execute(builder::publish_resource(&Publish {
//!         code: "market/licence".into(),
//!         provider_org: "market".into(),
//!         source_system: "licence-db".into(),
//!         classification: Classification::General,
//!         personal_data: false,
//!         share_type: ShareType::Conditional,
//!         conditions: "licensing matters".into(),
//!         methods: method::QUERY,
//!         fields: vec![field("uscc"), field("name")],
//!         metadata_hash: [0; 32],
//!     }))
//!     .await?;
//!
//! // The enterprise and its analyst, who asks.
//! let acme = signer(Keypair::generate(shutong_types::Suite::Ed25519Blake3)).await?;
//! let analyst = signer(Keypair::generate(shutong_types::Suite::Ed25519Blake3)).await?;
//! acme.execute(builder::register_org("acme", "Acme Ltd.", OrgKind::Enterprise)).await?;
//! let who = analyst.account();
//! acme.execute(builder::set_principal("acme", &who, PrincipalKind::Person, role::DATA_CONSUMER, active)).await?;
//! let now_ms = client.status().await?.timestamp_ms;
//! let request: u64 = analyst
//!     .execute_as(access::request(&RequestAccess {
//!         resource: "market/licence".into(),
//!         fields: vec!["uscc".into(), "name".into()],
//!         methods: method::QUERY,
//!         purpose: "licensing.renewal".into(),
//!         legal_basis: LegalBasis::DutyMandate,
//!         legal_doc_hash: [0; 32],
//!         matter_code: String::new(),
//!         valid_until_ms: now_ms + 30 * 86_400_000,
//!         max_uses: 1_000,
//!         justification_hash: [0; 32],
//!         consent: None,
//!     }))
//!     .await?;
//!
//! // The department approves what was asked; the output is the grant's id.
//! let asked = market.client().read(reads::access_request(request)).await?;
//! let terms = Terms {
//!     fields: asked.request.fields.clone(),
//!     methods: asked.request.methods,
//!     purposes: vec![asked.request.purpose.clone()],
//!     not_before_ms: asked.submitted_ms,
//!     not_after_ms: asked.request.valid_until_ms,
//!     max_uses: asked.request.max_uses,
//!     rate_per_day: 0,
//!     case_ref: None,
//!     duties: duty::LOG_USAGE,
//!     delegable: false,
//!     policy_hash: [0; 32],
//! };
//! let grant: Option<u64> = market.execute_as(access::approve(request, &terms)).await?;
//! let grant = grant.expect("one approver suffices for general data");
//!
//! // The gateway reads the grant and the analyst from proven state, trusting the genesis
//! // validators only. Headers carry their parent's roots: sync past the current height.
//! let mut chain = VerifyingClient::new(gateway_key.client().clone(), LightClient::from_genesis_file(&genesis)?);
//! let at = chain.sync_past(client.status().await?.height, Duration::from_secs(10)).await?;
//! let mut gateway = Gateway::new(shutong_types::Suite::Ed25519Blake3);
//! gateway.refresh_grant(&chain, grant).await?;
//! gateway.refresh_member(&chain, who.0).await?;
//! let mut changes = gateway_key.client().subscribe_grant_changes().await?;
//!
//! // Four uses, each decided locally and batched (a grant of 100 uses or fewer, or over
//! // important data, would be recorded on chain use by use instead: `Journaled::Single`).
//! let mut permitted = 0;
//! for i in 0..4u64 {
//!     let asked = Use { grant, account: who.0, fields: vec!["uscc".into()], method: method::QUERY, purpose: "licensing.renewal".into(), count: 1 };
//!     let decision = gateway.authorize(&asked, at.header.timestamp_ms);
//!     permitted += decision.permit as u64;
//!     let event = AccessEvent {
//!         grant, consumer: who.0, fields: asked.fields, method: asked.method, purpose: asked.purpose,
//!         business_ref_hash: [i as u8; 32], subject_ref_hmac: [0; 32], query_hash: [0; 32],
//!         result_hash: [0; 32], record_count: 1, consumer_signature: None,
//!     };
//!     assert!(matches!(gateway.record(event, &decision, at.header.timestamp_ms + i)?, Journaled::Batched { .. }));
//! }
//! assert_eq!(permitted, 4);
//!
//! // One transaction anchors the batch, and the chain counts its uses against the grant;
//! // any event's proof checks against its group's anchor entry, proven in the audit log.
//! let anchor = gateway.seal(grant)?.expect("four events wait");
//! let anchored: AnchorRecord = gateway_key.execute_as(audit_trail::anchor(&anchor)).await?;
//! assert_eq!((anchored.counted[0].permitted, anchored.counted[0].excess), (4, 0));
//! gateway.anchored(grant, anchor.seq)?;
//! chain.sync_past(client.status().await?.height, Duration::from_secs(10)).await?;
//! let proof = gateway.proof(grant, anchor.seq, 2)?;
//! verify_event(shutong_types::Suite::Ed25519Blake3, &proof, &chain.audit_leaf(anchored.leaf + proof.group() as u64).await?)?;
//!
//! // A revocation reaches the gateway as it is committed: the next use is refused.
//! market.execute(access::revoke(grant, "case closed")).await?;
//! let notice = loop {
//!     let notice = changes.next().await.expect("the feed is open")?;
//!     if notice.topic == "grant.revoked" { break notice; }
//! };
//! gateway.on_notice(&notice);
//! let again = Use { grant, account: who.0, fields: vec!["uscc".into()], method: method::QUERY, purpose: "licensing.renewal".into(), count: 1 };
//! assert!(!gateway.authorize(&again, at.header.timestamp_ms).permit);
//!
//! // The auditor: an inspection office with an auditor principal. The question goes on
//! // the record first; the node answers only a logged question.
//! let auditor = signer(Keypair::generate(shutong_types::Suite::Ed25519Blake3)).await?;
//! auditor.execute(builder::register_org("inspect", "Inspection Office", OrgKind::Auditor)).await?;
//! committee.execute(builder::propose(Action::ApproveOrg { id: "inspect".into() })).await?;
//! let me = auditor.account();
//! auditor.execute(builder::set_principal("inspect", &me, PrincipalKind::Person, role::ADMIN | role::AUDITOR, active)).await?;
//! let question = LogQuery { by: "grant".into(), value: grant.to_string(), from_ms: 0, to_ms: u64::MAX, reason: "inspection 2026-17".into() };
//! let logged = auditor.send(audit_trail::log_query(&question)).await?;
//! let mut audit = VerifyingClient::new(auditor.client().clone(), LightClient::from_genesis_file(&genesis)?);
//! audit.sync_past(logged.height, Duration::from_secs(10)).await?;
//! let (at, header) = audit.sync_info().await?; // the header itself, for the bundle
//! let query = AuditQuery {
//!     by: question.by, value: question.value, from_ms: 0, to_ms: u64::MAX,
//!     height: Some(at.header.height), cursor: None, limit: None, log_tx: logged.tx_id,
//! };
//! // Proven complete: the grant's entries are numbered without gaps and their count is
//! // proven in the same header, so a node that leaves one out is caught.
//! let (items, completeness) = audit.audit_answer(&query).await?;
//! let kinds: Vec<String> = items.iter().filter_map(|i| i.entry.as_ref()).map(|e| e.kind.clone()).collect();
//! assert_eq!(kinds, ["grant.issued", "request.approved", "batch.anchored", "grant.revoked"]);
//!
//! // The same answer as a self-contained bundle, checked with no network.
//! let bundle = Bundle::new(&audit.light, header, query, &items, completeness);
//! let report = bundle.verify(None)?;
//! assert!(report.complete);
//! # sandbox.stop().await;
//! # Ok(()) }
//! ```
//!
//! ## 4. Your own contract
//!
//! Contracts are wasm modules (`contracts/cert-verify` is the example). Under the
//! `governance` upload policy the committee approves the code hash; then a registered
//! principal uploads it, the VM validates and compiles it, and it is instantiated under a
//! label that, with the creator's account, fixes its address.
//!
//! ```
//! use shutong_sdk::builder::{self, cert};
//! use shutong_sdk::system_api::registry::{OrgKind, PrincipalKind, PrincipalStatus, role};
//! use shutong_sdk::{Client, Signer, reads};
//! use shutong_types::{Hash, Keypair};
//! # #[tokio::main(flavor = "multi_thread", worker_threads = 2)]
//! # async fn main() -> anyhow::Result<()> {
//! # let dir = tempfile::tempdir()?;
//! # let sandbox = shutong_node::sandbox::Sandbox::start(dir.path()).await?;
//! # let rpc = sandbox.rpc.clone();
//! # let wasm_path = concat!(env!("CARGO_MANIFEST_DIR"), "/../contracts/artifacts/cert-verify.wasm");
//! let client = Client::new(&rpc)?;
//! let code = std::fs::read(wasm_path)?;
//! let hash = builder::code_hash(shutong_types::Suite::Ed25519Blake3, &code);
//! # let committee = Signer::connect(&client, sandbox.admin.clone()).await?;
//! committee.execute(builder::approve_code(&hash)).await?;
//!
//! let issuer = Signer::connect(&client, Keypair::generate(shutong_types::Suite::Ed25519Blake3)).await?;
//! issuer.execute(builder::register_org("certs-co", "Certificates Co", OrgKind::Enterprise)).await?;
//! let (me, active) = (issuer.account(), PrincipalStatus::Active);
//! issuer.execute(builder::set_principal("certs-co", &me, PrincipalKind::Person, role::DEPLOYER, active)).await?;
//! let uploader = issuer.clone().with_gas_limit(builder::upload_gas_limit(code.len()));
//! let uploaded: [u8; 32] = uploader.execute_as(builder::upload_code(&code)).await?;
//! assert_eq!(Hash(uploaded), hash);
//! issuer.execute(builder::instantiate(&hash, "certs", &issuer.account(), &[])).await?;
//! let certs = builder::instance_address(shutong_types::Suite::Ed25519Blake3, &issuer.account(), "certs");
//!
//! let (holder, document) = (cert::digest(b"91310000MA1EXAMPLE"), cert::digest(b"licence"));
//! let until = client.status().await?.timestamp_ms + 86_400_000;
//! issuer.execute(cert::issue(&certs, "lic-1", "business-licence", holder, document, until)).await?;
//! let answer = issuer.client().read(reads::certified(&certs, "lic-1", holder, document)).await?;
//! assert!(answer.valid);
//! let forged = issuer.client().read(reads::certified(&certs, "lic-1", holder, cert::digest(b"forged"))).await?;
//! assert!(!forged.valid);
//! # sandbox.stop().await;
//! # Ok(()) }
//! ```
//!
//! ## 5. When things go wrong
//!
//! Every refusal by a node maps to an [`crate::RpcCode`]. Only a full mempool, a caller over
//! its rate and an unreachable node are transient; [`crate::Retry`] retries those (and
//! nothing else) with backoff. A transaction whose answer was lost is safe to submit again: the node refuses
//! the duplicate and `submit_and_wait` waits for the first one's receipt.
//!
//! ```
//! use shutong_sdk::{Client, ClientError, Retry, RpcCode};
//! use std::time::Duration;
//! # #[tokio::main(flavor = "multi_thread", worker_threads = 2)]
//! # async fn main() -> anyhow::Result<()> {
//! // Nothing listens on port 1: a transport error, transient, after the retries.
//! let patient = Retry { attempts: 3, first_delay: Duration::from_millis(10), max_delay: Duration::from_millis(40) };
//! let client = Client::new("http://127.0.0.1:1")?.with_retry(patient);
//! let err = client.status().await.unwrap_err();
//! assert!(matches!(err, ClientError::Transport { .. }) && err.is_transient());
//!
//! // A refusal about the request itself is not worth repeating.
//! assert!(!RpcCode::from_code(shutong_sdk::rpc::code::NONCE_TOO_LOW).is_transient());
//! assert!(RpcCode::from_code(shutong_sdk::rpc::code::MEMPOOL_FULL).is_transient());
//! # Ok(()) }
//! ```
