//! What the consensus thread runs: a validator's [`Driver`] or a full node's [`Follower`],
//! and the switch between them when a validator-set change adds or removes this node's key.
//!
//! A full node whose key enters the set at an activation height becomes a validator as it
//! commits the block before that height ([`Follower::joined`]): its engine starts on that
//! block, in the new epoch, with the validators that stayed. A validator whose key leaves
//! the set stops voting after the last block of its epoch and follows the chain as a full
//! node ([`Driver::retired`]). Neither needs a restart, and a restart picks the same role
//! from the committed state.

use crate::clock::Clock;
use crate::config::ConsensusConfig;
use crate::driver::{Driver, IDLE_WAKE, Message};
use crate::follower::Follower;
use shutong_p2p::{Inbound, PeerId};
use std::sync::Arc;
use std::sync::mpsc::{Receiver, RecvTimeoutError};
use std::time::Instant;

/// The node's part in consensus now.
#[derive(Debug)]
pub enum Role {
    Validator(Box<Driver>),
    Follower(Box<Follower>),
}

/// What a switch needs beyond the running part: the consensus settings a new validator
/// runs with, and the peers a new full node asks for blocks.
#[derive(Debug, Clone)]
pub struct Switch {
    pub consensus: ConsensusConfig,
    pub sources: Vec<PeerId>,
}

impl Role {
    pub fn is_validator(&self) -> bool {
        matches!(self, Role::Validator(_))
    }

    /// Handles one peer's message.
    pub fn on_message(&mut self, inbound: Inbound) {
        match self {
            Role::Validator(driver) => driver.on_message(inbound),
            Role::Follower(follower) => follower.on_message(inbound),
        }
    }

    /// Does what is due at the clock's time.
    pub fn tick(&mut self) {
        match self {
            Role::Validator(driver) => driver.tick(),
            Role::Follower(follower) => follower.tick(),
        }
    }

    /// When something is next due (a validator with nothing due looks again after
    /// [`IDLE_WAKE`]).
    pub fn next_wake(&self, now: Instant) -> Instant {
        match self {
            Role::Validator(driver) => driver.next_wake().unwrap_or(now + IDLE_WAKE).min(now + IDLE_WAKE),
            Role::Follower(follower) => follower.next_wake(),
        }
    }

    /// Whether a disk failure stopped this node (`crate::disk`).
    pub fn stopped(&self) -> bool {
        match self {
            Role::Validator(driver) => driver.stopped(),
            Role::Follower(follower) => follower.stopped(),
        }
    }

    /// The role the committed state now calls for: a validator removed from the set
    /// becomes a full node, a full node added to it a validator.
    pub fn settle(self, switch: &Switch) -> Role {
        match self {
            Role::Validator(driver) if driver.retired() => {
                Role::Follower(Box::new(driver.into_follower(switch.sources.clone())))
            }
            Role::Follower(follower) if follower.joined() => match follower.into_driver(switch.consensus.clone()) {
                Ok(driver) => Role::Validator(Box::new(driver)),
                Err(follower) => Role::Follower(follower),
            },
            other => other,
        }
    }

    /// Runs until [`Message::Shutdown`] arrives, every sender is dropped, or the disk fails.
    pub fn run(mut self, mailbox: Receiver<Message>, clock: Arc<dyn Clock>, switch: Switch) {
        loop {
            let now = clock.now();
            match mailbox.recv_timeout(self.next_wake(now).saturating_duration_since(now)) {
                Ok(Message::Net(inbound)) => self.on_message(inbound),
                Err(RecvTimeoutError::Timeout) => {}
                Ok(Message::Shutdown) | Err(RecvTimeoutError::Disconnected) => return,
            }
            if self.stopped() {
                tracing::error!("the node stopped: the disk failed");
                return;
            }
            self.tick();
            self = self.settle(&switch);
        }
    }
}
