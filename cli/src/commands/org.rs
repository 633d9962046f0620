//! `shutong org`: organisations and their principals (keys with roles).

use crate::context::{Ctx, Outcome, Shown, shown};
use clap::Subcommand;
use shutong_sdk::builder::{self};
use shutong_sdk::reads;
use shutong_sdk::system_api::catalog::Classification;
use shutong_sdk::system_api::registry::{Org, OrgKind, OrgStatus, PrincipalKind, PrincipalStatus};
use shutong_types::AccountId;

use super::values::*;

#[derive(Subcommand)]
pub enum OrgCommand {
    /// Register an organisation; the signer becomes its admin.
    Register {
        /// The organisation.
        #[arg(long)]
        id: String,
        #[arg(long)]
        name: String,
        /// department, enterprise, auditor or operator.
        #[arg(long, value_parser = org_kind)]
        kind: OrgKind,
    },
    /// Rename an organisation or change its status (its admin).
    Update {
        /// The organisation.
        #[arg(long)]
        id: String,
        #[arg(long)]
        name: Option<String>,
        /// active or suspended.
        #[arg(long, value_parser = org_status)]
        status: Option<OrgStatus>,
    },
    /// An organisation from the registry.
    Show {
        /// The organisation.
        #[arg(long)]
        id: String,
    },
    /// Add a key to an organisation or change its roles, kind or status (an admin of it).
    SetPrincipal {
        /// The organisation.
        #[arg(long)]
        id: String,
        #[arg(long)]
        account: AccountId,
        /// Comma-separated: admin, data_provider, data_consumer, auditor, cdo, security_officer, deployer, validator.
        #[arg(long, value_parser = roles)]
        roles: u32,
        /// person, system, gateway or validator.
        #[arg(long, default_value = "person", value_parser = kind)]
        kind: PrincipalKind,
        /// active or suspended.
        #[arg(long, default_value = "active", value_parser = status)]
        status: PrincipalStatus,
    },
    /// Which organisation an account acts for, with which roles.
    Member {
        #[arg(long)]
        account: AccountId,
    },
    /// Set the approval route for requests for one classification (an admin of it): one
    /// distinct approver per step.
    SetPolicy {
        /// The organisation.
        #[arg(long)]
        id: String,
        /// general or important.
        #[arg(long, value_parser = classification)]
        classification: Classification,
        /// A step's roles, comma-separated; repeat for each step (`--step cdo --step security_officer`).
        #[arg(long = "step", required = true, value_parser = roles)]
        steps: Vec<u32>,
    },
    /// An organisation's approval route for one classification.
    Policy {
        /// The organisation.
        #[arg(long)]
        id: String,
        #[arg(long, value_parser = classification)]
        classification: Classification,
    },
    /// Hand the signer's organisation and roles to a new key; the signing key stops acting.
    RotateKey {
        #[arg(long)]
        new_account: AccountId,
    },
}

pub(crate) fn org_json(org: &Org) -> serde_json::Value {
    serde_json::json!({
        "id": org.id, "name": org.name, "kind": org.kind.name(), "status": org.status.name(),
        "admin": hex::encode(org.admin), "registered_height": org.registered_height,
        "updated_height": org.updated_height,
    })
}

pub async fn run(command: OrgCommand, ctx: &Ctx) -> Shown {
    Ok(match command {
        OrgCommand::Register { id, name, kind } => Outcome::Send(builder::register_org(&id, &name, kind)),
        OrgCommand::Update { id, name, status } => {
            anyhow::ensure!(name.is_some() || status.is_some(), "org update needs --name or --status");
            Outcome::Send(builder::update_org(&id, name.as_deref(), status))
        }
        OrgCommand::SetPrincipal { id, account, roles, kind, status } => {
            Outcome::Send(builder::set_principal(&id, &account, kind, roles, status))
        }
        OrgCommand::SetPolicy { id, classification, steps } => {
            Outcome::Send(builder::set_policy(&id, classification, &steps))
        }
        OrgCommand::RotateKey { new_account } => Outcome::Send(builder::rotate_key(&new_account)),
        OrgCommand::Show { id } => {
            let org = ctx.client()?.read(reads::org(&id)).await?;
            let text = format!(
                "{}  {:?}  {}  {}\nadmin {}  registered at height {}  updated at height {}",
                org.id,
                org.name,
                org.kind.name(),
                org.status.name(),
                hex::encode(org.admin),
                org.registered_height,
                org.updated_height
            );
            return shown(org_json(&org), text);
        }
        OrgCommand::Member { account } => {
            let m = ctx.client()?.read(reads::member(&account)).await?;
            let p = &m.principal;
            let json = serde_json::json!({
                "account": hex::encode(p.account), "org": p.org, "kind": p.kind.name(),
                "roles": role_names(p.roles), "status": p.status.name(), "acting": m.acting,
                "org_status": m.org_status.name(), "rotated_to": p.rotated_to.map(hex::encode),
            });
            let text = format!(
                "{} of {}  roles {}  {}  {}",
                p.kind.name(),
                p.org,
                role_names(p.roles),
                p.status.name(),
                if m.acting { "acting" } else { "not acting" }
            );
            return shown(json, text);
        }
        OrgCommand::Policy { id, classification } => {
            let policy = ctx.client()?.read(reads::approval_policy(&id, classification)).await?;
            let steps: Vec<String> = policy.steps.iter().map(|s| role_names(*s)).collect();
            let json = serde_json::json!({"org": policy.org, "classification": classification.name(), "steps": steps});
            return shown(json, format!("{} {} data: {}", policy.org, classification.name(), steps.join(" then ")));
        }
    })
}
