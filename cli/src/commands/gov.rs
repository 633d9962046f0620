//! `shutong gov`: governance: proposals, votes, the validator set and the purpose catalogue.

use crate::context::{Ctx, Outcome, Shown, shown};
use clap::Subcommand;
use shutong_sdk::builder::{self};
use shutong_sdk::reads;
use shutong_sdk::system_api::authz::LegalBasis;
use shutong_sdk::system_api::governance::{
    Action, Committee, EVIDENCE_PAGE_MAX, KeyProof, LifecycleOp, Seat, SignedVote, evidence_id,
};
use shutong_sdk::system_api::registry::OrgKind;
use shutong_types::AccountId;

use super::values::*;

#[derive(Subcommand)]
pub enum GovCommand {
    /// Propose a decision (a committee member; counts as its organisation's vote).
    #[command(subcommand)]
    Propose(Proposal),
    /// Vote for a proposal (a committee member); carried out once members of enough
    /// organisations voted.
    Vote {
        /// The proposal.
        #[arg(long)]
        id: u64,
    },
    /// A proposal and its votes.
    Show {
        /// The proposal.
        #[arg(long)]
        id: u64,
    },
    /// The validator set in force and any scheduled change.
    Validators,
    /// The governance committee: its seats (account and organisation) and threshold.
    Committee,
    /// Replace the validator set, in this order (a committee member, while one
    /// organisation's vote is the threshold); it takes effect 10 blocks after inclusion.
    SetValidators {
        /// A validator's public key (hex); repeat for each, in order.
        #[arg(long = "validator", required = true)]
        validators: Vec<shutong_types::PublicKey>,
        /// A joining key's proof of possession, KEY:SIGNATURE as `gov possession` prints
        /// it; one for each key not in the set in force.
        #[arg(long = "proof", value_parser = key_proof)]
        proofs: Vec<KeyProof>,
    },
    /// Prove possession of the key in `--key` for joining the validator set `--validator`
    /// ... (the proposed set, in order) of the node's chain; prints KEY:SIGNATURE (on an
    /// sm2-sm3 chain KEY:SIGNATURE:TRANSPORT:BINDING) for the committee member who proposes
    /// the change.
    Possession {
        /// A validator's public key (hex); repeat for each of the proposed set, in order.
        #[arg(long = "validator", required = true)]
        validators: Vec<shutong_types::PublicKey>,
        /// The public key of this validator's ed25519 transport key (its node's
        /// p2p.transport_key_file), which the proof binds to its key: required on an sm2-sm3
        /// chain, and for a key held in a token.
        #[arg(long)]
        transport: Option<shutong_types::PublicKey>,
    },
    /// Equivocation evidence recorded on chain: validators that signed two conflicting
    /// votes, with the votes, the reporter and the height.
    Evidence,
    /// The defined purpose a purpose code falls under, with its legal bases.
    Purpose {
        /// The purpose code.
        #[arg(long)]
        id: String,
    },
}

#[derive(Subcommand)]
pub enum Proposal {
    /// Replace the validator set, in this order; it takes effect 10 blocks after the vote
    /// that carries it.
    SetValidators {
        /// A validator's public key (hex); repeat for each, in order.
        #[arg(long = "validator", required = true)]
        validators: Vec<shutong_types::PublicKey>,
        /// A joining key's proof of possession, KEY:SIGNATURE as `gov possession` prints
        /// it; one for each key not in the set in force.
        #[arg(long = "proof", value_parser = key_proof)]
        proofs: Vec<KeyProof>,
    },
    /// Approve a code hash for upload.
    ApproveCode {
        #[arg(long)]
        code_hash: shutong_types::Hash,
    },
    /// Suspend an organisation.
    SuspendOrg {
        /// The organisation (or the purpose code, for `define-purpose`).
        #[arg(long)]
        id: String,
    },
    /// Reinstate a suspended organisation.
    ReinstateOrg {
        /// The organisation (or the purpose code, for `define-purpose`).
        #[arg(long)]
        id: String,
    },
    /// Add an organisation (when the committee's `registration` parameter is `governance`,
    /// the only way one is added).
    AddOrg {
        /// The organisation (or the purpose code, for `define-purpose`).
        #[arg(long)]
        id: String,
        #[arg(long)]
        name: String,
        /// department, enterprise, auditor or operator.
        #[arg(long, value_parser = org_kind)]
        kind: OrgKind,
        /// The account that administers it.
        #[arg(long)]
        admin: AccountId,
    },
    /// Define a purpose in the purpose hierarchy (its parent first), with its legal bases.
    DefinePurpose {
        /// The organisation (or the purpose code, for `define-purpose`).
        #[arg(long)]
        id: String,
        /// Comma-separated: statute, duty_mandate, consent, contract.
        #[arg(long, value_parser = bases)]
        bases: u8,
        #[arg(long, default_value = "")]
        description: String,
    },
    /// Set a parameter: `upload_policy` (governance or open), `registration` (open, approved
    /// or governance), `lifecycle_delay_blocks` (1 to 1000000), `anchor_lag_ms_max` (the
    /// longest a gateway may wait to anchor a period: 60000 to 2592000000 ms) or
    /// `validators_min` (the fewest validators a new set may have: 1 to 100).
    SetParam {
        #[arg(long)]
        name: String,
        #[arg(long)]
        value: String,
    },
    /// Replace the committee: its seats and the threshold of organisations.
    SetCommittee {
        /// A seat, ACCOUNT=ORG (the account's hex and the organisation it votes for); repeat.
        #[arg(long = "seat", required = true, value_parser = seat)]
        seats: Vec<Seat>,
        #[arg(long)]
        threshold: u32,
    },
    /// Approve a pending registration (a department, auditor or operator, or an enterprise
    /// under the `approved` policy).
    ApproveOrg {
        #[arg(long)]
        id: String,
    },
    /// Make a department the authoritative source of a data element, or move it there.
    AssignSource {
        #[arg(long)]
        element: String,
        /// The department.
        #[arg(long)]
        org: String,
    },
    /// Freeze a contract (a system contract, or a rogue enterprise contract), a governed
    /// number of blocks after the proposal is carried.
    Freeze {
        /// An address, or a system contract's name (registry, catalog, authz, audit, governance).
        #[arg(long, value_parser = crate::context::parse_contract)]
        contract: shutong_types::Address,
    },
    /// Unfreeze a contract the committee froze (or a system contract).
    Unfreeze {
        #[arg(long, value_parser = crate::context::parse_contract)]
        contract: shutong_types::Address,
    },
    /// Migrate a contract the committee administers (a system contract) to uploaded code.
    Migrate {
        #[arg(long, value_parser = crate::context::parse_contract)]
        contract: shutong_types::Address,
        #[arg(long)]
        code_hash: shutong_types::Hash,
        /// Hex arguments for the new code's `migrate` method.
        #[arg(long, default_value = "", value_parser = crate::context::args_hex)]
        args: Vec<u8>,
    },
    /// Hand a contract the committee administers to another admin account.
    SetAdmin {
        #[arg(long, value_parser = crate::context::parse_contract)]
        contract: shutong_types::Address,
        #[arg(long)]
        admin: AccountId,
    },
}

/// KEY:SIGNATURE or KEY:SIGNATURE:TRANSPORT:BINDING, in hex, as `gov possession` prints it.
pub(crate) fn key_proof(text: &str) -> Result<KeyProof, String> {
    let parts: Vec<&str> = text.split(':').collect();
    let (key, signature, transport) = match parts[..] {
        [key, signature] => (key, signature, None),
        [key, signature, transport, binding] => (key, signature, Some((transport, binding))),
        _ => return Err(format!("{text:?} is not KEY:SIGNATURE or KEY:SIGNATURE:TRANSPORT:BINDING")),
    };
    let key: shutong_types::PublicKey = key.parse().map_err(|e| format!("{key:?} is not a public key: {e}"))?;
    let signature_of = |text: &str| -> Result<[u8; 64], String> {
        hex::decode(text)
            .ok()
            .and_then(|bytes| bytes.try_into().ok())
            .ok_or_else(|| format!("{text:?} is not a 64-byte signature in hex"))
    };
    let transport = match transport {
        None => None,
        Some((transport, binding)) => {
            let key: [u8; 32] = hex::decode(transport)
                .ok()
                .and_then(|bytes| bytes.try_into().ok())
                .ok_or_else(|| format!("{transport:?} is not an ed25519 transport key (32 bytes in hex)"))?;
            Some(shutong_sdk::system_api::governance::TransportKey { key, binding: signature_of(binding)? })
        }
    };
    Ok(KeyProof { key: key.to_key_bytes(), signature: signature_of(signature)?, transport })
}

/// A key as operators write it: its bytes in hex, the length telling the suite.
fn key_hex(key: &shutong_sdk::system_api::KeyBytes) -> String {
    shutong_types::PublicKey::from_key(key).to_hex()
}

fn vote_json(v: &SignedVote) -> serde_json::Value {
    let kind = ["notarize", "nullify", "finalize"].get(v.kind as usize).copied().unwrap_or("unknown");
    serde_json::json!({"kind": kind, "epoch": v.epoch, "view": v.view, "digest": hex::encode(v.digest),
        "signer": v.signer, "signature": hex::encode(v.signature)})
}

pub(crate) fn seat(text: &str) -> Result<Seat, String> {
    let (account, org) = text.split_once('=').ok_or_else(|| format!("{text:?} is not ACCOUNT=ORG"))?;
    let account: AccountId = account.parse().map_err(|e| format!("{account:?} is not an account: {e}"))?;
    Ok(Seat { account: account.0, org: org.to_string() })
}

/// A proposal's action as an operator reads it: accounts, keys and hashes in hex.
pub(crate) fn describe(action: &Action) -> String {
    let hexes = |keys: &[shutong_sdk::system_api::KeyBytes]| keys.iter().map(key_hex).collect::<Vec<_>>().join(", ");
    match action {
        Action::SetValidators { keys, proofs } => {
            format!("set the validators to [{}] ({} proofs of possession)", hexes(keys), proofs.len())
        }
        Action::ApproveCode { code_hash } => format!("approve code {}", hex::encode(code_hash)),
        Action::Lifecycle { contract, op } => {
            let what = match op {
                LifecycleOp::Migrate { code_hash, args } => {
                    format!(" to code {} ({} bytes of arguments)", hex::encode(code_hash), args.len())
                }
                LifecycleOp::SetAdmin { admin } => format!(" to {}", hex::encode(admin)),
                LifecycleOp::Freeze | LifecycleOp::Unfreeze => String::new(),
            };
            format!("{} contract {}{what}", op.name(), hex::encode(contract))
        }
        Action::AddOrg { id, name, kind, admin } => {
            format!("add organisation {id} ({name:?}, {kind:?}) administered by {}", hex::encode(admin))
        }
        other => format!("{other:?}"),
    }
}

pub(crate) fn basis_names(bits: u8) -> Vec<&'static str> {
    LegalBasis::ALL.iter().filter(|b| bits & (1 << **b as u8) != 0).map(|b| b.name()).collect()
}

pub async fn run(command: GovCommand, ctx: &Ctx) -> Shown {
    Ok(Outcome::Send(match command {
        GovCommand::Vote { id } => builder::vote(id),
        GovCommand::SetValidators { validators, proofs } => builder::set_validators(&validators, &proofs),
        GovCommand::Possession { validators, transport } => {
            let key = ctx.signer()?;
            let status = ctx.status(&ctx.client()?).await?;
            if !validators.contains(&key.public()) {
                anyhow::bail!("the key in --key ({}) is not in the proposed set", key.public());
            }
            match (status.suite, &transport) {
                (shutong_types::Suite::Sm2Sm3, None) => anyhow::bail!(
                    "this chain runs sm2-sm3: --transport names the public key of this validator's transport key \
                     (its node's p2p.transport_key_file)"
                ),
                (_, Some(t)) if t.suite() != shutong_types::Suite::Ed25519Blake3 || !t.is_point() => {
                    anyhow::bail!("--transport {t} is not an ed25519 public key")
                }
                _ => {}
            }
            let proof = builder::possession(&status.chain_id, &validators, &*key, transport.as_ref())?;
            let mut text = format!("{}:{}", key_hex(&proof.key), hex::encode(proof.signature));
            if let Some(t) = &proof.transport {
                text = format!("{text}:{}:{}", hex::encode(t.key), hex::encode(t.binding));
            }
            let json = serde_json::json!({"key": key_hex(&proof.key), "signature": hex::encode(proof.signature),
                "transport": proof.transport.as_ref().map(|t| hex::encode(t.key)),
                "chain_id": status.chain_id, "proof": text});
            return shown(json, text);
        }
        GovCommand::Evidence => return evidence(ctx).await,
        GovCommand::Propose(proposal) => builder::propose(match proposal {
            Proposal::SetValidators { validators, proofs } => {
                Action::SetValidators { keys: validators.iter().map(|k| k.to_key_bytes()).collect(), proofs }
            }
            Proposal::ApproveCode { code_hash } => Action::ApproveCode { code_hash: code_hash.0 },
            Proposal::SuspendOrg { id } => Action::SuspendOrg { id },
            Proposal::ReinstateOrg { id } => Action::ReinstateOrg { id },
            Proposal::SetParam { name, value } => Action::SetParam { name, value },
            Proposal::AddOrg { id, name, kind, admin } => Action::AddOrg { id, name, kind, admin: admin.0 },
            Proposal::DefinePurpose { id, bases, description } => {
                Action::DefinePurpose { code: id, legal_bases: bases, description }
            }
            Proposal::SetCommittee { seats, threshold } => {
                Action::SetCommittee { committee: Committee { seats, threshold } }
            }
            Proposal::ApproveOrg { id } => Action::ApproveOrg { id },
            Proposal::AssignSource { element, org } => Action::AssignSource { element, org },
            Proposal::Freeze { contract } => Action::Lifecycle { contract: contract.0, op: LifecycleOp::Freeze },
            Proposal::Unfreeze { contract } => Action::Lifecycle { contract: contract.0, op: LifecycleOp::Unfreeze },
            Proposal::Migrate { contract, code_hash, args } => {
                Action::Lifecycle { contract: contract.0, op: LifecycleOp::Migrate { code_hash: code_hash.0, args } }
            }
            Proposal::SetAdmin { contract, admin } => {
                Action::Lifecycle { contract: contract.0, op: LifecycleOp::SetAdmin { admin: admin.0 } }
            }
        }),
        GovCommand::Show { id } => {
            let client = ctx.client()?;
            let p = client.read(reads::proposal(id)).await?;
            let committee = client.read(reads::committee()).await?;
            let outcome = match p.action {
                Action::Lifecycle { .. } if p.executed => Some(client.read(reads::lifecycle_outcome(id)).await?),
                _ => None,
            };
            let orgs: Vec<&str> = p.votes.iter().filter_map(|v| committee.org_of(v)).collect();
            let json = serde_json::json!({
                "id": p.id, "action": describe(&p.action), "proposer": hex::encode(p.proposer),
                "votes": p.votes.iter().map(hex::encode).collect::<Vec<_>>(), "voting_orgs": orgs,
                "threshold": committee.threshold,
                "created_height": p.created_height, "executed": p.executed,
                "lifecycle": outcome.as_ref().map(|o| serde_json::json!({
                    "height": o.height, "done": o.done, "refused": o.refused,
                })),
            });
            let mut text = format!(
                "proposal {}  {}\nvotes of {} of {} organisations needed ({})  {}",
                p.id,
                describe(&p.action),
                committee.voting_orgs(&p.votes),
                committee.threshold,
                orgs.join(", "),
                if p.executed { "carried out" } else { "open" }
            );
            if let Some(o) = outcome {
                text.push_str(&match (o.done, &o.refused) {
                    (false, _) => format!("\ntakes effect before block {}", o.height),
                    (true, None) => format!("\ntook effect before block {}", o.height),
                    (true, Some(reason)) => format!("\nrefused before block {}: {reason}", o.height),
                });
            }
            return shown(json, text);
        }
        GovCommand::Committee => {
            let c = ctx.client()?.read(reads::committee()).await?;
            let json = serde_json::json!({
                "threshold": c.threshold,
                "seats": c.seats.iter().map(|s| serde_json::json!({"account": hex::encode(s.account), "org": s.org}))
                    .collect::<Vec<_>>(),
            });
            let mut text = format!("{} seats of {} organisations; {} must vote", c.seats.len(), c.orgs(), c.threshold);
            for s in &c.seats {
                text.push_str(&format!("\n  {}  {}", s.org, hex::encode(s.account)));
            }
            return shown(json, text);
        }
        GovCommand::Purpose { id } => {
            let p = ctx.client()?.read(reads::purpose(&id)).await?;
            let json =
                serde_json::json!({"id": p.code, "bases": basis_names(p.legal_bases), "description": p.description});
            let text =
                format!("{} falls under {}: {} ({})", id, p.code, basis_names(p.legal_bases).join(","), p.description);
            return shown(json, text);
        }
        GovCommand::Validators => {
            let got = ctx.client()?.read(reads::validators()).await?;
            let hex_keys = |keys: &[shutong_sdk::system_api::KeyBytes]| keys.iter().map(key_hex).collect::<Vec<_>>();
            let mut text = format!(
                "epoch {} since height {}: {} validators",
                got.current.epoch,
                got.current.since_height,
                got.current.keys.len()
            );
            // A validator's p2p identity, where it bound one (every validator of an SM chain).
            let transport = |transports: &[Option<shutong_sdk::system_api::governance::TransportKey>], i: usize| {
                transports.get(i).and_then(Option::as_ref).map(|t| hex::encode(t.key))
            };
            for (i, key) in got.current.keys.iter().enumerate() {
                text.push_str(&format!("\n  {}", key_hex(key)));
                if let Some(t) = transport(&got.current.transports, i) {
                    text.push_str(&format!(" transport {t}"));
                }
            }
            if let Some(p) = &got.pending {
                text.push_str(&format!("\npending from height {}: {} validators", p.activation_height, p.keys.len()));
                for (i, key) in p.keys.iter().enumerate() {
                    text.push_str(&format!("\n  {}", key_hex(key)));
                    if let Some(t) = transport(&p.transports, i) {
                        text.push_str(&format!(" transport {t}"));
                    }
                }
            }
            let json = serde_json::json!({
                "epoch": got.current.epoch,
                "since_height": got.current.since_height,
                "validators": hex_keys(&got.current.keys),
                "transports": (0..got.current.keys.len()).map(|i| transport(&got.current.transports, i)).collect::<Vec<_>>(),
                "pending": got.pending.as_ref().map(|p| serde_json::json!({
                    "activation_height": p.activation_height,
                    "validators": hex_keys(&p.keys),
                })),
            });
            return shown(json, text);
        }
    }))
}

/// Equivocation evidence recorded on chain, every page of it (`gov evidence`, `audit evidence`).
pub(crate) async fn evidence(ctx: &Ctx) -> Shown {
    let client = ctx.client()?;
    let mut records = Vec::new();
    let mut after = None;
    loop {
        let page = client.read(reads::evidence(after.clone(), EVIDENCE_PAGE_MAX)).await?;
        let full = page.records.len() as u32 == EVIDENCE_PAGE_MAX;
        after = page.records.last().map(|r| evidence_id(&r.validator, r.evidence.first.epoch, r.evidence.first.view));
        records.extend(page.records);
        if !full {
            break;
        }
    }
    let mut text = format!("{} equivocation records", records.len());
    for r in &records {
        let (a, b) = (&r.evidence.first, &r.evidence.second);
        let kinds = ["notarize", "nullify", "finalize"];
        let kind = |k: u8| kinds.get(k as usize).copied().unwrap_or("unknown");
        text.push_str(&format!(
            "\n  validator {} (index {}) in epoch {} view {}: {} {} and {} {}; reported by {} at height {}",
            key_hex(&r.validator),
            a.signer,
            a.epoch,
            a.view,
            kind(a.kind),
            hex::encode(&a.digest[..4]),
            kind(b.kind),
            hex::encode(&b.digest[..4]),
            hex::encode(r.reporter),
            r.height
        ));
    }
    let json = serde_json::json!({"evidence": records.iter().map(|r| serde_json::json!({
        "validator": key_hex(&r.validator), "epoch": r.evidence.first.epoch, "view": r.evidence.first.view,
        "first": vote_json(&r.evidence.first), "second": vote_json(&r.evidence.second),
        "reporter": hex::encode(r.reporter), "height": r.height,
    })).collect::<Vec<_>>()});
    shown(json, text)
}
