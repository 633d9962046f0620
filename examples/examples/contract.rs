//! An enterprise deploying its own contract: `contract --wasm FILE [--governance-key FILE]...`
//! uploads and instantiates it, certifies a document and has a bank check it and a forgery.
//! See `shutong_examples::contract`.

use clap::Parser;
use shutong_examples::{contract, key_in};
use shutong_sdk::{Client, Signer, keyfile};
use std::path::PathBuf;

#[derive(Parser)]
struct Args {
    #[arg(long, default_value = "http://127.0.0.1:26600")]
    rpc: String,
    /// Where the enterprise's and the bank's keys are kept.
    #[arg(long, default_value = ".contract")]
    dir: PathBuf,
    #[arg(long, default_value = "contracts/artifacts/cert-verify.wasm")]
    wasm: PathBuf,
    #[arg(long, default_value = "certs")]
    label: String,
    /// A governance committee seat's key, to approve the code hash first; repeat for as many
    /// departments as the threshold asks (a testnet's keys/admin.json and keys/committee-1.json).
    #[arg(long)]
    governance_key: Vec<PathBuf>,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let client = Client::new(&args.rpc)?;
    let code = std::fs::read(&args.wasm)?;
    if !args.governance_key.is_empty() {
        let mut committee = Vec::new();
        for path in &args.governance_key {
            committee.push(Signer::connect(&client, keyfile::read(path)?).await?);
        }
        contract::approve_code(&committee, &code).await?;
    }
    let deployer = Signer::connect(&client, key_in(&args.dir, "enterprise", client.status().await?.suite)?).await?;
    let bank = Signer::connect(&client, key_in(&args.dir, "bank", client.status().await?.suite)?).await?;
    contract::join_enterprise(&deployer, "example-enterprise", "Shanghai Example Co., Ltd.").await?;
    contract::join_enterprise(&bank, "example-bank", "Example Bank").await?;
    let address = contract::deploy(&deployer, &code, &args.label).await?;
    let checked = contract::certify_and_check(&deployer, &bank, &address, "91310000MA1EXAMPLE", b"licence").await?;
    let out = serde_json::json!({
        "contract": address, "genuine": checked.genuine, "forged": checked.forged.0,
        "forged_reason": checked.forged.1, "on_record": checked.on_record.0, "audit_leaf": checked.on_record.1,
    });
    println!("{out}");
    Ok(())
}
