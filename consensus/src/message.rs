//! What goes into the engine and what comes out: inputs, effects, errors, and the wire form
//! of the consensus messages validators exchange.

use shutong_codec::{Reader, write};
use shutong_types::block::VoteSubject;
use shutong_types::{Certificate, CertificateError, Decode, DecodeError, Encode, Hash, Signature, VoteKind};

/// A validator's signed vote.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SignedVote {
    pub subject: VoteSubject,
    pub signer: u32,
    pub signature: Signature,
}

impl Encode for SignedVote {
    fn encode_to(&self, out: &mut Vec<u8>) {
        self.subject.encode_to(out);
        write::u32(out, self.signer);
        self.signature.encode_to(out);
    }
}

impl Decode for SignedVote {
    fn decode_from(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        Ok(SignedVote {
            subject: VoteSubject::decode_from(r)?,
            signer: r.u32()?,
            signature: Signature::decode_from(r)?,
        })
    }
}

/// What the engine needs to know of a proposed block: its digest, and its parent with the
/// view the parent was proposed in. The host has checked that the block named by `digest`
/// really has this parent, and that its contents are valid (rule 6, the host's part).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Proposal {
    pub view: u64,
    pub digest: Hash,
    pub parent: Hash,
    pub parent_view: u64,
}

/// The last finalized block a validator holds, and the certificate that finalized it
/// (`None` for genesis, final by definition).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Finalized {
    pub view: u64,
    pub digest: Hash,
    pub certificate: Option<Certificate>,
}

/// The engine's timers (consensus.md, rules 1 and 7).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Timer {
    /// `t_l`: the leader's proposal is late.
    Leader,
    /// `t_a`: the view has not ended.
    Advance,
    /// `t_r`: re-broadcast this validator's nullify.
    Rebroadcast,
}

/// What the host tells the engine.
#[derive(Debug, Clone)]
pub enum Input {
    /// (Re)start on top of the last finalized block, with this validator's own votes from its
    /// write-ahead log, so that a restart never signs a vote that conflicts with one it
    /// signed before the crash. `vote_floor` is the signing high-water mark when the log
    /// is older than it (a restored database): no vote at or below that view is signed, as
    /// the log no longer says which were.
    Start { finalized: Finalized, own_votes: Vec<SignedVote>, vote_floor: u64 },
    /// The block this validator built after [`Effect::RequestProposal`] for `view`.
    Propose { view: u64, digest: Hash },
    /// A leader's proposal from the network, with the leader's own notarize vote on it.
    Proposal { proposal: Proposal, vote: SignedVote },
    /// Another validator's vote.
    Vote(SignedVote),
    /// A certificate from the network.
    Certificate(Certificate),
    /// A timer set by [`Effect::ScheduleTimer`] fired.
    Timeout { view: u64, timer: Timer },
}

/// Two conflicting votes signed by one validator in one view: a self-contained proof of
/// misbehaviour (consensus.md, Evidence).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Evidence {
    pub first: SignedVote,
    pub second: SignedVote,
}

/// What the engine asks the host to do, in order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Effect {
    /// Make the vote durable (written and synced) before carrying out any later effect.
    PersistVote(SignedVote),
    /// Send the vote to every other validator.
    BroadcastVote(SignedVote),
    /// Send this validator's proposal (the block it built, with this notarize vote on it) to
    /// every other validator.
    BroadcastProposal(SignedVote),
    /// Send the certificate to every other validator.
    BroadcastCertificate(Certificate),
    /// Answer with [`Input::Timeout`] after `after_ms`, unless the engine has left `view`
    /// by then (a late timeout is harmless: the engine ignores it).
    ScheduleTimer { view: u64, timer: Timer, after_ms: u64 },
    /// This validator leads `view`: build a block on `parent` (proposed in `parent_view`) and
    /// answer with [`Input::Propose`].
    RequestProposal { view: u64, parent: Hash, parent_view: u64 },
    /// Ask peers for the certificates they hold for these views (rule 8); their answers come
    /// back as [`Input::Certificate`].
    RequestCertificates { views: Vec<u64> },
    /// `digest`, proposed in `view`, and all its ancestors are final. Finalizations arrive in
    /// increasing view order; ancestors that were not finalized one by one are final too and
    /// the host commits them first, in height order.
    Finalized { view: u64, digest: Hash, certificate: Certificate },
    /// Another validator signed two conflicting votes.
    Evidence(Evidence),
    /// This validator's signer failed, so it did not vote `kind` in `view`: the host
    /// reports it in its health (the engine goes on, silent until the signer works again).
    SigningFailed { view: u64, kind: VoteKind, reason: String },
}

/// Why an input was refused. The engine's state is unchanged when it returns one.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Error {
    #[error("the engine has not been started")]
    NotStarted,
    #[error("message is for epoch {message_epoch}, the engine is in epoch {epoch}")]
    WrongEpoch { message_epoch: u64, epoch: u64 },
    #[error("vote from signer {signer}, but there are only {validators} validators")]
    UnknownSigner { signer: u32, validators: usize },
    #[error("vote of signer {signer} in view {view} does not verify")]
    BadSignature { signer: u32, view: u64 },
    #[error("nullify vote or certificate for view {view} names a block digest")]
    NullifyWithDigest { view: u64 },
    #[error("proposal for view {view} is signed by validator {signer}, but the leader is {leader}")]
    NotLeader { view: u64, signer: u32, leader: u32 },
    #[error("proposal for view {view} comes with a vote that is not its leader's notarize of it")]
    ProposalVoteMismatch { view: u64 },
    #[error("proposal for view {view} names a parent in view {parent_view}, not an earlier one")]
    ParentNotEarlier { view: u64, parent_view: u64 },
    #[error("no block was requested for view {view}")]
    NotRequested { view: u64 },
    #[error("certificate for view {view} is invalid: {source}")]
    BadCertificate { view: u64, source: CertificateError },
}

/// Bound on the views in one certificate request.
pub const MESSAGE_VIEWS_MAX: u32 = crate::config::REQUESTED_VIEWS_MAX as u32;

/// A consensus message between validators, in its wire form. Proposals travel with their
/// block, in the host's own envelope.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Message {
    Vote(SignedVote),
    Certificate(Certificate),
    CertificateRequest { views: Vec<u64> },
}

impl Encode for Message {
    fn encode_to(&self, out: &mut Vec<u8>) {
        match self {
            Message::Vote(vote) => {
                write::u8(out, 0);
                vote.encode_to(out);
            }
            Message::Certificate(certificate) => {
                write::u8(out, 1);
                certificate.encode_to(out);
            }
            Message::CertificateRequest { views } => {
                write::u8(out, 2);
                write::seq(out, views, |out, view| write::u64(out, *view));
            }
        }
    }
}

impl Decode for Message {
    fn decode_from(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        match r.u8()? {
            0 => Ok(Message::Vote(SignedVote::decode_from(r)?)),
            1 => Ok(Message::Certificate(Certificate::decode_from(r)?)),
            2 => Ok(Message::CertificateRequest { views: r.seq("message.views", MESSAGE_VIEWS_MAX, |r| r.u64())? }),
            tag => Err(DecodeError::InvalidTag { what: "consensus message", tag }),
        }
    }
}
