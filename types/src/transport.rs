//! Transport keys: the p2p identity of a validator whose key libp2p cannot use.
//!
//! libp2p authenticates peers with ed25519 (or secp256k1, ECDSA P-256, RSA) keys, not SM2,
//! and needs the secret of its identity in memory. On an `ed25519-blake3` chain a
//! validator's key is its peer identity, unless it is held where the node cannot read it (a
//! PKCS#11 token). On an `sm2-sm3` chain, and for a key in a token, the validator also holds
//! an ed25519 transport key, used for nothing but the Noise handshake, and binds it with its
//! validator key: a signature over [`transport_binding_message`]. The binding travels in the
//! validator record (genesis, and the governance contract's sets), and the allow list lets a
//! transport key in only if its binding checks ([`Member::peer_key`]). Votes, certificates
//! and transactions are signed with the validator key as ever.

use crate::keys::{Keypair, PublicKey, Signature, SignatureError};
use crate::suite::Suite;
use shutong_system_api::governance::{TransportKey, transport_binding_message};

/// A transport key and its binding, as genesis files and tools write them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Transport {
    /// The ed25519 key of the validator's libp2p identity.
    pub key: PublicKey,
    /// The validator key's signature over [`transport_binding_message`].
    pub binding: Signature,
}

/// Why a validator has no peer identity the allow list accepts.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TransportError {
    #[error("validator key {0} of an sm2-sm3 chain has no transport key bound to it")]
    Missing(PublicKey),
    #[error("transport key {0} of validator key {1} is not an ed25519 public key")]
    NotEd25519(PublicKey, PublicKey),
    #[error("transport key {transport} is not bound to validator key {validator}: {reason}")]
    NotBound { validator: PublicKey, transport: PublicKey, reason: SignatureError },
}

impl Transport {
    /// `transport` bound to `validator`'s key on chain `chain_id`.
    pub fn bind(chain_id: &str, validator: &Keypair, transport: &PublicKey) -> Transport {
        let message = binding_message(chain_id, &validator.public(), transport);
        Transport { key: *transport, binding: validator.sign(&message) }
    }

    /// `transport` bound by `validator`, a signer that may fail (a key in a token).
    pub fn try_bind(
        chain_id: &str,
        validator: &dyn crate::Signer,
        transport: &PublicKey,
    ) -> Result<Transport, crate::SignerError> {
        let message = binding_message(chain_id, &validator.public(), transport);
        Ok(Transport { key: *transport, binding: validator.try_sign(&message)? })
    }

    /// As the governance contract keeps it; `None` for a key that is not ed25519.
    pub fn to_record(&self) -> Option<TransportKey> {
        match self.key {
            PublicKey::Ed25519(key) => Some(TransportKey { key, binding: self.binding.0 }),
            PublicKey::Sm2(_) => None,
        }
    }

    pub fn from_record(record: &TransportKey) -> Transport {
        Transport { key: PublicKey::Ed25519(record.key), binding: Signature(record.binding) }
    }

    /// Checks that this key's binding is `validator`'s signature on chain `chain_id`.
    pub fn check(&self, chain_id: &str, validator: &PublicKey) -> Result<(), TransportError> {
        if self.key.suite() != Suite::Ed25519Blake3 || !self.key.is_point() {
            return Err(TransportError::NotEd25519(self.key, *validator));
        }
        validator
            .verify(&binding_message(chain_id, validator, &self.key), &self.binding)
            .map_err(|reason| TransportError::NotBound { validator: *validator, transport: self.key, reason })
    }
}

/// What `validator` signs to bind `transport` (the contracts' [`transport_binding_message`]).
pub fn binding_message(chain_id: &str, validator: &PublicKey, transport: &PublicKey) -> Vec<u8> {
    let mut key = [0u8; 32];
    if let PublicKey::Ed25519(bytes) = transport {
        key = *bytes;
    }
    transport_binding_message(chain_id, &validator.to_key_bytes(), &key)
}

/// A validator as the network sees it: its key, and on an SM chain its transport key.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Member {
    pub key: PublicKey,
    pub transport: Option<Transport>,
}

impl Member {
    /// The members of a set of `keys` with `transports` in the same order (an entry each, or
    /// none known: a key without one is its own transport key, which [`Member::peer_key`]
    /// refuses for an SM2 key).
    pub fn of_set(keys: &[PublicKey], transports: &[Option<TransportKey>]) -> Vec<Member> {
        keys.iter()
            .enumerate()
            .map(|(i, key)| Member {
                key: *key,
                transport: transports.get(i).and_then(Option::as_ref).map(Transport::from_record),
            })
            .collect()
    }

    /// The key that names this validator's peer identity on chain `chain_id`: its bound
    /// transport key, if the binding checks; without one, an ed25519 validator key itself.
    pub fn peer_key(&self, chain_id: &str) -> Result<PublicKey, TransportError> {
        match (self.key, &self.transport) {
            (_, Some(transport)) => {
                transport.check(chain_id, &self.key)?;
                Ok(transport.key)
            }
            (PublicKey::Ed25519(_), None) => Ok(self.key),
            (PublicKey::Sm2(_), None) => Err(TransportError::Missing(self.key)),
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn an_sm_validator_is_let_in_only_through_a_transport_key_it_bound() {
        let validator = Keypair::from_seed_in(Suite::Sm2Sm3, "transport-v");
        let transport = Keypair::from_seed("transport-t").public();
        let bound = Transport::bind("chain-a", &validator, &transport);
        let member = Member { key: validator.public(), transport: Some(bound) };
        assert_eq!(member.peer_key("chain-a"), Ok(transport));
        // On another chain the binding is no binding.
        assert!(matches!(member.peer_key("chain-b"), Err(TransportError::NotBound { .. })));
        // Nor for another transport key, nor made by another validator key.
        let other = Keypair::from_seed("transport-u").public();
        let swapped = Member { transport: Some(Transport { key: other, ..bound }), ..member };
        let err = swapped.peer_key("chain-a").unwrap_err();
        assert!(err.to_string().starts_with(&format!("transport key {other} is not bound to validator key")), "{err}");
        let stranger = Keypair::from_seed_in(Suite::Sm2Sm3, "transport-w");
        let stolen = Member { key: stranger.public(), ..member };
        assert!(matches!(stolen.peer_key("chain-a"), Err(TransportError::NotBound { .. })));
        assert_eq!(
            Member { transport: None, ..member }.peer_key("chain-a"),
            Err(TransportError::Missing(validator.public()))
        );
        // A transport key must be a key libp2p can use.
        let sm_transport = Transport::bind("chain-a", &validator, &stranger.public());
        assert!(matches!(
            Member { transport: Some(sm_transport), ..member }.peer_key("chain-a"),
            Err(TransportError::NotEd25519(..))
        ));
        // The record form round-trips.
        assert_eq!(Transport::from_record(&bound.to_record().unwrap()), bound);
    }

    #[test]
    fn an_ed25519_validator_is_its_own_transport_key_unless_it_bound_one() {
        let validator = Keypair::from_seed("transport-e");
        let member = Member { key: validator.public(), transport: None };
        assert_eq!(member.peer_key("chain-a"), Ok(validator.public()));
        // A key in a token binds a transport key the node holds.
        let transport = Keypair::from_seed("transport-f").public();
        let bound = Transport::bind("chain-a", &validator, &transport);
        assert_eq!(Member { transport: Some(bound), ..member }.peer_key("chain-a"), Ok(transport));
        assert!(matches!(
            Member { transport: Some(bound), ..member }.peer_key("chain-b"),
            Err(TransportError::NotBound { .. })
        ));
    }
}
