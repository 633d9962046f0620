//! Governance: who the validators are, and how the set changes.
//!
//! The contract keeps the current set under [`VALIDATORS_KEY`] and at most one scheduled
//! change under [`PENDING_KEY`]. `set_validators`, allowed to the governance admins only,
//! schedules a change that takes effect [`CHANGE_DELAY_BLOCKS`] blocks after the block that
//! includes it. The node applies it: before executing the block at the activation height it
//! moves the pending set into the current one (a new epoch), so every node agrees on the set
//! of every height from the state alone.

use shutong_codec::{write, Decode, DecodeError, Encode, Reader};

/// Storage keys of the governance contract.
pub const ADMINS_KEY: &[u8] = b"admins";
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
    /// Ed25519 public keys, in order: a validator's index in certificates is its position.
    pub keys: Vec<[u8; 32]>,
}

/// A scheduled change.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PendingSet {
    pub activation_height: u64,
    pub keys: Vec<[u8; 32]>,
    /// The account that scheduled it.
    pub proposer: [u8; 32],
}

/// Arguments of `set_validators`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SetValidators {
    pub keys: Vec<[u8; 32]>,
}

/// The result of `get_validators`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Validators {
    pub current: ValidatorSet,
    pub pending: Option<PendingSet>,
}

/// The governance admins: a list of accounts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Admins {
    pub accounts: Vec<[u8; 32]>,
}

fn write_keys(out: &mut Vec<u8>, keys: &[[u8; 32]]) {
    write::seq(out, keys, |out, key| key.encode_to(out));
}

fn read_keys(r: &mut Reader<'_>, what: &'static str, max: u32) -> Result<Vec<[u8; 32]>, DecodeError> {
    r.seq(what, max, |r| r.array())
}

impl Encode for ValidatorSet {
    fn encode_to(&self, out: &mut Vec<u8>) {
        write::u64(out, self.epoch);
        write::u64(out, self.since_height);
        write_keys(out, &self.keys);
    }
}

impl Decode for ValidatorSet {
    fn decode_from(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        Ok(ValidatorSet {
            epoch: r.u64()?,
            since_height: r.u64()?,
            keys: read_keys(r, "validator_set.keys", VALIDATORS_MAX)?,
        })
    }
}

impl Encode for PendingSet {
    fn encode_to(&self, out: &mut Vec<u8>) {
        write::u64(out, self.activation_height);
        write_keys(out, &self.keys);
        self.proposer.encode_to(out);
    }
}

impl Decode for PendingSet {
    fn decode_from(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        Ok(PendingSet {
            activation_height: r.u64()?,
            keys: read_keys(r, "pending_set.keys", VALIDATORS_MAX)?,
            proposer: r.array()?,
        })
    }
}

impl Encode for SetValidators {
    fn encode_to(&self, out: &mut Vec<u8>) {
        write_keys(out, &self.keys);
    }
}

impl Decode for SetValidators {
    fn decode_from(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        Ok(SetValidators { keys: read_keys(r, "set_validators.keys", VALIDATORS_MAX)? })
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

impl Encode for Admins {
    fn encode_to(&self, out: &mut Vec<u8>) {
        write_keys(out, &self.accounts);
    }
}

impl Decode for Admins {
    fn decode_from(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        Ok(Admins { accounts: read_keys(r, "admins.accounts", ADMINS_MAX)? })
    }
}

// ---- The committee ----------------------------------------------------------------------

/// The number of admins' votes a proposal needs (a `u32`; absent means 1).
pub const THRESHOLD_KEY: &[u8] = b"threshold";
/// A proposal not carried within this many blocks of its creation lapses.
pub const PROPOSAL_BLOCKS: u64 = 1_000;

/// What the committee can decide.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    /// Schedule a new validator set (as `set_validators`).
    SetValidators { keys: Vec<[u8; 32]> },
    /// Approve a code hash for upload (as `approve_code`).
    ApproveCode { code_hash: [u8; 32] },
    /// Replace the committee and its threshold.
    SetAdmins { accounts: Vec<[u8; 32]>, threshold: u32 },
    /// Suspend an organisation: none of its principals may act.
    SuspendOrg { id: String },
    /// Lift a suspension.
    ReinstateOrg { id: String },
    /// Add an organisation, administered by `admin`.
    AddOrg { id: String, name: String, kind: crate::registry::OrgKind, admin: [u8; 32] },
    /// Define a purpose code in the purpose hierarchy, with the legal bases it may rest on.
    DefinePurpose { code: String, legal_bases: u8, description: String },
    /// Set a parameter (`PARAMS`): `upload_policy` (`governance` or `open`), which the node
    /// reads from governance storage (`PARAM_PREFIX`); `registration` (`open` or
    /// `governance`), which the registry keeps.
    SetParam { name: String, value: String },
}

/// Chain parameters the committee sets are stored under this prefix followed by the name;
/// the node prefers them to the genesis value.
pub const PARAM_PREFIX: &[u8] = b"param/";
/// The parameters the committee may set, with their allowed values.
pub const PARAMS: [(&str, &[&str]); 2] =
    [("upload_policy", &["governance", "open"]), ("registration", &["open", "governance"])];

/// The governance storage key of parameter `name`.
pub fn param_key(name: &str) -> Vec<u8> {
    let mut key = PARAM_PREFIX.to_vec();
    key.extend_from_slice(name.as_bytes());
    key
}

impl Encode for Action {
    fn encode_to(&self, out: &mut Vec<u8>) {
        match self {
            Action::SetValidators { keys } => {
                write::u8(out, 0);
                write_keys(out, keys);
            }
            Action::ApproveCode { code_hash } => {
                write::u8(out, 1);
                code_hash.encode_to(out);
            }
            Action::SetAdmins { accounts, threshold } => {
                write::u8(out, 2);
                write_keys(out, accounts);
                write::u32(out, *threshold);
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
        }
    }
}

impl Decode for Action {
    fn decode_from(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        Ok(match r.u8()? {
            0 => Action::SetValidators { keys: read_keys(r, "action.keys", VALIDATORS_MAX)? },
            1 => Action::ApproveCode { code_hash: r.array()? },
            2 => Action::SetAdmins { accounts: read_keys(r, "action.accounts", ADMINS_MAX)?, threshold: r.u32()? },
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
