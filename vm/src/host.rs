//! The host ABI: the functions a contract imports from the `shutong` module. Each one checks
//! its pointers and lengths against guest memory and the protocol maxima, and charges gas
//! before it does any work. The reference is `docs/host-abi.md`.

use crate::HostState;
use crate::gas;
use shutong_types::limits::{
    EVENT_DATA_BYTES_MAX, EVENT_TOPIC_BYTES_MAX, EVENTS_PER_RECEIPT_MAX, MESSAGE_BYTES_MAX, OUTPUT_BYTES_MAX,
};
use shutong_types::{Event, ExecStatus, keyspace};
use wasmtime::{Caller, Extern, Linker, Store, Trap};

pub const MODULE: &str = "shutong";
pub const KEY_BYTES_MAX: u32 = 1024;
pub const VALUE_BYTES_MAX: u32 = 64 * 1024;

/// Why a host call refused; the call traps and the transaction fails with this message.
#[derive(Debug, thiserror::Error)]
enum HostError {
    #[error("contract exports no memory")]
    NoMemory,
    #[error("{call}: {what} at {ptr}..{ptr}+{len} is outside guest memory of {size} bytes")]
    OutOfBounds { call: &'static str, what: &'static str, ptr: u32, len: u32, size: usize },
    #[error("{call}: {what} of {len} bytes is above the maximum {max}")]
    TooLong { call: &'static str, what: &'static str, len: u32, max: u32 },
    #[error("emit_event: topic is not utf-8")]
    TopicNotUtf8,
    #[error("emit_event: more than {0} events in one call")]
    TooManyEvents(u32),
    #[error("contract aborted")]
    Aborted,
}

type HostCaller<'a> = Caller<'a, HostState>;

/// Takes `amount` gas, or fails with out-of-fuel leaving none.
fn charge(caller: &mut HostCaller<'_>, amount: u64) -> wasmtime::Result<()> {
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

fn per_byte(len: usize) -> u64 {
    gas::PER_BYTE * len as u64
}

/// Registers every host function with `linker`.
pub(crate) fn link(linker: &mut Linker<HostState>) -> wasmtime::Result<()> {
    linker.func_wrap(MODULE, "input_len", |mut caller: HostCaller<'_>| -> wasmtime::Result<u32> {
        charge(&mut caller, gas::HOST_CALL_BASE)?;
        Ok(caller.data().input.len() as u32)
    })?;
    linker.func_wrap(MODULE, "input_read", |mut caller: HostCaller<'_>, ptr: u32| -> wasmtime::Result<()> {
        let input = std::mem::take(&mut caller.data_mut().input);
        charge(&mut caller, gas::HOST_CALL_BASE + per_byte(input.len()))?;
        let result = write(&mut caller, "input_read", "buffer", ptr, &input);
        caller.data_mut().input = input;
        result
    })?;
    linker.func_wrap(
        MODULE,
        "output_set",
        |mut caller: HostCaller<'_>, ptr: u32, len: u32| -> wasmtime::Result<()> {
            check_len("output_set", "output", len, OUTPUT_BYTES_MAX)?;
            charge(&mut caller, gas::HOST_CALL_BASE + gas::PERSISTED_PER_BYTE * u64::from(len))?;
            let output = read(&mut caller, "output_set", "output", ptr, len)?;
            caller.data_mut().output = output;
            Ok(())
        },
    )?;
    linker.func_wrap(
        MODULE,
        "storage_get",
        |mut caller: HostCaller<'_>, ptr: u32, len: u32| -> wasmtime::Result<i64> {
            check_len("storage_get", "key", len, KEY_BYTES_MAX)?;
            charge(&mut caller, gas::HOST_CALL_BASE + gas::STORAGE_READ_BASE + per_byte(len as usize))?;
            let key = read(&mut caller, "storage_get", "key", ptr, len)?;
            let full_key = keyspace::contract_storage(&caller.data().ctx.contract, &key);
            match caller.data().state.get(&full_key) {
                Some(value) => {
                    charge(&mut caller, per_byte(value.len()))?;
                    let len = value.len() as i64;
                    caller.data_mut().result = value;
                    Ok(len)
                }
                None => Ok(-1),
            }
        },
    )?;
    linker.func_wrap(MODULE, "result_read", |mut caller: HostCaller<'_>, ptr: u32| -> wasmtime::Result<()> {
        let result = std::mem::take(&mut caller.data_mut().result);
        charge(&mut caller, gas::HOST_CALL_BASE + per_byte(result.len()))?;
        let outcome = write(&mut caller, "result_read", "buffer", ptr, &result);
        caller.data_mut().result = result;
        outcome
    })?;
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
            charge(&mut caller, gas::HOST_CALL_BASE + gas::STORAGE_WRITE_BASE + gas::STORAGE_WRITE_PER_BYTE * bytes)?;
            let key = read(&mut caller, "storage_set", "key", key_ptr, key_len)?;
            let value = read(&mut caller, "storage_set", "value", value_ptr, value_len)?;
            let full_key = keyspace::contract_storage(&caller.data().ctx.contract, &key);
            caller.data_mut().state.writes.insert(full_key, Some(value));
            Ok(())
        },
    )?;
    linker.func_wrap(
        MODULE,
        "storage_remove",
        |mut caller: HostCaller<'_>, ptr: u32, len: u32| -> wasmtime::Result<()> {
            check_len("storage_remove", "key", len, KEY_BYTES_MAX)?;
            charge(
                &mut caller,
                gas::HOST_CALL_BASE + gas::STORAGE_WRITE_BASE + gas::STORAGE_WRITE_PER_BYTE * u64::from(len),
            )?;
            let key = read(&mut caller, "storage_remove", "key", ptr, len)?;
            let full_key = keyspace::contract_storage(&caller.data().ctx.contract, &key);
            caller.data_mut().state.writes.insert(full_key, None);
            Ok(())
        },
    )?;
    linker.func_wrap(MODULE, "caller", |mut caller: HostCaller<'_>, ptr: u32| -> wasmtime::Result<()> {
        charge(&mut caller, gas::HOST_CALL_BASE + per_byte(32))?;
        let account = caller.data().ctx.caller;
        write(&mut caller, "caller", "buffer", ptr, &account.0)
    })?;
    linker.func_wrap(MODULE, "block_height", |mut caller: HostCaller<'_>| -> wasmtime::Result<u64> {
        charge(&mut caller, gas::HOST_CALL_BASE)?;
        Ok(caller.data().ctx.height)
    })?;
    linker.func_wrap(MODULE, "block_time_ms", |mut caller: HostCaller<'_>| -> wasmtime::Result<u64> {
        charge(&mut caller, gas::HOST_CALL_BASE)?;
        Ok(caller.data().ctx.time_ms)
    })?;
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
            if caller.data().events.len() >= EVENTS_PER_RECEIPT_MAX as usize {
                return Err(HostError::TooManyEvents(EVENTS_PER_RECEIPT_MAX).into());
            }
            let bytes = u64::from(topic_len) + u64::from(data_len);
            charge(&mut caller, gas::HOST_CALL_BASE + gas::EVENT_BASE + gas::PERSISTED_PER_BYTE * bytes)?;
            let topic = read(&mut caller, "emit_event", "topic", topic_ptr, topic_len)?;
            let topic = String::from_utf8(topic).map_err(|_| HostError::TopicNotUtf8)?;
            let data = read(&mut caller, "emit_event", "data", data_ptr, data_len)?;
            let contract = caller.data().ctx.contract;
            caller.data_mut().events.push(Event { contract, topic, data });
            Ok(())
        },
    )?;
    linker.func_wrap(MODULE, "abort", |mut caller: HostCaller<'_>, ptr: u32, len: u32| -> wasmtime::Result<()> {
        let len = len.min(MESSAGE_BYTES_MAX);
        charge(&mut caller, gas::HOST_CALL_BASE + per_byte(len as usize))?;
        let message = read(&mut caller, "abort", "message", ptr, len)?;
        caller.data_mut().abort = Some(String::from_utf8_lossy(&message).into_owned());
        Err(HostError::Aborted.into())
    })?;
    Ok(())
}

/// Maps a failed call to its receipt status.
pub(crate) fn status_of(store: &mut Store<HostState>, err: wasmtime::Error) -> ExecStatus {
    if let Some(message) = store.data_mut().abort.take() {
        return ExecStatus::Aborted(message);
    }
    if matches!(err.downcast_ref::<Trap>(), Some(Trap::OutOfFuel)) {
        return ExecStatus::OutOfGas;
    }
    let message = format!("{err:#}");
    let mut end = message.len().min(MESSAGE_BYTES_MAX as usize / 2);
    while !message.is_char_boundary(end) {
        end -= 1;
    }
    ExecStatus::Trapped(message[..end].to_string())
}
