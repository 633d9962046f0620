//! One view's state at one validator: the leader's proposal, the votes received, the
//! certificates known, and what this validator itself has signed.

use crate::message::{Proposal, SignedVote};
use shutong_types::{Certificate, Hash, Signature, VoteKind, VoteSubject};
use std::collections::{BTreeMap, BTreeSet};

/// What this validator signed in one view.
#[derive(Debug, Clone, Default)]
pub(crate) struct OwnVotes {
    pub notarize: Option<Hash>,
    pub nullify: bool,
    pub finalize: Option<Hash>,
    /// The signed votes, to re-broadcast.
    pub signed: Vec<SignedVote>,
}

/// How a received vote relates to what the round already holds.
#[derive(Debug)]
pub(crate) enum Recorded {
    /// Counted.
    New,
    /// The same vote again: nothing to do.
    Duplicate,
    /// Conflicts with `earlier` from the same signer. A nullify next to a finalize is counted
    /// anyway, each in its own tally; a second notarize or finalize is not.
    Conflict { earlier: SignedVote },
}

#[derive(Debug, Default)]
pub(crate) struct Round {
    /// The first proposal received from the view's leader.
    pub proposal: Option<Proposal>,
    /// Set once the proposal was found invalid (rule 6): never voted for.
    pub proposal_invalid: bool,
    pub own: OwnVotes,
    notarizes: BTreeMap<u32, SignedVote>,
    nullifies: BTreeMap<u32, SignedVote>,
    finalizes: BTreeMap<u32, SignedVote>,
    pub notarization: Option<Certificate>,
    pub nullification: Option<Certificate>,
    pub finalization: Option<Certificate>,
    /// Signers already reported with evidence in this view: one report each is enough.
    pub accused: BTreeSet<u32>,
}

impl Round {
    /// Records a vote whose signature the caller has checked.
    pub fn record(&mut self, vote: &SignedVote) -> Recorded {
        let signer = vote.signer;
        let conflict = match vote.subject.kind {
            VoteKind::Notarize => self.notarizes.get(&signer).cloned(),
            VoteKind::Finalize => self.finalizes.get(&signer).cloned().or_else(|| self.nullifies.get(&signer).cloned()),
            VoteKind::Nullify => self.nullifies.get(&signer).cloned().or_else(|| self.finalizes.get(&signer).cloned()),
        };
        if let Some(earlier) = conflict {
            if earlier == *vote {
                return Recorded::Duplicate;
            }
            if earlier.subject.kind == vote.subject.kind {
                // Same kind, other digest (or the same vote signed twice differently): keep
                // the first; the second is evidence only.
                return Recorded::Conflict { earlier };
            }
            // A nullify next to a finalize: both are counted, each in its own tally.
            self.votes_mut(vote.subject.kind).insert(signer, vote.clone());
            return Recorded::Conflict { earlier };
        }
        self.votes_mut(vote.subject.kind).insert(signer, vote.clone());
        Recorded::New
    }

    fn votes_mut(&mut self, kind: VoteKind) -> &mut BTreeMap<u32, SignedVote> {
        match kind {
            VoteKind::Notarize => &mut self.notarizes,
            VoteKind::Nullify => &mut self.nullifies,
            VoteKind::Finalize => &mut self.finalizes,
        }
    }

    fn votes(&self, kind: VoteKind) -> &BTreeMap<u32, SignedVote> {
        match kind {
            VoteKind::Notarize => &self.notarizes,
            VoteKind::Nullify => &self.nullifies,
            VoteKind::Finalize => &self.finalizes,
        }
    }

    /// The vote `signer` cast on exactly `subject`, if this round holds it.
    pub fn vote(&self, subject: &VoteSubject, signer: u32) -> Option<&SignedVote> {
        self.votes(subject.kind).get(&signer).filter(|v| v.subject == *subject)
    }

    /// A certificate on `subject` if at least `quorum` recorded votes agree on it.
    pub fn quorum_certificate(&self, subject: &VoteSubject, validators: usize, quorum: usize) -> Option<Certificate> {
        let agreeing: Vec<(usize, Signature)> = self
            .votes(subject.kind)
            .values()
            .filter(|v| v.subject == *subject)
            .map(|v| (v.signer as usize, v.signature))
            .collect();
        (agreeing.len() >= quorum).then(|| Certificate::new(*subject, validators, &agreeing))
    }

    /// The block this view notarized (a finalization implies a notarization).
    pub fn notarized_digest(&self) -> Option<Hash> {
        self.notarization.as_ref().or(self.finalization.as_ref()).map(|c| c.subject.digest)
    }

    /// Whether this round holds a certificate of `kind`.
    pub fn has_certificate(&self, kind: VoteKind) -> bool {
        match kind {
            VoteKind::Notarize => self.notarization.is_some(),
            VoteKind::Nullify => self.nullification.is_some(),
            VoteKind::Finalize => self.finalization.is_some(),
        }
    }

    /// The certificate of `kind` this round holds.
    pub fn certificate(&self, kind: VoteKind) -> Option<&Certificate> {
        match kind {
            VoteKind::Notarize => self.notarization.as_ref(),
            VoteKind::Nullify => self.nullification.as_ref(),
            VoteKind::Finalize => self.finalization.as_ref(),
        }
    }

    /// Every certificate the round holds.
    pub fn certificates(&self) -> impl Iterator<Item = &Certificate> {
        [&self.finalization, &self.notarization, &self.nullification].into_iter().flatten()
    }

    /// Drops the votes of other validators once the view is settled, keeping certificates,
    /// own votes, and the finalizes that may still form a finalization.
    pub fn compact(&mut self) {
        self.notarizes.clear();
        self.nullifies.clear();
        if self.finalization.is_some() {
            self.finalizes.clear();
        }
    }
}
