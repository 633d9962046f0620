//! RPC access control per signed request (`node/src/rpc/access.rs`): checking the request's
//! signature over its body, and reading the signer's standing from committed state (a
//! principal found, and the worst case: a key found nowhere, which misses all three
//! lookups). The database holds 20,000 principals of 200 organisations.

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use shutong_codec::Encode;
use shutong_execution::audit_log;
use shutong_execution::state_tree;
use shutong_node::rpc::access;
use shutong_sdk::auth::RequestAuth;
use shutong_sdk::system_api::names;
use shutong_sdk::system_api::registry::{
    Org, OrgKind, OrgStatus, Principal, PrincipalKind, PrincipalStatus, org_key, principal_key, role,
};
use shutong_storage::{Commit, Storage, Tip};
use shutong_types::keyspace;
use shutong_types::{Address, Block, Hash, Keypair, Roots};
use shutong_vm::state::Writes;
use std::hint::black_box;

const ORGS: u64 = 200;
const PRINCIPALS_PER_ORG: u64 = 100;

fn account(i: u64) -> [u8; 32] {
    *blake3::hash(&i.to_le_bytes()).as_bytes()
}

fn registry_state() -> Writes {
    let registry = Address::system(names::REGISTRY);
    let mut writes = Writes::new();
    for o in 0..ORGS {
        let id = format!("org-{o}");
        let org = Org {
            id: id.clone(),
            name: format!("Organisation {o}"),
            kind: OrgKind::Department,
            status: OrgStatus::Active,
            admin: account(u64::MAX - o),
            registered_height: 1,
            updated_height: 1,
        };
        writes.insert(keyspace::contract_storage(&registry, &org_key(&id)), Some(org.encode()));
        for p in 0..PRINCIPALS_PER_ORG {
            let principal = Principal {
                account: account(o * PRINCIPALS_PER_ORG + p),
                org: id.clone(),
                kind: PrincipalKind::Person,
                roles: role::DATA_CONSUMER,
                status: PrincipalStatus::Active,
                rotated_to: None,
                updated_height: 1,
            };
            let key = keyspace::contract_storage(&registry, &principal_key(&principal.account));
            writes.insert(key, Some(principal.encode()));
        }
    }
    writes
}

fn storage_with(writes: &Writes) -> (tempfile::TempDir, Storage) {
    let dir = tempfile::tempdir().expect("temp dir");
    let storage = Storage::open(dir.path(), shutong_types::Suite::Ed25519Blake3).expect("storage");
    let update = state_tree::update(&storage, 0, writes).expect("tree update");
    let block = Block::empty("bench", 0, Hash::ZERO);
    let roots = Roots { state: update.root, receipts: Hash::ZERO, audit: Hash::ZERO, audit_size: 0 };
    let tip = Tip::after(&block.header, roots);
    let log = audit_log::LogUpdate::default();
    storage
        .commit(Commit { block: &block, certificate: None, receipts: &[], writes, tree: &update, log: &log, tip })
        .expect("commit");
    (dir, storage)
}

fn access(c: &mut Criterion) {
    let mut group = c.benchmark_group("access");
    let key = Keypair::from_seed("bench-principal");
    let body = format!(r#"{{"jsonrpc":"2.0","id":7,"method":"shutong_submitTx","params":["{}"]}}"#, "ab".repeat(220));
    let auth = RequestAuth::sign(&key, "bench", body.as_bytes());
    group.throughput(Throughput::Elements(1));
    group.bench_function(format!("verify/body={}B", body.len()), |b| {
        b.iter(|| assert!(black_box(&auth).verify("bench", black_box(body.as_bytes()))))
    });
    let (_dir, storage) = storage_with(&registry_state());
    let known = shutong_types::AccountId(account(4_242));
    let unknown = shutong_types::AccountId([0xee; 32]);
    assert!(matches!(access::standing(&storage, &known), access::Standing::Principal { .. }));
    assert_eq!(access::standing(&storage, &unknown), access::Standing::Unregistered);
    group.bench_function("standing/principal,principals=20k", |b| {
        b.iter(|| access::standing(&storage, black_box(&known)))
    });
    group.bench_function("standing/unregistered,principals=20k", |b| {
        b.iter(|| access::standing(&storage, black_box(&unknown)))
    });
    group.finish();
}

criterion_group!(benches, access);
criterion_main!(benches);
