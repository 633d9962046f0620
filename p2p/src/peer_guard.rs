//! Per-peer limits and scoring (`docs/network.md`, "Limits and scoring").
//!
//! Only allowed peers (validators and configured full nodes) get past the handshake, but an
//! allowed peer may still be faulty or malicious (up to f validators are). Each peer may send
//! at most so many messages and bytes a second, and at most so many requests that make this
//! node read blocks from disk and answer with them; what is over is dropped unread. Each
//! misbehaviour costs the peer points (a message over its rate, bytes that do not decode, a
//! bad signature, a broken stream); points come back at one a second. A peer at
//! [`BAN_SCORE`] is disconnected and refused for [`BAN_FOR`], then let in again with a clean
//! score, so an honest peer that was briefly faulty is not shut out for good.

use libp2p::PeerId;
use shutong_consensus::wire::Kind;
use shutong_types::rate::TokenBucket;
use std::collections::HashMap;
use std::time::{Duration, Instant};

/// Messages a second from one peer, after a burst of twice as many.
pub const MESSAGES_PER_SECOND: f64 = 5_000.0;
/// Bytes a second from one peer (a few largest blocks), after a burst of twice as many.
pub const BYTES_PER_SECOND: f64 = 64.0 * 1024.0 * 1024.0;
/// Block, sync and batch requests a second from one peer, after a burst of twice as many:
/// each makes this node read from disk and send back up to a block's worth.
pub const REQUESTS_PER_SECOND: f64 = 50.0;
/// The score at which a peer is disconnected and refused.
pub const BAN_SCORE: f64 = -100.0;
/// How long a banned peer is refused.
pub const BAN_FOR: Duration = Duration::from_secs(60);
/// Points a second a peer's score recovers towards zero.
const RECOVERY_PER_SECOND: f64 = 1.0;

/// What a peer did wrong, and what it costs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Misbehaviour {
    /// A message over the peer's rate, dropped unread.
    OverRate,
    /// Bytes that are not a Shutong message.
    Undecodable,
    /// A vote, proposal or certificate whose signature does not verify.
    BadSignature,
    /// A well-formed message that breaks a protocol rule no honest peer breaks (a nullify
    /// naming a block, a proposal from a validator that does not lead its view).
    Invalid,
    /// A stream that failed on the peer's side: an oversized frame, a malformed prefix.
    BrokenStream,
}

impl Misbehaviour {
    pub fn points(self) -> f64 {
        match self {
            Misbehaviour::OverRate => 1.0,
            Misbehaviour::BrokenStream => 5.0,
            Misbehaviour::Invalid => 10.0,
            Misbehaviour::Undecodable | Misbehaviour::BadSignature => 20.0,
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Misbehaviour::OverRate => "over_rate",
            Misbehaviour::Undecodable => "undecodable",
            Misbehaviour::BadSignature => "bad_signature",
            Misbehaviour::Invalid => "invalid",
            Misbehaviour::BrokenStream => "broken_stream",
        }
    }
}

#[derive(Debug, Clone, Copy)]
struct PeerState {
    messages: TokenBucket,
    bytes: TokenBucket,
    requests: TokenBucket,
    score: f64,
    scored_at: Instant,
}

/// What to do with a message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    Accept,
    /// Over the peer's rate: drop it (the peer was charged).
    Drop,
}

/// The limits and scores of every peer that has sent something. Only allowed peers connect,
/// so the maps hold at most the allow list.
#[derive(Debug, Default)]
pub struct PeerGuard {
    peers: HashMap<PeerId, PeerState>,
    banned: HashMap<PeerId, Instant>,
}

/// Every rate allows a burst of twice as much.
fn burst(per_second: f64) -> f64 {
    2.0 * per_second
}

/// Whether a message is a request that makes the receiver read blocks or batches and answer
/// with them, by the kind its first byte names.
fn is_costly_request(bytes: &[u8]) -> bool {
    Kind::of_bytes(bytes).is_some_and(Kind::is_costly_request)
}

impl PeerGuard {
    fn state(&mut self, peer: PeerId, now: Instant) -> &mut PeerState {
        self.peers.entry(peer).or_insert_with(|| PeerState {
            messages: TokenBucket::full(burst(MESSAGES_PER_SECOND), now),
            bytes: TokenBucket::full(burst(BYTES_PER_SECOND), now),
            requests: TokenBucket::full(burst(REQUESTS_PER_SECOND), now),
            score: 0.0,
            scored_at: now,
        })
    }

    /// Counts a message from `peer` against its rates. Over a rate, the message is dropped
    /// and the peer charged; the caller then asks [`PeerGuard::should_ban`].
    pub fn admit(&mut self, peer: PeerId, bytes: &[u8], now: Instant) -> Verdict {
        let state = self.state(peer, now);
        let take = |bucket: &mut TokenBucket, amount: f64, rate: f64| bucket.take(amount, rate, burst(rate), now);
        let within = take(&mut state.messages, 1.0, MESSAGES_PER_SECOND)
            && take(&mut state.bytes, bytes.len() as f64, BYTES_PER_SECOND)
            && (!is_costly_request(bytes) || take(&mut state.requests, 1.0, REQUESTS_PER_SECOND));
        if within {
            Verdict::Accept
        } else {
            self.penalise(peer, Misbehaviour::OverRate, now);
            Verdict::Drop
        }
    }

    /// Charges `peer` for `what`.
    pub fn penalise(&mut self, peer: PeerId, what: Misbehaviour, now: Instant) {
        let state = self.state(peer, now);
        let recovered = RECOVERY_PER_SECOND * now.duration_since(state.scored_at).as_secs_f64();
        state.score = (state.score + recovered).min(0.0) - what.points();
        state.scored_at = now;
    }

    /// The peer's score now (0 is clean; lower is worse).
    pub fn score(&self, peer: &PeerId, now: Instant) -> f64 {
        self.peers
            .get(peer)
            .map_or(0.0, |s| (s.score + RECOVERY_PER_SECOND * now.duration_since(s.scored_at).as_secs_f64()).min(0.0))
    }

    /// If `peer` has reached the ban score: bans it until `now + BAN_FOR` and returns true.
    pub fn should_ban(&mut self, peer: PeerId, now: Instant) -> bool {
        if self.banned.contains_key(&peer) || self.score(&peer, now) > BAN_SCORE {
            return false;
        }
        self.banned.insert(peer, now + BAN_FOR);
        self.peers.remove(&peer);
        true
    }

    pub fn is_banned(&self, peer: &PeerId) -> bool {
        self.banned.contains_key(peer)
    }

    /// The peers whose ban has ended, forgotten here; the caller lets them in again.
    pub fn expired_bans(&mut self, now: Instant) -> Vec<PeerId> {
        let ended: Vec<PeerId> = self.banned.iter().filter(|(_, until)| **until <= now).map(|(p, _)| *p).collect();
        for peer in &ended {
            self.banned.remove(peer);
        }
        ended
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_flood_is_dropped_past_its_burst_and_the_peer_is_banned_then_let_back() {
        let mut guard = PeerGuard::default();
        let (flooder, honest) = (PeerId::random(), PeerId::random());
        let t0 = Instant::now();
        let burst = (2.0 * MESSAGES_PER_SECOND) as usize;
        assert!((0..burst).all(|_| guard.admit(flooder, &[0, 0], t0) == Verdict::Accept));
        let dropped = (0..200).filter(|_| guard.admit(flooder, &[0, 0], t0) == Verdict::Drop).count();
        assert_eq!(dropped, 200);
        assert_eq!(guard.admit(honest, &[0, 0], t0), Verdict::Accept, "another peer has its own rate");
        assert!(guard.should_ban(flooder, t0));
        assert!(guard.is_banned(&flooder) && !guard.should_ban(flooder, t0), "banned once");
        assert!(!guard.should_ban(honest, t0));
        assert!(guard.expired_bans(t0 + BAN_FOR / 2).is_empty());
        assert_eq!(guard.expired_bans(t0 + BAN_FOR), vec![flooder]);
        assert_eq!(guard.score(&flooder, t0 + BAN_FOR), 0.0, "let back with a clean score");
    }

    #[test]
    fn costly_requests_have_a_lower_rate_of_their_own() {
        let mut guard = PeerGuard::default();
        let peer = PeerId::random();
        let t0 = Instant::now();
        let burst = (2.0 * REQUESTS_PER_SECOND) as usize;
        let sync_request = [Kind::SyncRequest.tag(), 0, 0];
        assert!((0..burst).all(|_| guard.admit(peer, &sync_request, t0) == Verdict::Accept));
        assert_eq!(guard.admit(peer, &sync_request, t0), Verdict::Drop);
        assert_eq!(guard.admit(peer, &[0, 1], t0), Verdict::Accept, "a vote still passes");
        let later = t0 + Duration::from_millis(100);
        assert_eq!(guard.admit(peer, &sync_request, later), Verdict::Accept, "five more a tenth of a second later");
    }

    #[test]
    fn points_come_back_with_time_so_rare_faults_never_ban() {
        let mut guard = PeerGuard::default();
        let peer = PeerId::random();
        let t0 = Instant::now();
        for i in 0..20u64 {
            // One undecodable message every 30 s costs 20 and recovers 30.
            let at = t0 + Duration::from_secs(30 * i);
            guard.penalise(peer, Misbehaviour::Undecodable, at);
            assert!(!guard.should_ban(peer, at), "banned after {i} rare faults");
        }
        for _ in 0..5 {
            guard.penalise(peer, Misbehaviour::BadSignature, t0 + Duration::from_secs(600));
        }
        assert!(guard.should_ban(peer, t0 + Duration::from_secs(600)), "five bad signatures at once ban");
    }
}
