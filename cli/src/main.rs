//! Shutong's command line: the shutong binary, one module per command group, for operators, enterprises, departments and auditors.
//!
//! The `shutong` command. One tree of `NOUN VERB --flags` for every user: operators
//! (`keys`, `init`, `node`, `testnet`, `status`, `gov`), enterprises (`contract`, `tx`,
//! `request`, `cert`), departments (`org`, `catalog`, `grant`, `audit record`) and auditors
//! (`audit trail`, `audit verify`). Every command takes `--output json`; every command that
//! signs takes `--key` (or `SHUTONG_KEY`) and every command that asks a node takes `--rpc`
//! (or `SHUTONG_RPC`).

//!
//! Each command group is a module of [`commands`]; [`context`] holds what they share (the
//! global flags, the client and signer, how results are printed).

mod commands;
mod context;

use clap::{Parser, Subcommand};
use commands::{audit, catalog, cert, contract, genesis, gov, grant, keys, node, org, request, status, testnet, tx};
use context::{Ctx, Globals, Outcome};
use shutong_codec::Decode;
use shutong_sdk::builder;
use shutong_types::Call;

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
    Keys(keys::KeysCommand),
    /// Create a node home: a chain of one validator made here, or (--genesis) one
    /// department's node on a genesis the departments assembled.
    Init(node::InitArgs),
    /// The genesis ceremony: assemble a genesis from the departments' public parts, check one.
    #[command(subcommand)]
    Genesis(genesis::GenesisCommand),
    /// Run a node.
    #[command(subcommand)]
    Node(node::NodeCommand),
    /// The chain's status as one node sees it.
    Status,
    /// A block by height.
    Block {
        #[arg(long)]
        height: u64,
    },
    /// Transactions: send any contract call, sign offline, submit a signed one, look one up.
    #[command(subcommand)]
    Tx(tx::TxCommand),
    /// Contracts: approve, upload, instantiate, call, query, migrate, freeze.
    #[command(subcommand)]
    Contract(contract::ContractCommand),
    /// Organisations and their principals (keys with roles).
    #[command(subcommand)]
    Org(org::OrgCommand),
    /// The data catalog: resources and their data elements.
    #[command(subcommand)]
    Catalog(catalog::CatalogCommand),
    /// Access requests, their review, and data subjects' consent.
    #[command(subcommand)]
    Request(request::RequestCommand),
    /// Grants: check, amend, delegate, suspend, resume, revoke.
    #[command(subcommand)]
    Grant(grant::GrantCommand),
    /// The audit trail: a gateway's records, and an auditor's proven trail and offline checks.
    #[command(subcommand)]
    Audit(audit::AuditCommand),
    /// Governance: proposals, votes, the validator set and the purpose catalogue.
    #[command(subcommand)]
    Gov(gov::GovCommand),
    /// The example certificate-verification contract (证明电子化).
    #[command(subcommand)]
    Cert(cert::CertCommand),
    /// A local multi-validator testnet on 127.0.0.1.
    #[command(subcommand)]
    Testnet(testnet::TestnetCommand),
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
            if let Some(hint) = context::hint(&err, &ctx.globals.rpc) {
                eprintln!("hint: {hint}");
            }
            std::process::ExitCode::FAILURE
        }
    }
}

async fn run(command: Command, ctx: &Ctx) -> anyhow::Result<()> {
    let outcome = match command {
        Command::Keys(command) => keys::run(command, ctx)?,
        Command::Init(args) => node::init(args)?,
        Command::Genesis(command) => genesis::run(command)?,
        Command::Node(node::NodeCommand::Run { home }) => {
            node::run(&home).await?;
            return Ok(());
        }
        Command::Node(node::NodeCommand::Backup { home, to }) => node::backup(&home, &to)?,
        Command::Node(node::NodeCommand::Restore { from, home, signing_floor }) => {
            node::restore(&from, &home, signing_floor)?
        }
        Command::Testnet(command) => testnet::run(command, ctx).await?,
        Command::Status => status::status(ctx).await?,
        Command::Block { height } => status::block(height, ctx).await?,
        Command::Tx(command) => tx::run(command, ctx).await?,
        Command::Contract(command) => contract::run(command, ctx).await?,
        Command::Cert(command) => cert::run(command, ctx).await?,
        Command::Org(command) => org::run(command, ctx).await?,
        Command::Catalog(command) => catalog::run(command, ctx).await?,
        Command::Request(command) => request::run(command, ctx).await?,
        Command::Grant(command) => grant::run(command, ctx).await?,
        Command::Gov(command) => gov::run(command, ctx).await?,
        Command::Audit(command) => audit::run(command, ctx).await?,
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

/// What a successful call returned, for the calls whose output means something to a person.
fn result_text(call: &Call, output: &[u8]) -> String {
    if let Some(text) = commands::values::result_text(call, output) {
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
        return format!("{}  (audit leaf {})", cert::answer_text(&answer), answer.audit_index);
    }
    String::new()
}
