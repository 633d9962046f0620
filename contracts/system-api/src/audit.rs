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
//! - Every event, attestation, batch and violation is also an audit-log leaf.

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
        pub key: [u8; 32],
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
    /// A denial that broke a grant's scope; details stay off chain.
    #[derive(Debug, Clone, PartialEq, Eq)]
    pub struct Violation {
        pub id: u64,
        pub event: u64,
        pub grant: u64,
        pub consumer_org: String,
        pub reason: String,
        pub status: ViolationStatus,
    }
}

shutong_codec::codec_struct! {
    /// Arguments of `anchor`: a gateway's Merkle root over many events of a period (the
    /// events stay in the gateway, each provable against this root).
    #[derive(Debug, Clone, PartialEq, Eq)]
    pub struct AnchorBatch {
        pub grant: u64,
        pub period_start_ms: u64,
        pub period_end_ms: u64,
        pub count: u64,
        pub merkle_root: [u8; 32],
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
pub const ENTRY_TAG: &[u8] = b"shutong.audit/v1";

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

impl AuditEntry {
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
