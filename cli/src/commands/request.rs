//! `shutong request`: access requests, their review, and data subjects' consent.

use crate::context::{Ctx, Outcome, Shown, list, shown};
use clap::{Args, Subcommand};
use shutong_sdk::builder::{self, access};
use shutong_sdk::reads;
use shutong_sdk::system_api::authz::{AccessRequest, Grant, LegalBasis, RequestAccess, Terms, duty};

use super::values::*;

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
        /// The data subject's reference; only its keyed digest goes on chain, under the
        /// organisation's subject key (32 bytes of hex in SHUTONG_SUBJECT_KEY).
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
pub(crate) fn terms_for(req: &AccessRequest, flags: TermsArgs) -> Terms {
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
pub(crate) fn delegated_terms(parent: &Grant, flags: TermsArgs, now_ms: u64) -> Terms {
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

pub async fn run(command: RequestCommand, ctx: &Ctx) -> Shown {
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
            let key = subject_key()?;
            let suite = ctx.status(&ctx.client()?).await?.suite;
            access::record_consent(&shutong_sdk::system_api::authz::RecordConsent {
                id,
                subject_ref_hmac: builder::subject_ref(suite, &key, &subject).0,
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

/// The environment variable holding the organisation's key for subject references.
pub(crate) const SUBJECT_KEY_ENV: &str = "SHUTONG_SUBJECT_KEY";

/// The organisation's subject key, from [`SUBJECT_KEY_ENV`]: 32 bytes of hex.
fn subject_key() -> anyhow::Result<[u8; 32]> {
    let text = std::env::var(SUBJECT_KEY_ENV).map_err(|_| {
        anyhow::anyhow!(
            "set {SUBJECT_KEY_ENV} to the organisation's subject key (32 bytes of hex): only a keyed digest of the subject goes on chain"
        )
    })?;
    hex::decode(text.trim())
        .ok()
        .and_then(|bytes| <[u8; 32]>::try_from(bytes).ok())
        .ok_or_else(|| anyhow::anyhow!("{SUBJECT_KEY_ENV} must be 32 bytes of hex (64 hex digits)"))
}
