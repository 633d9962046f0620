//! Authorisation: access requests and their lifecycle, grants, delegations and the check a
//! gateway makes before data leaves a department (domain.md, Lifecycles).
//!
//! Rules (the authz contract enforces them, each with its own error):
//! - A request is made by an acting `data_consumer` of an organisation, for a published
//!   resource that is shared, for fields and methods the resource offers, with a purpose code
//!   and a legal basis. A `not_shared` resource refuses requests.
//! - Unconditional resources are granted at once (AutoApproved); conditional ones go to
//!   provider review with a deadline in consensus time (`REVIEW_MS`).
//! - Approval route by classification: general data needs one approval by a `cdo` or
//!   `data_provider` of the provider; important data needs both a `cdo` and a
//!   `security_officer` of the provider, approving the same terms. Approving fewer fields
//!   than asked is a partial approval. A rejection needs a reason.
//! - A request under review past its deadline may be escalated by anyone; a rejected one may
//!   be disputed by the requester; a pending one may be withdrawn by the requester.
//! - A grant permits its grantee's principals to use the granted fields and methods for a
//!   purpose in the subtree of a granted purpose (`a.b` covers `a.b` and `a.b.c`), between
//!   not-before and not-after, up to max uses, within a daily rate limit.
//! - The provider suspends, resumes and revokes (with a reason) grants; revoking or
//!   suspending a grant does the same to its delegations.
//! - A delegable grant may be delegated by its grantee to another organisation, always a
//!   subset: fields, methods and purposes within the parent's, validity within the parent's,
//!   uses within what the parent has left.
//! - Uses are counted only by the audit contract (`consume`), when it records an access, or
//!   (`record_batch`) when it records a gateway's anchored batch: [`decide_batch`] counts
//!   what the grant allowed and names the excess.
//! - Grants over important or core data, and grants of at most [`PER_USE_MAX_USES`] uses,
//!   carry `duty::PER_USE`: each use is recorded singly, and any batched use is excess.
//! - Consent (when it is the legal basis): the consumer records the data subject's consent
//!   for a resource and purpose (`record_consent`); a request on the consent basis must name
//!   a live consent of its organisation covering its resource and purpose; withdrawing the
//!   consent suspends every grant that rests on it.
//! - A grant bound to a case (`terms.case_ref`) is closed, with its delegations, when the
//!   case is closed (`close_case`, by the grantee or the provider).
//! - The provider's CDO amends a grant by superseding it: a new grant with new terms (within
//!   the request) carries the uses over, and the old one and its delegations are superseded.

pub const REQUEST_TEXT_BYTES_MAX: u32 = 256;
/// How long a provider has to answer a conditional request: 10 days of consensus time.
pub const REVIEW_MS: u64 = 10 * 24 * 3600 * 1000;
/// The most delegations of one grant.
pub const DELEGATIONS_MAX: usize = 16;
/// How deep delegations may nest.
pub const DELEGATION_DEPTH_MAX: u32 = 3;
/// A day, for rate limits.
pub const DAY_MS: u64 = 24 * 3600 * 1000;

/// Duties a grant imposes on its grantee, as bits.
pub mod duty {
    pub const LOG_USAGE: u32 = 1 << 0;
    pub const DELETE_AFTER_USE: u32 = 1 << 1;
    pub const NO_ONWARD_TRANSFER: u32 = 1 << 2;
    pub const MASKING: u32 = 1 << 3;
    /// Every access event under the grant carries the consumer gateway's signature too.
    pub const COSIGNED_EVENTS: u32 = 1 << 4;
    /// Every use is recorded on chain one by one (`audit.record`), never in a gateway's
    /// batch. The authz contract sets it on every grant over important or core data and on
    /// every grant of at most [`super::PER_USE_MAX_USES`] uses.
    pub const PER_USE: u32 = 1 << 5;
    pub const ALL: u32 = (1 << 6) - 1;
}

/// Grants of at most this many uses are consumed use by use (`duty::PER_USE`).
pub const PER_USE_MAX_USES: u64 = 100;

shutong_codec::codec_enum! {
    /// The legal basis of a request.
    #[derive(Debug, Clone, Copy, PartialEq, Eq)]
    pub enum LegalBasis { Statute = 0 => "statute", DutyMandate = 1 => "duty_mandate", Consent = 2 => "consent", Contract = 3 => "contract" }
}

shutong_codec::codec_enum! {
    #[derive(Debug, Clone, Copy, PartialEq, Eq)]
    pub enum RequestState {
        ProviderReview = 0 => "provider_review",
        AutoApproved = 1 => "auto_approved",
        Approved = 2 => "approved",
        PartiallyApproved = 3 => "partially_approved",
        Rejected = 4 => "rejected",
        Escalated = 5 => "escalated",
        Disputed = 6 => "disputed",
        Withdrawn = 7 => "withdrawn",
    }
}

shutong_codec::codec_enum! {
    #[derive(Debug, Clone, Copy, PartialEq, Eq)]
    pub enum GrantStatus {
        Active = 0 => "active",
        Suspended = 1 => "suspended",
        Revoked = 2 => "revoked",
        /// Its case was closed.
        Closed = 3 => "closed",
        /// Replaced by an amended grant (`superseded_by`).
        Superseded = 4 => "superseded",
    }
}

shutong_codec::codec_struct! {
    /// Arguments of `request`.
    #[derive(Debug, Clone, PartialEq, Eq)]
    pub struct RequestAccess {
        pub resource: String,
        pub fields: Vec<String>,
        /// `catalog::method` bits.
        pub methods: u8,
        pub purpose: String,
        pub legal_basis: LegalBasis,
        /// The hash of the legal-basis document (kept off chain).
        pub legal_doc_hash: [u8; 32],
        /// The service matter (事项) the data is for.
        pub matter_code: String,
        pub valid_until_ms: u64,
        pub max_uses: u64,
        pub justification_hash: [u8; 32],
        /// The consent record the request rests on (legal basis `consent` only).
        pub consent: Option<String>,
    }
}

shutong_codec::codec_struct! {
    /// An access request and where it stands.
    #[derive(Debug, Clone, PartialEq, Eq)]
    pub struct AccessRequest {
        pub id: u64,
        pub requester: [u8; 32],
        pub requester_org: String,
        pub provider_org: String,
        pub resource: String,
        pub version: u32,
        pub request: RequestAccess,
        pub state: RequestState,
        pub submitted_ms: u64,
        pub deadline_ms: u64,
        /// The terms approved so far and who approved them.
        pub terms: Option<Terms>,
        pub approvals: Vec<Approval>,
        /// The reason of a rejection, dispute or withdrawal.
        pub reason: String,
        /// The grant it produced.
        pub grant: Option<u64>,
    }
}

shutong_codec::codec_struct! {
    /// What an approver agrees to grant.
    #[derive(Debug, Clone, PartialEq, Eq)]
    pub struct Terms {
        pub fields: Vec<String>,
        pub methods: u8,
        pub purposes: Vec<String>,
        pub not_before_ms: u64,
        pub not_after_ms: u64,
        pub max_uses: u64,
        /// Uses a day; 0 for no limit.
        pub rate_per_day: u64,
        /// The case (a 12345 work order, an application) the grant serves, hashed.
        pub case_ref: Option<[u8; 32]>,
        /// `duty` bits.
        pub duties: u32,
        pub delegable: bool,
        /// The full policy document's hash (kept off chain).
        pub policy_hash: [u8; 32],
    }
}

shutong_codec::codec_struct! {
    #[derive(Debug, Clone, PartialEq, Eq)]
    pub struct Approval {
        pub account: [u8; 32],
        /// The `registry::role` bits it approved with.
        pub roles: u32,
        pub ms: u64,
    }
}

shutong_codec::codec_struct! {
    /// Arguments of `approve`.
    #[derive(Debug, Clone, PartialEq, Eq)]
    pub struct Approve {
        pub request: u64,
        pub terms: Terms,
    }
}

shutong_codec::codec_struct! {
    /// Arguments of `reject`, `dispute` and `withdraw` (of a request), and of `suspend` and
    /// `revoke` (of a grant, `id` being the grant's).
    #[derive(Debug, Clone, PartialEq, Eq)]
    pub struct WithReason {
        pub id: u64,
        pub reason: String,
    }
}

shutong_codec::codec_struct! {
    /// Arguments of `escalate`, `resume`, `get_request` and `get_grant`.
    #[derive(Debug, Clone, PartialEq, Eq)]
    pub struct Id {
        pub id: u64,
    }
}

shutong_codec::codec_struct! {
    /// A grant: the agreement under which data may be used.
    #[derive(Debug, Clone, PartialEq, Eq)]
    pub struct Grant {
        pub id: u64,
        pub request: u64,
        pub grantor_org: String,
        pub grantee_org: String,
        pub resource: String,
        pub version: u32,
        pub terms: Terms,
        pub uses: u64,
        /// Uses on `day` (days since the epoch, in consensus time), for the rate limit.
        pub day: u64,
        pub day_uses: u64,
        pub status: GrantStatus,
        pub reason: String,
        pub parent: Option<u64>,
        pub depth: u32,
        pub children: Vec<u64>,
        pub approvals: Vec<Approval>,
        pub consent: Option<String>,
        pub superseded_by: Option<u64>,
    }
}

shutong_codec::codec_struct! {
    /// Arguments of `delegate`: a sub-grant of `parent` to `grantee_org`.
    #[derive(Debug, Clone, PartialEq, Eq)]
    pub struct Delegate {
        pub parent: u64,
        pub grantee_org: String,
        pub terms: Terms,
    }
}

shutong_codec::codec_struct! {
    /// Arguments of `check` and `consume`: may `account` use `fields` of the grant's resource
    /// with `method` for `purpose` now?
    #[derive(Debug, Clone, PartialEq, Eq)]
    pub struct Use {
        pub grant: u64,
        pub account: [u8; 32],
        pub fields: Vec<String>,
        /// One `catalog::method` bit.
        pub method: u8,
        pub purpose: String,
        /// How many uses (records) this is.
        pub count: u64,
    }
}

shutong_codec::codec_struct! {
    /// The answer of `check` and `consume`.
    #[derive(Debug, Clone, PartialEq, Eq)]
    pub struct Decision {
        pub permit: bool,
        /// Why not; "" when permitted.
        pub reason: String,
        /// A denial that breaks the grant's scope (fields, method, purpose) rather than its
        /// state or limits: a violation candidate.
        pub violation: bool,
    }
}

shutong_codec::codec_struct! {
    /// The answer of `record_use`: the decision, and the first of the grant-history numbers
    /// reserved for the audit contract's entries about this use (one, and one more for the
    /// violation a violation-candidate denial opens, in that order: violation first).
    #[derive(Debug, Clone, PartialEq, Eq)]
    pub struct Consumed {
        pub decision: Decision,
        pub first_seq: u64,
        /// The first of the positions reserved in each selector's sequence, in the order of
        /// `AuditEntry::selectors` for the entries' resource, organisations, consumer and
        /// purpose.
        pub first_seqs: Vec<u64>,
    }
}

/// The authz contract's storage key of grant `id`.
pub fn grant_key(id: u64) -> Vec<u8> {
    let mut key = b"grant/".to_vec();
    key.extend_from_slice(&id.to_be_bytes());
    key
}

/// Whether `purpose` lies in the subtree of `granted` (dot-separated codes).
pub fn purpose_within(purpose: &str, granted: &str) -> bool {
    purpose == granted || (purpose.starts_with(granted) && purpose.as_bytes().get(granted.len()) == Some(&b'.'))
}

/// Checks a purpose code: dot-separated segments of `a-z 0-9 -`, 1 to 128 bytes.
pub fn valid_purpose(purpose: &str) -> bool {
    !purpose.is_empty()
        && purpose.len() <= 128
        && purpose
            .split('.')
            .all(|s| !s.is_empty() && s.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-'))
}

shutong_codec::codec_struct! {
    /// Arguments of `record_consent`: a data subject's consent, given to the caller's
    /// organisation, for a resource and a purpose. Only references go on chain.
    #[derive(Debug, Clone, PartialEq, Eq)]
    pub struct RecordConsent {
        pub id: String,
        pub subject_ref_hmac: [u8; 32],
        pub resource: String,
        pub purpose: String,
        pub evidence_hash: [u8; 32],
    }
}

shutong_codec::codec_struct! {
    /// A consent record.
    #[derive(Debug, Clone, PartialEq, Eq)]
    pub struct Consent {
        pub id: String,
        pub grantee_org: String,
        pub subject_ref_hmac: [u8; 32],
        pub resource: String,
        pub purpose: String,
        pub evidence_hash: [u8; 32],
        pub given_ms: u64,
        pub withdrawn: bool,
    }
}

shutong_codec::codec_struct! {
    /// Arguments of `withdraw_consent` and `get_consent`.
    #[derive(Debug, Clone, PartialEq, Eq)]
    pub struct ConsentId {
        pub id: String,
    }
}

shutong_codec::codec_struct! {
    /// Arguments of `close_case`.
    #[derive(Debug, Clone, PartialEq, Eq)]
    pub struct CloseCase {
        pub case_ref: [u8; 32],
        /// The grants bound to the case to close (the caller names them; each must be bound
        /// to `case_ref`).
        pub grants: Vec<u64>,
    }
}

shutong_codec::codec_struct! {
    /// Arguments of `amend`.
    #[derive(Debug, Clone, PartialEq, Eq)]
    pub struct Amend {
        pub grant: u64,
        pub terms: Terms,
    }
}

/// Why a use by `who` lies outside the grant's scope (grantee, method, fields, purpose), if
/// it does: such a use is a violation whatever the grant's limits.
fn out_of_scope(grant: &Grant, req: &Use, who: Option<&crate::registry::Member>) -> Option<String> {
    let t = &grant.terms;
    match who {
        Some(m) if m.acting && m.principal.org == grant.grantee_org => {}
        _ => return Some(format!("the user does not act for grantee {}", grant.grantee_org)),
    }
    if req.method == 0 || req.method & !t.methods != 0 {
        return Some(format!("method {} is not granted", req.method));
    }
    if let Some(field) = req.fields.iter().find(|f| !t.fields.contains(f)) {
        return Some(format!("field {} is not granted", field));
    }
    if !t.purposes.iter().any(|p| purpose_within(&req.purpose, p)) {
        return Some(format!("purpose {} is outside the granted purposes", req.purpose));
    }
    None
}

/// The decision for a use of `grant` at consensus time `now` by the principal `who` (as the
/// registry's `member` answers for the user's account), without counting it. The authz
/// contract decides every check and every recorded use with it, and a data gateway decides
/// locally with the same function on verified state.
pub fn decide(grant: &Grant, req: &Use, who: Option<&crate::registry::Member>, now: u64) -> Decision {
    let deny = |reason: String, violation: bool| Decision { permit: false, reason, violation };
    match grant.status {
        GrantStatus::Active => {}
        other => return deny(format!("grant {} is {}", grant.id, other.name()), false),
    }
    let t = &grant.terms;
    // Scope first: a use outside the grant's scope is a violation whatever the grant's limits.
    if let Some(reason) = out_of_scope(grant, req, who) {
        return deny(reason, true);
    }
    if now < t.not_before_ms {
        return deny(format!("grant {} is not yet valid", grant.id), false);
    }
    if now > t.not_after_ms {
        return deny(format!("grant {} expired", grant.id), false);
    }
    if grant.uses.saturating_add(req.count) > t.max_uses {
        return deny(format!("grant {} is exhausted ({} of {} uses)", grant.id, grant.uses, t.max_uses), false);
    }
    let day = now / DAY_MS;
    let today = if grant.day == day { grant.day_uses } else { 0 };
    if t.rate_per_day != 0 && today.saturating_add(req.count) > t.rate_per_day {
        return deny(format!("grant {} allows {} uses a day", grant.id, t.rate_per_day), false);
    }
    Decision { permit: true, reason: String::new(), violation: false }
}

/// Counts a permitted use of `count` at `now` against `grant`: its total and its day's
/// (a new day starts the day's count again). The authz contract counts every recorded use
/// with it, and a gateway counts the uses it permits between reads of the grant.
pub fn count_use(grant: &mut Grant, count: u64, now: u64) {
    let day = now / DAY_MS;
    if grant.day != day {
        grant.day = day;
        grant.day_uses = 0;
    }
    grant.uses += count;
    grant.day_uses += count;
}

shutong_codec::codec_struct! {
    /// Arguments of `record_batch`: the groups of a gateway's anchored batch of `grant`,
    /// each a use of its count, served over `[period_start_ms, period_end_ms)`.
    #[derive(Debug, Clone, PartialEq, Eq)]
    pub struct BatchUse {
        pub grant: u64,
        pub period_start_ms: u64,
        pub period_end_ms: u64,
        pub uses: Vec<Use>,
    }
}

shutong_codec::codec_struct! {
    /// How one group of a batch counts against its grant: the uses it allowed, and the excess.
    #[derive(Debug, Clone, PartialEq, Eq)]
    pub struct Counted {
        pub permitted: u64,
        pub excess: u64,
        /// Why there is an excess; "" when there is none.
        pub reason: String,
    }
}

/// How `req.count` uses a gateway already served over `[start, end)` and anchored at
/// consensus time `now` count against `grant`: the same rules as a single use, but the uses
/// happened, so what the grant did not allow is an excess to record rather than a request to
/// refuse. A grant that is not active, a use outside its scope or window, and any batched use
/// of a `PER_USE` grant are excess in full; otherwise the uses left (in all, and today under
/// the rate limit) are permitted and the rest is excess. The status is the grant's when the
/// batch is anchored: a gateway anchors within the committee's anchor lag.
pub fn decide_batch(
    grant: &Grant,
    req: &Use,
    who: Option<&crate::registry::Member>,
    start: u64,
    end: u64,
    now: u64,
) -> Counted {
    let excess = |reason: String| Counted { permitted: 0, excess: req.count, reason };
    let t = &grant.terms;
    if t.duties & duty::PER_USE != 0 {
        return excess(format!("grant {} is consumed use by use; {} uses were batched", grant.id, req.count));
    }
    if grant.status != GrantStatus::Active {
        return excess(format!("grant {} is {}", grant.id, grant.status.name()));
    }
    if let Some(reason) = out_of_scope(grant, req, who) {
        return excess(reason);
    }
    if start < t.not_before_ms || end > t.not_after_ms.saturating_add(1) {
        return excess(format!("the batch's period lies outside grant {}'s validity", grant.id));
    }
    let left = t.max_uses.saturating_sub(grant.uses);
    let today = if grant.day == now / DAY_MS { grant.day_uses } else { 0 };
    let left_today = if t.rate_per_day == 0 { u64::MAX } else { t.rate_per_day.saturating_sub(today) };
    let permitted = req.count.min(left).min(left_today);
    let over = req.count - permitted;
    let reason = if over == 0 {
        String::new()
    } else if permitted == left {
        format!("grant {} allowed {} more of {} uses; {} uses beyond", grant.id, left, t.max_uses, over)
    } else {
        format!("grant {} allows {} uses a day; {} uses beyond", grant.id, t.rate_per_day, over)
    };
    Counted { permitted, excess: over, reason }
}
