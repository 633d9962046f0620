//! The access audit trail: every use of shared data recorded by the providing department's
//! gateway, counted against its grant, permitted or denied; denials that break a grant's scope
//! open violations; gateways anchor batches of events by their Merkle root; verification
//! attestations record yes/no answers given instead of data.
//!
//! Rules (the audit contract enforces them, each with its own error):
//! - Only an acting gateway principal (kind `gateway`) of the grant's provider records events,
//!   attestations and batches for it.
//! - Each event is counted by the authz contract (`consume`): a permitted event uses the
//!   grant; a denied one is recorded with its reason and uses nothing; a denial that breaks
//!   the grant's scope (fields, method, purpose, grantee) opens a violation.
//! - A gateway's anchored batch is always recorded: each group's events are counted against
//!   the grant like single uses (`authz::decide_batch`), and uses beyond what the grant
//!   allowed open a violation naming the grant and the excess. A missing earlier batch of
//!   the gateway's sequence, and an anchor later than the committee's `anchor_lag_ms_max`,
//!   open violations too. A batch already anchored is a no-op when resubmitted unchanged and
//!   refused when changed. Only malformed batches, and batches from a key that is not the
//!   provider's gateway, are refused.
//! - Every event, attestation, batch group and violation is also an audit-log leaf.

use crate::KeyBytes;

shutong_codec::codec_struct! {
    /// Arguments of `record`: one access, as the provider's gateway saw it. No personal data:
    /// references are hashes or keyed digests.
    #[derive(Debug, Clone, PartialEq, Eq)]
    pub struct AccessEvent {
        pub grant: u64,
        /// The consumer's principal that asked.
        pub consumer: [u8; 32],
        pub fields: Vec<String>,
        /// One `catalog::method` bit.
        pub method: u8,
        pub purpose: String,
        /// The business reference (a case, an application), hashed.
        pub business_ref_hash: [u8; 32],
        /// The data subject's reference, as an HMAC the gateway keys.
        pub subject_ref_hmac: [u8; 32],
        pub query_hash: [u8; 32],
        pub result_hash: [u8; 32],
        pub record_count: u64,
        /// The consumer gateway's signature over this event (with this field `None`), so both
        /// sides of the exchange sign the record. Required when the grant has the
        /// `COSIGNED_EVENTS` duty.
        pub consumer_signature: Option<GatewaySignature>,
    }
}

shutong_codec::codec_struct! {
    /// A gateway's ed25519 signature and the key that made it.
    #[derive(Debug, Clone, PartialEq, Eq)]
    pub struct GatewaySignature {
        pub key: KeyBytes,
        pub signature: [u8; 64],
    }
}

shutong_codec::codec_struct! {
    /// A recorded event with its decision.
    #[derive(Debug, Clone, PartialEq, Eq)]
    pub struct EventRecord {
        pub id: u64,
        pub event: AccessEvent,
        pub gateway: [u8; 32],
        pub provider_org: String,
        pub consumer_org: String,
        pub resource: String,
        pub permit: bool,
        pub reason: String,
        pub violation: Option<u64>,
        pub height: u64,
        pub time_ms: u64,
        /// Its audit-log leaf.
        pub leaf: u64,
    }
}

shutong_codec::codec_enum! {
    #[derive(Debug, Clone, Copy, PartialEq, Eq)]
    pub enum ViolationStatus { Open = 0 => "open", Confirmed = 1 => "confirmed", Dismissed = 2 => "dismissed" }
}

shutong_codec::codec_struct! {
    /// A denial that broke a grant's scope, or uses a gateway anchored beyond what the
    /// grant allowed; details stay off chain.
    #[derive(Debug, Clone, PartialEq, Eq)]
    pub struct Violation {
        pub id: u64,
        /// The access event, 0 for a batch's violation.
        pub event: u64,
        pub grant: u64,
        pub consumer_org: String,
        pub reason: String,
        pub status: ViolationStatus,
        /// The anchored batch (its `AnchorRecord` id), if it is a batch's violation.
        pub anchor: Option<u64>,
        /// The uses beyond what the grant allowed (0 for a single denied access).
        pub excess: u64,
    }
}

shutong_codec::codec_struct! {
    /// One kind of use in a batch: who asked, for which fields, how and for what purpose,
    /// and how many events (each one record, so one use) the batch holds of it.
    #[derive(Debug, Clone, PartialEq, Eq)]
    pub struct BatchGroup {
        pub consumer: [u8; 32],
        pub fields: Vec<String>,
        /// One `catalog::method` bit.
        pub method: u8,
        pub purpose: String,
        pub count: u64,
    }
}

shutong_codec::codec_struct! {
    /// Arguments of `anchor`: a gateway's Merkle root over the events of one grant it served
    /// in a period (the events stay in the gateway, each provable against this root).
    ///
    /// The root is an RFC 9162 tree over the events group by group, in the order of
    /// `groups`; its size is the sum of the groups' counts, and an inclusion proof against it
    /// names that size, so a batch cannot declare fewer events than its tree holds. `seq`
    /// numbers a gateway's batches of a grant from 1 without gaps, and each batch's period
    /// `[period_start_ms, period_end_ms)` starts where the previous one ended.
    #[derive(Debug, Clone, PartialEq, Eq)]
    pub struct AnchorBatch {
        pub grant: u64,
        pub seq: u64,
        pub period_start_ms: u64,
        pub period_end_ms: u64,
        pub groups: Vec<BatchGroup>,
        pub merkle_root: [u8; 32],
    }
}

/// The most groups (consumer, fields, method, purpose) in one batch.
pub const BATCH_GROUPS_MAX: usize = 32;
/// The most events in one batch.
pub const BATCH_EVENTS_MAX: u64 = 1 << 32;
/// How far past the chain's clock a batch's period may end (the gateways' clock skew).
pub const BATCH_CLOCK_SKEW_MS: u64 = 5 * 60 * 1000;
/// The governance parameter that holds the longest a gateway may wait after a period ends
/// before anchoring it (decimal ms); a later anchor is recorded, as a violation.
pub const ANCHOR_LAG_PARAM: &str = "anchor_lag_ms_max";
/// The anchor lag when the committee has set none: one hour.
pub const ANCHOR_LAG_MS_DEFAULT: u64 = 3600 * 1000;

impl AnchorBatch {
    /// The events the batch holds: the size of the tree its root commits to (`None` if the
    /// counts overflow).
    pub fn count(&self) -> Option<u64> {
        self.groups.iter().try_fold(0u64, |sum, g| sum.checked_add(g.count))
    }

    /// The group event `index` of the batch belongs to, with the index of its first event.
    pub fn group_of(&self, index: u64) -> Option<(u64, &BatchGroup)> {
        let mut offset = 0u64;
        for group in &self.groups {
            let end = offset.checked_add(group.count)?;
            if index < end {
                return Some((offset, group));
            }
            offset = end;
        }
        None
    }
}

/// The audit contract's storage key of a gateway's batch `seq` of `grant` (the key of the
/// [`AnchorRecord`]).
pub fn anchor_key(grant: u64, gateway: &[u8; 32], seq: u64) -> Vec<u8> {
    let mut key = b"anchor/".to_vec();
    key.extend_from_slice(&grant.to_be_bytes());
    key.extend_from_slice(gateway);
    key.extend_from_slice(&seq.to_be_bytes());
    key
}

shutong_codec::codec_struct! {
    /// Arguments of `get_anchor`: a gateway's batch `seq` of `grant`.
    #[derive(Debug, Clone, PartialEq, Eq)]
    pub struct GetAnchor {
        pub grant: u64,
        pub gateway: [u8; 32],
        pub seq: u64,
    }
}

shutong_codec::codec_struct! {
    /// How a batch's group was counted against its grant: the uses the grant allowed, and
    /// the excess beyond it (a violation), with the reason.
    #[derive(Debug, Clone, PartialEq, Eq)]
    pub struct GroupCount {
        pub permitted: u64,
        pub excess: u64,
        pub reason: String,
        pub violation: Option<u64>,
    }
}

shutong_codec::codec_struct! {
    /// An anchored batch as the audit contract recorded it.
    #[derive(Debug, Clone, PartialEq, Eq)]
    pub struct AnchorRecord {
        pub id: u64,
        pub batch: AnchorBatch,
        pub gateway: [u8; 32],
        /// Per group, in order.
        pub counted: Vec<GroupCount>,
        /// The violation opened because earlier batches of the sequence are missing.
        pub gap_violation: Option<u64>,
        /// The violation opened because the batch came later than the anchor lag allows.
        pub lag_violation: Option<u64>,
        pub height: u64,
        pub time_ms: u64,
        /// The audit-log leaf of its first group (the others follow in order).
        pub leaf: u64,
    }
}

shutong_codec::codec_struct! {
    /// The body of a `batch.anchored` entry: one group of an anchored batch, with what an
    /// auditor needs to check any of its events against the batch's root.
    #[derive(Debug, Clone, PartialEq, Eq)]
    pub struct AnchoredGroup {
        pub anchor: u64,
        pub gateway: [u8; 32],
        pub seq: u64,
        pub period_start_ms: u64,
        pub period_end_ms: u64,
        pub merkle_root: [u8; 32],
        /// The batch's tree size.
        pub size: u64,
        /// The index of the group's first event in the tree.
        pub offset: u64,
        pub group: BatchGroup,
        pub counted: GroupCount,
    }
}

shutong_codec::codec_struct! {
    /// Arguments of `history`: a grant's events, a page at a time, after event `after`.
    #[derive(Debug, Clone, PartialEq, Eq)]
    pub struct History {
        pub grant: u64,
        pub after: Option<u64>,
        pub limit: u32,
    }
}

shutong_codec::codec_struct! {
    /// Arguments of `get_event` and `get_violation`.
    #[derive(Debug, Clone, PartialEq, Eq)]
    pub struct EventId {
        pub id: u64,
    }
}

shutong_codec::codec_struct! {
    /// Arguments of `attest`: a yes/no answer the provider's gateway gave instead of data
    /// (证明电子化, 印证), under a grant that allows the `verify` method.
    #[derive(Debug, Clone, PartialEq, Eq)]
    pub struct Attest {
        pub grant: u64,
        pub consumer: [u8; 32],
        /// The question asked (e.g. "is this licence number valid for this name?"), hashed.
        pub question_hash: [u8; 32],
        pub subject_ref_hmac: [u8; 32],
        pub answer: bool,
    }
}

shutong_codec::codec_struct! {
    /// A recorded attestation. A denied one (`permit` false) was not given.
    #[derive(Debug, Clone, PartialEq, Eq)]
    pub struct AttestationRecord {
        pub id: u64,
        pub attest: Attest,
        pub gateway: [u8; 32],
        pub permit: bool,
        pub reason: String,
        pub height: u64,
        pub time_ms: u64,
        pub leaf: u64,
    }
}

/// The authz contract's storage prefix of each grant's entry count (key: prefix ‖ grant,
/// 8 bytes big-endian; value: the count as a `u64`).
pub const GRANT_LOG_PREFIX: &[u8] = b"grant-log/";

/// The first bytes of every audit-log leaf the system contracts append: the node indexes
/// leaves that start with it (from the authz and audit contracts) for auditors' queries.
pub const ENTRY_TAG: &[u8] = b"shutong.audit/v2";

shutong_codec::codec_struct! {
    /// An audit-log entry: who did what to which grant, resource and organisations, for what
    /// purpose, with the full record. Everything an auditor asks by is in the entry itself,
    /// so each answer is proven by the entry's inclusion in the log alone.
    #[derive(Debug, Clone, PartialEq, Eq)]
    pub struct AuditEntry {
        /// What happened: `access.permitted`, `access.denied`, `violation.opened`,
        /// `attestation.recorded`, `attestation.denied`, `batch.anchored`, `query.logged`,
        /// or an authz event (`request.submitted`, `grant.issued`, `grant.revoked`, ...).
        pub kind: String,
        /// The grant concerned, 0 if none.
        pub grant: u64,
        /// With a grant: this entry's position in the grant's history, from 0 without gaps
        /// (the authz contract numbers them and keeps the count under [`GRANT_LOG_PREFIX`],
        /// so a client can prove a grant's history complete). 0 without a grant.
        pub grant_seq: u64,
        /// This entry's position in the sequence of each selector it answers, in the order
        /// of [`AuditEntry::selectors`], each from 0 without gaps (the authz contract numbers
        /// them and keeps each selector's count under [`SELECTOR_COUNT_PREFIX`], so a client
        /// can prove any answer by selector and period complete).
        pub seqs: Vec<u64>,
        /// The request concerned, 0 if none.
        pub request: u64,
        pub resource: String,
        pub provider_org: String,
        pub consumer_org: String,
        /// The principal that acted (or, for an access, the consumer that asked).
        pub principal: [u8; 32],
        pub purpose: String,
        /// The record of the kind (an `EventRecord`, a `Violation`, a `Grant`, ...).
        pub body: Vec<u8>,
    }
}

/// What an auditor asks by, besides a grant (`grant_seq`) and time (the log's own order).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub enum Selector {
    Resource(String),
    /// An organisation, as provider or consumer.
    Org(String),
    Principal([u8; 32]),
    /// A purpose code: it answers for every entry whose purpose lies in its subtree.
    Purpose(String),
}

impl Selector {
    /// The selector's bytes in its count's storage key.
    pub fn key(&self) -> Vec<u8> {
        let (tag, value): (u8, &[u8]) = match self {
            Selector::Resource(r) => (b'R', r.as_bytes()),
            Selector::Org(o) => (b'O', o.as_bytes()),
            Selector::Principal(p) => (b'P', p),
            Selector::Purpose(p) => (b'U', p.as_bytes()),
        };
        let mut key = vec![tag];
        key.extend_from_slice(value);
        key
    }
}

/// The authz contract's storage prefix of each selector's entry count (key: prefix ‖
/// [`Selector::key`]; value: the count as a `u64`).
pub const SELECTOR_COUNT_PREFIX: &[u8] = b"sel-count/";

/// The authz contract's storage key of `selector`'s entry count.
pub fn selector_count_key(selector: &Selector) -> Vec<u8> {
    let mut key = SELECTOR_COUNT_PREFIX.to_vec();
    key.extend_from_slice(&selector.key());
    key
}

impl AuditEntry {
    /// The selectors this entry answers, in canonical order: its resource; its provider and
    /// its consumer organisation (once if they are one); its principal; its purpose and each
    /// ancestor of it, root first (when the purpose is a purpose code).
    pub fn selectors(&self) -> Vec<Selector> {
        let mut out = Vec::with_capacity(8);
        if !self.resource.is_empty() {
            out.push(Selector::Resource(self.resource.clone()));
        }
        if !self.provider_org.is_empty() {
            out.push(Selector::Org(self.provider_org.clone()));
        }
        if !self.consumer_org.is_empty() && self.consumer_org != self.provider_org {
            out.push(Selector::Org(self.consumer_org.clone()));
        }
        out.push(Selector::Principal(self.principal));
        if crate::authz::valid_purpose(&self.purpose) {
            for (i, c) in self.purpose.char_indices() {
                if c == '.' {
                    out.push(Selector::Purpose(self.purpose[..i].to_string()));
                }
            }
            out.push(Selector::Purpose(self.purpose.clone()));
        }
        out
    }

    /// This entry's position in `selector`'s sequence, if it answers it.
    pub fn seq_of(&self, selector: &Selector) -> Option<u64> {
        let at = self.selectors().iter().position(|s| s == selector)?;
        self.seqs.get(at).copied()
    }

    /// The leaf bytes: [`ENTRY_TAG`] then the entry.
    pub fn to_leaf(&self) -> Vec<u8> {
        let mut leaf = ENTRY_TAG.to_vec();
        shutong_codec::Encode::encode_to(self, &mut leaf);
        leaf
    }

    /// The entry in a leaf's bytes, if it is one.
    pub fn from_leaf(data: &[u8]) -> Option<AuditEntry> {
        let rest = data.strip_prefix(ENTRY_TAG)?;
        <AuditEntry as shutong_codec::Decode>::decode(rest).ok()
    }
}

shutong_codec::codec_struct! {
    /// Arguments of `log_query`: an auditor's query, recorded before a node answers it.
    #[derive(Debug, Clone, PartialEq, Eq)]
    pub struct LogQuery {
        /// By what: `resource`, `grant`, `org`, `principal`, `purpose` or `time`.
        pub by: String,
        pub value: String,
        pub from_ms: u64,
        pub to_ms: u64,
        /// Why the auditor asks (a case or inspection reference).
        pub reason: String,
    }
}
