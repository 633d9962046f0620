//! The VM against hand-written WAT modules and the committed registry contract.

#![allow(clippy::unwrap_used)]

use shutong_codec::{Decode, Encode};
use shutong_system_api::registry::{GetOrg, Org, OrgKind, RegisterOrg};
use shutong_types::keyspace::{self, Instance};
use shutong_types::{AccountId, Address, ExecStatus};
use shutong_vm::state::{MemoryState, Overlay};
use shutong_vm::{CallContext, CallOutcome, Vm, VmConfig};
use std::sync::Arc;

const REGISTRY: &[u8] = include_bytes!("../../contracts/artifacts/registry.wasm");

fn ctx() -> CallContext {
    CallContext { origin: AccountId([9; 32]), contract: Address([1; 32]), height: 7, time_ms: 1_000 }
}

/// An empty state: calls made with `call` deploy their code into it first.
fn empty() -> Overlay {
    Overlay::new(Arc::new(MemoryState::default()))
}

/// Calls `method` of `code`, deployed at `Address([1; 32])` on top of `block`.
fn call(vm: &Vm, code: &[u8], method: &str, args: Vec<u8>, gas: u64, mut block: Overlay) -> CallOutcome {
    let code_hash = Vm::code_hash(shutong_types::Suite::Ed25519Blake3, code);
    if block.get(&keyspace::code(&code_hash)).is_none() {
        let instance = Instance { code_hash, admin: AccountId([9; 32]), frozen: false };
        block.set(keyspace::code(&code_hash), code.to_vec());
        block.set(keyspace::instance(&Address([1; 32])), instance.encode());
    }
    vm.call(ctx(), method, args, gas, block).expect("no watchdog or pool failure")
}

fn wat(text: &str) -> Vec<u8> {
    wat::parse_str(text).expect("test module parses")
}

const LOOP: &str = r#"(module (memory (export "memory") 1) (func (export "spin") (loop (br 0))))"#;

const WRITER: &str = r#"(module
  (import "shutong" "storage_set" (func $set (param i32 i32 i32 i32)))
  (import "shutong" "abort" (func $abort (param i32 i32)))
  (memory (export "memory") 1)
  (data (i32.const 0) "keyvaluefailed")
  (func (export "write") (call $set (i32.const 0) (i32.const 3) (i32.const 3) (i32.const 5)))
  (func (export "write_then_abort")
    (call $set (i32.const 0) (i32.const 3) (i32.const 3) (i32.const 5))
    (call $abort (i32.const 8) (i32.const 6)))
  (func (export "write_out_of_bounds") (call $set (i32.const 65530) (i32.const 100) (i32.const 0) (i32.const 1)))
  (func (export "not_a_method") (param i32)))"#;

#[test]
fn a_write_is_kept_on_success_and_charged() {
    let vm = Vm::new(VmConfig::default()).unwrap();
    let out = call(&vm, &wat(WRITER), "write", vec![], 1_000_000, empty());
    assert_eq!(out.status, ExecStatus::Success);
    assert!(out.gas_used > shutong_vm::gas::V1.call_base + shutong_vm::gas::V1.storage_write_base);
    assert_eq!(out.block.get(&keyspace::contract_storage(&Address([1; 32]), b"key")), Some(b"value".to_vec()));
}

#[test]
fn an_abort_rolls_back_writes_and_still_charges_gas() {
    let vm = Vm::new(VmConfig::default()).unwrap();
    let out = call(&vm, &wat(WRITER), "write_then_abort", vec![], 1_000_000, empty());
    assert_eq!(out.status, ExecStatus::Aborted("failed".into()));
    assert!(out.gas_used > 0);
    assert!(out.block.writes().iter().all(|(k, _)| k[0] != keyspace::CONTRACT_STORAGE));
}

#[test]
fn running_out_of_gas_fails_with_all_gas_used() {
    let vm = Vm::new(VmConfig::default()).unwrap();
    let out = call(&vm, &wat(LOOP), "spin", vec![], 200_000, empty());
    assert_eq!(out.status, ExecStatus::OutOfGas);
    assert_eq!(out.gas_used, 200_000);
}

#[test]
fn a_gas_limit_below_the_call_base_is_out_of_gas_before_running() {
    let vm = Vm::new(VmConfig::default()).unwrap();
    let out = call(&vm, &wat(WRITER), "write", vec![], 10, empty());
    assert_eq!((out.status, out.gas_used), (ExecStatus::OutOfGas, 10));
}

#[test]
fn pointers_outside_guest_memory_trap_with_a_named_error() {
    let vm = Vm::new(VmConfig::default()).unwrap();
    let out = call(&vm, &wat(WRITER), "write_out_of_bounds", vec![], 1_000_000, empty());
    let ExecStatus::Trapped(message) = out.status else { panic!("expected a trap, got {:?}", out.status) };
    assert!(message.contains("storage_set: key at 65530..65530+100 is outside guest memory"), "{message}");
}

#[test]
fn unknown_methods_and_non_method_exports_are_refused() {
    let vm = Vm::new(VmConfig::default()).unwrap();
    for method in ["missing", "not_a_method", "memory", "__heap_base"] {
        let out = call(&vm, &wat(WRITER), method, vec![], 1_000_000, empty());
        assert_eq!(out.status, ExecStatus::UnknownMethod(method.into()));
    }
}

#[test]
fn missing_code_is_an_unknown_contract() {
    let vm = Vm::new(VmConfig::default()).unwrap();
    let out = vm.call(ctx(), "get", vec![], 1_000_000, empty()).unwrap();
    assert_eq!(out.status, ExecStatus::UnknownContract);
}

#[test]
fn modules_that_import_outside_the_host_abi_are_rejected() {
    let vm = Vm::new(VmConfig::default()).unwrap();
    let code = wat(r#"(module (import "env" "clock" (func)) (func (export "m")))"#);
    let err = vm.validate(&code).unwrap_err().to_string();
    assert!(err.contains("clock"), "{err}");
    assert!(vm.validate(b"not wasm").is_err());
}

#[test]
fn gas_used_is_identical_across_vm_instances() {
    let args = RegisterOrg { id: "org-1".into(), name: "Bureau".into(), kind: OrgKind::Department }.encode();
    let runs: Vec<(ExecStatus, u64)> = (0..3)
        .map(|_| {
            let vm = Vm::new(VmConfig::default()).unwrap();
            let out = call(&vm, REGISTRY, "register", args.clone(), 5_000_000, empty());
            (out.status, out.gas_used)
        })
        .collect();
    assert_eq!(runs[0].0, ExecStatus::Success);
    assert!(runs.iter().all(|r| *r == runs[0]), "{runs:?}");
}

#[test]
fn the_registry_contract_registers_and_returns_an_organisation() {
    let vm = Vm::new(VmConfig::default()).unwrap();
    // Enterprises join without the committee under the default "open" registration policy.
    let args = RegisterOrg { id: "jingan-data".into(), name: "Jing'an Data Co.".into(), kind: OrgKind::Enterprise };
    let out = call(&vm, REGISTRY, "register", args.encode(), 5_000_000, empty());
    assert_eq!(out.status, ExecStatus::Success);
    assert_eq!(out.events.len(), 1);
    assert_eq!(out.events[0].topic, "org.registered");
    let again = call(&vm, REGISTRY, "register", args.encode(), 5_000_000, out.block);
    assert_eq!(again.status, ExecStatus::Aborted("organisation jingan-data already exists".into()));
    let got = call(&vm, REGISTRY, "get", GetOrg { id: "jingan-data".into() }.encode(), 5_000_000, again.block);
    assert_eq!(got.status, ExecStatus::Success);
    let org = Org::decode(&got.output).unwrap();
    assert_eq!((org.admin, org.registered_height), ([9; 32], 7));
    assert!(vm.is_cached(&Vm::code_hash(shutong_types::Suite::Ed25519Blake3, REGISTRY)));
}

#[test]
fn malformed_arguments_abort_with_the_decode_error() {
    let vm = Vm::new(VmConfig::default()).unwrap();
    let out = call(&vm, REGISTRY, "register", vec![0xff; 3], 5_000_000, empty());
    let ExecStatus::Aborted(message) = out.status else { panic!("expected abort, got {:?}", out.status) };
    assert!(message.starts_with("invalid arguments"), "{message}");
}

/// Reads what memory holds where the last call wrote (an initialised data byte, the stack's
/// top, two heap bytes kept resident between calls, one far above them, and a grown page),
/// then overwrites them all.
const SCRIBBLER: &str = r#"(module
  (import "shutong" "output_set" (func $out (param i32 i32)))
  (memory (export "memory") 80)
  (data (i32.const 1048584) "o")
  (func (export "scribble")
    (local $grown i32)
    (local.set $grown (memory.grow (i32.const 1)))
    (i32.store8 (i32.const 0) (i32.load8_u (i32.const 1048584)))
    (i32.store8 (i32.const 1) (i32.load8_u (i32.const 1048000)))
    (i32.store8 (i32.const 2) (i32.load8_u (i32.const 2097152)))
    (i32.store8 (i32.const 3) (i32.load8_u (i32.const 4194300)))
    (i32.store8 (i32.const 4) (i32.load8_u (i32.const 5000000)))
    (i32.store8 (i32.const 5) (i32.load8_u (i32.mul (local.get $grown) (i32.const 65536))))
    (i32.store (i32.const 8) (local.get $grown))
    (i32.store8 (i32.const 1048584) (i32.const 120))
    (i32.store8 (i32.const 1048000) (i32.const 120))
    (i32.store8 (i32.const 2097152) (i32.const 120))
    (i32.store8 (i32.const 4194300) (i32.const 120))
    (i32.store8 (i32.const 5000000) (i32.const 120))
    (i32.store8 (i32.mul (local.get $grown) (i32.const 65536)) (i32.const 120))
    (call $out (i32.const 0) (i32.const 12))))"#;

#[test]
fn every_call_starts_from_pristine_memory_whatever_the_last_one_wrote() {
    // Freed instances' pages stay resident and are reset in place (`KEEP_RESIDENT_*`): no
    // byte a call wrote may reach the next one, inside the kept range or beyond it.
    let vm = Vm::new(VmConfig::default()).unwrap();
    let code = wat(SCRIBBLER);
    let mut expected = vec![b'o', 0, 0, 0, 0, 0, 0, 0];
    expected.extend_from_slice(&80u32.to_le_bytes());
    for round in 0..5 {
        let out = call(&vm, &code, "scribble", vec![], 10_000_000, empty());
        assert_eq!(out.status, ExecStatus::Success, "{out:?}");
        assert_eq!(out.output, expected, "call {round} saw what an earlier call wrote");
    }
}
