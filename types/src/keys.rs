//! ed25519 keys and signatures, account ids and contract addresses.

use crate::bytes_newtype;
use crate::hash::{Hash, tag};
use crate::suite::Suite;
use ed25519_dalek::{Signer, SigningKey, VerifyingKey};

/// An ed25519 public key (32 bytes, compressed Edwards point).
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct PublicKey(pub [u8; 32]);
bytes_newtype!(PublicKey, 32);

/// An ed25519 signature.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct Signature(pub [u8; 64]);
bytes_newtype!(Signature, 64);

/// An account: the blake3 digest of the public key it was created with.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct AccountId(pub [u8; 32]);
bytes_newtype!(AccountId, 32);

/// A contract instance's address.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct Address(pub [u8; 32]);
bytes_newtype!(Address, 32);

/// Why a signature did not verify.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SignatureError {
    #[error("public key {0} is not a valid ed25519 point")]
    InvalidKey(PublicKey),
    #[error("signature does not verify under public key {0}")]
    BadSignature(PublicKey),
}

impl PublicKey {
    /// Verifies `signature` over `message` with ed25519's strict rules (no small-order keys,
    /// canonical `s`), so that every node reaches the same verdict on the same bytes.
    pub fn verify(&self, message: &[u8], signature: &Signature) -> Result<(), SignatureError> {
        let key = VerifyingKey::from_bytes(&self.0).map_err(|_| SignatureError::InvalidKey(*self))?;
        let signature = ed25519_dalek::Signature::from_bytes(&signature.0);
        key.verify_strict(message, &signature).map_err(|_| SignatureError::BadSignature(*self))
    }

    /// The suite whose signatures this key makes.
    pub fn suite(&self) -> Suite {
        Suite::Ed25519Blake3
    }

    /// Whether the bytes are the compressed form of a curve point (as every key that can
    /// sign is).
    pub fn is_point(&self) -> bool {
        VerifyingKey::from_bytes(&self.0).is_ok()
    }
}

impl AccountId {
    pub fn from_public_key(key: &PublicKey) -> AccountId {
        AccountId(Hash::of(key.suite(), tag::ACCOUNT, &key.0).0)
    }
}

impl Address {
    /// The address of a system contract, derived from its well-known name. The same on
    /// chains of every suite (BLAKE3 serves here as a fixed naming function, not as an
    /// integrity check), so tools and contracts name system contracts alike everywhere.
    pub fn system(name: &str) -> Address {
        Address(Hash::of(Suite::Ed25519Blake3, tag::CONTRACT_ADDRESS, name.as_bytes()).0)
    }

    /// The address of the instance `creator` makes under `label`: predictable before the
    /// transaction runs, and never a system contract's (another domain tag).
    pub fn instance(suite: Suite, creator: &AccountId, label: &str) -> Address {
        Address(Hash::of_parts(suite, tag::CONTRACT_INSTANCE, &[&creator.0, label.as_bytes()]).0)
    }
}

/// An ed25519 signing key. Its `Debug` never prints the secret.
#[derive(Clone)]
pub struct Keypair {
    signing: SigningKey,
}

impl std::fmt::Debug for Keypair {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Keypair({})", self.public())
    }
}

impl Keypair {
    pub fn generate() -> Keypair {
        Keypair { signing: SigningKey::generate(&mut rand::rngs::OsRng) }
    }

    pub fn from_secret(secret: [u8; 32]) -> Keypair {
        Keypair { signing: SigningKey::from_bytes(&secret) }
    }

    /// A key derived from a seed string, for tests and golden vectors only.
    pub fn from_seed(seed: &str) -> Keypair {
        Keypair::from_secret(Hash::of(Suite::Ed25519Blake3, "shutong/test-seed/v1", seed.as_bytes()).0)
    }

    pub fn secret(&self) -> [u8; 32] {
        self.signing.to_bytes()
    }

    pub fn public(&self) -> PublicKey {
        PublicKey(self.signing.verifying_key().to_bytes())
    }

    pub fn account(&self) -> AccountId {
        AccountId::from_public_key(&self.public())
    }

    pub fn sign(&self, message: &[u8]) -> Signature {
        Signature(self.signing.sign(message).to_bytes())
    }
}
