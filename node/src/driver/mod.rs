//! The consensus driver: carries out the consensus engine's effects against storage, the
//! mempool, the executor and the network, checks other leaders' blocks before the engine
//! may vote for them, builds this validator's own, and fetches blocks it lacks.
//!
//! It is an actor on its own thread (execution is synchronous CPU work), in four parts:
//!
//! - [`ingress`]: its bounded mailbox ([`Mailbox`], [`Message`]), which the network
//!   delivers to without naming the driver (`shutong_p2p::Inbox`);
//! - [`actor`]: the event loop ([`Driver`]): a message, then [`Driver::tick`], which fires
//!   the timers that are due, seals batches, proposes when paced to, and retries block sync;
//! - [`state`]: the bookkeeping as synchronous parts with their bounds (timers, blocks held,
//!   batches held, what waits), unit-tested without a network, a clock or an engine;
//! - this module: the bounds.
//!
//! Time comes only from a [`crate::clock::Clock`] and messages leave only through a
//! [`crate::chain::NetSink`], so a test drives the actor with a manual clock and a recorder
//! (`actor::tests`), and `clippy.toml` forbids `Instant::now` and `SystemTime::now` here.
//!
//! The host contract of `shutong_consensus` holds here: a vote is synced to the write-ahead
//! log before any later effect (so before it can be sent), and finalized blocks are executed
//! and committed in height order.
//!
//! Blocks that are proposed but not yet final are held in memory, executed on demand on top
//! of their uncommitted ancestors (a header carries the state root after its parent, so a
//! child can only be checked, or built, once its parent has run). A block is committed when
//! a finalization certificate covers it or a descendant.
//!
//! A node that lacks blocks gets them two ways. A proposal whose parent it missed makes it
//! ask the proposer for the parent by digest. A finalization it cannot connect to its tip
//! (it was down, or partitioned) makes it ask peers, in turn, for committed blocks from its
//! tip on; each answer is linked to the tip by hash and made final by a certificate it
//! carries or by the finalization the engine already holds (`crate::chain::linked_run`,
//! `crate::chain::check_finalization`, which the full node uses too).

#![deny(clippy::disallowed_methods)]

pub mod actor;
pub mod ingress;
pub mod state;

pub use actor::{Driver, InvalidBlock};
pub use ingress::{MAILBOX_MAX, Mailbox, Message, mailbox};

use std::time::Duration;

/// The longest the driver sleeps without looking at its timers.
pub const IDLE_WAKE: Duration = Duration::from_millis(500);
/// How far ahead of this node's clock a proposal's timestamp may be.
pub const CLOCK_DRIFT_MS: u64 = 5_000;
/// Bounds on the blocks held in memory that are not committed yet.
pub const HELD_BLOCKS_MAX: usize = 2_048;
pub const HELD_BYTES_MAX: usize = 256 << 20;
/// Bounds on proposals waiting for their parent or batches, and on digests asked for.
pub const WAITING_MAX: usize = 64;
pub const WANTED_MAX: usize = 1_024;
/// How many ancestors of a missing block are asked for with it.
pub const ANCESTORS_ASKED: u32 = 16;
/// How often block sync asks again while a finalized block cannot be connected to the tip.
pub const SYNC_RETRY: Duration = Duration::from_millis(500);
/// How soon a proposal whose parent is missing is tried again.
pub const PARENT_RETRY: Duration = Duration::from_millis(100);
/// How often transactions clients submitted here are sealed into a batch and pushed.
pub const BATCH_INTERVAL: Duration = Duration::from_millis(20);
/// How often the transactions clients submitted here that are still pending are looked at
/// to be pushed again (`crate::mempool::Mempool::resend_due`: after 2, 4, 8, ... of these).
pub const RESEND_EVERY: Duration = Duration::from_secs(1);
/// Bounds on the batches held: by bytes, and by age in committed blocks.
pub const BATCHES_BYTES_MAX: usize = 256 << 20;
pub const BATCH_AGE_MAX: u64 = 256;
/// Room left in a block for its header and framing when transactions are selected.
pub const BLOCK_ENVELOPE_BYTES: usize = 64 << 10;
