//! Shutong's governance system contract: the committee, its proposals and what they decide.
//!
//! The committee is a list of seats (an account voting for an organisation) and a threshold
//! of distinct organisations (`shutong_system_api::governance::Committee`); genesis names
//! it. A seat proposes (its vote counts) and the others vote; a proposal is carried, and its
//! action executed, once seats of `threshold` distinct organisations voted for it; a second
//! seat of an organisation that already voted is refused; a proposal lapses after
//! `PROPOSAL_BLOCKS`. While the threshold is one organisation, `set_validators` and
//! `approve_code` may also be called directly by a seat.
//!
//! Lifecycle decisions over contracts are not executed at once: a carried
//! `Action::Lifecycle` is scheduled `lifecycle_delay_blocks` later, and the node carries it
//! out before that block, recording its outcome (`get_outcome`).
//!
//! Events: `validators.scheduled` (activation height), `code.approved` (hash, hex),
//! `proposal.created`, `proposal.voted`, `proposal.executed` (id), `committee.changed`
//! (threshold), `lifecycle.scheduled` (`id@height`), `param.set`, `purpose.defined`.

#![forbid(unsafe_code)]

use shutong_codec::{Decode, Encode};
use shutong_contract::Map;
use shutong_contract::{self as contract, Error, MethodResult};
use shutong_system_api::catalog::AssignSource;
use shutong_system_api::governance::{
    approved_code_key, basis, conflict, epoch_set_key, evidence_id, outcome_key, param_key, param_range,
    possession_message, scheduled_key, transport_binding_message, Action, ApproveCode, Committee, Equivocation,
    EvidencePage, EvidenceRecord, KeyProof, LifecycleOutcome, ListEvidence, PendingSet, Proposal, ProposalId, Propose,
    PurposeDef, ResolvePurpose, ScheduledOp, SetValidators, TransportKey, ValidatorSet, Validators, CHAIN_ID_KEY,
    CHANGE_DELAY_BLOCKS, COMMITTEE_KEY, EVIDENCE_PAGE_MAX, EVIDENCE_PREFIX, LIFECYCLE_DELAY_BLOCKS_DEFAULT,
    LIFECYCLE_DELAY_PARAM, PARAMS, PENDING_KEY, PROPOSAL_BLOCKS, PURPOSE_PREFIX, VALIDATORS_KEY, VALIDATORS_MIN_PARAM,
};
use shutong_system_api::names::{CATALOG_ADDRESS, REGISTRY_ADDRESS};
use shutong_system_api::registry::{
    GetOrg, GovernanceOrgStatus, GovernanceRegister, GovernanceRegistration, OrgStatus,
};
use shutong_system_api::KeyBytes;

contract::entrypoints!(
    set_validators,
    get_validators,
    approve_code,
    propose,
    vote,
    get_proposal,
    get_outcome,
    get_committee,
    resolve_purpose,
    report_equivocation,
    list_evidence
);

const NEXT_PROPOSAL: shutong_contract::Item<u64> = shutong_contract::Item::new(b"next-proposal");
const PROPOSALS: Map<u64, Proposal> = Map::new(b"proposal/");
const PURPOSES: Map<String, PurposeDef> = Map::new(PURPOSE_PREFIX);
const EVIDENCE: Map<Vec<u8>, EvidenceRecord> = Map::new(EVIDENCE_PREFIX);

/// A key as people and tools write it: its bytes in hex, without the suite byte.
fn key_hex(key: &KeyBytes) -> String {
    hex(&key.as_slice()[1..])
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{:02x}", b)).collect()
}

/// The chain id genesis wrote: what proofs of possession and votes are signed over.
fn chain_id() -> Result<String, Error> {
    contract::storage_get(CHAIN_ID_KEY)
        .and_then(|bytes| String::from_utf8(bytes).ok())
        .ok_or_else(|| Error::new("governance has no chain id"))
}

/// Whether `code` is dot-separated segments of `a-z 0-9 -`, 1 to 128 bytes.
fn valid_purpose(code: &str) -> bool {
    !code.is_empty()
        && code.len() <= 128
        && code
            .split('.')
            .all(|s| !s.is_empty() && s.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-'))
}

/// The nearest defined purpose at or above `code`.
fn nearest(code: &str) -> Result<Option<PurposeDef>, Error> {
    let mut current = code.to_string();
    loop {
        if let Some(found) = PURPOSES.load(&current)? {
            return Ok(Some(found));
        }
        match current.rfind('.') {
            Some(dot) => current.truncate(dot),
            None => return Ok(None),
        }
    }
}

pub fn resolve_purpose(args: &[u8]) -> MethodResult {
    let req = ResolvePurpose::decode(args)?;
    let found =
        nearest(&req.code)?.ok_or_else(|| Error(format!("purpose {} is not in the purpose catalogue", req.code)))?;
    Ok(found.encode())
}

fn load<T: Decode>(key: &[u8], what: &str) -> Result<Option<T>, Error> {
    match contract::storage_get(key) {
        Some(bytes) => Ok(Some(T::decode(&bytes).map_err(|e| Error(format!("stored {} is corrupt: {}", what, e)))?)),
        None => Ok(None),
    }
}

fn committee() -> Result<Committee, Error> {
    load(COMMITTEE_KEY, "committee")?.ok_or_else(|| Error::new("governance has no committee"))
}

pub fn get_committee(_args: &[u8]) -> MethodResult {
    Ok(committee()?.encode())
}

/// The caller, if it holds a seat of the committee, with the committee.
fn seat_caller(refusal: &str) -> Result<([u8; 32], Committee), Error> {
    let committee = committee()?;
    let caller = contract::caller();
    if committee.org_of(&caller).is_none() {
        return Err(Error::new(refusal));
    }
    Ok((caller, committee))
}

/// A direct decision is allowed only while one organisation's vote is enough.
fn single_org_rule(committee: &Committee) -> Result<(), Error> {
    if committee.threshold > 1 {
        return Err(Error(format!(
            "the committee needs the votes of {} organisations: propose and vote instead",
            committee.threshold
        )));
    }
    Ok(())
}

pub fn approve_code(args: &[u8]) -> MethodResult {
    let req = ApproveCode::decode(args)?;
    let (caller, committee) = seat_caller("only a member of the governance committee may approve code")?;
    single_org_rule(&committee)?;
    do_approve_code(req.code_hash, caller)
}

fn do_approve_code(code_hash: [u8; 32], caller: [u8; 32]) -> MethodResult {
    let req = ApproveCode { code_hash };
    let key = approved_code_key(&req.code_hash);
    if contract::storage_get(&key).is_some() {
        return Err(Error::new("this code hash is already approved"));
    }
    contract::storage_set(&key, &caller);
    contract::emit_event("code.approved", hex(&req.code_hash).as_bytes());
    Ok(Vec::new())
}

pub fn set_validators(args: &[u8]) -> MethodResult {
    let req = SetValidators::decode(args)?;
    let (caller, committee) = seat_caller("only a member of the governance committee may change the validator set")?;
    single_org_rule(&committee)?;
    do_set_validators(req, caller)
}

/// A set names at least one key, each once.
fn well_formed(keys: &[KeyBytes]) -> Result<(), Error> {
    if keys.is_empty() {
        return Err(Error::new("the validator set cannot be empty"));
    }
    let mut sorted = keys.to_vec();
    sorted.sort_unstable();
    sorted.dedup();
    if sorted.len() != keys.len() {
        return Err(Error::new("a validator key appears twice"));
    }
    Ok(())
}

fn do_set_validators(req: SetValidators, caller: [u8; 32]) -> MethodResult {
    well_formed(&req.keys)?;
    if contract::storage_get(PENDING_KEY).is_some() {
        return Err(Error::new("a validator-set change is already pending"));
    }
    let current: ValidatorSet =
        load(VALIDATORS_KEY, "validator set")?.ok_or_else(|| Error::new("governance has no validator set"))?;
    keeps_finalizing(&current.keys, &req.keys)?;
    let transports = proven(&current, &req.keys, &req.proofs)?;
    let unchanged = |i: usize| current.transports.get(i).cloned().flatten() == transports[i];
    if current.keys == req.keys && (0..transports.len()).all(unchanged) {
        return Err(Error::new("the new validator set is the current one"));
    }
    let activation_height = contract::block_height() + CHANGE_DELAY_BLOCKS;
    let pending = PendingSet { activation_height, keys: req.keys, transports, proposer: caller };
    contract::storage_set(PENDING_KEY, &pending.encode());
    contract::emit_event("validators.scheduled", activation_height.to_string().as_bytes());
    Ok(Vec::new())
}

/// `f = ⌊(n − 1) / 3⌋`: how many of `n` validators may fail.
fn faults_max(n: usize) -> usize {
    n.saturating_sub(1) / 3
}

/// The rules a validator-set change must keep so that the chain goes on finalizing through
/// it: no fewer validators than the committee's minimum, at most f of the validators in
/// force leave at once (the epoch's last block is finalized by the old set, and any f of it
/// may be down), and the validators that stay are a quorum of the new set by themselves
/// (new ones may not be running yet), except that a set of three or fewer may grow by one.
/// Larger changes are made in steps. `new` is well formed ([`well_formed`]).
fn keeps_finalizing(current: &[KeyBytes], new: &[KeyBytes]) -> Result<(), Error> {
    let min = validators_min();
    if (new.len() as u64) < min {
        return Err(Error(format!(
            "the new set has {} validators; the committee's minimum (validators_min) is {}",
            new.len(),
            min
        )));
    }
    // Counted over the set in force, so never more than either set holds.
    let staying = current.iter().filter(|k| new.contains(k)).count();
    let leaving = current.len() - staying;
    if leaving > faults_max(current.len()) {
        return Err(Error(format!(
            "the change removes {} of the {} validators in force; at most {} may leave at once",
            leaving,
            current.len(),
            faults_max(current.len())
        )));
    }
    let quorum = new.len() - faults_max(new.len());
    // A set that tolerates no fault (three validators or fewer) may still grow one at a
    // time: any of its validators down stops it already, a new one no more so. Without
    // this a chain that starts with one validator could never have more.
    let grows_by_one = faults_max(current.len()) == 0 && leaving == 0 && new.len() == current.len() + 1;
    if staying < quorum && !grows_by_one {
        return Err(Error(format!(
            "the change adds {} validators: the {} that stay must be a quorum ({}) of the new set of {}",
            new.len() - staying,
            staying,
            quorum,
            new.len()
        )));
    }
    Ok(())
}

/// Every key that joins the set comes with its holder's signature over the chain id and
/// the proposed set: nobody names a key they do not hold, and a key that is no valid point
/// (or is of small order) cannot sign, so it never enters a set to be dropped later.
///
/// A key's transport key is the one sent with its proof, whose binding (the key's signature
/// over [`transport_binding_message`]) is checked here, else the one it has in the set in
/// force, if any. On an SM chain every key of the new set needs one. Returns the new set's
/// transport keys, one entry per key in its order.
fn proven(current: &ValidatorSet, new: &[KeyBytes], proofs: &[KeyProof]) -> Result<Vec<Option<TransportKey>>, Error> {
    let chain = chain_id()?;
    let message = possession_message(&chain, new);
    for key in new.iter().filter(|k| !current.keys.contains(k)) {
        let proof = proofs
            .iter()
            .find(|p| p.key == *key)
            .ok_or_else(|| Error(format!("validator key {} joins without a proof of possession", key_hex(key))))?;
        if !contract::verify_signature(key.as_slice(), &proof.signature, &message) {
            return Err(Error(format!(
                "the proof of possession of validator key {} does not verify: it must be this chain's suite and sign the chain id and the proposed set",
                key_hex(key)
            )));
        }
    }
    let mut transports: Vec<Option<TransportKey>> = Vec::new();
    for key in new {
        let sent = proofs.iter().find(|p| p.key == *key).and_then(|p| p.transport.as_ref());
        let transport = match sent {
            Some(t) => {
                if !contract::verify_signature(
                    key.as_slice(),
                    &t.binding,
                    &transport_binding_message(&chain, key, &t.key),
                ) {
                    return Err(Error(format!(
                        "transport key {} is not bound to validator key {}: the binding does not verify",
                        hex(&t.key),
                        key_hex(key)
                    )));
                }
                Some(t.clone())
            }
            None => {
                current.keys.iter().position(|k| k == key).and_then(|i| current.transports.get(i)).cloned().flatten()
            }
        };
        match &transport {
            None if key.suite() == shutong_system_api::key::SM2 => {
                return Err(Error(format!(
                    "validator key {} has no transport key bound to it: on an SM chain its proof carries one",
                    key_hex(key)
                )))
            }
            Some(t) if transports.iter().flatten().any(|other| other.key == t.key) => {
                return Err(Error(format!("transport key {} is bound to two validators", hex(&t.key))));
            }
            _ => {}
        }
        transports.push(transport);
    }
    Ok(transports)
}

/// A numeric parameter the committee set (decimal, checked when proposed), else `default`.
fn numeric_param(name: &str, default: u64) -> u64 {
    contract::storage_get(&param_key(name))
        .and_then(|bytes| String::from_utf8(bytes).ok())
        .and_then(|text| text.parse().ok())
        .unwrap_or(default)
}

/// The fewest validators a new set may have: the committee's `validators_min`, else one.
fn validators_min() -> u64 {
    numeric_param(VALIDATORS_MIN_PARAM, 1)
}

/// The lifecycle delay in force.
fn lifecycle_delay() -> u64 {
    numeric_param(LIFECYCLE_DELAY_PARAM, LIFECYCLE_DELAY_BLOCKS_DEFAULT)
}

fn execute(id: u64, action: &Action, proposer: [u8; 32]) -> Result<(), Error> {
    match action {
        Action::SetValidators { keys, proofs } => {
            do_set_validators(SetValidators { keys: keys.clone(), proofs: proofs.clone() }, proposer).map(|_| ())
        }
        Action::ApproveCode { code_hash } => do_approve_code(*code_hash, proposer).map(|_| ()),
        Action::SetCommittee { committee } => {
            contract::storage_set(COMMITTEE_KEY, &committee.encode());
            contract::emit_event("committee.changed", committee.threshold.to_string().as_bytes());
            Ok(())
        }
        Action::DefinePurpose { code, legal_bases, description } => {
            let def = PurposeDef { code: code.clone(), legal_bases: *legal_bases, description: description.clone() };
            PURPOSES.save(code, &def);
            contract::emit_event("purpose.defined", code.as_bytes());
            Ok(())
        }
        Action::AddOrg { id, name, kind, admin } => {
            let args = GovernanceRegister { id: id.clone(), name: name.clone(), kind: *kind, admin: *admin }.encode();
            contract::call(&REGISTRY_ADDRESS, "register_by_governance", &args, 0)?;
            Ok(())
        }
        Action::ApproveOrg { id } => {
            contract::call(&REGISTRY_ADDRESS, "approve_by_governance", &GetOrg { id: id.clone() }.encode(), 0)?;
            Ok(())
        }
        Action::AssignSource { element, org } => {
            let args = AssignSource { element: element.clone(), org: org.clone() }.encode();
            contract::call(&CATALOG_ADDRESS, "assign_source_by_governance", &args, 0)?;
            Ok(())
        }
        Action::SetParam { name, value } if name == "registration" => {
            let args = GovernanceRegistration { policy: value.clone() }.encode();
            contract::call(&REGISTRY_ADDRESS, "set_registration_by_governance", &args, 0)?;
            contract::emit_event("param.set", format!("{}={}", name, value).as_bytes());
            Ok(())
        }
        Action::SetParam { name, value } => {
            contract::storage_set(&param_key(name), value.as_bytes());
            contract::emit_event("param.set", format!("{}={}", name, value).as_bytes());
            Ok(())
        }
        Action::SuspendOrg { id } | Action::ReinstateOrg { id } => {
            let status =
                if matches!(action, Action::SuspendOrg { .. }) { OrgStatus::Suspended } else { OrgStatus::Active };
            let args = GovernanceOrgStatus { id: id.clone(), status }.encode();
            contract::call(&REGISTRY_ADDRESS, "set_status_by_governance", &args, 0)?;
            Ok(())
        }
        Action::Lifecycle { contract: target, op } => {
            let height = contract::block_height().saturating_add(lifecycle_delay());
            let scheduled = ScheduledOp { proposal: id, contract: *target, op: op.clone() };
            contract::storage_set(&scheduled_key(height, id), &scheduled.encode());
            let outcome = LifecycleOutcome { height, done: false, refused: None };
            contract::storage_set(&outcome_key(id), &outcome.encode());
            contract::emit_event("lifecycle.scheduled", format!("{}@{}", id, height).as_bytes());
            Ok(())
        }
    }
}

/// Checks an action before anyone votes on it.
fn check_action(action: &Action) -> Result<(), Error> {
    if let Action::SetCommittee { committee } = action {
        committee.check().map_err(Error)?;
    }
    if let Action::DefinePurpose { code, legal_bases, .. } = action {
        if !valid_purpose(code) {
            return Err(Error(format!("invalid purpose code {:?}", code)));
        }
        if *legal_bases == 0 || legal_bases & !basis::ALL != 0 {
            return Err(Error::new("a purpose rests on at least one known legal basis"));
        }
        if let Some(dot) = code.rfind('.') {
            if !PURPOSES.has(&code[..dot].to_string()) {
                return Err(Error(format!("define the parent purpose {} first", &code[..dot])));
            }
        }
        if PURPOSES.has(code) {
            return Err(Error(format!("purpose {} is already defined", code)));
        }
    }
    if let Action::SetParam { name, value } = action {
        match PARAMS.iter().find(|(n, _)| n == name) {
            None => return Err(Error(format!("{} is not a parameter the committee sets", name))),
            Some((_, allowed)) if allowed.is_empty() => {
                let (low, high) = param_range(name).unwrap_or((0, 0));
                match value.parse::<u64>() {
                    Ok(n) if (low..=high).contains(&n) && n.to_string() == *value => {}
                    _ => return Err(Error(format!("{} is a whole number from {} to {}", name, low, high))),
                }
            }
            Some((_, allowed)) if !allowed.contains(&value.as_str()) => {
                return Err(Error(format!("{} may be one of {}", name, allowed.join(", "))));
            }
            Some(_) => {}
        }
    }
    if let Action::SetValidators { keys, proofs } = action {
        well_formed(keys)?;
        // Refused when proposed, not only when carried: the set in force may change in
        // between, so execution checks again.
        if let Some(current) = load::<ValidatorSet>(VALIDATORS_KEY, "validator set")? {
            keeps_finalizing(&current.keys, keys)?;
            proven(&current, keys, proofs)?;
        }
    }
    Ok(())
}

/// Records `proposal` and executes it once seats of enough organisations voted for it.
fn tally(mut proposal: Proposal, committee: &Committee) -> MethodResult {
    if committee.voting_orgs(&proposal.votes) as u32 >= committee.threshold {
        execute(proposal.id, &proposal.action, proposal.proposer)?;
        proposal.executed = true;
        contract::emit_event("proposal.executed", proposal.id.to_string().as_bytes());
    }
    PROPOSALS.save(&proposal.id, &proposal);
    Ok(proposal.executed.encode())
}

pub fn propose(args: &[u8]) -> MethodResult {
    let req = Propose::decode(args)?;
    let (caller, committee) = seat_caller("only a member of the governance committee may propose")?;
    check_action(&req.action)?;
    let id = NEXT_PROPOSAL.load()?.unwrap_or(1);
    NEXT_PROPOSAL.save(&(id + 1));
    let proposal = Proposal {
        id,
        action: req.action,
        proposer: caller,
        votes: vec![caller],
        created_height: contract::block_height(),
        executed: false,
    };
    contract::emit_event("proposal.created", id.to_string().as_bytes());
    tally(proposal, &committee)?;
    Ok(id.encode())
}

pub fn vote(args: &[u8]) -> MethodResult {
    let req = ProposalId::decode(args)?;
    let (caller, committee) = seat_caller("only a member of the governance committee may vote")?;
    let mut proposal = PROPOSALS.load(&req.id)?.ok_or_else(|| Error(format!("no proposal {}", req.id)))?;
    if proposal.executed {
        return Err(Error(format!("proposal {} was already carried out", req.id)));
    }
    if contract::block_height() > proposal.created_height + PROPOSAL_BLOCKS {
        return Err(Error(format!("proposal {} lapsed after {} blocks", req.id, PROPOSAL_BLOCKS)));
    }
    if proposal.votes.contains(&caller) {
        return Err(Error(format!("this member already voted for proposal {}", req.id)));
    }
    let org = committee.org_of(&caller).unwrap_or_default();
    if proposal.votes.iter().any(|v| committee.org_of(v) == Some(org)) {
        return Err(Error(format!("organisation {} already voted for proposal {}", org, req.id)));
    }
    proposal.votes.push(caller);
    contract::emit_event("proposal.voted", req.id.to_string().as_bytes());
    tally(proposal, &committee)
}

pub fn get_proposal(args: &[u8]) -> MethodResult {
    let req = ProposalId::decode(args)?;
    Ok(PROPOSALS.load(&req.id)?.ok_or_else(|| Error(format!("no proposal {}", req.id)))?.encode())
}

/// Where proposal `id`'s lifecycle decision stands.
pub fn get_outcome(args: &[u8]) -> MethodResult {
    let req = ProposalId::decode(args)?;
    let outcome: LifecycleOutcome = load(&outcome_key(req.id), "lifecycle outcome")?
        .ok_or_else(|| Error(format!("proposal {} has no carried lifecycle decision", req.id)))?;
    Ok(outcome.encode())
}

pub fn get_validators(_args: &[u8]) -> MethodResult {
    let current: ValidatorSet =
        load(VALIDATORS_KEY, "validator set")?.ok_or_else(|| Error::new("governance has no validator set"))?;
    let pending: Option<PendingSet> = load(PENDING_KEY, "pending change")?;
    Ok(Validators { current, pending }.encode())
}

/// Records two conflicting votes of one validator, checked against its epoch's set: anyone
/// may report them (the votes prove themselves), and each validator's equivocation in one
/// view is recorded once. The committee may then remove the validator.
pub fn report_equivocation(args: &[u8]) -> MethodResult {
    let evidence = Equivocation::decode(args)?;
    let (first, second) = (&evidence.first, &evidence.second);
    conflict(first, second).map_err(Error::new)?;
    let set: ValidatorSet = load(&epoch_set_key(first.epoch), "epoch's validator set")?
        .ok_or_else(|| Error(format!("epoch {} has no validator set on this chain", first.epoch)))?;
    let validator = set.keys.get(first.signer as usize).cloned().ok_or_else(|| {
        Error(format!("signer {} is not in epoch {}'s set of {} validators", first.signer, first.epoch, set.keys.len()))
    })?;
    let chain_id = chain_id()?;
    for vote in [first, second] {
        if !contract::verify_signature(validator.as_slice(), &vote.signature, &vote.signing_bytes(&chain_id)) {
            return Err(Error(format!(
                "a vote's signature does not verify under validator {} of epoch {}",
                key_hex(&validator),
                first.epoch
            )));
        }
    }
    let id = evidence_id(&validator, first.epoch, first.view);
    if EVIDENCE.has(&id) {
        return Err(Error(format!(
            "evidence against validator {} in epoch {} view {} is already recorded",
            key_hex(&validator),
            first.epoch,
            first.view
        )));
    }
    let (epoch, view) = (first.epoch, first.view);
    let recorded = format!("{}@{}/{}", key_hex(&validator), epoch, view);
    let record = EvidenceRecord { validator, evidence, reporter: contract::caller(), height: contract::block_height() };
    EVIDENCE.save(&id, &record);
    contract::emit_event("equivocation.recorded", recorded.as_bytes());
    Ok(Vec::new())
}

/// Recorded evidence, in key order (by validator, epoch, view), a page at a time.
pub fn list_evidence(args: &[u8]) -> MethodResult {
    let req = ListEvidence::decode(args)?;
    let limit = req.limit.clamp(1, EVIDENCE_PAGE_MAX);
    let records = EVIDENCE.page(req.after.as_deref(), limit)?.into_iter().map(|(_, r)| r).collect();
    Ok(EvidencePage { records }.encode())
}

#[cfg(test)]
mod tests {
    use super::*;
    use shutong_contract::testing;
    use shutong_system_api::governance::{LifecycleOp, Seat};

    fn seats(members: &[([u8; 32], &str)], threshold: u32) -> Committee {
        Committee {
            seats: members.iter().map(|(account, org)| Seat { account: *account, org: org.to_string() }).collect(),
            threshold,
        }
    }

    /// The native host has no ed25519 (the contracts' toolchain fetches no crates): a
    /// stand-in whose "signature" is the key and a fold of the message. The VM tests and
    /// the cluster test check real signatures.
    fn stand_in_sign(key: &KeyBytes, message: &[u8]) -> [u8; 64] {
        let mut sig = [0u8; 64];
        sig[..32].copy_from_slice(&key.as_slice()[1..33]);
        for (i, b) in message.iter().enumerate() {
            sig[32 + i % 32] ^= b.wrapping_add(i as u8);
        }
        sig
    }

    fn stand_in_verify(key: &[u8], sig: &[u8; 64], message: &[u8]) -> bool {
        KeyBytes::new(key.to_vec()).map_or(false, |key| stand_in_sign(&key, message) == *sig)
    }

    /// The validator key numbered `n` in these tests.
    fn k(n: u8) -> KeyBytes {
        KeyBytes::ed25519([n; 32])
    }

    const CHAIN: &str = "test-chain";

    fn setup() {
        testing::with_host(|h| h.verify_signature = Some(stand_in_verify));
        contract::storage_set(COMMITTEE_KEY, &seats(&[([1; 32], "office")], 1).encode());
        contract::storage_set(CHAIN_ID_KEY, CHAIN.as_bytes());
        let set =
            ValidatorSet { epoch: 0, since_height: 0, keys: vec![k(10), k(11), k(12), k(13)], transports: Vec::new() };
        contract::storage_set(VALIDATORS_KEY, &set.encode());
        contract::storage_set(&epoch_set_key(0), &set.encode());
    }

    /// Proofs of possession by every key of `keys` (the stand-in's).
    fn proofs(keys: &[KeyBytes]) -> Vec<KeyProof> {
        let message = possession_message(CHAIN, keys);
        keys.iter()
            .map(|k| KeyProof { key: k.clone(), signature: stand_in_sign(k, &message), transport: None })
            .collect()
    }

    fn args(keys: &[KeyBytes]) -> Vec<u8> {
        SetValidators { keys: keys.to_vec(), proofs: proofs(keys) }.encode()
    }

    #[test]
    fn a_key_joins_only_with_its_holders_proof_over_this_chain_and_set() {
        testing::reset();
        testing::set_context([1; 32], 5);
        setup();
        let new = [k(10), k(11), k(12), k(14)];
        let refused = |proofs: Vec<KeyProof>| set_validators(&SetValidators { keys: new.to_vec(), proofs }.encode());
        let joining = "0e".repeat(32);
        assert_eq!(
            refused(Vec::new()),
            Err(Error(format!("validator key {} joins without a proof of possession", joining)))
        );
        let bad = format!(
            "the proof of possession of validator key {} does not verify: it must be this chain's suite and sign the chain id and the proposed set",
            joining
        );
        // Signed over another set, or another chain: no good for this one.
        assert_eq!(refused(proofs(&[k(10), k(11), k(14)])), Err(Error(bad.clone())));
        let other_chain = possession_message("other-chain", &new);
        assert_eq!(
            refused(vec![KeyProof { key: k(14), signature: stand_in_sign(&k(14), &other_chain), transport: None }]),
            Err(Error(bad))
        );
        // Keys already in the set need none.
        let only_joining = proofs(&new).into_iter().filter(|p| p.key == k(14)).collect();
        assert_eq!(refused(only_joining), Ok(Vec::new()));
        // The proposal route checks the same, before anyone votes.
        testing::reset();
        setup();
        let action = Action::SetValidators { keys: new.to_vec(), proofs: Vec::new() };
        assert_eq!(
            propose(&Propose { action }.encode()),
            Err(Error(format!("validator key {} joins without a proof of possession", joining)))
        );
    }

    /// The SM2 validator key numbered `n` in these tests.
    fn sm(n: u8) -> KeyBytes {
        let mut bytes = vec![shutong_system_api::key::SM2];
        bytes.extend_from_slice(&[n; 33]);
        KeyBytes::new(bytes).unwrap()
    }

    /// `key`'s transport key numbered `t`, bound on `chain`.
    fn bound(chain: &str, key: &KeyBytes, t: u8) -> TransportKey {
        TransportKey { key: [t; 32], binding: stand_in_sign(key, &transport_binding_message(chain, key, &[t; 32])) }
    }

    #[test]
    fn on_an_sm_chain_every_validator_has_a_bound_transport_key() {
        testing::reset();
        testing::set_context([1; 32], 5);
        setup();
        let keys = vec![sm(10), sm(11), sm(12), sm(13)];
        let transports: Vec<Option<TransportKey>> =
            keys.iter().zip(20u8..).map(|(k, t)| Some(bound(CHAIN, k, t))).collect();
        let set = ValidatorSet { epoch: 0, since_height: 0, keys: keys.clone(), transports: transports.clone() };
        contract::storage_set(VALIDATORS_KEY, &set.encode());
        let new = vec![sm(10), sm(11), sm(12), sm(13), sm(14)];
        let message = possession_message(CHAIN, &new);
        let proof = |transport: Option<TransportKey>| KeyProof {
            key: sm(14),
            signature: stand_in_sign(&sm(14), &message),
            transport,
        };
        let with = |proofs: Vec<KeyProof>| set_validators(&SetValidators { keys: new.clone(), proofs }.encode());
        let joining = "0e".repeat(33);
        assert_eq!(
            with(vec![proof(None)]),
            Err(Error(format!(
                "validator key {} has no transport key bound to it: on an SM chain its proof carries one",
                joining
            )))
        );
        // A binding made for another chain, or for another transport key, is no binding.
        let mut forged = bound("other-chain", &sm(14), 24);
        assert_eq!(
            with(vec![proof(Some(forged.clone()))]),
            Err(Error(format!(
                "transport key {} is not bound to validator key {}: the binding does not verify",
                "18".repeat(32),
                joining
            )))
        );
        forged = TransportKey { key: [25; 32], ..bound(CHAIN, &sm(14), 24) };
        assert!(with(vec![proof(Some(forged))]).unwrap_err().0.contains("is not bound to validator key"));
        // Another validator's transport key cannot be bound twice.
        assert_eq!(
            with(vec![proof(Some(bound(CHAIN, &sm(14), 20)))]),
            Err(Error(format!("transport key {} is bound to two validators", "14".repeat(32))))
        );
        assert_eq!(with(vec![proof(Some(bound(CHAIN, &sm(14), 24)))]), Ok(Vec::new()));
        // The staying validators keep theirs, in the keys' order.
        let pending = PendingSet::decode(&contract::storage_get(PENDING_KEY).unwrap()).unwrap();
        let mut expected = transports;
        expected.push(Some(bound(CHAIN, &sm(14), 24)));
        assert_eq!(pending.transports, expected);
    }

    #[test]
    fn an_ed25519_validator_may_bind_a_transport_key_and_keeps_it() {
        testing::reset();
        testing::set_context([1; 32], 5);
        setup();
        // A key in a token never leaves it, so the node's p2p identity is a transport key.
        let new = [k(10), k(11), k(12), k(13), k(14)];
        let mut proofs = proofs(&new);
        proofs[4].transport = Some(bound("other-chain", &k(14), 24));
        assert_eq!(
            set_validators(&SetValidators { keys: new.to_vec(), proofs: proofs.clone() }.encode()),
            Err(Error(format!(
                "transport key {} is not bound to validator key {}: the binding does not verify",
                "18".repeat(32),
                "0e".repeat(32)
            )))
        );
        proofs[4].transport = Some(bound(CHAIN, &k(14), 24));
        assert_eq!(set_validators(&SetValidators { keys: new.to_vec(), proofs }.encode()), Ok(Vec::new()));
        let pending = PendingSet::decode(&contract::storage_get(PENDING_KEY).unwrap()).unwrap();
        assert_eq!(pending.transports, vec![None, None, None, None, Some(bound(CHAIN, &k(14), 24))]);
    }

    fn signed_vote(kind: u8, view: u64, digest: u8, signer: u32) -> shutong_system_api::governance::SignedVote {
        let mut v = shutong_system_api::governance::SignedVote {
            kind,
            epoch: 0,
            view,
            digest: [digest; 32],
            signer,
            signature: [0; 64],
        };
        let key = k(10 + signer as u8);
        v.signature = stand_in_sign(&key, &v.signing_bytes(CHAIN));
        v
    }

    #[test]
    fn equivocation_is_checked_against_its_epochs_set_and_recorded_once() {
        use shutong_system_api::governance::vote_kind::*;
        testing::reset();
        testing::set_context([7; 32], 30);
        setup();
        let report = |first, second| report_equivocation(&Equivocation { first, second }.encode());
        let not_evidence = "the two votes do not conflict: evidence is two notarizes or two finalizes of different blocks, or a nullify and a finalize";
        assert_eq!(
            report(signed_vote(NOTARIZE, 4, 1, 2), signed_vote(NOTARIZE, 4, 1, 2)),
            Err(Error::new(not_evidence))
        );
        assert_eq!(
            report(signed_vote(NOTARIZE, 4, 1, 2), signed_vote(NULLIFY, 4, 0, 2)),
            Err(Error::new(not_evidence))
        );
        assert_eq!(
            report(signed_vote(NOTARIZE, 4, 1, 2), signed_vote(NOTARIZE, 5, 2, 2)),
            Err(Error::new("the two votes are not one signer's in one epoch and view"))
        );
        assert_eq!(
            report(signed_vote(NOTARIZE, 4, 1, 9), signed_vote(NOTARIZE, 4, 2, 9)),
            Err(Error::new("signer 9 is not in epoch 0's set of 4 validators"))
        );
        let mut forged = signed_vote(NOTARIZE, 4, 2, 2);
        forged.signature[40] ^= 1;
        assert_eq!(
            report(signed_vote(NOTARIZE, 4, 1, 2), forged),
            Err(Error(format!("a vote's signature does not verify under validator {} of epoch 0", "0c".repeat(32))))
        );
        let mut later = signed_vote(NOTARIZE, 4, 1, 2);
        later.epoch = 3;
        let mut later2 = signed_vote(NOTARIZE, 4, 2, 2);
        later2.epoch = 3;
        assert_eq!(report(later, later2), Err(Error::new("epoch 3 has no validator set on this chain")));
        assert!(testing::take_events().is_empty());

        assert_eq!(report(signed_vote(NOTARIZE, 4, 1, 2), signed_vote(NOTARIZE, 4, 2, 2)), Ok(Vec::new()));
        let events = testing::take_events();
        assert_eq!(
            events,
            vec![("equivocation.recorded".to_string(), format!("{}@0/4", "0c".repeat(32)).into_bytes())]
        );
        // The same view again, in any form: recorded already.
        assert_eq!(
            report(signed_vote(NULLIFY, 4, 0, 2), signed_vote(FINALIZE, 4, 1, 2)),
            Err(Error(format!("evidence against validator {} in epoch 0 view 4 is already recorded", "0c".repeat(32))))
        );
        // Another view of the same validator, and another validator, are their own records.
        report(signed_vote(FINALIZE, 6, 1, 2), signed_vote(NULLIFY, 6, 0, 2)).unwrap();
        report(signed_vote(FINALIZE, 6, 1, 0), signed_vote(FINALIZE, 6, 3, 0)).unwrap();
        let page =
            EvidencePage::decode(&list_evidence(&ListEvidence { after: None, limit: 2 }.encode()).unwrap()).unwrap();
        assert_eq!(page.records.len(), 2);
        assert_eq!(page.records[0].validator, k(10));
        assert_eq!((page.records[1].validator.clone(), page.records[1].evidence.first.view), (k(12), 4));
        assert_eq!((page.records[1].reporter, page.records[1].height), ([7; 32], 30));
        let after = evidence_id(&k(12), 0, 4);
        let rest =
            EvidencePage::decode(&list_evidence(&ListEvidence { after: Some(after), limit: 10 }.encode()).unwrap())
                .unwrap();
        assert_eq!(rest.records.len(), 1);
        assert_eq!(rest.records[0].evidence.first.view, 6);
    }

    #[test]
    fn an_admin_schedules_a_change_after_the_delay() {
        testing::set_context([1; 32], 5);
        setup();
        set_validators(&args(&[k(10), k(11), k(12)])).unwrap();
        let got = Validators::decode(&get_validators(&[]).unwrap()).unwrap();
        let pending = got.pending.unwrap();
        assert_eq!(pending.activation_height, 5 + CHANGE_DELAY_BLOCKS);
        assert_eq!(pending.keys, vec![k(10), k(11), k(12)]);
        assert_eq!(got.current.keys, vec![k(10), k(11), k(12), k(13)]);
        let height = (5 + CHANGE_DELAY_BLOCKS).to_string().into_bytes();
        assert_eq!(testing::take_events(), vec![("validators.scheduled".to_string(), height)]);
    }

    #[test]
    fn each_refusal_has_its_own_error() {
        testing::set_context([2; 32], 5);
        setup();
        assert_eq!(
            set_validators(&args(&[k(10)])),
            Err(Error::new("only a member of the governance committee may change the validator set"))
        );
        testing::set_context([1; 32], 5);
        assert_eq!(set_validators(&args(&[])), Err(Error::new("the validator set cannot be empty")));
        assert_eq!(set_validators(&args(&[k(9), k(9)])), Err(Error::new("a validator key appears twice")));
        assert_eq!(
            set_validators(&args(&[k(10), k(11), k(12), k(13)])),
            Err(Error::new("the new validator set is the current one"))
        );
        // Two of four leaving at once: the rest could not finalize with one more down.
        assert_eq!(
            set_validators(&args(&[k(10), k(11)])),
            Err(Error::new("the change removes 2 of the 4 validators in force; at most 1 may leave at once"))
        );
        // Two new ones at once: the four that stay are not a quorum (5) of six.
        assert_eq!(
            set_validators(&args(&[k(10), k(11), k(12), k(13), k(14), k(15)])),
            Err(Error::new("the change adds 2 validators: the 4 that stay must be a quorum (5) of the new set of 6"))
        );
        // Below the committee's minimum, once it set one.
        contract::storage_set(&param_key(VALIDATORS_MIN_PARAM), b"4");
        assert_eq!(
            set_validators(&args(&[k(10), k(11), k(12)])),
            Err(Error::new("the new set has 3 validators; the committee's minimum (validators_min) is 4"))
        );
        // Replacing one: one leaves, one joins; the three that stay are a quorum of four.
        set_validators(&args(&[k(10), k(11), k(12), k(14)])).unwrap();
        assert_eq!(set_validators(&args(&[k(11)])), Err(Error::new("a validator-set change is already pending")));
    }

    #[test]
    fn a_chain_of_one_validator_grows_one_at_a_time() {
        testing::reset();
        testing::set_context([1; 32], 5);
        setup();
        let one = ValidatorSet { epoch: 0, since_height: 0, keys: vec![k(10)], transports: Vec::new() };
        contract::storage_set(VALIDATORS_KEY, &one.encode());
        assert_eq!(
            set_validators(&args(&[k(10), k(11), k(12)])),
            Err(Error::new("the change adds 2 validators: the 1 that stay must be a quorum (3) of the new set of 3"))
        );
        assert_eq!(set_validators(&args(&[k(10), k(11)])), Ok(Vec::new()));
        // From four on, the quorum rule decides: four to five is allowed (four stay, a
        // quorum of five); four to six is refused (each_refusal_has_its_own_error).
        let four =
            ValidatorSet { epoch: 0, since_height: 0, keys: vec![k(10), k(11), k(12), k(13)], transports: Vec::new() };
        contract::storage_remove(PENDING_KEY);
        contract::storage_set(VALIDATORS_KEY, &four.encode());
        assert_eq!(set_validators(&args(&[k(10), k(11), k(12), k(13), k(14)])), Ok(Vec::new()));
    }

    #[test]
    fn a_proposal_that_would_stop_the_chain_is_refused_when_proposed() {
        testing::reset();
        testing::set_context([1; 32], 5);
        setup();
        let three = seats(&[([1; 32], "office"), ([2; 32], "market")], 2);
        propose(&Propose { action: Action::SetCommittee { committee: three } }.encode()).unwrap();
        let drop_two = Action::SetValidators { keys: vec![k(10), k(11)], proofs: Vec::new() };
        assert_eq!(
            propose(&Propose { action: drop_two }.encode()),
            Err(Error::new("the change removes 2 of the 4 validators in force; at most 1 may leave at once"))
        );
        // One key named five times: refused as such, not counted as five that stay.
        let repeated = Action::SetValidators { keys: vec![k(10); 5], proofs: Vec::new() };
        assert_eq!(propose(&Propose { action: repeated }.encode()), Err(Error::new("a validator key appears twice")));
    }

    #[test]
    fn a_committee_of_three_decides_by_two_votes() {
        testing::reset();
        testing::set_context([1; 32], 5);
        setup();
        // Three departments, the first with two seats: the threshold counts organisations.
        let three = seats(&[([1; 32], "office"), ([2; 32], "market"), ([3; 32], "tax"), ([4; 32], "office")], 2);
        // With one organisation, a proposal is carried at once.
        propose(&Propose { action: Action::SetCommittee { committee: three.clone() } }.encode()).unwrap();
        assert_eq!(committee(), Ok(three));
        // Now direct decisions are refused, and proposals need two organisations' votes.
        let direct = approve_code(&ApproveCode { code_hash: [7; 32] }.encode());
        assert_eq!(
            direct,
            Err(Error::new("the committee needs the votes of 2 organisations: propose and vote instead"))
        );
        let approve = Propose { action: Action::ApproveCode { code_hash: [7; 32] } };
        assert_eq!(propose(&approve.encode()), Ok(2u64.encode()));
        assert!(contract::storage_get(&approved_code_key(&[7; 32])).is_none());
        assert_eq!(vote(&ProposalId { id: 2 }.encode()), Err(Error::new("this member already voted for proposal 2")));
        // A second key of the same organisation is not a second vote.
        testing::set_context([4; 32], 6);
        assert_eq!(
            vote(&ProposalId { id: 2 }.encode()),
            Err(Error::new("organisation office already voted for proposal 2"))
        );
        assert!(contract::storage_get(&approved_code_key(&[7; 32])).is_none());
        testing::set_context([9; 32], 6);
        assert_eq!(
            vote(&ProposalId { id: 2 }.encode()),
            Err(Error::new("only a member of the governance committee may vote"))
        );
        testing::set_context([2; 32], 6);
        assert_eq!(vote(&ProposalId { id: 2 }.encode()), Ok(true.encode()));
        assert!(contract::storage_get(&approved_code_key(&[7; 32])).is_some());
        testing::set_context([3; 32], 6);
        assert_eq!(vote(&ProposalId { id: 2 }.encode()), Err(Error::new("proposal 2 was already carried out")));
        // Proposals lapse.
        propose(&Propose { action: Action::ApproveCode { code_hash: [8; 32] } }.encode()).unwrap();
        testing::set_context([1; 32], 6 + PROPOSAL_BLOCKS + 1);
        assert_eq!(vote(&ProposalId { id: 3 }.encode()), Err(Error::new("proposal 3 lapsed after 1000 blocks")));
        // Parameters: only the known ones, with allowed values.
        testing::set_context([1; 32], 10);
        let open = Action::SetParam { name: "upload_policy".into(), value: "open".into() };
        propose(&Propose { action: open }.encode()).unwrap();
        let unknown = Action::SetParam { name: "block_gas".into(), value: "1".into() };
        assert_eq!(
            propose(&Propose { action: unknown }.encode()),
            Err(Error::new("block_gas is not a parameter the committee sets"))
        );
        let bad = Action::SetParam { name: "upload_policy".into(), value: "anyone".into() };
        assert_eq!(
            propose(&Propose { action: bad }.encode()),
            Err(Error::new("upload_policy may be one of governance, open"))
        );
        // Purposes: a hierarchy, parents first, resolved to the nearest defined ancestor.
        let define = |code: &str, bases: u8| Propose {
            action: Action::DefinePurpose { code: code.into(), legal_bases: bases, description: String::new() },
        };
        assert_eq!(
            propose(&define("licensing.renewal", basis::STATUTE).encode()),
            Err(Error::new("define the parent purpose licensing first"))
        );
        let id = u64::decode(&propose(&define("licensing", basis::STATUTE | basis::DUTY_MANDATE).encode()).unwrap())
            .unwrap();
        testing::set_context([2; 32], 10);
        vote(&ProposalId { id }.encode()).unwrap();
        let resolved = PurposeDef::decode(
            &resolve_purpose(&ResolvePurpose { code: "licensing.renewal.online".into() }.encode()).unwrap(),
        )
        .unwrap();
        assert_eq!(resolved.code, "licensing");
        assert_eq!(
            resolve_purpose(&ResolvePurpose { code: "marketing".into() }.encode()),
            Err(Error::new("purpose marketing is not in the purpose catalogue"))
        );
        // Bad committees are refused before any vote.
        let bad = seats(&[([1; 32], "office"), ([4; 32], "office")], 2);
        assert_eq!(
            propose(&Propose { action: Action::SetCommittee { committee: bad } }.encode()),
            Err(Error::new("a threshold of 2 organisations: it must be between 1 and the committee's 1 organisations"))
        );
    }

    #[test]
    fn the_committee_sets_the_fewest_validators_a_set_may_have() {
        testing::reset();
        testing::set_context([1; 32], 20);
        setup();
        let zero = Action::SetParam { name: VALIDATORS_MIN_PARAM.into(), value: "0".into() };
        assert_eq!(
            propose(&Propose { action: zero }.encode()),
            Err(Error::new("validators_min is a whole number from 1 to 100"))
        );
        // Three of four is allowed until the committee says four at least.
        let three = Action::SetValidators { keys: vec![k(10), k(11), k(12)], proofs: Vec::new() };
        check_action(&three).unwrap();
        let four = Action::SetParam { name: VALIDATORS_MIN_PARAM.into(), value: "4".into() };
        propose(&Propose { action: four }.encode()).unwrap();
        assert_eq!(
            propose(&Propose { action: three }.encode()),
            Err(Error::new("the new set has 3 validators; the committee's minimum (validators_min) is 4"))
        );
    }

    #[test]
    fn a_lifecycle_decision_is_scheduled_after_the_delay_and_never_executed_at_once() {
        testing::reset();
        testing::set_context([1; 32], 20);
        setup();
        let delay = Action::SetParam { name: LIFECYCLE_DELAY_PARAM.into(), value: "5".into() };
        propose(&Propose { action: delay }.encode()).unwrap();
        let bad = Action::SetParam { name: LIFECYCLE_DELAY_PARAM.into(), value: "0".into() };
        assert_eq!(
            propose(&Propose { action: bad }.encode()),
            Err(Error::new("lifecycle_delay_blocks is a whole number from 1 to 1000000"))
        );
        let lag = Action::SetParam { name: "anchor_lag_ms_max".into(), value: "1000".into() };
        assert_eq!(
            propose(&Propose { action: lag }.encode()),
            Err(Error::new("anchor_lag_ms_max is a whole number from 60000 to 2592000000"))
        );
        let freeze = Action::Lifecycle { contract: [5; 32], op: LifecycleOp::Freeze };
        let id = u64::decode(&propose(&Propose { action: freeze }.encode()).unwrap()).unwrap();
        let scheduled = ScheduledOp::decode(&contract::storage_get(&scheduled_key(25, id)).unwrap()).unwrap();
        assert_eq!(scheduled, ScheduledOp { proposal: id, contract: [5; 32], op: LifecycleOp::Freeze });
        let outcome = LifecycleOutcome::decode(&get_outcome(&ProposalId { id }.encode()).unwrap()).unwrap();
        assert_eq!(outcome, LifecycleOutcome { height: 25, done: false, refused: None });
        assert!(testing::take_events().iter().any(|(t, d)| t == "lifecycle.scheduled" && d == b"2@25"));
    }

    #[test]
    fn only_an_admin_approves_code_and_only_once() {
        testing::set_context([2; 32], 5);
        setup();
        let req = ApproveCode { code_hash: [7; 32] }.encode();
        assert_eq!(approve_code(&req), Err(Error::new("only a member of the governance committee may approve code")));
        testing::set_context([1; 32], 5);
        approve_code(&req).unwrap();
        assert_eq!(contract::storage_get(&approved_code_key(&[7; 32])), Some(vec![1; 32]));
        assert_eq!(approve_code(&req), Err(Error::new("this code hash is already approved")));
        let events = testing::take_events();
        assert_eq!(events.len(), 1);
        assert_eq!(events[0].0, "code.approved");
    }
}
