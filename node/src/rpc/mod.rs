//! The JSON-RPC 2.0 server over HTTP. Method names, error codes and result shapes are shared
//! with the client in `shutong_api::rpc`; the reference is `docs/rpc.md`.

pub mod access;

use crate::mempool::{AdmitError, Mempool};
use crate::view::NodeView;
use jsonrpsee::server::{RpcModule, Server, ServerConfig, ServerHandle};
use jsonrpsee::types::{ErrorObjectOwned, Params};
use shutong_api::params::{AUDIT_PAGE_MAX, Request};
use shutong_api::rpc::{
    AuditPage, AuditProofInfo, AuditQuery, BlockInfo, CodeInfo, ConsistencyInfo, ContractInfo, EpochInfo, HeaderInfo,
    RpcCode, StateProofInfo, Status, code, method,
};
use shutong_codec::Encode;
use shutong_types::{AccountId, Address, ExecStatus, Hash, Receipt};
use shutong_vm::CallContext;
use shutong_vm::state::Overlay;
use std::net::SocketAddr;
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};
use tower::Service as _;

/// What the RPC handlers share.
#[derive(Debug, Clone)]
pub struct RpcContext {
    pub view: NodeView,
    pub mempool: Arc<Mutex<Mempool>>,
    pub query_gas_max: u64,
    pub chain: Arc<crate::chain::ChainStatus>,
    pub net: Arc<shutong_p2p::network::NetStats>,
    /// The executor's VM (the query VM is `view.vm`), for metrics.
    pub exec_vm: Arc<shutong_vm::Vm>,
    /// How long without a commit before `/health` reports the node unhealthy.
    pub stale_ms: u64,
}

type RpcResult<T> = Result<T, ErrorObjectOwned>;

fn error(code: i32, message: impl Into<String>) -> ErrorObjectOwned {
    ErrorObjectOwned::owned(code, message.into(), None::<()>)
}

fn invalid_params(message: impl Into<String>) -> ErrorObjectOwned {
    error(code::INVALID_PARAMS, message)
}

/// What each admission refusal answers: its code, whose label also names it in the
/// rejection metric.
pub fn admit_code(err: &AdmitError) -> RpcCode {
    match err {
        AdmitError::TooLarge { .. } => RpcCode::TxTooLarge,
        AdmitError::Malformed(_) => RpcCode::TxMalformed,
        AdmitError::WrongChain { .. } => RpcCode::WrongChain,
        AdmitError::Expired { .. } => RpcCode::TxExpired,
        AdmitError::ExpiryTooFar { .. } => RpcCode::ExpiryTooFar,
        AdmitError::GasLimit { .. } => RpcCode::GasLimit,
        AdmitError::NonceTooLow { .. } => RpcCode::NonceTooLow,
        AdmitError::NonceTooHigh { .. } => RpcCode::NonceTooHigh,
        AdmitError::Duplicate { .. } => RpcCode::TxDuplicate,
        AdmitError::BadSignature(_) => RpcCode::BadSignature,
        AdmitError::Full { .. } | AdmitError::FullBytes { .. } => RpcCode::MempoolFull,
        AdmitError::UnknownContract(_) => RpcCode::UnknownContract,
        AdmitError::UnknownMethod { .. } => RpcCode::UnknownMethod,
    }
}

/// The parameters of method `$name`, parsed by the one parser (`shutong_api::params`) and
/// taken apart by `$pat => $out`; a refusal is INVALID_PARAMS with the parser's reason.
macro_rules! params {
    ($params:expr, $name:expr, $pat:pat => $out:expr) => {
        match shutong_api::params::parse($name, $params.as_str()) {
            Ok($pat) => $out,
            Ok(_) => return Err(error(code::INTERNAL, "parameters parsed as another method's")),
            Err(e) => return Err(invalid_params(e.0)),
        }
    };
}

fn submit_tx(params: Params<'_>, ctx: &RpcContext, ext: &http::Extensions) -> RpcResult<Hash> {
    // Up to twice the limit, so an oversized transaction gets its own, precise error below.
    let bytes = params!(params, method::SUBMIT_TX, Request::SubmitTx { tx } => tx);
    let auth = ext.get::<access::Auth>();
    if let Some(access::Auth::Signed(caller)) = auth
        && caller.standing == access::Standing::Unregistered
    {
        let tx = <shutong_types::SignedTransaction as shutong_codec::Decode>::decode(&bytes)
            .map_err(|e| error(code::TX_MALFORMED, format!("transaction does not decode: {e}")))?;
        access::may_submit(auth, &tx)?;
    }
    let unavailable = |reason: String| {
        ctx.chain.metrics.rejected(RpcCode::StorageUnavailable.label());
        error(code::STORAGE_UNAVAILABLE, format!("this node cannot store transactions now: {reason}"))
    };
    if let Some(fault) = ctx.chain.disk.fault() {
        return Err(unavailable(fault));
    }
    let mut pool = ctx.mempool.lock().expect("mempool lock poisoned");
    let id = pool.admit(&bytes, &ctx.view).map_err(|err| {
        let code = admit_code(&err);
        ctx.chain.metrics.rejected(code.label());
        error(code.code(), err.to_string())
    })?;
    // Durable before it is acknowledged: a crash now loses nothing (`Storage::put_pending`).
    if let Err(err) = ctx.view.storage.put_pending(&id, &bytes) {
        pool.withdraw(&id);
        return Err(unavailable(err.to_string()));
    }
    Ok(id)
}

fn get_receipt(params: Params<'_>, ctx: &RpcContext) -> RpcResult<Option<Receipt>> {
    let tx_id = params!(params, method::GET_RECEIPT, Request::GetReceipt { tx_id } => tx_id);
    Ok(ctx.view.storage.receipt(&tx_id))
}

/// The refusal of a height this pruning node no longer holds, if `height` is one.
fn pruned(ctx: &RpcContext, height: u64) -> RpcResult<()> {
    let from = ctx.view.storage.retained_from();
    if height == 0 || height >= from || ctx.view.storage.block(height).is_some() {
        return Ok(());
    }
    Err(error(
        code::PRUNED,
        format!(
            "height {height} is pruned: this node keeps blocks, receipts and state from height {from} on \
             (storage.retention); ask an archive node for older ones"
        ),
    ))
}

fn get_block(params: Params<'_>, ctx: &RpcContext) -> RpcResult<Option<BlockInfo>> {
    let height = params!(params, method::GET_BLOCK, Request::GetBlock { height } => height);
    pruned(ctx, height)?;
    let Some(block) = ctx.view.storage.block(height) else { return Ok(None) };
    let certificate = ctx.view.storage.certificate(height);
    Ok(Some(BlockInfo {
        hash: block.header.hash(),
        txs: block.txs.iter().map(|tx| tx.id()).collect(),
        block_hex: hex::encode(block.encode()),
        certificate_hex: certificate.map(|c| hex::encode(c.encode())).unwrap_or_default(),
        header: block.header,
    }))
}

fn get_nonce(params: Params<'_>, ctx: &RpcContext, ext: &http::Extensions) -> RpcResult<u64> {
    let account = params!(params, method::GET_NONCE, Request::GetNonce { account } => account);
    access::may_read_nonce(ext.get::<access::Auth>(), &account)?;
    Ok(crate::mempool::ChainView::committed_nonce(&ctx.view, &account))
}

fn status(ctx: &RpcContext, validators: &[shutong_types::PublicKey]) -> Status {
    let tip = ctx.view.tip();
    Status {
        chain_id: ctx.view.chain_id.clone(),
        suite: ctx.view.storage.suite(),
        height: tip.height,
        block_hash: tip.hash,
        state_root: tip.state_root,
        timestamp_ms: tip.timestamp_ms,
        view: tip.view,
        consensus_view: ctx.chain.view.load(Ordering::Relaxed),
        finalized_view: ctx.chain.finalized_view.load(Ordering::Relaxed),
        peers: ctx.net.peers.load(Ordering::Relaxed),
        validators: shutong_execution::epochs::validators_for(&*ctx.view.storage, tip.height + 1)
            .map_or_else(|| validators.to_vec(), |e| e.validators),
        mempool_txs: ctx.mempool.lock().expect("mempool lock poisoned").len() as u64,
        full_node: ctx.chain.full_node.load(Ordering::Relaxed),
        retained_from: ctx.view.storage.retained_from(),
        archive: ctx.view.storage.retention() == shutong_storage::Retention::Archive,
    }
}

/// Runs a contract method read-only against committed state: its writes are dropped.
fn query(params: Params<'_>, ctx: &RpcContext) -> RpcResult<String> {
    let (contract, method_name, args) =
        params!(params, method::QUERY, Request::Query { contract, method, args } => (contract, method, args));
    let view = &ctx.view;
    // The VM reads the instance itself; this only gives a missing contract its own error code.
    view.instance(&contract)
        .ok_or_else(|| error(code::UNKNOWN_CONTRACT, format!("no contract at address {contract}")))?;
    let tip = view.tip();
    let call = CallContext { origin: AccountId::default(), contract, height: tip.height, time_ms: tip.timestamp_ms };
    let base: Arc<dyn shutong_vm::state::StateReader> = view.storage.clone();
    // On a thread of its own, with a stack far above the VM's native backstop, whatever
    // runtime serves the request.
    let vm = &view.vm;
    let gas = ctx.query_gas_max;
    let outcome = std::thread::scope(|scope| {
        std::thread::Builder::new()
            .name("rpc-query".into())
            .stack_size(QUERY_STACK_BYTES)
            .spawn_scoped(scope, move || vm.call(call, &method_name, args, gas, Overlay::new(base)))
            .map_err(|e| error(code::INTERNAL, format!("query thread: {e}")))?
            .join()
            .map_err(|_| error(code::INTERNAL, "query thread panicked"))
    })?;
    let outcome = outcome.map_err(|e| error(code::QUERY_FAILED, e.to_string()))?;
    match outcome.status {
        ExecStatus::Success => Ok(hex::encode(outcome.output)),
        ExecStatus::UnknownMethod(m) => {
            Err(error(code::UNKNOWN_METHOD, format!("contract {contract} has no method {m:?}")))
        }
        ExecStatus::Aborted(message) => Err(error(code::QUERY_FAILED, message)),
        other => Err(error(code::QUERY_FAILED, format!("query failed: {other:?}"))),
    }
}

/// The stack of a query's thread.
const QUERY_STACK_BYTES: usize = 8 << 20;

fn get_code(params: Params<'_>, ctx: &RpcContext) -> RpcResult<Option<CodeInfo>> {
    let code_hash = params!(params, method::GET_CODE, Request::GetCode { code_hash } => code_hash);
    Ok(shutong_execution::lifecycle::code_info(&*ctx.view.storage, &code_hash).map(|info| CodeInfo {
        code_hash: Hash(info.code_hash),
        uploader: AccountId(info.uploader),
        height: info.height,
        size: info.size,
        methods: info.methods,
    }))
}

fn get_contract(params: Params<'_>, ctx: &RpcContext) -> RpcResult<Option<ContractInfo>> {
    let address = params!(params, method::GET_CONTRACT, Request::GetContract { address } => address);
    let Some(instance) = ctx.view.instance(&address) else { return Ok(None) };
    let info = shutong_execution::lifecycle::contract_info(&*ctx.view.storage, &address);
    Ok(Some(ContractInfo {
        address,
        code_hash: instance.code_hash,
        admin: instance.admin,
        frozen: instance.frozen,
        creator: AccountId(info.as_ref().map_or([0; 32], |i| i.creator)),
        label: info.as_ref().map(|i| i.label.clone()).unwrap_or_default(),
        created_height: info.as_ref().map_or(0, |i| i.created_height),
        code_height: info.as_ref().map_or(0, |i| i.code_height),
    }))
}

// ---- Proofs ------------------------------------------------------------------------------

/// How far below a height `shutong_getFinalized` looks for a certificate.
const CERTIFIED_WINDOW: u64 = 1_000;
fn header_info(ctx: &RpcContext, height: u64) -> Option<HeaderInfo> {
    let block = ctx.view.storage.block(height)?;
    Some(HeaderInfo {
        height,
        header_hex: hex::encode(block.header.encode()),
        certificate_hex: ctx.view.storage.certificate(height).map(|c| hex::encode(c.encode())),
    })
}

/// A header height that proofs may be asked against: 1 ..= tip (header 0 commits nothing);
/// the tip if none is given.
fn proof_height(ctx: &RpcContext, height: Option<u64>) -> RpcResult<(u64, shutong_types::BlockHeader)> {
    let tip = ctx.view.tip().height;
    let height = height.unwrap_or(tip);
    if height == 0 || height > tip {
        return Err(error(
            code::HEIGHT_UNAVAILABLE,
            format!("height {height} carries no committed roots: ask for 1 to {tip}"),
        ));
    }
    pruned(ctx, height)?;
    let block =
        ctx.view.storage.block(height).ok_or_else(|| error(code::INTERNAL, format!("block {height} is missing")))?;
    Ok((height, block.header))
}

fn get_header(params: Params<'_>, ctx: &RpcContext) -> RpcResult<Option<HeaderInfo>> {
    let height = params!(params, method::GET_HEADER, Request::GetHeader { height } => height);
    pruned(ctx, height)?;
    Ok(header_info(ctx, height))
}

fn get_finalized(ctx: &RpcContext) -> RpcResult<HeaderInfo> {
    let tip = ctx.view.tip().height;
    let height = ctx.view.storage.certified_at_or_below(tip, CERTIFIED_WINDOW).ok_or_else(|| {
        error(code::NOT_FOUND, format!("no certificate in the {CERTIFIED_WINDOW} blocks below {tip}"))
    })?;
    header_info(ctx, height).ok_or_else(|| error(code::INTERNAL, format!("block {height} is missing")))
}

fn state_proof(ctx: &RpcContext, key: &[u8], height: Option<u64>) -> RpcResult<StateProofInfo> {
    let (height, _) = proof_height(ctx, height)?;
    let kept = ctx.view.storage.pruned_below();
    if height - 1 < kept {
        return Err(error(
            code::HEIGHT_UNAVAILABLE,
            format!("the state after block {} is pruned: this node keeps it from block {kept} on", height - 1),
        ));
    }
    let (value, proof) =
        shutong_execution::state_tree::prove(&*ctx.view.storage, height - 1, key).map_err(|e| match e {
            shutong_execution::state_tree::TreeError::Missing(_) => {
                error(code::HEIGHT_UNAVAILABLE, format!("the state after block {} is pruned: {e}", height - 1))
            }
            e => error(code::INTERNAL, e.to_string()),
        })?;
    Ok(StateProofInfo {
        height,
        key_hex: hex::encode(key),
        value_hex: value.map(hex::encode),
        proof_hex: hex::encode(proof.encode()),
    })
}

fn get_state_proof(params: Params<'_>, ctx: &RpcContext) -> RpcResult<StateProofInfo> {
    let (key, height) =
        params!(params, method::GET_STATE_PROOF, Request::GetStateProof { key, height } => (key, height));
    state_proof(ctx, &key, height)
}

fn get_audit_proof(params: Params<'_>, ctx: &RpcContext) -> RpcResult<AuditProofInfo> {
    let (index, height) =
        params!(params, method::GET_AUDIT_PROOF, Request::GetAuditProof { index, height } => (index, height));
    let (height, header) = proof_height(ctx, height)?;
    if index >= header.audit_size {
        return Err(error(
            code::NOT_FOUND,
            format!("leaf {index} is not in the log of {} leaves that header {height} commits to", header.audit_size),
        ));
    }
    audit_item(ctx, height, header.audit_size, index)
}

/// Leaf `index` with its inclusion proof in the log of `size` leaves that header `height`
/// commits to (the caller checked `index < size`).
fn audit_item(ctx: &RpcContext, height: u64, size: u64, index: u64) -> RpcResult<AuditProofInfo> {
    let leaf = ctx
        .view
        .storage
        .state_get(&shutong_types::keyspace::audit_leaf(index))
        .ok_or_else(|| error(code::INTERNAL, format!("audit leaf {index} is missing")))?;
    let proof = shutong_execution::audit_log::prove_inclusion(&*ctx.view.storage, index, size)
        .map_err(|e| error(code::INTERNAL, e.to_string()))?;
    Ok(AuditProofInfo { height, index, leaf_hex: hex::encode(leaf), proof_hex: hex::encode(proof.encode()) })
}

fn get_consistency_proof(params: Params<'_>, ctx: &RpcContext) -> RpcResult<ConsistencyInfo> {
    let (from, height) = params!(params, method::GET_CONSISTENCY_PROOF,
        Request::GetConsistencyProof { from_size, height } => (from_size, height));
    let (height, header) = proof_height(ctx, height)?;
    if from > header.audit_size {
        return Err(error(
            code::NOT_FOUND,
            format!("the log at header {height} has {} leaves, fewer than {from}", header.audit_size),
        ));
    }
    let proof = shutong_execution::audit_log::prove_consistency(&*ctx.view.storage, from, header.audit_size)
        .map_err(|e| error(code::INTERNAL, e.to_string()))?;
    Ok(ConsistencyInfo { height, proof_hex: hex::encode(proof.encode()) })
}

fn get_epoch(params: Params<'_>, ctx: &RpcContext) -> RpcResult<EpochInfo> {
    let epoch = params!(params, method::GET_EPOCH, Request::GetEpoch { epoch } => epoch);
    let start = ctx
        .view
        .storage
        .epoch_start(epoch)
        .ok_or_else(|| error(code::NOT_FOUND, format!("epoch {epoch} has not begun")))?;
    // The previous epoch's last block commits the state after the block before it, where
    // the change was already scheduled and could no longer be replaced.
    let last = start - 1;
    let last_header =
        header_info(ctx, last).ok_or_else(|| error(code::INTERNAL, format!("block {last} is missing")))?;
    // The proofs stored when the epoch began: the same as proving against header `last`
    // now, and still there once a pruning node dropped that state.
    if let Some(stored) = ctx.view.storage.epoch_proofs(epoch) {
        let info = |key: Vec<u8>, (value, proof): (Option<Vec<u8>>, shutong_types::smt::StateProof)| StateProofInfo {
            height: last,
            key_hex: hex::encode(key),
            value_hex: value.map(hex::encode),
            proof_hex: hex::encode(proof.encode()),
        };
        return Ok(EpochInfo {
            epoch,
            start_height: start,
            last_header,
            validators: info(shutong_execution::epochs::validators_key(), stored.validators),
            pending: info(shutong_execution::epochs::pending_key(), stored.pending),
        });
    }
    Ok(EpochInfo {
        epoch,
        start_height: start,
        last_header,
        validators: state_proof(ctx, &shutong_execution::epochs::validators_key(), Some(last))?,
        pending: state_proof(ctx, &shutong_execution::epochs::pending_key(), Some(last))?,
    })
}

/// Checks that `tx_id` is a committed, successful `audit.log_query` recording `query`.
fn check_logged(ctx: &RpcContext, query: &AuditQuery, ext: &http::Extensions) -> RpcResult<()> {
    use shutong_system_api::audit::LogQuery;
    let not_logged = |why: String| error(code::QUERY_NOT_LOGGED, why);
    let storage = &ctx.view.storage;
    let receipt = storage
        .receipt(&query.log_tx)
        .ok_or_else(|| not_logged(format!("no committed transaction {}", query.log_tx)))?;
    if !receipt.status.is_success() {
        return Err(not_logged(format!("transaction {} did not succeed", query.log_tx)));
    }
    let block = storage.block(receipt.height).ok_or_else(|| error(code::INTERNAL, "a receipt's block is missing"))?;
    let tx = block
        .txs
        .iter()
        .find(|tx| tx.id() == query.log_tx)
        .ok_or_else(|| error(code::INTERNAL, "a receipt's transaction is missing from its block"))?;
    let audit = Address::system(shutong_system_api::names::AUDIT);
    if tx.tx.call.contract != audit || tx.tx.call.method != "log_query" {
        return Err(not_logged(format!("transaction {} is not a call of audit.log_query", query.log_tx)));
    }
    // Each auditor's questions are on the record as its own: it may not ride on another's.
    if let Some(access::Auth::Signed(caller)) = ext.get::<access::Auth>()
        && caller.account != tx.tx.sender
    {
        return Err(not_logged(format!(
            "transaction {} logged account {}'s question, not this caller's ({})",
            query.log_tx, tx.tx.sender, caller.account
        )));
    }
    let logged = <LogQuery as shutong_codec::Decode>::decode(&tx.tx.call.args)
        .map_err(|e| error(code::INTERNAL, format!("a logged query does not decode: {e}")))?;
    if logged.by != query.by
        || logged.value != query.value
        || logged.from_ms != query.from_ms
        || logged.to_ms != query.to_ms
    {
        return Err(not_logged(format!(
            "transaction {} logged another question ({} {:?} {}..{})",
            query.log_tx, logged.by, logged.value, logged.from_ms, logged.to_ms
        )));
    }
    Ok(())
}

fn audit_query(params: Params<'_>, ctx: &RpcContext, ext: &http::Extensions) -> RpcResult<AuditPage> {
    let (query, cursor) =
        params!(params, method::AUDIT_QUERY, Request::AuditQuery { query, cursor } => (query, cursor));
    let by = shutong_execution::audit_index::By::parse(&query.by, &query.value)
        .map_err(|e| invalid_params(e.to_string()))?;
    let limit = query.limit.unwrap_or(AUDIT_PAGE_MAX);
    check_logged(ctx, &query, ext)?;
    let (height, header) = proof_height(ctx, query.height)?;
    let (start, end) = shutong_execution::audit_index::range(&by, query.from_ms, query.to_ms, cursor);
    let positions = ctx.view.storage.audit_index_scan(&start, &end, limit as usize + 1);
    let mut items = Vec::with_capacity(positions.len());
    let mut next = None;
    for (i, &(_, index)) in positions.iter().enumerate() {
        // Leaves past the header's log wait for the next header; a full page has a next one.
        if index >= header.audit_size || i == limit as usize {
            if i > 0 {
                let (t, n) = positions[i - 1];
                next = Some(hex::encode([t.to_be_bytes(), n.to_be_bytes()].concat()));
            }
            break;
        }
        items.push(audit_item(ctx, height, header.audit_size, index)?);
    }
    let size = header.audit_size;
    let mut completeness = shutong_api::rpc::Completeness::default();
    // The first page proves where the answer starts: the selection's leaf just before it.
    if cursor.is_none() {
        let (below, prefix) = shutong_execution::audit_index::before(&by, query.from_ms);
        if let Some((_, index)) = ctx.view.storage.audit_index_last_below(&below, &prefix).filter(|p| p.1 < size) {
            completeness.before = Some(audit_item(ctx, height, size, index)?);
        }
    }
    // The last page proves where it ends: the leaf just after it, or the selection's count.
    if next.is_none() {
        let first_after = shutong_execution::audit_index::after(&by, query.to_ms)
            .and_then(|(start, end)| ctx.view.storage.audit_index_scan(&start, &end, 1).first().copied())
            .filter(|&(_, index)| index < size);
        match first_after {
            Some((_, index)) => completeness.after = Some(audit_item(ctx, height, size, index)?),
            None => {
                let walk = shutong_api::audit_query::walk_of(&query).map_err(invalid_params)?;
                if let Some(key) = walk.count_key() {
                    completeness.count = Some(state_proof(ctx, &key, Some(height))?);
                }
            }
        }
    }
    Ok(AuditPage { height, items, next, completeness })
}

/// Feeds committed blocks to a subscriber, whole or as the events whose topic starts with
/// `prefix`, until it goes away. A subscriber that falls more than the buffer behind is told
/// how many blocks it missed and ended, rather than holding the node's memory.
async fn feed(
    pending: jsonrpsee::PendingSubscriptionSink,
    ctx: Arc<RpcContext>,
    prefix: Option<String>,
) -> jsonrpsee::core::SubscriptionResult {
    let mut blocks = ctx.chain.committed.subscribe();
    let sink = pending.accept().await?;
    loop {
        let block = match blocks.recv().await {
            Ok(block) => block,
            Err(tokio::sync::broadcast::error::RecvError::Lagged(missed)) => {
                return Err(format!("the subscriber fell {missed} blocks behind; subscribe again").into());
            }
            Err(tokio::sync::broadcast::error::RecvError::Closed) => return Ok(()),
        };
        match &prefix {
            None => sink.send(serde_json::value::to_raw_value(&*block)?).await?,
            Some(prefix) => {
                for event in block.events.iter().filter(|e| e.topic.starts_with(prefix.as_str())) {
                    sink.send(serde_json::value::to_raw_value(event)?).await?;
                }
            }
        }
    }
}

impl RpcContext {
    /// What is read at scrape time.
    fn gauges(&self) -> crate::metrics::Gauges {
        let (mempool_txs, mempool_bytes) = {
            let pool = self.mempool.lock().expect("mempool lock poisoned");
            (pool.len() as u64, pool.bytes() as u64)
        };
        let next = self.view.storage.tip().map_or(1, |tip| tip.height + 1);
        let validators = shutong_execution::epochs::validators_for(&*self.view.storage, next)
            .map_or(0, |e| e.validators.len() as u64);
        crate::metrics::Gauges {
            view: self.chain.view.load(Ordering::Relaxed),
            finalized_view: self.chain.finalized_view.load(Ordering::Relaxed),
            peers: self.net.peers.load(Ordering::Relaxed),
            validators,
            mempool_txs,
            mempool_bytes,
            dropped_inbound: self.net.dropped_inbound.load(Ordering::Relaxed),
            dropped_outbound: self.net.dropped_outbound.load(Ordering::Relaxed),
            dropped_over_rate: self.net.dropped_over_rate.load(Ordering::Relaxed),
            bans: self.net.bans.load(Ordering::Relaxed),
            vms: vec![("executor", self.exec_vm.stats()), ("query", self.view.vm.stats())],
            db: self.view.storage.db_figures(),
            disk_fault: self.chain.disk.fault(),
        }
    }
}

/// `GET /metrics` (Prometheus text) and `GET /health` (JSON; HTTP 503 when unhealthy) on the
/// RPC port, in front of JSON-RPC.
#[derive(Clone)]
struct Probes<S> {
    inner: S,
    ctx: Arc<RpcContext>,
}

#[derive(Clone)]
struct ProbeLayer(Arc<RpcContext>);

impl<S> tower::Layer<S> for ProbeLayer {
    type Service = Probes<S>;

    fn layer(&self, inner: S) -> Probes<S> {
        Probes { inner, ctx: Arc::clone(&self.0) }
    }
}

pub(crate) fn plain(status: u16, content_type: &'static str, body: String) -> jsonrpsee::server::HttpResponse {
    let mut response = jsonrpsee::server::HttpResponse::new(jsonrpsee::server::HttpBody::from(body));
    *response.status_mut() = http::StatusCode::from_u16(status).unwrap_or(http::StatusCode::INTERNAL_SERVER_ERROR);
    response.headers_mut().insert(http::header::CONTENT_TYPE, http::HeaderValue::from_static(content_type));
    response
}

impl<S, B> tower::Service<jsonrpsee::server::HttpRequest<B>> for Probes<S>
where
    S: tower::Service<jsonrpsee::server::HttpRequest<B>, Response = jsonrpsee::server::HttpResponse>,
    S::Error: Into<jsonrpsee::core::BoxError> + 'static,
    S::Future: Send + 'static,
{
    type Response = jsonrpsee::server::HttpResponse;
    type Error = jsonrpsee::core::BoxError;
    type Future =
        std::pin::Pin<Box<dyn std::future::Future<Output = Result<Self::Response, Self::Error>> + Send + 'static>>;

    fn poll_ready(&mut self, cx: &mut std::task::Context<'_>) -> std::task::Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx).map_err(Into::into)
    }

    fn call(&mut self, request: jsonrpsee::server::HttpRequest<B>) -> Self::Future {
        if request.method() == http::Method::GET {
            match request.uri().path() {
                "/metrics" => {
                    let text =
                        crate::metrics::render(&self.ctx.chain.metrics, &self.ctx.net.traffic, &self.ctx.gauges());
                    return Box::pin(std::future::ready(Ok(plain(200, "text/plain; version=0.0.4", text))));
                }
                "/health" => {
                    let now_ms = std::time::SystemTime::now()
                        .duration_since(std::time::UNIX_EPOCH)
                        .map_or(0, |d| d.as_millis() as u64);
                    let (healthy, json) =
                        crate::metrics::health(&self.ctx.chain.metrics, &self.ctx.gauges(), now_ms, self.ctx.stale_ms);
                    let status = if healthy { 200 } else { 503 };
                    return Box::pin(std::future::ready(Ok(plain(status, "application/json", json.to_string()))));
                }
                _ => {}
            }
        }
        let future = self.inner.call(request);
        Box::pin(async move { future.await.map_err(Into::into) })
    }
}

/// How long a client has to finish the TLS handshake.
const TLS_HANDSHAKE_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(10);

/// Loads `rpc.tls`'s certificate chain and key (PEM) into a TLS acceptor.
pub fn tls_acceptor(
    cert_file: &std::path::Path,
    key_file: &std::path::Path,
) -> Result<tokio_rustls::TlsAcceptor, crate::Error> {
    use rustls::pki_types::pem::PemObject;
    let tls =
        |field, path: &std::path::Path, reason: String| crate::Error::Tls { field, path: path.to_path_buf(), reason };
    let certs = rustls::pki_types::CertificateDer::pem_file_iter(cert_file)
        .and_then(|certs| certs.collect::<Result<Vec<_>, _>>())
        .map_err(|e| tls("cert_file", cert_file, format!("not a PEM certificate chain: {e}")))?;
    if certs.is_empty() {
        return Err(tls("cert_file", cert_file, "holds no certificate".into()));
    }
    let key = rustls::pki_types::PrivateKeyDer::from_pem_file(key_file)
        .map_err(|e| tls("key_file", key_file, format!("not a PEM private key: {e}")))?;
    let config = rustls::ServerConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
        .with_safe_default_protocol_versions()
        .expect("ring supports the default TLS protocol versions")
        .with_no_client_auth()
        .with_single_cert(certs, key)
        .map_err(|e| tls("key_file", key_file, format!("does not match the certificate: {e}")))?;
    Ok(tokio_rustls::TlsAcceptor::from(Arc::new(config)))
}

/// A method name is registered once; jsonrpsee refuses only a second registration.
const REGISTERED_ONCE: &str = "each method name is registered once";

/// Starts the server; it runs until the handle is stopped or dropped. Each connection is
/// accepted here (with TLS if `tls` is given), each request passes the access gate
/// ([`access`]), and the JSON-RPC calls pass its guard.
pub async fn serve(
    rpc: &crate::config::RpcConfig,
    tls: Option<tokio_rustls::TlsAcceptor>,
    ctx: RpcContext,
    validators: Vec<shutong_types::PublicKey>,
) -> Result<(SocketAddr, ServerHandle), crate::Error> {
    let listen = rpc.listen;
    let cannot_listen = |e: std::io::Error| crate::Error::RpcListen { address: listen, reason: e.to_string() };
    let listener = tokio::net::TcpListener::bind(listen).await.map_err(cannot_listen)?;
    let addr = listener.local_addr().map_err(cannot_listen)?;
    let gate = Arc::new(access::Gate::new(rpc, &ctx.view.chain_id, Arc::clone(&ctx.view.storage)));
    let config = ServerConfig::builder()
        .max_request_body_size(rpc.request_bytes_max)
        .max_response_body_size(16 << 20)
        .max_connections(rpc.connections_max)
        .set_batch_request_config(jsonrpsee::server::BatchRequestConfig::Limit(BATCH_CALLS_MAX))
        .build();
    let probes = ProbeLayer(Arc::new(ctx.clone()));
    let builder = Server::builder()
        .set_config(config)
        .set_http_middleware(tower::ServiceBuilder::new().layer(probes))
        .set_rpc_middleware(
            jsonrpsee::server::middleware::rpc::RpcServiceBuilder::new().layer(access::GuardLayer(Arc::clone(&gate))),
        )
        .to_service_builder();
    let mut module = RpcModule::new(ctx);
    module
        .register_method(method::STATUS, move |_, ctx, _| -> RpcResult<Status> { Ok(status(ctx, &validators)) })
        .expect(REGISTERED_ONCE);
    module
        .register_blocking_method(method::SUBMIT_TX, |params, ctx, ext| submit_tx(params, &ctx, &ext))
        .expect(REGISTERED_ONCE);
    module.register_method(method::GET_RECEIPT, |params, ctx, _| get_receipt(params, ctx)).expect(REGISTERED_ONCE);
    module.register_method(method::GET_BLOCK, |params, ctx, _| get_block(params, ctx)).expect(REGISTERED_ONCE);
    module.register_method(method::GET_NONCE, get_nonce).expect(REGISTERED_ONCE);
    module.register_blocking_method(method::QUERY, |params, ctx, _| query(params, &ctx)).expect(REGISTERED_ONCE);
    module.register_method(method::GET_CODE, |params, ctx, _| get_code(params, ctx)).expect(REGISTERED_ONCE);
    module.register_method(method::GET_CONTRACT, |params, ctx, _| get_contract(params, ctx)).expect(REGISTERED_ONCE);
    module.register_method(method::GET_HEADER, |params, ctx, _| get_header(params, ctx)).expect(REGISTERED_ONCE);
    module.register_method(method::GET_FINALIZED, |_, ctx, _| get_finalized(ctx)).expect(REGISTERED_ONCE);
    module.register_method(method::GET_EPOCH, |params, ctx, _| get_epoch(params, ctx)).expect(REGISTERED_ONCE);
    module
        .register_method(method::GET_STATE_PROOF, |params, ctx, _| get_state_proof(params, ctx))
        .expect(REGISTERED_ONCE);
    module
        .register_method(method::GET_AUDIT_PROOF, |params, ctx, _| get_audit_proof(params, ctx))
        .expect(REGISTERED_ONCE);
    module
        .register_method(method::GET_CONSISTENCY_PROOF, |params, ctx, _| get_consistency_proof(params, ctx))
        .expect(REGISTERED_ONCE);
    module
        .register_blocking_method(method::AUDIT_QUERY, |params, ctx, ext| audit_query(params, &ctx, &ext))
        .expect(REGISTERED_ONCE);
    module
        .register_subscription(
            method::SUBSCRIBE_BLOCKS,
            method::BLOCK_NOTIFICATION,
            method::UNSUBSCRIBE_BLOCKS,
            |_, pending, ctx, _| feed(pending, ctx, None),
        )
        .expect(REGISTERED_ONCE);
    module
        .register_subscription(
            method::SUBSCRIBE_EVENTS,
            method::EVENT_NOTIFICATION,
            method::UNSUBSCRIBE_EVENTS,
            |params, pending, ctx, _| async move {
                let prefix = match shutong_api::params::parse(method::SUBSCRIBE_EVENTS, params.as_str()) {
                    Ok(Request::SubscribeEvents { prefix }) => prefix,
                    Ok(_) => {
                        pending.reject(error(code::INTERNAL, "parameters parsed as another method's")).await;
                        return Ok(());
                    }
                    Err(e) => {
                        pending.reject(invalid_params(e.0)).await;
                        return Ok(());
                    }
                };
                feed(pending, ctx, Some(prefix)).await
            },
        )
        .expect(REGISTERED_ONCE);
    let methods: jsonrpsee::Methods = module.into();
    let (stop, handle) = jsonrpsee::server::stop_channel();
    let call_timeout = gate.call_timeout();
    tokio::spawn(async move {
        loop {
            let (socket, remote) = tokio::select! {
                accepted = listener.accept() => match accepted {
                    Ok(accepted) => accepted,
                    Err(err) => {
                        // Out of descriptors, for one: back off rather than spin.
                        tracing::warn!(%err, "rpc accept failed");
                        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
                        continue;
                    }
                },
                _ = stop.clone().shutdown() => break,
            };
            let _ = socket.set_nodelay(true);
            let (gate, builder, methods, stop, tls) =
                (Arc::clone(&gate), builder.clone(), methods.clone(), stop.clone(), tls.clone());
            tokio::spawn(async move {
                let stopped = stop.clone().shutdown();
                let service = tower::service_fn(move |mut request: http::Request<hyper::body::Incoming>| {
                    let gate = Arc::clone(&gate);
                    let mut rpc = builder.clone().build(methods.clone(), stop.clone());
                    request.extensions_mut().insert(access::Remote(remote));
                    let answer: std::pin::Pin<
                        Box<
                            dyn std::future::Future<
                                    Output = Result<jsonrpsee::server::HttpResponse, jsonrpsee::core::BoxError>,
                                > + Send,
                        >,
                    > = Box::pin(async move {
                        let upgrade = jsonrpsee::server::ws::is_upgrade_request(&request);
                        let request = match gate.authenticate(request).await {
                            Ok(request) => request,
                            Err(response) => return Ok::<_, jsonrpsee::core::BoxError>(response),
                        };
                        if upgrade {
                            return rpc.call(request).await;
                        }
                        // A body that trickles in, or a call that never ends, is cut off.
                        match tokio::time::timeout(call_timeout * 2, rpc.call(request)).await {
                            Ok(answer) => answer,
                            Err(_) => Ok(plain(408, "text/plain", "request not completed in time".into())),
                        }
                    });
                    answer
                });
                match tls {
                    None => {
                        tokio::spawn(jsonrpsee::server::serve_with_graceful_shutdown(socket, service, stopped));
                    }
                    Some(tls) => match tokio::time::timeout(TLS_HANDSHAKE_TIMEOUT, tls.accept(socket)).await {
                        Ok(Ok(stream)) => {
                            tokio::spawn(jsonrpsee::server::serve_with_graceful_shutdown(stream, service, stopped));
                        }
                        Ok(Err(err)) => tracing::debug!(%remote, %err, "rpc TLS handshake failed"),
                        Err(_) => tracing::debug!(%remote, "rpc TLS handshake not completed in time"),
                    },
                }
            });
        }
    });
    Ok((addr, handle))
}

/// The most calls in one JSON-RPC batch.
pub const BATCH_CALLS_MAX: u32 = 64;
