//! A providing department's program: `provider register`, then (once the governance
//! committee approved the department) `join`, `publish`, `approve --request N`,
//! `serve --grant N --consumer ACCOUNT --genesis FILE`. See `shutong_examples::provider`.

use clap::{Parser, Subcommand};
use shutong_examples::provider;
use shutong_sdk::Client;
use std::path::PathBuf;

#[derive(Parser)]
struct Args {
    #[arg(long, default_value = "http://127.0.0.1:26600")]
    rpc: String,
    /// Where the department's keys are kept.
    #[arg(long, default_value = ".provider")]
    dir: PathBuf,
    #[arg(long, default_value = "market")]
    org: String,
    #[command(subcommand)]
    step: Step,
}

#[derive(Subcommand)]
enum Step {
    /// Register the bureau (pending until the governance committee approves it).
    Register,
    /// Name the approved bureau's admin and gateway.
    Join,
    /// Publish the business-licence records.
    Publish,
    /// Approve a request for everything it asked, for 30 days.
    Approve {
        #[arg(long)]
        request: u64,
    },
    /// Run the gateway for some uses, anchor them, check a proof, revoke and be refused.
    Serve {
        #[arg(long)]
        genesis: PathBuf,
        #[arg(long)]
        grant: u64,
        #[arg(long)]
        consumer: shutong_types::AccountId,
        #[arg(long, default_value = "licensing.renewal")]
        purpose: String,
        #[arg(long, default_value_t = 20)]
        uses: u64,
    },
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let client = Client::new(&args.rpc)?;
    let out = match args.step {
        Step::Register => {
            let dept = provider::register(&client, &args.dir, &args.org).await?;
            serde_json::json!({"org": dept.org, "admin": dept.admin.account(), "status": "pending"})
        }
        Step::Join => {
            let dept = provider::join(&client, &args.dir, &args.org).await?;
            serde_json::json!({"org": dept.org, "admin": dept.admin.account(), "gateway": dept.gateway.account()})
        }
        Step::Publish => {
            let dept = provider::open(&client, &args.dir, &args.org).await?;
            serde_json::json!({"resource": provider::RESOURCE, "version": provider::publish(&dept).await?})
        }
        Step::Approve { request } => {
            let dept = provider::open(&client, &args.dir, &args.org).await?;
            serde_json::json!({"request": request, "grant": provider::approve(&dept, request, 30).await?})
        }
        Step::Serve { genesis, grant, consumer, purpose, uses } => {
            let dept = provider::open(&client, &args.dir, &args.org).await?;
            let served = provider::serve(&dept, &genesis, grant, consumer, &purpose, uses).await?;
            serde_json::json!({
                "permitted": served.permitted, "denied": served.denied,
                "anchor_leaf": served.anchor_leaf, "after_revocation": served.after_revocation,
            })
        }
    };
    println!("{out}");
    Ok(())
}
