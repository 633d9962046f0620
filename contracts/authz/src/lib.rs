//! Shutong's authorisation system contract: access requests and their lifecycle, approval
//! routes by classification, grants, delegations, and the check a gateway makes. The rules
//! are in `shutong_system_api::authz`; each refusal has its own error.
//!
//! Who an account is comes from the registry (`member`) and what a resource is from the
//! catalog (`get`), both by cross-contract calls.

#![forbid(unsafe_code)]

use shutong_codec::{Decode, Encode};
use shutong_contract::{self as contract, Error, Item, Map, MethodResult};
use shutong_system_api::audit::{selector_count_key, AuditEntry};
use shutong_system_api::authz::{
    count_use, decide, decide_batch, duty, purpose_within, valid_purpose, AccessRequest, Amend, Approval, Approve,
    BatchUse, CloseCase, Consent, ConsentId, Consumed, Counted, Decision, Delegate, Grant, GrantStatus, Id, LegalBasis,
    RecordConsent, RequestAccess, RequestState, Terms, Use, WithReason, DELEGATIONS_MAX, DELEGATION_DEPTH_MAX,
    PER_USE_MAX_USES, REQUEST_TEXT_BYTES_MAX, REVIEW_MS,
};
use shutong_system_api::catalog::{Classification, Resource, ResourceRef, ResourceStatus, ShareType};
use shutong_system_api::governance::{PurposeDef, ResolvePurpose};
use shutong_system_api::names::{AUDIT_ADDRESS, CATALOG_ADDRESS, GOVERNANCE_ADDRESS, REGISTRY_ADDRESS};
use shutong_system_api::registry::{role, ApprovalPolicy, GetOrg, GetPolicy, Member};

contract::entrypoints!(
    append_grant_entry,
    request,
    approve,
    reject,
    escalate,
    dispute,
    withdraw,
    suspend,
    resume,
    revoke,
    delegate,
    check,
    consume,
    record_use,
    record_batch,
    get_request,
    get_grant,
    record_consent,
    withdraw_consent,
    get_consent,
    close_case,
    amend
);

const NEXT_REQUEST: Item<u64> = Item::new(b"next-request");
const NEXT_GRANT: Item<u64> = Item::new(b"next-grant");
const REQUESTS: Map<u64, AccessRequest> = Map::new(b"request/");
const GRANTS: Map<u64, Grant> = Map::new(b"grant/");
const CONSENTS: Map<String, Consent> = Map::new(b"consent/");
/// Grants resting on a consent: key consent id ‖ 0 ‖ grant (8 bytes BE).
const CONSENT_GRANTS: Map<Vec<u8>, u64> = Map::new(b"consent-grant/");

fn consent_key(consent: &str, grant: u64) -> Vec<u8> {
    let mut key = consent.as_bytes().to_vec();
    key.push(0);
    key.extend_from_slice(&grant.to_be_bytes());
    key
}

/// What the registry says about `account`, read from its storage.
fn member(account: [u8; 32]) -> Result<Option<Member>, Error> {
    Member::read(&account, |key| contract::storage_get_of(&REGISTRY_ADDRESS, key))
        .map_err(|e| Error(format!("the registry's record of {} is corrupt: {}", contract::hex(&account), e)))
}

/// The caller, if it acts for `org` (any org if `None`) with one of `roles`; its member record.
fn acting(org: Option<&str>, roles: u32, what: &str) -> Result<Member, Error> {
    let caller = contract::caller();
    let found = member(caller)?;
    match found {
        Some(m) if m.acting && m.principal.roles & roles != 0 && org.map_or(true, |o| o == m.principal.org) => Ok(m),
        _ => Err(Error(format!(
            "only an acting {} of {} may {}",
            role::names(roles).join(" or "),
            org.map_or("an organisation".to_string(), |o| format!("organisation {}", o)),
            what
        ))),
    }
}

/// The nearest purpose at or above `code` in the governance committee's catalogue.
fn purpose(code: &str) -> Result<PurposeDef, Error> {
    let args = ResolvePurpose { code: code.to_string() }.encode();
    let bytes = contract::call(&GOVERNANCE_ADDRESS, "resolve_purpose", &args, 0)
        .map_err(|_| Error(format!("purpose {} is not in the purpose catalogue", code)))?;
    PurposeDef::decode(&bytes).map_err(|e| Error(format!("governance answered badly: {}", e)))
}

fn resource(code: &str) -> Result<Resource, Error> {
    let args = ResourceRef { code: code.to_string(), version: None }.encode();
    let bytes = contract::call(&CATALOG_ADDRESS, "get", &args, 0)
        .map_err(|_| Error(format!("no resource {} in the catalog", code)))?;
    Resource::decode(&bytes).map_err(|e| Error(format!("the catalog answered badly: {}", e)))
}

fn next(counter: &Item<u64>) -> Result<u64, Error> {
    let id = counter.load()?.unwrap_or(1);
    counter.save(&(id + 1));
    Ok(id)
}

fn load_request(id: u64) -> Result<AccessRequest, Error> {
    REQUESTS.load(&id)?.ok_or_else(|| Error(format!("no access request {}", id)))
}

fn load_grant(id: u64) -> Result<Grant, Error> {
    GRANTS.load(&id)?.ok_or_else(|| Error(format!("no grant {}", id)))
}

fn subset(inner: &[String], outer: &[String]) -> bool {
    inner.iter().all(|f| outer.contains(f))
}

pub fn request(args: &[u8]) -> MethodResult {
    let req = RequestAccess::decode(args)?;
    let me = acting(None, role::DATA_CONSUMER, "request access")?;
    let res = resource(&req.resource)?;
    if res.status != ResourceStatus::Published {
        return Err(Error(format!("resource {} is {}, not published", res.code, res.status.name())));
    }
    if res.share_type == ShareType::NotShared {
        return Err(Error(format!("resource {} is not shared", res.code)));
    }
    if req.fields.is_empty() || !req.fields.iter().all(|f| res.fields.iter().any(|rf| &rf.name == f)) {
        return Err(Error(format!("fields must be a non-empty subset of resource {}'s fields", res.code)));
    }
    if req.methods == 0 || req.methods & !res.methods != 0 {
        return Err(Error(format!("methods must be among those resource {} offers", res.code)));
    }
    if !valid_purpose(&req.purpose) {
        return Err(Error(format!("invalid purpose code {:?}", req.purpose)));
    }
    if req.matter_code.len() > REQUEST_TEXT_BYTES_MAX as usize {
        return Err(Error::new("matter code is too long"));
    }
    let now = contract::block_time_ms();
    if req.valid_until_ms <= now || req.max_uses == 0 {
        return Err(Error::new("a request asks for a validity in the future and at least one use"));
    }
    match (&req.legal_basis, &req.consent) {
        (LegalBasis::Consent, None) => {
            return Err(Error::new("a request on the consent basis names its consent record"))
        }
        (LegalBasis::Consent, Some(id)) => {
            let consent = CONSENTS.load(id)?.ok_or_else(|| Error(format!("no consent record {}", id)))?;
            if consent.withdrawn {
                return Err(Error(format!("consent {} was withdrawn", id)));
            }
            if consent.grantee_org != me.principal.org
                || consent.resource != req.resource
                || !purpose_within(&req.purpose, &consent.purpose)
            {
                return Err(Error(format!("consent {} does not cover this organisation, resource and purpose", id)));
            }
        }
        (_, Some(_)) => return Err(Error::new("a consent record is named only on the consent legal basis")),
        (_, None) => {}
    }
    let def = purpose(&req.purpose)?;
    if def.legal_bases & (1u8 << (req.legal_basis as u8)) == 0 {
        return Err(Error(format!("purpose {} does not rest on the {} legal basis", def.code, req.legal_basis.name())));
    }
    let id = next(&NEXT_REQUEST)?;
    let auto = res.share_type == ShareType::Unconditional;
    let mut request = AccessRequest {
        id,
        requester: me.principal.account,
        requester_org: me.principal.org.clone(),
        provider_org: res.provider_org.clone(),
        resource: res.code.clone(),
        version: res.version,
        request: req.clone(),
        state: if auto { RequestState::AutoApproved } else { RequestState::ProviderReview },
        submitted_ms: now,
        deadline_ms: now + REVIEW_MS,
        terms: None,
        approvals: Vec::new(),
        reason: String::new(),
        grant: None,
    };
    if auto {
        let terms = Terms {
            fields: req.fields.clone(),
            methods: req.methods,
            purposes: vec![req.purpose.clone()],
            not_before_ms: now,
            not_after_ms: req.valid_until_ms,
            max_uses: req.max_uses,
            rate_per_day: 0,
            case_ref: None,
            duties: duty::LOG_USAGE,
            delegable: false,
            policy_hash: [0; 32],
        };
        request.grant = Some(issue_grant(&request, terms, Vec::new(), None, 0)?);
    }
    REQUESTS.save(&id, &request);
    log_request("request.submitted", &request)?;
    Ok(id.encode())
}

/// Each grant's audit-log entry count: the next entry's `grant_seq`.
const GRANT_LOG: Map<u64, u64> = Map::new(shutong_system_api::audit::GRANT_LOG_PREFIX);

/// Reserves `n` consecutive positions for entries like `entry` in each of its selectors'
/// sequences, and sets `entry.seqs` to the first of them.
fn number_selectors(entry: &mut AuditEntry, n: u64) -> Result<(), Error> {
    let selectors = entry.selectors();
    let mut seqs = Vec::with_capacity(selectors.len());
    for selector in &selectors {
        let key = selector_count_key(selector);
        let count = match contract::storage_get(&key) {
            Some(bytes) => u64::decode(&bytes).map_err(|e| Error(format!("a selector count is corrupt: {}", e)))?,
            None => 0,
        };
        contract::storage_set(&key, &(count + n).encode());
        seqs.push(count);
    }
    entry.seqs = seqs;
    Ok(())
}

/// Appends `entry` to the audit log, numbered in its grant's history if it has a grant and
/// in the sequence of each selector it answers.
fn append_entry(mut entry: AuditEntry) -> Result<u64, Error> {
    if entry.grant != 0 {
        let seq = GRANT_LOG.load(&entry.grant)?.unwrap_or(0);
        entry.grant_seq = seq;
        GRANT_LOG.save(&entry.grant, &(seq + 1));
    }
    number_selectors(&mut entry, 1)?;
    Ok(contract::audit_append(&entry.to_leaf()))
}

/// Appends the audit contract's entry (about a grant: an access, a violation, an
/// attestation, a batch; or about none: an auditor's logged query), numbered in the grant's
/// history and in its selectors' sequences; returns the leaf index. The audit contract only.
pub fn append_grant_entry(args: &[u8]) -> MethodResult {
    if contract::caller() != AUDIT_ADDRESS {
        return Err(Error::new("only the audit contract appends entries to a grant's history"));
    }
    let entry = AuditEntry::decode(args)?;
    if entry.grant != 0 && !GRANTS.has(&entry.grant) {
        return Err(Error(format!("no grant {}", entry.grant)));
    }
    Ok(append_entry(entry)?.encode())
}

/// Emits `kind` for a request and appends its audit-log entry.
fn log_request(kind: &str, request: &AccessRequest) -> Result<(), Error> {
    let entry = AuditEntry {
        kind: kind.to_string(),
        grant_seq: 0,
        seqs: Vec::new(),
        grant: request.grant.unwrap_or(0),
        request: request.id,
        resource: request.resource.clone(),
        provider_org: request.provider_org.clone(),
        consumer_org: request.requester_org.clone(),
        principal: contract::caller(),
        purpose: request.request.purpose.clone(),
        body: request.encode(),
    };
    append_entry(entry)?;
    contract::emit_event(kind, request.id.to_string().as_bytes());
    Ok(())
}

/// Emits `kind` for a grant and appends its audit-log entry, with `principal` as the actor.
fn log_grant_by(kind: &str, grant: &Grant, principal: [u8; 32]) -> Result<(), Error> {
    let entry = AuditEntry {
        kind: kind.to_string(),
        grant_seq: 0,
        seqs: Vec::new(),
        grant: grant.id,
        request: grant.request,
        resource: grant.resource.clone(),
        provider_org: grant.grantor_org.clone(),
        consumer_org: grant.grantee_org.clone(),
        principal,
        purpose: grant.terms.purposes.first().cloned().unwrap_or_default(),
        body: grant.encode(),
    };
    append_entry(entry)?;
    contract::emit_event(kind, grant.id.to_string().as_bytes());
    Ok(())
}

fn log_grant(kind: &str, grant: &Grant) -> Result<(), Error> {
    log_grant_by(kind, grant, contract::caller())
}

/// Emits `kind` for a consent record and appends its audit-log entry.
fn log_consent(kind: &str, consent: &Consent) -> Result<(), Error> {
    let entry = AuditEntry {
        kind: kind.to_string(),
        grant_seq: 0,
        seqs: Vec::new(),
        grant: 0,
        request: 0,
        resource: consent.resource.clone(),
        provider_org: String::new(),
        consumer_org: consent.grantee_org.clone(),
        principal: contract::caller(),
        purpose: consent.purpose.clone(),
        body: consent.encode(),
    };
    append_entry(entry)?;
    contract::emit_event(kind, consent.id.as_bytes());
    Ok(())
}

fn issue_grant(
    req: &AccessRequest,
    terms: Terms,
    approvals: Vec<Approval>,
    parent: Option<u64>,
    depth: u32,
) -> Result<u64, Error> {
    let id = next(&NEXT_GRANT)?;
    let mut terms = terms;
    // Small grants and grants over important or core data are counted use by use on chain.
    if terms.max_uses <= PER_USE_MAX_USES || resource(&req.resource)?.classification != Classification::General {
        terms.duties |= duty::PER_USE;
    }
    let grant = Grant {
        id,
        request: req.id,
        grantor_org: req.provider_org.clone(),
        grantee_org: req.requester_org.clone(),
        resource: req.resource.clone(),
        version: req.version,
        terms,
        uses: 0,
        day: 0,
        day_uses: 0,
        status: GrantStatus::Active,
        reason: String::new(),
        parent,
        depth,
        children: Vec::new(),
        approvals,
        consent: req.request.consent.clone(),
        superseded_by: None,
    };
    if let Some(consent) = &grant.consent {
        CONSENT_GRANTS.save(&consent_key(consent, id), &id);
    }
    GRANTS.save(&id, &grant);
    log_grant("grant.issued", &grant)?;
    Ok(id)
}

/// The approval route for `org`'s data of `classification`: one distinct approver per step,
/// each with one of the step's roles. The organisation's policy in the registry if it set
/// one, else the built-in route.
fn route(org: &str, classification: Classification) -> Result<Vec<u32>, Error> {
    let args = GetPolicy { org: org.to_string(), classification }.encode();
    if let Ok(bytes) = contract::call(&REGISTRY_ADDRESS, "get_policy", &args, 0) {
        let policy =
            ApprovalPolicy::decode(&bytes).map_err(|e| Error(format!("the registry answered badly: {}", e)))?;
        return Ok(policy.steps);
    }
    Ok(match classification {
        Classification::General => vec![role::CDO | role::DATA_PROVIDER],
        Classification::Important => vec![role::CDO, role::SECURITY_OFFICER],
        Classification::Core => vec![0],
    })
}

pub fn approve(args: &[u8]) -> MethodResult {
    let req = Approve::decode(args)?;
    let mut request = load_request(req.request)?;
    if request.state != RequestState::ProviderReview && request.state != RequestState::Escalated {
        return Err(Error(format!("request {} is {}, not under review", request.id, request.state.name())));
    }
    let needed = route(&request.provider_org, resource(&request.resource)?.classification)?;
    let all_roles = needed.iter().fold(0, |a, r| a | r);
    let me = acting(Some(&request.provider_org), all_roles, "approve its requests")?;
    let terms = req.terms;
    if terms.fields.is_empty() || !subset(&terms.fields, &request.request.fields) {
        return Err(Error::new("granted fields must be a non-empty subset of the requested ones"));
    }
    if terms.methods == 0 || terms.methods & !request.request.methods != 0 {
        return Err(Error::new("granted methods must be among the requested ones"));
    }
    if terms.purposes.is_empty() || !terms.purposes.iter().all(|p| purpose_within(p, &request.request.purpose)) {
        return Err(Error::new("granted purposes must lie within the requested purpose"));
    }
    if terms.not_after_ms <= terms.not_before_ms || terms.not_after_ms > request.request.valid_until_ms {
        return Err(Error::new("the validity must be a non-empty window within the requested one"));
    }
    if terms.max_uses == 0 || terms.max_uses > request.request.max_uses {
        return Err(Error::new("max uses must be between 1 and the requested number"));
    }
    if terms.duties & !duty::ALL != 0 {
        return Err(Error::new("unknown duty bits"));
    }
    if let Some(agreed) = &request.terms {
        if *agreed != terms {
            return Err(Error::new("these terms differ from the ones already approved"));
        }
    }
    if request.approvals.iter().any(|a| a.account == me.principal.account) {
        return Err(Error::new("this principal has already approved"));
    }
    request.approvals.push(Approval {
        account: me.principal.account,
        roles: me.principal.roles & all_roles,
        ms: contract::block_time_ms(),
    });
    request.terms = Some(terms.clone());
    // Each required role is covered by a distinct approver.
    let mut used = vec![false; request.approvals.len()];
    let satisfied = needed.iter().all(|need| {
        let found = request.approvals.iter().enumerate().position(|(i, a)| !used[i] && a.roles & need != 0);
        match found {
            Some(i) => {
                used[i] = true;
                true
            }
            None => false,
        }
    });
    if satisfied {
        let partial = terms.fields.len() < request.request.fields.len();
        request.state = if partial { RequestState::PartiallyApproved } else { RequestState::Approved };
        let approvals = request.approvals.clone();
        request.grant = Some(issue_grant(&request, terms, approvals, None, 0)?);
    }
    REQUESTS.save(&request.id, &request);
    log_request("request.approved", &request)?;
    Ok(request.grant.encode())
}

fn with_reason(args: &[u8]) -> Result<WithReason, Error> {
    let req = WithReason::decode(args)?;
    if req.reason.trim().is_empty() || req.reason.len() > REQUEST_TEXT_BYTES_MAX as usize {
        return Err(Error::new("a reason of 1 to 256 bytes is required"));
    }
    Ok(req)
}

pub fn reject(args: &[u8]) -> MethodResult {
    let req = with_reason(args)?;
    let mut request = load_request(req.id)?;
    acting(
        Some(&request.provider_org),
        role::CDO | role::DATA_PROVIDER | role::SECURITY_OFFICER,
        "reject its requests",
    )?;
    if request.state != RequestState::ProviderReview && request.state != RequestState::Escalated {
        return Err(Error(format!("request {} is {}, not under review", request.id, request.state.name())));
    }
    request.state = RequestState::Rejected;
    request.reason = req.reason;
    REQUESTS.save(&request.id, &request);
    log_request("request.rejected", &request)?;
    Ok(Vec::new())
}

pub fn escalate(args: &[u8]) -> MethodResult {
    let req = Id::decode(args)?;
    let mut request = load_request(req.id)?;
    if request.state != RequestState::ProviderReview {
        return Err(Error(format!("request {} is {}, not under review", request.id, request.state.name())));
    }
    if contract::block_time_ms() <= request.deadline_ms {
        return Err(Error(format!("request {} is not overdue before {}", request.id, request.deadline_ms)));
    }
    request.state = RequestState::Escalated;
    REQUESTS.save(&request.id, &request);
    log_request("request.escalated", &request)?;
    Ok(Vec::new())
}

pub fn dispute(args: &[u8]) -> MethodResult {
    let req = with_reason(args)?;
    let mut request = load_request(req.id)?;
    acting(Some(&request.requester_org), role::DATA_CONSUMER | role::ADMIN, "dispute its requests")?;
    if request.state != RequestState::Rejected {
        return Err(Error(format!(
            "request {} is {}; only a rejection can be disputed",
            request.id,
            request.state.name()
        )));
    }
    request.state = RequestState::Disputed;
    request.reason = req.reason;
    REQUESTS.save(&request.id, &request);
    log_request("request.disputed", &request)?;
    Ok(Vec::new())
}

pub fn withdraw(args: &[u8]) -> MethodResult {
    let req = with_reason(args)?;
    let mut request = load_request(req.id)?;
    acting(Some(&request.requester_org), role::DATA_CONSUMER | role::ADMIN, "withdraw its requests")?;
    if request.state != RequestState::ProviderReview && request.state != RequestState::Escalated {
        return Err(Error(format!(
            "request {} is {} and can no longer be withdrawn",
            request.id,
            request.state.name()
        )));
    }
    request.state = RequestState::Withdrawn;
    request.reason = req.reason;
    REQUESTS.save(&request.id, &request);
    log_request("request.withdrawn", &request)?;
    Ok(Vec::new())
}

/// Sets `status` on a grant and every delegation under it.
fn cascade(id: u64, status: GrantStatus, reason: &str, topic: &str) -> Result<(), Error> {
    let mut grant = load_grant(id)?;
    if terminal(grant.status) {
        return Ok(());
    }
    grant.status = status;
    grant.reason = reason.to_string();
    GRANTS.save(&id, &grant);
    log_grant(topic, &grant)?;
    for child in grant.children {
        cascade(child, status, reason, topic)?;
    }
    Ok(())
}

/// Whether a grant can never be used again.
fn terminal(status: GrantStatus) -> bool {
    matches!(status, GrantStatus::Revoked | GrantStatus::Closed | GrantStatus::Superseded)
}

fn provider_of(grant: &Grant, what: &str) -> Result<(), Error> {
    acting(Some(&grant.grantor_org), role::CDO | role::DATA_PROVIDER | role::SECURITY_OFFICER, what).map(|_| ())
}

pub fn suspend(args: &[u8]) -> MethodResult {
    let req = with_reason(args)?;
    let grant = load_grant(req.id)?;
    provider_of(&grant, "suspend its grants")?;
    if grant.status != GrantStatus::Active {
        return Err(Error(format!("grant {} is {}, not active", grant.id, grant.status.name())));
    }
    cascade(grant.id, GrantStatus::Suspended, &req.reason, "grant.suspended")?;
    Ok(Vec::new())
}

pub fn resume(args: &[u8]) -> MethodResult {
    let req = Id::decode(args)?;
    let mut grant = load_grant(req.id)?;
    provider_of(&grant, "resume its grants")?;
    if grant.status != GrantStatus::Suspended {
        return Err(Error(format!("grant {} is {}, not suspended", grant.id, grant.status.name())));
    }
    if let Some(parent) = grant.parent {
        if load_grant(parent)?.status != GrantStatus::Active {
            return Err(Error(format!("grant {}'s parent {} is not active", grant.id, parent)));
        }
    }
    grant.status = GrantStatus::Active;
    grant.reason = String::new();
    GRANTS.save(&grant.id, &grant);
    log_grant("grant.resumed", &grant)?;
    Ok(Vec::new())
}

pub fn revoke(args: &[u8]) -> MethodResult {
    let req = with_reason(args)?;
    let grant = load_grant(req.id)?;
    provider_of(&grant, "revoke its grants")?;
    if terminal(grant.status) {
        return Err(Error(format!("grant {} is already {}", grant.id, grant.status.name())));
    }
    cascade(grant.id, GrantStatus::Revoked, &req.reason, "grant.revoked")?;
    Ok(Vec::new())
}

pub fn delegate(args: &[u8]) -> MethodResult {
    let req = Delegate::decode(args)?;
    let mut parent = load_grant(req.parent)?;
    acting(Some(&parent.grantee_org), role::DATA_CONSUMER | role::ADMIN, "delegate its grants")?;
    if parent.status != GrantStatus::Active || !parent.terms.delegable {
        return Err(Error(format!("grant {} is not an active, delegable grant", parent.id)));
    }
    if parent.depth + 1 > DELEGATION_DEPTH_MAX || parent.children.len() >= DELEGATIONS_MAX {
        return Err(Error::new("too many delegations"));
    }
    let (t, p) = (&req.terms, &parent.terms);
    let within = !t.fields.is_empty()
        && subset(&t.fields, &p.fields)
        && t.methods != 0
        && t.methods & !p.methods == 0
        && !t.purposes.is_empty()
        && t.purposes.iter().all(|tp| p.purposes.iter().any(|pp| purpose_within(tp, pp)))
        && t.not_before_ms >= p.not_before_ms
        && t.not_after_ms <= p.not_after_ms
        && t.not_after_ms > t.not_before_ms
        && t.max_uses >= 1
        && t.max_uses <= p.max_uses.saturating_sub(parent.uses)
        && (p.rate_per_day == 0 || (t.rate_per_day != 0 && t.rate_per_day <= p.rate_per_day))
        && t.duties & p.duties & !duty::PER_USE == p.duties & !duty::PER_USE;
    if !within {
        return Err(Error(format!("a delegation must be a subset of grant {}", parent.id)));
    }
    let org_args = GetOrg { id: req.grantee_org.clone() }.encode();
    if contract::call(&REGISTRY_ADDRESS, "get", &org_args, 0).is_err() {
        return Err(Error(format!("no organisation {}", req.grantee_org)));
    }
    let request = load_request(parent.request)?;
    let sub = AccessRequest { requester_org: req.grantee_org.clone(), ..request };
    let id = issue_grant(&sub, req.terms, Vec::new(), Some(parent.id), parent.depth + 1)?;
    let mut child = load_grant(id)?;
    child.grantor_org = parent.grantor_org.clone();
    GRANTS.save(&id, &child);
    parent.children.push(id);
    GRANTS.save(&parent.id, &parent);
    log_grant("grant.delegated", &child)?;
    Ok(id.encode())
}

pub fn check(args: &[u8]) -> MethodResult {
    let req = Use::decode(args)?;
    let grant = load_grant(req.grant)?;
    let who = member(req.account)?;
    Ok(decide(&grant, &req, who.as_ref(), contract::block_time_ms()).encode())
}

pub fn consume(args: &[u8]) -> MethodResult {
    if contract::caller() != AUDIT_ADDRESS {
        return Err(Error::new("only the audit contract records uses"));
    }
    Ok(use_grant(&Use::decode(args)?)?.0.encode())
}

/// `consume` for an access record: also reserves the grant-history numbers of the entries
/// the audit contract appends about this use in the same transaction (one, plus one for a
/// violation), so that it appends them itself rather than through `append_grant_entry`.
pub fn record_use(args: &[u8]) -> MethodResult {
    if contract::caller() != AUDIT_ADDRESS {
        return Err(Error::new("only the audit contract records uses"));
    }
    let req = Use::decode(args)?;
    let (decision, grant) = use_grant(&req)?;
    let entries = 1 + u64::from(decision.violation);
    let first_seq = GRANT_LOG.load(&req.grant)?.unwrap_or(0);
    GRANT_LOG.save(&req.grant, &(first_seq + entries));
    // The entries' selectors: the grant's resource and organisations, the consumer that
    // asked and the purpose it asked for (the audit contract writes the same).
    let mut like = AuditEntry {
        kind: String::new(),
        grant: grant.id,
        grant_seq: 0,
        seqs: Vec::new(),
        request: grant.request,
        resource: grant.resource,
        provider_org: grant.grantor_org,
        consumer_org: grant.grantee_org,
        principal: req.account,
        purpose: req.purpose,
        body: Vec::new(),
    };
    number_selectors(&mut like, entries)?;
    Ok(Consumed { decision, first_seq, first_seqs: like.seqs }.encode())
}

/// Counts the groups of a gateway's anchored batch against its grant, in order: each
/// group's permitted uses are counted, and what the grant did not allow is answered as
/// excess for the audit contract to record as violations. The audit contract only.
pub fn record_batch(args: &[u8]) -> MethodResult {
    if contract::caller() != AUDIT_ADDRESS {
        return Err(Error::new("only the audit contract records uses"));
    }
    let req = BatchUse::decode(args)?;
    let mut grant = load_grant(req.grant)?;
    let now = contract::block_time_ms();
    let mut out = Vec::with_capacity(req.uses.len());
    let mut counted_any = false;
    for u in &req.uses {
        if u.grant != grant.id {
            return Err(Error(format!("a batch of grant {} counts a use of grant {}", grant.id, u.grant)));
        }
        let who = member(u.account)?;
        let counted: Counted = decide_batch(&grant, u, who.as_ref(), req.period_start_ms, req.period_end_ms, now);
        if counted.permitted > 0 {
            count_use(&mut grant, counted.permitted, now);
            counted_any = true;
        }
        out.push(counted);
    }
    if counted_any {
        GRANTS.save(&grant.id, &grant);
        if grant.uses == grant.terms.max_uses {
            log_grant_by("grant.exhausted", &grant, contract::caller())?;
        }
    }
    Ok(out.encode())
}

/// Decides a use and, if permitted, counts it (logging the grant's exhaustion).
fn use_grant(req: &Use) -> Result<(Decision, Grant), Error> {
    let mut grant = load_grant(req.grant)?;
    let who = member(req.account)?;
    let now = contract::block_time_ms();
    let decision = decide(&grant, req, who.as_ref(), now);
    if decision.permit {
        count_use(&mut grant, req.count, now);
        GRANTS.save(&grant.id, &grant);
        if grant.uses == grant.terms.max_uses {
            log_grant_by("grant.exhausted", &grant, req.account)?;
        }
    }
    Ok((decision, grant))
}

pub fn record_consent(args: &[u8]) -> MethodResult {
    let req = RecordConsent::decode(args)?;
    let me = acting(None, role::DATA_CONSUMER | role::ADMIN, "record consent")?;
    if req.id.is_empty() || req.id.len() > 64 {
        return Err(Error::new("a consent id has 1 to 64 bytes"));
    }
    if !valid_purpose(&req.purpose) {
        return Err(Error(format!("invalid purpose code {:?}", req.purpose)));
    }
    if CONSENTS.has(&req.id) {
        return Err(Error(format!("consent {} already exists", req.id)));
    }
    let consent = Consent {
        id: req.id.clone(),
        grantee_org: me.principal.org,
        subject_ref_hmac: req.subject_ref_hmac,
        resource: req.resource,
        purpose: req.purpose,
        evidence_hash: req.evidence_hash,
        given_ms: contract::block_time_ms(),
        withdrawn: false,
    };
    CONSENTS.save(&req.id, &consent);
    log_consent("consent.recorded", &consent)?;
    Ok(Vec::new())
}

/// Withdraws a consent: every grant resting on it is suspended, with its delegations.
pub fn withdraw_consent(args: &[u8]) -> MethodResult {
    let req = ConsentId::decode(args)?;
    let mut consent = CONSENTS.load(&req.id)?.ok_or_else(|| Error(format!("no consent record {}", req.id)))?;
    acting(Some(&consent.grantee_org), role::DATA_CONSUMER | role::ADMIN, "withdraw its consents")?;
    if consent.withdrawn {
        return Err(Error(format!("consent {} is already withdrawn", req.id)));
    }
    consent.withdrawn = true;
    CONSENTS.save(&req.id, &consent);
    let mut prefix = req.id.as_bytes().to_vec();
    prefix.push(0);
    let reason = format!("consent {} withdrawn", req.id);
    let mut after: Option<Vec<u8>> = Some(prefix.clone());
    loop {
        let page = CONSENT_GRANTS.page(after.as_deref(), 64)?;
        let mut last = None;
        for (key, grant) in &page {
            if !key.starts_with(&prefix) {
                last = None;
                break;
            }
            if load_grant(*grant)?.status == GrantStatus::Active {
                cascade(*grant, GrantStatus::Suspended, &reason, "grant.suspended")?;
            }
            last = Some(key.clone());
        }
        match last {
            Some(key) if page.len() == 64 => after = Some(key),
            _ => break,
        }
    }
    log_consent("consent.withdrawn", &consent)?;
    Ok(Vec::new())
}

pub fn get_consent(args: &[u8]) -> MethodResult {
    let req = ConsentId::decode(args)?;
    Ok(CONSENTS.load(&req.id)?.ok_or_else(|| Error(format!("no consent record {}", req.id)))?.encode())
}

/// Closes the named grants bound to a case that has closed.
pub fn close_case(args: &[u8]) -> MethodResult {
    let req = CloseCase::decode(args)?;
    if req.grants.is_empty() || req.grants.len() > 64 {
        return Err(Error::new("close 1 to 64 grants at a time"));
    }
    for id in &req.grants {
        let grant = load_grant(*id)?;
        if grant.terms.case_ref != Some(req.case_ref) {
            return Err(Error(format!("grant {} is not bound to this case", id)));
        }
        let roles = role::DATA_CONSUMER | role::ADMIN | role::CDO | role::DATA_PROVIDER;
        if acting(Some(&grant.grantee_org), roles, "close its case").is_err() {
            acting(Some(&grant.grantor_org), roles, "close a case of its grants")?;
        }
        cascade(*id, GrantStatus::Closed, "case closed", "grant.closed")?;
    }
    Ok(Vec::new())
}

/// Supersedes a grant with amended terms (the provider's CDO).
pub fn amend(args: &[u8]) -> MethodResult {
    let req = Amend::decode(args)?;
    let mut old = load_grant(req.grant)?;
    acting(Some(&old.grantor_org), role::CDO, "amend its grants")?;
    if old.status != GrantStatus::Active && old.status != GrantStatus::Suspended {
        return Err(Error(format!("grant {} is {} and cannot be amended", old.id, old.status.name())));
    }
    if old.parent.is_some() {
        return Err(Error::new("a delegation is amended by its delegator, not the provider"));
    }
    let request = load_request(old.request)?;
    let t = &req.terms;
    let within = !t.fields.is_empty()
        && subset(&t.fields, &request.request.fields)
        && t.methods != 0
        && t.methods & !request.request.methods == 0
        && !t.purposes.is_empty()
        && t.purposes.iter().all(|p| purpose_within(p, &request.request.purpose))
        && t.not_after_ms > t.not_before_ms
        && t.not_after_ms <= request.request.valid_until_ms
        && t.max_uses >= old.uses
        && t.max_uses <= request.request.max_uses;
    if !within {
        return Err(Error::new("amended terms must lie within the request and keep the uses already made"));
    }
    let id = issue_grant(&request, req.terms, old.approvals.clone(), None, 0)?;
    let mut new = load_grant(id)?;
    new.uses = old.uses;
    new.day = old.day;
    new.day_uses = old.day_uses;
    GRANTS.save(&id, &new);
    let children = old.children.clone();
    old.status = GrantStatus::Superseded;
    old.superseded_by = Some(id);
    old.reason = format!("superseded by grant {}", id);
    GRANTS.save(&old.id, &old);
    for child in children {
        cascade(child, GrantStatus::Superseded, &format!("parent superseded by grant {}", id), "grant.superseded")?;
    }
    log_grant("grant.superseded", &old)?;
    Ok(id.encode())
}

pub fn get_request(args: &[u8]) -> MethodResult {
    Ok(load_request(Id::decode(args)?.id)?.encode())
}

pub fn get_grant(args: &[u8]) -> MethodResult {
    Ok(load_grant(Id::decode(args)?.id)?.encode())
}

#[cfg(test)]
mod tests {
    use super::*;
    use shutong_contract::testing;
    use shutong_system_api::authz::{Decision, DAY_MS};
    use shutong_system_api::catalog::{method, Field};
    use shutong_system_api::registry::{Org, OrgKind, OrgStatus, Principal, PrincipalKind, PrincipalStatus};
    use std::cell::RefCell;

    const CDO: [u8; 32] = [1; 32];
    const SECURITY: [u8; 32] = [2; 32];
    const PROVIDER: [u8; 32] = [3; 32];
    const CONSUMER: [u8; 32] = [4; 32];
    const PARTNER: [u8; 32] = [5; 32];
    const STRANGER: [u8; 32] = [6; 32];
    const DAY: u64 = DAY_MS;

    thread_local! {
        static PURPOSE_BASES: RefCell<u8> = RefCell::new(shutong_system_api::governance::basis::ALL);
        static CLASSIFICATION: RefCell<(Classification, ShareType)> = RefCell::new((Classification::Important, ShareType::Conditional));
    }

    fn principal(account: [u8; 32]) -> Option<(&'static str, u32)> {
        match account {
            CDO => Some(("market", role::CDO)),
            SECURITY => Some(("market", role::SECURITY_OFFICER)),
            PROVIDER => Some(("market", role::DATA_PROVIDER)),
            CONSUMER => Some(("acme", role::DATA_CONSUMER)),
            PARTNER => Some(("partner", role::DATA_CONSUMER)),
            _ => None,
        }
    }

    /// The registry's storage, for the native host: the principals above and their orgs.
    fn registry_storage(address: &[u8; 32], key: &[u8]) -> Option<Vec<u8>> {
        assert_eq!(*address, REGISTRY_ADDRESS, "unexpected read of another contract's storage");
        if let Some(account) = key.strip_prefix(b"principal/".as_slice()) {
            let account: [u8; 32] = account.try_into().unwrap();
            let (org, roles) = principal(account)?;
            let principal = Principal {
                account,
                org: org.into(),
                kind: PrincipalKind::Person,
                roles,
                status: PrincipalStatus::Active,
                rotated_to: None,
                updated_height: 1,
            };
            return Some(principal.encode());
        }
        let id = std::str::from_utf8(key.strip_prefix(b"org/".as_slice())?).unwrap();
        let kind = if id == "market" { OrgKind::Department } else { OrgKind::Enterprise };
        let org = Org {
            id: id.into(),
            name: id.into(),
            kind,
            status: OrgStatus::Active,
            admin: [0; 32],
            registered_height: 1,
            updated_height: 1,
        };
        Some(org.encode())
    }

    /// The registry and the catalog, for the native host.
    fn world(address: &[u8; 32], method: &str, args: &[u8]) -> (i64, Vec<u8>) {
        let reply = |bytes: Vec<u8>| (bytes.len() as i64, bytes);
        if *address == REGISTRY_ADDRESS && method == "get_policy" {
            return (-1, b"no policy".to_vec());
        }
        if *address == REGISTRY_ADDRESS && method == "get" {
            let id = GetOrg::decode(args).unwrap().id;
            return if ["market", "acme", "partner"].contains(&id.as_str()) {
                reply(Vec::new())
            } else {
                (-1, b"no".to_vec())
            };
        }
        if *address == GOVERNANCE_ADDRESS && method == "resolve_purpose" {
            let code = ResolvePurpose::decode(args).unwrap().code;
            if !code.starts_with("licensing") {
                return (-1, b"not in the catalogue".to_vec());
            }
            let def = PurposeDef {
                code: "licensing".into(),
                legal_bases: PURPOSE_BASES.with(|b| *b.borrow()),
                description: String::new(),
            };
            return reply(def.encode());
        }
        if *address == CATALOG_ADDRESS && method == "get" {
            let (classification, share_type) = CLASSIFICATION.with(|c| *c.borrow());
            let field = |name: &str| Field {
                name: name.into(),
                data_type: "string".into(),
                classification: Classification::General,
                masking: String::new(),
                element: None,
            };
            let resource = Resource {
                code: "market/licence".into(),
                version: 1,
                provider_org: "market".into(),
                source_system: "db".into(),
                classification,
                personal_data: false,
                share_type,
                conditions: "x".into(),
                methods: method::QUERY | method::VERIFY,
                fields: vec![field("uscc"), field("name"), field("legal_rep")],
                metadata_hash: [0; 32],
                status: ResourceStatus::Published,
                publisher: PROVIDER,
                published_height: 1,
                updated_height: 1,
            };
            return reply(resource.encode());
        }
        panic!("unexpected call {} on {:?}", method, address)
    }

    fn setup(classification: Classification, share_type: ShareType) {
        testing::reset();
        testing::with_host(|h| {
            h.call_handler = Some(world);
            h.read_handler = Some(registry_storage);
        });
        CLASSIFICATION.with(|c| *c.borrow_mut() = (classification, share_type));
        testing::set_time_ms(1_000);
    }

    fn as_(account: [u8; 32]) {
        testing::set_context(account, 10);
    }

    fn ask(fields: &[&str]) -> u64 {
        ask_for(fields, 3)
    }

    fn ask_for(fields: &[&str], max_uses: u64) -> u64 {
        as_(CONSUMER);
        let req = RequestAccess {
            resource: "market/licence".into(),
            fields: fields.iter().map(|f| f.to_string()).collect(),
            methods: method::QUERY,
            purpose: "licensing.renewal".into(),
            legal_basis: shutong_system_api::authz::LegalBasis::DutyMandate,
            legal_doc_hash: [7; 32],
            matter_code: "310000-001".into(),
            valid_until_ms: 100 * DAY,
            max_uses,
            justification_hash: [8; 32],
            consent: None,
        };
        u64::decode(&request(&req.encode()).unwrap()).unwrap()
    }

    fn terms(fields: &[&str]) -> Terms {
        Terms {
            fields: fields.iter().map(|f| f.to_string()).collect(),
            methods: method::QUERY,
            purposes: vec!["licensing.renewal".into()],
            not_before_ms: 1_000,
            not_after_ms: 50 * DAY,
            max_uses: 3,
            rate_per_day: 2,
            case_ref: None,
            duties: duty::LOG_USAGE | duty::NO_ONWARD_TRANSFER,
            delegable: true,
            policy_hash: [9; 32],
        }
    }

    fn approve_as(account: [u8; 32], request_id: u64, t: Terms) -> MethodResult {
        as_(account);
        approve(&Approve { request: request_id, terms: t }.encode())
    }

    fn use_of(grant: u64, account: [u8; 32], fields: &[&str], purpose: &str, count: u64) -> Use {
        Use {
            grant,
            account,
            fields: fields.iter().map(|f| f.to_string()).collect(),
            method: method::QUERY,
            purpose: purpose.into(),
            count,
        }
    }

    fn decision(u: &Use) -> Decision {
        Decision::decode(&check(&u.encode()).unwrap()).unwrap()
    }

    fn consume_as_audit(u: &Use) -> Decision {
        testing::set_context(AUDIT_ADDRESS, 10);
        Decision::decode(&consume(&u.encode()).unwrap()).unwrap()
    }

    #[test]
    fn important_data_needs_the_cdo_and_the_security_officer_and_may_be_partly_approved() {
        setup(Classification::Important, ShareType::Conditional);
        let id = ask(&["uscc", "name", "legal_rep"]);
        let r = AccessRequest::decode(&get_request(&Id { id }.encode()).unwrap()).unwrap();
        assert_eq!((r.state, r.deadline_ms), (RequestState::ProviderReview, 1_000 + REVIEW_MS));
        // A data provider alone cannot approve important data.
        assert!(approve_as(PROVIDER, id, terms(&["uscc", "name"]))
            .unwrap_err()
            .0
            .starts_with("only an acting cdo or security_officer"));
        assert_eq!(approve_as(CDO, id, terms(&["uscc", "name"])), Ok(None::<u64>.encode()));
        assert_eq!(
            approve_as(CDO, id, terms(&["uscc", "name"])),
            Err(Error::new("this principal has already approved"))
        );
        assert_eq!(
            approve_as(SECURITY, id, terms(&["uscc"])),
            Err(Error::new("these terms differ from the ones already approved"))
        );
        assert_eq!(approve_as(SECURITY, id, terms(&["uscc", "name"])), Ok(Some(1u64).encode()));
        let r = AccessRequest::decode(&get_request(&Id { id }.encode()).unwrap()).unwrap();
        assert_eq!((r.state, r.grant), (RequestState::PartiallyApproved, Some(1)));
        let g = Grant::decode(&get_grant(&Id { id: 1 }.encode()).unwrap()).unwrap();
        assert_eq!((g.grantor_org.as_str(), g.grantee_org.as_str(), g.approvals.len()), ("market", "acme", 2));
    }

    #[test]
    fn general_data_needs_one_approval_and_unconditional_data_none() {
        setup(Classification::General, ShareType::Conditional);
        let id = ask(&["uscc"]);
        assert_eq!(approve_as(PROVIDER, id, terms(&["uscc"])), Ok(Some(1u64).encode()));
        setup(Classification::General, ShareType::Unconditional);
        let id = ask(&["uscc"]);
        let r = AccessRequest::decode(&get_request(&Id { id }.encode()).unwrap()).unwrap();
        assert_eq!((r.state, r.grant), (RequestState::AutoApproved, Some(1)));
        setup(Classification::General, ShareType::NotShared);
        as_(CONSUMER);
        let req = RequestAccess {
            resource: "market/licence".into(),
            fields: vec!["uscc".into()],
            methods: method::QUERY,
            purpose: "p".into(),
            legal_basis: shutong_system_api::authz::LegalBasis::Statute,
            legal_doc_hash: [0; 32],
            matter_code: String::new(),
            valid_until_ms: 5_000,
            max_uses: 1,
            justification_hash: [0; 32],
            consent: None,
        };
        assert_eq!(request(&req.encode()), Err(Error::new("resource market/licence is not shared")));
    }

    #[test]
    fn a_request_needs_a_catalogued_purpose_and_an_allowed_legal_basis() {
        setup(Classification::General, ShareType::Conditional);
        PURPOSE_BASES.with(|b| *b.borrow_mut() = shutong_system_api::governance::basis::STATUTE);
        as_(CONSUMER);
        let mut req = RequestAccess {
            resource: "market/licence".into(),
            fields: vec!["uscc".into()],
            methods: method::QUERY,
            purpose: "marketing".into(),
            legal_basis: shutong_system_api::authz::LegalBasis::Statute,
            legal_doc_hash: [0; 32],
            matter_code: String::new(),
            valid_until_ms: 100 * DAY,
            max_uses: 1,
            justification_hash: [0; 32],
            consent: None,
        };
        assert_eq!(request(&req.encode()), Err(Error::new("purpose marketing is not in the purpose catalogue")));
        req.purpose = "licensing.renewal".into();
        req.legal_basis = shutong_system_api::authz::LegalBasis::Contract;
        assert_eq!(
            request(&req.encode()),
            Err(Error::new("purpose licensing does not rest on the contract legal basis"))
        );
        req.legal_basis = shutong_system_api::authz::LegalBasis::Statute;
        assert!(request(&req.encode()).is_ok());
    }

    #[test]
    fn requests_are_rejected_with_reasons_escalated_disputed_and_withdrawn() {
        setup(Classification::Important, ShareType::Conditional);
        let id = ask(&["uscc"]);
        as_(CDO);
        let empty = WithReason { id, reason: " ".into() };
        assert_eq!(reject(&empty.encode()), Err(Error::new("a reason of 1 to 256 bytes is required")));
        as_(STRANGER);
        assert_eq!(
            escalate(&Id { id }.encode()),
            Err(Error(format!("request {} is not overdue before {}", id, 1_000 + REVIEW_MS)))
        );
        testing::set_time_ms(2_000 + REVIEW_MS);
        escalate(&Id { id }.encode()).unwrap();
        as_(CDO);
        reject(&WithReason { id, reason: "no legal basis for legal_rep".into() }.encode()).unwrap();
        as_(STRANGER);
        assert!(dispute(&WithReason { id, reason: "we have one".into() }.encode()).is_err());
        as_(CONSUMER);
        dispute(&WithReason { id, reason: "the mandate is attached".into() }.encode()).unwrap();
        let r = AccessRequest::decode(&get_request(&Id { id }.encode()).unwrap()).unwrap();
        assert_eq!((r.state, r.reason.as_str()), (RequestState::Disputed, "the mandate is attached"));
        let second = ask(&["name"]);
        withdraw(&WithReason { id: second, reason: "no longer needed".into() }.encode()).unwrap();
        assert!(approve_as(CDO, second, terms(&["name"])).unwrap_err().0.contains("withdrawn, not under review"));
    }

    #[test]
    fn uses_are_checked_against_scope_limits_and_state_and_counted_only_by_the_audit_contract() {
        setup(Classification::General, ShareType::Conditional);
        let id = ask(&["uscc", "name"]);
        approve_as(PROVIDER, id, terms(&["uscc", "name"])).unwrap();
        let grant = 1;
        testing::set_time_ms(2 * DAY);
        assert!(decision(&use_of(grant, CONSUMER, &["uscc"], "licensing.renewal.online", 1)).permit, "a sub-purpose");
        let outside = decision(&use_of(grant, CONSUMER, &["uscc"], "marketing", 1));
        assert!(!outside.permit && outside.violation && outside.reason.contains("outside the granted purposes"));
        let field = decision(&use_of(grant, CONSUMER, &["legal_rep"], "licensing.renewal", 1));
        assert!(!field.permit && field.violation);
        let stranger = decision(&use_of(grant, PARTNER, &["uscc"], "licensing.renewal", 1));
        assert!(!stranger.permit && stranger.violation);
        // Only the audit contract counts uses; the rate limit is 2 a day, max uses 3.
        as_(CONSUMER);
        assert_eq!(
            consume(&use_of(grant, CONSUMER, &["uscc"], "licensing.renewal", 1).encode()),
            Err(Error::new("only the audit contract records uses"))
        );
        assert!(consume_as_audit(&use_of(grant, CONSUMER, &["uscc"], "licensing.renewal", 2)).permit);
        let rate = consume_as_audit(&use_of(grant, CONSUMER, &["uscc"], "licensing.renewal", 1));
        assert!(!rate.permit && !rate.violation && rate.reason.contains("uses a day"));
        testing::set_time_ms(3 * DAY);
        assert!(consume_as_audit(&use_of(grant, CONSUMER, &["uscc"], "licensing.renewal", 1)).permit);
        let exhausted = consume_as_audit(&use_of(grant, CONSUMER, &["uscc"], "licensing.renewal", 1));
        assert!(!exhausted.permit && exhausted.reason.contains("exhausted (3 of 3 uses)"));
        assert_eq!(testing::take_events().last().unwrap().0, "grant.exhausted");
        testing::set_time_ms(51 * DAY);
        assert!(decision(&use_of(grant, CONSUMER, &["uscc"], "licensing.renewal", 0)).reason.contains("expired"));
    }

    #[test]
    fn record_use_counts_and_reserves_the_audit_contracts_entry_numbers() {
        setup(Classification::General, ShareType::Conditional);
        let id = ask(&["uscc", "name"]);
        approve_as(PROVIDER, id, terms(&["uscc", "name"])).unwrap();
        let grant = 1;
        testing::set_time_ms(2 * DAY);
        let logged = GRANT_LOG.load(&grant).unwrap().unwrap();
        as_(CONSUMER);
        assert_eq!(
            record_use(&use_of(grant, CONSUMER, &["uscc"], "licensing.renewal", 1).encode()),
            Err(Error::new("only the audit contract records uses"))
        );
        testing::set_context(AUDIT_ADDRESS, 10);
        let record = |u: &Use| Consumed::decode(&record_use(&u.encode()).unwrap()).unwrap();
        // A permitted use: counted, one number reserved.
        let permitted = record(&use_of(grant, CONSUMER, &["uscc"], "licensing.renewal", 1));
        assert!(permitted.decision.permit);
        assert_eq!(permitted.first_seq, logged);
        assert_eq!(load_grant(grant).unwrap().uses, 1);
        // A violation candidate: not counted, two numbers (the violation and the access).
        let outside = record(&use_of(grant, CONSUMER, &["uscc"], "marketing", 1));
        assert!(!outside.decision.permit && outside.decision.violation);
        assert_eq!(outside.first_seq, logged + 1);
        assert_eq!(GRANT_LOG.load(&grant).unwrap(), Some(logged + 3));
        assert_eq!(load_grant(grant).unwrap().uses, 1);
        // An unknown grant is refused, nothing reserved.
        assert!(record_use(&use_of(99, CONSUMER, &["uscc"], "licensing.renewal", 1).encode()).is_err());
        assert_eq!(GRANT_LOG.load(&99).unwrap(), None);
    }

    #[test]
    fn every_entry_is_numbered_in_each_selector_it_answers_without_gaps() {
        use shutong_system_api::audit::Selector;
        setup(Classification::General, ShareType::Conditional);
        testing::take_audit();
        let id = ask(&["uscc", "name"]);
        approve_as(PROVIDER, id, terms(&["uscc", "name"])).unwrap();
        testing::set_context(AUDIT_ADDRESS, 10);
        let reserved = Consumed::decode(
            &record_use(&use_of(1, CONSUMER, &["uscc"], "licensing.renewal.online", 1).encode()).unwrap(),
        )
        .unwrap();
        let entries: Vec<AuditEntry> =
            testing::take_audit().iter().map(|leaf| AuditEntry::from_leaf(leaf).unwrap()).collect();
        let kinds: Vec<&str> = entries.iter().map(|e| e.kind.as_str()).collect();
        assert_eq!(kinds, ["request.submitted", "grant.issued", "request.approved"]);
        let resource = Selector::Resource("market/licence".into());
        let seqs: Vec<Option<u64>> = entries.iter().map(|e| e.seq_of(&resource)).collect();
        assert_eq!(seqs, [Some(0), Some(1), Some(2)], "the resource's sequence has no gap");
        let renewal = Selector::Purpose("licensing.renewal".into());
        let root = Selector::Purpose("licensing".into());
        assert_eq!(entries[2].seq_of(&renewal), Some(2));
        assert_eq!(entries[2].seq_of(&root), Some(2), "a purpose's ancestors are numbered too");
        assert_eq!(entries[2].seq_of(&Selector::Purpose("licensing.renewal.online".into())), None);
        // The use the audit contract records next takes the next numbers, its purpose's too.
        let like = AuditEntry {
            kind: String::new(),
            grant: 1,
            grant_seq: 0,
            seqs: reserved.first_seqs.clone(),
            request: 1,
            resource: "market/licence".into(),
            provider_org: "market".into(),
            consumer_org: "acme".into(),
            principal: CONSUMER,
            purpose: "licensing.renewal.online".into(),
            body: Vec::new(),
        };
        assert_eq!(like.seq_of(&resource), Some(3));
        assert_eq!(like.seq_of(&root), Some(3));
        assert_eq!(like.seq_of(&Selector::Purpose("licensing.renewal.online".into())), Some(0));
        let count = |s: &Selector| u64::decode(&contract::storage_get(&selector_count_key(s)).unwrap()).unwrap();
        assert_eq!((count(&resource), count(&root), count(&Selector::Org("market".into()))), (4, 4, 4));
    }

    #[test]
    fn a_batch_counts_what_the_grant_allows_and_names_the_excess() {
        setup(Classification::General, ShareType::Conditional);
        let id = ask_for(&["uscc"], 500);
        approve_as(PROVIDER, id, Terms { max_uses: 200, rate_per_day: 0, ..terms(&["uscc"]) }).unwrap();
        assert_eq!(load_grant(1).unwrap().terms.duties & duty::PER_USE, 0, "a large grant over general data");
        let small = ask(&["uscc"]);
        approve_as(PROVIDER, small, terms(&["uscc"])).unwrap();
        assert_ne!(load_grant(2).unwrap().terms.duties & duty::PER_USE, 0, "3 uses are consumed one by one");
        testing::set_time_ms(2 * DAY);
        let batch = |grant: u64, uses: Vec<Use>| {
            let args = BatchUse { grant, period_start_ms: DAY, period_end_ms: 2 * DAY, uses };
            record_batch(&args.encode()).map(|out| Vec::<Counted>::decode(&out).unwrap())
        };
        let renewal = |count| use_of(1, CONSUMER, &["uscc"], "licensing.renewal", count);
        as_(CONSUMER);
        assert_eq!(batch(1, vec![renewal(1)]), Err(Error::new("only the audit contract records uses")));
        testing::set_context(AUDIT_ADDRESS, 10);
        let got = batch(1, vec![renewal(150), renewal(100), use_of(1, CONSUMER, &["uscc"], "marketing", 5)]).unwrap();
        let counted = |permitted, excess, reason: &str| Counted { permitted, excess, reason: reason.into() };
        assert_eq!(
            got,
            vec![
                counted(150, 0, ""),
                counted(50, 50, "grant 1 allowed 50 more of 200 uses; 50 uses beyond"),
                counted(0, 5, "purpose marketing is outside the granted purposes"),
            ]
        );
        assert_eq!(load_grant(1).unwrap().uses, 200, "the permitted uses are counted, never more than the grant");
        assert_eq!(
            batch(1, vec![renewal(1)]).unwrap(),
            vec![counted(0, 1, "grant 1 allowed 0 more of 200 uses; 1 uses beyond")]
        );
        let per_use = batch(2, vec![use_of(2, CONSUMER, &["uscc"], "licensing.renewal", 2)]).unwrap();
        assert_eq!(per_use, vec![counted(0, 2, "grant 2 is consumed use by use; 2 uses were batched")]);
        assert_eq!(load_grant(2).unwrap().uses, 0);
        assert_eq!(
            batch(1, vec![use_of(2, CONSUMER, &["uscc"], "licensing.renewal", 1)]),
            Err(Error::new("a batch of grant 1 counts a use of grant 2"))
        );
    }

    #[test]
    fn delegations_are_subsets_and_fall_with_their_parent() {
        setup(Classification::General, ShareType::Conditional);
        let id = ask(&["uscc", "name"]);
        approve_as(PROVIDER, id, terms(&["uscc", "name"])).unwrap();
        as_(CONSUMER);
        let mut wider = terms(&["uscc", "legal_rep"]);
        let too_wide = Delegate { parent: 1, grantee_org: "partner".into(), terms: wider.clone() };
        assert_eq!(delegate(&too_wide.encode()), Err(Error::new("a delegation must be a subset of grant 1")));
        wider.fields = vec!["uscc".into()];
        wider.max_uses = 2;
        wider.purposes = vec!["licensing.renewal.online".into()];
        let ok = Delegate { parent: 1, grantee_org: "partner".into(), terms: wider.clone() };
        assert_eq!(delegate(&ok.encode()), Ok(2u64.encode()));
        let nowhere = Delegate { parent: 1, grantee_org: "nobody".into(), terms: wider };
        assert_eq!(delegate(&nowhere.encode()), Err(Error::new("no organisation nobody")));
        testing::set_time_ms(2 * DAY);
        assert!(decision(&use_of(2, PARTNER, &["uscc"], "licensing.renewal.online", 1)).permit);
        // Revoking the parent revokes the delegation.
        as_(PROVIDER);
        assert_eq!(
            revoke(&WithReason { id: 1, reason: "".into() }.encode()),
            Err(Error::new("a reason of 1 to 256 bytes is required"))
        );
        revoke(&WithReason { id: 1, reason: "misuse reported".into() }.encode()).unwrap();
        let child = decision(&use_of(2, PARTNER, &["uscc"], "licensing.renewal.online", 1));
        assert_eq!(child.reason, "grant 2 is revoked");
        assert_eq!(
            revoke(&WithReason { id: 1, reason: "again".into() }.encode()),
            Err(Error::new("grant 1 is already revoked"))
        );
        as_(CONSUMER);
        assert!(suspend(&WithReason { id: 1, reason: "x".into() }.encode())
            .unwrap_err()
            .0
            .starts_with("only an acting"));
    }

    #[test]
    fn suspension_pauses_a_grant_and_its_delegations_until_resumed() {
        setup(Classification::General, ShareType::Conditional);
        let id = ask(&["uscc"]);
        approve_as(PROVIDER, id, terms(&["uscc"])).unwrap();
        testing::set_time_ms(2 * DAY);
        as_(PROVIDER);
        suspend(&WithReason { id: 1, reason: "audit pending".into() }.encode()).unwrap();
        assert_eq!(decision(&use_of(1, CONSUMER, &["uscc"], "licensing.renewal", 1)).reason, "grant 1 is suspended");
        resume(&Id { id: 1 }.encode()).unwrap();
        assert!(decision(&use_of(1, CONSUMER, &["uscc"], "licensing.renewal", 1)).permit);
        assert_eq!(resume(&Id { id: 1 }.encode()), Err(Error::new("grant 1 is active, not suspended")));
    }

    fn consent_request(consent: Option<&str>, basis: shutong_system_api::authz::LegalBasis) -> MethodResult {
        as_(CONSUMER);
        let req = RequestAccess {
            resource: "market/licence".into(),
            fields: vec!["uscc".into()],
            methods: method::QUERY,
            purpose: "licensing.renewal".into(),
            legal_basis: basis,
            legal_doc_hash: [0; 32],
            matter_code: String::new(),
            valid_until_ms: 100 * DAY,
            max_uses: 3,
            justification_hash: [0; 32],
            consent: consent.map(String::from),
        };
        request(&req.encode())
    }

    #[test]
    fn withdrawing_consent_suspends_the_grants_that_rest_on_it() {
        use shutong_system_api::authz::{Consent, ConsentId, LegalBasis, RecordConsent};
        setup(Classification::General, ShareType::Conditional);
        assert_eq!(
            consent_request(None, LegalBasis::Consent),
            Err(Error::new("a request on the consent basis names its consent record"))
        );
        assert_eq!(consent_request(Some("c-1"), LegalBasis::Consent), Err(Error::new("no consent record c-1")));
        assert_eq!(
            consent_request(Some("c-1"), LegalBasis::Statute),
            Err(Error::new("a consent record is named only on the consent legal basis"))
        );
        as_(CONSUMER);
        let record = |purpose: &str, id: &str| RecordConsent {
            id: id.into(),
            subject_ref_hmac: [1; 32],
            resource: "market/licence".into(),
            purpose: purpose.into(),
            evidence_hash: [2; 32],
        };
        record_consent(&record("licensing", "c-1").encode()).unwrap();
        assert_eq!(record_consent(&record("licensing", "c-1").encode()), Err(Error::new("consent c-1 already exists")));
        record_consent(&record("tax", "c-narrow").encode()).unwrap();
        assert_eq!(
            consent_request(Some("c-narrow"), LegalBasis::Consent),
            Err(Error::new("consent c-narrow does not cover this organisation, resource and purpose"))
        );
        let id = u64::decode(&consent_request(Some("c-1"), LegalBasis::Consent).unwrap()).unwrap();
        approve_as(PROVIDER, id, terms(&["uscc"])).unwrap();
        testing::set_time_ms(2 * DAY);
        assert!(decision(&use_of(1, CONSUMER, &["uscc"], "licensing.renewal", 1)).permit);
        as_(PROVIDER);
        assert!(withdraw_consent(&ConsentId { id: "c-1".into() }.encode())
            .unwrap_err()
            .0
            .starts_with("only an acting"));
        as_(CONSUMER);
        withdraw_consent(&ConsentId { id: "c-1".into() }.encode()).unwrap();
        assert_eq!(decision(&use_of(1, CONSUMER, &["uscc"], "licensing.renewal", 1)).reason, "grant 1 is suspended");
        let g = Grant::decode(&get_grant(&Id { id: 1 }.encode()).unwrap()).unwrap();
        assert_eq!(g.reason, "consent c-1 withdrawn");
        let c = Consent::decode(&get_consent(&ConsentId { id: "c-1".into() }.encode()).unwrap()).unwrap();
        assert!(c.withdrawn);
        assert_eq!(consent_request(Some("c-1"), LegalBasis::Consent), Err(Error::new("consent c-1 was withdrawn")));
    }

    #[test]
    fn closing_a_case_closes_its_grants_and_amending_supersedes() {
        use shutong_system_api::authz::{Amend, CloseCase};
        setup(Classification::General, ShareType::Conditional);
        let id = ask(&["uscc", "name"]);
        let mut bound = terms(&["uscc"]);
        bound.case_ref = Some([42; 32]);
        approve_as(PROVIDER, id, bound).unwrap();
        as_(CONSUMER);
        let wrong = CloseCase { case_ref: [41; 32], grants: vec![1] };
        assert_eq!(close_case(&wrong.encode()), Err(Error::new("grant 1 is not bound to this case")));
        close_case(&CloseCase { case_ref: [42; 32], grants: vec![1] }.encode()).unwrap();
        testing::set_time_ms(2 * DAY);
        assert_eq!(decision(&use_of(1, CONSUMER, &["uscc"], "licensing.renewal", 1)).reason, "grant 1 is closed");

        // Amendment: the CDO supersedes a grant; uses carry over.
        let id = ask(&["uscc", "name"]);
        approve_as(PROVIDER, id, terms(&["uscc"])).unwrap();
        assert!(consume_as_audit(&use_of(2, CONSUMER, &["uscc"], "licensing.renewal", 1)).permit);
        let wider = Amend { grant: 2, terms: terms(&["uscc", "name"]) };
        as_(PROVIDER);
        assert!(amend(&wider.encode()).unwrap_err().0.starts_with("only an acting cdo"));
        as_(CDO);
        let mut beyond = terms(&["uscc", "name"]);
        beyond.max_uses = 99;
        assert_eq!(
            amend(&Amend { grant: 2, terms: beyond }.encode()),
            Err(Error::new("amended terms must lie within the request and keep the uses already made"))
        );
        assert_eq!(amend(&wider.encode()), Ok(3u64.encode()));
        let old = Grant::decode(&get_grant(&Id { id: 2 }.encode()).unwrap()).unwrap();
        assert_eq!((old.status, old.superseded_by), (GrantStatus::Superseded, Some(3)));
        let new = Grant::decode(&get_grant(&Id { id: 3 }.encode()).unwrap()).unwrap();
        assert_eq!((new.uses, new.terms.fields.len()), (1, 2));
        assert_eq!(decision(&use_of(2, CONSUMER, &["uscc"], "licensing.renewal", 1)).reason, "grant 2 is superseded");
        assert!(decision(&use_of(3, CONSUMER, &["name"], "licensing.renewal", 1)).permit);
    }
}
