use super::*;
use shutong_types::{Certificate, Decode, Encode, Hash, Keypair, VoteKind, VoteSubject};

fn keys(n: usize) -> Vec<Keypair> {
    (0..n).map(|i| Keypair::from_seed(&format!("validator-{i}"))).collect()
}

fn config(keys: &[Keypair]) -> Config {
    Config {
        chain_id: "test".into(),
        epoch: 0,
        validators: keys.iter().map(Keypair::public).collect(),
        timeouts: Timeouts::default(),
    }
}

fn genesis() -> Finalized {
    Finalized { view: 0, digest: Hash::ZERO, certificate: None }
}

/// An engine for validator `me` of `n`, started at genesis.
fn started(n: usize, me: usize) -> (Engine<Ed25519>, Vec<Keypair>, Vec<Effect>) {
    let keys = keys(n);
    let mut engine = Engine::new(config(&keys), keys[me].clone().into(), Ed25519).expect("a validator");
    let effects = engine.step(Input::Start { finalized: genesis(), own_votes: Vec::new(), vote_floor: 0 }).unwrap();
    (engine, keys, effects)
}

fn vote(keys: &[Keypair], signer: usize, kind: VoteKind, view: u64, digest: Hash) -> SignedVote {
    let subject = VoteSubject { kind, epoch: 0, view, digest };
    SignedVote { subject, signer: signer as u32, signature: subject.sign("test", &keys[signer]) }
}

fn certificate(keys: &[Keypair], signers: &[usize], kind: VoteKind, view: u64, digest: Hash) -> Certificate {
    let subject = VoteSubject { kind, epoch: 0, view, digest };
    let votes: Vec<_> = signers.iter().map(|&i| (i, subject.sign("test", &keys[i]))).collect();
    Certificate::new(subject, keys.len(), &votes)
}

fn own_votes(effects: &[Effect]) -> Vec<VoteSubject> {
    effects
        .iter()
        .filter_map(|e| match e {
            Effect::PersistVote(v) => Some(v.subject),
            _ => None,
        })
        .collect()
}

fn digest(name: &str) -> Hash {
    Hash::of(shutong_types::Suite::Ed25519Blake3, "test", name.as_bytes())
}

fn proposal(keys: &[Keypair], view: u64, name: &str, parent: Hash, parent_view: u64) -> Input {
    let leader = (view % keys.len() as u64) as usize;
    let d = digest(name);
    Input::Proposal {
        proposal: Proposal { view, digest: d, parent, parent_view },
        vote: vote(keys, leader, VoteKind::Notarize, view, d),
    }
}

#[test]
fn a_single_validator_finalizes_each_proposal_with_a_valid_certificate() {
    let (mut engine, keys, effects) = started(1, 0);
    assert!(effects.contains(&Effect::RequestProposal { view: 1, parent: Hash::ZERO, parent_view: 0 }));
    let d = digest("block 1");
    let effects = engine.step(Input::Propose { view: 1, digest: d }).unwrap();
    // Persist comes before the proposal leaves; finalize before it is reported final.
    let order: Vec<&str> = effects
        .iter()
        .filter_map(|e| match e {
            Effect::PersistVote(_) => Some("persist"),
            Effect::BroadcastProposal(_) => Some("propose"),
            Effect::BroadcastVote(_) => Some("vote"),
            Effect::Finalized { .. } => Some("final"),
            Effect::RequestProposal { .. } => Some("request"),
            _ => None,
        })
        .collect();
    assert_eq!(order, ["persist", "propose", "persist", "vote", "final", "request"]);
    let Some(Effect::Finalized { view, certificate, .. }) =
        effects.iter().find(|e| matches!(e, Effect::Finalized { .. }))
    else {
        panic!("no finalization")
    };
    assert_eq!(*view, 1);
    certificate.verify("test", &[keys[0].public()], 1).unwrap();
    assert_eq!(engine.view(), 2);
    assert_eq!(engine.finalized().digest, d);
}

#[test]
fn quorum_is_n_minus_f() {
    assert_eq!([1, 4, 7, 16].map(|n| config(&keys(n)).quorum()), [1, 3, 5, 11]);
    assert_eq!([1, 4, 7, 16].map(|n| config(&keys(n)).faults_max()), [0, 1, 2, 5]);
}

#[test]
fn a_validator_notarizes_the_leaders_first_proposal_only_and_reports_the_second_as_evidence() {
    let (mut engine, keys, _) = started(4, 2);
    let first = engine.step(proposal(&keys, 1, "a", Hash::ZERO, 0)).unwrap();
    assert_eq!(own_votes(&first), [VoteSubject { kind: VoteKind::Notarize, epoch: 0, view: 1, digest: digest("a") }]);
    let second = engine.step(proposal(&keys, 1, "b", Hash::ZERO, 0)).unwrap();
    assert!(own_votes(&second).is_empty());
    assert!(
        matches!(&second[..], [Effect::Evidence(e)] if e.first.subject.digest == digest("a") && e.second.subject.digest == digest("b"))
    );
}

#[test]
fn a_proposal_not_from_the_leader_is_refused_and_changes_nothing() {
    let (mut engine, keys, _) = started(4, 2);
    let d = digest("a");
    let input = Input::Proposal {
        proposal: Proposal { view: 1, digest: d, parent: Hash::ZERO, parent_view: 0 },
        vote: vote(&keys, 3, VoteKind::Notarize, 1, d),
    };
    assert_eq!(engine.step(input).unwrap_err(), Error::NotLeader { view: 1, signer: 3, leader: 1 });
    // The real leader's proposal is still voted for: nothing was recorded.
    assert_eq!(own_votes(&engine.step(proposal(&keys, 1, "a", Hash::ZERO, 0)).unwrap()).len(), 1);
}

#[test]
fn a_vote_with_a_bad_signature_or_unknown_signer_is_refused() {
    let (mut engine, keys, _) = started(4, 0);
    let mut forged = vote(&keys, 1, VoteKind::Nullify, 1, Hash::ZERO);
    forged.signature = vote(&keys, 2, VoteKind::Nullify, 1, Hash::ZERO).signature;
    assert_eq!(engine.step(Input::Vote(forged)).unwrap_err(), Error::BadSignature { signer: 1, view: 1 });
    let mut unknown = vote(&keys, 1, VoteKind::Nullify, 1, Hash::ZERO);
    unknown.signer = 9;
    assert_eq!(engine.step(Input::Vote(unknown)).unwrap_err(), Error::UnknownSigner { signer: 9, validators: 4 });
    let mut with_digest = vote(&keys, 1, VoteKind::Nullify, 1, digest("x"));
    with_digest.subject.digest = digest("x");
    assert_eq!(engine.step(Input::Vote(with_digest)).unwrap_err(), Error::NullifyWithDigest { view: 1 });
    // Two genuine nullifies plus this validator's own would make a quorum; the refused
    // votes did not count towards it.
    for signer in [1, 2] {
        engine.step(Input::Vote(vote(&keys, signer, VoteKind::Nullify, 1, Hash::ZERO))).unwrap();
    }
    assert_eq!(engine.view(), 1);
}

#[test]
fn timeouts_nullify_and_a_quorum_of_nullifies_moves_on_with_backoff() {
    let (mut engine, keys, _) = started(4, 2);
    let effects = engine.step(Input::Timeout { view: 1, timer: Timer::Leader }).unwrap();
    assert_eq!(own_votes(&effects), [VoteSubject { kind: VoteKind::Nullify, epoch: 0, view: 1, digest: Hash::ZERO }]);
    engine.step(Input::Vote(vote(&keys, 0, VoteKind::Nullify, 1, Hash::ZERO))).unwrap();
    let effects = engine.step(Input::Vote(vote(&keys, 1, VoteKind::Nullify, 1, Hash::ZERO))).unwrap();
    assert_eq!(engine.view(), 2);
    let timeouts = Timeouts::default();
    assert!(effects.contains(&Effect::ScheduleTimer {
        view: 2,
        timer: Timer::Leader,
        after_ms: timeouts.leader_ms * 2
    }));
    assert!(
        effects.iter().any(|e| matches!(e, Effect::BroadcastCertificate(c) if c.subject.kind == VoteKind::Nullify))
    );
    // A timer of a view left behind does nothing.
    assert!(engine.step(Input::Timeout { view: 1, timer: Timer::Advance }).unwrap().is_empty());
}

#[test]
fn a_validator_that_nullified_never_finalizes_that_view() {
    let (mut engine, keys, _) = started(4, 2);
    engine.step(proposal(&keys, 1, "a", Hash::ZERO, 0)).unwrap();
    // t_a fires after the notarize: nullify is allowed...
    let effects = engine.step(Input::Timeout { view: 1, timer: Timer::Advance }).unwrap();
    assert_eq!(own_votes(&effects)[0].kind, VoteKind::Nullify);
    // ...and then a notarization moves the view on without a finalize vote.
    let notarization = certificate(&keys, &[0, 1, 3], VoteKind::Notarize, 1, digest("a"));
    let effects = engine.step(Input::Certificate(notarization)).unwrap();
    assert!(own_votes(&effects).iter().all(|s| s.kind != VoteKind::Finalize));
    assert_eq!(engine.view(), 2);
}

#[test]
fn a_notarization_brings_a_finalize_vote_and_a_finalization_finalizes() {
    let (mut engine, keys, _) = started(4, 2);
    // The leader's proposal and this validator's notarize are two votes; a third makes q.
    let effects = engine.step(proposal(&keys, 1, "a", Hash::ZERO, 0)).unwrap();
    assert_eq!(engine.view(), 1);
    assert_eq!(own_votes(&effects).len(), 1);
    let effects = engine.step(Input::Vote(vote(&keys, 0, VoteKind::Notarize, 1, digest("a")))).unwrap();
    assert_eq!(own_votes(&effects)[0].kind, VoteKind::Finalize);
    assert_eq!(engine.view(), 2);
    let finalization = certificate(&keys, &[0, 1, 3], VoteKind::Finalize, 1, digest("a"));
    let effects = engine.step(Input::Certificate(finalization)).unwrap();
    assert!(effects.iter().any(|e| matches!(e, Effect::Finalized { view: 1, digest: d, .. } if *d == digest("a"))));
    // Delivered once only.
    let again = certificate(&keys, &[0, 1, 2], VoteKind::Finalize, 1, digest("a"));
    assert!(engine.step(Input::Certificate(again)).unwrap().is_empty());
}

#[test]
fn a_certificate_below_quorum_or_with_a_bad_signature_is_refused() {
    let (mut engine, keys, _) = started(4, 0);
    let short = certificate(&keys, &[1, 2], VoteKind::Nullify, 1, Hash::ZERO);
    assert!(matches!(engine.step(Input::Certificate(short)), Err(Error::BadCertificate { view: 1, .. })));
    let mut bad = certificate(&keys, &[1, 2, 3], VoteKind::Nullify, 1, Hash::ZERO);
    bad.signatures[1] = bad.signatures[0];
    assert!(matches!(engine.step(Input::Certificate(bad)), Err(Error::BadCertificate { view: 1, .. })));
    assert_eq!(engine.view(), 1);
}

#[test]
fn a_proposal_waits_for_the_nullifications_it_skips_and_then_gets_a_vote() {
    let (mut engine, keys, _) = started(4, 3);
    // Leader of view 2 builds on genesis, skipping view 1: a nullification of 1 is needed.
    let notarization = certificate(&keys, &[0, 1, 2], VoteKind::Notarize, 1, digest("one"));
    let effects = engine.step(Input::Certificate(notarization)).unwrap();
    assert_eq!(engine.view(), 2);
    assert!(own_votes(&effects).iter().any(|s| s.kind == VoteKind::Finalize));
    // A notarization of view 1 is not its nullification, which a parent in view 0 needs:
    // the proposal waits for it.
    let effects = engine.step(proposal(&keys, 2, "two", Hash::ZERO, 0)).unwrap();
    assert!(effects.contains(&Effect::RequestCertificates { views: vec![1] }));
    assert!(own_votes(&effects).is_empty());
    let nullification = certificate(&keys, &[0, 1, 2], VoteKind::Nullify, 1, Hash::ZERO);
    let effects = engine.step(Input::Certificate(nullification)).unwrap();
    assert_eq!(
        own_votes(&effects),
        [VoteSubject { kind: VoteKind::Notarize, epoch: 0, view: 2, digest: digest("two") }]
    );
}

#[test]
fn a_proposal_on_a_parent_that_conflicts_with_the_notarized_block_is_never_voted_for() {
    let (mut engine, keys, _) = started(4, 3);
    let notarization = certificate(&keys, &[0, 1, 2], VoteKind::Notarize, 1, digest("one"));
    engine.step(Input::Certificate(notarization)).unwrap();
    let effects = engine.step(proposal(&keys, 2, "two", digest("other"), 1)).unwrap();
    assert!(own_votes(&effects).is_empty());
    assert!(!effects.iter().any(|e| matches!(e, Effect::RequestCertificates { .. })));
}

#[test]
fn the_leader_builds_on_the_highest_notarized_view_after_nullified_ones() {
    // Validator 3 leads view 3; view 1 notarized, view 2 nullified.
    let (mut engine, keys, _) = started(4, 3);
    engine.step(Input::Certificate(certificate(&keys, &[0, 1, 2], VoteKind::Notarize, 1, digest("one")))).unwrap();
    let effects =
        engine.step(Input::Certificate(certificate(&keys, &[0, 1, 2], VoteKind::Nullify, 2, Hash::ZERO))).unwrap();
    assert!(effects.contains(&Effect::RequestProposal { view: 3, parent: digest("one"), parent_view: 1 }));
    assert_eq!(
        engine.step(Input::Propose { view: 4, digest: digest("x") }).unwrap_err(),
        Error::NotRequested { view: 4 }
    );
}

#[test]
fn a_restarted_validator_does_not_vote_again_in_a_view_it_voted_in() {
    let (mut engine, keys, _) = started(4, 2);
    let effects = engine.step(proposal(&keys, 1, "a", Hash::ZERO, 0)).unwrap();
    let logged: Vec<SignedVote> = effects
        .iter()
        .filter_map(|e| match e {
            Effect::PersistVote(v) => Some(v.clone()),
            _ => None,
        })
        .collect();
    let mut restarted = Engine::new(config(&keys), keys[2].clone().into(), Ed25519).unwrap();
    let effects =
        restarted.step(Input::Start { finalized: genesis(), own_votes: logged.clone(), vote_floor: 0 }).unwrap();
    assert_eq!(restarted.view(), 1);
    // The logged vote is re-sent (the crash may have lost it), not signed anew.
    assert!(effects.contains(&Effect::BroadcastVote(logged[0].clone())));
    assert!(own_votes(&effects).is_empty());
    // An equivocating leader's second proposal gets no vote after the restart either.
    let effects = restarted.step(proposal(&keys, 1, "b", Hash::ZERO, 0)).unwrap();
    assert!(own_votes(&effects).is_empty());
}

#[test]
fn a_validator_with_a_rolled_back_log_signs_nothing_up_to_its_high_water_mark() {
    // Validator 2 of 4 signed up to view 3 before its log was rolled back: the restored
    // log is empty, the mark says 3.
    let keys = keys(4);
    let mut engine = Engine::new(config(&keys), keys[2].clone().into(), Ed25519).unwrap();
    let effects = engine.step(Input::Start { finalized: genesis(), own_votes: Vec::new(), vote_floor: 3 }).unwrap();
    assert!(own_votes(&effects).is_empty());
    // Another proposal in view 1 than the one it may have notarized gets no vote, nor does
    // its notarization a finalize; the timers of view 2, the leader's build in view 2 and a
    // proposal in view 3 are all silent too.
    assert!(own_votes(&engine.step(proposal(&keys, 1, "other", Hash::ZERO, 0)).unwrap()).is_empty());
    let effects = engine
        .step(Input::Certificate(certificate(&keys, &[0, 1, 3], VoteKind::Notarize, 1, digest("other"))))
        .unwrap();
    assert!(own_votes(&effects).is_empty());
    assert_eq!(engine.view(), 2);
    assert!(!effects.iter().any(|e| matches!(e, Effect::RequestProposal { .. })), "view 2's leader builds nothing");
    for timer in [Timer::Leader, Timer::Advance] {
        assert!(own_votes(&engine.step(Input::Timeout { view: 2, timer }).unwrap()).is_empty());
    }
    // It still follows the others' certificates up the views.
    engine.step(Input::Certificate(certificate(&keys, &[0, 1, 3], VoteKind::Nullify, 2, Hash::ZERO))).unwrap();
    assert_eq!(engine.view(), 3);
    let effects = engine.step(proposal(&keys, 3, "three", digest("other"), 1)).unwrap();
    assert!(own_votes(&effects).is_empty());
    engine.step(Input::Certificate(certificate(&keys, &[0, 1, 3], VoteKind::Notarize, 3, digest("three")))).unwrap();
    // Above the mark it votes again.
    let effects = engine.step(proposal(&keys, 4, "four", digest("three"), 3)).unwrap();
    let signed = own_votes(&effects);
    assert_eq!(signed.len(), 1);
    assert_eq!((signed[0].kind, signed[0].view), (VoteKind::Notarize, 4));
}

#[test]
fn a_validator_far_behind_asks_for_the_certificate_that_lets_it_catch_up() {
    let (mut engine, keys, _) = started(4, 0);
    let far = VIEW_LOOKAHEAD + 40;
    let effects = engine.step(Input::Vote(vote(&keys, 1, VoteKind::Nullify, far, Hash::ZERO))).unwrap();
    assert_eq!(effects, [Effect::RequestCertificates { views: vec![far - 1] }]);
    engine.step(Input::Certificate(certificate(&keys, &[1, 2, 3], VoteKind::Nullify, far - 1, Hash::ZERO))).unwrap();
    assert_eq!(engine.view(), far);
}

#[test]
fn inputs_before_start_are_refused() {
    let keys = keys(4);
    let mut engine = Engine::new(config(&keys), keys[0].clone().into(), Ed25519).unwrap();
    let input = Input::Vote(vote(&keys, 1, VoteKind::Nullify, 1, Hash::ZERO));
    assert_eq!(engine.step(input).unwrap_err(), Error::NotStarted);
}

#[test]
fn messages_round_trip_and_garbage_is_refused() {
    let keys = keys(4);
    let messages = [
        Message::Vote(vote(&keys, 1, VoteKind::Finalize, 7, digest("a"))),
        Message::Certificate(certificate(&keys, &[0, 1, 3], VoteKind::Nullify, 9, Hash::ZERO)),
        Message::CertificateRequest { views: vec![3, 4] },
    ];
    for message in &messages {
        let bytes = message.encode();
        assert_eq!(&Message::decode(&bytes).unwrap(), message);
        assert!(Message::decode(&bytes[..bytes.len() - 1]).is_err());
        let mut longer = bytes.clone();
        longer.push(0);
        assert!(Message::decode(&longer).is_err());
    }
    assert!(Message::decode(&[7]).is_err());
    let mut huge = vec![2u8];
    huge.extend_from_slice(&u32::MAX.to_le_bytes());
    assert!(Message::decode(&huge).is_err());
}

#[test]
fn a_leader_signs_one_proposal_per_view_even_when_late_certificates_arrive() {
    // Validator 2 leads view 2, entered by a nullification of view 1.
    let (mut engine, keys, _) = started(4, 2);
    let effects =
        engine.step(Input::Certificate(certificate(&keys, &[0, 1, 3], VoteKind::Nullify, 1, Hash::ZERO))).unwrap();
    assert!(effects.contains(&Effect::RequestProposal { view: 2, parent: Hash::ZERO, parent_view: 0 }));
    assert_eq!(own_votes(&engine.step(Input::Propose { view: 2, digest: digest("a") }).unwrap()).len(), 1);
    assert_eq!(
        engine.step(Input::Propose { view: 2, digest: digest("b") }).unwrap_err(),
        Error::NotRequested { view: 2 }
    );
    // A late notarization of view 1 makes the leader reconsider its parent, but it has
    // proposed in view 2 already: no second request, so no second block to sign. (The
    // simulation found this one.)
    let late = certificate(&keys, &[0, 1, 3], VoteKind::Notarize, 1, digest("one"));
    let effects = engine.step(Input::Certificate(late)).unwrap();
    assert!(!effects.iter().any(|e| matches!(e, Effect::RequestProposal { .. })), "{effects:?}");
}

/// An epoch's last block may only be finalized, never extended, so later leaders propose it
/// again (the host's re-proposal: digest = parent). The engine votes for it when it is
/// notarized in the claimed view with every view since nullified, and reports it final.
#[test]
fn a_re_proposed_block_is_notarized_and_finalized_in_a_later_view() {
    let (mut engine, keys, _) = started(4, 0);
    let b = digest("last block of the epoch");
    engine.step(certificate_input(&keys, &[1, 2, 3], VoteKind::Notarize, 1, b)).unwrap();
    engine.step(certificate_input(&keys, &[1, 2, 3], VoteKind::Nullify, 2, Hash::ZERO)).unwrap();
    assert_eq!(engine.view(), 3);
    let reproposal = Input::Proposal {
        proposal: Proposal { view: 3, digest: b, parent: b, parent_view: 1 },
        vote: vote(&keys, 3, VoteKind::Notarize, 3, b),
    };
    let effects = engine.step(reproposal).unwrap();
    let notarize = VoteSubject { kind: VoteKind::Notarize, epoch: 0, view: 3, digest: b };
    assert!(own_votes(&effects).contains(&notarize), "{effects:?}");
    let effects = engine.step(certificate_input(&keys, &[1, 2, 3], VoteKind::Finalize, 3, b)).unwrap();
    assert!(
        effects.iter().any(|e| matches!(e, Effect::Finalized { view: 3, digest, .. } if *digest == b)),
        "{effects:?}"
    );

    // A re-proposal that skips a view not nullified is refused (rule 6).
    let (mut engine, keys, _) = started(4, 0);
    engine.step(certificate_input(&keys, &[1, 2, 3], VoteKind::Notarize, 1, b)).unwrap();
    engine.step(certificate_input(&keys, &[1, 2, 3], VoteKind::Notarize, 2, digest("other"))).unwrap();
    let reproposal = Input::Proposal {
        proposal: Proposal { view: 3, digest: b, parent: b, parent_view: 1 },
        vote: vote(&keys, 3, VoteKind::Notarize, 3, b),
    };
    let effects = engine.step(reproposal).unwrap();
    assert!(own_votes(&effects).iter().all(|v| v.kind != VoteKind::Notarize), "{effects:?}");
}

fn certificate_input(keys: &[Keypair], signers: &[usize], kind: VoteKind, view: u64, digest: Hash) -> Input {
    Input::Certificate(certificate(keys, signers, kind, view, digest))
}

#[test]
fn two_conflicting_certificates_are_evidence_against_every_validator_in_both() {
    let (mut engine, keys, _) = started(4, 0);
    let (a, b) = (digest("a"), digest("b"));
    // Validator 0 sees view 1 notarized for a by 1, 2 and 3; then a notarization of b by 1,
    // 2 and 0's own key cannot come from honest validators: 1 and 2 signed both.
    engine.step(Input::Certificate(certificate(&keys, &[1, 2, 3], VoteKind::Notarize, 1, a))).unwrap();
    let effects = engine.step(Input::Certificate(certificate(&keys, &[0, 1, 2], VoteKind::Notarize, 1, b))).unwrap();
    let accused: Vec<(u32, Hash, Hash)> = effects
        .iter()
        .filter_map(|e| match e {
            Effect::Evidence(ev) => Some((ev.first.signer, ev.first.subject.digest, ev.second.subject.digest)),
            _ => None,
        })
        .collect();
    assert_eq!(accused, vec![(1, a, b), (2, a, b)]);
    // Each is a self-contained proof: both votes verify under the signer's key.
    for effect in &effects {
        if let Effect::Evidence(ev) = effect {
            for v in [&ev.first, &ev.second] {
                assert!(
                    keys[v.signer as usize].public().verify(&v.subject.signing_bytes("test"), &v.signature).is_ok()
                );
            }
        }
    }
    // The second notarization is evidence only: nothing else happens, and the view keeps a.
    assert!(effects.iter().all(|e| matches!(e, Effect::Evidence(_))), "{effects:?}");
    assert!(engine.certificates(1).iter().any(|c| c.subject.digest == a));
    // A nullification and a finalization of one view conflict too.
    engine.step(Input::Certificate(certificate(&keys, &[1, 2, 3], VoteKind::Nullify, 2, Hash::ZERO))).unwrap();
    let effects = engine.step(Input::Certificate(certificate(&keys, &[0, 2, 3], VoteKind::Finalize, 2, b))).unwrap();
    let accused: Vec<u32> = effects
        .iter()
        .filter_map(|e| match e {
            Effect::Evidence(ev) => Some(ev.first.signer),
            _ => None,
        })
        .collect();
    assert_eq!(accused, vec![2, 3]);
}

/// A key in a token that can be pulled out: signs while inserted, fails while not.
#[derive(Debug)]
struct Token {
    key: Keypair,
    inserted: std::sync::atomic::AtomicBool,
}

impl shutong_types::Signer for Token {
    fn public(&self) -> shutong_types::PublicKey {
        self.key.public()
    }

    fn try_sign(&self, message: &[u8]) -> Result<shutong_types::Signature, shutong_types::SignerError> {
        if self.inserted.load(std::sync::atomic::Ordering::SeqCst) {
            Ok(self.key.sign(message))
        } else {
            Err(shutong_types::SignerError { key: self.key.public(), reason: "CKR_TOKEN_NOT_PRESENT".into() })
        }
    }
}

#[test]
fn a_validator_whose_signer_fails_skips_the_vote_and_votes_again_once_it_works() {
    use std::sync::atomic::Ordering::SeqCst;
    let keys = keys(4);
    let token = std::sync::Arc::new(Token { key: keys[2].clone(), inserted: false.into() });
    let mut engine = Engine::new(config(&keys), token.clone(), Ed25519).unwrap();
    engine.step(Input::Start { finalized: genesis(), own_votes: Vec::new(), vote_floor: 0 }).unwrap();
    let failed = |effects: &[Effect]| {
        effects
            .iter()
            .filter_map(|e| match e {
                Effect::SigningFailed { view, kind, reason } => Some((*view, *kind, reason.clone())),
                _ => None,
            })
            .collect::<Vec<_>>()
    };
    let sent = |effects: &[Effect]| effects.iter().any(|e| matches!(e, Effect::BroadcastVote(_)));

    // The token is out: the proposal gets no vote, nothing is persisted or sent, and the
    // host hears why.
    let effects = engine.step(proposal(&keys, 1, "a", Hash::ZERO, 0)).unwrap();
    assert!(own_votes(&effects).is_empty() && !sent(&effects), "{effects:?}");
    let reason =
        "the signer of key ".to_string() + &keys[2].public().to_string() + " could not sign: CKR_TOKEN_NOT_PRESENT";
    assert_eq!(failed(&effects), [(1, VoteKind::Notarize, reason)]);
    let effects = engine.step(Input::Timeout { view: 1, timer: Timer::Advance }).unwrap();
    assert!(own_votes(&effects).is_empty() && !sent(&effects), "{effects:?}");
    assert_eq!(failed(&effects).len(), 1);
    assert_eq!(failed(&effects)[0].1, VoteKind::Nullify);

    // Back in: the view's next timer nullifies it (it never notarized anything), and the
    // validator takes part again from the next view on.
    token.inserted.store(true, SeqCst);
    let effects = engine.step(Input::Timeout { view: 1, timer: Timer::Advance }).unwrap();
    assert_eq!(own_votes(&effects), [VoteSubject { kind: VoteKind::Nullify, epoch: 0, view: 1, digest: Hash::ZERO }]);
    engine.step(Input::Certificate(certificate(&keys, &[0, 1, 3], VoteKind::Nullify, 1, Hash::ZERO))).unwrap();
    assert_eq!(engine.view(), 2);
    let effects = engine.step(proposal(&keys, 2, "b", Hash::ZERO, 0)).unwrap();
    assert_eq!(own_votes(&effects), [VoteSubject { kind: VoteKind::Notarize, epoch: 0, view: 2, digest: digest("b") }]);
    assert!(failed(&effects).is_empty());
}
