//! The contract VM: the fixed cost of a call (a fresh pooled instance of a pre-linked module
//! plus the call), the cost of host storage calls, and a verification check of the example
//! certificate contract, the closest thing to a grant check until the authorisation
//! contracts land.

#![allow(clippy::unwrap_used)]

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use shutong_codec::Encode;
use shutong_types::keyspace::{self, Instance};
use shutong_types::{AccountId, Address};
use shutong_vm::state::{MemoryState, Overlay, StateReader};
use shutong_vm::{CallContext, Vm, VmConfig};
use std::sync::Arc;

const CONTRACT: Address = Address([1; 32]);
const CERT_VERIFY: &[u8] = include_bytes!("../../contracts/artifacts/cert-verify.wasm");

const NOOP: &str = r#"(module (memory (export "memory") 1) (func (export "noop")))"#;

/// 100 storage reads or 100 writes of a 32-byte value per call.
const STORAGE: &str = r#"(module
  (import "shutong" "storage_get" (func $get (param i32 i32) (result i64)))
  (import "shutong" "storage_set" (func $set (param i32 i32 i32 i32)))
  (memory (export "memory") 1)
  (data (i32.const 0) "key-0001")
  (func (export "get100") (local $i i32)
    (loop (drop (call $get (i32.const 0) (i32.const 8)))
      (br_if 0 (i32.lt_u (local.tee $i (i32.add (local.get $i) (i32.const 1))) (i32.const 100)))))
  (func (export "set100") (local $i i32)
    (loop (i32.store (i32.const 4) (local.get $i))
      (call $set (i32.const 0) (i32.const 8) (i32.const 64) (i32.const 32))
      (br_if 0 (i32.lt_u (local.tee $i (i32.add (local.get $i) (i32.const 1))) (i32.const 100))))))"#;

fn state_with(code: &[u8], extra: &[(Vec<u8>, Vec<u8>)]) -> Arc<dyn StateReader> {
    let code_hash = Vm::code_hash(shutong_types::Suite::Ed25519Blake3, code);
    let mut state = MemoryState::default();
    state.0.insert(keyspace::code(&code_hash), code.to_vec());
    state.0.insert(
        keyspace::instance(&CONTRACT),
        Instance { code_hash, admin: AccountId([9; 32]), frozen: false }.encode(),
    );
    state.0.extend(extra.iter().cloned());
    Arc::new(state)
}

fn ctx() -> CallContext {
    CallContext { origin: AccountId([9; 32]), contract: CONTRACT, height: 5, time_ms: 1_000 }
}

fn bench(c: &mut Criterion) {
    let vm = Vm::new(VmConfig::default()).unwrap();
    let mut group = c.benchmark_group("vm");

    let noop = wat::parse_str(NOOP).unwrap();
    let base = state_with(&noop, &[]);
    vm.validate(&noop).unwrap();
    group.throughput(Throughput::Elements(1));
    group.bench_function("instantiate_call/noop", |b| {
        b.iter(|| {
            let out = vm.call(ctx(), "noop", Vec::new(), 1_000_000, Overlay::new(Arc::clone(&base))).unwrap();
            assert!(out.status.is_success());
        })
    });

    let storage = wat::parse_str(STORAGE).unwrap();
    let value = vec![7u8; 32];
    let base = state_with(&storage, &[(keyspace::contract_storage(&CONTRACT, b"key-0001"), value)]);
    vm.validate(&storage).unwrap();
    group.throughput(Throughput::Elements(100));
    for method in ["get100", "set100"] {
        group.bench_function(format!("host/storage_{}", &method[..3]), |b| {
            b.iter(|| {
                let out = vm.call(ctx(), method, Vec::new(), 10_000_000, Overlay::new(Arc::clone(&base))).unwrap();
                assert!(out.status.is_success());
            })
        });
    }

    // A yes/no check of the example contract: one certificate lookup, an audit leaf, the
    // answer encoded; run as a query (the writes are dropped).
    let mut setup = Overlay::new(state_with(CERT_VERIFY, &[]));
    vm.validate(CERT_VERIFY).unwrap();
    for (method, args) in [
        ("init", Vec::new()),
        (
            "issue",
            shutong_sdk::builder::cert::issue(
                &CONTRACT,
                "lic-1",
                "business-licence",
                shutong_sdk::builder::cert::digest(b"holder"),
                shutong_sdk::builder::cert::digest(b"document"),
                u64::MAX,
            )
            .args,
        ),
    ] {
        let out = vm.call(ctx(), method, args, 10_000_000, setup).unwrap();
        assert!(out.status.is_success(), "{method}: {:?}", out.status);
        setup = out.block;
    }
    let mut issued = MemoryState::default();
    for (key, value) in setup.into_writes() {
        issued.0.insert(key, value.unwrap());
    }
    let code_hash = Vm::code_hash(shutong_types::Suite::Ed25519Blake3, CERT_VERIFY);
    issued.0.insert(keyspace::code(&code_hash), CERT_VERIFY.to_vec());
    issued.0.insert(
        keyspace::instance(&CONTRACT),
        Instance { code_hash, admin: AccountId([9; 32]), frozen: false }.encode(),
    );
    let issued: Arc<dyn StateReader> = Arc::new(issued);
    let args = shutong_sdk::builder::cert::verify_args(
        "lic-1",
        shutong_sdk::builder::cert::digest(b"holder"),
        shutong_sdk::builder::cert::digest(b"document"),
    );
    group.throughput(Throughput::Elements(1));
    group.bench_function("cert_verify/yes", |b| {
        b.iter(|| {
            let out = vm.call(ctx(), "verify", args.clone(), 10_000_000, Overlay::new(Arc::clone(&issued))).unwrap();
            assert!(out.status.is_success());
        })
    });
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
