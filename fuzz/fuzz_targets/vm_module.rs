//! Contract code is adversarial: whatever bytes are uploaded, validation (parsing, the
//! feature and import checks, the gas and stack instrumentation) must answer with a reason,
//! never a panic, and code it accepts must run to a receipt status with a bounded gas.
#![no_main]

use libfuzzer_sys::fuzz_target;
use shutong_types::keyspace::{self, Instance};
use shutong_types::{AccountId, Address, Encode};
use shutong_vm::state::{MemoryState, Overlay};
use shutong_vm::{CallContext, Vm, VmConfig, VmError};
use std::sync::{Arc, OnceLock};

const CONTRACT: Address = Address([7; 32]);

fn vm() -> &'static Vm {
    static VM: OnceLock<Vm> = OnceLock::new();
    // A small cache: every accepted input is a new module.
    VM.get_or_init(|| Vm::new(VmConfig { module_cache_entries_max: 4, ..VmConfig::default() }).expect("the VM starts"))
}

fuzz_target!(|data: &[u8]| {
    let vm = vm();
    let Ok(methods) = vm.validate(data) else { return };
    let code_hash = Vm::code_hash(shutong_types::Suite::Ed25519Blake3, data);
    let mut state = MemoryState::default();
    state.0.insert(keyspace::code(&code_hash), data.to_vec());
    state.0.insert(
        keyspace::instance(&CONTRACT),
        Instance { code_hash, admin: AccountId([9; 32]), frozen: false }.encode(),
    );
    let state = Arc::new(state);
    let ctx = CallContext { origin: AccountId([9; 32]), contract: CONTRACT, height: 3, time_ms: 1_000 };
    for method in methods.iter().take(4) {
        match vm.call(ctx.clone(), method, Vec::new(), 2_000_000, Overlay::new(state.clone())) {
            Ok(outcome) => {
                assert!(outcome.gas_used <= 2_000_000);
                if !outcome.status.is_success() {
                    assert!(outcome.block.writes().is_empty());
                }
            }
            Err(VmError::Watchdog(_)) => {}
            Err(err) => panic!("accepted code made a node-level error: {err}"),
        }
    }
});
