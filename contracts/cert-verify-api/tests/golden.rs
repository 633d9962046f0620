//! The contract's side of its API's golden vectors: they must equal the node's committed
//! vectors in `types/tests/golden/`, so the client SDK and the contract agree on the bytes.

use shutong_cert_verify_api::{Answer, Issue, Verify};
use shutong_codec::Encode;

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
fn the_api_encodings_match_the_node_side() {
    let issue = Issue {
        id: "lic-1".into(),
        kind: "business-licence".into(),
        holder_hash: [10; 32],
        digest: [11; 32],
        valid_until_ms: 12,
    };
    assert_eq!(hex(&issue.encode()), committed("cert.issue"));
    let verify = Verify { id: "lic-1".into(), holder_hash: [10; 32], digest: [11; 32] };
    assert_eq!(hex(&verify.encode()), committed("cert.verify"));
    let answer = Answer { valid: false, reason: "revoked".into(), audit_index: 13 };
    assert_eq!(hex(&answer.encode()), committed("cert.answer"));
}
