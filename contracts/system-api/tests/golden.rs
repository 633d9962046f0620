//! The contracts' side of the golden vectors: the registry's encodings, built here with the
//! contracts' toolchain, must equal the node's committed vectors in `types/tests/golden/`.

use shutong_codec::Encode;
use shutong_system_api::registry::{Org, OrgKind, OrgStatus, RegisterOrg, UpdateOrg};

const VECTORS: &str = include_str!("../../../types/tests/golden/vectors.txt");

fn committed(name: &str) -> String {
    let prefix = format!("{} ", name);
    let line = VECTORS.lines().find(|l| l.starts_with(&prefix)).expect("vector is committed");
    line[prefix.len()..].to_string()
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{:02x}", b)).collect()
}

#[test]
fn registry_encodings_match_the_node_side() {
    let register =
        RegisterOrg { id: "jingan-data".into(), name: "静安区数据局".into(), kind: OrgKind::Department };
    assert_eq!(hex(&register.encode()), committed("registry.register_org"));
    let update = UpdateOrg { id: "x".into(), name: None, status: Some(OrgStatus::Suspended) };
    assert_eq!(hex(&update.encode()), committed("registry.update_org"));
    let account = committed("account_id");
    let mut admin = [0u8; 32];
    for (i, byte) in admin.iter_mut().enumerate() {
        *byte = u8::from_str_radix(&account[2 * i..2 * i + 2], 16).unwrap();
    }
    let org = Org {
        id: "jingan-data".into(),
        name: "静安区数据局".into(),
        kind: OrgKind::Department,
        status: OrgStatus::Active,
        admin,
        registered_height: 5,
        updated_height: 6,
    };
    assert_eq!(hex(&org.encode()), committed("registry.org"));
}
