//! Block headers, blocks, votes and certificates.

use crate::hash::{Hash, merkle_root, tag};
use crate::keys::{Keypair, PublicKey, Signature, SignatureError};
use crate::limits::*;
use crate::suite::Suite;
use crate::tx::SignedTransaction;
use shutong_codec::{Decode, DecodeError, Encode, Reader, write};

/// The protocol version this build writes into headers and accepts (issue 24's upgrades
/// raise it at a governed height).
pub const PROTOCOL_VERSION: u32 = 1;

/// A block header. The roots of state, receipts and the audit log are those *after the
/// parent* block: a block's own effects are committed by its child's header, so that the
/// certificate on height h+1 certifies the results of height h.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct BlockHeader {
    pub chain_id: String,
    /// The protocol version the block was made under ([`PROTOCOL_VERSION`]).
    pub protocol_version: u32,
    /// The chain's crypto suite, the same in every header of a chain.
    pub suite: Suite,
    pub height: u64,
    /// The consensus view in which the block was proposed.
    pub view: u64,
    pub parent: Hash,
    pub proposer: PublicKey,
    /// Consensus time, milliseconds since the Unix epoch; strictly above the parent's.
    pub timestamp_ms: u64,
    /// Merkle root over this block's transaction ids, in order.
    pub txs_root: Hash,
    pub state_root: Hash,
    pub receipts_root: Hash,
    pub audit_root: Hash,
    pub audit_size: u64,
    pub validator_set: Hash,
}

impl Encode for BlockHeader {
    fn encode_to(&self, out: &mut Vec<u8>) {
        write::str(out, &self.chain_id);
        write::u32(out, self.protocol_version);
        self.suite.encode_to(out);
        write::u64(out, self.height);
        write::u64(out, self.view);
        self.parent.encode_to(out);
        self.proposer.encode_to(out);
        write::u64(out, self.timestamp_ms);
        self.txs_root.encode_to(out);
        self.state_root.encode_to(out);
        self.receipts_root.encode_to(out);
        self.audit_root.encode_to(out);
        write::u64(out, self.audit_size);
        self.validator_set.encode_to(out);
    }
}

impl Decode for BlockHeader {
    fn decode_from(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        Ok(BlockHeader {
            chain_id: r.string("header.chain_id", CHAIN_ID_BYTES_MAX)?,
            protocol_version: r.u32()?,
            suite: Suite::decode_from(r)?,
            height: r.u64()?,
            view: r.u64()?,
            parent: Hash::decode_from(r)?,
            proposer: PublicKey::decode_from(r)?,
            timestamp_ms: r.u64()?,
            txs_root: Hash::decode_from(r)?,
            state_root: Hash::decode_from(r)?,
            receipts_root: Hash::decode_from(r)?,
            audit_root: Hash::decode_from(r)?,
            audit_size: r.u64()?,
            validator_set: Hash::decode_from(r)?,
        })
    }
}

impl BlockHeader {
    /// The header's hash, under the suite it names (a header naming another suite than the
    /// chain's is refused before its hash matters).
    pub fn hash(&self) -> Hash {
        Hash::of(self.suite, tag::BLOCK_HEADER, &self.encode())
    }

    /// The commitments this header carries: those after its parent block.
    pub fn roots(&self) -> Roots {
        Roots {
            state: self.state_root,
            receipts: self.receipts_root,
            audit: self.audit_root,
            audit_size: self.audit_size,
        }
    }

    /// Whether this header carries exactly `roots`.
    pub fn commits(&self, roots: &Roots) -> bool {
        self.roots() == *roots
    }
}

/// What a block's execution commits to, carried by its child's header: the state root, the
/// receipts root, and the audit log's root and size.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Roots {
    pub state: Hash,
    pub receipts: Hash,
    pub audit: Hash,
    pub audit_size: u64,
}

/// A header with its transactions.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Block {
    pub header: BlockHeader,
    pub txs: Vec<SignedTransaction>,
}

impl Block {
    /// A block with no transactions and zero roots, proposed by the zero key at
    /// `timestamp_ms = height`: for tests, benches and fuzzing, never a chain.
    pub fn empty(chain_id: &str, height: u64, parent: Hash) -> Block {
        let header = BlockHeader {
            chain_id: chain_id.into(),
            protocol_version: PROTOCOL_VERSION,
            suite: Suite::Ed25519Blake3,
            height,
            view: height,
            parent,
            proposer: crate::PublicKey::Ed25519([0; 32]),
            timestamp_ms: height,
            txs_root: Block::txs_root(Suite::Ed25519Blake3, &[]),
            state_root: Hash::ZERO,
            receipts_root: Hash::ZERO,
            audit_root: Hash::ZERO,
            audit_size: 0,
            validator_set: Hash::ZERO,
        };
        Block { header, txs: Vec::new() }
    }

    /// The Merkle root over the transactions' ids on a chain of `suite`.
    pub fn txs_root(suite: Suite, txs: &[SignedTransaction]) -> Hash {
        let ids: Vec<[u8; 32]> = txs.iter().map(|tx| tx.tx.id(suite).0).collect();
        merkle_root(suite, &ids)
    }
}

impl Encode for Block {
    fn encode_to(&self, out: &mut Vec<u8>) {
        self.header.encode_to(out);
        write::seq(out, &self.txs, |out, tx| tx.encode_to(out));
    }
}

impl Decode for Block {
    fn decode_from(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        let header = BlockHeader::decode_from(r)?;
        let txs = r.seq("block.txs", BLOCK_TXS_MAX, SignedTransaction::decode_from)?;
        Ok(Block { header, txs })
    }
}

/// The number of signers a certificate of `validators` needs: `n − f` with
/// `f = ⌊(n − 1) / 3⌋` (consensus.md, Setting).
pub fn quorum(validators: usize) -> usize {
    validators - validators.saturating_sub(1) / 3
}

/// The hash that names a validator set: the tagged hash of its ordered public keys.
pub fn validator_set_hash(suite: Suite, validators: &[PublicKey]) -> Hash {
    let mut bytes = Vec::with_capacity(4 + validators.len() * 32);
    write::seq(&mut bytes, validators, |out, key| key.encode_to(out));
    Hash::of(suite, tag::VALIDATOR_SET, &bytes)
}

/// The three kinds of consensus vote.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum VoteKind {
    Notarize = 0,
    Nullify = 1,
    Finalize = 2,
}

impl VoteKind {
    fn from_tag(tag: u8) -> Result<VoteKind, DecodeError> {
        match tag {
            0 => Ok(VoteKind::Notarize),
            1 => Ok(VoteKind::Nullify),
            2 => Ok(VoteKind::Finalize),
            tag => Err(DecodeError::InvalidTag { what: "vote.kind", tag }),
        }
    }
}

/// What a vote or a certificate commits to. For `Nullify` the digest is `Hash::ZERO`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct VoteSubject {
    pub kind: VoteKind,
    pub epoch: u64,
    pub view: u64,
    pub digest: Hash,
}

/// The domain of consensus signatures; the signed bytes are
/// `tag ‖ chain_id ‖ epoch ‖ kind ‖ view ‖ digest` (consensus.md, Messages), written by
/// the one function the governance contract also checks evidence with.
pub use shutong_system_api::governance::CONSENSUS_TAG;

impl VoteSubject {
    pub fn signing_bytes(&self, chain_id: &str) -> Vec<u8> {
        shutong_system_api::governance::vote_signing_bytes(
            chain_id,
            self.kind as u8,
            self.epoch,
            self.view,
            &self.digest.0,
        )
    }

    pub fn sign(&self, chain_id: &str, key: &Keypair) -> Signature {
        key.sign(&self.signing_bytes(chain_id))
    }

    /// Signs through `signer`, which may fail (a key in a token).
    pub fn try_sign(&self, chain_id: &str, signer: &dyn crate::Signer) -> Result<Signature, crate::SignerError> {
        signer.try_sign(&self.signing_bytes(chain_id))
    }
}

impl Encode for VoteSubject {
    fn encode_to(&self, out: &mut Vec<u8>) {
        write::u8(out, self.kind as u8);
        write::u64(out, self.epoch);
        write::u64(out, self.view);
        self.digest.encode_to(out);
    }
}

impl Decode for VoteSubject {
    fn decode_from(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        Ok(VoteSubject {
            kind: VoteKind::from_tag(r.u8()?)?,
            epoch: r.u64()?,
            view: r.u64()?,
            digest: Hash::decode_from(r)?,
        })
    }
}

/// A quorum of validators' signatures on one subject, with a signer bitmap over the epoch's
/// ordered validator list. Signatures are in the order of the set bits.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Certificate {
    pub subject: VoteSubject,
    pub signers: Vec<u8>,
    pub signatures: Vec<Signature>,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CertificateError {
    #[error("signer bitmap has {actual} bytes, expected {expected} for {validators} validators")]
    BitmapLength { actual: usize, expected: usize, validators: usize },
    #[error("signer bitmap names {signers} signers but {signatures} signatures are attached")]
    SignatureCount { signers: usize, signatures: usize },
    #[error("{signers} signers are below the quorum of {quorum}")]
    BelowQuorum { signers: usize, quorum: usize },
    #[error("signature of validator {index} does not verify: {source}")]
    BadSignature { index: usize, source: SignatureError },
}

impl Certificate {
    /// Builds a certificate from `(validator index, signature)` pairs.
    pub fn new(subject: VoteSubject, validators: usize, votes: &[(usize, Signature)]) -> Certificate {
        let mut signers = vec![0u8; validators.div_ceil(8)];
        let mut ordered: Vec<(usize, Signature)> = votes.to_vec();
        ordered.sort_by_key(|(index, _)| *index);
        ordered.dedup_by_key(|(index, _)| *index);
        for (index, _) in &ordered {
            signers[index / 8] |= 1 << (index % 8);
        }
        Certificate { subject, signers, signatures: ordered.into_iter().map(|(_, sig)| sig).collect() }
    }

    /// The indices of the signers, in ascending order.
    pub fn signer_indices(&self) -> Vec<usize> {
        (0..self.signers.len() * 8).filter(|i| self.signers[i / 8] & (1 << (i % 8)) != 0).collect()
    }

    /// Checks that at least `quorum` distinct members of `validators` signed the subject.
    pub fn verify(&self, chain_id: &str, validators: &[PublicKey], quorum: usize) -> Result<(), CertificateError> {
        self.verify_with(chain_id, validators, quorum, |_, key, message, signature| key.verify(message, signature))
    }

    /// [`Certificate::verify`] with the signature check supplied by the caller, so that a
    /// caller that has already checked some of these signatures (as single votes) need not
    /// check them again. `check(index, key, message, signature)` is called once per signer.
    pub fn verify_with(
        &self,
        chain_id: &str,
        validators: &[PublicKey],
        quorum: usize,
        mut check: impl FnMut(usize, &PublicKey, &[u8], &Signature) -> Result<(), SignatureError>,
    ) -> Result<(), CertificateError> {
        let expected = validators.len().div_ceil(8);
        if self.signers.len() != expected {
            return Err(CertificateError::BitmapLength {
                actual: self.signers.len(),
                expected,
                validators: validators.len(),
            });
        }
        let indices = self.signer_indices();
        if let Some(&index) = indices.iter().find(|&&i| i >= validators.len()) {
            // A set bit past the last validator: the bitmap is malformed.
            return Err(CertificateError::BitmapLength {
                actual: index / 8 + 1,
                expected,
                validators: validators.len(),
            });
        }
        if indices.len() != self.signatures.len() {
            return Err(CertificateError::SignatureCount { signers: indices.len(), signatures: self.signatures.len() });
        }
        if indices.len() < quorum {
            return Err(CertificateError::BelowQuorum { signers: indices.len(), quorum });
        }
        let message = self.subject.signing_bytes(chain_id);
        for (index, signature) in indices.iter().zip(&self.signatures) {
            check(*index, &validators[*index], &message, signature)
                .map_err(|source| CertificateError::BadSignature { index: *index, source })?;
        }
        Ok(())
    }
}

impl Encode for Certificate {
    fn encode_to(&self, out: &mut Vec<u8>) {
        self.subject.encode_to(out);
        write::bytes(out, &self.signers);
        write::seq(out, &self.signatures, |out, sig| sig.encode_to(out));
    }
}

impl Decode for Certificate {
    fn decode_from(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        Ok(Certificate {
            subject: VoteSubject::decode_from(r)?,
            signers: r.byte_vec("certificate.signers", VALIDATORS_MAX.div_ceil(8))?,
            signatures: r.seq("certificate.signatures", VALIDATORS_MAX, Signature::decode_from)?,
        })
    }
}
