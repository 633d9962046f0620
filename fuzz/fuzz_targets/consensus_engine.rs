//! Consensus message handling: validator 0 of four, fed any sequence of votes, proposals,
//! certificates, timeouts, its own block and crash-restarts. The fuzzer holds every other
//! validator's key (a signature "verifies" when its first byte is 0xAA), so it can play up to
//! all three others, honest or not. Whatever it does, the engine must not panic, and its own
//! votes must stay safe: never two notarizes or two finalizes for different blocks in one
//! view, never a nullify and a finalize in one view, and finalizations in increasing views.
#![no_main]

use libfuzzer_sys::fuzz_target;
use shutong_consensus::{Config, Effect, Engine, Finalized, Input, Proposal, SignedVote, Timeouts, Timer, Verifier};
use shutong_types::block::VoteSubject;
use shutong_types::{Certificate, Hash, Keypair, PublicKey, Signature, VoteKind};
use std::collections::BTreeMap;

#[derive(Debug)]
struct Lenient;

impl Verifier for Lenient {
    fn verify(&self, _: &PublicKey, _: &[u8], signature: &Signature) -> bool {
        signature.0[0] == 0xAA
    }
}

const VALIDATORS: usize = 4;

fn signature(valid: bool) -> Signature {
    Signature([if valid { 0xAA } else { 0x55 }; 64])
}

/// This validator's own votes, as persisted, by view: what it notarized, finalized, nullified.
#[derive(Default)]
struct OwnVotes {
    notarized: BTreeMap<u64, Hash>,
    finalized: BTreeMap<u64, Hash>,
    nullified: BTreeMap<u64, ()>,
    log: Vec<SignedVote>,
}

impl OwnVotes {
    fn record(&mut self, vote: &SignedVote) {
        let s = vote.subject;
        match s.kind {
            VoteKind::Notarize => {
                let first = *self.notarized.entry(s.view).or_insert(s.digest);
                assert_eq!(first, s.digest, "notarized two blocks in view {}", s.view);
            }
            VoteKind::Finalize => {
                let first = *self.finalized.entry(s.view).or_insert(s.digest);
                assert_eq!(first, s.digest, "finalized two blocks in view {}", s.view);
                assert!(!self.nullified.contains_key(&s.view), "nullified and finalized view {}", s.view);
            }
            VoteKind::Nullify => {
                assert!(!self.finalized.contains_key(&s.view), "finalized and nullified view {}", s.view);
                self.nullified.insert(s.view, ());
            }
        }
        self.log.push(vote.clone());
    }
}

fuzz_target!(|data: &[u8]| {
    let keys: Vec<Keypair> = (0..VALIDATORS).map(|i| Keypair::from_seed(&format!("fuzz-validator-{i}"))).collect();
    let cfg = Config {
        chain_id: "fuzz".into(),
        epoch: 0,
        validators: keys.iter().map(Keypair::public).collect(),
        timeouts: Timeouts::default(),
    };
    let digests: Vec<Hash> =
        (0u8..8).map(|i| Hash::of(shutong_types::Suite::Ed25519Blake3, "fuzz-block", &[i])).collect();
    let genesis = Finalized { view: 0, digest: digests[0], certificate: None };
    let new_engine = || Engine::new(cfg.clone(), keys[0].clone().into(), Lenient).expect("validator 0 is in the set");
    let mut engine = new_engine();
    let mut own = OwnVotes::default();
    let mut last_final = genesis.clone();
    let handle = |effects: Vec<Effect>, own: &mut OwnVotes, last_final: &mut Finalized| {
        for effect in effects {
            match effect {
                Effect::PersistVote(vote) => {
                    assert_eq!(vote.signer, 0, "the engine persisted a vote that is not its own");
                    own.record(&vote);
                }
                Effect::Finalized { view, digest, certificate } => {
                    assert!(view > last_final.view, "finalized view {view} after view {}", last_final.view);
                    *last_final = Finalized { view, digest, certificate: Some(certificate) };
                }
                _ => {}
            }
        }
    };
    let start = engine
        .step(Input::Start { finalized: genesis.clone(), own_votes: Vec::new(), vote_floor: 0 })
        .expect("a fresh start");
    handle(start, &mut own, &mut last_final);

    for op in data.chunks_exact(8).take(512) {
        let view = u64::from(op[1] % 24);
        let signer = u32::from(op[2] % 5);
        let digest = digests[usize::from(op[3] % 8)];
        let kind = match op[4] % 3 {
            0 => VoteKind::Notarize,
            1 => VoteKind::Nullify,
            _ => VoteKind::Finalize,
        };
        let valid = op[5] & 1 == 0;
        let epoch = u64::from(op[5] >> 7);
        let parent = digests[usize::from(op[6] % 8)];
        let parent_view = u64::from(op[7] % 24);
        let subject = VoteSubject {
            kind,
            epoch,
            view,
            digest: if kind == VoteKind::Nullify && op[5] & 2 == 0 { Hash::ZERO } else { digest },
        };
        let input = match op[0] % 7 {
            0 | 1 => Input::Vote(SignedVote { subject, signer, signature: signature(valid) }),
            2 => {
                let vote = SignedVote {
                    subject: VoteSubject { kind: VoteKind::Notarize, epoch, view, digest },
                    signer,
                    signature: signature(valid),
                };
                Input::Proposal { proposal: Proposal { view, digest, parent, parent_view }, vote }
            }
            3 => {
                let votes: Vec<(usize, Signature)> =
                    (0..VALIDATORS).filter(|i| op[6] & (1 << i) != 0).map(|i| (i, signature(valid || i > 0))).collect();
                let mut certificate = Certificate::new(subject, VALIDATORS, &votes);
                if op[7] & 0x80 != 0 {
                    certificate.signers.push(0xFF);
                }
                Input::Certificate(certificate)
            }
            4 => Input::Timeout {
                view,
                timer: match op[4] % 3 {
                    0 => Timer::Leader,
                    1 => Timer::Advance,
                    _ => Timer::Rebroadcast,
                },
            },
            5 => Input::Propose { view, digest },
            _ => {
                // A crash: the engine restarts from the last finalized block and the votes
                // it persisted, as the node does from its store and write-ahead log.
                engine = new_engine();
                Input::Start { finalized: last_final.clone(), own_votes: own.log.clone(), vote_floor: 0 }
            }
        };
        if let Ok(effects) = engine.step(input) {
            handle(effects, &mut own, &mut last_final);
        }
    }
});
