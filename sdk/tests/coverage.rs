//! Every method a system contract exports has a typed builder in the SDK (a transaction
//! builder in `builder`, or a typed read in `reads`), or is on the short list of methods only
//! another contract may call. Adding an entrypoint without either fails here.

#![allow(clippy::unwrap_used)]

use shutong_sdk::builder::{self, access, audit_trail, cert};
use shutong_sdk::reads;
use shutong_sdk::rpc::{RpcCode, code};
use shutong_sdk::system_api::audit::{AccessEvent, AnchorBatch, Attest, BatchGroup, LogQuery};
use shutong_sdk::system_api::authz::{LegalBasis, RecordConsent, RequestAccess, Terms, Use};
use shutong_sdk::system_api::catalog::{Classification, Publish, ShareType};
use shutong_sdk::system_api::governance::{Action, Equivocation, SignedVote};
use shutong_sdk::system_api::registry::{OrgKind, PrincipalKind, PrincipalStatus};
use shutong_types::{AccountId, Address, Call, Hash, Keypair};
use std::collections::BTreeSet;

/// Methods that refuse every caller but another contract, and why.
const INTERNAL: &[(&str, &str, &str)] = &[
    ("authz", "append_grant_entry", "the audit contract appends its entries to a grant's log"),
    ("authz", "consume", "the audit contract counts an attested use"),
    ("authz", "record_use", "the audit contract counts an access and numbers its entries"),
    ("authz", "record_batch", "the audit contract counts an anchored batch's groups"),
    ("registry", "set_status_by_governance", "a carried governance proposal suspends or reinstates"),
    ("registry", "register_by_governance", "a carried governance proposal adds an organisation"),
    ("registry", "set_registration_by_governance", "a carried governance proposal sets the registration rule"),
    ("registry", "approve_by_governance", "a carried governance proposal approves a pending registration"),
    ("catalog", "assign_source_by_governance", "a carried governance proposal assigns a data element's source"),
    ("cert-verify", "init", "the lifecycle runs it at instantiation, with `builder::instantiate`'s args"),
];

/// The methods named in a contract's `entrypoints!(...)`.
fn entrypoints(contract: &str) -> Vec<String> {
    let path = format!("{}/../contracts/{contract}/src/lib.rs", env!("CARGO_MANIFEST_DIR"));
    let source = std::fs::read_to_string(&path).unwrap();
    let start = source.find("entrypoints!(").unwrap_or_else(|| panic!("{path} has no entrypoints!")) + 13;
    let end = start + source[start..].find(')').unwrap();
    source[start..end].split(',').map(|m| m.trim().to_string()).filter(|m| !m.is_empty()).collect()
}

fn terms() -> Terms {
    Terms {
        fields: vec!["uscc".into()],
        methods: 1,
        purposes: vec!["licensing".into()],
        not_before_ms: 0,
        not_after_ms: 1,
        max_uses: 1,
        rate_per_day: 0,
        case_ref: None,
        duties: 0,
        delegable: false,
        policy_hash: [0; 32],
    }
}

fn a_use() -> Use {
    Use { grant: 1, account: [1; 32], fields: vec!["uscc".into()], method: 1, purpose: "p".into(), count: 1 }
}

fn event() -> AccessEvent {
    AccessEvent {
        grant: 1,
        consumer: [1; 32],
        fields: vec!["uscc".into()],
        method: 1,
        purpose: "p".into(),
        business_ref_hash: [0; 32],
        subject_ref_hmac: [0; 32],
        query_hash: [0; 32],
        result_hash: [0; 32],
        record_count: 1,
        consumer_signature: None,
    }
}

/// Every call and read the SDK can build, as (contract, method).
fn built(cert_contract: Address) -> BTreeSet<(Address, String)> {
    let account = AccountId([2; 32]);
    let hash = Hash([3; 32]);
    let calls: Vec<Call> = vec![
        builder::register_org("o", "O", OrgKind::Department),
        builder::update_org("o", Some("P"), None),
        builder::expire_registration("o"),
        builder::set_principal("o", &account, PrincipalKind::Person, 1, PrincipalStatus::Active),
        builder::set_policy("o", Classification::General, &[1]),
        builder::rotate_key(&account),
        builder::publish_resource(&Publish {
            code: "o/r".into(),
            provider_org: "o".into(),
            source_system: String::new(),
            classification: Classification::General,
            personal_data: false,
            share_type: ShareType::Conditional,
            conditions: String::new(),
            methods: 1,
            fields: Vec::new(),
            metadata_hash: [0; 32],
        }),
        builder::withdraw_resource("o/r"),
        access::request(&RequestAccess {
            resource: "o/r".into(),
            fields: vec!["uscc".into()],
            methods: 1,
            purpose: "p".into(),
            legal_basis: LegalBasis::Statute,
            legal_doc_hash: [0; 32],
            matter_code: String::new(),
            valid_until_ms: 1,
            max_uses: 1,
            justification_hash: [0; 32],
            consent: None,
        }),
        access::approve(1, &terms()),
        access::reject(1, "r"),
        access::dispute(1, "r"),
        access::withdraw(1, "r"),
        access::escalate(1),
        access::suspend(1, "r"),
        access::resume(1),
        access::revoke(1, "r"),
        access::delegate(1, "o", &terms()),
        access::record_consent(&RecordConsent {
            id: "c".into(),
            subject_ref_hmac: [0; 32],
            resource: "o/r".into(),
            purpose: "p".into(),
            evidence_hash: [0; 32],
        }),
        access::withdraw_consent("c"),
        access::close_case([0; 32], &[1]),
        access::amend(1, &terms()),
        audit_trail::record(&event()),
        audit_trail::attest(&Attest {
            grant: 1,
            consumer: [1; 32],
            question_hash: [0; 32],
            subject_ref_hmac: [0; 32],
            answer: true,
        }),
        audit_trail::anchor(&AnchorBatch {
            grant: 1,
            seq: 1,
            period_start_ms: 0,
            period_end_ms: 1,
            groups: vec![BatchGroup {
                consumer: [1; 32],
                fields: vec!["uscc".into()],
                method: 1,
                purpose: "p".into(),
                count: 1,
            }],
            merkle_root: [0; 32],
        }),
        audit_trail::log_query(&LogQuery {
            by: "grant".into(),
            value: "1".into(),
            from_ms: 0,
            to_ms: 1,
            reason: "r".into(),
        }),
        builder::approve_code(&hash),
        builder::propose(Action::SuspendOrg { id: "o".into() }),
        builder::vote(1),
        builder::set_validators(&[Keypair::generate(shutong_types::Suite::Ed25519Blake3).public()], &[]),
        builder::report_equivocation(&Equivocation {
            first: SignedVote { kind: 0, epoch: 0, view: 1, digest: [1; 32], signer: 0, signature: [0; 64] },
            second: SignedVote { kind: 0, epoch: 0, view: 1, digest: [2; 32], signer: 0, signature: [0; 64] },
        }),
        cert::add_issuer(&cert_contract, &account),
        cert::issue(&cert_contract, "c", "k", hash, hash, 1),
        cert::revoke(&cert_contract, "c"),
        cert::verify(&cert_contract, "c", hash, hash),
    ];
    let mut all: BTreeSet<(Address, String)> = calls.into_iter().map(|c| (c.contract, c.method)).collect();
    let reads_made: Vec<(Address, &str)> = vec![
        (reads::org("o").contract, reads::org("o").method),
        (builder::governance(), reads::lifecycle_outcome(1).method),
        (builder::governance(), reads::committee().method),
        (reads::member(&account).contract, reads::member(&account).method),
        (builder::registry(), reads::approval_policy("o", Classification::General).method),
        (builder::catalog(), reads::resource("o/r", None).method),
        (builder::catalog(), reads::element_source("e").method),
        (builder::authz(), reads::access_request(1).method),
        (builder::authz(), reads::grant(1).method),
        (builder::authz(), reads::consent("c").method),
        (builder::authz(), reads::check(&a_use()).method),
        (builder::audit(), reads::access_event(1).method),
        (builder::audit(), reads::access_history(1, None, 10).method),
        (builder::audit(), reads::anchor(1, &[0; 32], 1).method),
        (builder::audit(), reads::violation(1).method),
        (builder::audit(), reads::attestation(1).method),
        (builder::governance(), reads::validators().method),
        (builder::governance(), reads::proposal(1).method),
        (builder::governance(), reads::evidence(None, 10).method),
        (builder::governance(), reads::purpose("p").method),
        (cert_contract, reads::certificate(&cert_contract, "c").method),
    ];
    all.extend(reads_made.into_iter().map(|(c, m)| (c, m.to_string())));
    all
}

#[test]
fn every_system_contract_method_has_a_typed_builder_or_is_internal() {
    let cert_contract = builder::instance_address(shutong_types::Suite::Ed25519Blake3, &AccountId([9; 32]), "certs");
    let built = built(cert_contract);
    let contracts = [
        ("registry", builder::registry()),
        ("catalog", builder::catalog()),
        ("authz", builder::authz()),
        ("audit", builder::audit()),
        ("governance", builder::governance()),
        ("cert-verify", cert_contract),
    ];
    let mut missing = Vec::new();
    for (name, address) in contracts {
        let methods = entrypoints(name);
        assert!(methods.len() >= 4, "{name}: found only {methods:?}");
        for method in &methods {
            let internal = INTERNAL.iter().any(|(c, m, _)| *c == name && m == method);
            let covered = built.contains(&(address, method.clone()));
            assert!(!(internal && covered), "{name}.{method} is listed as internal but has a builder");
            if !internal && !covered {
                missing.push(format!("{name}.{method}"));
            }
        }
    }
    assert!(missing.is_empty(), "no typed builder for {missing:?}");
    // The internal list names real methods only.
    for (name, method, _) in INTERNAL {
        assert!(entrypoints(name).contains(&method.to_string()), "{name}.{method} is not an entrypoint");
    }
    // Every builder targets a method some contract exports (no typos in method names).
    for (address, method) in &built {
        let (name, _) = contracts.iter().find(|(_, a)| a == address).unwrap();
        assert!(entrypoints(name).contains(method), "the SDK builds {name}.{method}, which is not exported");
    }
}

/// `docs/rpc.md` lists every method and notification the SDK and the node share, each
/// method with its errors, and every error code of the one table (`shutong_api::rpc`).
#[test]
fn the_rpc_reference_lists_every_method_and_error_code() {
    let root = env!("CARGO_MANIFEST_DIR");
    let source = std::fs::read_to_string(format!("{root}/../api/src/rpc.rs")).unwrap();
    let docs = std::fs::read_to_string(format!("{root}/../docs/rpc.md")).unwrap();
    let mut names = 0;
    for line in source.lines().map(str::trim) {
        if let Some(name) = line.strip_prefix("pub const ").and_then(|l| l.split('"').nth(1)) {
            assert!(docs.contains(&format!("`{name}`")), "docs/rpc.md does not document {name}");
            names += 1;
            if name.starts_with("shutong_")
                && !name.contains("ubscribe")
                && !["shutong_block", "shutong_event"].contains(&name)
            {
                let row = docs.lines().find(|l| l.starts_with(&format!("| `{name}` |"))).unwrap();
                assert_eq!(row.matches(" | ").count(), 3, "{name}'s row lacks its errors column: {row}");
            }
        }
    }
    assert!(names >= 20, "found only {names} method names in api/src/rpc.rs");
    // Every code of the table, by its constant's name and number.
    let codes = [
        (code::TX_TOO_LARGE, "TX_TOO_LARGE"),
        (code::TX_MALFORMED, "TX_MALFORMED"),
        (code::WRONG_CHAIN, "WRONG_CHAIN"),
        (code::TX_EXPIRED, "TX_EXPIRED"),
        (code::EXPIRY_TOO_FAR, "EXPIRY_TOO_FAR"),
        (code::NONCE_TOO_LOW, "NONCE_TOO_LOW"),
        (code::NONCE_TOO_HIGH, "NONCE_TOO_HIGH"),
        (code::TX_DUPLICATE, "TX_DUPLICATE"),
        (code::BAD_SIGNATURE, "BAD_SIGNATURE"),
        (code::MEMPOOL_FULL, "MEMPOOL_FULL"),
        (code::UNKNOWN_CONTRACT, "UNKNOWN_CONTRACT"),
        (code::UNKNOWN_METHOD, "UNKNOWN_METHOD"),
        (code::GAS_LIMIT, "GAS_LIMIT"),
        (code::STORAGE_UNAVAILABLE, "STORAGE_UNAVAILABLE"),
        (code::NOT_FOUND, "NOT_FOUND"),
        (code::QUERY_FAILED, "QUERY_FAILED"),
        (code::HEIGHT_UNAVAILABLE, "HEIGHT_UNAVAILABLE"),
        (code::QUERY_NOT_LOGGED, "QUERY_NOT_LOGGED"),
        (code::PRUNED, "PRUNED"),
        (code::UNAUTHENTICATED, "UNAUTHENTICATED"),
        (code::AUTH_INVALID, "AUTH_INVALID"),
        (code::FORBIDDEN, "FORBIDDEN"),
        (code::RATE_LIMITED, "RATE_LIMITED"),
        (code::TIMEOUT, "TIMEOUT"),
        (code::INVALID_PARAMS, "INVALID_PARAMS"),
        (code::INTERNAL, "INTERNAL"),
        (code::REQUEST_TOO_LARGE, "REQUEST_TOO_LARGE"),
    ];
    let in_table = source.lines().filter(|l| l.contains(" = -") && l.trim_end().ends_with("\";")).count();
    assert_eq!(in_table, codes.len(), "a code of the table is missing from this test");
    for (value, name) in codes {
        assert_eq!(RpcCode::from_code(value).code(), value, "{name} round-trips");
        assert!(docs.contains(&format!("| −{} | {name} |", -value)), "docs/rpc.md lacks error {name} (−{})", -value);
    }
}
