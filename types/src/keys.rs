//! Public keys, signatures and signing keys of both suites (ed25519; SM2), account ids and
//! contract addresses.
//!
//! A key names its suite. Its canonical encoding is the suite byte, then the key: 32 bytes
//! for ed25519 (a compressed Edwards point), 33 for SM2 (a compressed SEC1 point). As text
//! (hex, JSON, the command line) a key is its bytes alone: the length tells the suite, so the
//! ed25519 keys of existing files read as before.

use crate::bytes_newtype;
use crate::hash::{Hash, tag};
use crate::sm::{SM2_PUBLIC_KEY_BYTES, Sm2Error, Sm2SigningKey, Sm2VerifyingKey};
use crate::suite::Suite;
use ed25519_dalek::{Signer as _, SigningKey, VerifyingKey};
use shutong_codec::{Decode, DecodeError, Encode, Reader};
use shutong_system_api::KeyBytes;
use std::sync::{Arc, OnceLock};

/// A public key of either suite.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum PublicKey {
    Ed25519([u8; 32]),
    Sm2([u8; SM2_PUBLIC_KEY_BYTES]),
}

/// A signature: ed25519's R ‖ s, or SM2's r ‖ s; the key it is checked under says which.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct Signature(pub [u8; 64]);
bytes_newtype!(Signature, 64);

/// An account: the suite's tagged hash of the public key it was created with.
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
    #[error("public key {0} is not a valid {suite} key", suite = .0.suite())]
    InvalidKey(PublicKey),
    #[error("public key {key} is an {actual} key, but this chain runs {expected}", actual = .key.suite())]
    WrongSuite { key: PublicKey, expected: Suite },
    #[error("the signature by {key} is not in its one encoding: {reason}")]
    NonCanonical { key: PublicKey, reason: Sm2Error },
    #[error("signature does not verify under public key {0}")]
    BadSignature(PublicKey),
}

/// SM2 verifying keys by public key: decompressing the point and computing Z (one SM3) is
/// paid once per key, not once per signature. Public data; bounded.
fn sm2_keys() -> &'static quick_cache::sync::Cache<[u8; SM2_PUBLIC_KEY_BYTES], Arc<Sm2VerifyingKey>> {
    static KEYS: OnceLock<quick_cache::sync::Cache<[u8; SM2_PUBLIC_KEY_BYTES], Arc<Sm2VerifyingKey>>> = OnceLock::new();
    KEYS.get_or_init(|| quick_cache::sync::Cache::new(SM2_KEYS_CACHED))
}

/// How many SM2 verifying keys are kept: more than a chain's validators and busy signers.
const SM2_KEYS_CACHED: usize = 16_384;

fn sm2_key(bytes: &[u8; SM2_PUBLIC_KEY_BYTES]) -> Result<Arc<Sm2VerifyingKey>, Sm2Error> {
    if let Some(key) = sm2_keys().get(bytes) {
        return Ok(key);
    }
    let key = Arc::new(Sm2VerifyingKey::from_compressed(bytes)?);
    sm2_keys().insert(*bytes, Arc::clone(&key));
    Ok(key)
}

impl PublicKey {
    /// The suite whose signatures this key checks.
    pub fn suite(&self) -> Suite {
        match self {
            PublicKey::Ed25519(_) => Suite::Ed25519Blake3,
            PublicKey::Sm2(_) => Suite::Sm2Sm3,
        }
    }

    /// The key's bytes, without the suite.
    pub fn as_bytes(&self) -> &[u8] {
        match self {
            PublicKey::Ed25519(bytes) => bytes,
            PublicKey::Sm2(bytes) => bytes,
        }
    }

    pub fn to_hex(&self) -> String {
        hex::encode(self.as_bytes())
    }

    /// The key read from its bytes alone: 32 are ed25519, 33 are SM2.
    pub fn from_key_bytes(bytes: &[u8]) -> Result<PublicKey, crate::HexError> {
        match bytes.len() {
            32 => Ok(PublicKey::Ed25519(bytes.try_into().expect("32 bytes"))),
            SM2_PUBLIC_KEY_BYTES => Ok(PublicKey::Sm2(bytes.try_into().expect("33 bytes"))),
            actual => Err(crate::HexError::WrongLength { expected: 32, actual }),
        }
    }

    /// The key as contracts hold it ([`KeyBytes`]: the canonical encoding).
    pub fn to_key_bytes(&self) -> KeyBytes {
        KeyBytes::new(self.encode()).expect("a key's canonical encoding is a valid KeyBytes")
    }

    /// The key contracts hold as `key` (checked for suite and length when it was decoded).
    pub fn from_key(key: &KeyBytes) -> PublicKey {
        PublicKey::decode(key.as_slice()).expect("KeyBytes holds a key's canonical encoding")
    }

    /// Checks that this key belongs to a chain of `suite`.
    pub fn check_suite(&self, suite: Suite) -> Result<(), SignatureError> {
        if self.suite() == suite { Ok(()) } else { Err(SignatureError::WrongSuite { key: *self, expected: suite }) }
    }

    /// Verifies `signature` over `message` so that every node reaches the same verdict on
    /// the same bytes: ed25519 with its strict rules (no small-order keys, canonical `s`);
    /// SM2 per GB/T 32918.2 with r and s in 1..n−1 and r + s ≠ n.
    pub fn verify(&self, message: &[u8], signature: &Signature) -> Result<(), SignatureError> {
        match self {
            PublicKey::Ed25519(bytes) => {
                let key = VerifyingKey::from_bytes(bytes).map_err(|_| SignatureError::InvalidKey(*self))?;
                let signature = ed25519_dalek::Signature::from_bytes(&signature.0);
                key.verify_strict(message, &signature).map_err(|_| SignatureError::BadSignature(*self))
            }
            PublicKey::Sm2(bytes) => {
                let key = sm2_key(bytes).map_err(|_| SignatureError::InvalidKey(*self))?;
                key.verify(message, &signature.0).map_err(|reason| match reason {
                    Sm2Error::BadSignature => SignatureError::BadSignature(*self),
                    reason => SignatureError::NonCanonical { key: *self, reason },
                })
            }
        }
    }

    /// Whether the bytes are the one encoding of a curve point that can sign (ed25519: a
    /// compressed Edwards point; SM2: a compressed point on the curve).
    pub fn is_point(&self) -> bool {
        match self {
            PublicKey::Ed25519(bytes) => VerifyingKey::from_bytes(bytes).is_ok(),
            PublicKey::Sm2(bytes) => sm2_key(bytes).is_ok(),
        }
    }
}

impl Encode for PublicKey {
    fn encode_to(&self, out: &mut Vec<u8>) {
        self.suite().encode_to(out);
        out.extend_from_slice(self.as_bytes());
    }
}

impl Decode for PublicKey {
    fn decode_from(reader: &mut Reader<'_>) -> Result<Self, DecodeError> {
        Ok(match Suite::decode_from(reader)? {
            Suite::Ed25519Blake3 => PublicKey::Ed25519(reader.array()?),
            Suite::Sm2Sm3 => PublicKey::Sm2(reader.array()?),
        })
    }
}

impl std::fmt::Display for PublicKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.to_hex())
    }
}

impl std::fmt::Debug for PublicKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "PublicKey({}:{})", self.suite(), self.to_hex())
    }
}

impl std::str::FromStr for PublicKey {
    type Err = crate::HexError;
    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let text = text.strip_prefix("0x").unwrap_or(text);
        let bytes = hex::decode(text).map_err(|e| crate::HexError::NotHex(e.to_string()))?;
        PublicKey::from_key_bytes(&bytes)
    }
}

impl serde::Serialize for PublicKey {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.to_hex())
    }
}

impl<'de> serde::Deserialize<'de> for PublicKey {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let text = <String as serde::Deserialize>::deserialize(d)?;
        text.parse().map_err(serde::de::Error::custom)
    }
}

impl AccountId {
    /// The account of `key`: its canonical encoding hashed with its suite's hash.
    pub fn from_public_key(key: &PublicKey) -> AccountId {
        AccountId(Hash::of(key.suite(), tag::ACCOUNT, &key.encode()).0)
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

/// A signing key of either suite. Its `Debug` never prints the secret.
#[derive(Clone)]
pub enum Keypair {
    Ed25519(SigningKey),
    Sm2(Box<Sm2SigningKey>),
}

impl std::fmt::Debug for Keypair {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Keypair({:?})", self.public())
    }
}

impl Keypair {
    /// A fresh key of `suite` from the operating system's random source.
    pub fn generate(suite: Suite) -> Keypair {
        match suite {
            Suite::Ed25519Blake3 => Keypair::Ed25519(SigningKey::generate(&mut rand::rngs::OsRng)),
            Suite::Sm2Sm3 => Keypair::Sm2(Box::new(Sm2SigningKey::generate())),
        }
    }

    /// The key of `secret` in `suite` (for SM2, a secret outside 1..n−2 is refused).
    pub fn from_secret(suite: Suite, secret: [u8; 32]) -> Result<Keypair, Sm2Error> {
        Ok(match suite {
            Suite::Ed25519Blake3 => Keypair::Ed25519(SigningKey::from_bytes(&secret)),
            Suite::Sm2Sm3 => Keypair::Sm2(Box::new(Sm2SigningKey::from_secret(&secret)?)),
        })
    }

    /// An ed25519 key derived from a seed string, for tests and golden vectors only.
    pub fn from_seed(seed: &str) -> Keypair {
        Keypair::from_seed_in(Suite::Ed25519Blake3, seed)
    }

    /// A key of `suite` derived from a seed string, for tests and golden vectors only.
    pub fn from_seed_in(suite: Suite, seed: &str) -> Keypair {
        let mut secret = Hash::of(Suite::Ed25519Blake3, "shutong/test-seed/v1", seed.as_bytes()).0;
        loop {
            if let Ok(key) = Keypair::from_secret(suite, secret) {
                return key;
            }
            // An SM2 secret at or above n − 1 (a chance of about 2^-32): derive again.
            secret = Hash::of(Suite::Ed25519Blake3, "shutong/test-seed/v1", &secret).0;
        }
    }

    pub fn suite(&self) -> Suite {
        match self {
            Keypair::Ed25519(_) => Suite::Ed25519Blake3,
            Keypair::Sm2(_) => Suite::Sm2Sm3,
        }
    }

    pub fn secret(&self) -> [u8; 32] {
        match self {
            Keypair::Ed25519(key) => key.to_bytes(),
            Keypair::Sm2(key) => key.secret(),
        }
    }

    pub fn public(&self) -> PublicKey {
        match self {
            Keypair::Ed25519(key) => PublicKey::Ed25519(key.verifying_key().to_bytes()),
            Keypair::Sm2(key) => PublicKey::Sm2(key.public_key()),
        }
    }

    pub fn account(&self) -> AccountId {
        AccountId::from_public_key(&self.public())
    }

    pub fn sign(&self, message: &[u8]) -> Signature {
        match self {
            Keypair::Ed25519(key) => Signature(key.sign(message).to_bytes()),
            Keypair::Sm2(key) => Signature(key.sign(message)),
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn each_suite_signs_and_verifies_and_refuses_the_other_message() {
        for &suite in Suite::ALL {
            let key = Keypair::from_seed_in(suite, "k");
            assert_eq!(key.public().suite(), suite);
            let signature = key.sign(b"m");
            key.public().verify(b"m", &signature).unwrap();
            assert_eq!(key.public().verify(b"n", &signature), Err(SignatureError::BadSignature(key.public())));
            assert_eq!(Keypair::from_secret(suite, key.secret()).unwrap().public(), key.public());
        }
    }

    #[test]
    fn keys_name_their_suite_in_binary_and_their_length_in_text() {
        let ed = Keypair::from_seed_in(Suite::Ed25519Blake3, "k").public();
        let sm = Keypair::from_seed_in(Suite::Sm2Sm3, "k").public();
        for key in [ed, sm] {
            let bytes = key.encode();
            assert_eq!(bytes[0], key.suite() as u8);
            assert_eq!(PublicKey::decode(&bytes).unwrap(), key);
            assert_eq!(key.to_hex().parse::<PublicKey>().unwrap(), key);
        }
        assert_eq!(ed.to_hex().len(), 64);
        assert_eq!(sm.to_hex().len(), 66);
        assert!(PublicKey::decode(&[7; 34]).is_err(), "an unknown suite byte");
        assert!("00".repeat(31).parse::<PublicKey>().is_err());
        assert_ne!(AccountId::from_public_key(&ed), AccountId::from_public_key(&sm));
    }

    #[test]
    fn a_key_of_the_other_suite_is_refused_naming_both() {
        let sm = Keypair::from_seed_in(Suite::Sm2Sm3, "k").public();
        let err = sm.check_suite(Suite::Ed25519Blake3).unwrap_err().to_string();
        assert!(err.contains("sm2-sm3") && err.contains("ed25519-blake3"), "{err}");
        sm.check_suite(Suite::Sm2Sm3).unwrap();
    }

    #[test]
    fn a_non_canonical_sm2_signature_is_refused_by_name() {
        let key = Keypair::from_seed_in(Suite::Sm2Sm3, "k");
        let mut signature = key.sign(b"m");
        signature.0[32..].fill(0);
        assert!(matches!(
            key.public().verify(b"m", &signature),
            Err(SignatureError::NonCanonical { reason: Sm2Error::SOutOfRange, .. })
        ));
        let off = PublicKey::Sm2([9; 33]);
        assert!(!off.is_point());
        assert!(matches!(off.verify(b"m", &key.sign(b"m")), Err(SignatureError::InvalidKey(_))));
    }
}
