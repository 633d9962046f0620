//! `shutong cert`: the example certificate-verification contract (证明电子化).

use crate::context::{Ctx, Outcome, Shown, parse_contract, read_bounded, shown};
use clap::{Args, Subcommand};
use shutong_sdk::{builder, reads};
use shutong_types::{AccountId, Address, Hash};
use std::path::PathBuf;

#[derive(Subcommand)]
pub(crate) enum CertCommand {
    /// Allow an account to issue certificates (the contract's admin).
    AddIssuer {
        #[arg(long, value_parser = parse_contract)]
        contract: Address,
        #[arg(long)]
        account: AccountId,
    },
    /// Issue a certificate for a document (issuers only).
    Issue {
        #[command(flatten)]
        doc: CertDocument,
        #[arg(long)]
        kind: String,
        /// How long it stays valid.
        #[arg(long, default_value_t = 365)]
        valid_days: u64,
    },
    /// Ask, on the record (an audit-log leaf), whether a document is certified.
    Verify {
        #[command(flatten)]
        doc: CertDocument,
    },
    /// Ask, off the record (a query), whether a document is certified.
    Check {
        #[command(flatten)]
        doc: CertDocument,
    },
    /// Revoke a certificate (its issuer only).
    Revoke {
        #[arg(long, value_parser = parse_contract)]
        contract: Address,
        #[arg(long)]
        id: String,
    },
    /// A certificate.
    Show {
        #[arg(long, value_parser = parse_contract)]
        contract: Address,
        #[arg(long)]
        id: String,
    },
}

#[derive(Args)]
pub(crate) struct CertDocument {
    /// The certificate contract's address.
    #[arg(long, value_parser = parse_contract)]
    contract: Address,
    #[arg(long)]
    id: String,
    /// The holder's identifier (for example a unified social credit code); only its hash goes on chain.
    #[arg(long)]
    holder: String,
    /// The certified document; only its hash goes on chain.
    #[arg(long)]
    document: PathBuf,
}

/// The holder's and the document's hashes.
pub(crate) fn cert_hashes(doc: &CertDocument) -> anyhow::Result<(Hash, Hash)> {
    let document = read_bounded(&doc.document, 64 << 20, "a certified document")?;
    Ok((builder::cert::digest(doc.holder.as_bytes()), builder::cert::digest(&document)))
}

pub(crate) fn answer_text(answer: &builder::cert::Answer) -> String {
    if answer.valid { "certified: yes".to_string() } else { format!("certified: no ({})", answer.reason) }
}

pub(crate) async fn run(command: CertCommand, ctx: &Ctx) -> Shown {
    Ok(Outcome::Send(match command {
        CertCommand::AddIssuer { contract, account } => builder::cert::add_issuer(&contract, &account),
        CertCommand::Issue { doc, kind, valid_days } => {
            let (holder, digest) = cert_hashes(&doc)?;
            let client = ctx.client()?;
            let now_ms = ctx.status(&client).await?.timestamp_ms;
            let until = now_ms.saturating_add(valid_days.saturating_mul(86_400_000));
            builder::cert::issue(&doc.contract, &doc.id, &kind, holder, digest, until)
        }
        CertCommand::Verify { doc } => {
            let (holder, digest) = cert_hashes(&doc)?;
            builder::cert::verify(&doc.contract, &doc.id, holder, digest)
        }
        CertCommand::Revoke { contract, id } => builder::cert::revoke(&contract, &id),
        CertCommand::Check { doc } => {
            let (holder, digest) = cert_hashes(&doc)?;
            let answer = ctx.client()?.read(reads::certified(&doc.contract, &doc.id, holder, digest)).await?;
            let json = serde_json::json!({"valid": answer.valid, "reason": answer.reason});
            return shown(json, answer_text(&answer));
        }
        CertCommand::Show { contract, id } => {
            let c = ctx.client()?.read(reads::certificate(&contract, &id)).await?;
            let json = serde_json::json!({
                "id": c.id, "kind": c.kind, "issuer": hex::encode(c.issuer),
                "holder_hash": hex::encode(c.holder_hash), "digest": hex::encode(c.digest),
                "valid_until_ms": c.valid_until_ms, "revoked": c.revoked,
            });
            let text = format!(
                "certificate {}  {}  issued by {}  valid until {}{}",
                c.id,
                c.kind,
                hex::encode(c.issuer),
                super::audit::utc(c.valid_until_ms),
                if c.revoked { "  REVOKED" } else { "" }
            );
            return shown(json, text);
        }
    }))
}
