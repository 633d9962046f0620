//! The driver's mailbox: what other parts of the node hand the driver, and how.
//!
//! The mailbox is bounded ([`MAILBOX_MAX`]). The network delivers without waiting: when the
//! mailbox is full its message is dropped and counted (`NetStats::dropped_inbound`), which
//! consensus tolerates (votes are re-sent, certificates and blocks asked for again). A
//! shutdown waits for room, so it is never lost.

use shutong_p2p::Inbound;
use std::sync::mpsc::{Receiver, SyncSender, TrySendError};

/// How many messages may wait for the driver.
pub const MAILBOX_MAX: usize = 8_192;

/// What reaches the driver.
#[derive(Debug)]
pub enum Message {
    /// A peer's message, still encoded.
    Net(Inbound),
    /// Stop after the message being handled.
    Shutdown,
}

/// The sending side of the driver's mailbox.
#[derive(Debug, Clone)]
pub struct Mailbox(SyncSender<Message>);

/// A new mailbox and the receiving side the driver (or the full node) runs on.
pub fn mailbox() -> (Mailbox, Receiver<Message>) {
    let (sender, receiver) = std::sync::mpsc::sync_channel(MAILBOX_MAX);
    (Mailbox(sender), receiver)
}

impl Mailbox {
    /// Asks the driver to stop, waiting for room in the mailbox.
    pub fn shutdown(&self) {
        // A driver that is gone has stopped already.
        let _ = self.0.send(Message::Shutdown);
    }
}

impl shutong_p2p::Inbox for Mailbox {
    fn deliver(&self, inbound: Inbound) -> bool {
        match self.0.try_send(Message::Net(inbound)) {
            Ok(()) => true,
            Err(TrySendError::Full(_) | TrySendError::Disconnected(_)) => false,
        }
    }
}
