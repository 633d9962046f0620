//! Shutong's contract VM: a deterministic wasmtime engine with fuel-metered gas and the host ABI.
//!
//! This is the only crate that names wasmtime. A call runs in a fresh instance of a
//! pre-linked module ([`wasmtime::InstancePre`]) taken from a pooling allocator, with a fuel
//! limit equal to the transaction's gas limit. Writes go to the transaction's own write set
//! and are handed back only if the call succeeds; on any failure they are dropped and the
//! gas is still charged. A contract may call another ([`host`]); the callee's writes are kept
//! only if it succeeds. The host functions are documented in `docs/host-abi.md`.
//!
//! What decides a call's outcome is deterministic: fuel (never wall-clock time), a stack
//! bound counted in wasm slots ([`instrument`]), fixed memory and table limits, and the
//! wasm features set in [`engine_config`]. Two things are not, and so are never a receipt:
//! the wall-clock watchdog and running out of pooled instances. Both come back as
//! [`VmError`], and the node must not vote for or commit a block whose execution hit one.

pub mod cache;
pub mod gas;
mod host;
pub mod instrument;
pub mod state;
pub mod testing;

use gas::Schedule;
use host::{HostState, TxContext};
use shutong_codec::Decode;
use shutong_types::keyspace::{self, Instance};
use shutong_types::limits::CODE_BYTES_MAX;
use shutong_types::{AccountId, Address, Event, ExecStatus, Hash, Suite};
use state::{Overlay, StateReader, TxState};
use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use std::time::Instant;
use wasmtime::{
    Config, Engine, InstanceAllocationStrategy, InstancePre, Linker, Module, OptLevel, PoolingAllocationConfig,
};

/// How deep contracts may call each other: a top-level call plus this many nested ones.
pub const CALL_DEPTH_MAX: usize = 4;
/// The native stack wasmtime allows wasm code, a backstop far above what the slot bound of
/// [`instrument`] lets all `CALL_DEPTH_MAX + 1` frames reach together. Threads that run
/// calls need a stack well above this (the node runs them on threads of 8 MiB or more).
pub const NATIVE_STACK_BYTES: usize = 1 << 20;
/// How often the watchdog's clock ticks.
pub(crate) const WATCHDOG_TICK: Duration = Duration::from_millis(10);

/// Bounds of the VM. Every field is checked in [`VmConfig::validate`].
#[derive(Debug, Clone)]
pub struct VmConfig {
    /// The most linear memory one instance may grow to.
    pub memory_bytes_max: usize,
    /// The most table elements one instance may have.
    pub table_elements_max: usize,
    /// How many compiled modules are kept in memory.
    pub module_cache_entries_max: usize,
    /// How many instances the pool holds: calls running at once times
    /// `CALL_DEPTH_MAX + 1`. The executor runs one call at a time; the RPC's VM sizes this
    /// for concurrent queries.
    pub pooled_instances: u32,
    /// A call still running after this much wall-clock time is stopped and reported as
    /// [`VmError::Watchdog`]; never a consensus rule (fuel is).
    pub watchdog: Duration,
    /// Where compiled code is cached on disk, by (code hash, VM version); none if `None`.
    pub code_cache_dir: Option<PathBuf>,
    /// The gas schedule version (from genesis).
    pub gas_schedule: u32,
    /// The chain's crypto suite (from genesis): code hashes and the hashing host calls
    /// follow it.
    pub suite: Suite,
}

impl Default for VmConfig {
    fn default() -> Self {
        VmConfig {
            memory_bytes_max: 16 << 20,
            table_elements_max: 10_000,
            module_cache_entries_max: 256,
            pooled_instances: (CALL_DEPTH_MAX as u32 + 1) * 2,
            watchdog: Duration::from_secs(10),
            code_cache_dir: None,
            gas_schedule: gas::CURRENT,
            suite: Suite::default(),
        }
    }
}

impl VmConfig {
    pub fn validate(&self) -> Result<&'static Schedule, VmError> {
        let bad = |field, rule| Err(VmError::Config { field, rule });
        if !(64 << 10..=256 << 20).contains(&self.memory_bytes_max) {
            return bad("memory_bytes_max", "between 64 KiB and 256 MiB");
        }
        if self.table_elements_max == 0 || self.table_elements_max > 1_000_000 {
            return bad("table_elements_max", "between 1 and 1,000,000");
        }
        if self.module_cache_entries_max == 0 {
            return bad("module_cache_entries_max", "at least 1");
        }
        if (self.pooled_instances as usize) < CALL_DEPTH_MAX + 1 || self.pooled_instances > 10_000 {
            return bad("pooled_instances", "between CALL_DEPTH_MAX + 1 and 10,000");
        }
        if self.watchdog < Duration::from_millis(100) {
            return bad("watchdog", "at least 100 ms");
        }
        gas::schedule(self.gas_schedule).ok_or(VmError::UnknownSchedule(self.gas_schedule))
    }
}

#[derive(Debug, thiserror::Error)]
pub enum VmError {
    #[error("wasm module {code_hash} is refused: {reason}")]
    InvalidModule { code_hash: Hash, reason: String },
    #[error("wasm module of {len} bytes is above the maximum {max}")]
    ModuleTooLarge { len: usize, max: u32 },
    /// wasmtime refused the engine or the host functions; `reason` is its own message.
    #[error("the vm's {stage} could not be created: {reason}")]
    Engine { stage: &'static str, reason: String },
    #[error("vm configuration: {field} must be {rule}")]
    Config { field: &'static str, rule: &'static str },
    #[error("the vm's code cache {path}: {source}")]
    CodeCache { path: std::path::PathBuf, source: std::io::Error },
    #[error("gas schedule version {0} is not known to this build")]
    UnknownSchedule(u32),
    #[error("the call ran past the {0:?} wall-clock watchdog")]
    Watchdog(Duration),
    /// Every pooled instance (or its memory or table) is in use by other calls.
    #[error("no pooled instance is free: every one of the pool's is in use")]
    Busy,
}

/// Who is calling what, and in which block.
#[derive(Debug, Clone)]
pub struct CallContext {
    /// The account that signed the transaction (the zero account for queries).
    pub origin: AccountId,
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

/// What a `Vm` shares with the calls it runs.
pub(crate) struct Inner {
    pub(crate) engine: Engine,
    linker: Linker<HostState>,
    modules: Mutex<HashMap<Hash, InstancePre<HostState>>>,
    pub(crate) cfg: VmConfig,
    pub(crate) schedule: &'static Schedule,
    disk: Option<cache::DiskCache>,
    pub(crate) stats: Stats,
}

/// Counters of a VM's work, for metrics.
#[derive(Debug, Default)]
pub(crate) struct Stats {
    instantiations: std::sync::atomic::AtomicU64,
    instantiate_nanos: std::sync::atomic::AtomicU64,
    calls: std::sync::atomic::AtomicU64,
    call_nanos: std::sync::atomic::AtomicU64,
}

impl Stats {
    pub(crate) fn instantiated(&self, took: std::time::Duration) {
        use std::sync::atomic::Ordering::Relaxed;
        self.instantiations.fetch_add(1, Relaxed);
        self.instantiate_nanos.fetch_add(took.as_nanos() as u64, Relaxed);
    }

    pub(crate) fn called(&self, took: std::time::Duration) {
        use std::sync::atomic::Ordering::Relaxed;
        self.calls.fetch_add(1, Relaxed);
        self.call_nanos.fetch_add(took.as_nanos() as u64, Relaxed);
    }
}

/// A snapshot of a VM's counters: contract instances created and the time it took; contract
/// calls (frames, nested ones included) and the time they took, instantiation included (a
/// nested call's time also counts in its caller's).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct VmStats {
    pub instantiations: u64,
    pub instantiate_nanos: u64,
    pub calls: u64,
    pub call_nanos: u64,
}

/// The contract VM: one engine, one linker, a bounded cache of compiled modules.
#[derive(Clone)]
pub struct Vm {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for Vm {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Vm").field("cfg", &self.inner.cfg).finish_non_exhaustive()
    }
}

/// The wasmtime configuration, set explicitly for determinism: every node must compute the
/// same result and the same fuel for the same call. Only the instance pool differs between
/// the VMs of one node, and it changes no result.
pub fn engine_config(schedule: &Schedule) -> Config {
    let mut config = Config::new();
    config.consume_fuel(true);
    config.operator_cost(schedule.operator_cost());
    // NaN bit patterns are otherwise platform-dependent.
    config.cranelift_nan_canonicalization(true);
    config.cranelift_opt_level(OptLevel::Speed);
    config.max_wasm_stack(NATIVE_STACK_BYTES);
    config.epoch_interruption(true);
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

/// A version string for compiled code: anything that changes the machine code or its
/// metering is in it, so a cached artifact is never used by a VM it does not fit.
pub fn vm_version(schedule: &Schedule) -> String {
    format!(
        "shutong-vm/1;wasmtime/48;gas/{};stack/{}/{}/{};native/{}",
        schedule.version,
        instrument::FRAME_BASE_SLOTS,
        instrument::FRAME_SLOTS_MAX,
        instrument::STACK_SLOTS_MAX,
        NATIVE_STACK_BYTES
    )
}

/// Bytes of a freed instance's memory reset in place rather than returned to the OS, where
/// Linux's `PAGEMAP_SCAN` (6.7 and later) lets wasmtime find and reset only the pages a call
/// touched. A std-Rust contract's stack ends at 1 MiB, with its data and heap above it, so
/// 4 MiB covers what a call uses: its pages stay mapped from call to call, with no page
/// faults and no `madvise` (profiled: a grant check 48 -> 31 µs).
const KEEP_RESIDENT_SCANNED: usize = 4 << 20;
/// Without the scan, wasmtime would zero the whole kept range on every release: keep only
/// what is cheap to zero.
const KEEP_RESIDENT_UNSCANNED: usize = 64 << 10;
/// How many freed instances' memories are returned to the OS together.
const DECOMMIT_BATCH: usize = 64;

impl Vm {
    pub fn new(cfg: VmConfig) -> Result<Vm, VmError> {
        let schedule = cfg.validate()?;
        let mut config = engine_config(schedule);
        let mut pool = PoolingAllocationConfig::new();
        pool.total_core_instances(cfg.pooled_instances)
            .total_memories(cfg.pooled_instances)
            .total_tables(cfg.pooled_instances)
            .max_memory_size(cfg.memory_bytes_max)
            .table_elements(cfg.table_elements_max)
            .max_memories_per_module(1)
            .max_tables_per_module(1)
            .linear_memory_keep_resident(if PoolingAllocationConfig::is_pagemap_scan_available() {
                KEEP_RESIDENT_SCANNED
            } else {
                KEEP_RESIDENT_UNSCANNED
            })
            .table_keep_resident(4 << 10)
            // Returning an instance's pages to the OS (madvise) shoots down TLB entries on
            // every core; done for one instance at a time it cost ~6 % of a loaded node's CPU
            // (perf). Batched, the cost is shared by many instances.
            .decommit_batch_size(DECOMMIT_BATCH)
            .pagemap_scan(wasmtime::Enabled::Auto);
        config.allocation_strategy(InstanceAllocationStrategy::Pooling(pool));
        let engine = Engine::new(&config).map_err(|e| VmError::Engine { stage: "engine", reason: format!("{e:#}") })?;
        start_watchdog_clock(&engine);
        let mut linker = Linker::new(&engine);
        host::link(&mut linker).map_err(|e| VmError::Engine { stage: "host functions", reason: e.to_string() })?;
        let disk = match &cfg.code_cache_dir {
            Some(dir) => Some(cache::DiskCache::open(dir, &vm_version(schedule))?),
            None => None,
        };
        let inner =
            Inner { engine, linker, modules: Mutex::new(HashMap::new()), cfg, schedule, disk, stats: Stats::default() };
        Ok(Vm { inner: Arc::new(inner) })
    }

    /// The hash that names a contract's code on a chain of `suite`.
    pub fn code_hash(suite: Suite, code: &[u8]) -> Hash {
        Hash::of(suite, shutong_types::hash::tag::CODE, code)
    }

    /// The chain's crypto suite.
    pub fn suite(&self) -> Suite {
        self.inner.cfg.suite
    }

    /// The upload check: size, the engine's validation (which names any disabled feature),
    /// the stack analysis, the host imports and compilation. On success the compiled code
    /// is cached, so the first call does not compile. Returns the module's methods.
    pub fn validate(&self, code: &[u8]) -> Result<Vec<String>, VmError> {
        let code_hash = Vm::code_hash(self.suite(), code);
        let pre = self.inner.compile(code_hash, code)?;
        let methods = methods(pre.module());
        self.inner.remember(code_hash, pre);
        Ok(methods)
    }

    /// Whether the contract with `code_hash` exports `method`; `None` if `state` has no such
    /// code.
    pub fn has_method(&self, code_hash: Hash, state: &dyn StateReader, method: &str) -> Result<Option<bool>, VmError> {
        let load = || state.get(&keyspace::code(&code_hash));
        Ok(self.inner.prepared(code_hash, &load)?.map(|pre| is_method(pre.module(), method)))
    }

    /// Whether the compiled code for `code_hash` is in the in-memory cache.
    pub fn is_cached(&self, code_hash: &Hash) -> bool {
        self.inner.modules.lock().expect("module cache lock poisoned").contains_key(code_hash)
    }

    /// The gas schedule this VM charges by.
    pub fn schedule(&self) -> &'static Schedule {
        self.inner.schedule
    }

    /// What this VM has done so far.
    pub fn stats(&self) -> VmStats {
        use std::sync::atomic::Ordering::Relaxed;
        let s = &self.inner.stats;
        VmStats {
            instantiations: s.instantiations.load(Relaxed),
            instantiate_nanos: s.instantiate_nanos.load(Relaxed),
            calls: s.calls.load(Relaxed),
            call_nanos: s.call_nanos.load(Relaxed),
        }
    }

    /// Calls `method` of the contract at `ctx.contract` with `args`, charging at most
    /// `gas_limit`. The contract's instance and code are read from `block`, which the call
    /// sees and returns, with the call's writes applied only on success.
    pub fn call(
        &self,
        ctx: CallContext,
        method: &str,
        args: Vec<u8>,
        gas_limit: u64,
        block: Overlay,
    ) -> Result<CallOutcome, VmError> {
        let inner = &self.inner;
        let tx = TxContext {
            origin: ctx.origin,
            height: ctx.height,
            time_ms: ctx.time_ms,
            deadline: Instant::now() + inner.cfg.watchdog,
            state: TxState::new(block),
            events: Vec::new(),
            stack: Vec::with_capacity(CALL_DEPTH_MAX + 1),
            fatal: None,
        };
        let (mut tx, status, output, fuel_left) = if gas_limit < inner.schedule.call_base {
            (tx, ExecStatus::OutOfGas, Vec::new(), 0)
        } else {
            let fuel = gas_limit - inner.schedule.call_base;
            let frame = host::run_frame(inner, tx, ctx.origin.0, ctx.contract, method, args, fuel);
            (frame.tx, frame.status, frame.output, frame.fuel_left)
        };
        if let Some(fatal) = tx.fatal.take() {
            return Err(fatal);
        }
        let gas_used = gas_limit.saturating_sub(fuel_left);
        let (mut block, writes) = tx.state.into_parts();
        Ok(if status.is_success() {
            block.apply(writes);
            CallOutcome { status, gas_used, output, events: tx.events, block }
        } else {
            CallOutcome { status, gas_used, output: Vec::new(), events: Vec::new(), block }
        })
    }
}

/// Advances the engine's epoch every [`WATCHDOG_TICK`] until the engine is dropped.
fn start_watchdog_clock(engine: &Engine) {
    let weak = engine.weak();
    let spawned = std::thread::Builder::new().name("vm-watchdog".into()).spawn(move || {
        loop {
            std::thread::sleep(WATCHDOG_TICK);
            match weak.upgrade() {
                Some(engine) => engine.increment_epoch(),
                None => return,
            }
        }
    });
    if let Err(err) = spawned {
        // Without the clock a runaway call is still stopped by fuel; only the watchdog is lost.
        tracing::error!(%err, "the vm watchdog clock could not start");
    }
}

impl Inner {
    /// Validates, instruments and compiles `code` (or loads it from the disk cache) and
    /// checks that it imports only the host ABI.
    fn compile(&self, code_hash: Hash, code: &[u8]) -> Result<InstancePre<HostState>, VmError> {
        if code.len() > CODE_BYTES_MAX as usize {
            return Err(VmError::ModuleTooLarge { len: code.len(), max: CODE_BYTES_MAX });
        }
        let invalid = |reason: String| VmError::InvalidModule { code_hash, reason };
        let module = match self.disk.as_ref().and_then(|d| d.load(&self.engine, &code_hash)) {
            Some(module) => module,
            None => {
                Module::validate(&self.engine, code).map_err(|e| invalid(format!("{e:#}")))?;
                let instrumented = instrument::instrument(code).map_err(|e| invalid(e.to_string()))?;
                let module = Module::new(&self.engine, &instrumented).map_err(|e| invalid(format!("{e:#}")))?;
                if let Some(disk) = &self.disk {
                    disk.store(&code_hash, &module);
                }
                module
            }
        };
        self.linker.instantiate_pre(&module).map_err(|e| invalid(format!("{e:#}")))
    }

    fn remember(&self, code_hash: Hash, pre: InstancePre<HostState>) {
        let mut modules = self.modules.lock().expect("module cache lock poisoned");
        if modules.len() >= self.cfg.module_cache_entries_max
            && !modules.contains_key(&code_hash)
            && let Some(victim) = modules.keys().next().copied()
        {
            // Any entry will do: a miss costs a compile (or a disk load), never a wrong answer.
            modules.remove(&victim);
        }
        modules.insert(code_hash, pre);
    }

    /// The pre-linked module for `code_hash`, compiling the code `load` returns on a cache
    /// miss. `Ok(None)` if there is no such code.
    pub(crate) fn prepared(
        &self,
        code_hash: Hash,
        load: &dyn Fn() -> Option<Vec<u8>>,
    ) -> Result<Option<InstancePre<HostState>>, VmError> {
        if let Some(pre) = self.modules.lock().expect("module cache lock poisoned").get(&code_hash) {
            return Ok(Some(pre.clone()));
        }
        let Some(code) = load() else { return Ok(None) };
        let pre = self.compile(code_hash, &code)?;
        self.remember(code_hash, pre.clone());
        Ok(Some(pre))
    }
}

/// Reads a contract instance's metadata from state.
pub(crate) fn instance_at(state: &TxState, contract: &Address) -> Option<Instance> {
    state.get(&keyspace::instance(contract)).and_then(|bytes| Instance::decode(&bytes).ok())
}

/// A module's methods, sorted.
fn methods(module: &Module) -> Vec<String> {
    let mut names: Vec<String> =
        module.exports().map(|e| e.name().to_string()).filter(|name| is_method(module, name)).collect();
    names.sort();
    names
}

/// A method is an exported function that takes and returns nothing and whose name is not
/// reserved (`__` prefixes are the toolchain's and the VM's).
pub(crate) fn is_method(module: &Module, method: &str) -> bool {
    if method.starts_with("__") {
        return false;
    }
    match module.get_export(method) {
        Some(wasmtime::ExternType::Func(ty)) => ty.params().len() == 0 && ty.results().len() == 0,
        _ => false,
    }
}
