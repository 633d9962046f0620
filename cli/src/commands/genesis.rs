//! `shutong genesis`: the genesis ceremony of N departments. Each department makes its own
//! keys and hands over only their public parts; one coordinator assembles the genesis from
//! them (`genesis new`); every department checks the file it receives (`genesis show`) and
//! compares its hash with the others' over another channel before anyone starts a node
//! (`shutong init --genesis`). `docs/operations.md`, "The genesis ceremony".

use crate::context::{Shown, shown};
use anyhow::Context;
use clap::Subcommand;
use shutong_execution::genesis::{CommitteeMember, Genesis, GenesisValidator};
use shutong_types::{AccountId, PublicKey};
use std::path::{Path, PathBuf};

/// The largest validator entry file read (`keys bind-transport` prints a few hundred bytes).
const ENTRY_BYTES_MAX: u64 = 64 * 1024;

#[derive(Subcommand)]
pub(crate) enum GenesisCommand {
    /// Assemble a genesis from the departments' public parts, and print its hash.
    New {
        #[arg(long)]
        chain_id: String,
        /// A validator, as NAME=PUBLIC_KEY, or the file of the genesis entry that
        /// `shutong keys bind-transport` printed (needed on an sm2-sm3 chain, whose
        /// validators bind an ed25519 transport key). Repeatable; the suite is the keys'.
        #[arg(long = "validator", required = true)]
        validators: Vec<String>,
        /// A governance committee seat, as ORG=ACCOUNT or ORG=ACCOUNT=NAME: the department's
        /// organisation id, the account of the key that votes for it, and its name.
        /// Repeatable.
        #[arg(long = "committee", required = true)]
        committee: Vec<String>,
        /// How many departments must vote for a proposal (default: a majority).
        #[arg(long)]
        threshold: Option<u32>,
        /// The chain's start, in Unix milliseconds (default: now).
        #[arg(long)]
        genesis_time_ms: Option<u64>,
        /// Where to write it; refused if the file exists.
        #[arg(long)]
        out: PathBuf,
    },
    /// Check a genesis file and print its hash and everything it names, for the departments
    /// to compare before they start their nodes.
    Show {
        #[arg(long)]
        genesis: PathBuf,
    },
}

/// `NAME=PUBLIC_KEY`, or a file holding a validator's genesis entry.
fn validator(arg: &str) -> anyhow::Result<GenesisValidator> {
    if let Some((name, key)) = arg.split_once('=')
        && let Ok(key) = key.parse::<PublicKey>()
    {
        anyhow::ensure!(!name.is_empty(), "--validator {arg}: the name before = is empty");
        return Ok(GenesisValidator::new(name, key));
    }
    let path = Path::new(arg);
    let text = shutong_sdk::files::read_bounded(path, ENTRY_BYTES_MAX)
        .with_context(|| format!("--validator {arg} is neither NAME=PUBLIC_KEY nor a readable entry file"))?
        .with_context(|| format!("--validator {arg}: larger than {ENTRY_BYTES_MAX} bytes"))?;
    serde_json::from_str(&text)
        .with_context(|| format!("--validator {arg}: not a validator entry as `shutong keys bind-transport` prints"))
}

/// `ORG=ACCOUNT` or `ORG=ACCOUNT=NAME`.
fn seat(arg: &str) -> anyhow::Result<CommitteeMember> {
    let mut parts = arg.splitn(3, '=');
    let (Some(org), Some(account)) = (parts.next(), parts.next()) else {
        anyhow::bail!("--committee {arg}: expected ORG=ACCOUNT or ORG=ACCOUNT=NAME");
    };
    let account: AccountId =
        account.parse().map_err(|e| anyhow::anyhow!("--committee {arg}: {account:?} is not an account: {e}"))?;
    let name = parts.next().map_or_else(|| org.to_string(), str::to_string);
    Ok(CommitteeMember::new(org, &name, account))
}

fn describe(genesis: &Genesis) -> (serde_json::Value, String) {
    let hash = genesis.hash();
    let block = genesis.block().header.hash();
    let json = serde_json::json!({
        "chain_id": genesis.chain_id,
        "suite": genesis.suite,
        "genesis_hash": hash,
        "block_0_hash": block,
        "genesis_time_ms": genesis.genesis_time_ms,
        "validators": genesis.validators.iter().map(|v| serde_json::json!({
            "name": v.name, "public_key": v.public_key, "transport": v.transport.as_ref().map(|t| t.key),
        })).collect::<Vec<_>>(),
        "committee": genesis.committee.iter().map(|m| serde_json::json!({
            "org": m.org, "name": m.name, "account": m.account,
        })).collect::<Vec<_>>(),
        "governance_threshold": genesis.governance_threshold,
    });
    let mut text =
        format!("chain {} ({}), genesis hash {hash}\nblock 0 {block}\nvalidators:\n", genesis.chain_id, genesis.suite);
    for v in &genesis.validators {
        text.push_str(&format!("  {:<16} {}\n", v.name, v.public_key));
    }
    text.push_str(&format!("committee (a proposal carries with {} of them):\n", genesis.governance_threshold));
    for m in &genesis.committee {
        text.push_str(&format!("  {:<16} {} {}\n", m.org, m.account, m.name));
    }
    text.push_str("compare the genesis hash with every other department's before starting a node");
    (json, text)
}

pub(crate) fn run(command: GenesisCommand) -> Shown {
    match command {
        GenesisCommand::New { chain_id, validators, committee, threshold, genesis_time_ms, out } => {
            anyhow::ensure!(!out.exists(), "{} exists: choose another --out", out.display());
            let validators = validators.iter().map(|v| validator(v)).collect::<anyhow::Result<Vec<_>>>()?;
            let committee = committee.iter().map(|c| seat(c)).collect::<anyhow::Result<Vec<_>>>()?;
            let now_ms = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH)?.as_millis() as u64;
            let mut genesis = Genesis::new(&chain_id, genesis_time_ms.unwrap_or(now_ms), validators, committee);
            if let Some(threshold) = threshold {
                genesis.governance_threshold = threshold;
            }
            genesis.validate()?;
            std::fs::write(&out, serde_json::to_string_pretty(&genesis)?)
                .with_context(|| format!("cannot write {}", out.display()))?;
            let (mut json, text) = describe(&genesis);
            json["file"] = serde_json::json!(out);
            shown(json, format!("wrote {}\n{text}", out.display()))
        }
        GenesisCommand::Show { genesis } => {
            let genesis = Genesis::load(&genesis)?;
            let (json, text) = describe(&genesis);
            shown(json, text)
        }
    }
}
