//! Part of the `shutong` binary: the command groups of the authorisation story. `org`
//! (organisations and their principals), `catalog`, `request` (access requests and consent),
//! `grant` and `gov`. In every group the object's own id is `--id`, writes sign with
//! `--key`, and `show` reads.

use crate::cli::{Ctx, Outcome, Shown, list, shown};
use anyhow::Context;
use clap::{Args, Subcommand};
use shutong_codec::Decode;
use shutong_sdk::builder::{self, access};
use shutong_sdk::reads;
use shutong_sdk::system_api::audit::EventRecord;
use shutong_sdk::system_api::authz::{AccessRequest, Grant, LegalBasis, RequestAccess, Terms, Use, duty};
use shutong_sdk::system_api::catalog::{Classification, Field, Publish, ShareType, method};
use shutong_sdk::system_api::governance::{Action, Committee, LifecycleOp, Seat};
use shutong_sdk::system_api::registry::{Org, OrgKind, OrgStatus, PrincipalKind, PrincipalStatus, role};
use shutong_types::{AccountId, Call};

const DAY_MS: u64 = 24 * 3600 * 1000;

fn roles(text: &str) -> Result<u32, String> {
    list(text).iter().try_fold(0, |acc, name| {
        role::from_name(name).map(|bit| acc | bit).ok_or_else(|| {
            let all: Vec<&str> = role::NAMES.iter().map(|(_, n)| *n).collect();
            format!("{name:?} is not a role; roles are {}", all.join(", "))
        })
    })
}

pub fn methods(text: &str) -> Result<u8, String> {
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

fn org_kind(text: &str) -> Result<OrgKind, String> {
    OrgKind::from_name(text).ok_or_else(|| format!("{text:?} is not department, enterprise, auditor or operator"))
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

fn org_status(text: &str) -> Result<OrgStatus, String> {
    OrgStatus::from_name(text)
        .filter(|s| *s != OrgStatus::Pending)
        .ok_or_else(|| format!("{text:?} is not active or suspended"))
}

/// Comma-separated legal bases, as `basis` bits.
fn bases(text: &str) -> Result<u8, String> {
    let names = list(text);
    if names.is_empty() {
        return Err("name at least one legal basis".into());
    }
    names.iter().try_fold(0u8, |acc, name| basis(name).map(|b| acc | (1 << b as u8)))
}

fn role_names(bits: u32) -> String {
    let names: Vec<&str> = role::NAMES.iter().filter(|(bit, _)| bits & bit != 0).map(|(_, n)| *n).collect();
    if names.is_empty() { "none".into() } else { names.join(",") }
}

// --- org ------------------------------------------------------------------------------------

#[derive(Subcommand)]
pub enum OrgCommand {
    /// Register an organisation; the signer becomes its admin.
    Register {
        /// The organisation.
        #[arg(long)]
        id: String,
        #[arg(long)]
        name: String,
        /// department, enterprise, auditor or operator.
        #[arg(long, value_parser = org_kind)]
        kind: OrgKind,
    },
    /// Rename an organisation or change its status (its admin).
    Update {
        /// The organisation.
        #[arg(long)]
        id: String,
        #[arg(long)]
        name: Option<String>,
        /// active or suspended.
        #[arg(long, value_parser = org_status)]
        status: Option<OrgStatus>,
    },
    /// An organisation from the registry.
    Show {
        /// The organisation.
        #[arg(long)]
        id: String,
    },
    /// Add a key to an organisation or change its roles, kind or status (an admin of it).
    SetPrincipal {
        /// The organisation.
        #[arg(long)]
        id: String,
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
    /// Which organisation an account acts for, with which roles.
    Member {
        #[arg(long)]
        account: AccountId,
    },
    /// Set the approval route for requests for one classification (an admin of it): one
    /// distinct approver per step.
    SetPolicy {
        /// The organisation.
        #[arg(long)]
        id: String,
        /// general or important.
        #[arg(long, value_parser = classification)]
        classification: Classification,
        /// A step's roles, comma-separated; repeat for each step (`--step cdo --step security_officer`).
        #[arg(long = "step", required = true, value_parser = roles)]
        steps: Vec<u32>,
    },
    /// An organisation's approval route for one classification.
    Policy {
        /// The organisation.
        #[arg(long)]
        id: String,
        #[arg(long, value_parser = classification)]
        classification: Classification,
    },
    /// Hand the signer's organisation and roles to a new key; the signing key stops acting.
    RotateKey {
        #[arg(long)]
        new_account: AccountId,
    },
}

fn org_json(org: &Org) -> serde_json::Value {
    serde_json::json!({
        "id": org.id, "name": org.name, "kind": org.kind.name(), "status": org.status.name(),
        "admin": hex::encode(org.admin), "registered_height": org.registered_height,
        "updated_height": org.updated_height,
    })
}

pub async fn org(command: OrgCommand, ctx: &Ctx) -> Shown {
    Ok(match command {
        OrgCommand::Register { id, name, kind } => Outcome::Send(builder::register_org(&id, &name, kind)),
        OrgCommand::Update { id, name, status } => {
            anyhow::ensure!(name.is_some() || status.is_some(), "org update needs --name or --status");
            Outcome::Send(builder::update_org(&id, name.as_deref(), status))
        }
        OrgCommand::SetPrincipal { id, account, roles, kind, status } => {
            Outcome::Send(builder::set_principal(&id, &account, kind, roles, status))
        }
        OrgCommand::SetPolicy { id, classification, steps } => {
            Outcome::Send(builder::set_policy(&id, classification, &steps))
        }
        OrgCommand::RotateKey { new_account } => Outcome::Send(builder::rotate_key(&new_account)),
        OrgCommand::Show { id } => {
            let org = ctx.client()?.read(reads::org(&id)).await?;
            let text = format!(
                "{}  {:?}  {}  {}\nadmin {}  registered at height {}  updated at height {}",
                org.id,
                org.name,
                org.kind.name(),
                org.status.name(),
                hex::encode(org.admin),
                org.registered_height,
                org.updated_height
            );
            return shown(org_json(&org), text);
        }
        OrgCommand::Member { account } => {
            let m = ctx.client()?.read(reads::member(&account)).await?;
            let p = &m.principal;
            let json = serde_json::json!({
                "account": hex::encode(p.account), "org": p.org, "kind": p.kind.name(),
                "roles": role_names(p.roles), "status": p.status.name(), "acting": m.acting,
                "org_status": m.org_status.name(), "rotated_to": p.rotated_to.map(hex::encode),
            });
            let text = format!(
                "{} of {}  roles {}  {}  {}",
                p.kind.name(),
                p.org,
                role_names(p.roles),
                p.status.name(),
                if m.acting { "acting" } else { "not acting" }
            );
            return shown(json, text);
        }
        OrgCommand::Policy { id, classification } => {
            let policy = ctx.client()?.read(reads::approval_policy(&id, classification)).await?;
            let steps: Vec<String> = policy.steps.iter().map(|s| role_names(*s)).collect();
            let json = serde_json::json!({"org": policy.org, "classification": classification.name(), "steps": steps});
            return shown(json, format!("{} {} data: {}", policy.org, classification.name(), steps.join(" then ")));
        }
    })
}

// --- catalog --------------------------------------------------------------------------------

#[derive(Subcommand)]
pub enum CatalogCommand {
    /// Publish a resource, or a new version of it (a data provider of a department).
    Publish {
        /// The resource's code, `ORG/NAME`.
        #[arg(long)]
        id: String,
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
        /// The resource code, `ORG/NAME` (or the data element, for `element`).
        #[arg(long)]
        id: String,
    },
    /// A resource: its latest version, or `--version`.
    Show {
        /// The resource code, `ORG/NAME` (or the data element, for `element`).
        #[arg(long)]
        id: String,
        #[arg(long)]
        version: Option<u32>,
    },
    /// Which resource is the one source of a data element (一数一源).
    Element {
        /// The resource code, `ORG/NAME` (or the data element, for `element`).
        #[arg(long)]
        id: String,
    },
}

pub async fn catalog(command: CatalogCommand, ctx: &Ctx) -> Shown {
    Ok(match command {
        CatalogCommand::Publish {
            id,
            org,
            classification,
            share,
            conditions,
            methods,
            fields,
            source_system,
            personal_data,
        } => Outcome::Send(builder::publish_resource(&Publish {
            code: id,
            provider_org: org,
            source_system,
            classification,
            personal_data,
            share_type: share,
            conditions,
            methods,
            fields,
            metadata_hash: [0; 32],
        })),
        CatalogCommand::Withdraw { id } => Outcome::Send(builder::withdraw_resource(&id)),
        CatalogCommand::Show { id, version } => {
            let r = ctx.client()?.read(reads::resource(&id, version)).await?;
            let fields: Vec<serde_json::Value> = r
                .fields
                .iter()
                .map(|f| serde_json::json!({"name": f.name, "type": f.data_type, "classification": f.classification.name(), "element": f.element}))
                .collect();
            let json = serde_json::json!({
                "id": r.code, "version": r.version, "provider_org": r.provider_org,
                "classification": r.classification.name(), "share": r.share_type.name(),
                "conditions": r.conditions, "personal_data": r.personal_data, "status": r.status.name(),
                "fields": fields, "published_height": r.published_height,
            });
            let names: Vec<&str> = r.fields.iter().map(|f| f.name.as_str()).collect();
            let text = format!(
                "{} v{}  by {}  {}  {}  {}\nfields {}",
                r.code,
                r.version,
                r.provider_org,
                r.classification.name(),
                r.share_type.name(),
                r.status.name(),
                names.join(",")
            );
            return shown(json, text);
        }
        CatalogCommand::Element { id } => {
            let s = ctx.client()?.read(reads::element_source(&id)).await?;
            let json =
                serde_json::json!({"element": s.element, "resource": s.resource, "provider_org": s.provider_org});
            return shown(json, format!("{} comes from {} ({})", s.element, s.resource, s.provider_org));
        }
    })
}

// --- request --------------------------------------------------------------------------------

#[derive(Subcommand)]
pub enum RequestCommand {
    /// Ask for access to a resource (a data consumer); prints the request id.
    Submit {
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
        /// The request.
        #[arg(long)]
        id: u64,
        #[command(flatten)]
        terms: TermsArgs,
    },
    /// Reject a request under review, with a reason (the provider's approvers).
    Reject {
        /// The request.
        #[arg(long)]
        id: u64,
        #[arg(long)]
        reason: String,
    },
    /// Dispute a rejection (the requester); it goes to the governance committee.
    Dispute {
        /// The request.
        #[arg(long)]
        id: u64,
        #[arg(long)]
        reason: String,
    },
    /// Withdraw a request that is still open (the requester).
    Withdraw {
        /// The request.
        #[arg(long)]
        id: u64,
        #[arg(long)]
        reason: String,
    },
    /// Escalate a request whose review deadline has passed.
    Escalate {
        /// The request.
        #[arg(long)]
        id: u64,
    },
    /// A request and where it stands.
    Show {
        /// The request.
        #[arg(long)]
        id: u64,
    },
    /// Record a data subject's consent, given to the signer's organisation.
    Consent {
        /// The consent record.
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
        /// The consent record.
        #[arg(long)]
        id: String,
    },
    /// A consent record.
    ShowConsent {
        /// The consent record.
        #[arg(long)]
        id: String,
    },
}

/// The flags that make grant terms, with what they are derived from: every approver who
/// passes the same flags produces the same terms.
#[derive(Args)]
pub struct TermsArgs {
    /// Comma-separated; default: all requested (or delegated) fields.
    #[arg(long)]
    fields: Option<String>,
    /// Comma-separated; default: the requested (or delegated) purposes.
    #[arg(long)]
    purposes: Option<String>,
    /// Validity in days from the request's submission (or the delegation); capped at what
    /// was requested (or delegated).
    #[arg(long, default_value_t = 30)]
    days: u64,
    /// Default: the requested (or delegated) number.
    #[arg(long)]
    max_uses: Option<u64>,
    /// Uses a day (0: no limit).
    #[arg(long, default_value_t = 0)]
    rate: u64,
    /// The grantee may delegate part of the grant to another organisation.
    #[arg(long)]
    delegable: bool,
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

/// Sub-grant terms from the parent grant and the delegator's flags, from `now_ms`.
fn delegated_terms(parent: &Grant, flags: TermsArgs, now_ms: u64) -> Terms {
    let TermsArgs { fields, purposes, days, max_uses, rate, delegable } = flags;
    let p = &parent.terms;
    Terms {
        fields: fields.map(|f| list(&f)).unwrap_or_else(|| p.fields.clone()),
        methods: p.methods,
        purposes: purposes.map(|x| list(&x)).unwrap_or_else(|| p.purposes.clone()),
        not_before_ms: now_ms.max(p.not_before_ms),
        not_after_ms: p.not_after_ms.min(now_ms.saturating_add(days.saturating_mul(DAY_MS))),
        max_uses: max_uses.unwrap_or(p.max_uses.saturating_sub(parent.uses)),
        rate_per_day: rate,
        case_ref: p.case_ref,
        duties: p.duties,
        delegable,
        policy_hash: p.policy_hash,
    }
}

pub async fn request(command: RequestCommand, ctx: &Ctx) -> Shown {
    Ok(Outcome::Send(match command {
        RequestCommand::Submit { resource, fields, methods, purpose, basis, days, max_uses, matter, consent } => {
            let client = ctx.client()?;
            let now_ms = ctx.status(&client).await?.timestamp_ms;
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
        RequestCommand::Approve { id, terms } => {
            let req = ctx.client()?.read(reads::access_request(id)).await?;
            access::approve(id, &terms_for(&req, terms))
        }
        RequestCommand::Reject { id, reason } => access::reject(id, &reason),
        RequestCommand::Dispute { id, reason } => access::dispute(id, &reason),
        RequestCommand::Withdraw { id, reason } => access::withdraw(id, &reason),
        RequestCommand::Escalate { id } => access::escalate(id),
        RequestCommand::Consent { id, resource, purpose, subject } => {
            access::record_consent(&shutong_sdk::system_api::authz::RecordConsent {
                id,
                subject_ref_hmac: builder::cert::digest(subject.as_bytes()).0,
                resource,
                purpose,
                evidence_hash: [0; 32],
            })
        }
        RequestCommand::WithdrawConsent { id } => access::withdraw_consent(&id),
        RequestCommand::Show { id } => {
            let r = ctx.client()?.read(reads::access_request(id)).await?;
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
            return shown(json, text);
        }
        RequestCommand::ShowConsent { id } => {
            let c = ctx.client()?.read(reads::consent(&id)).await?;
            let json = serde_json::json!({
                "id": c.id, "org": c.grantee_org, "resource": c.resource, "purpose": c.purpose,
                "given_ms": c.given_ms, "withdrawn": c.withdrawn,
            });
            let text = format!(
                "consent {} to {} for {} ({}){}",
                c.id,
                c.grantee_org,
                c.resource,
                c.purpose,
                if c.withdrawn { "  WITHDRAWN" } else { "" }
            );
            return shown(json, text);
        }
    }))
}

// --- grant ----------------------------------------------------------------------------------

#[derive(Args)]
pub struct UseArgs {
    /// The grant.
    #[arg(long)]
    pub id: u64,
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

impl UseArgs {
    pub fn to_use(&self) -> Use {
        Use {
            grant: self.id,
            account: self.consumer.0,
            fields: list(&self.fields),
            method: self.method,
            purpose: self.purpose.clone(),
            count: self.records,
        }
    }
}

#[derive(Subcommand)]
pub enum GrantCommand {
    /// A grant: its terms, uses and status.
    Show {
        /// The grant.
        #[arg(long)]
        id: u64,
    },
    /// Would this use be permitted now? (What a gateway asks.)
    Check(UseArgs),
    /// Supersede a grant with amended terms (the provider's CDO); the uses made carry over.
    /// Terms are derived from the grant's request and these flags, as for `request approve`.
    Amend {
        /// The grant.
        #[arg(long)]
        id: u64,
        #[command(flatten)]
        terms: TermsArgs,
    },
    /// Delegate part of a delegable grant to another organisation (the grantee's admin).
    Delegate {
        /// The grant.
        #[arg(long)]
        id: u64,
        /// The organisation that receives the sub-grant.
        #[arg(long)]
        to: String,
        #[command(flatten)]
        terms: TermsArgs,
    },
    /// Suspend a grant and its delegations, with a reason (the provider).
    Suspend {
        /// The grant.
        #[arg(long)]
        id: u64,
        #[arg(long)]
        reason: String,
    },
    /// Resume a suspended grant (the provider).
    Resume {
        /// The grant.
        #[arg(long)]
        id: u64,
    },
    /// Revoke a grant and its delegations, with a reason (the provider).
    Revoke {
        /// The grant.
        #[arg(long)]
        id: u64,
        #[arg(long)]
        reason: String,
    },
    /// Close grants bound to a case that has closed.
    CloseCase {
        /// The case reference; only its hash goes on chain.
        #[arg(long)]
        case: String,
        /// Comma-separated grant ids.
        #[arg(long)]
        ids: String,
    },
}

pub async fn grant(command: GrantCommand, ctx: &Ctx) -> Shown {
    Ok(Outcome::Send(match command {
        GrantCommand::Amend { id, terms } => {
            let client = ctx.client()?;
            let g = client.read(reads::grant(id)).await?;
            let req = client.read(reads::access_request(g.request)).await?;
            access::amend(id, &terms_for(&req, terms))
        }
        GrantCommand::Delegate { id, to, terms } => {
            let client = ctx.client()?;
            let parent = client.read(reads::grant(id)).await?;
            let now_ms = ctx.status(&client).await?.timestamp_ms;
            access::delegate(id, &to, &delegated_terms(&parent, terms, now_ms))
        }
        GrantCommand::Suspend { id, reason } => access::suspend(id, &reason),
        GrantCommand::Resume { id } => access::resume(id),
        GrantCommand::Revoke { id, reason } => access::revoke(id, &reason),
        GrantCommand::CloseCase { case, ids } => {
            let ids: Result<Vec<u64>, _> = list(&ids).iter().map(|g| g.parse::<u64>()).collect();
            let ids = ids.context("--ids is a comma-separated list of grant ids")?;
            access::close_case(builder::cert::digest(case.as_bytes()).0, &ids)
        }
        GrantCommand::Show { id } => {
            let g = ctx.client()?.read(reads::grant(id)).await?;
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
            return shown(grant_json(&g), text);
        }
        GrantCommand::Check(u) => {
            let d = ctx.client()?.read(reads::check(&u.to_use())).await?;
            let json = serde_json::json!({"permit": d.permit, "reason": d.reason, "violation": d.violation});
            let text = if d.permit { "permit".to_string() } else { format!("deny: {}", d.reason) };
            return shown(json, text);
        }
    }))
}

// --- gov ------------------------------------------------------------------------------------

#[derive(Subcommand)]
pub enum GovCommand {
    /// Propose a decision (a committee member; counts as its organisation's vote).
    #[command(subcommand)]
    Propose(Proposal),
    /// Vote for a proposal (a committee member); carried out once members of enough
    /// organisations voted.
    Vote {
        /// The proposal.
        #[arg(long)]
        id: u64,
    },
    /// A proposal and its votes.
    Show {
        /// The proposal.
        #[arg(long)]
        id: u64,
    },
    /// The validator set in force and any scheduled change.
    Validators,
    /// The governance committee: its seats (account and organisation) and threshold.
    Committee,
    /// Replace the validator set, in this order (a committee member, while one
    /// organisation's vote is the threshold); it takes effect 10 blocks after inclusion.
    SetValidators {
        /// A validator's public key (hex); repeat for each, in order.
        #[arg(long = "validator", required = true)]
        validators: Vec<shutong_types::PublicKey>,
    },
    /// The defined purpose a purpose code falls under, with its legal bases.
    Purpose {
        /// The purpose code.
        #[arg(long)]
        id: String,
    },
}

#[derive(Subcommand)]
pub enum Proposal {
    /// Replace the validator set, in this order; it takes effect 10 blocks after the vote
    /// that carries it.
    SetValidators {
        /// A validator's public key (hex); repeat for each, in order.
        #[arg(long = "validator", required = true)]
        validators: Vec<shutong_types::PublicKey>,
    },
    /// Approve a code hash for upload.
    ApproveCode {
        #[arg(long)]
        code_hash: shutong_types::Hash,
    },
    /// Suspend an organisation.
    SuspendOrg {
        /// The organisation (or the purpose code, for `define-purpose`).
        #[arg(long)]
        id: String,
    },
    /// Reinstate a suspended organisation.
    ReinstateOrg {
        /// The organisation (or the purpose code, for `define-purpose`).
        #[arg(long)]
        id: String,
    },
    /// Add an organisation (when the committee's `registration` parameter is `governance`,
    /// the only way one is added).
    AddOrg {
        /// The organisation (or the purpose code, for `define-purpose`).
        #[arg(long)]
        id: String,
        #[arg(long)]
        name: String,
        /// department, enterprise, auditor or operator.
        #[arg(long, value_parser = org_kind)]
        kind: OrgKind,
        /// The account that administers it.
        #[arg(long)]
        admin: AccountId,
    },
    /// Define a purpose in the purpose hierarchy (its parent first), with its legal bases.
    DefinePurpose {
        /// The organisation (or the purpose code, for `define-purpose`).
        #[arg(long)]
        id: String,
        /// Comma-separated: statute, duty_mandate, consent, contract.
        #[arg(long, value_parser = bases)]
        bases: u8,
        #[arg(long, default_value = "")]
        description: String,
    },
    /// Set a parameter: `upload_policy` (governance or open), `registration` (open, approved
    /// or governance), `lifecycle_delay_blocks` (1 to 1000000) or `anchor_lag_ms_max` (the
    /// longest a gateway may wait to anchor a period: 60000 to 2592000000 ms).
    SetParam {
        #[arg(long)]
        name: String,
        #[arg(long)]
        value: String,
    },
    /// Replace the committee: its seats and the threshold of organisations.
    SetCommittee {
        /// A seat, ACCOUNT=ORG (the account's hex and the organisation it votes for); repeat.
        #[arg(long = "seat", required = true, value_parser = seat)]
        seats: Vec<Seat>,
        #[arg(long)]
        threshold: u32,
    },
    /// Approve a pending registration (a department, auditor or operator, or an enterprise
    /// under the `approved` policy).
    ApproveOrg {
        #[arg(long)]
        id: String,
    },
    /// Make a department the authoritative source of a data element, or move it there.
    AssignSource {
        #[arg(long)]
        element: String,
        /// The department.
        #[arg(long)]
        org: String,
    },
    /// Freeze a contract (a system contract, or a rogue enterprise contract), a governed
    /// number of blocks after the proposal is carried.
    Freeze {
        /// An address, or a system contract's name (registry, catalog, authz, audit, governance).
        #[arg(long, value_parser = crate::cli::parse_contract)]
        contract: shutong_types::Address,
    },
    /// Unfreeze a contract the committee froze (or a system contract).
    Unfreeze {
        #[arg(long, value_parser = crate::cli::parse_contract)]
        contract: shutong_types::Address,
    },
    /// Migrate a contract the committee administers (a system contract) to uploaded code.
    Migrate {
        #[arg(long, value_parser = crate::cli::parse_contract)]
        contract: shutong_types::Address,
        #[arg(long)]
        code_hash: shutong_types::Hash,
        /// Hex arguments for the new code's `migrate` method.
        #[arg(long, default_value = "", value_parser = crate::cli::args_hex)]
        args: Vec<u8>,
    },
    /// Hand a contract the committee administers to another admin account.
    SetAdmin {
        #[arg(long, value_parser = crate::cli::parse_contract)]
        contract: shutong_types::Address,
        #[arg(long)]
        admin: AccountId,
    },
}

fn seat(text: &str) -> Result<Seat, String> {
    let (account, org) = text.split_once('=').ok_or_else(|| format!("{text:?} is not ACCOUNT=ORG"))?;
    let account: AccountId = account.parse().map_err(|e| format!("{account:?} is not an account: {e}"))?;
    Ok(Seat { account: account.0, org: org.to_string() })
}

/// A proposal's action as an operator reads it: accounts, keys and hashes in hex.
fn describe(action: &Action) -> String {
    let hexes = |keys: &[[u8; 32]]| keys.iter().map(hex::encode).collect::<Vec<_>>().join(", ");
    match action {
        Action::SetValidators { keys } => format!("set the validators to [{}]", hexes(keys)),
        Action::ApproveCode { code_hash } => format!("approve code {}", hex::encode(code_hash)),
        Action::Lifecycle { contract, op } => {
            let what = match op {
                LifecycleOp::Migrate { code_hash, args } => {
                    format!(" to code {} ({} bytes of arguments)", hex::encode(code_hash), args.len())
                }
                LifecycleOp::SetAdmin { admin } => format!(" to {}", hex::encode(admin)),
                LifecycleOp::Freeze | LifecycleOp::Unfreeze => String::new(),
            };
            format!("{} contract {}{what}", op.name(), hex::encode(contract))
        }
        Action::AddOrg { id, name, kind, admin } => {
            format!("add organisation {id} ({name:?}, {kind:?}) administered by {}", hex::encode(admin))
        }
        other => format!("{other:?}"),
    }
}

fn basis_names(bits: u8) -> Vec<&'static str> {
    LegalBasis::ALL.iter().filter(|b| bits & (1 << **b as u8) != 0).map(|b| b.name()).collect()
}

pub async fn gov(command: GovCommand, ctx: &Ctx) -> Shown {
    Ok(Outcome::Send(match command {
        GovCommand::Vote { id } => builder::vote(id),
        GovCommand::SetValidators { validators } => builder::set_validators(&validators),
        GovCommand::Propose(proposal) => builder::propose(match proposal {
            Proposal::SetValidators { validators } => {
                Action::SetValidators { keys: validators.iter().map(|k| k.0).collect() }
            }
            Proposal::ApproveCode { code_hash } => Action::ApproveCode { code_hash: code_hash.0 },
            Proposal::SuspendOrg { id } => Action::SuspendOrg { id },
            Proposal::ReinstateOrg { id } => Action::ReinstateOrg { id },
            Proposal::SetParam { name, value } => Action::SetParam { name, value },
            Proposal::AddOrg { id, name, kind, admin } => Action::AddOrg { id, name, kind, admin: admin.0 },
            Proposal::DefinePurpose { id, bases, description } => {
                Action::DefinePurpose { code: id, legal_bases: bases, description }
            }
            Proposal::SetCommittee { seats, threshold } => {
                Action::SetCommittee { committee: Committee { seats, threshold } }
            }
            Proposal::ApproveOrg { id } => Action::ApproveOrg { id },
            Proposal::AssignSource { element, org } => Action::AssignSource { element, org },
            Proposal::Freeze { contract } => Action::Lifecycle { contract: contract.0, op: LifecycleOp::Freeze },
            Proposal::Unfreeze { contract } => Action::Lifecycle { contract: contract.0, op: LifecycleOp::Unfreeze },
            Proposal::Migrate { contract, code_hash, args } => {
                Action::Lifecycle { contract: contract.0, op: LifecycleOp::Migrate { code_hash: code_hash.0, args } }
            }
            Proposal::SetAdmin { contract, admin } => {
                Action::Lifecycle { contract: contract.0, op: LifecycleOp::SetAdmin { admin: admin.0 } }
            }
        }),
        GovCommand::Show { id } => {
            let client = ctx.client()?;
            let p = client.read(reads::proposal(id)).await?;
            let committee = client.read(reads::committee()).await?;
            let outcome = match p.action {
                Action::Lifecycle { .. } if p.executed => Some(client.read(reads::lifecycle_outcome(id)).await?),
                _ => None,
            };
            let orgs: Vec<&str> = p.votes.iter().filter_map(|v| committee.org_of(v)).collect();
            let json = serde_json::json!({
                "id": p.id, "action": describe(&p.action), "proposer": hex::encode(p.proposer),
                "votes": p.votes.iter().map(hex::encode).collect::<Vec<_>>(), "voting_orgs": orgs,
                "threshold": committee.threshold,
                "created_height": p.created_height, "executed": p.executed,
                "lifecycle": outcome.as_ref().map(|o| serde_json::json!({
                    "height": o.height, "done": o.done, "refused": o.refused,
                })),
            });
            let mut text = format!(
                "proposal {}  {}\nvotes of {} of {} organisations needed ({})  {}",
                p.id,
                describe(&p.action),
                committee.voting_orgs(&p.votes),
                committee.threshold,
                orgs.join(", "),
                if p.executed { "carried out" } else { "open" }
            );
            if let Some(o) = outcome {
                text.push_str(&match (o.done, &o.refused) {
                    (false, _) => format!("\ntakes effect before block {}", o.height),
                    (true, None) => format!("\ntook effect before block {}", o.height),
                    (true, Some(reason)) => format!("\nrefused before block {}: {reason}", o.height),
                });
            }
            return shown(json, text);
        }
        GovCommand::Committee => {
            let c = ctx.client()?.read(reads::committee()).await?;
            let json = serde_json::json!({
                "threshold": c.threshold,
                "seats": c.seats.iter().map(|s| serde_json::json!({"account": hex::encode(s.account), "org": s.org}))
                    .collect::<Vec<_>>(),
            });
            let mut text = format!("{} seats of {} organisations; {} must vote", c.seats.len(), c.orgs(), c.threshold);
            for s in &c.seats {
                text.push_str(&format!("\n  {}  {}", s.org, hex::encode(s.account)));
            }
            return shown(json, text);
        }
        GovCommand::Purpose { id } => {
            let p = ctx.client()?.read(reads::purpose(&id)).await?;
            let json =
                serde_json::json!({"id": p.code, "bases": basis_names(p.legal_bases), "description": p.description});
            let text =
                format!("{} falls under {}: {} ({})", id, p.code, basis_names(p.legal_bases).join(","), p.description);
            return shown(json, text);
        }
        GovCommand::Validators => {
            let got = ctx.client()?.read(reads::validators()).await?;
            let hex_keys = |keys: &[[u8; 32]]| keys.iter().map(hex::encode).collect::<Vec<_>>();
            let mut text = format!(
                "epoch {} since height {}: {} validators",
                got.current.epoch,
                got.current.since_height,
                got.current.keys.len()
            );
            for key in &got.current.keys {
                text.push_str(&format!("\n  {}", hex::encode(key)));
            }
            if let Some(p) = &got.pending {
                text.push_str(&format!("\npending from height {}: {} validators", p.activation_height, p.keys.len()));
                for key in &p.keys {
                    text.push_str(&format!("\n  {}", hex::encode(key)));
                }
            }
            let json = serde_json::json!({
                "epoch": got.current.epoch,
                "since_height": got.current.since_height,
                "validators": hex_keys(&got.current.keys),
                "pending": got.pending.as_ref().map(|p| serde_json::json!({
                    "activation_height": p.activation_height,
                    "validators": hex_keys(&p.keys),
                })),
            });
            return shown(json, text);
        }
    }))
}

// --- what a call returned ---------------------------------------------------------------------

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
            "amend" | "delegate" => u64::decode(output).ok().map(|id| format!("grant {id} issued")),
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

pub fn event_text(r: &EventRecord) -> String {
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

pub fn event_json(r: &EventRecord) -> serde_json::Value {
    serde_json::json!({
        "id": r.id, "grant": r.event.grant, "provider": r.provider_org, "consumer": r.consumer_org,
        "resource": r.resource, "fields": r.event.fields, "purpose": r.event.purpose,
        "permit": r.permit, "reason": r.reason, "violation": r.violation, "height": r.height,
        "time_ms": r.time_ms, "leaf": r.leaf,
    })
}
