//! Equivocation evidence goes on chain: when the consensus engine finds two conflicting
//! votes of one validator (`shutong_consensus::Evidence`), this validator signs a
//! transaction with its own key that hands both to the governance contract's
//! `report_equivocation`, which checks them against that epoch's set and records them once
//! (`shutong_system_api::governance`). The transaction goes through the mempool like a
//! client's, so it is batched, pushed to the other validators and sent again if a batch is
//! lost. If another validator reported the same view first, this one's is refused on chain
//! as already recorded, at no other cost.

use crate::mempool::{AdmitError, ChainView, Mempool};
use shutong_codec::Encode;
use shutong_consensus::{Evidence, SignedVote};
use shutong_system_api::governance::{Equivocation, SignedVote as VoteRecord};
use shutong_types::{Call, Hash, Signer, Transaction};

/// Gas for one report: two signature checks and one record.
pub const REPORT_GAS: u64 = 1_000_000;
/// How many blocks a report may wait to be included.
pub const REPORT_EXPIRY_BLOCKS: u64 = 1_000;

fn record(vote: &SignedVote) -> VoteRecord {
    VoteRecord {
        kind: vote.subject.kind as u8,
        epoch: vote.subject.epoch,
        view: vote.subject.view,
        digest: vote.subject.digest.0,
        signer: vote.signer,
        signature: vote.signature.0,
    }
}

/// The governance call that reports `evidence`.
pub fn report_call(evidence: &Evidence) -> Call {
    let args = Equivocation { first: record(&evidence.first), second: record(&evidence.second) };
    Call {
        contract: shutong_execution::epochs::governance(),
        method: "report_equivocation".into(),
        args: args.encode(),
    }
}

/// Signs a report of `evidence` by `key` with the account's next free nonce and admits it to
/// the mempool; returns its id.
pub fn report(
    evidence: &Evidence,
    key: &dyn Signer,
    mempool: &mut Mempool,
    chain: &dyn ChainView,
) -> Result<Hash, ReportError> {
    let sender = key.account();
    let tx = Transaction {
        chain_id: chain.chain_id().to_string(),
        sender,
        nonce: mempool.next_nonce(&sender, chain),
        gas_limit: REPORT_GAS,
        expiry_height: chain.next_height() + REPORT_EXPIRY_BLOCKS,
        call: report_call(evidence),
    }
    .try_sign(key)?;
    Ok(mempool.admit(&tx.encode(), chain)?)
}

/// Why a report of evidence is not in the mempool.
#[derive(Debug, thiserror::Error)]
pub enum ReportError {
    #[error(transparent)]
    Signer(#[from] shutong_types::SignerError),
    #[error(transparent)]
    Admit(#[from] AdmitError),
}
