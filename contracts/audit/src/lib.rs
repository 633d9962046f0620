//! Shutong's access audit system contract. The rules are in `shutong_system_api::audit`;
//! each refusal has its own error. Grants come from the authz contract, which also counts
//! each use (`consume`); who a gateway is comes from the registry. Grants and members are
//! read straight from those contracts' storage (`storage_get_of`); only what changes their
//! state (`consume`, `append_grant_entry`) is a call.

#![forbid(unsafe_code)]

use shutong_codec::{Decode, Encode};
use shutong_contract::{self as contract, Error, Item, Map, MethodResult};
use shutong_system_api::audit::{
    AccessEvent, AnchorBatch, Attest, AttestationRecord, AuditEntry, EventId, EventRecord, History, LogQuery,
    Violation, ViolationStatus,
};
use shutong_system_api::authz::{self as authz, duty, Consumed, Decision, Grant, Use};
use shutong_system_api::catalog::method;
use shutong_system_api::names::{AUTHZ_ADDRESS, REGISTRY_ADDRESS};
use shutong_system_api::registry::{role, Member, PrincipalKind};

contract::entrypoints!(record, anchor, attest, history, get_event, get_violation, get_attestation, log_query);

const NEXT_EVENT: Item<u64> = Item::new(b"next-event");
const NEXT_VIOLATION: Item<u64> = Item::new(b"next-violation");
const EVENTS: Map<u64, EventRecord> = Map::new(b"event/");
const VIOLATIONS: Map<u64, Violation> = Map::new(b"violation/");
const NEXT_ATTESTATION: Item<u64> = Item::new(b"next-attestation");
const ATTESTATIONS: Map<u64, AttestationRecord> = Map::new(b"attestation/");
/// Event ids by grant: key grant (8 bytes BE) ‖ event (8 bytes BE).
const BY_GRANT: Map<Vec<u8>, u64> = Map::new(b"by-grant/");

const HISTORY_PAGE_MAX: u32 = 100;

fn next(counter: &Item<u64>) -> Result<u64, Error> {
    let id = counter.load()?.unwrap_or(1);
    counter.save(&(id + 1));
    Ok(id)
}

/// Grant `id`, read from the authz contract's storage.
fn grant(id: u64) -> Result<Grant, Error> {
    let bytes = contract::storage_get_of(&AUTHZ_ADDRESS, &authz::grant_key(id))
        .ok_or_else(|| Error(format!("no grant {}", id)))?;
    Grant::decode(&bytes).map_err(|e| Error(format!("the authz contract's grant {} is corrupt: {}", id, e)))
}

/// What the registry says about `account`, read from its storage; `None` for nobody (or a
/// record that does not decode, which no check accepts).
fn member(account: [u8; 32]) -> Option<Member> {
    Member::read(&account, |key| contract::storage_get_of(&REGISTRY_ADDRESS, key)).ok().flatten()
}

/// The caller, if it is an acting gateway of `org`.
fn gateway_of(org: &str) -> Result<[u8; 32], Error> {
    let caller = contract::caller();
    match member(caller) {
        Some(m) if m.acting && m.principal.kind == PrincipalKind::Gateway && m.principal.org == org => Ok(caller),
        _ => Err(Error(format!("only an acting gateway of organisation {} may record its accesses", org))),
    }
}

/// An entry about `granted`, acted on by `principal`.
fn entry(kind: &str, granted: &Grant, principal: [u8; 32], purpose: &str, body: Vec<u8>) -> AuditEntry {
    AuditEntry {
        kind: kind.to_string(),
        grant_seq: 0,
        grant: granted.id,
        request: granted.request,
        resource: granted.resource.clone(),
        provider_org: granted.grantor_org.clone(),
        consumer_org: granted.grantee_org.clone(),
        principal,
        purpose: purpose.to_string(),
        body,
    }
}

/// Appends an entry about a grant through the authz contract, which numbers it in the
/// grant's history; returns its leaf index.
fn append(entry: &AuditEntry) -> Result<u64, Error> {
    let answer = contract::call(&AUTHZ_ADDRESS, "append_grant_entry", &entry.encode(), 0)?;
    u64::decode(&answer).map_err(|e| Error(format!("the authz contract answered badly: {}", e)))
}

fn grant_key(grant: u64, event: u64) -> Vec<u8> {
    let mut key = grant.to_be_bytes().to_vec();
    key.extend_from_slice(&event.to_be_bytes());
    key
}

/// Checks the consumer gateway's signature, if there is one or the grant requires one.
fn check_cosignature(event: &AccessEvent, granted: &Grant) -> Result<(), Error> {
    let signature = match &event.consumer_signature {
        Some(signature) => signature,
        None if granted.terms.duties & duty::COSIGNED_EVENTS != 0 => {
            return Err(Error(format!("grant {} requires the consumer gateway's signature on each event", granted.id)));
        }
        None => return Ok(()),
    };
    let unsigned = AccessEvent { consumer_signature: None, ..event.clone() };
    if !contract::ed25519_verify(&signature.key, &signature.signature, &unsigned.encode()) {
        return Err(Error::new("the consumer gateway's signature does not verify"));
    }
    match member(contract::account_of(&signature.key)) {
        Some(m) if m.acting && m.principal.kind == PrincipalKind::Gateway && m.principal.org == granted.grantee_org => {
            Ok(())
        }
        _ => Err(Error(format!("the signing key is not an acting gateway of grantee {}", granted.grantee_org))),
    }
}

pub fn record(args: &[u8]) -> MethodResult {
    let event = AccessEvent::decode(args)?;
    let granted = grant(event.grant)?;
    let gateway = gateway_of(&granted.grantor_org)?;
    if event.record_count == 0 {
        return Err(Error::new("an access returns at least one record"));
    }
    check_cosignature(&event, &granted)?;
    let use_ = Use {
        grant: event.grant,
        account: event.consumer,
        fields: event.fields.clone(),
        method: event.method,
        purpose: event.purpose.clone(),
        count: event.record_count,
    };
    // Counted, and this use's grant-history numbers reserved: the entries below are
    // appended here, numbered, without another call into authz.
    let answer = contract::call(&AUTHZ_ADDRESS, "record_use", &use_.encode(), 0)?;
    let Consumed { decision, first_seq } =
        Consumed::decode(&answer).map_err(|e| Error(format!("the authz contract answered badly: {}", e)))?;
    let mut seq = first_seq;
    let mut append_numbered = |mut entry: AuditEntry| {
        entry.grant_seq = seq;
        seq += 1;
        contract::audit_append(&entry.to_leaf())
    };
    let id = next(&NEXT_EVENT)?;
    let consumer_org = member(event.consumer).map(|m| m.principal.org).unwrap_or_default();
    let mut violation = None;
    if decision.violation {
        let vid = next(&NEXT_VIOLATION)?;
        let v = Violation {
            id: vid,
            event: id,
            grant: event.grant,
            consumer_org: consumer_org.clone(),
            reason: decision.reason.clone(),
            status: ViolationStatus::Open,
        };
        VIOLATIONS.save(&vid, &v);
        let body = v.encode();
        append_numbered(entry("violation.opened", &granted, event.consumer, &event.purpose, body));
        contract::emit_event("violation.opened", vid.to_string().as_bytes());
        violation = Some(vid);
    }
    let mut record = EventRecord {
        id,
        event,
        gateway,
        provider_org: granted.grantor_org.clone(),
        consumer_org,
        resource: granted.resource.clone(),
        permit: decision.permit,
        reason: decision.reason,
        violation,
        height: contract::block_height(),
        time_ms: contract::block_time_ms(),
        leaf: 0,
    };
    let topic = if record.permit { "access.permitted" } else { "access.denied" };
    // The leaf holds the record as it is before its own index is known (`leaf` 0).
    record.leaf =
        append_numbered(entry(topic, &granted, record.event.consumer, &record.event.purpose, record.encode()));
    EVENTS.save(&id, &record);
    BY_GRANT.save(&grant_key(record.event.grant, id), &id);
    contract::emit_event(topic, id.to_string().as_bytes());
    Ok(record.encode())
}

pub fn anchor(args: &[u8]) -> MethodResult {
    let batch = AnchorBatch::decode(args)?;
    let granted = grant(batch.grant)?;
    gateway_of(&granted.grantor_org)?;
    if batch.count == 0 || batch.period_end_ms < batch.period_start_ms {
        return Err(Error::new("a batch covers at least one event over a period that ends after it starts"));
    }
    let purpose = granted.terms.purposes.first().cloned().unwrap_or_default();
    let index = append(&entry("batch.anchored", &granted, contract::caller(), &purpose, batch.encode()))?;
    contract::emit_event("batch.anchored", index.to_string().as_bytes());
    Ok(index.encode())
}

/// Records a yes/no answer given instead of data; it counts as one `verify` use of the grant.
pub fn attest(args: &[u8]) -> MethodResult {
    let req = Attest::decode(args)?;
    let granted = grant(req.grant)?;
    let gateway = gateway_of(&granted.grantor_org)?;
    let use_ = Use {
        grant: req.grant,
        account: req.consumer,
        fields: Vec::new(),
        method: method::VERIFY,
        purpose: granted.terms.purposes.first().cloned().unwrap_or_default(),
        count: 1,
    };
    let answer = contract::call(&AUTHZ_ADDRESS, "consume", &use_.encode(), 0)?;
    let decision = Decision::decode(&answer).map_err(|e| Error(format!("the authz contract answered badly: {}", e)))?;
    let id = next(&NEXT_ATTESTATION)?;
    let purpose = use_.purpose.clone();
    let mut record = AttestationRecord {
        id,
        attest: req,
        gateway,
        permit: decision.permit,
        reason: decision.reason,
        height: contract::block_height(),
        time_ms: contract::block_time_ms(),
        leaf: 0,
    };
    let topic = if record.permit { "attestation.recorded" } else { "attestation.denied" };
    record.leaf = append(&entry(topic, &granted, record.attest.consumer, &purpose, record.encode()))?;
    ATTESTATIONS.save(&id, &record);
    contract::emit_event(topic, id.to_string().as_bytes());
    Ok(record.encode())
}

pub fn get_attestation(args: &[u8]) -> MethodResult {
    let id = EventId::decode(args)?.id;
    Ok(ATTESTATIONS.load(&id)?.ok_or_else(|| Error(format!("no attestation {}", id)))?.encode())
}

pub fn history(args: &[u8]) -> MethodResult {
    let req = History::decode(args)?;
    if req.limit == 0 || req.limit > HISTORY_PAGE_MAX {
        return Err(Error(format!("a page holds 1 to {} events", HISTORY_PAGE_MAX)));
    }
    let prefix = req.grant.to_be_bytes();
    let after = req.after.map(|a| grant_key(req.grant, a));
    // Page through this grant's keys only: the scan starts after `after` (or at the grant's
    // first key) and stops at the first key of another grant.
    let start = after.unwrap_or_else(|| {
        let mut k = prefix.to_vec();
        k.extend_from_slice(&[0; 8]);
        k
    });
    let mut out = Vec::new();
    for (key, id) in BY_GRANT.page(Some(&start), req.limit)? {
        if !key.starts_with(&prefix) {
            break;
        }
        if let Some(record) = EVENTS.load(&id)? {
            out.push(record);
        }
    }
    Ok(out.encode())
}

/// Records an auditor's query in the audit log before a node answers it: auditors' own
/// queries are audited too. Only an acting principal with the auditor role may log one.
pub fn log_query(args: &[u8]) -> MethodResult {
    let query = LogQuery::decode(args)?;
    let caller = contract::caller();
    let auditor = match member(caller) {
        Some(m) if m.acting && m.principal.roles & role::AUDITOR != 0 => m,
        _ => return Err(Error::new("only an acting principal with the auditor role may log an audit query")),
    };
    if query.reason.trim().is_empty() || query.reason.len() > 256 || query.value.len() > 256 {
        return Err(Error::new("a query needs a reason of 1 to 256 bytes and a value of at most 256"));
    }
    if query.to_ms < query.from_ms {
        return Err(Error::new("a query's period ends before it starts"));
    }
    let entry = AuditEntry {
        kind: "query.logged".to_string(),
        grant_seq: 0,
        grant: 0,
        request: 0,
        resource: String::new(),
        provider_org: String::new(),
        consumer_org: auditor.principal.org,
        principal: caller,
        purpose: query.reason.clone(),
        body: query.encode(),
    };
    let index = contract::audit_append(&entry.to_leaf());
    contract::emit_event("query.logged", index.to_string().as_bytes());
    Ok(index.encode())
}

pub fn get_event(args: &[u8]) -> MethodResult {
    let id = EventId::decode(args)?.id;
    Ok(EVENTS.load(&id)?.ok_or_else(|| Error(format!("no access event {}", id)))?.encode())
}

pub fn get_violation(args: &[u8]) -> MethodResult {
    let id = EventId::decode(args)?.id;
    Ok(VIOLATIONS.load(&id)?.ok_or_else(|| Error(format!("no violation {}", id)))?.encode())
}
