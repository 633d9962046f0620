//! A consuming enterprise's program: `consumer join`, `consumer request`, `consumer wait
//! --request N`. See `shutong_examples::consumer`.

use clap::{Parser, Subcommand};
use shutong_examples::consumer;
use shutong_sdk::Client;
use std::path::PathBuf;
use std::time::Duration;

#[derive(Parser)]
struct Args {
    #[arg(long, default_value = "http://127.0.0.1:26600")]
    rpc: String,
    /// Where the enterprise's keys are kept.
    #[arg(long, default_value = ".consumer")]
    dir: PathBuf,
    #[arg(long, default_value = "acme")]
    org: String,
    #[command(subcommand)]
    step: Step,
}

#[derive(Subcommand)]
enum Step {
    /// Register the enterprise and its analyst.
    Join,
    /// Ask for the licence records' uscc and name for licence renewal, up to 10 uses.
    Request {
        #[arg(long, default_value = "market/business-licence")]
        resource: String,
        #[arg(long, default_value = "licensing.renewal")]
        purpose: String,
    },
    /// Wait until a request is decided; print the grant.
    Wait {
        #[arg(long)]
        request: u64,
    },
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let client = Client::new(&args.rpc)?;
    let out = match args.step {
        Step::Join => {
            let ent = consumer::join(&client, &args.dir, &args.org).await?;
            serde_json::json!({"org": ent.org, "analyst": ent.analyst.account()})
        }
        Step::Request { resource, purpose } => {
            let ent = consumer::open(&client, &args.dir, &args.org).await?;
            let request = consumer::request(&ent, &resource, &["uscc", "name"], &purpose, 200).await?;
            serde_json::json!({"request": request})
        }
        Step::Wait { request } => {
            // Reads need a registered principal's signature: the analyst's own client.
            let ent = consumer::open(&client, &args.dir, &args.org).await?;
            let grant = consumer::wait_for_grant(ent.analyst.client(), request, Duration::from_secs(600)).await?;
            serde_json::json!({"request": request, "grant": grant})
        }
    };
    println!("{out}");
    Ok(())
}
