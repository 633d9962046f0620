//! `shutong grant`: grants: check, amend, delegate, suspend, resume, revoke.

use crate::context::{Ctx, Outcome, Shown, list, shown};
use anyhow::Context;
use clap::{Args, Subcommand};
use shutong_sdk::builder::{self, access};
use shutong_sdk::reads;
use shutong_sdk::system_api::authz::Use;
use shutong_types::AccountId;

use super::request::{TermsArgs, delegated_terms, terms_for};
use super::values::*;

#[derive(Args)]
pub struct UseArgs {
    /// The grant.
    #[arg(long)]
    pub id: u64,
    /// The consumer principal's account.
    #[arg(long)]
    pub consumer: AccountId,
    /// Comma-separated field names.
    #[arg(long)]
    pub fields: String,
    #[arg(long, default_value = "query", value_parser = methods)]
    pub method: u8,
    #[arg(long)]
    pub purpose: String,
    #[arg(long, default_value_t = 1)]
    pub records: u64,
}

impl UseArgs {
    pub fn to_use(&self) -> Use {
        Use {
            grant: self.id,
            account: self.consumer.0,
            fields: list(&self.fields),
            method: self.method,
            purpose: self.purpose.clone(),
            count: self.records,
        }
    }
}

#[derive(Subcommand)]
pub enum GrantCommand {
    /// A grant: its terms, uses and status.
    Show {
        /// The grant.
        #[arg(long)]
        id: u64,
    },
    /// Would this use be permitted now? (What a gateway asks.)
    Check(UseArgs),
    /// Supersede a grant with amended terms (the provider's CDO); the uses made carry over.
    /// Terms are derived from the grant's request and these flags, as for `request approve`.
    Amend {
        /// The grant.
        #[arg(long)]
        id: u64,
        #[command(flatten)]
        terms: TermsArgs,
    },
    /// Delegate part of a delegable grant to another organisation (the grantee's admin).
    Delegate {
        /// The grant.
        #[arg(long)]
        id: u64,
        /// The organisation that receives the sub-grant.
        #[arg(long)]
        to: String,
        #[command(flatten)]
        terms: TermsArgs,
    },
    /// Suspend a grant and its delegations, with a reason (the provider).
    Suspend {
        /// The grant.
        #[arg(long)]
        id: u64,
        #[arg(long)]
        reason: String,
    },
    /// Resume a suspended grant (the provider).
    Resume {
        /// The grant.
        #[arg(long)]
        id: u64,
    },
    /// Revoke a grant and its delegations, with a reason (the provider).
    Revoke {
        /// The grant.
        #[arg(long)]
        id: u64,
        #[arg(long)]
        reason: String,
    },
    /// Close grants bound to a case that has closed.
    CloseCase {
        /// The case reference; only its hash goes on chain.
        #[arg(long)]
        case: String,
        /// Comma-separated grant ids.
        #[arg(long)]
        ids: String,
    },
}

pub async fn run(command: GrantCommand, ctx: &Ctx) -> Shown {
    Ok(Outcome::Send(match command {
        GrantCommand::Amend { id, terms } => {
            let client = ctx.client()?;
            let g = client.read(reads::grant(id)).await?;
            let req = client.read(reads::access_request(g.request)).await?;
            access::amend(id, &terms_for(&req, terms))
        }
        GrantCommand::Delegate { id, to, terms } => {
            let client = ctx.client()?;
            let parent = client.read(reads::grant(id)).await?;
            let now_ms = ctx.status(&client).await?.timestamp_ms;
            access::delegate(id, &to, &delegated_terms(&parent, terms, now_ms))
        }
        GrantCommand::Suspend { id, reason } => access::suspend(id, &reason),
        GrantCommand::Resume { id } => access::resume(id),
        GrantCommand::Revoke { id, reason } => access::revoke(id, &reason),
        GrantCommand::CloseCase { case, ids } => {
            let ids: Result<Vec<u64>, _> = list(&ids).iter().map(|g| g.parse::<u64>()).collect();
            let ids = ids.context("--ids is a comma-separated list of grant ids")?;
            access::close_case(builder::cert::digest(case.as_bytes()).0, &ids)
        }
        GrantCommand::Show { id } => {
            let g = ctx.client()?.read(reads::grant(id)).await?;
            let text = format!(
                "grant {}  {} -> {}  {} [{}] for {}\nuses {} of {}  status {}{}",
                g.id,
                g.grantor_org,
                g.grantee_org,
                g.resource,
                g.terms.fields.join(","),
                g.terms.purposes.join(","),
                g.uses,
                g.terms.max_uses,
                g.status.name(),
                if g.reason.is_empty() { String::new() } else { format!(" ({})", g.reason) }
            );
            return shown(grant_json(&g), text);
        }
        GrantCommand::Check(u) => {
            let d = ctx.client()?.read(reads::check(&u.to_use())).await?;
            let json = serde_json::json!({"permit": d.permit, "reason": d.reason, "violation": d.violation});
            let text = if d.permit { "permit".to_string() } else { format!("deny: {}", d.reason) };
            return shown(json, text);
        }
    }))
}
