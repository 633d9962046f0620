//! The engine: one handler per input kind, each rule of `docs/consensus.md` labelled where it
//! is implemented.

use crate::config::{Config, REQUESTED_VIEWS_MAX, VIEW_LOOKAHEAD};
use crate::message::{Effect, Error, Evidence, Finalized, Input, Proposal, SignedVote, Timer};
use crate::round::{Recorded, Round};
use crate::verifier::Verifier;
use shutong_types::{Certificate, Hash, Signer, VoteKind, VoteSubject};
use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

/// Whether one validator's votes on both subjects (of one view) are evidence.
fn subjects_conflict(a: &VoteSubject, b: &VoteSubject) -> bool {
    use VoteKind::*;
    a.view == b.view
        && match (a.kind, b.kind) {
            (Notarize, Notarize) | (Finalize, Finalize) => a.digest != b.digest,
            (Nullify, Finalize) | (Finalize, Nullify) => true,
            _ => false,
        }
}

/// The signed votes a certificate is made of.
fn certificate_votes(certificate: &Certificate) -> Vec<SignedVote> {
    certificate
        .signer_indices()
        .into_iter()
        .zip(&certificate.signatures)
        .map(|(signer, signature)| SignedVote {
            subject: certificate.subject,
            signer: signer as u32,
            signature: *signature,
        })
        .collect()
}

/// The outcome of checking a proposal's parent (rule 6).
enum Ancestry {
    Valid,
    Invalid,
    /// Certificates for these views are missing locally.
    Missing(Vec<u64>),
}

/// The consensus engine of one validator.
#[derive(Debug)]
pub struct Engine<V: Verifier> {
    cfg: Config,
    /// This validator's key: a key file's, or one in a token whose signing can fail.
    signer: Arc<dyn Signer>,
    me: u32,
    verifier: V,
    view: u64,
    /// The certificate that moved this validator into `view` (re-broadcast by rule 7).
    entered_by: Option<Certificate>,
    finalized: Finalized,
    /// Views above the last finalized one (and that one itself).
    rounds: BTreeMap<u64, Round>,
    /// Views in a row that ended by nullification, for the timeout backoff.
    nullified_streak: u32,
    /// The view for which the host was asked to build a block, with its parent.
    requested_proposal: Option<Proposal>,
    /// Views whose certificates were asked for since this validator entered its view.
    requested_certificates: BTreeSet<u64>,
    started: bool,
    /// Views at or below this one are never signed in: the signing high-water mark of a
    /// validator whose write-ahead log was rolled back.
    vote_floor: u64,
}

impl<V: Verifier> Engine<V> {
    /// Returns `None` if `signer`'s key is not one of the epoch's validators.
    pub fn new(cfg: Config, signer: Arc<dyn Signer>, verifier: V) -> Option<Engine<V>> {
        let me = cfg.validators.iter().position(|v| *v == signer.public())? as u32;
        Some(Engine {
            cfg,
            signer,
            me,
            verifier,
            view: 0,
            entered_by: None,
            finalized: Finalized { view: 0, digest: Hash::ZERO, certificate: None },
            rounds: BTreeMap::new(),
            nullified_streak: 0,
            requested_proposal: None,
            requested_certificates: BTreeSet::new(),
            started: false,
            vote_floor: 0,
        })
    }

    pub fn view(&self) -> u64 {
        self.view
    }

    pub fn config(&self) -> &Config {
        &self.cfg
    }

    /// This validator's index in the epoch's validator list.
    pub fn index(&self) -> u32 {
        self.me
    }

    /// The last finalized block this engine knows.
    pub fn finalized(&self) -> &Finalized {
        &self.finalized
    }

    /// The certificates this engine holds for `view`, to answer a peer's request (rule 8).
    /// For a view at or below the last finalized one, the last finalization, which lets the
    /// asker skip ahead.
    pub fn certificates(&self, view: u64) -> Vec<Certificate> {
        if view <= self.finalized.view {
            return self.finalized.certificate.iter().cloned().collect();
        }
        self.rounds.get(&view).map(|r| r.certificates().cloned().collect()).unwrap_or_default()
    }

    /// Feeds one input; returns the effects to carry out, in order.
    pub fn step(&mut self, input: Input) -> Result<Vec<Effect>, Error> {
        if !self.started && !matches!(input, Input::Start { .. }) {
            return Err(Error::NotStarted);
        }
        match input {
            Input::Start { finalized, own_votes, vote_floor } => Ok(self.on_start(finalized, own_votes, vote_floor)),
            Input::Propose { view, digest } => self.on_propose(view, digest),
            Input::Proposal { proposal, vote } => self.on_proposal(proposal, vote),
            Input::Vote(vote) => self.on_vote(vote),
            Input::Certificate(certificate) => self.on_certificate(certificate),
            Input::Timeout { view, timer } => Ok(self.on_timeout(view, timer)),
        }
    }

    /// Restart: take back this validator's own votes, so that it never signs one that
    /// conflicts with them, and enter the last view it voted in (or the one after the last
    /// finalized view), re-sending the votes of that view in case the crash lost them.
    /// With a vote floor above that, it follows the others' certificates but signs nothing
    /// until its view passes the floor.
    fn on_start(&mut self, finalized: Finalized, own_votes: Vec<SignedVote>, vote_floor: u64) -> Vec<Effect> {
        self.started = true;
        self.vote_floor = vote_floor;
        self.rounds.clear();
        self.view = finalized.view;
        self.finalized = finalized;
        let mut last_voted = self.finalized.view;
        for vote in own_votes {
            let subject = vote.subject;
            if vote.signer != self.me || subject.epoch != self.cfg.epoch || subject.view <= self.finalized.view {
                continue;
            }
            last_voted = last_voted.max(subject.view);
            let round = self.rounds.entry(subject.view).or_default();
            round.record(&vote);
            match subject.kind {
                VoteKind::Notarize => round.own.notarize = Some(subject.digest),
                VoteKind::Nullify => round.own.nullify = true,
                VoteKind::Finalize => round.own.finalize = Some(subject.digest),
            }
            round.own.signed.push(vote);
        }
        // A finalize vote means the view was notarized and this validator had moved past it.
        let finalized_last = self.rounds.get(&last_voted).is_some_and(|r| r.own.finalize.is_some());
        let view = (last_voted + u64::from(finalized_last)).max(self.finalized.view + 1);
        let mut effects = self.enter(view, None);
        if let Some(round) = self.rounds.get(&view) {
            effects.extend(round.own.signed.iter().cloned().map(Effect::BroadcastVote));
            if round.own.nullify {
                let after_ms = self.cfg.timeouts.rebroadcast_ms;
                effects.push(Effect::ScheduleTimer { view, timer: Timer::Rebroadcast, after_ms });
            }
        }
        effects
    }

    /// Rule 1: entering `view`. Start `t_l` and `t_a` (backed off after nullified views);
    /// the leader asks the host for a block on the best parent. A proposal that arrived
    /// early is considered now.
    fn enter(&mut self, view: u64, by: Option<Certificate>) -> Vec<Effect> {
        if view <= self.view {
            return Vec::new();
        }
        self.nullified_streak = match &by {
            Some(c) if c.subject.kind == VoteKind::Nullify => self.nullified_streak.saturating_add(1),
            Some(_) => 0,
            None => self.nullified_streak,
        };
        self.view = view;
        self.entered_by = by;
        self.requested_proposal = None;
        self.requested_certificates.clear();
        self.rounds.entry(view).or_default();
        let behind = view.saturating_sub(VIEW_LOOKAHEAD);
        for (_, round) in self.rounds.range_mut(..behind) {
            round.compact();
        }
        let (leader_ms, advance_ms) = self.cfg.timeouts.backed_off(self.nullified_streak);
        let mut effects = vec![
            Effect::ScheduleTimer { view, timer: Timer::Leader, after_ms: leader_ms },
            Effect::ScheduleTimer { view, timer: Timer::Advance, after_ms: advance_ms },
        ];
        if self.cfg.leader(view) == self.me {
            effects.extend(self.try_propose());
        } else {
            effects.extend(self.consider_proposal());
        }
        effects
    }

    /// Rule 6 (the leader's part): build on the notarized block of the highest view such
    /// that every later view is nullified; if a certificate needed to know it is missing,
    /// ask for it (rule 8) and try again when certificates arrive.
    fn try_propose(&mut self) -> Vec<Effect> {
        let view = self.view;
        let round = self.rounds.get(&view);
        if view <= self.vote_floor
            || self.requested_proposal.is_some()
            || round.is_some_and(|r| r.own.notarize.is_some() || r.own.nullify)
        {
            return Vec::new();
        }
        match self.best_parent(view) {
            Ok((parent_view, parent)) => {
                self.requested_proposal = Some(Proposal { view, digest: Hash::ZERO, parent, parent_view });
                vec![Effect::RequestProposal { view, parent, parent_view }]
            }
            Err(missing) => self.request_certificates(missing),
        }
    }

    fn best_parent(&self, view: u64) -> Result<(u64, Hash), Vec<u64>> {
        let mut missing = Vec::new();
        for w in (self.finalized.view + 1..view).rev() {
            let round = self.rounds.get(&w);
            if let Some(digest) = round.and_then(Round::notarized_digest) {
                if missing.is_empty() {
                    return Ok((w, digest));
                }
                break;
            }
            if round.is_none_or(|r| r.nullification.is_none()) {
                missing.push(w);
                if missing.len() == REQUESTED_VIEWS_MAX {
                    break;
                }
            }
        }
        if missing.is_empty() { Ok((self.finalized.view, self.finalized.digest)) } else { Err(missing) }
    }

    /// The host built this validator's proposal: sign it as the leader's notarize (rule 2
    /// applies to the leader too: persist, then send).
    fn on_propose(&mut self, view: u64, digest: Hash) -> Result<Vec<Effect>, Error> {
        let Some(requested) = self.requested_proposal.filter(|p| p.view == view) else {
            return Err(Error::NotRequested { view });
        };
        self.requested_proposal = None;
        let round = self.rounds.entry(view).or_default();
        if round.own.notarize.is_some() || round.own.nullify || view != self.view {
            // The view timed out before the block was ready.
            return Ok(Vec::new());
        }
        round.proposal = Some(Proposal { digest, ..requested });
        round.own.notarize = Some(digest);
        let subject = self.subject(VoteKind::Notarize, view, digest);
        let vote = match self.sign(subject) {
            Ok(vote) => vote,
            Err(failed) => return Ok(failed),
        };
        let mut effects = vec![Effect::PersistVote(vote.clone()), Effect::BroadcastProposal(vote)];
        effects.extend(self.tally(&subject));
        Ok(effects)
    }

    /// A leader's proposal from the network. Its vote is the leader's notarize: a second,
    /// different proposal from the same leader in one view is evidence (rule 2).
    fn on_proposal(&mut self, proposal: Proposal, vote: SignedVote) -> Result<Vec<Effect>, Error> {
        let view = proposal.view;
        if vote.subject != self.subject(VoteKind::Notarize, view, proposal.digest) {
            return Err(Error::ProposalVoteMismatch { view });
        }
        let leader = self.cfg.leader(view);
        if vote.signer != leader {
            return Err(Error::NotLeader { view, signer: vote.signer, leader });
        }
        if proposal.parent_view >= view {
            return Err(Error::ParentNotEarlier { view, parent_view: proposal.parent_view });
        }
        self.check_vote(&vote)?;
        if view <= self.finalized.view {
            return Ok(Vec::new());
        }
        if view > self.view + VIEW_LOOKAHEAD {
            return Ok(self.request_certificates(vec![view - 1]));
        }
        let mut effects = self.record(vote);
        let round = self.rounds.entry(view).or_default();
        if round.proposal.is_none() {
            round.proposal = Some(proposal);
        }
        effects.extend(self.tally(&self.subject(VoteKind::Notarize, view, proposal.digest)));
        effects.extend(self.consider_proposal());
        Ok(effects)
    }

    /// Rule 2: notarize the first proposal of the current view if it is valid (rule 6) and
    /// this validator has neither notarized nor nullified in the view.
    fn consider_proposal(&mut self) -> Vec<Effect> {
        let view = self.view;
        let Some(round) = self.rounds.get(&view) else { return Vec::new() };
        let Some(proposal) = round.proposal else { return Vec::new() };
        if round.own.notarize.is_some() || round.own.nullify || round.proposal_invalid {
            return Vec::new();
        }
        match self.ancestry(&proposal) {
            Ancestry::Valid => {}
            Ancestry::Invalid => {
                self.rounds.entry(view).or_default().proposal_invalid = true;
                return Vec::new();
            }
            Ancestry::Missing(views) => return self.request_certificates(views),
        }
        let subject = self.subject(VoteKind::Notarize, view, proposal.digest);
        self.rounds.entry(view).or_default().own.notarize = Some(proposal.digest);
        let vote = match self.sign(subject) {
            Ok(vote) => vote,
            Err(failed) => return failed,
        };
        let mut effects = vec![Effect::PersistVote(vote.clone()), Effect::BroadcastVote(vote)];
        effects.extend(self.tally(&subject));
        effects
    }

    /// Rule 6 (the engine's part): the parent is finalized or notarized in its view, and
    /// every view strictly between the parent's and the proposal's is nullified.
    fn ancestry(&self, proposal: &Proposal) -> Ancestry {
        let finalized = &self.finalized;
        if proposal.parent_view < finalized.view {
            return Ancestry::Invalid;
        }
        let mut missing = Vec::new();
        if proposal.parent_view == finalized.view {
            if proposal.parent != finalized.digest {
                return Ancestry::Invalid;
            }
        } else {
            match self.rounds.get(&proposal.parent_view).and_then(Round::notarized_digest) {
                Some(digest) if digest == proposal.parent => {}
                Some(_) => return Ancestry::Invalid,
                None => missing.push(proposal.parent_view),
            }
        }
        for w in proposal.parent_view + 1..proposal.view {
            if self.rounds.get(&w).is_none_or(|r| r.nullification.is_none()) {
                missing.push(w);
                if missing.len() == REQUESTED_VIEWS_MAX {
                    break;
                }
            }
        }
        if missing.is_empty() { Ancestry::Valid } else { Ancestry::Missing(missing) }
    }

    fn on_vote(&mut self, vote: SignedVote) -> Result<Vec<Effect>, Error> {
        self.check_vote(&vote)?;
        let view = vote.subject.view;
        if view <= self.finalized.view {
            return Ok(Vec::new());
        }
        if view > self.view + VIEW_LOOKAHEAD {
            return Ok(self.request_certificates(vec![view - 1]));
        }
        let subject = vote.subject;
        let mut effects = Vec::new();
        let stuck = self.rounds.get(&self.view).is_some_and(|r| r.own.nullify);
        if view > self.view + 1 || (view > self.view && stuck) {
            // Someone is ahead: the certificates that got them there may have been lost on
            // the way here.
            effects.extend(self.request_certificates((self.view..view).collect()));
        }
        effects.extend(self.record(vote));
        effects.extend(self.tally(&subject));
        Ok(effects)
    }

    /// Checks a vote's epoch, signer and signature; on `Err` nothing has changed.
    fn check_vote(&self, vote: &SignedVote) -> Result<(), Error> {
        let subject = &vote.subject;
        if subject.epoch != self.cfg.epoch {
            return Err(Error::WrongEpoch { message_epoch: subject.epoch, epoch: self.cfg.epoch });
        }
        if subject.kind == VoteKind::Nullify && subject.digest != Hash::ZERO {
            return Err(Error::NullifyWithDigest { view: subject.view });
        }
        let validators = self.cfg.validators.len();
        let key = self
            .cfg
            .validators
            .get(vote.signer as usize)
            .ok_or(Error::UnknownSigner { signer: vote.signer, validators })?;
        let message = subject.signing_bytes(&self.cfg.chain_id);
        if !self.verifier.verify(key, &message, &vote.signature) {
            return Err(Error::BadSignature { signer: vote.signer, view: subject.view });
        }
        Ok(())
    }

    /// Records a checked vote; a conflict with an earlier vote of the same signer is
    /// evidence (consensus.md, Evidence), reported once per signer and view.
    fn record(&mut self, vote: SignedVote) -> Vec<Effect> {
        let round = self.rounds.entry(vote.subject.view).or_default();
        match round.record(&vote) {
            Recorded::New | Recorded::Duplicate => Vec::new(),
            Recorded::Conflict { earlier } => {
                if round.accused.insert(vote.signer) {
                    vec![Effect::Evidence(Evidence { first: earlier, second: vote })]
                } else {
                    Vec::new()
                }
            }
        }
    }

    /// Forms a certificate on `subject` once a quorum of votes agrees on it.
    fn tally(&mut self, subject: &VoteSubject) -> Vec<Effect> {
        let Some(round) = self.rounds.get(&subject.view) else { return Vec::new() };
        if round.has_certificate(subject.kind) {
            return Vec::new();
        }
        match round.quorum_certificate(subject, self.cfg.validators.len(), self.cfg.quorum()) {
            Some(certificate) => self.on_quorum(certificate),
            None => Vec::new(),
        }
    }

    /// A certificate from the network: checked in full (signatures this engine has already
    /// checked as single votes are not checked twice), then handled like one formed here.
    fn on_certificate(&mut self, certificate: Certificate) -> Result<Vec<Effect>, Error> {
        let subject = certificate.subject;
        let view = subject.view;
        if subject.epoch != self.cfg.epoch {
            return Err(Error::WrongEpoch { message_epoch: subject.epoch, epoch: self.cfg.epoch });
        }
        if subject.kind == VoteKind::Nullify && subject.digest != Hash::ZERO {
            return Err(Error::NullifyWithDigest { view });
        }
        let same_kind = self.rounds.get(&view).and_then(|r| r.certificate(subject.kind)).map(|c| c.subject);
        if view <= self.finalized.view || same_kind == Some(subject) {
            return Ok(Vec::new());
        }
        let round = self.rounds.get(&view);
        let verifier = &self.verifier;
        certificate
            .verify_with(
                &self.cfg.chain_id,
                &self.cfg.validators,
                self.cfg.quorum(),
                |signer, key, message, signature| {
                    let known =
                        round.and_then(|r| r.vote(&subject, signer as u32)).is_some_and(|v| v.signature == *signature);
                    if known || verifier.verify(key, message, signature) {
                        Ok(())
                    } else {
                        Err(shutong_types::SignatureError::BadSignature(*key))
                    }
                },
            )
            .map_err(|source| Error::BadCertificate { view, source })?;
        // Another certificate of this kind for another block: evidence only, never counted.
        let mut effects = self.certificate_evidence(&certificate);
        if same_kind.is_none() {
            effects.extend(self.on_quorum(certificate));
        }
        Ok(effects)
    }

    /// Two certificates of one view that honest validators cannot both have signed (two
    /// notarizations or two finalizations of different blocks, or a nullification and a
    /// finalization): every validator that signed both equivocated, and each certificate
    /// holds its own signature of its vote, so each such pair is evidence (consensus.md,
    /// Evidence), reported once per signer and view.
    fn certificate_evidence(&mut self, new: &Certificate) -> Vec<Effect> {
        let Some(round) = self.rounds.get_mut(&new.subject.view) else { return Vec::new() };
        let conflicting: Vec<Certificate> =
            round.certificates().filter(|c| subjects_conflict(&c.subject, &new.subject)).cloned().collect();
        let mut effects = Vec::new();
        for old in conflicting {
            let theirs = certificate_votes(new);
            for first in certificate_votes(&old) {
                if let Some(second) = theirs.iter().find(|v| v.signer == first.signer)
                    && round.accused.insert(first.signer)
                {
                    effects.push(Effect::Evidence(Evidence { first, second: second.clone() }));
                }
            }
        }
        effects
    }

    /// Rules 3, 4 and 5: what a new certificate does.
    fn on_quorum(&mut self, certificate: Certificate) -> Vec<Effect> {
        let subject = certificate.subject;
        let view = subject.view;
        let round = self.rounds.entry(view).or_default();
        let mut effects = vec![Effect::BroadcastCertificate(certificate.clone())];
        match subject.kind {
            // Rule 3: mark d notarized, finalize it unless nullified, enter v + 1.
            VoteKind::Notarize => {
                round.notarization = Some(certificate.clone());
                if !round.own.nullify && round.own.finalize.is_none() {
                    round.own.finalize = Some(subject.digest);
                    match self.sign(self.subject(VoteKind::Finalize, view, subject.digest)) {
                        Ok(vote) => {
                            effects.push(Effect::PersistVote(vote.clone()));
                            effects.push(Effect::BroadcastVote(vote));
                            effects.extend(self.tally(&self.subject(VoteKind::Finalize, view, subject.digest)));
                        }
                        Err(failed) => effects.extend(failed),
                    }
                }
            }
            // Rule 4: the view is skipped; enter v + 1.
            VoteKind::Nullify => round.nullification = Some(certificate.clone()),
            // Rule 5: d and its ancestors are final; hand them to execution.
            VoteKind::Finalize => {
                round.finalization = Some(certificate.clone());
                if view > self.finalized.view {
                    effects.push(Effect::Finalized { view, digest: subject.digest, certificate: certificate.clone() });
                    self.finalized = Finalized { view, digest: subject.digest, certificate: Some(certificate.clone()) };
                    self.rounds = self.rounds.split_off(&view);
                }
            }
        }
        if view >= self.view {
            effects.extend(self.enter(view.saturating_add(1), Some(certificate)));
        } else {
            // An older certificate may complete what a pending proposal or the leader's
            // choice of parent was waiting for.
            effects.extend(self.retry_current());
        }
        effects
    }

    fn retry_current(&mut self) -> Vec<Effect> {
        if self.cfg.leader(self.view) == self.me { self.try_propose() } else { self.consider_proposal() }
    }

    /// Rule 7: `t_l` or `t_a` fired. Rule 7 also: every `t_r` while stuck, re-broadcast
    /// the nullify and the certificate that brought this validator into the view.
    fn on_timeout(&mut self, view: u64, timer: Timer) -> Vec<Effect> {
        if view != self.view {
            return Vec::new();
        }
        let round = self.rounds.entry(view).or_default();
        match timer {
            // Rule 2's "cancel t_l": a proposal has arrived, valid or not, so t_a decides.
            // A finalize vote in this view (possible after a restart into it) rules out a
            // nullify for good.
            Timer::Leader
                if round.proposal.is_none()
                    && round.own.notarize.is_none()
                    && !round.own.nullify
                    && round.own.finalize.is_none() =>
            {
                self.nullify(view)
            }
            Timer::Advance if !round.own.nullify && round.own.finalize.is_none() => self.nullify(view),
            Timer::Rebroadcast if round.own.nullify => {
                let mut effects: Vec<Effect> = round
                    .own
                    .signed
                    .iter()
                    .filter(|v| v.subject.kind == VoteKind::Nullify)
                    .cloned()
                    .map(Effect::BroadcastVote)
                    .collect();
                match self.entered_by.clone() {
                    Some(certificate) => effects.push(Effect::BroadcastCertificate(certificate)),
                    // After a restart the certificate that led here may be lost: re-send this
                    // validator's own votes since the last finalized view instead, from which
                    // the others can form it again.
                    None => effects.extend(
                        self.rounds
                            .range(self.finalized.view + 1..view)
                            .flat_map(|(_, r)| r.own.signed.iter().cloned())
                            .map(Effect::BroadcastVote),
                    ),
                }
                self.requested_certificates.clear();
                effects.extend(self.retry_current());
                let after_ms = self.cfg.timeouts.rebroadcast_ms;
                effects.push(Effect::ScheduleTimer { view, timer: Timer::Rebroadcast, after_ms });
                effects
            }
            _ => Vec::new(),
        }
    }

    /// Rule 7: vote to skip the view; from now on this validator never finalizes in it.
    fn nullify(&mut self, view: u64) -> Vec<Effect> {
        self.rounds.entry(view).or_default().own.nullify = true;
        let subject = self.subject(VoteKind::Nullify, view, Hash::ZERO);
        let vote = match self.sign(subject) {
            Ok(vote) => vote,
            Err(failed) => return failed,
        };
        let mut effects = vec![Effect::PersistVote(vote.clone()), Effect::BroadcastVote(vote)];
        let after_ms = self.cfg.timeouts.rebroadcast_ms;
        effects.push(Effect::ScheduleTimer { view, timer: Timer::Rebroadcast, after_ms });
        effects.extend(self.tally(&subject));
        effects
    }

    /// Rule 8: ask peers for missing certificates, each view at most once per view entered
    /// (and once per `t_r` while stuck).
    fn request_certificates(&mut self, views: Vec<u64>) -> Vec<Effect> {
        let fresh: Vec<u64> = views
            .into_iter()
            .filter(|v| *v > self.finalized.view)
            .filter(|v| {
                self.requested_certificates.len() < REQUESTED_VIEWS_MAX * 4 && self.requested_certificates.insert(*v)
            })
            .take(REQUESTED_VIEWS_MAX)
            .collect();
        if fresh.is_empty() { Vec::new() } else { vec![Effect::RequestCertificates { views: fresh }] }
    }

    fn subject(&self, kind: VoteKind, view: u64, digest: Hash) -> VoteSubject {
        VoteSubject { kind, epoch: self.cfg.epoch, view, digest }
    }

    /// Signs and records one of this validator's own votes, which the caller has just
    /// decided on. Callers emit `PersistVote` before any effect that sends it.
    ///
    /// If the signer fails (a token removed, its PIN locked), nothing was signed: the vote
    /// is skipped, which is always safe (a silent validator), and the decision undone, so
    /// a later timer of the view may still nullify. The host hears of it by the effect.
    ///
    /// At or below the vote floor nothing is signed either, and the decision is kept: this
    /// validator may have voted in the view before its log was rolled back, so it stays
    /// silent there, and a later view's vote is the next it signs.
    fn sign(&mut self, subject: VoteSubject) -> Result<SignedVote, Vec<Effect>> {
        if subject.view <= self.vote_floor {
            return Err(Vec::new());
        }
        let signed = subject.try_sign(&self.cfg.chain_id, &*self.signer);
        let round = self.rounds.entry(subject.view).or_default();
        match signed {
            Ok(signature) => {
                let vote = SignedVote { subject, signer: self.me, signature };
                round.record(&vote);
                round.own.signed.push(vote.clone());
                Ok(vote)
            }
            Err(err) => {
                match subject.kind {
                    VoteKind::Notarize => round.own.notarize = None,
                    VoteKind::Finalize => round.own.finalize = None,
                    VoteKind::Nullify => round.own.nullify = false,
                }
                Err(vec![Effect::SigningFailed { view: subject.view, kind: subject.kind, reason: err.to_string() }])
            }
        }
    }
}
