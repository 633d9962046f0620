//! Governance: the committee that decides what changes the rules, who the validators are,
//! and how the set changes.
//!
//! The committee ([`Committee`] under [`COMMITTEE_KEY`]) is a list of seats, each an account
//! acting for an organisation, and a threshold that counts distinct organisations, not keys:
//! two seats of one department are one vote. Genesis names it.
//!
//! The contract keeps the current validator set under [`VALIDATORS_KEY`] and at most one
//! scheduled change under [`PENDING_KEY`]; a change takes effect [`CHANGE_DELAY_BLOCKS`]
//! blocks after the block that decides it. The node applies it: before executing the block
//! at the activation height it moves the pending set into the current one (a new epoch), so
//! every node agrees on the set of every height from the state alone.
//!
//! Lifecycle decisions over contracts (freeze, unfreeze, migrate, a new admin) are scheduled
//! the same way: a carried [`Action::Lifecycle`] stores a [`ScheduledOp`] under
//! [`scheduled_key`], at the height `lifecycle_delay_blocks` (a committee parameter) later,
//! and the node carries it out before that block, with the governance contract as the acting
//! account, recording a [`LifecycleOutcome`] under [`outcome_key`].

use crate::KeyBytes;
use shutong_codec::{write, Decode, DecodeError, Encode, Reader};

/// Storage keys of the governance contract.
pub const COMMITTEE_KEY: &[u8] = b"committee";
pub const VALIDATORS_KEY: &[u8] = b"validators";
pub const PENDING_KEY: &[u8] = b"pending";
/// An approved code hash is stored under this prefix followed by the hash, with the
/// approving admin's account as the value.
pub const APPROVED_CODE_PREFIX: &[u8] = b"approved-code/";

/// The storage key that marks `code_hash` as approved for upload.
pub fn approved_code_key(code_hash: &[u8; 32]) -> Vec<u8> {
    let mut key = APPROVED_CODE_PREFIX.to_vec();
    key.extend_from_slice(code_hash);
    key
}

/// Arguments of `approve_code`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApproveCode {
    pub code_hash: [u8; 32],
}

impl Encode for ApproveCode {
    fn encode_to(&self, out: &mut Vec<u8>) {
        self.code_hash.encode_to(out);
    }
}

impl Decode for ApproveCode {
    fn decode_from(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        Ok(ApproveCode { code_hash: r.array()? })
    }
}

/// A change included in the block at height h takes effect at h + this.
pub const CHANGE_DELAY_BLOCKS: u64 = 10;
/// The largest validator set.
pub const VALIDATORS_MAX: u32 = 256;
/// The most governance admins.
pub const ADMINS_MAX: u32 = 64;

/// The validator set in force, and since when.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ValidatorSet {
    pub epoch: u64,
    /// The first height this set validates.
    pub since_height: u64,
    /// Public keys (of the chain's suite), in order: a validator's index in certificates is
    /// its position.
    pub keys: Vec<KeyBytes>,
    /// Each key's bound transport key, in the keys' order (one entry per key). On an SM chain
    /// every key has one; on an ed25519 chain a key without one is its own transport key.
    pub transports: Vec<Option<TransportKey>>,
}

/// A scheduled change.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PendingSet {
    pub activation_height: u64,
    pub keys: Vec<KeyBytes>,
    /// As in [`ValidatorSet`]: one entry per key.
    pub transports: Vec<Option<TransportKey>>,
    /// The account that scheduled it.
    pub proposer: [u8; 32],
}

/// Arguments of `set_validators`: the new set, in order, and a proof of possession for
/// each key that joins it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SetValidators {
    pub keys: Vec<KeyBytes>,
    pub proofs: Vec<KeyProof>,
}

shutong_codec::codec_struct! {
    /// A joining validator's proof that its holder controls `key`: its signature over
    /// [`possession_message`] of the chain and the proposed set. It may carry the key's
    /// transport key with its binding (a staying validator may send one to change it): on
    /// an SM chain every key needs one, on an ed25519 chain a key held where the node cannot
    /// read it (a token) does.
    #[derive(Debug, Clone, PartialEq, Eq)]
    pub struct KeyProof {
        pub key: KeyBytes,
        pub signature: [u8; 64],
        pub transport: Option<TransportKey>,
    }
}

shutong_codec::codec_struct! {
    /// A validator's transport key: the ed25519 key of its libp2p identity when the validator
    /// key cannot be (libp2p has no SM2 keys, and a key in a token never leaves it), used for
    /// nothing but the p2p handshake, and the validator key's signature over
    /// [`transport_binding_message`], which the allow list checks.
    #[derive(Debug, Clone, PartialEq, Eq)]
    pub struct TransportKey {
        pub key: [u8; 32],
        pub binding: [u8; 64],
    }
}

/// The domain of transport-key bindings.
pub const TRANSPORT_BINDING_TAG: &[u8] = b"shutong/transport-binding/v1";

/// What a validator key signs to bind `transport` to itself on chain `chain_id`:
/// `tag ‖ chain_id ‖ validator key (canonical) ‖ transport key`. Good for one chain and one
/// validator key; it does not name a set, so it stays good while the validator stays.
pub fn transport_binding_message(chain_id: &str, validator: &KeyBytes, transport: &[u8; 32]) -> Vec<u8> {
    let mut out = TRANSPORT_BINDING_TAG.to_vec();
    write::str(&mut out, chain_id);
    validator.encode_to(&mut out);
    out.extend_from_slice(transport);
    out
}

/// The domain of proofs of possession.
pub const POSSESSION_TAG: &[u8] = b"shutong/validator-possession/v1";

/// What a joining validator's key signs: `tag ‖ chain_id ‖ the proposed set`, so a proof
/// is good for one set on one chain, and a key cannot be named by someone who does not hold
/// it (nor can a key that is no curve point, or one of small order, ever enter a set).
pub fn possession_message(chain_id: &str, keys: &[KeyBytes]) -> Vec<u8> {
    let mut out = POSSESSION_TAG.to_vec();
    write::str(&mut out, chain_id);
    write_keys(&mut out, keys);
    out
}

/// The governance storage key of the chain id, written at genesis (proofs of possession and
/// consensus votes are signed over it).
pub const CHAIN_ID_KEY: &[u8] = b"chain-id";

/// Validator sets by epoch, written when each epoch starts (genesis: epoch 0), under this
/// prefix followed by the epoch (big-endian): evidence is checked against its epoch's set.
pub const EPOCH_SET_PREFIX: &[u8] = b"epoch-set/";

/// The storage key of epoch `epoch`'s validator set.
pub fn epoch_set_key(epoch: u64) -> Vec<u8> {
    let mut key = EPOCH_SET_PREFIX.to_vec();
    key.extend_from_slice(&epoch.to_be_bytes());
    key
}

// ---- Equivocation evidence --------------------------------------------------------------

/// The domain of consensus signatures; a vote signs
/// `tag ‖ chain_id ‖ epoch ‖ kind ‖ view ‖ digest` (consensus.md, Messages).
pub const CONSENSUS_TAG: &[u8] = b"shutong/consensus/v1";

/// The bytes a consensus vote signs. The node and the governance contract both use this.
pub fn vote_signing_bytes(chain_id: &str, kind: u8, epoch: u64, view: u64, digest: &[u8; 32]) -> Vec<u8> {
    let mut out = CONSENSUS_TAG.to_vec();
    write::str(&mut out, chain_id);
    write::u64(&mut out, epoch);
    write::u8(&mut out, kind);
    write::u64(&mut out, view);
    out.extend_from_slice(digest);
    out
}

/// Vote kinds, as in a signed vote.
pub mod vote_kind {
    pub const NOTARIZE: u8 = 0;
    pub const NULLIFY: u8 = 1;
    pub const FINALIZE: u8 = 2;
}

shutong_codec::codec_struct! {
    /// A validator's signed consensus vote, in the wire form of the consensus messages:
    /// what it votes on, its index in its epoch's set, and its signature.
    #[derive(Debug, Clone, PartialEq, Eq)]
    pub struct SignedVote {
        pub kind: u8,
        pub epoch: u64,
        pub view: u64,
        pub digest: [u8; 32],
        pub signer: u32,
        pub signature: [u8; 64],
    }
}

impl SignedVote {
    /// The bytes this vote's signature covers on chain `chain_id`.
    pub fn signing_bytes(&self, chain_id: &str) -> Vec<u8> {
        vote_signing_bytes(chain_id, self.kind, self.epoch, self.view, &self.digest)
    }
}

/// Why two votes of one signer in one view are not evidence, if they are not: evidence is
/// two notarizes of different blocks, two finalizes of different blocks, or a nullify and
/// a finalize (consensus.md, Evidence).
pub fn conflict(first: &SignedVote, second: &SignedVote) -> Result<(), &'static str> {
    use vote_kind::*;
    if first.epoch != second.epoch || first.view != second.view || first.signer != second.signer {
        return Err("the two votes are not one signer's in one epoch and view");
    }
    if first.kind > FINALIZE || second.kind > FINALIZE {
        return Err("a vote has an unknown kind");
    }
    let conflicting = match (first.kind, second.kind) {
        (NOTARIZE, NOTARIZE) | (FINALIZE, FINALIZE) => first.digest != second.digest,
        (NULLIFY, FINALIZE) | (FINALIZE, NULLIFY) => true,
        _ => false,
    };
    if conflicting {
        Ok(())
    } else {
        Err("the two votes do not conflict: evidence is two notarizes or two finalizes of different blocks, or a nullify and a finalize")
    }
}

shutong_codec::codec_struct! {
    /// Arguments of `report_equivocation`: two conflicting votes of one validator.
    #[derive(Debug, Clone, PartialEq, Eq)]
    pub struct Equivocation {
        pub first: SignedVote,
        pub second: SignedVote,
    }
}

shutong_codec::codec_struct! {
    /// Recorded evidence: the validator's key, the votes, who reported it and when.
    #[derive(Debug, Clone, PartialEq, Eq)]
    pub struct EvidenceRecord {
        pub validator: KeyBytes,
        pub evidence: Equivocation,
        pub reporter: [u8; 32],
        pub height: u64,
    }
}

/// Evidence is stored under this prefix, then the validator's key, the epoch and the view
/// (big-endian): once per validator and view.
pub const EVIDENCE_PREFIX: &[u8] = b"evidence/";

/// The key (after [`EVIDENCE_PREFIX`]) of evidence against `validator` in one epoch and view.
pub fn evidence_id(validator: &KeyBytes, epoch: u64, view: u64) -> Vec<u8> {
    let mut key = validator.as_slice().to_vec();
    key.extend_from_slice(&epoch.to_be_bytes());
    key.extend_from_slice(&view.to_be_bytes());
    key
}

/// The most evidence records one `list_evidence` page holds.
pub const EVIDENCE_PAGE_MAX: u32 = 64;

/// Arguments of `list_evidence`: the records after `after` (an [`evidence_id`]), at most
/// `limit` of them (up to [`EVIDENCE_PAGE_MAX`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ListEvidence {
    pub after: Option<Vec<u8>>,
    pub limit: u32,
}

impl Encode for ListEvidence {
    fn encode_to(&self, out: &mut Vec<u8>) {
        write::option(out, &self.after, |out, a| write::bytes(out, a));
        write::u32(out, self.limit);
    }
}

impl Decode for ListEvidence {
    fn decode_from(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        Ok(ListEvidence {
            after: r.option("list_evidence.after", |r| {
                r.byte_vec("list_evidence.after", crate::key::KEY_BYTES_MAX as u32 + 16)
            })?,
            limit: r.u32()?,
        })
    }
}

/// The result of `list_evidence`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EvidencePage {
    pub records: Vec<EvidenceRecord>,
}

impl Encode for EvidencePage {
    fn encode_to(&self, out: &mut Vec<u8>) {
        write::seq(out, &self.records, |out, r| r.encode_to(out));
    }
}

impl Decode for EvidencePage {
    fn decode_from(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        Ok(EvidencePage { records: r.seq("evidence_page.records", EVIDENCE_PAGE_MAX, EvidenceRecord::decode_from)? })
    }
}

/// The result of `get_validators`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Validators {
    pub current: ValidatorSet,
    pub pending: Option<PendingSet>,
}

shutong_codec::codec_struct! {
    /// One seat of the committee: an account that votes for an organisation.
    #[derive(Debug, Clone, PartialEq, Eq)]
    pub struct Seat {
        pub account: [u8; 32],
        pub org: String,
    }
}

/// The governance committee: its seats, and how many distinct organisations must vote for a
/// proposal.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Committee {
    pub seats: Vec<Seat>,
    pub threshold: u32,
}

impl Committee {
    /// The organisation `account` votes for, if it holds a seat.
    pub fn org_of(&self, account: &[u8; 32]) -> Option<&str> {
        self.seats.iter().find(|s| s.account == *account).map(|s| s.org.as_str())
    }

    /// The number of distinct organisations among the seats.
    pub fn orgs(&self) -> usize {
        let mut orgs: Vec<&str> = self.seats.iter().map(|s| s.org.as_str()).collect();
        orgs.sort_unstable();
        orgs.dedup();
        orgs.len()
    }

    /// The distinct organisations whose seats are among `votes`.
    pub fn voting_orgs(&self, votes: &[[u8; 32]]) -> usize {
        let mut orgs: Vec<&str> = votes.iter().filter_map(|v| self.org_of(v)).collect();
        orgs.sort_unstable();
        orgs.dedup();
        orgs.len()
    }

    /// Why this committee cannot govern, if it cannot: 1 to [`ADMINS_MAX`] seats of distinct
    /// accounts and valid organisation ids, and a threshold from 1 to the number of distinct
    /// organisations.
    pub fn check(&self) -> Result<(), String> {
        let mut accounts: Vec<[u8; 32]> = self.seats.iter().map(|s| s.account).collect();
        accounts.sort_unstable();
        accounts.dedup();
        if self.seats.is_empty() || self.seats.len() > ADMINS_MAX as usize || accounts.len() != self.seats.len() {
            return Err(format!("the committee has 1 to {} seats of distinct accounts", ADMINS_MAX));
        }
        if let Some(seat) = self.seats.iter().find(|s| !crate::registry::valid_org_id(&s.org)) {
            return Err(format!("invalid organisation id {:?} in the committee", seat.org));
        }
        if self.threshold == 0 || self.threshold as usize > self.orgs() {
            return Err(format!(
                "a threshold of {} organisations: it must be between 1 and the committee's {} organisations",
                self.threshold,
                self.orgs()
            ));
        }
        Ok(())
    }
}

fn write_keys(out: &mut Vec<u8>, keys: &[KeyBytes]) {
    write::seq(out, keys, |out, key| key.encode_to(out));
}

fn read_keys(r: &mut Reader<'_>, what: &'static str, max: u32) -> Result<Vec<KeyBytes>, DecodeError> {
    r.seq(what, max, KeyBytes::decode_from)
}

impl Encode for ValidatorSet {
    fn encode_to(&self, out: &mut Vec<u8>) {
        write::u64(out, self.epoch);
        write::u64(out, self.since_height);
        write_keys(out, &self.keys);
        write_transports(out, &self.transports);
    }
}

impl Decode for ValidatorSet {
    fn decode_from(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        Ok(ValidatorSet {
            epoch: r.u64()?,
            since_height: r.u64()?,
            keys: read_keys(r, "validator_set.keys", VALIDATORS_MAX)?,
            transports: read_transports(r, "validator_set.transports")?,
        })
    }
}

impl Encode for PendingSet {
    fn encode_to(&self, out: &mut Vec<u8>) {
        write::u64(out, self.activation_height);
        write_keys(out, &self.keys);
        write_transports(out, &self.transports);
        self.proposer.encode_to(out);
    }
}

impl Decode for PendingSet {
    fn decode_from(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        Ok(PendingSet {
            activation_height: r.u64()?,
            keys: read_keys(r, "pending_set.keys", VALIDATORS_MAX)?,
            transports: read_transports(r, "pending_set.transports")?,
            proposer: r.array()?,
        })
    }
}

fn write_transports(out: &mut Vec<u8>, transports: &[Option<TransportKey>]) {
    write::seq(out, transports, |out, t| t.encode_to(out));
}

fn read_transports(r: &mut Reader<'_>, what: &'static str) -> Result<Vec<Option<TransportKey>>, DecodeError> {
    r.seq(what, VALIDATORS_MAX, |r| r.option(what, TransportKey::decode_from))
}

fn write_proofs(out: &mut Vec<u8>, proofs: &[KeyProof]) {
    write::seq(out, proofs, |out, proof| proof.encode_to(out));
}

fn read_proofs(r: &mut Reader<'_>, what: &'static str) -> Result<Vec<KeyProof>, DecodeError> {
    r.seq(what, VALIDATORS_MAX, KeyProof::decode_from)
}

impl Encode for SetValidators {
    fn encode_to(&self, out: &mut Vec<u8>) {
        write_keys(out, &self.keys);
        write_proofs(out, &self.proofs);
    }
}

impl Decode for SetValidators {
    fn decode_from(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        Ok(SetValidators {
            keys: read_keys(r, "set_validators.keys", VALIDATORS_MAX)?,
            proofs: read_proofs(r, "set_validators.proofs")?,
        })
    }
}

impl Encode for Validators {
    fn encode_to(&self, out: &mut Vec<u8>) {
        self.current.encode_to(out);
        write::option(out, &self.pending, |out, p| p.encode_to(out));
    }
}

impl Decode for Validators {
    fn decode_from(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        Ok(Validators {
            current: ValidatorSet::decode_from(r)?,
            pending: r.option("validators.pending", PendingSet::decode_from)?,
        })
    }
}

fn read_seat(r: &mut Reader<'_>) -> Result<Seat, DecodeError> {
    Ok(Seat { account: r.array()?, org: r.string("seat.org", crate::registry::ORG_ID_BYTES_MAX)? })
}

impl Encode for Committee {
    fn encode_to(&self, out: &mut Vec<u8>) {
        write::seq(out, &self.seats, |out, seat| seat.encode_to(out));
        write::u32(out, self.threshold);
    }
}

impl Decode for Committee {
    fn decode_from(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        Ok(Committee { seats: r.seq("committee.seats", ADMINS_MAX, read_seat)?, threshold: r.u32()? })
    }
}

// ---- The committee ----------------------------------------------------------------------

/// A proposal not carried within this many blocks of its creation lapses.
pub const PROPOSAL_BLOCKS: u64 = 1_000;

/// What the committee can decide.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    /// Schedule a new validator set (as `set_validators`), with a proof of possession for
    /// each key that joins.
    SetValidators { keys: Vec<KeyBytes>, proofs: Vec<KeyProof> },
    /// Approve a code hash for upload (as `approve_code`).
    ApproveCode { code_hash: [u8; 32] },
    /// Replace the committee and its threshold.
    SetCommittee { committee: Committee },
    /// Suspend an organisation: none of its principals may act.
    SuspendOrg { id: String },
    /// Lift a suspension.
    ReinstateOrg { id: String },
    /// Add an organisation, administered by `admin`.
    AddOrg { id: String, name: String, kind: crate::registry::OrgKind, admin: [u8; 32] },
    /// Define a purpose code in the purpose hierarchy, with the legal bases it may rest on.
    DefinePurpose { code: String, legal_bases: u8, description: String },
    /// Set a parameter (`PARAMS`): `upload_policy` (`governance` or `open`), which the node
    /// reads from governance storage (`PARAM_PREFIX`); `registration` (`open`, `approved` or
    /// `governance`), which the registry keeps; `lifecycle_delay_blocks`; `anchor_lag_ms_max`;
    /// `validators_min`, the fewest validators a new set may have.
    SetParam { name: String, value: String },
    /// A lifecycle operation on a contract, carried out `lifecycle_delay_blocks` after the
    /// decision with the governance contract as the acting account: the only way a system
    /// contract is frozen, unfrozen, migrated or handed to another admin, and how a rogue
    /// enterprise contract is frozen.
    Lifecycle { contract: [u8; 32], op: LifecycleOp },
    /// Approve a pending registration: the organisation becomes active.
    ApproveOrg { id: String },
    /// Make organisation `org` (a department) the authoritative source of data element
    /// `element` (一数一源), or move it there from another: the only way a source is set.
    AssignSource { element: String, org: String },
}

/// What a lifecycle decision does to its contract.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LifecycleOp {
    Freeze,
    Unfreeze,
    /// To uploaded code, handing `args` to its `migrate` method if it has one.
    Migrate {
        code_hash: [u8; 32],
        args: Vec<u8>,
    },
    /// A new admin account (the governance contract's address keeps it with the committee).
    SetAdmin {
        admin: [u8; 32],
    },
}

impl LifecycleOp {
    pub fn name(&self) -> &'static str {
        match self {
            LifecycleOp::Freeze => "freeze",
            LifecycleOp::Unfreeze => "unfreeze",
            LifecycleOp::Migrate { .. } => "migrate",
            LifecycleOp::SetAdmin { .. } => "set-admin",
        }
    }
}

impl Encode for LifecycleOp {
    fn encode_to(&self, out: &mut Vec<u8>) {
        match self {
            LifecycleOp::Freeze => write::u8(out, 0),
            LifecycleOp::Unfreeze => write::u8(out, 1),
            LifecycleOp::Migrate { code_hash, args } => {
                write::u8(out, 2);
                code_hash.encode_to(out);
                write::bytes(out, args);
            }
            LifecycleOp::SetAdmin { admin } => {
                write::u8(out, 3);
                admin.encode_to(out);
            }
        }
    }
}

impl Decode for LifecycleOp {
    fn decode_from(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        Ok(match r.u8()? {
            0 => LifecycleOp::Freeze,
            1 => LifecycleOp::Unfreeze,
            2 => LifecycleOp::Migrate {
                code_hash: r.array()?,
                args: r.byte_vec("migrate.args", crate::lifecycle::INIT_ARGS_BYTES_MAX)?,
            },
            3 => LifecycleOp::SetAdmin { admin: r.array()? },
            tag => return Err(DecodeError::InvalidTag { what: "lifecycle op", tag }),
        })
    }
}

shutong_codec::codec_struct! {
    /// A carried lifecycle decision waiting for its height.
    #[derive(Debug, Clone, PartialEq, Eq)]
    pub struct ScheduledOp {
        pub proposal: u64,
        pub contract: [u8; 32],
        pub op: LifecycleOp,
    }
}

shutong_codec::codec_struct! {
    /// Where a carried lifecycle decision stands: scheduled for `height` (`done` false), or
    /// carried out at `height`, where `refused` names the rule if the lifecycle refused it
    /// (nothing then changed).
    #[derive(Debug, Clone, PartialEq, Eq)]
    pub struct LifecycleOutcome {
        pub height: u64,
        pub done: bool,
        pub refused: Option<String>,
    }
}

/// Scheduled lifecycle decisions are stored under this prefix, then the height (big-endian,
/// so that a scan finds the earliest first), then the proposal id.
pub const SCHEDULED_PREFIX: &[u8] = b"scheduled/";

/// The storage key of proposal `proposal`'s lifecycle decision due at `height`.
pub fn scheduled_key(height: u64, proposal: u64) -> Vec<u8> {
    let mut key = SCHEDULED_PREFIX.to_vec();
    key.extend_from_slice(&height.to_be_bytes());
    key.extend_from_slice(&proposal.to_be_bytes());
    key
}

/// The storage key of proposal `proposal`'s lifecycle outcome.
pub fn outcome_key(proposal: u64) -> Vec<u8> {
    let mut key = b"lifecycle-outcome/".to_vec();
    key.extend_from_slice(&proposal.to_be_bytes());
    key
}

/// At most this many scheduled lifecycle decisions are carried out before one block; the
/// rest wait for the next.
pub const SCHEDULED_PER_BLOCK_MAX: usize = 16;
/// Gas one scheduled lifecycle decision may use (a migration's `migrate` method).
pub const SCHEDULED_GAS_MAX: u64 = 50_000_000;
/// The lifecycle delay when the committee has set none.
pub const LIFECYCLE_DELAY_BLOCKS_DEFAULT: u64 = 10;
/// The range the committee may set the lifecycle delay in.
pub const LIFECYCLE_DELAY_BLOCKS: (u64, u64) = (1, 1_000_000);

/// Chain parameters the committee sets are stored under this prefix followed by the name;
/// the node prefers them to the genesis value.
pub const PARAM_PREFIX: &[u8] = b"param/";
/// The parameters the committee may set, with their allowed values (an empty list: a whole
/// number in the range the parameter names).
pub const PARAMS: [(&str, &[&str]); 5] = [
    ("upload_policy", &["governance", "open"]),
    ("registration", &["open", "approved", "governance"]),
    ("lifecycle_delay_blocks", &[]),
    ("anchor_lag_ms_max", &[]),
    ("validators_min", &[]),
];
/// The range of a numeric parameter (one whose allowed values [`PARAMS`] leaves empty).
pub fn param_range(name: &str) -> Option<(u64, u64)> {
    match name {
        LIFECYCLE_DELAY_PARAM => Some(LIFECYCLE_DELAY_BLOCKS),
        VALIDATORS_MIN_PARAM => Some(VALIDATORS_MIN),
        // One minute to thirty days.
        crate::audit::ANCHOR_LAG_PARAM => Some((60_000, 30 * 24 * 3600 * 1000)),
        _ => None,
    }
}
/// The governance parameter that holds the lifecycle delay (decimal blocks).
pub const LIFECYCLE_DELAY_PARAM: &str = "lifecycle_delay_blocks";
/// The governance parameter that holds the fewest validators a new set may have (decimal);
/// one until the committee sets it.
pub const VALIDATORS_MIN_PARAM: &str = "validators_min";
/// The range of [`VALIDATORS_MIN_PARAM`].
pub const VALIDATORS_MIN: (u64, u64) = (1, 100);

/// The governance storage key of parameter `name`.
pub fn param_key(name: &str) -> Vec<u8> {
    let mut key = PARAM_PREFIX.to_vec();
    key.extend_from_slice(name.as_bytes());
    key
}

impl Encode for Action {
    fn encode_to(&self, out: &mut Vec<u8>) {
        match self {
            Action::SetValidators { keys, proofs } => {
                write::u8(out, 0);
                write_keys(out, keys);
                write_proofs(out, proofs);
            }
            Action::ApproveCode { code_hash } => {
                write::u8(out, 1);
                code_hash.encode_to(out);
            }
            Action::SetCommittee { committee } => {
                write::u8(out, 2);
                committee.encode_to(out);
            }
            Action::SuspendOrg { id } => {
                write::u8(out, 3);
                write::str(out, id);
            }
            Action::ReinstateOrg { id } => {
                write::u8(out, 4);
                write::str(out, id);
            }
            Action::AddOrg { id, name, kind, admin } => {
                write::u8(out, 7);
                write::str(out, id);
                write::str(out, name);
                kind.encode_to(out);
                admin.encode_to(out);
            }
            Action::DefinePurpose { code, legal_bases, description } => {
                write::u8(out, 6);
                write::str(out, code);
                write::u8(out, *legal_bases);
                write::str(out, description);
            }
            Action::SetParam { name, value } => {
                write::u8(out, 5);
                write::str(out, name);
                write::str(out, value);
            }
            Action::Lifecycle { contract, op } => {
                write::u8(out, 8);
                contract.encode_to(out);
                op.encode_to(out);
            }
            Action::ApproveOrg { id } => {
                write::u8(out, 9);
                write::str(out, id);
            }
            Action::AssignSource { element, org } => {
                write::u8(out, 10);
                write::str(out, element);
                write::str(out, org);
            }
        }
    }
}

impl Decode for Action {
    fn decode_from(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        Ok(match r.u8()? {
            0 => Action::SetValidators {
                keys: read_keys(r, "action.keys", VALIDATORS_MAX)?,
                proofs: read_proofs(r, "action.proofs")?,
            },
            1 => Action::ApproveCode { code_hash: r.array()? },
            2 => Action::SetCommittee { committee: Committee::decode_from(r)? },
            3 => Action::SuspendOrg { id: r.string("action.org", crate::registry::ORG_ID_BYTES_MAX)? },
            4 => Action::ReinstateOrg { id: r.string("action.org", crate::registry::ORG_ID_BYTES_MAX)? },
            5 => Action::SetParam { name: r.string("action.param", 64)?, value: r.string("action.value", 256)? },
            7 => Action::AddOrg {
                id: r.string("action.org", crate::registry::ORG_ID_BYTES_MAX)?,
                name: r.string("action.name", crate::registry::ORG_NAME_BYTES_MAX)?,
                kind: crate::registry::OrgKind::decode_from(r)?,
                admin: r.array()?,
            },
            6 => Action::DefinePurpose {
                code: r.string("action.purpose", 128)?,
                legal_bases: r.u8()?,
                description: r.string("action.description", 256)?,
            },
            8 => Action::Lifecycle { contract: r.array()?, op: LifecycleOp::decode_from(r)? },
            9 => Action::ApproveOrg { id: r.string("action.org", crate::registry::ORG_ID_BYTES_MAX)? },
            10 => Action::AssignSource {
                element: r.string("action.element", crate::catalog::CODE_BYTES_MAX)?,
                org: r.string("action.org", crate::registry::ORG_ID_BYTES_MAX)?,
            },
            tag => return Err(DecodeError::InvalidTag { what: "governance action", tag }),
        })
    }
}

shutong_codec::codec_struct! {
    /// Arguments of `propose`.
    #[derive(Debug, Clone, PartialEq, Eq)]
    pub struct Propose {
        pub action: Action,
    }
}

shutong_codec::codec_struct! {
    /// A proposal and its votes.
    #[derive(Debug, Clone, PartialEq, Eq)]
    pub struct Proposal {
        pub id: u64,
        pub action: Action,
        pub proposer: [u8; 32],
        pub votes: Vec<[u8; 32]>,
        pub created_height: u64,
        pub executed: bool,
    }
}

shutong_codec::codec_struct! {
    /// Arguments of `vote` and `get_proposal`.
    #[derive(Debug, Clone, PartialEq, Eq)]
    pub struct ProposalId {
        pub id: u64,
    }
}

/// Purposes are stored under this prefix followed by the code.
pub const PURPOSE_PREFIX: &[u8] = b"purpose/";

/// Legal bases, as bits of `PurposeDef::legal_bases` (`1 << authz::LegalBasis as u8`).
pub mod basis {
    pub const STATUTE: u8 = 1 << 0;
    pub const DUTY_MANDATE: u8 = 1 << 1;
    pub const CONSENT: u8 = 1 << 2;
    pub const CONTRACT: u8 = 1 << 3;
    pub const ALL: u8 = (1 << 4) - 1;
}

shutong_codec::codec_struct! {
    /// A defined purpose (domain.md: "Purpose: hierarchical code, legal basis type").
    #[derive(Debug, Clone, PartialEq, Eq)]
    pub struct PurposeDef {
        pub code: String,
        /// `basis` bits: the legal bases a request for this purpose (or one below it) may rest on.
        pub legal_bases: u8,
        pub description: String,
    }
}

shutong_codec::codec_struct! {
    /// Arguments of `resolve_purpose`: the nearest defined purpose at or above `code`.
    #[derive(Debug, Clone, PartialEq, Eq)]
    pub struct ResolvePurpose {
        pub code: String,
    }
}
