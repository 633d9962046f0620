//! The `shutong` command: keys, init, node run, tx, query and status.

mod audit_cli;
mod domain_cli;

use anyhow::{Context, bail};
use clap::{Args, Parser, Subcommand, ValueEnum};
use shutong_codec::{Decode, Encode};
use shutong_node::config::Config;
use shutong_node::genesis::{Genesis, GenesisValidator};
use shutong_node::{CONFIG_FILE, GENESIS_FILE, Node};
use shutong_sdk::system_api::governance::Validators;
use shutong_sdk::system_api::registry::{GetOrg, Org, OrgKind, OrgStatus};
use shutong_sdk::{Client, TxBuilder, builder, keyfile};
use shutong_types::{AccountId, Address, Call, Hash, Keypair, Receipt};
use std::path::{Path, PathBuf};
use std::time::Duration;

#[derive(Parser)]
#[command(
    name = "shutong",
    version,
    about = "Shutong (数通): a permissioned chain for data-sharing authorisations and their audit trail"
)]
struct Cli {
    /// How to print results.
    #[arg(long, global = true, value_enum, default_value = "text")]
    output: Output,
    #[command(subcommand)]
    command: Command,
}

#[derive(Clone, Copy, PartialEq, Eq, ValueEnum)]
enum Output {
    Text,
    Json,
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
    /// Sign a transaction, submit it and wait for its receipt.
    Tx(TxArgs),
    /// Read from the chain.
    Query(QueryArgs),
    /// The auditor's commands: a proven trail of who used which data, and offline checks.
    #[command(subcommand)]
    Audit(audit_cli::AuditCommand),
    /// Show the chain's status.
    Status(RpcArgs),
    /// A local multi-validator testnet on 127.0.0.1.
    #[command(subcommand)]
    Testnet(TestnetCommand),
    /// Print the code hash of a wasm file (what governance approves), without a node.
    CodeHash {
        #[arg(long)]
        wasm: PathBuf,
    },
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
    #[arg(long, default_value = "shutong-local")]
    chain_id: String,
    /// RPC ports are BASE+2i, p2p ports BASE+2i+1; 0 picks free ports.
    #[arg(long, default_value_t = 26600)]
    base_port: u16,
    #[arg(long, default_value_t = 200)]
    block_interval_ms: u64,
}

impl TestnetParams {
    fn generate(self) -> anyhow::Result<shutong_node::localnet::Layout> {
        let dir = self.dir.dir;
        let params = shutong_node::localnet::Params {
            validators: self.validators,
            chain_id: self.chain_id,
            base_port: self.base_port,
            block_interval_ms: self.block_interval_ms,
        };
        let layout = shutong_node::localnet::Layout::generate(&dir, &params)?;
        println!(
            "created {} validators in {}; admin key {}",
            layout.nodes.len(),
            dir.display(),
            layout.admin_key.display()
        );
        Ok(layout)
    }
}

#[derive(Args)]
struct TestnetDir {
    /// Where the testnet's homes and layout live.
    #[arg(long, default_value = ".shutong-testnet")]
    dir: PathBuf,
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
    /// Print a key file's public key and account.
    Show {
        #[arg(long)]
        key: PathBuf,
    },
}

#[derive(Args)]
struct InitArgs {
    #[arg(long)]
    home: PathBuf,
    #[arg(long)]
    chain_id: String,
    /// An admin account (hex) of the system contracts; repeatable. Without one, an admin key
    /// is created at HOME/keys/admin.json.
    #[arg(long = "admin")]
    admins: Vec<AccountId>,
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

#[derive(Args)]
struct RpcArgs {
    /// The node's JSON-RPC address.
    #[arg(long, default_value = "http://127.0.0.1:26657")]
    rpc: String,
}

#[derive(Args)]
struct TxArgs {
    #[command(flatten)]
    rpc: RpcArgs,
    /// The signer's key file.
    #[arg(long)]
    key: PathBuf,
    /// The gas limit (default: enough for the code's size for an upload, else 1,000,000).
    #[arg(long)]
    gas_limit: Option<u64>,
    /// How many blocks from now the transaction stays valid.
    #[arg(long, default_value_t = builder::EXPIRY_BLOCKS_DEFAULT)]
    expiry_blocks: u64,
    /// Seconds to wait for the receipt.
    #[arg(long, default_value_t = 30)]
    timeout_secs: u64,
    #[command(subcommand)]
    call: TxCall,
}

#[derive(Subcommand)]
enum TxCall {
    /// Organisation registry transactions.
    #[command(subcommand)]
    Org(OrgTx),
    /// Governance: schedule a new validator set (admins only).
    #[command(subcommand)]
    Validators(ValidatorsTx),
    /// Call any contract method with hex arguments.
    Call(RawCall),
    /// The contract lifecycle: approve, upload, instantiate, migrate, freeze, unfreeze.
    #[command(subcommand)]
    Contract(ContractTx),
    /// The example certificate-verification contract.
    #[command(subcommand)]
    Cert(CertTx),
    /// Principals of an organisation: keys with roles.
    #[command(subcommand)]
    Principal(domain_cli::PrincipalTx),
    /// The data catalog.
    #[command(subcommand)]
    Catalog(domain_cli::CatalogTx),
    /// Access requests and grants.
    #[command(subcommand)]
    Access(domain_cli::AccessTx),
    /// The access audit trail.
    #[command(subcommand)]
    Audit(domain_cli::AuditTx),
    /// The governance committee: proposals and votes.
    #[command(subcommand)]
    Gov(domain_cli::GovTx),
}

#[derive(Subcommand)]
enum ContractTx {
    /// Approve a code hash for upload (governance admins only).
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
enum CertTx {
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
    /// Ask, on the record, whether a document is certified.
    Verify {
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
}

#[derive(Subcommand)]
enum OrgTx {
    Register {
        #[arg(long)]
        id: String,
        #[arg(long)]
        name: String,
        /// department, enterprise, auditor or operator.
        #[arg(long, value_parser = parse_kind)]
        kind: OrgKind,
    },
    Update {
        #[arg(long)]
        id: String,
        #[arg(long)]
        name: Option<String>,
        /// active or suspended.
        #[arg(long, value_parser = parse_status)]
        status: Option<OrgStatus>,
    },
}

#[derive(Subcommand)]
enum ValidatorsTx {
    /// Replace the validator set, in this order; it takes effect 10 blocks after inclusion.
    Set {
        /// A validator's public key (hex); repeat for each, in order.
        #[arg(long = "validator", required = true)]
        validators: Vec<shutong_types::PublicKey>,
    },
}

#[derive(Args)]
struct RawCall {
    /// A contract address (hex) or a system contract's name (`registry`).
    #[arg(long, value_parser = parse_contract)]
    contract: Address,
    #[arg(long)]
    method: String,
    #[arg(long, default_value = "")]
    args_hex: String,
}

#[derive(Args)]
struct QueryArgs {
    #[command(flatten)]
    rpc: RpcArgs,
    #[command(subcommand)]
    what: QueryWhat,
}

#[derive(Subcommand)]
enum QueryWhat {
    /// An organisation from the registry.
    Org {
        #[arg(long)]
        id: String,
    },
    /// The validator set in force and any scheduled change.
    Validators,
    /// A block by height.
    Block {
        #[arg(long)]
        height: u64,
    },
    /// A transaction's receipt.
    Receipt {
        #[arg(long)]
        tx: Hash,
    },
    /// A read-only contract call with hex arguments; prints the hex output.
    Call(RawCall),
    /// A contract instance: code, admin, frozen, creator, label.
    Contract {
        #[arg(long, value_parser = parse_contract)]
        contract: Address,
    },
    /// Uploaded code: uploader, size, methods.
    Code {
        #[arg(long)]
        code_hash: Hash,
    },
    /// Ask the certificate contract, off the record, whether a document is certified.
    CertVerify(CertDocument),
    /// Access requests, grants, and the gateway's check.
    #[command(subcommand)]
    Access(domain_cli::AccessQuery),
    /// The access audit trail.
    #[command(subcommand)]
    Audit(domain_cli::AuditQuery),
}

fn parse_kind(text: &str) -> Result<OrgKind, String> {
    OrgKind::from_name(text).ok_or_else(|| format!("{text:?} is not department, enterprise, auditor or operator"))
}

fn parse_status(text: &str) -> Result<OrgStatus, String> {
    OrgStatus::from_name(text).ok_or_else(|| format!("{text:?} is not active or suspended"))
}

fn parse_contract(text: &str) -> Result<Address, String> {
    match text {
        "registry" => Ok(builder::registry()),
        "governance" => Ok(builder::governance()),
        hex => hex.parse().map_err(|e| format!("{hex:?} is neither a system contract name nor an address: {e}")),
    }
}

fn org_json(org: &Org) -> serde_json::Value {
    serde_json::json!({
        "id": org.id,
        "name": org.name,
        "kind": org.kind.name(),
        "status": org.status.name(),
        "admin": hex::encode(org.admin),
        "registered_height": org.registered_height,
        "updated_height": org.updated_height,
    })
}

fn print(output: Output, json: serde_json::Value, text: String) {
    match output {
        Output::Json => println!("{json}"),
        Output::Text => println!("{text}"),
    }
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
    match runtime.block_on(run(cli)) {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("error: {err:#}");
            std::process::ExitCode::FAILURE
        }
    }
}

async fn run(cli: Cli) -> anyhow::Result<()> {
    let output = cli.output;
    match cli.command {
        Command::Keys(KeysCommand::New { out, force, encrypt }) => {
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
            print(
                output,
                json,
                format!("wrote {}\npublic key {}\naccount    {}", out.display(), key.public(), key.account()),
            );
        }
        Command::Keys(KeysCommand::Show { key }) => {
            let key = keyfile::read(&key)?;
            let json = serde_json::json!({"public_key": key.public(), "account": key.account()});
            print(output, json, format!("public key {}\naccount    {}", key.public(), key.account()));
        }
        Command::Init(args) => init(args, output)?,
        Command::Node(NodeCommand::Run { home }) => run_node(&home).await?,
        Command::Tx(args) => tx(args, output).await?,
        Command::Query(args) => query(args, output).await?,
        Command::Audit(command) => {
            let (json, text) = audit_cli::run(command).await?;
            print(output, json, text);
        }
        Command::Testnet(command) => testnet(command, output).await?,
        Command::CodeHash { wasm } => {
            let code = read_wasm(&wasm)?;
            let hash = shutong_vm::Vm::code_hash(&code);
            let json = serde_json::json!({"file": wasm, "code_hash": hash, "size": code.len()});
            print(output, json, hash.to_hex());
        }
        Command::Status(args) => {
            let status = Client::new(&args.rpc)?.status().await?;
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
            print(output, serde_json::to_value(&status)?, text);
        }
    }
    Ok(())
}

fn init(args: InitArgs, output: Output) -> anyhow::Result<()> {
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
    let genesis = Genesis::new(
        &args.chain_id,
        now_ms,
        vec![GenesisValidator { name: "validator-0".into(), public_key: validator.public() }],
        admins,
    );
    genesis.validate()?;
    std::fs::write(home.join(GENESIS_FILE), serde_json::to_string_pretty(&genesis)?)?;
    std::fs::write(home.join(CONFIG_FILE), cfg.to_toml())?;
    let json = serde_json::json!({"home": home, "chain_id": genesis.chain_id, "validator": validator.public(), "admin_key": admin_file});
    let mut text =
        format!("initialised {} for chain {}\nvalidator {}", home.display(), genesis.chain_id, validator.public());
    if let Some(path) = &admin_file {
        text.push_str(&format!("\nadmin key {}", path.display()));
    }
    print(output, json, text);
    Ok(())
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

fn receipt_text(receipt: &Receipt) -> String {
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

async fn tx(args: TxArgs, output: Output) -> anyhow::Result<()> {
    let key = keyfile::read(&args.key)?;
    let client = Client::new(&args.rpc.rpc)?;
    let status = client.status().await.with_context(|| format!("is a node running at {}?", args.rpc.rpc))?;
    let call = match args.call {
        TxCall::Org(OrgTx::Register { id, name, kind }) => builder::register_org(&id, &name, kind),
        TxCall::Org(OrgTx::Update { id, name, status }) => {
            if name.is_none() && status.is_none() {
                bail!("org update needs --name or --status");
            }
            builder::update_org(&id, name.as_deref(), status)
        }
        TxCall::Validators(ValidatorsTx::Set { validators }) => builder::set_validators(&validators),
        TxCall::Call(raw) => Call {
            contract: raw.contract,
            method: raw.method,
            args: hex::decode(&raw.args_hex).context("--args-hex is not hex")?,
        },
        TxCall::Contract(command) => contract_call(command, &key)?,
        TxCall::Cert(command) => cert_call(command, status.timestamp_ms)?,
        TxCall::Principal(command) => domain_cli::principal_call(command),
        TxCall::Catalog(command) => domain_cli::catalog_call(command),
        TxCall::Access(command) => domain_cli::access_call(command, &client, status.timestamp_ms).await?,
        TxCall::Audit(command) => domain_cli::audit_call(command),
        TxCall::Gov(command) => domain_cli::gov_call(command),
    };
    let mut txb = TxBuilder::new(&status.chain_id, key.clone());
    txb.gas_limit = args.gas_limit.unwrap_or_else(|| {
        if call.contract == builder::lifecycle() && call.method == "upload" {
            builder::upload_gas_limit(call.args.len())
        } else {
            builder::GAS_LIMIT_DEFAULT
        }
    });
    let nonce = client.nonce(&key.account()).await?;
    let signed = txb.call(call, nonce, status.height + args.expiry_blocks);
    let receipt = client.submit_and_wait(&signed, Duration::from_secs(args.timeout_secs)).await?;
    let mut text = receipt_text(&receipt);
    if receipt.status.is_success() {
        text.push_str(&result_text(&signed.tx.call, &receipt.output));
    }
    print(output, serde_json::to_value(&receipt)?, text);
    if !receipt.status.is_success() {
        bail!("transaction {} failed: {:?}", receipt.tx_id, receipt.status);
    }
    Ok(())
}

/// A lifecycle call from its command.
fn contract_call(command: ContractTx, key: &Keypair) -> anyhow::Result<Call> {
    let args_of = |text: &str| hex::decode(text).context("--args-hex is not hex");
    Ok(match command {
        ContractTx::Approve { code_hash } => builder::approve_code(&code_hash),
        ContractTx::Upload { wasm } => {
            let code = read_wasm(&wasm)?;
            builder::upload_code(&code)
        }
        ContractTx::Instantiate { code_hash, label, admin, args_hex } => {
            builder::instantiate(&code_hash, &label, &admin.unwrap_or(key.account()), &args_of(&args_hex)?)
        }
        ContractTx::Migrate { contract, code_hash, args_hex } => {
            builder::migrate(&contract, &code_hash, &args_of(&args_hex)?)
        }
        ContractTx::Freeze { contract } => builder::freeze(&contract),
        ContractTx::Unfreeze { contract } => builder::unfreeze(&contract),
    })
}

/// Reads a wasm file no larger than the chain accepts.
fn read_wasm(path: &Path) -> anyhow::Result<Vec<u8>> {
    let max = shutong_types::limits::CODE_BYTES_MAX as u64;
    let len = std::fs::metadata(path).with_context(|| format!("cannot read {}", path.display()))?.len();
    anyhow::ensure!(len <= max, "{} is {len} bytes; contract code may be at most {max}", path.display());
    let code = std::fs::read(path).with_context(|| format!("cannot read {}", path.display()))?;
    anyhow::ensure!(code.starts_with(b"\0asm"), "{} is not a wasm module", path.display());
    Ok(code)
}

/// The file's bytes, or `None` if it is larger than `max`.
fn read_bounded_bytes(path: &Path, max: u64) -> std::io::Result<Option<Vec<u8>>> {
    use std::io::Read;
    let mut bytes = Vec::new();
    std::fs::File::open(path)?.take(max + 1).read_to_end(&mut bytes)?;
    Ok((bytes.len() as u64 <= max).then_some(bytes))
}

/// The holder's and the document's hashes.
fn cert_hashes(doc: &CertDocument) -> anyhow::Result<(Hash, Hash)> {
    let document = read_bounded_bytes(&doc.document, 64 << 20)
        .with_context(|| format!("cannot read {}", doc.document.display()))?
        .with_context(|| format!("{} is larger than 64 MiB", doc.document.display()))?;
    Ok((builder::cert::digest(doc.holder.as_bytes()), builder::cert::digest(&document)))
}

fn cert_call(command: CertTx, now_ms: u64) -> anyhow::Result<Call> {
    Ok(match command {
        CertTx::Issue { doc, kind, valid_days } => {
            let (holder, digest) = cert_hashes(&doc)?;
            let until = now_ms.saturating_add(valid_days.saturating_mul(86_400_000));
            builder::cert::issue(&doc.contract, &doc.id, &kind, holder, digest, until)
        }
        CertTx::Verify { doc } => {
            let (holder, digest) = cert_hashes(&doc)?;
            builder::cert::verify(&doc.contract, &doc.id, holder, digest)
        }
        CertTx::Revoke { contract, id } => builder::cert::revoke(&contract, &id),
    })
}

fn answer_text(answer: &builder::cert::Answer) -> String {
    if answer.valid { "certified: yes".to_string() } else { format!("certified: no ({})", answer.reason) }
}

/// What a successful call returned, for the calls whose output means something to a person.
fn result_text(call: &Call, output: &[u8]) -> String {
    if let Some(text) = domain_cli::result_text(call, output) {
        return format!("\n{text}");
    }
    if call.contract == builder::lifecycle() {
        return match (call.method.as_str(), output.len()) {
            ("upload", 32) => format!("\ncode hash {}", hex::encode(output)),
            ("instantiate", 32) => format!("\ncontract {}", hex::encode(output)),
            _ => String::new(),
        };
    }
    if call.method == "verify"
        && let Ok(answer) = builder::cert::Answer::decode(output)
    {
        return format!("\n{}  (audit leaf {})", answer_text(&answer), answer.audit_index);
    }
    String::new()
}

async fn query(args: QueryArgs, output: Output) -> anyhow::Result<()> {
    let client = Client::new(&args.rpc.rpc)?;
    match args.what {
        QueryWhat::Contract { contract } => {
            let info = client.contract(&contract).await?.with_context(|| format!("no contract at {contract}"))?;
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
            print(output, serde_json::to_value(&info)?, text);
        }
        QueryWhat::Code { code_hash } => {
            let info = client.code(&code_hash).await?.with_context(|| format!("no code {code_hash} is uploaded"))?;
            let text = format!(
                "code {}  {} bytes  uploaded by {} at height {}\nmethods {}",
                info.code_hash,
                info.size,
                info.uploader,
                info.height,
                info.methods.join(", ")
            );
            print(output, serde_json::to_value(&info)?, text);
        }
        QueryWhat::Access(command) => {
            let (json, text) = domain_cli::access_query(command, &client).await?;
            print(output, json, text);
        }
        QueryWhat::Audit(command) => {
            let (json, text) = domain_cli::audit_query(command, &client).await?;
            print(output, json, text);
        }
        QueryWhat::CertVerify(doc) => {
            let (holder, digest) = cert_hashes(&doc)?;
            let args = builder::cert::verify_args(&doc.id, holder, digest);
            let bytes = client.query(&doc.contract, "verify", &args).await?;
            let answer = builder::cert::Answer::decode(&bytes).context("the contract returned a malformed answer")?;
            let json = serde_json::json!({"valid": answer.valid, "reason": answer.reason});
            print(output, json, answer_text(&answer));
        }
        QueryWhat::Org { id } => {
            let bytes = client.query(&builder::registry(), "get", &GetOrg { id }.encode()).await?;
            let org = Org::decode(&bytes).context("the registry returned a malformed organisation")?;
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
            print(output, org_json(&org), text);
        }
        QueryWhat::Validators => {
            let bytes = client.query(&builder::governance(), "get_validators", &[]).await?;
            let got = Validators::decode(&bytes).context("governance returned a malformed validator set")?;
            let hex_keys = |keys: &[[u8; 32]]| keys.iter().map(hex::encode).collect::<Vec<_>>();
            let mut text = format!(
                "epoch {} since height {}: {} validators",
                got.current.epoch,
                got.current.since_height,
                got.current.keys.len()
            );
            for key in &got.current.keys {
                text.push_str(&format!("\n  {}", hex::encode(key)));
            }
            if let Some(p) = &got.pending {
                text.push_str(&format!("\npending from height {}: {} validators", p.activation_height, p.keys.len()));
                for key in &p.keys {
                    text.push_str(&format!("\n  {}", hex::encode(key)));
                }
            }
            let json = serde_json::json!({
                "epoch": got.current.epoch,
                "since_height": got.current.since_height,
                "validators": hex_keys(&got.current.keys),
                "pending": got.pending.as_ref().map(|p| serde_json::json!({
                    "activation_height": p.activation_height,
                    "validators": hex_keys(&p.keys),
                })),
            });
            print(output, json, text);
        }
        QueryWhat::Block { height } => {
            let block = client.block(height).await?.with_context(|| format!("no block at height {height} yet"))?;
            let text = format!(
                "block {}  height {}  view {}  txs {}\nparent {}\nstate root (after parent) {}",
                block.hash,
                block.header.height,
                block.header.view,
                block.txs.len(),
                block.header.parent,
                block.header.state_root
            );
            print(output, serde_json::to_value(&block)?, text);
        }
        QueryWhat::Receipt { tx } => {
            let receipt =
                client.receipt(&tx).await?.with_context(|| format!("no receipt for {tx}: not committed (yet)"))?;
            print(output, serde_json::to_value(&receipt)?, receipt_text(&receipt));
        }
        QueryWhat::Call(raw) => {
            let args = hex::decode(&raw.args_hex).context("--args-hex is not hex")?;
            let out = hex::encode(client.query(&raw.contract, &raw.method, &args).await?);
            print(output, serde_json::json!({"output": out}), out.clone());
        }
    }
    Ok(())
}

fn rpc_url(addr: std::net::SocketAddr) -> String {
    format!("http://{addr}")
}

async fn testnet(command: TestnetCommand, output: Output) -> anyhow::Result<()> {
    use shutong_node::localnet::{self, Layout};
    let binary = std::env::current_exe().context("cannot find the shutong binary")?;
    match command {
        TestnetCommand::Init(params) => {
            params.generate()?;
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
            // Up means finalizing: every node has committed a block.
            let deadline = std::time::Instant::now() + Duration::from_secs(60);
            for node in &layout.nodes {
                let client = Client::new(&rpc_url(node.rpc))?;
                loop {
                    match client.status().await {
                        Ok(status) if status.height >= 1 => break,
                        _ if std::time::Instant::now() > deadline => {
                            bail!(
                                "{} has not committed a block after 60 s; see {}",
                                node.name,
                                node.home.join("node.log").display()
                            )
                        }
                        _ => tokio::time::sleep(Duration::from_millis(100)).await,
                    }
                }
            }
            testnet_status(&layout, output).await?;
        }
        TestnetCommand::Status { dir } => testnet_status(&Layout::load(&dir.dir)?, output).await?,
        TestnetCommand::Down { dir, purge } => {
            let dir = dir.dir;
            let mut layout = Layout::load(&dir)?;
            for node in &mut layout.nodes {
                if let Some(pid) = node.pid.take().filter(|pid| localnet::alive(*pid)) {
                    localnet::stop(pid, Duration::from_secs(10));
                    println!("stopped {} (pid {pid})", node.name);
                }
            }
            if purge {
                std::fs::remove_dir_all(&dir).with_context(|| format!("cannot remove {}", dir.display()))?;
                println!("removed {}", dir.display());
            } else {
                layout.save(&dir)?;
                println!(
                    "data kept in {}; `shutong testnet up --dir {}` starts it again",
                    dir.display(),
                    dir.display()
                );
            }
        }
        TestnetCommand::Stop { dir, node, kill } => {
            let mut layout = Layout::load(&dir.dir)?;
            let count = layout.nodes.len();
            let entry = layout.nodes.get_mut(node).with_context(|| format!("--node must be below {count}"))?;
            let pid = entry
                .pid
                .take()
                .filter(|pid| localnet::alive(*pid))
                .with_context(|| format!("{} is not running", entry.name))?;
            if kill {
                localnet::signal(pid, libc::SIGKILL);
            } else {
                localnet::stop(pid, Duration::from_secs(10));
            }
            println!("{} {} (pid {pid})", if kill { "killed" } else { "stopped" }, entry.name);
            layout.save(&dir.dir)?;
        }
        TestnetCommand::Start { dir, node } => {
            let mut layout = Layout::load(&dir.dir)?;
            let count = layout.nodes.len();
            let entry = layout.nodes.get_mut(node).with_context(|| format!("--node must be below {count}"))?;
            if entry.pid.is_some_and(localnet::alive) {
                bail!("{} is already running", entry.name);
            }
            let pid = localnet::spawn(&binary, entry)?;
            entry.pid = Some(pid);
            println!("started {} (pid {pid})", entry.name);
            layout.save(&dir.dir)?;
        }
    }
    Ok(())
}

async fn testnet_status(layout: &shutong_node::localnet::Layout, output: Output) -> anyhow::Result<()> {
    let mut rows = Vec::new();
    let mut text = format!(
        "chain {}\n{:<13} {:>7} {:>7} {:>7} {:>5}  {:<16}  {}",
        layout.chain_id, "node", "pid", "height", "view", "peers", "last block", "state root"
    );
    for node in &layout.nodes {
        let running = node.pid.filter(|pid| shutong_node::localnet::alive(*pid));
        let status = match running {
            Some(_) => Client::new(&rpc_url(node.rpc))?.status().await.ok(),
            None => None,
        };
        let pid = running.map_or("-".to_string(), |p| p.to_string());
        match &status {
            Some(s) => text.push_str(&format!(
                "\n{:<13} {:>7} {:>7} {:>7} {:>5}  {:<16}  {}",
                node.name,
                pid,
                s.height,
                s.consensus_view,
                s.peers,
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
            "name": node.name, "pid": running, "rpc": rpc_url(node.rpc), "p2p": node.p2p, "status": status,
        }));
    }
    print(output, serde_json::json!({"chain_id": layout.chain_id, "nodes": rows}), text);
    Ok(())
}
