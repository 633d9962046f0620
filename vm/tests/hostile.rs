//! Hostile contracts. Each one must end in a clean failure receipt (or a refusal at upload),
//! with the same status and the same gas on every VM, while the VM stays usable.

#![allow(clippy::unwrap_used)]

use shutong_codec::Encode;
use shutong_types::keyspace::{self, Instance};
use shutong_types::{AccountId, Address, ExecStatus};
use shutong_vm::state::{MemoryState, Overlay, Writes};
use shutong_vm::{CallContext, Vm, VmConfig, VmError, instrument};
use std::sync::Arc;
use std::time::Duration;

const CONTRACT: Address = Address([1; 32]);

fn ctx() -> CallContext {
    CallContext { origin: AccountId([9; 32]), contract: CONTRACT, height: 7, time_ms: 1_000 }
}

fn deployed(code: &[u8]) -> Overlay {
    let code_hash = Vm::code_hash(shutong_types::Suite::Ed25519Blake3, code);
    let mut state = MemoryState::default();
    state.0.insert(keyspace::code(&code_hash), code.to_vec());
    state.0.insert(
        keyspace::instance(&CONTRACT),
        Instance { code_hash, admin: AccountId([9; 32]), frozen: false }.encode(),
    );
    Overlay::new(Arc::new(state))
}

fn wat(text: &str) -> Vec<u8> {
    wat::parse_str(text).expect("test module parses")
}

/// Runs the call on three fresh VMs, checks they agree on status, gas, output and writes,
/// and returns the status and gas.
fn on_three_vms(code: &[u8], method: &str, args: &[u8], gas: u64) -> (ExecStatus, u64, Vec<u8>, Writes) {
    let runs: Vec<(ExecStatus, u64, Vec<u8>, Writes)> = (0..3)
        .map(|_| {
            let vm = Vm::new(VmConfig::default()).unwrap();
            let out = vm.call(ctx(), method, args.to_vec(), gas, deployed(code)).unwrap();
            (out.status, out.gas_used, out.output, out.block.into_writes())
        })
        .collect();
    assert!(runs.iter().all(|r| *r == runs[0]), "VMs disagree: {runs:?}");
    runs.into_iter().next().unwrap()
}

fn trapped(status: &ExecStatus) -> &str {
    match status {
        ExecStatus::Trapped(message) => message,
        other => panic!("expected a trap, got {other:?}"),
    }
}

#[test]
fn an_infinite_loop_runs_out_of_gas_and_is_charged_in_full() {
    let code = wat(r#"(module (memory (export "memory") 1) (func (export "spin") (loop (br 0))))"#);
    let (status, gas, _, writes) = on_three_vms(&code, "spin", &[], 2_000_000);
    assert_eq!((status, gas), (ExecStatus::OutOfGas, 2_000_000));
    assert!(writes.keys().all(|k| k[0] != keyspace::CONTRACT_STORAGE));
}

#[test]
fn a_memory_bomb_stops_at_the_memory_limit() {
    // Grows one page at a time until the VM says no, then traps.
    let code = wat(r#"(module (memory (export "memory") 1)
          (func (export "grow")
            (loop (br_if 0 (i32.ne (memory.grow (i32.const 1)) (i32.const -1))))
            unreachable))"#);
    let (status, gas, _, _) = on_three_vms(&code, "grow", &[], 50_000_000);
    assert!(trapped(&status).contains("unreachable"), "{status:?}");
    // 255 pages granted and charged per page; far below the limit.
    assert!(gas > 255 * u64::from(shutong_vm::gas::V1.memory_grow_per_page), "{gas}");
    // A module that asks for more memory up front than the limit cannot even start.
    let greedy = wat(r#"(module (memory (export "memory") 1024) (func (export "m")))"#);
    let (status, _, _, _) = on_three_vms(&greedy, "m", &[], 1_000_000);
    assert!(trapped(&status).contains("memory"), "{status:?}");
}

#[test]
fn deep_recursion_hits_the_deterministic_stack_bound() {
    let code = wat(r#"(module (memory (export "memory") 1)
          (func $down (param i64) (result i64) (call $down (i64.add (local.get 0) (i64.const 1))))
          (func (export "recurse") (drop (call $down (i64.const 0)))))"#);
    let (status, gas, _, _) = on_three_vms(&code, "recurse", &[], 50_000_000);
    let message = trapped(&status);
    assert!(message.contains("call stack above the limit"), "{message}");
    assert!(gas < 50_000_000, "the bound is reached long before the gas runs out ({gas})");
    // Large frames reach the bound sooner: the cost is in slots, not calls.
    let fat = wat(r#"(module (memory (export "memory") 1)
          (func $down (local i64 i64 i64 i64 i64 i64 i64 i64 i64 i64 i64 i64 i64 i64 i64 i64
                             i64 i64 i64 i64 i64 i64 i64 i64 i64 i64 i64 i64 i64 i64 i64 i64)
            (call $down))
          (func (export "recurse") (call $down)))"#);
    let (fat_status, fat_gas, _, _) = on_three_vms(&fat, "recurse", &[], 50_000_000);
    assert!(trapped(&fat_status).contains("call stack above the limit"));
    assert!(fat_gas < gas, "fewer, larger frames: {fat_gas} vs {gas}");
    // Through call_indirect too.
    let indirect = wat(r#"(module (memory (export "memory") 1) (type $t (func))
          (table 1 funcref) (elem (i32.const 0) $down)
          (func $down (call_indirect (type $t) (i32.const 0)))
          (func (export "recurse") (call $down)))"#);
    let (status, _, _, _) = on_three_vms(&indirect, "recurse", &[], 50_000_000);
    assert!(trapped(&status).contains("call stack above the limit"), "{status:?}");
}

#[test]
fn a_function_with_an_oversized_frame_is_refused_at_upload() {
    let locals = " i64".repeat(instrument::FRAME_SLOTS_MAX as usize);
    let code = wat(&format!(r#"(module (func (export "m") (local{locals})))"#));
    let vm = Vm::new(VmConfig::default()).unwrap();
    let err = vm.validate(&code).unwrap_err().to_string();
    assert!(err.contains("frame of") && err.contains("above the maximum"), "{err}");
}

#[test]
fn an_oversized_module_is_refused_before_it_is_parsed() {
    let code = vec![0u8; shutong_types::limits::CODE_BYTES_MAX as usize + 1];
    let vm = Vm::new(VmConfig::default()).unwrap();
    assert!(matches!(vm.validate(&code), Err(VmError::ModuleTooLarge { .. })));
    // And garbage of an allowed size is refused with wasmtime's parse error.
    let err = vm.validate(&[0, 97, 115, 109, 1, 0, 0, 0, 99]).unwrap_err().to_string();
    assert!(err.contains("refused"), "{err}");
}

#[test]
fn nan_producing_float_code_gives_the_canonical_nan_everywhere() {
    // sqrt(-x) and 0/0 from run-time values, stored bit for bit as the output.
    let code = wat(r#"(module
          (import "shutong" "output_set" (func $out (param i32 i32)))
          (memory (export "memory") 1)
          (global $zero (mut f64) (f64.const 0))
          (func (export "nan")
            (f64.store (i32.const 0) (f64.sqrt (f64.neg (f64.const 2))))
            (f64.store (i32.const 8) (f64.div (global.get $zero) (global.get $zero)))
            (f32.store (i32.const 16) (f32.div (f32.demote_f64 (global.get $zero)) (f32.const 0)))
            (call $out (i32.const 0) (i32.const 20))))"#);
    let (status, _, output, _) = on_three_vms(&code, "nan", &[], 1_000_000);
    assert_eq!(status, ExecStatus::Success);
    let canonical64 = 0x7ff8_0000_0000_0000u64.to_le_bytes();
    let canonical32 = 0x7fc0_0000u32.to_le_bytes();
    assert_eq!(&output[0..8], canonical64);
    assert_eq!(&output[8..16], canonical64);
    assert_eq!(&output[16..20], canonical32);
}

#[test]
fn invalid_pointers_to_each_host_function_trap_with_a_named_error() {
    let cases = [
        (
            "storage_get",
            "(param i32 i32) (result i64)",
            "(drop (call $f (i32.const 65535) (i32.const 8)))",
            "storage_get: key",
        ),
        (
            "storage_get_of",
            "(param i32 i32 i32) (result i64)",
            "(drop (call $f (i32.const 65530) (i32.const 0) (i32.const 4)))",
            "storage_get_of: address",
        ),
        (
            "storage_get_of",
            "(param i32 i32 i32) (result i64)",
            "(drop (call $f (i32.const 0) (i32.const 65535) (i32.const 8)))",
            "storage_get_of: key",
        ),
        (
            "storage_set",
            "(param i32 i32 i32 i32)",
            "(call $f (i32.const 0) (i32.const 1) (i32.const -1) (i32.const 4))",
            "storage_set: value",
        ),
        (
            "emit_event",
            "(param i32 i32 i32 i32)",
            "(call $f (i32.const 70000) (i32.const 4) (i32.const 0) (i32.const 0))",
            "emit_event: topic",
        ),
        ("blake3", "(param i32 i32 i32)", "(call $f (i32.const 0) (i32.const 4) (i32.const 65530))", "blake3: output"),
        (
            "ed25519_verify",
            "(param i32 i32 i32 i32) (result i32)",
            "(drop (call $f (i32.const 65530) (i32.const 0) (i32.const 0) (i32.const 0)))",
            "ed25519_verify: key",
        ),
        ("caller", "(param i32)", "(call $f (i32.const 65535))", "caller: buffer"),
        ("account_of", "(param i32 i32)", "(call $f (i32.const 0) (i32.const 65534))", "account_of: output"),
        ("input_read", "(param i32)", "(call $f (i32.const 65535))", "input_read: buffer"),
        (
            "audit_append",
            "(param i32 i32) (result i64)",
            "(drop (call $f (i32.const 65535) (i32.const 2)))",
            "audit_append: leaf",
        ),
        (
            "call_contract",
            "(param i32 i32 i32 i32 i32 i64) (result i64)",
            "(drop (call $f (i32.const 65535) (i32.const 0) (i32.const 1) (i32.const 0) (i32.const 0) (i64.const 0)))",
            "call_contract: address",
        ),
        (
            "storage_scan",
            "(param i32 i32 i32 i32 i32) (result i32)",
            "(drop (call $f (i32.const 65535) (i32.const 9) (i32.const 0) (i32.const -1) (i32.const 1)))",
            "storage_scan: prefix",
        ),
    ];
    for (name, signature, body, expected) in cases {
        let code = wat(&format!(
            r#"(module (import "shutong" "{name}" (func $f {signature})) (memory (export "memory") 1)
               (func (export "m") {body}))"#
        ));
        let (status, gas, _, writes) = on_three_vms(&code, "m", b"xyz", 1_000_000);
        let ExecStatus::Trapped(message) = &status else { panic!("{name}: expected a trap, got {status:?}") };
        assert!(message.contains(expected) && message.contains("outside guest memory"), "{name}: {message}");
        assert!(gas > 0 && gas < 1_000_000, "{name}: {gas}");
        assert!(writes.keys().all(|k| k[0] != keyspace::CONTRACT_STORAGE && k[0] != keyspace::AUDIT_LEAF));
    }
}

#[test]
fn an_attempt_at_unbounded_iteration_is_refused_or_runs_out_of_gas() {
    // One scan asking for more than a page is refused outright.
    let greedy = wat(
        r#"(module (import "shutong" "storage_scan" (func $scan (param i32 i32 i32 i32 i32) (result i32)))
          (memory (export "memory") 1)
          (func (export "m") (drop (call $scan (i32.const 0) (i32.const 0) (i32.const 0) (i32.const -1) (i32.const 100000)))))"#,
    );
    let (status, _, _, _) = on_three_vms(&greedy, "m", &[], 1_000_000);
    assert!(trapped(&status).contains("storage_scan: limit of 100000 bytes is above the maximum 256"), "{status:?}");
    // Scanning page after page forever pays for every page and stops when the gas is gone.
    let forever = wat(
        r#"(module (import "shutong" "storage_scan" (func $scan (param i32 i32 i32 i32 i32) (result i32)))
          (memory (export "memory") 1)
          (func (export "m") (loop (drop (call $scan (i32.const 0) (i32.const 0) (i32.const 0) (i32.const -1) (i32.const 256))) (br 0))))"#,
    );
    let (status, gas, _, _) = on_three_vms(&forever, "m", &[], 5_000_000);
    assert_eq!((status, gas), (ExecStatus::OutOfGas, 5_000_000));
}

#[test]
fn the_watchdog_stops_a_call_that_runs_too_long_without_making_a_receipt() {
    let code = wat(r#"(module (memory (export "memory") 1) (func (export "spin") (loop (br 0))))"#);
    let cfg = VmConfig { watchdog: Duration::from_millis(200), ..VmConfig::default() };
    let vm = Vm::new(cfg).unwrap();
    let started = std::time::Instant::now();
    let result = vm.call(ctx(), "spin", vec![], u64::MAX / 2, deployed(&code));
    assert!(matches!(result, Err(VmError::Watchdog(_))), "{result:?}");
    assert!(started.elapsed() < Duration::from_secs(30));
    // The VM is still usable afterwards.
    let out = vm.call(ctx(), "spin", vec![], 100_000, deployed(&code)).unwrap();
    assert_eq!(out.status, ExecStatus::OutOfGas);
}

#[test]
fn the_pool_is_released_after_every_call() {
    let code = wat(r#"(module (memory (export "memory") 1) (func (export "m")))"#);
    let vm = Vm::new(VmConfig { pooled_instances: 5, ..VmConfig::default() }).unwrap();
    for _ in 0..200 {
        let out = vm.call(ctx(), "m", vec![], 100_000, deployed(&code)).unwrap();
        assert_eq!(out.status, ExecStatus::Success);
    }
}
