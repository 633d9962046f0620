//! `shutong contract`: approve, upload, instantiate, call, query, migrate, freeze.

use super::tx::RawCall;
use crate::context::{Ctx, Outcome, Shown, args_hex, parse_contract, read_wasm, shown};
use anyhow::Context;
use clap::Subcommand;
use shutong_sdk::builder;
use shutong_types::{AccountId, Address, Hash};
use std::path::PathBuf;

#[derive(Subcommand)]
pub(crate) enum ContractCommand {
    /// Print the code hash of a wasm file (what governance approves), without a node.
    Hash {
        #[arg(long)]
        wasm: PathBuf,
        /// The suite of the chain it is for (code hashes follow it).
        #[arg(long, env = "SHUTONG_SUITE", default_value = "ed25519-blake3", value_parser = super::testnet::parse_suite)]
        suite: shutong_types::Suite,
    },
    /// Approve a code hash for upload (a governance admin, while the committee has one admin;
    /// otherwise `gov propose approve-code`).
    Approve {
        #[arg(long)]
        code_hash: Hash,
    },
    /// Upload wasm code; prints its code hash.
    Upload {
        #[arg(long)]
        wasm: PathBuf,
    },
    /// Instantiate uploaded code under a label; prints the new contract's address.
    Instantiate {
        #[arg(long)]
        code_hash: Hash,
        /// 1 to 64 of a-z 0-9 - _ . ; with the signer's account it fixes the address.
        #[arg(long)]
        label: String,
        /// The account that may migrate and freeze it (default: the signer).
        #[arg(long)]
        admin: Option<AccountId>,
        /// Arguments for the code's `init` method.
        #[arg(long, default_value = "")]
        args_hex: String,
    },
    /// Call a contract method in a transaction (hex arguments).
    Call(RawCall),
    /// Run a contract method read-only against the latest state; prints its hex output.
    Query(RawCall),
    /// Move a contract to other uploaded code (its admin only).
    Migrate {
        #[arg(long, value_parser = parse_contract)]
        contract: Address,
        #[arg(long)]
        code_hash: Hash,
        /// Arguments for the new code's `migrate` method.
        #[arg(long, default_value = "")]
        args_hex: String,
    },
    /// Stop all calls to a contract (its admin only).
    Freeze {
        #[arg(long, value_parser = parse_contract)]
        contract: Address,
    },
    /// Allow calls to a frozen contract again (its admin only).
    Unfreeze {
        #[arg(long, value_parser = parse_contract)]
        contract: Address,
    },
    /// A contract instance: code, admin, frozen, creator, label.
    Show {
        #[arg(long, value_parser = parse_contract)]
        contract: Address,
    },
    /// Uploaded code: uploader, size, methods.
    Code {
        #[arg(long)]
        code_hash: Hash,
    },
}

pub(crate) async fn run(command: ContractCommand, ctx: &Ctx) -> Shown {
    Ok(Outcome::Send(match command {
        ContractCommand::Hash { wasm, suite } => {
            let code = read_wasm(&wasm)?;
            let hash = shutong_vm::Vm::code_hash(suite, &code);
            let json = serde_json::json!({"file": wasm, "suite": suite, "code_hash": hash, "size": code.len()});
            return shown(json, hash.to_hex());
        }
        ContractCommand::Approve { code_hash } => builder::approve_code(&code_hash),
        ContractCommand::Upload { wasm } => builder::upload_code(&read_wasm(&wasm)?),
        ContractCommand::Instantiate { code_hash, label, admin, args_hex: args } => {
            let admin = match admin {
                Some(admin) => admin,
                None => ctx.signer()?.account(),
            };
            builder::instantiate(&code_hash, &label, &admin, &args_hex(&args)?)
        }
        ContractCommand::Call(raw) => raw.to_call()?,
        ContractCommand::Migrate { contract, code_hash, args_hex: args } => {
            builder::migrate(&contract, &code_hash, &args_hex(&args)?)
        }
        ContractCommand::Freeze { contract } => builder::freeze(&contract),
        ContractCommand::Unfreeze { contract } => builder::unfreeze(&contract),
        ContractCommand::Query(raw) => {
            let out = hex::encode(ctx.client()?.query(&raw.contract, &raw.method, &args_hex(&raw.args_hex)?).await?);
            return shown(serde_json::json!({"output": out}), out.clone());
        }
        ContractCommand::Show { contract } => {
            let info =
                ctx.client()?.contract(&contract).await?.with_context(|| format!("no contract at {contract}"))?;
            let text = format!(
                "contract {}  label {:?}\ncode {}  admin {}  frozen {}\ncreator {}  created at height {}  code since height {}",
                info.address,
                info.label,
                info.code_hash,
                info.admin,
                info.frozen,
                info.creator,
                info.created_height,
                info.code_height
            );
            return shown(serde_json::to_value(&info)?, text);
        }
        ContractCommand::Code { code_hash } => {
            let info =
                ctx.client()?.code(&code_hash).await?.with_context(|| format!("no code {code_hash} is uploaded"))?;
            let text = format!(
                "code {}  {} bytes  uploaded by {} at height {}\nmethods {}",
                info.code_hash,
                info.size,
                info.uploader,
                info.height,
                info.methods.join(", ")
            );
            return shown(serde_json::to_value(&info)?, text);
        }
    }))
}
