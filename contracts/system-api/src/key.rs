//! Public keys as contracts and the node exchange them: the canonical encoding of the node's
//! `PublicKey`, the suite byte (0 ed25519, 1 SM2) then the key's 32 or 33 bytes.

use shutong_codec::{Decode, DecodeError, Encode, Reader};

/// The suite byte of an ed25519 key.
pub const ED25519: u8 = 0;
/// The suite byte of an SM2 key (compressed SEC1).
pub const SM2: u8 = 1;

/// The longest canonical key: the suite byte and an SM2 key's 33 bytes.
pub const KEY_BYTES_MAX: usize = 34;

/// The bytes of a key of `suite` after its suite byte, or `None` for an unknown suite.
pub fn key_len(suite: u8) -> Option<usize> {
    match suite {
        ED25519 => Some(32),
        SM2 => Some(33),
        _ => None,
    }
}

/// A public key in its canonical encoding. Contracts compare, store and pass keys on to the
/// host's `verify_signature`; only the node knows curves.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct KeyBytes(Vec<u8>);

impl KeyBytes {
    /// Checks the suite byte and the length.
    pub fn new(bytes: Vec<u8>) -> Result<KeyBytes, DecodeError> {
        KeyBytes::decode(&bytes)
    }

    /// An ed25519 key's bytes as a key.
    pub fn ed25519(key: [u8; 32]) -> KeyBytes {
        let mut bytes = vec![ED25519];
        bytes.extend_from_slice(&key);
        KeyBytes(bytes)
    }

    pub fn suite(&self) -> u8 {
        self.0[0]
    }

    /// The canonical encoding: suite byte, then the key.
    pub fn as_slice(&self) -> &[u8] {
        &self.0
    }
}

impl Encode for KeyBytes {
    fn encode_to(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(&self.0);
    }
}

impl Decode for KeyBytes {
    fn decode_from(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        let suite = r.u8()?;
        let len = key_len(suite).ok_or(DecodeError::InvalidTag { what: "public_key.suite", tag: suite })?;
        let mut bytes = Vec::with_capacity(1 + len);
        bytes.push(suite);
        bytes.extend_from_slice(r.take(len)?);
        Ok(KeyBytes(bytes))
    }
}
