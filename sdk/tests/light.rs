//! The light client against forged answers, with no node: a chain's headers, certificates,
//! state and log are built here from their definitions, then tampered with one at a time.
//! Each lie must be refused with the error that names it.

#![allow(clippy::unwrap_used)]

use shutong_codec::Encode;
use shutong_sdk::light::{LightClient, LightError, Verified};
use shutong_sdk::rpc::{AuditProofInfo, ConsistencyInfo, EpochInfo, HeaderInfo, StateProofInfo};
use shutong_sdk::system_api::governance::{PENDING_KEY, PendingSet, VALIDATORS_KEY, ValidatorSet};
use shutong_sdk::system_api::names;
use shutong_types::auditlog::{self, LogProofError, MemoryLog};
use shutong_types::keyspace::{self, AuditLeaf};
use shutong_types::smt::{self, StateProofError};
use shutong_types::{
    Address, BlockHeader, Certificate, CertificateError, Hash, Keypair, PublicKey, Signature, VoteKind, VoteSubject,
    validator_set_hash,
};
use std::collections::BTreeMap;

const CHAIN: &str = "light-test";

fn keys(tag: &str, n: usize) -> Vec<Keypair> {
    (0..n).map(|i| Keypair::from_seed(&format!("{tag}-{i}"))).collect()
}

fn publics(keys: &[Keypair]) -> Vec<PublicKey> {
    keys.iter().map(Keypair::public).collect()
}

fn governance(name: &[u8]) -> Vec<u8> {
    keyspace::contract_storage(&Address::system(names::GOVERNANCE), name)
}

/// A state, a log, and headers over them.
struct Chain {
    state: BTreeMap<Vec<u8>, Vec<u8>>,
    log: MemoryLog,
    leaves: Vec<Vec<u8>>,
}

impl Chain {
    fn new(validators: &[Keypair]) -> Chain {
        let mut state = BTreeMap::new();
        let set = ValidatorSet {
            epoch: 0,
            since_height: 0,
            keys: publics(validators).iter().map(|k| k.to_key_bytes()).collect(),
            transports: vec![None; validators.len()],
        };
        state.insert(governance(VALIDATORS_KEY), set.encode());
        state.insert(b"grant/7".to_vec(), b"active until 2027".to_vec());
        let mut chain = Chain { state, log: MemoryLog::new(shutong_types::Suite::Ed25519Blake3), leaves: Vec::new() };
        chain.append(5);
        chain
    }

    fn append(&mut self, n: usize) {
        for _ in 0..n {
            let i = self.leaves.len();
            let leaf = AuditLeaf {
                contract: Address::system(names::AUDIT),
                height: i as u64,
                time_ms: 1_000 + i as u64,
                data: format!("access event {i}").into_bytes(),
            }
            .encode();
            self.log.push(auditlog::leaf_hash(shutong_types::Suite::Ed25519Blake3, &leaf));
            self.leaves.push(leaf);
        }
    }

    fn root(&self) -> Hash {
        smt::root_of(shutong_types::Suite::Ed25519Blake3, self.state.iter().map(|(k, v)| (k.as_slice(), v.as_slice())))
    }

    fn header(&self, height: u64, validators: &[Keypair]) -> BlockHeader {
        BlockHeader {
            chain_id: CHAIN.into(),
            protocol_version: shutong_types::PROTOCOL_VERSION,
            suite: shutong_types::Suite::Ed25519Blake3,
            height,
            view: height,
            parent: Hash::of(shutong_types::Suite::Ed25519Blake3, "test", &height.to_be_bytes()),
            proposer: validators[0].public(),
            timestamp_ms: 1_000 + height,
            txs_root: Hash::ZERO,
            state_root: self.root(),
            receipts_root: Hash::ZERO,
            audit_root: self.log.root(),
            audit_size: self.log.size(),
            validator_set: validator_set_hash(shutong_types::Suite::Ed25519Blake3, &publics(validators)),
        }
    }

    fn state_proof(&self, height: u64, key: &[u8]) -> StateProofInfo {
        let proof = smt::prove_in(
            shutong_types::Suite::Ed25519Blake3,
            self.state.iter().map(|(k, v)| (k.as_slice(), v.as_slice())),
            key,
        );
        StateProofInfo {
            height,
            key_hex: hex::encode(key),
            value_hex: self.state.get(key).map(hex::encode),
            proof_hex: hex::encode(proof.encode()),
        }
    }

    fn audit_proof(&self, height: u64, index: u64) -> AuditProofInfo {
        let proof = auditlog::prove_inclusion(&self.log, index, self.log.size()).unwrap();
        AuditProofInfo {
            height,
            index,
            leaf_hex: hex::encode(&self.leaves[index as usize]),
            proof_hex: hex::encode(proof.encode()),
        }
    }
}

/// A finalization certificate on `header` in `epoch`, signed by `signers` (indices into
/// `validators`).
fn certify(header: &BlockHeader, epoch: u64, validators: &[Keypair], signers: &[usize]) -> Certificate {
    let subject = VoteSubject { kind: VoteKind::Finalize, epoch, view: header.view, digest: header.hash() };
    let votes: Vec<(usize, Signature)> = signers.iter().map(|&i| (i, subject.sign(CHAIN, &validators[i]))).collect();
    Certificate::new(subject, validators.len(), &votes)
}

fn info(header: &BlockHeader, certificate: Option<&Certificate>) -> HeaderInfo {
    HeaderInfo {
        height: header.height,
        header_hex: hex::encode(header.encode()),
        certificate_hex: certificate.map(|c| hex::encode(c.encode())),
    }
}

fn verified(client: &LightClient, header: &BlockHeader, validators: &[Keypair]) -> Verified {
    client.verify_header(&info(header, Some(&certify(header, 0, validators, &[0, 1, 2])))).unwrap()
}

#[test]
fn genuine_answers_are_accepted() {
    let v = keys("v", 4);
    let chain = Chain::new(&v);
    let client = LightClient::new(CHAIN, shutong_types::Suite::Ed25519Blake3, publics(&v));
    let header = chain.header(9, &v);
    let at = verified(&client, &header, &v);
    assert_eq!(at.hash, header.hash());
    let value = client.verify_state(&at, &chain.state_proof(9, b"grant/7"), b"grant/7").unwrap();
    assert_eq!(value.as_deref(), Some(b"active until 2027".as_slice()));
    assert_eq!(client.verify_state(&at, &chain.state_proof(9, b"grant/8"), b"grant/8").unwrap(), None);
    for i in 0..5 {
        let leaf = client.verify_audit(&at, &chain.audit_proof(9, i), i).unwrap();
        assert_eq!(leaf.data, format!("access event {i}").into_bytes());
    }
}

#[test]
fn a_forged_header_or_a_bad_certificate_is_refused_by_name() {
    let v = keys("v", 4);
    let chain = Chain::new(&v);
    let client = LightClient::new(CHAIN, shutong_types::Suite::Ed25519Blake3, publics(&v));
    let header = chain.header(9, &v);
    let good = certify(&header, 0, &v, &[0, 1, 2]);

    // A header changed after it was certified: the certificate is for another digest.
    let mut forged = header.clone();
    forged.state_root = Hash::of(shutong_types::Suite::Ed25519Blake3, "forged", b"state");
    let err = client.verify_header(&info(&forged, Some(&good))).unwrap_err();
    assert!(matches!(err, LightError::WrongSubject { height: 9, .. }), "{err}");

    // Two of four signers: below the quorum of three.
    let few = certify(&header, 0, &v, &[0, 3]);
    let err = client.verify_header(&info(&header, Some(&few))).unwrap_err();
    assert!(
        matches!(err, LightError::Certificate { source: CertificateError::BelowQuorum { signers: 2, quorum: 3 }, .. }),
        "{err}"
    );

    // One validator's signature counted twice: the bitmap names three signers, but the
    // second signature is the first one again.
    let mut duplicate = good.clone();
    duplicate.signatures[1] = duplicate.signatures[0];
    let err = client.verify_header(&info(&header, Some(&duplicate))).unwrap_err();
    assert!(
        matches!(err, LightError::Certificate { source: CertificateError::BadSignature { index: 1, .. }, .. }),
        "{err}"
    );
    let mut padded = good.clone();
    padded.signatures.push(good.signatures[0]);
    let err = client.verify_header(&info(&header, Some(&padded))).unwrap_err();
    assert!(matches!(err, LightError::Certificate { source: CertificateError::SignatureCount { .. }, .. }), "{err}");

    // Signed by outsiders who put themselves in the header's validator set.
    let outsiders = keys("outsider", 4);
    let theirs = chain.header(9, &outsiders);
    let err = client.verify_header(&info(&theirs, Some(&certify(&theirs, 0, &outsiders, &[0, 1, 2])))).unwrap_err();
    assert!(matches!(err, LightError::ValidatorSet { .. }), "{err}");
    // And with the real set's hash in the header, their signatures fail.
    let err = client.verify_header(&info(&header, Some(&certify(&header, 0, &outsiders, &[0, 1, 2])))).unwrap_err();
    assert!(matches!(err, LightError::Certificate { source: CertificateError::BadSignature { .. }, .. }), "{err}");

    // A notarization is not a finalization, an unknown epoch is not trusted, and a header
    // without a certificate is not accepted on its own.
    let mut notarized = good.clone();
    notarized.subject.kind = VoteKind::Notarize;
    assert!(matches!(client.verify_header(&info(&header, Some(&notarized))), Err(LightError::WrongSubject { .. })));
    let later = certify(&header, 3, &v, &[0, 1, 2]);
    assert!(matches!(client.verify_header(&info(&header, Some(&later))), Err(LightError::UnknownEpoch { epoch: 3 })));
    assert!(matches!(client.verify_header(&info(&header, None)), Err(LightError::Uncertified { height: 9 })));
    let other_chain = LightClient::new("another-chain", shutong_types::Suite::Ed25519Blake3, publics(&v));
    assert!(matches!(other_chain.verify_header(&info(&header, Some(&good))), Err(LightError::WrongChain { .. })));
}

#[test]
fn forged_state_and_log_answers_are_refused_by_name() {
    let v = keys("v", 4);
    let chain = Chain::new(&v);
    let client = LightClient::new(CHAIN, shutong_types::Suite::Ed25519Blake3, publics(&v));
    let at = verified(&client, &chain.header(9, &v), &v);

    // The value changed (as a changed database value would serve it).
    let mut changed = chain.state_proof(9, b"grant/7");
    changed.value_hex = Some(hex::encode(b"active until 2099"));
    let err = client.verify_state(&at, &changed, b"grant/7").unwrap_err();
    assert!(matches!(err, LightError::State { source: StateProofError::ValueMismatch { .. }, .. }), "{err}");
    // A present key denied.
    let mut denied = chain.state_proof(9, b"grant/7");
    denied.value_hex = None;
    let err = client.verify_state(&at, &denied, b"grant/7").unwrap_err();
    assert!(matches!(err, LightError::State { source: StateProofError::PresentKey, .. }), "{err}");
    // A changed proof.
    let mut proof = chain.state_proof(9, b"grant/7");
    let mut bytes = hex::decode(&proof.proof_hex).unwrap();
    let last = bytes.len() - 1;
    bytes[last] ^= 1;
    proof.proof_hex = hex::encode(bytes);
    let err = client.verify_state(&at, &proof, b"grant/7").unwrap_err();
    assert!(matches!(err, LightError::State { source: StateProofError::RootMismatch { .. }, .. }), "{err}");
    // An answer against another header.
    let err = client.verify_state(&at, &chain.state_proof(8, b"grant/7"), b"grant/7").unwrap_err();
    assert!(matches!(err, LightError::WrongHeight { asked: 9, answered: 8 }), "{err}");

    // A changed audit leaf, and a proof for another leaf than the one asked.
    let mut leaf = chain.audit_proof(9, 2);
    leaf.leaf_hex = hex::encode(
        AuditLeaf {
            contract: Address::system(names::AUDIT),
            height: 2,
            time_ms: 1_002,
            data: b"nothing happened".to_vec(),
        }
        .encode(),
    );
    let err = client.verify_audit(&at, &leaf, 2).unwrap_err();
    assert!(matches!(err, LightError::Log { index: 2, source: LogProofError::RootMismatch { .. } }), "{err}");
    let err = client.verify_audit(&at, &chain.audit_proof(9, 3), 2).unwrap_err();
    assert!(matches!(err, LightError::WrongLeaf { asked: 2, proven: 3 }), "{err}");
}

#[test]
fn a_rewritten_or_truncated_log_is_caught_between_headers() {
    let v = keys("v", 4);
    let mut chain = Chain::new(&v);
    let mut client = LightClient::new(CHAIN, shutong_types::Suite::Ed25519Blake3, publics(&v));
    let first = verified(&client, &chain.header(9, &v), &v);
    client.advance(first, None).unwrap();

    // Honest growth: 5 → 12 leaves, with its consistency proof.
    chain.append(7);
    let grown = verified(&client, &chain.header(10, &v), &v);
    let proof = auditlog::prove_consistency(&chain.log, 5, 12).unwrap();
    let consistency = ConsistencyInfo { height: 10, proof_hex: hex::encode(proof.encode()) };
    client.advance(grown, Some(&consistency)).unwrap();

    // A log whose leaf 3 was rewritten and then grown to 20, certified anyway: no proof
    // joins it to the 12-leaf root already verified.
    let mut rewritten = Chain::new(&v);
    rewritten.leaves.clear();
    rewritten.log = MemoryLog::new(shutong_types::Suite::Ed25519Blake3);
    rewritten.append(3);
    rewritten.log.push(auditlog::leaf_hash(shutong_types::Suite::Ed25519Blake3, b"a different event 3"));
    rewritten.leaves.push(b"a different event 3".to_vec());
    rewritten.append(16);
    let header = rewritten.header(11, &v);
    let forged = verified(&client, &header, &v);
    let proof = auditlog::prove_consistency(&rewritten.log, 12, 20).unwrap();
    let consistency = ConsistencyInfo { height: 11, proof_hex: hex::encode(proof.encode()) };
    let err = client.advance(forged.clone(), Some(&consistency)).unwrap_err();
    assert!(matches!(err, LightError::Inconsistent { height: 11, .. }), "{err}");
    // Without a proof at all it fails the same way.
    assert!(matches!(client.advance(forged, None), Err(LightError::Inconsistent { .. })));

    // A later header whose log is shorter than the one verified: truncated history.
    let mut truncated = Chain::new(&v);
    truncated.append(2);
    let short = verified(&client, &truncated.header(12, &v), &v);
    let err = client.advance(short, None).unwrap_err();
    assert!(matches!(err, LightError::LogShrunk { height: 12, known: 12, claimed: 7 }), "{err}");
    // An older header served as the newest.
    let old = verified(&client, &chain.header(4, &v), &v);
    assert!(matches!(client.advance(old, None), Err(LightError::Regressed { known: 10, served: 4 })));
}

#[test]
fn an_epoch_change_is_followed_and_the_old_set_cannot_sign_past_it() {
    let old = keys("v", 4);
    let new = keys("w", 3);
    let mut chain = Chain::new(&old);
    let start = 40;
    let pending = PendingSet {
        activation_height: start,
        keys: publics(&new).iter().map(|k| k.to_key_bytes()).collect(),
        transports: vec![None; new.len()],
        proposer: [1; 32],
    };
    chain.state.insert(governance(PENDING_KEY), pending.encode());
    let last = chain.header(start - 1, &old);
    let epoch_info = EpochInfo {
        epoch: 1,
        start_height: start,
        last_header: info(&last, Some(&certify(&last, 0, &old, &[1, 2, 3]))),
        validators: chain.state_proof(start - 1, &governance(VALIDATORS_KEY)),
        pending: chain.state_proof(start - 1, &governance(PENDING_KEY)),
    };

    // A forged change: the proof of the scheduled set is for other keys.
    let mut client = LightClient::new(CHAIN, shutong_types::Suite::Ed25519Blake3, publics(&old));
    let mut forged = epoch_info.clone();
    let other =
        PendingSet { keys: publics(&keys("x", 3)).iter().map(|k| k.to_key_bytes()).collect(), ..pending.clone() };
    forged.pending.value_hex = Some(hex::encode(other.encode()));
    let err = client.apply_epoch(&forged).unwrap_err();
    assert!(matches!(err, LightError::State { source: StateProofError::ValueMismatch { .. }, .. }), "{err}");
    // A change whose last header is not certified by the old set.
    let mut uncertified = epoch_info.clone();
    uncertified.last_header = info(&last, Some(&certify(&last, 0, &old, &[1])));
    assert!(matches!(client.apply_epoch(&uncertified), Err(LightError::Certificate { .. })));

    client.apply_epoch(&epoch_info).unwrap();
    assert_eq!(client.epoch().validators, publics(&new));
    // The new set certifies heights from the start on.
    chain.state.remove(&governance(PENDING_KEY));
    let header = chain.header(start + 5, &new);
    client.verify_header(&info(&header, Some(&certify(&header, 1, &new, &[0, 1, 2])))).unwrap();
    // The old set, even a full quorum of it, cannot certify a height past its epoch.
    let stale = chain.header(start + 5, &old);
    let err = client.verify_header(&info(&stale, Some(&certify(&stale, 0, &old, &[0, 1, 2, 3])))).unwrap_err();
    assert!(matches!(err, LightError::OutsideEpoch { epoch: 0, start: 0, end: Some(40), .. }), "{err}");
    // Epochs are followed in order.
    let err = client.apply_epoch(&epoch_info).unwrap_err();
    assert!(matches!(err, LightError::EpochChange { epoch: 2, .. }), "{err}");
}

#[test]
fn an_answer_with_an_entry_left_out_reordered_or_invented_is_incomplete_and_named() {
    use shutong_sdk::light::{TrailItem, check_complete};
    use shutong_sdk::rpc::AuditQuery;
    use shutong_sdk::system_api::audit::AuditEntry;
    // Entry `seq` of resource market/licence (and of grant 7), at time 100 × seq; its
    // selectors: the resource, two organisations, the principal, purpose `licensing`.
    let item = |resource: &str, seq: u64| {
        let entry = AuditEntry {
            kind: "access.permitted".into(),
            grant: 7,
            grant_seq: seq,
            seqs: vec![seq, 40 + seq, 50 + seq, 60 + seq, 70 + seq],
            request: 1,
            resource: resource.into(),
            provider_org: "market".into(),
            consumer_org: "acme".into(),
            principal: [3; 32],
            purpose: "licensing".into(),
            body: Vec::new(),
        };
        let time_ms = 100 * seq;
        let leaf = AuditLeaf { contract: Address::system(names::AUDIT), height: 1, time_ms, data: entry.to_leaf() };
        let proof = AuditProofInfo { height: 9, index: 1000 + seq, leaf_hex: String::new(), proof_hex: String::new() };
        TrailItem { index: 1000 + seq, entry: Some(entry), leaf, proof }
    };
    let query = |by: &str, value: &str, from_ms, to_ms| AuditQuery {
        by: by.into(),
        value: value.into(),
        from_ms,
        to_ms,
        height: None,
        cursor: None,
        limit: None,
        log_tx: Hash([0; 32]),
    };
    let r = |s| item("market/licence", s);
    // Who used market/licence between t = 300 and t = 650: entries 3 to 6, bounded by 2 and 7.
    let period = query("resource", "market/licence", 300, 650);
    let answer: Vec<TrailItem> = (3..7).map(r).collect();
    check_complete(&period, &answer, Some(&r(2)), Some(&r(7)), None).unwrap();
    // A node that drops entry 5 is caught, and the entry named.
    let dropped = vec![r(3), r(4), r(6)];
    let err = check_complete(&period, &dropped, Some(&r(2)), Some(&r(7)), None).unwrap_err().to_string();
    assert!(err.contains("entry 5 is missing (leaf 1006 is entry 6)"), "{err}");
    let last_dropped = vec![r(3), r(4), r(5)];
    let err = check_complete(&period, &last_dropped, Some(&r(2)), Some(&r(7)), None).unwrap_err().to_string();
    assert!(err.contains("entry 6 is missing: the next after the period is 7"), "{err}");
    let first_dropped = vec![r(4), r(5), r(6)];
    let err = check_complete(&period, &first_dropped, Some(&r(2)), Some(&r(7)), None).unwrap_err().to_string();
    assert!(err.contains("entry 3 is missing"), "{err}");
    // Reordered, repeated or invented (another resource's entry in its place).
    let swapped = vec![r(3), r(5), r(4), r(6)];
    assert!(check_complete(&period, &swapped, Some(&r(2)), Some(&r(7)), None).is_err());
    let invented = vec![r(3), r(4), item("tax/registration", 5), r(6)];
    let err = check_complete(&period, &invented, Some(&r(2)), Some(&r(7)), None).unwrap_err().to_string();
    assert!(err.contains("an item (leaf 1005) is not in its sequence"), "{err}");
    // Boundaries must lie outside the period, and an end must be proven.
    let err = check_complete(&period, &answer[1..], Some(&r(3)), Some(&r(7)), None).unwrap_err().to_string();
    assert!(err.contains("the leaf before it (leaf 1003) is not before the period"), "{err}");
    let err = check_complete(&period, &answer, Some(&r(2)), None, None).unwrap_err().to_string();
    assert!(err.contains("nothing proves where it ends"), "{err}");
    // To the end of time: the proven count bounds it.
    let to_now = query("resource", "market/licence", 300, u64::MAX);
    check_complete(&to_now, &answer, Some(&r(2)), None, Some(7)).unwrap();
    let err = check_complete(&to_now, &answer, Some(&r(2)), None, Some(8)).unwrap_err().to_string();
    assert!(err.contains("it stops before entry 7, but the proven count is 8"), "{err}");
    // From the beginning, with no entry before: the answer starts at entry 0.
    let from_start = query("resource", "market/licence", 0, 650);
    let err = check_complete(&from_start, &answer, None, Some(&r(7)), None).unwrap_err().to_string();
    assert!(err.contains("entry 0 to 2 are missing"), "{err}");
    // The same walk by purpose (its own sequence) and by grant (grant_seq).
    let by_purpose = query("purpose", "licensing", 300, 650);
    check_complete(&by_purpose, &answer, Some(&r(2)), Some(&r(7)), None).unwrap();
    let by_grant = query("grant", "7", 0, u64::MAX);
    let whole: Vec<TrailItem> = (0..4).map(r).collect();
    check_complete(&by_grant, &whole, None, None, Some(4)).unwrap();
    let err = check_complete(&by_grant, &whole, None, None, Some(5)).unwrap_err();
    assert!(matches!(err, LightError::Incomplete { .. }), "{err}");
}
