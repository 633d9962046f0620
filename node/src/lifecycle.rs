//! The contract lifecycle, native to the node at `Address::system(names::LIFECYCLE)`:
//! upload, instantiate, migrate, freeze and unfreeze. Arguments, metadata and rules are in
//! `shutong_system_api::lifecycle`; `docs/contracts.md` lists every refusal.
//!
//! Each operation is one transaction with a receipt like a contract call's: a refusal is an
//! `Aborted` status naming the rule, and nothing it wrote stays. An `init` or `migrate`
//! method of the code runs inside the operation, and the operation stands only if it succeeds.

use shutong_codec::{Decode, Encode};
use shutong_system_api::governance::{approved_code_key, param_key};
use shutong_system_api::lifecycle::{
    CodeInfo, ContractInfo, ContractRef, Instantiate, LABEL_BYTES_MAX, Migrate, UploadCode, methods, policy,
};
use shutong_system_api::names;
use shutong_types::keyspace::{self, Instance, params};
use shutong_types::{AccountId, Address, Event, ExecStatus, Hash};
use shutong_vm::state::Overlay;
use shutong_vm::{CallContext, CallOutcome, Vm, VmError};

/// The lifecycle's address.
pub fn address() -> Address {
    Address::system(names::LIFECYCLE)
}

pub fn is_lifecycle(contract: &Address) -> bool {
    *contract == address()
}

/// Whether the lifecycle has `method`.
pub fn has_method(method: &str) -> bool {
    methods::ALL.contains(&method)
}

/// The upload policy in force: as the governance committee last set it, else as genesis set
/// it, else governance.
pub fn upload_policy(state: &Overlay) -> String {
    let governance = Address::system(names::GOVERNANCE);
    let by_committee = keyspace::contract_storage(&governance, &param_key(params::UPLOAD_POLICY));
    state
        .get(&by_committee)
        .or_else(|| state.get(&keyspace::param(params::UPLOAD_POLICY)))
        .and_then(|bytes| String::from_utf8(bytes).ok())
        .unwrap_or_else(|| policy::GOVERNANCE.to_string())
}

/// Code metadata, if the code is uploaded.
pub fn code_info(state: &dyn shutong_vm::state::StateReader, code_hash: &Hash) -> Option<CodeInfo> {
    state.get(&keyspace::code_info(code_hash)).and_then(|bytes| CodeInfo::decode(&bytes).ok())
}

/// Instance metadata beyond its code and admin.
pub fn contract_info(state: &dyn shutong_vm::state::StateReader, contract: &Address) -> Option<ContractInfo> {
    state.get(&keyspace::contract_info(contract)).and_then(|bytes| ContractInfo::decode(&bytes).ok())
}

fn instance(state: &Overlay, contract: &Address) -> Option<Instance> {
    state.get(&keyspace::instance(contract)).and_then(|bytes| Instance::decode(&bytes).ok())
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

type Undo = (Vec<u8>, Option<Option<Vec<u8>>>);

/// One lifecycle operation in progress: its gas, and the keys it wrote, so that a failure
/// can put them back.
struct Op<'a> {
    vm: &'a Vm,
    ctx: CallContext,
    gas_limit: u64,
    gas_used: u64,
    overlay: Overlay,
    /// Each key written, with its pending entry before (see `Overlay::pending_entry`).
    undo: Vec<Undo>,
    events: Vec<Event>,
}

/// How an operation ends early.
enum Stop {
    Refused(String),
    Status(ExecStatus),
    Fatal(VmError),
}

impl From<String> for Stop {
    fn from(reason: String) -> Stop {
        Stop::Refused(reason)
    }
}

impl Op<'_> {
    fn charge(&mut self, amount: u64) -> Result<(), Stop> {
        let used = self.gas_used.saturating_add(amount);
        if used > self.gas_limit {
            self.gas_used = self.gas_limit;
            return Err(Stop::Status(ExecStatus::OutOfGas));
        }
        self.gas_used = used;
        Ok(())
    }

    fn set(&mut self, key: Vec<u8>, value: Vec<u8>) {
        self.undo.push((key.clone(), self.overlay.pending_entry(&key)));
        self.overlay.set(key, value);
    }

    fn event(&mut self, topic: &str, data: &[u8]) {
        self.events.push(Event { contract: address(), topic: topic.to_string(), data: data.to_vec() });
    }

    /// Runs `method` of `contract` if its code has it: `init` after instantiation,
    /// `migrate` after a migration. Its failure fails the operation.
    fn run_hook(&mut self, contract: Address, code_hash: Hash, method: &str, args: Vec<u8>) -> Result<(), Stop> {
        let has = self.vm.has_method(code_hash, &self.overlay, method).map_err(|e| Stop::Refused(e.to_string()))?;
        if has != Some(true) {
            return Ok(());
        }
        let ctx = CallContext { contract, ..self.ctx.clone() };
        let overlay = std::mem::replace(&mut self.overlay, Overlay::new(std::sync::Arc::new(Empty)));
        let outcome = self.vm.call(ctx, method, args, self.gas_limit - self.gas_used, overlay).map_err(Stop::Fatal)?;
        let CallOutcome { status, gas_used, events, block, .. } = outcome;
        self.overlay = block;
        self.gas_used += gas_used;
        match status {
            ExecStatus::Success => {
                self.events.extend(events);
                Ok(())
            }
            ExecStatus::Aborted(message) => Err(Stop::Refused(format!("{method} failed: {message}"))),
            ExecStatus::Trapped(message) => Err(Stop::Status(ExecStatus::Trapped(format!("{method}: {message}")))),
            other => Err(Stop::Status(other)),
        }
    }
}

/// A state with nothing in it, standing in while the overlay is lent to a call.
struct Empty;

impl shutong_vm::state::StateReader for Empty {
    fn get(&self, _key: &[u8]) -> Option<Vec<u8>> {
        None
    }

    fn scan(&self, _prefix: &[u8], _after: Option<&[u8]>, _limit: usize) -> Vec<shutong_vm::state::Entry> {
        Vec::new()
    }
}

/// Executes one lifecycle transaction.
pub fn execute(
    vm: &Vm,
    ctx: CallContext,
    method: &str,
    args: &[u8],
    gas_limit: u64,
    overlay: Overlay,
) -> Result<CallOutcome, VmError> {
    let mut op = Op { vm, ctx, gas_limit, gas_used: 0, overlay, undo: Vec::new(), events: Vec::new() };
    let result = op.charge(vm.schedule().lifecycle_base).and_then(|()| match method {
        methods::UPLOAD => upload(&mut op, args),
        methods::INSTANTIATE => instantiate(&mut op, args),
        methods::MIGRATE => migrate(&mut op, args),
        methods::FREEZE => set_frozen(&mut op, args, true),
        methods::UNFREEZE => set_frozen(&mut op, args, false),
        other => Err(Stop::Status(ExecStatus::UnknownMethod(other.to_string()))),
    });
    let status = match result {
        Ok(output) => {
            return Ok(CallOutcome {
                status: ExecStatus::Success,
                gas_used: op.gas_used,
                output,
                events: op.events,
                block: op.overlay,
            });
        }
        Err(Stop::Fatal(err)) => return Err(err),
        Err(Stop::Refused(reason)) => ExecStatus::Aborted(reason),
        Err(Stop::Status(status)) => status,
    };
    let mut overlay = op.overlay;
    for (key, entry) in op.undo.into_iter().rev() {
        overlay.restore_entry(key, entry);
    }
    Ok(CallOutcome { status, gas_used: op.gas_used, output: Vec::new(), events: Vec::new(), block: overlay })
}

fn decode<T: Decode>(args: &[u8]) -> Result<T, Stop> {
    T::decode(args).map_err(|e| Stop::Refused(format!("invalid arguments: {e}")))
}

fn upload(op: &mut Op<'_>, args: &[u8]) -> Result<Vec<u8>, Stop> {
    let req: UploadCode = decode(args)?;
    op.charge(op.vm.schedule().upload_per_byte * req.code.len() as u64)?;
    let code_hash = Vm::code_hash(&req.code);
    if code_info(&op.overlay, &code_hash).is_some() {
        return Err(format!("code {code_hash} is already uploaded").into());
    }
    let policy = upload_policy(&op.overlay);
    if policy == policy::GOVERNANCE {
        let governance = Address::system(names::GOVERNANCE);
        let approval = keyspace::contract_storage(&governance, &approved_code_key(&code_hash.0));
        if op.overlay.get(&approval).is_none() {
            return Err(format!("code {code_hash} is not approved by governance (upload policy {policy})").into());
        }
    }
    let methods = op.vm.validate(&req.code).map_err(|e| Stop::Refused(format!("code refused: {e}")))?;
    let info = CodeInfo {
        code_hash: code_hash.0,
        uploader: op.ctx.origin.0,
        height: op.ctx.height,
        size: req.code.len() as u32,
        methods,
    };
    op.set(keyspace::code(&code_hash), req.code);
    op.set(keyspace::code_info(&code_hash), info.encode());
    op.event("code.uploaded", hex(&code_hash.0).as_bytes());
    Ok(code_hash.0.to_vec())
}

fn check_label(label: &str) -> Result<(), Stop> {
    let valid_char = |c: char| c.is_ascii_lowercase() || c.is_ascii_digit() || "-_.".contains(c);
    if label.is_empty() || label.len() > LABEL_BYTES_MAX as usize || !label.chars().all(valid_char) {
        return Err(format!("invalid label {label:?}: use 1 to 64 of a-z 0-9 - _ .").into());
    }
    Ok(())
}

fn instantiate(op: &mut Op<'_>, args: &[u8]) -> Result<Vec<u8>, Stop> {
    let req: Instantiate = decode(args)?;
    let code_hash = Hash(req.code_hash);
    if code_info(&op.overlay, &code_hash).is_none() {
        return Err(format!("code {code_hash} is not uploaded").into());
    }
    check_label(&req.label)?;
    let creator = op.ctx.origin;
    let contract = Address::instance(&creator, &req.label);
    if instance(&op.overlay, &contract).is_some() {
        return Err(format!("label {:?} is already used by this account: contract {contract}", req.label).into());
    }
    let height = op.ctx.height;
    let new = Instance { code_hash, admin: AccountId(req.admin), frozen: false };
    op.set(keyspace::instance(&contract), new.encode());
    let info = ContractInfo { creator: creator.0, label: req.label, created_height: height, code_height: height };
    op.set(keyspace::contract_info(&contract), info.encode());
    op.run_hook(contract, code_hash, "init", req.args)?;
    op.event("contract.instantiated", hex(&contract.0).as_bytes());
    Ok(contract.0.to_vec())
}

/// The instance at `contract`, if the transaction's signer is its admin.
fn administered(op: &Op<'_>, contract: &Address, action: &str) -> Result<Instance, Stop> {
    let found = instance(&op.overlay, contract).ok_or_else(|| format!("no contract at {contract}"))?;
    if found.admin != op.ctx.origin {
        return Err(format!("only the admin of {contract} may {action} it").into());
    }
    Ok(found)
}

fn migrate(op: &mut Op<'_>, args: &[u8]) -> Result<Vec<u8>, Stop> {
    let req: Migrate = decode(args)?;
    let contract = Address(req.contract);
    let mut current = administered(op, &contract, "migrate")?;
    if current.frozen {
        return Err(format!("{contract} is frozen: unfreeze it before migrating").into());
    }
    let code_hash = Hash(req.code_hash);
    if code_info(&op.overlay, &code_hash).is_none() {
        return Err(format!("code {code_hash} is not uploaded").into());
    }
    if current.code_hash == code_hash {
        return Err(format!("{contract} already runs code {code_hash}").into());
    }
    current.code_hash = code_hash;
    op.set(keyspace::instance(&contract), current.encode());
    if let Some(mut info) = contract_info(&op.overlay, &contract) {
        info.code_height = op.ctx.height;
        op.set(keyspace::contract_info(&contract), info.encode());
    }
    op.run_hook(contract, code_hash, "migrate", req.args)?;
    op.event("contract.migrated", hex(&contract.0).as_bytes());
    Ok(Vec::new())
}

fn set_frozen(op: &mut Op<'_>, args: &[u8], frozen: bool) -> Result<Vec<u8>, Stop> {
    let req: ContractRef = decode(args)?;
    let contract = Address(req.contract);
    let action = if frozen { "freeze" } else { "unfreeze" };
    let mut current = administered(op, &contract, action)?;
    if current.frozen == frozen {
        let state = if frozen { "already frozen" } else { "not frozen" };
        return Err(format!("{contract} is {state}").into());
    }
    current.frozen = frozen;
    op.set(keyspace::instance(&contract), current.encode());
    op.event(if frozen { "contract.frozen" } else { "contract.unfrozen" }, hex(&contract.0).as_bytes());
    Ok(Vec::new())
}
