//! The executor: runs a finalized block's transactions through the VM in order and computes
//! the write set, receipts and roots that commit with it.
//!
//! Per transaction: the nonce must be the sender's next one (else the receipt is `Rejected`
//! and nothing else happens); the nonce then advances whatever the call does, so a failed
//! transaction cannot be replayed; the call runs with the transaction's gas limit and its
//! writes and events are kept only if it succeeds. Signatures are not checked again here:
//! they were checked once at admission.

use crate::audit_log::{self, LogError, LogReader, LogUpdate, Tile, TileKey};
use crate::state_tree::{self, Node, NodeKey, TreeError, TreeReader, TreeUpdate};
use shutong_codec::{Decode, Encode};
use shutong_types::auditlog;
use shutong_types::keyspace;
use shutong_types::{Block, ExecStatus, Hash, Receipt, Suite, merkle_root};
use shutong_vm::state::{Entry, Overlay, StateReader, Writes, scan_layered};
use shutong_vm::{CallContext, Vm, VmError};
use std::sync::Arc;

/// What executing one block produced.
#[derive(Debug)]
pub struct BlockOutput {
    pub writes: Writes,
    pub receipts: Vec<Receipt>,
    /// The block's state-tree nodes; its root is the state root after the block.
    pub tree: TreeUpdate,
    /// What the block appended to the audit log; its root and size are the log's after it.
    pub log: LogUpdate,
    pub state_root: Hash,
    pub receipts_root: Hash,
    pub gas_used: u64,
}

impl BlockOutput {
    /// What the block's execution commits to, for its child's header.
    pub fn roots(&self) -> shutong_types::Roots {
        shutong_types::Roots {
            state: self.state_root,
            receipts: self.receipts_root,
            audit: self.log.root,
            audit_size: self.log.size,
        }
    }
}

/// Committed state, state tree and audit log: what the executor builds on.
pub trait Committed: StateReader + TreeReader + LogReader {}

impl<T: StateReader + TreeReader + LogReader> Committed for T {}

/// What an executor could not do. None of it is the block's fault, and none of it may become
/// a receipt: the node neither votes for nor commits a block it cannot execute.
#[derive(Debug, thiserror::Error)]
pub enum ExecError {
    #[error(transparent)]
    Vm(#[from] VmError),
    #[error(transparent)]
    Tree(#[from] TreeError),
    #[error(transparent)]
    Log(#[from] LogError),
}

/// Reads a `u64` nonce as stored (absent means 0).
pub fn decode_nonce(bytes: Option<Vec<u8>>) -> u64 {
    bytes.map_or(0, |b| u64::decode(&b).expect("stored nonce is a u64"))
}

/// Appends the audit-log leaves a block wrote (keys `audit_leaf(size..)` in its writes) to the
/// log of `size` leaves.
pub fn append_leaves(reader: &dyn LogReader, size: u64, writes: &Writes) -> Result<LogUpdate, LogError> {
    let new_size = writes.get(&keyspace::audit_log_size()).map_or(size, |v| decode_nonce(v.clone()));
    let leaves: Vec<Hash> = (size..new_size)
        .map(|index| {
            let leaf = writes.get(&keyspace::audit_leaf(index)).and_then(Option::as_ref);
            auditlog::leaf_hash(reader.suite(), leaf.expect("the VM writes every leaf it counts"))
        })
        .collect();
    audit_log::append(reader, size, &leaves)
}

/// Committed state with the writes of blocks that are executed but not yet committed on
/// top, newest last.
struct Layered {
    base: Arc<dyn Committed>,
    layers: Vec<Arc<BlockOutput>>,
}

impl TreeReader for Layered {
    fn suite(&self) -> Suite {
        TreeReader::suite(&*self.base)
    }

    fn tree_node(&self, key: &NodeKey) -> Result<Option<Node>, TreeError> {
        for layer in self.layers.iter().rev() {
            if let Some(node) = layer.tree.nodes.get(key) {
                return Ok(Some(node.clone()));
            }
        }
        self.base.tree_node(key)
    }
}

impl LogReader for Layered {
    fn suite(&self) -> Suite {
        LogReader::suite(&*self.base)
    }

    fn log_tile(&self, key: &TileKey) -> Result<Option<Arc<Tile>>, LogError> {
        for layer in self.layers.iter().rev() {
            if let Some(tile) = layer.log.tiles.get(key) {
                return Ok(Some(Arc::clone(tile)));
            }
        }
        self.base.log_tile(key)
    }
}

impl StateReader for Layered {
    fn get(&self, key: &[u8]) -> Option<Vec<u8>> {
        for layer in self.layers.iter().rev() {
            if let Some(value) = layer.writes.get(key) {
                return value.clone();
            }
        }
        self.base.get(key)
    }

    fn scan(&self, prefix: &[u8], after: Option<&[u8]>, limit: usize) -> Vec<Entry> {
        self.scan_below(self.layers.len(), prefix, after, limit)
    }
}

impl Layered {
    /// Scans the layers below `depth` (0 is committed state alone).
    fn scan_below(&self, depth: usize, prefix: &[u8], after: Option<&[u8]>, limit: usize) -> Vec<Entry> {
        match depth.checked_sub(1) {
            None => self.base.scan(prefix, after, limit),
            Some(below) => scan_layered(
                &self.layers[below].writes,
                &|after, limit| self.scan_below(below, prefix, after, limit),
                prefix,
                after,
                limit,
            ),
        }
    }
}

/// What one block's execution read from the state below it, kept for the block's later
/// transactions: the same grant, members and contract instances are read by most of them.
/// That state does not change while the block runs (the block's own writes are in the
/// overlay above, which is looked at first), so a value read once holds for the block.
struct ReadCache {
    below: Arc<Layered>,
    values: std::sync::Mutex<CachedReads>,
}

/// Values read, absent ones included, and the bytes they hold.
#[derive(Default)]
struct CachedReads {
    values: std::collections::HashMap<Vec<u8>, Option<Vec<u8>>>,
    bytes: usize,
}

/// Bytes of values one block's read cache holds at most; beyond, reads go below again.
const READ_CACHE_BYTES_MAX: usize = 64 << 20;

impl StateReader for ReadCache {
    fn get(&self, key: &[u8]) -> Option<Vec<u8>> {
        let mut cache = self.values.lock().expect("read cache lock poisoned");
        if let Some(value) = cache.values.get(key) {
            return value.clone();
        }
        let value = self.below.get(key);
        let bytes = key.len() + value.as_ref().map_or(0, Vec::len);
        if cache.bytes + bytes <= READ_CACHE_BYTES_MAX {
            cache.bytes += bytes;
            cache.values.insert(key.to_vec(), value.clone());
        }
        value
    }

    fn scan(&self, prefix: &[u8], after: Option<&[u8]>, limit: usize) -> Vec<Entry> {
        self.below.scan(prefix, after, limit)
    }
}

/// Executes blocks against committed state.
pub struct Executor {
    vm: Arc<Vm>,
    state: Arc<dyn Committed>,
}

impl std::fmt::Debug for Executor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Executor").field("vm", &self.vm).finish_non_exhaustive()
    }
}

impl Executor {
    pub fn new(vm: Arc<Vm>, state: Arc<dyn Committed>) -> Executor {
        Executor { vm, state }
    }

    pub fn vm(&self) -> &Arc<Vm> {
        &self.vm
    }

    /// Executes `block` on top of committed state, which must be its parent's.
    pub fn execute(&self, block: &Block) -> Result<BlockOutput, ExecError> {
        self.execute_on(block, Arc::new(Layered { base: Arc::clone(&self.state), layers: Vec::new() }))
    }

    /// Executes `block` on top of committed state plus the outputs of uncommitted ancestors
    /// (`layers`, oldest first, the last one the block's parent).
    pub fn execute_after(&self, block: &Block, layers: Vec<Arc<BlockOutput>>) -> Result<BlockOutput, ExecError> {
        self.execute_on(block, Arc::new(Layered { base: Arc::clone(&self.state), layers }))
    }

    /// The state a block built on `layers` (uncommitted ancestors, oldest first) sees.
    pub fn state_after(&self, layers: Vec<Arc<BlockOutput>>) -> Arc<dyn StateReader> {
        Arc::new(Layered { base: Arc::clone(&self.state), layers })
    }

    /// Fails only on what must never become a receipt because it is not deterministic (the
    /// VM's watchdog, no free pooled instance): the node then neither votes for nor commits
    /// the block until it can execute it.
    fn execute_on(&self, block: &Block, state: Arc<Layered>) -> Result<BlockOutput, ExecError> {
        let header = &block.header;
        let log_size = decode_nonce(state.get(&keyspace::audit_log_size()));
        let cached = ReadCache { below: Arc::clone(&state), values: Default::default() };
        let mut overlay = Overlay::new(Arc::new(cached) as Arc<dyn StateReader>);
        crate::epochs::begin_block(&mut overlay, header.height);
        overlay = crate::lifecycle::begin_block(&self.vm, overlay, header.height, header.timestamp_ms)?;
        let mut receipts = Vec::with_capacity(block.txs.len());
        let mut gas_total = 0u64;
        for (index, signed) in block.txs.iter().enumerate() {
            let tx = &signed.tx;
            let nonce_key = keyspace::account_nonce(&tx.sender);
            let expected = decode_nonce(overlay.get(&nonce_key));
            let mut receipt = Receipt {
                tx_id: signed.id(),
                height: header.height,
                index: index as u32,
                status: ExecStatus::Success,
                gas_used: 0,
                events: Vec::new(),
                output: Vec::new(),
            };
            if tx.nonce != expected {
                receipt.status = ExecStatus::Rejected(format!("nonce {} is not the next nonce {expected}", tx.nonce));
                receipts.push(receipt);
                continue;
            }
            if tx.expiry_height < header.height {
                receipt.status = ExecStatus::Rejected(format!("expired at height {}", tx.expiry_height));
                receipts.push(receipt);
                continue;
            }
            overlay.set(nonce_key, (expected + 1).encode());
            let ctx = CallContext {
                origin: tx.sender,
                contract: tx.call.contract,
                height: header.height,
                time_ms: header.timestamp_ms,
            };
            let outcome = if crate::lifecycle::is_lifecycle(&tx.call.contract) {
                crate::lifecycle::execute(&self.vm, ctx, &tx.call.method, &tx.call.args, tx.gas_limit, overlay)?
            } else {
                self.vm.call(ctx, &tx.call.method, tx.call.args.clone(), tx.gas_limit, overlay)?
            };
            overlay = outcome.block;
            gas_total += outcome.gas_used;
            receipt.status = outcome.status;
            receipt.gas_used = outcome.gas_used;
            receipt.events = outcome.events;
            receipt.output = outcome.output;
            receipts.push(receipt);
        }
        let writes = overlay.into_writes();
        let tree = state_tree::update(&*state, header.height, &writes)?;
        let log = append_leaves(&*state, log_size, &writes)?;
        let encoded: Vec<Vec<u8>> = receipts.iter().map(Encode::encode).collect();
        Ok(BlockOutput {
            state_root: tree.root,
            tree,
            log,
            writes,
            receipts,
            receipts_root: merkle_root(TreeReader::suite(&*state), &encoded),
            gas_used: gas_total,
        })
    }
}
