//! The organisation registry: `register`, `update` and `get`.

use shutong_codec::{write, Decode, DecodeError, Encode, Reader};

pub const ORG_ID_BYTES_MAX: u32 = 64;
pub const ORG_NAME_BYTES_MAX: u32 = 256;

/// What kind of body an organisation is (domain.md, Entities).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OrgKind {
    Department = 0,
    Enterprise = 1,
    Auditor = 2,
    Operator = 3,
}

impl OrgKind {
    pub const ALL: [OrgKind; 4] = [OrgKind::Department, OrgKind::Enterprise, OrgKind::Auditor, OrgKind::Operator];

    pub fn name(self) -> &'static str {
        match self {
            OrgKind::Department => "department",
            OrgKind::Enterprise => "enterprise",
            OrgKind::Auditor => "auditor",
            OrgKind::Operator => "operator",
        }
    }

    pub fn from_name(name: &str) -> Option<OrgKind> {
        OrgKind::ALL.iter().copied().find(|kind| kind.name() == name)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OrgStatus {
    Active = 0,
    Suspended = 1,
    /// Registered, waiting for the committee's approval (departments, auditors and operators
    /// always; enterprises under the `approved` registration policy). A pending
    /// organisation's keys act for nobody.
    Pending = 2,
}

/// Whether `id` is a valid organisation id: 1 to 64 of `a-z 0-9 - _ .`.
pub fn valid_org_id(id: &str) -> bool {
    let valid_char = |c: char| c.is_ascii_lowercase() || c.is_ascii_digit() || "-_.".contains(c);
    !id.is_empty() && id.len() <= ORG_ID_BYTES_MAX as usize && id.chars().all(valid_char)
}

/// The most registrations pending at once; more are refused until the committee decides or
/// some expire.
pub const PENDING_MAX: u32 = 256;
/// A pending registration the committee has not approved within this long expires: anyone
/// may then remove it (`expire`), and its id may be registered again.
pub const PENDING_MS: u64 = 30 * 24 * 3600 * 1000;

/// Whether an organisation of `kind` must wait for the committee under registration policy
/// `policy`: departments, auditors and operators always do, enterprises under `approved`.
pub fn needs_approval(kind: OrgKind, policy: &str) -> bool {
    kind != OrgKind::Enterprise || policy == "approved"
}

impl OrgStatus {
    pub fn name(self) -> &'static str {
        match self {
            OrgStatus::Active => "active",
            OrgStatus::Suspended => "suspended",
            OrgStatus::Pending => "pending",
        }
    }

    pub fn from_name(name: &str) -> Option<OrgStatus> {
        match name {
            "active" => Some(OrgStatus::Active),
            "suspended" => Some(OrgStatus::Suspended),
            "pending" => Some(OrgStatus::Pending),
            _ => None,
        }
    }
}

/// A registered organisation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Org {
    pub id: String,
    pub name: String,
    pub kind: OrgKind,
    pub status: OrgStatus,
    /// The account that registered the organisation and may update it.
    pub admin: [u8; 32],
    pub registered_height: u64,
    pub updated_height: u64,
}

/// Arguments of `register`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RegisterOrg {
    pub id: String,
    pub name: String,
    pub kind: OrgKind,
}

/// Arguments of `update`: each field that is `Some` is changed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UpdateOrg {
    pub id: String,
    pub name: Option<String>,
    pub status: Option<OrgStatus>,
}

/// Arguments of `get`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GetOrg {
    pub id: String,
}

fn read_kind(r: &mut Reader<'_>) -> Result<OrgKind, DecodeError> {
    match r.u8()? {
        0 => Ok(OrgKind::Department),
        1 => Ok(OrgKind::Enterprise),
        2 => Ok(OrgKind::Auditor),
        3 => Ok(OrgKind::Operator),
        tag => Err(DecodeError::InvalidTag { what: "org.kind", tag }),
    }
}

fn read_status(r: &mut Reader<'_>) -> Result<OrgStatus, DecodeError> {
    match r.u8()? {
        0 => Ok(OrgStatus::Active),
        1 => Ok(OrgStatus::Suspended),
        2 => Ok(OrgStatus::Pending),
        tag => Err(DecodeError::InvalidTag { what: "org.status", tag }),
    }
}

impl Encode for Org {
    fn encode_to(&self, out: &mut Vec<u8>) {
        write::str(out, &self.id);
        write::str(out, &self.name);
        write::u8(out, self.kind as u8);
        write::u8(out, self.status as u8);
        self.admin.encode_to(out);
        write::u64(out, self.registered_height);
        write::u64(out, self.updated_height);
    }
}

impl Decode for Org {
    fn decode_from(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        Ok(Org {
            id: r.string("org.id", ORG_ID_BYTES_MAX)?,
            name: r.string("org.name", ORG_NAME_BYTES_MAX)?,
            kind: read_kind(r)?,
            status: read_status(r)?,
            admin: r.array()?,
            registered_height: r.u64()?,
            updated_height: r.u64()?,
        })
    }
}

impl Encode for RegisterOrg {
    fn encode_to(&self, out: &mut Vec<u8>) {
        write::str(out, &self.id);
        write::str(out, &self.name);
        write::u8(out, self.kind as u8);
    }
}

impl Decode for RegisterOrg {
    fn decode_from(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        Ok(RegisterOrg {
            id: r.string("org.id", ORG_ID_BYTES_MAX)?,
            name: r.string("org.name", ORG_NAME_BYTES_MAX)?,
            kind: read_kind(r)?,
        })
    }
}

impl Encode for UpdateOrg {
    fn encode_to(&self, out: &mut Vec<u8>) {
        write::str(out, &self.id);
        write::option(out, &self.name, |out, name| write::str(out, name));
        write::option(out, &self.status, |out, status| write::u8(out, *status as u8));
    }
}

impl Decode for UpdateOrg {
    fn decode_from(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        Ok(UpdateOrg {
            id: r.string("org.id", ORG_ID_BYTES_MAX)?,
            name: r.option("update.name", |r| r.string("org.name", ORG_NAME_BYTES_MAX))?,
            status: r.option("update.status", read_status)?,
        })
    }
}

impl Encode for GetOrg {
    fn encode_to(&self, out: &mut Vec<u8>) {
        write::str(out, &self.id);
    }
}

impl Decode for GetOrg {
    fn decode_from(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        Ok(GetOrg { id: r.string("org.id", ORG_ID_BYTES_MAX)? })
    }
}

// ---- Principals and roles ------------------------------------------------------------------

/// Roles a principal holds, as bits (domain.md, Entities).
pub mod role {
    pub const ADMIN: u32 = 1 << 0;
    pub const DATA_PROVIDER: u32 = 1 << 1;
    pub const DATA_CONSUMER: u32 = 1 << 2;
    pub const AUDITOR: u32 = 1 << 3;
    pub const CDO: u32 = 1 << 4;
    pub const SECURITY_OFFICER: u32 = 1 << 5;
    pub const DEPLOYER: u32 = 1 << 6;
    pub const VALIDATOR: u32 = 1 << 7;
    /// Every role, with its name.
    pub const NAMES: [(u32, &str); 8] = [
        (ADMIN, "admin"),
        (DATA_PROVIDER, "data_provider"),
        (DATA_CONSUMER, "data_consumer"),
        (AUDITOR, "auditor"),
        (CDO, "cdo"),
        (SECURITY_OFFICER, "security_officer"),
        (DEPLOYER, "deployer"),
        (VALIDATOR, "validator"),
    ];
    /// The bits of every known role.
    pub const ALL: u32 = (1 << 8) - 1;

    /// The role with `name`.
    pub fn from_name(name: &str) -> Option<u32> {
        NAMES.iter().find(|(_, n)| *n == name).map(|(bit, _)| *bit)
    }

    /// The names of the roles in `roles`.
    pub fn names(roles: u32) -> Vec<&'static str> {
        NAMES.iter().filter(|(bit, _)| roles & bit != 0).map(|(_, n)| *n).collect()
    }
}

shutong_codec::codec_enum! {
    /// What acts through a principal's key.
    #[derive(Debug, Clone, Copy, PartialEq, Eq)]
    pub enum PrincipalKind { Person = 0 => "person", System = 1 => "system", Gateway = 2 => "gateway", Validator = 3 => "validator" }
}

shutong_codec::codec_enum! {
    #[derive(Debug, Clone, Copy, PartialEq, Eq)]
    pub enum PrincipalStatus {
        Active = 0 => "active",
        Suspended = 1 => "suspended",
        /// The key was replaced by `rotated_to`; it acts for nobody any more.
        Rotated = 2 => "rotated",
    }
}

shutong_codec::codec_struct! {
    /// A key acting for an organisation, with roles. An account is the principal of at most
    /// one organisation.
    #[derive(Debug, Clone, PartialEq, Eq)]
    pub struct Principal {
        pub account: [u8; 32],
        pub org: String,
        pub kind: PrincipalKind,
        /// `role` bits.
        pub roles: u32,
        pub status: PrincipalStatus,
        /// The key that replaced this one, once rotated.
        pub rotated_to: Option<[u8; 32]>,
        pub updated_height: u64,
    }
}

shutong_codec::codec_struct! {
    /// Arguments of `set_principal`: adds `account` to `org`, or changes its kind, roles or
    /// status. The organisation's admin (its registering account, or an active principal of
    /// it with the `admin` role) only.
    #[derive(Debug, Clone, PartialEq, Eq)]
    pub struct SetPrincipal {
        pub org: String,
        pub account: [u8; 32],
        pub kind: PrincipalKind,
        pub roles: u32,
        pub status: PrincipalStatus,
    }
}

shutong_codec::codec_struct! {
    /// Arguments of `rotate_key`, sent by the principal's current key: `new_account` takes
    /// over its organisation and roles, and the old key stops acting.
    #[derive(Debug, Clone, PartialEq, Eq)]
    pub struct RotateKey {
        pub new_account: [u8; 32],
    }
}

shutong_codec::codec_struct! {
    /// Arguments of `member`.
    #[derive(Debug, Clone, PartialEq, Eq)]
    pub struct GetMember {
        pub account: [u8; 32],
    }
}

shutong_codec::codec_struct! {
    /// What `member` answers: the account's principal record and its organisation's kind and
    /// status, so that another contract checks "may this account act as role R for org O"
    /// with one call. `acting` is true only if both are active.
    #[derive(Debug, Clone, PartialEq, Eq)]
    pub struct Member {
        pub principal: Principal,
        pub org_kind: OrgKind,
        pub org_status: OrgStatus,
        pub acting: bool,
    }
}

/// The registry's storage key of the principal `account` (its own keys; the chain prefixes them).
pub fn principal_key(account: &[u8; 32]) -> Vec<u8> {
    let mut key = b"principal/".to_vec();
    key.extend_from_slice(account);
    key
}

/// The registry's storage key that names the organisation `account` administers (the first
/// one, if it registered several): how the node recognises an organisation's admin without
/// scanning every organisation.
pub fn admin_key(account: &[u8; 32]) -> Vec<u8> {
    let mut key = b"admin/".to_vec();
    key.extend_from_slice(account);
    key
}

/// The registry's storage key of organisation `id`.
pub fn org_key(id: &str) -> Vec<u8> {
    let mut key = b"org/".to_vec();
    key.extend_from_slice(id.as_bytes());
    key
}

impl Member {
    /// What the registry's `member` answers for `account`, read straight from the registry's
    /// storage by `get` (another contract's reads: `storage_get_of`), without calling it.
    /// `Ok(None)` if the account is not a principal.
    pub fn read(account: &[u8; 32], get: impl Fn(&[u8]) -> Option<Vec<u8>>) -> Result<Option<Member>, DecodeError> {
        let principal = match get(&principal_key(account)) {
            Some(bytes) => Principal::decode(&bytes)?,
            None => return Ok(None),
        };
        match get(&org_key(&principal.org)) {
            Some(bytes) => Ok(Some(Member::of(principal, &Org::decode(&bytes)?))),
            None => Ok(None),
        }
    }

    /// What the registry answers for `principal` of `org`: it acts only while both are active.
    pub fn of(principal: Principal, org: &Org) -> Member {
        let acting = principal.status == PrincipalStatus::Active && org.status == OrgStatus::Active;
        Member { principal, org_kind: org.kind, org_status: org.status, acting }
    }
}

impl Encode for OrgKind {
    fn encode_to(&self, out: &mut Vec<u8>) {
        write::u8(out, *self as u8);
    }
}

impl Decode for OrgKind {
    fn decode_from(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        read_kind(r)
    }
}

impl Encode for OrgStatus {
    fn encode_to(&self, out: &mut Vec<u8>) {
        write::u8(out, *self as u8);
    }
}

impl Decode for OrgStatus {
    fn decode_from(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        read_status(r)
    }
}

shutong_codec::codec_struct! {
    /// Arguments of `set_status_by_governance`, which only the governance contract may call.
    #[derive(Debug, Clone, PartialEq, Eq)]
    pub struct GovernanceOrgStatus {
        pub id: String,
        pub status: OrgStatus,
    }
}

/// The most approval steps a policy may have.
pub const POLICY_STEPS_MAX: usize = 8;

shutong_codec::codec_struct! {
    /// An organisation's approval policy for requests for its data of one classification:
    /// one distinct approver per step, each holding one of the step's roles (`role` bits).
    /// "The CDO and the security officer both sign" is `[cdo, security_officer]`; "two of the
    /// data providers" is `[data_provider, data_provider]`. Without a policy, the built-in
    /// route applies (`authz`).
    #[derive(Debug, Clone, PartialEq, Eq)]
    pub struct ApprovalPolicy {
        pub org: String,
        pub classification: crate::catalog::Classification,
        pub steps: Vec<u32>,
    }
}

shutong_codec::codec_struct! {
    /// Arguments of `get_policy`.
    #[derive(Debug, Clone, PartialEq, Eq)]
    pub struct GetPolicy {
        pub org: String,
        pub classification: crate::catalog::Classification,
    }
}

shutong_codec::codec_struct! {
    /// Arguments of `register_by_governance`: the committee adds an organisation with `admin`
    /// as its administering account.
    #[derive(Debug, Clone, PartialEq, Eq)]
    pub struct GovernanceRegister {
        pub id: String,
        pub name: String,
        pub kind: OrgKind,
        pub admin: [u8; 32],
    }
}

/// The registry's own storage key for the registration policy: `open` (enterprises are
/// active at once), `approved` (enterprises too wait for the committee) or `governance`
/// (nobody registers; the committee adds organisations). Departments, auditors and operators
/// wait for the committee under every policy. Absent means `open`.
pub const REGISTRATION_KEY: &[u8] = b"registration";

/// The registry's storage key of pending registration `id`; its value is the time (ms, a
/// `u64`) it expires.
pub fn pending_key(id: &str) -> Vec<u8> {
    let mut key = b"pending/".to_vec();
    key.extend_from_slice(id.as_bytes());
    key
}

/// The registry's storage key of the number of pending registrations (a `u32`).
pub const PENDING_COUNT_KEY: &[u8] = b"pending-count";

/// The registry's storage key that marks organisation `id` as suspended by the committee:
/// its own admin cannot lift that.
pub fn barred_key(id: &str) -> Vec<u8> {
    let mut key = b"barred/".to_vec();
    key.extend_from_slice(id.as_bytes());
    key
}

shutong_codec::codec_struct! {
    /// Arguments of `set_registration_by_governance`.
    #[derive(Debug, Clone, PartialEq, Eq)]
    pub struct GovernanceRegistration {
        /// `open`, `approved` or `governance` (see [`REGISTRATION_KEY`]).
        pub policy: String,
    }
}
