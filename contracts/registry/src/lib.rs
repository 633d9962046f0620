//! Shutong's organisation registry system contract: register, update and look up organisations.
//!
//! Rules: an id is 1 to 64 characters of `a-z`, `0-9`, `-`, `_` and `.`; ids are unique; a
//! name is 1 to 256 bytes; only the account that registered an organisation may update it.
//! Events: `org.registered` and `org.updated`, each with the organisation's id as data.

#![forbid(unsafe_code)]

use shutong_codec::{Decode, Encode};
use shutong_contract::{self as contract, Error, MethodResult};
use shutong_system_api::registry::{GetOrg, Org, OrgStatus, RegisterOrg, UpdateOrg};

contract::entrypoints!(register, update, get);

fn org_key(id: &str) -> Vec<u8> {
    let mut key = b"org/".to_vec();
    key.extend_from_slice(id.as_bytes());
    key
}

fn check_id(id: &str) -> Result<(), Error> {
    let valid_char = |c: char| c.is_ascii_lowercase() || c.is_ascii_digit() || "-_.".contains(c);
    if id.is_empty() || !id.chars().all(valid_char) {
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

pub fn register(args: &[u8]) -> MethodResult {
    let req = RegisterOrg::decode(args)?;
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
        status: OrgStatus::Active,
        admin: contract::caller(),
        registered_height: height,
        updated_height: height,
    };
    contract::storage_set(&org_key(&org.id), &org.encode());
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

#[cfg(test)]
mod tests {
    use super::*;
    use shutong_contract::testing;
    use shutong_system_api::registry::OrgKind;

    fn register_args(id: &str) -> Vec<u8> {
        RegisterOrg { id: id.to_string(), name: "Data Bureau".to_string(), kind: OrgKind::Department }.encode()
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

    #[test]
    fn invalid_ids_are_refused() {
        testing::set_context([1; 32], 1);
        assert!(register(&register_args("Bad Id")).is_err());
        assert!(register(&register_args("")).is_err());
    }
}
