//! The data gateway helper: the policy enforcement point a providing department runs beside
//! its database.
//!
//! - It decides each request locally with the authz contract's own decision function
//!   ([`decide`]) on grants and memberships read from the chain *with proofs*, and counts the
//!   uses it permits, so a grant's limits hold between refreshes.
//! - A grant-changing event (`grant.revoked`, `grant.suspended`, …) drops the grant from the
//!   cache at once: until it is read again, every request under it is refused.
//! - It records every decision as an access event in a batch per grant. Sealing a batch
//!   gives the `audit.anchor` arguments (the Merkle root over the batch, RFC 9162); the
//!   gateway keeps the events and hands any event's inclusion proof to an auditor, who checks
//!   it against the anchor entry proven in the chain's audit log ([`verify_event`]).
//!
//! The core does no I/O; [`Gateway::refresh_grant`] and [`Gateway::refresh_member`] read
//! through a [`VerifyingClient`].

use crate::light::{LightError, VerifyingClient, entry_of};
use crate::rpc::{StateProofInfo, method};
use jsonrpsee::rpc_params;
use shutong_codec::{Decode, Encode};
use shutong_system_api::audit::{AccessEvent, AnchorBatch, AuditEntry};
use shutong_system_api::authz::{Decision, Grant, Use, count_use, decide};
use shutong_system_api::names;
use shutong_system_api::registry::{Member, Org, Principal};
use shutong_types::auditlog::{self, InclusionProof, MemoryLog};
use shutong_types::keyspace::{self, AuditLeaf};
use shutong_types::{Address, Hash};
use std::collections::HashMap;

/// The events that change what a grant allows: on any of them the cached grant is dropped.
pub const GRANT_EVENTS: [&str; 7] = [
    "grant.revoked",
    "grant.suspended",
    "grant.resumed",
    "grant.superseded",
    "grant.exhausted",
    "grant.closed",
    "grant.delegated",
];

#[derive(Debug, thiserror::Error)]
pub enum GatewayError {
    #[error("no event {index} in batch {batch}")]
    NoSuchEvent { batch: usize, index: u64 },
    #[error("the event's proof does not lead to the batch root: {0}")]
    NotInBatch(auditlog::LogProofError),
    #[error("the chain's entry is not the anchor of this batch: {0}")]
    WrongAnchor(String),
    #[error(transparent)]
    Chain(#[from] LightError),
}

/// One recorded access: the event, the gateway's decision, and when (ms since the epoch).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Recorded {
    pub event: AccessEvent,
    pub permit: bool,
    pub reason: String,
    pub time_ms: u64,
}

impl Recorded {
    /// The leaf bytes of this record in its batch.
    pub fn leaf(&self) -> Vec<u8> {
        let mut out = b"shutong.gateway-event/v1".to_vec();
        self.event.encode_to(&mut out);
        self.permit.encode_to(&mut out);
        self.reason.encode_to(&mut out);
        self.time_ms.encode_to(&mut out);
        out
    }
}

/// Events of one grant since the last seal.
#[derive(Debug, Default)]
struct Open {
    log: MemoryLog,
    leaves: Vec<Vec<u8>>,
    start_ms: u64,
    end_ms: u64,
}

/// A sealed batch: what was anchored, and the events it covers.
#[derive(Debug)]
pub struct Sealed {
    pub anchor: AnchorBatch,
    leaves: Vec<Vec<u8>>,
    log: MemoryLog,
}

/// What an auditor needs to check one event against the chain: the event's leaf bytes, its
/// inclusion proof in the batch, and the batch's anchor.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EventProof {
    pub leaf: Vec<u8>,
    pub inclusion: InclusionProof,
    pub anchor: AnchorBatch,
}

/// The gateway of one providing organisation.
#[derive(Debug, Default)]
pub struct Gateway {
    grants: HashMap<u64, Grant>,
    members: HashMap<[u8; 32], Option<Member>>,
    open: HashMap<u64, Open>,
    sealed: Vec<Sealed>,
}

impl Gateway {
    pub fn new() -> Gateway {
        Gateway::default()
    }

    /// Puts a grant read from verified state into the cache.
    pub fn put_grant(&mut self, grant: Grant) {
        self.grants.insert(grant.id, grant);
    }

    /// Puts a membership read from verified state (`None`: not a principal) into the cache.
    pub fn put_member(&mut self, account: [u8; 32], member: Option<Member>) {
        self.members.insert(account, member);
    }

    pub fn grant(&self, id: u64) -> Option<&Grant> {
        self.grants.get(&id)
    }

    /// Reacts to a chain event: a grant-changing event drops the grant named in its data; a
    /// membership change drops every cached membership.
    pub fn on_event(&mut self, topic: &str, data: &[u8]) {
        if GRANT_EVENTS.contains(&topic) {
            if let Some(id) = std::str::from_utf8(data).ok().and_then(|d| d.parse::<u64>().ok()) {
                self.grants.remove(&id);
            }
        } else if topic.starts_with("principal.") || topic.starts_with("org.") {
            self.members.clear();
        }
    }

    /// Reacts to an event from a subscription (`Client::subscribe_events("")` or several
    /// prefixes): see [`Gateway::on_event`].
    pub fn on_notice(&mut self, notice: &crate::rpc::EventNotice) {
        let data = hex::decode(&notice.data_hex).unwrap_or_default();
        self.on_event(&notice.topic, &data);
    }

    /// Decides a request at `now_ms` and, if permitted, counts it against the cached grant.
    /// A grant or member not in the cache is refused: read it from the chain first.
    pub fn authorize(&mut self, request: &Use, now_ms: u64) -> Decision {
        let Some(grant) = self.grants.get_mut(&request.grant) else {
            return Decision {
                permit: false,
                reason: format!("grant {} is not loaded: read it from the chain", request.grant),
                violation: false,
            };
        };
        let Some(who) = self.members.get(&request.account) else {
            return Decision {
                permit: false,
                reason: format!("principal {} is not loaded: read it from the chain", hex::encode(request.account)),
                violation: false,
            };
        };
        let decision = decide(grant, request, who.as_ref(), now_ms);
        if decision.permit {
            count_use(grant, request.count, now_ms);
        }
        decision
    }

    /// Records an access event with its decision in the open batch of its grant; returns its
    /// position in that batch.
    pub fn record(&mut self, event: AccessEvent, decision: &Decision, time_ms: u64) -> u64 {
        let grant = event.grant;
        let recorded = Recorded { event, permit: decision.permit, reason: decision.reason.clone(), time_ms };
        let leaf = recorded.leaf();
        let open = self.open.entry(grant).or_default();
        if open.leaves.is_empty() {
            open.start_ms = time_ms;
        }
        open.end_ms = open.end_ms.max(time_ms);
        let index = open.log.push(auditlog::leaf_hash(&leaf));
        open.leaves.push(leaf);
        index
    }

    /// How many events wait in grant `grant`'s open batch.
    pub fn pending(&self, grant: u64) -> u64 {
        self.open.get(&grant).map_or(0, |o| o.log.size())
    }

    /// Closes grant `grant`'s open batch; returns the batch number and the `audit.anchor`
    /// arguments to submit (`builder::audit_trail::anchor`), or `None` if it is empty.
    pub fn seal(&mut self, grant: u64) -> Option<(usize, AnchorBatch)> {
        let open = self.open.remove(&grant).filter(|o| !o.leaves.is_empty())?;
        let anchor = AnchorBatch {
            grant,
            period_start_ms: open.start_ms,
            period_end_ms: open.end_ms,
            count: open.log.size(),
            merkle_root: open.log.root().0,
        };
        self.sealed.push(Sealed { anchor: anchor.clone(), leaves: open.leaves, log: open.log });
        Some((self.sealed.len() - 1, anchor))
    }

    /// Event `index` of sealed batch `batch`, with its proof for an auditor.
    pub fn proof(&self, batch: usize, index: u64) -> Result<EventProof, GatewayError> {
        let sealed = self.sealed.get(batch).ok_or(GatewayError::NoSuchEvent { batch, index })?;
        let leaf = sealed.leaves.get(index as usize).ok_or(GatewayError::NoSuchEvent { batch, index })?;
        let inclusion = auditlog::prove_inclusion(&sealed.log, index, sealed.log.size())
            .ok_or(GatewayError::NoSuchEvent { batch, index })?;
        Ok(EventProof { leaf: leaf.clone(), inclusion, anchor: sealed.anchor.clone() })
    }

    /// Reads grant `id` from the newest verified header's state, with its proof, into the
    /// cache (a grant the chain does not hold is dropped).
    pub async fn refresh_grant(&mut self, chain: &VerifyingClient, id: u64) -> Result<Option<&Grant>, LightError> {
        let key = contract_key(names::AUTHZ, b"grant/", &id.to_be_bytes());
        match proven::<Grant>(chain, &key, "grant").await? {
            Some(grant) => {
                self.put_grant(grant);
                Ok(self.grants.get(&id))
            }
            None => {
                self.grants.remove(&id);
                Ok(None)
            }
        }
    }

    /// Reads `account`'s membership from the newest verified header's state: its principal
    /// record and its organisation's, each with its proof.
    pub async fn refresh_member(&mut self, chain: &VerifyingClient, account: [u8; 32]) -> Result<(), LightError> {
        let key = contract_key(names::REGISTRY, b"principal/", &account);
        let member = match proven::<Principal>(chain, &key, "principal").await? {
            None => None,
            Some(principal) => {
                let org_key = contract_key(names::REGISTRY, b"org/", principal.org.as_bytes());
                proven::<Org>(chain, &org_key, "organisation").await?.map(|org| Member::of(principal, &org))
            }
        };
        self.put_member(account, member);
        Ok(())
    }
}

fn contract_key(contract: &str, prefix: &[u8], key: &[u8]) -> Vec<u8> {
    let mut k = prefix.to_vec();
    k.extend_from_slice(key);
    keyspace::contract_storage(&Address::system(contract), &k)
}

/// A state value at the newest verified header, proven, decoded.
async fn proven<T: Decode>(chain: &VerifyingClient, key: &[u8], what: &'static str) -> Result<Option<T>, LightError> {
    let at = chain.light.latest().cloned().ok_or(LightError::Uncertified { height: 0 })?;
    let info: StateProofInfo =
        chain.client.call_raw(method::GET_STATE_PROOF, rpc_params![hex::encode(key), at.header.height]).await?;
    let value = chain.light.verify_state(&at, &info, key)?;
    value.map(|bytes| T::decode(&bytes).map_err(|e| LightError::Malformed { what, reason: e.to_string() })).transpose()
}

/// Checks an event's proof against the anchor entry the auditor proved in the chain's log:
/// the event is in the batch, and the chain's entry anchors exactly that batch.
pub fn verify_event(proof: &EventProof, anchor_leaf: &AuditLeaf) -> Result<(), GatewayError> {
    let entry: AuditEntry =
        entry_of(anchor_leaf).ok_or_else(|| GatewayError::WrongAnchor("the leaf is no audit entry".into()))?;
    if entry.kind != "batch.anchored" || entry.grant != proof.anchor.grant {
        return Err(GatewayError::WrongAnchor(format!("a {} entry of grant {}", entry.kind, entry.grant)));
    }
    let anchored = AnchorBatch::decode(&entry.body).map_err(|e| GatewayError::WrongAnchor(e.to_string()))?;
    if anchored != proof.anchor {
        return Err(GatewayError::WrongAnchor("it anchors another batch".into()));
    }
    if proof.inclusion.size != anchored.count {
        return Err(GatewayError::WrongAnchor(format!(
            "the batch holds {} events, the proof says {}",
            anchored.count, proof.inclusion.size
        )));
    }
    proof
        .inclusion
        .verify(&auditlog::leaf_hash(&proof.leaf), &Hash(anchored.merkle_root))
        .map_err(GatewayError::NotInBatch)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use shutong_system_api::authz::{DAY_MS, GrantStatus, Terms, duty};
    use shutong_system_api::catalog::method;
    use shutong_system_api::registry::{OrgKind, OrgStatus, PrincipalKind, PrincipalStatus, role};

    const NOW: u64 = 1_795_000_000_000;
    const ANALYST: [u8; 32] = [4; 32];

    pub(crate) fn grant(id: u64, max_uses: u64) -> Grant {
        Grant {
            id,
            request: 1,
            grantor_org: "market".into(),
            grantee_org: "acme".into(),
            resource: "market/licence".into(),
            version: 1,
            terms: Terms {
                fields: vec!["uscc".into(), "name".into()],
                methods: method::QUERY,
                purposes: vec!["licensing.renewal".into()],
                not_before_ms: NOW - 1_000,
                not_after_ms: NOW + 30 * DAY_MS,
                max_uses,
                rate_per_day: 0,
                case_ref: None,
                duties: duty::LOG_USAGE,
                delegable: false,
                policy_hash: [0; 32],
            },
            uses: 0,
            day: 0,
            day_uses: 0,
            status: GrantStatus::Active,
            reason: String::new(),
            parent: None,
            depth: 0,
            children: Vec::new(),
            approvals: Vec::new(),
            consent: None,
            superseded_by: None,
        }
    }

    pub(crate) fn member(account: [u8; 32]) -> Member {
        let principal = Principal {
            account,
            org: "acme".into(),
            kind: PrincipalKind::Person,
            roles: role::DATA_CONSUMER,
            status: PrincipalStatus::Active,
            rotated_to: None,
            updated_height: 1,
        };
        let org = Org {
            id: "acme".into(),
            name: "Acme".into(),
            kind: OrgKind::Enterprise,
            status: OrgStatus::Active,
            admin: [9; 32],
            registered_height: 1,
            updated_height: 1,
        };
        Member::of(principal, &org)
    }

    pub(crate) fn request(grant: u64, fields: &[&str], purpose: &str) -> Use {
        Use {
            grant,
            account: ANALYST,
            fields: fields.iter().map(|f| f.to_string()).collect(),
            method: method::QUERY,
            purpose: purpose.into(),
            count: 1,
        }
    }

    pub(crate) fn event(u: &Use) -> AccessEvent {
        AccessEvent {
            grant: u.grant,
            consumer: u.account,
            fields: u.fields.clone(),
            method: u.method,
            purpose: u.purpose.clone(),
            business_ref_hash: [5; 32],
            subject_ref_hmac: [6; 32],
            query_hash: [7; 32],
            result_hash: [8; 32],
            record_count: 1,
            consumer_signature: None,
        }
    }

    fn gateway(max_uses: u64) -> Gateway {
        let mut g = Gateway::new();
        g.put_grant(grant(7, max_uses));
        g.put_member(ANALYST, Some(member(ANALYST)));
        g
    }

    #[test]
    fn decisions_follow_the_grant_and_count_its_uses() {
        let mut g = gateway(2);
        assert!(g.authorize(&request(7, &["uscc"], "licensing.renewal.online"), NOW).permit);
        let field = g.authorize(&request(7, &["legal_rep_id"], "licensing.renewal"), NOW);
        assert!(!field.permit && field.violation && field.reason == "field legal_rep_id is not granted");
        assert!(g.authorize(&request(7, &["name"], "licensing.renewal"), NOW).permit);
        let third = g.authorize(&request(7, &["name"], "licensing.renewal"), NOW);
        assert_eq!(third.reason, "grant 7 is exhausted (2 of 2 uses)", "uses are counted between refreshes");
        let stranger = Use { account: [1; 32], ..request(7, &["uscc"], "licensing.renewal") };
        assert!(g.authorize(&stranger, NOW).reason.contains("is not loaded"));
        let unknown = g.authorize(&request(8, &["uscc"], "licensing.renewal"), NOW);
        assert_eq!(unknown.reason, "grant 8 is not loaded: read it from the chain");
    }

    #[test]
    fn a_revocation_event_closes_the_grant_at_once() {
        let mut g = gateway(100);
        assert!(g.authorize(&request(7, &["uscc"], "licensing.renewal"), NOW).permit);
        g.on_event("grant.issued", b"7");
        assert!(g.authorize(&request(7, &["uscc"], "licensing.renewal"), NOW).permit, "other events change nothing");
        g.on_event("grant.revoked", b"7");
        let after = g.authorize(&request(7, &["uscc"], "licensing.renewal"), NOW);
        assert!(!after.permit && after.reason.contains("not loaded"), "{after:?}");
        g.on_event("principal.set", b"x");
        g.put_grant(grant(7, 100));
        assert!(g.authorize(&request(7, &["uscc"], "licensing.renewal"), NOW).reason.contains("principal"));
    }

    #[test]
    fn a_sealed_batch_proves_each_event_and_catches_a_changed_one() {
        let mut g = gateway(1_000);
        for i in 0..37 {
            let u = request(7, &["uscc"], "licensing.renewal");
            let decision = g.authorize(&u, NOW + i);
            g.record(event(&u), &decision, NOW + i);
        }
        assert_eq!(g.pending(7), 37);
        let (batch, anchor) = g.seal(7).unwrap();
        assert_eq!((anchor.count, anchor.period_start_ms, anchor.period_end_ms), (37, NOW, NOW + 36));
        assert!(g.seal(7).is_none(), "nothing left to seal");
        // The chain's anchor entry, as the audit contract appends it.
        let entry = AuditEntry {
            kind: "batch.anchored".into(),
            grant: 7,
            grant_seq: 9,
            request: 1,
            resource: "market/licence".into(),
            provider_org: "market".into(),
            consumer_org: "acme".into(),
            principal: [3; 32],
            purpose: "licensing.renewal".into(),
            body: anchor.encode(),
        };
        let leaf =
            AuditLeaf { contract: Address::system(names::AUDIT), height: 5, time_ms: NOW, data: entry.to_leaf() };
        for index in [0, 1, 17, 36] {
            verify_event(&g.proof(batch, index).unwrap(), &leaf).unwrap();
        }
        let mut changed = g.proof(batch, 17).unwrap();
        changed.leaf[40] ^= 1;
        assert!(matches!(verify_event(&changed, &leaf), Err(GatewayError::NotInBatch(_))));
        let mut other = g.proof(batch, 3).unwrap();
        other.anchor.count = 36;
        assert!(matches!(verify_event(&other, &leaf), Err(GatewayError::WrongAnchor(_))));
        assert!(matches!(g.proof(batch, 37), Err(GatewayError::NoSuchEvent { .. })));
    }
}
