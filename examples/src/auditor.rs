//! An auditor: the district's data inspection office. It registers with an auditor
//! principal, puts its question on the record (`audit.log_query`: who asked, about what, and
//! why), then asks any one node for a grant's full history and checks every entry against
//! headers the validators finalized, following validator changes from the genesis file, and
//! checks that nothing is missing. It trusts the genesis file and nothing else, not the node.

use shutong_sdk::builder::{self, audit_trail};
use shutong_sdk::light::TrailItem;
use shutong_sdk::rpc::AuditQuery;
use shutong_sdk::system_api::audit::LogQuery;
use shutong_sdk::system_api::registry::{OrgKind, PrincipalKind, PrincipalStatus, role};
use shutong_sdk::{Client, LightClient, Signer, VerifyingClient};
use std::path::Path;

#[derive(Debug)]
pub struct Office {
    pub org: String,
    pub auditor: Signer,
}

/// The office whose auditor's key is kept in `dir`, as registered by [`join`].
pub async fn open(client: &Client, dir: &Path, org: &str) -> anyhow::Result<Office> {
    Ok(Office { org: org.to_string(), auditor: crate::signer(client, dir, "auditor").await? })
}

/// Registers the inspection office `org`; its auditor's key is kept in `dir`. An auditor is
/// pending until the governance committee approves it (`Action::ApproveOrg`); then [`join`].
pub async fn register(client: &Client, dir: &Path, org: &str) -> anyhow::Result<Office> {
    let office = open(client, dir, org).await?;
    office
        .auditor
        .execute(builder::register_org(org, "静安区数据监察 Data Inspection Office", OrgKind::Auditor))
        .await?;
    Ok(office)
}

/// Names the approved office's auditor as its principal.
pub async fn join(client: &Client, dir: &Path, org: &str) -> anyhow::Result<Office> {
    let Office { auditor, .. } = open(client, dir, org).await?;
    let roles = role::ADMIN | role::AUDITOR;
    auditor
        .execute(builder::set_principal(org, &auditor.account(), PrincipalKind::Person, roles, PrincipalStatus::Active))
        .await?;
    Ok(Office { org: org.to_string(), auditor })
}

/// A grant's proven, complete history.
#[derive(Debug)]
pub struct Trail {
    /// The finalized header every entry is proven against.
    pub height: u64,
    pub items: Vec<TrailItem>,
}

impl Trail {
    /// The entries' kinds, in order (`grant.issued`, `access.permitted`, `batch.anchored`, …).
    pub fn kinds(&self) -> Vec<String> {
        self.items.iter().filter_map(|i| i.entry.as_ref().map(|e| e.kind.clone())).collect()
    }
}

/// Logs the question "the whole history of `grant`, because `reason`", then fetches and
/// checks the answer. Trusts only the validators in the genesis file at `genesis`.
pub async fn grant_history(office: &Office, genesis: &Path, grant: u64, reason: &str) -> anyhow::Result<Trail> {
    let question =
        LogQuery { by: "grant".into(), value: grant.to_string(), from_ms: 0, to_ms: u64::MAX, reason: reason.into() };
    let logged = office.auditor.send(audit_trail::log_query(&question)).await?;
    anyhow::ensure!(logged.status.is_success(), "the question was not logged: {:?}", logged.status);

    let mut chain = VerifyingClient::new(office.auditor.client().clone(), LightClient::from_genesis_file(genesis)?);
    let at = chain.sync_past(logged.height, std::time::Duration::from_secs(30)).await?;
    let query = AuditQuery {
        by: question.by,
        value: question.value,
        from_ms: 0,
        to_ms: u64::MAX,
        height: Some(at.header.height),
        cursor: None,
        limit: None,
        log_tx: logged.tx_id,
    };
    // Every entry proven in the log of header `at`, and the grant's entry count proven in
    // its state: a node that leaves one out is caught.
    let items = chain.audit_trail(&query).await?;
    Ok(Trail { height: at.header.height, items })
}
