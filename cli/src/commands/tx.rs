//! `shutong tx`: send any contract call, sign offline, submit a signed one, look one up.

use crate::context::{Ctx, Outcome, Shown, args_hex, parse_contract, read_bounded, shown};
use anyhow::Context;
use clap::{Args, Subcommand};
use shutong_sdk::builder;
use shutong_types::{AccountId, Address, Call, Hash, SignedTransaction};
use std::path::PathBuf;
use std::time::Duration;

#[derive(Subcommand)]
pub(crate) enum TxCommand {
    /// Sign a call to any contract method with hex arguments, submit it and wait.
    Call(RawCall),
    /// Sign a call without a node (for a key kept offline); writes the signed transaction
    /// as hex for `tx submit`.
    Sign {
        #[command(flatten)]
        call: RawCall,
        #[arg(long)]
        chain_id: String,
        /// The signer's next nonce (`shutong tx nonce` on a connected machine).
        #[arg(long)]
        nonce: u64,
        /// The last height at which it may be included.
        #[arg(long)]
        expiry_height: u64,
        #[arg(long)]
        out: PathBuf,
    },
    /// Submit a transaction signed by `tx sign` and wait for its receipt.
    Submit {
        #[arg(long)]
        file: PathBuf,
    },
    /// A transaction's receipt.
    Show {
        #[arg(long)]
        id: Hash,
    },
    /// An account's next nonce (default: the --key's account).
    Nonce {
        #[arg(long)]
        account: Option<AccountId>,
    },
}

#[derive(Args)]
pub(crate) struct RawCall {
    /// A contract address (hex) or a system contract's name (registry, catalog, authz, audit,
    /// governance, lifecycle).
    #[arg(long, value_parser = parse_contract)]
    pub(crate) contract: Address,
    #[arg(long)]
    pub(crate) method: String,
    #[arg(long, default_value = "")]
    pub(crate) args_hex: String,
}

impl RawCall {
    pub(crate) fn to_call(&self) -> anyhow::Result<Call> {
        Ok(Call { contract: self.contract, method: self.method.clone(), args: args_hex(&self.args_hex)? })
    }
}

pub(crate) async fn run(command: TxCommand, ctx: &Ctx) -> Shown {
    match command {
        TxCommand::Call(raw) => Ok(Outcome::Send(raw.to_call()?)),
        TxCommand::Sign { call, chain_id, nonce, expiry_height, out } => {
            let key = ctx.signer()?;
            let mut txb = shutong_sdk::TxBuilder::new(&chain_id, key);
            txb.gas_limit = ctx.globals.gas_limit.unwrap_or(builder::GAS_LIMIT_DEFAULT);
            let signed = txb.call(call.to_call()?, nonce, expiry_height)?;
            let bytes = shutong_types::Encode::encode(&signed);
            anyhow::ensure!(
                bytes.len() <= shutong_types::limits::TX_BYTES_MAX,
                "the transaction is {} bytes; a node accepts at most {}",
                bytes.len(),
                shutong_types::limits::TX_BYTES_MAX
            );
            std::fs::write(&out, hex::encode(&bytes)).with_context(|| format!("cannot write {}", out.display()))?;
            let json = serde_json::json!({"file": out, "tx_id": signed.id(), "bytes": bytes.len()});
            shown(json, format!("signed transaction {} written to {}", signed.id(), out.display()))
        }
        TxCommand::Submit { file } => {
            let max = 2 * shutong_types::limits::TX_BYTES_MAX as u64 + 2;
            let text = read_bounded(&file, max, "a signed transaction")?;
            let bytes = hex::decode(String::from_utf8_lossy(&text).trim())
                .with_context(|| format!("{} is not hex (what `shutong tx sign` writes)", file.display()))?;
            let signed = <SignedTransaction as shutong_types::Decode>::decode(&bytes)
                .with_context(|| format!("{} is not a signed transaction", file.display()))?;
            let client = ctx.client()?;
            let bar = ctx.spinner(&format!("waiting for transaction {} to be finalized", signed.id()));
            let receipt = client.submit_and_wait(&signed, Duration::from_secs(ctx.globals.timeout_secs)).await;
            bar.finish_and_clear();
            let receipt = receipt?;
            ctx.print_receipt(&receipt, &crate::result_text(&signed.tx.call, &receipt.output))?;
            Ok(Outcome::Done)
        }
        TxCommand::Show { id } => {
            let receipt = ctx
                .client()?
                .receipt(&id)
                .await?
                .with_context(|| format!("no receipt for {id}: not committed (yet)"))?;
            shown(serde_json::to_value(&receipt)?, crate::context::receipt_text(&receipt))
        }
        TxCommand::Nonce { account } => {
            let account = match account {
                Some(account) => account,
                None => ctx.signer()?.account(),
            };
            let nonce = ctx.client()?.nonce(&account).await?;
            shown(serde_json::json!({"account": account, "nonce": nonce}), nonce.to_string())
        }
    }
}
