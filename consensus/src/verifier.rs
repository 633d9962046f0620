//! Signature checking, behind a trait so that a host can share one check of a signature
//! among the many places that see it.

use shutong_types::{PublicKey, Signature};
use std::fmt::Debug;

/// Checks one ed25519 signature.
pub trait Verifier: Debug {
    /// Whether `signature` is `key`'s signature on `message` (strict ed25519).
    fn verify(&self, key: &PublicKey, message: &[u8], signature: &Signature) -> bool;
}

/// Checks every signature, each time.
#[derive(Debug, Clone, Copy, Default)]
pub struct Ed25519;

impl Verifier for Ed25519 {
    fn verify(&self, key: &PublicKey, message: &[u8], signature: &Signature) -> bool {
        key.verify(message, signature).is_ok()
    }
}

impl<V: Verifier + ?Sized> Verifier for std::sync::Arc<V> {
    fn verify(&self, key: &PublicKey, message: &[u8], signature: &Signature) -> bool {
        (**self).verify(key, message, signature)
    }
}
