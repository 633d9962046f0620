//! Transaction builders for the system contracts.

use shutong_system_api::lifecycle;
use shutong_system_api::names;
use shutong_system_api::registry;
use shutong_system_api::registry::{OrgKind, OrgStatus, RegisterOrg, UpdateOrg};
use shutong_types::{
    AccountId, Address, Call, Encode, Hash, SignedTransaction, Signer, SignerError, Suite, Transaction,
};
use std::sync::Arc;

/// Default gas limit of a system-contract call: ample for the registry's methods (about
/// 25,000 to 35,000), small enough that many fit a block's gas limit.
pub const GAS_LIMIT_DEFAULT: u64 = 1_000_000;
/// Default validity window, in blocks from the current height.
pub const EXPIRY_BLOCKS_DEFAULT: u64 = 600;

/// Builds and signs transactions for one account on one chain, through its signer: a key
/// file's [`Keypair`](shutong_types::Keypair), or a key in a token (`shutong_api::pkcs11`).
#[derive(Debug, Clone)]
pub struct TxBuilder {
    pub chain_id: String,
    pub key: Arc<dyn Signer>,
    pub gas_limit: u64,
}

impl TxBuilder {
    pub fn new(chain_id: &str, key: impl Into<Arc<dyn Signer>>) -> TxBuilder {
        TxBuilder { chain_id: chain_id.to_string(), key: key.into(), gas_limit: GAS_LIMIT_DEFAULT }
    }

    /// Signs a call with `nonce`, valid up to and including `expiry_height`. Only a signer
    /// outside memory (a token) can fail.
    pub fn call(&self, call: Call, nonce: u64, expiry_height: u64) -> Result<SignedTransaction, SignerError> {
        Transaction {
            chain_id: self.chain_id.clone(),
            sender: self.key.account(),
            nonce,
            gas_limit: self.gas_limit,
            expiry_height,
            call,
        }
        .try_sign(&*self.key)
    }
}

/// The registry's address.
pub fn registry() -> Address {
    Address::system(names::REGISTRY)
}

pub fn register_org(id: &str, name: &str, kind: OrgKind) -> Call {
    let args = RegisterOrg { id: id.to_string(), name: name.to_string(), kind };
    Call { contract: registry(), method: "register".into(), args: args.encode() }
}

/// Removes a pending registration that expired unapproved (anyone may), freeing its id.
pub fn expire_registration(id: &str) -> Call {
    let args = registry::GetOrg { id: id.to_string() };
    Call { contract: registry(), method: "expire".into(), args: args.encode() }
}

pub fn update_org(id: &str, name: Option<&str>, status: Option<OrgStatus>) -> Call {
    let args = UpdateOrg { id: id.to_string(), name: name.map(str::to_string), status };
    Call { contract: registry(), method: "update".into(), args: args.encode() }
}

/// Adds `account` to organisation `org`, or changes its kind, roles (`registry::role` bits)
/// or status (an admin of the organisation only).
pub fn set_principal(
    org: &str,
    account: &AccountId,
    kind: registry::PrincipalKind,
    roles: u32,
    status: registry::PrincipalStatus,
) -> Call {
    let args = registry::SetPrincipal { org: org.to_string(), account: account.0, kind, roles, status };
    Call { contract: registry(), method: "set_principal".into(), args: args.encode() }
}

/// Sets an organisation's approval policy for requests for its data of one classification
/// (an admin of the organisation): one distinct approver per step, each with one of the
/// step's roles.
pub fn set_policy(org: &str, classification: shutong_system_api::catalog::Classification, steps: &[u32]) -> Call {
    let args = registry::ApprovalPolicy { org: org.to_string(), classification, steps: steps.to_vec() };
    Call { contract: registry(), method: "set_policy".into(), args: args.encode() }
}

/// Moves the signing principal's organisation and roles to `new_account`; the signing key
/// stops acting.
pub fn rotate_key(new_account: &AccountId) -> Call {
    let args = registry::RotateKey { new_account: new_account.0 };
    Call { contract: registry(), method: "rotate_key".into(), args: args.encode() }
}

/// The catalog's address.
pub fn catalog() -> Address {
    Address::system(names::CATALOG)
}

/// Publishes a resource, or a new version of it (a data provider of its organisation only).
pub fn publish_resource(resource: &shutong_system_api::catalog::Publish) -> Call {
    Call { contract: catalog(), method: "publish".into(), args: resource.encode() }
}

/// Withdraws a resource and releases its data elements.
pub fn withdraw_resource(code: &str) -> Call {
    let args = shutong_system_api::catalog::ResourceRef { code: code.to_string(), version: None };
    Call { contract: catalog(), method: "withdraw".into(), args: args.encode() }
}

/// The authorisation contract's address.
pub fn authz() -> Address {
    Address::system(names::AUTHZ)
}

/// Calls for the authorisation contract (`shutong_system_api::authz`).
pub mod access {
    use super::*;
    use shutong_system_api::authz::{Approve, Delegate, Id, RequestAccess, Terms, Use, WithReason};

    fn call(method: &str, args: Vec<u8>) -> Call {
        Call { contract: authz(), method: method.into(), args }
    }

    /// Asks for access (a data consumer); the receipt's output is the request id.
    pub fn request(req: &RequestAccess) -> Call {
        call("request", req.encode())
    }

    /// Approves a request under review with `terms` (the provider's approvers); the output
    /// is the grant id once the approval route is complete.
    pub fn approve(request: u64, terms: &Terms) -> Call {
        call("approve", Approve { request, terms: terms.clone() }.encode())
    }

    fn reasoned(method: &str, id: u64, reason: &str) -> Call {
        call(method, WithReason { id, reason: reason.to_string() }.encode())
    }

    pub fn reject(request: u64, reason: &str) -> Call {
        reasoned("reject", request, reason)
    }

    pub fn dispute(request: u64, reason: &str) -> Call {
        reasoned("dispute", request, reason)
    }

    pub fn withdraw(request: u64, reason: &str) -> Call {
        reasoned("withdraw", request, reason)
    }

    pub fn escalate(request: u64) -> Call {
        call("escalate", Id { id: request }.encode())
    }

    pub fn suspend(grant: u64, reason: &str) -> Call {
        reasoned("suspend", grant, reason)
    }

    pub fn resume(grant: u64) -> Call {
        call("resume", Id { id: grant }.encode())
    }

    pub fn revoke(grant: u64, reason: &str) -> Call {
        reasoned("revoke", grant, reason)
    }

    pub fn delegate(parent: u64, grantee_org: &str, terms: &Terms) -> Call {
        call("delegate", Delegate { parent, grantee_org: grantee_org.to_string(), terms: terms.clone() }.encode())
    }

    /// Records a data subject's consent, given to the signer's organisation.
    pub fn record_consent(consent: &shutong_system_api::authz::RecordConsent) -> Call {
        call("record_consent", consent.encode())
    }

    /// Withdraws a consent; the grants resting on it are suspended.
    pub fn withdraw_consent(id: &str) -> Call {
        call("withdraw_consent", shutong_system_api::authz::ConsentId { id: id.to_string() }.encode())
    }

    /// Closes the named grants bound to a closed case.
    pub fn close_case(case_ref: [u8; 32], grants: &[u64]) -> Call {
        call("close_case", shutong_system_api::authz::CloseCase { case_ref, grants: grants.to_vec() }.encode())
    }

    /// Supersedes a grant with amended terms (the provider's CDO); the output is the new grant id.
    pub fn amend(grant: u64, terms: &Terms) -> Call {
        call("amend", shutong_system_api::authz::Amend { grant, terms: terms.clone() }.encode())
    }

    /// The arguments of `check` (a query: may this use happen now?).
    pub fn check_args(u: &Use) -> Vec<u8> {
        u.encode()
    }

    /// The arguments of `get_request` and `get_grant`.
    pub fn id_args(id: u64) -> Vec<u8> {
        Id { id }.encode()
    }
}

/// The audit contract's address.
pub fn audit() -> Address {
    Address::system(names::AUDIT)
}

/// Calls for the audit contract (`shutong_system_api::audit`).
pub mod audit_trail {
    use super::*;
    use shutong_system_api::audit::{AccessEvent, AnchorBatch, EventId, History};

    /// Records an access (the provider's gateway); the output is the `EventRecord`.
    pub fn record(event: &AccessEvent) -> Call {
        Call { contract: audit(), method: "record".into(), args: event.encode() }
    }

    /// The consumer gateway's signature over `event` (which must not carry one yet), by its
    /// key in a file or in a token.
    pub fn cosign(
        event: &AccessEvent,
        gateway: &dyn Signer,
    ) -> Result<shutong_system_api::audit::GatewaySignature, SignerError> {
        let unsigned = AccessEvent { consumer_signature: None, ..event.clone() };
        Ok(shutong_system_api::audit::GatewaySignature {
            key: gateway.public().to_key_bytes(),
            signature: gateway.try_sign(&unsigned.encode())?.0,
        })
    }

    /// Records a yes/no answer given instead of data (the provider's gateway).
    pub fn attest(attest: &shutong_system_api::audit::Attest) -> Call {
        Call { contract: audit(), method: "attest".into(), args: attest.encode() }
    }

    /// Anchors a gateway's batch of events by their Merkle root; the output is the
    /// `AnchorRecord` (the recorded one, unchanged, when the batch was anchored before).
    pub fn anchor(batch: &AnchorBatch) -> Call {
        Call { contract: audit(), method: "anchor".into(), args: batch.encode() }
    }

    /// The arguments of `history`: a grant's events after `after`, `limit` at a time.
    pub fn history_args(grant: u64, after: Option<u64>, limit: u32) -> Vec<u8> {
        History { grant, after, limit }.encode()
    }

    /// The arguments of `get_event` and `get_violation`.
    pub fn id_args(id: u64) -> Vec<u8> {
        EventId { id }.encode()
    }

    /// Records an auditor's question in the audit log (an acting auditor); a node answers
    /// `shutong_auditQuery` only with this transaction's id.
    pub fn log_query(query: &shutong_system_api::audit::LogQuery) -> Call {
        Call { contract: audit(), method: "log_query".into(), args: query.encode() }
    }
}

/// The contract lifecycle's address (native to the node).
pub fn lifecycle() -> Address {
    Address::system(names::LIFECYCLE)
}

/// A gas limit that covers uploading `code_len` bytes of code under schedule 1: the
/// lifecycle's base, 50 gas per byte, and room for the call's own framing.
pub fn upload_gas_limit(code_len: usize) -> u64 {
    100_000 + 50 * code_len as u64
}

/// Uploads contract code. Under the `governance` upload policy, its hash must be approved
/// first ([`approve_code`]).
pub fn upload_code(code: &[u8]) -> Call {
    let args = lifecycle::UploadCode { code: code.to_vec() };
    Call { contract: lifecycle(), method: lifecycle::methods::UPLOAD.into(), args: args.encode() }
}

/// The hash that names contract code on a chain of `suite`: what governance approves and
/// `upload` returns.
pub fn code_hash(suite: Suite, code: &[u8]) -> Hash {
    Hash::of(suite, shutong_types::hash::tag::CODE, code)
}

/// Approves a code hash for upload (a committee member, while one organisation's vote is the
/// threshold; otherwise propose `Action::ApproveCode`).
pub fn approve_code(code_hash: &Hash) -> Call {
    let args = shutong_system_api::governance::ApproveCode { code_hash: code_hash.0 };
    Call { contract: governance(), method: "approve_code".into(), args: args.encode() }
}

/// The address an instance gets on a chain of `suite`: derived from its creator and label.
pub fn instance_address(suite: Suite, creator: &AccountId, label: &str) -> Address {
    Address::instance(suite, creator, label)
}

/// Instantiates uploaded code under `label`, administered by `admin`; `args` go to the
/// code's `init` method, if it has one.
pub fn instantiate(code_hash: &Hash, label: &str, admin: &AccountId, args: &[u8]) -> Call {
    let args = lifecycle::Instantiate {
        code_hash: code_hash.0,
        label: label.to_string(),
        admin: admin.0,
        args: args.to_vec(),
    };
    Call { contract: lifecycle(), method: lifecycle::methods::INSTANTIATE.into(), args: args.encode() }
}

/// Moves an instance to other uploaded code (its admin only); `args` go to the new code's
/// `migrate` method, if it has one.
pub fn migrate(contract: &Address, code_hash: &Hash, args: &[u8]) -> Call {
    let args = lifecycle::Migrate { contract: contract.0, code_hash: code_hash.0, args: args.to_vec() };
    Call { contract: lifecycle(), method: lifecycle::methods::MIGRATE.into(), args: args.encode() }
}

/// Freezes an instance: calls to it fail until it is unfrozen (its admin only).
pub fn freeze(contract: &Address) -> Call {
    let args = lifecycle::ContractRef { contract: contract.0 };
    Call { contract: lifecycle(), method: lifecycle::methods::FREEZE.into(), args: args.encode() }
}

/// Unfreezes an instance (its admin only).
pub fn unfreeze(contract: &Address) -> Call {
    let args = lifecycle::ContractRef { contract: contract.0 };
    Call { contract: lifecycle(), method: lifecycle::methods::UNFREEZE.into(), args: args.encode() }
}

/// Hands an instance to another admin account (its admin only).
pub fn set_admin(contract: &Address, admin: &AccountId) -> Call {
    let args = lifecycle::SetAdmin { contract: contract.0, admin: admin.0 };
    Call { contract: lifecycle(), method: lifecycle::methods::SET_ADMIN.into(), args: args.encode() }
}

/// Calls for the example certificate-verification contract (`contracts/cert-verify`).
pub mod cert {
    use super::*;
    use shutong_cert_verify_api::{AddIssuer, CertId, Issue, Verify, methods};
    pub use shutong_cert_verify_api::{Answer, Certificate};

    pub fn add_issuer(contract: &Address, account: &AccountId) -> Call {
        let args = AddIssuer { account: account.0 };
        Call { contract: *contract, method: methods::ADD_ISSUER.into(), args: args.encode() }
    }

    pub fn issue(
        contract: &Address,
        id: &str,
        kind: &str,
        holder_hash: Hash,
        digest: Hash,
        valid_until_ms: u64,
    ) -> Call {
        let args = Issue {
            id: id.to_string(),
            kind: kind.to_string(),
            holder_hash: holder_hash.0,
            digest: digest.0,
            valid_until_ms,
        };
        Call { contract: *contract, method: methods::ISSUE.into(), args: args.encode() }
    }

    pub fn revoke(contract: &Address, id: &str) -> Call {
        let args = CertId { id: id.to_string() };
        Call { contract: *contract, method: methods::REVOKE.into(), args: args.encode() }
    }

    /// The arguments of `verify`, for a transaction ([`verify`]) or a query.
    pub fn verify_args(id: &str, holder_hash: Hash, digest: Hash) -> Vec<u8> {
        Verify { id: id.to_string(), holder_hash: holder_hash.0, digest: digest.0 }.encode()
    }

    /// Asks whether a document is certified, on the record (an audit-log leaf).
    pub fn verify(contract: &Address, id: &str, holder_hash: Hash, digest: Hash) -> Call {
        Call { contract: *contract, method: methods::VERIFY.into(), args: verify_args(id, holder_hash, digest) }
    }

    /// The digest the contract keeps of a document or a holder's identifier: blake3.
    pub fn digest(bytes: &[u8]) -> Hash {
        Hash(*blake3::hash(bytes).as_bytes())
    }

    /// The arguments of `get`.
    pub fn get_args(id: &str) -> Vec<u8> {
        CertId { id: id.to_string() }.encode()
    }
}

/// The keyed digest of a data subject's reference (an identity number, a case number) that
/// goes on chain in its place: HMAC-SM3 on an `sm2-sm3` chain, keyed BLAKE3 on
/// `ed25519-blake3`, under the organisation's own 32-byte subject key, which never leaves it.
/// The same subject and key always give the same digest, so an organisation can find its
/// records; nobody without the key can test a guess.
pub fn subject_ref(suite: Suite, key: &[u8; 32], subject: &str) -> Hash {
    Hash::keyed(suite, key, shutong_types::hash::tag::SUBJECT_REF, subject.as_bytes())
}

/// The governance system contract's address.
pub fn governance() -> Address {
    Address::system(names::GOVERNANCE)
}

/// Proposes a governance decision (an admin; it counts as the proposer's vote). The output
/// is the proposal id.
pub fn propose(action: shutong_system_api::governance::Action) -> Call {
    let args = shutong_system_api::governance::Propose { action };
    Call { contract: governance(), method: "propose".into(), args: args.encode() }
}

/// Votes for a governance proposal (a committee member); it is carried out once members of
/// enough organisations voted.
pub fn vote(proposal: u64) -> Call {
    let args = shutong_system_api::governance::ProposalId { id: proposal };
    Call { contract: governance(), method: "vote".into(), args: args.encode() }
}

/// Schedules a new validator set (a committee member, while one organisation's vote is the
/// threshold); it takes effect
/// `CHANGE_DELAY_BLOCKS` blocks after the block that includes this call.
/// Each key that joins the set needs its holder's proof of possession ([`possession`]).
pub fn set_validators(keys: &[shutong_types::PublicKey], proofs: &[shutong_system_api::governance::KeyProof]) -> Call {
    let args = shutong_system_api::governance::SetValidators {
        keys: keys.iter().map(shutong_types::PublicKey::to_key_bytes).collect(),
        proofs: proofs.to_vec(),
    };
    Call { contract: governance(), method: "set_validators".into(), args: args.encode() }
}

/// Reports two conflicting votes of one validator (anyone may; the votes prove
/// themselves): the chain records the evidence once per validator and view.
pub fn report_equivocation(evidence: &shutong_system_api::governance::Equivocation) -> Call {
    Call { contract: governance(), method: "report_equivocation".into(), args: evidence.encode() }
}

/// A validator key's proof of possession for joining the set `keys` on chain `chain_id`:
/// the key's holder signs the chain id and the proposed set, and hands the proof to the
/// committee member who proposes the change. On an `sm2-sm3` chain it also binds the
/// holder's ed25519 `transport` key (its p2p identity); on `ed25519-blake3`, `None`
/// unless the key is in a token (which cannot be the p2p identity).
pub fn possession(
    chain_id: &str,
    keys: &[shutong_types::PublicKey],
    key: &dyn Signer,
    transport: Option<&shutong_types::PublicKey>,
) -> Result<shutong_system_api::governance::KeyProof, SignerError> {
    let set: Vec<shutong_system_api::KeyBytes> = keys.iter().map(shutong_types::PublicKey::to_key_bytes).collect();
    let message = shutong_system_api::governance::possession_message(chain_id, &set);
    let transport = match transport {
        Some(t) => shutong_types::transport::Transport::try_bind(chain_id, key, t)?.to_record(),
        None => None,
    };
    Ok(shutong_system_api::governance::KeyProof {
        key: key.public().to_key_bytes(),
        signature: key.try_sign(&message)?.0,
        transport,
    })
}
