//! The light client: trusts the genesis validators and nothing else, and checks every answer
//! a node gives against headers finalized by a quorum of the validators of their epoch.
//!
//! - A header is accepted only with a finalization certificate of its own, signed by at
//!   least `n − f` distinct validators of the epoch the header's height falls in; the
//!   header must name that epoch's validator set.
//! - Validator-set changes are followed epoch by epoch (`shutong_getEpoch`): the old epoch's
//!   last header, certified by the old set, commits the state in which governance scheduled
//!   the new set, and proofs of that state give the new set. A change cannot be replaced
//!   once scheduled, so that state is the one the chain acted on.
//! - State answers are checked with sparse-Merkle proofs against a header's state root;
//!   audit-log answers with RFC 9162 inclusion proofs against its log root and size.
//! - The client remembers the largest log it has seen. A later header's log must extend it
//!   (a consistency proof), so a node that rewrites or truncates the log is caught.
//!
//! [`LightClient`] does no I/O, so each check can be tested with forged input;
//! [`VerifyingClient`] drives it over JSON-RPC.
//!
//! What it cannot catch alone: if a quorum of an old epoch's validators, long retired, sign a
//! forged chain, a node could hide the epoch change from a client that has not seen it. Ask
//! more than one node, or start from a recent trusted header.

use crate::client::{Client, ClientError};
use crate::rpc::Completeness;
use crate::rpc::{
    AuditPage, AuditProofInfo, AuditQuery, ConsistencyInfo, EpochInfo, HeaderInfo, StateProofInfo, method,
};
use jsonrpsee::rpc_params;
pub use shutong_api::audit_query::{Walk, entry_of, grant_log_key, off_query, walk_of};
use shutong_codec::Decode;
use shutong_system_api::audit::AuditEntry;
use shutong_system_api::governance::{PendingSet, ValidatorSet};
use shutong_types::auditlog::{self, ConsistencyProof, InclusionProof, LogProofError};
use shutong_types::keyspace::AuditLeaf;
use shutong_types::smt::{StateProof, StateProofError};
use shutong_types::{
    BlockHeader, Certificate, CertificateError, Hash, PublicKey, Suite, VoteKind, quorum, validator_set_hash,
};

/// Why an answer was not accepted. Each names what was wrong.
#[derive(Debug, thiserror::Error)]
pub enum LightError {
    #[error("the node's {what} does not decode: {reason}")]
    Malformed { what: &'static str, reason: String },
    #[error("header {height} is for chain {actual:?}, not {expected:?}")]
    WrongChain { height: u64, expected: String, actual: String },
    #[error("header {height} names crypto suite {actual}, but the trusted genesis says {expected}")]
    WrongSuite { height: u64, expected: Suite, actual: Suite },
    #[error("header {height} has no certificate of its own")]
    Uncertified { height: u64 },
    #[error("the certificate for header {height} is not a finalization of it: {reason}")]
    WrongSubject { height: u64, reason: String },
    #[error("the certificate names epoch {epoch}, whose validators this client does not know")]
    UnknownEpoch { epoch: u64 },
    #[error("header {height} is outside epoch {epoch} (heights {start}..{end:?}) that signed it")]
    OutsideEpoch { height: u64, epoch: u64, start: u64, end: Option<u64> },
    #[error("header {height} names validator set {named}, not epoch {epoch}'s {expected}")]
    ValidatorSet { height: u64, epoch: u64, named: Hash, expected: Hash },
    #[error("the certificate for header {height} does not verify")]
    Certificate { height: u64, source: CertificateError },
    #[error("the epoch {epoch} change does not check: {reason}")]
    EpochChange { epoch: u64, reason: String },
    #[error("the node answered for header {answered}, not the asked {asked}")]
    WrongHeight { asked: u64, answered: u64 },
    #[error("the state proof for key {key} does not check")]
    State { key: String, source: StateProofError },
    #[error("the audit-log proof for leaf {index} does not check")]
    Log { index: u64, source: LogProofError },
    #[error("the node sent proof for leaf {proven}, not the asked {asked}")]
    WrongLeaf { asked: u64, proven: u64 },
    #[error(
        "the log at header {height} has {claimed} leaves, fewer than the {known} already verified: the log was truncated"
    )]
    LogShrunk { height: u64, known: u64, claimed: u64 },
    #[error("the log at header {height} does not extend the one verified before")]
    Inconsistent { height: u64, source: LogProofError },
    #[error("the node's newest finalized header is {served}, below the {known} already verified")]
    Regressed { known: u64, served: u64 },
    #[error("audit leaf {index} does not answer the question: {reason}")]
    OffQuery { index: u64, reason: String },
    #[error("the answer to {question} is incomplete: {reason}")]
    Incomplete { question: String, reason: String },
    #[error(transparent)]
    Rpc(#[from] ClientError),
}

/// The question, as an incomplete answer names it.
fn question(query: &AuditQuery) -> String {
    format!("{} {:?} over {}..={}", query.by, query.value, query.from_ms, query.to_ms)
}

/// Checks that `items` are every entry answering `query`: consecutive numbers in the
/// sequence the query walks, starting just after `before` (or at 0) and ending just before
/// `after` (or at `count`, the sequence's length in the answering header's state). The
/// boundary items must answer the question's selector and lie outside its period.
pub fn check_complete(
    query: &AuditQuery,
    items: &[TrailItem],
    before: Option<&TrailItem>,
    after: Option<&TrailItem>,
    count: Option<u64>,
) -> Result<(), LightError> {
    let incomplete = |reason: String| LightError::Incomplete { question: question(query), reason };
    let walk = walk_of(query).map_err(incomplete)?;
    let number = |item: &TrailItem, what: &str| {
        walk.position(item.index, item.entry.as_ref())
            .ok_or_else(|| incomplete(format!("{what} (leaf {}) is not in its sequence", item.index)))
    };
    let mut expected = match before {
        None => 0,
        Some(b) => {
            if b.leaf.time_ms >= query.from_ms {
                return Err(incomplete(format!("the leaf before it (leaf {}) is not before the period", b.index)));
            }
            let n = number(b, "the leaf before it")?;
            n.checked_add(1).ok_or_else(|| incomplete(format!("the leaf before it claims entry {n}")))?
        }
    };
    for item in items {
        let n = number(item, "an item")?;
        if n != expected {
            return Err(incomplete(if n > expected {
                let missing =
                    if n == expected + 1 { format!("{expected} is") } else { format!("{expected} to {} are", n - 1) };
                format!("entry {missing} missing (leaf {} is entry {n})", item.index)
            } else {
                format!("entry {n} (leaf {}) comes where entry {expected} belongs", item.index)
            }));
        }
        expected = n.checked_add(1).ok_or_else(|| incomplete(format!("an item claims entry {n}")))?;
    }
    match (after, count) {
        (Some(a), _) => {
            if a.leaf.time_ms <= query.to_ms {
                return Err(incomplete(format!("the leaf after it (leaf {}) is not after the period", a.index)));
            }
            let n = number(a, "the leaf after it")?;
            if n != expected {
                return Err(incomplete(format!("entry {expected} is missing: the next after the period is {n}")));
            }
        }
        (None, Some(count)) if count == expected => {}
        (None, Some(count)) => {
            return Err(incomplete(format!("it stops before entry {expected}, but the proven count is {count}")));
        }
        (None, None) => return Err(incomplete("nothing proves where it ends".into())),
    }
    Ok(())
}

/// One answer to an auditor's question, proven.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TrailItem {
    pub index: u64,
    pub leaf: AuditLeaf,
    pub entry: Option<AuditEntry>,
    /// The item as the node sent it, with its proof, for an offline bundle.
    pub proof: AuditProofInfo,
}

fn malformed(what: &'static str) -> impl Fn(String) -> LightError {
    move |reason| LightError::Malformed { what, reason }
}

fn unhex(what: &'static str, text: &str) -> Result<Vec<u8>, LightError> {
    hex::decode(text).map_err(|e| malformed(what)(e.to_string()))
}

fn decode_hex<T: Decode>(what: &'static str, text: &str) -> Result<T, LightError> {
    T::decode(&unhex(what, text)?).map_err(|e| malformed(what)(e.to_string()))
}

/// One epoch's validators and the first height they validate.
pub type EpochSet = shutong_types::epoch::KnownEpoch;

/// A header this client has checked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Verified {
    pub header: BlockHeader,
    pub hash: Hash,
}

/// The verification state: the epochs followed so far, and the newest header and log.
#[derive(Debug, Clone)]
pub struct LightClient {
    chain_id: String,
    suite: Suite,
    epochs: Vec<EpochSet>,
    /// The epoch changes followed, in order, as the node sent them: what an offline bundle
    /// needs to reach the same validators.
    changes: Vec<EpochInfo>,
    latest: Option<Verified>,
}

impl LightClient {
    /// A client that trusts the genesis validators of `chain_id`, a chain of `suite`.
    pub fn new(chain_id: &str, suite: Suite, genesis_validators: Vec<PublicKey>) -> LightClient {
        let genesis = EpochSet { epoch: 0, start_height: 0, validators: genesis_validators, transports: Vec::new() };
        LightClient { chain_id: chain_id.to_string(), suite, epochs: vec![genesis], changes: Vec::new(), latest: None }
    }

    /// A light client trusting the chain id and validators of a genesis file's text (what
    /// `shutong init` and `shutong testnet init` write), and nothing else in it.
    pub fn from_genesis_json(text: &str) -> Result<LightClient, LightError> {
        #[derive(serde::Deserialize)]
        struct Validator {
            public_key: PublicKey,
        }
        #[derive(serde::Deserialize)]
        struct TrustRoot {
            chain_id: String,
            #[serde(default)]
            suite: Suite,
            validators: Vec<Validator>,
        }
        let root: TrustRoot =
            serde_json::from_str(text).map_err(|e| LightError::Malformed { what: "genesis", reason: e.to_string() })?;
        if root.validators.is_empty() {
            return Err(LightError::Malformed { what: "genesis", reason: "it names no validators".into() });
        }
        Ok(LightClient::new(&root.chain_id, root.suite, root.validators.into_iter().map(|v| v.public_key).collect()))
    }

    /// [`LightClient::from_genesis_json`] of a file, read up to 256 MiB.
    pub fn from_genesis_file(path: &std::path::Path) -> Result<LightClient, LightError> {
        use std::io::Read;
        let unreadable =
            |e: std::io::Error| LightError::Malformed { what: "genesis", reason: format!("{}: {e}", path.display()) };
        let mut text = String::new();
        std::fs::File::open(path).and_then(|f| f.take(256 << 20).read_to_string(&mut text)).map_err(unreadable)?;
        LightClient::from_genesis_json(&text)
    }

    pub fn chain_id(&self) -> &str {
        &self.chain_id
    }

    /// The chain's crypto suite, from the trusted genesis.
    pub fn suite(&self) -> Suite {
        self.suite
    }

    /// The newest epoch this client knows.
    pub fn epoch(&self) -> &EpochSet {
        self.epochs.last().expect("the genesis epoch is always known")
    }

    pub fn latest(&self) -> Option<&Verified> {
        self.latest.as_ref()
    }

    /// The genesis validators this client trusts.
    pub fn genesis_validators(&self) -> &[PublicKey] {
        &self.epochs[0].validators
    }

    /// The epoch changes followed so far.
    pub fn epoch_changes(&self) -> &[EpochInfo] {
        &self.changes
    }

    /// Checks a header by its own certificate.
    pub fn verify_header(&self, info: &HeaderInfo) -> Result<Verified, LightError> {
        let header: BlockHeader = decode_hex("header", &info.header_hex)?;
        let height = header.height;
        if height != info.height {
            return Err(LightError::WrongHeight { asked: info.height, answered: height });
        }
        if header.chain_id != self.chain_id {
            return Err(LightError::WrongChain { height, expected: self.chain_id.clone(), actual: header.chain_id });
        }
        if header.suite != self.suite {
            return Err(LightError::WrongSuite { height, expected: self.suite, actual: header.suite });
        }
        let certificate: Certificate = match &info.certificate_hex {
            Some(hex) => decode_hex("certificate", hex)?,
            None => return Err(LightError::Uncertified { height }),
        };
        let hash = header.hash();
        let subject = certificate.subject;
        if subject.kind != VoteKind::Finalize {
            return Err(LightError::WrongSubject { height, reason: format!("a {:?} vote", subject.kind) });
        }
        if subject.digest != hash {
            return Err(LightError::WrongSubject {
                height,
                reason: format!("it finalizes {}, not {hash}", subject.digest),
            });
        }
        let epoch = usize::try_from(subject.epoch)
            .ok()
            .and_then(|e| self.epochs.get(e))
            .ok_or(LightError::UnknownEpoch { epoch: subject.epoch })?;
        let end = self.epochs.get(epoch.epoch as usize + 1).map(|next| next.start_height);
        if height < epoch.start_height || end.is_some_and(|end| height >= end) {
            return Err(LightError::OutsideEpoch { height, epoch: epoch.epoch, start: epoch.start_height, end });
        }
        let expected = validator_set_hash(self.suite, &epoch.validators);
        if header.validator_set != expected {
            return Err(LightError::ValidatorSet { height, epoch: epoch.epoch, named: header.validator_set, expected });
        }
        certificate
            .verify(&self.chain_id, &epoch.validators, quorum(epoch.validators.len()))
            .map_err(|source| LightError::Certificate { height, source })?;
        Ok(Verified { header, hash })
    }

    /// Follows a change of validators to the epoch after the newest known one.
    pub fn apply_epoch(&mut self, info: &EpochInfo) -> Result<(), LightError> {
        let current = self.epoch().clone();
        let epoch = current.epoch + 1;
        let fail = |reason: String| LightError::EpochChange { epoch, reason };
        if info.epoch != epoch {
            return Err(fail(format!("the node described epoch {} instead", info.epoch)));
        }
        if info.start_height <= current.start_height || info.last_header.height + 1 != info.start_height {
            return Err(fail(format!(
                "it starts at {} after a last header {}, not after epoch {}'s start {}",
                info.start_height, info.last_header.height, current.epoch, current.start_height
            )));
        }
        // The old epoch's last header, by the old epoch's certificate.
        let last = self.verify_header(&info.last_header)?;
        let set_key = governance_key(shutong_system_api::governance::VALIDATORS_KEY);
        let pending_key = governance_key(shutong_system_api::governance::PENDING_KEY);
        let set: ValidatorSet = decode_value("validator set", &self.verify_state(&last, &info.validators, &set_key)?)?;
        let pending: PendingSet =
            decode_value("scheduled change", &self.verify_state(&last, &info.pending, &pending_key)?)?;
        let next = shutong_types::epoch::next_epoch(&current, info.start_height, &set, &pending).map_err(fail)?;
        self.epochs.push(next);
        self.changes.push(info.clone());
        Ok(())
    }

    /// Checks a state answer against a verified header; returns the proven value.
    pub fn verify_state(
        &self,
        at: &Verified,
        info: &StateProofInfo,
        key: &[u8],
    ) -> Result<Option<Vec<u8>>, LightError> {
        if info.height != at.header.height {
            return Err(LightError::WrongHeight { asked: at.header.height, answered: info.height });
        }
        let proof: StateProof = decode_hex("state proof", &info.proof_hex)?;
        let value = info.value_hex.as_deref().map(|v| unhex("state value", v)).transpose()?;
        proof
            .verify(self.suite, &at.header.state_root, key, value.as_deref())
            .map_err(|source| LightError::State { key: hex::encode(key), source })?;
        Ok(value)
    }

    /// Checks an audit-log answer against a verified header; returns the proven leaf.
    pub fn verify_audit(&self, at: &Verified, info: &AuditProofInfo, index: u64) -> Result<AuditLeaf, LightError> {
        if info.height != at.header.height {
            return Err(LightError::WrongHeight { asked: at.header.height, answered: info.height });
        }
        let proof: InclusionProof = decode_hex("inclusion proof", &info.proof_hex)?;
        if proof.index != index || info.index != index {
            return Err(LightError::WrongLeaf { asked: index, proven: proof.index });
        }
        if proof.size != at.header.audit_size {
            return Err(LightError::Log {
                index,
                source: LogProofError::IndexOutOfRange { index: proof.size, size: at.header.audit_size },
            });
        }
        let bytes = unhex("audit leaf", &info.leaf_hex)?;
        proof
            .verify(self.suite, &auditlog::leaf_hash(self.suite, &bytes), &at.header.audit_root)
            .map_err(|source| LightError::Log { index, source })?;
        AuditLeaf::decode(&bytes).map_err(|e| malformed("audit leaf")(e.to_string()))
    }

    /// Checks one answer item to `query` against `at` and appends it to `items`: its proof,
    /// that it answers the question, and that it comes after the items before it.
    pub fn accept_item(
        &self,
        at: &Verified,
        query: &AuditQuery,
        info: &AuditProofInfo,
        items: &mut Vec<TrailItem>,
    ) -> Result<(), LightError> {
        let leaf = self.verify_audit(at, info, info.index)?;
        if let Some(reason) = off_query(query, &leaf) {
            return Err(LightError::OffQuery { index: info.index, reason });
        }
        if let Some(previous) = items.last()
            && (previous.leaf.time_ms, previous.index) >= (leaf.time_ms, info.index)
        {
            return Err(LightError::OffQuery { index: info.index, reason: "it is out of order or repeated".into() });
        }
        items.push(TrailItem { index: info.index, entry: entry_of(&leaf), leaf, proof: info.clone() });
        Ok(())
    }

    /// Checks a boundary item of an answer to `query`: its proof, and that it answers the
    /// question's selector (its time is [`check_complete`]'s to check).
    pub fn verify_boundary(
        &self,
        at: &Verified,
        query: &AuditQuery,
        info: &AuditProofInfo,
    ) -> Result<TrailItem, LightError> {
        let leaf = self.verify_audit(at, info, info.index)?;
        let any_time = AuditQuery { from_ms: 0, to_ms: u64::MAX, ..query.clone() };
        if let Some(reason) = off_query(&any_time, &leaf) {
            return Err(LightError::OffQuery { index: info.index, reason: format!("as a boundary, {reason}") });
        }
        Ok(TrailItem { index: info.index, entry: entry_of(&leaf), leaf, proof: info.clone() })
    }

    /// Checks that `items` (each already accepted) are the whole answer to `query` at `at`,
    /// with what the node sent to prove it: the boundary items' and the count's proofs, then
    /// [`check_complete`].
    pub fn check_answer(
        &self,
        at: &Verified,
        query: &AuditQuery,
        items: &[TrailItem],
        proof: &Completeness,
    ) -> Result<(), LightError> {
        let walk = walk_of(query).map_err(|reason| LightError::Incomplete { question: question(query), reason })?;
        let before = proof.before.as_ref().map(|info| self.verify_boundary(at, query, info)).transpose()?;
        let after = proof.after.as_ref().map(|info| self.verify_boundary(at, query, info)).transpose()?;
        let count = match (&walk.count_key(), &proof.count) {
            (None, _) => Some(at.header.audit_size),
            (Some(key), Some(info)) => {
                let value = self.verify_state(at, info, key)?;
                Some(value.map_or(Ok(0), |b| u64::decode(&b).map_err(|e| malformed("entry count")(e.to_string())))?)
            }
            (Some(_), None) => None,
        };
        check_complete(query, items, before.as_ref(), after.as_ref(), count)
    }

    /// Accepts `next` as the newest header if its log extends the newest one's (checked by
    /// `consistency`, unused when there is no newest header yet or the log did not grow).
    pub fn advance(&mut self, next: Verified, consistency: Option<&ConsistencyInfo>) -> Result<(), LightError> {
        if let Some(known) = &self.latest {
            let height = next.header.height;
            if height < known.header.height {
                return Err(LightError::Regressed { known: known.header.height, served: height });
            }
            let (old_size, new_size) = (known.header.audit_size, next.header.audit_size);
            if new_size < old_size {
                return Err(LightError::LogShrunk { height, known: old_size, claimed: new_size });
            }
            let proof = match consistency {
                Some(info) => decode_hex::<ConsistencyProof>("consistency proof", &info.proof_hex)?,
                None => ConsistencyProof { from: old_size, to: new_size, path: Vec::new() },
            };
            if proof.from != old_size || proof.to != new_size {
                return Err(LightError::Inconsistent {
                    height,
                    source: LogProofError::PathLength { actual: proof.path.len(), expected: 0 },
                });
            }
            proof
                .verify(self.suite, &known.header.audit_root, &next.header.audit_root)
                .map_err(|source| LightError::Inconsistent { height, source })?;
        }
        self.latest = Some(next);
        Ok(())
    }
}

fn governance_key(name: &[u8]) -> Vec<u8> {
    let address = shutong_types::Address::system(shutong_system_api::names::GOVERNANCE);
    shutong_types::keyspace::contract_storage(&address, name)
}

fn decode_value<T: Decode>(what: &'static str, value: &Option<Vec<u8>>) -> Result<T, LightError> {
    let bytes = value.as_ref().ok_or_else(|| malformed(what)("the proof shows it absent".into()))?;
    T::decode(bytes).map_err(|e| malformed(what)(e.to_string()))
}

/// A light client over one node's JSON-RPC endpoint: every answer it returns has been
/// checked.
#[derive(Debug, Clone)]
pub struct VerifyingClient {
    pub client: Client,
    pub light: LightClient,
}

impl VerifyingClient {
    pub fn new(client: Client, light: LightClient) -> VerifyingClient {
        VerifyingClient { client, light }
    }

    /// Catches up to the node's newest finalized header: follows every epoch change up to
    /// it, checks its certificate, and checks that its log extends the last one seen.
    pub async fn sync(&mut self) -> Result<Verified, LightError> {
        self.sync_info().await.map(|(verified, _)| verified)
    }

    /// Syncs until the verified header commits the state and log *after* block `height`:
    /// header `height + 1` or later, as finalized headers carry their parent's roots. Use it
    /// after a transaction committed at `height` (its receipt's), or with the node's current
    /// height to read what is committed now. Gives up after `timeout`.
    pub async fn sync_past(&mut self, height: u64, timeout: std::time::Duration) -> Result<Verified, LightError> {
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            let verified = self.sync().await?;
            if verified.header.height > height {
                return Ok(verified);
            }
            if tokio::time::Instant::now() >= deadline {
                return Err(LightError::Uncertified { height: height + 1 });
            }
            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        }
    }

    /// [`VerifyingClient::sync`], also returning the header as the node sent it (for a
    /// bundle).
    pub async fn sync_info(&mut self) -> Result<(Verified, HeaderInfo), LightError> {
        let info: HeaderInfo = self.client.call_raw(method::GET_FINALIZED, rpc_params![]).await?;
        loop {
            match self.light.verify_header(&info) {
                Err(LightError::UnknownEpoch { .. }) => {
                    let next = self.light.epoch().epoch + 1;
                    let epoch: EpochInfo = self.client.call_raw(method::GET_EPOCH, rpc_params![next]).await?;
                    self.light.apply_epoch(&epoch)?;
                }
                Err(err) => return Err(err),
                Ok(verified) => {
                    let consistency = match self.light.latest() {
                        Some(known) if known.header.audit_size < verified.header.audit_size => {
                            let from = known.header.audit_size;
                            Some(
                                self.client
                                    .call_raw::<ConsistencyInfo>(
                                        method::GET_CONSISTENCY_PROOF,
                                        rpc_params![from, verified.header.height],
                                    )
                                    .await?,
                            )
                        }
                        _ => None,
                    };
                    self.light.advance(verified.clone(), consistency.as_ref())?;
                    return Ok((verified, info));
                }
            }
        }
    }

    fn latest(&self) -> Result<Verified, LightError> {
        self.light.latest().cloned().ok_or(LightError::Uncertified { height: 0 })
    }

    /// The value of a state key at the newest verified header, proven.
    pub async fn state(&self, key: &[u8]) -> Result<Option<Vec<u8>>, LightError> {
        let at = self.latest()?;
        let info: StateProofInfo =
            self.client.call_raw(method::GET_STATE_PROOF, rpc_params![hex::encode(key), at.header.height]).await?;
        self.light.verify_state(&at, &info, key)
    }

    /// Every leaf answering `query`, page by page, each proven in the log of the newest
    /// verified header, checked to answer the question, in strictly increasing order, and
    /// proven to be all of them ([`LightClient::check_answer`]).
    pub async fn audit_trail(&self, query: &AuditQuery) -> Result<Vec<TrailItem>, LightError> {
        self.audit_answer(query).await.map(|(items, _)| items)
    }

    /// [`VerifyingClient::audit_trail`], also returning what proved it complete (for a
    /// bundle).
    pub async fn audit_answer(&self, query: &AuditQuery) -> Result<(Vec<TrailItem>, Completeness), LightError> {
        let at = self.latest()?;
        let mut query = AuditQuery { height: Some(at.header.height), cursor: None, ..query.clone() };
        let mut items: Vec<TrailItem> = Vec::new();
        let mut proof = Completeness::default();
        loop {
            let page: AuditPage = self.client.call_raw(method::AUDIT_QUERY, rpc_params![query.clone()]).await?;
            for info in &page.items {
                self.light.accept_item(&at, &query, info, &mut items)?;
            }
            if query.cursor.is_none() {
                proof.before = page.completeness.before;
            }
            match page.next {
                Some(next) if !page.items.is_empty() => query.cursor = Some(next),
                _ => {
                    proof.after = page.completeness.after;
                    proof.count = page.completeness.count;
                    query.cursor = None;
                    self.light.check_answer(&at, &query, &items, &proof)?;
                    return Ok((items, proof));
                }
            }
        }
    }

    /// Audit-log leaf `index`, proven in the log of the newest verified header.
    pub async fn audit_leaf(&self, index: u64) -> Result<AuditLeaf, LightError> {
        let at = self.latest()?;
        let info: AuditProofInfo =
            self.client.call_raw(method::GET_AUDIT_PROOF, rpc_params![index, at.header.height]).await?;
        self.light.verify_audit(&at, &info, index)
    }
}

/// The name of the bundle format, first in every bundle.
pub const BUNDLE_FORMAT: &str = "shutong-audit-bundle/v2";

/// An audit trail with everything needed to check it offline: the trust root (chain and
/// genesis validators), the epoch changes from genesis to the answering header, that header
/// with its certificate, the question, and each item with its inclusion proof.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Bundle {
    pub format: String,
    pub chain_id: String,
    /// The chain's crypto suite (absent in bundles of `ed25519-blake3` chains made before
    /// the field).
    #[serde(default)]
    pub suite: Suite,
    pub genesis_validators: Vec<PublicKey>,
    pub epochs: Vec<EpochInfo>,
    pub header: HeaderInfo,
    pub query: AuditQuery,
    pub items: Vec<AuditProofInfo>,
    /// What proves the items are the whole answer.
    pub completeness: Completeness,
}

/// What checking a bundle established.
#[derive(Debug, Clone)]
pub struct BundleReport {
    pub header: Verified,
    pub epoch: EpochSet,
    pub items: Vec<TrailItem>,
    /// The items are proven to be all there is (always, for a bundle that checks).
    pub complete: bool,
}

impl Bundle {
    /// A bundle of `items` answering `query`, proven against `client`'s newest header.
    pub fn new(
        client: &LightClient,
        header: HeaderInfo,
        query: AuditQuery,
        items: &[TrailItem],
        completeness: Completeness,
    ) -> Bundle {
        Bundle {
            format: BUNDLE_FORMAT.to_string(),
            chain_id: client.chain_id().to_string(),
            suite: client.suite(),
            genesis_validators: client.genesis_validators().to_vec(),
            epochs: client.epoch_changes().to_vec(),
            header,
            query,
            items: items.iter().map(|i| i.proof.clone()).collect(),
            completeness,
        }
    }

    /// Checks everything in the bundle with no network: from the genesis validators through
    /// each epoch change to the header's certificate, then every item's proof, that it
    /// answers the question, and their order. `trusted` (a client holding the chain id,
    /// suite and genesis validators the caller trusts) must match the bundle's own if given.
    pub fn verify(&self, trusted: Option<&LightClient>) -> Result<BundleReport, LightError> {
        if self.format != BUNDLE_FORMAT {
            return Err(malformed("bundle")(format!("format {:?}, not {BUNDLE_FORMAT}", self.format)));
        }
        if let Some(trusted) = trusted
            && (trusted.chain_id() != self.chain_id
                || trusted.suite() != self.suite
                || trusted.genesis_validators() != self.genesis_validators.as_slice())
        {
            return Err(LightError::EpochChange {
                epoch: 0,
                reason: "the bundle's chain, suite or genesis validators are not the trusted ones".into(),
            });
        }
        let mut light = LightClient::new(&self.chain_id, self.suite, self.genesis_validators.clone());
        for change in &self.epochs {
            light.apply_epoch(change)?;
        }
        let header = light.verify_header(&self.header)?;
        let mut items: Vec<TrailItem> = Vec::with_capacity(self.items.len());
        for info in &self.items {
            light.accept_item(&header, &self.query, info, &mut items)?;
        }
        let query = AuditQuery { cursor: None, ..self.query.clone() };
        light.check_answer(&header, &query, &items, &self.completeness)?;
        Ok(BundleReport { header, epoch: light.epoch().clone(), items, complete: true })
    }
}
