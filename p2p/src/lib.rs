//! Shutong's peer-to-peer network: the only crate that names libp2p. The swarm gated to known peers, the network task, per-peer limits and scores, and traffic counters.
//!
//! The driver and the network task meet through two small seams: the driver sends
//! [`network::Command`]s through a [`network::NetHandle`], and the network hands each
//! incoming message to an [`network::Inbox`], which the node implements for the driver's
//! mailbox. Neither names the other's types.

#![forbid(unsafe_code)]

pub mod network;
pub mod peer_guard;
pub mod swarm;
pub mod traffic;

pub use libp2p::PeerId;
pub use network::{Command, Inbound, Inbox, NetError, NetHandle, NetStats, Peer};
pub use swarm::peer_id;
