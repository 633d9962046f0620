//! `shutong audit`: the audit trail. A provider's gateway records accesses, attestations and
//! anchored batches; anyone reads events and violations; an auditor's `trail` logs the
//! question on chain, asks a node, checks every answer against headers finalized by the
//! validators (followed from the genesis file), prints the timeline, and can export a bundle
//! that `verify` checks with no network.

use super::grant::UseArgs;
use super::values::{event_json, event_text};
use crate::context::{Ctx, Outcome, Shown, shown};
use anyhow::Context;
use clap::{Args, Subcommand};
use shutong_execution::genesis::Genesis;
use shutong_sdk::builder::{self, audit_trail};
use shutong_sdk::light::{Bundle, TrailItem};
use shutong_sdk::reads;
use shutong_sdk::rpc::AuditQuery;
use shutong_sdk::system_api::audit::{AccessEvent, AnchorBatch, Attest, BatchGroup, EventRecord, LogQuery};
use shutong_sdk::{LightClient, TxBuilder, VerifyingClient};
use shutong_types::AccountId;
use std::path::PathBuf;
use std::time::Duration;

/// The largest bundle `audit verify` reads: a grant's history of a million entries with
/// their proofs is well below it.
const BUNDLE_BYTES_MAX: u64 = 1 << 30;

#[derive(Subcommand)]
pub enum AuditCommand {
    /// Record an access (the provider's gateway): counted against the grant, permitted or
    /// denied, and a leaf of the audit log either way.
    Record {
        #[command(flatten)]
        use_: UseArgs,
        /// The business reference (a case or application number); only its hash goes on chain.
        #[arg(long, default_value = "")]
        reference: String,
    },
    /// Record a yes/no answer given instead of data (the provider's gateway; a `verify` use).
    Attest {
        /// The grant.
        #[arg(long)]
        id: u64,
        #[arg(long)]
        consumer: AccountId,
        /// The question asked; only its hash goes on chain.
        #[arg(long)]
        question: String,
        #[arg(long)]
        answer: bool,
    },
    /// Anchor a gateway's batch of one consumer's uses by their Merkle root (the provider's
    /// gateway; `--records` is the batch's event count). Uses beyond the grant are recorded
    /// as a violation, never refused.
    Anchor {
        #[command(flatten)]
        use_: UseArgs,
        /// The batch's number in this gateway's batches of the grant, from 1.
        #[arg(long)]
        seq: u64,
        #[arg(long)]
        root: shutong_types::Hash,
        /// The period the batch covers, [from, to) in ms since the epoch.
        #[arg(long)]
        from_ms: u64,
        #[arg(long)]
        to_ms: u64,
    },
    /// A grant's access events, in order (unproven: the node's word; see `trail`).
    History {
        /// The grant.
        #[arg(long)]
        id: u64,
    },
    /// One access event.
    Event {
        #[arg(long)]
        id: u64,
    },
    /// A violation.
    Violation {
        #[arg(long)]
        id: u64,
    },
    /// Validators that signed two conflicting votes, as recorded on chain (the same as
    /// `gov evidence`).
    Evidence,
    /// Who used which data, under which grant, for what purpose: logs the question on chain
    /// (as an auditor), then prints every matching authorisation and access entry, each
    /// proven against a header the validators finalized.
    Trail(TrailArgs),
    /// Checks an exported bundle with no network: the validators from genesis through each
    /// change, the header's certificate, and every entry's proof.
    Verify {
        /// The bundle written by `audit trail --export`.
        file: PathBuf,
        /// The chain's genesis file, to check the bundle starts from the validators you trust.
        #[arg(long)]
        genesis: Option<PathBuf>,
    },
}

#[derive(Args)]
#[command(group(clap::ArgGroup::new("by").args(["resource", "grant", "org", "principal", "purpose"])))]
pub struct TrailArgs {
    /// The chain's genesis file: the validators it names are all this command trusts.
    #[arg(long)]
    genesis: PathBuf,
    /// Entries about this catalog resource.
    #[arg(long)]
    resource: Option<String>,
    /// The full history of this grant.
    #[arg(long)]
    grant: Option<u64>,
    /// Entries where this organisation is the provider or the consumer.
    #[arg(long)]
    org: Option<String>,
    /// Entries by or for this principal's account (hex).
    #[arg(long)]
    principal: Option<String>,
    /// Entries for this purpose code.
    #[arg(long)]
    purpose: Option<String>,
    /// From this consensus time (ms since the Unix epoch), inclusive.
    #[arg(long, default_value_t = 0)]
    from_ms: u64,
    /// Up to this consensus time, inclusive (no limit if absent).
    #[arg(long)]
    to_ms: Option<u64>,
    /// Why you ask (a case or inspection reference); recorded with the question.
    #[arg(long)]
    reason: String,
    /// Also write a self-contained bundle that `shutong audit verify` checks offline.
    #[arg(long)]
    export: Option<PathBuf>,
}

impl TrailArgs {
    fn selection(&self) -> (String, String) {
        let pick = [
            ("resource", self.resource.clone()),
            ("grant", self.grant.map(|g| g.to_string())),
            ("org", self.org.clone()),
            ("principal", self.principal.as_ref().map(|p| p.to_ascii_lowercase())),
            ("purpose", self.purpose.clone()),
        ];
        pick.into_iter()
            .find_map(|(by, value)| value.map(|v| (by.to_string(), v)))
            .unwrap_or_else(|| ("time".to_string(), String::new()))
    }
}

/// `yyyy-mm-ddThh:mm:ss.mmmZ` for milliseconds since the Unix epoch (UTC).
pub fn utc(ms: u64) -> String {
    let days = (ms / 86_400_000) as i64;
    let rest = ms % 86_400_000;
    // Howard Hinnant's civil-from-days.
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1_460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    let (h, m, s, milli) = (rest / 3_600_000, rest / 60_000 % 60, rest / 1_000 % 60, rest % 1_000);
    format!("{year:04}-{month:02}-{day:02}T{h:02}:{m:02}:{s:02}.{milli:03}Z")
}

fn item_json(item: &TrailItem) -> serde_json::Value {
    let entry = item.entry.as_ref();
    serde_json::json!({
        "leaf": item.index,
        "time_ms": item.leaf.time_ms,
        "time": utc(item.leaf.time_ms),
        "height": item.leaf.height,
        "contract": item.leaf.contract,
        "kind": entry.map(|e| e.kind.clone()),
        "grant": entry.map(|e| e.grant),
        "request": entry.map(|e| e.request),
        "resource": entry.map(|e| e.resource.clone()),
        "provider_org": entry.map(|e| e.provider_org.clone()),
        "consumer_org": entry.map(|e| e.consumer_org.clone()),
        "principal": entry.map(|e| hex::encode(e.principal)),
        "purpose": entry.map(|e| e.purpose.clone()),
    })
}

fn item_text(item: &TrailItem) -> String {
    match &item.entry {
        Some(e) => format!(
            "{}  leaf {:<6} {:<22} grant {:<4} {:<20} {} -> {}  by {}…  purpose {}",
            utc(item.leaf.time_ms),
            item.index,
            e.kind,
            e.grant,
            e.resource,
            if e.provider_org.is_empty() { "-" } else { &e.provider_org },
            if e.consumer_org.is_empty() { "-" } else { &e.consumer_org },
            &hex::encode(e.principal)[..12],
            if e.purpose.is_empty() { "-" } else { &e.purpose },
        ),
        None => format!(
            "{}  leaf {:<6} {} bytes from contract {}",
            utc(item.leaf.time_ms),
            item.index,
            item.leaf.data.len(),
            item.leaf.contract
        ),
    }
}

/// What a check established, for both commands: (json, text).
fn report(
    height: u64,
    hash: &shutong_types::Hash,
    epoch: u64,
    validators: usize,
    items: &[TrailItem],
    complete: bool,
) -> (serde_json::Value, String) {
    let mut text = String::new();
    for item in items {
        text.push_str(&item_text(item));
        text.push('\n');
    }
    text.push_str(&format!(
        "{} entries, every proof checked against header {height} ({hash}), finalized by a quorum of epoch {epoch}'s {validators} validators",
        items.len()
    ));
    if complete {
        text.push_str(
            "\ncomplete: the entries hold consecutive numbers of the selection's sequence, bounded by the proven entries just outside the period (or its proven count)",
        );
    } else {
        text.push_str("\nnot proven complete");
    }
    let json = serde_json::json!({
        "verified": true,
        "complete": complete,
        "header": {"height": height, "hash": hash, "epoch": epoch, "validators": validators},
        "items": items.iter().map(item_json).collect::<Vec<_>>(),
    });
    (json, text)
}

pub async fn run(command: AuditCommand, ctx: &Ctx) -> Shown {
    let (json, text) = match command {
        AuditCommand::Record { use_, reference } => {
            let u = use_.to_use();
            return Ok(Outcome::Send(audit_trail::record(&AccessEvent {
                grant: u.grant,
                consumer: u.account,
                fields: u.fields,
                method: u.method,
                purpose: u.purpose,
                business_ref_hash: builder::cert::digest(reference.as_bytes()).0,
                subject_ref_hmac: [0; 32],
                query_hash: [0; 32],
                result_hash: [0; 32],
                record_count: u.count,
                consumer_signature: None,
            })));
        }
        AuditCommand::Attest { id, consumer, question, answer } => {
            return Ok(Outcome::Send(audit_trail::attest(&Attest {
                grant: id,
                consumer: consumer.0,
                question_hash: builder::cert::digest(question.as_bytes()).0,
                subject_ref_hmac: [0; 32],
                answer,
            })));
        }
        AuditCommand::Anchor { use_, seq, root, from_ms, to_ms } => {
            let u = use_.to_use();
            return Ok(Outcome::Send(audit_trail::anchor(&AnchorBatch {
                grant: u.grant,
                seq,
                period_start_ms: from_ms,
                period_end_ms: to_ms,
                groups: vec![BatchGroup {
                    consumer: u.account,
                    fields: u.fields,
                    method: u.method,
                    purpose: u.purpose,
                    count: u.count,
                }],
                merkle_root: root.0,
            })));
        }
        AuditCommand::History { id } => history(id, ctx).await?,
        AuditCommand::Event { id } => {
            let r = ctx.client()?.read(reads::access_event(id)).await?;
            (event_json(&r), event_text(&r))
        }
        AuditCommand::Violation { id } => {
            let v = ctx.client()?.read(reads::violation(id)).await?;
            let json = serde_json::json!({"id": v.id, "event": v.event, "grant": v.grant, "consumer_org": v.consumer_org, "reason": v.reason, "status": v.status.name(), "anchor": v.anchor, "excess": v.excess});
            let source = match v.anchor {
                Some(anchor) => format!("anchored batch record {anchor}, {} uses beyond the grant", v.excess),
                None => format!("event {}", v.event),
            };
            let text = format!(
                "violation {}  {source}  grant {}  by {}: {}  [{}]",
                v.id,
                v.grant,
                v.consumer_org,
                v.reason,
                v.status.name()
            );
            (json, text)
        }
        AuditCommand::Trail(args) => trail(args, ctx).await?,
        AuditCommand::Evidence => return super::gov::evidence(ctx).await,
        AuditCommand::Verify { file, genesis } => {
            let size = std::fs::metadata(&file).with_context(|| format!("cannot read {}", file.display()))?.len();
            anyhow::ensure!(
                size <= BUNDLE_BYTES_MAX,
                "{} is {size} bytes, more than an audit bundle may hold ({BUNDLE_BYTES_MAX})",
                file.display()
            );
            let text = std::fs::read_to_string(&file).with_context(|| format!("cannot read {}", file.display()))?;
            let bundle: Bundle =
                serde_json::from_str(&text).with_context(|| format!("{} is not an audit bundle", file.display()))?;
            let trusted = genesis.map(|path| Genesis::load(&path)).transpose()?;
            let trust = trusted.map(|g| LightClient::new(&g.chain_id, g.suite, g.validator_keys()));
            let checked =
                bundle.verify(trust.as_ref()).with_context(|| format!("{} does not verify", file.display()))?;
            let (mut json, mut text) = report(
                checked.header.header.height,
                &checked.header.hash,
                checked.epoch.epoch,
                checked.epoch.validators.len(),
                &checked.items,
                checked.complete,
            );
            if trust.is_none() {
                text.push_str("\nnote: no --genesis given; trust rests on the genesis validators the bundle names");
                json["trust"] = serde_json::json!("the bundle's own genesis validators");
            }
            (json, text)
        }
    };
    shown(json, text)
}

/// A grant's events, page by page.
async fn history(grant: u64, ctx: &Ctx) -> anyhow::Result<(serde_json::Value, String)> {
    let client = ctx.client()?;
    let mut events: Vec<EventRecord> = Vec::new();
    let mut after = None;
    loop {
        let page = client.read(reads::access_history(grant, after, 100)).await?;
        let Some(last) = page.last() else { break };
        after = Some(last.id);
        events.extend(page);
        anyhow::ensure!(events.len() <= 100_000, "more than 100,000 events: page with the RPC instead");
    }
    let json = serde_json::Value::Array(events.iter().map(event_json).collect());
    let text = if events.is_empty() {
        format!("no access events under grant {grant}")
    } else {
        events.iter().map(event_text).collect::<Vec<_>>().join("\n")
    };
    Ok((json, text))
}

async fn trail(args: TrailArgs, ctx: &Ctx) -> anyhow::Result<(serde_json::Value, String)> {
    let genesis = Genesis::load(&args.genesis)?;
    let key = ctx.signer()?;
    let client = ctx.client()?;
    let (by, value) = args.selection();
    let to_ms = args.to_ms.unwrap_or(u64::MAX);
    anyhow::ensure!(to_ms >= args.from_ms, "--to-ms {to_ms} is before --from-ms {}", args.from_ms);

    // The question goes on the record first.
    let status = ctx.status(&client).await?;
    anyhow::ensure!(
        status.chain_id == genesis.chain_id,
        "the node serves chain {:?}, the genesis file is for {:?}",
        status.chain_id,
        genesis.chain_id
    );
    let question =
        LogQuery { by: by.clone(), value: value.clone(), from_ms: args.from_ms, to_ms, reason: args.reason.clone() };
    let nonce = client.nonce(&key.account()).await?;
    let tx = TxBuilder::new(&status.chain_id, key).call(
        audit_trail::log_query(&question),
        nonce,
        status.height + builder::EXPIRY_BLOCKS_DEFAULT,
    )?;
    let bar = ctx.spinner("logging the question on chain");
    let logged = client.submit_and_wait(&tx, Duration::from_secs(ctx.globals.timeout_secs)).await;
    bar.finish_and_clear();
    let logged = logged?;
    anyhow::ensure!(logged.status.is_success(), "the question was not logged: {:?}", logged.status);

    let bar = ctx.spinner("following the validator set from genesis and checking every proof");
    let mut verifying =
        VerifyingClient::new(client, LightClient::new(&genesis.chain_id, genesis.suite, genesis.validator_keys()));
    let (at, header) = verifying.sync_info().await?;
    let query = AuditQuery {
        by,
        value,
        from_ms: args.from_ms,
        to_ms,
        height: Some(at.header.height),
        cursor: None,
        limit: None,
        log_tx: logged.tx_id,
    };
    // Every answer is proven complete: consecutive numbers in the selector's sequence,
    // bounded by the entries just outside the period or by the proven count.
    let (items, completeness) = verifying.audit_answer(&query).await?;
    bar.finish_and_clear();
    let epoch = verifying.light.epoch();
    let (mut json, mut text) = report(at.header.height, &at.hash, epoch.epoch, epoch.validators.len(), &items, true);
    json["logged_as"] = serde_json::json!(logged.tx_id);
    text.push_str(&format!("\nthe question is on record as transaction {}", logged.tx_id));
    if let Some(path) = args.export {
        let bundle = Bundle::new(&verifying.light, header, query, &items, completeness);
        let bytes = serde_json::to_vec_pretty(&bundle)?;
        std::fs::write(&path, bytes).with_context(|| format!("cannot write {}", path.display()))?;
        text.push_str(&format!("\nbundle written to {}: check it offline with `shutong audit verify`", path.display()));
        json["bundle"] = serde_json::json!(path);
    }
    Ok((json, text))
}

#[cfg(test)]
mod tests {
    use super::utc;

    #[test]
    fn utc_formats_known_instants() {
        assert_eq!(utc(0), "1970-01-01T00:00:00.000Z");
        assert_eq!(utc(951_782_400_000), "2000-02-29T00:00:00.000Z");
        assert_eq!(utc(1_795_000_000_123), "2026-11-18T11:06:40.123Z");
    }
}
