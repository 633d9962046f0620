//! The `shutong` command. One tree of `NOUN VERB --flags` for every user: operators
//! (`keys`, `init`, `node`, `testnet`, `status`, `gov`), enterprises (`contract`, `tx`,
//! `request`, `cert`), departments (`org`, `catalog`, `grant`, `audit record`) and auditors
//! (`audit trail`, `audit verify`). Every command takes `--output json`; every command that
//! signs takes `--key` (or `SHUTONG_KEY`) and every command that asks a node takes `--rpc`
//! (or `SHUTONG_RPC`).

mod audit_cli;
mod cli;
mod domain_cli;

use anyhow::{Context, bail};
use clap::{Args, Parser, Subcommand};
use cli::{Ctx, Globals, Outcome, Shown, args_hex, parse_contract, read_bounded, read_wasm, shown};
use shutong_codec::Decode;
use shutong_node::config::Config;
use shutong_node::genesis::{Genesis, GenesisValidator};
use shutong_node::{CONFIG_FILE, GENESIS_FILE, Node};
use shutong_sdk::{Client, builder, keyfile, reads};
use shutong_types::{AccountId, Address, Call, Hash, Keypair, SignedTransaction};
use std::path::{Path, PathBuf};
use std::time::Duration;

#[derive(Parser)]
#[command(
    name = "shutong",
    version,
    about = "Shutong (数通): a permissioned chain for data-sharing authorisations and their audit trail",
    after_help = "Every command: --output json for scripts, --rpc URL (or SHUTONG_RPC) for the node, --key FILE (or SHUTONG_KEY) to sign."
)]
struct Cli {
    #[command(flatten)]
    globals: Globals,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Create and inspect key files.
    #[command(subcommand)]
    Keys(KeysCommand),
    /// Create a node home: validator key, config and a genesis with this validator.
    Init(InitArgs),
    /// Run a node.
    #[command(subcommand)]
    Node(NodeCommand),
    /// The chain's status as one node sees it.
    Status,
    /// A block by height.
    Block {
        #[arg(long)]
        height: u64,
    },
    /// Transactions: send any contract call, sign offline, submit a signed one, look one up.
    #[command(subcommand)]
    Tx(TxCommand),
    /// Contracts: approve, upload, instantiate, call, query, migrate, freeze.
    #[command(subcommand)]
    Contract(ContractCommand),
    /// Organisations and their principals (keys with roles).
    #[command(subcommand)]
    Org(domain_cli::OrgCommand),
    /// The data catalog: resources and their data elements.
    #[command(subcommand)]
    Catalog(domain_cli::CatalogCommand),
    /// Access requests, their review, and data subjects' consent.
    #[command(subcommand)]
    Request(domain_cli::RequestCommand),
    /// Grants: check, amend, delegate, suspend, resume, revoke.
    #[command(subcommand)]
    Grant(domain_cli::GrantCommand),
    /// The audit trail: a gateway's records, and an auditor's proven trail and offline checks.
    #[command(subcommand)]
    Audit(audit_cli::AuditCommand),
    /// Governance: proposals, votes, the validator set and the purpose catalogue.
    #[command(subcommand)]
    Gov(domain_cli::GovCommand),
    /// The example certificate-verification contract (证明电子化).
    #[command(subcommand)]
    Cert(CertCommand),
    /// A local multi-validator testnet on 127.0.0.1.
    #[command(subcommand)]
    Testnet(TestnetCommand),
}

#[derive(Subcommand)]
enum KeysCommand {
    /// Generate a key and write it to a file readable by its owner only.
    New {
        #[arg(long)]
        out: PathBuf,
        /// Overwrite an existing file.
        #[arg(long)]
        force: bool,
        /// Seal the secret under the passphrase in SHUTONG_KEY_PASSPHRASE (argon2id and
        /// ChaCha20-Poly1305); every command then reads the file with that variable set.
        #[arg(long)]
        encrypt: bool,
    },
    /// Print the public key and account of the key file given by --key.
    Show,
}

#[derive(Subcommand)]
enum TxCommand {
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
struct RawCall {
    /// A contract address (hex) or a system contract's name (registry, catalog, authz, audit,
    /// governance, lifecycle).
    #[arg(long, value_parser = parse_contract)]
    contract: Address,
    #[arg(long)]
    method: String,
    #[arg(long, default_value = "")]
    args_hex: String,
}

impl RawCall {
    fn to_call(&self) -> anyhow::Result<Call> {
        Ok(Call { contract: self.contract, method: self.method.clone(), args: args_hex(&self.args_hex)? })
    }
}

#[derive(Subcommand)]
enum ContractCommand {
    /// Print the code hash of a wasm file (what governance approves), without a node.
    Hash {
        #[arg(long)]
        wasm: PathBuf,
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

#[derive(Subcommand)]
enum CertCommand {
    /// Allow an account to issue certificates (the contract's admin).
    AddIssuer {
        #[arg(long, value_parser = parse_contract)]
        contract: Address,
        #[arg(long)]
        account: AccountId,
    },
    /// Issue a certificate for a document (issuers only).
    Issue {
        #[command(flatten)]
        doc: CertDocument,
        #[arg(long)]
        kind: String,
        /// How long it stays valid.
        #[arg(long, default_value_t = 365)]
        valid_days: u64,
    },
    /// Ask, on the record (an audit-log leaf), whether a document is certified.
    Verify {
        #[command(flatten)]
        doc: CertDocument,
    },
    /// Ask, off the record (a query), whether a document is certified.
    Check {
        #[command(flatten)]
        doc: CertDocument,
    },
    /// Revoke a certificate (its issuer only).
    Revoke {
        #[arg(long, value_parser = parse_contract)]
        contract: Address,
        #[arg(long)]
        id: String,
    },
    /// A certificate.
    Show {
        #[arg(long, value_parser = parse_contract)]
        contract: Address,
        #[arg(long)]
        id: String,
    },
}

#[derive(Args)]
struct CertDocument {
    /// The certificate contract's address.
    #[arg(long, value_parser = parse_contract)]
    contract: Address,
    #[arg(long)]
    id: String,
    /// The holder's identifier (for example a unified social credit code); only its hash goes on chain.
    #[arg(long)]
    holder: String,
    /// The certified document; only its hash goes on chain.
    #[arg(long)]
    document: PathBuf,
}

#[derive(Subcommand)]
enum TestnetCommand {
    /// Create the validators' keys, genesis and configs (first time) and start every node;
    /// waits until the chain finalizes blocks.
    Up(TestnetParams),
    /// Only create the validators' keys, genesis and configs.
    Init(TestnetParams),
    /// Each node's height, view, peers and last finalized block.
    Status {
        #[command(flatten)]
        dir: TestnetDir,
        /// Refresh until interrupted: a live view (one JSON line per refresh with --output json).
        #[arg(long)]
        watch: bool,
        /// How often --watch refreshes.
        #[arg(long, default_value_t = 1000, value_parser = clap::value_parser!(u64).range(100..=60_000))]
        interval_ms: u64,
    },
    /// SIGKILL one node: a crash, not a shutdown.
    Kill {
        #[command(flatten)]
        dir: TestnetDir,
        #[arg(long)]
        node: usize,
    },
    /// Stop one node (SIGTERM; --kill for SIGKILL) and start it again on its data.
    Restart {
        #[command(flatten)]
        dir: TestnetDir,
        #[arg(long)]
        node: usize,
        #[arg(long)]
        kill: bool,
    },
    /// Stop every node (SIGTERM, then SIGKILL after 10 s). Data stays unless --purge.
    Down {
        #[command(flatten)]
        dir: TestnetDir,
        /// Also delete the testnet directory.
        #[arg(long)]
        purge: bool,
    },
    /// Stop one node, to watch the others go on.
    Stop {
        #[command(flatten)]
        dir: TestnetDir,
        /// The node's index (0 for validator-0).
        #[arg(long)]
        node: usize,
        /// SIGKILL instead of SIGTERM: a crash, not a shutdown.
        #[arg(long)]
        kill: bool,
    },
    /// Start one stopped node again.
    Start {
        #[command(flatten)]
        dir: TestnetDir,
        #[arg(long)]
        node: usize,
    },
}

#[derive(Args)]
struct TestnetParams {
    #[command(flatten)]
    dir: TestnetDir,
    #[arg(long, default_value_t = 4)]
    validators: usize,
    /// Nodes that follow the chain without voting (they serve RPC and accept transactions).
    #[arg(long, default_value_t = 0)]
    full_nodes: usize,
    #[arg(long, default_value = "shutong-local")]
    chain_id: String,
    /// RPC ports are BASE+2i, p2p ports BASE+2i+1; 0 picks free ports.
    #[arg(long, default_value_t = 26600)]
    base_port: u16,
    #[arg(long, default_value_t = 200)]
    block_interval_ms: u64,
    /// Departments on the governance committee (keys/admin.json, keys/committee-1.json, ...).
    #[arg(long, default_value_t = 3)]
    committee: usize,
    /// How many of them must vote for a proposal.
    #[arg(long, default_value_t = 2)]
    committee_threshold: u32,
}

impl TestnetParams {
    fn generate(self) -> anyhow::Result<shutong_node::localnet::Layout> {
        let dir = self.dir.dir;
        let params = shutong_node::localnet::Params {
            validators: self.validators,
            full_nodes: self.full_nodes,
            chain_id: self.chain_id,
            base_port: self.base_port,
            block_interval_ms: self.block_interval_ms,
            committee: self.committee,
            committee_threshold: self.committee_threshold,
        };
        shutong_node::localnet::Layout::generate(&dir, &params)
    }
}

#[derive(Args)]
struct TestnetDir {
    /// Where the testnet's homes and layout live.
    #[arg(long, default_value = ".shutong-testnet")]
    dir: PathBuf,
}

#[derive(Args)]
struct InitArgs {
    #[arg(long)]
    home: PathBuf,
    #[arg(long)]
    chain_id: String,
    /// A governance committee member's account (hex), the seat of a department of its own
    /// (`committee-0`, `committee-1`, ...); repeatable. Without one, a committee of one is
    /// created with its key at HOME/keys/admin.json.
    #[arg(long = "admin")]
    admins: Vec<AccountId>,
    /// How many of the committee's departments must vote for a proposal (default: a
    /// majority).
    #[arg(long)]
    threshold: Option<u32>,
    #[arg(long, default_value = "127.0.0.1:26657")]
    rpc_listen: std::net::SocketAddr,
    #[arg(long, default_value = "127.0.0.1:26656")]
    p2p_listen: std::net::SocketAddr,
    #[arg(long, default_value_t = 200)]
    block_interval_ms: u64,
}

#[derive(Subcommand)]
enum NodeCommand {
    /// Run the node in the foreground until interrupted.
    Run {
        #[arg(long)]
        home: PathBuf,
    },
}

fn main() -> std::process::ExitCode {
    let cli = Cli::parse();
    let runtime = match tokio::runtime::Builder::new_multi_thread().enable_all().build() {
        Ok(runtime) => runtime,
        Err(err) => {
            eprintln!("error: cannot start the async runtime: {err}");
            return std::process::ExitCode::FAILURE;
        }
    };
    let ctx = Ctx { globals: cli.globals };
    match runtime.block_on(run(cli.command, &ctx)) {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("error: {err:#}");
            if let Some(hint) = cli::hint(&err, &ctx.globals.rpc) {
                eprintln!("hint: {hint}");
            }
            std::process::ExitCode::FAILURE
        }
    }
}

async fn run(command: Command, ctx: &Ctx) -> anyhow::Result<()> {
    let outcome = match command {
        Command::Keys(command) => keys(command, ctx)?,
        Command::Init(args) => init(args)?,
        Command::Node(NodeCommand::Run { home }) => {
            run_node(&home).await?;
            return Ok(());
        }
        Command::Testnet(command) => testnet(command, ctx).await?,
        Command::Status => status(ctx).await?,
        Command::Block { height } => {
            let block =
                ctx.client()?.block(height).await?.with_context(|| format!("no block at height {height} yet"))?;
            let text = format!(
                "block {}  height {}  view {}  txs {}\nparent {}\nstate root (after parent) {}",
                block.hash,
                block.header.height,
                block.header.view,
                block.txs.len(),
                block.header.parent,
                block.header.state_root
            );
            shown(serde_json::to_value(&block)?, text)?
        }
        Command::Tx(command) => tx(command, ctx).await?,
        Command::Contract(command) => contract(command, ctx).await?,
        Command::Cert(command) => cert(command, ctx).await?,
        Command::Org(command) => domain_cli::org(command, ctx).await?,
        Command::Catalog(command) => domain_cli::catalog(command, ctx).await?,
        Command::Request(command) => domain_cli::request(command, ctx).await?,
        Command::Grant(command) => domain_cli::grant(command, ctx).await?,
        Command::Gov(command) => domain_cli::gov(command, ctx).await?,
        Command::Audit(command) => audit_cli::run(command, ctx).await?,
    };
    match outcome {
        Outcome::Show(json, text) => ctx.print(json, text),
        Outcome::Send(call) => {
            ctx.send(call, result_text).await?;
        }
        Outcome::Done => {}
    }
    Ok(())
}

fn keys(command: KeysCommand, ctx: &Ctx) -> Shown {
    match command {
        KeysCommand::New { out, force, encrypt } => {
            let key = Keypair::generate();
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

async fn status(ctx: &Ctx) -> Shown {
    let status = ctx.client()?.status().await?;
    let text = format!(
        "chain {}  height {}  view {}  block {}\nstate root {}  mempool {} txs  validators {}  peers {}",
        status.chain_id,
        status.height,
        status.consensus_view,
        status.block_hash,
        status.state_root,
        status.mempool_txs,
        status.validators.len(),
        status.peers
    );
    shown(serde_json::to_value(&status)?, text)
}

/// What a successful call returned, for the calls whose output means something to a person.
fn result_text(call: &Call, output: &[u8]) -> String {
    if let Some(text) = domain_cli::result_text(call, output) {
        return text;
    }
    if call.contract == builder::lifecycle() {
        return match (call.method.as_str(), output.len()) {
            ("upload", 32) => format!("code hash {}", hex::encode(output)),
            ("instantiate", 32) => format!("contract {}", hex::encode(output)),
            _ => String::new(),
        };
    }
    if call.method == "verify"
        && let Ok(answer) = builder::cert::Answer::decode(output)
    {
        return format!("{}  (audit leaf {})", answer_text(&answer), answer.audit_index);
    }
    String::new()
}

async fn tx(command: TxCommand, ctx: &Ctx) -> Shown {
    match command {
        TxCommand::Call(raw) => Ok(Outcome::Send(raw.to_call()?)),
        TxCommand::Sign { call, chain_id, nonce, expiry_height, out } => {
            let key = ctx.signer()?;
            let mut txb = shutong_sdk::TxBuilder::new(&chain_id, key);
            txb.gas_limit = ctx.globals.gas_limit.unwrap_or(builder::GAS_LIMIT_DEFAULT);
            let signed = txb.call(call.to_call()?, nonce, expiry_height);
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
            ctx.print_receipt(&receipt, &result_text(&signed.tx.call, &receipt.output))?;
            Ok(Outcome::Done)
        }
        TxCommand::Show { id } => {
            let receipt = ctx
                .client()?
                .receipt(&id)
                .await?
                .with_context(|| format!("no receipt for {id}: not committed (yet)"))?;
            shown(serde_json::to_value(&receipt)?, cli::receipt_text(&receipt))
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

async fn contract(command: ContractCommand, ctx: &Ctx) -> Shown {
    Ok(Outcome::Send(match command {
        ContractCommand::Hash { wasm } => {
            let code = read_wasm(&wasm)?;
            let hash = shutong_vm::Vm::code_hash(&code);
            let json = serde_json::json!({"file": wasm, "code_hash": hash, "size": code.len()});
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

/// The holder's and the document's hashes.
fn cert_hashes(doc: &CertDocument) -> anyhow::Result<(Hash, Hash)> {
    let document = read_bounded(&doc.document, 64 << 20, "a certified document")?;
    Ok((builder::cert::digest(doc.holder.as_bytes()), builder::cert::digest(&document)))
}

fn answer_text(answer: &builder::cert::Answer) -> String {
    if answer.valid { "certified: yes".to_string() } else { format!("certified: no ({})", answer.reason) }
}

async fn cert(command: CertCommand, ctx: &Ctx) -> Shown {
    Ok(Outcome::Send(match command {
        CertCommand::AddIssuer { contract, account } => builder::cert::add_issuer(&contract, &account),
        CertCommand::Issue { doc, kind, valid_days } => {
            let (holder, digest) = cert_hashes(&doc)?;
            let client = ctx.client()?;
            let now_ms = ctx.status(&client).await?.timestamp_ms;
            let until = now_ms.saturating_add(valid_days.saturating_mul(86_400_000));
            builder::cert::issue(&doc.contract, &doc.id, &kind, holder, digest, until)
        }
        CertCommand::Verify { doc } => {
            let (holder, digest) = cert_hashes(&doc)?;
            builder::cert::verify(&doc.contract, &doc.id, holder, digest)
        }
        CertCommand::Revoke { contract, id } => builder::cert::revoke(&contract, &id),
        CertCommand::Check { doc } => {
            let (holder, digest) = cert_hashes(&doc)?;
            let answer = ctx.client()?.read(reads::certified(&doc.contract, &doc.id, holder, digest)).await?;
            let json = serde_json::json!({"valid": answer.valid, "reason": answer.reason});
            return shown(json, answer_text(&answer));
        }
        CertCommand::Show { contract, id } => {
            let c = ctx.client()?.read(reads::certificate(&contract, &id)).await?;
            let json = serde_json::json!({
                "id": c.id, "kind": c.kind, "issuer": hex::encode(c.issuer),
                "holder_hash": hex::encode(c.holder_hash), "digest": hex::encode(c.digest),
                "valid_until_ms": c.valid_until_ms, "revoked": c.revoked,
            });
            let text = format!(
                "certificate {}  {}  issued by {}  valid until {}{}",
                c.id,
                c.kind,
                hex::encode(c.issuer),
                audit_cli::utc(c.valid_until_ms),
                if c.revoked { "  REVOKED" } else { "" }
            );
            return shown(json, text);
        }
    }))
}

fn init(args: InitArgs) -> Shown {
    let home = &args.home;
    anyhow::ensure!(
        !home.join(GENESIS_FILE).exists(),
        "{} already holds a node; choose another --home",
        home.display()
    );
    std::fs::create_dir_all(home.join("keys")).with_context(|| format!("cannot create {}", home.display()))?;
    let mut cfg = Config::default();
    cfg.rpc.listen = args.rpc_listen;
    cfg.p2p.listen = args.p2p_listen;
    cfg.consensus.block_interval_ms = args.block_interval_ms;
    cfg.validate()?;
    let validator = Keypair::generate();
    keyfile::write(&home.join(&cfg.key_file), &validator, false)?;
    let mut admins = args.admins.clone();
    let mut admin_file = None;
    if admins.is_empty() {
        let admin = Keypair::generate();
        let path = home.join("keys/admin.json");
        keyfile::write(&path, &admin, false)?;
        admins.push(admin.account());
        admin_file = Some(path);
    }
    let now_ms = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH)?.as_millis() as u64;
    let mut genesis = Genesis::new(
        &args.chain_id,
        now_ms,
        vec![GenesisValidator { name: "validator-0".into(), public_key: validator.public() }],
        shutong_node::genesis::CommitteeMember::departments(&admins),
    );
    if let Some(threshold) = args.threshold {
        genesis.governance_threshold = threshold;
    }
    genesis.validate()?;
    std::fs::write(home.join(GENESIS_FILE), serde_json::to_string_pretty(&genesis)?)?;
    std::fs::write(home.join(CONFIG_FILE), cfg.to_toml())?;
    let json = serde_json::json!({"home": home, "chain_id": genesis.chain_id, "validator": validator.public(), "admin_key": admin_file});
    let mut text =
        format!("initialised {} for chain {}\nvalidator {}", home.display(), genesis.chain_id, validator.public());
    if let Some(path) = &admin_file {
        text.push_str(&format!("\nadmin key {}", path.display()));
    }
    shown(json, text)
}

async fn run_node(home: &Path) -> anyhow::Result<()> {
    let cfg = Config::load(&home.join(CONFIG_FILE))?;
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .or_else(|_| tracing_subscriber::EnvFilter::try_new(&cfg.log.filter))
        .context("log.filter is not a valid tracing filter")?;
    let ansi = std::io::IsTerminal::is_terminal(&std::io::stderr());
    let builder = tracing_subscriber::fmt().with_env_filter(filter).with_target(false).with_ansi(ansi);
    if cfg.log.format == "json" {
        builder.json().init();
    } else {
        builder.init();
    }
    let node = Node::start(home).await?;
    let mut terminate = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())?;
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        _ = terminate.recv() => {}
    }
    tracing::info!("shutting down");
    node.stop().await;
    Ok(())
}

fn rpc_url(addr: std::net::SocketAddr) -> String {
    format!("http://{addr}")
}

async fn testnet(command: TestnetCommand, ctx: &Ctx) -> Shown {
    use shutong_node::localnet::{self, Layout};
    let binary = std::env::current_exe().context("cannot find the shutong binary")?;
    match command {
        TestnetCommand::Init(params) => {
            let dir = params.dir.dir.clone();
            let layout = params.generate()?;
            let full = layout.nodes.iter().filter(|n| n.full_node).count();
            let validators = layout.nodes.len() - full;
            let json = serde_json::json!({
                "dir": dir, "validators": validators, "full_nodes": full, "admin_key": layout.admin_key,
            });
            let text = format!(
                "created {validators} validators and {full} full nodes in {}; admin key {}",
                dir.display(),
                layout.admin_key.display()
            );
            shown(json, text)
        }
        TestnetCommand::Up(params) => {
            let dir = params.dir.dir.clone();
            let mut layout = if Layout::path(&dir).exists() { Layout::load(&dir)? } else { params.generate()? };
            for node in &mut layout.nodes {
                if node.pid.is_some_and(localnet::alive) {
                    continue;
                }
                node.pid = Some(localnet::spawn(&binary, node)?);
            }
            layout.save(&dir)?;
            // Up means finalizing: every node (full nodes too) has committed a block.
            let bar = ctx.spinner("waiting for every node to commit a block");
            let deadline = std::time::Instant::now() + Duration::from_secs(60);
            for node in &layout.nodes {
                bar.set_message(format!("waiting for {} to commit a block", node.name));
                let client = Client::new(&rpc_url(node.rpc))?;
                loop {
                    match client.status().await {
                        Ok(status) if status.height >= 1 => break,
                        _ if std::time::Instant::now() > deadline => {
                            bar.finish_and_clear();
                            bail!(
                                "{} has not committed a block after 60 s; its log is {}",
                                node.name,
                                node.home.join("node.log").display()
                            )
                        }
                        _ => tokio::time::sleep(Duration::from_millis(100)).await,
                    }
                }
            }
            bar.finish_and_clear();
            let (mut json, mut text) = testnet_status(&layout, &mut Sample::default()).await?;
            json["admin_key"] = serde_json::json!(layout.admin_key);
            text.push_str(&format!("\nadmin key {}", layout.admin_key.display()));
            shown(json, text)
        }
        TestnetCommand::Status { dir, watch, interval_ms } => {
            let layout = Layout::load(&dir.dir)?;
            let interval = Duration::from_millis(interval_ms);
            let mut sample = Sample::default();
            if !watch {
                // Two looks half a second apart give the committed rate.
                testnet_status(&layout, &mut sample).await?;
                tokio::time::sleep(Duration::from_millis(500)).await;
                let (json, text) = testnet_status(&layout, &mut sample).await?;
                return shown(json, text);
            }
            let terminal = std::io::IsTerminal::is_terminal(&std::io::stdout());
            loop {
                let (json, text) = testnet_status(&layout, &mut sample).await?;
                use std::io::Write;
                let shown = if ctx.globals.output == cli::Output::Json {
                    writeln!(std::io::stdout(), "{json}")
                } else {
                    // Clear the screen and redraw in place on a terminal; append otherwise.
                    let clear = if terminal { "\x1b[2J\x1b[H" } else { "" };
                    writeln!(std::io::stdout(), "{clear}{text}\n(every {interval_ms} ms; Ctrl-C to stop)")
                };
                if shown.is_err() {
                    // Whoever read the view has gone (a closed pipe).
                    return Ok(Outcome::Done);
                }
                tokio::select! {
                    _ = tokio::time::sleep(interval) => {}
                    _ = tokio::signal::ctrl_c() => return Ok(Outcome::Done),
                }
            }
        }
        TestnetCommand::Kill { dir, node } => testnet_stop(&dir, node, true),
        TestnetCommand::Restart { dir, node, kill } => {
            let Outcome::Show(stopped, _) = testnet_stop(&dir, node, kill)? else { return Ok(Outcome::Done) };
            let mut layout = Layout::load(&dir.dir)?;
            let entry = &mut layout.nodes[node];
            let pid = localnet::spawn(&binary, entry)?;
            entry.pid = Some(pid);
            let name = entry.name.clone();
            layout.save(&dir.dir)?;
            shown(
                serde_json::json!({"node": name, "stopped": stopped, "pid": pid}),
                format!("restarted {name} (pid {pid})"),
            )
        }
        TestnetCommand::Down { dir, purge } => {
            let dir = dir.dir;
            let mut layout = Layout::load(&dir)?;
            let mut stopped = Vec::new();
            for node in &mut layout.nodes {
                if let Some(pid) = node.pid.take().filter(|pid| localnet::alive(*pid)) {
                    localnet::stop(pid, Duration::from_secs(10));
                    stopped.push(node.name.clone());
                }
            }
            let mut text =
                format!("stopped {}", if stopped.is_empty() { "nothing".into() } else { stopped.join(", ") });
            if purge {
                std::fs::remove_dir_all(&dir).with_context(|| format!("cannot remove {}", dir.display()))?;
                text.push_str(&format!("\nremoved {}", dir.display()));
            } else {
                layout.save(&dir)?;
                text.push_str(&format!(
                    "\ndata kept in {}; `shutong testnet up --dir {}` starts it again",
                    dir.display(),
                    dir.display()
                ));
            }
            shown(serde_json::json!({"stopped": stopped, "purged": purge}), text)
        }
        TestnetCommand::Stop { dir, node, kill } => testnet_stop(&dir, node, kill),
        TestnetCommand::Start { dir, node } => {
            let mut layout = Layout::load(&dir.dir)?;
            let count = layout.nodes.len();
            let entry = layout.nodes.get_mut(node).with_context(|| format!("--node must be below {count}"))?;
            if entry.pid.is_some_and(localnet::alive) {
                bail!("{} is already running", entry.name);
            }
            let pid = localnet::spawn(&binary, entry)?;
            entry.pid = Some(pid);
            let name = entry.name.clone();
            layout.save(&dir.dir)?;
            shown(serde_json::json!({"node": name, "pid": pid}), format!("started {name} (pid {pid})"))
        }
    }
}

/// Stops (or kills) one node of the testnet in `dir`.
fn testnet_stop(dir: &TestnetDir, node: usize, kill: bool) -> Shown {
    use shutong_node::localnet::{self, Layout};
    let mut layout = Layout::load(&dir.dir)?;
    let count = layout.nodes.len();
    let entry = layout.nodes.get_mut(node).with_context(|| format!("--node must be below {count}"))?;
    let pid = entry
        .pid
        .take()
        .filter(|pid| localnet::alive(*pid))
        .with_context(|| format!("{} is not running; `shutong testnet status` shows which are", entry.name))?;
    if kill {
        localnet::signal(pid, libc::SIGKILL);
    } else {
        localnet::stop(pid, Duration::from_secs(10));
    }
    let name = entry.name.clone();
    layout.save(&dir.dir)?;
    let verb = if kill { "killed" } else { "stopped" };
    shown(serde_json::json!({"node": name, "pid": pid, "killed": kill}), format!("{verb} {name} (pid {pid})"))
}

/// Each node's committed-transaction count when last looked at, for the rate.
#[derive(Default)]
struct Sample(std::collections::HashMap<String, (std::time::Instant, f64)>);

async fn testnet_status(
    layout: &shutong_node::localnet::Layout,
    sample: &mut Sample,
) -> anyhow::Result<(serde_json::Value, String)> {
    let mut rows = Vec::new();
    let mut text = format!(
        "chain {}\n{:<13} {:>7} {:>7} {:>7} {:>5} {:>8} {:>8} {:>9}  {:<16}  {}",
        layout.chain_id,
        "node",
        "pid",
        "height",
        "view",
        "peers",
        "mempool",
        "tx/s",
        "finality",
        "last block",
        "state root"
    );
    for node in &layout.nodes {
        let running = node.pid.filter(|pid| shutong_node::localnet::alive(*pid));
        let client = Client::new(&rpc_url(node.rpc))?;
        let (status, metrics) = match running {
            Some(_) => (client.status().await.ok(), client.metrics().await.ok()),
            None => (None, None),
        };
        let now = std::time::Instant::now();
        let committed = metrics.as_ref().and_then(|m| m.get("shutong_txs_committed_total").copied());
        let rate = match (committed, sample.0.get(&node.name)) {
            (Some(total), Some((then, before))) if total >= *before => {
                Some((total - before) / now.duration_since(*then).as_secs_f64().max(0.001))
            }
            _ => None,
        };
        if let Some(total) = committed {
            sample.0.insert(node.name.clone(), (now, total));
        }
        // Mean finality over the node's life, from the histogram's sum and count.
        let finality_ms = metrics.as_ref().and_then(|m| {
            let (sum, count) = (m.get("shutong_finality_seconds_sum")?, m.get("shutong_finality_seconds_count")?);
            (*count > 0.0).then(|| 1000.0 * sum / count)
        });
        let pid = running.map_or("-".to_string(), |p| p.to_string());
        match &status {
            Some(s) => text.push_str(&format!(
                "\n{:<13} {:>7} {:>7} {:>7} {:>5} {:>8} {:>8} {:>9}  {:<16}  {}",
                node.name,
                pid,
                s.height,
                s.consensus_view,
                s.peers,
                s.mempool_txs,
                rate.map_or("-".into(), |r| format!("{r:.0}")),
                finality_ms.map_or("-".into(), |f| format!("{f:.0} ms")),
                &s.block_hash.to_string()[..16],
                &s.state_root.to_string()[..16]
            )),
            None => text.push_str(&format!(
                "\n{:<13} {:>7} {}",
                node.name,
                pid,
                if running.is_some() { "not answering" } else { "stopped" }
            )),
        }
        rows.push(serde_json::json!({
            "name": node.name, "full_node": node.full_node, "pid": running, "rpc": rpc_url(node.rpc), "p2p": node.p2p, "status": status,
            "committed_tps": rate, "mean_finality_ms": finality_ms,
        }));
    }
    Ok((serde_json::json!({"chain_id": layout.chain_id, "nodes": rows}), text))
}
