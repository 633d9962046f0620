//! Signers: whatever holds a key and signs with it. A key file's key ([`Keypair`]) signs in
//! memory and never fails; a key in a hardware token or cipher machine signs through its
//! module and can fail (the token removed, the PIN locked, the module gone), so signing is
//! fallible and every caller says what a failure means for it. The node's consensus engine
//! skips the vote (always safe); the SDK and the CLI return the error.

use crate::keys::{AccountId, Keypair, PublicKey, Signature};
use std::sync::Arc;

/// Why a signer could not sign: the key it holds and what its module said.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("the signer of key {key} could not sign: {reason}")]
pub struct SignerError {
    pub key: PublicKey,
    pub reason: String,
}

/// A key that signs messages of the chain's suite. `try_sign` returns a signature in the
/// suite's one encoding, which `public().verify` accepts.
pub trait Signer: Send + Sync + std::fmt::Debug {
    fn public(&self) -> PublicKey;

    fn try_sign(&self, message: &[u8]) -> Result<Signature, SignerError>;

    fn account(&self) -> AccountId {
        AccountId::from_public_key(&self.public())
    }
}

impl Signer for Keypair {
    fn public(&self) -> PublicKey {
        Keypair::public(self)
    }

    fn try_sign(&self, message: &[u8]) -> Result<Signature, SignerError> {
        Ok(self.sign(message))
    }
}

impl From<Keypair> for Arc<dyn Signer> {
    fn from(key: Keypair) -> Arc<dyn Signer> {
        Arc::new(key)
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use crate::suite::Suite;

    #[test]
    fn a_key_file_key_signs_as_a_signer_what_it_signs_itself() {
        for &suite in Suite::ALL {
            let key = Keypair::from_seed_in(suite, "signer");
            let signer: Arc<dyn Signer> = key.clone().into();
            assert_eq!(signer.public(), key.public());
            assert_eq!(signer.account(), key.account());
            let signature = signer.try_sign(b"m").unwrap();
            key.public().verify(b"m", &signature).unwrap();
        }
    }
}
