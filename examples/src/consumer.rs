//! A consuming enterprise: it registers, names the analyst who will use the data, and asks
//! the bureau for two fields of its licence records for licence renewal; then it waits for
//! the grant, watching the chain rather than polling the bureau.

use anyhow::Context;
use shutong_sdk::builder::{self, access};
use shutong_sdk::system_api::authz::{LegalBasis, RequestAccess, RequestState};
use shutong_sdk::system_api::catalog::method;
use shutong_sdk::system_api::registry::{OrgKind, PrincipalKind, PrincipalStatus, role};
use shutong_sdk::{Client, Signer, reads};
use std::path::Path;
use std::time::Duration;

#[derive(Debug)]
pub struct Enterprise {
    pub org: String,
    pub admin: Signer,
    /// The person who asks for and uses the data.
    pub analyst: Signer,
}

/// The enterprise whose keys are kept in `dir`, as registered by [`join`].
pub async fn open(client: &Client, dir: &Path, org: &str) -> anyhow::Result<Enterprise> {
    let admin = crate::signer(client, dir, "admin").await?;
    let analyst = crate::signer(client, dir, "analyst").await?;
    Ok(Enterprise { org: org.to_string(), admin, analyst })
}

/// Registers the enterprise `org` and its analyst, with keys kept in `dir`.
pub async fn join(client: &Client, dir: &Path, org: &str) -> anyhow::Result<Enterprise> {
    let Enterprise { admin, analyst, .. } = open(client, dir, org).await?;
    admin.execute(builder::register_org(org, "Shanghai Example Co., Ltd.", OrgKind::Enterprise)).await?;
    let active = PrincipalStatus::Active;
    admin.execute(builder::set_principal(org, &admin.account(), PrincipalKind::Person, role::ADMIN, active)).await?;
    let analyst_account = analyst.account();
    admin
        .execute(builder::set_principal(org, &analyst_account, PrincipalKind::Person, role::DATA_CONSUMER, active))
        .await?;
    Ok(Enterprise { org: org.to_string(), admin, analyst })
}

/// Asks for `fields` of `resource` for `purpose`, at most `max_uses` times over 90 days;
/// returns the request id.
pub async fn request(
    ent: &Enterprise,
    resource: &str,
    fields: &[&str],
    purpose: &str,
    max_uses: u64,
) -> anyhow::Result<u64> {
    let now_ms = ent.analyst.client().status().await?.timestamp_ms;
    let ask = RequestAccess {
        resource: resource.into(),
        fields: fields.iter().map(|f| f.to_string()).collect(),
        methods: method::QUERY,
        purpose: purpose.into(),
        legal_basis: LegalBasis::DutyMandate,
        legal_doc_hash: [0; 32],
        matter_code: "310106-licence-renewal".into(),
        valid_until_ms: now_ms + 90 * 86_400_000,
        max_uses,
        justification_hash: [0; 32],
        consent: None,
    };
    Ok(ent.analyst.execute_as::<u64>(access::request(&ask)).await?)
}

/// Waits until request `request` is decided: the grant id, or why not.
pub async fn wait_for_grant(client: &Client, request: u64, timeout: Duration) -> anyhow::Result<u64> {
    let mut blocks = client.subscribe_blocks().await?;
    let deadline = tokio::time::Instant::now() + timeout;
    loop {
        let req = client.read(reads::access_request(request)).await?;
        if let Some(grant) = req.grant {
            return Ok(grant);
        }
        if matches!(req.state, RequestState::Rejected | RequestState::Withdrawn) {
            anyhow::bail!("request {request} was {}: {}", req.state.name(), req.reason);
        }
        // Look again when the next block is finalized.
        tokio::time::timeout_at(deadline, blocks.next())
            .await
            .with_context(|| format!("request {request} is still {} after {timeout:?}", req.state.name()))?
            .context("the node closed the block feed")??;
    }
}
