//! The VM's host ABI under a hostile contract: every host function called with pointers and
//! lengths the fuzzer picks (in bounds, out of bounds, straddling the end of memory, huge),
//! in any order, with nested calls into itself. Each call must end in a receipt status, never
//! a panic or a node-level error; a failed call must write nothing; and two VMs must agree on
//! status, gas, output, events and writes (a hostile contract cannot split the validators).
#![no_main]

use libfuzzer_sys::fuzz_target;
use shutong_types::keyspace::{self, Instance};
use shutong_types::{AccountId, Address, Encode};
use shutong_vm::state::{MemoryState, Overlay};
use shutong_vm::{CallContext, Vm, VmConfig, VmError};
use std::sync::{Arc, OnceLock};

const CONTRACT: Address = Address([7; 32]);
const RECORD: usize = 29;
const GAS: u64 = 20_000_000;

struct Fixture {
    vms: [Vm; 2],
    state: Arc<MemoryState>,
}

fn fixture() -> &'static Fixture {
    static FIXTURE: OnceLock<Fixture> = OnceLock::new();
    FIXTURE.get_or_init(|| {
        let code = wat::parse_str(include_str!("host_abi.wat")).expect("the interpreter parses");
        let code_hash = Vm::code_hash(shutong_types::Suite::Ed25519Blake3, &code);
        let mut state = MemoryState::default();
        state.0.insert(keyspace::code(&code_hash), code);
        state.0.insert(
            keyspace::instance(&CONTRACT),
            Instance { code_hash, admin: AccountId([9; 32]), frozen: false }.encode(),
        );
        // Something for storage_get, storage_scan and storage_get_of to find.
        for i in 0u8..8 {
            state.0.insert(keyspace::contract_storage(&CONTRACT, &[b'k', i]), vec![i; 40]);
        }
        let vm = || Vm::new(VmConfig::default()).expect("the default VM starts");
        Fixture { vms: [vm(), vm()], state: Arc::new(state) }
    })
}

/// The fuzzer's bytes as interpreter records. Each argument's top two bits say how to read
/// the rest, so that in-bounds pointers and small lengths are as easy to reach as hostile ones:
/// as it is, a pointer into the 64 KiB memory, a length under 300, or a value close to the end
/// of memory.
fn records(data: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(data.len());
    for chunk in data.chunks_exact(RECORD) {
        out.push(chunk[0]);
        for arg in chunk[1..21].chunks_exact(4) {
            let raw = u32::from_le_bytes([arg[0], arg[1], arg[2], arg[3]]);
            let value = match raw >> 30 {
                0 => raw,
                1 => raw % 65_536,
                2 => raw % 300,
                _ => 65_536u32.wrapping_sub(raw % 64),
            };
            out.extend_from_slice(&value.to_le_bytes());
        }
        let gas = u64::from_le_bytes(chunk[21..29].try_into().expect("eight bytes"));
        out.extend_from_slice(&(gas % (2 * GAS)).to_le_bytes());
    }
    out
}

fuzz_target!(|data: &[u8]| {
    if data.len() > 64 * RECORD {
        return;
    }
    let fixture = fixture();
    let input = records(data);
    let ctx = CallContext { origin: AccountId([9; 32]), contract: CONTRACT, height: 3, time_ms: 1_000 };
    let mut outcomes = Vec::new();
    for vm in &fixture.vms {
        let block = Overlay::new(fixture.state.clone());
        match vm.call(ctx.clone(), "run", input.clone(), GAS, block) {
            Ok(outcome) => {
                if !outcome.status.is_success() {
                    assert!(outcome.block.writes().is_empty(), "a failed call wrote: {:?}", outcome.status);
                    assert!(outcome.events.is_empty() && outcome.output.is_empty());
                }
                assert!(outcome.gas_used <= GAS);
                outcomes.push((
                    outcome.status,
                    outcome.gas_used,
                    outcome.output,
                    outcome.events,
                    outcome.block.into_writes(),
                ));
            }
            // The wall-clock watchdog is a backstop for a slow machine (sanitizers make this
            // one slow), not a consensus rule; anything else is a bug.
            Err(VmError::Watchdog(_)) => return,
            Err(err) => panic!("a hostile call became a node-level error: {err}"),
        }
    }
    assert_eq!(outcomes[0], outcomes[1], "two VMs disagree on one call");
});
