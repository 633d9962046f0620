//! The contracts' side of the lifecycle's and governance's golden vectors: built here with the
//! contracts' toolchain, they must equal the node's committed vectors in `types/tests/golden/`.

use shutong_codec::Encode;
use shutong_system_api::governance::ApproveCode;
use shutong_system_api::lifecycle::{CodeInfo, ContractInfo, ContractRef, Instantiate, Migrate, UploadCode};

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
fn lifecycle_and_governance_encodings_match_the_node_side() {
    let cases: Vec<(&str, Vec<u8>)> = vec![
        ("lifecycle.upload", UploadCode { code: b"\0asm\x01\0\0\0".to_vec() }.encode()),
        (
            "lifecycle.instantiate",
            Instantiate { code_hash: [1; 32], label: "certs".into(), admin: [2; 32], args: vec![7] }.encode(),
        ),
        ("lifecycle.migrate", Migrate { contract: [3; 32], code_hash: [4; 32], args: vec![] }.encode()),
        ("lifecycle.contract_ref", ContractRef { contract: [5; 32] }.encode()),
        (
            "lifecycle.code_info",
            CodeInfo { code_hash: [6; 32], uploader: [7; 32], height: 8, size: 9, methods: vec!["get".into()] }
                .encode(),
        ),
        (
            "lifecycle.contract_info",
            ContractInfo { creator: [8; 32], label: "certs".into(), created_height: 10, code_height: 11 }.encode(),
        ),
        ("governance.approve_code", ApproveCode { code_hash: [9; 32] }.encode()),
    ];
    for (name, bytes) in cases {
        assert_eq!(hex(&bytes), committed(name), "{}", name);
    }
}
