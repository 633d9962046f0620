//! The state a call sees: committed state underneath, the block's pending writes on top, and
//! the transaction's own writes on top of those, kept apart until the call succeeds.

use std::collections::BTreeMap;
use std::sync::Arc;

/// Read access to committed state.
pub trait StateReader: Send + Sync {
    fn get(&self, key: &[u8]) -> Option<Vec<u8>>;
}

/// A write set: `None` marks a removal.
pub type Writes = BTreeMap<Vec<u8>, Option<Vec<u8>>>;

/// Committed state plus pending writes.
pub struct Overlay {
    base: Arc<dyn StateReader>,
    writes: Writes,
}

impl std::fmt::Debug for Overlay {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Overlay({} pending writes)", self.writes.len())
    }
}

impl Overlay {
    pub fn new(base: Arc<dyn StateReader>) -> Overlay {
        Overlay { base, writes: Writes::new() }
    }

    pub fn get(&self, key: &[u8]) -> Option<Vec<u8>> {
        match self.writes.get(key) {
            Some(pending) => pending.clone(),
            None => self.base.get(key),
        }
    }

    pub fn set(&mut self, key: Vec<u8>, value: Vec<u8>) {
        self.writes.insert(key, Some(value));
    }

    pub fn remove(&mut self, key: Vec<u8>) {
        self.writes.insert(key, None);
    }

    /// Applies a transaction's write set on top of this overlay.
    pub fn apply(&mut self, writes: Writes) {
        self.writes.extend(writes);
    }

    /// The pending writes, sorted by key.
    pub fn into_writes(self) -> Writes {
        self.writes
    }

    pub fn writes(&self) -> &Writes {
        &self.writes
    }
}

/// A transaction's view: reads fall through its own writes to the block overlay.
#[derive(Debug)]
pub struct TxState {
    pub block: Overlay,
    pub writes: Writes,
}

impl TxState {
    pub fn get(&self, key: &[u8]) -> Option<Vec<u8>> {
        match self.writes.get(key) {
            Some(pending) => pending.clone(),
            None => self.block.get(key),
        }
    }
}

/// A `StateReader` over an in-memory map, for tests and benches.
#[derive(Debug, Default)]
pub struct MemoryState(pub BTreeMap<Vec<u8>, Vec<u8>>);

impl StateReader for MemoryState {
    fn get(&self, key: &[u8]) -> Option<Vec<u8>> {
        self.0.get(key).cloned()
    }
}
