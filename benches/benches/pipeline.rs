//! The transaction pipeline, stage by stage: decode and verify a transaction, one contract
//! call through the VM, and executing and committing a block of 1,000 transactions.

#![allow(clippy::unwrap_used)]

use criterion::{BatchSize, Criterion, Throughput, criterion_group, criterion_main};
use shutong_benches::{Fixture, registry_call, signed_registrations};
use shutong_codec::{Decode, Encode};
use shutong_storage::Commit;
use shutong_types::{Block, SignedTransaction};
use shutong_vm::state::Overlay;
use std::hint::black_box;
use std::sync::Arc;

fn tx_decode_verify(c: &mut Criterion) {
    let bytes = signed_registrations(1, 0).remove(0).encode();
    let mut group = c.benchmark_group("tx");
    group.throughput(Throughput::Elements(1));
    group.bench_function("decode_verify/bytes=".to_string() + &bytes.len().to_string(), |b| {
        b.iter(|| {
            let tx = SignedTransaction::decode(black_box(&bytes)).expect("decodes");
            tx.verify(shutong_types::Suite::Ed25519Blake3).expect("verifies");
        })
    });
    group.finish();
}

fn vm_call(c: &mut Criterion) {
    let fixture = Fixture::new();
    let mut group = c.benchmark_group("vm");
    group.throughput(Throughput::Elements(1));
    for name in ["get", "register"] {
        let (ctx, _code_hash, method, args) = registry_call(&fixture, name);
        group.bench_function(format!("call/registry.{name}"), |b| {
            b.iter(|| {
                let base: Arc<dyn shutong_vm::state::StateReader> = fixture.storage.clone();
                let overlay = Overlay::new(base);
                let out = fixture.vm.call(ctx.clone(), &method, args.clone(), 10_000_000, overlay).unwrap();
                assert!(out.status.is_success());
            })
        });
    }
    group.finish();
}

fn block_commit(c: &mut Criterion) {
    let mut group = c.benchmark_group("block");
    group.sample_size(10);
    group.throughput(Throughput::Elements(1_000));
    group.bench_function("execute_commit/txs=1000", |b| {
        b.iter_batched(
            || {
                let fixture = Fixture::new();
                let block = fixture.block(signed_registrations(1_000, 0));
                (fixture, block)
            },
            |(fixture, block): (Fixture, Block)| {
                let output = fixture.executor.execute(&block).unwrap();
                assert!(output.receipts.iter().all(|r| r.status.is_success()));
                fixture.storage.commit(Commit::executed(&block, None, &output)).expect("commit");
                fixture
            },
            BatchSize::PerIteration,
        )
    });
    group.finish();
}

criterion_group!(benches, tx_decode_verify, vm_call, block_commit);
criterion_main!(benches);
