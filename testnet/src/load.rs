//! The authz workload of `performance.md` and an open-loop load generator.
//!
//! [`World::build`] sets up what the workload acts on, through ordinary signed
//! transactions:
//! - provider departments, each with an approving admin, gateway keys and a published resource;
//! - consumer enterprises with analysts;
//! - an active grant per (provider, consumer) pair;
//! - spare grants for the lifecycle steps, and pending requests to approve.
//!
//! [`World::sign`] then signs the mix, ahead of time:
//!
//! | share | kind | signer |
//! |---|---|---|
//! | 70 % | `audit.record` against an active grant (scope, purpose and use count checked, the count incremented, an audit-log leaf) | a gateway |
//! | 10 % | `audit.anchor` of a 1,000-event batch | a gateway |
//! | 10 % | lifecycle: request, approve, suspend, resume, revoke | analysts and providers |
//! | 10 % | catalog and membership: a new resource version, a principal update | providers and consumers |
//!
//! [`run`] submits the signed transactions open-loop at a fixed rate over persistent HTTP
//! connections spread across the nodes. It watches one node's committed blocks over
//! WebSocket and measures:
//! - committed transactions per second;
//! - submit-to-finality latency, p50 and p99;
//! - refusals by reason, and failed executions;
//! - CPU seconds per transaction over the node processes it is given.

use anyhow::Context;
use shutong_sdk::builder::{self, access, audit_trail};
use shutong_sdk::system_api::audit::{AccessEvent, AnchorBatch, BatchGroup};
use shutong_sdk::system_api::authz::{LegalBasis, RequestAccess, Terms, duty};
use shutong_sdk::system_api::catalog::{Classification, Field, Publish, ShareType, method};
use shutong_sdk::system_api::governance::Action;
use shutong_sdk::system_api::registry::{OrgKind, PrincipalKind, PrincipalStatus, role};
use shutong_sdk::{Client, RpcCode};
use shutong_types::{AccountId, Call, Decode, Hash, Keypair, Receipt, SignedTransaction, Transaction};
use std::collections::{BTreeMap, HashMap, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

const DAY_MS: u64 = 86_400_000;
const PURPOSE: &str = "licensing";
/// How far ahead pre-signed transactions expire (the mempool allows 100,000 blocks).
pub const EXPIRY_BLOCKS: u64 = 50_000;

/// How big a world to build.
#[derive(Debug, Clone, Copy)]
pub struct Shape {
    pub providers: usize,
    pub gateways_per_provider: usize,
    pub consumers: usize,
    pub analysts_per_consumer: usize,
    /// Grants kept for suspend, resume and revoke.
    pub spare_grants: usize,
    /// Requests left under review, for approve.
    pub pending_requests: usize,
}

impl Default for Shape {
    fn default() -> Shape {
        Shape {
            providers: 4,
            gateways_per_provider: 16,
            consumers: 4,
            analysts_per_consumer: 8,
            spare_grants: 400,
            pending_requests: 400,
        }
    }
}

/// The kinds of transaction in the mix.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Kind {
    Record,
    Anchor,
    Request,
    Approve,
    Suspend,
    Resume,
    Revoke,
    Publish,
    Member,
}

impl Kind {
    pub fn name(self) -> &'static str {
        match self {
            Kind::Record => "record",
            Kind::Anchor => "anchor",
            Kind::Request => "request",
            Kind::Approve => "approve",
            Kind::Suspend => "suspend",
            Kind::Resume => "resume",
            Kind::Revoke => "revoke",
            Kind::Publish => "publish",
            Kind::Member => "member",
        }
    }
}

#[derive(Debug)]
struct Provider {
    org: String,
    admin: Keypair,
    gateways: Vec<Keypair>,
    resource: String,
}

#[derive(Debug)]
struct Consumer {
    org: String,
    admin: Keypair,
    analysts: Vec<Keypair>,
}

#[derive(Debug, Clone, Copy)]
struct ActiveGrant {
    id: u64,
    consumer: AccountId,
}

/// The organisations, keys and grants the workload acts on, and the nonces it has used.
#[derive(Debug)]
pub struct World {
    pub chain_id: String,
    providers: Vec<Provider>,
    consumers: Vec<Consumer>,
    /// Per provider, its active grants.
    active: Vec<Vec<ActiveGrant>>,
    spare: VecDeque<(u64, usize)>,
    suspended: VecDeque<(u64, usize)>,
    pending: VecDeque<(u64, usize, RequestAccess)>,
    nonces: HashMap<AccountId, u64>,
    gas: BTreeMap<Kind, u64>,
    now_ms: u64,
    next: u64,
    /// The batches each gateway has anchored of each grant: (gateway, grant) → last number.
    anchored: HashMap<(AccountId, u64), u64>,
}

/// Signs `call` by `key` with the next nonce in `nonces`.
fn sign(
    nonces: &mut HashMap<AccountId, u64>,
    chain_id: &str,
    key: &Keypair,
    call: Call,
    gas_limit: u64,
    expiry: u64,
) -> SignedTransaction {
    let nonce = nonces.entry(key.account()).or_insert(0);
    let tx = Transaction {
        chain_id: chain_id.to_string(),
        sender: key.account(),
        nonce: *nonce,
        gas_limit,
        expiry_height: expiry,
        call,
    };
    *nonce += 1;
    tx.sign(key)
}

/// Submits every transaction (up to 256 at once, round-robin over `clients`) and waits
/// for all their receipts; fails on any refusal or failed execution.
pub async fn submit_all(clients: &[Client], txs: Vec<SignedTransaction>) -> anyhow::Result<Vec<Receipt>> {
    let gate = Arc::new(tokio::sync::Semaphore::new(256));
    let mut tasks = Vec::new();
    for (i, tx) in txs.into_iter().enumerate() {
        let client = clients[i % clients.len()].clone();
        let permit = gate.clone().acquire_owned().await?;
        tasks.push(tokio::spawn(async move {
            let receipt = client.submit_and_wait(&tx, Duration::from_secs(120)).await;
            drop(permit);
            (tx.tx.call.method.clone(), receipt)
        }));
    }
    let mut receipts = Vec::new();
    for task in tasks {
        let (method, receipt) = task.await?;
        let receipt = receipt.with_context(|| format!("setup: {method}"))?;
        anyhow::ensure!(receipt.status.is_success(), "setup: {method} failed: {:?}", receipt.status);
        receipts.push(receipt);
    }
    Ok(receipts)
}

fn field(name: &str) -> Field {
    Field {
        name: name.into(),
        data_type: "string".into(),
        classification: Classification::General,
        masking: String::new(),
        element: None,
    }
}

/// A (new version of the) provider's resource; `n` varies its metadata.
fn publish(provider: &Provider, n: u64) -> Call {
    builder::publish_resource(&Publish {
        code: provider.resource.clone(),
        provider_org: provider.org.clone(),
        source_system: format!("v{n}"),
        classification: Classification::General,
        personal_data: false,
        share_type: ShareType::Conditional,
        conditions: "load".into(),
        methods: method::QUERY,
        fields: vec![field("uscc"), field("name"), field("address")],
        metadata_hash: *blake3::hash(&n.to_le_bytes()).as_bytes(),
    })
}

impl World {
    /// Builds the world on the chain `clients` reach; the governance `committee` defines the
    /// purpose and adds the provider departments.
    pub async fn build(clients: &[Client], committee: &crate::Committee, shape: Shape) -> anyhow::Result<World> {
        let status = clients[0].status().await?;
        let mut world = World {
            chain_id: status.chain_id.clone(),
            providers: Vec::new(),
            consumers: Vec::new(),
            active: Vec::new(),
            spare: VecDeque::new(),
            suspended: VecDeque::new(),
            pending: VecDeque::new(),
            nonces: HashMap::new(),
            gas: BTreeMap::new(),
            now_ms: status.timestamp_ms,
            next: 0,
            anchored: HashMap::new(),
        };
        let expiry = status.height + EXPIRY_BLOCKS;
        let gas = builder::GAS_LIMIT_DEFAULT;
        let tag: u32 = rand_tag();

        // Governance: the purpose and the provider departments; then every organisation's
        // principals.
        let providers: Vec<Provider> = (0..shape.providers)
            .map(|p| Provider {
                org: format!("prov{tag}-{p}"),
                admin: Keypair::generate(status.suite),
                gateways: (0..shape.gateways_per_provider).map(|_| Keypair::generate(status.suite)).collect(),
                resource: format!("prov{tag}-{p}/records"),
            })
            .collect();
        let mut decisions = vec![Action::DefinePurpose {
            code: PURPOSE.into(),
            legal_bases: 1 << LegalBasis::DutyMandate as u8,
            description: "load".into(),
        }];
        decisions.extend(providers.iter().map(|provider| Action::AddOrg {
            id: provider.org.clone(),
            name: "Load Provider".into(),
            kind: OrgKind::Department,
            admin: provider.admin.account().0,
        }));
        committee.decide(clients, decisions).await?;
        let mut txs = Vec::new();
        for provider in providers {
            let a = &provider.admin;
            let mut push = |call| txs.push(sign(&mut world.nonces, &world.chain_id, a, call, gas, expiry));
            let roles = role::ADMIN | role::DATA_PROVIDER | role::CDO;
            let active = PrincipalStatus::Active;
            push(builder::set_principal(&provider.org, &a.account(), PrincipalKind::Person, roles, active));
            for g in &provider.gateways {
                push(builder::set_principal(
                    &provider.org,
                    &g.account(),
                    PrincipalKind::Gateway,
                    role::DATA_PROVIDER,
                    active,
                ));
            }
            push(publish(&provider, 0));
            world.providers.push(provider);
        }
        for c in 0..shape.consumers {
            let consumer = Consumer {
                org: format!("cons{tag}-{c}"),
                admin: Keypair::generate(status.suite),
                analysts: (0..shape.analysts_per_consumer).map(|_| Keypair::generate(status.suite)).collect(),
            };
            let a = &consumer.admin;
            let mut push = |call| txs.push(sign(&mut world.nonces, &world.chain_id, a, call, gas, expiry));
            push(builder::register_org(&consumer.org, "Load Consumer", OrgKind::Enterprise));
            for analyst in &consumer.analysts {
                let account = analyst.account();
                push(builder::set_principal(
                    &consumer.org,
                    &account,
                    PrincipalKind::Person,
                    role::DATA_CONSUMER,
                    PrincipalStatus::Active,
                ));
            }
            world.consumers.push(consumer);
        }
        submit_all(clients, txs).await?;

        // Requests: one active grant per (provider, consumer), spares, and pending ones.
        let pairs = shape.providers * shape.consumers;
        let wanted = pairs + shape.spare_grants + shape.pending_requests;
        let mut asked = Vec::new();
        let mut txs = Vec::new();
        for i in 0..wanted {
            let (p, c) = (i % shape.providers, (i / shape.providers) % shape.consumers);
            let analyst_index = (i / pairs) % shape.analysts_per_consumer;
            let request = world.request_for(p);
            let analyst = &world.consumers[c].analysts[analyst_index];
            txs.push(sign(&mut world.nonces, &world.chain_id, analyst, access::request(&request), gas, expiry));
            asked.push((p, analyst.account(), request));
        }
        let receipts = submit_all(clients, txs).await?;
        let mut txs = Vec::new();
        let mut granted = Vec::new();
        for (i, (receipt, (p, analyst, request))) in receipts.iter().zip(asked).enumerate() {
            let id = u64::decode(&receipt.output).context("a request's output is its id")?;
            if i >= pairs + shape.spare_grants {
                world.pending.push_back((id, p, request));
                continue;
            }
            let approver = &world.providers[p].admin;
            let call = access::approve(id, &world.terms_for(&request));
            txs.push(sign(&mut world.nonces, &world.chain_id, approver, call, gas, expiry));
            granted.push((i, p, analyst));
        }
        let receipts = submit_all(clients, txs).await?;
        world.active = (0..shape.providers).map(|_| Vec::new()).collect();
        for (receipt, (i, p, analyst)) in receipts.iter().zip(granted) {
            let grant = Option::<u64>::decode(&receipt.output)?.context("one approver issues the grant")?;
            if i < pairs {
                world.active[p].push(ActiveGrant { id: grant, consumer: analyst });
            } else {
                world.spare.push_back((grant, p));
            }
        }
        world.calibrate(clients).await?;
        Ok(world)
    }

    fn request_for(&self, _provider: usize) -> RequestAccess {
        RequestAccess {
            resource: self.providers[_provider].resource.clone(),
            fields: vec!["uscc".into(), "name".into()],
            methods: method::QUERY,
            purpose: PURPOSE.into(),
            legal_basis: LegalBasis::DutyMandate,
            legal_doc_hash: [7; 32],
            matter_code: "load".into(),
            valid_until_ms: self.now_ms + 365 * DAY_MS,
            max_uses: 1 << 40,
            justification_hash: [8; 32],
            consent: None,
        }
    }

    fn terms_for(&self, request: &RequestAccess) -> Terms {
        Terms {
            fields: request.fields.clone(),
            methods: request.methods,
            purposes: vec![request.purpose.clone()],
            not_before_ms: self.now_ms.saturating_sub(DAY_MS),
            not_after_ms: request.valid_until_ms,
            max_uses: request.max_uses,
            rate_per_day: 0,
            case_ref: None,
            duties: duty::LOG_USAGE,
            delegable: false,
            policy_hash: [0; 32],
        }
    }

    /// Runs one transaction of each kind with a generous limit and keeps twice the gas it
    /// used as that kind's limit (a block's gas budget counts limits, not use).
    async fn calibrate(&mut self, clients: &[Client]) -> anyhow::Result<()> {
        let height = clients[0].status().await?.height;
        let expiry = height + EXPIRY_BLOCKS;
        let kinds = [
            Kind::Record,
            Kind::Anchor,
            Kind::Request,
            Kind::Approve,
            Kind::Suspend,
            Kind::Resume,
            Kind::Revoke,
            Kind::Publish,
            Kind::Member,
        ];
        for kind in kinds {
            self.gas.insert(kind, builder::GAS_LIMIT_DEFAULT);
        }
        for kind in kinds {
            let tx = self.make(kind, expiry);
            let receipt = submit_all(clients, vec![tx]).await?.remove(0);
            self.gas.insert(kind, (receipt.gas_used * 2).max(10_000));
        }
        Ok(())
    }

    /// The gas limit each kind is signed with.
    pub fn gas_limits(&self) -> &BTreeMap<Kind, u64> {
        &self.gas
    }

    /// The kind of the `i`-th transaction of the mix (a cycle of 20).
    fn kind_at(&self, i: u64) -> Kind {
        match i % 20 {
            0..=13 => Kind::Record,
            14 | 15 => Kind::Anchor,
            16 | 17 => match (i / 20) % 5 {
                0 => Kind::Request,
                1 if !self.pending.is_empty() => Kind::Approve,
                2 if self.spare.len() > 1 => Kind::Suspend,
                3 if !self.suspended.is_empty() => Kind::Resume,
                4 if self.spare.len() > 1 => Kind::Revoke,
                _ => Kind::Request,
            },
            18 => Kind::Publish,
            _ => Kind::Member,
        }
    }

    /// One signed transaction of `kind`.
    fn make(&mut self, kind: Kind, expiry: u64) -> SignedTransaction {
        let n = self.next;
        self.next += 1;
        let gas = self.gas[&kind];
        let p = (n as usize) % self.providers.len();
        let (call, key) = match kind {
            Kind::Record | Kind::Anchor => {
                let provider = &self.providers[p];
                let gateway = &provider.gateways[(n as usize / self.providers.len()) % provider.gateways.len()];
                let grants = &self.active[p];
                let grant = grants[(n as usize) % grants.len()];
                let call = if kind == Kind::Record {
                    audit_trail::record(&AccessEvent {
                        grant: grant.id,
                        consumer: grant.consumer.0,
                        fields: vec!["uscc".into()],
                        method: method::QUERY,
                        purpose: PURPOSE.into(),
                        business_ref_hash: *blake3::hash(&n.to_le_bytes()).as_bytes(),
                        subject_ref_hmac: [1; 32],
                        query_hash: [2; 32],
                        result_hash: [3; 32],
                        record_count: 1,
                        consumer_signature: None,
                    })
                } else {
                    // Each gateway numbers its batches of a grant; batch k covers the
                    // millisecond k after the start, so any order of arrival is contiguous.
                    let seq = self.anchored.entry((gateway.account(), grant.id)).or_insert(0);
                    *seq += 1;
                    audit_trail::anchor(&AnchorBatch {
                        grant: grant.id,
                        seq: *seq,
                        period_start_ms: self.now_ms + *seq - 1,
                        period_end_ms: self.now_ms + *seq,
                        groups: vec![BatchGroup {
                            consumer: grant.consumer.0,
                            fields: vec!["uscc".into()],
                            method: method::QUERY,
                            purpose: PURPOSE.into(),
                            count: 1_000,
                        }],
                        merkle_root: *blake3::hash(&n.to_be_bytes()).as_bytes(),
                    })
                };
                (call, gateway.clone())
            }
            Kind::Request => {
                let consumer = &self.consumers[(n as usize / 7) % self.consumers.len()];
                let analyst = consumer.analysts[(n as usize) % consumer.analysts.len()].clone();
                (access::request(&self.request_for(p)), analyst)
            }
            Kind::Approve => {
                let (id, provider, request) = self.pending.pop_front().expect("kind_at checked");
                (access::approve(id, &self.terms_for(&request)), self.providers[provider].admin.clone())
            }
            Kind::Suspend => {
                let (id, provider) = self.spare.pop_front().expect("kind_at checked");
                self.suspended.push_back((id, provider));
                (access::suspend(id, "load: review"), self.providers[provider].admin.clone())
            }
            Kind::Resume => {
                let (id, provider) = self.suspended.pop_front().expect("kind_at checked");
                self.spare.push_back((id, provider));
                (access::resume(id), self.providers[provider].admin.clone())
            }
            Kind::Revoke => {
                let (id, provider) = self.spare.pop_front().expect("kind_at checked");
                (access::revoke(id, "load: closed"), self.providers[provider].admin.clone())
            }
            Kind::Publish => {
                let provider = &self.providers[p];
                (publish(provider, n), provider.admin.clone())
            }
            Kind::Member => {
                let consumer = &self.consumers[(n as usize) % self.consumers.len()];
                let analyst = &consumer.analysts[(n as usize / 3) % consumer.analysts.len()];
                let call = builder::set_principal(
                    &consumer.org,
                    &analyst.account(),
                    PrincipalKind::Person,
                    role::DATA_CONSUMER,
                    PrincipalStatus::Active,
                );
                (call, consumer.admin.clone())
            }
        };
        sign(&mut self.nonces, &self.chain_id, &key, call, gas, expiry)
    }

    /// Signs the next `count` transactions of the mix, valid until `height + 50,000`.
    pub fn sign(&mut self, count: u64, height: u64) -> Vec<(Kind, SignedTransaction)> {
        let expiry = height + EXPIRY_BLOCKS;
        (0..count)
            .map(|_| {
                let kind = self.kind_at(self.next);
                (kind, self.make(kind, expiry))
            })
            .collect()
    }

    /// How many transactions each account has signed: with their nonces starting at the
    /// chain's, what a fault-injection check compares against the chain's nonces.
    pub fn nonces(&self) -> &HashMap<AccountId, u64> {
        &self.nonces
    }
}

fn rand_tag() -> u32 {
    let nanos = SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.subsec_nanos());
    nanos % 1_000_000
}

fn now_ms() -> f64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map_or(0.0, |d| d.as_secs_f64() * 1000.0)
}

/// CPU seconds (user + system) process `pid` has used, from /proc; 0 if it is gone.
pub fn cpu_seconds(pid: u32) -> f64 {
    let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else { return 0.0 };
    let Some(rest) = stat.rsplit(')').next() else { return 0.0 };
    let fields: Vec<&str> = rest.split_whitespace().collect();
    // After the command: state is field 3, utime 14 and stime 15 (1-based, whole line).
    let ticks = |i: usize| fields.get(i - 3).and_then(|f| f.parse::<f64>().ok()).unwrap_or(0.0);
    (ticks(14) + ticks(15)) / clock_ticks()
}

fn clock_ticks() -> f64 {
    // SAFETY: sysconf has no preconditions.
    #[allow(unsafe_code)]
    let hz = unsafe { libc::sysconf(libc::_SC_CLK_TCK) };
    if hz > 0 { hz as f64 } else { 100.0 }
}

/// The `p`-th percentile of sorted values (nearest rank); NaN if empty.
pub fn percentile(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let rank = ((p / 100.0) * (sorted.len() - 1) as f64).round() as usize;
    sorted[rank.min(sorted.len() - 1)]
}

/// What one open-loop run measured.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Report {
    pub offered_tps: f64,
    pub seconds: f64,
    pub sent: u64,
    pub accepted: u64,
    /// Refusals by the node, by reason; `… (retried)` counts transactions refused at first
    /// for a transient reason and offered again (most then accepted).
    pub refused: BTreeMap<String, u64>,
    /// Accepted but not seen committed when the run ended: 0 unless the drain timed out.
    pub outstanding: u64,
    pub committed: u64,
    /// Committed but failed in execution (the call aborted: for example a lifecycle step on
    /// a grant whose state another step changed first).
    pub failed: u64,
    pub committed_tps: f64,
    pub p50_ms: f64,
    pub p99_ms: f64,
    pub blocks: u64,
    /// CPU seconds of the node processes per committed transaction, in ms.
    pub node_cpu_ms_per_tx: f64,
    /// The load generator's own CPU, as a share of one core.
    pub generator_cpu_share: f64,
    /// Committed transactions of each kind.
    pub by_kind: BTreeMap<String, u64>,
    /// The ids of the transactions a node accepted, for an exactly-once check.
    #[serde(skip)]
    pub accepted_ids: Vec<Hash>,
}

/// Submits `txs` open-loop at `rate` per second, round-robin over `clients`, and measures
/// until every accepted transaction is committed or `drain` passes after the last one.
/// `observer` is watched over WebSocket for committed blocks; `pids` are the node processes
/// whose CPU is counted.
pub async fn run(
    clients: &[Client],
    observer: &Client,
    pids: &[u32],
    txs: Vec<(Kind, SignedTransaction)>,
    rate: f64,
    drain: Duration,
) -> anyhow::Result<Report> {
    let sent = txs.len() as u64;
    let kinds: HashMap<Hash, Kind> = txs.iter().map(|(k, tx)| (tx.id(), *k)).collect();
    let submitted: Arc<Mutex<HashMap<Hash, f64>>> = Arc::new(Mutex::new(HashMap::new()));
    let refused: Arc<Mutex<BTreeMap<String, u64>>> = Arc::new(Mutex::new(BTreeMap::new()));
    let mut blocks = observer.subscribe_blocks().await?;
    let node_cpu = || pids.iter().map(|p| cpu_seconds(*p)).sum::<f64>();
    let cpu_before = node_cpu();
    let own_before = cpu_seconds(std::process::id());
    let started = Instant::now();

    let sender = {
        let (clients, submitted, refused) = (Arc::new(clients.to_vec()), submitted.clone(), refused.clone());
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(Duration::from_secs_f64(1.0 / rate));
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Burst);
            let in_flight = Arc::new(tokio::sync::Semaphore::new(1_024));
            for (i, (_, tx)) in txs.into_iter().enumerate() {
                tick.tick().await;
                let Ok(permit) = in_flight.clone().acquire_owned().await else { break };
                let (clients, submitted, refused) = (clients.clone(), submitted.clone(), refused.clone());
                tokio::spawn(async move {
                    let at = now_ms();
                    // Recorded before the answer: the block may be seen first.
                    let id = tx.id();
                    submitted.lock().map(|mut s| s.insert(id, at)).ok();
                    // A full mempool, a full account queue or an unreachable node passes: the
                    // transaction is offered again, to the next node, for up to 10 s, so that
                    // its account's later nonces are not left behind a gap.
                    let mut tries = 0usize;
                    loop {
                        let client = &clients[(i + tries) % clients.len()];
                        let Err(err) = client.submit(&tx).await else { break };
                        let reason = match err.code() {
                            Some(RpcCode::Other(code)) => format!("code {code}"),
                            Some(code) => format!("{code:?}"),
                            None => "transport".to_string(),
                        };
                        // An account's queue at a node is bounded (`mempool.sender_txs_max`): past
                        // saturation a busy account's later nonces wait for room, like the rest.
                        let waiting = err.is_transient() || err.code() == Some(RpcCode::NonceTooHigh);
                        if waiting && tries < 100 {
                            tries += 1;
                            if tries == 1 {
                                refused
                                    .lock()
                                    .map(|mut r| *r.entry(format!("{reason} (retried)")).or_insert(0) += 1)
                                    .ok();
                            }
                            tokio::time::sleep(Duration::from_millis(100)).await;
                            continue;
                        }
                        submitted.lock().map(|mut s| s.remove(&id)).ok();
                        refused.lock().map(|mut r| *r.entry(reason).or_insert(0) += 1).ok();
                        break;
                    }
                    drop(permit);
                });
            }
        })
    };

    let mut latencies = Vec::new();
    let mut by_kind: BTreeMap<String, u64> = BTreeMap::new();
    let (mut failed, mut block_count) = (0u64, 0u64);
    let (mut first, mut last) = (f64::MAX, 0f64);
    let mut sending_done_at: Option<Instant> = None;
    loop {
        if sending_done_at.is_none() && sender.is_finished() {
            sending_done_at = Some(Instant::now());
        }
        let accepted = submitted.lock().map(|s| s.len()).unwrap_or(0);
        if let Some(done) = sending_done_at
            && (latencies.len() + failed as usize >= accepted || done.elapsed() > drain)
        {
            break;
        }
        let next = tokio::time::timeout(Duration::from_millis(200), blocks.next()).await;
        let Ok(Some(notice)) = next else { continue };
        let notice = notice?;
        let seen = now_ms();
        block_count += 1;
        let ours: Vec<(Hash, Kind)> = notice.txs.iter().filter_map(|id| kinds.get(id).map(|k| (*id, *k))).collect();
        if ours.is_empty() {
            continue;
        }
        let at: Vec<Option<f64>> = {
            let s = submitted.lock().map_err(|_| anyhow::anyhow!("lock"))?;
            ours.iter().map(|(id, _)| s.get(id).copied()).collect()
        };
        for ((id, kind), at) in ours.into_iter().zip(at) {
            let Some(at) = at else { continue };
            if notice.failed.contains(&id) {
                failed += 1;
                continue;
            }
            latencies.push(seen - at);
            *by_kind.entry(kind.name().to_string()).or_insert(0) += 1;
            first = first.min(at);
            last = last.max(seen);
        }
    }
    sender.await?;
    let elapsed = started.elapsed().as_secs_f64();
    let cpu = node_cpu() - cpu_before;
    let own = cpu_seconds(std::process::id()) - own_before;
    latencies.sort_by(f64::total_cmp);
    let committed = latencies.len() as u64;
    let window = ((last - first) / 1000.0).max(0.001);
    let refused = refused.lock().map(|r| r.clone()).unwrap_or_default();
    let final_refusals: u64 = refused.iter().filter(|(k, _)| !k.ends_with("(retried)")).map(|(_, v)| v).sum();
    let accepted = sent - final_refusals;
    Ok(Report {
        offered_tps: rate,
        seconds: elapsed,
        sent,
        accepted,
        refused,
        committed,
        failed,
        outstanding: accepted.saturating_sub(committed + failed),
        committed_tps: committed as f64 / window,
        p50_ms: percentile(&latencies, 50.0),
        p99_ms: percentile(&latencies, 99.0),
        blocks: block_count,
        node_cpu_ms_per_tx: 1000.0 * cpu / (committed + failed).max(1) as f64,
        generator_cpu_share: own / elapsed,
        by_kind,
        accepted_ids: submitted.lock().map(|s| s.keys().copied().collect()).unwrap_or_default(),
    })
}
