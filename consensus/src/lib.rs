//! Shutong's consensus engine as a pure state machine: inputs in, effects out.
//!
//! The protocol is Simplex-style BFT (Chan & Pass 2023) as written in `docs/consensus.md`:
//! views with a round-robin leader, `Notarize` / `Nullify` / `Finalize` votes, certificates
//! of `q = n − f` ed25519 signatures with a signer bitmap. The engine owns no clock, socket,
//! thread or disk: the host (the node's consensus driver, or the simulation harness) feeds
//! it [`Input`]s and carries out the [`Effect`]s it returns.
//!
//! # The host contract
//!
//! 1. Effects are carried out **in order**. [`Effect::PersistVote`] must be durable
//!    (written and synced to the write-ahead log) before any later effect of the same step
//!    is carried out: a vote is never sent before it is durable. After a crash the host
//!    passes the logged votes back in [`Input::Start`], so that a restarted validator never
//!    signs a vote that conflicts with one it signed before.
//! 2. A proposal reaches the engine as [`Input::Proposal`] only after the host has checked
//!    the block's contents (rule 6, the host's part: the digest is the block's hash, the
//!    parent and parent view are the block's, height is the parent's plus one, the
//!    timestamp is after the parent's and not too far ahead of the local clock, every batch
//!    is available and well formed, sizes are within limits). Missing ancestors are fetched
//!    by the host (rule 8) before it passes the proposal on.
//! 3. [`Effect::ScheduleTimer`] is answered with [`Input::Timeout`]; late timeouts are
//!    harmless. [`Effect::RequestProposal`] is answered with [`Input::Propose`].
//! 4. [`Effect::Finalized`] hands a block (and, implicitly, all its ancestors) to
//!    execution; finalizations arrive in increasing view order, each once.
//! 5. Peer answers to [`Effect::RequestCertificates`] come back as [`Input::Certificate`];
//!    a peer's request is answered from [`Engine::certificates`].
//!
//! # The rules, and where they live
//!
//! - Setting (leader, quorum): [`Config::leader`], [`Config::quorum`].
//! - Rule 1, entering a view: `Engine::enter` (timers with backoff, the leader's request).
//! - Rule 2, notarize the first valid proposal: `Engine::consider_proposal`; a second
//!   proposal from the leader is evidence, never voted for: `Engine::on_proposal`.
//! - Rule 3, on a notarization: finalize unless nullified, enter `v + 1`: `Engine::on_quorum`.
//! - Rule 4, on a nullification: enter `v + 1`: `Engine::on_quorum`.
//! - Rule 5, on a finalization: hand the chain to execution: `Engine::on_quorum`.
//! - Rule 6, proposal validity: the leader's choice of parent in `Engine::best_parent`, the
//!   check in `Engine::ancestry`; the block's contents are checked by the host (above).
//! - Rule 7, timeouts and re-broadcast: `Engine::on_timeout`, `Engine::nullify`.
//! - Rule 8, missing certificates: `Engine::request_certificates`, [`Engine::certificates`].
//! - Evidence: `Engine::record` emits [`Effect::Evidence`] for two conflicting votes.
//!
//! What an honest validator never does (two notarizes or two finalizes for different
//! digests in one view, or a nullify and a finalize in one view) is guarded by the
//! per-view record of its own votes (`round::OwnVotes`), which survives a restart through
//! the write-ahead log. The simulation in `shutong-testnet` checks all of it under faults.
//!
//! # Bounds
//!
//! Votes and proposals more than [`VIEW_LOOKAHEAD`] views ahead are not stored (the
//! validator asks for the certificate that would let it catch up instead); each signer
//! counts once per vote kind and view; votes of views more than [`VIEW_LOOKAHEAD`] behind
//! are dropped, keeping certificates; everything at or below the last finalized view is
//! dropped.

#![forbid(unsafe_code)]

mod config;
mod engine;
mod message;
mod round;
mod verifier;
pub mod wire;

pub use config::{Config, REQUESTED_VIEWS_MAX, Timeouts, VIEW_LOOKAHEAD};
pub use engine::Engine;
pub use message::{Effect, Error, Evidence, Finalized, Input, MESSAGE_VIEWS_MAX, Message, Proposal, SignedVote, Timer};
pub use verifier::{Ed25519, Verifier};

#[cfg(test)]
mod tests;
