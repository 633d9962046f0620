//! Worked examples of the Shutong SDK, one per kind of user: a providing department, a consuming enterprise, an enterprise deploying its own contract, and an auditor.
//!
//! Each module is a short program that runs against a real chain:
//!
//! - [`provider`]: a department that publishes data, approves a request, and runs a data
//!   gateway that checks each use against proven chain state, records it, anchors the
//!   batch on chain and hands an auditor an event's proof;
//! - [`consumer`]: an enterprise that joins, asks for data for a purpose and waits for the
//!   grant;
//! - [`contract`]: an enterprise deploying its own wasm contract and calling it;
//! - [`auditor`]: an inspection office that asks, on the record, for a grant's full history
//!   and checks every entry, and its completeness, against headers the validators finalized.
//!
//! Each has a command in `src/bin/` (`cargo run -p shutong-examples --bin provider -- --help`),
//! and `cli/tests/it/examples.rs` runs them all against a local testnet of validator processes.

pub mod auditor;
pub mod consumer;
pub mod contract;
pub mod provider;

use anyhow::Context;
use shutong_codec::Decode;
use shutong_sdk::system_api::governance::Action;
use shutong_sdk::{Client, Signer, builder, keyfile};
use shutong_types::{Keypair, Suite};
use std::path::Path;

/// Carries `action` as the governance committee: the first of `committee` proposes it, the
/// others vote in turn until it is carried (pass seats of as many departments as the
/// threshold asks).
pub async fn decide(committee: &[Signer], action: Action) -> anyhow::Result<()> {
    let (first, others) = committee.split_first().context("a decision needs at least one committee seat")?;
    let proposed = first.send(builder::propose(action)).await?;
    anyhow::ensure!(proposed.status.is_success(), "the proposal failed: {:?}", proposed.status);
    if proposed.events.iter().any(|e| e.topic == "proposal.executed") {
        return Ok(());
    }
    let id = u64::decode(&proposed.output).context("a proposal's output is its id")?;
    for seat in others {
        let carried: bool = seat.execute_as(builder::vote(id)).await?;
        if carried {
            return Ok(());
        }
    }
    anyhow::bail!("proposal {id} was not carried: too few of the committee's departments voted")
}

/// The key named `name` in `dir`, created (readable by its owner only) the first time as a
/// key of `suite`.
pub fn key_in(dir: &Path, name: &str, suite: Suite) -> anyhow::Result<Keypair> {
    let path = dir.join(format!("{name}.json"));
    if path.exists() {
        return keyfile::read(&path).with_context(|| format!("cannot read {}", path.display()));
    }
    std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
    let key = Keypair::generate(suite);
    keyfile::write(&path, &key, false)?;
    Ok(key)
}

/// A signer for the key named `name` in `dir` on the chain `client` serves.
pub async fn signer(client: &Client, dir: &Path, name: &str) -> anyhow::Result<Signer> {
    let suite = client.status().await?.suite;
    Ok(Signer::connect(client, key_in(dir, name, suite)?).await?)
}
