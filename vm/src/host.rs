//! The host ABI: the functions a contract imports from the `shutong` module, and the running
//! of one contract frame. Each host function checks its pointers and lengths against guest
//! memory and the protocol maxima, and charges gas before it does any work. The reference is
//! `docs/host-abi.md`.
//!
//! Every contract frame runs in its own [`Store`]: a cross-contract call moves the
//! transaction's context (state layers, events, call stack) into a new store for the callee
//! and back when it returns. Each frame so holds exactly one pooled instance, released when
//! it returns, and a transaction never holds more than `CALL_DEPTH_MAX + 1` at once.

use crate::gas::Schedule;
use crate::state::TxState;
use crate::{CALL_DEPTH_MAX, Inner, VmError, instance_at, instrument, is_method};
use shutong_codec::{Decode, Encode, write as put};
use shutong_types::keyspace::{self, AuditLeaf};
use shutong_types::limits::{
    ARGS_BYTES_MAX, AUDIT_LEAF_BYTES_MAX, EVENT_DATA_BYTES_MAX, EVENT_TOPIC_BYTES_MAX, EVENTS_PER_RECEIPT_MAX,
    MESSAGE_BYTES_MAX, METHOD_BYTES_MAX, OUTPUT_BYTES_MAX,
};
use shutong_types::{AccountId, Address, Event, ExecStatus, PublicKey, Signature, Suite};
use std::sync::Arc;
use std::time::Instant;
use wasmtime::{Caller, Extern, Instance, Linker, Store, StoreLimits, StoreLimitsBuilder, Trap};

pub const MODULE: &str = "shutong";
pub const KEY_BYTES_MAX: u32 = 1024;
pub const VALUE_BYTES_MAX: u32 = 64 * 1024;
/// A public key in its canonical encoding: the suite byte and at most 33 key bytes.
pub const PUBLIC_KEY_BYTES_MAX: u32 = 34;
/// The most entries one `storage_scan` returns.
pub const SCAN_ENTRIES_MAX: u32 = 256;

/// What a cross-contract call returns to its caller when the callee did not succeed.
pub mod call_error {
    pub const ABORTED: i64 = -1;
    pub const OUT_OF_GAS: i64 = -2;
    pub const TRAPPED: i64 = -3;
    pub const UNKNOWN_CONTRACT: i64 = -4;
    pub const UNKNOWN_METHOD: i64 = -5;
    pub const FROZEN: i64 = -6;
    pub const REENTRANT: i64 = -7;
    pub const TOO_DEEP: i64 = -8;
}

/// Why a host call refused; the call traps and the transaction fails with this message.
#[derive(Debug, thiserror::Error)]
enum HostError {
    #[error("contract exports no memory")]
    NoMemory,
    #[error("{call}: {what} at {ptr}..{ptr}+{len} is outside guest memory of {size} bytes")]
    OutOfBounds { call: &'static str, what: &'static str, ptr: u32, len: u32, size: usize },
    #[error("{call}: {what} of {len} bytes is above the maximum {max}")]
    TooLong { call: &'static str, what: &'static str, len: u32, max: u32 },
    #[error("{0}: not utf-8")]
    NotUtf8(&'static str),
    #[error("emit_event: more than {0} events in one transaction")]
    TooManyEvents(u32),
    #[error("contract aborted")]
    Aborted,
    #[error("stopped by the host")]
    Fatal,
    #[error("{call} takes ed25519 keys, but this chain runs {suite}: use account_of_key and verify_signature")]
    Ed25519Only { call: &'static str, suite: Suite },
}

/// What every frame of one transaction shares; it moves from store to store as contracts
/// call each other.
pub(crate) struct TxContext {
    pub origin: AccountId,
    pub height: u64,
    pub time_ms: u64,
    pub deadline: Instant,
    pub state: TxState,
    pub events: Vec<Event>,
    /// The contracts on the call stack, outermost first.
    pub stack: Vec<Address>,
    /// Set when a call hit a condition that must not become a receipt.
    pub fatal: Option<VmError>,
}

/// The state one frame's store carries.
pub(crate) struct HostState {
    /// `None` only while a nested call has it.
    tx: Option<TxContext>,
    /// The immediate caller: the origin account for the top frame, else the calling
    /// contract's address.
    caller: [u8; 32],
    contract: Address,
    input: Vec<u8>,
    output: Vec<u8>,
    result: Vec<u8>,
    abort: Option<String>,
    limits: StoreLimits,
    schedule: &'static Schedule,
    vm: Arc<Inner>,
}

impl HostState {
    fn tx(&self) -> &TxContext {
        self.tx.as_ref().expect("the frame that runs holds the transaction")
    }

    fn tx_mut(&mut self) -> &mut TxContext {
        self.tx.as_mut().expect("the frame that runs holds the transaction")
    }
}

/// What one frame produced.
pub(crate) struct FrameOutcome {
    pub tx: TxContext,
    pub status: ExecStatus,
    pub output: Vec<u8>,
    pub fuel_left: u64,
}

/// Runs `method` of `contract` with `fuel`, in a new store that holds `tx` for the duration.
/// The frame's writes stay in the innermost state layer; the caller decides to keep them.
pub(crate) fn run_frame(
    vm: &Arc<Inner>,
    mut tx: TxContext,
    caller: [u8; 32],
    contract: Address,
    method: &str,
    input: Vec<u8>,
    fuel: u64,
) -> FrameOutcome {
    let early = |tx: TxContext, status: ExecStatus| FrameOutcome { tx, status, output: Vec::new(), fuel_left: fuel };
    let Some(instance) = instance_at(&tx.state, &contract) else { return early(tx, ExecStatus::UnknownContract) };
    if instance.frozen {
        return early(tx, ExecStatus::Frozen);
    }
    let code_hash = instance.code_hash;
    let prepared = {
        let state = &tx.state;
        vm.prepared(code_hash, &|| state.get(&keyspace::code(&code_hash)))
    };
    let pre = match prepared {
        Ok(Some(pre)) => pre,
        Ok(None) => return early(tx, ExecStatus::Trapped(format!("the code {code_hash} of {contract} is missing"))),
        Err(err) => return early(tx, ExecStatus::Trapped(err.to_string())),
    };
    if !is_method(pre.module(), method) {
        return early(tx, ExecStatus::UnknownMethod(method.to_string()));
    }
    let ticks = tx.deadline.saturating_duration_since(Instant::now()).as_millis() / crate::WATCHDOG_TICK.as_millis();
    tx.stack.push(contract);
    let host = HostState {
        tx: Some(tx),
        caller,
        contract,
        input,
        output: Vec::new(),
        result: Vec::new(),
        abort: None,
        limits: StoreLimitsBuilder::new()
            .memory_size(vm.cfg.memory_bytes_max)
            .table_elements(vm.cfg.table_elements_max)
            .instances(1)
            .memories(1)
            .tables(1)
            .build(),
        schedule: vm.schedule,
        vm: Arc::clone(vm),
    };
    let mut store = Store::new(&vm.engine, host);
    store.limiter(|s| &mut s.limits);
    store.set_epoch_deadline(ticks.max(1) as u64);
    store.set_fuel(fuel).expect("fuel is enabled");
    let started = Instant::now();
    let instantiated = pre.instantiate(&mut store);
    vm.stats.instantiated(started.elapsed());
    let status = match instantiated {
        Ok(instance) => match instance.get_typed_func::<(), ()>(&mut store, method) {
            Ok(func) => match func.call(&mut store, ()) {
                Ok(()) => ExecStatus::Success,
                Err(err) => status_of(&mut store, Some(instance), err),
            },
            Err(_) => ExecStatus::UnknownMethod(method.to_string()),
        },
        Err(err) => status_of(&mut store, None, err),
    };
    vm.stats.called(started.elapsed());
    let fuel_left = store.get_fuel().unwrap_or(0);
    let host = store.into_data();
    let mut tx = host.tx.expect("a finished frame holds the transaction");
    tx.stack.pop();
    let output = if status.is_success() { host.output } else { Vec::new() };
    FrameOutcome { tx, status, output, fuel_left }
}

/// Maps a failed call to its receipt status, or records a fatal condition.
fn status_of(store: &mut Store<HostState>, instance: Option<Instance>, err: wasmtime::Error) -> ExecStatus {
    if let Some(message) = store.data_mut().abort.take() {
        return ExecStatus::Aborted(message);
    }
    if store.data().tx().fatal.is_some() {
        return ExecStatus::Trapped("stopped by the host".into());
    }
    match err.downcast_ref::<Trap>() {
        Some(Trap::OutOfFuel) => return ExecStatus::OutOfGas,
        Some(Trap::Interrupt) => {
            let watchdog = store.data().vm.cfg.watchdog;
            store.data_mut().tx_mut().fatal = Some(VmError::Watchdog(watchdog));
            return ExecStatus::Trapped("stopped by the watchdog".into());
        }
        Some(Trap::UnreachableCodeReached) => {
            let depth = instance
                .and_then(|i| i.get_global(&mut *store, instrument::DEPTH_EXPORT))
                .and_then(|g| g.get(&mut *store).i32())
                .map_or(0, |d| d as u32);
            if depth > instrument::STACK_SLOTS_MAX {
                return ExecStatus::Trapped(format!(
                    "call stack above the limit of {} slots (deterministic stack bound)",
                    instrument::STACK_SLOTS_MAX
                ));
            }
        }
        _ => {}
    }
    if err.downcast_ref::<wasmtime::PoolConcurrencyLimitError>().is_some() {
        store.data_mut().tx_mut().fatal = Some(VmError::Busy);
        return ExecStatus::Trapped("no pooled instance free".into());
    }
    let message = format!("{err:#}");
    let mut end = message.len().min(MESSAGE_BYTES_MAX as usize / 2);
    while !message.is_char_boundary(end) {
        end -= 1;
    }
    ExecStatus::Trapped(message[..end].to_string())
}

type HostCaller<'a> = Caller<'a, HostState>;

/// Takes `amount` gas, or fails with out-of-fuel leaving none.
fn charge(caller: &mut HostCaller<'_>, cost: impl FnOnce(&Schedule) -> u64) -> wasmtime::Result<()> {
    let amount = cost(caller.data().schedule);
    let fuel = caller.get_fuel()?;
    if fuel < amount {
        caller.set_fuel(0)?;
        return Err(Trap::OutOfFuel.into());
    }
    caller.set_fuel(fuel - amount)?;
    Ok(())
}

fn check_len(call: &'static str, what: &'static str, len: u32, max: u32) -> wasmtime::Result<()> {
    if len > max {
        return Err(HostError::TooLong { call, what, len, max }.into());
    }
    Ok(())
}

fn read(
    caller: &mut HostCaller<'_>,
    call: &'static str,
    what: &'static str,
    ptr: u32,
    len: u32,
) -> wasmtime::Result<Vec<u8>> {
    let memory = caller.get_export("memory").and_then(Extern::into_memory).ok_or(HostError::NoMemory)?;
    let data = memory.data(&*caller);
    let start = ptr as usize;
    let end = start.checked_add(len as usize);
    match end.and_then(|end| data.get(start..end)) {
        Some(bytes) => Ok(bytes.to_vec()),
        None => Err(HostError::OutOfBounds { call, what, ptr, len, size: data.len() }.into()),
    }
}

fn read_array<const N: usize>(
    caller: &mut HostCaller<'_>,
    call: &'static str,
    what: &'static str,
    ptr: u32,
) -> wasmtime::Result<[u8; N]> {
    let bytes = read(caller, call, what, ptr, N as u32)?;
    Ok(bytes.try_into().expect("read returns exactly N bytes"))
}

fn write(
    caller: &mut HostCaller<'_>,
    call: &'static str,
    what: &'static str,
    ptr: u32,
    bytes: &[u8],
) -> wasmtime::Result<()> {
    let memory = caller.get_export("memory").and_then(Extern::into_memory).ok_or(HostError::NoMemory)?;
    let data = memory.data_mut(&mut *caller);
    let size = data.len();
    let start = ptr as usize;
    let len = bytes.len();
    match start.checked_add(len).and_then(|end| data.get_mut(start..end)) {
        Some(target) => {
            target.copy_from_slice(bytes);
            Ok(())
        }
        None => Err(HostError::OutOfBounds { call, what, ptr, len: len as u32, size }.into()),
    }
}

fn per_byte(s: &Schedule, len: usize) -> u64 {
    s.per_byte * len as u64
}

/// Registers every host function with `linker`.
pub(crate) fn link(linker: &mut Linker<HostState>) -> wasmtime::Result<()> {
    link_io(linker)?;
    link_storage(linker)?;
    link_context(linker)?;
    link_effects(linker)?;
    link_crypto(linker)?;
    link_call(linker)?;
    Ok(())
}

/// Input, output, the result buffer and abort.
fn link_io(linker: &mut Linker<HostState>) -> wasmtime::Result<()> {
    linker.func_wrap(MODULE, "input_len", |mut caller: HostCaller<'_>| -> wasmtime::Result<u32> {
        charge(&mut caller, |s| s.host_call_base)?;
        Ok(caller.data().input.len() as u32)
    })?;
    linker.func_wrap(MODULE, "input_read", |mut caller: HostCaller<'_>, ptr: u32| -> wasmtime::Result<()> {
        let input = std::mem::take(&mut caller.data_mut().input);
        charge(&mut caller, |s| s.host_call_base + per_byte(s, input.len()))?;
        let result = write(&mut caller, "input_read", "buffer", ptr, &input);
        caller.data_mut().input = input;
        result
    })?;
    linker.func_wrap(
        MODULE,
        "output_set",
        |mut caller: HostCaller<'_>, ptr: u32, len: u32| -> wasmtime::Result<()> {
            check_len("output_set", "output", len, OUTPUT_BYTES_MAX)?;
            charge(&mut caller, |s| s.host_call_base + s.persisted_per_byte * u64::from(len))?;
            let output = read(&mut caller, "output_set", "output", ptr, len)?;
            caller.data_mut().output = output;
            Ok(())
        },
    )?;
    linker.func_wrap(MODULE, "result_len", |mut caller: HostCaller<'_>| -> wasmtime::Result<u32> {
        charge(&mut caller, |s| s.host_call_base)?;
        Ok(caller.data().result.len() as u32)
    })?;
    linker.func_wrap(MODULE, "result_read", |mut caller: HostCaller<'_>, ptr: u32| -> wasmtime::Result<()> {
        let result = std::mem::take(&mut caller.data_mut().result);
        charge(&mut caller, |s| s.host_call_base + per_byte(s, result.len()))?;
        let outcome = write(&mut caller, "result_read", "buffer", ptr, &result);
        caller.data_mut().result = result;
        outcome
    })?;
    linker.func_wrap(MODULE, "abort", |mut caller: HostCaller<'_>, ptr: u32, len: u32| -> wasmtime::Result<()> {
        let len = len.min(MESSAGE_BYTES_MAX);
        charge(&mut caller, |s| s.host_call_base + per_byte(s, len as usize))?;
        let message = read(&mut caller, "abort", "message", ptr, len)?;
        caller.data_mut().abort = Some(String::from_utf8_lossy(&message).into_owned());
        Err(HostError::Aborted.into())
    })?;
    Ok(())
}

/// Reads `full_key` into the result buffer, charging for the value's bytes: its length, or
/// −1 if absent.
fn read_into_result(caller: &mut HostCaller<'_>, full_key: &[u8]) -> wasmtime::Result<i64> {
    match caller.data().tx().state.get(full_key) {
        Some(value) => {
            charge(caller, |s| per_byte(s, value.len()))?;
            let len = value.len() as i64;
            caller.data_mut().result = value;
            Ok(len)
        }
        None => Ok(-1),
    }
}

/// The contract's own storage: get, set, remove and bounded prefix scans.
fn link_storage(linker: &mut Linker<HostState>) -> wasmtime::Result<()> {
    linker.func_wrap(
        MODULE,
        "storage_get",
        |mut caller: HostCaller<'_>, ptr: u32, len: u32| -> wasmtime::Result<i64> {
            check_len("storage_get", "key", len, KEY_BYTES_MAX)?;
            charge(&mut caller, |s| s.host_call_base + s.storage_read_base + per_byte(s, len as usize))?;
            let key = read(&mut caller, "storage_get", "key", ptr, len)?;
            let full_key = keyspace::contract_storage(&caller.data().contract, &key);
            read_into_result(&mut caller, &full_key)
        },
    )?;
    // Another contract's storage, read-only: what a call to a getter of it would read,
    // without starting that contract (all state is public and provable anyway).
    linker.func_wrap(
        MODULE,
        "storage_get_of",
        |mut caller: HostCaller<'_>, addr_ptr: u32, ptr: u32, len: u32| -> wasmtime::Result<i64> {
            check_len("storage_get_of", "key", len, KEY_BYTES_MAX)?;
            charge(&mut caller, |s| s.host_call_base + s.storage_read_base + per_byte(s, 32 + len as usize))?;
            let owner = Address(read_array::<32>(&mut caller, "storage_get_of", "address", addr_ptr)?);
            let key = read(&mut caller, "storage_get_of", "key", ptr, len)?;
            read_into_result(&mut caller, &keyspace::contract_storage(&owner, &key))
        },
    )?;
    linker.func_wrap(
        MODULE,
        "storage_set",
        |mut caller: HostCaller<'_>,
         key_ptr: u32,
         key_len: u32,
         value_ptr: u32,
         value_len: u32|
         -> wasmtime::Result<()> {
            check_len("storage_set", "key", key_len, KEY_BYTES_MAX)?;
            check_len("storage_set", "value", value_len, VALUE_BYTES_MAX)?;
            let bytes = u64::from(key_len) + u64::from(value_len);
            charge(&mut caller, |s| s.host_call_base + s.storage_write_base + s.persisted_per_byte * bytes)?;
            let key = read(&mut caller, "storage_set", "key", key_ptr, key_len)?;
            let value = read(&mut caller, "storage_set", "value", value_ptr, value_len)?;
            let full_key = keyspace::contract_storage(&caller.data().contract, &key);
            caller.data_mut().tx_mut().state.set(full_key, Some(value));
            Ok(())
        },
    )?;
    linker.func_wrap(
        MODULE,
        "storage_remove",
        |mut caller: HostCaller<'_>, ptr: u32, len: u32| -> wasmtime::Result<()> {
            check_len("storage_remove", "key", len, KEY_BYTES_MAX)?;
            charge(&mut caller, |s| s.host_call_base + s.storage_write_base + s.persisted_per_byte * u64::from(len))?;
            let key = read(&mut caller, "storage_remove", "key", ptr, len)?;
            let full_key = keyspace::contract_storage(&caller.data().contract, &key);
            caller.data_mut().tx_mut().state.set(full_key, None);
            Ok(())
        },
    )?;
    // Up to `limit` entries (at most SCAN_ENTRIES_MAX) whose keys start with the prefix and
    // sort after `after` (none if `after_len` is u32::MAX). The entries wait in the result
    // buffer, encoded as a codec list of (key, value) byte strings with the keys relative to
    // the contract; returns how many there are.
    linker.func_wrap(
        MODULE,
        "storage_scan",
        |mut caller: HostCaller<'_>,
         prefix_ptr: u32,
         prefix_len: u32,
         after_ptr: u32,
         after_len: u32,
         limit: u32|
         -> wasmtime::Result<u32> {
            check_len("storage_scan", "prefix", prefix_len, KEY_BYTES_MAX)?;
            let has_after = after_len != u32::MAX;
            if has_after {
                check_len("storage_scan", "after", after_len, KEY_BYTES_MAX)?;
            }
            check_len("storage_scan", "limit", limit, SCAN_ENTRIES_MAX)?;
            let key_bytes = prefix_len as usize + if has_after { after_len as usize } else { 0 };
            // The whole page is paid for up front, as if every entry were there.
            charge(&mut caller, |s| {
                s.host_call_base + s.iter_base + s.iter_per_entry * u64::from(limit) + per_byte(s, key_bytes)
            })?;
            let prefix = read(&mut caller, "storage_scan", "prefix", prefix_ptr, prefix_len)?;
            let after =
                if has_after { Some(read(&mut caller, "storage_scan", "after", after_ptr, after_len)?) } else { None };
            let contract = caller.data().contract;
            let full_prefix = keyspace::contract_storage(&contract, &prefix);
            let full_after = after.map(|a| keyspace::contract_storage(&contract, &a));
            let entries = caller.data().tx().state.scan(&full_prefix, full_after.as_deref(), limit as usize);
            let strip = keyspace::contract_storage(&contract, &[]).len();
            let bytes: usize = entries.iter().map(|(k, v)| k.len() - strip + v.len()).sum();
            charge(&mut caller, |s| per_byte(s, bytes))?;
            let mut result = Vec::with_capacity(bytes + 8 * entries.len() + 4);
            put::u32(&mut result, entries.len() as u32);
            for (key, value) in &entries {
                put::bytes(&mut result, &key[strip..]);
                put::bytes(&mut result, value);
            }
            caller.data_mut().result = result;
            Ok(entries.len() as u32)
        },
    )?;
    Ok(())
}

/// Who and where: caller, origin, own address, block height and consensus time.
fn link_context(linker: &mut Linker<HostState>) -> wasmtime::Result<()> {
    linker.func_wrap(MODULE, "caller", |mut caller: HostCaller<'_>, ptr: u32| -> wasmtime::Result<()> {
        charge(&mut caller, |s| s.host_call_base + per_byte(s, 32))?;
        let who = caller.data().caller;
        write(&mut caller, "caller", "buffer", ptr, &who)
    })?;
    linker.func_wrap(MODULE, "origin", |mut caller: HostCaller<'_>, ptr: u32| -> wasmtime::Result<()> {
        charge(&mut caller, |s| s.host_call_base + per_byte(s, 32))?;
        let who = caller.data().tx().origin;
        write(&mut caller, "origin", "buffer", ptr, &who.0)
    })?;
    linker.func_wrap(MODULE, "self_address", |mut caller: HostCaller<'_>, ptr: u32| -> wasmtime::Result<()> {
        charge(&mut caller, |s| s.host_call_base + per_byte(s, 32))?;
        let me = caller.data().contract;
        write(&mut caller, "self_address", "buffer", ptr, &me.0)
    })?;
    linker.func_wrap(MODULE, "block_height", |mut caller: HostCaller<'_>| -> wasmtime::Result<u64> {
        charge(&mut caller, |s| s.host_call_base)?;
        Ok(caller.data().tx().height)
    })?;
    linker.func_wrap(MODULE, "block_time_ms", |mut caller: HostCaller<'_>| -> wasmtime::Result<u64> {
        charge(&mut caller, |s| s.host_call_base)?;
        Ok(caller.data().tx().time_ms)
    })?;
    Ok(())
}

/// Effects beyond storage: events and audit-log leaves.
fn link_effects(linker: &mut Linker<HostState>) -> wasmtime::Result<()> {
    linker.func_wrap(
        MODULE,
        "emit_event",
        |mut caller: HostCaller<'_>,
         topic_ptr: u32,
         topic_len: u32,
         data_ptr: u32,
         data_len: u32|
         -> wasmtime::Result<()> {
            check_len("emit_event", "topic", topic_len, EVENT_TOPIC_BYTES_MAX)?;
            check_len("emit_event", "data", data_len, EVENT_DATA_BYTES_MAX)?;
            if caller.data().tx().events.len() >= EVENTS_PER_RECEIPT_MAX as usize {
                return Err(HostError::TooManyEvents(EVENTS_PER_RECEIPT_MAX).into());
            }
            let bytes = u64::from(topic_len) + u64::from(data_len);
            charge(&mut caller, |s| s.host_call_base + s.event_base + s.persisted_per_byte * bytes)?;
            let topic = read(&mut caller, "emit_event", "topic", topic_ptr, topic_len)?;
            let topic = String::from_utf8(topic).map_err(|_| HostError::NotUtf8("emit_event: topic"))?;
            let data = read(&mut caller, "emit_event", "data", data_ptr, data_len)?;
            let contract = caller.data().contract;
            caller.data_mut().tx_mut().events.push(Event { contract, topic, data });
            Ok(())
        },
    )?;
    // Appends a leaf to the chain's audit log and returns its sequence number. The leaf is
    // state (keyspace::audit_leaf), so it is rolled back with the call that wrote it.
    linker.func_wrap(
        MODULE,
        "audit_append",
        |mut caller: HostCaller<'_>, ptr: u32, len: u32| -> wasmtime::Result<u64> {
            check_len("audit_append", "leaf", len, AUDIT_LEAF_BYTES_MAX)?;
            charge(&mut caller, |s| s.host_call_base + s.audit_append_base + s.persisted_per_byte * u64::from(len))?;
            let data = read(&mut caller, "audit_append", "leaf", ptr, len)?;
            let contract = caller.data().contract;
            let tx = caller.data_mut().tx_mut();
            let size_key = keyspace::audit_log_size();
            let index = tx.state.get(&size_key).and_then(|b| u64::decode(&b).ok()).unwrap_or(0);
            let leaf = AuditLeaf { contract, height: tx.height, time_ms: tx.time_ms, data };
            tx.state.set(keyspace::audit_leaf(index), Some(leaf.encode()));
            tx.state.set(size_key, Some((index + 1).encode()));
            Ok(index)
        },
    )?;
    Ok(())
}

/// Hashing and signatures: the suite-following calls (`hash`, `account_of_key`,
/// `verify_signature`) that serve chains of both suites, and the ed25519 and BLAKE3 calls
/// of the first ABI.
fn link_crypto(linker: &mut Linker<HostState>) -> wasmtime::Result<()> {
    // Writes the 32-byte hash of the input in the chain's suite (BLAKE3 or SM3, unkeyed) to
    // `out_ptr`: the call that lets one contract artifact serve chains of both suites.
    linker.func_wrap(
        MODULE,
        "hash",
        |mut caller: HostCaller<'_>, ptr: u32, len: u32, out_ptr: u32| -> wasmtime::Result<()> {
            check_len("hash", "input", len, VALUE_BYTES_MAX)?;
            let suite = caller.data().vm.cfg.suite;
            charge(&mut caller, |s| s.host_call_base + s.hash_cost(suite, len as usize))?;
            let input = read(&mut caller, "hash", "input", ptr, len)?;
            let hash = match suite {
                Suite::Ed25519Blake3 => *blake3::hash(&input).as_bytes(),
                Suite::Sm2Sm3 => shutong_types::sm::sm3(&input),
            };
            write(&mut caller, "hash", "output", out_ptr, &hash)
        },
    )?;
    // 1 and the 32-byte account id at `out_ptr` for the public key in its canonical encoding
    // (suite byte, then the key) at `key_ptr`; 0 (and nothing written) if the bytes are no
    // key of this chain's suite.
    linker.func_wrap(
        MODULE,
        "account_of_key",
        |mut caller: HostCaller<'_>, key_ptr: u32, key_len: u32, out_ptr: u32| -> wasmtime::Result<u32> {
            check_len("account_of_key", "key", key_len, PUBLIC_KEY_BYTES_MAX)?;
            let suite = caller.data().vm.cfg.suite;
            charge(&mut caller, |s| s.host_call_base + s.hash_cost(suite, 64))?;
            let bytes = read(&mut caller, "account_of_key", "key", key_ptr, key_len)?;
            let Some(key) = PublicKey::decode(&bytes).ok().filter(|k| k.suite() == suite) else { return Ok(0) };
            write(&mut caller, "account_of_key", "output", out_ptr, &AccountId::from_public_key(&key).0)?;
            Ok(1)
        },
    )?;
    // 1 if the 64-byte signature at `sig_ptr` over the message is valid under the public key
    // in its canonical encoding at `key_ptr`, a key of this chain's suite; else 0. The node's
    // own rules: strict ed25519, or SM2 with r, s in 1..n−1 and r + s ≠ n.
    linker.func_wrap(
        MODULE,
        "verify_signature",
        |mut caller: HostCaller<'_>,
         key_ptr: u32,
         key_len: u32,
         sig_ptr: u32,
         msg_ptr: u32,
         msg_len: u32|
         -> wasmtime::Result<u32> {
            check_len("verify_signature", "key", key_len, PUBLIC_KEY_BYTES_MAX)?;
            check_len("verify_signature", "message", msg_len, VALUE_BYTES_MAX)?;
            let suite = caller.data().vm.cfg.suite;
            charge(&mut caller, |s| {
                s.host_call_base + s.verify_cost(suite) + per_byte(s, 64 + key_len as usize + msg_len as usize)
            })?;
            let bytes = read(&mut caller, "verify_signature", "key", key_ptr, key_len)?;
            let signature = Signature(read_array::<64>(&mut caller, "verify_signature", "signature", sig_ptr)?);
            let message = read(&mut caller, "verify_signature", "message", msg_ptr, msg_len)?;
            let Some(key) = PublicKey::decode(&bytes).ok().filter(|k| k.suite() == suite) else { return Ok(0) };
            Ok(u32::from(key.verify(&message, &signature).is_ok()))
        },
    )?;

    // Writes the 32-byte (unkeyed) blake3 hash of the input to `out_ptr`.
    linker.func_wrap(
        MODULE,
        "blake3",
        |mut caller: HostCaller<'_>, ptr: u32, len: u32, out_ptr: u32| -> wasmtime::Result<()> {
            check_len("blake3", "input", len, VALUE_BYTES_MAX)?;
            charge(&mut caller, |s| s.host_call_base + s.blake3_base + s.blake3_per_byte * u64::from(len))?;
            let input = read(&mut caller, "blake3", "input", ptr, len)?;
            let hash = blake3::hash(&input);
            write(&mut caller, "blake3", "output", out_ptr, hash.as_bytes())
        },
    )?;
    // Writes the 32-byte account id of the 32-byte ed25519 public key at `key_ptr` (the hash
    // every account is named by), so a contract can tie a verified signature to an account.
    linker.func_wrap(
        MODULE,
        "account_of",
        |mut caller: HostCaller<'_>, key_ptr: u32, out_ptr: u32| -> wasmtime::Result<()> {
            let suite = caller.data().vm.cfg.suite;
            if suite != Suite::Ed25519Blake3 {
                return Err(HostError::Ed25519Only { call: "account_of", suite }.into());
            }
            charge(&mut caller, |s| s.host_call_base + s.blake3_base + per_byte(s, 64))?;
            let key = PublicKey::Ed25519(read_array::<32>(&mut caller, "account_of", "key", key_ptr)?);
            let account = AccountId::from_public_key(&key);
            write(&mut caller, "account_of", "output", out_ptr, &account.0)
        },
    )?;
    // 1 if the 64-byte signature at `sig_ptr` by the 32-byte key at `key_ptr` over the message
    // is valid (strict verification: no malleable or small-order forms), else 0.
    linker.func_wrap(
        MODULE,
        "ed25519_verify",
        |mut caller: HostCaller<'_>, key_ptr: u32, sig_ptr: u32, msg_ptr: u32, msg_len: u32| -> wasmtime::Result<u32> {
            check_len("ed25519_verify", "message", msg_len, VALUE_BYTES_MAX)?;
            let suite = caller.data().vm.cfg.suite;
            if suite != Suite::Ed25519Blake3 {
                return Err(HostError::Ed25519Only { call: "ed25519_verify", suite }.into());
            }
            charge(&mut caller, |s| s.host_call_base + s.ed25519_verify + per_byte(s, 96 + msg_len as usize))?;
            let key = PublicKey::Ed25519(read_array::<32>(&mut caller, "ed25519_verify", "key", key_ptr)?);
            let signature = Signature(read_array::<64>(&mut caller, "ed25519_verify", "signature", sig_ptr)?);
            let message = read(&mut caller, "ed25519_verify", "message", msg_ptr, msg_len)?;
            Ok(u32::from(key.verify(&message, &signature).is_ok()))
        },
    )?;
    Ok(())
}

/// Cross-contract calls.
fn link_call(linker: &mut Linker<HostState>) -> wasmtime::Result<()> {
    // Calls `method` of the contract whose 32-byte address is at `addr_ptr` with the given
    // arguments, forwarding at most `gas` (all that is left if `gas` is 0). Returns the
    // output's length, with the output in the result buffer, or a negative `call_error`
    // with the reason in the result buffer. The callee's writes, events and audit leaves are
    // kept only if it succeeds; the gas it used is charged either way.
    //
    // Re-entrancy is refused: a contract already on the call stack cannot be called again
    // until it returns (REENTRANT), so no contract ever sees its own state change under it
    // in the middle of a call.
    linker.func_wrap(
        MODULE,
        "call_contract",
        |mut caller: HostCaller<'_>,
         addr_ptr: u32,
         method_ptr: u32,
         method_len: u32,
         args_ptr: u32,
         args_len: u32,
         gas: u64|
         -> wasmtime::Result<i64> {
            check_len("call_contract", "method", method_len, METHOD_BYTES_MAX)?;
            check_len("call_contract", "args", args_len, ARGS_BYTES_MAX)?;
            let bytes = 32 + method_len as usize + args_len as usize;
            charge(&mut caller, |s| s.host_call_base + s.cross_call_base + per_byte(s, bytes))?;
            let callee = Address(read_array::<32>(&mut caller, "call_contract", "address", addr_ptr)?);
            let method = read(&mut caller, "call_contract", "method", method_ptr, method_len)?;
            let method = String::from_utf8(method).map_err(|_| HostError::NotUtf8("call_contract: method"))?;
            let args = read(&mut caller, "call_contract", "args", args_ptr, args_len)?;
            let refuse = |caller: &mut HostCaller<'_>, code: i64, why: String| {
                caller.data_mut().result = why.into_bytes();
                Ok(code)
            };
            let stack = &caller.data().tx().stack;
            if stack.len() > CALL_DEPTH_MAX {
                return refuse(&mut caller, call_error::TOO_DEEP, format!("calls nest deeper than {CALL_DEPTH_MAX}"));
            }
            if stack.contains(&callee) {
                return refuse(&mut caller, call_error::REENTRANT, format!("{callee} is already on the call stack"));
            }
            let available = caller.get_fuel()?;
            let forward = if gas == 0 { available } else { gas.min(available) };
            let me = caller.data().contract;
            let vm = Arc::clone(&caller.data().vm);
            let mut tx = caller.data_mut().tx.take().expect("the running frame holds the transaction");
            tx.state.begin();
            let events_before = tx.events.len();
            let frame = run_frame(&vm, tx, me.0, callee, &method, args, forward);
            let mut tx = frame.tx;
            let success = frame.status.is_success();
            tx.state.end(success);
            if !success {
                tx.events.truncate(events_before);
            }
            let fatal = tx.fatal.is_some();
            caller.data_mut().tx = Some(tx);
            caller.set_fuel(available - (forward - frame.fuel_left.min(forward)))?;
            if fatal {
                return Err(HostError::Fatal.into());
            }
            let (code, result) = match frame.status {
                ExecStatus::Success => (frame.output.len() as i64, frame.output),
                ExecStatus::Aborted(m) => (call_error::ABORTED, m.into_bytes()),
                ExecStatus::OutOfGas => (call_error::OUT_OF_GAS, b"out of gas".to_vec()),
                ExecStatus::Trapped(m) => (call_error::TRAPPED, m.into_bytes()),
                ExecStatus::UnknownContract => {
                    (call_error::UNKNOWN_CONTRACT, format!("no contract at {callee}").into_bytes())
                }
                ExecStatus::UnknownMethod(m) => {
                    (call_error::UNKNOWN_METHOD, format!("{callee} has no method {m:?}").into_bytes())
                }
                ExecStatus::Frozen => (call_error::FROZEN, format!("{callee} is frozen").into_bytes()),
                ExecStatus::Rejected(m) => (call_error::TRAPPED, m.into_bytes()),
            };
            caller.data_mut().result = result;
            Ok(code)
        },
    )?;
    Ok(())
}
