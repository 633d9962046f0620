//! The contract lifecycle on a real database and the real VM, block by block: upload under
//! the governance policy, instantiate with `init`, call, migrate with `migrate`, freeze and
//! unfreeze, and every refusal with nothing written.

use shutong_codec::Decode;
use shutong_execution::lifecycle;
use shutong_sdk::builder::{self, cert};
use shutong_sdk::system_api::governance::{Action, LifecycleOp, LifecycleOutcome};
use shutong_sdk::system_api::lifecycle::CodeInfo;
use shutong_types::keyspace;
use shutong_types::{Call, ExecStatus, Hash, Keypair, Receipt};
use shutong_vm::Vm;

use crate::common::chain::{Chain, admin};
const CERT_VERIFY: &[u8] = include_bytes!("../../../contracts/artifacts/cert-verify.wasm");

/// A second version of a contract, in WAT: `migrate` records that it ran, `version` says 2.
const V2: &str = r#"(module
  (import "shutong" "storage_set" (func $set (param i32 i32 i32 i32)))
  (import "shutong" "output_set" (func $out (param i32 i32)))
  (memory (export "memory") 1)
  (data (i32.const 0) "migrated2")
  (func (export "migrate") (call $set (i32.const 0) (i32.const 8) (i32.const 8) (i32.const 1)))
  (func (export "version") (call $out (i32.const 8) (i32.const 1))))"#;

fn aborted(receipt: &Receipt) -> &str {
    match &receipt.status {
        ExecStatus::Aborted(message) => message,
        other => panic!("expected an abort, got {other:?}"),
    }
}

#[test]
fn code_goes_from_approval_to_upload_instantiation_call_migration_and_freezing() {
    let mut chain = Chain::new();
    let enterprise = Keypair::from_seed("enterprise");
    let code_hash = Vm::code_hash(shutong_types::Suite::Ed25519Blake3, CERT_VERIFY);
    let upload_gas = builder::upload_gas_limit(CERT_VERIFY.len());

    // Not approved yet: refused, nothing stored, the gas of the refusal charged.
    let refused = chain.run(&enterprise, builder::upload_code(CERT_VERIFY), upload_gas);
    assert!(aborted(&refused).contains("is not approved by governance"), "{refused:?}");
    assert!(refused.gas_used > 0);
    assert!(chain.storage.state_get(&keyspace::code(&code_hash)).is_none());

    // Only a governance admin approves.
    let not_admin = chain.run(&enterprise, builder::approve_code(&code_hash), 1_000_000);
    assert_eq!(aborted(&not_admin), "only a member of the governance committee may approve code");
    assert!(chain.run(&admin(), builder::approve_code(&code_hash), 1_000_000).status.is_success());

    // Too little gas for the code's size: out of gas, nothing stored.
    let poor = chain.run(&enterprise, builder::upload_code(CERT_VERIFY), 100_000);
    assert_eq!((poor.status.clone(), poor.gas_used), (ExecStatus::OutOfGas, 100_000));
    assert!(chain.storage.state_get(&keyspace::code(&code_hash)).is_none());

    let uploaded = chain.run(&enterprise, builder::upload_code(CERT_VERIFY), upload_gas);
    assert!(uploaded.status.is_success(), "{uploaded:?}");
    assert_eq!(uploaded.output, code_hash.0.to_vec());
    assert_eq!(uploaded.events[0].topic, "code.uploaded");
    let info = lifecycle::code_info(&*chain.storage, &code_hash).unwrap();
    assert_eq!(
        info,
        CodeInfo {
            code_hash: code_hash.0,
            uploader: enterprise.account().0,
            height: uploaded.height,
            size: CERT_VERIFY.len() as u32,
            methods: ["add_issuer", "get", "init", "issue", "revoke", "verify"].map(String::from).to_vec(),
        }
    );
    let again = chain.run(&enterprise, builder::upload_code(CERT_VERIFY), upload_gas);
    assert!(aborted(&again).contains("is already uploaded"));

    // Instantiation runs `init` (the instantiating account becomes the owner and issuer).
    let address = builder::instance_address(shutong_types::Suite::Ed25519Blake3, &enterprise.account(), "certs");
    let made = chain.run(&enterprise, builder::instantiate(&code_hash, "certs", &enterprise.account(), &[]), 5_000_000);
    assert!(made.status.is_success(), "{made:?}");
    assert_eq!(made.output, address.0.to_vec());
    assert_eq!(chain.instance(&address).unwrap().admin, enterprise.account());
    let label_taken =
        chain.run(&enterprise, builder::instantiate(&code_hash, "certs", &enterprise.account(), &[]), 5_000_000);
    assert!(aborted(&label_taken).contains("already used"));
    let bad_label =
        chain.run(&enterprise, builder::instantiate(&code_hash, "Certs!", &enterprise.account(), &[]), 5_000_000);
    assert!(aborted(&bad_label).contains("invalid label"));
    let no_code =
        chain.run(&enterprise, builder::instantiate(&Hash([3; 32]), "x", &enterprise.account(), &[]), 5_000_000);
    assert!(aborted(&no_code).contains("is not uploaded"));

    // The contract works.
    let digest = cert::digest(b"licence document");
    let holder = cert::digest(b"91310000MA1234567X");
    let issue = cert::issue(&address, "lic-1", "business-licence", holder, digest, u64::MAX);
    assert!(chain.run(&enterprise, issue, 5_000_000).status.is_success());
    let verified = chain.run(&Keypair::from_seed("bank"), cert::verify(&address, "lic-1", holder, digest), 5_000_000);
    let answer = cert::Answer::decode(&verified.output).unwrap();
    assert!(answer.valid, "{answer:?}");

    // Migration: the admin only, to uploaded code; the new code's `migrate` runs.
    let v2 = wat::parse_str(V2).unwrap();
    let v2_hash = Vm::code_hash(shutong_types::Suite::Ed25519Blake3, &v2);
    assert!(chain.run(&admin(), builder::approve_code(&v2_hash), 1_000_000).status.is_success());
    assert!(chain.run(&enterprise, builder::upload_code(&v2), builder::upload_gas_limit(v2.len())).status.is_success());
    let stranger = chain.run(&Keypair::from_seed("bank"), builder::migrate(&address, &v2_hash, &[]), 5_000_000);
    assert_eq!(aborted(&stranger), format!("only the admin of {address} may migrate it"));
    let same = chain.run(&enterprise, builder::migrate(&address, &code_hash, &[]), 5_000_000);
    assert!(aborted(&same).contains("already runs code"));

    // Freezing stops calls and migrations until unfrozen.
    assert!(chain.run(&enterprise, builder::freeze(&address), 1_000_000).status.is_success());
    let frozen_call = chain.run(&enterprise, cert::revoke(&address, "lic-1"), 5_000_000);
    assert_eq!(frozen_call.status, ExecStatus::Frozen);
    let frozen_migration = chain.run(&enterprise, builder::migrate(&address, &v2_hash, &[]), 5_000_000);
    assert!(aborted(&frozen_migration).contains("is frozen"));
    let twice = chain.run(&enterprise, builder::freeze(&address), 1_000_000);
    assert!(aborted(&twice).contains("already frozen"));
    assert!(chain.run(&enterprise, builder::unfreeze(&address), 1_000_000).status.is_success());

    let migrated = chain.run(&enterprise, builder::migrate(&address, &v2_hash, &[]), 5_000_000);
    assert!(migrated.status.is_success(), "{migrated:?}");
    assert_eq!(chain.instance(&address).unwrap().code_hash, v2_hash);
    let marker = keyspace::contract_storage(&address, b"migrated");
    assert_eq!(chain.storage.state_get(&marker), Some(b"2".to_vec()));
    let version = chain.run(&enterprise, Call { contract: address, method: "version".into(), args: vec![] }, 1_000_000);
    assert_eq!(version.output, b"2".to_vec());
    // The old state is still there, under the same address.
    assert!(chain.storage.state_get(&keyspace::contract_storage(&address, b"owner")).is_some());

    // An admin hands its contract to another account, which alone administers it now.
    let heir = Keypair::from_seed("heir");
    assert!(chain.run(&enterprise, builder::set_admin(&address, &heir.account()), 1_000_000).status.is_success());
    assert_eq!(chain.instance(&address).unwrap().admin, heir.account());
    let former = chain.run(&enterprise, builder::freeze(&address), 1_000_000);
    assert_eq!(aborted(&former), format!("only the admin of {address} may freeze it"));

    // The committee freezes a rogue enterprise contract: the decision takes effect
    // `lifecycle_delay_blocks` later, and what the committee froze its admin cannot unfreeze.
    let rogue = Action::Lifecycle { contract: address.0, op: LifecycleOp::Freeze };
    let carried = chain.run(&admin(), builder::propose(rogue), 1_000_000);
    assert!(carried.events.iter().any(|e| e.topic == "lifecycle.scheduled"), "{carried:?}");
    let due = carried.height + shutong_sdk::system_api::governance::LIFECYCLE_DELAY_BLOCKS_DEFAULT;
    while chain.tip.height + 1 < due {
        assert!(!chain.instance(&address).unwrap().frozen, "frozen at {} before {due}", chain.tip.height);
        chain.run(&heir, cert::revoke(&address, "lic-x"), 5_000_000);
    }
    let last = chain.run(&heir, cert::revoke(&address, "lic-x"), 5_000_000);
    assert_eq!(last.status, ExecStatus::Frozen, "the block at {due} runs after the freeze");
    let unfreeze = chain.run(&heir, builder::unfreeze(&address), 1_000_000);
    assert_eq!(
        aborted(&unfreeze),
        format!("{address} was frozen by the governance committee: only it may unfreeze it")
    );
    let outcome: LifecycleOutcome = {
        let id = u64::decode(&carried.output).unwrap();
        let read = chain.run(&heir, shutong_sdk::reads::lifecycle_outcome(id).call(), 1_000_000);
        LifecycleOutcome::decode(&read.output).unwrap()
    };
    assert_eq!(outcome, LifecycleOutcome { height: due, done: true, refused: None });
}

/// The system contracts are administered by the governance contract: the committee's own
/// key, signing a lifecycle transaction, cannot freeze, unfreeze, migrate or hand any of them
/// over (the same refusal as a stranger's); a carried migration of a system contract runs
/// its `migrate` hook, and one the lifecycle refuses is recorded as refused, changing nothing.
#[test]
fn only_a_carried_decision_touches_a_system_contract() {
    let mut chain = Chain::new();
    let key = admin();
    for contract in [builder::registry(), builder::governance(), builder::catalog(), builder::authz(), builder::audit()]
    {
        let governed = format!("{contract} is administered by the governance committee: only a carried proposal may");
        for (call, action) in [
            (builder::freeze(&contract), "freeze"),
            (builder::unfreeze(&contract), "unfreeze"),
            (builder::migrate(&contract, &Vm::code_hash(shutong_types::Suite::Ed25519Blake3, b"x"), &[]), "migrate"),
            (builder::set_admin(&contract, &key.account()), "hand over"),
        ] {
            let refused = chain.run(&key, call, 1_000_000);
            assert_eq!(aborted(&refused), format!("{governed} {action} it"), "{contract}");
        }
    }
    // A carried migration to code that was never uploaded is refused when it comes due, and
    // the refusal is recorded under the proposal.
    let migrate = Action::Lifecycle {
        contract: builder::audit().0,
        op: LifecycleOp::Migrate {
            code_hash: Vm::code_hash(shutong_types::Suite::Ed25519Blake3, b"never uploaded").0,
            args: Vec::new(),
        },
    };
    let carried = chain.run(&key, builder::propose(migrate), 1_000_000);
    let id = u64::decode(&carried.output).unwrap();
    let before = chain.instance(&builder::audit()).unwrap();
    for _ in 0..shutong_sdk::system_api::governance::LIFECYCLE_DELAY_BLOCKS_DEFAULT {
        chain.run(&key, shutong_sdk::reads::committee().call(), 1_000_000);
    }
    let read = chain.run(&key, shutong_sdk::reads::lifecycle_outcome(id).call(), 1_000_000);
    let outcome = LifecycleOutcome::decode(&read.output).unwrap();
    assert!(outcome.done);
    assert!(outcome.refused.as_deref().is_some_and(|r| r.contains("is not uploaded")), "{outcome:?}");
    assert_eq!(chain.instance(&builder::audit()).unwrap(), before, "a refused decision changes nothing");
}

#[test]
fn invalid_code_is_refused_at_upload_with_the_reason() {
    let mut chain = Chain::new();
    let uploader = Keypair::from_seed("uploader");
    // A module that needs SIMD, which the VM refuses.
    let simd = wat::parse_str(r#"(module (func (export "m") (drop (v128.const i64x2 0 0))))"#).unwrap();
    let garbage = b"\0asm\x01\0\0\0garbage".to_vec();
    for code in [simd, garbage] {
        let hash = Vm::code_hash(shutong_types::Suite::Ed25519Blake3, &code);
        assert!(chain.run(&admin(), builder::approve_code(&hash), 1_000_000).status.is_success());
        let receipt = chain.run(&uploader, builder::upload_code(&code), builder::upload_gas_limit(code.len()));
        let message = aborted(&receipt);
        assert!(message.starts_with("code refused:"), "{message}");
        assert!(chain.storage.state_get(&keyspace::code(&hash)).is_none());
        assert!(lifecycle::code_info(&*chain.storage, &hash).is_none());
    }
}

#[test]
fn a_failing_init_leaves_no_instance() {
    let mut chain = Chain::new();
    let code = wat::parse_str(
        r#"(module (import "shutong" "abort" (func $abort (param i32 i32)))
           (memory (export "memory") 1) (data (i32.const 0) "no")
           (func (export "init") (call $abort (i32.const 0) (i32.const 2))))"#,
    )
    .unwrap();
    let hash = Vm::code_hash(shutong_types::Suite::Ed25519Blake3, &code);
    let creator = Keypair::from_seed("creator");
    chain.run(&admin(), builder::approve_code(&hash), 1_000_000);
    assert!(
        chain.run(&creator, builder::upload_code(&code), builder::upload_gas_limit(code.len())).status.is_success()
    );
    let receipt = chain.run(&creator, builder::instantiate(&hash, "doomed", &creator.account(), &[]), 5_000_000);
    assert_eq!(aborted(&receipt), "init failed: no");
    let address = builder::instance_address(shutong_types::Suite::Ed25519Blake3, &creator.account(), "doomed");
    assert!(chain.instance(&address).is_none());
    assert!(lifecycle::contract_info(&*chain.storage, &address).is_none());
}

/// Hostile contracts deployed on a chain with the open upload policy, run on two independent
/// nodes: each ends in a failure receipt (or, for NaN-producing code, the canonical NaN),
/// both nodes agree on every receipt and state root, and an ordinary transaction after them
/// still succeeds.
#[test]
fn hostile_contracts_fail_cleanly_and_both_nodes_go_on_in_agreement() {
    let hostile: [(&str, &str, &str); 6] = [
        ("loop", "spin", r#"(module (memory (export "memory") 1) (func (export "spin") (loop (br 0))))"#),
        (
            "bomb",
            "grow",
            r#"(module (memory (export "memory") 1) (func (export "grow")
                (loop (br_if 0 (i32.ne (memory.grow (i32.const 16)) (i32.const -1)))) unreachable))"#,
        ),
        (
            "recursion",
            "down",
            r#"(module (memory (export "memory") 1) (func $d (call $d)) (func (export "down") (call $d)))"#,
        ),
        (
            "pointers",
            "bad",
            r#"(module (import "shutong" "storage_set" (func $s (param i32 i32 i32 i32)))
                (memory (export "memory") 1) (func (export "bad") (call $s (i32.const -8) (i32.const 64) (i32.const 0) (i32.const 1))))"#,
        ),
        (
            "scan",
            "all",
            r#"(module (import "shutong" "storage_scan" (func $scan (param i32 i32 i32 i32 i32) (result i32)))
                (memory (export "memory") 1)
                (func (export "all") (loop (drop (call $scan (i32.const 0) (i32.const 0) (i32.const 0) (i32.const -1) (i32.const 256))) (br 0))))"#,
        ),
        (
            "nan",
            "nan",
            r#"(module (import "shutong" "output_set" (func $out (param i32 i32))) (memory (export "memory") 1)
                (global $z (mut f64) (f64.const 0))
                (func (export "nan") (f64.store (i32.const 0) (f64.div (global.get $z) (global.get $z))) (call $out (i32.const 0) (i32.const 8))))"#,
        ),
    ];
    let mut nodes = [Chain::with_policy("open"), Chain::with_policy("open")];
    let attacker = Keypair::from_seed("attacker");
    let mut run_both = |call: Call, gas: u64| -> Receipt {
        let receipts: Vec<Receipt> = nodes.iter_mut().map(|node| node.run(&attacker, call.clone(), gas)).collect();
        assert_eq!(receipts[0], receipts[1], "the two nodes disagree on a receipt");
        assert_eq!(nodes[0].tip.state_root, nodes[1].tip.state_root, "the two nodes disagree on the state");
        receipts.into_iter().next().unwrap()
    };
    for (label, method, text) in hostile {
        let code = wat::parse_str(text).unwrap();
        let hash = Vm::code_hash(shutong_types::Suite::Ed25519Blake3, &code);
        assert!(run_both(builder::upload_code(&code), builder::upload_gas_limit(code.len())).status.is_success());
        let made = run_both(builder::instantiate(&hash, label, &attacker.account(), &[]), 1_000_000);
        assert!(made.status.is_success(), "{label}: {made:?}");
        let address = builder::instance_address(shutong_types::Suite::Ed25519Blake3, &attacker.account(), label);
        let receipt = run_both(Call { contract: address, method: method.into(), args: vec![] }, 20_000_000);
        match label {
            "loop" | "scan" => assert_eq!((receipt.status, receipt.gas_used), (ExecStatus::OutOfGas, 20_000_000)),
            "nan" => assert_eq!(receipt.output, 0x7ff8_0000_0000_0000u64.to_le_bytes().to_vec()),
            "recursion" => {
                assert!(matches!(&receipt.status, ExecStatus::Trapped(m) if m.contains("call stack above the limit")))
            }
            "pointers" => {
                assert!(matches!(&receipt.status, ExecStatus::Trapped(m) if m.contains("outside guest memory")))
            }
            _ => assert!(matches!(receipt.status, ExecStatus::Trapped(_)), "{label}: {receipt:?}"),
        }
    }
    // Code beyond the size limit cannot be uploaded at all.
    let huge = vec![0u8; shutong_types::limits::CODE_BYTES_MAX as usize + 1];
    let refused = run_both(builder::upload_code(&huge), builder::upload_gas_limit(huge.len()));
    assert!(aborted(&refused).contains("invalid arguments"), "{refused:?}");
    // And the chain goes on: an ordinary registration succeeds on both.
    let register =
        builder::register_org("after-the-storm", "Still Here", shutong_sdk::system_api::registry::OrgKind::Enterprise);
    assert!(run_both(register, 1_000_000).status.is_success());
}
