//! Typed reads of the system contracts: each function names a contract method, encodes its
//! arguments and knows the type of its answer, so a caller never handles bytes.
//!
//! ```
//! # #[tokio::main(flavor = "multi_thread", worker_threads = 2)]
//! # async fn main() -> anyhow::Result<()> {
//! # let dir = tempfile::tempdir()?;
//! # let sandbox = shutong_node::sandbox::Sandbox::start(dir.path()).await?;
//! # let client = shutong_sdk::Client::new(&sandbox.rpc)?.signed_by(sandbox.admin.clone());
//! use shutong_sdk::{ClientError, RpcCode, reads};
//! let validators = client.read(reads::validators()).await?;
//! assert_eq!(validators.current.keys.len(), 1);
//! // Something that is not there: the contract's refusal, with its reason.
//! match client.read(reads::grant(7)).await {
//!     Err(err @ ClientError::Rpc { .. }) => assert_eq!(err.code(), Some(RpcCode::QueryFailed)),
//!     other => panic!("{other:?}"),
//! }
//! # sandbox.stop().await;
//! # Ok(()) }
//! ```
//!
//! A read runs against the node's latest committed state and is not proven; an auditor who
//! must not trust the node reads through [`crate::VerifyingClient`] instead.

use crate::builder;
use shutong_codec::{Decode, Encode};
use shutong_system_api::audit::{AttestationRecord, EventId, EventRecord, History, Violation};
use shutong_system_api::authz::{AccessRequest, Consent, ConsentId, Decision, Grant, Id, Use};
use shutong_system_api::catalog::{Classification, ElementRef, ElementSource, Resource, ResourceRef};
use shutong_system_api::governance::{
    Committee, LifecycleOutcome, Proposal, ProposalId, PurposeDef, ResolvePurpose, Validators,
};
use shutong_system_api::registry::{ApprovalPolicy, GetMember, GetOrg, GetPolicy, Member, Org};
use shutong_types::{AccountId, Address, Hash};
use std::marker::PhantomData;

/// A read-only contract call whose answer decodes as `T`. Run it with
/// [`crate::Client::read`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Read<T> {
    pub contract: Address,
    pub method: &'static str,
    pub args: Vec<u8>,
    answer: PhantomData<fn() -> T>,
}

impl<T: Decode> Read<T> {
    fn new(contract: Address, method: &'static str, args: Vec<u8>) -> Read<T> {
        Read { contract, method, args, answer: PhantomData }
    }

    /// Decodes the contract's answer.
    pub fn decode(&self, bytes: &[u8]) -> Result<T, shutong_codec::DecodeError> {
        T::decode(bytes)
    }

    /// The read as a call, to run in a transaction (tests on a chain without RPC).
    pub fn call(&self) -> shutong_types::Call {
        shutong_types::Call { contract: self.contract, method: self.method.to_string(), args: self.args.clone() }
    }
}

/// An organisation.
pub fn org(id: &str) -> Read<Org> {
    Read::new(builder::registry(), "get", GetOrg { id: id.to_string() }.encode())
}

/// The organisation, roles and status of the principal with this account.
pub fn member(account: &AccountId) -> Read<Member> {
    Read::new(builder::registry(), "member", GetMember { account: account.0 }.encode())
}

/// An organisation's approval route for requests for data of one classification.
pub fn approval_policy(org: &str, classification: Classification) -> Read<ApprovalPolicy> {
    Read::new(builder::registry(), "get_policy", GetPolicy { org: org.to_string(), classification }.encode())
}

/// A catalogued resource: its latest version, or the one named.
pub fn resource(code: &str, version: Option<u32>) -> Read<Resource> {
    Read::new(builder::catalog(), "get", ResourceRef { code: code.to_string(), version }.encode())
}

/// Which resource is the one authoritative source of a data element (一数一源).
pub fn element_source(element: &str) -> Read<ElementSource> {
    Read::new(builder::catalog(), "element", ElementRef { element: element.to_string() }.encode())
}

/// An access request and where it stands.
pub fn access_request(id: u64) -> Read<AccessRequest> {
    Read::new(builder::authz(), "get_request", Id { id }.encode())
}

/// A grant.
pub fn grant(id: u64) -> Read<Grant> {
    Read::new(builder::authz(), "get_grant", Id { id }.encode())
}

/// A consent record.
pub fn consent(id: &str) -> Read<Consent> {
    Read::new(builder::authz(), "get_consent", ConsentId { id: id.to_string() }.encode())
}

/// Whether this use would be permitted now, and why not: what a gateway asks.
pub fn check(request: &Use) -> Read<Decision> {
    Read::new(builder::authz(), "check", request.encode())
}

/// A recorded access event.
pub fn access_event(id: u64) -> Read<EventRecord> {
    Read::new(builder::audit(), "get_event", EventId { id }.encode())
}

/// A grant's access events after event `after`, at most `limit` of them, in order.
pub fn access_history(grant: u64, after: Option<u64>, limit: u32) -> Read<Vec<EventRecord>> {
    Read::new(builder::audit(), "history", History { grant, after, limit }.encode())
}

/// A gateway's anchored batch `seq` of `grant`, as the audit contract recorded it: how
/// each group was counted, and the violations it opened.
pub fn anchor(grant: u64, gateway: &[u8; 32], seq: u64) -> Read<shutong_system_api::audit::AnchorRecord> {
    let args = shutong_system_api::audit::GetAnchor { grant, gateway: *gateway, seq };
    Read::new(builder::audit(), "get_anchor", args.encode())
}

/// A violation opened by a denied use or an anchored batch's excess.
pub fn violation(id: u64) -> Read<Violation> {
    Read::new(builder::audit(), "get_violation", EventId { id }.encode())
}

/// A recorded yes/no answer given instead of data.
pub fn attestation(id: u64) -> Read<AttestationRecord> {
    Read::new(builder::audit(), "get_attestation", EventId { id }.encode())
}

/// The validator set in force, and any scheduled change.
pub fn validators() -> Read<Validators> {
    Read::new(builder::governance(), "get_validators", Vec::new())
}

/// Recorded equivocation evidence, a page at a time (by validator, epoch and view), after
/// the record whose `evidence_id` is `after`.
pub fn evidence(after: Option<Vec<u8>>, limit: u32) -> Read<shutong_system_api::governance::EvidencePage> {
    let args = shutong_system_api::governance::ListEvidence { after, limit };
    Read::new(builder::governance(), "list_evidence", args.encode())
}

/// A governance proposal and its votes.
pub fn proposal(id: u64) -> Read<Proposal> {
    Read::new(builder::governance(), "get_proposal", ProposalId { id }.encode())
}

/// Where a carried lifecycle decision stands: scheduled, or carried out (and if refused, why).
pub fn lifecycle_outcome(proposal: u64) -> Read<LifecycleOutcome> {
    Read::new(builder::governance(), "get_outcome", ProposalId { id: proposal }.encode())
}

/// The governance committee: its seats and threshold.
pub fn committee() -> Read<Committee> {
    Read::new(builder::governance(), "get_committee", Vec::new())
}

/// The nearest defined purpose at or above `code` in the purpose hierarchy.
pub fn purpose(code: &str) -> Read<PurposeDef> {
    Read::new(builder::governance(), "resolve_purpose", ResolvePurpose { code: code.to_string() }.encode())
}

/// A certificate of the example certificate contract at `contract`.
pub fn certificate(contract: &Address, id: &str) -> Read<builder::cert::Certificate> {
    Read::new(*contract, "get", builder::cert::get_args(id))
}

/// Whether a document is certified, asked off the record (no audit leaf).
pub fn certified(contract: &Address, id: &str, holder_hash: Hash, digest: Hash) -> Read<builder::cert::Answer> {
    Read::new(*contract, "verify", builder::cert::verify_args(id, holder_hash, digest))
}

impl crate::Client {
    /// Runs a typed read against the latest committed state. A refusal by the contract
    /// (nothing with that id, say) is [`crate::RpcCode::QueryFailed`] with its message.
    pub async fn read<T: Decode>(&self, read: Read<T>) -> Result<T, crate::ClientError> {
        let bytes = self.query(&read.contract, read.method, &read.args).await?;
        read.decode(&bytes).map_err(|e| {
            crate::ClientError::Malformed(format!("the answer of {} is not what it should be: {e}", read.method))
        })
    }
}
