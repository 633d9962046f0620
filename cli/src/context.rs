//! Part of the `shutong` binary: what every command shares. The global flags (`--rpc`,
//! `--key`, `--output` and the transaction flags), signing and waiting for a receipt with a
//! spinner, printing as text or JSON, and turning an error into one that says what to do.

use anyhow::Context;
use clap::{Args, ValueEnum};
use indicatif::{ProgressBar, ProgressStyle};
use shutong_sdk::client::ClientError;
use shutong_sdk::rpc::Status;
use shutong_sdk::{Client, RpcCode, TxBuilder, builder};
use shutong_types::{Call, Receipt, Signer};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

#[derive(Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Output {
    Text,
    Json,
}

/// Flags every command accepts, before or after its name.
#[derive(Args)]
pub struct Globals {
    /// How to print results: text for people, json (one object per line) for scripts.
    #[arg(long, global = true, help_heading = "Global options", value_enum, default_value = "text")]
    pub output: Output,
    /// The node's JSON-RPC address.
    #[arg(
        long,
        global = true,
        help_heading = "Global options",
        env = "SHUTONG_RPC",
        default_value = "http://127.0.0.1:26657"
    )]
    pub rpc: String,
    /// The signer's key file, or a key in a PKCS#11 token as a `pkcs11:` URI (RFC 7512:
    /// pkcs11:token=T;object=K?module-path=LIB&pin-source=env:VAR), for commands that sign
    /// a transaction (and `keys show`).
    #[arg(long, global = true, help_heading = "Global options", env = "SHUTONG_KEY")]
    pub key: Option<PathBuf>,
    /// Gas limit of a transaction (default: enough for an upload's size, else 1,000,000).
    #[arg(long, global = true, help_heading = "Global options")]
    pub gas_limit: Option<u64>,
    /// How many blocks from now a transaction stays valid.
    #[arg(long, global = true, help_heading = "Global options", default_value_t = builder::EXPIRY_BLOCKS_DEFAULT)]
    pub expiry_blocks: u64,
    /// Seconds to wait for a transaction's receipt.
    #[arg(long, global = true, help_heading = "Global options", default_value_t = 30)]
    pub timeout_secs: u64,
}

/// What a command leaves to do: sign and send a call, or print what it found.
pub enum Outcome {
    Send(Call),
    Show(serde_json::Value, String),
    /// The command printed its own result.
    Done,
}

pub type Shown = anyhow::Result<Outcome>;

pub fn shown(json: serde_json::Value, text: String) -> Shown {
    Ok(Outcome::Show(json, text))
}

pub struct Ctx {
    pub globals: Globals,
}

impl Ctx {
    /// A client for `--rpc`, signing its requests with `--key` if one is given (the node
    /// answers all but status and proofs to registered principals only).
    pub fn client(&self) -> anyhow::Result<Client> {
        let client = Client::new(&self.globals.rpc)?;
        Ok(match &self.globals.key {
            Some(_) => client.signed_by(self.signer()?),
            None => client,
        })
    }

    /// The node's status: the chain id, height and time a transaction is built against.
    pub async fn status(&self, client: &Client) -> anyhow::Result<Status> {
        Ok(client.status().await?)
    }

    /// The key file or `pkcs11:` URI named by `--key` or `SHUTONG_KEY`.
    pub fn key_path(&self) -> anyhow::Result<&PathBuf> {
        self.globals.key.as_ref().context(
            "this command needs a key: pass --key FILE or set SHUTONG_KEY (`shutong keys new --out FILE` makes one)",
        )
    }

    /// The signer `--key` names: a key file, or a key in a PKCS#11 token.
    pub fn signer(&self) -> anyhow::Result<Arc<dyn Signer>> {
        let path = self.key_path()?;
        let spec = path.to_string_lossy();
        shutong_sdk::pkcs11::open_signer(&spec).with_context(|| format!("cannot use the key {spec}"))
    }

    /// Prints a result; a closed standard output (the reader went away) is not an error.
    pub fn print(&self, json: serde_json::Value, text: String) {
        use std::io::Write;
        let _ = match self.globals.output {
            Output::Json => writeln!(std::io::stdout(), "{json}"),
            Output::Text => writeln!(std::io::stdout(), "{text}"),
        };
    }

    /// A spinner on standard error while `what` happens; hidden when standard error is not
    /// a terminal or the output is JSON.
    pub fn spinner(&self, what: &str) -> ProgressBar {
        let bar = if self.globals.output == Output::Json { ProgressBar::hidden() } else { ProgressBar::new_spinner() };
        bar.set_style(
            ProgressStyle::with_template("{spinner} {msg} ({elapsed})")
                .unwrap_or_else(|_| ProgressStyle::default_spinner()),
        );
        bar.set_message(what.to_string());
        bar.enable_steady_tick(Duration::from_millis(120));
        bar
    }

    /// Signs `call` with the key, submits it and waits for its receipt; prints the receipt
    /// and what the call returned. A call the contract refused is an error.
    pub async fn send(&self, call: Call, describe: impl Fn(&Call, &[u8]) -> String) -> anyhow::Result<Receipt> {
        let key = self.signer()?;
        // The key is read once (an encrypted one costs an argon2id run each time).
        let client = Client::new(&self.globals.rpc)?.signed_by(Arc::clone(&key));
        let status = self.status(&client).await?;
        let mut txb = TxBuilder::new(&status.chain_id, Arc::clone(&key));
        txb.gas_limit = self.globals.gas_limit.unwrap_or_else(|| {
            if call.contract == builder::lifecycle() && call.method == "upload" {
                builder::upload_gas_limit(call.args.len())
            } else {
                builder::GAS_LIMIT_DEFAULT
            }
        });
        let nonce = client.nonce(&key.account()).await?;
        let signed = txb.call(call, nonce, status.height.saturating_add(self.globals.expiry_blocks))?;
        let bar = self.spinner(&format!("waiting for transaction {} to be finalized", signed.id()));
        let receipt = client.submit_and_wait(&signed, Duration::from_secs(self.globals.timeout_secs)).await;
        bar.finish_and_clear();
        let receipt = receipt?;
        self.print_receipt(&receipt, &describe(&signed.tx.call, &receipt.output))?;
        Ok(receipt)
    }

    pub fn print_receipt(&self, receipt: &Receipt, result: &str) -> anyhow::Result<()> {
        let mut text = receipt_text(receipt);
        if receipt.status.is_success() && !result.is_empty() {
            text.push('\n');
            text.push_str(result);
        }
        self.print(serde_json::to_value(receipt)?, text);
        anyhow::ensure!(
            receipt.status.is_success(),
            "transaction {} failed: {:?}; it used its nonce but changed nothing else",
            receipt.tx_id,
            receipt.status
        );
        Ok(())
    }
}

pub fn receipt_text(receipt: &Receipt) -> String {
    let mut text = format!(
        "tx {}  height {}  status {:?}  gas used {}",
        receipt.tx_id, receipt.height, receipt.status, receipt.gas_used
    );
    for event in &receipt.events {
        // Text data as text; binary data (an encoded number, a hash) as hex.
        let data = match std::str::from_utf8(&event.data) {
            Ok(text) if !text.chars().any(char::is_control) => text.to_string(),
            _ => format!("0x{}", hex::encode(&event.data)),
        };
        text.push_str(&format!("\n  event {} {data}", event.topic));
    }
    text
}

/// What to do about an error, when we know: the first client error in its chain decides.
pub fn hint(err: &anyhow::Error, rpc: &str) -> Option<String> {
    let client = err.chain().find_map(|cause| cause.downcast_ref::<ClientError>())?;
    let hint = match client {
        ClientError::Transport { .. } => format!(
            "is a node running at {rpc}? Start a local testnet with `shutong testnet up`, or point --rpc (or SHUTONG_RPC) at a node"
        ),
        ClientError::Timeout { tx_id, .. } => format!(
            "the transaction may still be finalized: look it up with `shutong tx show --id {tx_id}`, or wait longer with --timeout-secs"
        ),
        ClientError::Malformed(_) => {
            "the node's answer does not decode: is --rpc a Shutong node of this version?".into()
        }
        ClientError::Signer(_) => {
            "the key in --key could not sign: is its token present, and its PIN right and not locked?".into()
        }
        ClientError::Rpc { .. } => match client.code()? {
            RpcCode::WrongChain => "the node serves another chain: check --rpc".into(),
            RpcCode::TxExpired | RpcCode::ExpiryTooFar => "set --expiry-blocks between 1 and 10,000".into(),
            RpcCode::NonceTooLow | RpcCode::NonceTooHigh | RpcCode::TxDuplicate => {
                "another transaction from this key got there first; run the command again".into()
            }
            RpcCode::BadSignature => "the key file does not match the signature: check --key".into(),
            RpcCode::MempoolFull => "the node's pool is full; try again in a few seconds".into(),
            RpcCode::GasLimit => "raise --gas-limit (a block's limit is in `shutong status`)".into(),
            RpcCode::UnknownContract => {
                "no contract at that address: `shutong contract show --contract ADDR` checks one".into()
            }
            RpcCode::UnknownMethod => {
                "the contract has no such method: `shutong contract code --code-hash H` lists its methods".into()
            }
            RpcCode::QueryFailed => "the contract refused the question; its reason is above".into(),
            RpcCode::HeightUnavailable => "ask for a height from 1 to the node's tip (`shutong status`)".into(),
            RpcCode::Pruned => {
                "this node keeps only its retention window: ask an archive node (storage.archive = true)".into()
            }
            RpcCode::QueryNotLogged => "log the question first; `shutong audit trail` does both".into(),
            RpcCode::Unauthenticated => {
                "this needs a registered principal's key: pass --key FILE or set SHUTONG_KEY".into()
            }
            RpcCode::AuthInvalid => "the node refused the request's signature; check this machine's clock".into(),
            RpcCode::Forbidden => {
                "the key is not a principal with that role on this chain: ask the organisation's admin \
                 (`shutong org set-principal`)"
                    .into()
            }
            RpcCode::RateLimited => "too many requests: wait a moment and run it again".into(),
            RpcCode::TxTooLarge | RpcCode::RequestTooLarge => "the request is over the node's size limit".into(),
            _ => return None,
        },
    };
    Some(hint)
}

// --- Parsers shared by the command groups -------------------------------------------------

pub fn list(text: &str) -> Vec<String> {
    text.split(',').map(str::trim).filter(|s| !s.is_empty()).map(String::from).collect()
}

/// A contract address (hex) or a system contract's name.
pub fn parse_contract(text: &str) -> Result<shutong_types::Address, String> {
    match text {
        "registry" => Ok(builder::registry()),
        "catalog" => Ok(builder::catalog()),
        "authz" => Ok(builder::authz()),
        "audit" => Ok(builder::audit()),
        "governance" => Ok(builder::governance()),
        "lifecycle" => Ok(builder::lifecycle()),
        hex => hex.parse().map_err(|e| {
            format!(
                "{hex:?} is neither an address nor a system contract (registry, catalog, authz, audit, governance, lifecycle): {e}"
            )
        }),
    }
}

/// Hex arguments of a raw call.
pub fn args_hex(text: &str) -> anyhow::Result<Vec<u8>> {
    hex::decode(text).context("--args-hex is not hex (two digits a byte, no 0x)")
}

/// Reads a file no larger than `max` bytes, naming it in every error.
pub fn read_bounded(path: &std::path::Path, max: u64, what: &str) -> anyhow::Result<Vec<u8>> {
    use std::io::Read;
    let mut bytes = Vec::new();
    std::fs::File::open(path)
        .and_then(|file| file.take(max + 1).read_to_end(&mut bytes))
        .with_context(|| format!("cannot read {}", path.display()))?;
    anyhow::ensure!(bytes.len() as u64 <= max, "{} is larger than {what} may be ({max} bytes)", path.display());
    Ok(bytes)
}

/// Reads a wasm file no larger than the chain accepts.
pub fn read_wasm(path: &std::path::Path) -> anyhow::Result<Vec<u8>> {
    let code = read_bounded(path, shutong_types::limits::CODE_BYTES_MAX as u64, "contract code")?;
    anyhow::ensure!(code.starts_with(b"\0asm"), "{} is not a wasm module", path.display());
    Ok(code)
}
