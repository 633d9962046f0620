//! The certificate-verification contract's arguments and results, shared by the contract
//! (`contracts/cert-verify`) and its clients (the client SDK's `builder::cert`).

#![forbid(unsafe_code)]

use shutong_codec::{write, Decode, DecodeError, Encode, Reader};

pub const ID_BYTES_MAX: u32 = 64;
pub const KIND_BYTES_MAX: u32 = 64;
pub const REASON_BYTES_MAX: u32 = 256;

/// Methods.
pub mod methods {
    pub const INIT: &str = "init";
    pub const ADD_ISSUER: &str = "add_issuer";
    pub const ISSUE: &str = "issue";
    pub const REVOKE: &str = "revoke";
    pub const VERIFY: &str = "verify";
    pub const GET: &str = "get";
}

/// A certificate as the chain keeps it: never the document, only its digest.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Certificate {
    pub id: String,
    /// What it certifies, e.g. "business-licence".
    pub kind: String,
    /// blake3 of the holder's identifier (the identifier itself stays off chain).
    pub holder_hash: [u8; 32],
    /// blake3 of the certified document.
    pub digest: [u8; 32],
    pub issuer: [u8; 32],
    pub issued_ms: u64,
    /// The last consensus time at which it is valid.
    pub valid_until_ms: u64,
    pub revoked: bool,
}

/// Arguments of `issue`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Issue {
    pub id: String,
    pub kind: String,
    pub holder_hash: [u8; 32],
    pub digest: [u8; 32],
    pub valid_until_ms: u64,
}

/// Arguments of `verify`: is the document with this digest, presented as certificate `id`
/// for this holder, certified now?
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Verify {
    pub id: String,
    pub holder_hash: [u8; 32],
    pub digest: [u8; 32],
}

/// The answer: yes or no, and why not.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Answer {
    pub valid: bool,
    pub reason: String,
    /// The audit-log sequence number of this verification (when run as a transaction).
    pub audit_index: u64,
}

/// Arguments of `revoke` and `get`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CertId {
    pub id: String,
}

/// Arguments of `add_issuer`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AddIssuer {
    pub account: [u8; 32],
}

impl Encode for Certificate {
    fn encode_to(&self, out: &mut Vec<u8>) {
        write::str(out, &self.id);
        write::str(out, &self.kind);
        self.holder_hash.encode_to(out);
        self.digest.encode_to(out);
        self.issuer.encode_to(out);
        write::u64(out, self.issued_ms);
        write::u64(out, self.valid_until_ms);
        write::bool(out, self.revoked);
    }
}

impl Decode for Certificate {
    fn decode_from(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        Ok(Certificate {
            id: r.string("certificate.id", ID_BYTES_MAX)?,
            kind: r.string("certificate.kind", KIND_BYTES_MAX)?,
            holder_hash: r.array()?,
            digest: r.array()?,
            issuer: r.array()?,
            issued_ms: r.u64()?,
            valid_until_ms: r.u64()?,
            revoked: r.bool("certificate.revoked")?,
        })
    }
}

impl Encode for Issue {
    fn encode_to(&self, out: &mut Vec<u8>) {
        write::str(out, &self.id);
        write::str(out, &self.kind);
        self.holder_hash.encode_to(out);
        self.digest.encode_to(out);
        write::u64(out, self.valid_until_ms);
    }
}

impl Decode for Issue {
    fn decode_from(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        Ok(Issue {
            id: r.string("issue.id", ID_BYTES_MAX)?,
            kind: r.string("issue.kind", KIND_BYTES_MAX)?,
            holder_hash: r.array()?,
            digest: r.array()?,
            valid_until_ms: r.u64()?,
        })
    }
}

impl Encode for Verify {
    fn encode_to(&self, out: &mut Vec<u8>) {
        write::str(out, &self.id);
        self.holder_hash.encode_to(out);
        self.digest.encode_to(out);
    }
}

impl Decode for Verify {
    fn decode_from(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        Ok(Verify { id: r.string("verify.id", ID_BYTES_MAX)?, holder_hash: r.array()?, digest: r.array()? })
    }
}

impl Encode for Answer {
    fn encode_to(&self, out: &mut Vec<u8>) {
        write::bool(out, self.valid);
        write::str(out, &self.reason);
        write::u64(out, self.audit_index);
    }
}

impl Decode for Answer {
    fn decode_from(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        Ok(Answer {
            valid: r.bool("answer.valid")?,
            reason: r.string("answer.reason", REASON_BYTES_MAX)?,
            audit_index: r.u64()?,
        })
    }
}

impl Encode for CertId {
    fn encode_to(&self, out: &mut Vec<u8>) {
        write::str(out, &self.id);
    }
}

impl Decode for CertId {
    fn decode_from(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        Ok(CertId { id: r.string("cert_id.id", ID_BYTES_MAX)? })
    }
}

impl Encode for AddIssuer {
    fn encode_to(&self, out: &mut Vec<u8>) {
        self.account.encode_to(out);
    }
}

impl Decode for AddIssuer {
    fn decode_from(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        Ok(AddIssuer { account: r.array()? })
    }
}
