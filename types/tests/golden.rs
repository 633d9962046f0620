//! Golden vectors: the canonical encodings and hashes of fixed values, committed in
//! `tests/golden/vectors.txt`. A change here is a format change. To regenerate after a
//! deliberate one: `SHUTONG_BLESS=1 cargo test -p shutong-types --test golden`.

#![allow(clippy::unwrap_used)]

use shutong_codec::{Decode, DecodeError, Encode};
use shutong_system_api::registry::{Org, OrgKind, OrgStatus, RegisterOrg, UpdateOrg};
use shutong_types::keyspace::Instance;
use shutong_types::*;
use std::fmt::Debug;

fn tx() -> Transaction {
    let key = Keypair::from_seed("golden-sender");
    Transaction {
        chain_id: "shutong-golden".into(),
        sender: key.account(),
        nonce: 7,
        gas_limit: 5_000_000,
        expiry_height: 1_000,
        call: Call { contract: Address::system("system/registry"), method: "register".into(), args: vec![1, 2, 3] },
    }
}

fn header() -> BlockHeader {
    BlockHeader {
        chain_id: "shutong-golden".into(),
        protocol_version: shutong_types::PROTOCOL_VERSION,
        suite: shutong_types::Suite::Ed25519Blake3,
        height: 42,
        view: 43,
        parent: Hash::of(Suite::Ed25519Blake3, "golden", b"parent"),
        proposer: Keypair::from_seed("golden-validator").public(),
        timestamp_ms: 1_795_000_000_000,
        txs_root: merkle_root(Suite::Ed25519Blake3, &[tx().id(Suite::Ed25519Blake3).0]),
        state_root: Hash::of(Suite::Ed25519Blake3, "golden", b"state"),
        receipts_root: Hash::of(Suite::Ed25519Blake3, "golden", b"receipts"),
        audit_root: Hash::ZERO,
        audit_size: 0,
        validator_set: validator_set_hash(Suite::Ed25519Blake3, &[Keypair::from_seed("golden-validator").public()]),
    }
}

fn receipt(status: ExecStatus) -> Receipt {
    Receipt {
        tx_id: tx().id(Suite::Ed25519Blake3),
        height: 42,
        index: 3,
        status,
        gas_used: 24_155,
        events: vec![Event {
            contract: Address::system("system/registry"),
            topic: "org.registered".into(),
            data: b"jingan".to_vec(),
        }],
        output: vec![9, 9],
    }
}

fn certificate() -> Certificate {
    let keys: Vec<Keypair> = (0..4).map(|i| Keypair::from_seed(&format!("golden-validator-{i}"))).collect();
    let subject = VoteSubject { kind: VoteKind::Finalize, epoch: 0, view: 43, digest: header().hash() };
    let votes: Vec<(usize, Signature)> =
        [0, 2, 3].iter().map(|&i| (i, subject.sign("shutong-golden", &keys[i]))).collect();
    Certificate::new(subject, keys.len(), &votes)
}

/// Every vector: a name and the bytes it must be.
fn vectors() -> Vec<(String, Vec<u8>)> {
    let mut out: Vec<(String, Vec<u8>)> = Vec::new();
    let mut add = |name: &str, bytes: Vec<u8>| out.push((name.to_string(), bytes));
    let key = Keypair::from_seed("golden-sender");
    add("public_key", key.public().encode());
    add("account_id", key.account().0.to_vec());
    add("address.system_registry", Address::system("system/registry").0.to_vec());
    add("transaction", tx().encode());
    add("transaction.id", tx().id(Suite::Ed25519Blake3).0.to_vec());
    add("signed_transaction", tx().sign(&key).encode());
    add("block_header", header().encode());
    add("block_header.hash", header().hash().0.to_vec());
    add("block", Block { header: header(), txs: vec![tx().sign(&key)] }.encode());
    for (name, status) in [
        ("success", ExecStatus::Success),
        ("aborted", ExecStatus::Aborted("no".into())),
        ("out_of_gas", ExecStatus::OutOfGas),
        ("unknown_contract", ExecStatus::UnknownContract),
        ("unknown_method", ExecStatus::UnknownMethod("m".into())),
        ("trapped", ExecStatus::Trapped("t".into())),
        ("rejected", ExecStatus::Rejected("r".into())),
        ("frozen", ExecStatus::Frozen),
    ] {
        add(&format!("receipt.{name}"), receipt(status).encode());
    }
    add("certificate", certificate().encode());
    add("vote.signing_bytes", certificate().subject.signing_bytes("shutong-golden"));
    add("merkle_root.empty", merkle_root::<[u8; 0]>(Suite::Ed25519Blake3, &[]).0.to_vec());
    add("merkle_root.three", merkle_root(Suite::Ed25519Blake3, &[b"a", b"b", b"c"]).0.to_vec());
    add(
        "instance",
        Instance { code_hash: Hash::of(Suite::Ed25519Blake3, "golden", b"code"), admin: key.account(), frozen: true }
            .encode(),
    );
    add(
        "registry.register_org",
        RegisterOrg { id: "jingan-data".into(), name: "静安区数据局".into(), kind: OrgKind::Department }.encode(),
    );
    add("registry.update_org", UpdateOrg { id: "x".into(), name: None, status: Some(OrgStatus::Suspended) }.encode());
    add(
        "registry.org",
        Org {
            id: "jingan-data".into(),
            name: "静安区数据局".into(),
            kind: OrgKind::Department,
            status: OrgStatus::Active,
            admin: key.account().0,
            registered_height: 5,
            updated_height: 6,
        }
        .encode(),
    );
    add("address.instance", Address::instance(Suite::Ed25519Blake3, &key.account(), "certs").0.to_vec());
    add(
        "audit_leaf",
        keyspace::AuditLeaf { contract: Address([3; 32]), height: 9, time_ms: 1_000, data: b"used".to_vec() }.encode(),
    );
    for (name, bytes) in shared_vectors() {
        add(name, bytes);
    }
    for (name, bytes) in sm3_vectors() {
        add(name, bytes);
    }
    out
}

/// A transaction of the `sm2-sm3` suite: its sender is an SM2 key's account.
fn sm_tx() -> Transaction {
    Transaction { sender: Keypair::from_seed_in(Suite::Sm2Sm3, "golden-sender").account(), ..tx() }
}

/// A certificate by SM2 validators.
fn sm_certificate() -> Certificate {
    let keys: Vec<Keypair> =
        (0..4).map(|i| Keypair::from_seed_in(Suite::Sm2Sm3, &format!("golden-validator-{i}"))).collect();
    let header = BlockHeader { suite: Suite::Sm2Sm3, ..header() };
    let subject = VoteSubject { kind: VoteKind::Finalize, epoch: 0, view: 43, digest: header.hash() };
    let votes: Vec<(usize, Signature)> =
        [0, 2, 3].iter().map(|&i| (i, subject.sign("shutong-golden", &keys[i]))).collect();
    Certificate::new(subject, keys.len(), &votes)
}

/// The hashes of the `sm2-sm3` suite over the same inputs: each domain's construction; its
/// keys, accounts and (deterministic, RFC 6979) signatures.
fn sm3_vectors() -> Vec<(&'static str, Vec<u8>)> {
    use shutong_types::{auditlog, smt};
    let sm = Suite::Sm2Sm3;
    let mut log = auditlog::MemoryLog::new(sm);
    for leaf in [b"a".as_slice(), b"b", b"c"] {
        log.push(auditlog::leaf_hash(sm, leaf));
    }
    let entries = [(b"k1".as_slice(), b"v1".as_slice()), (b"k2", b"v2"), (b"k3", b"v3")];
    vec![
        ("sm2-sm3.transaction.id", tx().id(sm).0.to_vec()),
        ("sm2-sm3.block_header.hash", BlockHeader { suite: sm, ..header() }.hash().0.to_vec()),
        ("sm2-sm3.merkle_root.empty", merkle_root::<[u8; 0]>(sm, &[]).0.to_vec()),
        ("sm2-sm3.merkle_root.three", merkle_root(sm, &[b"a", b"b", b"c"]).0.to_vec()),
        (
            "sm2-sm3.address.instance",
            Address::instance(sm, &Keypair::from_seed("golden-sender").account(), "certs").0.to_vec(),
        ),
        ("sm2-sm3.state_tree.root", smt::root_of(sm, entries).0.to_vec()),
        ("sm2-sm3.audit_log.root", log.root().0.to_vec()),
        ("sm2-sm3.audit_log.empty", auditlog::empty_root(sm).0.to_vec()),
        ("sm2-sm3.public_key", Keypair::from_seed_in(sm, "golden-sender").public().encode()),
        ("sm2-sm3.account_id", Keypair::from_seed_in(sm, "golden-sender").account().0.to_vec()),
        ("sm2-sm3.signed_transaction", sm_tx().sign(&Keypair::from_seed_in(sm, "golden-sender")).encode()),
        ("sm2-sm3.certificate", sm_certificate().encode()),
    ]
}

/// Vectors the contracts' workspace builds too (`contracts/*/tests/golden.rs`): the
/// lifecycle's and governance's arguments and the example contract's API.
fn shared_vectors() -> Vec<(&'static str, Vec<u8>)> {
    use shutong_cert_verify_api as cert;
    use shutong_system_api::governance::ApproveCode;
    use shutong_system_api::lifecycle::{CodeInfo, ContractInfo, ContractRef, Instantiate, Migrate, UploadCode};
    vec![
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
        (
            "cert.issue",
            cert::Issue {
                id: "lic-1".into(),
                kind: "business-licence".into(),
                holder_hash: [10; 32],
                digest: [11; 32],
                valid_until_ms: 12,
            }
            .encode(),
        ),
        ("cert.verify", cert::Verify { id: "lic-1".into(), holder_hash: [10; 32], digest: [11; 32] }.encode()),
        ("cert.answer", cert::Answer { valid: false, reason: "revoked".into(), audit_index: 13 }.encode()),
    ]
}

const VECTORS: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/golden/vectors.txt");

#[test]
fn encodings_and_hashes_match_the_committed_vectors() {
    let computed: String = vectors().iter().map(|(name, bytes)| format!("{name} {}\n", hex::encode(bytes))).collect();
    if std::env::var_os("SHUTONG_BLESS").is_some() {
        std::fs::write(VECTORS, &computed).unwrap();
    }
    let committed = std::fs::read_to_string(VECTORS).expect("golden vectors are committed");
    for (want, got) in committed.lines().zip(computed.lines()) {
        assert_eq!(want, got, "golden vector changed");
    }
    assert_eq!(committed.lines().count(), computed.lines().count(), "golden vector count changed");
}

fn round_trip<T: Encode + Decode + PartialEq + Debug>(value: T) {
    let bytes = value.encode();
    assert_eq!(T::decode(&bytes).unwrap(), value);
    let mut longer = bytes.clone();
    longer.push(0);
    assert_eq!(T::decode(&longer), Err(DecodeError::TrailingBytes { offset: bytes.len(), extra: 1 }));
    for cut in [0, bytes.len() / 2, bytes.len() - 1] {
        assert!(matches!(T::decode(&bytes[..cut]), Err(DecodeError::UnexpectedEnd { .. })), "cut at {cut}");
    }
}

#[test]
fn every_structure_round_trips_and_rejects_trailing_and_truncated_bytes() {
    let key = Keypair::from_seed("golden-sender");
    round_trip(tx());
    round_trip(tx().sign(&key));
    round_trip(header());
    round_trip(Block { header: header(), txs: vec![tx().sign(&key)] });
    round_trip(receipt(ExecStatus::Aborted("x".into())));
    round_trip(certificate());
}

#[test]
fn non_canonical_forms_are_rejected() {
    let mut bytes = Instance { code_hash: Hash::ZERO, admin: AccountId::default(), frozen: true }.encode();
    *bytes.last_mut().unwrap() = 2;
    assert_eq!(Instance::decode(&bytes), Err(DecodeError::InvalidTag { what: "instance.frozen", tag: 2 }));
    let mut bytes = receipt(ExecStatus::Success).encode();
    bytes[32 + 8 + 4] = 99;
    assert_eq!(Receipt::decode(&bytes), Err(DecodeError::InvalidTag { what: "status", tag: 99 }));
}

#[test]
fn lengths_above_the_maxima_are_rejected() {
    let mut long = tx();
    long.call.method = "m".repeat(limits::METHOD_BYTES_MAX as usize + 1);
    assert_eq!(
        Transaction::decode(&long.encode()),
        Err(DecodeError::TooLong { what: "call.method", len: 65, max: 64 })
    );
    let mut long = tx();
    long.chain_id = "c".repeat(65);
    assert!(matches!(Transaction::decode(&long.encode()), Err(DecodeError::TooLong { what: "tx.chain_id", .. })));
}

#[test]
fn signatures_bind_the_transaction() {
    let key = Keypair::from_seed("golden-sender");
    let signed = tx().sign(&key);
    signed.verify(Suite::Ed25519Blake3).unwrap();
    let mut tampered = signed.clone();
    tampered.tx.nonce += 1;
    assert!(matches!(
        tampered.verify(Suite::Ed25519Blake3),
        Err(TxAuthError::Signature(SignatureError::BadSignature(_)))
    ));
    let other = Keypair::from_seed("someone-else");
    let mut wrong_signer = signed;
    wrong_signer.signer = other.public();
    assert!(matches!(wrong_signer.verify(Suite::Ed25519Blake3), Err(TxAuthError::SignerNotSender { .. })));
}

#[test]
fn sm2_signatures_bind_the_transaction_and_a_key_of_the_other_suite_is_refused() {
    let key = Keypair::from_seed_in(Suite::Sm2Sm3, "golden-sender");
    let signed = sm_tx().sign(&key);
    signed.verify(Suite::Sm2Sm3).unwrap();
    let mut tampered = signed.clone();
    tampered.tx.nonce += 1;
    assert!(matches!(tampered.verify(Suite::Sm2Sm3), Err(TxAuthError::Signature(SignatureError::BadSignature(_)))));
    // Another chain id is another message: a signature does not carry over (replay).
    let mut replayed = signed.clone();
    replayed.tx.chain_id = "another-chain".into();
    assert!(replayed.verify(Suite::Sm2Sm3).is_err());
    // s replaced by n − s, or r + s = n: no second encoding of one signature passes.
    let mut high = signed.clone();
    high.signature.0[32..].fill(0xff);
    assert!(matches!(high.verify(Suite::Sm2Sm3), Err(TxAuthError::Signature(SignatureError::NonCanonical { .. }))));
    // The SM2 transaction on an ed25519 chain, and an ed25519 one on an SM chain: refused,
    // the error naming both suites.
    for (tx, chain) in
        [(signed, Suite::Ed25519Blake3), (tx().sign(&Keypair::from_seed("golden-sender")), Suite::Sm2Sm3)]
    {
        let err = tx.verify(chain).unwrap_err().to_string();
        assert!(err.contains("sm2-sm3") && err.contains("ed25519-blake3"), "{err}");
    }
}

#[test]
fn sm2_certificates_need_a_quorum_of_distinct_valid_signers() {
    let keys: Vec<PublicKey> =
        (0..4).map(|i| Keypair::from_seed_in(Suite::Sm2Sm3, &format!("golden-validator-{i}")).public()).collect();
    let cert = sm_certificate();
    cert.verify("shutong-golden", &keys, 3).unwrap();
    assert_eq!(cert.verify("shutong-golden", &keys, 4), Err(CertificateError::BelowQuorum { signers: 3, quorum: 4 }));
    assert!(matches!(cert.verify("other-chain", &keys, 3), Err(CertificateError::BadSignature { index: 0, .. })));
}

#[test]
fn certificates_need_a_quorum_of_distinct_valid_signers() {
    let keys: Vec<PublicKey> = (0..4).map(|i| Keypair::from_seed(&format!("golden-validator-{i}")).public()).collect();
    let cert = certificate();
    cert.verify("shutong-golden", &keys, 3).unwrap();
    assert_eq!(cert.verify("shutong-golden", &keys, 4), Err(CertificateError::BelowQuorum { signers: 3, quorum: 4 }));
    assert!(matches!(cert.verify("other-chain", &keys, 3), Err(CertificateError::BadSignature { index: 0, .. })));
    let mut extra_bit = cert.clone();
    extra_bit.signers[0] |= 0b10;
    assert_eq!(
        extra_bit.verify("shutong-golden", &keys, 3),
        Err(CertificateError::SignatureCount { signers: 4, signatures: 3 })
    );
}
