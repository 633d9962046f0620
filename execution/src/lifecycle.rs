//! The contract lifecycle, native to the node at `Address::system(names::LIFECYCLE)`:
//! upload, instantiate, migrate, freeze and unfreeze. Arguments, metadata and rules are in
//! `shutong_system_api::lifecycle`; `docs/contracts.md` lists every refusal.
//!
//! Each operation is one transaction with a receipt like a contract call's: a refusal is an
//! `Aborted` status naming the rule, and nothing it wrote stays. An `init` or `migrate`
//! method of the code runs inside the operation, and the operation stands only if it succeeds.
//!
//! The acting account is the immediate caller: a transaction's signer (the lifecycle is
//! reached only as a transaction's own call, never from a contract), or the governance
//! contract when [`begin_block`] carries out a committee decision the governance contract
//! scheduled. The system contracts are administered by the governance contract, so no key
//! can freeze, migrate or hand them over.

use shutong_codec::{Decode, Encode};
use shutong_system_api::governance::{
    LifecycleOp, LifecycleOutcome, SCHEDULED_GAS_MAX, SCHEDULED_PER_BLOCK_MAX, SCHEDULED_PREFIX, ScheduledOp,
    approved_code_key, outcome_key, param_key,
};
use shutong_system_api::lifecycle::{
    CodeInfo, ContractInfo, ContractRef, Instantiate, LABEL_BYTES_MAX, Migrate, SetAdmin, UploadCode, methods, policy,
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
    /// The immediate caller: the signer, or the governance contract.
    actor: AccountId,
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

/// The account of the governance contract: the system contracts' admin, and the acting
/// account of committee decisions.
pub fn governance_account() -> AccountId {
    AccountId(Address::system(names::GOVERNANCE).0)
}

/// The governance storage key that marks `contract` as frozen by a committee decision.
fn frozen_by_committee_key(contract: &Address) -> Vec<u8> {
    let mut key = b"frozen-by-committee/".to_vec();
    key.extend_from_slice(&contract.0);
    keyspace::contract_storage(&Address::system(names::GOVERNANCE), &key)
}

/// Executes one lifecycle transaction, signed by `ctx.origin`.
pub fn execute(
    vm: &Vm,
    ctx: CallContext,
    method: &str,
    args: &[u8],
    gas_limit: u64,
    overlay: Overlay,
) -> Result<CallOutcome, VmError> {
    let actor = ctx.origin;
    run(vm, ctx, actor, method, args, gas_limit, overlay)
}

fn run(
    vm: &Vm,
    ctx: CallContext,
    actor: AccountId,
    method: &str,
    args: &[u8],
    gas_limit: u64,
    overlay: Overlay,
) -> Result<CallOutcome, VmError> {
    let mut op = Op { vm, ctx, actor, gas_limit, gas_used: 0, overlay, undo: Vec::new(), events: Vec::new() };
    let result = op.charge(vm.schedule().lifecycle_base).and_then(|()| match method {
        methods::UPLOAD => upload(&mut op, args),
        methods::INSTANTIATE => instantiate(&mut op, args),
        methods::MIGRATE => migrate(&mut op, args),
        methods::FREEZE => set_frozen(&mut op, args, true),
        methods::UNFREEZE => set_frozen(&mut op, args, false),
        methods::SET_ADMIN => set_admin(&mut op, args),
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
    let code_hash = Vm::code_hash(op.vm.suite(), &req.code);
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
    let contract = Address::instance(op.vm.suite(), &creator, &req.label);
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

/// The instance at `contract`, if the acting account is its admin.
fn administered(op: &Op<'_>, contract: &Address, action: &str) -> Result<Instance, Stop> {
    let found = instance(&op.overlay, contract).ok_or_else(|| format!("no contract at {contract}"))?;
    if found.admin != op.actor {
        if found.admin == governance_account() {
            return Err(format!(
                "{contract} is administered by the governance committee: only a carried proposal may {action} it"
            )
            .into());
        }
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
    let by_committee = op.actor == governance_account();
    // The committee freezes and unfreezes any contract (a rogue enterprise contract among
    // them); what it froze, only it unfreezes.
    let mut current = if by_committee {
        instance(&op.overlay, &contract).ok_or_else(|| format!("no contract at {contract}"))?
    } else {
        administered(op, &contract, action)?
    };
    if current.frozen == frozen {
        let state = if frozen { "already frozen" } else { "not frozen" };
        return Err(format!("{contract} is {state}").into());
    }
    let marker = frozen_by_committee_key(&contract);
    if !frozen && !by_committee && op.overlay.get(&marker).is_some() {
        return Err(format!("{contract} was frozen by the governance committee: only it may unfreeze it").into());
    }
    if by_committee {
        if frozen {
            op.set(marker, vec![1]);
        } else if op.overlay.get(&marker).is_some() {
            op.undo.push((marker.clone(), op.overlay.pending_entry(&marker)));
            op.overlay.remove(marker);
        }
    }
    current.frozen = frozen;
    op.set(keyspace::instance(&contract), current.encode());
    op.event(if frozen { "contract.frozen" } else { "contract.unfrozen" }, hex(&contract.0).as_bytes());
    Ok(Vec::new())
}

fn set_admin(op: &mut Op<'_>, args: &[u8]) -> Result<Vec<u8>, Stop> {
    let req: SetAdmin = decode(args)?;
    let contract = Address(req.contract);
    let mut current = administered(op, &contract, "hand over")?;
    if current.admin.0 == req.admin {
        return Err(format!("{} already administers {contract}", AccountId(req.admin)).into());
    }
    current.admin = AccountId(req.admin);
    op.set(keyspace::instance(&contract), current.encode());
    op.event("contract.admin_changed", hex(&contract.0).as_bytes());
    Ok(Vec::new())
}

/// Carries out the committee's lifecycle decisions due at or before `height` (at most
/// `SCHEDULED_PER_BLOCK_MAX`, earliest first; the rest wait for the next block), before the
/// block's transactions run, with the governance contract as the acting account. Each
/// decision's outcome is recorded under its proposal (`governance::outcome_key`); a refused
/// one changes nothing else. Fails only as a transaction's execution would (`VmError`).
pub fn begin_block(vm: &Vm, mut overlay: Overlay, height: u64, time_ms: u64) -> Result<Overlay, VmError> {
    let governance = Address::system(names::GOVERNANCE);
    let prefix = keyspace::contract_storage(&governance, SCHEDULED_PREFIX);
    let due = overlay.scan(&prefix, None, SCHEDULED_PER_BLOCK_MAX);
    for (key, value) in due {
        let at = key.get(prefix.len()..prefix.len() + 8).and_then(|b| b.try_into().ok()).map(u64::from_be_bytes);
        if at.is_none_or(|at| at > height) {
            break;
        }
        overlay.remove(key);
        let Ok(scheduled) = ScheduledOp::decode(&value) else {
            continue;
        };
        let (method, args) = match scheduled.op {
            LifecycleOp::Freeze => (methods::FREEZE, ContractRef { contract: scheduled.contract }.encode()),
            LifecycleOp::Unfreeze => (methods::UNFREEZE, ContractRef { contract: scheduled.contract }.encode()),
            LifecycleOp::Migrate { code_hash, args } => {
                (methods::MIGRATE, Migrate { contract: scheduled.contract, code_hash, args }.encode())
            }
            LifecycleOp::SetAdmin { admin } => {
                (methods::SET_ADMIN, SetAdmin { contract: scheduled.contract, admin }.encode())
            }
        };
        let ctx = CallContext { origin: governance_account(), contract: address(), height, time_ms };
        let outcome = run(vm, ctx, governance_account(), method, &args, SCHEDULED_GAS_MAX, overlay)?;
        overlay = outcome.block;
        let refused = match outcome.status {
            ExecStatus::Success => None,
            ExecStatus::Aborted(reason) => Some(reason),
            other => Some(format!("{other:?}")),
        };
        let record = LifecycleOutcome { height, done: true, refused };
        overlay.set(keyspace::contract_storage(&governance, &outcome_key(scheduled.proposal)), record.encode());
    }
    Ok(overlay)
}
