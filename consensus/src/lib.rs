//! Shutong's consensus engine as a pure state machine: inputs in, effects out.
//!
//! The engine owns no clock, socket, thread or disk. The host (the node's consensus driver,
//! or the simulation harness) feeds it [`Input`]s and carries out the [`Effect`]s it returns,
//! **in order**. The host contract:
//!
//! 1. [`Effect::PersistVote`] must be durable (written and synced to the write-ahead log)
//!    before the host carries out any later effect of the same step. This is what keeps a
//!    restarted validator from signing two conflicting votes in one view.
//! 2. [`Effect::RequestProposal`] asks the host to build a block on the given parent; the
//!    host answers with [`Input::Proposal`] for the same view, whenever it is ready.
//! 3. [`Effect::Finalized`] hands a block to execution; finalized blocks arrive in height order,
//!    exactly once each.
//!
//! This first cut implements the good case of the protocol in `docs/consensus.md`
//! (rules 1, 2, 3 and 5: propose, notarize, finalize). View changes by `Nullify` on timeout
//! (rules 4 and 7), proposal validity against notarized ancestors (rule 6) and fetching
//! missing ancestors (rule 8) come with multi-validator networking. With one validator the
//! quorum is one and every view finalizes in one step.

#![forbid(unsafe_code)]

use shutong_types::{Certificate, Hash, Keypair, PublicKey, Signature, VoteKind, VoteSubject};
use std::collections::{BTreeMap, HashMap};

/// A validator's signed vote.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SignedVote {
    pub subject: VoteSubject,
    pub signer: u32,
    pub signature: Signature,
}

/// What the host tells the engine.
#[derive(Debug, Clone)]
pub enum Input {
    /// Start (or restart) in `view`, on top of the finalized block `parent` at `height`.
    Start { view: u64, parent: Hash, height: u64 },
    /// The block the host built for `view` after a [`Effect::RequestProposal`], or a leader's
    /// proposal received from the network.
    Proposal { view: u64, digest: Hash, parent: Hash, height: u64 },
    /// Another validator's vote, as received.
    Vote(SignedVote),
}

/// What the engine asks the host to do, in order.
#[derive(Debug, Clone)]
pub enum Effect {
    /// Make the vote durable before anything later in this step happens.
    PersistVote(SignedVote),
    /// Send the vote to every other validator.
    BroadcastVote(SignedVote),
    /// This validator leads `view`: build a block at `height` on `parent`.
    RequestProposal { view: u64, parent: Hash, height: u64 },
    /// The block `digest` at `height` is final; `certificate` proves it.
    Finalized { height: u64, digest: Hash, certificate: Certificate },
}

/// Why an input was refused. The engine's state is unchanged when it returns one.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Error {
    #[error("proposal for view {proposal_view} but the engine is in view {view}")]
    WrongView { proposal_view: u64, view: u64 },
    #[error(
        "proposal at height {height} on parent {parent} does not extend the finalized tip {tip} at height {tip_height}"
    )]
    NotExtendingTip { height: u64, parent: Hash, tip: Hash, tip_height: u64 },
    #[error("vote from signer {signer}, but there are only {validators} validators")]
    UnknownSigner { signer: u32, validators: usize },
    #[error("vote from signer {signer} does not verify")]
    BadVoteSignature { signer: u32 },
    #[error("vote is for epoch {vote_epoch}, the engine is in epoch {epoch}")]
    WrongEpoch { vote_epoch: u64, epoch: u64 },
}

/// Static parameters of one epoch.
#[derive(Debug, Clone)]
pub struct Config {
    pub chain_id: String,
    pub epoch: u64,
    /// The epoch's validators, in order; a validator's index is its position here.
    pub validators: Vec<PublicKey>,
}

impl Config {
    /// `n − f` with `f = ⌊(n − 1) / 3⌋` (consensus.md, Setting).
    pub fn quorum(&self) -> usize {
        let n = self.validators.len();
        n - (n.saturating_sub(1)) / 3
    }

    /// Round-robin leader: view `v` is led by validator `v mod n` (consensus.md, Setting).
    pub fn leader(&self, view: u64) -> u32 {
        (view % self.validators.len() as u64) as u32
    }
}

/// The engine of one validator.
#[derive(Debug)]
pub struct Engine {
    cfg: Config,
    key: Keypair,
    me: u32,
    view: u64,
    tip: Hash,
    tip_height: u64,
    /// The digest and height this validator notarized in the current view, if any.
    notarized: Option<(Hash, u64)>,
    votes: HashMap<VoteSubject, BTreeMap<u32, Signature>>,
}

impl Engine {
    /// Returns `None` if `key` is not one of the epoch's validators.
    pub fn new(cfg: Config, key: Keypair) -> Option<Engine> {
        let me = cfg.validators.iter().position(|v| *v == key.public())? as u32;
        Some(Engine { cfg, key, me, view: 0, tip: Hash::ZERO, tip_height: 0, notarized: None, votes: HashMap::new() })
    }

    pub fn view(&self) -> u64 {
        self.view
    }

    pub fn config(&self) -> &Config {
        &self.cfg
    }

    /// Feeds one input; returns the effects to carry out in order.
    pub fn step(&mut self, input: Input) -> Result<Vec<Effect>, Error> {
        match input {
            Input::Start { view, parent, height } => Ok(self.on_start(view, parent, height)),
            Input::Proposal { view, digest, parent, height } => self.on_proposal(view, digest, parent, height),
            Input::Vote(vote) => self.on_vote(vote),
        }
    }

    fn on_start(&mut self, view: u64, parent: Hash, height: u64) -> Vec<Effect> {
        self.tip = parent;
        self.tip_height = height;
        self.enter(view.max(1))
    }

    /// Rule 1: entering a view; the leader asks for a block on the best parent.
    fn enter(&mut self, view: u64) -> Vec<Effect> {
        self.view = view;
        self.notarized = None;
        self.votes.retain(|subject, _| subject.view >= view);
        if self.cfg.leader(view) == self.me {
            vec![Effect::RequestProposal { view, parent: self.tip, height: self.tip_height + 1 }]
        } else {
            Vec::new()
        }
    }

    /// Rule 2: notarize the first valid proposal of the view.
    fn on_proposal(&mut self, view: u64, digest: Hash, parent: Hash, height: u64) -> Result<Vec<Effect>, Error> {
        if view != self.view {
            return Err(Error::WrongView { proposal_view: view, view: self.view });
        }
        if parent != self.tip || height != self.tip_height + 1 {
            return Err(Error::NotExtendingTip { height, parent, tip: self.tip, tip_height: self.tip_height });
        }
        if self.notarized.is_some() {
            // Never a second notarize in one view.
            return Ok(Vec::new());
        }
        self.notarized = Some((digest, height));
        let subject = VoteSubject { kind: VoteKind::Notarize, epoch: self.cfg.epoch, view, digest };
        let mut effects = self.cast(subject);
        effects.extend(self.tally(subject));
        Ok(effects)
    }

    fn on_vote(&mut self, vote: SignedVote) -> Result<Vec<Effect>, Error> {
        if vote.subject.epoch != self.cfg.epoch {
            return Err(Error::WrongEpoch { vote_epoch: vote.subject.epoch, epoch: self.cfg.epoch });
        }
        let validators = self.cfg.validators.len();
        let key = self
            .cfg
            .validators
            .get(vote.signer as usize)
            .ok_or(Error::UnknownSigner { signer: vote.signer, validators })?;
        key.verify(&vote.subject.signing_bytes(&self.cfg.chain_id), &vote.signature)
            .map_err(|_| Error::BadVoteSignature { signer: vote.signer })?;
        if vote.subject.view < self.view {
            return Ok(Vec::new());
        }
        self.votes.entry(vote.subject).or_default().insert(vote.signer, vote.signature);
        Ok(self.tally(vote.subject))
    }

    /// Signs a vote: persist first, then broadcast (the host contract), and count it.
    fn cast(&mut self, subject: VoteSubject) -> Vec<Effect> {
        let vote = SignedVote { subject, signer: self.me, signature: subject.sign(&self.cfg.chain_id, &self.key) };
        self.votes.entry(subject).or_default().insert(self.me, vote.signature);
        vec![Effect::PersistVote(vote.clone()), Effect::BroadcastVote(vote)]
    }

    /// Rules 3 and 5: a quorum of notarizes leads to a finalize vote; a quorum of finalizes
    /// finalizes the block and moves to the next view.
    fn tally(&mut self, subject: VoteSubject) -> Vec<Effect> {
        let count = self.votes.get(&subject).map_or(0, BTreeMap::len);
        if count < self.cfg.quorum() || subject.view != self.view {
            return Vec::new();
        }
        match subject.kind {
            VoteKind::Notarize => {
                let finalize = VoteSubject { kind: VoteKind::Finalize, ..subject };
                if self.votes.get(&finalize).is_some_and(|v| v.contains_key(&self.me)) {
                    return Vec::new();
                }
                let mut effects = self.cast(finalize);
                effects.extend(self.tally(finalize));
                effects
            }
            VoteKind::Finalize => {
                let Some((digest, height)) = self.notarized.filter(|(d, _)| *d == subject.digest) else {
                    // Finalized a block this validator has not seen: block sync fetches it.
                    return Vec::new();
                };
                let votes: Vec<(usize, Signature)> =
                    self.votes[&subject].iter().map(|(i, s)| (*i as usize, *s)).collect();
                let certificate = Certificate::new(subject, self.cfg.validators.len(), &votes);
                self.tip = digest;
                self.tip_height = height;
                let mut effects = vec![Effect::Finalized { height, digest, certificate }];
                effects.extend(self.enter(subject.view + 1));
                effects
            }
            VoteKind::Nullify => Vec::new(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn solo() -> (Engine, Config) {
        let key = Keypair::from_seed("validator-0");
        let cfg = Config { chain_id: "test".into(), epoch: 0, validators: vec![key.public()] };
        (Engine::new(cfg.clone(), key).expect("key is a validator"), cfg)
    }

    #[test]
    fn a_single_validator_finalizes_each_proposal_with_a_valid_certificate() {
        let (mut engine, cfg) = solo();
        let effects = engine.step(Input::Start { view: 1, parent: Hash::ZERO, height: 0 }).unwrap();
        assert!(matches!(effects[..], [Effect::RequestProposal { view: 1, height: 1, .. }]));
        let digest = Hash::of("test", b"block 1");
        let effects = engine.step(Input::Proposal { view: 1, digest, parent: Hash::ZERO, height: 1 }).unwrap();
        let kinds: Vec<&str> = effects
            .iter()
            .map(|e| match e {
                Effect::PersistVote(_) => "persist",
                Effect::BroadcastVote(_) => "broadcast",
                Effect::RequestProposal { .. } => "request",
                Effect::Finalized { .. } => "finalized",
            })
            .collect();
        assert_eq!(kinds, ["persist", "broadcast", "persist", "broadcast", "finalized", "request"]);
        let Effect::Finalized { height, certificate, .. } = &effects[4] else { panic!("expected finalized") };
        assert_eq!(*height, 1);
        certificate.verify(&cfg.chain_id, &cfg.validators, cfg.quorum()).unwrap();
        assert_eq!(engine.view(), 2);
    }

    #[test]
    fn a_proposal_for_another_view_is_refused_without_a_vote() {
        let (mut engine, _) = solo();
        engine.step(Input::Start { view: 1, parent: Hash::ZERO, height: 0 }).unwrap();
        let err = engine.step(Input::Proposal { view: 5, digest: Hash::ZERO, parent: Hash::ZERO, height: 1 });
        assert_eq!(err.unwrap_err(), Error::WrongView { proposal_view: 5, view: 1 });
        assert_eq!(engine.view(), 1);
    }

    #[test]
    fn a_second_proposal_in_a_view_gets_no_second_notarize() {
        let key = Keypair::from_seed("v0");
        let other = Keypair::from_seed("v1");
        let cfg = Config {
            chain_id: "t".into(),
            epoch: 0,
            validators: vec![
                key.public(),
                other.public(),
                Keypair::from_seed("v2").public(),
                Keypair::from_seed("v3").public(),
            ],
        };
        let mut engine = Engine::new(cfg, key).unwrap();
        engine.step(Input::Start { view: 4, parent: Hash::ZERO, height: 0 }).unwrap();
        let first =
            engine.step(Input::Proposal { view: 4, digest: Hash::of("t", b"a"), parent: Hash::ZERO, height: 1 });
        assert_eq!(first.unwrap().len(), 2);
        let second =
            engine.step(Input::Proposal { view: 4, digest: Hash::of("t", b"b"), parent: Hash::ZERO, height: 1 });
        assert!(second.unwrap().is_empty());
    }

    #[test]
    fn quorum_is_n_minus_f() {
        let cfg = |n: usize| Config {
            chain_id: String::new(),
            epoch: 0,
            validators: (0..n).map(|i| Keypair::from_seed(&i.to_string()).public()).collect(),
        };
        assert_eq!([1, 4, 7, 16].map(|n| cfg(n).quorum()), [1, 3, 5, 11]);
    }
}
