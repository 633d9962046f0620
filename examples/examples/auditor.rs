//! An auditor's program: `auditor register`, then (once the governance committee approved the
//! office) `auditor join`, then `auditor trail --grant N --genesis FILE`
//! prints a grant's proven, complete history. See `shutong_examples::auditor`.

use clap::{Parser, Subcommand};
use shutong_examples::auditor;
use shutong_sdk::Client;
use std::path::PathBuf;

#[derive(Parser)]
struct Args {
    #[arg(long, default_value = "http://127.0.0.1:26600")]
    rpc: String,
    /// Where the auditor's key is kept.
    #[arg(long, default_value = ".auditor")]
    dir: PathBuf,
    #[arg(long, default_value = "inspect")]
    org: String,
    #[command(subcommand)]
    step: Step,
}

#[derive(Subcommand)]
enum Step {
    /// Register the inspection office (pending until the governance committee approves it).
    Register,
    /// Name the approved office's auditor.
    Join,
    /// A grant's full history, every entry and its completeness proven.
    Trail {
        #[arg(long)]
        grant: u64,
        #[arg(long)]
        genesis: PathBuf,
        #[arg(long, default_value = "annual inspection")]
        reason: String,
    },
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let client = Client::new(&args.rpc)?;
    let out = match args.step {
        Step::Register => {
            let office = auditor::register(&client, &args.dir, &args.org).await?;
            serde_json::json!({"org": office.org, "admin": office.auditor.account(), "status": "pending"})
        }
        Step::Join => {
            let office = auditor::join(&client, &args.dir, &args.org).await?;
            serde_json::json!({"org": office.org, "auditor": office.auditor.account()})
        }
        Step::Trail { grant, genesis, reason } => {
            let office = auditor::open(&client, &args.dir, &args.org).await?;
            let trail = auditor::grant_history(&office, &genesis, grant, &reason).await?;
            serde_json::json!({"height": trail.height, "complete": true, "entries": trail.kinds()})
        }
    };
    println!("{out}");
    Ok(())
}
