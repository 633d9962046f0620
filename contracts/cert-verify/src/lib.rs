//! An example enterprise contract built with the contract SDK: certificate verification
//! (证明电子化). An issuer registers a certificate's digest; anyone presenting a document can
//! ask whether it is certified and gets yes or no, never the data. Each verification run as
//! a transaction appends an audit-log leaf (who asked about which certificate, and the
//! answer), so the question itself is on the record.
//!
//! Rules: `init` makes the instantiating account the owner and first issuer; only the owner
//! adds issuers; only an issuer issues, under a new id, with a validity in the future; only
//! the certificate's issuer revokes it. `verify` answers no, with the reason, for an unknown
//! id, a revoked or expired certificate, another holder or another document.

#![forbid(unsafe_code)]

pub use shutong_cert_verify_api as api;

use api::{AddIssuer, Answer, CertId, Certificate, Issue, Verify};
use shutong_codec::Encode;
use shutong_contract::{self as contract, Error, Item, Map, MethodResult};

contract::entrypoints!(init, add_issuer, issue, revoke, verify, get);

const OWNER: Item<[u8; 32]> = Item::new(b"owner");
const ISSUERS: Map<[u8; 32], bool> = Map::new(b"issuer/");
const CERTS: Map<String, Certificate> = Map::new(b"cert/");

fn decode<T: shutong_codec::Decode>(args: &[u8]) -> Result<T, Error> {
    Ok(T::decode(args)?)
}

pub fn init(_args: &[u8]) -> MethodResult {
    if OWNER.exists() {
        return Err(Error::new("already initialised"));
    }
    let owner = contract::origin();
    OWNER.save(&owner);
    ISSUERS.save(&owner, &true);
    Ok(Vec::new())
}

pub fn add_issuer(args: &[u8]) -> MethodResult {
    let req: AddIssuer = decode(args)?;
    let owner = OWNER.load()?.ok_or_else(|| Error::new("not initialised"))?;
    if contract::caller() != owner {
        return Err(Error::new("only the owner may add issuers"));
    }
    ISSUERS.save(&req.account, &true);
    contract::emit_event("issuer.added", &req.account);
    Ok(Vec::new())
}

pub fn issue(args: &[u8]) -> MethodResult {
    let req: Issue = decode(args)?;
    let issuer = contract::caller();
    if !ISSUERS.has(&issuer) {
        return Err(Error::new("only an issuer may issue certificates"));
    }
    if req.id.is_empty() {
        return Err(Error::new("certificate id is empty"));
    }
    if CERTS.has(&req.id) {
        return Err(Error(format!("certificate {} already exists", req.id)));
    }
    let now = contract::block_time_ms();
    if req.valid_until_ms <= now {
        return Err(Error::new("validity must end in the future"));
    }
    let cert = Certificate {
        id: req.id.clone(),
        kind: req.kind,
        holder_hash: req.holder_hash,
        digest: req.digest,
        issuer,
        issued_ms: now,
        valid_until_ms: req.valid_until_ms,
        revoked: false,
    };
    CERTS.save(&req.id, &cert);
    contract::emit_event("cert.issued", req.id.as_bytes());
    Ok(Vec::new())
}

pub fn revoke(args: &[u8]) -> MethodResult {
    let req: CertId = decode(args)?;
    let mut cert = CERTS.load(&req.id)?.ok_or_else(|| Error(format!("certificate {} not found", req.id)))?;
    if contract::caller() != cert.issuer {
        return Err(Error::new("only the certificate's issuer may revoke it"));
    }
    if cert.revoked {
        return Err(Error(format!("certificate {} is already revoked", req.id)));
    }
    cert.revoked = true;
    CERTS.save(&req.id, &cert);
    contract::emit_event("cert.revoked", req.id.as_bytes());
    Ok(Vec::new())
}

/// The answer without the audit record.
fn answer(req: &Verify) -> Result<(bool, &'static str), Error> {
    let cert = match CERTS.load(&req.id)? {
        Some(cert) => cert,
        None => return Ok((false, "no such certificate")),
    };
    Ok(if cert.revoked {
        (false, "revoked")
    } else if contract::block_time_ms() > cert.valid_until_ms {
        (false, "expired")
    } else if cert.holder_hash != req.holder_hash {
        (false, "issued to another holder")
    } else if cert.digest != req.digest {
        (false, "the document does not match")
    } else {
        (true, "")
    })
}

pub fn verify(args: &[u8]) -> MethodResult {
    let req: Verify = decode(args)?;
    let (valid, reason) = answer(&req)?;
    // The audit leaf: who asked, about which certificate and document, and the answer.
    let mut leaf = b"cert.verify".to_vec();
    contract::origin().encode_to(&mut leaf);
    req.encode_to(&mut leaf);
    valid.encode_to(&mut leaf);
    let audit_index = contract::audit_append(&leaf);
    Ok(Answer { valid, reason: reason.to_string(), audit_index }.encode())
}

pub fn get(args: &[u8]) -> MethodResult {
    let req: CertId = decode(args)?;
    let cert = CERTS.load(&req.id)?.ok_or_else(|| Error(format!("certificate {} not found", req.id)))?;
    Ok(cert.encode())
}

#[cfg(test)]
mod tests {
    use super::*;
    use shutong_codec::Decode;
    use shutong_contract::testing;

    const OWNER_ACCOUNT: [u8; 32] = [1; 32];
    const OTHER: [u8; 32] = [2; 32];

    fn setup() {
        testing::reset();
        testing::set_context(OWNER_ACCOUNT, 5);
        testing::set_time_ms(1_000);
        init(&[]).unwrap();
        let req = Issue {
            id: "lic-1".into(),
            kind: "business-licence".into(),
            holder_hash: [7; 32],
            digest: [8; 32],
            valid_until_ms: 10_000,
        };
        issue(&req.encode()).unwrap();
    }

    fn ask(id: &str, holder: [u8; 32], digest: [u8; 32]) -> Answer {
        let out = verify(&Verify { id: id.into(), holder_hash: holder, digest }.encode()).unwrap();
        Answer::decode(&out).unwrap()
    }

    #[test]
    fn a_matching_document_is_certified_and_each_question_is_audited() {
        setup();
        assert_eq!(ask("lic-1", [7; 32], [8; 32]), Answer { valid: true, reason: String::new(), audit_index: 0 });
        assert_eq!(ask("lic-1", [7; 32], [9; 32]).reason, "the document does not match");
        assert_eq!(ask("lic-1", [6; 32], [8; 32]).reason, "issued to another holder");
        assert_eq!(ask("lic-2", [7; 32], [8; 32]).reason, "no such certificate");
        assert_eq!(testing::take_audit().len(), 4);
        testing::set_time_ms(10_001);
        assert_eq!(ask("lic-1", [7; 32], [8; 32]).reason, "expired");
    }

    #[test]
    fn each_refusal_has_its_own_error() {
        setup();
        assert_eq!(init(&[]), Err(Error::new("already initialised")));
        testing::set_context(OTHER, 6);
        let req =
            Issue { id: "x".into(), kind: "k".into(), holder_hash: [0; 32], digest: [0; 32], valid_until_ms: 5_000 };
        assert_eq!(issue(&req.encode()), Err(Error::new("only an issuer may issue certificates")));
        assert_eq!(
            add_issuer(&AddIssuer { account: OTHER }.encode()),
            Err(Error::new("only the owner may add issuers"))
        );
        assert_eq!(
            revoke(&CertId { id: "lic-1".into() }.encode()),
            Err(Error::new("only the certificate's issuer may revoke it"))
        );
        testing::set_context(OWNER_ACCOUNT, 6);
        add_issuer(&AddIssuer { account: OTHER }.encode()).unwrap();
        testing::set_context(OTHER, 6);
        let dup = Issue { id: "lic-1".into(), ..req.clone() };
        assert_eq!(issue(&dup.encode()), Err(Error::new("certificate lic-1 already exists")));
        let past = Issue { valid_until_ms: 500, ..req.clone() };
        assert_eq!(issue(&past.encode()), Err(Error::new("validity must end in the future")));
        issue(&req.encode()).unwrap();
        revoke(&CertId { id: "x".into() }.encode()).unwrap();
        assert_eq!(revoke(&CertId { id: "x".into() }.encode()), Err(Error::new("certificate x is already revoked")));
        assert_eq!(ask("x", [0; 32], [0; 32]).reason, "revoked");
    }
}
