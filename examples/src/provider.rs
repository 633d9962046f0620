//! A providing department: Jing'an's market regulation bureau.
//!
//! 1. [`join`]: registers the bureau, its admin (who also approves, as CDO) and the key of
//!    its data gateway.
//! 2. [`publish`]: catalogues its business-licence records, the one source of the
//!    `enterprise.uscc` data element.
//! 3. [`approve`]: approves an enterprise's request, with terms derived from the request.
//! 4. [`serve`]: runs the gateway beside its database. The grant and the caller are read from
//!    the chain *with proofs* (trusting only the genesis validators); each use is decided
//!    locally and recorded; the batch is anchored on chain by its Merkle root; one event's
//!    proof is checked against the anchor proven in the chain's audit log. Then the bureau
//!    revokes the grant, the gateway hears it over a WebSocket subscription, and the next use
//!    is refused at once.

use anyhow::Context;
use shutong_sdk::builder::{self, access, audit_trail};
use shutong_sdk::gateway::{Gateway, Journaled, verify_event};
use shutong_sdk::system_api::audit::{AccessEvent, AnchorRecord, EventRecord};
use shutong_sdk::system_api::authz::{Terms, Use, duty};
use shutong_sdk::system_api::catalog::{Classification, Field, Publish, ShareType, method};
use shutong_sdk::system_api::registry::{OrgKind, PrincipalKind, PrincipalStatus, role};
use shutong_sdk::{Client, LightClient, Signer, VerifyingClient, reads};
use shutong_types::AccountId;
use std::path::Path;
use std::time::Duration;

/// The resource the bureau publishes.
pub const RESOURCE: &str = "market/business-licence";

/// The bureau's two keys on chain.
#[derive(Debug)]
pub struct Department {
    pub org: String,
    /// Administers the organisation and approves requests (admin, data provider, CDO).
    pub admin: Signer,
    /// The data gateway's key: records and anchors accesses.
    pub gateway: Signer,
}

/// The department whose keys are kept in `dir`, as registered by [`join`].
pub async fn open(client: &Client, dir: &Path, org: &str) -> anyhow::Result<Department> {
    let admin = crate::signer(client, dir, "admin").await?;
    let gateway = crate::signer(client, dir, "gateway").await?;
    Ok(Department { org: org.to_string(), admin, gateway })
}

/// Registers the organisation `org`, with keys kept in `dir`. A department is pending until
/// the governance committee approves it (`Action::ApproveOrg`); then [`join`].
pub async fn register(client: &Client, dir: &Path, org: &str) -> anyhow::Result<Department> {
    let department = open(client, dir, org).await?;
    let name = "静安区市场监管局 Market Regulation Bureau";
    department.admin.execute(builder::register_org(org, name, OrgKind::Department)).await?;
    Ok(department)
}

/// Names the approved department's two principals: its admin (who also approves requests)
/// and its gateway.
pub async fn join(client: &Client, dir: &Path, org: &str) -> anyhow::Result<Department> {
    let Department { admin, gateway, .. } = open(client, dir, org).await?;
    let roles = role::ADMIN | role::DATA_PROVIDER | role::CDO;
    let active = PrincipalStatus::Active;
    admin.execute(builder::set_principal(org, &admin.account(), PrincipalKind::Person, roles, active)).await?;
    let gateway_account = gateway.account();
    admin
        .execute(builder::set_principal(org, &gateway_account, PrincipalKind::Gateway, role::DATA_PROVIDER, active))
        .await?;
    Ok(Department { org: org.to_string(), admin, gateway })
}

fn field(name: &str, element: Option<&str>) -> Field {
    Field {
        name: name.into(),
        data_type: "string".into(),
        classification: Classification::General,
        masking: String::new(),
        element: element.map(String::from),
    }
}

/// Publishes [`RESOURCE`]; returns its version.
pub async fn publish(dept: &Department) -> anyhow::Result<u32> {
    let resource = Publish {
        code: RESOURCE.into(),
        provider_org: dept.org.clone(),
        source_system: "licence-db".into(),
        classification: Classification::General,
        personal_data: false,
        share_type: ShareType::Conditional,
        conditions: "licensing and tax matters".into(),
        methods: method::QUERY | method::VERIFY,
        fields: vec![
            field("uscc", Some("enterprise.uscc")),
            field("name", Some("enterprise.name")),
            field("address", None),
        ],
        metadata_hash: [0; 32],
    };
    Ok(dept.admin.execute_as::<u32>(builder::publish_resource(&resource)).await?)
}

/// Approves request `request` for everything it asked, for `days` days; returns the grant.
pub async fn approve(dept: &Department, request: u64, days: u64) -> anyhow::Result<u64> {
    let req = dept.admin.client().read(reads::access_request(request)).await?;
    let terms = Terms {
        fields: req.request.fields.clone(),
        methods: req.request.methods,
        purposes: vec![req.request.purpose.clone()],
        not_before_ms: req.submitted_ms,
        not_after_ms: req.request.valid_until_ms.min(req.submitted_ms + days * 86_400_000),
        max_uses: req.request.max_uses,
        rate_per_day: 0,
        case_ref: None,
        duties: duty::LOG_USAGE,
        delegable: false,
        policy_hash: [0; 32],
    };
    let grant: Option<u64> = dept.admin.execute_as(access::approve(request, &terms)).await?;
    grant.context("the approval is recorded, but the bureau's route needs more approvers")
}

/// What the gateway did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Served {
    pub permitted: u64,
    pub denied: u64,
    /// The anchored batch's entry in the chain's audit log.
    pub anchor_leaf: u64,
    /// Why the first use after the revocation was refused.
    pub after_revocation: String,
}

/// Runs the gateway for `uses` requests by `consumer` under `grant` for `purpose`, anchors
/// them, checks one event's proof against the chain, then revokes the grant and shows the
/// gateway refusing. Trusts only the validators in the genesis file at `genesis`.
pub async fn serve(
    dept: &Department,
    genesis: &Path,
    grant: u64,
    consumer: AccountId,
    purpose: &str,
    uses: u64,
) -> anyhow::Result<Served> {
    let client = dept.gateway.client().clone();
    let light = LightClient::from_genesis_file(genesis)?;
    let suite = light.suite();
    let mut chain = VerifyingClient::new(client.clone(), light);
    // A header that commits everything committed now (headers carry their parent's roots).
    let at = chain.sync_past(client.status().await?.height, Duration::from_secs(30)).await?;
    let mut gateway = Gateway::new(suite);
    gateway.refresh_grant(&chain, grant).await?.with_context(|| format!("grant {grant} is not on chain"))?;
    gateway.refresh_member(&chain, consumer.0).await?;
    // Grant-changing events reach the gateway as they are committed.
    let mut events = client.subscribe_grant_changes().await?;

    let now_ms = at.header.timestamp_ms;
    let (mut permitted, mut denied) = (0, 0);
    // One record's query for the enterprise's licence number.
    let asked = || Use {
        grant,
        account: consumer.0,
        fields: vec!["uscc".into()],
        method: method::QUERY,
        purpose: purpose.into(),
        count: 1,
    };
    // Accesses the gateway may not batch (here its denials) go on chain one by one.
    let mut singles = Vec::new();
    for i in 0..uses {
        let request = asked();
        let decision = gateway.authorize(&request, now_ms);
        let event = AccessEvent {
            grant,
            consumer: consumer.0,
            fields: request.fields,
            method: request.method,
            purpose: request.purpose,
            business_ref_hash: *blake3::hash(format!("case-{i}").as_bytes()).as_bytes(),
            subject_ref_hmac: [0; 32],
            query_hash: [0; 32],
            result_hash: [0; 32],
            record_count: 1,
            consumer_signature: None,
        };
        // A batched event is in the durable journal (for a gateway made by `Gateway::open`)
        // when `record` returns: only then would the data leave.
        if let Journaled::Single { .. } = gateway.record(event.clone(), &decision, now_ms + i)? {
            singles.push((event, decision.permit));
        }
        if decision.permit {
            permitted += 1; // here the gateway would query its database
        } else {
            denied += 1;
        }
    }

    // Anchor the batch: one transaction for all of its events, counted by the chain.
    let anchor = gateway.seal(grant)?.context("no events to anchor")?;
    let record: AnchorRecord = dept.gateway.execute_as(audit_trail::anchor(&anchor)).await?;
    gateway.anchored(grant, anchor.seq)?;
    anyhow::ensure!(record.counted.iter().all(|c| c.excess == 0), "the chain found uses beyond the grant: {record:?}");
    // Then the singles, which the chain decides on its own state (after the batch's uses).
    for (event, permit) in &singles {
        let recorded: EventRecord = dept.gateway.execute_as(audit_trail::record(event)).await?;
        anyhow::ensure!(recorded.permit == *permit, "the chain and the gateway decided differently: {recorded:?}");
    }

    // What an auditor does with an event the gateway hands over: prove its group's anchor
    // entry in the chain's log, then the event in the anchored batch.
    chain.sync_past(client.status().await?.height, Duration::from_secs(30)).await?;
    let proof = gateway.proof(grant, anchor.seq, 0)?;
    let anchor_leaf = record.leaf + proof.group() as u64;
    verify_event(suite, &proof, &chain.audit_leaf(anchor_leaf).await?)?;

    // The bureau revokes the grant; the gateway drops it as soon as the event arrives.
    dept.admin.execute(access::revoke(grant, "the enterprise's licence case is closed")).await?;
    let notice = tokio::time::timeout(Duration::from_secs(30), async {
        while let Some(notice) = events.next().await {
            let notice = notice?;
            if notice.topic == "grant.revoked" {
                return Ok(notice);
            }
        }
        anyhow::bail!("the node closed the event feed")
    })
    .await
    .context("no grant.revoked event within 30 s")??;
    gateway.on_notice(&notice);
    let refused = gateway.authorize(&asked(), now_ms);
    anyhow::ensure!(!refused.permit, "a revoked grant was still honoured");
    Ok(Served { permitted, denied, anchor_leaf, after_revocation: refused.reason })
}
