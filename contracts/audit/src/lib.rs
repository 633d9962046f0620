//! Shutong's access audit system contract. The rules are in `shutong_system_api::audit`;
//! each refusal has its own error. Grants come from the authz contract, which also counts
//! each use (`consume`); who a gateway is comes from the registry. Grants and members are
//! read straight from those contracts' storage (`storage_get_of`); only what changes their
//! state (`consume`, `append_grant_entry`) is a call.

#![forbid(unsafe_code)]

use shutong_codec::{Decode, Encode};
use shutong_contract::{self as contract, Error, Item, Map, MethodResult};
use shutong_system_api::audit::{
    anchor_key, AccessEvent, AnchorBatch, AnchorRecord, AnchoredGroup, Attest, AttestationRecord, AuditEntry, EventId,
    EventRecord, GetAnchor, GroupCount, History, LogQuery, Violation, ViolationStatus, ANCHOR_LAG_MS_DEFAULT,
    ANCHOR_LAG_PARAM, BATCH_CLOCK_SKEW_MS, BATCH_EVENTS_MAX, BATCH_GROUPS_MAX,
};
use shutong_system_api::authz::{
    self as authz, duty, valid_purpose, BatchUse, Consumed, Counted, Decision, Grant, Use,
};
use shutong_system_api::catalog::method;
use shutong_system_api::governance::param_key;
use shutong_system_api::names::{AUTHZ_ADDRESS, GOVERNANCE_ADDRESS, REGISTRY_ADDRESS};
use shutong_system_api::registry::{role, Member, PrincipalKind};

contract::entrypoints!(
    record,
    anchor,
    get_anchor,
    attest,
    history,
    get_event,
    get_violation,
    get_attestation,
    log_query
);

const NEXT_EVENT: Item<u64> = Item::new(b"next-event");
const NEXT_VIOLATION: Item<u64> = Item::new(b"next-violation");
const EVENTS: Map<u64, EventRecord> = Map::new(b"event/");
const VIOLATIONS: Map<u64, Violation> = Map::new(b"violation/");
const NEXT_ATTESTATION: Item<u64> = Item::new(b"next-attestation");
const ATTESTATIONS: Map<u64, AttestationRecord> = Map::new(b"attestation/");
/// Event ids by grant: key grant (8 bytes BE) ‖ event (8 bytes BE).
const BY_GRANT: Map<Vec<u8>, u64> = Map::new(b"by-grant/");
const NEXT_ANCHOR: Item<u64> = Item::new(b"next-anchor");
/// The next batch number each gateway owes for each grant: key grant (8 bytes BE) ‖ gateway.
const ANCHOR_NEXT: Map<Vec<u8>, u64> = Map::new(b"anchor-next/");

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
        seqs: Vec::new(),
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
    if !contract::verify_signature(signature.key.as_slice(), &signature.signature, &unsigned.encode()) {
        return Err(Error::new("the consumer gateway's signature does not verify"));
    }
    let account = contract::account_of_key(signature.key.as_slice())
        .ok_or_else(|| Error::new("the consumer gateway's key is not of this chain's suite"))?;
    match member(account) {
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
    let Consumed { decision, first_seq, first_seqs } =
        Consumed::decode(&answer).map_err(|e| Error(format!("the authz contract answered badly: {}", e)))?;
    let mut nth = 0;
    let mut append_numbered = |mut entry: AuditEntry| {
        entry.grant_seq = first_seq + nth;
        entry.seqs = first_seqs.iter().map(|s| s + nth).collect();
        nth += 1;
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
            anchor: None,
            excess: 0,
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

/// Checks a batch's shape: groups, counts, purposes and period. A malformed batch is refused.
fn check_batch(batch: &AnchorBatch) -> Result<u64, Error> {
    if batch.seq == 0 || batch.seq == u64::MAX {
        return Err(Error::new("a gateway numbers its batches of a grant from 1, below 2^64 - 1"));
    }
    if batch.groups.is_empty() || batch.groups.len() > BATCH_GROUPS_MAX {
        return Err(Error(format!("a batch holds 1 to {} groups of uses", BATCH_GROUPS_MAX)));
    }
    for g in &batch.groups {
        if g.count == 0 {
            return Err(Error::new("each group of a batch holds at least one event"));
        }
        if !valid_purpose(&g.purpose) || g.method.count_ones() != 1 {
            return Err(Error::new("each group of a batch names one valid purpose code and one method"));
        }
        if g.fields.len() > 64 || g.fields.iter().any(|f| f.is_empty() || f.len() > 64) {
            return Err(Error::new("each group of a batch names at most 64 fields of 1 to 64 bytes"));
        }
    }
    let count = batch.count().filter(|c| *c <= BATCH_EVENTS_MAX);
    let count = count.ok_or_else(|| Error(format!("a batch holds at most {} events", BATCH_EVENTS_MAX)))?;
    if batch.period_end_ms <= batch.period_start_ms {
        return Err(Error::new("a batch's period ends after it starts"));
    }
    if batch.period_end_ms > contract::block_time_ms().saturating_add(BATCH_CLOCK_SKEW_MS) {
        return Err(Error::new("a batch's period ends in the future"));
    }
    Ok(count)
}

fn stream_key(grant: u64, gateway: &[u8; 32]) -> Vec<u8> {
    let mut key = grant.to_be_bytes().to_vec();
    key.extend_from_slice(gateway);
    key
}

fn load_anchor(grant: u64, gateway: &[u8; 32], seq: u64) -> Result<Option<AnchorRecord>, Error> {
    match contract::storage_get(&anchor_key(grant, gateway, seq)) {
        None => Ok(None),
        Some(bytes) => Ok(Some(
            AnchorRecord::decode(&bytes).map_err(|e| Error(format!("anchor record {} is corrupt: {}", seq, e)))?,
        )),
    }
}

/// The longest a gateway may wait to anchor a period, as the committee set it.
fn anchor_lag_ms_max() -> u64 {
    contract::storage_get_of(&GOVERNANCE_ADDRESS, &param_key(ANCHOR_LAG_PARAM))
        .and_then(|bytes| String::from_utf8(bytes).ok())
        .and_then(|text| text.parse().ok())
        .unwrap_or(ANCHOR_LAG_MS_DEFAULT)
}

/// Opens a violation of `granted` found in anchored batch `anchor`; returns its id.
fn batch_violation(
    granted: &Grant,
    anchor: u64,
    principal: [u8; 32],
    purpose: &str,
    excess: u64,
    reason: String,
) -> Result<u64, Error> {
    let id = next(&NEXT_VIOLATION)?;
    let v = Violation {
        id,
        event: 0,
        grant: granted.id,
        consumer_org: granted.grantee_org.clone(),
        reason,
        status: ViolationStatus::Open,
        anchor: Some(anchor),
        excess,
    };
    VIOLATIONS.save(&id, &v);
    append(&entry("violation.opened", granted, principal, purpose, v.encode()))?;
    contract::emit_event("violation.opened", id.to_string().as_bytes());
    Ok(id)
}

/// Records a gateway's batch. Its uses are counted against the grant group by group (what
/// the grant did not allow opens a violation with the excess), a gap in the gateway's
/// sequence and a late anchor open violations, and each group becomes a `batch.anchored`
/// entry. The same batch again is a no-op; another batch under a recorded number is refused.
pub fn anchor(args: &[u8]) -> MethodResult {
    let batch = AnchorBatch::decode(args)?;
    let granted = grant(batch.grant)?;
    let gateway = gateway_of(&granted.grantor_org)?;
    let size = check_batch(&batch)?;
    if let Some(recorded) = load_anchor(batch.grant, &gateway, batch.seq)? {
        if recorded.batch == batch {
            return Ok(recorded.encode());
        }
        return Err(Error(format!(
            "batch {} of grant {} from this gateway is already anchored with other contents",
            batch.seq, batch.grant
        )));
    }
    // Periods are contiguous: a batch starts where its predecessor ended and ends where its
    // successor (recorded when this one was missing) starts.
    if batch.seq > 1 {
        if let Some(before) = load_anchor(batch.grant, &gateway, batch.seq - 1)? {
            if before.batch.period_end_ms != batch.period_start_ms {
                return Err(Error(format!(
                    "batch {} must start at {}, where batch {} ended",
                    batch.seq,
                    before.batch.period_end_ms,
                    batch.seq - 1
                )));
            }
        }
    }
    if let Some(after) = load_anchor(batch.grant, &gateway, batch.seq + 1)? {
        if after.batch.period_start_ms != batch.period_end_ms {
            return Err(Error(format!(
                "batch {} must end at {}, where batch {} starts",
                batch.seq,
                after.batch.period_start_ms,
                batch.seq + 1
            )));
        }
    }
    let uses: Vec<Use> = batch
        .groups
        .iter()
        .map(|g| Use {
            grant: batch.grant,
            account: g.consumer,
            fields: g.fields.clone(),
            method: g.method,
            purpose: g.purpose.clone(),
            count: g.count,
        })
        .collect();
    let counting = BatchUse {
        grant: batch.grant,
        period_start_ms: batch.period_start_ms,
        period_end_ms: batch.period_end_ms,
        uses,
    };
    let answer = contract::call(&AUTHZ_ADDRESS, "record_batch", &counting.encode(), 0)?;
    let counts = Vec::<Counted>::decode(&answer)
        .ok()
        .filter(|c| c.len() == batch.groups.len())
        .ok_or_else(|| Error::new("the authz contract answered badly"))?;
    let id = next(&NEXT_ANCHOR)?;
    let first = &batch.groups[0];
    let stream = stream_key(batch.grant, &gateway);
    let expected = ANCHOR_NEXT.load(&stream)?.unwrap_or(1);
    let mut gap_violation = None;
    if batch.seq > expected {
        let reason = format!(
            "batches {} to {} of grant {} from gateway {} are missing",
            expected,
            batch.seq - 1,
            batch.grant,
            contract::hex(&gateway)
        );
        gap_violation = Some(batch_violation(&granted, id, gateway, &first.purpose, 0, reason)?);
    }
    if batch.seq >= expected {
        ANCHOR_NEXT.save(&stream, &(batch.seq + 1));
    }
    let now = contract::block_time_ms();
    let lag_max = anchor_lag_ms_max();
    let mut lag_violation = None;
    if now.saturating_sub(batch.period_end_ms) > lag_max {
        let reason = format!(
            "batch {} of grant {} was anchored {} ms after its period ended; at most {} ms are allowed",
            batch.seq,
            batch.grant,
            now - batch.period_end_ms,
            lag_max
        );
        lag_violation = Some(batch_violation(&granted, id, gateway, &first.purpose, 0, reason)?);
    }
    let mut counted = Vec::with_capacity(counts.len());
    for (g, c) in batch.groups.iter().zip(counts) {
        let violation = if c.excess > 0 {
            let reason = format!("batch {} of grant {}: {}", batch.seq, batch.grant, c.reason);
            Some(batch_violation(&granted, id, g.consumer, &g.purpose, c.excess, reason)?)
        } else {
            None
        };
        counted.push(GroupCount { permitted: c.permitted, excess: c.excess, reason: c.reason, violation });
    }
    let mut record = AnchorRecord {
        id,
        batch,
        gateway,
        counted,
        gap_violation,
        lag_violation,
        height: contract::block_height(),
        time_ms: now,
        leaf: 0,
    };
    let mut offset = 0;
    for (i, (g, c)) in record.batch.groups.iter().zip(&record.counted).enumerate() {
        let body = AnchoredGroup {
            anchor: id,
            gateway,
            seq: record.batch.seq,
            period_start_ms: record.batch.period_start_ms,
            period_end_ms: record.batch.period_end_ms,
            merkle_root: record.batch.merkle_root,
            size,
            offset,
            group: g.clone(),
            counted: c.clone(),
        };
        offset += g.count;
        let leaf = append(&entry("batch.anchored", &granted, g.consumer, &g.purpose, body.encode()))?;
        if i == 0 {
            record.leaf = leaf;
        }
    }
    contract::storage_set(&anchor_key(record.batch.grant, &gateway, record.batch.seq), &record.encode());
    contract::emit_event("batch.anchored", id.to_string().as_bytes());
    Ok(record.encode())
}

pub fn get_anchor(args: &[u8]) -> MethodResult {
    let req = GetAnchor::decode(args)?;
    Ok(load_anchor(req.grant, &req.gateway, req.seq)?
        .ok_or_else(|| Error(format!("no batch {} of grant {} from that gateway", req.seq, req.grant)))?
        .encode())
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
        seqs: Vec::new(),
        grant: 0,
        request: 0,
        resource: String::new(),
        provider_org: String::new(),
        consumer_org: auditor.principal.org,
        principal: caller,
        purpose: query.reason.clone(),
        body: query.encode(),
    };
    let index = append(&entry)?;
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
