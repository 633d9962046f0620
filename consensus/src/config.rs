//! Static parameters of one epoch and the timeouts of the protocol.

use shutong_types::PublicKey;

/// How far ahead of its current view a validator keeps votes and proposals. Anything further
/// ahead is not stored; the validator asks for the certificate that would let it catch up.
pub const VIEW_LOOKAHEAD: u64 = 16;

/// Views whose certificates are requested in one [`crate::Effect::RequestCertificates`].
pub const REQUESTED_VIEWS_MAX: usize = 32;

/// The protocol's timers (consensus.md, rules 1 and 7), in milliseconds of the host's clock.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Timeouts {
    /// `t_l`: how long to wait for the leader's proposal (≈ 2Δ).
    pub leader_ms: u64,
    /// `t_a`: how long to wait for the view to end by a certificate (≈ 3Δ).
    pub advance_ms: u64,
    /// `t_r`: how often a validator stuck in a view re-broadcasts its nullify.
    pub rebroadcast_ms: u64,
    /// Backoff: after k views in a row ended by nullification, `t_l` and `t_a` are
    /// multiplied by `2^min(k, backoff_exponent_max)`; a notarized view resets k.
    pub backoff_exponent_max: u32,
}

impl Default for Timeouts {
    fn default() -> Timeouts {
        Timeouts { leader_ms: 1_000, advance_ms: 1_500, rebroadcast_ms: 1_000, backoff_exponent_max: 3 }
    }
}

impl Timeouts {
    /// `t_l` and `t_a` after `streak` views in a row ended by nullification.
    pub fn backed_off(&self, streak: u32) -> (u64, u64) {
        let factor = 1u64 << streak.min(self.backoff_exponent_max).min(16);
        (self.leader_ms.saturating_mul(factor), self.advance_ms.saturating_mul(factor))
    }
}

/// Static parameters of one epoch.
#[derive(Debug, Clone)]
pub struct Config {
    pub chain_id: String,
    pub epoch: u64,
    /// The epoch's validators, in order; a validator's index is its position here.
    pub validators: Vec<PublicKey>,
    pub timeouts: Timeouts,
}

impl Config {
    /// `n − f` with `f = ⌊(n − 1) / 3⌋` (consensus.md, Setting).
    pub fn quorum(&self) -> usize {
        shutong_types::quorum(self.validators.len())
    }

    /// `f = ⌊(n − 1) / 3⌋`: the number of faulty validators the epoch tolerates.
    pub fn faults_max(&self) -> usize {
        self.validators.len().saturating_sub(1) / 3
    }

    /// Round-robin leader: view `v` is led by validator `v mod n` (consensus.md, Setting).
    /// Round-robin rather than a hash of the view, so that every window of n views has every
    /// validator lead once and at most f of them are faulty leaders.
    pub fn leader(&self, view: u64) -> u32 {
        (view % self.validators.len().max(1) as u64) as u32
    }
}
