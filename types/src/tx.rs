//! Transactions: what a client signs and the node admits, orders and executes.

use crate::hash::{Hash, tag};
use crate::keys::{AccountId, Address, Keypair, PublicKey, Signature, SignatureError};
use crate::limits::*;
use crate::suite::Suite;
use shutong_codec::{Decode, DecodeError, Encode, Reader, write};

/// A call of one contract method with canonical arguments.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Call {
    pub contract: Address,
    pub method: String,
    pub args: Vec<u8>,
}

/// An unsigned transaction.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Transaction {
    pub chain_id: String,
    pub sender: AccountId,
    /// The sender's next nonce: 0 for its first transaction, then one more each time.
    pub nonce: u64,
    pub gas_limit: u64,
    /// The last height at which the transaction may be included.
    pub expiry_height: u64,
    pub call: Call,
}

/// A transaction with the signer's key and signature over its id.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SignedTransaction {
    pub tx: Transaction,
    pub signer: PublicKey,
    pub signature: Signature,
}

impl Encode for Call {
    fn encode_to(&self, out: &mut Vec<u8>) {
        self.contract.encode_to(out);
        write::str(out, &self.method);
        write::bytes(out, &self.args);
    }
}

impl Decode for Call {
    fn decode_from(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        Ok(Call {
            contract: Address::decode_from(r)?,
            method: r.string("call.method", METHOD_BYTES_MAX)?,
            args: r.byte_vec("call.args", ARGS_BYTES_MAX)?,
        })
    }
}

impl Encode for Transaction {
    fn encode_to(&self, out: &mut Vec<u8>) {
        write::str(out, &self.chain_id);
        self.sender.encode_to(out);
        write::u64(out, self.nonce);
        write::u64(out, self.gas_limit);
        write::u64(out, self.expiry_height);
        self.call.encode_to(out);
    }
}

impl Decode for Transaction {
    fn decode_from(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        Ok(Transaction {
            chain_id: r.string("tx.chain_id", CHAIN_ID_BYTES_MAX)?,
            sender: AccountId::decode_from(r)?,
            nonce: r.u64()?,
            gas_limit: r.u64()?,
            expiry_height: r.u64()?,
            call: Call::decode_from(r)?,
        })
    }
}

impl Encode for SignedTransaction {
    fn encode_to(&self, out: &mut Vec<u8>) {
        self.tx.encode_to(out);
        self.signer.encode_to(out);
        self.signature.encode_to(out);
    }
}

impl Decode for SignedTransaction {
    fn decode_from(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        Ok(SignedTransaction {
            tx: Transaction::decode_from(r)?,
            signer: PublicKey::decode_from(r)?,
            signature: Signature::decode_from(r)?,
        })
    }
}

impl Transaction {
    /// The transaction id on a chain of `suite`: the tagged hash of the unsigned encoding.
    /// This is what is signed, so the id does not depend on the signature's bytes.
    pub fn id(&self, suite: Suite) -> Hash {
        Hash::of(suite, tag::TX, &self.encode())
    }

    pub fn sign(self, key: &Keypair) -> SignedTransaction {
        let signature = key.sign(&self.id(key.public().suite()).0);
        SignedTransaction { tx: self, signer: key.public(), signature }
    }

    /// Signs through `signer`, which may fail (a key in a token).
    pub fn try_sign(self, signer: &dyn crate::Signer) -> Result<SignedTransaction, crate::SignerError> {
        let key = signer.public();
        let signature = signer.try_sign(&self.id(key.suite()).0)?;
        Ok(SignedTransaction { tx: self, signer: key, signature })
    }
}

impl SignedTransaction {
    /// The id, hashed with the suite of the signer's key (a chain refuses keys of the other
    /// suite before it looks at ids).
    pub fn id(&self) -> Hash {
        self.tx.id(self.signer.suite())
    }

    /// Checks, for a chain of `suite`, that the signer's key is of that suite, that it owns
    /// the sender account and that the signature covers this transaction's id.
    pub fn verify(&self, suite: Suite) -> Result<(), TxAuthError> {
        self.signer.check_suite(suite)?;
        if AccountId::from_public_key(&self.signer) != self.tx.sender {
            return Err(TxAuthError::SignerNotSender { signer: self.signer, sender: self.tx.sender });
        }
        self.signer.verify(&self.id().0, &self.signature)?;
        Ok(())
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TxAuthError {
    #[error("signer {signer} does not own sender account {sender}")]
    SignerNotSender { signer: PublicKey, sender: AccountId },
    #[error(transparent)]
    Signature(#[from] SignatureError),
}
