//! The executor: runs a finalized block's transactions through the VM in order and computes
//! the write set, receipts and roots that commit with it.
//!
//! Per transaction: the nonce must be the sender's next one (else the receipt is `Rejected`
//! and nothing else happens); the nonce then advances whatever the call does, so a failed
//! transaction cannot be replayed; the call runs with the transaction's gas limit and its
//! writes and events are kept only if it succeeds. Signatures are not checked again here:
//! they were checked once at admission.

use shutong_codec::{Decode, Encode, write};
use shutong_types::hash::tag;
use shutong_types::keyspace;
use shutong_types::{Block, ExecStatus, Hash, Receipt, merkle_root};
use shutong_vm::state::{Entry, Overlay, StateReader, Writes, scan_layered};
use shutong_vm::{CallContext, Vm, VmError};
use std::sync::Arc;

/// What executing one block produced.
#[derive(Debug)]
pub struct BlockOutput {
    pub writes: Writes,
    pub receipts: Vec<Receipt>,
    /// The state root after the block.
    pub state_root: Hash,
    pub receipts_root: Hash,
    pub gas_used: u64,
}

/// Reads a `u64` nonce as stored (absent means 0).
pub fn decode_nonce(bytes: Option<Vec<u8>>) -> u64 {
    bytes.map_or(0, |b| u64::decode(&b).expect("stored nonce is a u64"))
}

/// The interim state commitment, until the authenticated state tree lands: the root after a
/// block is the tagged hash of the previous root and the Merkle root of the block's sorted
/// write set (a block that writes nothing keeps the root). It is deterministic and binds the
/// whole history of writes, so two nodes with different state have different roots; it does
/// not yet give per-key proofs.
pub fn next_state_root(previous: &Hash, writes: &Writes) -> Hash {
    if writes.is_empty() {
        return *previous;
    }
    let leaves: Vec<Vec<u8>> = writes
        .iter()
        .map(|(key, value)| {
            let mut leaf = Vec::with_capacity(key.len() + value.as_ref().map_or(0, Vec::len) + 9);
            write::bytes(&mut leaf, key);
            write::option(&mut leaf, value, |out, v| write::bytes(out, v));
            leaf
        })
        .collect();
    let writes_root = merkle_root(&leaves);
    Hash::of_parts(tag::STATE_ROOT, &[&previous.0, &writes_root.0])
}

/// Committed state with the writes of blocks that are executed but not yet committed on
/// top, newest last.
struct Layered {
    base: Arc<dyn StateReader>,
    layers: Vec<Arc<BlockOutput>>,
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

/// Executes blocks against committed state.
pub struct Executor {
    vm: Arc<Vm>,
    state: Arc<dyn StateReader>,
}

impl std::fmt::Debug for Executor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Executor").field("vm", &self.vm).finish_non_exhaustive()
    }
}

impl Executor {
    pub fn new(vm: Arc<Vm>, state: Arc<dyn StateReader>) -> Executor {
        Executor { vm, state }
    }

    pub fn vm(&self) -> &Arc<Vm> {
        &self.vm
    }

    /// Executes `block` on top of committed state whose root is `state_root`.
    pub fn execute(&self, block: &Block, state_root: &Hash) -> Result<BlockOutput, VmError> {
        self.execute_on(block, state_root, Arc::clone(&self.state))
    }

    /// Executes `block` on top of committed state plus the outputs of uncommitted ancestors
    /// (`layers`, oldest first); `state_root` is the root after the last of them.
    pub fn execute_after(
        &self,
        block: &Block,
        state_root: &Hash,
        layers: Vec<Arc<BlockOutput>>,
    ) -> Result<BlockOutput, VmError> {
        if layers.is_empty() {
            return self.execute(block, state_root);
        }
        self.execute_on(block, state_root, Arc::new(Layered { base: Arc::clone(&self.state), layers }))
    }

    /// The state a block built on `layers` (uncommitted ancestors, oldest first) sees.
    pub fn state_after(&self, layers: Vec<Arc<BlockOutput>>) -> Arc<dyn StateReader> {
        Arc::new(Layered { base: Arc::clone(&self.state), layers })
    }

    /// Fails only on what must never become a receipt because it is not deterministic (the
    /// VM's watchdog, no free pooled instance): the node then neither votes for nor commits
    /// the block until it can execute it.
    fn execute_on(
        &self,
        block: &Block,
        state_root: &Hash,
        state: Arc<dyn StateReader>,
    ) -> Result<BlockOutput, VmError> {
        let header = &block.header;
        let mut overlay = Overlay::new(state);
        crate::epochs::begin_block(&mut overlay, header.height);
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
        let state_root = next_state_root(state_root, &writes);
        let encoded: Vec<Vec<u8>> = receipts.iter().map(Encode::encode).collect();
        Ok(BlockOutput { writes, receipts, state_root, receipts_root: merkle_root(&encoded), gas_used: gas_total })
    }
}
