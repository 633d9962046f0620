//! The host ABI beyond storage: cross-contract calls (gas forwarding, rollback, the
//! re-entrancy rule, the depth limit, frozen callees), caller / origin / own address, prefix
//! scans, audit-log leaves, blake3 and ed25519.

#![allow(clippy::unwrap_used)]

use shutong_codec::{Decode, Encode, Reader};
use shutong_types::keyspace::{self, AuditLeaf, Instance};
use shutong_types::{AccountId, Address, ExecStatus, Keypair, Signature, Suite};
use shutong_vm::state::{MemoryState, Overlay};
use shutong_vm::{CallContext, CallOutcome, Vm, VmConfig};
use std::sync::Arc;

const PROXY_AT: Address = Address([1; 32]);
const TARGET_AT: Address = Address([2; 32]);
const ORIGIN: AccountId = AccountId([9; 32]);

/// Calls another contract as its input says: `gas (u64 LE) ‖ address (32) ‖ method length
/// (1) ‖ method ‖ args`; outputs the call's return code (i64 LE) and the result buffer.
const PROXY: &str = r#"(module
  (import "shutong" "input_len" (func $input_len (result i32)))
  (import "shutong" "input_read" (func $input_read (param i32)))
  (import "shutong" "call_contract" (func $call (param i32 i32 i32 i32 i32 i64) (result i64)))
  (import "shutong" "result_len" (func $result_len (result i32)))
  (import "shutong" "result_read" (func $result_read (param i32)))
  (import "shutong" "output_set" (func $out (param i32 i32)))
  (import "shutong" "storage_set" (func $set (param i32 i32 i32 i32)))
  (memory (export "memory") 2)
  (data (i32.const 70000) "proxy-wrote")
  (func (export "call")
    (local $n i32) (local $mlen i32) (local $code i64) (local $len i32)
    (call $set (i32.const 70000) (i32.const 5) (i32.const 70006) (i32.const 5))
    (local.set $n (call $input_len))
    (call $input_read (i32.const 0))
    (local.set $mlen (i32.load8_u (i32.const 40)))
    (local.set $code (call $call (i32.const 8) (i32.const 41) (local.get $mlen)
      (i32.add (i32.const 41) (local.get $mlen))
      (i32.sub (local.get $n) (i32.add (i32.const 41) (local.get $mlen)))
      (i64.load (i32.const 0))))
    (i64.store (i32.const 65536) (local.get $code))
    (local.set $len (call $result_len))
    (call $result_read (i32.const 65544))
    (call $out (i32.const 65536) (i32.add (i32.const 8) (local.get $len)))))"#;

/// Methods that exercise one host function each.
const TARGET: &str = r#"(module
  (import "shutong" "storage_set" (func $set (param i32 i32 i32 i32)))
  (import "shutong" "emit_event" (func $emit (param i32 i32 i32 i32)))
  (import "shutong" "output_set" (func $out (param i32 i32)))
  (import "shutong" "abort" (func $abort (param i32 i32)))
  (import "shutong" "caller" (func $caller (param i32)))
  (import "shutong" "origin" (func $origin (param i32)))
  (import "shutong" "self_address" (func $self (param i32)))
  (import "shutong" "input_len" (func $input_len (result i32)))
  (import "shutong" "input_read" (func $input_read (param i32)))
  (import "shutong" "blake3" (func $blake3 (param i32 i32 i32)))
  (import "shutong" "ed25519_verify" (func $verify (param i32 i32 i32 i32) (result i32)))
  (import "shutong" "hash" (func $suite_hash (param i32 i32 i32)))
  (import "shutong" "verify_signature" (func $verify_signature (param i32 i32 i32 i32 i32) (result i32)))
  (import "shutong" "account_of_key" (func $account_of_key (param i32 i32 i32) (result i32)))
  (import "shutong" "audit_append" (func $audit (param i32 i32) (result i64)))
  (import "shutong" "storage_scan" (func $scan (param i32 i32 i32 i32 i32) (result i32)))
  (import "shutong" "result_len" (func $result_len (result i32)))
  (import "shutong" "result_read" (func $result_read (param i32)))
  (import "shutong" "call_contract" (func $call (param i32 i32 i32 i32 i32 i64) (result i64)))
  (import "shutong" "storage_get_of" (func $get_of (param i32 i32 i32) (result i64)))
  (memory (export "memory") 1)
  (data (i32.const 0) "kvnocall")
  (data (i32.const 200) "\01\01\01\01\01\01\01\01\01\01\01\01\01\01\01\01\01\01\01\01\01\01\01\01\01\01\01\01\01\01\01\01")
  (func (export "store")
    (call $set (i32.const 0) (i32.const 1) (i32.const 1) (i32.const 1))
    (call $emit (i32.const 0) (i32.const 1) (i32.const 0) (i32.const 0))
    (call $out (i32.const 1) (i32.const 1)))
  (func (export "fail")
    (call $set (i32.const 0) (i32.const 1) (i32.const 1) (i32.const 1))
    (call $emit (i32.const 0) (i32.const 1) (i32.const 0) (i32.const 0))
    (call $abort (i32.const 2) (i32.const 2)))
  (func (export "burn") (loop (br 0)))
  (func (export "who")
    (call $caller (i32.const 300)) (call $origin (i32.const 332)) (call $self (i32.const 364))
    (call $out (i32.const 300) (i32.const 96)))
  (func (export "back")
    (i64.store (i32.const 400) (call $call (i32.const 200) (i32.const 4) (i32.const 4) (i32.const 0) (i32.const 0) (i64.const 0)))
    (call $out (i32.const 400) (i32.const 8)))
  (func (export "hash")
    (call $input_read (i32.const 1000))
    (call $blake3 (i32.const 1000) (call $input_len) (i32.const 500))
    (call $out (i32.const 500) (i32.const 32)))
  (func (export "verify")
    (call $input_read (i32.const 1000))
    (i32.store8 (i32.const 500) (call $verify (i32.const 1000) (i32.const 1032) (i32.const 1096)
      (i32.sub (call $input_len) (i32.const 96))))
    (call $out (i32.const 500) (i32.const 1)))
  (func (export "suite_hash")
    (call $input_read (i32.const 1000))
    (call $suite_hash (i32.const 1000) (call $input_len) (i32.const 500))
    (call $out (i32.const 500) (i32.const 32)))
  (func (export "verify_key")
    (local $k i32)
    ;; input: key length (1 byte), the key, the 64-byte signature, the message
    (call $input_read (i32.const 1000))
    (local.set $k (i32.load8_u (i32.const 1000)))
    (i32.store8 (i32.const 500) (call $verify_signature (i32.const 1001) (local.get $k)
      (i32.add (i32.const 1001) (local.get $k))
      (i32.add (i32.const 1065) (local.get $k))
      (i32.sub (call $input_len) (i32.add (i32.const 65) (local.get $k)))))
    (call $out (i32.const 500) (i32.const 1)))
  (func (export "account_of_key")
    (call $input_read (i32.const 1000))
    (i32.store8 (i32.const 500) (call $account_of_key (i32.const 1000) (call $input_len) (i32.const 501)))
    (call $out (i32.const 500) (i32.const 33)))
  (func (export "audit")
    (call $input_read (i32.const 1000))
    (i64.store (i32.const 500) (call $audit (i32.const 1000) (call $input_len)))
    (i64.store (i32.const 508) (call $audit (i32.const 1000) (call $input_len)))
    (call $out (i32.const 500) (i32.const 16)))
  (func (export "audit_then_fail")
    (drop (call $audit (i32.const 0) (i32.const 2)))
    (call $abort (i32.const 2) (i32.const 2)))
  (func (export "peek")
    ;; input: a contract's 32-byte address, then a key of its storage
    (call $input_read (i32.const 1000))
    (if (i64.lt_s (call $get_of (i32.const 1000) (i32.const 1032) (i32.sub (call $input_len) (i32.const 32)))
                  (i64.const 0))
      (then (call $out (i32.const 0) (i32.const 0)))
      (else (call $result_read (i32.const 5000)) (call $out (i32.const 5000) (call $result_len)))))
  (func (export "scan")
    (local $n i32)
    ;; input: prefix length (1 byte), prefix, then an optional `after` key
    (call $input_read (i32.const 1000))
    (local.set $n (i32.load8_u (i32.const 1000)))
    (drop (call $scan (i32.const 1001) (local.get $n)
      (i32.add (i32.const 1001) (local.get $n))
      (if (result i32) (i32.eq (call $input_len) (i32.add (i32.const 1) (local.get $n)))
        (then (i32.const -1))
        (else (i32.sub (call $input_len) (i32.add (i32.const 1) (local.get $n)))))
      (i32.const 3)))
    (call $result_read (i32.const 5000))
    (call $out (i32.const 5000) (call $result_len))))"#;

fn wat(text: &str) -> Vec<u8> {
    wat::parse_str(text).unwrap()
}

/// A state with the proxy and the target deployed, plus whatever `extra` holds.
fn state(extra: &[(Vec<u8>, Vec<u8>)], frozen_target: bool) -> Overlay {
    let mut state = MemoryState::default();
    for (address, code, frozen) in [(PROXY_AT, wat(PROXY), false), (TARGET_AT, wat(TARGET), frozen_target)] {
        let code_hash = Vm::code_hash(shutong_types::Suite::Ed25519Blake3, &code);
        state.0.insert(keyspace::code(&code_hash), code);
        state.0.insert(keyspace::instance(&address), Instance { code_hash, admin: ORIGIN, frozen }.encode());
    }
    state.0.extend(extra.iter().cloned());
    Overlay::new(Arc::new(state))
}

fn call_at(vm: &Vm, contract: Address, method: &str, args: Vec<u8>, block: Overlay) -> CallOutcome {
    let ctx = CallContext { origin: ORIGIN, contract, height: 11, time_ms: 5_000 };
    vm.call(ctx, method, args, 10_000_000, block).unwrap()
}

fn proxy_input(gas: u64, to: Address, method: &str, args: &[u8]) -> Vec<u8> {
    let mut input = gas.to_le_bytes().to_vec();
    input.extend_from_slice(&to.0);
    input.push(method.len() as u8);
    input.extend_from_slice(method.as_bytes());
    input.extend_from_slice(args);
    input
}

/// Calls the target through the proxy; returns the outcome, the call's code and the result.
fn through_proxy(vm: &Vm, gas: u64, method: &str, block: Overlay) -> (CallOutcome, i64, Vec<u8>) {
    let out = call_at(vm, PROXY_AT, "call", proxy_input(gas, TARGET_AT, method, &[]), block);
    assert_eq!(out.status, ExecStatus::Success, "{out:?}");
    let code = i64::from_le_bytes(out.output[..8].try_into().unwrap());
    let result = out.output[8..].to_vec();
    (out, code, result)
}

fn storage(contract: &Address, key: &[u8]) -> Vec<u8> {
    keyspace::contract_storage(contract, key)
}

#[test]
fn a_successful_callee_keeps_its_writes_and_events_and_returns_its_output() {
    let vm = Vm::new(VmConfig::default()).unwrap();
    let (out, code, result) = through_proxy(&vm, 0, "store", state(&[], false));
    assert_eq!((code, result), (1, b"v".to_vec()));
    assert_eq!(out.block.get(&storage(&TARGET_AT, b"k")), Some(b"v".to_vec()));
    assert_eq!(out.block.get(&storage(&PROXY_AT, b"proxy")), Some(b"wrote".to_vec()));
    assert_eq!(out.events.len(), 1);
    assert_eq!(out.events[0].contract, TARGET_AT);
}

#[test]
fn a_failing_callee_is_rolled_back_but_its_caller_goes_on() {
    let vm = Vm::new(VmConfig::default()).unwrap();
    let (out, code, result) = through_proxy(&vm, 0, "fail", state(&[], false));
    assert_eq!((code, result), (-1, b"no".to_vec()));
    assert_eq!(out.block.get(&storage(&TARGET_AT, b"k")), None, "the callee's write is dropped");
    assert!(out.events.is_empty(), "the callee's event is dropped");
    assert_eq!(out.block.get(&storage(&PROXY_AT, b"proxy")), Some(b"wrote".to_vec()), "the caller's write stays");
}

#[test]
fn forwarded_gas_bounds_the_callee_and_the_caller_pays_what_it_used() {
    let vm = Vm::new(VmConfig::default()).unwrap();
    let (out, code, _) = through_proxy(&vm, 300_000, "burn", state(&[], false));
    assert_eq!(code, -2, "the callee ran out of its forwarded gas");
    assert!(out.gas_used > 300_000 && out.gas_used < 400_000, "{}", out.gas_used);
    // Forwarding everything (0) lets the callee burn the whole transaction.
    let ctx = CallContext { origin: ORIGIN, contract: PROXY_AT, height: 11, time_ms: 5_000 };
    let all = vm.call(ctx, "call", proxy_input(0, TARGET_AT, "burn", &[]), 2_000_000, state(&[], false)).unwrap();
    assert_eq!((all.status, all.gas_used), (ExecStatus::OutOfGas, 2_000_000));
}

#[test]
fn a_contract_reads_another_contracts_storage_without_calling_it() {
    let vm = Vm::new(VmConfig::default()).unwrap();
    let stored = [(storage(&PROXY_AT, b"member/7"), b"seven".to_vec())];
    let peek = |key: &[u8]| {
        let mut input = PROXY_AT.0.to_vec();
        input.extend_from_slice(key);
        call_at(&vm, TARGET_AT, "peek", input, state(&stored, false))
    };
    let found = peek(b"member/7");
    assert_eq!(found.status, ExecStatus::Success, "{found:?}");
    assert_eq!(found.output, b"seven");
    assert!(found.block.writes().is_empty(), "a read writes nothing");
    let absent = peek(b"member/8");
    assert_eq!((absent.status, absent.output), (ExecStatus::Success, Vec::new()));
    // Its own storage under the same key is another key: the owner's address is in it.
    let mut own = TARGET_AT.0.to_vec();
    own.extend_from_slice(b"member/7");
    assert_eq!(call_at(&vm, TARGET_AT, "peek", own, state(&stored, false)).output, Vec::<u8>::new());
    assert!(found.gas_used > absent.gas_used, "the value read is paid for by the byte");
}

#[test]
fn caller_origin_and_own_address_differ_as_they_should() {
    let vm = Vm::new(VmConfig::default()).unwrap();
    let (_, code, result) = through_proxy(&vm, 0, "who", state(&[], false));
    assert_eq!(code, 96);
    assert_eq!(&result[..32], &PROXY_AT.0, "the caller of a nested call is the calling contract");
    assert_eq!(&result[32..64], &ORIGIN.0, "the origin is the signer");
    assert_eq!(&result[64..], &TARGET_AT.0);
    let direct = call_at(&vm, TARGET_AT, "who", vec![], state(&[], false));
    assert_eq!(&direct.output[..32], &ORIGIN.0, "the caller of a top-level call is the signer");
}

#[test]
fn re_entering_a_contract_on_the_call_stack_is_refused() {
    let vm = Vm::new(VmConfig::default()).unwrap();
    let (_, code, result) = through_proxy(&vm, 0, "back", state(&[], false));
    assert_eq!(code, 8, "the target itself succeeded");
    assert_eq!(i64::from_le_bytes(result.try_into().unwrap()), -7, "its call back into the proxy was refused");
}

#[test]
fn calls_nest_at_most_call_depth_max_deep() {
    // Six proxies, each calling the next; the last would call the target.
    let proxies: Vec<Address> = (10..16).map(|i| Address([i; 32])).collect();
    let mut extra = Vec::new();
    let code = wat(PROXY);
    let code_hash = Vm::code_hash(shutong_types::Suite::Ed25519Blake3, &code);
    for address in &proxies {
        extra.push((keyspace::instance(address), Instance { code_hash, admin: ORIGIN, frozen: false }.encode()));
    }
    let mut input = proxy_input(0, TARGET_AT, "store", &[]);
    for address in proxies[1..].iter().rev() {
        input = proxy_input(0, *address, "call", &input);
    }
    let vm = Vm::new(VmConfig::default()).unwrap();
    let out = call_at(&vm, proxies[0], "call", input, state(&extra, false));
    assert_eq!(out.status, ExecStatus::Success);
    // Frames 1..=5 run; the fifth proxy's call is the sixth frame and is refused.
    let depth_refusal = (-8i64).to_le_bytes();
    assert!(out.output.windows(8).any(|w| w == depth_refusal), "{:?}", out.output);
    assert_eq!(out.block.get(&storage(&TARGET_AT, b"k")), None);
}

#[test]
fn a_frozen_contract_cannot_be_called_directly_or_by_another() {
    let vm = Vm::new(VmConfig::default()).unwrap();
    let direct = call_at(&vm, TARGET_AT, "store", vec![], state(&[], true));
    assert_eq!(direct.status, ExecStatus::Frozen);
    let (_, code, _) = through_proxy(&vm, 0, "store", state(&[], true));
    assert_eq!(code, -6);
}

#[test]
fn unknown_callees_and_methods_come_back_as_codes() {
    let vm = Vm::new(VmConfig::default()).unwrap();
    let (_, code, _) = through_proxy(&vm, 0, "no_such_method", state(&[], false));
    assert_eq!(code, -5);
    let input = proxy_input(0, Address([77; 32]), "store", &[]);
    let out = call_at(&vm, PROXY_AT, "call", input, state(&[], false));
    assert_eq!(i64::from_le_bytes(out.output[..8].try_into().unwrap()), -4);
}

#[test]
fn blake3_matches_the_reference_and_ed25519_accepts_only_valid_signatures() {
    let vm = Vm::new(VmConfig::default()).unwrap();
    let out = call_at(&vm, TARGET_AT, "hash", b"shutong".to_vec(), state(&[], false));
    assert_eq!(out.output, blake3::hash(b"shutong").as_bytes().to_vec());
    let key = Keypair::from_seed("host-abi");
    let signature = key.sign(b"grant 42");
    let input = |message: &[u8], sig: &[u8; 64]| [key.public().as_bytes(), &sig[..], message].concat();
    let good = call_at(&vm, TARGET_AT, "verify", input(b"grant 42", &signature.0), state(&[], false));
    assert_eq!(good.output, vec![1]);
    let wrong_message = call_at(&vm, TARGET_AT, "verify", input(b"grant 43", &signature.0), state(&[], false));
    assert_eq!(wrong_message.output, vec![0]);
    let mut bent = signature.0;
    bent[5] ^= 1;
    let bad = call_at(&vm, TARGET_AT, "verify", input(b"grant 42", &bent), state(&[], false));
    assert_eq!(bad.output, vec![0]);
}

#[test]
fn the_suite_calls_hash_and_verify_in_the_chains_suite_and_refuse_the_other() {
    for &suite in Suite::ALL {
        let vm = Vm::new(VmConfig { suite, ..VmConfig::default() }).unwrap();
        let out = call_at(&vm, TARGET_AT, "suite_hash", b"shutong".to_vec(), state(&[], false));
        let expected = match suite {
            Suite::Ed25519Blake3 => *blake3::hash(b"shutong").as_bytes(),
            Suite::Sm2Sm3 => shutong_types::sm::sm3(b"shutong"),
        };
        assert_eq!(out.output, expected.to_vec(), "{suite}");

        let other = if suite == Suite::Sm2Sm3 { Suite::Ed25519Blake3 } else { Suite::Sm2Sm3 };
        let verify = |key: &Keypair, message: &[u8], signature: &Signature| {
            let canonical = key.public().encode();
            let input = [&[canonical.len() as u8][..], &canonical, &signature.0, message].concat();
            call_at(&vm, TARGET_AT, "verify_key", input, state(&[], false)).output
        };
        let key = Keypair::from_seed_in(suite, "host-abi");
        let signature = key.sign(b"grant 42");
        assert_eq!(verify(&key, b"grant 42", &signature), vec![1], "{suite}");
        assert_eq!(verify(&key, b"grant 43", &signature), vec![0], "{suite}");
        let stranger = Keypair::from_seed_in(other, "host-abi");
        assert_eq!(verify(&stranger, b"grant 42", &stranger.sign(b"grant 42")), vec![0], "{other} on {suite}");

        let account =
            |key: &Keypair| call_at(&vm, TARGET_AT, "account_of_key", key.public().encode(), state(&[], false)).output;
        assert_eq!(account(&key), [&[1u8][..], &key.account().0].concat());
        assert_eq!(account(&stranger)[0], 0);
    }
    // The ed25519 call of the first ABI is refused by name on an SM chain.
    let vm = Vm::new(VmConfig { suite: Suite::Sm2Sm3, ..VmConfig::default() }).unwrap();
    let key = Keypair::from_seed("host-abi");
    let input = [key.public().as_bytes(), &key.sign(b"m").0, b"m"].concat();
    let out = call_at(&vm, TARGET_AT, "verify", input, state(&[], false));
    match out.status {
        ExecStatus::Trapped(reason) => {
            assert!(reason.contains("ed25519_verify takes ed25519 keys, but this chain runs sm2-sm3"), "{reason}")
        }
        other => panic!("expected a trap, got {other:?}"),
    }
}

#[test]
fn audit_leaves_are_numbered_in_order_and_rolled_back_with_their_call() {
    let vm = Vm::new(VmConfig::default()).unwrap();
    let out = call_at(&vm, TARGET_AT, "audit", b"used grant 7".to_vec(), state(&[], false));
    assert_eq!(out.output, [0u64.to_le_bytes(), 1u64.to_le_bytes()].concat());
    let leaf = AuditLeaf::decode(&out.block.get(&keyspace::audit_leaf(1)).unwrap()).unwrap();
    assert_eq!(leaf, AuditLeaf { contract: TARGET_AT, height: 11, time_ms: 5_000, data: b"used grant 7".to_vec() });
    let size = u64::decode(&out.block.get(&keyspace::audit_log_size()).unwrap()).unwrap();
    assert_eq!(size, 2);
    // The next call continues the numbering; a failed call leaves no leaf behind.
    let failed = call_at(&vm, TARGET_AT, "audit_then_fail", vec![], out.block);
    assert!(matches!(failed.status, ExecStatus::Aborted(_)));
    assert_eq!(failed.block.get(&keyspace::audit_leaf(2)), None);
    let next = call_at(&vm, TARGET_AT, "audit", b"x".to_vec(), failed.block);
    assert_eq!(next.output, [2u64.to_le_bytes(), 3u64.to_le_bytes()].concat());
}

fn decode_entries(bytes: &[u8]) -> Vec<(Vec<u8>, Vec<u8>)> {
    let mut r = Reader::new(bytes);
    let n = r.u32().unwrap();
    (0..n).map(|_| (r.byte_vec("key", 1024).unwrap(), r.byte_vec("value", 65536).unwrap())).collect()
}

#[test]
fn prefix_scans_page_through_the_contracts_own_keys_only() {
    let mut extra: Vec<(Vec<u8>, Vec<u8>)> = ["g/1", "g/2", "g/3", "g/4", "h/1"]
        .iter()
        .map(|k| (storage(&TARGET_AT, k.as_bytes()), k.as_bytes().to_vec()))
        .collect();
    // Another contract's key under the same prefix is invisible.
    extra.push((storage(&PROXY_AT, b"g/0"), b"not mine".to_vec()));
    let vm = Vm::new(VmConfig::default()).unwrap();
    let mut block = state(&extra, false);
    // A pending removal and a pending write are seen by the scan.
    block.remove(storage(&TARGET_AT, b"g/2"));
    block.set(storage(&TARGET_AT, b"g/25"), b"new".to_vec());
    let first = call_at(&vm, TARGET_AT, "scan", [&[2u8][..], b"g/"].concat(), block);
    let keys: Vec<Vec<u8>> = decode_entries(&first.output).into_iter().map(|(k, _)| k).collect();
    assert_eq!(keys, vec![b"g/1".to_vec(), b"g/25".to_vec(), b"g/3".to_vec()]);
    let second = call_at(&vm, TARGET_AT, "scan", [&[2u8][..], b"g/", b"g/3"].concat(), first.block);
    let entries = decode_entries(&second.output);
    assert_eq!(entries, vec![(b"g/4".to_vec(), b"g/4".to_vec())]);
}
