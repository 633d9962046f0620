//! The data gateway helper: the policy enforcement point a providing department runs beside
//! its database.
//!
//! - It decides each request locally with the authz contract's own decision function
//!   ([`decide`]) on grants and memberships read from the chain *with proofs*, and counts the
//!   uses it permits, so a grant's limits hold between refreshes.
//! - A grant-changing event (`grant.revoked`, `grant.suspended`, …) drops the grant from the
//!   cache at once: until it is read again, every request under it is refused.
//! - It batches each permitted single-record use of a grant that allows batching, writing it
//!   to a durable journal ([`Gateway::open`]) before the data leaves; every other access is
//!   recorded on chain by itself (`audit.record`). Sealing a batch gives the `audit.anchor`
//!   arguments: a sequence number per grant, a period that starts where the previous batch
//!   ended, the uses grouped by consumer, fields, method and purpose, and the Merkle root
//!   over the events (RFC 9162). The chain counts each group against the grant. The gateway
//!   keeps the events and hands any event's inclusion proof to an auditor, who checks it
//!   against its group's anchor entry proven in the chain's audit log ([`verify_event`]).
//! - After a crash, [`Gateway::open`] reads the journal back: unsealed events wait in their
//!   batches and sealed, unconfirmed batches are submitted again ([`Gateway::unanchored`]);
//!   the chain ignores a batch it already holds, so each event is anchored exactly once.
//!
//! Besides its journal the core does no I/O; [`Gateway::refresh_grant`] and
//! [`Gateway::refresh_member`] read through a [`VerifyingClient`].

use crate::light::{LightError, VerifyingClient, entry_of};
use crate::rpc::{StateProofInfo, method};
use jsonrpsee::rpc_params;
use shutong_codec::{Decode, Encode};
use shutong_system_api::audit::{
    AccessEvent, AnchorBatch, AnchoredGroup, AuditEntry, BATCH_EVENTS_MAX, BATCH_GROUPS_MAX, BatchGroup,
};
use shutong_system_api::authz::{Decision, Grant, Use, count_use, decide, duty};
use shutong_system_api::names;
use shutong_system_api::registry::{Member, Org, Principal};
use shutong_types::auditlog::{self, InclusionProof, MemoryLog};
use shutong_types::keyspace::{self, AuditLeaf};
use shutong_types::{Address, Hash, Suite};
use std::collections::{BTreeMap, HashMap};

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

pub mod journal;

use journal::{Journal, JournalError, Record};

#[derive(Debug, thiserror::Error)]
pub enum GatewayError {
    #[error("no event {index} in batch {seq} of grant {grant}")]
    NoSuchEvent { grant: u64, seq: u64, index: u64 },
    #[error("the event's proof does not lead to the batch root: {0}")]
    NotInBatch(auditlog::LogProofError),
    #[error("the chain's entry is not the anchor of this event's group: {0}")]
    WrongAnchor(String),
    #[error(
        "the journal holds {max} events not yet anchored, its limit: anchor the sealed batches before serving more"
    )]
    JournalFull { max: u64 },
    #[error(transparent)]
    Journal(#[from] JournalError),
    #[error(transparent)]
    Chain(#[from] LightError),
}

/// One batched access: the event and when it was served (ms since the epoch).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Recorded {
    pub event: AccessEvent,
    pub time_ms: u64,
}

impl Recorded {
    /// The leaf bytes of this record in its batch.
    pub fn leaf(&self) -> Vec<u8> {
        let mut out = b"shutong.gateway-event/v2".to_vec();
        self.event.encode_to(&mut out);
        self.time_ms.encode_to(&mut out);
        out
    }

    /// The group of uses like this one, holding `count` of them.
    fn group(&self, count: u64) -> BatchGroup {
        let e = &self.event;
        BatchGroup {
            consumer: e.consumer,
            fields: e.fields.clone(),
            method: e.method,
            purpose: e.purpose.clone(),
            count,
        }
    }

    fn matches(&self, group: &BatchGroup) -> bool {
        let e = &self.event;
        e.consumer == group.consumer
            && e.fields == group.fields
            && e.method == group.method
            && e.purpose == group.purpose
    }
}

/// A batched event's place in the journal: [`Durable::wait`] returns once it is durable.
/// (Events not batched, and gateways without a journal, are durable at once.)
#[derive(Debug)]
#[must_use = "serve the data only after the event is durable"]
pub struct Durable(Option<journal::Commit>);

impl Durable {
    /// Waits until the event is written and fsynced, sharing the fsync with every event
    /// queued meanwhile. On an error, serve nothing: the journal refuses everything from
    /// then on, and a restarted gateway knows only what it made durable.
    pub fn wait(self) -> Result<(), GatewayError> {
        match self.0 {
            Some(commit) => Ok(commit.wait()?),
            None => Ok(()),
        }
    }

    /// [`Durable::wait`] for async handlers: the task sleeps until its round is fsynced,
    /// and no thread blocks.
    pub async fn wait_async(self) -> Result<(), GatewayError> {
        match self.0 {
            Some(commit) => Ok(commit.wait_async().await?),
            None => Ok(()),
        }
    }
}

/// Where [`Gateway::record`] put an event.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Journaled {
    /// In the grant's open batch, at this position, durable in the journal.
    Batched { index: u64 },
    /// Not batched: the caller records it on chain by itself (`audit.record`) before it
    /// returns any data; `why` says why.
    Single { why: &'static str },
}

/// The limits of a gateway's journal.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct JournalConfig {
    /// The most events journaled and not yet anchored; beyond it `record` refuses.
    pub max_waiting: u64,
    /// A journal larger than this is compacted when a batch is confirmed anchored.
    pub compact_bytes: u64,
}

impl Default for JournalConfig {
    fn default() -> JournalConfig {
        JournalConfig { max_waiting: 1_000_000, compact_bytes: 64 << 20 }
    }
}

/// One grant's batches: the next number, where the next period starts, the open events and
/// their groups.
#[derive(Debug, Default)]
struct Stream {
    next_seq: u64,
    start_ms: Option<u64>,
    open: Vec<Recorded>,
    groups: Vec<BatchGroup>,
}

impl Stream {
    fn push(&mut self, r: Recorded) {
        if !self.groups.iter().any(|g| r.matches(g)) {
            self.groups.push(r.group(0));
        }
        self.open.push(r);
    }
}

/// A sealed batch: what was anchored, and the events it covers (in tree order).
#[derive(Debug)]
struct Sealed {
    anchor: AnchorBatch,
    recorded: Vec<Recorded>,
    log: MemoryLog,
    anchored: bool,
}

/// What an auditor needs to check one event against the chain: the event, its inclusion
/// proof in the batch, and the batch's anchor arguments.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EventProof {
    pub recorded: Recorded,
    pub inclusion: InclusionProof,
    pub anchor: AnchorBatch,
}

impl EventProof {
    /// The position of the event's group in the batch: its `batch.anchored` entry is the
    /// anchor record's `leaf` plus this.
    pub fn group(&self) -> usize {
        let mut offset = 0u64;
        for (i, g) in self.anchor.groups.iter().enumerate() {
            offset = offset.saturating_add(g.count);
            if self.inclusion.index < offset {
                return i;
            }
        }
        self.anchor.groups.len()
    }
}

/// The gateway of one providing organisation.
#[derive(Debug, Default)]
pub struct Gateway {
    grants: HashMap<u64, Grant>,
    members: HashMap<[u8; 32], Option<Member>>,
    streams: HashMap<u64, Stream>,
    sealed: BTreeMap<(u64, u64), Sealed>,
    journal: Option<Journal>,
    config: JournalConfig,
    /// Events batched and not yet confirmed anchored.
    waiting: u64,
    /// The chain's suite: each batch's Merkle tree is hashed with it.
    suite: Suite,
}

/// The events of a batch in tree order, grouped by (consumer, fields, method, purpose) in
/// the order each group first appears, and the groups.
fn grouped(events: Vec<Recorded>) -> (Vec<Recorded>, Vec<BatchGroup>) {
    let mut groups: Vec<(BatchGroup, Vec<Recorded>)> = Vec::new();
    for r in events {
        match groups.iter_mut().find(|(g, _)| r.matches(g)) {
            Some((g, members)) => {
                g.count += 1;
                members.push(r);
            }
            None => groups.push((r.group(1), vec![r])),
        }
    }
    let mut ordered = Vec::new();
    let mut out = Vec::new();
    for (g, members) in groups {
        out.push(g);
        ordered.extend(members);
    }
    (ordered, out)
}

impl Gateway {
    /// A gateway for a chain of `suite` that keeps its events in memory only (tools, tests):
    /// a restart loses them.
    pub fn new(suite: Suite) -> Gateway {
        Gateway { suite, ..Gateway::default() }
    }

    /// A gateway whose batched events are durable in the journal `path` (created if absent).
    /// It reads back what the journal holds: events not yet sealed wait in their batches,
    /// and sealed batches the chain has not confirmed are in [`Gateway::unanchored`], to
    /// submit again (the chain ignores a batch it already recorded).
    pub fn open(path: &std::path::Path, suite: Suite, config: JournalConfig) -> Result<Gateway, GatewayError> {
        let (journal, records) = Journal::open(path)?;
        let mut g = Gateway { config, suite, ..Gateway::default() };
        let corrupt = |reason: String| JournalError::Corrupt { path: path.to_path_buf(), offset: 0, reason };
        for record in records {
            match record {
                Record::Event { event, time_ms } => {
                    g.stream(event.grant).push(Recorded { event, time_ms });
                    g.waiting += 1;
                }
                Record::Sealed { grant, seq, start_ms, end_ms, events } => {
                    let stream = g.stream(grant);
                    if stream.next_seq != seq || stream.open.len() as u64 != events {
                        return Err(corrupt(format!(
                            "batch {seq} of grant {grant} seals {events} events, but {} wait and batch {} is next",
                            stream.open.len(),
                            stream.next_seq
                        ))
                        .into());
                    }
                    g.seal_events(grant, seq, start_ms, end_ms);
                }
                Record::Anchored { grant, seq } => g.mark_anchored(grant, seq),
                Record::Cursor { grant, next_seq, start_ms } => {
                    let stream = g.stream(grant);
                    stream.next_seq = next_seq;
                    stream.start_ms = Some(start_ms);
                }
            }
        }
        g.journal = Some(journal);
        Ok(g)
    }

    fn stream(&mut self, grant: u64) -> &mut Stream {
        self.streams.entry(grant).or_insert_with(|| Stream { next_seq: 1, ..Stream::default() })
    }

    /// Puts a grant read from verified state into the cache. The uses the gateway batched
    /// and the chain has not confirmed are added to the chain's count, so a refresh never
    /// allows them twice.
    pub fn put_grant(&mut self, mut grant: Grant) {
        let open = self.streams.get(&grant.id).map_or(0, |s| s.open.len() as u64);
        let sealed: u64 = self
            .sealed
            .range((grant.id, 0)..=(grant.id, u64::MAX))
            .filter(|(_, s)| !s.anchored)
            .map(|(_, s)| s.recorded.len() as u64)
            .sum();
        grant.uses = grant.uses.saturating_add(open + sealed);
        grant.day_uses = grant.day_uses.saturating_add(open + sealed);
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

    /// Records an access the gateway decided. A permitted single-record access under a grant
    /// that allows batching goes into the grant's open batch, written to the journal (and
    /// fsynced) before this returns: serve the data only after it did. Every other access
    /// (denied, of several records, under a `PER_USE` or cosigned grant) is answered
    /// [`Journaled::Single`]: record it on chain by itself with `audit.record`.
    ///
    /// A gateway shared by many request handlers (behind a lock) should call
    /// [`Gateway::record_deferred`] instead and wait outside the lock, so that concurrent
    /// events share one fsync.
    pub fn record(&mut self, event: AccessEvent, decision: &Decision, time_ms: u64) -> Result<Journaled, GatewayError> {
        let (journaled, durable) = self.record_deferred(event, decision, time_ms)?;
        durable.wait()?;
        Ok(journaled)
    }

    /// [`Gateway::record`] without the wait: the event is in its batch and queued in the
    /// journal, and is durable once the answer's [`Durable::wait`] returns. Serve the data
    /// only after that; the wait needs no access to the gateway.
    pub fn record_deferred(
        &mut self,
        event: AccessEvent,
        decision: &Decision,
        time_ms: u64,
    ) -> Result<(Journaled, Durable), GatewayError> {
        let single = |why| Ok((Journaled::Single { why }, Durable(None)));
        if !decision.permit {
            return single("a denied access is recorded on chain by itself");
        }
        if event.record_count != 1 {
            return single("a batch counts one use an event: an access of several records goes alone");
        }
        let duties = self.grants.get(&event.grant).map_or(duty::PER_USE, |g| g.terms.duties);
        if duties & duty::PER_USE != 0 {
            return single("the grant is consumed use by use");
        }
        if duties & duty::COSIGNED_EVENTS != 0 {
            return single("the grant's events carry the consumer gateway's signature");
        }
        if self.waiting >= self.config.max_waiting {
            return Err(GatewayError::JournalFull { max: self.config.max_waiting });
        }
        // A batch holds at most BATCH_GROUPS_MAX groups and BATCH_EVENTS_MAX events: a full
        // one is sealed first, to be anchored with the others (`unanchored`).
        let recorded = Recorded { event, time_ms };
        let stream = self.stream(recorded.event.grant);
        let groups = stream.groups.len();
        let new_group = !stream.groups.iter().any(|g| recorded.matches(g));
        if (new_group && groups >= BATCH_GROUPS_MAX) || stream.open.len() as u64 >= BATCH_EVENTS_MAX {
            // Queued, not waited on: the event's own commit, behind it in the journal, makes
            // the seal durable too, and `unanchored` flushes before it hands a batch out.
            self.seal_queued(recorded.event.grant)?;
        }
        let commit = match &mut self.journal {
            Some(journal) => Some(journal.append(&[Record::Event { event: recorded.event.clone(), time_ms }])?),
            None => None,
        };
        self.waiting += 1;
        let stream = self.stream(recorded.event.grant);
        stream.push(recorded);
        Ok((Journaled::Batched { index: stream.open.len() as u64 - 1 }, Durable(commit)))
    }

    /// How many events wait in grant `grant`'s open batch.
    pub fn pending(&self, grant: u64) -> u64 {
        self.streams.get(&grant).map_or(0, |s| s.open.len() as u64)
    }

    /// Closes grant `grant`'s open batch; returns the `audit.anchor` arguments to submit
    /// (`builder::audit_trail::anchor`), or `None` if it is empty. The batch's period
    /// starts where the grant's previous batch ended and ends after its last event. (A batch
    /// that fills up, at 32 groups, is sealed by `record` itself: submit every batch in
    /// [`Gateway::unanchored`].)
    pub fn seal(&mut self, grant: u64) -> Result<Option<AnchorBatch>, GatewayError> {
        let sealed = self.seal_queued(grant)?;
        if let Some(journal) = &self.journal {
            journal.flush()?;
        }
        Ok(sealed)
    }

    /// [`Gateway::seal`] with the seal queued in the journal, not yet durable.
    fn seal_queued(&mut self, grant: u64) -> Result<Option<AnchorBatch>, GatewayError> {
        let Some(stream) = self.streams.get(&grant).filter(|s| !s.open.is_empty()) else {
            return Ok(None);
        };
        let first = stream.open.iter().map(|r| r.time_ms).min().unwrap_or(0);
        let last = stream.open.iter().map(|r| r.time_ms).max().unwrap_or(0);
        let start = stream.start_ms.unwrap_or(first);
        let end = last.saturating_add(1).max(start.saturating_add(1));
        let (seq, events) = (stream.next_seq, stream.open.len() as u64);
        if let Some(journal) = &mut self.journal {
            // Only queued: `seal` and `unanchored` make it durable before the batch leaves.
            let _queued = journal.append(&[Record::Sealed { grant, seq, start_ms: start, end_ms: end, events }])?;
        }
        Ok(Some(self.seal_events(grant, seq, start, end)))
    }

    fn seal_events(&mut self, grant: u64, seq: u64, start: u64, end: u64) -> AnchorBatch {
        let stream = self.stream(grant);
        let events = std::mem::take(&mut stream.open);
        stream.groups.clear();
        stream.next_seq = seq + 1;
        stream.start_ms = Some(end);
        let (recorded, groups) = grouped(events);
        let mut log = MemoryLog::new(self.suite);
        for r in &recorded {
            log.push(auditlog::leaf_hash(self.suite, &r.leaf()));
        }
        let anchor =
            AnchorBatch { grant, seq, period_start_ms: start, period_end_ms: end, groups, merkle_root: log.root().0 };
        self.sealed.insert((grant, seq), Sealed { anchor: anchor.clone(), recorded, log, anchored: false });
        anchor
    }

    /// The sealed batches the chain has not confirmed, oldest first: submit each (again).
    /// Their seals are made durable first, so no batch reaches the chain that a restarted
    /// gateway would not know it sealed.
    pub fn unanchored(&self) -> Result<Vec<AnchorBatch>, GatewayError> {
        if let Some(journal) = &self.journal {
            journal.flush()?;
        }
        Ok(self.sealed.values().filter(|s| !s.anchored).map(|s| s.anchor.clone()).collect())
    }

    /// Notes that the chain recorded batch `seq` of `grant` (its `audit.anchor` succeeded,
    /// or answered the record of that batch). A journal past its size limit is compacted:
    /// the events of anchored batches leave it, and memory.
    pub fn anchored(&mut self, grant: u64, seq: u64) -> Result<(), GatewayError> {
        if self.sealed.get(&(grant, seq)).is_none_or(|s| s.anchored) {
            return Ok(());
        }
        if let Some(journal) = &mut self.journal {
            journal.append_durably(&[Record::Anchored { grant, seq }])?;
        }
        self.mark_anchored(grant, seq);
        if self.journal.as_ref().is_some_and(|j| j.bytes() > self.config.compact_bytes) {
            self.compact()?;
        }
        Ok(())
    }

    fn mark_anchored(&mut self, grant: u64, seq: u64) {
        if let Some(s) = self.sealed.get_mut(&(grant, seq)).filter(|s| !s.anchored) {
            s.anchored = true;
            self.waiting = self.waiting.saturating_sub(s.recorded.len() as u64);
        }
    }

    /// Rewrites the journal with only what is not yet anchored, and forgets anchored
    /// batches (their proofs come from the department's own archive from then on).
    pub fn compact(&mut self) -> Result<(), GatewayError> {
        let Some(journal) = &mut self.journal else { return Ok(()) };
        self.sealed.retain(|_, s| !s.anchored);
        let mut records = Vec::new();
        let mut grants: Vec<u64> = self.streams.keys().copied().collect();
        grants.sort_unstable();
        for grant in grants {
            let stream = &self.streams[&grant];
            let waiting: Vec<&Sealed> = self.sealed.range((grant, 0)..=(grant, u64::MAX)).map(|(_, s)| s).collect();
            let (next_seq, start) = match waiting.first() {
                Some(s) => (s.anchor.seq, Some(s.anchor.period_start_ms)),
                None => (stream.next_seq, stream.start_ms),
            };
            if let Some(start_ms) = start {
                records.push(Record::Cursor { grant, next_seq, start_ms });
            }
            for s in waiting {
                records.extend(s.recorded.iter().map(|r| Record::Event { event: r.event.clone(), time_ms: r.time_ms }));
                let a = &s.anchor;
                records.push(Record::Sealed {
                    grant,
                    seq: a.seq,
                    start_ms: a.period_start_ms,
                    end_ms: a.period_end_ms,
                    events: s.recorded.len() as u64,
                });
            }
            records.extend(stream.open.iter().map(|r| Record::Event { event: r.event.clone(), time_ms: r.time_ms }));
        }
        journal.rewrite(&records)?;
        Ok(())
    }

    /// Event `index` (in tree order) of batch `seq` of `grant`, with its proof for an auditor.
    pub fn proof(&self, grant: u64, seq: u64, index: u64) -> Result<EventProof, GatewayError> {
        let missing = GatewayError::NoSuchEvent { grant, seq, index };
        let Some(sealed) = self.sealed.get(&(grant, seq)) else { return Err(missing) };
        let Some(recorded) = usize::try_from(index).ok().and_then(|i| sealed.recorded.get(i)) else {
            return Err(missing);
        };
        let Some(inclusion) = auditlog::prove_inclusion(&sealed.log, index, sealed.log.size()) else {
            return Err(missing);
        };
        Ok(EventProof { recorded: recorded.clone(), inclusion, anchor: sealed.anchor.clone() })
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

/// Checks an event's proof against the `batch.anchored` entry of its group, which the
/// auditor proved in the chain's log: the event is in the batch at a position of that group,
/// it is a use of that group (consumer, fields, method, purpose), and the chain's entry
/// anchors exactly this batch with the tree size the proof names. `suite` is the chain's.
pub fn verify_event(suite: Suite, proof: &EventProof, anchor_leaf: &AuditLeaf) -> Result<(), GatewayError> {
    let wrong = |why: String| GatewayError::WrongAnchor(why);
    let entry: AuditEntry = entry_of(anchor_leaf).ok_or_else(|| wrong("the leaf is no audit entry".into()))?;
    let a = &proof.anchor;
    if entry.kind != "batch.anchored" || entry.grant != a.grant || proof.recorded.event.grant != a.grant {
        return Err(wrong(format!("a {} entry of grant {}", entry.kind, entry.grant)));
    }
    let body = AnchoredGroup::decode(&entry.body).map_err(|e| wrong(e.to_string()))?;
    if (body.seq, body.merkle_root, body.period_start_ms, body.period_end_ms)
        != (a.seq, a.merkle_root, a.period_start_ms, a.period_end_ms)
    {
        return Err(wrong(format!("it anchors batch {} of another root or period", body.seq)));
    }
    if Some(body.size) != a.count() || proof.inclusion.size != body.size {
        return Err(wrong(format!("the batch holds {} events, the proof says {}", body.size, proof.inclusion.size)));
    }
    let index = proof.inclusion.index;
    if index < body.offset || index - body.offset >= body.group.count {
        return Err(wrong(format!(
            "event {index} lies outside this group's events {} to {}",
            body.offset,
            body.offset.saturating_add(body.group.count)
        )));
    }
    if !proof.recorded.matches(&body.group) {
        return Err(wrong("the event is not a use of this group's consumer, fields, method and purpose".into()));
    }
    proof
        .inclusion
        .verify(suite, &auditlog::leaf_hash(suite, &proof.recorded.leaf()), &Hash(body.merkle_root))
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
        let mut g = Gateway::new(Suite::Ed25519Blake3);
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

    /// The chain's entry for group `group` of `anchor`, as the audit contract appends it.
    fn anchored_leaf(anchor: &AnchorBatch, group: usize) -> AuditLeaf {
        let offset = anchor.groups[..group].iter().map(|g| g.count).sum();
        let body = AnchoredGroup {
            anchor: 1,
            gateway: [3; 32],
            seq: anchor.seq,
            period_start_ms: anchor.period_start_ms,
            period_end_ms: anchor.period_end_ms,
            merkle_root: anchor.merkle_root,
            size: anchor.count().unwrap(),
            offset,
            group: anchor.groups[group].clone(),
            counted: shutong_system_api::audit::GroupCount {
                permitted: anchor.groups[group].count,
                excess: 0,
                reason: String::new(),
                violation: None,
            },
        };
        let entry = AuditEntry {
            kind: "batch.anchored".into(),
            grant: anchor.grant,
            grant_seq: 9,
            seqs: Vec::new(),
            request: 1,
            resource: "market/licence".into(),
            provider_org: "market".into(),
            consumer_org: "acme".into(),
            principal: anchor.groups[group].consumer,
            purpose: anchor.groups[group].purpose.clone(),
            body: body.encode(),
        };
        AuditLeaf { contract: Address::system(names::AUDIT), height: 5, time_ms: NOW, data: entry.to_leaf() }
    }

    fn serve(g: &mut Gateway, u: &Use, at: u64) -> Journaled {
        let decision = g.authorize(u, at);
        g.record(event(u), &decision, at).unwrap()
    }

    #[test]
    fn a_sealed_batch_groups_its_uses_and_proves_each_event() {
        let mut g = gateway(1_000);
        for i in 0..37 {
            let purpose = if i % 3 == 0 { "licensing.renewal.online" } else { "licensing.renewal" };
            assert!(matches!(serve(&mut g, &request(7, &["uscc"], purpose), NOW + i), Journaled::Batched { .. }));
        }
        let denied = serve(&mut g, &request(7, &["legal_rep_id"], "licensing.renewal"), NOW + 40);
        assert!(matches!(denied, Journaled::Single { .. }), "a denial goes on chain by itself");
        assert_eq!(g.pending(7), 37);
        let anchor = g.seal(7).unwrap().unwrap();
        assert_eq!(
            (anchor.seq, anchor.count(), anchor.period_start_ms, anchor.period_end_ms),
            (1, Some(37), NOW, NOW + 37)
        );
        let counts: Vec<(&str, u64)> = anchor.groups.iter().map(|g| (g.purpose.as_str(), g.count)).collect();
        assert_eq!(counts, [("licensing.renewal.online", 13), ("licensing.renewal", 24)]);
        assert!(g.seal(7).unwrap().is_none(), "nothing left to seal");
        for index in [0, 12, 13, 36] {
            let proof = g.proof(7, 1, index).unwrap();
            verify_event(Suite::Ed25519Blake3, &proof, &anchored_leaf(&anchor, proof.group())).unwrap();
        }
        let proof = g.proof(7, 1, 17).unwrap();
        let leaf = anchored_leaf(&anchor, 1);
        let mut changed = proof.clone();
        changed.recorded.event.result_hash[0] ^= 1;
        assert!(matches!(verify_event(Suite::Ed25519Blake3, &changed, &leaf), Err(GatewayError::NotInBatch(_))));
        let err = verify_event(Suite::Ed25519Blake3, &proof, &anchored_leaf(&anchor, 0)).unwrap_err().to_string();
        assert!(err.contains("lies outside this group's events 0 to 13"), "{err}");
        let mut smaller = proof.clone();
        smaller.anchor.groups[1].count = 23;
        assert!(matches!(verify_event(Suite::Ed25519Blake3, &smaller, &leaf), Err(GatewayError::WrongAnchor(_))));
        assert!(matches!(g.proof(7, 1, 37), Err(GatewayError::NoSuchEvent { .. })));
        // The next batch starts where this one ended.
        serve(&mut g, &request(7, &["uscc"], "licensing.renewal"), NOW + 90);
        let next = g.seal(7).unwrap().unwrap();
        assert_eq!((next.seq, next.period_start_ms, next.period_end_ms), (2, NOW + 37, NOW + 91));
    }

    #[test]
    fn a_batch_that_fills_up_is_sealed_and_waits_to_be_anchored() {
        let mut g = gateway(1_000_000);
        let permit = Decision { permit: true, reason: String::new(), violation: false };
        for i in 0..=BATCH_GROUPS_MAX as u64 {
            let u = Use { account: [i as u8; 32], ..request(7, &["uscc"], "licensing.renewal") };
            assert!(matches!(g.record(event(&u), &permit, NOW + i).unwrap(), Journaled::Batched { .. }));
        }
        let full = g.unanchored().unwrap();
        assert_eq!(full.len(), 1, "the 33rd consumer starts a new batch");
        assert_eq!((full[0].seq, full[0].groups.len(), g.pending(7)), (1, BATCH_GROUPS_MAX, 1));
        let next = g.seal(7).unwrap().unwrap();
        assert_eq!((next.seq, next.period_start_ms), (2, full[0].period_end_ms));
    }

    #[test]
    fn a_batch_sealed_by_itself_is_durable_before_it_is_handed_out() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("gateway.journal");
        let mut g = Gateway::open(&path, Suite::Ed25519Blake3, JournalConfig::default()).unwrap();
        g.put_grant(grant(7, 1_000_000));
        let permit = Decision { permit: true, reason: String::new(), violation: false };
        // The writer is held back: the 33rd consumer's event seals batch 1, and the seal is
        // only queued.
        fn journal(g: &Gateway) -> &Journal {
            g.journal.as_ref().unwrap()
        }
        journal(&g).pause(true);
        for i in 0..=BATCH_GROUPS_MAX as u64 {
            let u = Use { account: [i as u8; 32], ..request(7, &["uscc"], "licensing.renewal") };
            let (journaled, _not_waited) = g.record_deferred(event(&u), &permit, NOW + i).unwrap();
            assert!(matches!(journaled, Journaled::Batched { .. }));
        }
        let handed_out = std::thread::scope(|s| {
            let asking = s.spawn(|| g.unanchored().unwrap());
            // `unanchored` waits for the journal before it hands the batch out.
            journal(&g).await_waiters(1);
            assert_eq!(journal(&g).syncs(), 0);
            journal(&g).pause(false);
            asking.join().unwrap()
        });
        assert_eq!(handed_out.len(), 1);
        drop(g); // the process dies right after submitting the batch
        let g = Gateway::open(&path, Suite::Ed25519Blake3, JournalConfig::default()).unwrap();
        assert_eq!(g.unanchored().unwrap(), handed_out, "the restarted gateway knows the batch it submitted");
    }

    #[tokio::test(flavor = "current_thread")]
    async fn async_handlers_sleep_until_their_round_is_durable() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("gateway.journal");
        let mut g = Gateway::open(&path, Suite::Ed25519Blake3, JournalConfig::default()).unwrap();
        g.put_grant(grant(7, 1_000_000));
        g.put_member(ANALYST, Some(member(ANALYST)));
        let g = std::sync::Arc::new(std::sync::Mutex::new(g));
        // One thread runs every handler: a blocking wait would stall them all.
        let handlers: Vec<_> = (0..50u64)
            .map(|t| {
                let g = std::sync::Arc::clone(&g);
                tokio::spawn(async move {
                    for i in 0..4u64 {
                        let u = request(7, &["uscc"], "licensing.renewal");
                        let durable = {
                            let mut g = g.lock().unwrap();
                            let decision = g.authorize(&u, NOW + t * 10 + i);
                            g.record_deferred(event(&u), &decision, NOW + t * 10 + i).unwrap().1
                        };
                        durable.wait_async().await.unwrap();
                    }
                })
            })
            .collect();
        for h in handlers {
            h.await.unwrap();
        }
        let g = std::sync::Arc::into_inner(g).unwrap().into_inner().unwrap();
        let syncs = g.journal.as_ref().unwrap().syncs();
        assert!(syncs < 200, "200 events in {syncs} rounds: handlers waiting together share a round");
        drop(g);
        let reopened = Gateway::open(&path, Suite::Ed25519Blake3, JournalConfig::default()).unwrap();
        assert_eq!(reopened.pending(7), 200, "every event awaited is in the journal");
    }

    #[test]
    fn small_and_cosigned_grants_are_never_batched() {
        let mut g = gateway(1_000);
        let mut per_use = grant(8, 1_000);
        per_use.terms.duties |= duty::PER_USE;
        g.put_grant(per_use);
        let mut cosigned = grant(9, 1_000);
        cosigned.terms.duties |= duty::COSIGNED_EVENTS;
        g.put_grant(cosigned);
        for id in [8, 9] {
            assert!(matches!(
                serve(&mut g, &request(id, &["uscc"], "licensing.renewal"), NOW),
                Journaled::Single { .. }
            ));
        }
        let mut several = request(7, &["uscc"], "licensing.renewal");
        several.count = 2;
        let decision = g.authorize(&several, NOW);
        let e = AccessEvent { record_count: 2, ..event(&several) };
        assert!(matches!(g.record(e, &decision, NOW).unwrap(), Journaled::Single { .. }));
        assert_eq!((g.pending(7), g.pending(8), g.pending(9)), (0, 0, 0));
    }

    #[test]
    fn a_restarted_gateway_anchors_each_journaled_event_exactly_once() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("gateway.journal");
        let config = JournalConfig { max_waiting: 5, compact_bytes: u64::MAX };
        let mut g = Gateway::open(&path, Suite::Ed25519Blake3, config).unwrap();
        g.put_grant(grant(7, 1_000));
        g.put_member(ANALYST, Some(member(ANALYST)));
        for i in 0..3 {
            serve(&mut g, &request(7, &["uscc"], "licensing.renewal"), NOW + i);
        }
        let first = g.seal(7).unwrap().unwrap();
        for i in 3..5 {
            serve(&mut g, &request(7, &["uscc"], "licensing.renewal"), NOW + i);
        }
        let decision = g.authorize(&request(7, &["uscc"], "licensing.renewal"), NOW + 5);
        let full = g.record(event(&request(7, &["uscc"], "licensing.renewal")), &decision, NOW + 5);
        assert!(matches!(full, Err(GatewayError::JournalFull { max: 5 })), "{full:?}");
        drop(g); // the process dies: batch 1 submitted or not, 2 events unsealed

        let mut g = Gateway::open(&path, Suite::Ed25519Blake3, config).unwrap();
        assert_eq!(g.unanchored().unwrap(), vec![first.clone()], "the sealed batch, to submit again");
        assert_eq!(g.pending(7), 2);
        g.anchored(7, 1).unwrap();
        let second = g.seal(7).unwrap().unwrap();
        assert_eq!((second.seq, second.period_start_ms, second.count()), (2, first.period_end_ms, Some(2)));
        drop(g);

        let mut g = Gateway::open(&path, Suite::Ed25519Blake3, config).unwrap();
        assert_eq!(g.unanchored().unwrap(), vec![second.clone()], "batch 1 is confirmed and never offered again");
        g.anchored(7, 2).unwrap();
        assert!(g.unanchored().unwrap().is_empty());
        // A compaction keeps the numbering and the period.
        g.compact().unwrap();
        drop(g);
        let mut g = Gateway::open(&path, Suite::Ed25519Blake3, config).unwrap();
        g.put_grant(grant(7, 1_000));
        g.put_member(ANALYST, Some(member(ANALYST)));
        serve(&mut g, &request(7, &["uscc"], "licensing.renewal"), NOW + 50);
        let third = g.seal(7).unwrap().unwrap();
        assert_eq!((third.seq, third.period_start_ms), (3, second.period_end_ms));
    }

    #[test]
    fn handlers_sharing_a_gateway_wait_outside_its_lock_and_every_event_is_journaled() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("gateway.journal");
        let mut g = Gateway::open(&path, Suite::Ed25519Blake3, JournalConfig::default()).unwrap();
        g.put_grant(grant(7, 1_000_000));
        g.put_member(ANALYST, Some(member(ANALYST)));
        let g = std::sync::Mutex::new(g);
        std::thread::scope(|s| {
            for t in 0..4u64 {
                let g = &g;
                s.spawn(move || {
                    for i in 0..100u64 {
                        let u = request(7, &["uscc"], "licensing.renewal");
                        let at = NOW + t * 1_000 + i;
                        let durable = {
                            let mut g = g.lock().unwrap();
                            let decision = g.authorize(&u, at);
                            let (journaled, durable) = g.record_deferred(event(&u), &decision, at).unwrap();
                            assert!(matches!(journaled, Journaled::Batched { .. }), "{journaled:?}");
                            durable
                        };
                        durable.wait().unwrap();
                    }
                });
            }
        });
        let served = g.into_inner().unwrap();
        assert_eq!(served.pending(7), 400);
        drop(served);
        let reopened = Gateway::open(&path, Suite::Ed25519Blake3, JournalConfig::default()).unwrap();
        assert_eq!(reopened.pending(7), 400, "every event waited on is in the journal");
    }
}
