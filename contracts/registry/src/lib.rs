//! Shutong's organisation registry system contract: register, update and look up organisations.
//!
//! Rules: an id is 1 to 64 characters of `a-z`, `0-9`, `-`, `_` and `.`; ids are unique; a
//! name is 1 to 256 bytes; only the account that registered an organisation may update it.
//! Events: `org.registered` and `org.updated`, each with the organisation's id as data.
//!
//! Registration is governed: a department, auditor or operator registers as `pending` and
//! acts only once the governance committee approves it (`approve_by_governance`);
//! an enterprise is active at once under the `open` policy and pending under `approved`;
//! under `governance` nobody registers and the committee adds organisations itself. At most
//! `PENDING_MAX` registrations are pending at once; one not approved within `PENDING_MS`
//! expires, after which anyone may remove it (`expire`) and its id is free again. An
//! organisation the committee suspended cannot reinstate itself. Events: `org.pending`,
//! `org.approved`, `org.expired`.
//!
//! Principals: keys acting for an organisation with roles (`role` bits). The organisation's
//! admin (its registering account, or an active principal of it with the `admin` role) adds
//! principals and changes their kind, roles and status (`set_principal`); an account belongs
//! to at most one organisation; a principal replaces its own key with `rotate_key`, after
//! which the old key acts for nobody. `member` answers, for other contracts, what an account
//! is: its principal record and whether it may act (principal and organisation both active).
//! Events: `principal.set` and `principal.rotated` with the account (hex).

#![forbid(unsafe_code)]

use shutong_codec::{Decode, Encode};
use shutong_contract::Item;
use shutong_contract::Map;
use shutong_contract::{self as contract, Error, MethodResult};
use shutong_system_api::catalog::Classification;
use shutong_system_api::names::GOVERNANCE_ADDRESS;
use shutong_system_api::registry::{
    admin_key, barred_key, needs_approval, pending_key, role, valid_org_id, ApprovalPolicy, GetMember, GetOrg,
    GetPolicy, GovernanceOrgStatus, GovernanceRegister, GovernanceRegistration, Member, Org, OrgStatus, Principal,
    PrincipalStatus, RegisterOrg, RotateKey, SetPrincipal, UpdateOrg, PENDING_COUNT_KEY, PENDING_MAX, PENDING_MS,
    POLICY_STEPS_MAX, REGISTRATION_KEY,
};

contract::entrypoints!(
    register,
    update,
    get,
    set_principal,
    rotate_key,
    member,
    set_status_by_governance,
    register_by_governance,
    set_registration_by_governance,
    set_policy,
    get_policy,
    approve_by_governance,
    expire
);

const PENDING_COUNT: Item<u32> = Item::new(PENDING_COUNT_KEY);

const PRINCIPALS: Map<[u8; 32], Principal> = Map::new(b"principal/");
const POLICIES: Map<Vec<u8>, ApprovalPolicy> = Map::new(b"policy/");

fn policy_key(org: &str, classification: Classification) -> Vec<u8> {
    let mut key = org.as_bytes().to_vec();
    key.push(0);
    key.push(classification as u8);
    key
}

/// Sets an organisation's approval policy for one classification (its admins only).
pub fn set_policy(args: &[u8]) -> MethodResult {
    let req = ApprovalPolicy::decode(args)?;
    let org = load(&req.org)?;
    if !is_admin_of(&contract::caller(), &org)? {
        return Err(Error(format!("only an admin of organisation {} may set its policies", org.id)));
    }
    if req.classification == Classification::Core {
        return Err(Error::new("core data is never shared: it has no approval policy"));
    }
    if req.steps.is_empty() || req.steps.len() > POLICY_STEPS_MAX {
        return Err(Error(format!("a policy has 1 to {} steps", POLICY_STEPS_MAX)));
    }
    if req.steps.iter().any(|s| *s == 0 || s & !role::ALL != 0) {
        return Err(Error::new("each step names one or more known roles"));
    }
    POLICIES.save(&policy_key(&req.org, req.classification), &req);
    contract::emit_event("policy.set", req.org.as_bytes());
    Ok(Vec::new())
}

pub fn get_policy(args: &[u8]) -> MethodResult {
    let req = GetPolicy::decode(args)?;
    let policy = POLICIES
        .load(&policy_key(&req.org, req.classification))?
        .ok_or_else(|| Error(format!("organisation {} has no {} policy", req.org, req.classification.name())))?;
    Ok(policy.encode())
}

fn org_key(id: &str) -> Vec<u8> {
    let mut key = b"org/".to_vec();
    key.extend_from_slice(id.as_bytes());
    key
}

fn check_id(id: &str) -> Result<(), Error> {
    if !valid_org_id(id) {
        return Err(Error(format!("invalid organisation id {:?}: use 1 to 64 of a-z 0-9 - _ .", id)));
    }
    Ok(())
}

fn check_name(name: &str) -> Result<(), Error> {
    if name.trim().is_empty() {
        return Err(Error::new("organisation name is empty"));
    }
    Ok(())
}

fn load(id: &str) -> Result<Org, Error> {
    match contract::storage_get(&org_key(id)) {
        Some(bytes) => {
            Ok(Org::decode(&bytes).map_err(|e| Error(format!("stored organisation {} is corrupt: {}", id, e)))?)
        }
        None => Err(Error(format!("organisation {} not found", id))),
    }
}

/// The registration policy in force: `open`, `approved` or `governance`.
fn registration_policy() -> String {
    contract::storage_get(REGISTRATION_KEY)
        .and_then(|bytes| String::from_utf8(bytes).ok())
        .unwrap_or_else(|| "open".to_string())
}

/// When pending registration `id` expires, if it is pending.
fn pending_until(id: &str) -> Result<Option<u64>, Error> {
    match contract::storage_get(&pending_key(id)) {
        Some(bytes) => {
            Ok(Some(u64::decode(&bytes).map_err(|e| Error(format!("pending record of {} is corrupt: {}", id, e)))?))
        }
        None => Ok(None),
    }
}

pub fn register(args: &[u8]) -> MethodResult {
    let req = RegisterOrg::decode(args)?;
    let policy = registration_policy();
    if policy == "governance" {
        return Err(Error::new("organisations are added by the governance committee on this chain"));
    }
    if !needs_approval(req.kind, &policy) {
        return add_org(req, contract::caller(), OrgStatus::Active);
    }
    check_id(&req.id)?;
    let now = contract::block_time_ms();
    // An expired registration of the same id gives way to the new one.
    let replacing = match pending_until(&req.id)? {
        Some(until) if until <= now => {
            remove_pending_org(&req.id)?;
            true
        }
        _ => false,
    };
    let count = PENDING_COUNT.load()?.unwrap_or(0);
    if !replacing && count >= PENDING_MAX {
        return Err(Error(format!(
            "{} registrations already wait for the committee: retry once it decides or they expire",
            PENDING_MAX
        )));
    }
    add_org(req.clone(), contract::caller(), OrgStatus::Pending)?;
    PENDING_COUNT.save(&(if replacing { count } else { count + 1 }));
    contract::storage_set(&pending_key(&req.id), &now.saturating_add(PENDING_MS).encode());
    contract::emit_event("org.pending", req.id.as_bytes());
    Ok(Vec::new())
}

/// Removes pending organisation `id`'s record and index entries (the count is the caller's).
fn remove_pending_org(id: &str) -> Result<(), Error> {
    let org = load(id)?;
    contract::storage_remove(&org_key(id));
    contract::storage_remove(&pending_key(id));
    if contract::storage_get(&admin_key(&org.admin)).as_deref() == Some(id.as_bytes()) {
        contract::storage_remove(&admin_key(&org.admin));
    }
    contract::emit_event("org.expired", id.as_bytes());
    Ok(())
}

/// Approves a pending registration (the committee's `ApproveOrg` decision).
pub fn approve_by_governance(args: &[u8]) -> MethodResult {
    governance_only()?;
    let req = GetOrg::decode(args)?;
    let mut org = load(&req.id)?;
    let until = pending_until(&req.id)?;
    let until = match (org.status, until) {
        (OrgStatus::Pending, Some(until)) => until,
        _ => return Err(Error(format!("organisation {} is not pending approval", org.id))),
    };
    if until <= contract::block_time_ms() {
        return Err(Error(format!("the registration of {} expired: it must register again", org.id)));
    }
    org.status = OrgStatus::Active;
    org.updated_height = contract::block_height();
    contract::storage_set(&org_key(&org.id), &org.encode());
    contract::storage_remove(&pending_key(&org.id));
    PENDING_COUNT.save(&PENDING_COUNT.load()?.unwrap_or(1).saturating_sub(1));
    contract::emit_event("org.approved", org.id.as_bytes());
    Ok(Vec::new())
}

/// Removes a pending registration that expired (anyone may; it frees its id and its place).
pub fn expire(args: &[u8]) -> MethodResult {
    let req = GetOrg::decode(args)?;
    match pending_until(&req.id)? {
        Some(until) if until <= contract::block_time_ms() => {}
        Some(_) => return Err(Error(format!("the registration of {} has not expired", req.id))),
        None => return Err(Error(format!("organisation {} is not pending approval", req.id))),
    }
    remove_pending_org(&req.id)?;
    PENDING_COUNT.save(&PENDING_COUNT.load()?.unwrap_or(1).saturating_sub(1));
    Ok(Vec::new())
}

fn governance_only() -> Result<(), Error> {
    if contract::caller() != GOVERNANCE_ADDRESS {
        return Err(Error::new("only the governance contract may do this"));
    }
    Ok(())
}

/// Adds an organisation by a decision of the governance committee.
pub fn register_by_governance(args: &[u8]) -> MethodResult {
    governance_only()?;
    let req = GovernanceRegister::decode(args)?;
    add_org(RegisterOrg { id: req.id, name: req.name, kind: req.kind }, req.admin, OrgStatus::Active)
}

/// Sets who may register organisations (the committee's `registration` parameter).
pub fn set_registration_by_governance(args: &[u8]) -> MethodResult {
    governance_only()?;
    let req = GovernanceRegistration::decode(args)?;
    if !["open", "approved", "governance"].contains(&req.policy.as_str()) {
        return Err(Error(format!("{:?} is not open, approved or governance", req.policy)));
    }
    contract::storage_set(REGISTRATION_KEY, req.policy.as_bytes());
    Ok(Vec::new())
}

fn add_org(req: RegisterOrg, admin: [u8; 32], status: OrgStatus) -> MethodResult {
    check_id(&req.id)?;
    check_name(&req.name)?;
    if contract::storage_get(&org_key(&req.id)).is_some() {
        return Err(Error(format!("organisation {} already exists", req.id)));
    }
    let height = contract::block_height();
    let org = Org {
        id: req.id,
        name: req.name,
        kind: req.kind,
        status,
        admin,
        registered_height: height,
        updated_height: height,
    };
    contract::storage_set(&org_key(&org.id), &org.encode());
    if contract::storage_get(&admin_key(&admin)).is_none() {
        contract::storage_set(&admin_key(&admin), org.id.as_bytes());
    }
    contract::emit_event("org.registered", org.id.as_bytes());
    Ok(Vec::new())
}

pub fn update(args: &[u8]) -> MethodResult {
    let req = UpdateOrg::decode(args)?;
    let mut org = load(&req.id)?;
    if org.admin != contract::caller() {
        return Err(Error(format!("only the admin of organisation {} may update it", org.id)));
    }
    if req.name.is_none() && req.status.is_none() {
        return Err(Error::new("update changes nothing"));
    }
    if org.status == OrgStatus::Pending {
        return Err(Error(format!("organisation {} is pending the committee's approval", org.id)));
    }
    match req.status {
        Some(OrgStatus::Pending) => return Err(Error::new("only a registration is pending")),
        Some(OrgStatus::Active) if contract::storage_get(&barred_key(&org.id)).is_some() => {
            return Err(Error(format!(
                "organisation {} was suspended by the committee: only it may reinstate it",
                org.id
            )))
        }
        _ => {}
    }
    if let Some(name) = req.name {
        check_name(&name)?;
        org.name = name;
    }
    if let Some(status) = req.status {
        org.status = status;
    }
    org.updated_height = contract::block_height();
    contract::storage_set(&org_key(&org.id), &org.encode());
    contract::emit_event("org.updated", org.id.as_bytes());
    Ok(Vec::new())
}

pub fn get(args: &[u8]) -> MethodResult {
    let req = GetOrg::decode(args)?;
    Ok(load(&req.id)?.encode())
}

/// Whether `account` administers `org`.
fn is_admin_of(account: &[u8; 32], org: &Org) -> Result<bool, Error> {
    if org.admin == *account {
        return Ok(true);
    }
    Ok(match PRINCIPALS.load(account)? {
        Some(p) => p.org == org.id && p.status == PrincipalStatus::Active && p.roles & role::ADMIN != 0,
        None => false,
    })
}

pub fn set_principal(args: &[u8]) -> MethodResult {
    let req = SetPrincipal::decode(args)?;
    let org = load(&req.org)?;
    if !is_admin_of(&contract::caller(), &org)? {
        return Err(Error(format!("only an admin of organisation {} may set its principals", org.id)));
    }
    if req.roles & !role::ALL != 0 {
        return Err(Error(format!("unknown role bits {:#x}", req.roles & !role::ALL)));
    }
    if req.status == PrincipalStatus::Rotated {
        return Err(Error::new("a principal is marked rotated only by rotating its key"));
    }
    if req.status == PrincipalStatus::Active && req.roles == 0 {
        return Err(Error::new("an active principal needs at least one role"));
    }
    if let Some(existing) = PRINCIPALS.load(&req.account)? {
        if existing.org != req.org {
            return Err(Error(format!(
                "account {} is a principal of organisation {}",
                contract::hex(&req.account),
                existing.org
            )));
        }
        if existing.status == PrincipalStatus::Rotated {
            return Err(Error(format!("account {} was rotated out and cannot act again", contract::hex(&req.account))));
        }
    }
    let principal = Principal {
        account: req.account,
        org: req.org,
        kind: req.kind,
        roles: req.roles,
        status: req.status,
        rotated_to: None,
        updated_height: contract::block_height(),
    };
    PRINCIPALS.save(&req.account, &principal);
    contract::emit_event("principal.set", contract::hex(&req.account).as_bytes());
    Ok(Vec::new())
}

pub fn rotate_key(args: &[u8]) -> MethodResult {
    let req = RotateKey::decode(args)?;
    let caller = contract::caller();
    let mut old = PRINCIPALS.load(&caller)?.ok_or_else(|| Error::new("the caller is not a principal"))?;
    if old.status != PrincipalStatus::Active {
        return Err(Error(format!("principal {} is {}, not active", contract::hex(&caller), old.status.name())));
    }
    if req.new_account == caller {
        return Err(Error::new("the new key is the current one"));
    }
    if PRINCIPALS.has(&req.new_account) {
        return Err(Error(format!("account {} is already a principal", contract::hex(&req.new_account))));
    }
    let height = contract::block_height();
    let new = Principal { account: req.new_account, rotated_to: None, updated_height: height, ..old.clone() };
    old.status = PrincipalStatus::Rotated;
    old.rotated_to = Some(req.new_account);
    old.updated_height = height;
    PRINCIPALS.save(&caller, &old);
    PRINCIPALS.save(&req.new_account, &new);
    contract::emit_event("principal.rotated", contract::hex(&req.new_account).as_bytes());
    Ok(Vec::new())
}

/// Suspends or reinstates an organisation by a decision of the governance committee.
pub fn set_status_by_governance(args: &[u8]) -> MethodResult {
    governance_only()?;
    let req = GovernanceOrgStatus::decode(args)?;
    let mut org = load(&req.id)?;
    if org.status == OrgStatus::Pending || req.status == OrgStatus::Pending {
        return Err(Error(format!("organisation {} is pending: the committee approves it instead", org.id)));
    }
    if org.status == req.status {
        return Err(Error(format!("organisation {} is already {}", org.id, req.status.name())));
    }
    if req.status == OrgStatus::Suspended {
        contract::storage_set(&barred_key(&org.id), &[1]);
    } else {
        contract::storage_remove(&barred_key(&org.id));
    }
    org.status = req.status;
    org.updated_height = contract::block_height();
    contract::storage_set(&org_key(&org.id), &org.encode());
    contract::emit_event("org.updated", org.id.as_bytes());
    Ok(Vec::new())
}

pub fn member(args: &[u8]) -> MethodResult {
    let req = GetMember::decode(args)?;
    let principal = PRINCIPALS.load(&req.account)?.ok_or_else(|| {
        Error(format!("account {} is not a principal of any organisation", contract::hex(&req.account)))
    })?;
    let org = load(&principal.org)?;
    Ok(Member::of(principal, &org).encode())
}

#[cfg(test)]
mod tests {
    use super::*;
    use shutong_contract::testing;
    use shutong_system_api::registry::OrgKind;

    fn register_args(id: &str) -> Vec<u8> {
        RegisterOrg { id: id.to_string(), name: "Data Co".to_string(), kind: OrgKind::Enterprise }.encode()
    }

    fn department(id: &str) -> Vec<u8> {
        RegisterOrg { id: id.to_string(), name: "Data Bureau".to_string(), kind: OrgKind::Department }.encode()
    }

    fn status(id: &str) -> OrgStatus {
        Org::decode(&get(&GetOrg { id: id.to_string() }.encode()).unwrap()).unwrap().status
    }

    fn as_governance<T>(f: impl FnOnce() -> T) -> T {
        let caller = testing::with_host(|h| std::mem::replace(&mut h.caller, GOVERNANCE_ADDRESS));
        let result = f();
        testing::with_host(|h| h.caller = caller);
        result
    }

    #[test]
    fn a_department_waits_for_the_committee_and_an_enterprise_follows_the_policy() {
        testing::reset();
        testing::set_context([7; 32], 5);
        testing::set_time_ms(1_000);
        register(&department("jingan-data")).unwrap();
        assert_eq!(status("jingan-data"), OrgStatus::Pending);
        // Its admin cannot make it active, nor can anyone but the committee approve it.
        let activate = UpdateOrg { id: "jingan-data".into(), name: None, status: Some(OrgStatus::Active) }.encode();
        assert_eq!(update(&activate), Err(Error::new("organisation jingan-data is pending the committee's approval")));
        let approve = GetOrg { id: "jingan-data".into() }.encode();
        assert_eq!(approve_by_governance(&approve), Err(Error::new("only the governance contract may do this")));
        as_governance(|| approve_by_governance(&approve)).unwrap();
        assert_eq!(status("jingan-data"), OrgStatus::Active);
        assert_eq!(
            as_governance(|| approve_by_governance(&approve)),
            Err(Error::new("organisation jingan-data is not pending approval"))
        );
        // Enterprises: active at once under `open`, pending under `approved`.
        register(&register_args("acme")).unwrap();
        assert_eq!(status("acme"), OrgStatus::Active);
        let approved = GovernanceRegistration { policy: "approved".into() }.encode();
        as_governance(|| set_registration_by_governance(&approved)).unwrap();
        register(&register_args("beta")).unwrap();
        assert_eq!(status("beta"), OrgStatus::Pending);
        assert_eq!(PENDING_COUNT.load(), Ok(Some(1)));
        // A registration not approved in time expires: it cannot be approved, anyone may
        // remove it, and its id is free again.
        testing::set_context([8; 32], 6);
        assert_eq!(
            expire(&GetOrg { id: "beta".into() }.encode()),
            Err(Error::new("the registration of beta has not expired"))
        );
        testing::set_time_ms(1_000 + PENDING_MS);
        assert_eq!(
            as_governance(|| approve_by_governance(&GetOrg { id: "beta".into() }.encode())),
            Err(Error::new("the registration of beta expired: it must register again"))
        );
        expire(&GetOrg { id: "beta".into() }.encode()).unwrap();
        assert_eq!(PENDING_COUNT.load(), Ok(Some(0)));
        assert!(get(&GetOrg { id: "beta".into() }.encode()).is_err());
        register(&register_args("beta")).unwrap();
        assert_eq!(Org::decode(&get(&GetOrg { id: "beta".into() }.encode()).unwrap()).unwrap().admin, [8; 32]);
    }

    #[test]
    fn pending_registrations_are_bounded() {
        testing::reset();
        testing::set_context([7; 32], 5);
        testing::set_time_ms(1_000);
        for i in 0..PENDING_MAX {
            register(&department(&format!("d{}", i))).unwrap();
        }
        assert_eq!(
            register(&department("one-more")),
            Err(Error::new("256 registrations already wait for the committee: retry once it decides or they expire"))
        );
        // An expired one gives way to a new registration of its id.
        testing::set_time_ms(1_000 + PENDING_MS);
        testing::set_context([9; 32], 6);
        register(&department("d0")).unwrap();
        assert_eq!(PENDING_COUNT.load(), Ok(Some(PENDING_MAX)));
    }

    #[test]
    fn an_organisation_the_committee_suspended_cannot_reinstate_itself() {
        testing::reset();
        testing::set_context([7; 32], 5);
        register(&register_args("rogue")).unwrap();
        let suspend = GovernanceOrgStatus { id: "rogue".into(), status: OrgStatus::Suspended }.encode();
        as_governance(|| set_status_by_governance(&suspend)).unwrap();
        let reinstate = UpdateOrg { id: "rogue".into(), name: None, status: Some(OrgStatus::Active) }.encode();
        assert_eq!(
            update(&reinstate),
            Err(Error::new("organisation rogue was suspended by the committee: only it may reinstate it"))
        );
        let lift = GovernanceOrgStatus { id: "rogue".into(), status: OrgStatus::Active }.encode();
        as_governance(|| set_status_by_governance(&lift)).unwrap();
        assert_eq!(status("rogue"), OrgStatus::Active);
        // Its own suspension it may lift itself.
        let own = UpdateOrg { id: "rogue".into(), name: None, status: Some(OrgStatus::Suspended) }.encode();
        update(&own).unwrap();
        update(&reinstate).unwrap();
    }

    #[test]
    fn register_then_get_returns_the_organisation() {
        testing::set_context([7; 32], 5);
        register(&register_args("jingan-data")).unwrap();
        let org = Org::decode(&get(&GetOrg { id: "jingan-data".to_string() }.encode()).unwrap()).unwrap();
        assert_eq!(org.admin, [7; 32]);
        assert_eq!(org.registered_height, 5);
        assert_eq!(testing::take_events(), vec![("org.registered".to_string(), b"jingan-data".to_vec())]);
    }

    #[test]
    fn duplicate_ids_are_refused() {
        testing::set_context([1; 32], 1);
        register(&register_args("dup")).unwrap();
        assert_eq!(register(&register_args("dup")), Err(Error::new("organisation dup already exists")));
    }

    #[test]
    fn only_the_admin_may_update() {
        testing::set_context([1; 32], 1);
        register(&register_args("owned")).unwrap();
        testing::set_context([2; 32], 2);
        let args = UpdateOrg { id: "owned".to_string(), name: Some("x".to_string()), status: None }.encode();
        assert_eq!(update(&args), Err(Error::new("only the admin of organisation owned may update it")));
    }

    fn set(org: &str, account: [u8; 32], roles: u32, status: PrincipalStatus) -> MethodResult {
        let kind = shutong_system_api::registry::PrincipalKind::Person;
        set_principal(&SetPrincipal { org: org.into(), account, kind, roles, status }.encode())
    }

    fn member_of(account: [u8; 32]) -> Member {
        Member::decode(&member(&GetMember { account }.encode()).unwrap()).unwrap()
    }

    #[test]
    fn admins_set_principals_and_principals_rotate_their_keys() {
        testing::reset();
        testing::set_context([1; 32], 1);
        register(&register_args("bureau")).unwrap();
        set("bureau", [2; 32], role::ADMIN, PrincipalStatus::Active).unwrap();
        // A principal with the admin role administers too.
        testing::set_context([2; 32], 2);
        set("bureau", [3; 32], role::CDO | role::DATA_PROVIDER, PrincipalStatus::Active).unwrap();
        let m = member_of([3; 32]);
        assert!(m.acting && m.principal.roles == role::CDO | role::DATA_PROVIDER);
        // Rotation: the new key takes over, the old one acts for nobody.
        testing::set_context([3; 32], 3);
        rotate_key(&RotateKey { new_account: [4; 32] }.encode()).unwrap();
        assert_eq!(member_of([3; 32]).principal.status, PrincipalStatus::Rotated);
        assert!(!member_of([3; 32]).acting);
        assert_eq!(member_of([3; 32]).principal.rotated_to, Some([4; 32]));
        assert!(member_of([4; 32]).acting);
        assert_eq!(member_of([4; 32]).principal.roles, role::CDO | role::DATA_PROVIDER);
        // Suspending the organisation stops all its principals from acting.
        testing::set_context([1; 32], 4);
        update(&UpdateOrg { id: "bureau".into(), name: None, status: Some(OrgStatus::Suspended) }.encode()).unwrap();
        assert!(!member_of([4; 32]).acting);
    }

    #[test]
    fn each_principal_refusal_has_its_own_error() {
        testing::reset();
        testing::set_context([1; 32], 1);
        register(&register_args("a")).unwrap();
        register(&RegisterOrg { id: "b".into(), name: "B".into(), kind: OrgKind::Enterprise }.encode()).unwrap();
        set("a", [5; 32], role::DATA_CONSUMER, PrincipalStatus::Active).unwrap();
        testing::set_context([9; 32], 2);
        assert_eq!(
            set("a", [6; 32], role::ADMIN, PrincipalStatus::Active),
            Err(Error::new("only an admin of organisation a may set its principals"))
        );
        testing::set_context([1; 32], 2);
        assert_eq!(set("a", [6; 32], 1 << 20, PrincipalStatus::Active), Err(Error::new("unknown role bits 0x100000")));
        assert_eq!(
            set("a", [6; 32], 0, PrincipalStatus::Active),
            Err(Error::new("an active principal needs at least one role"))
        );
        assert_eq!(
            set("a", [6; 32], role::ADMIN, PrincipalStatus::Rotated),
            Err(Error::new("a principal is marked rotated only by rotating its key"))
        );
        let in_a = format!("account {} is a principal of organisation a", contract::hex(&[5; 32]));
        assert_eq!(set("b", [5; 32], role::ADMIN, PrincipalStatus::Active), Err(Error(in_a)));
        testing::set_context([5; 32], 3);
        assert_eq!(
            rotate_key(&RotateKey { new_account: [5; 32] }.encode()),
            Err(Error::new("the new key is the current one"))
        );
        rotate_key(&RotateKey { new_account: [7; 32] }.encode()).unwrap();
        testing::set_context([1; 32], 4);
        let rotated = format!("account {} was rotated out and cannot act again", contract::hex(&[5; 32]));
        assert_eq!(set("a", [5; 32], role::ADMIN, PrincipalStatus::Active), Err(Error(rotated)));
        testing::set_context([8; 32], 4);
        assert_eq!(
            rotate_key(&RotateKey { new_account: [9; 32] }.encode()),
            Err(Error::new("the caller is not a principal"))
        );
    }

    #[test]
    fn admins_set_approval_policies_within_bounds() {
        use shutong_system_api::catalog::Classification;
        testing::reset();
        testing::set_context([1; 32], 1);
        register(&register_args("bureau")).unwrap();
        let policy =
            |steps: Vec<u32>, classification| ApprovalPolicy { org: "bureau".into(), classification, steps }.encode();
        set_policy(&policy(vec![role::CDO, role::CDO], Classification::Important)).unwrap();
        let got = get_policy(&GetPolicy { org: "bureau".into(), classification: Classification::Important }.encode())
            .unwrap();
        assert_eq!(ApprovalPolicy::decode(&got).unwrap().steps, vec![role::CDO, role::CDO]);
        assert!(
            get_policy(&GetPolicy { org: "bureau".into(), classification: Classification::General }.encode()).is_err()
        );
        assert_eq!(set_policy(&policy(vec![], Classification::General)), Err(Error::new("a policy has 1 to 8 steps")));
        assert_eq!(
            set_policy(&policy(vec![0], Classification::General)),
            Err(Error::new("each step names one or more known roles"))
        );
        assert_eq!(
            set_policy(&policy(vec![role::CDO], Classification::Core)),
            Err(Error::new("core data is never shared: it has no approval policy"))
        );
        testing::set_context([2; 32], 2);
        assert_eq!(
            set_policy(&policy(vec![role::CDO], Classification::General)),
            Err(Error::new("only an admin of organisation bureau may set its policies"))
        );
    }

    #[test]
    fn invalid_ids_are_refused() {
        testing::set_context([1; 32], 1);
        assert!(register(&register_args("Bad Id")).is_err());
        assert!(register(&register_args("")).is_err());
    }
}
