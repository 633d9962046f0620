//! The data gateway helper (`shutong_sdk::gateway`): local checks on verified, cached state,
//! and recording access events into anchored batches. Targets (performance.md): ≥ 20,000
//! checks and ≥ 100,000 recorded events a second per gateway.

use criterion::{BatchSize, Criterion, Throughput, criterion_group, criterion_main};
use shutong_sdk::gateway::{Gateway, JournalConfig};
use shutong_sdk::system_api::audit::AccessEvent;
use shutong_sdk::system_api::authz::{DAY_MS, Grant, GrantStatus, Terms, Use, duty};
use shutong_sdk::system_api::catalog::method;
use shutong_sdk::system_api::registry::{
    Member, Org, OrgKind, OrgStatus, Principal, PrincipalKind, PrincipalStatus, role,
};
use std::hint::black_box;
use std::sync::Mutex;
use std::time::{Duration, Instant};

const NOW: u64 = 1_795_000_000_000;
const USERS: u64 = 1_000;

fn account(i: u64) -> [u8; 32] {
    let mut a = [0u8; 32];
    a[..8].copy_from_slice(&i.to_be_bytes());
    a
}

/// A gateway with 100 grants and 1,000 users loaded, as after reading them from the chain.
fn gateway() -> Gateway {
    loaded(Gateway::new(shutong_types::Suite::Ed25519Blake3))
}

/// `g` with 100 grants and 1,000 users loaded.
fn loaded(mut g: Gateway) -> Gateway {
    for id in 1..=100 {
        g.put_grant(Grant {
            id,
            request: id,
            grantor_org: "market".into(),
            grantee_org: "acme".into(),
            resource: "market/licence".into(),
            version: 1,
            terms: Terms {
                fields: vec!["uscc".into(), "name".into(), "address".into()],
                methods: method::QUERY | method::VERIFY,
                purposes: vec!["licensing.renewal".into(), "tax.filing".into()],
                not_before_ms: NOW - DAY_MS,
                not_after_ms: NOW + 365 * DAY_MS,
                max_uses: u64::MAX / 2,
                rate_per_day: 0,
                case_ref: None,
                duties: duty::LOG_USAGE,
                delegable: false,
                policy_hash: [0; 32],
            },
            uses: 0,
            day: 0,
            day_uses: 0,
            status: GrantStatus::Active,
            reason: String::new(),
            parent: None,
            depth: 0,
            children: Vec::new(),
            approvals: Vec::new(),
            consent: None,
            superseded_by: None,
        });
    }
    let org = Org {
        id: "acme".into(),
        name: "Acme".into(),
        kind: OrgKind::Enterprise,
        status: OrgStatus::Active,
        admin: [9; 32],
        registered_height: 1,
        updated_height: 1,
    };
    for i in 0..USERS {
        let principal = Principal {
            account: account(i),
            org: "acme".into(),
            kind: PrincipalKind::Person,
            roles: role::DATA_CONSUMER,
            status: PrincipalStatus::Active,
            rotated_to: None,
            updated_height: 1,
        };
        g.put_member(account(i), Some(Member::of(principal, &org)));
    }
    g
}

fn requests() -> Vec<Use> {
    (0..4_096u64)
        .map(|i| Use {
            grant: i % 100 + 1,
            account: account(i % USERS),
            fields: vec!["uscc".into(), "name".into()],
            method: method::QUERY,
            purpose: "licensing.renewal.online".into(),
            count: 1,
        })
        .collect()
}

fn event(u: &Use) -> AccessEvent {
    AccessEvent {
        grant: u.grant,
        consumer: u.account,
        fields: u.fields.clone(),
        method: u.method,
        purpose: u.purpose.clone(),
        business_ref_hash: [5; 32],
        subject_ref_hmac: [6; 32],
        query_hash: [7; 32],
        result_hash: [8; 32],
        record_count: 1,
        consumer_signature: None,
    }
}

fn benches(c: &mut Criterion) {
    let mut group = c.benchmark_group("gateway");
    group.throughput(Throughput::Elements(1));
    let mut g = gateway();
    let reqs = requests();
    let mut i = 0;
    group.bench_function("authorize/grants=100,users=1000", |b| {
        b.iter(|| {
            let d = g.authorize(&reqs[i % reqs.len()], NOW);
            i += 1;
            black_box(d)
        })
    });
    let events: Vec<AccessEvent> = reqs.iter().map(event).collect();
    let permit = shutong_sdk::system_api::authz::Decision { permit: true, reason: String::new(), violation: false };
    // Recording, in batches of 10,000 events each sealed into its Merkle root (what the
    // gateway then anchors with one transaction).
    group.throughput(Throughput::Elements(10_000));
    group.bench_function("record_and_seal/events=10000", |b| {
        b.iter_batched(
            || (gateway(), events.iter().cycle().take(10_000).cloned().collect::<Vec<_>>()),
            |(mut g, batch)| {
                for e in batch {
                    black_box(g.record(AccessEvent { grant: 1, ..e }, &permit, NOW).expect("in memory"));
                }
                black_box(g.seal(1).expect("in memory"))
            },
            BatchSize::LargeInput,
        )
    });
    // The same with the durable journal: each event written and fsynced before `record`
    // returns (on the disk the target directory is on).
    group.throughput(Throughput::Elements(1_000));
    group.sample_size(10);
    group.bench_function("record_journaled_and_seal/events=1000", |b| {
        b.iter_batched(
            || {
                let dir = tempfile::tempdir_in(env!("CARGO_TARGET_TMPDIR")).expect("a temporary directory");
                let g = Gateway::open(
                    &dir.path().join("journal"),
                    shutong_types::Suite::Ed25519Blake3,
                    JournalConfig::default(),
                )
                .expect("journal");
                (dir, loaded(g), events.iter().cycle().take(1_000).cloned().collect::<Vec<_>>())
            },
            |(dir, mut g, batch)| {
                for e in batch {
                    black_box(g.record(AccessEvent { grant: 1, ..e }, &permit, NOW).expect("journaled"));
                }
                black_box(g.seal(1).expect("journaled"));
                dir
            },
            BatchSize::PerIteration,
        )
    });
    // The journal shared by request handlers, as a gateway serves: each handler records
    // under the gateway's lock and waits for its fsync outside it, so the events queued
    // meanwhile share one fsync (group commit).
    const HANDLERS: u64 = 64;
    const EACH: u64 = 100;
    group.throughput(Throughput::Elements(HANDLERS * EACH));
    group.bench_function("record_journaled_shared/handlers=64,events=6400", |b| {
        b.iter_custom(|iters| {
            let mut total = Duration::ZERO;
            for _ in 0..iters {
                let dir = tempfile::tempdir_in(env!("CARGO_TARGET_TMPDIR")).expect("a temporary directory");
                let g = Gateway::open(
                    &dir.path().join("journal"),
                    shutong_types::Suite::Ed25519Blake3,
                    JournalConfig::default(),
                )
                .expect("journal");
                let g = Mutex::new(loaded(g));
                let start = Instant::now();
                std::thread::scope(|s| {
                    for t in 0..HANDLERS {
                        let (g, events, permit) = (&g, &events, &permit);
                        s.spawn(move || {
                            for i in 0..EACH {
                                let e = events[((t * EACH + i) as usize) % events.len()].clone();
                                let (_, durable) = g
                                    .lock()
                                    .expect("no handler panics")
                                    .record_deferred(AccessEvent { grant: 1, ..e }, permit, NOW)
                                    .expect("journaled");
                                durable.wait().expect("durable");
                            }
                        });
                    }
                });
                total += start.elapsed();
            }
            total
        })
    });
    // The same from async handlers (tasks on a two-thread runtime, as an async server runs
    // them): a task awaiting its round holds no thread, so hundreds wait together and share
    // each fsync.
    const TASKS: u64 = 512;
    const TASK_EVENTS: u64 = 40;
    let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(2).build().expect("a tokio runtime");
    let events = std::sync::Arc::new(events);
    group.throughput(Throughput::Elements(TASKS * TASK_EVENTS));
    group.bench_function("record_journaled_async/tasks=512,events=20480", |b| {
        b.iter_custom(|iters| {
            let mut total = Duration::ZERO;
            for _ in 0..iters {
                let dir = tempfile::tempdir_in(env!("CARGO_TARGET_TMPDIR")).expect("a temporary directory");
                let g = Gateway::open(
                    &dir.path().join("journal"),
                    shutong_types::Suite::Ed25519Blake3,
                    JournalConfig::default(),
                )
                .expect("journal");
                let g = std::sync::Arc::new(Mutex::new(loaded(g)));
                let start = Instant::now();
                runtime.block_on(async {
                    let tasks: Vec<_> = (0..TASKS)
                        .map(|t| {
                            let (g, events, permit) = (g.clone(), events.clone(), permit.clone());
                            tokio::spawn(async move {
                                for i in 0..TASK_EVENTS {
                                    let e = events[((t * TASK_EVENTS + i) as usize) % events.len()].clone();
                                    let (_, durable) = g
                                        .lock()
                                        .expect("no handler panics")
                                        .record_deferred(AccessEvent { grant: 1, ..e }, &permit, NOW)
                                        .expect("journaled");
                                    durable.wait_async().await.expect("durable");
                                }
                            })
                        })
                        .collect();
                    for task in tasks {
                        task.await.expect("no handler panics");
                    }
                });
                total += start.elapsed();
            }
            total
        })
    });
    group.finish();
}

criterion_group!(gateway_benches, benches);
criterion_main!(gateway_benches);
