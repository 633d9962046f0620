//! Shutong's core types: ids, keys, signatures, hashes, transactions, blocks, receipts and certificates.
//!
//! Everything that is signed or hashed lives here, with its canonical encoding (see
//! [`shutong_codec`]) and its domain-separation tag (see [`hash::tag`]). No I/O.

#![forbid(unsafe_code)]

pub mod auditlog;
pub mod block;
#[doc(hidden)]
pub mod bytes;
pub mod epoch;
pub mod hash;
pub mod keys;
pub mod keyspace;
pub mod limits;
pub mod rate;
pub mod receipt;
pub mod signer;
pub mod sm;
pub mod smt;
pub mod snapshot;
pub mod suite;
pub mod transport;
pub mod tx;

pub use block::{
    Block, BlockHeader, Certificate, CertificateError, PROTOCOL_VERSION, Roots, VoteKind, VoteSubject, quorum,
    validator_set_hash,
};
pub use bytes::HexError;
pub use hash::{FileHasher, Hash, merkle_root};
pub use keys::{AccountId, Address, Keypair, PublicKey, Signature, SignatureError};
pub use receipt::{Event, ExecStatus, Receipt};
pub use shutong_codec::{Decode, DecodeError, Encode};
pub use signer::{Signer, SignerError};
pub use suite::Suite;
pub use tx::{Call, SignedTransaction, Transaction, TxAuthError};
