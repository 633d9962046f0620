//! Part of the `shutong` binary: the commands of the authorisation story. Principals, the
//! catalog, access requests and grants, and the audit trail, as transactions (`shutong tx`)
//! and queries (`shutong query`).

use anyhow::{Context, bail};
use clap::{Args, Subcommand};
use shutong_codec::Decode;
use shutong_sdk::Client;
use shutong_sdk::builder::{self, access, audit_trail};
use shutong_sdk::system_api::audit::{AccessEvent, EventRecord, Violation};
use shutong_sdk::system_api::authz::{AccessRequest, Decision, Grant, LegalBasis, RequestAccess, Terms, Use, duty};
use shutong_sdk::system_api::catalog::{Classification, Field, Publish, ShareType, method};
use shutong_sdk::system_api::registry::{PrincipalKind, PrincipalStatus, role};
use shutong_types::{AccountId, Call};

const DAY_MS: u64 = 24 * 3600 * 1000;

fn list(text: &str) -> Vec<String> {
    text.split(',').map(str::trim).filter(|s| !s.is_empty()).map(String::from).collect()
}

fn roles(text: &str) -> Result<u32, String> {
    list(text).iter().try_fold(0, |acc, name| {
        role::from_name(name).map(|bit| acc | bit).ok_or_else(|| {
            let all: Vec<&str> = role::NAMES.iter().map(|(_, n)| *n).collect();
            format!("{name:?} is not a role; roles are {}", all.join(", "))
        })
    })
}

fn methods(text: &str) -> Result<u8, String> {
    list(text).iter().try_fold(0, |acc, name| {
        method::from_name(name).map(|bit| acc | bit).ok_or_else(|| format!("{name:?} is not query, verify or batch"))
    })
}

fn named<T: Copy>(all: &[T], name: fn(T) -> &'static str, text: &str, what: &str) -> Result<T, String> {
    all.iter().copied().find(|v| name(*v) == text).ok_or_else(|| {
        let names: Vec<&str> = all.iter().map(|v| name(*v)).collect();
        format!("{text:?} is not a {what}; use one of {}", names.join(", "))
    })
}

fn org_kind(text: &str) -> Result<shutong_sdk::system_api::registry::OrgKind, String> {
    shutong_sdk::system_api::registry::OrgKind::from_name(text)
        .ok_or_else(|| format!("{text:?} is not department, enterprise, auditor or operator"))
}

fn kind(text: &str) -> Result<PrincipalKind, String> {
    named(PrincipalKind::ALL, PrincipalKind::name, text, "principal kind")
}

fn status(text: &str) -> Result<PrincipalStatus, String> {
    named(&[PrincipalStatus::Active, PrincipalStatus::Suspended], PrincipalStatus::name, text, "status")
}

fn classification(text: &str) -> Result<Classification, String> {
    named(Classification::ALL, Classification::name, text, "classification")
}

fn share(text: &str) -> Result<ShareType, String> {
    named(ShareType::ALL, ShareType::name, text, "share type")
}

fn basis(text: &str) -> Result<LegalBasis, String> {
    named(LegalBasis::ALL, LegalBasis::name, text, "legal basis")
}

/// `NAME:TYPE:CLASSIFICATION[:ELEMENT]`.
fn field(text: &str) -> Result<Field, String> {
    let parts: Vec<&str> = text.split(':').collect();
    if !(3..=4).contains(&parts.len()) {
        return Err(format!("{text:?} is not NAME:TYPE:CLASSIFICATION[:ELEMENT]"));
    }
    Ok(Field {
        name: parts[0].to_string(),
        data_type: parts[1].to_string(),
        classification: classification(parts[2])?,
        masking: String::new(),
        element: parts.get(3).map(|e| e.to_string()),
    })
}

#[derive(Subcommand)]
pub enum PrincipalTx {
    /// Add a key to an organisation or change its roles, kind or status (an admin of the organisation).
    Set {
        #[arg(long)]
        org: String,
        #[arg(long)]
        account: AccountId,
        /// Comma-separated: admin, data_provider, data_consumer, auditor, cdo, security_officer, deployer, validator.
        #[arg(long, value_parser = roles)]
        roles: u32,
        /// person, system, gateway or validator.
        #[arg(long, default_value = "person", value_parser = kind)]
        kind: PrincipalKind,
        /// active or suspended.
        #[arg(long, default_value = "active", value_parser = status)]
        status: PrincipalStatus,
    },
    /// Set the organisation's approval policy for one classification (an admin of it): one
    /// distinct approver per step.
    Policy {
        #[arg(long)]
        org: String,
        /// general or important.
        #[arg(long, value_parser = classification)]
        classification: Classification,
        /// A step's roles, comma-separated; repeat for each step (`--step cdo --step security_officer`).
        #[arg(long = "step", required = true, value_parser = roles)]
        steps: Vec<u32>,
    },
    /// Hand the signer's organisation and roles to a new key; the signing key stops acting.
    Rotate {
        #[arg(long)]
        new_account: AccountId,
    },
}

#[derive(Subcommand)]
pub enum CatalogTx {
    /// Publish a resource, or a new version of it (a data provider of a department).
    Publish {
        #[arg(long)]
        code: String,
        #[arg(long)]
        org: String,
        /// general, important or core.
        #[arg(long, value_parser = classification)]
        classification: Classification,
        /// unconditional, conditional or not_shared.
        #[arg(long, value_parser = share)]
        share: ShareType,
        #[arg(long, default_value = "")]
        conditions: String,
        /// Comma-separated: query, verify, batch.
        #[arg(long, default_value = "query", value_parser = methods)]
        methods: u8,
        /// A field as NAME:TYPE:CLASSIFICATION[:ELEMENT]; repeat for each.
        #[arg(long = "field", required = true, value_parser = field)]
        fields: Vec<Field>,
        #[arg(long, default_value = "")]
        source_system: String,
        #[arg(long)]
        personal_data: bool,
    },
    /// Withdraw a resource and release its data elements.
    Withdraw {
        #[arg(long)]
        code: String,
    },
}

#[derive(Subcommand)]
pub enum AccessTx {
    /// Ask for access to a resource (a data consumer); prints the request id.
    Request {
        #[arg(long)]
        resource: String,
        /// Comma-separated field names.
        #[arg(long)]
        fields: String,
        #[arg(long, default_value = "query", value_parser = methods)]
        methods: u8,
        /// A purpose code, dot-separated (licensing.renewal).
        #[arg(long)]
        purpose: String,
        /// statute, duty_mandate, consent or contract.
        #[arg(long, default_value = "duty_mandate", value_parser = basis)]
        basis: LegalBasis,
        #[arg(long, default_value_t = 90)]
        days: u64,
        #[arg(long, default_value_t = 100)]
        max_uses: u64,
        /// The service matter (事项) code.
        #[arg(long, default_value = "")]
        matter: String,
        /// The consent record the request rests on (with `--basis consent`).
        #[arg(long)]
        consent: Option<String>,
    },
    /// Approve a request under review (the provider's approvers). The terms are derived from
    /// the request and these flags only, so every approver gets the same terms.
    Approve {
        #[arg(long)]
        request: u64,
        #[command(flatten)]
        terms: TermsArgs,
    },
    /// Supersede a grant with amended terms (the provider's CDO); the uses made carry over.
    /// Terms are derived from the grant's request and these flags, as for `approve`.
    Amend {
        #[arg(long)]
        grant: u64,
        #[command(flatten)]
        terms: TermsArgs,
    },
    /// Reject a request under review, with a reason.
    Reject {
        #[arg(long)]
        request: u64,
        #[arg(long)]
        reason: String,
    },
    /// Revoke a grant and its delegations, with a reason (the provider).
    Revoke {
        #[arg(long)]
        grant: u64,
        #[arg(long)]
        reason: String,
    },
    /// Suspend a grant and its delegations, with a reason (the provider).
    Suspend {
        #[arg(long)]
        grant: u64,
        #[arg(long)]
        reason: String,
    },
    /// Resume a suspended grant (the provider).
    Resume {
        #[arg(long)]
        grant: u64,
    },
    /// Record a data subject's consent, given to the signer's organisation.
    Consent {
        #[arg(long)]
        id: String,
        #[arg(long)]
        resource: String,
        #[arg(long)]
        purpose: String,
        /// The data subject's reference; only a keyed digest of it goes on chain.
        #[arg(long)]
        subject: String,
    },
    /// Withdraw a consent: the grants resting on it are suspended.
    WithdrawConsent {
        #[arg(long)]
        id: String,
    },
    /// Close grants bound to a case that has closed.
    CloseCase {
        /// The case reference; only its hash goes on chain.
        #[arg(long)]
        case: String,
        /// Comma-separated grant ids.
        #[arg(long)]
        grants: String,
    },
}

#[derive(Subcommand)]
pub enum GovTx {
    /// Propose a decision (a governance admin; counts as the proposer's vote).
    #[command(subcommand)]
    Propose(Proposal),
    /// Vote for a proposal (a governance admin); carried out at the threshold.
    Vote {
        #[arg(long)]
        proposal: u64,
    },
}

#[derive(Subcommand)]
pub enum Proposal {
    /// Approve a code hash for upload.
    ApproveCode {
        #[arg(long)]
        code_hash: shutong_types::Hash,
    },
    /// Suspend an organisation.
    SuspendOrg {
        #[arg(long)]
        id: String,
    },
    /// Reinstate a suspended organisation.
    ReinstateOrg {
        #[arg(long)]
        id: String,
    },
    /// Add an organisation (when the committee's `registration` parameter is `governance`,
    /// the only way one is added).
    AddOrg {
        #[arg(long)]
        id: String,
        #[arg(long)]
        name: String,
        /// department, enterprise, auditor or operator.
        #[arg(long, value_parser = org_kind)]
        kind: shutong_sdk::system_api::registry::OrgKind,
        /// The account that administers it.
        #[arg(long)]
        admin: AccountId,
    },
    /// Define a purpose in the purpose hierarchy (its parent first), with its legal bases.
    DefinePurpose {
        #[arg(long)]
        code: String,
        /// Comma-separated: statute, duty_mandate, consent, contract.
        #[arg(long)]
        bases: String,
        #[arg(long, default_value = "")]
        description: String,
    },
    /// Set a parameter: `upload_policy` (governance or open) or `registration` (open or governance).
    SetParam {
        #[arg(long)]
        name: String,
        #[arg(long)]
        value: String,
    },
    /// Replace the committee and its threshold.
    SetAdmins {
        /// An admin account (hex); repeat for each.
        #[arg(long = "admin", required = true)]
        admins: Vec<AccountId>,
        #[arg(long)]
        threshold: u32,
    },
}

/// The flags that make grant terms, with the request they are derived from: every approver
/// who passes the same flags produces the same terms.
#[derive(Args)]
pub struct TermsArgs {
    /// Comma-separated; default: all requested fields.
    #[arg(long)]
    fields: Option<String>,
    /// Comma-separated; default: the requested purpose.
    #[arg(long)]
    purposes: Option<String>,
    /// Validity from the request's submission; capped at what was requested.
    #[arg(long, default_value_t = 30)]
    days: u64,
    /// Default: the requested number.
    #[arg(long)]
    max_uses: Option<u64>,
    /// Uses a day (0: no limit).
    #[arg(long, default_value_t = 0)]
    rate: u64,
    #[arg(long)]
    delegable: bool,
}

#[derive(Args)]
pub struct UseArgs {
    #[arg(long)]
    pub grant: u64,
    /// The consumer principal's account.
    #[arg(long)]
    pub consumer: AccountId,
    /// Comma-separated field names.
    #[arg(long)]
    pub fields: String,
    #[arg(long, default_value = "query", value_parser = methods)]
    pub method: u8,
    #[arg(long)]
    pub purpose: String,
    #[arg(long, default_value_t = 1)]
    pub records: u64,
}

#[derive(Subcommand)]
pub enum AuditTx {
    /// Record an access (the provider's gateway): counted against the grant, permitted or denied.
    Record {
        #[command(flatten)]
        use_: UseArgs,
        /// The business reference (a case or application number); only its hash goes on chain.
        #[arg(long, default_value = "")]
        reference: String,
    },
    /// Record a yes/no answer given instead of data (the provider's gateway; a `verify` use).
    Attest {
        #[arg(long)]
        grant: u64,
        #[arg(long)]
        consumer: AccountId,
        /// The question asked; only its hash goes on chain.
        #[arg(long)]
        question: String,
        #[arg(long)]
        answer: bool,
    },
    /// Anchor a batch of events by their Merkle root (the provider's gateway).
    Anchor {
        #[arg(long)]
        grant: u64,
        #[arg(long)]
        root: shutong_types::Hash,
        #[arg(long)]
        count: u64,
        #[arg(long)]
        from_ms: u64,
        #[arg(long)]
        to_ms: u64,
    },
}

#[derive(Subcommand)]
pub enum AccessQuery {
    /// An access request and where it stands.
    Request {
        #[arg(long)]
        id: u64,
    },
    /// A grant.
    Grant {
        #[arg(long)]
        id: u64,
    },
    /// Would this use be permitted now? (What a gateway asks.)
    Check(UseArgs),
}

#[derive(Subcommand)]
pub enum AuditQuery {
    /// A grant's access events, in order.
    History {
        #[arg(long)]
        grant: u64,
    },
    /// A violation.
    Violation {
        #[arg(long)]
        id: u64,
    },
}

pub fn principal_call(command: PrincipalTx) -> Call {
    match command {
        PrincipalTx::Set { org, account, roles, kind, status } => {
            builder::set_principal(&org, &account, kind, roles, status)
        }
        PrincipalTx::Rotate { new_account } => builder::rotate_key(&new_account),
        PrincipalTx::Policy { org, classification, steps } => builder::set_policy(&org, classification, &steps),
    }
}

pub fn catalog_call(command: CatalogTx) -> Call {
    match command {
        CatalogTx::Publish {
            code,
            org,
            classification,
            share,
            conditions,
            methods,
            fields,
            source_system,
            personal_data,
        } => builder::publish_resource(&Publish {
            code,
            provider_org: org,
            source_system,
            classification,
            personal_data,
            share_type: share,
            conditions,
            methods,
            fields,
            metadata_hash: [0; 32],
        }),
        CatalogTx::Withdraw { code } => builder::withdraw_resource(&code),
    }
}

async fn read<T: Decode>(
    client: &Client,
    contract: shutong_types::Address,
    method: &str,
    args: Vec<u8>,
) -> anyhow::Result<T> {
    let bytes = client.query(&contract, method, &args).await?;
    T::decode(&bytes).with_context(|| format!("{method} returned something malformed"))
}

pub async fn access_call(command: AccessTx, client: &Client, now_ms: u64) -> anyhow::Result<Call> {
    Ok(match command {
        AccessTx::Request { resource, fields, methods, purpose, basis, days, max_uses, matter, consent } => {
            access::request(&RequestAccess {
                resource,
                fields: list(&fields),
                methods,
                purpose,
                legal_basis: basis,
                legal_doc_hash: [0; 32],
                matter_code: matter,
                valid_until_ms: now_ms.saturating_add(days.saturating_mul(DAY_MS)),
                max_uses,
                justification_hash: [0; 32],
                consent,
            })
        }
        AccessTx::Approve { request, terms } => {
            let req: AccessRequest = read(client, builder::authz(), "get_request", access::id_args(request)).await?;
            access::approve(request, &terms_for(&req, terms))
        }
        AccessTx::Amend { grant, terms } => {
            let g: Grant = read(client, builder::authz(), "get_grant", access::id_args(grant)).await?;
            let req: AccessRequest = read(client, builder::authz(), "get_request", access::id_args(g.request)).await?;
            access::amend(grant, &terms_for(&req, terms))
        }
        AccessTx::Reject { request, reason } => access::reject(request, &reason),
        AccessTx::Revoke { grant, reason } => access::revoke(grant, &reason),
        AccessTx::Suspend { grant, reason } => access::suspend(grant, &reason),
        AccessTx::Resume { grant } => access::resume(grant),
        AccessTx::Consent { id, resource, purpose, subject } => {
            access::record_consent(&shutong_sdk::system_api::authz::RecordConsent {
                id,
                subject_ref_hmac: builder::cert::digest(subject.as_bytes()).0,
                resource,
                purpose,
                evidence_hash: [0; 32],
            })
        }
        AccessTx::WithdrawConsent { id } => access::withdraw_consent(&id),
        AccessTx::CloseCase { case, grants } => {
            let ids: Result<Vec<u64>, _> = list(&grants).iter().map(|g| g.parse::<u64>()).collect();
            let ids = ids.context("--grants is a comma-separated list of grant ids")?;
            access::close_case(builder::cert::digest(case.as_bytes()).0, &ids)
        }
    })
}

pub fn gov_call(command: GovTx) -> Call {
    use shutong_sdk::system_api::governance::Action;
    match command {
        GovTx::Vote { proposal } => builder::vote(proposal),
        GovTx::Propose(proposal) => builder::propose(match proposal {
            Proposal::ApproveCode { code_hash } => Action::ApproveCode { code_hash: code_hash.0 },
            Proposal::SuspendOrg { id } => Action::SuspendOrg { id },
            Proposal::ReinstateOrg { id } => Action::ReinstateOrg { id },
            Proposal::SetParam { name, value } => Action::SetParam { name, value },
            Proposal::AddOrg { id, name, kind, admin } => Action::AddOrg { id, name, kind, admin: admin.0 },
            Proposal::DefinePurpose { code, bases, description } => {
                let legal_bases = list(&bases).iter().fold(0u8, |acc, b| match basis(b) {
                    Ok(found) => acc | (1 << found as u8),
                    // An unknown name sets no bit; the contract refuses an empty set.
                    Err(_) => acc,
                });
                Action::DefinePurpose { code, legal_bases, description }
            }
            Proposal::SetAdmins { admins, threshold } => {
                Action::SetAdmins { accounts: admins.iter().map(|a| a.0).collect(), threshold }
            }
        }),
    }
}

/// Grant terms from a request and the approver's flags.
fn terms_for(req: &AccessRequest, flags: TermsArgs) -> Terms {
    let TermsArgs { fields, purposes, days, max_uses, rate, delegable } = flags;
    Terms {
        fields: fields.map(|f| list(&f)).unwrap_or_else(|| req.request.fields.clone()),
        methods: req.request.methods,
        purposes: purposes.map(|p| list(&p)).unwrap_or_else(|| vec![req.request.purpose.clone()]),
        not_before_ms: req.submitted_ms,
        not_after_ms: req.request.valid_until_ms.min(req.submitted_ms.saturating_add(days.saturating_mul(DAY_MS))),
        max_uses: max_uses.unwrap_or(req.request.max_uses),
        rate_per_day: rate,
        case_ref: None,
        duties: duty::LOG_USAGE,
        delegable,
        policy_hash: [0; 32],
    }
}

fn use_of(u: &UseArgs) -> Use {
    Use {
        grant: u.grant,
        account: u.consumer.0,
        fields: list(&u.fields),
        method: u.method,
        purpose: u.purpose.clone(),
        count: u.records,
    }
}

pub fn audit_call(command: AuditTx) -> Call {
    match command {
        AuditTx::Record { use_, reference } => {
            let u = use_of(&use_);
            audit_trail::record(&AccessEvent {
                grant: u.grant,
                consumer: u.account,
                fields: u.fields,
                method: u.method,
                purpose: u.purpose,
                business_ref_hash: builder::cert::digest(reference.as_bytes()).0,
                subject_ref_hmac: [0; 32],
                query_hash: [0; 32],
                result_hash: [0; 32],
                record_count: u.count,
                consumer_signature: None,
            })
        }
        AuditTx::Attest { grant, consumer, question, answer } => {
            audit_trail::attest(&shutong_sdk::system_api::audit::Attest {
                grant,
                consumer: consumer.0,
                question_hash: builder::cert::digest(question.as_bytes()).0,
                subject_ref_hmac: [0; 32],
                answer,
            })
        }
        AuditTx::Anchor { grant, root, count, from_ms, to_ms } => {
            audit_trail::anchor(&shutong_sdk::system_api::audit::AnchorBatch {
                grant,
                period_start_ms: from_ms,
                period_end_ms: to_ms,
                count,
                merkle_root: root.0,
            })
        }
    }
}

/// What a successful story call returned, for a person.
pub fn result_text(call: &Call, output: &[u8]) -> Option<String> {
    let method = call.method.as_str();
    if call.contract == builder::authz() {
        return match method {
            "request" => u64::decode(output).ok().map(|id| format!("request {id}")),
            "approve" => Option::<u64>::decode(output).ok().map(|grant| match grant {
                Some(id) => format!("approved: grant {id} issued"),
                None => "approval recorded; the route needs more approvers".to_string(),
            }),
            _ => None,
        };
    }
    if call.contract == builder::governance() && method == "propose" {
        return u64::decode(output).ok().map(|id| format!("proposal {id}"));
    }
    if call.contract == builder::governance() && method == "vote" {
        return bool::decode(output).ok().map(|done| if done { "carried out".into() } else { "vote recorded".into() });
    }
    if call.contract == builder::catalog() && method == "publish" {
        return u32::decode(output).ok().map(|v| format!("published version {v}"));
    }
    if call.contract == builder::audit() && method == "record" {
        return EventRecord::decode(output).ok().map(|r| event_text(&r));
    }
    None
}

fn event_text(r: &EventRecord) -> String {
    let decision = if r.permit { "PERMITTED".to_string() } else { format!("DENIED ({})", r.reason) };
    let violation = r.violation.map(|v| format!("  violation {v} opened")).unwrap_or_default();
    format!(
        "event {}  grant {}  {} -> {}  {}  fields {}  purpose {}  audit leaf {}  {decision}{violation}",
        r.id,
        r.event.grant,
        r.provider_org,
        r.consumer_org,
        r.resource,
        r.event.fields.join(","),
        r.event.purpose,
        r.leaf
    )
}

fn grant_json(g: &Grant) -> serde_json::Value {
    serde_json::json!({
        "id": g.id, "request": g.request, "grantor": g.grantor_org, "grantee": g.grantee_org,
        "resource": g.resource, "fields": g.terms.fields, "purposes": g.terms.purposes,
        "not_after_ms": g.terms.not_after_ms, "max_uses": g.terms.max_uses, "uses": g.uses,
        "status": g.status.name(), "reason": g.reason, "parent": g.parent, "delegations": g.children,
    })
}

fn event_json(r: &EventRecord) -> serde_json::Value {
    serde_json::json!({
        "id": r.id, "grant": r.event.grant, "provider": r.provider_org, "consumer": r.consumer_org,
        "resource": r.resource, "fields": r.event.fields, "purpose": r.event.purpose,
        "permit": r.permit, "reason": r.reason, "violation": r.violation, "height": r.height,
        "time_ms": r.time_ms, "leaf": r.leaf,
    })
}

/// Runs an access query; returns (json, text).
pub async fn access_query(command: AccessQuery, client: &Client) -> anyhow::Result<(serde_json::Value, String)> {
    Ok(match command {
        AccessQuery::Request { id } => {
            let r: AccessRequest = read(client, builder::authz(), "get_request", access::id_args(id)).await?;
            let json = serde_json::json!({
                "id": r.id, "requester_org": r.requester_org, "provider_org": r.provider_org,
                "resource": r.resource, "fields": r.request.fields, "purpose": r.request.purpose,
                "state": r.state.name(), "deadline_ms": r.deadline_ms, "approvals": r.approvals.len(),
                "reason": r.reason, "grant": r.grant,
            });
            let text = format!(
                "request {}  {} asks {} for {} [{}] for {}\nstate {}  approvals {}  grant {}",
                r.id,
                r.requester_org,
                r.provider_org,
                r.resource,
                r.request.fields.join(","),
                r.request.purpose,
                r.state.name(),
                r.approvals.len(),
                r.grant.map_or("none".to_string(), |g| g.to_string())
            );
            (json, text)
        }
        AccessQuery::Grant { id } => {
            let g: Grant = read(client, builder::authz(), "get_grant", access::id_args(id)).await?;
            let text = format!(
                "grant {}  {} -> {}  {} [{}] for {}\nuses {} of {}  status {}{}",
                g.id,
                g.grantor_org,
                g.grantee_org,
                g.resource,
                g.terms.fields.join(","),
                g.terms.purposes.join(","),
                g.uses,
                g.terms.max_uses,
                g.status.name(),
                if g.reason.is_empty() { String::new() } else { format!(" ({})", g.reason) }
            );
            (grant_json(&g), text)
        }
        AccessQuery::Check(u) => {
            let d: Decision = read(client, builder::authz(), "check", access::check_args(&use_of(&u))).await?;
            let json = serde_json::json!({"permit": d.permit, "reason": d.reason, "violation": d.violation});
            let text = if d.permit { "permit".to_string() } else { format!("deny: {}", d.reason) };
            (json, text)
        }
    })
}

/// Runs an audit query; returns (json, text).
pub async fn audit_query(command: AuditQuery, client: &Client) -> anyhow::Result<(serde_json::Value, String)> {
    Ok(match command {
        AuditQuery::History { grant } => {
            let mut events: Vec<EventRecord> = Vec::new();
            let mut after = None;
            loop {
                let args = audit_trail::history_args(grant, after, 100);
                let page: Vec<EventRecord> = read(client, builder::audit(), "history", args).await?;
                if page.is_empty() {
                    break;
                }
                after = page.last().map(|r| r.id);
                events.extend(page);
                if events.len() > 100_000 {
                    bail!("more than 100,000 events: page with the RPC instead");
                }
            }
            let json = serde_json::Value::Array(events.iter().map(event_json).collect());
            let text = if events.is_empty() {
                format!("no access events under grant {grant}")
            } else {
                events.iter().map(event_text).collect::<Vec<_>>().join("\n")
            };
            (json, text)
        }
        AuditQuery::Violation { id } => {
            let v: Violation = read(client, builder::audit(), "get_violation", audit_trail::id_args(id)).await?;
            let json = serde_json::json!({"id": v.id, "event": v.event, "grant": v.grant, "consumer_org": v.consumer_org, "reason": v.reason, "status": v.status.name()});
            let text = format!(
                "violation {}  event {}  grant {}  by {}: {}  [{}]",
                v.id,
                v.event,
                v.grant,
                v.consumer_org,
                v.reason,
                v.status.name()
            );
            (json, text)
        }
    })
}
