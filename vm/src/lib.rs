//! Shutong's contract VM: a deterministic wasmtime engine with fuel-metered gas and the host ABI.
//!
//! This is the only crate that names wasmtime. A call runs in a fresh instance of a
//! pre-linked module ([`wasmtime::InstancePre`]) with a fuel limit equal to the
//! transaction's gas limit. Writes go to the transaction's own write set and are handed
//! back only if the call succeeds; on any failure they are dropped and the gas is still
//! charged. The host functions are in [`host`] and documented in `docs/host-abi.md`.

#![forbid(unsafe_code)]

pub mod gas;
mod host;
pub mod state;

use shutong_types::{AccountId, Address, Event, ExecStatus, Hash};
use state::{Overlay, TxState, Writes};
use std::collections::HashMap;
use std::sync::Mutex;
use wasmtime::{Config, Engine, InstancePre, Linker, Module, OptLevel, Store, StoreLimits, StoreLimitsBuilder};

/// Bounds of the VM. Every field is checked in [`Config::validate`].
#[derive(Debug, Clone)]
pub struct VmConfig {
    /// The most linear memory one instance may grow to.
    pub memory_bytes_max: usize,
    /// The most table elements one instance may have.
    pub table_elements_max: usize,
    /// How many compiled modules are kept in memory.
    pub module_cache_entries_max: usize,
}

impl Default for VmConfig {
    fn default() -> Self {
        VmConfig { memory_bytes_max: 16 << 20, table_elements_max: 10_000, module_cache_entries_max: 64 }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum VmError {
    #[error("wasm module {code_hash} does not compile: {reason}")]
    InvalidModule { code_hash: Hash, reason: String },
    #[error("vm engine could not be created: {0}")]
    Engine(String),
}

/// Who is calling what, and in which block.
#[derive(Debug, Clone)]
pub struct CallContext {
    pub caller: AccountId,
    pub contract: Address,
    pub height: u64,
    pub time_ms: u64,
}

/// What a call produced. `block` is the block overlay handed in, with the call's writes
/// applied only when `status` is `Success`.
#[derive(Debug)]
pub struct CallOutcome {
    pub status: ExecStatus,
    pub gas_used: u64,
    pub output: Vec<u8>,
    pub events: Vec<Event>,
    pub block: Overlay,
}

/// The per-call host state that wasmtime's store carries.
pub(crate) struct HostState {
    pub ctx: CallContext,
    pub state: TxState,
    pub input: Vec<u8>,
    pub output: Vec<u8>,
    pub result: Vec<u8>,
    pub events: Vec<Event>,
    pub abort: Option<String>,
    pub limits: StoreLimits,
}

/// The contract VM: one engine, one linker, a bounded cache of compiled modules.
pub struct Vm {
    engine: Engine,
    linker: Linker<HostState>,
    modules: Mutex<HashMap<Hash, InstancePre<HostState>>>,
    cfg: VmConfig,
}

impl std::fmt::Debug for Vm {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Vm").field("cfg", &self.cfg).finish_non_exhaustive()
    }
}

/// The wasmtime configuration, set explicitly for determinism: every node must compute the
/// same result and the same fuel for the same call.
fn engine_config() -> Config {
    let mut config = Config::new();
    config.consume_fuel(true);
    // NaN bit patterns are otherwise platform-dependent.
    config.cranelift_nan_canonicalization(true);
    config.cranelift_opt_level(OptLevel::Speed);
    // Features whose results or scheduling can differ between machines, or that the
    // contracts' toolchain does not need, are off. Threads, GC, reference types, function
    // references, exceptions and stack switching are not compiled into this build of
    // wasmtime at all (see the workspace's wasmtime features), so a module that uses them
    // fails validation at upload.
    config.wasm_relaxed_simd(false);
    config.wasm_simd(false);
    config.wasm_multi_memory(false);
    config.wasm_memory64(false);
    config.wasm_tail_call(false);
    config.wasm_wide_arithmetic(false);
    config.wasm_custom_page_sizes(false);
    config.wasm_extended_const(false);
    config.wasm_bulk_memory(true);
    config.wasm_multi_value(true);
    config
}

impl Vm {
    pub fn new(cfg: VmConfig) -> Result<Vm, VmError> {
        let engine = Engine::new(&engine_config()).map_err(|e| VmError::Engine(e.to_string()))?;
        let mut linker = Linker::new(&engine);
        host::link(&mut linker).map_err(|e| VmError::Engine(e.to_string()))?;
        Ok(Vm { engine, linker, modules: Mutex::new(HashMap::new()), cfg })
    }

    /// The hash that names a contract's code.
    pub fn code_hash(code: &[u8]) -> Hash {
        Hash::of(shutong_types::hash::tag::CODE, code)
    }

    /// Validates and compiles `code` and checks that it imports only the host ABI.
    pub fn validate(&self, code: &[u8]) -> Result<(), VmError> {
        self.compile(Vm::code_hash(code), code).map(|_| ())
    }

    /// Whether the contract with `code_hash` exports `method`; `None` if there is no such code.
    pub fn has_method(
        &self,
        code_hash: Hash,
        load_code: &dyn Fn() -> Option<Vec<u8>>,
        method: &str,
    ) -> Result<Option<bool>, VmError> {
        Ok(self.prepared(code_hash, load_code)?.map(|pre| is_method(pre.module(), method)))
    }

    fn compile(&self, code_hash: Hash, code: &[u8]) -> Result<InstancePre<HostState>, VmError> {
        let invalid = |reason: String| VmError::InvalidModule { code_hash, reason };
        let module = Module::new(&self.engine, code).map_err(|e| invalid(format!("{e:#}")))?;
        self.linker.instantiate_pre(&module).map_err(|e| invalid(format!("{e:#}")))
    }

    /// The pre-linked module for `code_hash`, compiling the code `load` returns on a cache
    /// miss. `Ok(None)` if there is no such code.
    fn prepared(
        &self,
        code_hash: Hash,
        load: &dyn Fn() -> Option<Vec<u8>>,
    ) -> Result<Option<InstancePre<HostState>>, VmError> {
        if let Some(pre) = self.modules.lock().expect("module cache lock poisoned").get(&code_hash) {
            return Ok(Some(pre.clone()));
        }
        let Some(code) = load() else { return Ok(None) };
        let pre = self.compile(code_hash, &code)?;
        let mut modules = self.modules.lock().expect("module cache lock poisoned");
        if modules.len() >= self.cfg.module_cache_entries_max {
            // Any entry will do: a miss costs a compile, never a wrong answer.
            if let Some(victim) = modules.keys().next().copied() {
                modules.remove(&victim);
            }
        }
        modules.insert(code_hash, pre.clone());
        Ok(Some(pre))
    }

    /// Whether the compiled code for `code_hash` is in the cache.
    pub fn is_cached(&self, code_hash: &Hash) -> bool {
        self.modules.lock().expect("module cache lock poisoned").contains_key(code_hash)
    }

    /// Calls `method` of the contract whose code hash is `code_hash` with `args`, charging at
    /// most `gas_limit`; `load_code` supplies the code on a cache miss. The call sees `block`
    /// and returns it, with the call's writes applied only on success.
    #[allow(clippy::too_many_arguments)]
    pub fn call(
        &self,
        ctx: CallContext,
        code_hash: Hash,
        load_code: &dyn Fn() -> Option<Vec<u8>>,
        method: &str,
        args: Vec<u8>,
        gas_limit: u64,
        block: Overlay,
    ) -> CallOutcome {
        let limits = StoreLimitsBuilder::new()
            .memory_size(self.cfg.memory_bytes_max)
            .table_elements(self.cfg.table_elements_max)
            .instances(1)
            .memories(1)
            .tables(1)
            .build();
        let state = HostState {
            ctx,
            state: TxState { block, writes: Writes::new() },
            input: args,
            output: Vec::new(),
            result: Vec::new(),
            events: Vec::new(),
            abort: None,
            limits,
        };
        let mut store = Store::new(&self.engine, state);
        store.limiter(|s| &mut s.limits);
        let status = self.run(&mut store, code_hash, load_code, method, gas_limit);
        let remaining = store.get_fuel().unwrap_or(0);
        let gas_used = gas_limit.saturating_sub(remaining).min(gas_limit);
        let host = store.into_data();
        let TxState { mut block, writes } = host.state;
        if status.is_success() {
            block.apply(writes);
            CallOutcome { status, gas_used, output: host.output, events: host.events, block }
        } else {
            CallOutcome { status, gas_used, output: Vec::new(), events: Vec::new(), block }
        }
    }

    fn run(
        &self,
        store: &mut Store<HostState>,
        code_hash: Hash,
        load_code: &dyn Fn() -> Option<Vec<u8>>,
        method: &str,
        gas_limit: u64,
    ) -> ExecStatus {
        if gas_limit < gas::CALL_BASE {
            store.set_fuel(0).expect("fuel is enabled");
            return ExecStatus::OutOfGas;
        }
        store.set_fuel(gas_limit - gas::CALL_BASE).expect("fuel is enabled");
        let pre = match self.prepared(code_hash, load_code) {
            Ok(Some(pre)) => pre,
            Ok(None) => return ExecStatus::UnknownContract,
            Err(err) => return ExecStatus::Trapped(err.to_string()),
        };
        if !is_method(pre.module(), method) {
            return ExecStatus::UnknownMethod(method.to_string());
        }
        let instance = match pre.instantiate(&mut *store) {
            Ok(instance) => instance,
            Err(err) => return host::status_of(store, err),
        };
        let func = match instance.get_typed_func::<(), ()>(&mut *store, method) {
            Ok(func) => func,
            Err(_) => return ExecStatus::UnknownMethod(method.to_string()),
        };
        match func.call(&mut *store, ()) {
            Ok(()) => ExecStatus::Success,
            Err(err) => host::status_of(store, err),
        }
    }
}

/// A method is an exported function that takes and returns nothing and whose name is not
/// reserved (`__` prefixes are the toolchain's).
fn is_method(module: &Module, method: &str) -> bool {
    if method.starts_with("__") {
        return false;
    }
    match module.get_export(method) {
        Some(wasmtime::ExternType::Func(ty)) => ty.params().len() == 0 && ty.results().len() == 0,
        _ => false,
    }
}
