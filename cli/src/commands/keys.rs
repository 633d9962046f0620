//! `shutong keys`: create and inspect key files.

use crate::context::{Ctx, Shown, shown};
use anyhow::Context;
use clap::Subcommand;
use shutong_sdk::keyfile;
use shutong_types::Keypair;
use std::path::PathBuf;

#[derive(Subcommand)]
pub(crate) enum KeysCommand {
    /// Generate a key and write it to a file readable by its owner only.
    New {
        #[arg(long)]
        out: PathBuf,
        /// Overwrite an existing file.
        #[arg(long)]
        force: bool,
        /// The suite of the chain the key is for: ed25519-blake3, or sm2-sm3 (an SM2 key).
        #[arg(long, env = "SHUTONG_SUITE", default_value = "ed25519-blake3", value_parser = super::testnet::parse_suite)]
        suite: shutong_types::Suite,
        /// Seal the secret under the passphrase in SHUTONG_KEY_PASSPHRASE (argon2id and
        /// ChaCha20-Poly1305; for an SM2 key PBKDF2-HMAC-SM3 and SM4-GCM); every command
        /// then reads the file with that variable set.
        #[arg(long)]
        encrypt: bool,
    },
    /// Print the public key and account of the key file, or the key in a token, given by --key.
    Show,
    /// Generate an ed25519 key inside a PKCS#11 token (the secret never leaves it) and print
    /// its public key: a validator's key for a node whose `key_uri` names it, or a
    /// principal's for `--key`. Refused if the token has a key of that label already.
    TokenNew {
        /// pkcs11:token=T;object=LABEL?module-path=LIB&pin-source=env:VAR
        #[arg(long)]
        uri: String,
    },
    /// Bind a node's ed25519 transport key (its p2p identity) to the validator key in --key,
    /// offline, for chain --chain-id: prints the validator's genesis entry, which a
    /// department hands to whoever assembles genesis. Every validator of an sm2-sm3 chain
    /// needs one (libp2p has no SM2 keys).
    BindTransport {
        #[arg(long)]
        chain_id: String,
        /// The transport key's public key (`keys show --key transport.json`).
        #[arg(long)]
        transport: shutong_types::PublicKey,
        /// The validator's name in genesis.
        #[arg(long, default_value = "validator")]
        name: String,
    },
}

pub(crate) fn run(command: KeysCommand, ctx: &Ctx) -> Shown {
    match command {
        KeysCommand::New { out, force, suite, encrypt } => {
            let key = Keypair::generate(suite);
            if encrypt {
                let passphrase =
                    std::env::var(keyfile::PASSPHRASE_ENV).ok().filter(|p| !p.is_empty()).with_context(|| {
                        format!("--encrypt takes the passphrase from {}: set it", keyfile::PASSPHRASE_ENV)
                    })?;
                keyfile::write_encrypted(&out, &key, &passphrase, force)?;
            } else {
                keyfile::write(&out, &key, force)?;
            }
            let json = serde_json::json!({"file": out, "public_key": key.public(), "account": key.account()});
            shown(json, format!("wrote {}\npublic key {}\naccount    {}", out.display(), key.public(), key.account()))
        }
        KeysCommand::BindTransport { chain_id, transport, name } => {
            let key = ctx.signer()?;
            anyhow::ensure!(
                transport.suite() == shutong_types::Suite::Ed25519Blake3 && transport.is_point(),
                "--transport {transport} is not an ed25519 public key: a transport key is ed25519 on either suite"
            );
            let bound = shutong_types::transport::Transport::try_bind(&chain_id, &*key, &transport)?;
            let entry = shutong_execution::genesis::GenesisValidator {
                transport: Some(bound),
                ..shutong_execution::genesis::GenesisValidator::new(&name, key.public())
            };
            let json = serde_json::to_value(&entry)?;
            let text = serde_json::to_string_pretty(&entry)?;
            shown(json, text)
        }
        KeysCommand::TokenNew { uri } => {
            let uri: shutong_sdk::pkcs11::Pkcs11Uri = uri.parse()?;
            let key = shutong_sdk::pkcs11::Pkcs11Signer::generate(&uri)?;
            let account = shutong_types::AccountId::from_public_key(&key);
            let json = serde_json::json!({"uri": uri.to_string(), "public_key": key, "account": account});
            shown(
                json,
                format!("made key {} in token {}\npublic key {key}\naccount    {account}", uri.object, uri.token),
            )
        }
        KeysCommand::Show => {
            let key = ctx.signer()?;
            let json = serde_json::json!({"public_key": key.public(), "account": key.account()});
            shown(json, format!("public key {}\naccount    {}", key.public(), key.account()))
        }
    }
}
