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
    /// Print the public key and account of the key file given by --key.
    Show,
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
        KeysCommand::Show => {
            let key = ctx.signer()?;
            let json = serde_json::json!({"public_key": key.public(), "account": key.account()});
            shown(json, format!("public key {}\naccount    {}", key.public(), key.account()))
        }
    }
}
