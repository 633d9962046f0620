//! Authenticated storage: the state tree's commit per block of 1,000 writes, state proofs
//! made from RocksDB and checked, audit-log appends, and log proofs made and checked.
//!
//! The state tree holds 200,000 keys before measuring (a district's registry, catalog and
//! grants several times over); the audit log holds 1,048,576 leaves.

use criterion::{BatchSize, Criterion, Throughput, criterion_group, criterion_main};
use shutong_execution::audit_log::{self, MemoryTiles};
use shutong_execution::state_tree;
use shutong_storage::{Commit, Storage, Tip};
use shutong_types::{Block, Hash, Roots, auditlog};
use shutong_vm::state::Writes;
use std::hint::black_box;

const KEYS_MEASURED: u64 = 200_000;
const LOG_LEAVES_MEASURED: u64 = 1 << 20;

/// `cargo bench` passes `--bench`; `cargo test --benches` runs each bench once, unoptimised,
/// where the full fixtures would only cost time.
fn measuring() -> bool {
    std::env::args().any(|a| a == "--bench")
}

fn keys_total() -> u64 {
    if measuring() { KEYS_MEASURED } else { 2_000 }
}

fn log_leaves() -> u64 {
    if measuring() { LOG_LEAVES_MEASURED } else { 1 << 13 }
}

fn key(i: u64) -> Vec<u8> {
    let mut key = vec![0x01];
    key.extend_from_slice(&[7; 32]);
    key.extend_from_slice(format!("grant/{i}").as_bytes());
    key
}

fn value(i: u64, round: u64) -> Vec<u8> {
    format!("grant {i} terms, round {round}: fields uscc,name; purpose licensing.renewal; uses 3").into_bytes()
}

/// splitmix64, for key choices that do not depend on the machine.
fn next(seed: &mut u64) -> u64 {
    *seed = seed.wrapping_add(0x9e37_79b9_7f4a_7c15);
    let mut z = *seed;
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

fn block(height: u64) -> Block {
    Block::empty("bench", height, Hash::ZERO)
}

/// A database whose state tree holds `keys_total()` keys, written 1,000 a version.
struct Db {
    _dir: tempfile::TempDir,
    storage: Storage,
    version: u64,
}

impl Db {
    fn new() -> Db {
        let dir = tempfile::tempdir().expect("temp dir");
        let storage = Storage::open(dir.path(), shutong_types::Suite::Ed25519Blake3).expect("storage");
        let mut db = Db { _dir: dir, storage, version: 0 };
        for chunk in 0..keys_total() / 1_000 {
            let writes: Writes = (chunk * 1_000..(chunk + 1) * 1_000).map(|i| (key(i), Some(value(i, 0)))).collect();
            db.commit(&writes);
        }
        db
    }

    /// Updates the tree with `writes` as the next version and commits it.
    fn commit(&mut self, writes: &Writes) -> Hash {
        let update = state_tree::update(&self.storage, self.version, writes).expect("tree update");
        let block = block(self.version);
        let roots = Roots { state: update.root, receipts: Hash::ZERO, audit: Hash::ZERO, audit_size: 0 };
        let tip = Tip::after(&block.header, roots);
        let log = audit_log::LogUpdate::default();
        self.storage
            .commit(Commit { block: &block, certificate: None, receipts: &[], writes, tree: &update, log: &log, tip })
            .expect("commit");
        self.version += 1;
        update.root
    }
}

/// 1,000 writes: 900 updates of existing keys and 100 new keys.
fn thousand_writes(seed: &mut u64, round: u64, fresh: &mut u64) -> Writes {
    let mut writes = Writes::new();
    while writes.len() < 900 {
        let i = next(seed) % keys_total();
        writes.insert(key(i), Some(value(i, round)));
    }
    for _ in 0..100 {
        writes.insert(key(*fresh), Some(value(*fresh, round)));
        *fresh += 1;
    }
    writes
}

fn state_tree(c: &mut Criterion) {
    let mut db = Db::new();
    let mut group = c.benchmark_group("state_tree");
    group.sample_size(20);
    group.throughput(Throughput::Elements(1_000));
    let (mut seed, mut round, mut fresh) = (1u64, 1u64, keys_total());
    // The tree update alone: reads of the changed paths and hashing, no write.
    group.bench_function("update/writes=1000,keys=200k", |b| {
        b.iter_batched(
            || thousand_writes(&mut seed, round, &mut fresh),
            |writes| black_box(state_tree::update(&db.storage, db.version, &writes).expect("update")),
            BatchSize::SmallInput,
        )
    });
    // Update and commit: the block's nodes written in its synced batch.
    group.bench_function("update_commit/writes=1000,keys=200k", |b| {
        b.iter_batched(
            || {
                round += 1;
                thousand_writes(&mut seed, round, &mut fresh)
            },
            |writes| black_box(db.commit(&writes)),
            BatchSize::SmallInput,
        )
    });
    group.finish();

    let mut group = c.benchmark_group("state_proof");
    group.throughput(Throughput::Elements(1));
    let version = db.version - 1;
    let root = state_tree::root(&db.storage, version).expect("root");
    let mut seed = 5u64;
    group.bench_function("prove/keys=200k", |b| {
        b.iter(|| {
            let k = key(next(&mut seed) % keys_total());
            black_box(state_tree::prove(&db.storage, version, &k).expect("prove"))
        })
    });
    let proofs: Vec<(Vec<u8>, Option<Vec<u8>>, shutong_types::smt::StateProof)> = (0..1_000)
        .map(|i| {
            let k = key(next(&mut seed) % (keys_total() * 5 / 4) + i % 2);
            let (value, proof) = state_tree::prove(&db.storage, version, &k).expect("prove");
            (k, value, proof)
        })
        .collect();
    let mut i = 0;
    group.bench_function("verify/keys=200k", |b| {
        b.iter(|| {
            let (k, value, proof) = &proofs[i % proofs.len()];
            i += 1;
            proof.verify(shutong_types::Suite::Ed25519Blake3, &root, k, value.as_deref()).expect("verifies");
        })
    });
    group.bench_function("prove_and_verify/keys=200k", |b| {
        b.iter(|| {
            let k = key(next(&mut seed) % keys_total());
            let (value, proof) = state_tree::prove(&db.storage, version, &k).expect("prove");
            proof.verify(shutong_types::Suite::Ed25519Blake3, &root, &k, value.as_deref()).expect("verifies");
        })
    });
    group.finish();
}

fn leaf_bytes(i: u64) -> Vec<u8> {
    // About the size of an access event leaf.
    let mut leaf = b"audit.access".to_vec();
    leaf.extend_from_slice(&i.to_be_bytes());
    leaf.resize(220, 0x5a);
    leaf
}

fn audit_log(c: &mut Criterion) {
    let mut group = c.benchmark_group("audit_log");
    group.throughput(Throughput::Elements(1_000));
    let hashes: Vec<Hash> =
        (0..1_000).map(|i| auditlog::leaf_hash(shutong_types::Suite::Ed25519Blake3, &leaf_bytes(i))).collect();
    group.bench_function("append/leaves=1000,hashed", |b| {
        b.iter_batched(
            || {
                let mut tiles = MemoryTiles::new(shutong_types::Suite::Ed25519Blake3);
                tiles.append(&hashes[..123]).expect("append");
                tiles
            },
            |tiles| black_box(audit_log::append(&tiles, tiles.size, &hashes).expect("append")),
            BatchSize::SmallInput,
        )
    });
    let leaves: Vec<Vec<u8>> = (0..1_000).map(leaf_bytes).collect();
    group.bench_function("append/leaves=1000,220B,with_leaf_hashing", |b| {
        b.iter_batched(
            || {
                let mut tiles = MemoryTiles::new(shutong_types::Suite::Ed25519Blake3);
                tiles.append(&hashes[..123]).expect("append");
                tiles
            },
            |tiles| {
                let hashed: Vec<Hash> =
                    leaves.iter().map(|l| auditlog::leaf_hash(shutong_types::Suite::Ed25519Blake3, l)).collect();
                black_box(audit_log::append(&tiles, tiles.size, &hashed).expect("append"))
            },
            BatchSize::SmallInput,
        )
    });
    group.finish();

    // A log of 2^20 leaves in RocksDB, written in blocks of 4,096.
    let dir = tempfile::tempdir().expect("temp dir");
    let storage = Storage::open(dir.path(), shutong_types::Suite::Ed25519Blake3).expect("storage");
    let mut size = 0u64;
    let mut height = 0;
    while size < log_leaves() {
        let batch: Vec<Hash> = (size..size + 4_096)
            .map(|i| auditlog::leaf_hash(shutong_types::Suite::Ed25519Blake3, &leaf_bytes(i)))
            .collect();
        let log = audit_log::append(&storage, size, &batch).expect("append");
        let b = block(height);
        let roots = Roots { state: Hash::ZERO, receipts: Hash::ZERO, audit: log.root, audit_size: log.size };
        let tip = Tip::after(&b.header, roots);
        let tree = state_tree::TreeUpdate::default();
        storage
            .commit(Commit {
                block: &b,
                certificate: None,
                receipts: &[],
                writes: &Writes::new(),
                tree: &tree,
                log: &log,
                tip,
            })
            .expect("commit");
        size = log.size;
        height += 1;
    }
    let root = audit_log::root(&storage, size).expect("root");
    let mut group = c.benchmark_group("log_proof");
    group.throughput(Throughput::Elements(1));
    let mut seed = 9u64;
    group.bench_function("inclusion_prove_and_verify/leaves=1M", |b| {
        b.iter(|| {
            let index = next(&mut seed) % size;
            let proof = audit_log::prove_inclusion(&storage, index, size).expect("prove");
            proof
                .verify(
                    shutong_types::Suite::Ed25519Blake3,
                    &auditlog::leaf_hash(shutong_types::Suite::Ed25519Blake3, &leaf_bytes(index)),
                    &root,
                )
                .expect("verifies");
        })
    });
    let proofs: Vec<_> = (0..1_000)
        .map(|_| audit_log::prove_inclusion(&storage, next(&mut seed) % size, size).expect("prove"))
        .collect();
    let leaf_hashes: Vec<Hash> =
        proofs.iter().map(|p| auditlog::leaf_hash(shutong_types::Suite::Ed25519Blake3, &leaf_bytes(p.index))).collect();
    let mut i = 0;
    group.bench_function("inclusion_verify/leaves=1M", |b| {
        b.iter(|| {
            let k = i % proofs.len();
            i += 1;
            proofs[k].verify(shutong_types::Suite::Ed25519Blake3, &leaf_hashes[k], &root).expect("verifies");
        })
    });
    // The auditor already holds the earlier root; working it out is not part of the check.
    group.bench_function("consistency_prove_and_verify/leaves=1M", |b| {
        b.iter_batched(
            || {
                let from = next(&mut seed) % size + 1;
                (from, audit_log::root(&storage, from).expect("old root"))
            },
            |(from, old)| {
                let proof = audit_log::prove_consistency(&storage, from, size).expect("prove");
                proof.verify(shutong_types::Suite::Ed25519Blake3, &old, &root).expect("verifies");
            },
            BatchSize::SmallInput,
        )
    });
    group.finish();
}

criterion_group!(benches, state_tree, audit_log);
criterion_main!(benches);
